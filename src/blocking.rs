//! A blocking adapter over any `std::io::Read + Write` stream.
//!
//! It moves bytes between the stream and a [`Connection`] and holds no
//! protocol logic of its own. Any stream works: a `TcpStream`, a TLS stream
//! wrapping one (pass the TLS stream: the adapter never sees the
//! difference), a Unix socket, an in-memory pipe.
//!
//! ```no_run
//! use std::net::TcpListener;
//!
//! let listener = TcpListener::bind("127.0.0.1:9001")?;
//! for stream in listener.incoming() {
//!     let mut ws = rfc6455::blocking::accept(stream?)?;
//!     while let Some(message) = ws.read()? {
//!         ws.send(&message)?;
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Timers
//!
//! A blocking read cannot be interrupted from inside, so the timers of
//! [`Timeouts`] run on the stream's own read timeout: set one
//! (`TcpStream::set_read_timeout`) and every read that times out becomes a
//! tick at which the adapter checks the handshake deadline, sends a
//! heartbeat Ping, or gives up on a silent peer. Without a read timeout the
//! timers are checked only when bytes arrive.
//!
//! # Writing
//!
//! Every command writes its frame and flushes before it returns, so the
//! unsent output never grows past one message: that is the backpressure.
//! Pongs and Close replies are written by [`WebSocket::read`] as soon as the
//! Ping or Close that asks for them is read.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::adapter::closed_error;
pub use crate::adapter::{Error, Timeouts, WsUrl};
use crate::handshake::{Accept, ClientHandshake, ClientRequest, Request, ServerHandshake};
use crate::{CloseCode, Closed, Config, Connection, Event, Message, MessageKind, State};

/// Size of the buffer each read fills.
const READ_BUF: usize = 32 * 1024;

/// A WebSocket over a blocking stream.
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    conn: Connection,
    buf: Vec<u8>,
    protocol: Option<String>,
    closed: Option<Closed>,
    timeouts: Timeouts,
    last_seen: Instant,
    last_ping: Instant,
    closing_since: Option<Instant>,
}

/// Accepts a client on `stream` with the default configuration, no
/// subprotocol and no check of Origin.
pub fn accept<S: Read + Write>(stream: S) -> Result<WebSocket<S>, Error> {
    accept_with(stream, Config::default(), Timeouts::default(), |_| {
        Ok(Accept::new())
    })
}

/// Accepts a client on `stream`, letting `decide` look at the request.
///
/// `decide` returns the [`Accept`] options, or a status and reason to
/// refuse with (403 for a foreign Origin, 401 without credentials); the
/// refusal is sent and the call fails with [`Error::Handshake`].
/// A malformed request gets its 400, 426 or 431 response the same way.
pub fn accept_with<S, F>(
    mut stream: S,
    config: Config,
    timeouts: Timeouts,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: Read + Write,
    F: FnOnce(&Request) -> Result<Accept, (u16, String)>,
{
    let start = Instant::now();
    let mut handshake = ServerHandshake::new(config);
    let mut buf = vec![0; READ_BUF];
    let request = loop {
        let n = read_handshake(&mut stream, &mut buf, start, timeouts.handshake)?;
        match handshake.handle_read(&buf[..n]) {
            Ok(Some(request)) => break request,
            Ok(None) => {}
            Err(e) => {
                stream.write_all(&e.response())?;
                stream.flush()?;
                return Err(Error::Handshake(e));
            }
        }
    };
    let options = match decide(&request) {
        Ok(options) => options,
        Err((status, reason)) => {
            stream.write_all(&request.reject(status, &reason))?;
            stream.flush()?;
            return Err(Error::Handshake(
                crate::handshake::HandshakeError::Rejected(status),
            ));
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
                timeouts,
            ))
        }
        Err(e) => {
            stream.write_all(&e.response())?;
            stream.flush()?;
            Err(Error::Handshake(e))
        }
    }
}

/// Opens a TCP connection to a `ws://` URL and performs the handshake.
/// For `wss://`, open the TLS stream yourself and use [`client`].
pub fn connect(url: &str) -> Result<WebSocket<TcpStream>, Error> {
    connect_with(url, Config::default(), Timeouts::default())
}

