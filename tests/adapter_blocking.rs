//! The blocking adapter over real TCP sockets on 127.0.0.1: echo, the
//! closing handshake from either side, protocol and transport errors, the
//! handshake timeout, a client vanishing mid-frame, and a blocking client
//! against the tokio server.
//!
//! A blocking call cannot be cancelled, so every piece of work that could
//! hang runs on its own thread and the test waits for it at most [`LIMIT`];
//! raw sockets have read timeouts of the same length.
#![cfg(feature = "blocking")]

use rfc6455::Driver;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use rfc6455::blocking::{self, close_tcp, Error, WebSocket};
use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, Progress};
use rfc6455::{
    CloseCode, Closed, Config, Connection, Event, Initiator, Message, MessageKind, ProtocolError,
    Role, Timeouts,
};

/// The bound on every wait: a test that needs longer is hung, not slow.
const LIMIT: Duration = Duration::from_secs(10);

/// Runs `work` on its own thread and waits at most [`LIMIT`] for it, so a
/// blocking call that hangs fails the test instead of hanging it. A panic
/// on that thread is re-raised here.
fn bounded<T: Send + 'static>(what: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(work)));
    });
    match rx.recv_timeout(LIMIT) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!("{what}: nothing within {LIMIT:?}"),
    }
}

/// The default configuration with some timeouts changed.
fn timeouts(f: impl FnOnce(&mut Timeouts)) -> Config {
    // `Timeouts` is non_exhaustive: start from the default and change fields.
    let mut config = Config::default();
    f(&mut config.timeouts);
    config
}

fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Runs `serve` on the server end of one connection, on its own thread,
/// then closes the socket without losing the last frame.
fn serve_one<T: Send + 'static>(
    listener: TcpListener,
    serve: impl FnOnce(&mut WebSocket<TcpStream>) -> T + Send + 'static,
) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let mut ws = blocking::accept(stream).expect("server handshake");
        let result = serve(&mut ws);
        let _ = tx.send(result);
        close_tcp(ws.into_inner(), Duration::from_secs(2));
    });
    rx
}

fn server_result<T>(what: &str, rx: &mpsc::Receiver<T>) -> T {
    rx.recv_timeout(LIMIT)
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// A client whose frames the test writes by hand: a plain socket with the
/// sans-IO client core deciding what the bytes mean.
struct RawPeer {
    stream: TcpStream,
    conn: Connection,
    buf: Vec<u8>,
}

impl RawPeer {
    fn connect(addr: SocketAddr) -> RawPeer {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        stream.set_write_timeout(Some(LIMIT)).unwrap();
        let mut handshake = ClientHandshake::new(
            &ClientRequest::new(addr.to_string(), "/raw"),
            Config::default(),
        );
        stream.write_all(handshake.request()).unwrap();
        let mut buf = vec![0; 64 * 1024];
        let conn = loop {
            let n = stream.read(&mut buf).expect("handshake response");
            assert!(n > 0, "the server closed during the handshake");
            handshake = match handshake.handle_read(&buf[..n]).unwrap() {
                Progress::Partial(handshake) => handshake,
                Progress::Done(connected) => break connected.connection,
            };
        };
        RawPeer { stream, conn, buf }
    }

    fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Writes whatever the core queued.
    fn flush(&mut self) {
        let mut out = Vec::new();
        while !self.conn.pending_output().is_empty() {
            out.extend_from_slice(self.conn.pending_output());
            self.conn.consume_output(self.conn.pending_output().len());
        }
        self.write(&out);
    }

    /// The next event, reading from the socket as needed. Call it no more
    /// after it gave [`Event::Closed`].
    fn next_event(&mut self) -> Event {
        loop {
            if let Some(event) = self.conn.poll_event() {
                return event;
            }
            let n = self.stream.read(&mut self.buf).expect("peer read");
            if n == 0 {
                self.conn.handle_eof();
            } else {
                self.conn.handle_read(&self.buf[..n]);
            }
        }
    }

    /// Events up to and including [`Event::Closed`]: the others, and how it ended.
    fn events_until_closed(&mut self) -> (Vec<Event>, Closed) {
        let mut events = Vec::new();
        loop {
            match self.next_event() {
                Event::Closed(closed) => return (events, *closed),
                event => events.push(event),
            }
        }
    }

    /// Reads and discards until the server ends the stream.
    fn expect_eof(&mut self) {
        while self
            .stream
            .read(&mut self.buf)
            .expect("read until end of stream")
            > 0
        {}
    }
}

/// How a connection of the echo server ended.
type Outcome = Result<Option<Closed>, Error>;

/// The echo server's reports, keyed by the client's address.
struct Outcomes {
    rx: mpsc::Receiver<(SocketAddr, Outcome)>,
    seen: HashMap<SocketAddr, Outcome>,
}

impl Outcomes {
    fn of(&mut self, peer: SocketAddr) -> Outcome {
        loop {
            if let Some(outcome) = self.seen.remove(&peer) {
                return outcome;
            }
            let (addr, outcome) = self
                .rx
                .recv_timeout(LIMIT)
                .expect("the server reports every connection");
            self.seen.insert(addr, outcome);
        }
    }
}

/// An accept loop like `examples/echo_server.rs --blocking`: a thread per
/// connection, the timers ticking on a short read timeout, each connection
/// reporting how it ended.
fn spawn_echo_server(timeouts: Config) -> (SocketAddr, Outcomes) {
    let (listener, addr) = listener();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            let timeouts = timeouts.clone();
            thread::spawn(move || {
                let peer = stream.peer_addr().unwrap();
                stream.set_nodelay(true).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let mut ws = match blocking::accept_with(stream, timeouts, |_| Ok(Accept::new())) {
                    Ok(ws) => ws,
                    Err(e) => {
                        let _ = tx.send((peer, Err(e)));
                        return;
                    }
                };
                let outcome = echo(&mut ws);
                let _ = tx.send((peer, outcome));
                close_tcp(ws.into_inner(), Duration::from_secs(2));
            });
        }
    });
    (
        addr,
        Outcomes {
            rx,
            seen: HashMap::new(),
        },
    )
}

