//! A broadcaster that never waits for one client: prepared messages
//! offered to every connection (`WriteHalf::offer`), one client that
//! completed the handshake and then never reads. The others receive every
//! message intact, in order; the stalled one holds no more than the
//! backlog limit, one message and a Close frame, and is then dropped from
//! the broadcast or closed with 1013, as the policy says.
#![cfg(feature = "tokio")]

use rfc6455::Driver;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rfc6455::tokio::{Offered, WhenFull, WriteHalf};
use rfc6455::{CloseCode, Config, Message, PreparedMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const READERS: usize = 4;
const ROUNDS: usize = 300;
const SIZE: usize = 32 * 1024;
const BACKLOG: usize = 256 * 1024;
const LIMIT: Duration = Duration::from_secs(60);

/// A client that completes the opening handshake and never reads again.
async fn stalled_client(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    tcp
}

fn message(round: usize) -> Message {
    let mut payload = vec![(round % 251) as u8; SIZE];
    payload[..8].copy_from_slice(&(round as u64).to_be_bytes());
    Message::from(payload)
}

async fn run(policy: WhenFull) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The server: every connection split, its reading half in a task of
    // its own (which also writes what is offered), its writing half to
    // the broadcaster.
    let (writers_tx, mut writers_rx) = tokio::sync::mpsc::unbounded_channel();
    let ended = Arc::new(AtomicUsize::new(0));
    let server_ended = ended.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut config = Config::default();
            config.timeouts.close = Some(Duration::from_millis(500));
            let ws = rfc6455::tokio::accept_with(tcp, config, |_| Ok(Default::default()))
                .await
                .unwrap();
            let (mut reader, writer) = ws.split();
            let ended = server_ended.clone();
            tokio::spawn(async move {
                while let Ok(Some(_)) = reader.recv().await {}
                ended.fetch_add(1, Ordering::SeqCst);
            });
            writers_tx.send(writer).unwrap();
        }
    });

    // The readers, counting what arrives, and checking it.
    let received = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..READERS {
        let received = received.clone();
        let mut ws = rfc6455::tokio::connect(&format!("ws://{addr}/"))
            .await
            .unwrap();
        clients.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let got = ws.recv().await.unwrap().expect("a message");
                assert!(got == message(round), "round {round}: not the message sent");
                received.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let stalled = stalled_client(addr).await;
    let mut writers: Vec<WriteHalf<TcpStream>> = Vec::new();
    while writers.len() < READERS + 1 {
        writers.push(writers_rx.recv().await.unwrap());
    }

    // The broadcast. The readers keep up (each round waits for them), so
    // only the stalled client's backlog grows.
    let mut outcomes = vec![Vec::new(); writers.len()];
    for round in 0..ROUNDS {
        let prepared = PreparedMessage::new(&message(round));
        for (writer, outcome) in writers.iter().zip(&mut outcomes) {
            outcome.push(writer.offer(&prepared, BACKLOG, policy).unwrap());
            assert!(
                writer.backlog() <= BACKLOG + SIZE + 256,
                "a connection holds {} bytes",
                writer.backlog()
            );
        }
        while received.load(Ordering::SeqCst) < READERS * (round + 1) {
            tokio::task::yield_now().await;
        }
    }
    for client in clients {
        client.await.unwrap();
    }

    // Exactly one connection (the stalled one) missed messages.
    let missed: Vec<usize> = outcomes
        .iter()
        .map(|o| o.iter().filter(|x| **x != Offered::Queued).count())
        .collect();
    assert_eq!(missed.iter().filter(|m| **m > 0).count(), 1, "{missed:?}");
    let stalled_outcomes = outcomes
        .iter()
        .find(|o| o.contains(&Offered::Queued) && o.iter().any(|x| *x != Offered::Queued))
        .unwrap();
    let first_miss = stalled_outcomes
        .iter()
        .position(|x| *x != Offered::Queued)
        .unwrap();
    match policy {
        WhenFull::Drop => {
            assert!(stalled_outcomes[first_miss..]
                .iter()
                .all(|x| *x == Offered::Dropped));
        }
        WhenFull::Close(..) => {
            // Closed once, then told it is closed.
            assert_eq!(stalled_outcomes[first_miss], Offered::Closing);
            assert!(stalled_outcomes[first_miss + 1..]
                .iter()
                .all(|x| *x == Offered::Closed));
            // Its reading task ends: the Close frame cannot get through,
            // and the closing timeout ends the connection.
            while ended.load(Ordering::SeqCst) < 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_misses_messages_while_the_others_get_all() {
    tokio::time::timeout(LIMIT, run(WhenFull::Drop))
        .await
        .expect("hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_closed_while_the_others_get_all() {
    let policy = WhenFull::Close(CloseCode::TRY_AGAIN_LATER, "too slow");
    tokio::time::timeout(LIMIT, run(policy))
        .await
        .expect("hung");
}

/// A stream that counts its writes and keeps what they carry.
#[derive(Clone, Default)]
struct CountingStream(Arc<std::sync::Mutex<(usize, Vec<u8>)>>);

impl tokio::io::AsyncRead for CountingStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Pending
    }
}

impl tokio::io::AsyncWrite for CountingStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let mut state = self.0.lock().unwrap();
        state.0 += 1;
        state.1.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// `offer_many` queues the messages in order and writes them in one
/// write; past the backlog, the rest are dropped (or the connection
/// closed) and the ones before still go out.
#[tokio::test]
async fn offer_many_writes_a_batch_at_once_and_stops_at_the_backlog() {
    let server = || rfc6455::Connection::new(rfc6455::Role::Server, Config::default());
    let batch: Vec<PreparedMessage> = ["one", "two", "three"]
        .into_iter()
        .map(PreparedMessage::text)
        .collect();
    let frames = |texts: &[&str]| -> Vec<u8> {
        texts
            .iter()
            .flat_map(|t| [&[0x81, t.len() as u8][..], t.as_bytes()].concat())
            .collect()
    };

    let stream = CountingStream::default();
    let (_reader, writer) =
        rfc6455::tokio::WebSocket::from_connection(stream.clone(), server()).split();
    let offered = writer.offer_many(&batch, 1024, WhenFull::Drop).unwrap();
    assert_eq!(offered, Offered::Queued);
    assert_eq!(
        *stream.0.lock().unwrap(),
        (1, frames(&["one", "two", "three"]))
    );

    // A backlog of 5 bytes, checked before each message: "one" (5 bytes
    // framed) leaves 5 waiting, not more than 5, so "two" is queued too;
    // then 10 are waiting and "three" is dropped.
    let stream = CountingStream::default();
    let (_reader, writer) =
        rfc6455::tokio::WebSocket::from_connection(stream.clone(), server()).split();
    let offered = writer.offer_many(&batch, 5, WhenFull::Drop).unwrap();
    assert_eq!(offered, Offered::Dropped);
    assert_eq!(*stream.0.lock().unwrap(), (1, frames(&["one", "two"])));

    let stream = CountingStream::default();
    let (_reader, writer) =
        rfc6455::tokio::WebSocket::from_connection(stream.clone(), server()).split();
    let policy = WhenFull::Close(CloseCode::TRY_AGAIN_LATER, "too slow");
    assert_eq!(
        writer.offer_many(&batch, 0, policy).unwrap(),
        Offered::Closing
    );
    let written = stream.0.lock().unwrap().1.clone();
    assert!(written.starts_with(&frames(&["one"])));
    assert_eq!(written[5], 0x88, "a Close frame follows the first message");
    assert_eq!(&written[7..9], &1013u16.to_be_bytes());
    assert_eq!(
        writer.offer_many(&batch, 0, policy).unwrap(),
        Offered::Closed
    );
}

/// A publisher that offers to many connections in one turn of its task
/// writes to each at once. Tokio's cooperative budget (128 operations a
/// turn) must not refuse the writes after the 128th and leave them to
/// each connection's reading task: `offer` never waits, so it never
/// yields, and the budget would only move the work elsewhere. tokio's
/// `duplex` streams spend the budget as its sockets do.
#[tokio::test]
async fn offering_to_many_connections_in_one_turn_writes_to_each_at_once() {
    const CONNECTIONS: usize = 300;
    let mut peers = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let conn = rfc6455::Connection::new(rfc6455::Role::Server, Config::default());
        let (reader, writer) = rfc6455::tokio::WebSocket::from_connection(ours, conn).split();
        peers.push((theirs, reader));
        writers.push(writer);
    }
    let message = [PreparedMessage::text("tick")];
    // One turn: no await between the offers and the check.
    for writer in &writers {
        assert_eq!(
            writer
                .offer_many(&message, 1 << 20, WhenFull::Drop)
                .unwrap(),
            Offered::Queued
        );
    }
    let waiting: Vec<usize> = writers
        .iter()
        .enumerate()
        .filter(|(_, writer)| writer.backlog() > 0)
        .map(|(i, _)| i)
        .collect();
    assert!(waiting.is_empty(), "not written at once: {waiting:?}");
    for (theirs, _) in &mut peers {
        let mut frame = [0; 6];
        theirs.read_exact(&mut frame).await.unwrap();
        assert_eq!(&frame, b"\x81\x04tick");
    }
}
