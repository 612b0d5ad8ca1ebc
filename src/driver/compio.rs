//! A driver on [compio], a completion-based runtime: io_uring on Linux
//! (feature `compio`).
//!
//! An epoll-based adapter makes one `read` and one `write` system call per
//! message and connection. Here the kernel is handed reads and writes to
//! perform, and the runtime submits every connection's operations of one
//! turn of its loop in one system call, and reaps their completions
//! together. The protocol is the core's, as in every adapter: this module
//! moves bytes between the socket and a [`Connection`], tells the core the
//! time, and sleeps until the core's next deadline.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
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
//! ([`Connection::read_buffer_owned`]) and hands it back filled
//! ([`Connection::handle_read_owned`]), which joins it in place. Writes take
//! the pending output as owned [`Bytes`]
//! ([`Connection::take_output`]): an echoed payload goes out without a copy.
//!
//! # Cancellation
//!
//! A read stays in flight while the driver writes, between calls to
//! [`recv`](WebSocket::recv), and when a `recv` future is dropped (in a
//! `select!`, say): its bytes are kept for the next `recv`, never lost. A
//! dropped `send` may have written part of a frame; the connection cannot
//! be used after that, as with any adapter.
//!
//! # Streams
//!
//! compio's [`TcpStream`] and `UnixStream`: a stream whose shared reference
//! reads and writes, so that a read can wait in the kernel while a write
//! goes out. TLS and proxies are not offered here (use the tokio adapter
//! for `wss://`).

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::future::{poll_fn, Future};
use core::pin::{pin, Pin};
use core::task::{Context, Poll};
use std::io;

use bytes::{Bytes, BytesMut};
use compio::buf::BufResult;
use compio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use compio::net::TcpStream;

use super::{received, Alarm, Clock, Timer};
pub use super::{Error, WsUrl};
use crate::handshake::{
    Accept, ClientHandshake, ClientRequest, HandshakeError, Progress, Request, ServerHandshake,
};
use crate::{
    CloseCode, Closed, Config, Connection, Event, Message, MessageKind, PreparedMessage, Timestamp,
};

/// The clock the core is told: the standard library's monotonic clock,
/// which compio's timers use too.
type Time = std::time::Instant;

/// The least room asked for a read: what an idle connection holds while
/// its read waits in the kernel.
const MIN_READ: usize = 2 * 1024;
/// The most room asked for a read, unless a frame that is arriving is
/// missing more.
const MAX_READ: usize = 64 * 1024;
/// The buffer for a handshake head.
const HEAD_READ: usize = 4096;
/// The most pieces of output one write takes.
const WRITE_PIECES: usize = 64;

/// A read handed to the kernel: the future owns its buffer until the read
/// completes.
type Reading = Pin<Box<dyn Future<Output = BufResult<usize, BytesMut>>>>;

/// A WebSocket over a compio stream.
pub struct WebSocket<S> {
    stream: Rc<S>,
    conn: Connection,
    protocol: Option<String>,
    closed: Option<Closed>,
    /// The read in flight, if any.
    reading: Option<Reading>,
    /// A read that completed and was not fed to the core yet.
    read: Option<BufResult<usize, BytesMut>>,
    /// The stream ended: no read is started again.
    eof: bool,
    /// The room the next read asks for: doubled after a read that filled
    /// its buffer, halved after one that used less than a quarter.
    read_size: usize,
    /// The room the read in flight was given.
    asked: usize,
    alarm: Alarm<Time>,
    /// The vector of pieces of the last write, kept for its capacity.
    pieces: Vec<Bytes>,
}

impl<S> core::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WebSocket")
            .field("conn", &self.conn)
            .field("protocol", &self.protocol)
            .field("reading", &self.reading.is_some())
            .finish_non_exhaustive()
    }
}

impl Timer for Time {
    // compio's sleep has no name: boxed.
    type Sleep = Pin<Box<dyn Future<Output = ()>>>;

    fn sleep_until(at: Self) -> Self::Sleep {
        Box::pin(compio::time::sleep_until(at))
    }
}

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

