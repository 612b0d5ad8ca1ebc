//! The split halves of the shared driver loop (`socket::WebSocket::split`)
//! on each driver that is that loop: embedded-io-async (over tokio's
//! traits), HTTP/2, HTTP/3 and compio. The peer is a whole WebSocket of another
//! driver, written once over `rfc6455::Driver`.
//!
//! The exchange is built so that each half must work while the other
//! waits: the peer reads every message of the writing half before it
//! sends anything, so the reading half is waiting for input all that
//! time, and a reading half that did not step aside would hold the
//! writing half up for ever (the test's time limit). Then the peer's
//! messages and a Ping come while the writing half is idle: the reading
//! half receives them and answers the Ping alone. Last the writing half
//! closes, and the reading half sees the peer's reply.
#![cfg(all(feature = "tokio", feature = "embedded-io-async", feature = "http2"))]

#[cfg(feature = "http3")]
#[path = "common/tls.rs"]
mod tls;
#[path = "common/tokio_clock.rs"]
mod tokio_clock;

use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};

use rfc6455::socket::{Clock, Transport, WebSocket};
use rfc6455::{CloseCode, Driver, Event, Message};

/// Messages the writing half sends, and the peer after them.
const N: usize = 20;
/// Messages the peer sends: `N`, a Ping, and one more, so the side under
/// test has read the Ping once it has every message.
const THEIRS: usize = N + 1;
const LIMIT: Duration = Duration::from_secs(10);

fn ours(i: usize) -> Message {
    Message::from(format!("from the writing half {i}"))
}

fn theirs(i: usize) -> Message {
    Message::from(vec![i as u8; 1000 + i])
}

/// How the side under test uses its two halves.
#[derive(Clone, Copy, Debug)]
enum Way {
    /// `split`: `ReadHalf::recv`, `WriteHalf::lock`.
    Halves,
    /// `split`, then `ReadHalf::into_stream` and `WriteHalf::into_sink`.
    StreamAndSink,
    /// `into_stream_sink`, one value split by the futures crate's
    /// `StreamExt::split` (a lock between the two tasks).
    OneValue,
    /// `into_stream_sink` in one task, which leaves a `next` in flight
    /// (polled once, then dropped while the peer is silent) and sends: the
    /// sending must not wait for the `recv` nobody polls.
    OneTask,
}

const WAYS: [Way; 4] = [Way::Halves, Way::StreamAndSink, Way::OneValue, Way::OneTask];

/// The side under test: the writing half sends [`ours`], waits until the
/// reading half has had every one of [`theirs`], then closes; the reading
/// half receives until the end. Returns what the reading half received.
async fn split_side<T: Transport, C: Clock>(ws: WebSocket<T, C>, way: Way) -> Vec<Message> {
    match way {
        Way::Halves => halves_side(ws).await,
        Way::StreamAndSink => {
            let (read, write) = ws.split();
            stream_sink_side(read.into_stream(), write.into_sink()).await
        }
        Way::OneValue => {
            let (write, read) = ws.into_stream_sink().split();
            stream_sink_side(read, write).await
        }
        Way::OneTask => one_task_side(ws).await,
    }
}

/// [`split_side`] in one task, on one value that is `Stream` + `Sink`.
async fn one_task_side<T: Transport, C: Clock>(ws: WebSocket<T, C>) -> Vec<Message> {
    let mut ws = ws.into_stream_sink();
    // The peer sends nothing until it has all of ours: this `recv` waits.
    assert!(futures_util::poll!(ws.next()).is_pending());
    for i in 0..N {
        ws.send(ours(i)).await.expect("the sink sends");
    }
    let mut got = Vec::new();
    while got.len() < THEIRS {
        got.push(ws.next().await.expect("a message").expect("the stream"));
    }
    ws.close().await.expect("the sink closes");
    while let Some(message) = ws.next().await {
        got.push(message.expect("the stream"));
    }
    got
}

/// [`split_side`] over the futures crate's traits.
async fn stream_sink_side<E: std::fmt::Debug>(
    mut read: impl Stream<Item = Result<Message, E>> + Unpin,
    mut write: impl Sink<Message, Error = E> + Unpin,
) -> Vec<Message> {
    let done = tokio::sync::Notify::new();
    let writer = async {
        for i in 0..N {
            write.send(ours(i)).await.expect("the sink sends");
        }
        done.notified().await;
        write.close().await.expect("the sink closes");
    };
    let reader = async {
        let mut got = Vec::new();
        while let Some(message) = read.next().await {
            got.push(message.expect("the stream"));
            if got.len() == THEIRS {
                done.notify_one();
            }
        }
        got
    };
    let ((), got) = tokio::join!(writer, reader);
    got
}

async fn halves_side<T: Transport, C: Clock>(ws: WebSocket<T, C>) -> Vec<Message> {
    let (mut read, write) = ws.split();
    let done = tokio::sync::Notify::new();
    let writer = async {
        for i in 0..N {
            let mut ws = write.lock().await;
            ws.send(&ours(i)).await.expect("the writing half sends");
        }
        done.notified().await;
        let mut ws = write.lock().await;
        ws.close(CloseCode::NORMAL, "done").await.expect("close");
    };
    let reader = async {
        let mut got = Vec::new();
        while let Some(message) = read.recv().await.expect("the reading half") {
            got.push(message);
            if got.len() == THEIRS {
                done.notify_one();
            }
        }
        got
    };
    let ((), got) = tokio::join!(writer, reader);
    got
}

