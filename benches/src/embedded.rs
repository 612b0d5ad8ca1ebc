//! Part 6: the RAM a WebSocket server task needs on a small device, for
//! rfc6455 (its embedded-io-async driver in the small-memory
//! configuration), websocketz and embedded-websocket, doing the same job:
//! accept a client, echo messages of up to 4 KiB that arrive in frames of
//! up to 1 KiB with a Ping after each, then close.
//!
//! Measured on the host, the same way for all three: the task's state
//! (`size_of_val` of its future, which holds every buffer it keeps across
//! a wait; for embedded-websocket, whose framer is blocking, the buffers
//! it is lent plus its state) plus the peak of the heap the task holds
//! while it runs (a counting allocator). The stream is in memory, fed in
//! reads of 512 bytes; nothing here is timed. The code size for
//! thumbv7em-none-eabihf is measured apart (benches/embedded).

use rfc6455::Driver;
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use rfc6455::embedded::Clock;
use rfc6455::handshake::{ClientHandshake, ClientRequest};
use rfc6455::plumbing::Plumbing;
use rfc6455::{Config, Connection, MaskKeys, MessageKind, Role, Timestamp};

use crate::alloc::peak_here;
use crate::harness::Table;

/// The largest message of the job.
const MAX_MESSAGE: usize = 4096;
/// The largest frame of the job.
const MAX_FRAME: usize = 1024;
/// Bytes per read from the in-memory stream.
const READ: usize = 512;

/// What the client sends: the handshake request, the messages in frames
/// of at most 1 KiB with a Ping after each message, a Close.
fn client_wire(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut config = Config::default();
    config.mask_keys = MaskKeys::Fixed([1, 2, 3, 4]);
    let handshake = ClientHandshake::new(&ClientRequest::new("device.local", "/"), config.clone());
    let mut wire = handshake.request().to_vec();
    let mut client = Connection::new(Role::Client, config);
    for message in messages {
        client
            .send_fragmented(MessageKind::Binary, message, MAX_FRAME)
            .unwrap();
        client.ping(b"ping").unwrap();
    }
    client.close(rfc6455::CloseCode::NORMAL, "").unwrap();
    wire.extend(client.pending_output_pieces().flatten());
    wire
}

/// The messages of the job: sizes from empty to the 4 KiB limit.
fn messages() -> Vec<Vec<u8>> {
    (0..40u32)
        .map(|i| vec![i as u8; ((i * 997) % (MAX_MESSAGE as u32 + 1)) as usize])
        .chain([vec![7; MAX_MESSAGE]])
        .collect()
}

/// An in-memory stream: reads the client's bytes in pieces, counts what
/// is written.
struct Memory {
    wire: Vec<u8>,
    at: usize,
    written: usize,
    /// The end of the request head: a client sends nothing more until the
    /// server's 101 arrives, so no read returns bytes on both sides of it.
    head_end: usize,
}

impl Memory {
    fn new(wire: Vec<u8>) -> Memory {
        let head_end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        Memory {
            wire,
            at: 0,
            written: 0,
            head_end,
        }
    }

    fn read_into(&mut self, buf: &mut [u8]) -> usize {
        let end = if self.at < self.head_end {
            self.head_end
        } else {
            self.wire.len()
        };
        let n = buf.len().min(READ).min(end - self.at);
        buf[..n].copy_from_slice(&self.wire[self.at..self.at + n]);
        self.at += n;
        n
    }
}

impl embedded_io::ErrorType for Memory {
    type Error = Infallible;
}

impl embedded_io_async::Read for Memory {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        Ok(self.read_into(buf))
    }
}

impl embedded_io_async::Write for Memory {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.written += buf.len();
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl embedded_websocket::framer::Stream<Infallible> for Memory {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        Ok(self.read_into(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Infallible> {
        self.written += buf.len();
        Ok(())
    }
}

/// A clock that never moves: the job has no deadline to meet.
struct Still;

impl Clock for Still {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(0)
    }

    async fn sleep_until(&self, _: Timestamp) {
        std::future::pending().await
    }
}

/// Polls a future to the end (the in-memory stream is always ready);
/// returns its output and its size.
fn poll_to_end<F: Future>(future: F) -> (F::Output, usize) {
    let size = std::mem::size_of_val(&future);
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return (out, size);
        }
    }
}

