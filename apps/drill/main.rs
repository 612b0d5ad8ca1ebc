//! A rolling restart under load: thousands of chat clients through
//! haproxy (deploy/haproxy.cfg) to two chat servers joined through Redis,
//! some of them talking, while each server is restarted in turn.
//!
//! ```text
//! apps/drill/run [--clients N] [--senders S] [--kill]
//! ```
//!
//! Every client is this crate's tokio client doing what the chat's page
//! does: on a Close (the server's 1012) or a lost connection it comes back
//! with backoff and jitter, saying what it saw last from each server
//! (`since`), and drops a message it has already. A message is *accepted*
//! once its sender sees it come back. The drill passes when every client
//! has every accepted message exactly once, and says how long the clients
//! took to be back (p50, p99).
//!
//! `--kill` kills server A with SIGKILL instead of stopping it: its clients
//! come back on the others; what is lost is what A had accepted and not
//! yet handed to Redis. The drill measures it and does not fail on it.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rfc6455::{Driver, Event};
use serde_json::Value;

/// The token the servers are started with.
const TOKEN: &str = "drill";

struct Args {
    clients: usize,
    senders: usize,
    kill: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = Args {
        clients: 2000,
        senders: 20,
        kill: false,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        match arg.as_str() {
            "--clients" => args.clients = given.next().ok_or("--clients N")?.parse()?,
            "--senders" => args.senders = given.next().ok_or("--senders S")?.parse()?,
            "--kill" => args.kill = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(drill(args))
}

/// A child process, killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

async fn wait_listening(port: u16, what: &str) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} does not listen on {port}");
}

/// The servers and the balancer.
struct Stack {
    output: PathBuf,
    chat: PathBuf,
    redis: String,
    front: u16,
    ports: [u16; 2],
    servers: [Option<Process>; 2],
    _redis: Process,
    _haproxy: Process,
}

impl Stack {
    async fn start() -> Result<Stack, Box<dyn std::error::Error>> {
        let output = PathBuf::from(env_or("OUTPUT", "apps/drill/output"));
        std::fs::create_dir_all(&output)?;
        let redis_port = free_port();
        let redis = Process(
            Command::new(env_or("REDIS_SERVER", "redis-server"))
                .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn()?,
        );
        wait_listening(redis_port, "redis-server").await;
        let exe = std::env::current_exe()?;
        let chat = PathBuf::from(env_or(
            "CHAT_BIN",
            &exe.with_file_name("chat").display().to_string(),
        ));
        let (front, ports) = (free_port(), [free_port(), free_port()]);
        let deploy = PathBuf::from(env_or("DEPLOY", "deploy"));
        let config = std::fs::read_to_string(deploy.join("haproxy.cfg"))?
            .replace("@LISTEN@", &format!("127.0.0.1:{front}"))
            .replace("@SERVER_A@", &format!("127.0.0.1:{}", ports[0]))
            .replace("@SERVER_B@", &format!("127.0.0.1:{}", ports[1]))
            .replace("@SERVER_OPTIONS@", "")
            .replace("@RUN@", &output.display().to_string());
        let cfg = output.join("haproxy.cfg");
        std::fs::write(&cfg, config)?;
        let log = std::fs::File::create(output.join("haproxy.log"))?;
        let haproxy = Process(
            Command::new(env_or("HAPROXY", "haproxy"))
                .arg("-db")
                .arg("-f")
                .arg(&cfg)
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?,
        );
        let mut stack = Stack {
            output,
            chat,
            redis: format!("redis://127.0.0.1:{redis_port}/"),
            front,
            ports,
            servers: [None, None],
            _redis: redis,
            _haproxy: haproxy,
        };
        stack.start_server(0).await?;
        stack.start_server(1).await?;
        wait_listening(front, "haproxy").await;
        Ok(stack)
    }

    async fn start_server(&mut self, i: usize) -> Result<(), Box<dyn std::error::Error>> {
        let name = ["a", "b"][i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.output.join(format!("chat-{name}.log")))?;
        let child = Command::new(&self.chat)
            .arg(format!("127.0.0.1:{}", self.ports[i]))
            .args(["--token", TOKEN, "--redis", &self.redis])
            // Senders talk faster than a person; the drill is about the
            // restarts, not the rate limit.
            .args(["--rate", "50", "--heartbeat", "5"])
            // Last: a flag without a value.
            .arg("--restart")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.servers[i] = Some(Process(child));
        wait_listening(self.ports[i], "chat").await;
        Ok(())
    }

    /// Stops server `i` with `signal` and waits for it to end.
    async fn stop_server(&mut self, i: usize, signal: &str) {
        let Some(mut process) = self.servers[i].take() else {
            return;
        };
        let pid = process.0.id().to_string();
        let _ = Command::new("kill").args([signal, &pid]).status();
        let ended = tokio::task::spawn_blocking(move || {
            let status = process.0.wait();
            std::mem::forget(process);
            status
        });
        let _ = ended.await;
    }
}

