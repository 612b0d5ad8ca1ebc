//! Part 11: from one core to two. The same work on a tokio multi-threaded
//! runtime with one worker, then two, in one process and in memory
//! (`tokio::io::duplex` pairs, no sockets): what is left is the libraries'
//! own work and the runtime's, so a ratio near 2 says nothing in the
//! adapter (its per-thread buffer pool, its wakers, its locks) serialises
//! the workers, and a ratio near 1 that something does. Over sockets on
//! this 2-core machine the load generator needs a core of its own, which
//! leaves no second core to scale to; in memory the clients are part of
//! the work, on both workers alike.
//!
//! - echo: 64 connections, each client sending 16-byte messages as fast as
//!   the pipe takes them, the server echoing each (`recv`, then `queue`:
//!   the echoes of a burst go out in one write), the client counting the
//!   echoes;
//! - broadcast: 1,000 connections, a publisher offering one prepared
//!   64-byte message to every connection in turn
//!   (`WriteHalf::offer`), each client reading every message; the
//!   publisher keeps at most four rounds ahead of the clients (as fast as
//!   they read, with no backlog growing: that would measure queueing).
//!   tokio-tungstenite's broadcast as its users write it (a
//!   `tokio::sync::broadcast` channel, a task per connection), paced
//!   alike.
//!
//! tokio-tungstenite does the same echo (`next`, then `feed` for every
//! message ready, then one `flush`), as the peer's scaling.

use rfc6455::Driver;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rfc6455::{Config, Connection, Role};
use tokio::io::{AsyncReadExt, DuplexStream};

use crate::harness::{fmt_rate, Budget, Table};

const ECHO_PAIRS: usize = 64;
const BROADCAST_CLIENTS: usize = 1000;
const PIPE: usize = 64 * 1024;

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime")
}

fn ours(stream: DuplexStream, role: Role) -> rfc6455::tokio::WebSocket<DuplexStream> {
    rfc6455::tokio::WebSocket::from_connection(stream, Connection::new(role, Config::default()))
}

/// Messages echoed per second over [`ECHO_PAIRS`] in-memory connections.
async fn echo_rfc6455(per_pair: usize) -> f64 {
    let start = Instant::now();
    let mut pairs = Vec::new();
    for _ in 0..ECHO_PAIRS {
        let (a, b) = tokio::io::duplex(PIPE);
        tokio::spawn(async move {
            let mut server = ours(b, Role::Server);
            while let Ok(Some(message)) = server.recv().await {
                if server.queue(&message).await.is_err() {
                    return;
                }
            }
        });
        let (mut reader, mut writer) = ours(a, Role::Client).split();
        tokio::spawn(async move {
            let payload = [0x5a_u8; 16];
            for _ in 0..per_pair {
                writer.send_binary(&payload).await.expect("send");
            }
            // The reader below counts the echoes; keep the writer (and so
            // the connection) open until it is done.
            std::future::pending::<()>().await;
        });
        pairs.push(tokio::spawn(async move {
            for _ in 0..per_pair {
                reader.recv().await.expect("recv").expect("echo");
            }
        }));
    }
    for pair in pairs {
        pair.await.expect("pair");
    }
    (ECHO_PAIRS * per_pair) as f64 / start.elapsed().as_secs_f64()
}

