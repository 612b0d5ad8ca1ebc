//! WebSocket over HTTP/2 (RFC 8441): our client and our server on one
//! HTTP/2 connection in memory (tokio's duplex pipe), many WebSockets on
//! it at once, one of them stalled; a server without the extended CONNECT;
//! a reset in the middle of a message; the core's rules for fields and
//! refusal statuses, through h2.
#![cfg(feature = "http2")]

#[path = "common/example.rs"]
mod example;

use rfc6455::Driver;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use example::ExampleServer;
use rfc6455::handshake::{
    Accept, ClientRequest, ExtendedConnectClient, ExtendedConnectResponse, HandshakeError,
};
use rfc6455::http2::{serve_connection, serve_connection_with, Client, Error, Incoming, Routes};
use rfc6455::{CloseCode, Config, Event, Message};

const LIMIT: Duration = Duration::from_secs(20);

/// An echo server for WebSockets on `/echo` and `/fields`; `/quiet`
/// accepts and never reads; `/refuse-200` is refused with a 200; anything
/// else with 404. Counts live stream tasks.
async fn serve(io: tokio::io::DuplexStream, live: Arc<AtomicUsize>) {
    let _ = serve_connection(io, Config::default(), move |incoming: Incoming| {
        let live = live.clone();
        async move {
            live.fetch_add(1, Ordering::SeqCst);
            let path = incoming.request().path().to_string();
            match path.as_str() {
                // `/fields` adds fields of one's own, one of them about
                // HTTP/1.1 connections only: it must not reach h2, which
                // would refuse the whole response as malformed.
                "/echo" | "/fields" => {
                    let accept = match path.as_str() {
                        "/fields" => Accept::new()
                            .header("Keep-Alive", "timeout=5")
                            .header("X-Served-By", "rfc6455"),
                        _ => Accept::new(),
                    };
                    if let Ok(mut ws) = incoming.accept(accept) {
                        while let Ok(Some(message)) = ws.recv().await {
                            if ws.send(&message).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                "/quiet" => {
                    if let Ok(ws) = incoming.accept(Accept::new()) {
                        // Holds the stream without reading, until reset.
                        tokio::time::sleep(LIMIT).await;
                        drop(ws);
                    }
                }
                // A refusal with a status that does not refuse: a 200
                // would read as an acceptance.
                "/refuse-200" => incoming.reject(200, "not a refusal"),
                _ => incoming.reject(404, "no such WebSocket"),
            }
            live.fetch_sub(1, Ordering::SeqCst);
        }
    })
    .await;
}

fn connect(path: &str) -> ExtendedConnectClient {
    ExtendedConnectClient::new(&ClientRequest::new("localhost", path), Config::default())
        .scheme("http")
}

async fn pair() -> (Client, Arc<AtomicUsize>) {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let live = Arc::new(AtomicUsize::new(0));
    tokio::spawn(serve(server_io, live.clone()));
    (Client::handshake(client_io).await.unwrap(), live)
}

#[tokio::test]
async fn many_websockets_share_one_connection_and_a_stalled_one_stalls_only_itself() {
    tokio::time::timeout(LIMIT, async {
        let (client, _live) = pair().await;
        assert!(client.supports_websocket());
        // A stream whose server never reads: we fill its window.
        let mut stalled = client.websocket(connect("/quiet")).await.unwrap();
        let stuck = tokio::spawn(async move {
            // More than HTTP/2's default 64 KiB window: never completes.
            let _ = stalled.send(&Message::from(vec![0u8; 1 << 20])).await;
        });
        let mut tasks = Vec::new();
        for i in 0..8u8 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut ws = client.websocket(connect("/echo")).await.unwrap();
                let text = format!("stream {i}");
                let big = vec![i; 1 << 20];
                ws.send_text(&text).await.unwrap();
                ws.send(&Message::from(big.clone())).await.unwrap();
                ws.ping(b"are you there").await.unwrap();
                ws.connection_mut()
                    .send_fragmented(rfc6455::MessageKind::Text, "in pieces".as_bytes(), 3)
                    .unwrap();
                ws.flush().await.unwrap();
                let mut seen = Vec::new();
                while seen.len() < 4 {
                    match ws.recv_event().await.unwrap() {
                        Event::Message(message) => seen.push(Some(message)),
                        Event::Pong(payload) => {
                            assert_eq!(&payload[..], b"are you there");
                            seen.push(None);
                        }
                        other => panic!("stream {i}: {other:?}"),
                    }
                }
                assert_eq!(seen[0], Some(Message::from(text.as_str())));
                assert_eq!(seen[1], Some(Message::from(big)));
                assert_eq!(seen[3], Some(Message::from("in pieces")));
                ws.close(CloseCode(4000 + u16::from(i)), "done")
                    .await
                    .unwrap();
                assert_eq!(ws.recv().await.unwrap(), None);
                let closed = ws.closed().unwrap();
                assert!(closed.is_clean());
                assert_eq!(
                    closed.received.as_ref().map(|f| f.code),
                    Some(CloseCode(4000 + u16::from(i)))
                );
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert!(!stuck.is_finished(), "the stalled stream is still stalled");
        stuck.abort();
    })
    .await
    .expect("hung");
}

#[tokio::test]
async fn a_path_refused_gets_its_status() {
    let (client, _live) = pair().await;
    match client.websocket(connect("/nowhere")).await {
        Err(Error::Handshake(HandshakeError::Status(404))) => {}
        other => panic!("expected a 404, got {other:?}"),
    }
}

/// The core's rules for fields hold through h2: what HTTP/2 forbids
/// (RFC 9113 §8.2.2) is left out on both sides, and the rest goes through.
#[tokio::test]
async fn fields_about_http_1_1_connections_never_reach_h2() {
    let (client, _live) = pair().await;
    let request = ClientRequest::new("localhost", "/fields")
        .header("Keep-Alive", "timeout=5")
        .header("Origin", "http://localhost");
    let connect = ExtendedConnectClient::new(&request, Config::default()).scheme("http");
    let mut ws = client.websocket(connect).await.expect("h2 sent both heads");
    ws.send(&Message::from("across")).await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Message::from("across")));
}

#[tokio::test]
async fn a_refusal_never_reads_as_an_acceptance() {
    let (client, _live) = pair().await;
    match client.websocket(connect("/refuse-200")).await {
        Err(Error::Handshake(HandshakeError::Status(500))) => {}
        other => panic!("expected a 500, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_without_the_setting_is_told_apart() {
    // A plain h2 server: no SETTINGS_ENABLE_CONNECT_PROTOCOL.
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let mut connection = h2::server::handshake(server_io).await.unwrap();
        while let Some(Ok(_)) = connection.accept().await {}
    });
    let client = Client::handshake(client_io).await.unwrap();
    assert!(!client.supports_websocket());
    match client.websocket(connect("/echo")).await {
        Err(Error::Handshake(HandshakeError::NoExtendedConnect)) => {}
        other => panic!("expected NoExtendedConnect, got {other:?}"),
    }
}

/// A server that serves `routes`: a WebSocket sends "a WebSocket", any
/// other request gets a page (`Incoming::respond`).
fn pages_and_websockets(routes: Routes) -> tokio::io::DuplexStream {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(serve_connection_with(
        server_io,
        Config::default(),
        routes,
        |incoming: Incoming| async move {
            if incoming.request().is_websocket() {
                let mut ws = incoming.accept(Accept::new()).unwrap();
                ws.send_text("a WebSocket").await.unwrap();
                while let Ok(Some(_)) = ws.recv().await {}
            } else {
                let page = ExtendedConnectResponse::new(200, "text/html", "<p>a page</p>");
                incoming.respond(&page);
            }
        },
    ));
    client_io
}

/// The setting is advertised only where WebSocket routes exist (a client
/// is told before it sends a CONNECT), and a page's GET and a WebSocket's
/// CONNECT are told apart on one connection.
#[tokio::test]
async fn pages_and_websockets_on_one_connection_and_the_setting_only_with_routes() {
    for routes in [Routes::PagesOnly, Routes::WebSocket] {
        // A page, with a plain HTTP/2 client.
        let (send, connection) = h2::client::handshake(pages_and_websockets(routes))
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut send = send.ready().await.unwrap();
        let get = http::Request::get("http://localhost/").body(()).unwrap();
        let (response, _) = send.send_request(get, true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let mut page = Vec::new();
        while let Some(chunk) = body.data().await {
            page.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(page, b"<p>a page</p>");

        // A WebSocket, with ours.
        let client = Client::handshake(pages_and_websockets(routes))
            .await
            .unwrap();
        assert_eq!(client.supports_websocket(), routes == Routes::WebSocket);
        match client.websocket(connect("/ws")).await {
            Ok(mut ws) => {
                assert_eq!(routes, Routes::WebSocket);
                assert_eq!(ws.recv().await.unwrap(), Some(Message::from("a WebSocket")));
            }
            Err(Error::Handshake(HandshakeError::NoExtendedConnect)) => {
                assert_eq!(routes, Routes::PagesOnly);
            }
            Err(other) => panic!("{routes:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_reset_in_the_middle_of_a_message_frees_the_stream_task() {
    tokio::time::timeout(LIMIT, async {
        let (client, live) = pair().await;
        let mut ws = client.websocket(connect("/echo")).await.unwrap();
        // Half of a 100 KiB message: the header says more is coming.
        ws.connection_mut()
            .send_fragment(rfc6455::MessageKind::Binary, &[1; 50_000], false)
            .unwrap();
        ws.flush().await.unwrap();
        while live.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        ws.reset();
        // The server's task for the stream ends: its recv fails at once.
        while live.load(Ordering::SeqCst) != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The connection goes on: a new WebSocket on it works.
        let mut again = client.websocket(connect("/echo")).await.unwrap();
        again.send_text("still here").await.unwrap();
        assert_eq!(
            again.recv().await.unwrap(),
            Some(Message::from("still here"))
        );
    })
    .await
    .expect("the reset stream's task never ended");
}

#[tokio::test]
async fn the_echo_server_takes_http_2_and_http_1_1_on_one_port() {
    let server = ExampleServer::start("echo_server", &[]);
    tokio::time::timeout(LIMIT, async {
        // HTTP/2 with prior knowledge: an extended CONNECT, then frames.
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let client = Client::handshake(tcp).await.unwrap();
        assert!(
            client.supports_websocket(),
            "the server advertises the extended CONNECT"
        );
        let mut ws = client.websocket(connect("/h2")).await.unwrap();
        ws.send_text("over HTTP/2").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Some(Message::from("over HTTP/2")));
        ws.send(&Message::from(vec![9u8; 300_000])).await.unwrap();
        assert_eq!(
            ws.recv().await.unwrap(),
            Some(Message::from(vec![9u8; 300_000]))
        );
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), None);
        // HTTP/1.1 on the same port.
        let url = format!("ws://{}/h1", server.addr);
        let mut ws = rfc6455::tokio::connect(&url).await.unwrap();
        ws.send_text("over HTTP/1.1").await.unwrap();
        assert_eq!(
            ws.recv().await.unwrap(),
            Some(Message::from("over HTTP/1.1"))
        );
    })
    .await
    .expect("hung");
}

#[tokio::test]
async fn sniffing_tells_the_preface_apart_and_gives_every_byte_back() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let http1 = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    let mut http2 = rfc6455::http2::PREFACE.to_vec();
    http2.extend_from_slice(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00");
    let near_miss = b"PRI * HTTP/1.1\r\n\r\n".to_vec();
    for (input, expected) in [(http1, false), (http2, true), (near_miss, false)] {
        for split in [1, 3, 16, 24, 40] {
            let (mut writer, reader) = tokio::io::duplex(1024);
            let sent = input.clone();
            tokio::spawn(async move {
                // In pieces, as a slow client sends them; then the end.
                for piece in sent.chunks(split) {
                    writer.write_all(piece).await.unwrap();
                    tokio::task::yield_now().await;
                }
            });
            let (is_http2, mut rewound) = rfc6455::http2::sniff(reader).await.unwrap();
            assert_eq!(is_http2, expected, "{input:?} in pieces of {split}");
            let mut back = Vec::new();
            rewound.read_to_end(&mut back).await.unwrap();
            assert_eq!(back, input, "every byte comes back, in order");
        }
    }
}

/// A third-party HTTP/2 client against our server: Node's http2 module
/// (tests/interop/h2peer.mjs: text, 1 MiB binary, fragmented, ping, close
/// 4000). Run by tests/interop/run, which sets `INTEROP_NODE`.
#[test]
#[ignore = "needs node: tests/interop/run"]
fn node_http2_client_against_our_server() {
    node_h2peer(&ExampleServer::start("echo_server", &[]), "http");
}

/// The same over TLS (`echo_server --tls`): Node chooses `h2` in ALPN and
/// gets RFC 8441; then Node's `ws`, which offers no ALPN, gets the
/// HTTP/1.1 Upgrade on the same port.
#[test]
#[ignore = "needs node: tests/interop/run"]
fn node_http2_and_ws_over_tls_against_our_server() {
    node_h2peer(&ExampleServer::start("echo_server", &["--tls"]), "https");
}

/// Runs tests/interop/h2peer.mjs against `server`.
fn node_h2peer(server: &ExampleServer, scheme: &str) {
    let node = std::env::var_os("INTEROP_NODE").expect("INTEROP_NODE: run tests/interop/run");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/h2peer.mjs");
    let output = std::process::Command::new(node)
        .arg(script)
        .arg(format!("{scheme}://{}", server.addr))
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "node: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Our client against a third-party HTTP/2 server: Node's http2 module
/// with the extended CONNECT (tests/interop/h2server.mjs echoes). Run by
/// tests/interop/run, which sets `INTEROP_NODE`.
#[tokio::test]
#[ignore = "needs node: tests/interop/run"]
async fn our_client_against_node_http2_server() {
    use std::io::BufRead;
    let node = std::env::var_os("INTEROP_NODE").expect("INTEROP_NODE: run tests/interop/run");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/h2server.mjs");
    let mut child = std::process::Command::new(node)
        .arg(script)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let port: u16 = first.strip_prefix("port ").unwrap().parse().unwrap();
    let outcome = tokio::time::timeout(LIMIT, async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let client = Client::handshake(tcp).await.unwrap();
        assert!(client.supports_websocket());
        let mut ws = client.websocket(connect("/node")).await.unwrap();
        ws.send_text("to node").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Some(Message::from("to node")));
        let big = vec![5u8; 1 << 20];
        ws.send(&Message::from(big.clone())).await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Some(Message::from(big)));
        ws.connection_mut()
            .send_fragmented(rfc6455::MessageKind::Text, "in pieces".as_bytes(), 4)
            .unwrap();
        ws.ping(b"ping!").await.unwrap();
        // Node's echo of the fragmented text, and the Pong, in either
        // order.
        let (mut echo, mut pong) = (None, None);
        while echo.is_none() || pong.is_none() {
            match ws.recv_event().await.unwrap() {
                Event::Message(m) if echo.is_none() => echo = Some(m),
                Event::Pong(p) if pong.is_none() => pong = Some(p),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            echo,
            Some(Message::from("in pieces")),
            "the fragmented echo"
        );
        assert_eq!(pong.as_deref(), Some(&b"ping!"[..]), "the Pong");
        ws.close(CloseCode(4000), "bye").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), None);
        ws.closed().unwrap().received.as_ref().map(|f| f.code)
    })
    .await;
    let last = lines
        .next()
        .map(|l| l.unwrap_or_default())
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(outcome.expect("hung"), Some(CloseCode(4000)));
    assert_eq!(last, "ok", "node's verdict");
}
