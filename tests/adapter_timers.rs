//! One table of timer behaviour, run over real TCP sockets on 127.0.0.1
//! for every adapter: the blocking one, the tokio one, the
//! embedded-io-async one (over tokio sockets, with tokio's clock behind
//! its `Clock`) and the compio driver (io_uring) must behave the same, since none holds a timer of its own
//! (the core decides every deadline; an adapter only sleeps until it).
//!
//! Each row puts one side under test (server or client, on an adapter)
//! against a raw peer: a plain blocking socket with the sans-IO core
//! deciding what its bytes mean, which misbehaves as the row asks (reads
//! nothing, never answers the handshake, never answers a Close). The
//! durations are short so the table runs in a few seconds; the
//! assertions are on what happened (which error, which close code, how
//! many Pings at least), never on how long it took.
#![cfg(all(feature = "blocking", feature = "tokio"))]

use rfc6455::Driver;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rfc6455::blocking::Error;
use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, Progress, ServerHandshake};
use rfc6455::{CloseCode, Closed, Config, Connection, Event, Role, Timeouts};

/// The bound on every wait: a row that needs longer is hung, not slow.
const LIMIT: Duration = Duration::from_secs(10);
/// The blocking adapter's tick: the read timeout of its sockets.
const TICK: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug)]
enum Adapter {
    Blocking,
    Tokio,
    #[cfg(feature = "embedded-io-async")]
    Embedded,
    #[cfg(feature = "compio")]
    Compio,
}

const ADAPTERS: &[Adapter] = &[
    Adapter::Blocking,
    Adapter::Tokio,
    #[cfg(feature = "embedded-io-async")]
    Adapter::Embedded,
    #[cfg(feature = "compio")]
    Adapter::Compio,
];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How the side under test ended: its handshake's error, or how its
/// connection closed.
type Outcome = Result<Option<Closed>, Error>;

/// What the application on the side under test does once connected.
#[derive(Clone, Copy, Debug)]
enum App {
    /// Echoes every message until the connection ends.
    Echo,
    /// Starts the closing handshake at once, then reads until the end.
    CloseAtOnce,
}

fn config(f: impl FnOnce(&mut Timeouts)) -> Config {
    let mut config = Config::default();
    f(&mut config.timeouts);
    config
}

// ----- the side under test -----

/// Accepts one connection with `adapter` and runs `app` on it; the
/// outcome arrives on the receiver.
fn server(adapter: Adapter, config: Config, app: App) -> (SocketAddr, mpsc::Receiver<Outcome>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_nodelay(true).unwrap();
        let outcome = match adapter {
            Adapter::Blocking => {
                stream.set_read_timeout(Some(TICK)).unwrap();
                rfc6455::blocking::accept_with(stream, config, |_| Ok(Accept::new()))
                    .and_then(|ws| run_blocking(ws, app))
            }
            Adapter::Tokio => runtime().block_on(async move {
                stream.set_nonblocking(true).unwrap();
                let stream = tokio::net::TcpStream::from_std(stream).unwrap();
                let ws = rfc6455::tokio::accept_with(stream, config, |_| Ok(Accept::new())).await?;
                run_tokio(ws, app).await
            }),
            #[cfg(feature = "embedded-io-async")]
            Adapter::Embedded => runtime().block_on(async move {
                let stream = embedded::stream(stream);
                let accepted =
                    rfc6455::embedded::accept_with(stream, embedded::TokioClock, config, |_| {
                        Ok(Accept::new())
                    });
                embedded::run(accepted.await.map_err(embedded::error)?, app).await
            }),
            #[cfg(feature = "compio")]
            Adapter::Compio => on_compio::block_on(async move {
                let stream = compio::net::TcpStream::from_std(stream).unwrap();
                let ws =
                    rfc6455::compio::accept_with(stream, config, |_| Ok(Accept::new())).await?;
                on_compio::run(ws, app).await
            }),
        };
        let _ = tx.send(outcome);
    });
    (addr, rx)
}

