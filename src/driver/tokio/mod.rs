//! An async driver over tokio's `AsyncRead + AsyncWrite` (feature `tokio`).
//!
//! Like the [`blocking`](crate::blocking) driver it only moves bytes
//! between a stream and a [`Connection`](crate::Connection); every protocol decision is the
//! core's. It adds what an async program expects: a [`Stream`](futures_core::Stream) of incoming
//! messages, a [`Sink`](futures_sink::Sink) for outgoing ones, and halves that can live in
//! different tasks.
//!
//! ```no_run
//! # async fn run() -> Result<(), rfc6455::tokio::Error> {
//! use rfc6455::Driver;
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! let (stream, _) = listener.accept().await?;
//! let mut ws = rfc6455::tokio::accept(stream).await?;
//! while let Some(message) = ws.recv().await? {
//!     // Queued; written when `recv` next waits for the peer.
//!     ws.queue(&message).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! # Timers
//!
//! The core keeps every deadline ([`Config::timeouts`]: the handshake, the
//! closing handshake, the heartbeat, the idle peer); the driver sleeps
//! until the core's next deadline or the next bytes, whichever comes
//! first, and tells the core the time. The clock is tokio's, so a test
//! that pauses tokio's time controls the timers too.
//!
//! # Cancel safety
//!
//! [`recv`](crate::Driver::recv) keeps all of its state in the connection, not in
//! the future: dropping a `recv` future (a `select!` branch that lost)
//! loses no bytes and no message; the next `recv` continues where it was.
//!
//! # Writing and backpressure
//!
//! [`WebSocket::send`] queues the frame and writes until everything queued
//! has gone to the stream. [`queue`](crate::Driver::queue) and the [`Sink`](futures_sink::Sink) impl (`feed`) queue
//! instead: they wait only while more than [`HIGH_WATER`] bytes are unsent.
//! What they queue goes out on [`flush`](WebSocket::flush), or when
//! [`recv`](crate::Driver::recv) has decoded everything received and is about
//! to wait for the peer. So a server that answers each message with `queue`
//! writes the answers to a burst of requests with one system call, and
//! still answers a lone request at once.
//!
//! While the program only reads, Pongs and Close replies still go out:
//! reading writes whatever the connection queued before it waits.
//!
//! # Memory
//!
//! Reads go straight into the connection's receive buffer. When a
//! connection waits for its peer with nothing half-received or unsent, its
//! buffers go to a pool of the thread it runs on, and the next connection
//! with bytes to read or send takes them from there: an idle connection
//! holds no buffer, and steady traffic allocates none. The pool keeps at
//! most 32 MiB per thread (sets over 256 KiB are freed instead), which a
//! thread reaches only after that much traffic was in flight at once.
//!
//! A received message shares the receive buffer it arrived in: keeping a
//! small message for long keeps that buffer's memory allocated. Copy what
//! you store for long (`Bytes::copy_from_slice`).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::future::Future;

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::driver::opening;
pub use crate::driver::{Connector, Error, TokioClock, WsUrl};
use crate::handshake::{Accept, ClientRequest, Request};
use crate::Config;

mod dial;
mod engine;
mod split;
mod stream;
mod websocket;

pub use dial::{connect, connect_with, connect_with_connector, MaybeTlsStream};
pub use split::{ReadHalf, WriteHalf};
pub use websocket::WebSocket;

/// The clock the driver reads for the core: tokio's, which tests can
/// pause and advance.
type Time = tokio::time::Instant;

/// Pieces of output passed to one vectored write.
const WRITE_SLICES: usize = 64;

/// How much each read asks for, unless a large frame needs more.
const READ_BUF: usize = 32 * 1024;

pub use crate::socket::{Offered, WhenFull, HIGH_WATER};

/// Accepts a client on `stream` with the default configuration, no
/// subprotocol and no check of Origin.
pub fn accept<S>(stream: S) -> impl Future<Output = Result<WebSocket<S>, Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(stream, Config::default(), |_| Ok(Accept::new()))
}

