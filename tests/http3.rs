//! WebSocket over HTTP/3 (RFC 9220): our client and our server on one
//! QUIC connection over loopback (quinn, rustls with a test CA): every
//! message kind and close path, many WebSockets on one connection, the
//! refusals, a server without the setting, and no 0-RTT.
#![cfg(feature = "http3")]

#[path = "common/example.rs"]
mod example;
#[path = "common/tls.rs"]
mod tls;

use tokio_rustls::rustls;

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
    let ws_config = deflate(Config::default());
    let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let accepting = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accepting.accept().await {
            let ws_config = ws_config.clone();
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                let _ = serve_connection(conn, ws_config, |incoming: Incoming| async move {
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

/// `config` with permessage-deflate, where the feature is on: offered by
/// a client, accepted by a server when offered.
#[allow(unused_mut)]
fn deflate(mut config: Config) -> Config {
    #[cfg(feature = "deflate")]
    {
        config.deflate = Some(rfc6455::DeflateConfig::default());
    }
    config
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

/// A directory of its own for one test's files.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rfc6455-http3-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn python() -> std::ffi::OsString {
    std::env::var_os("INTEROP_PYTHON").expect("INTEROP_PYTHON: run tests/interop/run")
}

fn h3peer() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/h3peer.py")
}

/// aioquic's HTTP/3 with wsproto's frames (tests/interop/h3peer.py) as the
/// client of our server: text, 1 MiB binary, fragments, ping, close codes
/// 1000 and 4000, two WebSockets on one connection; with and without
/// permessage-deflate. Run by tests/interop/run.
#[tokio::test]
#[ignore = "needs aioquic: tests/interop/run"]
async fn aioquic_client_against_our_server() {
    let pki = tls::TestPki::new(&["localhost"]);
    let [ca, _, _] = pki.write_pem(&scratch("client"));
    let (_server, addr) = server(&pki);
    let modes: &[&str] = if cfg!(feature = "deflate") {
        &["", "deflate"]
    } else {
        &[""]
    };
    for mode in modes {
        let output = tokio::process::Command::new(python())
            .arg(h3peer())
            .args(["client", &addr.to_string()])
            .arg(&ca)
            .arg(mode)
            .output();
        let output = tokio::time::timeout(LIMIT, output)
            .await
            .expect("hung")
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.trim() == "ok",
            "aioquic client ({mode}): {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Our client against aioquic's HTTP/3 server (tests/interop/h3peer.py
/// echoes frame by frame): the same exchange, with and without
/// permessage-deflate. Run by tests/interop/run.
#[tokio::test]
#[ignore = "needs aioquic: tests/interop/run"]
async fn our_client_against_aioquic_server() {
    use tokio::io::AsyncBufReadExt;
    let pki = tls::TestPki::new(&["localhost"]);
    let [_, cert, key] = pki.write_pem(&scratch("server"));
    let mut child = tokio::process::Command::new(python())
        .arg(h3peer())
        .arg("server")
        .args([&cert, &key])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(LIMIT, lines.next_line())
        .await
        .expect("hung");
    let port: u16 = first
        .unwrap()
        .unwrap()
        .strip_prefix("port ")
        .unwrap()
        .parse()
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    tokio::time::timeout(LIMIT, async {
        let client = client(&pki, addr).await;
        assert!(
            client.supports_websocket(),
            "aioquic advertises the extended CONNECT"
        );
        let configs = if cfg!(feature = "deflate") {
            vec![Config::default(), deflate(Config::default())]
        } else {
            vec![Config::default()]
        };
        for config in configs {
            let request = ClientRequest::new(format!("localhost:{port}"), "/echo");
            let mut ws = client
                .websocket(ExtendedConnectClient::new(&request, config))
                .await
                .unwrap();
            for message in [
                Message::from("to aioquic"),
                Message::from(vec![9u8; 1 << 20]),
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
            ws.close(CloseCode::from(4000), "done here").await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), None);
            let closed = ws.closed().unwrap();
            let echoed = closed
                .received
                .as_ref()
                .map(|f| (f.code, f.reason.to_string()));
            assert_eq!(
                echoed,
                Some((CloseCode::from(4000), "done here".to_string()))
            );
        }
    })
    .await
    .expect("hung");
}

/// A server that speaks HTTP/3 but did not advertise the extended
/// CONNECT: told apart before any request is sent.
#[tokio::test]
async fn a_server_without_the_setting_is_told_apart() {
    let pki = tls::TestPki::new(&["localhost"]);
    let config = http3::server_config(pki.server_config()).unwrap();
    let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    tokio::spawn(async move {
        let conn = endpoint.accept().await.unwrap().await.unwrap();
        // A control stream with empty SETTINGS, held open.
        let mut control = conn.open_uni().await.unwrap();
        control.write_all(&[0x00, 0x04, 0x00]).await.unwrap();
        conn.closed().await;
    });
    tokio::time::timeout(LIMIT, async {
        let client = client(&pki, addr).await;
        assert!(!client.supports_websocket());
        match client.websocket(connect("/echo")).await {
            Err(Error::Handshake(HandshakeError::NoExtendedConnect)) => {}
            other => panic!("expected NoExtendedConnect, got {other:?}"),
        }
    })
    .await
    .expect("hung");
}

/// Whether a client that asks for 0-RTT gets it from a server with
/// `server_tls`, on its second connection (the first gave it a ticket).
async fn zero_rtt_offered(
    server_tls: quinn::ServerConfig,
    client_tls: quinn::ClientConfig,
) -> bool {
    let endpoint = quinn::Endpoint::server(server_tls, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                let _ =
                    serve_connection(conn, Config::default(), |incoming: Incoming| async move {
                        if let Ok(mut ws) = incoming.accept(Accept::new()) {
                            while let Ok(Some(message)) = ws.recv().await {
                                let _ = ws.send(&message).await;
                            }
                        }
                    })
                    .await;
            });
        }
    });
    let mut client_endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    client_endpoint.set_default_client_config(client_tls);
    // A whole exchange, so that the server's session ticket has arrived.
    let conn = client_endpoint
        .connect(addr, "localhost")
        .unwrap()
        .await
        .unwrap();
    let client = Client::handshake(conn.clone()).await.unwrap();
    let mut ws = client.websocket(connect("/")).await.unwrap();
    ws.send_text("first").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Message::from("first")));
    conn.close(0u32.into(), b"");
    // Resuming: 0-RTT is there only if the ticket allows early data.
    let connecting = client_endpoint.connect(addr, "localhost").unwrap();
    connecting.into_0rtt().is_ok()
}