/// [`connect`] with a configuration and timeouts of your choice.
pub fn connect_with(
    url: &str,
    config: Config,
    timeouts: Timeouts,
) -> Result<WebSocket<TcpStream>, Error> {
    let url = WsUrl::parse(url)?;
    if url.secure {
        return Err(Error::Url(
            "wss:// needs a TLS stream: open one and call blocking::client".into(),
        ));
    }
    let stream = TcpStream::connect(url.socket_addr())?;
    stream.set_nodelay(true)?;
    client_with(stream, &url.request(), config, timeouts)
}

/// Performs the client handshake on `stream` for a `ws://` or `wss://` URL
/// (the URL gives the Host field and the path; the stream is already open).
pub fn client<S: Read + Write>(stream: S, url: &str) -> Result<WebSocket<S>, Error> {
    let url = WsUrl::parse(url)?;
    client_with(
        stream,
        &url.request(),
        Config::default(),
        Timeouts::default(),
    )
}

/// Performs the client handshake on `stream` with a full request.
pub fn client_with<S: Read + Write>(
    mut stream: S,
    request: &ClientRequest,
    config: Config,
    timeouts: Timeouts,
) -> Result<WebSocket<S>, Error> {
    let start = Instant::now();
    let mut handshake = ClientHandshake::new(request, config);
    stream.write_all(handshake.request())?;
    stream.flush()?;
    let mut buf = vec![0; READ_BUF];
    loop {
        let n = read_handshake(&mut stream, &mut buf, start, timeouts.handshake)?;
        if let Some(connected) = handshake.handle_read(&buf[..n])? {
            let protocol = connected.response.protocol.clone();
            return Ok(WebSocket::new(
                stream,
                connected.connection,
                protocol,
                buf,
                timeouts,
            ));
        }
    }
}