/// Connects to `addr` with `adapter` and runs `app`; the outcome arrives
/// on the receiver.
fn client(adapter: Adapter, addr: SocketAddr, config: Config, app: App) -> mpsc::Receiver<Outcome> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let request = ClientRequest::new(addr.to_string(), "/");
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let outcome = match adapter {
            Adapter::Blocking => {
                stream.set_read_timeout(Some(TICK)).unwrap();
                rfc6455::blocking::client_with(stream, &request, config)
                    .and_then(|ws| run_blocking(ws, app))
            }
            Adapter::Tokio => runtime().block_on(async move {
                stream.set_nonblocking(true).unwrap();
                let stream = tokio::net::TcpStream::from_std(stream).unwrap();
                let ws = rfc6455::tokio::client_with(stream, &request, config).await?;
                run_tokio(ws, app).await
            }),
            #[cfg(feature = "embedded-io-async")]
            Adapter::Embedded => runtime().block_on(async move {
                let stream = embedded::stream(stream);
                let connected =
                    rfc6455::embedded::client(stream, embedded::TokioClock, &request, config);
                embedded::run(connected.await.map_err(embedded::error)?, app).await
            }),
            #[cfg(feature = "compio")]
            Adapter::Compio => on_compio::block_on(async move {
                let stream = compio::net::TcpStream::from_std(stream).unwrap();
                let ws = rfc6455::compio::client_with(stream, &request, config).await?;
                on_compio::run(ws, app).await
            }),
        };
        let _ = tx.send(outcome);
    });
    rx
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn run_blocking(mut ws: rfc6455::blocking::WebSocket<TcpStream>, app: App) -> Outcome {
    if let App::CloseAtOnce = app {
        ws.close(CloseCode::NORMAL, "bye")?;
    }
    while let Some(message) = ws.recv()? {
        ws.send(&message)?;
    }
    Ok(ws.closed().cloned())
}

async fn run_tokio(mut ws: rfc6455::tokio::WebSocket<tokio::net::TcpStream>, app: App) -> Outcome {
    if let App::CloseAtOnce = app {
        ws.close(CloseCode::NORMAL, "bye").await?;
    }
    while let Some(message) = ws.recv().await? {
        ws.send(&message).await?;
    }
    Ok(ws.closed().cloned())
}

/// The compio driver: compio's runtime and sockets, the standard clock.
#[cfg(feature = "compio")]
mod on_compio {
    use rfc6455::compio::WebSocket;
    use rfc6455::Driver;

    use super::{App, CloseCode, Outcome};

    pub fn block_on(work: impl std::future::Future<Output = Outcome>) -> Outcome {
        rfc6455::compio::runtime().unwrap().block_on(work)
    }

    pub async fn run(mut ws: WebSocket<compio::net::TcpStream>, app: App) -> Outcome {
        if let App::CloseAtOnce = app {
            ws.close(CloseCode::NORMAL, "bye").await?;
        }
        while let Some(message) = ws.recv().await? {
            ws.send(&message).await?;
        }
        Ok(ws.closed().cloned())
    }
}

#[cfg(feature = "embedded-io-async")]
#[path = "common/tokio_clock.rs"]
mod tokio_clock;

/// The embedded-io-async adapter on a host: tokio sockets through
/// embedded-io-adapters' bridge, tokio's clock behind `Clock`.
#[cfg(feature = "embedded-io-async")]
mod embedded {
    use embedded_io_adapters::tokio_1::FromTokio;
    use rfc6455::embedded::{Error as EmbeddedError, WebSocket};
    use rfc6455::Driver;

    use super::{App, CloseCode, Error, Outcome};

    pub type Stream = FromTokio<tokio::net::TcpStream>;

    pub fn stream(stream: std::net::TcpStream) -> Stream {
        stream.set_nonblocking(true).unwrap();
        FromTokio::new(tokio::net::TcpStream::from_std(stream).unwrap())
    }

    pub use super::tokio_clock::TokioClock;

    /// The embedded adapter's error as the other adapters spell it.
    pub fn error(e: EmbeddedError<std::io::Error>) -> Error {
        match e {
            EmbeddedError::Io(e) => Error::Io(e),
            EmbeddedError::Eof => Error::Io(std::io::ErrorKind::UnexpectedEof.into()),
            EmbeddedError::Handshake(e) => Error::Handshake(e),
            EmbeddedError::Protocol(e) => Error::Protocol(e),
            EmbeddedError::Usage(e) => Error::Usage(e),
            EmbeddedError::Timeout(what) => Error::Timeout(what),
            other => panic!("an embedded error the table does not know: {other:?}"),
        }
    }

    pub async fn run(mut ws: WebSocket<Stream, TokioClock>, app: App) -> Outcome {
        if let App::CloseAtOnce = app {
            ws.close(CloseCode::NORMAL, "bye").await.map_err(error)?;
        }
        while let Some(message) = ws.recv().await.map_err(error)? {
            ws.send(&message).await.map_err(error)?;
        }
        Ok(ws.closed().cloned())
    }
}

