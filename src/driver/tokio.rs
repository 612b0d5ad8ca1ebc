//! An async adapter over tokio's `AsyncRead + AsyncWrite` (feature `tokio`).
//!
//! Like the [`blocking`](crate::blocking) adapter it only moves bytes
//! between a stream and a [`Connection`]; every protocol decision is the
//! core's. It adds what an async program expects: a [`Stream`] of incoming
//! messages, a [`Sink`] for outgoing ones, and halves that can live in
//! different tasks.
//!
//! ```no_run
//! # async fn run() -> Result<(), rfc6455::tokio::Error> {
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
//! closing handshake, the heartbeat, the idle peer); the adapter sleeps
//! until the core's next deadline or the next bytes, whichever comes
//! first, and tells the core the time. The clock is tokio's, so a test
//! that pauses tokio's time controls the timers too.
//!
//! # Cancel safety
//!
//! [`WebSocket::recv`] keeps all of its state in the connection, not in
//! the future: dropping a `recv` future (a `select!` branch that lost)
//! loses no bytes and no message; the next `recv` continues where it was.
//!
//! # Writing and backpressure
//!
//! [`WebSocket::send`] queues the frame and writes until everything queued
//! has gone to the stream. [`WebSocket::queue`] and the [`Sink`] impl (`feed`) queue
//! instead: they wait only while more than [`HIGH_WATER`] bytes are unsent.
//! What they queue goes out on [`flush`](WebSocket::flush), or when
//! [`recv`](WebSocket::recv) has decoded everything received and is about
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
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll, Wake, Waker};

use bytes::BytesMut;
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Sleep;

use super::policy::offer as policy_offer;
use super::{received, Alarm, Clock, Timer};
pub use super::{Connector, Error, WsUrl};
use crate::handshake::{
    Accept, ClientHandshake, ClientRequest, HandshakeError, Progress, Request, ServerHandshake,
};
use crate::proxy::{Proxy, ProxyError, ProxyHandshake};
use crate::{
    CloseCode, Closed, Config, Connection, Event, Message, MessageKind, PreparedMessage, State,
    Timestamp,
};

/// The clock the adapter reads for the core: tokio's, which tests can
/// pause and advance.
type Time = tokio::time::Instant;

/// tokio's timers, on tokio's clock (which tests can pause and advance):
/// the clock of the drivers that run on tokio ([`http2`](crate::http2)).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

impl crate::socket::Clock for TokioClock {
    fn now(&self) -> Timestamp {
        Time::timestamp()
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        tokio::time::sleep_until(Time::at(deadline)).await;
    }
}

/// Pieces of output passed to one vectored write.
const WRITE_SLICES: usize = 64;

/// How much each read asks for, unless a large frame needs more.
const READ_BUF: usize = 32 * 1024;

/// Buffers of connections that wait for their peer, kept per thread for
/// the next connection that has work: a waiting connection holds no
/// buffer memory, and steady traffic allocates none.
mod pool {
    use alloc::vec::Vec;
    use std::cell::RefCell;
    use std::thread_local;

    use crate::Buffers;

    /// The most buffer memory kept per thread.
    const MAX_BYTES: usize = 32 << 20;
    /// Larger sets (left by a big message) are freed, not kept.
    const MAX_KEPT: usize = 256 * 1024;

    #[derive(Default)]
    struct Pool {
        sets: Vec<Buffers>,
        bytes: usize,
    }

    thread_local! {
        static POOL: RefCell<Pool> = RefCell::new(Pool::default());
    }

    pub(super) fn put(buffers: Buffers) {
        let size = buffers.capacity();
        if size <= MAX_KEPT {
            // During thread teardown the pool may be gone: then just free.
            let _ = POOL.try_with(|pool| {
                let mut pool = pool.borrow_mut();
                if pool.bytes + size <= MAX_BYTES {
                    pool.bytes += size;
                    pool.sets.push(buffers);
                }
            });
        }
    }

    /// Gives `conn` pooled buffers if it has none.
    pub(super) fn lend(conn: &mut crate::Connection) {
        if conn.needs_buffers() {
            if let Some(buffers) = take() {
                conn.give_buffers(buffers);
            }
        }
    }

    fn take() -> Option<Buffers> {
        POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            let buffers = pool.sets.pop()?;
            pool.bytes -= buffers.capacity();
            Some(buffers)
        })
        .ok()
        .flatten()
    }
}

pub use crate::socket::{Offered, WhenFull, HIGH_WATER};

/// A WebSocket over an async stream.
#[derive(Debug)]
pub struct WebSocket<S> {
    inner: Inner<S>,
}