/// The peer, a whole WebSocket: every message of the writing half first,
/// then its own with a Ping before the last, then the end the split side
/// starts.
async fn peer<W: Driver>(ws: &mut W) {
    for i in 0..N {
        let got = ws.recv().await.expect("peer recv");
        assert_eq!(got, Some(ours(i)), "the writing half's message {i}");
    }
    for i in 0..N {
        ws.send(&theirs(i)).await.expect("peer send");
    }
    ws.ping(b"are you there").await.expect("peer ping");
    ws.send(&theirs(N)).await.expect("peer send");
    let mut ponged = false;
    loop {
        match ws.recv_event().await.expect("peer recv_event") {
            Event::Pong(payload) => {
                assert_eq!(&payload[..], b"are you there");
                ponged = true;
            }
            Event::Closed(closed) => {
                let code = closed.received.as_ref().map(|f| f.code);
                assert_eq!(code, Some(CloseCode::NORMAL), "the split side's Close");
                break;
            }
            other => panic!("peer: {other:?}"),
        }
    }
    assert!(ponged, "the reading half answered the Ping");
}

fn check(got: Vec<Message>) {
    let want: Vec<Message> = (0..THEIRS).map(theirs).collect();
    assert_eq!(got, want, "what the reading half received");
}

#[tokio::test]
async fn embedded_halves_against_the_tokio_driver() {
    use embedded_io_adapters::tokio_1::FromTokio;
    for way in WAYS {
        let (ours_io, theirs_io) = tokio::io::duplex(4096);
        let server = async {
            let ws = rfc6455::embedded::accept(
                FromTokio::new(ours_io),
                tokio_clock::TokioClock,
                rfc6455::Config::default(),
            )
            .await
            .expect("embedded accept");
            split_side(ws, way).await
        };
        let client = async {
            let mut ws = rfc6455::tokio::client(theirs_io, "ws://localhost/")
                .await
                .expect("tokio client");
            peer(&mut ws).await;
        };
        let (got, ()) = tokio::time::timeout(LIMIT, async { tokio::join!(server, client) })
            .await
            .unwrap_or_else(|_| panic!("{way:?} hung: the halves did not take turns"));
        check(got);
    }
}

#[tokio::test]
async fn http2_halves_against_the_http2_driver() {
    use rfc6455::handshake::{Accept, ClientRequest, ExtendedConnectClient};
    use rfc6455::http2::{serve_connection, Client, Incoming};
    use rfc6455::Config;

    for way in WAYS {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(serve_connection(
            server_io,
            Config::default(),
            |incoming: Incoming| async move {
                let mut ws = incoming.accept(Accept::new()).expect("accept");
                peer(&mut ws).await;
            },
        ));
        let got = tokio::time::timeout(LIMIT, async {
            let client = Client::handshake(client_io).await.expect("h2 handshake");
            let connect = ExtendedConnectClient::new(
                &ClientRequest::new("localhost", "/"),
                Config::default(),
            )
            .scheme("http");
            let ws = client.websocket(connect).await.expect("extended CONNECT");
            split_side(ws, way).await
        })
        .await
        .unwrap_or_else(|_| panic!("{way:?} hung: the halves did not take turns"));
        check(got);
        served.abort();
    }
}

#[cfg(feature = "compio")]
#[test]
fn compio_halves_against_the_blocking_driver() {
    for way in WAYS {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let peer_thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            stream.set_read_timeout(Some(LIMIT)).expect("timeout");
            let mut ws = rfc6455::blocking::accept(stream).expect("blocking accept");
            rfc6455::blocking::block_on(peer(&mut ws));
        });
        let runtime = compio::runtime::Runtime::new().expect("a compio runtime");
        let got = runtime.block_on(async {
            let tcp = compio::net::TcpStream::connect(addr)
                .await
                .expect("connect");
            let ws = rfc6455::compio::client(tcp, &format!("ws://{addr}/"))
                .await
                .expect("compio client");
            compio::time::timeout(LIMIT, split_side(ws, way))
                .await
                .unwrap_or_else(|_| panic!("{way:?} hung: the halves did not take turns"))
        });
        peer_thread.join().expect("the peer");
        check(got);
    }
}

#[cfg(feature = "http3")]
#[tokio::test]
async fn http3_halves_against_the_http3_driver() {
    use rfc6455::handshake::{Accept, ClientRequest, ExtendedConnectClient};
    use rfc6455::http3::{serve_connection, Client, Incoming};
    use rfc6455::Config;

    let pki = tls::TestPki::new(&["localhost"]);
    let (endpoint, addr) = pki.h3_server();
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                let _ =
                    serve_connection(conn, Config::default(), |incoming: Incoming| async move {
                        let mut ws = incoming.accept(Accept::new()).expect("accept");
                        peer(&mut ws).await;
                    })
                    .await;
            });
        }
    });
    let client = pki.h3_client();
    let conn = client.connect(addr, "localhost").unwrap().await.unwrap();
    let client = Client::handshake(conn).await.expect("h3 handshake");
    for way in WAYS {
        let got = tokio::time::timeout(LIMIT, async {
            let connect = ExtendedConnectClient::new(
                &ClientRequest::new("localhost", "/"),
                Config::default(),
            );
            let ws = client.websocket(connect).await.expect("extended CONNECT");
            split_side(ws, way).await
        })
        .await
        .unwrap_or_else(|_| panic!("{way:?} hung: the halves did not take turns"));
        check(got);
    }
}