/// The same echo with tokio-tungstenite at both ends.
async fn echo_tungstenite(per_pair: usize) -> f64 {
    use tokio_tungstenite::tungstenite::protocol::Role as TRole;
    use tokio_tungstenite::WebSocketStream;
    let start = Instant::now();
    let mut pairs = Vec::new();
    for _ in 0..ECHO_PAIRS {
        let (a, b) = tokio::io::duplex(PIPE);
        tokio::spawn(async move {
            let mut server = WebSocketStream::from_raw_socket(b, TRole::Server, None).await;
            while let Some(Ok(message)) = server.next().await {
                if server.feed(message).await.is_err() {
                    return;
                }
                // Feed what else is ready, then flush once, as a batching
                // echo does.
                while let Some(Some(Ok(message))) =
                    futures_util::FutureExt::now_or_never(server.next())
                {
                    if server.feed(message).await.is_err() {
                        return;
                    }
                }
                if server.flush().await.is_err() {
                    return;
                }
            }
        });
        let client = WebSocketStream::from_raw_socket(a, TRole::Client, None).await;
        let (mut sink, mut stream) = client.split();
        tokio::spawn(async move {
            for _ in 0..per_pair {
                let message = tungstenite::Message::binary(bytes::Bytes::from_static(&[0x5a; 16]));
                sink.send(message).await.expect("send");
            }
            std::future::pending::<()>().await;
        });
        pairs.push(tokio::spawn(async move {
            for _ in 0..per_pair {
                stream.next().await.expect("echo").expect("echo");
            }
        }));
    }
    for pair in pairs {
        pair.await.expect("pair");
    }
    (ECHO_PAIRS * per_pair) as f64 / start.elapsed().as_secs_f64()
}

/// Messages delivered per second: `rounds` prepared messages offered to
/// [`BROADCAST_CLIENTS`] in-memory connections, each client reading all;
/// the connections shared among `shards` publishing tasks.
async fn broadcast_rfc6455(rounds: usize, shards: usize) -> f64 {
    use rfc6455::tokio::WhenFull;
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..BROADCAST_CLIENTS {
        let (a, b) = tokio::io::duplex(PIPE);
        let (mut reader, writer) = ours(b, Role::Server).split();
        tokio::spawn(async move { while let Ok(Some(_)) = reader.recv().await {} });
        writers.push(writer);
        clients.push(tokio::spawn(read_frames(a, rounds, delivered.clone())));
    }
    let start = Instant::now();
    // Each publishing task offers to its share of the connections.
    let mut publishers = Vec::new();
    let per_shard = writers.len().div_ceil(shards);
    while !writers.is_empty() {
        let shard: Vec<_> = writers.drain(..per_shard.min(writers.len())).collect();
        let published = delivered.clone();
        publishers.push(tokio::spawn(async move {
            for round in 0..rounds {
                let mut payload = [0u8; 64];
                payload[..8].copy_from_slice(&(round as u64).to_be_bytes());
                let prepared =
                    rfc6455::PreparedMessage::binary(bytes::Bytes::copy_from_slice(&payload));
                pace(round, &published).await;
                for writer in &shard {
                    writer
                        .offer(&prepared, usize::MAX, WhenFull::Drop)
                        .expect("offer");
                }
            }
            shard
        }));
    }
    let mut writers = Vec::new();
    for publisher in publishers {
        writers.push(publisher.await.expect("publisher"));
    }
    let mut streams = Vec::new();
    for client in clients {
        streams.push(client.await.expect("client"));
    }
    let rate = delivered.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    drop((writers, streams));
    rate
}

/// A broadcast client: reads `rounds` 64-byte frames (2 bytes of header,
/// 64 of payload, unmasked), counting each in `delivered` as it arrives.
async fn read_frames(
    mut stream: DuplexStream,
    rounds: usize,
    delivered: Arc<AtomicUsize>,
) -> DuplexStream {
    let (mut buf, mut have) = (vec![0u8; 16 * 1024], 0usize);
    while have < rounds * 66 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let frames = (have + n) / 66 - have / 66;
                have += n;
                delivered.fetch_add(frames, Ordering::Relaxed);
            }
        }
    }
    stream
}

/// The publisher's pace: it starts round `round` once the clients have
/// all but [`AHEAD`] rounds of what came before, so no backlog builds up
/// (publishing faster than the clients read only measures queueing).
async fn pace(round: usize, delivered: &AtomicUsize) {
    let due = round.saturating_sub(AHEAD) * BROADCAST_CLIENTS;
    while delivered.load(Ordering::Relaxed) < due {
        tokio::task::yield_now().await;
    }
}

/// How many rounds the publisher may run ahead of the clients.
const AHEAD: usize = 4;