/// Accepts a client on `stream` with the default configuration, no
/// subprotocol and no check of Origin.
pub async fn accept<S>(stream: S) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
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
pub async fn accept_with<S, F>(
    mut stream: S,
    config: Config,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request) -> Result<Accept, (u16, String)>,
{
    // The handshake's futures (its timer, parser and buffers) are boxed:
    // inline, they would set the size of every connection's task for the
    // whole life of the connection, though they are done in milliseconds.
    let request = Box::pin(read_request(&mut stream, config)).await?;
    let options = match decide(&request) {
        Ok(options) => options,
        Err((status, reason)) => {
            write_and_close(&mut stream, &request.reject(status, &reason)).await;
            return Err(Error::Handshake(HandshakeError::Rejected(status)));
        }
    };
    Box::pin(accept_request(stream, request, options)).await
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
    let mut handshake = ServerHandshake::new(config);
    // On the heap: a buffer inside the future would stay allocated with
    // the connection's task for as long as the connection lives.
    let mut buf = vec![0; 4096];
    loop {
        if let Err(e) = handshake.handle_timeout(Time::timestamp()) {
            return Err(refuse(stream, e).await);
        }
        // Woken by the deadline: the core says what it means, above.
        let Some(n) = until(handshake.poll_timeout(), read_some(stream, &mut buf)).await else {
            continue;
        };
        handshake = match handshake.handle_read(&buf[..n?]) {
            Ok(Progress::Partial(handshake)) => handshake,
            Ok(Progress::Done(request)) => return Ok(request),
            Err(e) => return Err(refuse(stream, e).await),
        };
    }
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
    let deadline = request.deadline();
    let accepted = match request.accept(options) {
        Ok(accepted) => accepted,
        Err(e) => return Err(refuse(&mut stream, e).await),
    };
    let write = async {
        stream.write_all(&accepted.response).await?;
        stream.flush().await
    };
    match until(deadline, write).await {
        Some(written) => written?,
        None => return Err(HandshakeError::Timeout.into()),
    }
    Ok(WebSocket {
        inner: Inner::new(stream, accepted.connection, accepted.protocol),
    })
}

/// Connects to a `ws://` or `wss://` URL and performs the handshake:
/// through the proxy the environment names, if any, and for `wss://`
/// with TLS from a `rustls-tls-*` feature (see [`Connector`]).
pub async fn connect(url: &str) -> Result<WebSocket<MaybeTlsStream>, Error> {
    connect_with(url, Config::default()).await
}

/// [`connect`] with a configuration of your choice.
pub async fn connect_with(url: &str, config: Config) -> Result<WebSocket<MaybeTlsStream>, Error> {
    connect_with_connector(url, config, &Connector::new()).await
}

/// [`connect`] with a configuration, and a [`Connector`] that says which
/// proxy and which TLS configuration to use.
pub async fn connect_with_connector(
    url: &str,
    config: Config,
    connector: &Connector,
) -> Result<WebSocket<MaybeTlsStream>, Error> {
    use tokio::net::TcpStream;
    let url = WsUrl::parse(url)?;
    let tcp = match connector.proxy_for(&url)? {
        Some(proxy) => {
            let mut tcp = TcpStream::connect((proxy.host.as_str(), proxy.port)).await?;
            tunnel(&mut tcp, &proxy, &url).await?;
            tcp
        }
        None => TcpStream::connect(url.socket_addr()).await?,
    };
    tcp.set_nodelay(true)?;
    let stream = if url.secure {
        secure(tcp, &url.host, connector).await?
    } else {
        MaybeTlsStream::Plain(tcp)
    };
    client_with(stream, &url.request(), config).await
}

/// Opens the tunnel through `proxy` to `url`'s host and port.
async fn tunnel(tcp: &mut tokio::net::TcpStream, proxy: &Proxy, url: &WsUrl) -> Result<(), Error> {
    let mut handshake = ProxyHandshake::new(proxy, &url.host, url.port);
    let mut buf = [0u8; 512];
    while !handshake.is_done() {
        if !handshake.output().is_empty() {
            tcp.write_all(handshake.output()).await?;
            let n = handshake.output().len();
            handshake.consume_output(n);
            continue;
        }
        let limit = handshake.read_limit().min(buf.len());
        let n = tcp.read(&mut buf[..limit]).await?;
        if n == 0 {
            return Err(Error::Proxy(ProxyError::Malformed(
                "the proxy closed the connection",
            )));
        }
        handshake.handle_read(&buf[..n])?;
    }
    Ok(())
}

