//! An async adapter over [`embedded_io_async`]'s `Read + Write`, for targets
//! without an operating system (feature `embedded-io-async`; no std, no
//! runtime).
//!
//! It is the same driver loop as the tokio adapter, and like it holds no
//! protocol logic: it moves bytes between the stream and a [`Connection`],
//! tells the core the time, and sleeps until the core's deadline. The
//! embedder brings what the standard library would: a [`Clock`] (embassy's
//! `Timer::at`, an RTIC monotonic, tokio's clock on a host) and, for a
//! client, a key source for masking keys ([`Config::mask_keys`], from a
//! hardware random number generator, say).
//!
//! ```no_run
//! use rfc6455::embedded::{self, Clock};
//! use rfc6455::handshake::ClientRequest;
//! use rfc6455::{Config, MaskKeys, Timestamp};
//!
//! /// The board's monotonic timer (here a stub).
//! struct Ticks;
//!
//! impl Clock for Ticks {
//!     fn now(&self) -> Timestamp {
//!         Timestamp::from_millis(0) // read the hardware timer
//!     }
//!     async fn sleep_until(&self, deadline: Timestamp) {
//!         // embassy: Timer::at(Instant::from_micros(deadline.since_epoch().as_micros() as u64)).await
//!     }
//! }
//!
//! fn hardware_rng() -> [u8; 4] {
//!     [4, 2, 4, 2] // read the RNG peripheral
//! }
//!
//! async fn run<S: embedded_io_async::Read + embedded_io_async::Write>(
//!     socket: S,
//! ) -> Result<(), embedded::Error<S::Error>> {
//!     let mut config = Config::default();
//!     config.mask_keys = MaskKeys::With(hardware_rng);
//!     config.max_message_size = Some(4096);
//!     let request = ClientRequest::new("sensor-hub.local", "/telemetry");
//!     let mut ws = embedded::client(socket, Ticks, &request, config).await?;
//!     ws.send_text("22.5 C").await?;
//!     while let Some(message) = ws.recv().await? {
//!         // handle the message
//!         # let _ = message;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Cancellation
//!
//! While it waits for bytes, the adapter also waits for the core's next
//! deadline; when the deadline comes first, the pending `read` (or `write`)
//! future is dropped. So the stream's `read` and `write` must be cancel-safe:
//! a dropped call must not have consumed or sent any bytes. embassy-net's
//! `TcpSocket` and `embedded-io-adapters`' tokio bridge are.
//!
//! # Closing
//!
//! After [`recv`](WebSocket::recv) returns `Ok(None)` (or an error), the
//! closing handshake is over and the adapter has waited, as far as the
//! core asked, for the peer to end the stream. `embedded-io-async` has no
//! close: close the socket with your network stack's own call
//! ([`into_inner`](WebSocket::into_inner) gives it back).

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;

use embedded_io_async::{Read, Write};

use crate::handshake::{
    Accept, ClientHandshake, ClientRequest, HandshakeError, Progress, Request, ServerHandshake,
};
use crate::{
    CloseCode, Closed, Config, Connection, Event, Message, MessageKind, ProtocolError, Timestamp,
    UsageError,
};

/// The time as the core counts it, and a way to wait for a deadline.
///
/// `now` must never go backwards. It is read after every read from the
/// stream and whenever a deadline of the core passes.
#[allow(async_fn_in_trait)] // Futures are polled where they are made: no Send needed.
pub trait Clock {
    /// The time now, since an epoch of your choosing (boot, say).
    fn now(&self) -> Timestamp;
    /// Completes at (or after) `deadline`, on the same clock as `now`.
    async fn sleep_until(&self, deadline: Timestamp);
}

/// The size of one read from the stream (the connection's receive buffer
/// grows only as a frame needs).
const READ_SIZE: usize = 1024;
/// The size of one read of a handshake head: a buffer that lives in the
/// handshake's future, so small (the head is gathered in the handshake).
const HEAD_READ: usize = 256;