/// One library's figures: messages echoed, task state, heap peak.
struct Figures {
    echoed: usize,
    state: usize,
    heap: u64,
}

fn rfc6455(wire: Vec<u8>, streaming: bool) -> Figures {
    let ((echoed, state), heap) = peak_here(|| {
        poll_to_end(async move {
            let mut config = Config::default();
            config.max_frame_size = Some(MAX_FRAME);
            config.max_message_size = if streaming { None } else { Some(MAX_MESSAGE) };
            config.streaming = streaming;
            config.max_header_bytes = 1024;
            config.max_headers = 16;
            let mut ws = rfc6455::embedded::accept(Memory::new(wire), Still, config)
                .await
                .unwrap();
            let mut echoed = 0;
            loop {
                match ws.recv_event().await.unwrap() {
                    rfc6455::Event::Message(message) => {
                        ws.send(&message).await.unwrap();
                        echoed += 1;
                    }
                    rfc6455::Event::Fragment(fragment) => {
                        let conn = ws.connection_mut();
                        conn.send_fragment(fragment.kind, &fragment.data, fragment.last)
                            .unwrap();
                        ws.flush().await.unwrap();
                        echoed += usize::from(fragment.last);
                    }
                    rfc6455::Event::Closed(_) => break,
                    _ => {}
                }
            }
            echoed
        })
    });
    Figures {
        echoed,
        state,
        heap,
    }
}

/// websocketz needs a random number generator even as a server.
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

fn websocketz(wire: Vec<u8>) -> Figures {
    use websocketz::{next, options::AcceptOptions, send, Message, WebSocket};
    let ((echoed, state), heap) = peak_here(|| {
        poll_to_end(async move {
            // The smallest buffers that do the job: a frame and its
            // header, the same for writing, and a whole message.
            let mut read = [0u8; MAX_MESSAGE + 14];
            let mut write = [0u8; MAX_MESSAGE + 14];
            let mut fragments = [0u8; MAX_MESSAGE];
            let mut ws = WebSocket::accept::<16>(
                AcceptOptions::default(),
                Memory::new(wire),
                NoRng,
                &mut read,
                &mut write,
                &mut fragments,
            )
            .await
            .unwrap();
            let mut echoed = 0;
            while let Some(Ok(message)) = next!(ws) {
                match message {
                    Message::Binary(data) => send!(ws, Message::Binary(data)).unwrap(),
                    Message::Text(text) => send!(ws, Message::Text(text)).unwrap(),
                    _ => continue,
                }
                echoed += 1;
            }
            black_box(&ws);
            echoed
        })
    });
    Figures {
        echoed,
        state,
        heap,
    }
}