fn echo(ws: &mut WebSocket<TcpStream>) -> Outcome {
    while let Some(message) = ws.recv()? {
        ws.send(&message)?;
    }
    Ok(ws.closed().cloned())
}

/// One client of a server at `url`: a message there and back, then the
/// closing handshake. Returns the client's address.
fn echo_once(url: String, text: &'static str) -> SocketAddr {
    bounded("echo client", move || {
        let mut ws = blocking::connect(&url).expect("connect");
        let local = ws.get_ref().get_ref().local_addr().unwrap();
        ws.send_text(text).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Message::from(text)));
        ws.close(CloseCode::NORMAL, "bye").unwrap();
        assert_eq!(ws.recv().unwrap(), None);
        assert!(ws.closed().unwrap().is_clean());
        local
    })
}

fn assert_clean(outcome: Outcome) {
    match outcome {
        Ok(Some(closed)) => assert!(closed.is_clean(), "{closed:?}"),
        other => panic!("expected a clean close, got {other:?}"),
    }
}

// ----- echo -----

/// Text, binary, a fragmented message and a Ping over a `TcpStream`, then
/// the closing handshake.
#[test]
fn echo_over_tcp() {
    let (addr, mut outcomes) = spawn_echo_server(Config::default());
    let local = bounded("client", move || {
        let mut ws = blocking::connect(&format!("ws://{addr}/echo")).expect("connect");
        let local = ws.get_ref().get_ref().local_addr().unwrap();

        ws.send_text("Hello").unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Message::from("Hello")));
        ws.send_binary(&[0, 1, 2, 255]).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Message::from(vec![0, 1, 2, 255])));
        let big: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        ws.send_fragmented(MessageKind::Binary, &big, 4096).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Message::from(big)));

        ws.ping(b"heartbeat").unwrap();
        assert_eq!(
            ws.recv_event().unwrap(),
            Event::Pong(b"heartbeat".to_vec().into())
        );

        ws.close(CloseCode::NORMAL, "").unwrap();
        assert_eq!(ws.recv().unwrap(), None);
        // Every later read gives the same answer.
        assert_eq!(ws.recv().unwrap(), None);
        assert!(ws.closed().unwrap().is_clean());
        local
    });
    assert_clean(outcomes.of(local));
}