/// What every client shares with the drill.
#[derive(Default)]
struct Shared {
    /// Clients with a welcome on their current connection.
    connected: AtomicUsize,
    /// The senders send while this is set.
    sending: AtomicBool,
    /// Every client stops once this is set.
    stop: AtomicBool,
    /// Messages shown by every client so far: the drill ends once this
    /// stops moving, not after a fixed time.
    shown: AtomicUsize,
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    /// Each message text, and how many times it was shown.
    messages: HashMap<String, u32>,
    /// Messages that came again (a replay overlapping what came live),
    /// dropped by their number.
    dropped: u64,
    /// How long each reconnection took: from the end of the connection to
    /// the next welcome.
    back: Vec<Duration>,
    /// The texts this client sent.
    sent: Vec<String>,
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// One client, until the drill stops it: connect, welcome, messages;
/// after any end, back with backoff and jitter, saying what it saw.
async fn client(front: u16, n: usize, sender: bool, shared: Arc<Shared>) -> Seen {
    let mut seen = Seen::default();
    let mut marks: Option<serde_json::Map<String, Value>> = None;
    let mut lost_at: Option<Instant> = None;
    let mut attempt = 0u32;
    let mut count = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !shared.stop.load(Ordering::Relaxed) {
        let mut url = format!("ws://127.0.0.1:{front}/ws?token={TOKEN}&name=c{n}");
        if let Some(marks) = &marks {
            url.push_str("&since=");
            url.push_str(&encode(&Value::Object(marks.clone()).to_string()));
        }
        let mut ws = match rfc6455::tokio::connect(&url).await {
            Ok(ws) => ws,
            Err(_) => {
                // Backoff with jitter: 100 ms, 200 ms ... up to 2 s, each
                // between half and all of it.
                let full = 100u64 << attempt.min(5);
                let wait = full / 2 + rand::random::<u64>() % (full / 2 + 1);
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(wait.min(2000))).await;
                continue;
            }
        };
        let mut welcomed = false;
        loop {
            let event = tokio::select! {
                event = ws.recv_event() => event,
                _ = tick.tick(), if sender && welcomed => {
                    if shared.sending.load(Ordering::Relaxed) {
                        count += 1;
                        let text = format!("m-{n}-{count}");
                        let said = serde_json::json!({ "type": "message", "text": text });
                        if ws.send_text(&said.to_string()).await.is_err() {
                            break;
                        }
                        seen.sent.push(text);
                    }
                    continue;
                }
            };
            let text = match event {
                Ok(Event::Message(message)) => match message.as_text() {
                    Some(text) => text.to_string(),
                    None => continue,
                },
                Ok(Event::Closed(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            if text.contains(r#""type":"welcome""#) {
                let welcome: Value = serde_json::from_str(&text).expect("JSON");
                if marks.is_none() {
                    marks = welcome["marks"].as_object().cloned();
                }
                welcomed = true;
                attempt = 0;
                shared.connected.fetch_add(1, Ordering::Relaxed);
                if let Some(at) = lost_at.take() {
                    seen.back.push(at.elapsed());
                }
            } else if text.contains(r#""type":"message""#) {
                let event: Value = serde_json::from_str(&text).expect("JSON");
                let (origin, seq) = (
                    event["origin"].as_str().unwrap_or(""),
                    event["seq"].as_u64().unwrap_or(0),
                );
                let marks = marks.get_or_insert_with(Default::default);
                let last = marks.get(origin).and_then(Value::as_u64).unwrap_or(0);
                if seq <= last {
                    seen.dropped += 1;
                    continue;
                }
                marks.insert(origin.to_string(), seq.into());
                shared.shown.fetch_add(1, Ordering::Relaxed);
                let said = event["text"].as_str().unwrap_or("").to_string();
                *seen.messages.entry(said).or_default() += 1;
            }
        }
        if welcomed {
            shared.connected.fetch_sub(1, Ordering::Relaxed);
        }
        lost_at.get_or_insert_with(Instant::now);
    }
    seen
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn until_connected(shared: &Shared, want: usize, limit: Duration) -> bool {
    let start = Instant::now();
    while shared.connected.load(Ordering::Relaxed) < want {
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

async fn drill(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut stack = Stack::start().await?;
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let mut clients = Vec::new();
    for n in 0..args.clients {
        let sender = n < args.senders;
        clients.push(tokio::spawn(client(stack.front, n, sender, shared.clone())));
        if n % 100 == 99 {
            until_connected(&shared, n + 1, Duration::from_secs(60)).await;
        }
    }
    if !until_connected(&shared, args.clients, Duration::from_secs(60)).await {
        return Err("not every client connected".into());
    }
    println!(
        "drill: {} clients connected through haproxy in {:?}",
        args.clients,
        started.elapsed()
    );
    shared.sending.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rounds: &[(usize, &str)] = if args.kill {
        &[(0, "-KILL")]
    } else {
        &[(0, "-TERM"), (1, "-TERM")]
    };
    for &(i, signal) in rounds {
        let at = Instant::now();
        stack.stop_server(i, signal).await;
        println!(
            "drill: server {} stopped ({signal}) in {:?}",
            ["A", "B"][i],
            at.elapsed()
        );
        stack.start_server(i).await?;
        let back = until_connected(&shared, args.clients, Duration::from_secs(60)).await;
        println!(
            "drill: every client back {:?} after the signal{}",
            at.elapsed(),
            if back { "" } else { " (NOT all)" }
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    shared.sending.store(false, Ordering::Relaxed);
    // What is in flight arrives: until no client has been shown a message
    // for 3 s (a loaded machine delivers late, not never), at most 60 s.
    let quiet = Instant::now();
    let mut last = (shared.shown.load(Ordering::Relaxed), Instant::now());
    while last.1.elapsed() < Duration::from_secs(3) && quiet.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let shown = shared.shown.load(Ordering::Relaxed);
        if shown != last.0 {
            last = (shown, Instant::now());
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    // The clients end at their next event; the servers' heartbeat makes
    // one within seconds.
    stack.stop_server(0, "-TERM").await;
    stack.stop_server(1, "-TERM").await;
    let mut seen = Vec::new();
    for handle in clients {
        seen.push(handle.await?);
    }

    // Accepted: seen by its sender.
    let mut accepted = Vec::new();
    let mut unconfirmed = 0;
    for client in &seen {
        for text in &client.sent {
            match client.messages.contains_key(text) {
                true => accepted.push(text.clone()),
                false => unconfirmed += 1,
            }
        }
    }
    let (mut lost, mut doubled, mut dropped) = (0u64, 0u64, 0u64);
    let mut back: Vec<Duration> = Vec::new();
    for client in &seen {
        dropped += client.dropped;
        back.extend(&client.back);
        for text in &accepted {
            match client.messages.get(text).copied().unwrap_or(0) {
                0 => lost += 1,
                1 => {}
                _ => doubled += 1,
            }
        }
    }
    back.sort();
    let deliveries = accepted.len() as u64 * seen.len() as u64;
    println!(
        "drill: {} messages accepted ({} sent and not seen back by their sender), {} deliveries due",
        accepted.len(),
        unconfirmed,
        deliveries
    );
    println!(
        "drill: lost {lost}, doubled {doubled}; {dropped} replayed copies dropped by their number"
    );
    println!(
        "drill: {} reconnections; back in p50 {:?}, p99 {:?}, max {:?}",
        back.len(),
        percentile(&back, 0.5),
        percentile(&back, 0.99),
        back.last().copied().unwrap_or_default()
    );
    if args.kill {
        let share = if deliveries == 0 {
            0.0
        } else {
            lost as f64 / deliveries as f64
        };
        println!(
            "drill: SIGKILL lost {lost} of {deliveries} deliveries ({:.4} %)",
            share * 100.0
        );
        return Ok(());
    }
    if lost > 0 || doubled > 0 {
        explain(&seen, &accepted, &stack.output);
    }
    if lost > 0 || doubled > 0 || accepted.is_empty() {
        return Err(format!(
            "lost {lost}, doubled {doubled}, accepted {}",
            accepted.len()
        )
        .into());
    }
    Ok(())
}

/// After a failure: which messages went missing for how many clients, and
/// what the servers said about falling behind or about Redis.
fn explain(seen: &[Seen], accepted: &[String], output: &std::path::Path) {
    let mut missing: Vec<(usize, &String)> = accepted
        .iter()
        .map(|text| {
            (
                seen.iter()
                    .filter(|c| !c.messages.contains_key(text))
                    .count(),
                text,
            )
        })
        .filter(|(n, _)| *n > 0)
        .collect();
    missing.sort_by(|a, b| b.cmp(a));
    println!(
        "drill: {} messages missed by someone; the most missed:",
        missing.len()
    );
    for (n, text) in missing.iter().take(10) {
        println!("drill:   {text} by {n} clients");
    }
    for name in ["a", "b"] {
        let log =
            std::fs::read_to_string(output.join(format!("chat-{name}.log"))).unwrap_or_default();
        let notable: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("bus:") || l.contains("missed") || l.contains("chat:"))
            .collect();
        println!(
            "drill: server {name}: {} notable lines, the last:",
            notable.len()
        );
        for line in notable.iter().rev().take(15).rev() {
            println!("drill:   {line}");
        }
    }
}
