//! A driver on [compio], a completion-based runtime: io_uring on Linux
//! (feature `compio`).
//!
//! An epoll-based driver makes one `read` and one `write` system call per
//! message and connection. Here the kernel is handed reads and writes to
//! perform, and the runtime submits every connection's operations of one
//! turn of its loop in one system call, and reaps their completions
//! together. The protocol is the core's, as in every driver: this module
//! moves bytes between the socket and a [`Connection`](crate::Connection), tells the core the
//! time, and sleeps until the core's next deadline.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use rfc6455::Driver;
//!
//! rfc6455::compio::runtime()?.block_on(async {
//!     let listener = compio::net::TcpListener::bind("127.0.0.1:9001").await?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         compio::runtime::spawn(async move {
//!             let mut ws = rfc6455::compio::accept(stream).await?;
//!             while let Some(message) = ws.recv().await? {
//!                 ws.queue(&message).await?;
//!             }
//!             Ok::<_, rfc6455::compio::Error>(())
//!         })
//!         .detach();
//!     }
//! })
//! # }
//! ```
//!
//! # Owned buffers
//!
//! The kernel fills a read's buffer after the call that asked for it has
//! returned, so the buffer cannot be borrowed: the driver takes the spare
//! room of the connection's receive buffer as an owned buffer
//! ([`Plumbing::read_buffer_owned`](crate::plumbing::Plumbing::read_buffer_owned)) and hands it back filled
//! ([`Plumbing::handle_read_owned`](crate::plumbing::Plumbing::handle_read_owned)), which joins it in place. Writes take
//! the pending output as owned [`Bytes`](bytes::Bytes)
//! ([`Plumbing::take_output`](crate::plumbing::Plumbing::take_output)): an echoed payload goes out without a copy.
//!
//! # Cancellation
//!
//! A read stays in flight while the driver writes, between calls to
//! [`recv`](crate::Driver::recv), and when a `recv` future is dropped (in a
//! `select!`, say): its bytes are kept for the next `recv`, never lost. A
//! dropped `send` may have written part of a frame; the connection cannot
//! be used after that, as with any driver.
//!
//! # Streams
//!
//! compio's [`TcpStream`] and `UnixStream`: a stream whose shared reference
//! reads and writes, so that a read can wait in the kernel while a write
//! goes out. TLS and proxies are not offered here (use the tokio driver
//! for `wss://`).
use alloc::string::String;
use alloc::vec::Vec;
use std::io;

use compio::buf::BufResult;
use compio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use compio::net::TcpStream;

use super::opening;
pub use super::{Error, WsUrl};
use crate::handshake::{Accept, ClientRequest, Request};
use crate::socket;
use crate::Config;

mod stream;

pub use stream::{CompioClock, Io};

/// The clock the core is told: the standard library's monotonic clock,
/// which compio's timers use too.
type Time = std::time::Instant;

/// The buffer for a handshake head.
const HEAD_READ: usize = 4096;

/// A WebSocket over a compio stream: the [shared driver loop](crate::socket)
/// over [`Io`], on compio's timers.
pub type WebSocket<S> = socket::WebSocket<Io<S>, CompioClock>;

/// A compio runtime set up for many sockets on one thread: io_uring with a
/// single issuer and deferred task work, so that the kernel finishes
/// receives when the runtime asks for completions, in a batch, instead of
/// interrupting the thread for each one (`IORING_SETUP_SINGLE_ISSUER |
/// IORING_SETUP_DEFER_TASKRUN`, Linux 6.1; on an older kernel compio
/// leaves out what it lacks). The settings measured in the benchmark's echo
/// part; any compio runtime runs the driver.
pub fn runtime() -> io::Result<compio::runtime::Runtime> {
    let mut proactor = compio::driver::ProactorBuilder::new();
    proactor
        .single_issuer(true)
        .defer_taskrun(true)
        .coop_taskrun(true)
        .taskrun_flag(true);
    compio::runtime::RuntimeBuilder::new()
        .with_proactor(proactor)
        .build()
}

/// Accepts a client on `stream` with the default configuration, no
/// subprotocol and no check of Origin.
pub async fn accept<S>(stream: S) -> Result<WebSocket<S>, Error>
where
    S: 'static,
    for<'a> &'a S: AsyncRead + AsyncWrite,
{
    accept_with(stream, Config::default(), |_| Ok(Accept::new())).await
}

