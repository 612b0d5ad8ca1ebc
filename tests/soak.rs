//! Soak: waves of connections against the echo server example (tokio
//! adapter, `--heartbeat`), each wave opening connections, exchanging
//! messages, idling while the server pings them (the client answers), and
//! closing them, half with a closing handshake and half by dropping the
//! socket. The server's RSS and open descriptors are sampled throughout,
//! and the curve is printed.
//!
//! Checked: every echo is right; an idle connection that answers the
//! heartbeat is not dropped; after the last wave the server's open
//! descriptors are back at their count before the first, and its RSS is
//! no higher than after the first wave (plus a tenth of the growth the
//! first wave caused, for the allocator's noise): no wave leaves anything
//! behind. (RSS does not return to the count before the first wave: the
//! adapter keeps a pool of buffers, at most 32 MiB a worker thread, and
//! the allocator keeps freed memory; both are reused by the next wave.)
//!
//! Small by default (`cargo test` runs it in seconds); full size by hand:
//!
//! ```text
//! SOAK_CONNECTIONS=19000 SOAK_SECONDS=600 SOAK_HEARTBEAT_MS=1000 \
//!     cargo test --release --all-features --test soak -- --nocapture
//! ```
//!
//! Every wait is bounded; loopback only.
#![cfg(all(feature = "tokio", feature = "blocking", target_os = "linux"))]

#[path = "common/example.rs"]
mod example;

use rfc6455::Driver;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use example::ExampleServer;
use rfc6455::{CloseCode, Message};

/// A setting from the environment, or its default.
fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The server's resident memory (KiB) and open descriptors, from /proc.
fn sample(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (rss, fds)
}

/// One point of the curve.
#[derive(Clone, Copy)]
struct Point {
    at: Duration,
    open: usize,
    rss_kib: u64,
    fds: usize,
}

/// The messages each connection sends (and checks the echo of).
fn messages(index: usize) -> Vec<Message> {
    vec![
        Message::from(format!("hello from {index}")),
        Message::from(vec![(index % 251) as u8; 1000 + index % 3000]),
        Message::from("ünïcödé ✓".repeat(1 + index % 50)),
    ]
}

/// One connection's life: open, exchange, idle through heartbeats, close
/// (cleanly if `index` is even, by dropping the socket if odd).
async fn life(url: String, index: usize, idle: Duration, open: Arc<AtomicUsize>) {
    let mut ws = rfc6455::tokio::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connection {index}: {e}"));
    open.fetch_add(1, Ordering::Relaxed);
    for message in messages(index) {
        ws.send(&message).await.expect("send");
        let echo = ws.recv().await.expect("recv").expect("an echo");
        assert_eq!(echo, message, "connection {index}: a wrong echo");
    }
    // Idle: the server pings, `recv` answers; nothing else may arrive and
    // the connection must stay open.
    match tokio::time::timeout(idle, ws.recv()).await {
        Err(_) => {}
        Ok(other) => panic!("connection {index}: while idle, got {other:?}"),
    }
    if index % 2 == 0 {
        ws.close(CloseCode::NORMAL, "done").await.expect("close");
        let end = tokio::time::timeout(Duration::from_secs(30), ws.recv()).await;
        assert!(
            matches!(end, Ok(Ok(None))),
            "connection {index}: the closing handshake ended with {end:?}"
        );
    }
    open.fetch_sub(1, Ordering::Relaxed);
}

