//! The event-loop server (feature `mio`): every connection a record in
//! one thread's loop. Its peers here are the blocking client and raw TCP
//! sockets writing bytes we build by hand, so what is checked is what a
//! client sees on the wire: echoes whatever the chunking, refusals with
//! their HTTP status, protocol errors closed with their code, deadlines,
//! and a broadcast through `Ctx` to every connection.
#![cfg(all(feature = "mio", feature = "blocking"))]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rfc6455::mio::{Ctx, Handler, Id, Server};
use rfc6455::{CloseCode, Closed, Config, Message, MessageKind, MessageRef, PreparedMessage};

use common::{client_frame, close_payload, decode_frames, CLOSE, PING, PONG, TEXT};

/// Echoes, or (`broadcast`) sends every message to every connection; and
/// records how each connection ended.
struct App {
    broadcast: bool,
    ended: Arc<Mutex<Vec<u16>>>,
}

impl Handler for App {
    fn message(&mut self, ctx: &mut Ctx<'_>, id: Id, message: MessageRef<'_>) {
        if self.broadcast {
            let prepared = PreparedMessage::new(&message.to_message());
            let ids: Vec<Id> = ctx.ids().collect();
            for to in ids {
                ctx.send_prepared(to, &prepared).unwrap();
            }
        } else {
            ctx.send(id, message).unwrap();
        }
    }

    fn closed(&mut self, _: &mut Ctx<'_>, _: Id, closed: &Closed) {
        self.ended.lock().unwrap().push(closed.code().0);
    }
}