/// TLS over `tcp` for `host`.
#[cfg(feature = "rustls")]
async fn secure(
    tcp: tokio::net::TcpStream,
    host: &str,
    connector: &Connector,
) -> Result<MaybeTlsStream, Error> {
    use super::{server_name, tls_error};
    let connector_tls = tokio_rustls::TlsConnector::from(connector.tls_config()?);
    let tls = connector_tls
        .connect(server_name(host)?, tcp)
        .await
        .map_err(|e| tls_error(host, e))?;
    Ok(MaybeTlsStream::Rustls(Box::new(tls)))
}

#[cfg(not(feature = "rustls"))]
async fn secure(
    _tcp: tokio::net::TcpStream,
    _host: &str,
    _connector: &Connector,
) -> Result<MaybeTlsStream, Error> {
    Err(super::no_tls())
}

/// The stream [`connect`] opens: TCP for `ws://`, TLS over TCP for
/// `wss://`.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// `ws://`.
    Plain(tokio::net::TcpStream),
    /// `wss://`, with rustls.
    #[cfg(feature = "rustls")]
    Rustls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP stream underneath.
    pub fn get_ref(&self) -> &tokio::net::TcpStream {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.get_ref().0,
        }
    }
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.is_write_vectored(),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
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
    let mut handshake = ClientHandshake::new(request, config);
    handshake.handle_timeout(Time::timestamp())?;
    let deadline = handshake.poll_timeout();
    let exchange = async {
        stream.write_all(handshake.request()).await?;
        stream.flush().await?;
        let mut buf = vec![0; 4096];
        loop {
            let n = read_some(&mut stream, &mut buf).await?;
            handshake = match handshake.handle_read(&buf[..n])? {
                Progress::Partial(handshake) => handshake,
                Progress::Done(connected) => {
                    return Ok::<_, Error>((connected.connection, connected.response.protocol))
                }
            };
        }
    };
    let (conn, protocol) = match until(deadline, exchange).await {
        Some(done) => done?,
        None => return Err(HandshakeError::Timeout.into()),
    };
    Ok(WebSocket {
        inner: Inner::new(stream, conn, protocol),
    })
}

/// Runs `work` until the core's `deadline`, if there is one; `None` if the
/// deadline came first.
async fn until<T>(deadline: Option<Timestamp>, work: impl Future<Output = T>) -> Option<T> {
    match deadline {
        Some(at) => tokio::time::timeout_at(Time::at(at), work).await.ok(),
        None => Some(work.await),
    }
}

/// One read during the handshake; end of stream is an error.
async fn read_some<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut [u8]) -> Result<usize, Error> {
    let n = tokio::io::AsyncReadExt::read(stream, buf).await?;
    if n == 0 {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the stream ended during the opening handshake",
        )));
    }
    Ok(n)
}

/// Sends the HTTP response for a failed handshake and closes; returns
/// the error.
async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, e: HandshakeError) -> Error {
    write_and_close(stream, &e.response()).await;
    e.into()
}