/// Accepts a client on `stream`, letting `decide` look at the request.
///
/// `decide` returns the [`Accept`] options, or a status and reason to
/// refuse with; the refusal is sent and the call fails with
/// [`Error::Handshake`]. A malformed request gets its 400, 426 or 431
/// response the same way. The whole handshake must finish within
/// [`Timeouts::handshake`](crate::Timeouts::handshake), or the client gets
/// a 408 and the call fails with [`Error::Timeout`].
pub fn accept_with<S, F>(
    mut stream: S,
    config: Config,
    decide: F,
) -> impl Future<Output = Result<WebSocket<S>, Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, (u16, String)>,
{
    // The whole handshake (its timer, parser, buffer, and the arguments it
    // holds until it starts) is one boxed future, so the caller's task
    // holds a pointer to it: inline, it would set the size of every
    // connection's task for the whole life of the connection, though it
    // is done in milliseconds.
    Box::pin(async move {
        let mut head = Head::new(&mut stream);
        let (conn, protocol) = opening::accept(&mut head, &TokioClock, config, decide).await?;
        Ok(WebSocket::with_protocol(stream, conn, protocol))
    })
}

/// Reads one HTTP request head from `stream`, within the handshake timeout
/// of `config`.
///
/// For servers that answer plain HTTP and WebSocket on one listener: look
/// at [`Request::path`] and [`Request::is_upgrade`], then either write your
/// own HTTP response, or finish the upgrade with [`accept_request`]. A
/// malformed head gets its 400 or 431 response here (a head too slow to
/// arrive, 408), and an error.
pub async fn read_request<S>(stream: &mut S, config: Config) -> Result<Request, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    Box::pin(opening::read_request(
        &mut Head::new(stream),
        &TokioClock,
        config,
    ))
    .await
}

/// Finishes the upgrade of a request read with [`read_request`]: checks it
/// (answering 400, 405 or 426 if it is not a valid upgrade), sends the 101
/// response within what is left of the handshake's time, and returns the
/// WebSocket.
pub async fn accept_request<S>(
    mut stream: S,
    request: Request,
    options: Accept,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = Head::new(&mut stream);
    let (conn, protocol) =
        opening::accept_request(&mut head, &TokioClock, request, options).await?;
    Ok(WebSocket::with_protocol(stream, conn, protocol))
}

/// Performs the client handshake on `stream` for a `ws://` or `wss://` URL
/// (the URL gives the Host field and the path; the stream is already open).
pub async fn client<S>(stream: S, url: &str) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let url = WsUrl::parse(url)?;
    client_with(stream, &url.request(), Config::default()).await
}

/// Performs the client handshake on `stream` with a full request, within
/// [`Timeouts::handshake`](crate::Timeouts::handshake).
pub async fn client_with<S>(
    mut stream: S,
    request: &ClientRequest,
    config: Config,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = Head::new(&mut stream);
    let (conn, protocol) = opening::client(&mut head, &TokioClock, request, config).await?;
    Ok(WebSocket::with_protocol(stream, conn, protocol))
}

/// The opening handshake's reads and writes, on the stream.
struct Head<'a, S> {
    stream: &'a mut S,
    /// On the heap: a buffer inside the future would stay allocated with
    /// the connection's task for as long as the connection lives. Made at
    /// the first read (`accept_request` writes only).
    buf: Vec<u8>,
}

impl<'a, S> Head<'a, S> {
    fn new(stream: &'a mut S) -> Self {
        Head {
            stream,
            buf: Vec::new(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> opening::Head for Head<'_, S> {
    type Error = Error;

    async fn read_head(&mut self) -> Result<&[u8], Error> {
        if self.buf.is_empty() {
            self.buf = vec![0; 4096];
        }
        let n = self.stream.read(&mut self.buf).await?;
        if n == 0 {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the stream ended during the opening handshake",
            )));
        }
        Ok(&self.buf[..n])
    }

    async fn write_head(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.stream.write_all(bytes).await?;
        Ok(self.stream.flush().await?)
    }

    async fn end(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}
