//! The head limit holds on every transport: one table of handshakes
//! (fields well inside the limits, more bytes than `max_header_bytes` in
//! small fields, more fields than `max_headers`, one field of 1 MiB) sent
//! over HTTP/1.1 to our own parser, through the `http` crate's types (the
//! head hyper and axum parsed), over HTTP/2 (h2, the field section spread
//! over CONTINUATION frames where it is large), over HTTP/3 (our QPACK,
//! the limit advertised as SETTINGS_MAX_FIELD_SECTION_SIZE), and to the
//! core's extended CONNECT, which HTTP/2 and HTTP/3 share. A head inside the
//! limits is accepted; any other is refused with 431 (over HTTP/2, a
//! single field larger than the limit may end the connection instead:
//! h2 will not buffer it), and is never accepted.
#![cfg(all(feature = "tokio", feature = "http", feature = "http2"))]

use std::time::Duration;

use rfc6455::handshake::{
    Accept, ClientRequest, ExtendedConnectClient, ExtendedConnectRequest, HandshakeError,
};
use rfc6455::http2::{serve_connection, Client, Error, Incoming};
use rfc6455::{Config, Driver};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[cfg(feature = "http3")]
#[path = "common/tls.rs"]
mod tls;

const LIMIT: Duration = Duration::from_secs(20);

/// A handshake's extra fields, and whether a server with the default
/// `Config` (16 KiB, 64 fields) accepts it.
struct Case {
    name: &'static str,
    fields: Vec<(String, String)>,
    accepted: bool,
    /// Over the byte limit (not only the count).
    too_large: bool,
}

fn cases() -> Vec<Case> {
    let config = Config::default();
    let padded = |count: usize, size: usize| -> Vec<(String, String)> {
        (0..count)
            .map(|i| (format!("x-pad-{i}"), "a".repeat(size)))
            .collect()
    };
    vec![
        Case {
            name: "inside the limits: 16 fields, 8 KiB",
            fields: padded(16, 512),
            accepted: true,
            too_large: false,
        },
        Case {
            name: "more bytes than max_header_bytes, in small fields",
            fields: padded(40, config.max_header_bytes / 32),
            accepted: false,
            too_large: true,
        },
        Case {
            name: "more fields than max_headers",
            fields: padded(config.max_headers + 1, 1),
            accepted: false,
            too_large: false,
        },
        Case {
            name: "one field of 1 MiB",
            fields: padded(1, 1 << 20),
            accepted: false,
            too_large: true,
        },
    ]
}

fn client_request(case: &Case) -> ClientRequest {
    case.fields
        .iter()
        .fold(ClientRequest::new("localhost", "/"), |request, (n, v)| {
            request.header(n.as_str(), v.as_str())
        })
}

/// HTTP/1.1 to our parser (the tokio driver's `accept`): the status line
/// of the response.
#[tokio::test]
async fn http_1_1() {
    for case in cases() {
        let handshake =
            rfc6455::handshake::ClientHandshake::new(&client_request(&case), Config::default());
        let request = handshake.request().to_vec();
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(async move { rfc6455::tokio::accept(server).await.is_ok() });
        let (mut read, mut write) = tokio::io::split(&mut client);
        // The server stops reading at the limit: the rest may not be taken.
        let writing = async {
            let _ = write.write_all(&request).await;
        };
        let reading = async {
            let mut response = Vec::new();
            let mut chunk = [0; 4096];
            while !response.windows(4).any(|w| w == b"\r\n\r\n") {
                match read.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => response.extend_from_slice(&chunk[..n]),
                }
            }
            response
        };
        let ((), response) = tokio::time::timeout(LIMIT, async { tokio::join!(writing, reading) })
            .await
            .expect("hung");
        let status = String::from_utf8_lossy(&response[..12.min(response.len())]).into_owned();
        let want = if case.accepted { "101" } else { "431" };
        assert_eq!(&status[9..], want, "{}: {status:?}", case.name);
        drop(client);
        assert_eq!(served.await.unwrap(), case.accepted, "{}", case.name);
    }
}