/// Sends an HTTP error response and closes, ignoring failures: the
/// handshake has failed already.
async fn write_and_close<S: AsyncWrite + Unpin>(stream: &mut S, response: &[u8]) {
    let _ = stream.write_all(response).await;
    let _ = stream.shutdown().await;
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Wraps a stream on which the handshake already happened. The
    /// connection's timers run from now, on the adapter's clock.
    pub fn from_connection(stream: S, mut conn: Connection) -> Self {
        conn.handle_timeout(Time::timestamp());
        WebSocket {
            inner: Inner::new(stream, conn, None),
        }
    }

    /// The next data message. Pings are answered on the way. `Ok(None)`:
    /// the connection closed cleanly; see [`closed`](WebSocket::closed).
    /// `Err(Error::Protocol(_))`: the peer broke the protocol and we sent
    /// it a Close frame saying so. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<Message>, Error> {
        poll_fn(|cx| self.inner.poll_message(cx, Side::Reader)).await
    }

    /// The next event of any kind, [`Event::Closed`] last (and again on
    /// every later call). Cancel-safe.
    pub async fn recv_event(&mut self) -> Result<Event, Error> {
        poll_fn(|cx| self.inner.poll_event(cx, Side::Reader)).await
    }

    /// Sends a message in one frame and writes it out.
    pub async fn send(&mut self, message: &Message) -> Result<(), Error> {
        self.inner.sender().send_message(message)?;
        self.flush().await
    }

    /// Queues a message in one frame without writing it, unless more than
    /// [`HIGH_WATER`] bytes are waiting (then it writes until fewer are).
    ///
    /// The frame goes out on [`flush`](WebSocket::flush), on a later
    /// `send`, or when [`recv`](WebSocket::recv) is about to wait for the
    /// peer: the pattern for a loop that answers what it receives, which
    /// then writes all the answers to a burst of messages at once. A task
    /// that only sends should use [`send`](WebSocket::send), or flush.
    pub async fn queue(&mut self, message: &Message) -> Result<(), Error> {
        self.inner.sender().send_message(message)?;
        self.write_below_high_water().await
    }

    /// Sends a message prepared for many connections
    /// ([`PreparedMessage`]: encoded once, its payload shared) and writes
    /// it out.
    pub async fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.inner.sender().send_prepared(prepared)?;
        self.flush().await
    }

    /// Queues a prepared message as [`queue`](WebSocket::queue) queues a
    /// message.
    pub async fn queue_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.inner.sender().send_prepared(prepared)?;
        self.write_below_high_water().await
    }

    /// Writes until fewer than [`HIGH_WATER`] bytes wait (at once if
    /// fewer already do): what [`queue`](WebSocket::queue) waits for.
    async fn write_below_high_water(&mut self) -> Result<(), Error> {
        let Inner { io, conn, .. } = &mut self.inner;
        poll_fn(|cx| io.poll_write_down_to(conn, cx, Side::Writer, HIGH_WATER - 1)).await
    }

    /// Offers a prepared message without waiting, as
    /// [`WriteHalf::offer`] does: queued unless more than `backlog` bytes
    /// wait, else `when_full` decides. What the stream does not take at
    /// once goes out when [`recv`](WebSocket::recv) next waits for the
    /// peer, or on [`flush`](WebSocket::flush).
    pub fn offer(
        &mut self,
        prepared: &PreparedMessage,
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, Error> {
        self.offer_many(core::slice::from_ref(prepared), backlog, when_full)
    }

    /// Offers several prepared messages in order, as
    /// [`WriteHalf::offer_many`] does.
    pub fn offer_many(
        &mut self,
        messages: &[PreparedMessage],
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, Error> {
        self.inner.offer(messages, backlog, when_full)
    }

    /// Sends a text message and writes it out.
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.inner.sender().send_text(text)?;
        self.flush().await
    }

    /// Sends a message from a buffer handed over, without copying a large
    /// one ([`Connection::send_owned`]: a client masks it in place), and
    /// writes it out.
    pub async fn send_owned(&mut self, kind: MessageKind, payload: BytesMut) -> Result<(), Error> {
        self.inner.sender().send_owned(kind, payload)?;
        self.flush().await
    }

    /// Sends a binary message and writes it out.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.inner.sender().send_binary(data)?;
        self.flush().await
    }

    /// Sends a message in frames of `fragment_size` bytes and writes it out.
    pub async fn send_fragmented(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fragment_size: usize,
    ) -> Result<(), Error> {
        self.inner
            .sender()
            .send_fragmented(kind, data, fragment_size)?;
        self.flush().await
    }

    /// Sends a Ping. The Pong arrives as [`Event::Pong`].
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.inner.sender().ping(payload)?;
        self.flush().await
    }

    /// Starts the closing handshake. Keep calling [`recv`](WebSocket::recv)
    /// until it returns `Ok(None)` to let the peer answer; the closing
    /// timeout bounds the wait.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.inner.sender().close(code, reason)?;
        self.flush().await
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        if self.inner.io.flush_now(&mut self.inner.conn) {
            return Ok(());
        }
        poll_fn(|cx| self.inner.poll_flush_output(cx, Side::Writer)).await
    }

    /// How the connection ended, once it has.
    pub fn closed(&self) -> Option<&Closed> {
        self.inner.closed.as_ref()
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.inner.protocol.as_deref()
    }

    /// The sans-IO connection underneath.
    pub fn connection(&self) -> &Connection {
        &self.inner.conn
    }

    /// The sans-IO connection underneath, for commands the adapter does
    /// not wrap. Call [`flush`](WebSocket::flush) after queueing output.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.inner.conn
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.inner.io.stream
    }

    /// Splits into a reading half and a writing half that can be used from
    /// different tasks. The reading half also writes what the protocol
    /// itself asks for (Pongs, Close replies), so a task that only reads
    /// keeps the connection healthy.
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        let shared = Arc::new(Mutex::new(self.inner));
        (
            ReadHalf {
                shared: shared.clone(),
            },
            WriteHalf { shared },
        )
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let inner = &mut self.get_mut().inner;
        inner.poll_next_item(cx, Side::Reader)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_ready(cx, Side::Writer)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        Ok(self.get_mut().inner.sender().send_message(&message)?)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_flush_output(cx, Side::Writer)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_close_sink(cx, Side::Writer)
    }
}

