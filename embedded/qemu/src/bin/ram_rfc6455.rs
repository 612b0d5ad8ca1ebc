//! The RAM comparison's job (ram.py) with rfc6455: accept a client, echo
//! every message of up to 4 KiB (frames of up to 1 KiB), answer Pings,
//! close; whole messages, as the peers deliver them.
#![no_std]
#![no_main]

use core::pin::pin;
use cortex_m_rt::entry;
use rfc6455::{embedded, Config, Driver};
use rfc6455_qemu::{block_on, board, log, memory, report, Session, Ticks, LARGEST};

#[entry]
fn main() -> ! {
    memory::start();
    board::start();
    log!("ram: rfc6455, whole messages");
    block_on(pin!(async {
        let mut count = 0u32;
        loop {
            let session = Session::accept().await;
            count += 1;
            let mut config = Config::default();
            config.max_frame_size = Some(LARGEST.1);
            config.max_message_size = Some(LARGEST.0);
            config.max_header_bytes = 1024;
            config.max_headers = 16;
            if let Ok(mut ws) = embedded::accept(session, Ticks, config).await {
                while let Ok(Some(message)) = ws.recv().await {
                    if ws.send(&message).await.is_err() {
                        break;
                    }
                }
                ws.into_inner().close();
            }
            report(format_args!("connection {count}"));
        }
    }))
}