fn embedded_websocket(wire: Vec<u8>) -> Figures {
    use embedded_websocket::framer::{Framer, ReadResult, Stream};
    use embedded_websocket::{WebSocketSendMessageType, WebSocketServer};
    // The buffers it is lent: reading, writing, a whole message.
    const READ_BUF: usize = MAX_MESSAGE + 14;
    const WRITE_BUF: usize = MAX_MESSAGE + 14;
    const FRAME_BUF: usize = MAX_MESSAGE;
    let mut failure = None;
    let (echoed, heap) = peak_here(|| {
        let mut stream = Memory::new(wire);
        let mut read_buf = [0u8; READ_BUF];
        let mut read_cursor = 0;
        let mut write_buf = [0u8; WRITE_BUF];
        let mut frame_buf = [0u8; FRAME_BUF];
        let (context, head, total) = loop {
            let Ok(n) = stream.read(&mut read_buf[read_cursor..]);
            let mut headers = [httparse_header(); 16];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&read_buf[..read_cursor + n]).unwrap() {
                httparse::Status::Complete(len) => {
                    let fields = request.headers.iter().map(|f| (f.name, f.value));
                    let context = embedded_websocket::read_http_header(fields);
                    break (context.unwrap().unwrap(), len, read_cursor + n);
                }
                httparse::Status::Partial => read_cursor += n,
            }
        };
        // What followed the head stays for the framer.
        read_buf.copy_within(head..total, 0);
        read_cursor = total - head;
        let mut websocket = WebSocketServer::new_server();
        let mut framer = Framer::new(
            &mut read_buf,
            &mut read_cursor,
            &mut write_buf,
            &mut websocket,
        );
        framer.accept(&mut stream, &context).unwrap();
        let mut echoed = 0;
        loop {
            let (kind, payload) = match framer.read(&mut stream, &mut frame_buf) {
                Ok(ReadResult::Binary(data)) => (WebSocketSendMessageType::Binary, data),
                Ok(ReadResult::Text(text)) => (WebSocketSendMessageType::Text, text.as_bytes()),
                Ok(ReadResult::Pong(_)) => continue,
                Ok(ReadResult::Closed) => break,
                Err(e) => {
                    // Its framer fails on a frame that spans two reads
                    // (ReadFrameIncomplete), which TCP delivers any time.
                    *failure.get_or_insert_with(String::new) = format!("{e:?}");
                    break;
                }
            };
            framer.write(&mut stream, kind, true, payload).unwrap();
            echoed += 1;
        }
        echoed
    });
    let state = READ_BUF
        + WRITE_BUF
        + FRAME_BUF
        + std::mem::size_of::<usize>()
        + std::mem::size_of::<WebSocketServer>()
        + std::mem::size_of::<
            Framer<'static, embedded_websocket::EmptyRng, embedded_websocket::Server>,
        >();
    if let Some(failure) = failure {
        println!("embedded-websocket stopped after {echoed} messages: {failure}");
    }
    Figures {
        echoed,
        state,
        heap,
    }
}

fn httparse_header() -> httparse::Header<'static> {
    httparse::EMPTY_HEADER
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

pub fn run() {
    let messages = messages();
    let wire = client_wire(&messages);
    let ours = rfc6455(wire.clone(), false);
    let theirs = [
        ("websocketz", websocketz(wire.clone())),
        ("embedded-websocket", embedded_websocket(wire.clone())),
    ];
    let mut table = Table::new(
        "Embedded: RAM of one server task, echoing messages of up to 4 KiB \
         (frames of up to 1 KiB, a Ping after each)",
        &[
            "library",
            "echoed",
            "task state",
            "heap peak",
            "total",
            "ours / theirs",
        ],
    );
    let total = |f: &Figures| f.state as u64 + f.heap;
    table.row(vec![
        "rfc6455 (embedded driver)".into(),
        format!("{}/{}", ours.echoed, messages.len()),
        kib(ours.state as u64),
        kib(ours.heap),
        kib(total(&ours)),
        "".into(),
    ]);
    for (name, figures) in &theirs {
        table.row(vec![
            (*name).into(),
            format!("{}/{}", figures.echoed, messages.len()),
            kib(figures.state as u64),
            kib(figures.heap),
            kib(total(figures)),
            format!("{:.2}", total(&ours) as f64 / total(figures) as f64),
        ]);
    }
    table.print();
    // Streaming: one message of 1 MiB, which only a streaming reader can
    // take in this memory; the others need buffers the size of the message.
    let big = client_wire(&[vec![5; 1 << 20]]);
    let streamed = rfc6455(big, true);
    println!(
        "\nStreaming one 1 MiB message (max_frame_size 1 KiB, streaming on): rfc6455 \
         echoed {} message, task state {}, heap peak {}, total {}; websocketz and \
         embedded-websocket need buffers of at least the message (1 MiB) for the same job.",
        streamed.echoed,
        kib(streamed.state as u64),
        kib(streamed.heap),
        kib(total(&streamed)),
    );
}