/// The reading half of a split [`WebSocket`].
#[derive(Debug)]
pub struct ReadHalf<S> {
    shared: Arc<Mutex<Inner<S>>>,
}

/// The writing half of a split [`WebSocket`].
#[derive(Debug)]
pub struct WriteHalf<S> {
    shared: Arc<Mutex<Inner<S>>>,
}

fn lock<S>(shared: &Mutex<Inner<S>>) -> MutexGuard<'_, Inner<S>> {
    // A panic while holding the lock can only come from a bug in this
    // module; the state is still consistent enough to report errors.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// The next data message; see [`WebSocket::recv`]. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<Message>, Error> {
        poll_fn(|cx| lock(&self.shared).poll_message(cx, Side::Reader)).await
    }

    /// The next event of any kind; see [`WebSocket::recv_event`]. Cancel-safe.
    pub async fn recv_event(&mut self) -> Result<Event, Error> {
        poll_fn(|cx| lock(&self.shared).poll_event(cx, Side::Reader)).await
    }
}

impl<S> ReadHalf<S> {
    /// How the connection ended, once it has.
    pub fn closed(&self) -> Option<Closed> {
        lock(&self.shared).closed.clone()
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<String> {
        lock(&self.shared).protocol.clone()
    }
}

impl<S> WriteHalf<S> {
    /// How many bytes are queued and not yet taken by the stream: what a
    /// peer that does not read makes the connection hold.
    pub fn backlog(&self) -> usize {
        lock(&self.shared).conn.pending_output_len()
    }

    /// How the connection ended, once it has.
    pub fn closed(&self) -> Option<Closed> {
        lock(&self.shared).closed.clone()
    }

    /// Whether messages can still be sent.
    pub fn can_send(&self) -> bool {
        lock(&self.shared).conn.can_send()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        lock(&self.shared).poll_next_item(cx, Side::Reader)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// Sends a message and writes it out.
    pub async fn send(&mut self, message: &Message) -> Result<(), Error> {
        self.send_with(|conn| conn.send_message(message)).await
    }

    /// Sends a prepared message ([`PreparedMessage`]) and writes it out.
    pub async fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.send_with(|conn| conn.send_prepared(prepared)).await
    }

    /// Offers a prepared message without waiting, for a broadcaster that
    /// must never wait for one client. If at most `backlog` bytes are
    /// already waiting to be written, the message is queued, and the
    /// connection's reading half writes it as the peer takes it (keep a
    /// task in [`ReadHalf::recv`]); otherwise the peer is not keeping up,
    /// and `when_full` decides: miss this message, or close the
    /// connection. So a client that stops reading holds at most `backlog`
    /// bytes, one message and a Close frame, while the others go on.
    pub fn offer(
        &self,
        prepared: &PreparedMessage,
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, Error> {
        self.offer_many(core::slice::from_ref(prepared), backlog, when_full)
    }

    /// Offers several prepared messages at once, in order, as
    /// [`offer`](WriteHalf::offer) offers one, and writes them together:
    /// one system call for all of them where one each would be needed
    /// otherwise. For a broadcaster that falls behind its publishers: it
    /// offers everything published since its last pass, so the busier it
    /// is, the more each write carries (one message per pass when it keeps
    /// up, so no latency is added then).
    ///
    /// The backlog is checked before each message: `Dropped` means this
    /// message and those after it were not queued (the ones before were),
    /// `Closing` that the closing handshake started in their place.
    ///
    /// On a multi-threaded runtime, give each worker a publishing task
    /// with its share of the connections: the writes happen in the task
    /// that offers, so one task offering to all keeps them on one core
    /// (`benches`, part `scaling`, measures both).
    pub fn offer_many(
        &self,
        messages: &[PreparedMessage],
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, Error> {
        lock(&self.shared).offer(messages, backlog, when_full)
    }

    /// Sends a text message and writes it out.
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send_with(|conn| conn.send_text(text)).await
    }

    /// Sends a message from a buffer handed over
    /// ([`Connection::send_owned`]) and writes it out.
    pub async fn send_owned(&mut self, kind: MessageKind, payload: BytesMut) -> Result<(), Error> {
        self.send_with(|conn| conn.send_owned(kind, payload)).await
    }

    /// Sends a binary message and writes it out.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send_with(|conn| conn.send_binary(data)).await
    }