/// While the server is blocked in `read`, a Ping gets its Pong with the
/// same payload; a Close gets its reply and ends `read` with `Ok(None)`.
#[test]
fn read_answers_ping_and_close() {
    let (listener, addr) = listener();
    let server = serve_one(listener, |ws| {
        let mut events = Vec::new();
        loop {
            match ws.recv_event() {
                Ok(Event::Closed(closed)) => return Ok((events, closed)),
                Ok(event) => events.push(event),
                Err(e) => return Err(e),
            }
        }
    });
    bounded("peer", move || {
        let mut peer = RawPeer::connect(addr);
        peer.conn.ping(b"are you there?").unwrap();
        peer.flush();
        assert_eq!(
            peer.next_event(),
            Event::Pong(b"are you there?".to_vec().into())
        );
        peer.conn.close(CloseCode::NORMAL, "enough").unwrap();
        peer.flush();
        let (events, closed) = peer.events_until_closed();
        assert!(events.is_empty(), "{events:?}");
        assert!(closed.is_clean(), "{closed:?}");
        peer.expect_eof();
    });
    let (events, closed) = server_result("server", &server).unwrap();
    assert_eq!(events, vec![Event::Ping(b"are you there?".to_vec().into())]);
    assert_eq!(closed.initiator, Initiator::Remote);
    assert_eq!(closed.received.unwrap().reason, "enough");
}

// ----- the closing handshake -----

/// The client closes: both `read`s end with `Ok(None)`, and `closed()`
/// shows who started and both codes.
#[test]
fn client_initiated_close() {
    let (listener, addr) = listener();
    let server = serve_one(listener, |ws| {
        let outcome = echo(ws);
        (outcome, ws.closed().cloned())
    });
    bounded("client", move || {
        let mut ws = blocking::connect(&format!("ws://{addr}/")).expect("connect");
        ws.send_text("hi").unwrap();
        assert_eq!(ws.recv().unwrap(), Some(Message::from("hi")));
        ws.close(CloseCode::NORMAL, "client done").unwrap();
        // Sending after our Close is the caller's mistake, not the peer's.
        assert!(matches!(
            ws.send_text("too late"),
            Err(Error::Usage(rfc6455::UsageError::Closed))
        ));
        assert_eq!(ws.recv().unwrap(), None);
        let closed = ws.closed().unwrap();
        assert_eq!(closed.initiator, Initiator::Local);
        assert_eq!(closed.sent.as_ref().unwrap().code, CloseCode::NORMAL);
        assert_eq!(closed.received.as_ref().unwrap().code, CloseCode::NORMAL);
        assert!(closed.is_clean());
    });
    let (outcome, closed) = server_result("server", &server);
    assert_clean(outcome);
    let closed = closed.unwrap();
    assert_eq!(closed.initiator, Initiator::Remote);
    assert_eq!(closed.received.as_ref().unwrap().reason, "client done");
    assert_eq!(closed.code(), CloseCode::NORMAL);
}

/// The server closes after a last message: the client reads the message,
/// then `Ok(None)`; both sides see the server's code.
#[test]
fn server_initiated_close() {
    let (listener, addr) = listener();
    let server = serve_one(listener, |ws| {
        ws.send_text("last words").unwrap();
        ws.close(CloseCode(4000), "server done").unwrap();
        let end = ws.recv();
        (end, ws.closed().cloned())
    });
    let closed = bounded("client", move || {
        let mut ws = blocking::connect(&format!("ws://{addr}/")).expect("connect");
        assert_eq!(ws.recv().unwrap(), Some(Message::from("last words")));
        assert_eq!(ws.recv().unwrap(), None);
        ws.closed().cloned().unwrap()
    });
    assert_eq!(closed.initiator, Initiator::Remote);
    let received = closed.received.as_ref().unwrap();
    assert_eq!(
        (received.code, received.reason.as_str()),
        (CloseCode(4000), "server done")
    );
    assert_eq!(closed.sent.as_ref().unwrap().code, CloseCode(4000));
    assert!(closed.is_clean());

    let (end, closed) = server_result("server", &server);
    assert_eq!(end.unwrap(), None);
    let closed = closed.unwrap();
    assert_eq!(closed.initiator, Initiator::Local);
    assert_eq!(closed.code(), CloseCode(4000));
    assert!(closed.is_clean());
}