/// One read during the handshake: end of stream is an error, and so is
/// the deadline.
fn read_handshake<S: Read>(
    stream: &mut S,
    buf: &mut [u8],
    start: Instant,
    limit: Option<Duration>,
) -> Result<usize, Error> {
    loop {
        if limit.is_some_and(|limit| start.elapsed() > limit) {
            return Err(Error::Timeout("opening handshake"));
        }
        match stream.read(buf) {
            Ok(0) => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stream ended during the opening handshake",
                )))
            }
            Ok(n) => return Ok(n),
            Err(e) if is_tick(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// A read that returned because of the stream's read timeout, or a signal.
fn is_tick(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

impl<S: Read + Write> WebSocket<S> {
    fn new(
        stream: S,
        conn: Connection,
        protocol: Option<String>,
        buf: Vec<u8>,
        timeouts: Timeouts,
    ) -> Self {
        let now = Instant::now();
        WebSocket {
            stream,
            conn,
            buf,
            protocol,
            closed: None,
            timeouts,
            last_seen: now,
            last_ping: now,
            closing_since: None,
        }
    }

    /// Wraps a stream on which the handshake already happened.
    pub fn from_connection(stream: S, conn: Connection) -> Self {
        Self::new(stream, conn, None, vec![0; READ_BUF], Timeouts::default())
    }

    /// The next data message. Pings are answered (and Pongs dropped) on
    /// the way. `Ok(None)`: the closing handshake finished; see
    /// [`closed`](WebSocket::closed). `Err(Error::Protocol(_))`: the peer
    /// broke the protocol, and we sent it a Close frame saying so.
    pub fn read(&mut self) -> Result<Option<Message>, Error> {
        loop {
            match self.read_event()? {
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
    pub fn read_event(&mut self) -> Result<Event, Error> {
        loop {
            if let Some(closed) = &self.closed {
                return Ok(Event::Closed(Box::new(closed.clone())));
            }
            if let Some(event) = self.conn.poll_event() {
                self.flush()?;
                if let Event::Closed(closed) = &event {
                    self.closed = Some(Closed::clone(closed));
                    self.finish()?;
                }
                return Ok(event);
            }
            self.flush()?;
            self.fill()?;
        }
    }

    /// Reads once from the stream into the connection, or runs the timers
    /// if the read timed out.
    fn fill(&mut self) -> Result<(), Error> {
        match self.stream.read(&mut self.buf) {
            Ok(0) => self.conn.handle_eof(),
            Ok(n) => {
                self.last_seen = Instant::now();
                self.conn.handle_read(&self.buf[..n]);
            }
            Err(e) if is_tick(&e) => {}
            Err(e) => return Err(e.into()),
        }
        self.run_timers()
    }

    fn run_timers(&mut self) -> Result<(), Error> {
        let now = Instant::now();
        if self.conn.state() != State::Open {
            let since = *self.closing_since.get_or_insert(now);
            if self.timeouts.close.is_some_and(|t| now - since > t) {
                return Err(Error::Timeout("closing handshake"));
            }
            return Ok(());
        }
        let silent = now - self.last_seen;
        if self.timeouts.idle.is_some_and(|t| silent > t) {
            self.conn.close(CloseCode::GOING_AWAY, "idle timeout")?;
            self.closing_since = Some(now);
        } else if let Some(interval) = self.timeouts.ping_interval {
            if silent > interval && now - self.last_ping > interval {
                self.conn.ping(b"")?;
                self.last_ping = now;
            }
        }
        self.flush()
    }

    /// After the Closed event: the client waits for the server to end the
    /// stream (§7.1.1), discarding anything else.
    fn finish(&mut self) -> Result<(), Error> {
        self.flush()?;
        let start = Instant::now();
        while !self.conn.should_close_transport() {
            if self.timeouts.close.is_some_and(|t| start.elapsed() > t) {
                break;
            }
            match self.stream.read(&mut self.buf) {
                Ok(0) => self.conn.handle_eof(),
                Ok(_) => {}
                Err(e) if is_tick(&e) => {}
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Sends a message in one frame and flushes.
    pub fn send(&mut self, message: &Message) -> Result<(), Error> {
        self.conn.send_message(message)?;
        self.flush()
    }

    /// Sends a text message and flushes.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.conn.send_text(text)?;
        self.flush()
    }

    /// Sends a binary message and flushes.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.conn.send_binary(data)?;
        self.flush()
    }

    /// Sends a message split into frames of `fragment_size` bytes, and flushes.
    pub fn send_fragmented(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fragment_size: usize,
    ) -> Result<(), Error> {
        self.conn.send_fragmented(kind, data, fragment_size)?;
        self.flush()
    }

    /// Sends a Ping and flushes. The Pong arrives as [`Event::Pong`].
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.conn.ping(payload)?;
        self.flush()
    }

    /// Starts the closing handshake. Keep calling [`read`](WebSocket::read)
    /// until it returns `Ok(None)` to let the peer answer.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.conn.close(code, reason)?;
        self.closing_since = Some(Instant::now());
        self.flush()
    }

    /// Writes all pending output and flushes the stream.
    pub fn flush(&mut self) -> Result<(), Error> {
        let mut wrote = false;
        while self.conn.pending_output_len() > 0 {
            // Frame headers and the payloads sent without a copy, in one
            // system call where the stream takes vectored writes.
            let mut slices = [IoSlice::new(&[]); 64];
            let n = self.conn.pending_output_vectored(&mut slices);
            match self.stream.write_vectored(&slices[..n]) {
                Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.conn.consume_output(n);
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if wrote {
            self.stream.flush()?;
        }
        Ok(())
    }

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

    /// The stream, mutably (to set a read timeout, say).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Gives the stream back.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

/// Closes a TCP stream without losing what was last written to it.
///
/// Closing a socket whose receive queue still holds bytes makes the kernel
/// send a reset, and a reset can destroy data the peer has not read yet,
/// such as our Close frame. So this shuts down our sending side (the peer
/// sees end of stream after our last frame), then reads and discards until
/// the peer closes too or `timeout` passes.
pub fn close_tcp(stream: TcpStream, timeout: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
    let start = Instant::now();
    let mut sink = [0u8; 4096];
    while start.elapsed() < timeout {
        match (&stream).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}
