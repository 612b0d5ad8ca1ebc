//! The tokio adapter over real TCP sockets on 127.0.0.1: cancel safety,
//! split halves, the timers, backpressure, and how each failure is reported.
//!
//! The peer is either our own client adapter or a [`RawPeer`]: a plain
//! socket driven by hand with the sans-IO core, so a test controls exactly
//! which bytes go out and when. Every wait is bounded by [`LIMIT`]; the only
//! durations asserted are such upper bounds, and "nothing happened during
//! this window" where the window is the behaviour under test.
#![cfg(feature = "tokio")]

use rfc6455::Driver;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, Progress};
use rfc6455::tokio::{Error, WebSocket};
use rfc6455::{
    CloseCode, Closed, Config, Connection, Event, Initiator, Message, ProtocolError, Role, Timeouts,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;

/// The bound on every wait: a test that needs longer is hung, not slow.
const LIMIT: Duration = Duration::from_secs(10);

/// Awaits `work`, failing the test if it takes longer than [`LIMIT`].
async fn within<F: Future>(what: &str, work: F) -> F::Output {
    match tokio::time::timeout(LIMIT, work).await {
        Ok(output) => output,
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

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Accepts one TCP connection and does the server handshake on it.
async fn accept_one(listener: &TcpListener, timeouts: Config) -> WebSocket<TcpStream> {
    let (stream, _) = within("accept", listener.accept()).await.unwrap();
    stream.set_nodelay(true).unwrap();
    within(
        "server handshake",
        rfc6455::tokio::accept_with(stream, timeouts, |_| Ok(Accept::new())),
    )
    .await
    .expect("handshake")
}

/// A client whose frames the test writes by hand: a plain socket with the
/// sans-IO client core deciding what the bytes mean.
struct RawPeer {
    stream: TcpStream,
    conn: Connection,
    buf: Vec<u8>,
}

impl RawPeer {
    async fn connect(addr: SocketAddr) -> RawPeer {
        let mut stream = within("connect", TcpStream::connect(addr)).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut handshake = ClientHandshake::new(
            &ClientRequest::new(addr.to_string(), "/raw"),
            Config::default(),
        );
        stream.write_all(handshake.request()).await.unwrap();
        let mut buf = vec![0; 64 * 1024];
        let conn = loop {
            let n = within("handshake response", stream.read(&mut buf))
                .await
                .unwrap();
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

    /// The bytes the core queued (frames, Pongs, Close replies), taken out.
    fn take_output(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while !self.conn.pending_output().is_empty() {
            out.extend_from_slice(self.conn.pending_output());
            self.conn.consume_output(self.conn.pending_output().len());
        }
        out
    }

    /// The encoded frame of one message, as the core masks it.
    fn encode(&mut self, message: &Message) -> Vec<u8> {
        self.conn.send(message).unwrap();
        self.take_output()
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Writes whatever the core queued.
    async fn flush(&mut self) {
        let out = self.take_output();
        self.write(&out).await;
    }

    /// The next event, reading from the socket as needed. Call it no more
    /// after it gave [`Event::Closed`].
    async fn next_event(&mut self) -> Event {
        loop {
            if let Some(event) = self.conn.poll_event() {
                return event;
            }
            let n = within("peer read", self.stream.read(&mut self.buf))
                .await
                .expect("peer read");
            if n == 0 {
                self.conn.handle_eof();
            } else {
                self.conn.handle_read(&self.buf[..n]);
            }
        }
    }

    /// Events up to and including [`Event::Closed`]: the others, and how it ended.
    async fn events_until_closed(&mut self) -> (Vec<Event>, Closed) {
        let mut events = Vec::new();
        loop {
            match self.next_event().await {
                Event::Closed(closed) => return (events, *closed),
                event => events.push(event),
            }
        }
    }

    /// Reads and discards until the server ends the stream.
    async fn expect_eof(&mut self) {
        loop {
            let n = within("server end of stream", self.stream.read(&mut self.buf))
                .await
                .expect("read until end of stream");
            if n == 0 {
                return;
            }
        }
    }
}

/// How a connection of the echo server ended, keyed by the client's address.
type Outcome = Result<Option<Closed>, Error>;

/// The echo server's reports, in the order connections end.
struct Outcomes {
    rx: mpsc::UnboundedReceiver<(SocketAddr, Outcome)>,
    seen: HashMap<SocketAddr, Outcome>,
}

impl Outcomes {
    async fn of(&mut self, peer: SocketAddr) -> Outcome {
        loop {
            if let Some(outcome) = self.seen.remove(&peer) {
                return outcome;
            }
            let (addr, outcome) = within("server outcome", self.rx.recv())
                .await
                .expect("the accept loop is running");
            self.seen.insert(addr, outcome);
        }
    }
}

/// An accept loop like `examples/echo_server.rs`: a task per connection,
/// each reporting how its connection ended.
async fn spawn_echo_server(timeouts: Config) -> (SocketAddr, Outcomes) {
    let (listener, addr) = listener().await;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let tx = tx.clone();
            let timeouts = timeouts.clone();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let outcome = echo(stream, timeouts).await;
                let _ = tx.send((peer, outcome));
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

async fn echo(stream: TcpStream, timeouts: Config) -> Outcome {
    let mut ws = rfc6455::tokio::accept_with(stream, timeouts, |_| Ok(Accept::new())).await?;
    while let Some(message) = ws.recv().await? {
        ws.send(&message).await?;
    }
    Ok(ws.closed().cloned())
}

/// One client of the echo server: a message there and back, then the
/// closing handshake. Returns the client's address.
async fn echo_once(addr: SocketAddr, text: &str) -> SocketAddr {
    let mut ws = within(
        "client connect",
        rfc6455::tokio::connect(&format!("ws://{addr}/echo")),
    )
    .await
    .expect("connect");
    let local = ws.get_ref().get_ref().local_addr().unwrap();
    within("client send", ws.send_text(text)).await.unwrap();
    let echoed = within("echo", ws.recv()).await.unwrap();
    assert_eq!(echoed, Some(Message::from(text)));
    within("client close", ws.close(CloseCode::NORMAL, "bye"))
        .await
        .unwrap();
    assert_eq!(within("close reply", ws.recv()).await.unwrap(), None);
    assert!(ws.closed().unwrap().is_clean());
    local
}

fn assert_clean(outcome: Outcome) {
    match outcome {
        Ok(Some(closed)) => assert!(closed.is_clean(), "{closed:?}"),
        other => panic!("expected a clean close, got {other:?}"),
    }
}

// ----- cancel safety -----

/// Dropping `recv` when it loses a `select!` loses no data: a peer dribbles
/// frames in pieces (one byte at a time, small chunks, several frames in
/// one write) while the server's `recv` is cancelled between nearly every
/// piece. Every message arrives once, in order.
#[tokio::test]
async fn recv_dropped_by_select_loses_nothing() {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut ws = accept_one(&listener, Config::default()).await;
        let mut received = Vec::new();
        let mut cancelled = 0usize;
        loop {
            tokio::select! {
                result = ws.recv() => match result {
                    Ok(Some(message)) => received.push(message),
                    Ok(None) => break,
                    Err(e) => panic!("server recv: {e}"),
                },
                _ = tokio::time::sleep(Duration::from_millis(1)) => cancelled += 1,
            }
        }
        (received, cancelled, ws.closed().cloned().unwrap())
    });

    let mut peer = RawPeer::connect(addr).await;
    let messages: Vec<Message> = (0..40usize)
        .map(|i| match i % 4 {
            0 => Message::from(format!("text {i}")),
            // Multi-byte characters, so pieces end inside a character.
            1 => Message::from(format!("é€😀 {i}")),
            // Over 125 bytes: a 16-bit extended length, itself split.
            2 => Message::from(vec![i as u8; 130 + i]),
            _ => Message::from(Vec::new()),
        })
        .collect();
    let pause = Duration::from_millis(3);
    let mut held = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let frame = peer.encode(message);
        match i % 5 {
            // One byte per write: the whole of a small frame, the header
            // and the start of the payload of a large one, then chunks.
            0 | 1 => {
                let (bytes, rest) = frame.split_at(frame.len().min(24));
                for byte in bytes {
                    peer.write(&[*byte]).await;
                    tokio::time::sleep(pause).await;
                }
                for chunk in rest.chunks(16) {
                    peer.write(chunk).await;
                    tokio::time::sleep(pause).await;
                }
            }
            // Small chunks.
            2 => {
                for chunk in frame.chunks(7) {
                    peer.write(chunk).await;
                    tokio::time::sleep(pause).await;
                }
            }
            // Held back and sent with the next frame: two frames, one write.
            3 => held = frame,
            _ => {
                held.extend_from_slice(&frame);
                peer.write(&held).await;
                held.clear();
                // A Ping in between, answered while `recv` keeps being dropped.
                peer.conn.ping(format!("ping {i}").as_bytes()).unwrap();
                let ping = peer.take_output();
                for byte in ping {
                    peer.write(&[byte]).await;
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
    peer.conn.close(CloseCode::NORMAL, "done").unwrap();
    peer.flush().await;
    let (events, closed) = peer.events_until_closed().await;
    assert!(closed.is_clean(), "{closed:?}");
    let pongs = events
        .iter()
        .filter(|e| matches!(e, Event::Pong(_)))
        .count();
    assert_eq!(pongs, 8, "every Ping answered: {events:?}");
    peer.expect_eof().await;
    // The server waits for our end of stream before its `recv` returns.
    drop(peer);

    let (received, cancelled, server_closed) = within("server", server).await.unwrap();
    assert_eq!(received, messages);
    assert!(cancelled > 100, "recv was cancelled only {cancelled} times");
    assert_eq!(server_closed.code(), CloseCode::NORMAL);
}

// ----- split halves -----

/// A task that holds only the reading half keeps the protocol going: a
/// Ping gets its Pong with the same payload, and a Close gets its reply,
/// while the writing half sits idle in another place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_half_alone_answers_ping_and_close() {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let ws = accept_one(&listener, Config::default()).await;
        let (mut read, write) = ws.split();
        let reader = tokio::spawn(async move {
            let mut events = Vec::new();
            loop {
                match read.recv_event().await {
                    Ok(Event::Closed(closed)) => return Ok((events, closed)),
                    Ok(event) => events.push(event),
                    Err(e) => return Err(e),
                }
            }
        });
        let result = within("reader", reader).await.unwrap();
        // The writing half was held, idle, the whole time.
        drop(write);
        result
    });

    let mut peer = RawPeer::connect(addr).await;
    let payload = b"are you there?";
    peer.conn.ping(payload).unwrap();
    peer.flush().await;
    assert_eq!(
        peer.next_event().await,
        Event::Pong(payload.to_vec().into())
    );

    peer.conn.close(CloseCode::NORMAL, "enough").unwrap();
    peer.flush().await;
    let (events, closed) = peer.events_until_closed().await;
    assert!(events.is_empty(), "{events:?}");
    assert!(closed.is_clean(), "{closed:?}");
    assert_eq!(closed.received.unwrap().code, CloseCode::NORMAL);
    peer.expect_eof().await;
    drop(peer);

    let (events, closed) = within("server", server).await.unwrap().unwrap();
    assert_eq!(events, vec![Event::Ping(payload.to_vec().into())]);
    assert_eq!(closed.initiator, Initiator::Remote);
    assert_eq!(closed.received.unwrap().reason, "enough");
}

/// The writing half sends while the reading half is blocked in `recv` in
/// another task, and the reader still gets what comes next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_half_sends_while_read_half_waits() {
    let (listener, addr) = listener().await;
    let accepted = tokio::spawn(async move { accept_one(&listener, Config::default()).await });
    let mut peer = RawPeer::connect(addr).await;
    let ws = within("accept", accepted).await.unwrap();
    let (mut read, mut write) = ws.split();
    let reader = tokio::spawn(async move {
        let first = read.recv().await;
        let second = read.recv().await;
        (first, second)
    });
    // Let the reader reach its `recv` and wait there (the test is valid,
    // only weaker, if it has not yet).
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!reader.is_finished());

    for i in 0..3 {
        within(
            "write half send",
            write.send_text(&format!("from the writer {i}")),
        )
        .await
        .unwrap();
    }
    for i in 0..3 {
        assert_eq!(
            peer.next_event().await,
            Event::Message(Message::from(format!("from the writer {i}")))
        );
    }
    assert!(!reader.is_finished(), "the reader got nothing yet");

    let reply = peer.encode(&Message::from("to the reader"));
    peer.write(&reply).await;
    peer.conn.close(CloseCode::NORMAL, "").unwrap();
    peer.flush().await;
    let (_, closed) = peer.events_until_closed().await;
    assert!(closed.is_clean(), "{closed:?}");
    // The server waits for our end of stream before its `recv` returns.
    peer.expect_eof().await;
    drop(peer);
    let (first, second) = within("reader", reader).await.unwrap();
    assert_eq!(first.unwrap(), Some(Message::from("to the reader")));
    assert_eq!(second.unwrap(), None);
    // After the close the writer is refused, as a usage error.
    assert!(matches!(
        write.send_text("too late").await,
        Err(Error::Usage(rfc6455::UsageError::Closed))
    ));
}

// ----- opening handshake timeout -----

/// A client that sends its request one byte every 300 ms is dropped with
/// `Error::Timeout` once `Timeouts::handshake` (1 s) passes, and the server
/// serves other clients meanwhile and after.
#[tokio::test]
async fn slow_handshake_times_out_and_server_keeps_serving() {
    let (addr, mut outcomes) =
        spawn_echo_server(timeouts(|t| t.handshake = Some(Duration::from_secs(1)))).await;

    let slow = within("connect", TcpStream::connect(addr)).await.unwrap();
    slow.set_nodelay(true).unwrap();
    let slow_addr = slow.local_addr().unwrap();
    let (mut slow_read, mut slow_write) = slow.into_split();
    let request = ClientHandshake::new(
        &ClientRequest::new(addr.to_string(), "/"),
        Config::default(),
    )
    .request()
    .to_vec();
    let dribble = tokio::spawn(async move {
        for byte in request {
            if slow_write.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });

    // Served while the slow client is still dribbling.
    let fast = echo_once(addr, "meanwhile").await;
    assert_clean(outcomes.of(fast).await);

    match outcomes.of(slow_addr).await {
        Err(Error::Timeout(_)) => {}
        other => panic!("expected a handshake timeout, got {other:?}"),
    }
    // The server answered the slow client 408 and closed.
    let mut response = Vec::new();
    let _ = within(
        "slow client sees the end",
        slow_read.read_to_end(&mut response),
    )
    .await;
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{response:?}"
    );
    dribble.abort();

    // And served after.
    let after = echo_once(addr, "after").await;
    assert_clean(outcomes.of(after).await);
}

// ----- a client vanishing mid-frame -----

/// A client that declares a 1000-byte frame, sends 10 bytes of it and
/// drops the socket ends that connection with an error, and the same
/// accept loop goes on serving.
#[tokio::test]
async fn disconnect_mid_frame_ends_only_that_connection() {
    let (addr, mut outcomes) = spawn_echo_server(Config::default()).await;

    let mut peer = RawPeer::connect(addr).await;
    let gone = peer.local_addr();
    // FIN, binary, masked, 16-bit length 1000, the masking key, 10 bytes.
    let mut partial = vec![0x82, 0x80 | 126, 0x03, 0xE8, 1, 2, 3, 4];
    partial.extend_from_slice(&[0x55; 10]);
    peer.write(&partial).await;
    drop(peer);

    match outcomes.of(gone).await {
        Err(Error::Protocol(ProtocolError::UnexpectedEof { mid_frame: true })) => {}
        Err(Error::Io(_)) => {}
        other => panic!("expected an end of stream mid-frame, got {other:?}"),
    }

    let second = echo_once(addr, "still here").await;
    assert_clean(outcomes.of(second).await);
}

// The heartbeat and the closing deadline: see tests/adapter_timers.rs,
// one table for both adapters.

// ----- backpressure -----

/// `feed`ing a hundred 64 KiB messages to a peer that reads nothing stops
/// in `poll_ready` instead of queueing them all; once the peer reads,
/// every message arrives, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_waits_while_peer_does_not_read() {
    const COUNT: usize = 100;
    const SIZE: usize = 64 * 1024;
    // Small kernel buffers, so the socket cannot swallow the test's data.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(32 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(8).unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = tokio::spawn(async move { accept_one(&listener, Config::default()).await });
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(32 * 1024).unwrap();
    let stream = within("connect", socket.connect(addr)).await.unwrap();
    let mut client = within(
        "client handshake",
        rfc6455::tokio::client(stream, "ws://x/"),
    )
    .await
    .unwrap();
    let mut server = within("accept", accepted).await.unwrap();

    let payload = |i: usize| {
        let mut data = vec![(i % 251) as u8; SIZE];
        data[..8].copy_from_slice(&(i as u64).to_be_bytes());
        Message::from(data)
    };
    let fed = Arc::new(AtomicUsize::new(0));
    let counter = fed.clone();
    let mut feeder = tokio::spawn(async move {
        for i in 0..COUNT {
            server.feed(payload(i)).await?;
            counter.fetch_add(1, Ordering::SeqCst);
        }
        server.flush().await?;
        Ok::<_, Error>(server)
    });

    let waited = tokio::time::timeout(Duration::from_millis(500), &mut feeder).await;
    assert!(waited.is_err(), "feeding finished although nobody read");
    let queued = fed.load(Ordering::SeqCst);
    assert!(queued < COUNT, "all {queued} messages were accepted");

    for i in 0..COUNT {
        let message = within("client recv", client.recv()).await.unwrap();
        assert_eq!(message, Some(payload(i)), "message {i}");
    }
    let mut server = within("feeder", feeder).await.unwrap().unwrap();
    within("client close", client.close(CloseCode::NORMAL, ""))
        .await
        .unwrap();
    // Both ends read at once: each waits for the other's end of stream.
    let (server_end, client_end) = within("closing handshake", async {
        tokio::join!(server.recv(), client.recv())
    })
    .await;
    assert_eq!(server_end.unwrap(), None);
    assert_eq!(client_end.unwrap(), None);
}

/// `queue` queues when it is called, is ready at once while at most
/// `HIGH_WATER` bytes wait (writing nothing), and writes everything
/// before it is ready once more wait; the peer gets every message in
/// order.
#[tokio::test]
async fn queue_queues_at_once_and_writes_only_above_high_water() {
    use futures_util::FutureExt;
    use rfc6455::tokio::HIGH_WATER;

    let (a, b) = tokio::io::duplex(4 * HIGH_WATER);
    let mut server =
        WebSocket::from_connection(a, Connection::new(Role::Server, Config::default()));
    let mut client =
        WebSocket::from_connection(b, Connection::new(Role::Client, Config::default()));
    let message = |i: usize| Message::from(vec![i as u8; 16 * 1024]);
    // A 16 KiB payload has a 4-byte header from a server.
    let frame = 16 * 1024 + 4;

    // Queued by the call, though its future is dropped unpolled.
    drop(server.queue(&message(0)));
    assert_eq!(server.backlog(), frame);
    let mut sent = 1;
    let mut flushed = false;
    while !flushed {
        let before = server.backlog();
        let next = message(sent);
        let queued = server.queue(&next);
        if before + frame <= HIGH_WATER {
            // Ready at the first poll, and nothing written.
            assert!(matches!(queued.now_or_never(), Some(Ok(()))));
            assert_eq!(server.backlog(), before + frame, "message {sent}");
        } else {
            within("queue above the high-water mark", queued)
                .await
                .unwrap();
            assert_eq!(server.backlog(), 0, "everything was written");
            flushed = true;
        }
        sent += 1;
    }
    for i in 0..sent {
        let received = within("client recv", client.recv()).await.unwrap();
        assert_eq!(received, Some(message(i)), "message {i}");
    }
}

/// A write that has to wait is woken when the peer reads, from the first
/// wait of a fresh connection (no waker is kept for writing until a write
/// has had to wait) to every later one; the peer gets every message whole.
#[tokio::test]
async fn a_send_that_waits_is_woken_when_the_peer_reads() {
    let (a, b) = tokio::io::duplex(256);
    let mut server =
        WebSocket::from_connection(a, Connection::new(Role::Server, Config::default()));
    let mut client =
        WebSocket::from_connection(b, Connection::new(Role::Client, Config::default()));
    let message = |i: usize| Message::from(vec![i as u8; 64 * 1024]);
    let sender = tokio::spawn(async move {
        for i in 0..3 {
            server.send(&message(i)).await.unwrap();
        }
        server
    });
    for i in 0..3 {
        let received = within("client recv", client.recv()).await.unwrap();
        assert_eq!(received, Some(message(i)), "message {i}");
    }
    within("the sender", sender).await.unwrap();
}

// ----- errors are distinct -----

/// An unmasked frame from a client is a protocol error for the server, and
/// the client gets a Close frame with 1002 before the socket closes.
#[tokio::test]
async fn unmasked_frame_is_protocol_error_and_peer_gets_1002() {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut ws = accept_one(&listener, Config::default()).await;
        within("server recv", ws.recv()).await
    });
    let mut peer = RawPeer::connect(addr).await;
    // FIN, text, no mask bit, "Hello".
    peer.write(b"\x81\x05Hello").await;
    let (events, closed) = peer.events_until_closed().await;
    assert!(events.is_empty(), "{events:?}");
    let received = closed.received.expect("a Close frame before the end");
    assert_eq!(received.code, CloseCode::PROTOCOL_ERROR);
    peer.expect_eof().await;
    drop(peer);

    match within("server", server).await.unwrap() {
        Err(Error::Protocol(ProtocolError::UnmaskedFrame)) => {}
        other => panic!("expected UnmaskedFrame, got {other:?}"),
    }
}