// ----- errors -----

/// An unmasked frame from a client: `read` fails with the protocol error,
/// and the client gets a Close frame with 1002 before the socket closes.
#[test]
fn unmasked_frame_gives_peer_1002() {
    let (listener, addr) = listener();
    let server = serve_one(listener, |ws| ws.recv());
    bounded("peer", move || {
        let mut peer = RawPeer::connect(addr);
        // FIN, text, no mask bit, "Hello".
        peer.write(b"\x81\x05Hello");
        let (events, closed) = peer.events_until_closed();
        assert!(events.is_empty(), "{events:?}");
        let received = closed.received.expect("a Close frame before the end");
        assert_eq!(received.code, CloseCode::PROTOCOL_ERROR);
        peer.expect_eof();
    });
    match server_result("server", &server) {
        Err(Error::Protocol(ProtocolError::UnmaskedFrame)) => {}
        other => panic!("expected UnmaskedFrame, got {other:?}"),
    }
}

/// A stream whose reads fail and whose writes succeed.
struct BrokenReads;

impl Read for BrokenReads {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "pulled the plug",
        ))
    }
}

impl Write for BrokenReads {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The transport's own error comes back as `Error::Io`, unchanged.
#[test]
fn transport_error_is_io_error() {
    let conn = Connection::new(Role::Server, Config::default());
    let mut ws = WebSocket::from_connection(BrokenReads, conn);
    ws.send_text("writes still work").unwrap();
    match ws.recv() {
        Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

// ----- opening handshake timeout -----

/// A client that sends its request one byte every 300 ms is dropped with
/// `Error::Timeout` once `Timeouts::handshake` (1 s) passes, and the server
/// serves other clients meanwhile and after.
#[test]
fn slow_handshake_times_out_and_server_keeps_serving() {
    let (addr, mut outcomes) =
        spawn_echo_server(timeouts(|t| t.handshake = Some(Duration::from_secs(1))));

    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_nodelay(true).unwrap();
    slow.set_read_timeout(Some(LIMIT)).unwrap();
    let slow_addr = slow.local_addr().unwrap();
    let mut writer = slow.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let request = ClientHandshake::new(
        &ClientRequest::new(addr.to_string(), "/"),
        Config::default(),
    )
    .request()
    .to_vec();
    let dribble = thread::spawn(move || {
        for byte in request {
            if stopped.load(Ordering::SeqCst) || writer.write_all(&[byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(300));
        }
    });

    // Served while the slow client is still dribbling.
    let fast = echo_once(format!("ws://{addr}/echo"), "meanwhile");
    assert_clean(outcomes.of(fast));

    match outcomes.of(slow_addr) {
        Err(Error::Timeout(_)) => {}
        other => panic!("expected a handshake timeout, got {other:?}"),
    }
    // The server answered the slow client 408 (then the stream ends, or
    // is reset by the bytes the client is still dribbling).
    let mut buf = [0; 256];
    let n = slow.read(&mut buf).expect("a response");
    let response = String::from_utf8_lossy(&buf[..n]);
    assert!(
        response.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{response:?}"
    );
    stop.store(true, Ordering::SeqCst);
    dribble.join().unwrap();

    // And served after.
    let after = echo_once(format!("ws://{addr}/echo"), "after");
    assert_clean(outcomes.of(after));
}

// ----- a client vanishing mid-frame -----

/// A client that declares a 1000-byte frame, sends 10 bytes of it and
/// drops the socket ends that connection with an error, and the same
/// accept loop goes on serving.
#[test]
fn disconnect_mid_frame_ends_only_that_connection() {
    let (addr, mut outcomes) = spawn_echo_server(Config::default());
    let gone = bounded("vanishing client", move || {
        let mut peer = RawPeer::connect(addr);
        // FIN, binary, masked, 16-bit length 1000, the masking key, 10 bytes.
        let mut partial = vec![0x82, 0x80 | 126, 0x03, 0xE8, 1, 2, 3, 4];
        partial.extend_from_slice(&[0x55; 10]);
        peer.write(&partial);
        peer.local_addr()
    });
    match outcomes.of(gone) {
        Err(Error::Protocol(ProtocolError::UnexpectedEof { mid_frame: true })) => {}
        Err(Error::Io(_)) => {}
        other => panic!("expected an end of stream mid-frame, got {other:?}"),
    }
    let second = echo_once(format!("ws://{addr}/echo"), "still here");
    assert_clean(outcomes.of(second));
}

// ----- against the tokio adapter -----

/// `blocking::connect` with a path and query, against the tokio server.
#[cfg(feature = "tokio")]
#[test]
fn blocking_client_against_tokio_server() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let std_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let mut path = String::new();
        let result = async {
            let mut ws = rfc6455::tokio::accept_with(
                stream,
                Config::default(),
                |request: &rfc6455::handshake::Request| {
                    path = request.path().to_string();
                    Ok(Accept::new())
                },
            )
            .await?;
            while let Some(message) = ws.recv().await? {
                ws.send(&message).await?;
            }
            Ok::<_, rfc6455::tokio::Error>(ws.closed().cloned())
        }
        .await;
        let _ = tx.send((path, result));
    });

    echo_once(
        format!("ws://127.0.0.1:{}/chat/room?x=1", addr.port()),
        "across",
    );
    let (path, result) = server_result("tokio server", &rx);
    assert_eq!(path, "/chat/room?x=1");
    match result {
        Ok(Some(closed)) => assert!(closed.is_clean(), "{closed:?}"),
        other => panic!("expected a clean close, got {other:?}"),
    }
}

// ----- the deadlines of sockets the adapter opens -----

/// Reads an HTTP head off `tcp`, byte by byte, up to the blank line.
fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        if tcp.read(&mut byte).unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// `connect` opens the socket, so it sets the socket's read timeout from
/// the handshake's deadline: a server that sends half a response head and
/// then waits is given up on when the handshake timeout runs out, not
/// when the server closes.
#[test]
fn connect_gives_up_on_a_half_answered_handshake() {
    let (listener, addr) = listener();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        read_head(&mut tcp);
        tcp.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n")
            .unwrap();
        // Hold the socket open until the test is over.
        let _ = done_rx.recv_timeout(LIMIT);
    });
    let config = timeouts(|t| t.handshake = Some(Duration::from_millis(300)));
    let outcome = bounded("connect", move || {
        blocking::connect_with(&format!("ws://{addr}/"), config).map(drop)
    });
    drop(done_tx);
    match outcome {
        Err(Error::Timeout(what)) => assert_eq!(what, "opening handshake"),
        other => panic!("expected the handshake timeout, got {other:?}"),
    }
}

