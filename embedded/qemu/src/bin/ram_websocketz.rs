//! The RAM comparison's job (ram.py) with websocketz 0.2, given the
//! buffers its API asks for to echo messages of up to 4 KiB in frames of
//! up to 1 KiB: a read buffer for one frame, a write buffer for one
//! message as one frame, and one for the fragments of a message.
#![no_std]
#![no_main]

use core::convert::Infallible;

use cortex_m_rt::entry;
use rfc6455_qemu::{serve_each, LARGEST};
use websocketz::options::AcceptOptions;
use websocketz::{next, send, Message, WebSocket};

/// A server never masks; the key source is still a parameter.
struct NoRng;

impl rand_core::TryRng for NoRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(4)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(4)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        dst.fill(4);
        Ok(())
    }
}

#[entry]
fn main() -> ! {
    serve_each("ram: websocketz", |session| async move {
        // A frame header is at most 14 bytes.
        let mut read = [0; LARGEST.1 + 14];
        let mut write = [0; LARGEST.0 + 14];
        let mut fragments = [0; LARGEST.0];
        let Ok(mut ws) = WebSocket::accept::<16>(
            AcceptOptions::default(),
            session,
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
    })
}
