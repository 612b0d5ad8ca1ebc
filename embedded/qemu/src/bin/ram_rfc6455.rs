//! The RAM comparison's job (ram.py) with rfc6455: accept a client, echo
//! every message of up to 4 KiB (frames of up to 1 KiB), answer Pings,
//! close; whole messages, as the peers deliver them.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use rfc6455::{embedded, Config, Driver};
use rfc6455_qemu::{serve_each, Ticks, LARGEST};

#[entry]
fn main() -> ! {
    serve_each("ram: rfc6455, whole messages", |session| async move {
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
        }
    })
}
