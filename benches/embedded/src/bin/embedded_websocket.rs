//! The job with embedded-websocket: accept a client, echo every message
//! up to 4 KiB, answer Pings, close. Its framer is blocking, over its own
//! `Stream` trait; the handshake head is parsed with httparse, as in the
//! crate's server example.
#![no_std]
#![no_main]

use core::convert::Infallible;
use core::hint::black_box;

use embedded_websocket::framer::{Framer, ReadResult, Stream};
use embedded_websocket::{WebSocketSendMessageType, WebSocketServer};
use rfc6455_embedded_size::MAX_MESSAGE;

struct Wire;

impl Stream<Infallible> for Wire {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let buf = black_box(buf);
        Ok(black_box(buf.len()))
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Infallible> {
        black_box(buf);
        Ok(())
    }
}

#[no_mangle]
pub extern "C" fn _start() -> ! {
    serve();
    loop {}
}

fn serve() {
    let mut stream = Wire;
    let mut read_buf = [0; MAX_MESSAGE + 14];
    let mut read_cursor = 0;
    let mut write_buf = [0; MAX_MESSAGE + 14];
    let mut frame_buf = [0; MAX_MESSAGE];
    // The request head, read until httparse has it whole.
    let context = loop {
        let Ok(n) = stream.read(&mut read_buf[read_cursor..]);
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&read_buf[..read_cursor + n]) {
            Ok(httparse::Status::Complete(len)) => {
                read_cursor += n - len.min(n);
                let fields = request.headers.iter().map(|f| (f.name, f.value));
                match embedded_websocket::read_http_header(fields) {
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
            Ok(ReadResult::Closed) | Err(_) => return,
        };
        if framer.write(&mut stream, kind, true, payload).is_err() {
            return;
        }
    }
}
