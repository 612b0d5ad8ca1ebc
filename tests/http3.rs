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
                        // Accepted and never read: what may the peer push?
                        "/still" => {
                            if let Ok(ws) = incoming.accept(Accept::new()) {
                                tokio::time::sleep(LIMIT).await;
                                drop(ws);
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
    let endpoint = pki.h3_client();
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

/// Pushes `size`-byte messages on `ws` until a send stalls (has not
/// finished in half a second); returns the bytes sent before it.
async fn push_until_stalled(ws: &mut http3::WebSocket, size: usize) -> usize {
    let message = Message::from(vec![7u8; size]);
    let mut sent = 0usize;
    while tokio::time::timeout(Duration::from_millis(500), ws.send(&message))
        .await
        .is_ok()
    {
        sent += size;
        assert!(
            sent <= 4 * http3::CONNECTION_WINDOW as usize,
            "never stalled"
        );
    }
    sent
}

/// WebSockets the server accepts and never reads take no more than the
/// stream's flow-control window each (plus the message a send is stuck
/// in), and the client can put no more than the connection's window on
/// the wire for all of them together (what it queues beyond that waits in
/// its own buffers): what a peer can make the server buffer is bounded per
/// stream and per connection, as over HTTP/2. (With quinn's defaults, no
/// connection window, the streams put 22 MB on the wire.)
#[tokio::test]
async fn a_peer_not_read_is_held_to_the_windows() {
    const SIZE: usize = 64 * 1024;
    let pki = tls::TestPki::new(&["localhost"]);
    let (_server, addr) = server(&pki);
    let quic = pki
        .h3_client()
        .connect(addr, "localhost")
        .unwrap()
        .await
        .unwrap();
    let client = Client::handshake(quic.clone()).await.unwrap();
    let (stream, connection) = (
        http3::STREAM_WINDOW as usize,
        http3::CONNECTION_WINDOW as usize,
    );
    let mut ws = client.websocket(connect("/still")).await.unwrap();
    let one = push_until_stalled(&mut ws, SIZE).await;
    assert!(
        one <= stream + SIZE,
        "{one} bytes on a stream, window {stream}"
    );
    assert!(one >= stream / 2, "only {one} bytes went before the stall");
    // Enough streams to fill the connection's window twice over, all open
    // before any pushes (once the window is full, not even a request's
    // HEADERS can go).
    let mut more = Vec::new();
    for _ in 0..2 * connection / stream {
        more.push(client.websocket(connect("/still")).await.unwrap());
    }
    let mut pushes = tokio::task::JoinSet::new();
    for mut ws in more {
        // Each WebSocket is kept until all stalled: a stream dropped is
        // reset, and the server frees what it held of it.
        pushes.spawn(async move {
            push_until_stalled(&mut ws, SIZE).await;
            ws
        });
    }
    let _held = pushes.join_all().await;
    // What went on the wire: the payloads, and a few per cent of QUIC's
    // packet headers, tags and acknowledgements.
    let wire = quic.stats().udp_tx.bytes as usize;
    assert!(
        wire <= connection + connection / 8,
        "{wire} bytes sent to a server that reads none, connection window {connection}"
    );
    assert!(
        wire >= connection / 2,
        "only {wire} bytes went before the stall"
    );
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
    let (endpoint, addr) = pki.h3_server();
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

/// A UDP relay on loopback between a client and a server, which drops and
/// reorders a share of the datagrams (each way, from a fixed seed, so a
/// failure can be run again): what a lossy network does to QUIC.
struct LossyRelay {
    /// Where the client sends.
    addr: SocketAddr,
    /// Datagrams relayed (both ways).
    relayed: Arc<std::sync::atomic::AtomicUsize>,
}

impl LossyRelay {
    async fn start(server: SocketAddr, drop_percent: u64, reorder_percent: u64, seed: u64) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let front = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let back = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        back.connect(server).await.unwrap();
        let addr = front.local_addr().unwrap();
        let relayed = Arc::new(AtomicUsize::new(0));
        let count = relayed.clone();
        tokio::spawn(async move {
            let mut state = seed | 1;
            let mut chance = move |percent: u64| {
                // xorshift64: deterministic, good enough to pick datagrams.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % 100 < percent
            };
            let mut client = None;
            let (mut up_held, mut down_held): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
            let (mut a, mut b) = ([0u8; 65536], [0u8; 65536]);
            loop {
                tokio::select! {
                    Ok((n, from)) = front.recv_from(&mut a) => {
                        client = Some(from);
                        if chance(drop_percent) { continue; }
                        if chance(reorder_percent) && up_held.is_none() {
                            up_held = Some(a[..n].to_vec());
                            continue;
                        }
                        let _ = back.send(&a[..n]).await;
                        count.fetch_add(1, Ordering::Relaxed);
                        if let Some(held) = up_held.take() {
                            let _ = back.send(&held).await;
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(n) = back.recv(&mut b) => {
                        let Some(client) = client else { continue };
                        if chance(drop_percent) { continue; }
                        if chance(reorder_percent) && down_held.is_none() {
                            down_held = Some(b[..n].to_vec());
                            continue;
                        }
                        let _ = front.send_to(&b[..n], client).await;
                        count.fetch_add(1, Ordering::Relaxed);
                        if let Some(held) = down_held.take() {
                            let _ = front.send_to(&held, client).await;
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        });
        LossyRelay { addr, relayed }
    }
}

/// The fault table over a lossy network: through a relay that drops and
/// reorders datagrams, every message (small ones, and 1 MiB) is echoed
/// once and in order, the closing handshake completes, and the datagrams
/// it takes stay within a bound of the clean run's (no retransmission
/// storm).
#[tokio::test]
async fn the_fault_table_over_a_lossy_network() {
    use std::sync::atomic::Ordering;
    let pki = tls::TestPki::new(&["localhost"]);
    let (_server, addr) = server(&pki);
    let messages: Vec<Message> = (0..60)
        .map(|i| match i % 3 {
            0 => Message::from(format!("message {i}")),
            1 => Message::from(vec![i as u8; 1 + i * 997]),
            _ => Message::from(vec![i as u8; 20_000]),
        })
        .chain([Message::from(vec![7u8; 1 << 20])])
        .collect();
    // (name, per cent dropped, per cent reordered), the clean row first.
    let rows = [
        ("clean", 0, 0),
        ("3% dropped", 3, 0),
        ("3% reordered", 0, 3),
        ("3% dropped and 3% reordered", 3, 3),
        ("10% dropped", 10, 0),
    ];
    let mut clean = 0;
    for (seed, (name, dropped, reordered)) in rows.into_iter().enumerate() {
        let relay = LossyRelay::start(addr, dropped, reordered, 0x9e37_79b9 + seed as u64).await;
        let outcome = tokio::time::timeout(Duration::from_secs(60), async {
            let client = client(&pki, relay.addr).await;
            let mut ws = client.websocket(connect("/echo")).await.unwrap();
            // Half the messages go out before any echo is read, so the
            // streams carry data both ways while datagrams are lost.
            let (first, second) = messages.split_at(messages.len() / 2);
            for message in first {
                ws.send(message).await.unwrap();
            }
            let mut echoes = Vec::new();
            for _ in first {
                echoes.push(ws.recv().await.unwrap().unwrap());
            }
            for message in second {
                ws.send(message).await.unwrap();
                echoes.push(ws.recv().await.unwrap().unwrap());
            }
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            assert_eq!(ws.recv().await.unwrap(), None, "{name}: the end");
            echoes
        })
        .await;
        let echoes = outcome.unwrap_or_else(|_| panic!("{name}: hung"));
        assert!(
            echoes == messages,
            "{name}: the echoes are not every message once, in order"
        );
        let relayed = relay.relayed.load(Ordering::Relaxed);
        eprintln!("{name}: {relayed} datagrams");
        if clean == 0 {
            clean = relayed;
        }
        assert!(
            relayed <= clean * 3,
            "{name}: {relayed} datagrams, {clean} in a clean run"
        );
    }
}

/// The stream's faults, each in the middle of a message: a reset
/// (`H3_REQUEST_CANCELLED`, RFC 9220's abrupt end) ends the server's
/// WebSocket with a reset error, the stream's end (FIN) with "the
/// transport ended without a closing handshake"; either way the
/// connection goes on, and a new WebSocket on it works.
#[tokio::test]
async fn a_reset_or_an_end_in_the_middle_of_a_message() {
    let pki = tls::TestPki::new(&["localhost"]);
    let (endpoint, addr) = pki.h3_server();
    let (ended, mut ends) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let conn = endpoint.accept().await.unwrap().await.unwrap();
        let _ = serve_connection(conn, Config::default(), move |incoming: Incoming| {
            let ended = ended.clone();
            async move {
                let mut ws = incoming.accept(Accept::new()).unwrap();
                let end = loop {
                    match ws.recv().await {
                        Ok(Some(message)) => {
                            let _ = ws.send(&message).await;
                        }
                        other => break other.map(|_| ()),
                    }
                };
                let _ = ended.send(end);
            }
        })
        .await;
    });
    tokio::time::timeout(LIMIT, async {
        let client = client(&pki, addr).await;
        for reset in [true, false] {
            let mut ws = client.websocket(connect("/")).await.unwrap();
            // Half of a 100 KiB message: the header says more is coming.
            ws.connection_mut()
                .send_fragment(MessageKind::Binary, &[1; 50_000], false)
                .unwrap();
            ws.flush().await.unwrap();
            if reset {
                ws.reset();
            } else {
                use rfc6455::socket::Transport;
                assert!(ws.into_transport().shutdown().await);
            }
            match ends.recv().await.unwrap() {
                Err(Error::Io(e)) if reset => {
                    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}")
                }
                Err(Error::Protocol(rfc6455::ProtocolError::UnexpectedEof { .. })) if !reset => {}
                other => panic!("reset {reset}: {other:?}"),
            }
            let mut again = client.websocket(connect("/")).await.unwrap();
            again.send_text("still here").await.unwrap();
            assert_eq!(
                again.recv().await.unwrap(),
                Some(Message::from("still here"))
            );
            again.close(CloseCode::NORMAL, "").await.unwrap();
            assert_eq!(again.recv().await.unwrap(), None);
            assert_eq!(ends.recv().await.unwrap().ok(), Some(()));
        }
    })
    .await
    .expect("hung");
}

/// A server that never sends its SETTINGS: the client gives up after the
/// handshake timeout, rather than wait for ever.
#[tokio::test]
async fn a_server_that_never_sends_settings_times_out() {
    let pki = tls::TestPki::new(&["localhost"]);
    let (endpoint, addr) = pki.h3_server();
    tokio::spawn(async move {
        let conn = endpoint.accept().await.unwrap().await.unwrap();
        conn.closed().await;
    });
    let endpoint = pki.h3_client();
    let conn = endpoint.connect(addr, "localhost").unwrap().await.unwrap();
    let mut config = Config::default();
    config.timeouts.handshake = Some(Duration::from_millis(200));
    let outcome = tokio::time::timeout(LIMIT, Client::handshake_with(conn, &config))
        .await
        .expect("hung");
    assert!(matches!(outcome, Err(Error::Timeout(_))), "{outcome:?}");
}