/// Runs `work` until the core's `deadline`, if there is one; `None` if the
/// deadline came first.
async fn until<T>(deadline: Option<Timestamp>, work: impl Future<Output = T>) -> Option<T> {
    match deadline {
        Some(at) => compio::time::timeout_at(Time::at(at), work).await.ok(),
        None => Some(work.await),
    }
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
    let request = read_request(&stream, config).await?;
    let deadline = request.deadline();
    let (response, outcome) = match decide(&request) {
        Err((status, reason)) => (
            request.reject(status, &reason),
            Err(Error::Handshake(HandshakeError::Rejected(status))),
        ),
        Ok(options) => match request.accept(options) {
            Ok(accepted) => (
                accepted.response,
                Ok((accepted.connection, accepted.protocol)),
            ),
            Err(e) => (e.response(), Err(e.into())),
        },
    };
    let written = until(deadline, write_all(&stream, response)).await;
    let (conn, protocol) = outcome?;
    match written {
        Some(written) => written?,
        None => return Err(HandshakeError::Timeout.into()),
    }
    Ok(WebSocket::new(stream, conn, protocol))
}

/// Reads one request head, within the handshake's time; a malformed or
/// late one gets its HTTP error response here.
async fn read_request<S>(stream: &S, config: Config) -> Result<Request, Error>
where
    for<'a> &'a S: AsyncRead + AsyncWrite,
{
    let mut handshake = ServerHandshake::new(config);
    let mut buf = Vec::with_capacity(HEAD_READ);
    loop {
        if let Err(e) = handshake.handle_timeout(Time::timestamp()) {
            return Err(refuse(stream, e).await);
        }
        // Woken by the deadline: the core says what it means, above.
        let Some(read) = until(handshake.poll_timeout(), read_head(stream, buf)).await else {
            buf = Vec::with_capacity(HEAD_READ);
            continue;
        };
        buf = read?;
        handshake = match handshake.handle_read(&buf) {
            Ok(Progress::Partial(handshake)) => handshake,
            Ok(Progress::Done(request)) => return Ok(request),
            Err(e) => return Err(refuse(stream, e).await),
        };
    }
}

/// One read of a handshake head into `buf` (emptied first); end of stream
/// is an error.
async fn read_head<S>(stream: &S, mut buf: Vec<u8>) -> Result<Vec<u8>, Error>
where
    for<'a> &'a S: AsyncRead,
{
    buf.clear();
    let mut reader = stream;
    let BufResult(read, buf) = reader.read(buf).await;
    match read? {
        0 => Err(Error::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the stream ended during the opening handshake",
        ))),
        _ => Ok(buf),
    }
}

/// Writes all of `bytes`.
async fn write_all<S>(stream: &S, bytes: Vec<u8>) -> Result<(), Error>
where
    for<'a> &'a S: AsyncWrite,
{
    let mut writer = stream;
    writer.write_all(bytes).await.0?;
    Ok(())
}

