//! Part 12: the chat across servers. apps/chat (built here in
//! release) as one server alone, as one server with `--redis` (it
//! publishes every event to the Redis stream, and nobody else reads it),
//! and as two servers joined through Redis (Debian's `redis-server`,
//! started here on a free port, nothing kept on disk).
//!
//! Tabs are WebSocket clients of this crate's tokio adapter, in this
//! process: one sender on server A and [`TABS`] receivers, all on A for
//! one server, half on A and half on B for two. The chat's rate limit is
//! lifted (`--rate`). Two measurements per setup:
//!
//! - **throughput**: the sender keeps [`WINDOW`] messages in flight
//!   (one is done when the last receiver, on B for two servers, has it)
//!   for the budget's time: chat messages a second, and deliveries a
//!   second over all tabs;
//! - **latency** at a steady [`PACE`] messages a second: from the send to
//!   each tab's arrival, p50 and p99, for the tabs on A (no hop) and on B
//!   (through Redis). The hop is B minus A.
//!
//! Everything shares the machine's cores (servers, Redis, tabs): the
//! figures compare the setups with each other, not with a deployment.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rfc6455::tokio::{connect, ReadHalf, WriteHalf};
use rfc6455::Message;

use crate::harness::{fmt_rate, Budget, Table};

/// Receiving tabs.
const TABS: usize = 8;
/// Messages in flight in the throughput run.
const WINDOW: u64 = 512;
/// Messages a second in the latency run.
const PACE: u64 = 200;
const TOKEN: &str = "bench";

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound").port()
}

/// Builds apps/chat in release; its path.
fn build_chat() -> Option<PathBuf> {
    let apps = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../apps");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--bin", "chat"])
        .current_dir(&apps)
        .status()
        .ok()?;
    status.success().then(|| apps.join("target/release/chat"))
}

