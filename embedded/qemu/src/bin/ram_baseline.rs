//! The RAM comparison's baseline (ram.py): the board, the line and the
//! poll loop alone, reading a connection to its end. What the other
//! programs use beyond this is their library's.
#![no_std]
#![no_main]

use core::pin::pin;
use cortex_m_rt::entry;
use embedded_io_async::Read;
use rfc6455_qemu::{block_on, board, log, memory, report, Session};

#[entry]
fn main() -> ! {
    memory::start();
    board::start();
    log!("ram: baseline");
    block_on(pin!(async {
        let mut count = 0u32;
        loop {
            let mut session = Session::accept().await;
            count += 1;
            let mut byte = [0; 1];
            while let Ok(1) = session.read(&mut byte).await {}
            session.close();
            report(format_args!("connection {count}"));
        }
    }))
}
