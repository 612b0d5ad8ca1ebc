//! Part 7: echo over HTTP/2 (RFC 8441) against echo over HTTP/1.1, both
//! rfc6455 on both ends, on loopback.
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
//! - `h2 N conns`: N HTTP/2 connections, one stream each.
//!
//! Every echoed message is compared with what was sent. 100 ms warm-up,
//! 350 ms measured, the median msgs/s of 3 runs; the ratio is h2 / h1
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
}

/// Starts the two servers on a thread of their own; returns their addresses.
fn start_servers() -> (SocketAddr, SocketAddr) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let h1 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let h2 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send((
                h1.local_addr().expect("addr"),
                h2.local_addr().expect("addr"),
            ))
            .expect("send");
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
                                let Ok(mut ws) = incoming.accept(Accept::new()) else {
                                    return;
                                };
                                while let Ok(Some(message)) = ws.recv().await {
                                    if ws.send(&message).await.is_err() {
                                        break;
                                    }
                                }
                            },
                        )
                        .await;
                    });
                }
            };
            tokio::join!(h1_loop, h2_loop);
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
    addrs: (SocketAddr, SocketAddr),
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
    for _ in 0..n {
        let (stop, count, payload) = (stop.clone(), count.clone(), payload.clone());
        match transport {
            Transport::H1 => {
                let url = format!("ws://{}/", addrs.0);
                let mut ws = rfc6455::tokio::connect(&url).await.expect("connect");
                tasks.push(tokio::spawn(
                    async move { ping_pong!(ws, payload, stop, count) },
                ));
            }
            Transport::H2Shared | Transport::H2Separate => {
                if shared.is_none() || transport == Transport::H2Separate {
                    let tcp = TcpStream::connect(addrs.1).await.expect("connect");
                    tcp.set_nodelay(true).expect("nodelay");
                    shared = Some(rfc6455::http2::Client::handshake(tcp).await.expect("h2"));
                }
                let client = shared.as_ref().expect("set above");
                let mut ws = client.websocket(connect("/")).await.expect("websocket");
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

/// Runs the part and prints its table.
pub fn run(budget: Budget) {
    let addrs = start_servers();
    let (warmup, measure, runs) = if budget.quick {
        (Duration::from_millis(10), Duration::from_millis(40), 1)
    } else {
        (Duration::from_millis(100), Duration::from_millis(350), 3)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("\n## Part 7: echo over HTTP/2 (RFC 8441) against HTTP/1.1, rfc6455 on both ends");
    println!("ping-pong, msgs/s (median of {runs}); ratio = h2 / h1\n");
    println!("| WebSockets | size | h1 | h2 1 conn | h2 N conns | 1 conn / h1 | N conns / h1 |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in [1usize, 16, 128] {
        for size in [16usize, 1024, 65536] {
            let mut medians = Vec::new();
            for transport in [Transport::H1, Transport::H2Shared, Transport::H2Separate] {
                let mut rates: Vec<f64> = (0..runs)
                    .map(|_| rt.block_on(row(addrs, transport, n, size, warmup, measure)))
                    .collect();
                rates.sort_by(f64::total_cmp);
                medians.push(rates[rates.len() / 2]);
            }
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
}