/// Accepts a client on `stream`, letting `decide` look at the request.
///
/// `decide` returns the [`Accept`] options, or a status and reason to
/// refuse with; the refusal is sent and the call fails with
/// [`Error::Handshake`]. A malformed request gets its 400, 426 or 431
/// response the same way. The whole handshake must finish within
/// [`Timeouts::handshake`](crate::Timeouts::handshake), or the client gets
/// a 408 and the call fails with [`Error::Timeout`].
pub async fn accept_with<S, F>(stream: S, config: Config, decide: F) -> Result<WebSocket<S>, Error>
where
    S: 'static,
    for<'a> &'a S: AsyncRead + AsyncWrite,
    F: FnOnce(&Request) -> Result<Accept, (u16, String)>,
{
    let mut head = Head::new(&stream);
    let (conn, protocol) = opening::accept(&mut head, &CompioClock, config, decide).await?;
    Ok(WebSocket::with_protocol(
        Io::new(stream),
        CompioClock,
        conn,
        protocol,
    ))
}

/// The opening handshake's reads and writes, on the stream.
struct Head<'a, S> {
    stream: &'a S,
    /// The buffer each read fills (handed to the kernel and back).
    buf: Vec<u8>,
}

impl<'a, S> Head<'a, S> {
    fn new(stream: &'a S) -> Self {
        Head {
            stream,
            buf: Vec::new(),
        }
    }
}

impl<S> opening::Head for Head<'_, S>
where
    for<'a> &'a S: AsyncRead + AsyncWrite,
{
    type Error = Error;

    async fn read_head(&mut self) -> Result<&[u8], Error> {
        // Empty after a read that was cancelled at a deadline: the buffer
        // went with the kernel's operation.
        let mut buf = core::mem::take(&mut self.buf);
        if buf.capacity() == 0 {
            buf = Vec::with_capacity(HEAD_READ);
        }
        buf.clear();
        let mut reader = self.stream;
        let BufResult(read, buf) = reader.read(buf).await;
        self.buf = buf;
        match read? {
            0 => Err(Error::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the stream ended during the opening handshake",
            ))),
            _ => Ok(&self.buf),
        }
    }

    async fn write_head(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let mut writer = self.stream;
        writer.write_all(bytes.to_vec()).await.0?;
        Ok(())
    }

    async fn end(&mut self) {
        let mut writer = self.stream;
        let _ = writer.shutdown().await;
    }
}

/// Connects to a `ws://` URL and performs the handshake.
pub async fn connect(url: &str) -> Result<WebSocket<TcpStream>, Error> {
    connect_with(url, Config::default()).await
}

/// [`connect`] with a configuration of your choice.
pub async fn connect_with(url: &str, config: Config) -> Result<WebSocket<TcpStream>, Error> {
    let url = WsUrl::parse(url)?;
    if url.secure {
        return Err(Error::Tls(
            "wss:// is not offered by the compio driver (the tokio driver has TLS)".into(),
        ));
    }
    let tcp = TcpStream::connect(url.socket_addr()).await?;
    tcp.set_nodelay(true)?;
    client_with(tcp, &url.request(), config).await
}

/// Performs the client handshake on `stream` for a `ws://` URL (the URL
/// gives the Host field and the path; the stream is already open).
pub async fn client<S>(stream: S, url: &str) -> Result<WebSocket<S>, Error>
where
    S: 'static,
    for<'a> &'a S: AsyncRead + AsyncWrite,
{
    let url = WsUrl::parse(url)?;
    client_with(stream, &url.request(), Config::default()).await
}

/// Performs the client handshake on an open `stream` with a full request,
/// within [`Timeouts::handshake`](crate::Timeouts::handshake).
pub async fn client_with<S>(
    stream: S,
    request: &ClientRequest,
    config: Config,
) -> Result<WebSocket<S>, Error>
where
    S: 'static,
    for<'a> &'a S: AsyncRead + AsyncWrite,
{
    let mut head = Head::new(&stream);
    let (conn, protocol) = opening::client(&mut head, &CompioClock, request, config).await?;
    Ok(WebSocket::with_protocol(
        Io::new(stream),
        CompioClock,
        conn,
        protocol,
    ))
}
