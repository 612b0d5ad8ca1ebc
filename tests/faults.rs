//! Fault injection: one table of transport faults, run through every
//! adapter (blocking, tokio, embedded-io-async over tokio's traits, and
//! the compio driver), each as a server with an echo loop.
//!
//! The transport ([`Faulty`]) hands out its input one byte per read and
//! takes one byte per write, with `Interrupted` and `WouldBlock` (for
//! tokio: a wake and `Pending`; a blocking stream's writes get only
//! `Interrupted`, since `WouldBlock` there is its write timeout) between, and can end the input early,
//! reset the connection, or fail a write after some bytes. For each case:
//! every message that arrived whole is echoed once and in order (none lost,
//! none doubled), the calls into the transport stay within a bound (no
//! busy loop), the outcome is the documented one, and nothing panics.
//!
//! The HTTP/2 driver runs the same faults in its own terms (`on_http2`):
//! its WebSocket bytes travel inside h2's frames, so the faulty transport
//! sits under a whole HTTP/2 connection between our client and server.
#![cfg(all(feature = "tokio", feature = "blocking"))]

mod common;
#[cfg(feature = "embedded-io-async")]
#[path = "common/tokio_clock.rs"]
mod tokio_clock;

use rfc6455::Driver;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use common::{client_frame, BINARY, CLOSE, TEXT};
use rfc6455::{Message, ProtocolError};

/// An opening handshake, as a client sends it.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// What goes wrong.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Nothing: the input ends with a Close frame.
    None,
    /// The input ends this many bytes into the frames (after the head).
    EndAt(usize),
    /// The input ends this many bytes into the head.
    EndInHead(usize),
    /// A read fails with a reset this many bytes into the frames.
    ResetAt(usize),
    /// A write fails after this many bytes of output (past the 101).
    WriteFailsAt(usize),
}

/// What the echo loop ended with.
#[derive(Debug, PartialEq)]
enum End {
    /// The closing handshake completed.
    Closed,
    /// The transport ended in the middle of a frame.
    EofMidFrame,
    /// The handshake failed on a truncated head.
    HandshakeEof,
    /// The transport's own error, of this kind.
    Io(io::ErrorKind),
}

/// The transport: input handed out a byte at a time, output taken a byte
/// at a time, with a hiccup (`Interrupted`, then `WouldBlock`) before
/// every other call.
struct Faulty {
    input: Vec<u8>,
    at: usize,
    /// Reads fail with a reset at this input offset.
    reset_at: Option<usize>,
    output: Vec<u8>,
    /// Writes fail once this much is written.
    fail_writes_at: Option<usize>,
    /// Writes may hiccup with `WouldBlock` too (for tokio: `Pending`);
    /// to a blocking stream that is its write timeout, an error.
    writes_may_block: bool,
    calls: usize,
}

impl Faulty {
    fn new(fault: Fault, frames: &[u8]) -> Faulty {
        let head = REQUEST.len();
        let mut input = [REQUEST, frames].concat();
        let mut reset_at = None;
        let mut fail_writes_at = None;
        match fault {
            Fault::None => {}
            Fault::EndAt(n) => input.truncate(head + n),
            Fault::EndInHead(n) => input.truncate(n),
            Fault::ResetAt(n) => reset_at = Some(head + n),
            Fault::WriteFailsAt(n) => fail_writes_at = Some(n),
        }
        Faulty {
            input,
            at: 0,
            reset_at,
            output: Vec::new(),
            fail_writes_at,
            writes_may_block: false,
            calls: 0,
        }
    }

    /// Every other call hiccups: `Interrupted` on odd calls of a kind
    /// that can retry at once, `WouldBlock` on the rest.
    fn hiccup(&mut self) -> Option<io::ErrorKind> {
        self.calls += 1;
        match self.calls % 4 {
            1 => Some(io::ErrorKind::Interrupted),
            3 => Some(io::ErrorKind::WouldBlock),
            _ => None,
        }
    }

