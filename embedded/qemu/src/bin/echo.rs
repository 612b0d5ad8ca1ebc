//! An echo server on the board: every connection the host's bridge opens
//! on the UART is accepted as a WebSocket and every message sent back.
#![no_std]
#![no_main]

use core::pin::pin;
use cortex_m_rt::entry;
use rfc6455::embedded;
use rfc6455_qemu::{block_on, board, config, echo, log, memory, report, Session, Ticks};

#[entry]
fn main() -> ! {
    memory::start();
    board::start();
    log!("echo: listening on the UART");
    block_on(pin!(async {
        let mut count = 0u32;
        loop {
            let session = Session::accept().await;
            count += 1;
            match embedded::accept(session, Ticks, config()).await {
                Ok(mut ws) => {
                    echo(&mut ws).await;
                    ws.into_inner().close();
                }
                Err(error) => log!("connection {count}: {error}"),
            }
            report(format_args!("connection {count}"));
        }
    }))
}