/// The head another library parsed, in the `http` crate's types (what
/// hyper and axum hand over).
#[test]
fn http_crate() {
    for case in cases() {
        let mut request = http::Request::get("/")
            .header("Host", "localhost")
            .header("Upgrade", "websocket")
            .header("Connection", "Upgrade")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("Sec-WebSocket-Version", "13");
        for (name, value) in &case.fields {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request.body(()).unwrap();
        let verdict = rfc6455::http::request(&request, Config::default()).accept(Accept::new());
        check_core(&case, verdict.map(|_| ()));
    }
}

/// The core's extended CONNECT, as HTTP/2 and HTTP/3 hand it the fields.
#[test]
fn extended_connect_in_the_core() {
    for case in cases() {
        let connect = ExtendedConnectClient::new(&client_request(&case), Config::default());
        let pseudo = connect.pseudo_headers();
        let fields = connect.headers();
        let fields = fields.iter().map(|(n, v)| (n.as_str(), v.as_bytes()));
        let request = ExtendedConnectRequest::new(Config::default(), &pseudo, fields);
        check_core(&case, request.accept(Accept::new()).map(|_| ()));
    }
}

fn check_core(case: &Case, verdict: Result<(), HandshakeError>) {
    match verdict {
        Ok(()) => assert!(case.accepted, "{}: accepted", case.name),
        Err(refused) => {
            assert!(!case.accepted, "{}: {refused}", case.name);
            assert_eq!(refused.status(), 431, "{}: {refused}", case.name);
        }
    }
}

/// HTTP/2: the server advertises the limit (SETTINGS_MAX_HEADER_LIST_SIZE)
/// and h2 keeps to it, so a large header block is refused before the core
/// sees it, and never buffered whole.
#[tokio::test]
async fn http_2() {
    for case in cases() {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let (seen, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(serve_connection(
            server_io,
            Config::default(),
            move |incoming: Incoming| {
                let seen = seen.clone();
                async move {
                    let accepted = incoming.accept(Accept::new());
                    let _ = seen.send(accepted.is_ok());
                    if let Ok(mut ws) = accepted {
                        while let Ok(Some(_)) = ws.recv().await {}
                    }
                }
            },
        ));
        let verdict = tokio::time::timeout(LIMIT, async {
            let client = Client::handshake(client_io).await.expect("h2 handshake");
            let connect = ExtendedConnectClient::new(&client_request(&case), Config::default())
                .scheme("http");
            client.websocket(connect).await.map(|_| ())
        })
        .await
        .expect("hung");
        match verdict {
            Ok(()) => assert!(case.accepted, "{}: accepted", case.name),
            Err(Error::Handshake(HandshakeError::Status(431))) => {
                assert!(!case.accepted, "{}: refused", case.name)
            }
            // One field larger than the limit spans CONTINUATION frames;
            // h2 ends the connection rather than buffer it.
            Err(Error::Io(e)) if case.fields.len() == 1 && !case.accepted => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionAborted, "{e}");
            }
            Err(other) => panic!("{}: {other:?}", case.name),
        }
        // A head over the byte limit is refused by h2, on the limit the
        // server advertised: the application never sees it (it would have
        // had it before the client had an answer). h2 does not count
        // fields: the core refuses too many.
        match seen_rx.try_recv() {
            Ok(accepted) => {
                assert_eq!(accepted, case.accepted, "{}", case.name);
                assert!(!case.too_large, "{}: reached the application", case.name);
            }
            Err(_) => assert!(
                case.too_large,
                "{}: never reached the application",
                case.name
            ),
        }
    }
}

/// HTTP/3: the server advertises the limit
/// (SETTINGS_MAX_FIELD_SECTION_SIZE) and refuses a larger HEADERS frame
/// with 431 before reading it, or a field section that decodes larger;
/// the core counts the fields.
#[cfg(feature = "http3")]
#[tokio::test]
async fn http_3() {
    use rfc6455::http3;

    let pki = tls::TestPki::new(&["localhost"]);
    let (endpoint, addr) = pki.h3_server();
    let (seen, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                let _ = http3::serve_connection(
                    conn,
                    Config::default(),
                    move |incoming: http3::Incoming| {
                        let seen = seen.clone();
                        async move {
                            let accepted = incoming.accept(Accept::new());
                            let _ = seen.send(accepted.is_ok());
                            if let Ok(mut ws) = accepted {
                                while let Ok(Some(_)) = ws.recv().await {}
                            }
                        }
                    },
                )
                .await;
            });
        }
    });
    let client_endpoint = pki.h3_client();
    for case in cases() {
        let verdict = tokio::time::timeout(LIMIT, async {
            let conn = client_endpoint
                .connect(addr, "localhost")
                .unwrap()
                .await
                .unwrap();
            let client = http3::Client::handshake(conn).await.expect("h3 handshake");
            let connect = ExtendedConnectClient::new(&client_request(&case), Config::default());
            client.websocket(connect).await.map(|_| ())
        })
        .await
        .expect("hung");
        match verdict {
            Ok(()) => assert!(case.accepted, "{}: accepted", case.name),
            Err(http3::Error::Handshake(HandshakeError::Status(431))) => {
                assert!(!case.accepted, "{}: refused", case.name)
            }
            Err(other) => panic!("{}: {other:?}", case.name),
        }
        // Over the byte limit, the driver refuses before the application
        // sees the request; too many fields, the core refuses.
        match seen_rx.try_recv() {
            Ok(accepted) => {
                assert_eq!(accepted, case.accepted, "{}", case.name);
                assert!(!case.too_large, "{}: reached the application", case.name);
            }
            Err(_) => assert!(
                case.too_large,
                "{}: never reached the application",
                case.name
            ),
        }
    }
}
