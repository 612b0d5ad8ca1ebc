//! An async driver over [`embedded_io_async`]'s `Read + Write`, for targets
//! without an operating system (feature `embedded-io-async`; no std, no
//! runtime).
//!
//! It is the same driver loop as the tokio driver, and like it holds no
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
//! use rfc6455::{Config, Driver, MaskKeys, Timestamp};
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
//! While it waits for bytes, the driver also waits for the core's next
//! deadline; when the deadline comes first, the pending `read` (or `write`)
//! future is dropped. So the stream's `read` and `write` must be cancel-safe:
//! a dropped call must not have consumed or sent any bytes. embassy-net's
//! `TcpSocket` and `embedded-io-adapters`' tokio bridge are.
//!
//! # Closing
//!
//! After [`recv`](crate::Driver::recv) returns `Ok(None)` (or an error), the
//! closing handshake is over and the driver has waited, as far as the
//! core asked, for the peer to end the stream. `embedded-io-async` has no
//! close: close the socket with your network stack's own call
//! ([`into_inner`](WebSocket::into_inner) gives it back).

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;
use core::future::Future;

use embedded_io_async::{Read, Write};

use super::opening;
use crate::handshake::{Accept, ClientRequest, HandshakeError, Request};
use crate::plumbing::Plumbing;
use crate::socket::{self, Transport};
use crate::{Config, Connection, ProtocolError, UsageError};

pub use crate::socket::Clock;

/// The size of one read from the stream (the connection's receive buffer
/// grows only as a frame needs).
const READ_SIZE: usize = 1024;
/// The size of one read of a handshake head.
const HEAD_READ: usize = 256;

/// What can go wrong on a connection driven by this driver; `E` is the
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
        super::policy::opening_timeout(e).map_or_else(Error::Handshake, Error::Timeout)
    }
}

impl<E> From<UsageError> for Error<E> {
    fn from(e: UsageError) -> Self {
        Error::Usage(e)
    }
}

impl<E> From<ProtocolError> for Error<E> {
    fn from(e: ProtocolError) -> Self {
        super::policy::closing_timeout(e).map_or_else(Error::Protocol, Error::Timeout)
    }
}

/// A WebSocket over an `embedded-io-async` stream, on the embedder's
/// clock: the [shared driver loop](crate::socket) over [`Io`].
pub type WebSocket<S, C> = socket::WebSocket<Io<S>, C>;

/// The transport: an `embedded-io-async` stream.
#[derive(Debug)]
pub struct Io<S> {
    stream: S,
    /// Written since the stream was last flushed.
    unflushed: bool,
}

impl<S: Read + Write> Transport for Io<S> {
    type Error = Error<S::Error>;

    /// Reads straight into the connection's receive buffer.
    async fn read(&mut self, conn: &mut Connection) -> Result<(), Self::Error> {
        let size = conn.read_size_hint(READ_SIZE).min(READ_SIZE);
        let mut input = conn.read_buffer(size);
        let n = self
            .stream
            .read(input.unfilled())
            .await
            .map_err(Error::Io)?;
        input.advance(n);
        drop(input);
        if n == 0 {
            conn.handle_eof();
        }
        Ok(())
    }

    async fn write(&mut self, conn: &mut Connection) -> Result<(), Self::Error> {
        while conn.pending_output_len() > 0 {
            match self.stream.write(conn.pending_output()).await {
                Ok(0) => return Err(Error::Eof),
                Ok(n) => {
                    conn.consume_output(n);
                    self.unflushed = true;
                }
                Err(e) => return Err(Error::Io(e)),
            }
        }
        if self.unflushed {
            self.stream.flush().await.map_err(Error::Io)?;
            self.unflushed = false;
        }
        Ok(())
    }

    /// `embedded-io-async` has no half close: the owner closes the socket
    /// ([`into_inner`](WebSocket::into_inner)).
    async fn shutdown(&mut self) -> bool {
        false
    }
}