fn outcome(what: &str, rx: &mpsc::Receiver<Outcome>) -> Outcome {
    rx.recv_timeout(LIMIT)
        .unwrap_or_else(|e| panic!("{what}: no outcome within {LIMIT:?}: {e}"))
}

fn assert_timeout(what: &str, outcome: Outcome) {
    match outcome {
        Err(Error::Timeout(_)) => {}
        other => panic!("{what}: expected a timeout, got {other:?}"),
    }
}

// ----- the raw peer -----

/// A peer with no timers, on a plain socket: the core decodes what it
/// reads and encodes what it answers, but it reads only when told to.
struct Peer {
    stream: TcpStream,
    conn: Connection,
    buf: Vec<u8>,
}

impl Peer {
    fn new(stream: TcpStream, conn: Connection) -> Peer {
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Peer {
            stream,
            conn,
            buf: vec![0; 64 * 1024],
        }
    }

    fn quiet() -> Config {
        let mut config = Config::default();
        config.timeouts = Timeouts::default();
        config.timeouts.close = None;
        config
    }

    /// A client peer: connects and completes the handshake.
    fn connect(addr: SocketAddr) -> Peer {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let mut hs =
            ClientHandshake::new(&ClientRequest::new(addr.to_string(), "/"), Peer::quiet());
        stream.write_all(hs.request()).unwrap();
        let mut buf = [0; 4096];
        loop {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "the server closed during the handshake");
            hs = match hs.handle_read(&buf[..n]).unwrap() {
                Progress::Partial(hs) => hs,
                Progress::Done(connected) => return Peer::new(stream, connected.connection),
            };
        }
    }

    /// A server peer: accepts one connection and completes the handshake.
    fn accept(listener: &TcpListener) -> Peer {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let mut hs = ServerHandshake::new(Peer::quiet());
        let mut buf = [0; 4096];
        loop {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "the client closed during the handshake");
            hs = match hs.handle_read(&buf[..n]).unwrap() {
                Progress::Partial(hs) => hs,
                Progress::Done(request) => {
                    let accepted = request.accept(Accept::new()).unwrap();
                    stream.write_all(&accepted.response).unwrap();
                    return Peer::new(stream, accepted.connection);
                }
            };
        }
    }

    /// Writes what the core queued (Pongs, Close replies).
    fn flush(&mut self) {
        while !self.conn.pending_output().is_empty() {
            let n = self.stream.write(self.conn.pending_output()).unwrap_or(0);
            if n == 0 {
                return;
            }
            self.conn.consume_output(n);
        }
    }

    /// Reads, answering as the core says, until the connection closes;
    /// returns every event, the `Closed` last.
    fn events_until_closed(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            while let Some(event) = self.conn.poll_event() {
                let last = matches!(event, Event::Closed(_));
                events.push(event);
                if last {
                    self.flush();
                    return events;
                }
            }
            self.flush();
            match self.stream.read(&mut self.buf) {
                Ok(0) | Err(_) => self.conn.handle_eof(),
                Ok(n) => self.conn.handle_read(&self.buf[..n]),
            }
        }
    }

    /// Answers everything (Pings with Pongs) for `duration`, then closes
    /// and reads until the end.
    fn answer_for(&mut self, duration: Duration) -> Vec<Event> {
        let mut events = Vec::new();
        self.stream.set_read_timeout(Some(ms(10))).unwrap();
        let start = std::time::Instant::now();
        while start.elapsed() < duration {
            match self.stream.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => self.conn.handle_read(&self.buf[..n]),
                Err(_) => {}
            }
            while let Some(event) = self.conn.poll_event() {
                events.push(event);
            }
            self.flush();
        }
        self.stream.set_read_timeout(Some(LIMIT)).unwrap();
        self.conn.close(CloseCode::NORMAL, "done").unwrap();
        events.extend(self.events_until_closed());
        events
    }
}

fn close_code(events: &[Event]) -> Option<CloseCode> {
    match events.last() {
        Some(Event::Closed(closed)) => closed.received.as_ref().map(|f| f.code),
        other => panic!("the events end with {other:?}"),
    }
}

fn pings(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Ping(_)))
        .count()
}

