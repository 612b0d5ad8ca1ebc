//! Parts 7 and 7b: echo over HTTP/2 (RFC 8441) and over HTTP/3 (RFC 9220)
//! against echo over HTTP/1.1, rfc6455 on both ends, on loopback; and for
//! HTTP/3 the server's heap per idle WebSocket.
//!
//! The server is rfc6455 in this process, on a thread and a current-thread
//! runtime of its own (as `bench serve` runs, so each side has a core on a
//! 2-CPU machine): one listener takes HTTP/1.1 Upgrades (the tokio adapter,
//! `recv` then `queue`, as the echo part), the other HTTP/2 with prior
//! knowledge (`http2::serve_connection`, `recv` then `send` on each stream).
//! The load generator is rfc6455's client on a second thread: N WebSockets
//! doing ping-pong (one binary message in flight each), as
//!
//! - `h1`: N TCP connections, one WebSocket each;
//! - `h2 1 conn`: one HTTP/2 connection, N streams (what a browser does
//!   with every WebSocket of a site);
//! - `h2 N conns`: N HTTP/2 connections, one stream each;
//! - `h3 1 conn`, `h3 N conns`: the same over HTTP/3 (QUIC on loopback
//!   UDP, TLS with a certificate made at start).
//!
//! Every echoed message is compared with what was sent. 100 ms warm-up,
//! 300 ms measured, the median msgs/s of 5 runs (the transports
//! take turns); the ratio is h2 / h1
//! (below 1: HTTP/2 is slower).

use rfc6455::Driver;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rfc6455::handshake::{Accept, ClientRequest, ExtendedConnectClient};
use rfc6455::{Config, Message};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{fmt_rate, Budget};

/// How the N WebSockets of a row travel.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    /// One TCP connection each, HTTP/1.1 Upgrade.
    H1,
    /// All on one HTTP/2 connection.
    H2Shared,
    /// One HTTP/2 connection each.
    H2Separate,
    /// All on one HTTP/3 connection.
    H3Shared,
    /// One HTTP/3 connection each.
    H3Separate,
}

/// Where the servers listen, and the certificate HTTP/3's is signed with.
#[derive(Clone)]
struct Servers {
    h1: SocketAddr,
    h2: SocketAddr,
    h3: SocketAddr,
    cert: rustls::pki_types::CertificateDer<'static>,
}

/// The ring provider, as the library's tests and examples use it (rustls
/// 0.23.48, which this workspace resolves to, deprecates it for lacking
/// post-quantum key exchange; loopback benchmarks do not care).
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `localhost`, and quinn's server
/// configuration with it.
fn quic_server() -> (
    quinn::ServerConfig,
    rustls::pki_types::CertificateDer<'static>,
) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("a certificate");
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let provider = provider();
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS 1.3")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("the certificate");
    (
        rfc6455::http3::server_config(tls).expect("quinn's configuration"),
        cert,
    )
}

/// An HTTP/3 connection to the server.
async fn quic_client(servers: &Servers) -> rfc6455::http3::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(servers.cert.clone()).expect("the certificate");
    let provider = provider();
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut endpoint = rfc6455::http3::endpoint("127.0.0.1:0".parse().expect("an address"), None)
        .expect("a socket");
    endpoint.set_default_client_config(
        rfc6455::http3::client_config(tls).expect("quinn's configuration"),
    );
    let conn = endpoint
        .connect(servers.h3, "localhost")
        .expect("connect")
        .await
        .expect("QUIC");
    rfc6455::http3::Client::handshake(conn)
        .await
        .expect("HTTP/3")
}

/// Echoes every message of a WebSocket on a stream, as `send` writes it.
async fn echo_stream<W: Driver>(mut ws: W) {
    while let Ok(Some(message)) = ws.recv().await {
        if ws.send(&message).await.is_err() {
            break;
        }
    }
}

/// Starts the servers on a thread of their own (whose heap is counted for
/// the memory row); returns where they listen.
fn start_servers() -> Servers {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        crate::alloc::count_this_thread();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let h1 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let h2 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let (quic, cert) = quic_server();
            let h3 =
                rfc6455::http3::endpoint("127.0.0.1:0".parse().expect("an address"), Some(quic))
                    .expect("bind");
            tx.send(Servers {
                h1: h1.local_addr().expect("addr"),
                h2: h2.local_addr().expect("addr"),
                h3: h3.local_addr().expect("addr"),
                cert,
            })
            .expect("send");
            let h3_loop = async {
                while let Some(incoming) = h3.accept().await {
                    tokio::spawn(async move {
                        let Ok(conn) = incoming.await else { return };
                        let _ = rfc6455::http3::serve_connection(
                            conn,
                            Config::default(),
                            |incoming| async move {
                                if let Ok(ws) = incoming.accept(Accept::new()) {
                                    echo_stream(ws).await;
                                }
                            },
                        )
                        .await;
                    });
                }
            };
            let h1_loop = async {
                while let Ok((stream, _)) = h1.accept().await {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(async move {
                        let Ok(mut ws) = rfc6455::tokio::accept(stream).await else {
                            return;
                        };
                        while let Ok(Some(message)) = ws.recv().await {
                            if ws.queue(&message).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            };
            let h2_loop = async {
                while let Ok((stream, _)) = h2.accept().await {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(async move {
                        let _ = rfc6455::http2::serve_connection(
                            stream,
                            Config::default(),
                            |incoming| async move {
                                if let Ok(ws) = incoming.accept(Accept::new()) {
                                    echo_stream(ws).await;
                                }
                            },
                        )
                        .await;
                    });
                }
            };
            tokio::join!(h1_loop, h2_loop, h3_loop);
        });
    });
    rx.recv().expect("the servers start")
}