/// A WebSocket handshake is not replay-safe, so it is never sent or
/// accepted in 0-RTT data: our server never allows early data (even to a
/// client that asks for it), and our client never asks. The same client
/// gets 0-RTT from a server that allows it, so the check can fail.
#[tokio::test]
async fn no_0rtt_on_either_side() {
    let pki = tls::TestPki::new(&["localhost"]);
    let alpn_client = |early: bool| {
        let mut tls = (*pki.client_config()).clone();
        tls.alpn_protocols = vec![http3::ALPN.to_vec()];
        tls.enable_early_data = early;
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
        quinn::ClientConfig::new(Arc::new(quic))
    };
    let allowing = || {
        let mut tls = pki.server_config();
        tls.alpn_protocols = vec![http3::ALPN.to_vec()];
        tls.max_early_data_size = u32::MAX;
        let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
        quinn::ServerConfig::with_crypto(Arc::new(quic))
    };
    let ours = || http3::server_config(pki.server_config()).unwrap();
    let our_client = || http3::client_config((*pki.client_config()).clone()).unwrap();
    tokio::time::timeout(LIMIT, async {
        assert!(
            zero_rtt_offered(allowing(), alpn_client(true)).await,
            "the control: 0-RTT where allowed"
        );
        assert!(
            !zero_rtt_offered(ours(), alpn_client(true)).await,
            "our server allows no 0-RTT"
        );
        assert!(
            !zero_rtt_offered(allowing(), our_client()).await,
            "our client asks for no 0-RTT"
        );
    })
    .await
    .expect("hung");
}

/// Accepts any certificate: the example server's is made at start and
/// signed by itself.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn trusting_client(alpn: &[u8]) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    config
}

/// `echo_server --tls` serves HTTP/3 on the same port number over UDP and
/// announces it on TCP (`Alt-Svc: h3=":PORT"` on the 101).
#[tokio::test]
async fn the_echo_server_serves_http3_beside_tls_and_says_so() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = example::ExampleServer::start("echo_server", &["--tls"]);
    let port = server.addr.port();
    tokio::time::timeout(LIMIT, async {
        // Over TCP and TLS: the HTTP/1.1 Upgrade's response names HTTP/3.
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(trusting_client(b"http/1.1")));
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let handshake = rfc6455::handshake::ClientHandshake::new(
            &ClientRequest::new("localhost", "/"),
            Config::default(),
        );
        tls.write_all(handshake.request()).await.unwrap();
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0; 1024];
            let n = tls.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the response ended early");
            head.extend_from_slice(&chunk[..n]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains(&format!("alt-svc: h3=\":{port}\"")), "{head}");

        // Over QUIC on the same port number: a WebSocket echoed.
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let config = http3::client_config(trusting_client(b"h3")).unwrap();
        endpoint.set_default_client_config(config);
        let conn = endpoint
            .connect(server.addr, "localhost")
            .unwrap()
            .await
            .unwrap();
        let client = Client::handshake(conn).await.unwrap();
        let mut ws = client.websocket(connect("/over-h3")).await.unwrap();
        ws.send_text("echo me").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), Some(Message::from("echo me")));
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        assert_eq!(ws.recv().await.unwrap(), None);
    })
    .await
    .expect("hung");
}
