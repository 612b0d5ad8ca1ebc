//! A blocking driver over any `std::io::Read + Write` stream.
//!
//! It moves bytes between the stream and a [`Connection`](crate::Connection) and holds no
//! protocol logic of its own. Any stream works: a `TcpStream`, a TLS stream
//! wrapping one (pass the TLS stream: the driver never sees the
//! difference), a Unix socket, an in-memory pipe.
//!
//! ```no_run
//! use std::net::TcpListener;
//!
//! let listener = TcpListener::bind("127.0.0.1:9001")?;
//! for stream in listener.incoming() {
//!     let mut ws = rfc6455::blocking::accept(stream?)?;
//!     while let Some(message) = ws.recv()? {
//!         ws.send(&message)?;
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Timers
//!
//! The core keeps every deadline ([`Config::timeouts`]); the driver only
//! tells it the time. A blocking read cannot be interrupted from inside, so
//! the driver wakes on the stream's own read timeout: set one
//! (`TcpStream::set_read_timeout`) and every read that times out becomes a
//! tick at which the core's deadline is checked (the handshake deadline,
//! a heartbeat Ping, a silent peer's close, the closing handshake's end).
//! The tick sets the precision: with a 50 ms read timeout, a deadline is
//! met within 50 ms. Without a read timeout the timers run only when bytes
//! arrive.
//!
//! On the socket [`connect`] opens, the driver does this itself: before
//! every read it sets the socket's read timeout to the time left until
//! the core's next deadline, so the handshake timeout, the heartbeat and
//! the closing timeout fire on time, with no tick in between. For a stream
//! you pass in ([`client_with`], [`accept`]), set a read timeout yourself.
//!
//! # Writing
//!
//! Every `send_*` writes its frame and flushes before it returns, so the
//! unsent output never grows past one message: that is the backpressure.
//! `queue_*` and `offer*` only queue, for a loop that answers a burst of
//! messages with one write. Pongs and Close replies, and what was queued,
//! are written by [`WebSocket::recv`] before it next waits for the peer.
//!
//! # One API with the async drivers
//!
//! The commands that never wait (`offer`, `offer_many`, `backlog`,
//! `can_send`) are [`Driver`](crate::Driver)'s, the same on every driver:
//! `use rfc6455::Driver;`. The WebSocket implements the whole trait, so
//! code written once for every driver runs here too, through
//! [`block_on`].

use alloc::string::String;
use alloc::vec;
use std::io::{self, Read, Write};

use super::Clock;
pub use super::{close_tcp, Connector, Error, WsUrl};
use crate::handshake::{
    Accept, ClientHandshake, ClientRequest, HandshakeError, Progress, Request, ServerHandshake,
};
pub use crate::socket::{Offered, WhenFull, HIGH_WATER};
use crate::{Config, Timestamp};

mod dial;
mod websocket;

pub use dial::{connect, connect_with, connect_with_connector, MaybeTlsStream};
pub use websocket::WebSocket;

/// The clock the driver reads for the core.
type Time = std::time::Instant;

/// Size of the buffer each read fills.
const READ_BUF: usize = 32 * 1024;

pub use super::clock::SHUTDOWN_TICK;

/// Accepts a client on `stream` with the default configuration, no
/// subprotocol and no check of Origin.
pub fn accept<S: Read + Write>(stream: S) -> Result<WebSocket<S>, Error> {
    accept_with(stream, Config::default(), |_| Ok(Accept::new()))
}

/// Accepts a client on `stream`, letting `decide` look at the request.
///
/// `decide` returns the [`Accept`] options, or a status and reason to
/// refuse with (403 for a foreign Origin, 401 without credentials); the
/// refusal is sent and the call fails with [`Error::Handshake`].
/// A malformed request gets its 400, 426 or 431 response the same way,
/// and a client too slow to send it
/// ([`Timeouts::handshake`](crate::Timeouts::handshake)) a 408.
pub fn accept_with<S, F>(mut stream: S, config: Config, decide: F) -> Result<WebSocket<S>, Error>
where
    S: Read + Write,
    F: FnOnce(&Request) -> Result<Accept, (u16, String)>,
{
    let mut handshake = ServerHandshake::new(config);
    let mut buf = vec![0; READ_BUF];
    let request = loop {
        if let Err(e) = handshake.handle_timeout(Time::timestamp()) {
            return Err(refuse(&mut stream, e));
        }
        let Some(n) = read_handshake(&mut stream, &mut buf)? else {
            continue;
        };
        handshake = match handshake.handle_read(&buf[..n]) {
            Ok(Progress::Partial(handshake)) => handshake,
            Ok(Progress::Done(request)) => break request,
            Err(e) => return Err(refuse(&mut stream, e)),
        };
    };
    let options = match decide(&request) {
        Ok(options) => options,
        Err((status, reason)) => {
            stream.write_all(&request.reject(status, &reason))?;
            stream.flush()?;
            return Err(Error::Handshake(HandshakeError::Rejected(status)));
        }
    };
    match request.accept(options) {
        Ok(accepted) => {
            stream.write_all(&accepted.response)?;
            stream.flush()?;
            Ok(WebSocket::new(
                stream,
                accepted.connection,
                accepted.protocol,
                buf,
            ))
        }
        Err(e) => Err(refuse(&mut stream, e)),
    }
}