    fn read_byte(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(kind) = self.hiccup() {
            return Err(kind.into());
        }
        if self.reset_at == Some(self.at) {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        match self.input.get(self.at) {
            Some(&byte) if !buf.is_empty() => {
                buf[0] = byte;
                self.at += 1;
                Ok(1)
            }
            _ => Ok(0),
        }
    }

    fn write_byte(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.hiccup() {
            Some(io::ErrorKind::WouldBlock) if !self.writes_may_block => {}
            Some(kind) => return Err(kind.into()),
            None => {}
        }
        // The 101 response is not counted: faults are in the frames.
        let head = self.output_head_len();
        if self
            .fail_writes_at
            .is_some_and(|n| self.output.len() >= head + n)
        {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        match buf.first() {
            Some(&byte) => {
                self.output.push(byte);
                Ok(1)
            }
            None => Ok(0),
        }
    }

    /// A copy of the transport, as the checks look at it, for a driver
    /// that holds the stream.
    fn seen(&self) -> Faulty {
        Faulty {
            input: self.input.clone(),
            at: self.at,
            reset_at: self.reset_at,
            output: self.output.clone(),
            fail_writes_at: self.fail_writes_at,
            writes_may_block: self.writes_may_block,
            calls: self.calls,
        }
    }

    /// The length of the response head in the output, once it is whole.
    fn output_head_len(&self) -> usize {
        self.output
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(usize::MAX / 2, |at| at + 4)
    }

    /// The frames written after the response head.
    fn frames_out(&self) -> &[u8] {
        let head = self.output_head_len().min(self.output.len());
        &self.output[head..]
    }
}

impl Read for Faulty {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_byte(buf)
    }
}

impl Write for Faulty {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_byte(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Tokio's view: `WouldBlock` becomes a wake and `Pending`.
impl tokio::io::AsyncRead for Faulty {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut byte = [0u8; 1];
        loop {
            match this.read_byte(&mut byte) {
                Ok(n) => {
                    buf.put_slice(&byte[..n]);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl tokio::io::AsyncWrite for Faulty {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            match this.write_byte(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                other => return Poll::Ready(other),
            }
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The blocking adapter's echo loop over `stream`, lent, so that the
/// checks see the transport the run broke, whether or not the handshake
/// got through.
fn echo_blocking(mut stream: Faulty) -> (End, Faulty) {
    use rfc6455::blocking::Error;
    let mut ws = match rfc6455::blocking::accept(&mut stream) {
        Ok(ws) => ws,
        Err(Error::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return (End::HandshakeEof, stream)
        }
        Err(other) => panic!("handshake: {other:?}"),
    };
    let end = loop {
        match ws.recv() {
            Ok(Some(message)) => {
                if let Err(e) = ws.send(&message) {
                    break end_of(e);
                }
            }
            Ok(None) => break End::Closed,
            Err(e) => break end_of(e),
        }
    };
    drop(ws);
    (end, stream)
}

/// The tokio adapter's echo loop over `stream`, lent as the blocking
/// one's is.
async fn echo_tokio(mut stream: Faulty) -> (End, Faulty) {
    use rfc6455::tokio::Error;
    let mut ws = match rfc6455::tokio::accept(&mut stream).await {
        Ok(ws) => ws,
        Err(Error::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return (End::HandshakeEof, stream)
        }
        Err(other) => panic!("handshake: {other:?}"),
    };
    let end = loop {
        match ws.recv().await {
            Ok(Some(message)) => {
                if let Err(e) = ws.send(&message).await {
                    break end_of(e);
                }
            }
            Ok(None) => break End::Closed,
            Err(e) => break end_of(e),
        }
    };
    drop(ws);
    (end, stream)
}

/// The embedded adapter's echo loop over `stream` (through
/// embedded-io-adapters' bridge from tokio's traits).
#[cfg(feature = "embedded-io-async")]
async fn echo_embedded(mut stream: Faulty) -> (End, Faulty) {
    use embedded_io_adapters::tokio_1::FromTokio;
    use rfc6455::embedded::Error;
    let accepted = rfc6455::embedded::accept_with(
        FromTokio::new(&mut stream),
        tokio_clock::TokioClock,
        rfc6455::Config::default(),
        |_| Ok(rfc6455::handshake::Accept::new()),
    )
    .await;
    let mut ws = match accepted {
        Ok(ws) => ws,
        Err(Error::Eof) => return (End::HandshakeEof, stream),
        Err(other) => panic!("handshake: {other:?}"),
    };
    let end_of = |error: Error<io::Error>| match error {
        Error::Protocol(ProtocolError::UnexpectedEof { mid_frame: true }) => End::EofMidFrame,
        Error::Io(e) => End::Io(e.kind()),
        other => panic!("unexpected error {other:?}"),
    };
    let end = loop {
        match ws.recv().await {
            Ok(Some(message)) => {
                if let Err(e) = ws.send(&message).await {
                    break end_of(e);
                }
            }
            Ok(None) => break End::Closed,
            Err(e) => break end_of(e),
        }
    };
    drop(ws);
    (end, stream)
}

fn end_of(error: rfc6455::blocking::Error) -> End {
    use rfc6455::blocking::Error;
    match error {
        Error::Protocol(ProtocolError::UnexpectedEof { mid_frame: true }) => End::EofMidFrame,
        Error::Io(e) => End::Io(e.kind()),
        other => panic!("unexpected error {other:?}"),
    }
}

/// The messages of the table: three data messages, then a Close.
fn client_input() -> (Vec<u8>, Vec<Message>, Vec<usize>) {
    let messages = vec![
        Message::from("first"),
        Message::from(vec![7u8; 300]),
        Message::from("third, with ünïcödé"),
    ];
    let mut wire = Vec::new();
    // Where each message's frame ends on the wire.
    let mut ends = Vec::new();
    for m in &messages {
        let opcode = if m.as_text().is_some() { TEXT } else { BINARY };
        wire.extend(client_frame(opcode, m.as_bytes()));
        ends.push(wire.len());
    }
    wire.extend(client_frame(CLOSE, &1000u16.to_be_bytes()));
    (wire, messages, ends)
}

/// The table: each fault, and what the echo loop must end with.
fn cases(ends: &[usize], total: usize) -> Vec<(&'static str, Fault, End)> {
    vec![
        ("a byte at a time, with hiccups", Fault::None, End::Closed),
        (
            "input ends inside the second frame",
            Fault::EndAt(ends[0] + 3),
            End::EofMidFrame,
        ),
        (
            "input ends inside the head",
            Fault::EndInHead(20),
            End::HandshakeEof,
        ),
        (
            "a reset inside the third frame",
            Fault::ResetAt(ends[1] + 2),
            End::Io(io::ErrorKind::ConnectionReset),
        ),
        (
            "a write fails inside the second echo",
            Fault::WriteFailsAt(ends[0] + 10),
            End::Io(io::ErrorKind::BrokenPipe),
        ),
        (
            "input ends right after the Close",
            Fault::EndAt(total),
            End::Closed,
        ),
    ]
}

/// The echoed messages in `faulty`'s output, in order: its whole
/// unmasked data frames (a write that failed may leave a frame cut short).
fn echoed(faulty: &Faulty) -> Vec<Vec<u8>> {
    let mut out = faulty.frames_out();
    let mut echoes = Vec::new();
    while out.len() >= 2 {
        let (len, head) = match out[1] & 0x7f {
            126 if out.len() >= 4 => (usize::from(u16::from_be_bytes([out[2], out[3]])), 4),
            126 | 127 => break,
            len => (usize::from(len), 2),
        };
        if out.len() < head + len {
            break;
        }
        if matches!(out[0] & 0x0f, TEXT | BINARY) {
            echoes.push(out[head..head + len].to_vec());
        }
        out = &out[head + len..];
    }
    echoes
}

/// Checks one run: the end, the echoes (a prefix of what was sent, every
/// message that arrived whole and was echoed before the fault), and a
/// bound on the transport calls.
fn check(adapter: &str, name: &str, fault: Fault, want: End, got: (End, Faulty)) {
    let (end, faulty) = got;
    let (wire, messages, ends) = client_input();
    assert_eq!(end, want, "{adapter}: {name}");
    if let Fault::EndInHead(_) = fault {
        // The client left mid-request: nothing to answer, and the
        // transport was read to its end, not past it.
        assert!(
            faulty.output.is_empty(),
            "{adapter}: {name}: wrote {:?}",
            String::from_utf8_lossy(&faulty.output)
        );
        assert_eq!(faulty.at, faulty.input.len(), "{adapter}: {name}: read");
    }
    let echoes = echoed(&faulty);
    let arrived = match fault {
        Fault::None => messages.len(),
        Fault::EndAt(n) | Fault::ResetAt(n) => ends.iter().filter(|&&e| e <= n).count(),
        Fault::EndInHead(_) => 0,
        Fault::WriteFailsAt(_) => messages.len(),
    };
    assert!(
        echoes.len() <= arrived,
        "{adapter}: {name}: more echoes than messages"
    );
    if !matches!(fault, Fault::WriteFailsAt(_)) {
        assert_eq!(echoes.len(), arrived, "{adapter}: {name}: a message lost");
    }
    for (echo, message) in echoes.iter().zip(&messages) {
        assert_eq!(
            echo.as_slice(),
            message.as_bytes(),
            "{adapter}: {name}: out of order"
        );
    }
    // One byte per call and a hiccup on every other: about four calls a
    // byte each way; a busy loop would make thousands.
    let bytes = REQUEST.len() + wire.len() + faulty.output.len();
    assert!(
        faulty.calls <= 8 * bytes + 64,
        "{adapter}: {name}: {} transport calls for {bytes} bytes",
        faulty.calls
    );
}

#[test]
fn the_blocking_adapter_through_every_fault() {
    let (wire, _, ends) = client_input();
    for (name, fault, want) in cases(&ends, wire.len()) {
        let got = echo_blocking(Faulty::new(fault, &wire));
        check("blocking", name, fault, want, got);
    }
}

/// The table through an async adapter's echo loop: writes may be
/// `Pending` too, and each case is bounded in time.
async fn through_every_fault<Fut>(adapter: &str, echo: fn(Faulty) -> Fut)
where
    Fut: std::future::Future<Output = (End, Faulty)>,
{
    let (wire, _, ends) = client_input();
    for (name, fault, want) in cases(&ends, wire.len()) {
        let stream = Faulty {
            writes_may_block: true,
            ..Faulty::new(fault, &wire)
        };
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), echo(stream))
            .await
            .unwrap_or_else(|_| panic!("{adapter}: {name}: hung"));
        check(adapter, name, fault, want, got);
    }
}

#[tokio::test]
async fn the_tokio_adapter_through_every_fault() {
    through_every_fault("tokio", echo_tokio).await;
}

#[cfg(feature = "embedded-io-async")]
#[tokio::test]
async fn the_embedded_adapter_through_every_fault() {
    through_every_fault("embedded", echo_embedded).await;
}

/// The compio driver: a stream whose shared reference reads and writes
/// (the driver keeps a read in flight while it writes), so the faulty
/// transport sits in a `RefCell`.
#[cfg(feature = "compio")]
mod on_compio {
    use rfc6455::Driver;
    use std::cell::RefCell;
    use std::future::poll_fn;
    use std::io;
    use std::rc::Rc;
    use std::task::Poll;
    use std::time::Duration;

    use compio::buf::{BufResult, IoBuf, IoBufMut, IoVectoredBuf};
    use compio::io::{AsyncRead, AsyncWrite};

    use super::{cases, check, client_input, end_of, End, Faulty};

    /// The transport, shared with the test, which keeps a handle to check
    /// what the run did to it, whether or not the handshake got through.
    struct Shared(Rc<RefCell<Faulty>>);

    /// `Pending` once, with a wake: what `WouldBlock` is to an async stream.
    async fn yield_once() {
        let mut yielded = false;
        poll_fn(|cx| {
            if yielded {
                return Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await
    }

    impl AsyncRead for &Shared {
        async fn read<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
            let mut byte = [0u8; 1];
            loop {
                let read = self.0.borrow_mut().read_byte(&mut byte);
                match read {
                    Ok(n) => {
                        let copied = buf.extend_from_slice(&byte[..n]);
                        return BufResult(copied.map(|()| n).map_err(io::Error::other), buf);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => yield_once().await,
                    Err(e) => return BufResult(Err(e), buf),
                }
            }
        }
    }

    impl AsyncWrite for &Shared {
        async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
            loop {
                let written = self.0.borrow_mut().write_byte(buf.as_init());
                match written {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => yield_once().await,
                    other => return BufResult(other, buf),
                }
            }
        }

        async fn write_vectored<T: IoVectoredBuf>(&mut self, buf: T) -> BufResult<usize, T> {
            let mut first = Vec::new();
            for piece in buf.iter_slice() {
                if !piece.is_empty() {
                    first.extend_from_slice(piece);
                    break;
                }
            }
            let BufResult(written, _) = self.write(first).await;
            BufResult(written, buf)
        }

        async fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }

        async fn shutdown(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    async fn echo_compio(stream: Faulty) -> (End, Faulty) {
        use rfc6455::compio::Error;
        let stream = Rc::new(RefCell::new(stream));
        let seen = || stream.borrow().seen();
        let mut ws = match rfc6455::compio::accept(Shared(stream.clone())).await {
            Ok(ws) => ws,
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return (End::HandshakeEof, seen())
            }
            Err(other) => panic!("handshake: {other:?}"),
        };
        let end = loop {
            match ws.recv().await {
                Ok(Some(message)) => {
                    if let Err(e) = ws.send(&message).await {
                        break end_of(e);
                    }
                }
                Ok(None) => break End::Closed,
                Err(e) => break end_of(e),
            }
        };
        drop(ws);
        (end, seen())
    }

    #[test]
    fn the_compio_driver_through_every_fault() {
        let runtime = compio::runtime::Runtime::new().expect("a compio runtime");
        runtime.block_on(async {
            let (wire, _, ends) = client_input();
            for (name, fault, want) in cases(&ends, wire.len()) {
                let stream = Faulty {
                    writes_may_block: true,
                    ..Faulty::new(fault, &wire)
                };
                let got = compio::time::timeout(Duration::from_secs(10), echo_compio(stream))
                    .await
                    .unwrap_or_else(|_| panic!("compio: {name}: hung"));
                check("compio", name, fault, want, got);
            }
        });
    }
}

/// The HTTP/2 driver (RFC 8441): our client and our server on one HTTP/2
/// connection in memory, the server's transport faulty in the same ways
/// (a byte a call each way, a `Pending` hiccup every third call; then the
/// connection ending, reset, or failing a write, part way through the
/// messages). The WebSocket bytes travel in h2's DATA frames, so the
/// faults are placed by the connection's byte counts of a clean run.
#[cfg(feature = "http2")]
mod on_http2 {
    use rfc6455::Driver;
    use std::io;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};
    use std::time::Duration;

    use rfc6455::handshake::{Accept, ClientRequest, ExtendedConnectClient};
    use rfc6455::http2::{serve_connection, Client, Error, Incoming};
    use rfc6455::{CloseCode, Config, Message};
    use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

    use super::client_input;

    #[derive(Clone, Copy, Debug)]
    enum Fault {
        None,
        /// The server reads end of stream after this many bytes.
        EndAt(usize),
        /// The server's reads fail with a reset after this many bytes.
        ResetAt(usize),
        /// The server's writes fail after this many bytes.
        WriteFailsAt(usize),
    }

    #[derive(Default)]
    struct Counts {
        read: usize,
        written: usize,
        calls: usize,
    }

    struct Faulty {
        inner: DuplexStream,
        fault: Fault,
        counts: Arc<Mutex<Counts>>,
    }

    impl Faulty {
        /// Counts a call; every third is `Pending` (woken at once).
        fn hiccup(&self, cx: &mut Context<'_>) -> bool {
            let mut counts = self.counts.lock().unwrap();
            counts.calls += 1;
            if counts.calls % 3 == 0 {
                cx.waker().wake_by_ref();
                return true;
            }
            false
        }
    }

    impl AsyncRead for Faulty {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if self.hiccup(cx) {
                return Poll::Pending;
            }
            let read = self.counts.lock().unwrap().read;
            match self.fault {
                Fault::EndAt(n) if read >= n => return Poll::Ready(Ok(())),
                Fault::ResetAt(n) if read >= n => {
                    return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
                }
                _ => {}
            }
            let mut byte = [0u8; 1];
            let mut one = ReadBuf::new(&mut byte);
            let polled = Pin::new(&mut self.inner).poll_read(cx, &mut one);
            if let Poll::Ready(Ok(())) = polled {
                buf.put_slice(one.filled());
                self.counts.lock().unwrap().read += one.filled().len();
            }
            polled
        }
    }

    impl AsyncWrite for Faulty {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if self.hiccup(cx) {
                return Poll::Pending;
            }
            let written = self.counts.lock().unwrap().written;
            if let Fault::WriteFailsAt(n) = self.fault {
                if written >= n {
                    return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
                }
            }
            let polled = Pin::new(&mut self.inner).poll_write(cx, &buf[..buf.len().min(1)]);
            if let Poll::Ready(Ok(n)) = polled {
                self.counts.lock().unwrap().written += n;
            }
            polled
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// How a WebSocket ended: closed cleanly, or the error: an I/O error
    /// by its kind (h2's own words differ between its versions), any
    /// other by its text.
    type Outcome = Result<(), Failed>;

    #[derive(Debug, PartialEq)]
    enum Failed {
        Io(io::ErrorKind),
        Other(String),
    }

    fn failed(e: &Error) -> Failed {
        match e {
            Error::Io(e) => Failed::Io(e.kind()),
            other => Failed::Other(other.to_string()),
        }
    }

    struct Run {
        /// The server's echo loop's end (none if it never accepted).
        server: Option<Outcome>,
        /// What the client got back, in order, and how its WebSocket ended.
        echoes: Vec<Message>,
        client: Outcome,
        counts: Counts,
    }

    async fn run(fault: Fault) -> Run {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let counts = Arc::new(Mutex::new(Counts::default()));
        let faulty = Faulty {
            inner: server_io,
            fault,
            counts: counts.clone(),
        };
        let ended: Arc<Mutex<Option<Outcome>>> = Arc::default();
        let server = {
            let ended = ended.clone();
            tokio::spawn(serve_connection(
                faulty,
                Config::default(),
                move |incoming: Incoming| {
                    let ended = ended.clone();
                    async move {
                        let Ok(mut ws) = incoming.accept(Accept::new()) else {
                            return;
                        };
                        let outcome = loop {
                            match ws.recv().await {
                                Ok(Some(message)) => {
                                    if let Err(e) = ws.send(&message).await {
                                        break Err(failed(&e));
                                    }
                                }
                                Ok(None) => break Ok(()),
                                Err(e) => break Err(failed(&e)),
                            }
                        };
                        *ended.lock().unwrap() = Some(outcome);
                    }
                },
            ))
        };
        let (_, messages, _) = client_input();
        let mut echoes = Vec::new();
        let client = async {
            let client = Client::handshake(client_io).await?;
            let connect = ExtendedConnectClient::new(
                &ClientRequest::new("localhost", "/echo"),
                Config::default(),
            )
            .scheme("http");
            let mut ws = client.websocket(connect).await?;
            for message in &messages {
                ws.send(message).await?;
            }
            ws.close(CloseCode::NORMAL, "").await?;
            while let Some(message) = ws.recv().await? {
                echoes.push(message);
            }
            Ok::<(), Error>(())
        };
        let client = client.await.map_err(|e| failed(&e));
        // The server's stream task ends once its connection is gone.
        for _ in 0..200 {
            if ended.lock().unwrap().is_some() || server.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.abort();
        let server = ended.lock().unwrap().take();
        let counts = std::mem::take(&mut *counts.lock().unwrap());
        Run {
            server,
            echoes,
            client,
            counts,
        }
    }

    fn check(name: &str, fault: Fault, got: &Run, clean: &Run) {
        let (_, messages, _) = client_input();
        assert!(
            got.echoes.len() <= messages.len() && got.echoes[..] == messages[..got.echoes.len()],
            "http2: {name}: the echoes are not what was sent, in order: {:?}",
            got.echoes
        );
        match fault {
            Fault::None => {
                assert_eq!(got.echoes, messages, "http2: {name}: a message lost");
                assert_eq!(got.server, Some(Ok(())), "http2: {name}");
                assert_eq!(got.client, Ok(()), "http2: {name}");
            }
            // The server's connection reads its end mid-frame (h2: "bytes
            // remaining on stream", of kind `Other`) or a reset: its
            // WebSocket reports that I/O error; the client's connection
            // then finds the pipe under it gone.
            Fault::EndAt(_) => {
                let eof = Some(Err(Failed::Io(io::ErrorKind::Other)));
                assert_eq!(got.server, eof, "http2: {name}: the server");
                let broken = Err(Failed::Io(io::ErrorKind::BrokenPipe));
                assert_eq!(got.client, broken, "http2: {name}: the client");
            }
            Fault::ResetAt(_) => {
                let reset = Some(Err(Failed::Io(io::ErrorKind::ConnectionReset)));
                assert_eq!(got.server, reset, "http2: {name}: the server");
                let broken = Err(Failed::Io(io::ErrorKind::BrokenPipe));
                assert_eq!(got.client, broken, "http2: {name}: the client");
            }
            // The server's answers go to h2's buffers; the connection's
            // failed write reaches its WebSockets only at their next call,
            // so one that had the client's Close already ends cleanly (as
            // over TCP, where a write the kernel took may never arrive).
            // The client's connection ends mid-frame (kind `Other`, as
            // above), its Close unanswered.
            Fault::WriteFailsAt(_) => {
                assert_eq!(got.server, Some(Ok(())), "http2: {name}: the server");
                let eof = Err(Failed::Io(io::ErrorKind::Other));
                assert_eq!(got.client, eof, "http2: {name}: the client");
            }
        }
        // A byte a call and a hiccup every third: a busy loop would make
        // many times the calls of the clean run.
        let bytes = clean.counts.read + clean.counts.written;
        assert!(
            got.counts.calls <= 4 * bytes + 64,
            "http2: {name}: {} transport calls, for {bytes} bytes in a clean run",
            got.counts.calls
        );
    }

    #[tokio::test]
    async fn the_http2_driver_through_every_fault() {
        let limit = Duration::from_secs(10);
        let clean = tokio::time::timeout(limit, run(Fault::None))
            .await
            .expect("http2: hung without a fault");
        check(
            "a byte at a time, with hiccups",
            Fault::None,
            &clean,
            &clean,
        );
        let (read, written) = (clean.counts.read, clean.counts.written);
        let cases = [
            ("the connection ends part way", Fault::EndAt(read * 2 / 3)),
            ("a reset part way", Fault::ResetAt(read * 5 / 6)),
            ("a write fails part way", Fault::WriteFailsAt(written / 2)),
        ];
        for (name, fault) in cases {
            let got = tokio::time::timeout(limit, run(fault))
                .await
                .unwrap_or_else(|_| panic!("http2: {name}: hung"));
            check(name, fault, &got, &clean);
            eprintln!(
                "http2: {name}: {} of 3 echoed; server: {:?}; client: {:?}",
                got.echoes.len(),
                got.server,
                got.client
            );
        }
    }
}