/// After the closing handshake's Close frames, a server that never closes
/// its side does not hold a client that `connect` opened: the closing
/// timeout ends the connection.
#[test]
fn connect_gives_up_on_a_server_that_never_closes() {
    let (listener, addr) = listener();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let head = read_head(&mut tcp);
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .trim()
            .to_string();
        let accept = rfc6455::handshake::accept_key(key.as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        tcp.write_all(response.as_bytes()).unwrap();
        // Read the client's Close, answer with ours, and never close.
        let mut buf = [0; 64];
        let _ = tcp.read(&mut buf);
        tcp.write_all(&[0x88, 0x02, 0x03, 0xe8]).unwrap();
        let _ = done_rx.recv_timeout(LIMIT);
    });
    let config = timeouts(|t| t.close = Some(Duration::from_millis(300)));
    let closed = bounded("close", move || {
        let mut ws = blocking::connect_with(&format!("ws://{addr}/"), config).unwrap();
        ws.close(CloseCode::NORMAL, "").unwrap();
        loop {
            match ws.recv_event() {
                Ok(Event::Closed(closed)) => return closed,
                Ok(_) => {}
                Err(err) => panic!("{err}"),
            }
        }
    });
    drop(done_tx);
    assert_eq!(closed.code(), CloseCode::NORMAL);
}
