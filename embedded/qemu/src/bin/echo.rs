//! An echo server on the board: every connection the host's bridge opens
//! on the UART is accepted as a WebSocket and every message sent back.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use rfc6455::embedded;
use rfc6455_qemu::{config, echo, log, serve_each, Ticks};

#[entry]
fn main() -> ! {
    serve_each("echo: listening on the UART", |session| async move {
        match embedded::accept(session, Ticks, config()).await {
            Ok(mut ws) => {
                echo(&mut ws).await;
                ws.into_inner().close();
            }
            Err(error) => log!("{error}"),
        }
    })
}