/// Accepts a client on `stream` with no subprotocol and no check of Origin.
pub fn accept<S, C>(
    stream: S,
    clock: C,
    config: Config,
) -> impl Future<Output = Result<WebSocket<S, C>, Error<S::Error>>>
where
    S: Read + Write,
    C: Clock,
{
    accept_with(stream, clock, config, |_| Ok(Accept::new()))
}

/// Accepts a client on `stream`, letting `decide` look at the request.
///
/// `decide` returns the [`Accept`] options, or a status and reason to
/// refuse with; the refusal is sent and the call fails with
/// [`Error::Handshake`]. A malformed request gets its 400, 426 or 431
/// response the same way, and a client too slow to send it a 408.
///
/// The handshake is one boxed future (its parser, its buffer, and the
/// arguments it holds until it starts): inline, it would sit in the
/// caller's task, on a small target often its stack, beside the WebSocket
/// for the connection's whole life, though it is done in milliseconds.
pub fn accept_with<S, C, F>(
    mut stream: S,
    clock: C,
    config: Config,
    decide: F,
) -> impl Future<Output = Result<WebSocket<S, C>, Error<S::Error>>>
where
    S: Read + Write,
    C: Clock,
    F: FnOnce(&Request) -> Result<Accept, (u16, String)>,
{
    Box::pin(async move {
        let (conn, protocol) =
            opening::accept(&mut Head::new(&mut stream), &clock, config, decide).await?;
        Ok(WebSocket::with_protocol(
            Io::new(stream),
            clock,
            conn,
            protocol,
        ))
    })
}

/// The opening handshake's reads and writes, on the stream.
struct Head<'a, S> {
    stream: &'a mut S,
    /// One read: a buffer that lives in the handshake's future, so small
    /// (the head is gathered in the handshake).
    buf: [u8; HEAD_READ],
}

impl<'a, S> Head<'a, S> {
    fn new(stream: &'a mut S) -> Self {
        Head {
            stream,
            buf: [0; HEAD_READ],
        }
    }
}

impl<S: Read + Write> opening::Head for Head<'_, S> {
    type Error = Error<S::Error>;

    async fn read_head(&mut self) -> Result<&[u8], Self::Error> {
        match self.stream.read(&mut self.buf).await {
            Ok(0) => Err(Error::Eof),
            Ok(n) => Ok(&self.buf[..n]),
            Err(e) => Err(Error::Io(e)),
        }
    }

    async fn write_head(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.stream.write_all(bytes).await.map_err(Error::Io)?;
        self.stream.flush().await.map_err(Error::Io)
    }
}

/// Performs the client handshake on an open `stream`.
///
/// The nonce and the masking keys come from `config.mask_keys`; without
/// the `std` feature there is no default source, and a client without one
/// fails with [`UsageError::NoKeySource`]. The handshake is one boxed
/// future, as [`accept_with`]'s is.
pub fn client<'a, S, C>(
    mut stream: S,
    clock: C,
    request: &'a ClientRequest,
    config: Config,
) -> impl Future<Output = Result<WebSocket<S, C>, Error<S::Error>>> + 'a
where
    S: Read + Write + 'a,
    C: Clock + 'a,
{
    Box::pin(async move {
        let (conn, protocol) =
            opening::client(&mut Head::new(&mut stream), &clock, request, config).await?;
        Ok(WebSocket::with_protocol(
            Io::new(stream),
            clock,
            conn,
            protocol,
        ))
    })
}

impl<S> Io<S> {
    fn new(stream: S) -> Self {
        Io {
            stream,
            unflushed: false,
        }
    }
}

/// What only this driver has: a WebSocket made from a stream, and the
/// stream back.
impl<S: Read + Write, C: Clock> WebSocket<S, C> {
    /// Wraps a stream on which the handshake already happened. The
    /// connection's timers run from now, on `clock`.
    pub fn from_connection(stream: S, clock: C, conn: Connection) -> Self {
        Self::new(Io::new(stream), clock, conn)
    }
}

impl<S, C> WebSocket<S, C> {
    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.transport().stream
    }

    /// The stream, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.transport_mut().stream
    }

    /// Gives the stream back, to close it.
    pub fn into_inner(self) -> S {
        self.into_transport().stream
    }
}