/// A server on its own thread, stopped (and joined) on drop.
struct Running {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    ended: Arc<Mutex<Vec<u16>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

fn start(config: Config, broadcast: bool) -> Running {
    let mut server = Server::bind("127.0.0.1:0".parse().unwrap(), config).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ended = Arc::new(Mutex::new(Vec::new()));
    let mut app = App {
        broadcast,
        ended: ended.clone(),
    };
    let stopping = stop.clone();
    let thread = std::thread::spawn(move || {
        while !stopping.load(Ordering::Relaxed) {
            let until = server.now() + Duration::from_millis(10);
            server.turn(&mut app, Some(until)).unwrap();
        }
    });
    Running {
        addr,
        stop,
        thread: Some(thread),
        ended,
    }
}

fn request(addr: SocketAddr) -> String {
    format!(
        "GET /chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// A raw socket with the handshake done; returns it and what followed the
/// 101's head.
fn raw_client(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request(addr).as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    let end = loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed during the handshake");
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&got[..end]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    (stream, got[end..].to_vec())
}

/// Reads until the server closes the socket; everything it sent.
fn read_to_end(stream: &mut TcpStream, mut got: Vec<u8>) -> Vec<u8> {
    let mut buf = [0; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn echoes_every_size_through_the_blocking_client() {
    let server = start(Config::default(), false);
    let url = format!("ws://{}/", server.addr);
    let mut ws = rfc6455::blocking::connect(&url).unwrap();
    for len in [0, 1, 125, 126, 65535, 65536, 1 << 20] {
        let sent = Message::from(vec![len as u8; len]);
        ws.send(&sent).unwrap();
        assert_eq!(ws.recv().unwrap(), Some(sent), "{len} bytes");
    }
    ws.send_fragmented(MessageKind::Text, "héllo wörld".as_bytes(), 3)
        .unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::from("héllo wörld")));
    ws.close(CloseCode::NORMAL, "done").unwrap();
    assert_eq!(ws.recv().unwrap(), None);
    assert_eq!(ws.closed().map(|c| c.code()), Some(CloseCode::NORMAL));
    drop(ws);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(*server.ended.lock().unwrap(), vec![1000]);
}

/// The same bytes, however the client's writes cut them, give the same
/// answer: messages, a Ping answered, and the closing handshake.
#[test]
fn any_chunking_gives_the_same_answer() {
    let server = start(Config::default(), false);
    let mut input = Vec::new();
    input.extend(client_frame(TEXT, b"one"));
    input.extend(client_frame(PING, b"p"));
    input.extend(client_frame(TEXT, &[b'x'; 300]));
    input.extend(client_frame(CLOSE, &close_payload(1000, b"")));
    let mut answers = Vec::new();
    for size in [input.len(), 1, 2, 7, 64] {
        let (mut stream, early) = raw_client(server.addr);
        for chunk in input.chunks(size) {
            stream.write_all(chunk).unwrap();
            stream.flush().unwrap();
            std::thread::sleep(Duration::from_micros(200));
        }
        let got = read_to_end(&mut stream, early);
        let frames: Vec<(u8, Vec<u8>)> = decode_frames(rfc6455::Role::Server, &got)
            .into_iter()
            .map(|f| (f.opcode, f.payload))
            .collect();
        answers.push(frames);
    }
    let expected = vec![
        (TEXT, b"one".to_vec()),
        (PONG, b"p".to_vec()),
        (TEXT, vec![b'x'; 300]),
        (CLOSE, close_payload(1000, b"")),
    ];
    for answer in &answers {
        assert_eq!(answer, &expected);
    }
}

/// Bad handshakes get an HTTP status and the socket goes.
#[test]
fn a_bad_request_gets_its_status() {
    let server = start(Config::default(), false);
    let cases: [(&str, &str); 3] = [
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400"),
        (
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
            "HTTP/1.1 426",
        ),
        ("NOT HTTP AT ALL\r\n\r\n", "HTTP/1.1 400"),
    ];
    for (request, status) in cases {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let got = String::from_utf8_lossy(&read_to_end(&mut stream, Vec::new())).to_string();
        assert!(got.starts_with(status), "{request:?} -> {got}");
        if status.ends_with("426") {
            assert!(got.contains("Sec-WebSocket-Version: 13"), "{got}");
        }
    }
}

/// Protocol errors close with their code (after a Close frame), from a
/// table of RFC 6455 cases.
#[test]
fn a_bad_frame_is_closed_with_its_code() {
    let server = start(Config::default(), false);
    let unmasked = common::frame(true, TEXT, 0, None, b"hi");
    let bad_utf8 = client_frame(TEXT, &[0xff, 0xfe]);
    let rsv = common::frame(true, TEXT, 0b100, Some(common::KEY), b"hi");
    let cases: [(&str, Vec<u8>, u16); 3] = [
        ("§5.1 unmasked", unmasked, 1002),
        ("§8.1 invalid UTF-8", bad_utf8, 1007),
        ("§5.2 RSV without extension", rsv, 1002),
    ];
    for (name, bytes, code) in cases {
        let (mut stream, early) = raw_client(server.addr);
        stream.write_all(&bytes).unwrap();
        let got = read_to_end(&mut stream, early);
        let frames = decode_frames(rfc6455::Role::Server, &got);
        let last = frames.last().unwrap_or_else(|| panic!("{name}: no frame"));
        assert_eq!(last.opcode, CLOSE, "{name}");
        assert_eq!(
            u16::from_be_bytes([last.payload[0], last.payload[1]]),
            code,
            "{name}"
        );
    }
}

/// A client that never finishes its request gets the handshake's 408.
#[test]
fn a_slow_request_times_out() {
    let mut config = Config::default();
    config.timeouts.handshake = Some(Duration::from_millis(200));
    let server = start(config, false);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let got = String::from_utf8_lossy(&read_to_end(&mut stream, Vec::new())).to_string();
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
}

/// One message, sent by any connection, reaches every one.
#[test]
fn a_broadcast_reaches_every_connection() {
    let server = start(Config::default(), true);
    let url = format!("ws://{}/", server.addr);
    let mut clients: Vec<_> = (0..20)
        .map(|_| rfc6455::blocking::connect(&url).unwrap())
        .collect();
    // Every client is open once it has had an answer.
    for ws in &mut clients {
        ws.send(&Message::from("hi")).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    clients[3].send(&Message::from("to all")).unwrap();
    for (i, ws) in clients.iter_mut().enumerate() {
        let mut seen = Vec::new();
        loop {
            match ws.recv().unwrap() {
                Some(m) if m == Message::from("to all") => break,
                Some(m) => seen.push(m),
                None => panic!("client {i} closed"),
            }
        }
    }
}

/// Remembers the connection that sent a message.
#[derive(Default)]
struct Sender(Option<Id>);

impl Handler for Sender {
    fn message(&mut self, _: &mut Ctx<'_>, id: Id, _: MessageRef<'_>) {
        self.0 = Some(id);
    }
}

/// A broadcaster's offer never lets a connection that does not read hold
/// more than its backlog and one message: past it, what is offered is
/// dropped (`Dropped`), and a connection that has gone is `Closed`.
#[test]
fn an_offer_past_the_backlog_is_dropped_and_a_gone_connection_is_closed() {
    use rfc6455::mio::{Offered, WhenFull};
    let mut server = Server::bind("127.0.0.1:0".parse().unwrap(), Config::default()).unwrap();
    let addr = server.local_addr().unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        let (mut stream, _) = raw_client(addr);
        stream.write_all(&client_frame(TEXT, b"go")).unwrap();
        // Reads nothing until told, then goes.
        done_rx.recv().unwrap();
    });
    let mut app = Sender::default();
    let until = |server: &Server| Some(server.now() + Duration::from_millis(10));
    while app.0.is_none() {
        server.turn(&mut app, until(&server)).unwrap();
    }
    let id = app.0.unwrap();
    let large = PreparedMessage::binary(vec![7u8; 64 * 1024]);
    let limit = 256 * 1024;
    let (offered, backlog) = server.with(&mut app, |ctx| {
        let offered = ctx.offer_many(id, &vec![large.clone(); 64], limit, WhenFull::Drop);
        (offered, ctx.backlog(id))
    });
    assert_eq!(offered, Ok(Offered::Dropped));
    // What the socket did not take waits, within the backlog and one
    // message (the kernel may have taken some of it).
    assert!(backlog <= limit + large.payload().len() + 16, "{backlog}");
    done_tx.send(()).unwrap();
    client.join().unwrap();
    // Once the server has seen the socket go, the id is gone.
    let gone = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        server.turn(&mut app, until(&server)).unwrap();
        let offered = server.with(&mut app, |ctx| ctx.offer(id, &large, limit, WhenFull::Drop));
        if offered == Ok(Offered::Closed) {
            break;
        }
        assert!(std::time::Instant::now() < gone, "still {offered:?}");
    }
}