/// One WebSocket's ping-pong until `stop`: counts each checked echo.
macro_rules! ping_pong {
    ($ws:expr, $payload:expr, $stop:expr, $count:expr) => {{
        let message = Message::from($payload.clone());
        while !$stop.load(Ordering::Relaxed) {
            $ws.send(&message).await.expect("send");
            let back = $ws.recv().await.expect("recv").expect("a message");
            assert!(back == message, "the echo differs from what was sent");
            $count.fetch_add(1, Ordering::Relaxed);
        }
    }};
}

/// Opens `n` WebSockets over `transport` and runs them for `warmup` +
/// `measure`; returns the messages a second in the measured span.
async fn row(
    servers: &Servers,
    transport: Transport,
    n: usize,
    size: usize,
    warmup: Duration,
    measure: Duration,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let payload: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
    let mut tasks = Vec::new();
    let connect = |path: &str| {
        ExtendedConnectClient::new(&ClientRequest::new("localhost", path), Config::default())
            .scheme("http")
    };
    let mut shared = None;
    let mut shared_h3 = None;
    for _ in 0..n {
        let (stop, count, payload) = (stop.clone(), count.clone(), payload.clone());
        match transport {
            Transport::H1 => {
                let url = format!("ws://{}/", servers.h1);
                let mut ws = rfc6455::tokio::connect(&url).await.expect("connect");
                tasks.push(tokio::spawn(
                    async move { ping_pong!(ws, payload, stop, count) },
                ));
            }
            Transport::H2Shared | Transport::H2Separate => {
                if shared.is_none() || transport == Transport::H2Separate {
                    let tcp = TcpStream::connect(servers.h2).await.expect("connect");
                    tcp.set_nodelay(true).expect("nodelay");
                    shared = Some(rfc6455::http2::Client::handshake(tcp).await.expect("h2"));
                }
                let client = shared.as_ref().expect("set above");
                let mut ws = client.websocket(connect("/")).await.expect("websocket");
                tasks.push(tokio::spawn(
                    async move { ping_pong!(ws, payload, stop, count) },
                ));
            }
            Transport::H3Shared | Transport::H3Separate => {
                if shared_h3.is_none() || transport == Transport::H3Separate {
                    shared_h3 = Some(quic_client(servers).await);
                }
                let client = shared_h3.as_ref().expect("set above");
                let request = ClientRequest::new("localhost", "/");
                let connect = ExtendedConnectClient::new(&request, Config::default());
                let mut ws = client.websocket(connect).await.expect("websocket");
                tasks.push(tokio::spawn(
                    async move { ping_pong!(ws, payload, stop, count) },
                ));
            }
        }
    }
    tokio::time::sleep(warmup).await;
    let (start_count, started) = (count.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(measure).await;
    let done = count.load(Ordering::Relaxed) - start_count;
    let rate = done as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    rate
}

/// Runs the HTTP/2 part and prints its table.
pub fn run(budget: Budget) {
    println!("\n## Part 7: echo over HTTP/2 (RFC 8441) against HTTP/1.1, rfc6455 on both ends");
    table(budget, "h2", [Transport::H2Shared, Transport::H2Separate]);
}

/// Runs the HTTP/3 part: its table, and the server's heap per idle
/// WebSocket on each protocol.
pub fn run_http3(budget: Budget) {
    println!("\n## Part 7b: echo over HTTP/3 (RFC 9220) against HTTP/1.1, rfc6455 on both ends");
    let servers = table(budget, "h3", [Transport::H3Shared, Transport::H3Separate]);
    // Fewer than the 128 streams a connection takes.
    idle_memory(&servers, if budget.quick { 20 } else { 100 });
}

/// The ping-pong table, HTTP/1.1 against `rows` of one protocol.
fn table(budget: Budget, name: &str, rows: [Transport; 2]) -> Servers {
    let servers = start_servers();
    let (warmup, measure, runs) = if budget.quick {
        (Duration::from_millis(10), Duration::from_millis(40), 1)
    } else {
        (Duration::from_millis(100), Duration::from_millis(300), 5)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("ping-pong, msgs/s (median of {runs}); ratio = {name} / h1\n");
    println!(
        "| WebSockets | size | h1 | {name} 1 conn | {name} N conns | 1 conn / h1 | N conns / h1 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    // BENCH_ONLY="N/SIZE" runs one row (for a profile), the others print 0;
    // "N/SIZE/H2Shared" (a transport's name) one cell of it.
    let only = std::env::var("BENCH_ONLY").ok();
    for n in [1usize, 16, 128] {
        for size in [16usize, 1024, 65536] {
            let transports = [Transport::H1, rows[0], rows[1]];
            let wanted = transports.map(|transport| {
                let cell = format!("{n}/{size}/{transport:?}");
                only.as_ref().is_none_or(|o| {
                    cell.starts_with(o.as_str())
                        && (o.len() == cell.len() || cell[o.len()..].starts_with('/'))
                })
            });
            // The transports take turns, run after run, so a slow spell of
            // the machine falls on all of them alike.
            let mut rates = [(); 3].map(|()| Vec::new());
            for _ in 0..runs {
                for (i, transport) in transports.into_iter().enumerate() {
                    if wanted[i] {
                        let rate = row(&servers, transport, n, size, warmup, measure);
                        rates[i].push(rt.block_on(rate));
                    }
                }
            }
            let medians = rates.map(|mut r| {
                r.sort_by(f64::total_cmp);
                r.get(r.len() / 2).copied().unwrap_or(0.0)
            });
            let size_label = match size {
                16 => "16 B".to_string(),
                s => format!("{} KiB", s / 1024),
            };
            println!(
                "| {n} | {size_label} | {} | {} | {} | {:.2} | {:.2} |",
                fmt_rate(medians[0]),
                fmt_rate(medians[1]),
                fmt_rate(medians[2]),
                medians[1] / medians[0],
                medians[2] / medians[0],
            );
        }
    }
    servers
}

/// The server thread's heap per idle WebSocket: `n` WebSockets opened
/// (HTTP/1.1: n connections; HTTP/2 and HTTP/3: n streams of one
/// connection, and n connections), one echo each, then idle; the
/// counted heap of the server's thread before and after, over n.
fn idle_memory(servers: &Servers, n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("\nserver heap per idle WebSocket (after one 1 KiB echo each), {n} WebSockets\n");
    println!("| transport | bytes per WebSocket |");
    println!("|---|---:|");
    for transport in [
        Transport::H1,
        Transport::H2Shared,
        Transport::H2Separate,
        Transport::H3Shared,
        Transport::H3Separate,
    ] {
        let per = rt.block_on(async {
            crate::alloc::counting(true);
            tokio::time::sleep(Duration::from_millis(50)).await;
            let before = crate::alloc::live();
            let held = open_idle(servers, transport, n).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let after = crate::alloc::live();
            drop(held);
            tokio::time::sleep(Duration::from_millis(100)).await;
            crate::alloc::counting(false);
            (after - before) as f64 / n as f64
        });
        println!("| {transport:?} | {per:.0} |");
    }
}

/// `n` WebSockets over `transport`, one 1 KiB echo each, held open.
async fn open_idle(
    servers: &Servers,
    transport: Transport,
    n: usize,
) -> Vec<Box<dyn std::any::Any>> {
    let message = Message::from(vec![1u8; 1024]);
    let mut held: Vec<Box<dyn std::any::Any>> = Vec::new();
    let mut h2 = None;
    let mut h3 = None;
    for _ in 0..n {
        match transport {
            Transport::H1 => {
                let mut ws = rfc6455::tokio::connect(&format!("ws://{}/", servers.h1))
                    .await
                    .expect("connect");
                ws.send(&message).await.expect("send");
                ws.recv().await.expect("recv");
                held.push(Box::new(ws));
            }
            Transport::H2Shared | Transport::H2Separate => {
                if h2.is_none() || transport == Transport::H2Separate {
                    let tcp = TcpStream::connect(servers.h2).await.expect("connect");
                    let client = rfc6455::http2::Client::handshake(tcp).await.expect("h2");
                    if let Some(old) = h2.replace(client) {
                        held.push(Box::new(old));
                    }
                }
                let connect = ExtendedConnectClient::new(
                    &ClientRequest::new("localhost", "/"),
                    Config::default(),
                )
                .scheme("http");
                let mut ws = h2
                    .as_ref()
                    .expect("set above")
                    .websocket(connect)
                    .await
                    .expect("websocket");
                ws.send(&message).await.expect("send");
                ws.recv().await.expect("recv");
                held.push(Box::new(ws));
            }
            Transport::H3Shared | Transport::H3Separate => {
                if h3.is_none() || transport == Transport::H3Separate {
                    if let Some(old) = h3.replace(quic_client(servers).await) {
                        held.push(Box::new(old));
                    }
                }
                let connect = ExtendedConnectClient::new(
                    &ClientRequest::new("localhost", "/"),
                    Config::default(),
                );
                let mut ws = h3
                    .as_ref()
                    .expect("set above")
                    .websocket(connect)
                    .await
                    .expect("websocket");
                ws.send(&message).await.expect("send");
                ws.recv().await.expect("recv");
                held.push(Box::new(ws));
            }
        }
    }
    held.extend(h2.map(|c| Box::new(c) as Box<dyn std::any::Any>));
    held.extend(h3.map(|c| Box::new(c) as Box<dyn std::any::Any>));
    held
}
