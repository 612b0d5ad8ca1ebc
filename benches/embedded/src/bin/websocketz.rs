//! The job with websocketz: accept a client, echo every message up to
//! 4 KiB, answer Pings, close.
#![no_std]
#![no_main]

use core::convert::Infallible;

use rfc6455_embedded_size::{block_on, Wire, MAX_MESSAGE};
use websocketz::options::AcceptOptions;
use websocketz::{next, send, Message, WebSocket};

/// A server never masks; the key source is still a parameter.
struct NoRng;

impl rand_core::TryRng for NoRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(core::hint::black_box(4))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(core::hint::black_box(4))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        dst.fill(core::hint::black_box(4));
        Ok(())
    }
}

#[no_mangle]
pub extern "C" fn _start() -> ! {
    block_on(async {
        // A frame header is at most 14 bytes.
        let mut read = [0; MAX_MESSAGE + 14];
        let mut write = [0; MAX_MESSAGE + 14];
        let mut fragments = [0; MAX_MESSAGE];
        let Ok(mut ws) = WebSocket::accept::<16>(
            AcceptOptions::default(),
            Wire,
            NoRng,
            &mut read,
            &mut write,
            &mut fragments,
        )
        .await
        else {
            return;
        };
        while let Some(Ok(message)) = next!(ws) {
            let sent = match message {
                Message::Text(text) => send!(ws, Message::Text(text)),
                Message::Binary(data) => send!(ws, Message::Binary(data)),
                _ => Ok(()),
            };
            if sent.is_err() {
                break;
            }
        }
    });
    loop {}
}
