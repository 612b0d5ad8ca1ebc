//! A blocking driver over any `std::io::Read + Write` stream.
//!
//! It moves bytes between the stream and a [`Connection`] and holds no
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

#[cfg(feature = "rustls")]
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;

use bytes::BytesMut;

use super::policy::{self, next_event, Next};
pub use super::{close_tcp, Connector, Error, WsUrl};
use super::{received, Clock};
use crate::handshake::{
    Accept, ClientHandshake, ClientRequest, HandshakeError, Progress, Request, ServerHandshake,
};
use crate::plumbing::Plumbing;
use crate::proxy::{Proxy, ProxyError, ProxyHandshake};
pub use crate::socket::{Offered, WhenFull, HIGH_WATER};
use crate::{CloseCode, Closed, Config, Connection, Event, Message, MessageKind, Timestamp};

/// The clock the driver reads for the core.
type Time = std::time::Instant;

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
    /// On a socket the driver opened: how to wake at the next deadline.
    timeouts: Option<WakeAt<S>>,
}

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

/// Connects to a `ws://` or `wss://` URL and performs the handshake:
/// through the proxy the environment names, if any, and for `wss://`
/// with TLS from a `rustls-tls-*` feature (see [`Connector`]).
pub fn connect(url: &str) -> Result<WebSocket<MaybeTlsStream>, Error> {
    connect_with(url, Config::default())
}

/// [`connect`] with a configuration of your choice.
pub fn connect_with(url: &str, config: Config) -> Result<WebSocket<MaybeTlsStream>, Error> {
    connect_with_connector(url, config, &Connector::new())
}

/// [`connect`] with a configuration, and a [`Connector`] that says which
/// proxy and which TLS configuration to use.
pub fn connect_with_connector(
    url: &str,
    config: Config,
    connector: &Connector,
) -> Result<WebSocket<MaybeTlsStream>, Error> {
    let url = WsUrl::parse(url)?;
    let tcp = match connector.proxy_for(&url)? {
        Some(proxy) => {
            let mut tcp = TcpStream::connect((proxy.host.as_str(), proxy.port))?;
            tunnel(&mut tcp, &proxy, &url)?;
            tcp
        }
        None => TcpStream::connect(url.socket_addr())?,
    };
    tcp.set_nodelay(true)?;
    let stream = if url.secure {
        secure(tcp, &url.host, connector)?
    } else {
        MaybeTlsStream::Plain(tcp)
    };
    client_timed(stream, &url.request(), config, Some(wake_at))
}

/// Opens the tunnel through `proxy` to `url`'s host and port.
fn tunnel(tcp: &mut TcpStream, proxy: &Proxy, url: &WsUrl) -> Result<(), Error> {
    let mut handshake = ProxyHandshake::new(proxy, &url.host, url.port);
    let mut buf = [0u8; 512];
    while !handshake.is_done() {
        if !handshake.output().is_empty() {
            tcp.write_all(handshake.output())?;
            let n = handshake.output().len();
            handshake.consume_output(n);
            continue;
        }
        let limit = handshake.read_limit().min(buf.len());
        let n = tcp.read(&mut buf[..limit])?;
        if n == 0 {
            return Err(Error::Proxy(ProxyError::Malformed(
                "the proxy closed the connection",
            )));
        }
        handshake.handle_read(&buf[..n])?;
    }
    Ok(())
}

/// TLS over `tcp` for `host`, the handshake done at once so that a bad
/// certificate is reported here.
#[cfg(feature = "rustls")]
fn secure(mut tcp: TcpStream, host: &str, connector: &Connector) -> Result<MaybeTlsStream, Error> {
    use super::{server_name, tls_error};
    let config = connector.tls_config()?;
    let mut tls = rustls::ClientConnection::new(config, server_name(host)?)
        .map_err(|e| Error::Tls(alloc::format!("{host}: {e}")))?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).map_err(|e| tls_error(host, e))?;
    }
    Ok(MaybeTlsStream::Rustls(Box::new(rustls::StreamOwned::new(
        tls, tcp,
    ))))
}

