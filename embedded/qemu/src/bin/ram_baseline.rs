//! The RAM comparison's baseline (ram.py): the board, the line and the
//! poll loop alone, reading a connection to its end. What the other
//! programs use beyond this is their library's.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use embedded_io_async::Read;
use rfc6455_qemu::{serve_each, Session};

#[entry]
fn main() -> ! {
    serve_each("ram: baseline", |mut session: Session| async move {
        let mut byte = [0; 1];
        while let Ok(1) = session.read(&mut byte).await {}
    })
}