/// A peer that resets the connection gives `Error::Io`, not a protocol error.
#[tokio::test]
async fn reset_by_peer_is_io_error() {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut ws = accept_one(&listener, Config::default()).await;
        within("server recv", ws.recv()).await
    });
    let peer = RawPeer::connect(addr).await;
    // SO_LINGER 0: closing sends a reset instead of an end of stream.
    peer.stream.set_zero_linger().unwrap();
    drop(peer);
    match within("server", server).await.unwrap() {
        Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

/// A stream whose reads fail and whose writes succeed.
struct BrokenReads;

impl AsyncRead for BrokenReads {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(io::Error::other("the disk is on fire")))
    }
}

impl AsyncWrite for BrokenReads {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The transport's own error comes back as `Error::Io`, unchanged.
#[tokio::test]
async fn transport_error_is_io_error() {
    let conn = Connection::new(Role::Server, Config::default());
    let mut ws = WebSocket::from_connection(BrokenReads, conn);
    ws.send_text("writes still work").await.unwrap();
    match within("recv", ws.recv()).await {
        Err(Error::Io(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::Other);
            assert_eq!(e.to_string(), "the disk is on fire");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

/// A stream that buffers what is written, as TLS does, and sends it on
/// only when flushed; the first flush of each buffer is not ready (the
/// socket under it is full) and wakes the task to try again. The test
/// keeps a handle on what it holds.
#[derive(Clone, Default)]
struct BufferingStream(Arc<std::sync::Mutex<Buffered>>);

#[derive(Default)]
struct Buffered {
    buffered: Vec<u8>,
    sent: Vec<u8>,
    flush_ready: bool,
}

impl AsyncRead for BufferingStream {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

impl AsyncWrite for BufferingStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut state = self.0.lock().unwrap();
        state.buffered.extend_from_slice(buf);
        state.flush_ready = false;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.0.lock().unwrap();
        if !state.flush_ready {
            state.flush_ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let buffered = std::mem::take(&mut state.buffered);
        state.sent.extend_from_slice(&buffered);
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A send returns only once the stream has flushed what it buffered,
/// even when its first flush is not ready: nothing is left in a TLS
/// buffer after `send` returns, on the whole socket or its writing half.
#[tokio::test]
async fn send_waits_for_a_buffering_stream_to_flush() {
    let server = || Connection::new(Role::Server, Config::default());
    let stream = BufferingStream::default();
    let mut ws = WebSocket::from_connection(stream.clone(), server());
    for text in ["one", "two"] {
        within("send", ws.send_text(text)).await.unwrap();
        let state = stream.0.lock().unwrap();
        assert!(
            state.buffered.is_empty(),
            "left in the stream's buffer: {:?}",
            state.buffered
        );
    }
    assert_eq!(stream.0.lock().unwrap().sent, b"\x81\x03one\x81\x03two");

    let stream = BufferingStream::default();
    let (_reader, mut writer) = WebSocket::from_connection(stream.clone(), server()).split();
    within("send", writer.send_text("three")).await.unwrap();
    let state = stream.0.lock().unwrap();
    assert!(
        state.buffered.is_empty(),
        "left in the stream's buffer: {:?}",
        state.buffered
    );
    assert_eq!(state.sent, b"\x81\x05three");
}

// ----- Stream and Sink -----

/// `StreamExt::next` and `SinkExt::send` on both ends, `SinkExt::close` to
/// start the closing handshake, and both streams end with `None`.
#[tokio::test]
async fn stream_and_sink_echo() {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let mut ws = accept_one(&listener, Config::default()).await;
        let mut echoed = 0;
        while let Some(message) = ws.next().await {
            SinkExt::send(&mut ws, message?).await?;
            echoed += 1;
        }
        Ok::<_, Error>((echoed, ws.closed().cloned().unwrap()))
    });
    let mut client = within("connect", rfc6455::tokio::connect(&format!("ws://{addr}/")))
        .await
        .unwrap();

    SinkExt::send(&mut client, Message::from("one"))
        .await
        .unwrap();
    let first = within("next", client.next()).await.unwrap().unwrap();
    assert_eq!(first, Message::from("one"));

    // Several fed, one flush.
    let batch: Vec<Message> = (0..5u8)
        .map(|i| Message::from(vec![i; 1 + i as usize]))
        .collect();
    for message in &batch {
        client.feed(message.clone()).await.unwrap();
    }
    client.flush().await.unwrap();
    let back: Vec<Message> = within("batch", (&mut client).take(batch.len()).collect::<Vec<_>>())
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(back, batch);

    SinkExt::close(&mut client).await.unwrap();
    assert!(within("end of stream", client.next()).await.is_none());
    assert!(client.closed().unwrap().is_clean());
    // The stream stays ended.
    assert!(client.next().await.is_none());

    let (echoed, closed) = within("server", server).await.unwrap().unwrap();
    assert_eq!(echoed, 1 + batch.len());
    assert!(closed.is_clean(), "{closed:?}");
    assert_eq!(closed.initiator, Initiator::Remote);
}