#[cfg(not(feature = "rustls"))]
fn secure(_tcp: TcpStream, _host: &str, _connector: &Connector) -> Result<MaybeTlsStream, Error> {
    Err(super::no_tls())
}

/// The stream [`connect`] opens: TCP for `ws://`, TLS over TCP for
/// `wss://`.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`, with rustls.
    #[cfg(feature = "rustls")]
    Rustls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP stream underneath (to set its read timeout, say).
    pub fn get_ref(&self) -> &TcpStream {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.get_ref(),
        }
    }
}

impl Read for MaybeTlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.read(buf),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.read(buf),
        }
    }
}

impl Write for MaybeTlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.write(buf),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.write_vectored(bufs),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.flush(),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.flush(),
        }
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

/// A read that returned because of the stream's read timeout, or a signal.
fn is_tick(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

impl<S: Read + Write> WebSocket<S> {
    fn new(stream: S, conn: Connection, protocol: Option<String>, buf: Vec<u8>) -> Self {
        WebSocket {
            stream,
            conn,
            buf,
            protocol,
            closed: None,
            timeouts: None,
        }
    }

    /// Wraps a stream on which the handshake already happened. The
    /// connection's timers run from now, on the driver's clock.
    pub fn from_connection(stream: S, mut conn: Connection) -> Self {
        conn.handle_timeout(Time::timestamp());
        Self::new(stream, conn, None, vec![0; READ_BUF])
    }

    /// The next data message. Pings are answered (and Pongs dropped) on
    /// the way. `Ok(None)`: the closing handshake finished; see
    /// [`closed`](WebSocket::closed). `Err(Error::Protocol(_))`: the peer
    /// broke the protocol, and we sent it a Close frame saying so.
    pub fn recv(&mut self) -> Result<Option<Message>, Error> {
        loop {
            if let Some(done) = received(self.recv_event()?) {
                return done;
            }
        }
    }

    /// The next event of any kind. After [`Event::Closed`], every call
    /// returns the same `Closed` again. Output is written as every driver
    /// writes it ([when output is written](crate::socket#when-output-is-written)):
    /// before the read that waits for the peer, not before handing out an
    /// event.
    pub fn recv_event(&mut self) -> Result<Event, Error> {
        loop {
            match next_event(&mut self.closed, &mut self.conn) {
                Next::Event(event) => return Ok(event),
                Next::End(closed) => {
                    self.finish();
                    return Ok(closed);
                }
                Next::Wait => {
                    self.flush()?;
                    self.fill()?;
                }
            }
        }
    }

    /// Reads once from the stream into the connection (or wakes on the
    /// stream's read timeout), then tells the connection the time.
    fn fill(&mut self) -> Result<(), Error> {
        if let Some(set) = self.timeouts {
            set(&self.stream, self.conn.poll_timeout())?;
        }
        match self.stream.read(&mut self.buf) {
            Ok(0) => self.conn.handle_eof(),
            Ok(n) => self.conn.handle_read(&self.buf[..n]),
            Err(e) if is_tick(&e) => {}
            Err(e) => return Err(e.into()),
        }
        self.tell_time();
        Ok(())
    }

    /// Tells the core the time, if it keeps a deadline: after every read
    /// (so silence is measured from the last bytes) and at every tick.
    fn tell_time(&mut self) {
        if self.conn.poll_timeout().is_some() {
            self.conn.handle_timeout(Time::timestamp());
        }
    }

    /// After the Closed event: write the last output, then, unless the
    /// transport is ours to close now (a server's, after the closing
    /// handshake), read and discard until the peer ends the stream (§7.1.1)
    /// or the core's closing deadline passes.
    fn finish(&mut self) {
        if self.flush().is_err() {
            return;
        }
        // What arrives now is dropped by the core; only the end counts.
        while !self.conn.should_close_transport() && !self.conn.is_finished() {
            if self.fill().is_err() {
                return;
            }
        }
    }
}

/// Commands: each queues its frames and writes them out.
impl<S: Read + Write> WebSocket<S> {
    /// Sends a message in one frame and flushes.
    pub fn send(&mut self, message: &Message) -> Result<(), Error> {
        self.conn.send_message(message)?;
        self.flush()
    }

    /// Sends a message prepared for many connections
    /// ([`PreparedMessage`](crate::PreparedMessage): encoded once, its
    /// payload shared) and flushes.
    pub fn send_prepared(&mut self, prepared: &crate::PreparedMessage) -> Result<(), Error> {
        self.conn.send_prepared(prepared)?;
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

    /// Sends a message from a buffer handed over, without copying a large
    /// one ([`Connection::send_owned`]: a client masks it in place), and
    /// flushes.
    pub fn send_owned(&mut self, kind: MessageKind, payload: BytesMut) -> Result<(), Error> {
        self.conn.send_owned(kind, payload)?;
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

    /// Queues a message in one frame; it goes out when
    /// [`recv`](WebSocket::recv) next waits for the peer, or on
    /// [`flush`](WebSocket::flush) or a `send_*`. Writes first if more
    /// than [`HIGH_WATER`] bytes wait.
    pub fn queue(&mut self, message: &Message) -> Result<(), Error> {
        self.conn.send_message(message)?;
        self.write_above_high_water()
    }

    /// Queues a prepared message as [`queue`](WebSocket::queue) queues a
    /// message.
    pub fn queue_prepared(&mut self, prepared: &crate::PreparedMessage) -> Result<(), Error> {
        self.conn.send_prepared(prepared)?;
        self.write_above_high_water()
    }

    fn write_above_high_water(&mut self) -> Result<(), Error> {
        if self.conn.pending_output_len() > HIGH_WATER {
            self.flush()?;
        }
        Ok(())
    }

    /// Offers a prepared message without writing: queued if at most
    /// `backlog` bytes already wait, otherwise `when_full` decides (miss
    /// this message, or close). A thread that writes to many peers in
    /// turn offers to each, then flushes each with a write timeout on its
    /// socket, so one peer that stopped reading holds at most `backlog`
    /// bytes and cannot stall the others for longer than the timeout.
    pub fn offer(
        &mut self,
        prepared: &crate::PreparedMessage,
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, Error> {
        self.offer_many(core::slice::from_ref(prepared), backlog, when_full)
    }

    /// Offers several prepared messages in order, as
    /// [`offer`](WebSocket::offer) offers one, the backlog checked before
    /// each.
    pub fn offer_many(
        &mut self,
        messages: &[crate::PreparedMessage],
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, Error> {
        Ok(policy::offer(&mut self.conn, messages, backlog, when_full)?)
    }

    /// How many bytes are queued and not yet written: what a peer that
    /// does not read makes the connection hold.
    pub fn backlog(&self) -> usize {
        self.conn.pending_output_len()
    }

    /// Whether messages can still be sent.
    pub fn can_send(&self) -> bool {
        self.conn.can_send()
    }

    /// Sends a Ping and flushes. The Pong arrives as [`Event::Pong`].
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.conn.ping(payload)?;
        self.flush()
    }

    /// Starts the closing handshake. Keep calling [`recv`](WebSocket::recv)
    /// until it returns `Ok(None)` to let the peer answer.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.conn.close(code, reason)?;
        self.flush()
    }

    /// Writes all pending output and flushes the stream.
    pub fn flush(&mut self) -> Result<(), Error> {
        let mut wrote = false;
        while self.conn.pending_output_len() > 0 {
            match write_some(&mut self.stream, &self.conn) {
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

    /// The stream, mutably (to set a read timeout, say).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Gives the stream back.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

/// One write of the connection's pending output.
fn write_some<S: Write>(stream: &mut S, conn: &Connection) -> io::Result<usize> {
    if conn.pending_output().len() == conn.pending_output_len() {
        // One piece: a plain write (for a socket, send rather than writev,
        // whose file layer costs more).
        stream.write(conn.pending_output())
    } else {
        // Frame headers and the payloads sent without a copy, in one
        // system call where the stream takes vectored writes.
        let mut slices = [IoSlice::new(&[]); 64];
        let n = conn.pending_output_vectored(&mut slices);
        stream.write_vectored(&slices[..n])
    }
}