/// The same broadcast as tokio-tungstenite users write it: a
/// `tokio::sync::broadcast` channel of `Bytes` (deep enough that no one
/// lags), a task per connection sending each as `Message::Binary`.
async fn broadcast_tungstenite(rounds: usize) -> f64 {
    use tokio_tungstenite::tungstenite::protocol::Role as TRole;
    let delivered = Arc::new(AtomicUsize::new(0));
    let (tx, _) = tokio::sync::broadcast::channel::<bytes::Bytes>(rounds + 1);
    let mut clients = Vec::new();
    for _ in 0..BROADCAST_CLIENTS {
        let (a, b) = tokio::io::duplex(PIPE);
        let mut rx = tx.subscribe();
        tokio::spawn(async move {
            let mut ws =
                tokio_tungstenite::WebSocketStream::from_raw_socket(b, TRole::Server, None).await;
            while let Ok(bytes) = rx.recv().await {
                if ws.send(tungstenite::Message::Binary(bytes)).await.is_err() {
                    return;
                }
            }
        });
        clients.push(tokio::spawn(read_frames(a, rounds, delivered.clone())));
    }
    let start = Instant::now();
    for round in 0..rounds {
        let mut payload = [0u8; 64];
        payload[..8].copy_from_slice(&(round as u64).to_be_bytes());
        pace(round, &delivered).await;
        let _ = tx.send(bytes::Bytes::copy_from_slice(&payload));
    }
    let mut streams = Vec::new();
    for client in clients {
        streams.push(client.await.expect("client"));
    }
    let rate = delivered.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    drop((tx, streams));
    rate
}

/// Runs `work` on a runtime of `workers` workers, `samples` times; the
/// median rate.
fn measure<F, Fut>(workers: usize, samples: usize, work: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = f64> + Send + 'static,
{
    let mut rates: Vec<f64> = (0..samples)
        .map(|_| {
            let runtime = runtime(workers);
            let rate = runtime.block_on(runtime.spawn(work())).expect("work");
            runtime.shutdown_timeout(Duration::from_secs(1));
            rate
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

pub fn run(budget: Budget) {
    println!("\n## Part 11: one worker to two (tokio multi-threaded runtime, in memory)");
    let (samples, per_pair, rounds) = if budget.quick {
        (1, 2_000, 100)
    } else {
        (5, 40_000, 2_000)
    };
    let mut table = Table::new(
        "Messages per second with one worker and with two; scaling = two / one",
        &["work", "1 worker", "2 workers", "scaling"],
    );
    let rows: [(&str, &dyn Fn(usize) -> f64); 5] = [
        ("echo 16 B x 64, rfc6455", &|w| {
            measure(w, samples, move || echo_rfc6455(per_pair))
        }),
        ("echo 16 B x 64, tokio-tungstenite", &|w| {
            measure(w, samples, move || echo_tungstenite(per_pair))
        }),
        ("broadcast 64 B to 1,000, rfc6455", &|w| {
            measure(w, samples, move || broadcast_rfc6455(rounds, 1))
        }),
        (
            "broadcast 64 B to 1,000, rfc6455, two publishing tasks",
            &|w| measure(w, samples, move || broadcast_rfc6455(rounds, 2)),
        ),
        ("broadcast 64 B to 1,000, tokio-tungstenite", &|w| {
            measure(w, samples, move || broadcast_tungstenite(rounds))
        }),
    ];
    // `SCALING_ONLY=broadcast` runs only the rows whose name has that text.
    let only = std::env::var("SCALING_ONLY").unwrap_or_default();
    for (name, work) in rows {
        if !name.contains(only.as_str()) {
            continue;
        }
        // In turns, so that a change in the machine's load hits both.
        let (one, two) = (work(1), work(2));
        table.row(vec![
            name.to_string(),
            fmt_rate(one),
            fmt_rate(two),
            format!("{:.2}", two / one),
        ]);
    }
    table.note(format!(
        "median of {samples} runs each; clients and servers in one process, so both workers carry both"
    ));
    table.print();
}