#[test]
fn waves_of_connections_leave_nothing_behind() {
    let connections = setting("SOAK_CONNECTIONS", 300) as usize;
    let seconds = setting("SOAK_SECONDS", 6);
    let heartbeat = Duration::from_millis(setting("SOAK_HEARTBEAT_MS", 150));
    // Long enough for several Pings, short of the server's idle limit
    // (three beats) only if they are answered.
    let idle = heartbeat * 5;
    let server = ExampleServer::start(
        "echo_server",
        &["--heartbeat", &heartbeat.as_millis().to_string()],
    );
    let pid = server.pid();
    let url = format!("ws://{}/soak", server.addr);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // One connection first, so the runtime's one-time costs are in the
    // baseline.
    runtime.block_on(life(url.clone(), 0, heartbeat, Arc::default()));
    std::thread::sleep(Duration::from_millis(300));
    let (rss_base, fds_base) = sample(pid);

    // The sampler: every quarter second, or every second for a long run.
    let start = Instant::now();
    let open = Arc::new(AtomicUsize::new(0));
    let curve = Arc::new(Mutex::new(Vec::<Point>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (open, curve, done) = (open.clone(), curve.clone(), done.clone());
        let every = if seconds > 60 { 1000 } else { 250 };
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let (rss_kib, fds) = sample(pid);
                let point = Point {
                    at: start.elapsed(),
                    open: open.load(Ordering::Relaxed),
                    rss_kib,
                    fds,
                };
                curve.lock().unwrap().push(point);
                std::thread::sleep(Duration::from_millis(every));
            }
        })
    };

    // Waves until the time is up; at most 512 handshakes at once.
    let deadline = start + Duration::from_secs(seconds);
    let mut waves = 0;
    let mut after_first = None;
    while Instant::now() < deadline || waves == 0 {
        runtime.block_on(async {
            let gate = Arc::new(tokio::sync::Semaphore::new(512));
            let mut tasks = Vec::with_capacity(connections);
            for index in 0..connections {
                let permit = gate.clone().acquire_owned().await.unwrap();
                let (url, open) = (url.clone(), open.clone());
                tasks.push(tokio::spawn(async move {
                    let opened = life(url, index, idle, open);
                    drop(permit);
                    opened.await
                }));
            }
            for task in tasks {
                tokio::time::timeout(Duration::from_secs(120), task)
                    .await
                    .expect("a connection hung")
                    .expect("a connection failed");
            }
        });
        waves += 1;
        if after_first.is_none() {
            std::thread::sleep(Duration::from_millis(500));
            after_first = Some(sample(pid).0);
        }
    }

    // The server sees every dropped socket's end and lets go of it.
    let settle = Instant::now();
    let mut fds_end = sample(pid).1;
    while fds_end != fds_base && settle.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
        fds_end = sample(pid).1;
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss_end = sample(pid).0;
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();

    let curve = curve.lock().unwrap();
    let peak = curve.iter().map(|p| p.rss_kib).max().unwrap_or(rss_base);
    let peak_fds = curve.iter().map(|p| p.fds).max().unwrap_or(fds_base);
    println!(
        "soak: {waves} waves of {connections} connections in {:.0} s, heartbeat {heartbeat:?}",
        start.elapsed().as_secs_f64()
    );
    println!(
        "{:>8} {:>8} {:>10} {:>8}",
        "time s", "open", "RSS MiB", "fds"
    );
    let step = (curve.len() / 40).max(1);
    for point in curve.iter().step_by(step) {
        println!(
            "{:>8.1} {:>8} {:>10.1} {:>8}",
            point.at.as_secs_f64(),
            point.open,
            point.rss_kib as f64 / 1024.0,
            point.fds
        );
    }
    let after_first = after_first.expect("one wave ran");
    println!(
        "RSS MiB: start {:.1}, after the first wave {:.1}, peak {:.1}, end {:.1}; descriptors: start {fds_base}, peak {peak_fds}, end {fds_end}",
        rss_base as f64 / 1024.0,
        after_first as f64 / 1024.0,
        peak as f64 / 1024.0,
        rss_end as f64 / 1024.0,
    );
    assert_eq!(fds_end, fds_base, "the server kept descriptors");
    let slack = (after_first.saturating_sub(rss_base) / 10).max(2048);
    assert!(
        rss_end <= after_first + slack,
        "the server's RSS grew from wave to wave: {after_first} KiB after the first, {rss_end} KiB at the end"
    );
}