    /// Sends a Ping.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send_with(|conn| conn.ping(payload)).await
    }

    /// Starts the closing handshake; the reading half sees it finish.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.send_with(|conn| conn.close(code, reason)).await
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.send_with(|_| Ok(())).await
    }

    /// Queues output with `command`, then writes it: under one lock if the
    /// stream takes it all at once (the usual case), else waiting.
    async fn send_with(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<(), crate::UsageError>,
    ) -> Result<(), Error> {
        {
            let inner = &mut *lock(&self.shared);
            command(inner.sender())?;
            if inner.io.flush_now(&mut inner.conn) {
                return Ok(());
            }
        }
        poll_fn(|cx| lock(&self.shared).poll_flush_output(cx, Side::Writer)).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared).poll_ready(cx, Side::Writer)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        Ok(lock(&self.shared).sender().send_message(&message)?)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared).poll_flush_output(cx, Side::Writer)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared).poll_close_sink(cx, Side::Writer)
    }
}

/// Which half is polling: each keeps its own waker for write readiness.
#[derive(Clone, Copy)]
enum Side {
    Reader = 0,
    Writer = 1,
}

/// Wakes every task waiting for the stream to take more bytes. Both halves
/// may wait on one write; a stream keeps only the last waker it was given,
/// so it is given this one, which wakes both.
#[derive(Debug, Default)]
struct WriteWakers {
    wakers: Mutex<[Option<Waker>; 2]>,
}

impl Wake for WriteWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }
}

#[derive(Debug)]
struct Inner<S> {
    io: Io<S>,
    conn: Connection,
    protocol: Option<String>,
    closed: Option<Closed>,
    /// The Closed event was handed out, so the `Stream` impls end.
    reported: bool,
    alarm: Alarm<Time>,
    /// The task waiting for input, to wake when output is queued from
    /// elsewhere ([`WriteHalf::offer`]) so that it writes it.
    reader: Option<Waker>,
}

impl Timer for Time {
    type Sleep = Pin<Box<Sleep>>;

    fn sleep_until(at: Self) -> Self::Sleep {
        Box::pin(tokio::time::sleep_until(at))
    }

    fn reset(sleep: &mut Self::Sleep, at: Self) -> bool {
        sleep.as_mut().reset(at);
        true
    }
}

/// The stream, and the wakers of the tasks waiting to write to it.
#[derive(Debug)]
struct Io<S> {
    stream: S,
    /// We shut down our sending side after the Closed event.
    shut: bool,
    /// Done with the stream: nothing more to write or read.
    finished: bool,
    /// Written since the stream was last flushed: a stream that buffers
    /// (TLS) may still hold it.
    unflushed: bool,
    write_wakers: Arc<WriteWakers>,
    write_waker: Waker,
}

