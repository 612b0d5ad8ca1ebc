//! The RAM comparison's job (ram.py) with embedded-websocket 0.9, given
//! the buffers its framer asks for to echo messages of up to 4 KiB: a
//! read buffer for a frame, a write buffer for a message as one frame,
//! and a buffer for a whole message. Its framer is blocking, over its own
//! `Stream` trait; the handshake head is parsed with httparse, as in the
//! crate's server example.
#![no_std]
#![no_main]

use core::convert::Infallible;
use core::pin::pin;

use cortex_m_rt::entry;
use embedded_websocket::framer::{Framer, ReadResult, Stream};
use embedded_websocket::{WebSocketSendMessageType, WebSocketServer};
use rfc6455_qemu::{block_on, log, serve_each, Session, LARGEST};

/// The line as its blocking `Stream`: each call polls the async one to
/// its end.
struct Blocking(Session);

impl Stream<Infallible> for Blocking {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        block_on(pin!(embedded_io_async::Read::read(&mut self.0, buf)))
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Infallible> {
        block_on(pin!(embedded_io_async::Write::write_all(&mut self.0, buf)))
    }
}

#[entry]
fn main() -> ! {
    serve_each("ram: embedded-websocket", |session| async move {
        serve(Blocking(session));
    })
}

fn serve(mut stream: Blocking) {
    let mut read_buf = [0; LARGEST.1 + 14];
    let mut read_cursor = 0;
    let mut write_buf = [0; LARGEST.0 + 14];
    let mut frame_buf = [0; LARGEST.0];
    // The request head, read until httparse has it whole.
    let context = loop {
        let Ok(n) = stream.read(&mut read_buf[read_cursor..]);
        if n == 0 {
            return;
        }
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&read_buf[..read_cursor + n]) {
            Ok(httparse::Status::Complete(len)) => {
                // What came after the head stays at the buffer's start.
                let rest = read_cursor + n - len;
                let fields = request.headers.iter().map(|f| (f.name, f.value));
                let context = embedded_websocket::read_http_header(fields);
                read_buf.copy_within(len..len + rest, 0);
                read_cursor = rest;
                match context {
                    Ok(Some(context)) => break context,
                    _ => return,
                }
            }
            Ok(httparse::Status::Partial) => read_cursor += n,
            Err(_) => return,
        }
    };
    let mut websocket = WebSocketServer::new_server();
    let mut framer = Framer::new(
        &mut read_buf,
        &mut read_cursor,
        &mut write_buf,
        &mut websocket,
    );
    if framer.accept(&mut stream, &context).is_err() {
        return;
    }
    loop {
        let (kind, payload) = match framer.read(&mut stream, &mut frame_buf) {
            Ok(ReadResult::Text(text)) => (WebSocketSendMessageType::Text, text.as_bytes()),
            Ok(ReadResult::Binary(data)) => (WebSocketSendMessageType::Binary, data),
            Ok(ReadResult::Pong(_)) => continue,
            Ok(ReadResult::Closed) => return,
            Err(error) => {
                log!("embedded-websocket: {error:?}");
                return;
            }
        };
        if framer.write(&mut stream, kind, true, payload).is_err() {
            return;
        }
    }
}
