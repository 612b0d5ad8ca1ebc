//! WebSocket over HTTP/3 (RFC 9220): our client and our server on one
//! QUIC connection over loopback (quinn, rustls with a test CA): every
//! message kind and close path, many WebSockets on one connection, the
//! refusals, a server without the setting, and no 0-RTT.
#![cfg(feature = "http3")]

#[path = "common/tls.rs"]
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rfc6455::handshake::{Accept, ClientRequest, ExtendedConnectClient, HandshakeError};
use rfc6455::http3::{self, serve_connection, Client, Error, Incoming};
use rfc6455::{CloseCode, Config, Driver, Event, Message, MessageKind};

const LIMIT: Duration = Duration::from_secs(20);

/// A server: WebSockets on `/echo` echo; `/refuse` is refused with 403;
/// anything else 404.
fn server(pki: &tls::TestPki) -> (quinn::Endpoint, SocketAddr) {
    let config = http3::server_config(pki.server_config()).unwrap();
    let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let accepting = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                let _ =
                    serve_connection(conn, Config::default(), |incoming: Incoming| async move {
                        match incoming.request().path() {
                            "/echo" => {
                                if let Ok(mut ws) = incoming.accept(Accept::new()) {
                                    while let Ok(Some(message)) = ws.recv().await {
                                        if ws.send(&message).await.is_err() {
                                            break;
                                        }
                                    }
                                }
                            }
                            "/refuse" => incoming.reject(403, "not you"),
                            _ => incoming.reject(404, "no such WebSocket"),
                        }
                    })
                    .await;
            });
        }
    });
    (endpoint, addr)
}

async fn client(pki: &tls::TestPki, addr: SocketAddr) -> Client {
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let tls = (*pki.client_config()).clone();
    endpoint.set_default_client_config(http3::client_config(tls).unwrap());
    let conn = endpoint.connect(addr, "localhost").unwrap().await.unwrap();
    Client::handshake(conn).await.unwrap()
}

fn connect(path: &str) -> ExtendedConnectClient {
    ExtendedConnectClient::new(&ClientRequest::new("localhost", path), Config::default())
}

#[tokio::test]
async fn every_message_kind_and_the_close_cross_http3() {
    let pki = tls::TestPki::new(&["localhost"]);
    let (_server, addr) = server(&pki);
    tokio::time::timeout(LIMIT, async {
        let client = client(&pki, addr).await;
        assert!(client.supports_websocket());
        let mut ws = client.websocket(connect("/echo")).await.unwrap();
        let big = Message::from(vec![7u8; 1 << 20]);
        for message in [
            Message::from("hello over QUIC"),
            big.clone(),
            Message::from(vec![]),
        ] {
            ws.send(&message).await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), Some(message));
        }
        ws.send_fragmented(MessageKind::Text, "in pieces".as_bytes(), 3)
            .await
            .unwrap();
        assert_eq!(ws.recv().await.unwrap(), Some(Message::from("in pieces")));
        ws.ping(b"there?").await.unwrap();
        match ws.recv_event().await.unwrap() {
            Event::Pong(payload) => assert_eq!(&payload[..], b"there?"),
            other => panic!("{other:?}"),
        }
        ws.close(CloseCode::NORMAL, "bye").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), None);
        let closed = ws.closed().unwrap();
        assert_eq!(
            closed.received.as_ref().map(|f| f.code),
            Some(CloseCode::NORMAL)
        );
    })
    .await
    .expect("hung");
}

#[tokio::test]
async fn many_websockets_share_one_connection() {
    let pki = tls::TestPki::new(&["localhost"]);
    let (_server, addr) = server(&pki);
    tokio::time::timeout(LIMIT, async {
        let client = Arc::new(client(&pki, addr).await);
        let mut tasks = Vec::new();
        for i in 0..32 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut ws = client.websocket(connect("/echo")).await.unwrap();
                for j in 0..20 {
                    let message = Message::from(format!("{i}:{j}"));
                    ws.send(&message).await.unwrap();
                    assert_eq!(ws.recv().await.unwrap(), Some(message));
                }
                ws.close(CloseCode::NORMAL, "").await.unwrap();
                assert_eq!(ws.recv().await.unwrap(), None);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    })
    .await
    .expect("hung");
}

#[tokio::test]
async fn refusals_get_their_status() {
    let pki = tls::TestPki::new(&["localhost"]);
    let (_server, addr) = server(&pki);
    tokio::time::timeout(LIMIT, async {
        let client = client(&pki, addr).await;
        for (path, status) in [("/refuse", 403), ("/nothing", 404)] {
            match client.websocket(connect(path)).await {
                Err(Error::Handshake(HandshakeError::Status(got))) => assert_eq!(got, status),
                other => panic!("{path}: {other:?}"),
            }
        }
        // The connection still serves WebSockets.
        let mut ws = client.websocket(connect("/echo")).await.unwrap();
        ws.send_text("still here").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Some(Message::from("still here")));
    })
    .await
    .expect("hung");
}