/// What can go wrong on a connection driven by this adapter; `E` is the
/// stream's error type.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E> {
    /// The stream failed.
    Io(E),
    /// The stream ended during the opening handshake, or took no bytes
    /// when written to.
    Eof,
    /// The opening handshake failed. On a server, the HTTP error response
    /// was already sent.
    Handshake(HandshakeError),
    /// The peer broke the protocol; we sent a Close frame with the
    /// matching code. Also the stream ending without a closing handshake
    /// ([`ProtocolError::UnexpectedEof`]).
    Protocol(ProtocolError),
    /// The call is not allowed in this state (sending after close, a
    /// client without a key source, ...).
    Usage(UsageError),
    /// A timer of the core ran out: the opening handshake took too long,
    /// or the peer did not answer our Close.
    Timeout(&'static str),
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e:?}"),
            Error::Eof => f.write_str("the stream ended during the opening handshake"),
            Error::Handshake(e) => write!(f, "handshake failed: {e}"),
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
            Error::Usage(e) => write!(f, "usage error: {e}"),
            Error::Timeout(what) => write!(f, "timed out: {what}"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

impl<E> From<HandshakeError> for Error<E> {
    fn from(e: HandshakeError) -> Self {
        match e {
            HandshakeError::Timeout => Error::Timeout("opening handshake"),
            e => Error::Handshake(e),
        }
    }
}

impl<E> From<UsageError> for Error<E> {
    fn from(e: UsageError) -> Self {
        Error::Usage(e)
    }
}

/// The error, if any, that a finished connection reports to `recv`: none
/// for a closing handshake, the fault for a failed connection.
fn closed_error<E>(closed: &Closed) -> Option<Error<E>> {
    closed.error.clone().map(|e| match e {
        ProtocolError::Timeout => Error::Timeout("closing handshake: the peer did not answer"),
        e => Error::Protocol(e),
    })
}

/// A WebSocket over an `embedded-io-async` stream, on the embedder's clock.
#[derive(Debug)]
pub struct WebSocket<S, C> {
    stream: S,
    clock: C,
    conn: Connection,
    protocol: Option<String>,
    closed: Option<Closed>,
}

/// What came first: the I/O or the core's deadline.
enum Race<T> {
    Done(T),
    Deadline,
}

/// Runs `io` until it completes or the core's `deadline` passes (never,
/// if there is none). `io` is dropped at the deadline: see the module's
/// notes on cancellation.
async fn race<T, C: Clock>(
    io: impl Future<Output = T>,
    clock: &C,
    deadline: Option<Timestamp>,
) -> Race<T> {
    let mut io = pin!(io);
    let mut alarm = pin!(async {
        match deadline {
            Some(deadline) => clock.sleep_until(deadline).await,
            None => core::future::pending().await,
        }
    });
    poll_fn(|cx| {
        if let Poll::Ready(out) = io.as_mut().poll(cx) {
            return Poll::Ready(Race::Done(out));
        }
        alarm.as_mut().poll(cx).map(|()| Race::Deadline)
    })
    .await
}

/// Accepts a client on `stream` with no subprotocol and no check of Origin.
pub async fn accept<S, C>(
    stream: S,
    clock: C,
    config: Config,
) -> Result<WebSocket<S, C>, Error<S::Error>>
where
    S: Read + Write,
    C: Clock,
{
    accept_with(stream, clock, config, |_| Ok(Accept::new())).await
}

/// Accepts a client on `stream`, letting `decide` look at the request.
///
/// `decide` returns the [`Accept`] options, or a status and reason to
/// refuse with; the refusal is sent and the call fails with
/// [`Error::Handshake`]. A malformed request gets its 400, 426 or 431
/// response the same way, and a client too slow to send it a 408.
pub async fn accept_with<S, C, F>(
    mut stream: S,
    clock: C,
    config: Config,
    decide: F,
) -> Result<WebSocket<S, C>, Error<S::Error>>
where
    S: Read + Write,
    C: Clock,
    F: FnOnce(&Request) -> Result<Accept, (u16, String)>,
{
    // Every way out but a broken stream sends one response, so there is
    // one write (and one future's worth of state for it).
    let (response, deadline, outcome) = match read_request(&mut stream, &clock, config).await {
        Ok(request) => {
            let deadline = request.deadline();
            match decide(&request) {
                Err((status, reason)) => (
                    request.reject(status, &reason),
                    deadline,
                    Err(Error::Handshake(HandshakeError::Rejected(status))),
                ),
                Ok(options) => match request.accept(options) {
                    Ok(accepted) => (
                        accepted.response,
                        deadline,
                        Ok((accepted.connection, accepted.protocol)),
                    ),
                    Err(e) => (e.response(), deadline, Err(e.into())),
                },
            }
        }
        // A few hundred bytes, which the stream's send buffer takes at
        // once: no deadline, or a 408 would never go.
        Err(Refusal::Answer(e)) => (e.response(), None, Err(e.into())),
        Err(Refusal::Stream(e)) => return Err(e),
    };
    write_all(&mut stream, &clock, deadline, &response).await?;
    let (conn, protocol) = outcome?;
    Ok(WebSocket::new(stream, clock, conn, protocol))
}

/// Why a request was not read: a fault to answer, or a broken stream.
enum Refusal<E> {
    Answer(HandshakeError),
    Stream(Error<E>),
}

/// Reads a request head, in reads of [`HEAD_READ`] bytes, until the
/// handshake has it whole or fails.
async fn read_request<S: Read, C: Clock>(
    stream: &mut S,
    clock: &C,
    config: Config,
) -> Result<Request, Refusal<S::Error>> {
    let mut handshake = ServerHandshake::new(config);
    let mut buf = [0; HEAD_READ];
    loop {
        handshake
            .handle_timeout(clock.now())
            .map_err(Refusal::Answer)?;
        let n = match race(stream.read(&mut buf), clock, handshake.poll_timeout()).await {
            Race::Done(Ok(0)) => return Err(Refusal::Stream(Error::Eof)),
            Race::Done(Ok(n)) => n,
            Race::Done(Err(e)) => return Err(Refusal::Stream(Error::Io(e))),
            Race::Deadline => continue,
        };
        handshake = match handshake.handle_read(&buf[..n]).map_err(Refusal::Answer)? {
            Progress::Partial(handshake) => handshake,
            Progress::Done(request) => return Ok(request),
        };
    }
}

/// Writes all of `bytes` and flushes, unless `deadline` passes first.
async fn write_all<S: Write, C: Clock>(
    stream: &mut S,
    clock: &C,
    deadline: Option<Timestamp>,
    bytes: &[u8],
) -> Result<(), Error<S::Error>> {
    let written = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match race(written, clock, deadline).await {
        Race::Done(result) => result.map_err(Error::Io),
        Race::Deadline => Err(Error::Timeout("opening handshake")),
    }
}

/// Performs the client handshake on an open `stream`.
///
/// The nonce and the masking keys come from `config.mask_keys`; without
/// the `std` feature there is no default source, and a client without one
/// fails with [`UsageError::NoKeySource`].
pub async fn client<S, C>(
    mut stream: S,
    clock: C,
    request: &ClientRequest,
    config: Config,
) -> Result<WebSocket<S, C>, Error<S::Error>>
where
    S: Read + Write,
    C: Clock,
{
    let mut handshake = ClientHandshake::try_new(request, config)?;
    handshake.handle_timeout(clock.now())?;
    write_all(
        &mut stream,
        &clock,
        handshake.poll_timeout(),
        handshake.request(),
    )
    .await?;
    let mut buf = [0; HEAD_READ];
    loop {
        handshake.handle_timeout(clock.now())?;
        let n = match race(stream.read(&mut buf), &clock, handshake.poll_timeout()).await {
            Race::Done(Ok(0)) => return Err(Error::Eof),
            Race::Done(Ok(n)) => n,
            Race::Done(Err(e)) => return Err(Error::Io(e)),
            Race::Deadline => continue,
        };
        handshake = match handshake.handle_read(&buf[..n])? {
            Progress::Partial(handshake) => handshake,
            Progress::Done(connected) => {
                let protocol = connected.response.protocol;
                return Ok(WebSocket::new(
                    stream,
                    clock,
                    connected.connection,
                    protocol,
                ));
            }
        };
    }
}

/// Receiving: the driver loop.
impl<S: Read + Write, C: Clock> WebSocket<S, C> {
    fn new(stream: S, clock: C, conn: Connection, protocol: Option<String>) -> Self {
        WebSocket {
            stream,
            clock,
            conn,
            protocol,
            closed: None,
        }
    }

    /// Wraps a stream on which the handshake already happened. The
    /// connection's timers run from now, on `clock`.
    pub fn from_connection(stream: S, clock: C, mut conn: Connection) -> Self {
        conn.handle_timeout(clock.now());
        Self::new(stream, clock, conn, None)
    }

    /// The next data message. Pings are answered (and Pongs dropped) on
    /// the way. `Ok(None)`: the closing handshake finished; see
    /// [`closed`](WebSocket::closed). `Err(Error::Protocol(_))`: the peer
    /// broke the protocol, and we sent it a Close frame saying so.
    pub async fn recv(&mut self) -> Result<Option<Message>, Error<S::Error>> {
        loop {
            match self.recv_event().await? {
                Event::Message(message) => return Ok(Some(message)),
                Event::Closed(closed) => {
                    return match closed_error(&closed) {
                        Some(err) => Err(err),
                        None => Ok(None),
                    }
                }
                Event::Fragment(_) | Event::Ping(_) | Event::Pong(_) => {}
            }
        }
    }

    /// The next event of any kind. After [`Event::Closed`], every call
    /// returns the same `Closed` again.
    pub async fn recv_event(&mut self) -> Result<Event, Error<S::Error>> {
        loop {
            if let Some(closed) = &self.closed {
                return Ok(Event::Closed(Box::new(closed.clone())));
            }
            if let Some(event) = self.conn.poll_event() {
                self.flush().await?;
                if let Event::Closed(closed) = &event {
                    self.closed = Some(Closed::clone(closed));
                    self.finish().await;
                }
                return Ok(event);
            }
            self.flush().await?;
            self.fill().await?;
        }
    }

    /// Reads once from the stream, or waits until the core's deadline.
    async fn fill(&mut self) -> Result<(), Error<S::Error>> {
        read_once(&mut self.stream, &self.clock, &mut self.conn).await
    }

    /// After the Closed event: write the last output, then, unless the
    /// transport is ours to close now, read and discard until the peer
    /// ends the stream (§7.1.1) or the core's closing deadline passes.
    async fn finish(&mut self) {
        if self.flush().await.is_err() {
            return;
        }
        while !self.conn.should_close_transport() && !self.conn.is_finished() {
            if self.fill().await.is_err() {
                return;
            }
        }
    }
}

/// Commands: each queues its frames and writes them out.
impl<S: Read + Write, C: Clock> WebSocket<S, C> {
    /// Sends a message in one frame and flushes.
    pub async fn send(&mut self, message: &Message) -> Result<(), Error<S::Error>> {
        self.conn.send_message(message)?;
        self.flush().await
    }

    /// Sends a text message and flushes.
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error<S::Error>> {
        self.conn.send_text(text)?;
        self.flush().await
    }

    /// Sends a binary message and flushes.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error<S::Error>> {
        self.conn.send_binary(data)?;
        self.flush().await
    }

    /// Sends a message split into frames of `fragment_size` bytes, and flushes.
    pub async fn send_fragmented(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fragment_size: usize,
    ) -> Result<(), Error<S::Error>> {
        self.conn.send_fragmented(kind, data, fragment_size)?;
        self.flush().await
    }

    /// Sends a Ping and flushes. The Pong arrives as [`Event::Pong`].
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error<S::Error>> {
        self.conn.ping(payload)?;
        self.flush().await
    }

    /// Starts the closing handshake. Keep calling [`recv`](WebSocket::recv)
    /// until it returns `Ok(None)` to let the peer answer.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error<S::Error>> {
        self.conn.close(code, reason)?;
        self.flush().await
    }

    /// Writes all pending output and flushes the stream. The core's timers
    /// run while it waits for the stream to take the bytes: a deadline
    /// that passes (a heartbeat Ping, the closing timeout) is acted on,
    /// and output the core gives up on is not waited for.
    pub async fn flush(&mut self) -> Result<(), Error<S::Error>> {
        write_out(&mut self.stream, &self.clock, &mut self.conn).await
    }
}