/// Sends the HTTP response for a failed handshake and shuts the stream
/// down, ignoring failures (the handshake has failed already); returns the
/// error.
async fn refuse<S>(stream: &S, e: HandshakeError) -> Error
where
    for<'a> &'a S: AsyncWrite,
{
    let _ = write_all(stream, e.response()).await;
    let mut writer = stream;
    let _ = writer.shutdown().await;
    e.into()
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
            "wss:// is not offered by the compio driver (the tokio adapter has TLS)".into(),
        ));
    }
    let tcp = TcpStream::connect(url.socket_addr()).await?;
    tcp.set_nodelay(true)?;
    client_with(tcp, &url.request(), config).await
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
    let mut handshake = ClientHandshake::try_new(request, config)?;
    handshake.handle_timeout(Time::timestamp())?;
    let deadline = handshake.poll_timeout();
    let exchange = async {
        write_all(&stream, handshake.request().to_vec()).await?;
        let mut buf = Vec::with_capacity(HEAD_READ);
        loop {
            buf = read_head(&stream, buf).await?;
            handshake = match handshake.handle_read(&buf)? {
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
    Ok(WebSocket::new(stream, conn, protocol))
}

/// Receiving: the driver loop.
impl<S> WebSocket<S>
where
    S: 'static,
    for<'a> &'a S: AsyncRead + AsyncWrite,
{
    fn new(stream: S, conn: Connection, protocol: Option<String>) -> Self {
        WebSocket {
            stream: Rc::new(stream),
            conn,
            protocol,
            closed: None,
            reading: None,
            read: None,
            eof: false,
            read_size: MIN_READ,
            asked: 0,
            alarm: Alarm::default(),
            pieces: Vec::new(),
        }
    }

    /// Wraps a stream on which the handshake already happened. The
    /// connection's timers run from now.
    pub fn from_connection(stream: S, mut conn: Connection) -> Self {
        conn.handle_timeout(Time::timestamp());
        Self::new(stream, conn, None)
    }

    /// The next data message. Pings are answered (and Pongs dropped) on
    /// the way. `Ok(None)`: the closing handshake finished; see
    /// [`closed`](WebSocket::closed). `Err(Error::Protocol(_))`: the peer
    /// broke the protocol, and we sent it a Close frame saying so.
    pub async fn recv(&mut self) -> Result<Option<Message>, Error> {
        loop {
            if let Some(done) = received(self.recv_event().await?) {
                return done;
            }
        }
    }

    /// The next event of any kind. After [`Event::Closed`], every call
    /// returns the same `Closed` again.
    pub async fn recv_event(&mut self) -> Result<Event, Error> {
        loop {
            if let Some(closed) = &self.closed {
                return Ok(Event::Closed(Box::new(closed.clone())));
            }
            if let Some(event) = self.conn.poll_event() {
                if let Event::Closed(closed) = &event {
                    self.closed = Some(Closed::clone(closed));
                    self.finish().await;
                }
                return Ok(event);
            }
            self.flush().await?;
            self.start_read();
            self.fill().await?;
        }
    }

    /// Hands the kernel a read into the connection's spare receive room,
    /// unless one is in flight or done and not fed yet.
    fn start_read(&mut self) {
        if self.reading.is_some() || self.read.is_some() || self.eof {
            return;
        }
        // What a frame that is arriving still misses (nothing between
        // frames), and room for what follows it: a read that stopped at
        // the frame's end would leave the next frame to a round through
        // the kernel of its own.
        let size = self.conn.read_size_hint(0) + self.read_size;
        let buf = self.conn.read_buffer_owned(size);
        self.asked = buf.capacity();
        let stream = Rc::clone(&self.stream);
        self.reading = Some(Box::pin(async move {
            let mut reader = &*stream;
            reader.read(buf).await
        }));
    }

    /// Polls the read in flight; a completed one waits in `self.read`.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(reading) = &mut self.reading else {
            return Poll::Ready(());
        };
        let Poll::Ready(done) = reading.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        self.reading = None;
        self.read = Some(done);
        Poll::Ready(())
    }

    /// Waits for the read in flight, or for the core's deadline; feeds
    /// what was read to the core, and tells it the time.
    async fn fill(&mut self) -> Result<(), Error> {
        poll_fn(|cx| {
            if self.poll_read(cx).is_ready() || self.alarm.poll(&mut self.conn, cx) {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await;
        let Some(BufResult(read, buf)) = self.read.take() else {
            return Ok(());
        };
        let read = read.map_err(Error::Io);
        let filled = buf.len();
        if filled >= self.asked {
            self.read_size = (self.read_size * 2).min(MAX_READ);
        } else if filled < self.read_size / 4 {
            self.read_size = (self.read_size / 2).max(MIN_READ);
        }
        self.conn.handle_read_owned(buf);
        if read? == 0 {
            self.eof = true;
            self.conn.handle_eof();
        }
        // After every read (silence is measured from the last bytes).
        if self.conn.poll_timeout().is_some() {
            self.conn.handle_timeout(Time::timestamp());
        }
        Ok(())
    }

    /// After the Closed event: write the last output, then, unless the
    /// transport is ours to close now, read and discard until the peer
    /// ends the stream (§7.1.1) or the core's closing deadline passes;
    /// then shut our side down.
    async fn finish(&mut self) {
        if self.flush().await.is_err() {
            return;
        }
        while !self.conn.should_close_transport() && !self.conn.is_finished() {
            self.start_read();
            if self.fill().await.is_err() {
                return;
            }
        }
        let mut writer = &*self.stream;
        let _ = writer.shutdown().await;
    }
}

/// Commands: `send_*` queue their frames and write them out; `queue_*`
/// leave the writing to the next `recv` (or [`flush`](WebSocket::flush)),
/// so that a burst of answers goes out in one write.
impl<S> WebSocket<S>
where
    S: 'static,
    for<'a> &'a S: AsyncRead + AsyncWrite,
{
    /// Sends a message in one frame.
    pub async fn send(&mut self, message: &Message) -> Result<(), Error> {
        self.conn.send_message(message)?;
        self.flush().await
    }

    /// Queues a message in one frame; the next `recv` writes it.
    pub async fn queue(&mut self, message: &Message) -> Result<(), Error> {
        self.conn.send_message(message)?;
        Ok(())
    }

    /// Sends a message encoded once for many connections.
    pub async fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.conn.send_prepared(prepared)?;
        self.flush().await
    }

    /// Queues a message encoded once for many connections; the next
    /// `recv` writes it.
    pub async fn queue_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.conn.send_prepared(prepared)?;
        Ok(())
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.conn.send_text(text)?;
        self.flush().await
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.conn.send_binary(data)?;
        self.flush().await
    }

    /// Sends a message whose payload is handed over: no copy of it is made
    /// (see [`Connection::send_owned`]).
    pub async fn send_owned(&mut self, kind: MessageKind, payload: BytesMut) -> Result<(), Error> {
        self.conn.send_owned(kind, payload)?;
        self.flush().await
    }

    /// Sends a message split into frames of `fragment_size` bytes.
    pub async fn send_fragmented(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fragment_size: usize,
    ) -> Result<(), Error> {
        self.conn.send_fragmented(kind, data, fragment_size)?;
        self.flush().await
    }

    /// Sends a Ping. The Pong arrives as [`Event::Pong`].
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.conn.ping(payload)?;
        self.flush().await
    }

    /// Starts the closing handshake. Keep calling [`recv`](WebSocket::recv)
    /// until it returns `Ok(None)` to let the peer answer.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.conn.close(code, reason)?;
        self.flush().await
    }

    /// Writes all pending output. A read in flight stays in flight, and
    /// the core's timers run while the stream takes the bytes: a deadline
    /// that passes (a heartbeat Ping, the closing timeout) is acted on, and
    /// output the core gives up on is not waited for.
    pub async fn flush(&mut self) -> Result<(), Error> {
        while self.conn.pending_output_len() > 0 {
            let mut pieces = core::mem::take(&mut self.pieces);
            while pieces.len() < WRITE_PIECES {
                let piece = self.conn.take_output(usize::MAX);
                if piece.is_empty() {
                    break;
                }
                pieces.push(piece);
            }
            let stream = Rc::clone(&self.stream);
            let mut write = pin!(async move {
                let mut writer = &*stream;
                // One piece (an echo of a small message, say) goes as a
                // plain send, cheaper in the kernel than a vectored one.
                if let [piece] = &mut pieces[..] {
                    let BufResult(written, _) = writer.write_all(core::mem::take(piece)).await;
                    return BufResult(written, pieces);
                }
                writer.write_vectored_all(pieces).await
            });
            let written = poll_fn(|cx| {
                // The read's completion, if it comes, waits in `self.read`.
                let _ = self.poll_read(cx);
                if let Poll::Ready(written) = write.as_mut().poll(cx) {
                    return Poll::Ready(Some(written));
                }
                if self.alarm.poll(&mut self.conn, cx) && self.conn.should_close_transport() {
                    // The closing deadline gave up on the unsent bytes;
                    // `recv` reports the end.
                    return Poll::Ready(None);
                }
                Poll::Pending
            })
            .await;
            let Some(BufResult(written, mut pieces)) = written else {
                return Ok(());
            };
            written?;
            pieces.clear();
            self.pieces = pieces;
        }
        Ok(())
    }
}

/// Getters, and the parts underneath.
impl<S> WebSocket<S> {
    /// How the connection ended, once it has.
    pub fn closed(&self) -> Option<&Closed> {
        self.closed.as_ref()
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The sans-IO connection underneath.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The sans-IO connection underneath, for commands the driver does not
    /// wrap. Call [`flush`](WebSocket::flush) after queueing output.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}