fn start_redis(port: u16) -> Option<Process> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let process = Process(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(process);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn start_chat(chat: &PathBuf, redis: Option<u16>) -> (Process, u16) {
    let port = free_port();
    let mut command = Command::new(chat);
    command
        .arg(format!("127.0.0.1:{port}"))
        .args(["--token", TOKEN, "--rate", "1000000", "--heartbeat", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(redis) = redis {
        command.args(["--redis", &format!("redis://127.0.0.1:{redis}/")]);
    }
    let process = Process(command.spawn().expect("the chat starts"));
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (process, port);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the chat on port {port} did not start");
}

/// What the receiving tabs saw: per tab, the messages' count and their
/// latencies (µs) while `recording`.
struct Seen {
    epoch: Instant,
    count: Vec<AtomicU64>,
    latencies: Vec<Mutex<Vec<u32>>>,
}

type Tab = (
    ReadHalf<rfc6455::tokio::MaybeTlsStream>,
    WriteHalf<rfc6455::tokio::MaybeTlsStream>,
);

async fn open_tab(port: u16, name: &str) -> Tab {
    let url = format!("ws://127.0.0.1:{port}/ws?token={TOKEN}&name={name}");
    connect(&url).await.expect("a tab connects").split()
}

/// Reads one tab's events: messages `seq:micros` are counted and timed.
async fn receive(
    mut reader: ReadHalf<rfc6455::tokio::MaybeTlsStream>,
    tab: usize,
    seen: Arc<Seen>,
) {
    while let Ok(Some(message)) = reader.recv().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Some(at) = text.split("\"text\":\"").nth(1) else {
            continue;
        };
        let Some(sent) = at
            .split(['"', ':'])
            .nth(1)
            .and_then(|t| t.parse::<u64>().ok())
        else {
            continue;
        };
        let now = seen.epoch.elapsed().as_micros() as u64;
        seen.count[tab].fetch_add(1, Ordering::Relaxed);
        let latency = now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32;
        seen.latencies[tab].lock().expect("no panic").push(latency);
    }
}

/// Sends a chat message `TAG:MICROS`, stamped with the time it leaves.
async fn say(sender: &mut WriteHalf<rfc6455::tokio::MaybeTlsStream>, seen: &Seen, tag: &str) {
    let now = seen.epoch.elapsed().as_micros();
    let message = format!(r#"{{"type":"message","text":"{tag}:{now}"}}"#);
    sender.send_text(&message).await.expect("send");
}

struct Outcome {
    messages_per_s: f64,
    deliveries_per_s: f64,
    /// p50, p99 in µs for the tabs on A, and on B (two servers only).
    local: (u32, u32),
    remote: Option<(u32, u32)>,
}

fn percentiles(mut values: Vec<u32>) -> (u32, u32) {
    if values.is_empty() {
        return (0, 0);
    }
    values.sort_unstable();
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

/// One setup: the sender on `a`; receivers on `a`, or split over `a` and `b`.
async fn measure(a: u16, b: Option<u16>, seconds: f64) -> Outcome {
    let seen = Arc::new(Seen {
        epoch: Instant::now(),
        count: (0..TABS).map(|_| AtomicU64::new(0)).collect(),
        latencies: (0..TABS).map(|_| Mutex::new(Vec::new())).collect(),
    });
    // Tabs 0..TABS/2 on A; the others on B when there is a B.
    let on_b = |tab: usize| b.is_some() && tab >= TABS / 2;
    let mut tasks = Vec::new();
    let mut writers = Vec::new();
    for tab in 0..TABS {
        let port = if on_b(tab) { b.expect("checked") } else { a };
        let (reader, writer) = open_tab(port, &format!("tab{tab}")).await;
        writers.push(writer);
        tasks.push(tokio::spawn(receive(reader, tab, seen.clone())));
    }
    let (sender_reader, mut sender) = open_tab(a, "sender").await;
    // The sender's own copies are read (and dropped) like any tab's.
    let drain = tokio::spawn(async move {
        let mut reader = sender_reader;
        while let Ok(Some(_)) = reader.recv().await {}
    });
    // Until every tab hears the sender, over the bus too.
    let last = TABS - 1;
    let mut probe = 0u64;
    while seen.count[last].load(Ordering::Relaxed) == 0 {
        probe += 1;
        say(&mut sender, &seen, &format!("w{probe}")).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reset = |seen: &Seen| {
        for tab in 0..TABS {
            seen.count[tab].store(0, Ordering::Relaxed);
            seen.latencies[tab].lock().expect("no panic").clear();
        }
    };
    reset(&seen);

    // Throughput: WINDOW in flight against the last tab.
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        while sent < seen.count[last].load(Ordering::Relaxed) + WINDOW {
            sent += 1;
            say(&mut sender, &seen, &format!("t{sent}")).await;
        }
        tokio::task::yield_now().await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let done = seen.count[last].load(Ordering::Relaxed);
    let deliveries: u64 = seen.count.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    // Let the backlog drain before the latency run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    reset(&seen);

    // Latency at a steady pace.
    let period = Duration::from_micros(1_000_000 / PACE);
    let mut next = Instant::now();
    let count = (PACE as f64 * seconds) as u64;
    for i in 0..count {
        tokio::time::sleep_until(next.into()).await;
        next += period;
        say(&mut sender, &seen, &format!("l{i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let gather = |remote: bool| {
        let mut all = Vec::new();
        for tab in (0..TABS).filter(|&t| on_b(t) == remote) {
            all.extend(
                seen.latencies[tab]
                    .lock()
                    .expect("no panic")
                    .iter()
                    .copied(),
            );
        }
        all
    };
    let outcome = Outcome {
        messages_per_s: done as f64 / elapsed,
        deliveries_per_s: deliveries as f64 / elapsed,
        local: percentiles(gather(false)),
        remote: b.map(|_| percentiles(gather(true))),
    };
    drop(sender);
    drop(writers);
    drain.abort();
    for task in tasks {
        task.abort();
    }
    outcome
}

fn fmt_us(us: u32) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", f64::from(us) / 1000.0)
    } else {
        format!("{us} µs")
    }
}

pub fn run(budget: Budget) {
    let seconds = if budget.quick { 1.0 } else { 5.0 };
    let Some(chat) = build_chat() else {
        println!("cluster: apps/chat did not build; skipped");
        return;
    };
    let redis_port = free_port();
    let Some(_redis) = start_redis(redis_port) else {
        println!("cluster: redis-server is not installed (apt-get install redis-server); skipped");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut table = Table::new(
        format!(
            "Part 12: the chat across servers through Redis ({TABS} tabs, window {WINDOW}; latency at {PACE} msgs/s)"
        ),
        &["setup", "chat msgs/s", "deliveries/s", "vs one server", "p50 / p99 on A", "p50 / p99 on B", "hop p50 / p99"],
    );
    let mut alone = None;
    for setup in ["one server", "one server, --redis", "two servers"] {
        let (_a, a) = start_chat(&chat, (setup != "one server").then_some(redis_port));
        let b = (setup == "two servers").then(|| start_chat(&chat, Some(redis_port)));
        let outcome = runtime.block_on(measure(a, b.as_ref().map(|(_, port)| *port), seconds));
        let base = *alone.get_or_insert(outcome.messages_per_s);
        let (hop, remote) = match outcome.remote {
            Some(remote) => (
                format!(
                    "+{} / +{}",
                    fmt_us(remote.0.saturating_sub(outcome.local.0)),
                    fmt_us(remote.1.saturating_sub(outcome.local.1))
                ),
                format!("{} / {}", fmt_us(remote.0), fmt_us(remote.1)),
            ),
            None => ("".into(), "".into()),
        };
        table.row(vec![
            setup.to_string(),
            fmt_rate(outcome.messages_per_s),
            fmt_rate(outcome.deliveries_per_s),
            format!("{:.2}", outcome.messages_per_s / base),
            format!("{} / {}", fmt_us(outcome.local.0), fmt_us(outcome.local.1)),
            remote,
            hop,
        ]);
    }
    table.note(
        "chat msgs/s: messages the last tab received a second (on B for two servers) with the sender \
         keeping a window in flight; deliveries/s: over all tabs. Servers, Redis and tabs share the cores.",
    );
    table.print();
}