/// The reading side: input, time, events, and the end of the transport.
impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    fn new(stream: S, conn: Connection, protocol: Option<String>) -> Self {
        let write_wakers = Arc::new(WriteWakers::default());
        Inner {
            io: Io {
                stream,
                shut: false,
                finished: false,
                unflushed: false,
                write_waker: Waker::from(write_wakers.clone()),
                write_wakers,
            },
            conn,
            protocol,
            closed: None,
            reported: false,
            alarm: Alarm::default(),
            reader: None,
        }
    }

    /// Wakes the task waiting for input, if any, to write what was queued.
    fn wake_reader(&mut self) {
        if let Some(waker) = self.reader.take() {
            waker.wake();
        }
    }

    /// [`WriteHalf::offer_many`]: the shared policy, then what the stream
    /// takes now is written here (no task switch), the rest by the task
    /// that waits for input, as the peer reads.
    fn offer(
        &mut self,
        messages: &[PreparedMessage],
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, Error> {
        pool::lend(&mut self.conn);
        // Output already waiting: the reading task waits to write it (it
        // registered for the stream's readiness), so this only queues.
        let behind = self.conn.pending_output_len();
        let outcome = policy_offer(&mut self.conn, messages, backlog, when_full)?;
        if outcome == Offered::Closed || (behind > 0 && outcome != Offered::Closing) {
            return Ok(outcome);
        }
        if !self.io.write_now(&mut self.conn) {
            self.wake_reader();
        }
        Ok(outcome)
    }

    /// The connection, with buffers to queue output into.
    fn sender(&mut self) -> &mut Connection {
        pool::lend(&mut self.conn);
        &mut self.conn
    }

    fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<Result<Option<Message>, Error>> {
        loop {
            if let Some(done) = received(ready!(self.poll_event(cx, side))?) {
                return Poll::Ready(done);
            }
        }
    }

    fn poll_next_item(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<Option<Result<Message, Error>>> {
        if self.reported {
            return Poll::Ready(None);
        }
        let item = ready!(self.poll_message(cx, side)).transpose();
        if self.closed.is_some() {
            self.reported = true;
        }
        Poll::Ready(item)
    }

    fn poll_event(&mut self, cx: &mut Context<'_>, side: Side) -> Poll<Result<Event, Error>> {
        loop {
            if self.closed.is_some() {
                ready!(self
                    .io
                    .poll_finish(&mut self.conn, &mut self.alarm, cx, side));
                let closed = self.closed.clone().expect("checked above");
                return Poll::Ready(Ok(Event::Closed(Box::new(closed))));
            }
            if let Some(event) = self.conn.poll_event() {
                if let Event::Closed(closed) = event {
                    self.closed = Some(*closed);
                    continue;
                }
                // Any Pong this queued goes out with the other output
                // when we next wait for input (below), so the answers to a
                // burst of messages leave in one write.
                return Poll::Ready(Ok(event));
            }
            if let Poll::Ready(Err(e)) = self.poll_flush_output(cx, side) {
                return Poll::Ready(Err(e));
            }
            // Read straight into the connection's receive buffer (no copy
            // through a buffer of our own).
            pool::lend(&mut self.conn);
            let size = self.conn.read_size_hint(READ_BUF);
            let polled = {
                let mut buffer = self.conn.read_buffer(size);
                let read = self.io.stream.read_buf(&mut buffer);
                std::pin::pin!(read).poll(cx)
            };
            match polled {
                Poll::Ready(Ok(0)) => self.conn.handle_eof(),
                // Bytes arrived: if the core keeps a deadline, it learns
                // when (silence is measured from the last bytes).
                Poll::Ready(Ok(_)) if self.conn.poll_timeout().is_some() => {
                    self.conn.handle_timeout(Time::timestamp());
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                // Nothing to read: the time. What the timers queue (a
                // Ping, a Close) or end is handled on the next turn.
                Poll::Pending if self.alarm.poll(&mut self.conn, cx) => {}
                Poll::Pending => {
                    // Waiting for the peer: lend the buffers to the
                    // thread's other connections until bytes arrive.
                    if let Some(buffers) = self.conn.take_buffers() {
                        pool::put(buffers);
                    }
                    self.reader = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    }
}

/// The end of the stream, after the Closed event.
impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    /// After the Closed event: write the last output, shut down our side
    /// when the core says it is ours to close, and read (discarding) until
    /// the core is finished: the peer ended the stream, or the closing
    /// deadline passed. So nothing the peer sent resets the connection
    /// before it has read our Close frame.
    fn poll_finish(
        &mut self,
        conn: &mut Connection,
        alarm: &mut Alarm<Time>,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<()> {
        while !self.finished {
            alarm.poll(conn, cx);
            if conn.is_finished() {
                if !self.shut {
                    let _ = ready!(Pin::new(&mut self.stream).poll_shutdown(cx));
                    self.shut = true;
                }
                self.finished = true;
                break;
            }
            if ready!(self.poll_flush_output(conn, cx, side)).is_err() {
                self.finished = true;
                break;
            }
            if conn.should_close_transport() && !self.shut {
                let _ = ready!(Pin::new(&mut self.stream).poll_shutdown(cx));
                self.shut = true;
            }
            let mut stack = [MaybeUninit::<u8>::uninit(); READ_BUF];
            let mut read = ReadBuf::uninit(&mut stack);
            match ready!(Pin::new(&mut self.stream).poll_read(cx, &mut read)) {
                Ok(()) if !read.filled().is_empty() => {}
                // End of stream, or a broken one: the peer is done.
                _ => conn.handle_eof(),
            }
        }
        Poll::Ready(())
    }
}

/// The writing side: output to the stream, with backpressure.
impl<S: AsyncWrite + Unpin> Io<S> {
    /// One write of the pending output, polled with the shared write
    /// waker (see [`WriteWakers`]): the stream keeps that one waker.
    fn write_once(&mut self, conn: &Connection) -> Poll<io::Result<usize>> {
        let mut cx = Context::from_waker(&self.write_waker);
        let stream = Pin::new(&mut self.stream);
        let one_piece = conn.pending_output().len() == conn.pending_output_len();
        let polled = if stream.is_write_vectored() && !one_piece {
            // Frame headers and the payloads sent without a copy, in one
            // system call.
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let n = conn.pending_output_vectored(&mut slices);
            stream.poll_write_vectored(&mut cx, &slices[..n])
        } else {
            stream.poll_write(&mut cx, conn.pending_output())
        };
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.unflushed = true;
        }
        polled
    }

    /// Stores `cx`'s waker for `side`, to be woken when the stream can
    /// take more (unless the stored one would wake the same task).
    fn register(&self, cx: &Context<'_>, side: Side) {
        let mut wakers = self
            .write_wakers
            .wakers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let slot = &mut wakers[side as usize];
        if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *slot = Some(cx.waker().clone());
        }
    }

    /// One flush of the stream, if anything was written since the last,
    /// polled with the shared write waker.
    fn flush_once(&mut self) -> Poll<io::Result<()>> {
        if !self.unflushed {
            return Poll::Ready(Ok(()));
        }
        let mut cx = Context::from_waker(&self.write_waker);
        let polled = Pin::new(&mut self.stream).poll_flush(&mut cx);
        if let Poll::Ready(Ok(())) = polled {
            self.unflushed = false;
        }
        polled
    }

    /// Flushes the stream; the task (`cx`) is woken when it can go on.
    fn poll_flush_stream(&mut self, cx: &mut Context<'_>, side: Side) -> Poll<io::Result<()>> {
        if let Poll::Ready(result) = self.flush_once() {
            return Poll::Ready(result);
        }
        self.register(cx, side);
        self.flush_once()
    }

    /// Writes and flushes everything pending if the stream takes it now:
    /// a send's fast path, which needs no task context; false if the
    /// caller must wait ([`Io::poll_flush_output`]).
    fn flush_now(&mut self, conn: &mut Connection) -> bool {
        self.write_now(conn) && matches!(self.flush_once(), Poll::Ready(Ok(())))
    }

    /// One write; when the stream cannot take anything now, the task
    /// (`cx`) is woken when it can.
    ///
    /// The task's waker is stored only then, not on every write: the
    /// write is tried first, and if the stream is full the waker is
    /// stored and the write tried once more, so readiness that came in
    /// between is not missed (the stream holds the shared waker, which
    /// wakes what is stored when it fires).
    fn poll_write_some(
        &mut self,
        conn: &Connection,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<io::Result<usize>> {
        if let Poll::Ready(result) = self.write_once(conn) {
            return Poll::Ready(result);
        }
        self.register(cx, side);
        self.write_once(conn)
    }

    /// Writes what the stream takes now, without waiting and without
    /// registering a task; true if nothing is left to write.
    fn write_now(&mut self, conn: &mut Connection) -> bool {
        while conn.pending_output_len() > 0 {
            match self.write_once(conn) {
                Poll::Ready(Ok(n)) if n > 0 => conn.consume_output(n),
                _ => return false,
            }
        }
        true
    }

    /// Writes until at most `keep` bytes are unsent.
    fn poll_write_down_to(
        &mut self,
        conn: &mut Connection,
        cx: &mut Context<'_>,
        side: Side,
        keep: usize,
    ) -> Poll<Result<(), Error>> {
        while conn.pending_output_len() > keep {
            match ready!(self.poll_write_some(conn, cx, side)) {
                Ok(0) => return Poll::Ready(Err(Error::Io(io::ErrorKind::WriteZero.into()))),
                Ok(n) => conn.consume_output(n),
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_flush_output(
        &mut self,
        conn: &mut Connection,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<Result<(), Error>> {
        ready!(self.poll_write_down_to(conn, cx, side, 0))?;
        ready!(self.poll_flush_stream(cx, side))?;
        Poll::Ready(Ok(()))
    }
}

/// What the `Sink` impls and the writing calls need.
impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    fn poll_flush_output(&mut self, cx: &mut Context<'_>, side: Side) -> Poll<Result<(), Error>> {
        self.io.poll_flush_output(&mut self.conn, cx, side)
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>, side: Side) -> Poll<Result<(), Error>> {
        if !self.conn.can_send() {
            return Poll::Ready(Err(Error::Usage(crate::UsageError::Closed)));
        }
        ready!(self
            .io
            .poll_write_down_to(&mut self.conn, cx, side, HIGH_WATER - 1))?;
        Poll::Ready(Ok(()))
    }

    fn poll_close_sink(&mut self, cx: &mut Context<'_>, side: Side) -> Poll<Result<(), Error>> {
        if self.conn.state() == State::Open {
            self.conn.close(CloseCode::NORMAL, "")?;
        }
        self.poll_flush_output(cx, side)
    }
}