/// Reads once from the stream straight into the connection, or waits
/// until the core's deadline; then tells the core the time.
async fn read_once<S: Read, C: Clock>(
    stream: &mut S,
    clock: &C,
    conn: &mut Connection,
) -> Result<(), Error<S::Error>> {
    let deadline = conn.poll_timeout();
    let size = conn.read_size_hint(READ_SIZE).min(READ_SIZE);
    let mut input = conn.read_buffer(size);
    let eof = match race(stream.read(input.unfilled()), clock, deadline).await {
        Race::Done(Ok(0)) => true,
        Race::Done(Ok(n)) => {
            input.advance(n);
            false
        }
        Race::Done(Err(e)) => return Err(Error::Io(e)),
        Race::Deadline => false,
    };
    drop(input);
    if eof {
        conn.handle_eof();
    }
    // After every read (silence is measured from the last bytes), and at
    // every deadline.
    if conn.poll_timeout().is_some() {
        conn.handle_timeout(clock.now());
    }
    Ok(())
}

/// Writes the connection's output until none is pending, or until the
/// core gives up on it at a deadline; flushes what it wrote.
async fn write_out<S: Write, C: Clock>(
    stream: &mut S,
    clock: &C,
    conn: &mut Connection,
) -> Result<(), Error<S::Error>> {
    let mut wrote = false;
    while conn.pending_output_len() > 0 {
        let deadline = conn.poll_timeout();
        match race(stream.write(conn.pending_output()), clock, deadline).await {
            Race::Done(Ok(0)) => return Err(Error::Eof),
            Race::Done(Ok(n)) => {
                conn.consume_output(n);
                wrote = true;
            }
            Race::Done(Err(e)) => return Err(Error::Io(e)),
            Race::Deadline => {
                conn.handle_timeout(clock.now());
                if conn.should_close_transport() {
                    // The closing deadline gave up on the unsent bytes;
                    // `recv` reports the end.
                    return Ok(());
                }
            }
        }
    }
    if wrote {
        stream.flush().await.map_err(Error::Io)?;
    }
    Ok(())
}

/// Getters, and the parts underneath.
impl<S, C> WebSocket<S, C> {
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

    /// The sans-IO connection underneath, for commands the adapter does not
    /// wrap. Call [`flush`](WebSocket::flush) after queueing output.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Gives the stream back, to close it.
    pub fn into_inner(self) -> S {
        self.stream
    }
}