/// The side under test in `role`, against a raw peer; `peer` plays the
/// peer's part and returns what it saw.
fn run_row(
    adapter: Adapter,
    role: Role,
    config: Config,
    app: App,
    peer: impl FnOnce(&mut Peer) -> Vec<Event>,
) -> (Outcome, Vec<Event>) {
    let what = format!("{adapter:?} {role:?}");
    match role {
        Role::Server => {
            let (addr, rx) = server(adapter, config, app);
            let mut raw = Peer::connect(addr);
            let seen = peer(&mut raw);
            (outcome(&what, &rx), seen)
        }
        Role::Client => {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let rx = client(adapter, listener.local_addr().unwrap(), config, app);
            let mut raw = Peer::accept(&listener);
            let seen = peer(&mut raw);
            (outcome(&what, &rx), seen)
        }
    }
}

// ----- the table -----

/// A peer that reads nothing (so answers no Ping) is pinged, then closed
/// with 1001, and the side under test gives up when its Close is not
/// answered either.
#[test]
fn a_silent_peer_is_closed_with_1001() {
    for &adapter in ADAPTERS {
        for role in [Role::Server, Role::Client] {
            let config = config(|t| {
                t.ping_interval = Some(ms(100));
                t.idle = Some(ms(400));
                t.close = Some(ms(300));
            });
            let (outcome, seen) = run_row(adapter, role, config, App::Echo, |peer| {
                // Silent until the other side has given up (its outcome
                // comes first), then reads what it was sent.
                thread::sleep(ms(1500));
                peer.events_until_closed()
            });
            let what = format!("{adapter:?} {role:?}");
            assert_timeout(&what, outcome);
            assert!(pings(&seen) >= 1, "{what}: {seen:?}");
            assert_eq!(close_code(&seen), Some(CloseCode::GOING_AWAY), "{what}");
        }
    }
}

/// A peer that answers every Ping stays connected through many idle
/// timeouts' worth of application silence.
#[test]
fn an_answering_peer_stays_connected() {
    for &adapter in ADAPTERS {
        for role in [Role::Server, Role::Client] {
            let config = config(|t| {
                t.ping_interval = Some(ms(100));
                t.idle = Some(ms(300));
            });
            let (outcome, seen) = run_row(adapter, role, config, App::Echo, |peer| {
                peer.answer_for(ms(1200))
            });
            let what = format!("{adapter:?} {role:?}");
            match outcome {
                Ok(Some(closed)) => assert!(closed.is_clean(), "{what}: {closed:?}"),
                other => panic!("{what}: expected a clean close, got {other:?}"),
            }
            assert!(pings(&seen) >= 3, "{what}: only {} pings", pings(&seen));
            assert_eq!(close_code(&seen), Some(CloseCode::NORMAL), "{what}");
        }
    }
}

/// A Close that the peer never answers ends the connection at the
/// closing deadline.
#[test]
fn an_unanswered_close_times_out() {
    for &adapter in ADAPTERS {
        for role in [Role::Server, Role::Client] {
            let config = config(|t| t.close = Some(ms(300)));
            let (outcome, seen) = run_row(adapter, role, config, App::CloseAtOnce, |peer| {
                thread::sleep(ms(1000));
                peer.events_until_closed()
            });
            let what = format!("{adapter:?} {role:?}");
            assert_timeout(&what, outcome);
            assert_eq!(close_code(&seen), Some(CloseCode::NORMAL), "{what}");
        }
    }
}

/// A client that sends its request one byte at a time is answered 408
/// when the handshake's time is up.
#[test]
fn a_slow_request_gets_408() {
    for &adapter in ADAPTERS {
        let config = config(|t| t.handshake = Some(ms(400)));
        let (addr, rx) = server(adapter, config, App::Echo);
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let request = ClientHandshake::new(&ClientRequest::new("h", "/"), Config::default())
            .request()
            .to_vec();
        for byte in &request[..10] {
            stream.write_all(&[*byte]).unwrap();
            thread::sleep(ms(20));
        }
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let response = String::from_utf8_lossy(&response);
        assert!(
            response.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{adapter:?}: {response:?}"
        );
        assert_timeout(&format!("{adapter:?}"), outcome("server", &rx));
    }
}

/// A server that accepts the connection but never answers the request
/// leaves the client with a timeout.
#[test]
fn an_unanswered_request_times_out() {
    for &adapter in ADAPTERS {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let config = config(|t| t.handshake = Some(ms(300)));
        let rx = client(adapter, listener.local_addr().unwrap(), config, App::Echo);
        let (_held, _) = listener.accept().unwrap();
        assert_timeout(&format!("{adapter:?}"), outcome("client", &rx));
    }
}