/// Sends the HTTP response for a failed handshake; returns the error.
fn refuse<S: Write>(stream: &mut S, e: HandshakeError) -> Error {
    let sent = stream
        .write_all(&e.response())
        .and_then(|()| stream.flush());
    match sent {
        Ok(()) => e.into(),
        Err(io) => io.into(),
    }
}

/// Performs the client handshake on `stream` for a `ws://` or `wss://` URL
/// (the URL gives the Host field and the path; the stream is already open).
pub fn client<S: Read + Write>(stream: S, url: &str) -> Result<WebSocket<S>, Error> {
    let url = WsUrl::parse(url)?;
    client_with(stream, &url.request(), Config::default())
}

/// Performs the client handshake on `stream` with a full request.
///
/// The handshake's timeout fires only if reads on `stream` time out (see
/// [Timers](self#timers)): give it a read timeout. [`connect`] does this
/// itself for the socket it opens.
pub fn client_with<S: Read + Write>(
    stream: S,
    request: &ClientRequest,
    config: Config,
) -> Result<WebSocket<S>, Error> {
    client_timed(stream, request, config, None)
}

/// Makes a stream's next read wait no longer than the core's next
/// deadline: on the sockets it opens, the driver does this before every
/// read, so every deadline fires on time, with no tick.
type WakeAt<S> = fn(&S, Option<Timestamp>) -> io::Result<()>;

/// [`WakeAt`] for the socket [`connect`] opens.
fn wake_at(stream: &MaybeTlsStream, deadline: Option<Timestamp>) -> io::Result<()> {
    super::read_until(stream.get_ref(), deadline)
}

fn client_timed<S: Read + Write>(
    mut stream: S,
    request: &ClientRequest,
    config: Config,
    timeouts: Option<WakeAt<S>>,
) -> Result<WebSocket<S>, Error> {
    let mut handshake = ClientHandshake::new(request, config);
    handshake.handle_timeout(Time::timestamp())?;
    stream.write_all(handshake.request())?;
    stream.flush()?;
    let mut buf = vec![0; READ_BUF];
    loop {
        handshake.handle_timeout(Time::timestamp())?;
        if let Some(set) = timeouts {
            set(&stream, handshake.poll_timeout())?;
        }
        let Some(n) = read_handshake(&mut stream, &mut buf)? else {
            continue;
        };
        handshake = match handshake.handle_read(&buf[..n])? {
            Progress::Partial(handshake) => handshake,
            Progress::Done(connected) => {
                let protocol = connected.response.protocol;
                let mut ws = WebSocket::new(stream, connected.connection, protocol, buf);
                ws.timeouts = timeouts;
                return Ok(ws);
            }
        };
    }
}

/// One read during the handshake: `None` for a tick of the stream's read
/// timeout; end of stream is an error.
fn read_handshake<S: Read>(stream: &mut S, buf: &mut [u8]) -> Result<Option<usize>, Error> {
    match stream.read(buf) {
        Ok(0) => Err(Error::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the stream ended during the opening handshake",
        ))),
        Ok(n) => Ok(Some(n)),
        Err(e) if is_tick(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Runs a future to its end on this thread: for code written once over
/// [`Driver`](crate::Driver) that runs on this driver. A future of the
/// blocking driver blocks inside and is done the first time it is polled;
/// any other future parks the thread until it is woken.
///
/// ```no_run
/// use rfc6455::{Driver, Message};
///
/// async fn echo<W: Driver>(ws: &mut W) -> Result<(), W::Error> {
///     while let Some(message) = ws.recv().await? {
///         ws.queue(&message).await?;
///     }
///     Ok(())
/// }
///
/// let stream = std::net::TcpStream::connect("127.0.0.1:9001")?;
/// let mut ws = rfc6455::blocking::client(stream, "ws://127.0.0.1:9001/")?;
/// rfc6455::blocking::block_on(echo(&mut ws))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn block_on<F: core::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl alloc::task::Wake for Unpark {
        fn wake(self: alloc::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = alloc::sync::Arc::new(Unpark(std::thread::current())).into();
    let mut cx = core::task::Context::from_waker(&waker);
    let mut future = core::pin::pin!(future);
    loop {
        if let core::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// A read that returned because of the stream's read timeout, or a signal.
fn is_tick(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}
