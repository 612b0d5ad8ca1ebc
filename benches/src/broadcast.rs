//! Part 9: broadcast. N clients connected to one server; the server
//! publishes a timestamped message every 10 ms to all of them; every client
//! records each message's latency (from the publisher's clock to arrival).
//!
//! Each server is `bench serve-broadcast LIB SIZE` in a process of its own
//! (pinned to CPU 0), the clients `bench broadcast-clients ...` in another
//! (CPU 1; raw WebSocket, frames parsed by hand, the same for every
//! server). The servers, each as its users write a broadcast:
//!
//! One publisher for all (but Node's): a message is due every 10 ms, and
//! each pass publishes all that fell due since the last, each stamped with
//! the time it was due, so a server that falls behind still publishes
//! every message (up to 32 per pass) and its delay counts in the latency.
//!
//! - rfc6455: every connection split; the reading halves in tasks, the
//!   writing halves in a list; each pass makes one `PreparedMessage` per
//!   message and `offer_many`s them to each connection in one write
//!   (backlog 1 MiB, then the connection misses messages), never waiting
//!   for a client;
//! - rfc6455-mio: the event-loop server (`rfc6455::mio`), one thread,
//!   every connection a record in its loop; each pass `offer_many`s the
//!   batch's `PreparedMessage`s to every open connection (backlog 1 MiB,
//!   then that connection misses them), each connection's written as the
//!   pass turns to the next;
//! - tokio-tungstenite: a `tokio::sync::broadcast` channel of `Bytes`
//!   (capacity 1024; a lagging client skips), a task per connection
//!   sending `Message::Binary(bytes.clone())` (the payload shared);
//! - tokio-tungstenite-feed: the same, but each task `feed`s every message
//!   waiting in its channel and flushes once (a write for all), its way
//!   of batching;
//! - fastwebsockets: the same channel, a task per connection writing
//!   `Frame::binary(Payload::Borrowed(..))`;
//! - Node's `ws`: `wss.clients.forEach(c => c.send(buf))`, its documented
//!   broadcast idiom (benches/broadcast/ws_server.mjs);
//! - uWebSockets (C++): every connection `subscribe`s to one topic and a
//!   timer on its loop `publish`es to it, its own pub/sub idiom
//!   (benches/uws/broadcast.cpp, built by benches/uws/build), with 1 MiB
//!   of backpressure a connection before it drops, as rfc6455's backlog.
//!
//! `BROADCAST_SERVERS=rfc6455,uwebsockets` runs only those servers.
//!
//! Reported per N: messages delivered per second (over all clients),
//! latency p50/p95/p99, the server's CPU (of one core) and RSS. A second
//! table with a tenth of the clients never reading.

use std::io::{self, BufRead};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{fmt_rate, rss_kib, Budget};

/// How often the publisher sends.
const PERIOD: Duration = Duration::from_millis(10);
/// How long the clients may take to connect.
const CONNECT_LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lib {
    Rfc6455,
    Rfc6455Mio,
    Tungstenite,
    TungsteniteFeed,
    Fastwebsockets,
    NodeWs,
    UWebSockets,
}

impl Lib {
    const ALL: [Lib; 7] = [
        Lib::Rfc6455,
        Lib::Rfc6455Mio,
        Lib::UWebSockets,
        Lib::Tungstenite,
        Lib::TungsteniteFeed,
        Lib::Fastwebsockets,
        Lib::NodeWs,
    ];

    fn name(self) -> &'static str {
        match self {
            Lib::Rfc6455 => "rfc6455",
            Lib::Rfc6455Mio => "rfc6455-mio",
            Lib::Tungstenite => "tokio-tungstenite",
            Lib::TungsteniteFeed => "tokio-tungstenite-feed",
            Lib::Fastwebsockets => "fastwebsockets",
            Lib::NodeWs => "node-ws",
            Lib::UWebSockets => "uwebsockets",
        }
    }

    pub fn parse(name: &str) -> Option<Lib> {
        Lib::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// Nanoseconds since the Unix epoch: the clock the publisher stamps and
/// the clients read (one machine, so one clock).
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A payload of `size` bytes stamped with `at` (ns since the epoch).
fn stamped_at(size: usize, at: u64) -> bytes::Bytes {
    let mut payload = vec![b'x'; size.max(8)];
    payload[..8].copy_from_slice(&at.to_be_bytes());
    bytes::Bytes::from(payload)
}

/// The most messages rfc6455's publisher catches up with in one pass;
/// older ones are skipped, as the other servers' tickers skip.
const MAX_BATCH: u64 = 32;

// ----- the servers -----

/// `bench serve-broadcast LIB SIZE [WORKERS]`: binds a free port, prints
/// `ready PORT`, publishes every 10 ms until killed; on `WORKERS`
/// threads (rfc6455 and rfc6455-mio; 1 if not given).
pub fn serve_main(lib: Lib, size: usize, workers: usize) -> io::Result<()> {
    if lib == Lib::Rfc6455Mio {
        return serve_mio(size, workers);
    }
    let runtime = if workers > 1 {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    };
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("ready {}", listener.local_addr()?.port());
        match lib {
            Lib::Rfc6455 => serve_rfc6455(listener, size, workers).await,
            Lib::Tungstenite | Lib::TungsteniteFeed | Lib::Fastwebsockets => {
                serve_channel(lib, listener, size).await
            }
            Lib::Rfc6455Mio | Lib::NodeWs | Lib::UWebSockets => Err(io::Error::other(format!(
                "{} runs as its own process",
                lib.name()
            ))),
        }
    })
}

/// The publisher every server but Node's shares. A message is due every
/// 10 ms; each pass hands `pass` all that fell due since the last one,
/// each stamped with the time it was due (so latency counts the wait for
/// a pass): one message per pass while the server keeps up, several when
/// it falls behind (up to [`MAX_BATCH`]; older ones are skipped).
async fn publish(mut schedule: Schedule, mut pass: impl FnMut(Vec<bytes::Bytes>)) {
    loop {
        tokio::time::sleep_until(schedule.next_at().into()).await;
        pass(schedule.due());
    }
}

/// The publisher's clock: a message due every [`PERIOD`] from the start,
/// each stamped with the time it was due. Workers publishing each to
/// their share of the connections hold clones (one clock).
#[derive(Clone)]
struct Schedule {
    size: usize,
    start: Instant,
    start_ns: u64,
    /// The index of the next message to publish.
    next: u64,
}

impl Schedule {
    fn new(size: usize) -> Schedule {
        Schedule {
            size,
            start: Instant::now(),
            start_ns: now_ns(),
            next: 0,
        }
    }

    /// When the next message falls due.
    fn next_at(&self) -> Instant {
        self.start + PERIOD * self.next as u32
    }

    /// The messages that fell due since the last call (empty if none; at
    /// most [`MAX_BATCH`], the older ones skipped).
    fn due(&mut self) -> Vec<bytes::Bytes> {
        let period = PERIOD.as_nanos() as u64;
        let due = (self.start.elapsed().as_nanos() as u64 / period + 1).max(self.next);
        let first = self.next.max(due.saturating_sub(MAX_BATCH));
        self.next = due;
        (first..due)
            .map(|i| stamped_at(self.size, self.start_ns + i * period))
            .collect()
    }
}

/// With more than one worker, the connections are dealt to `workers`
/// shards in turn, each with its list of writers and its publishing task
/// (the runtime spreads the tasks over its threads).
async fn serve_rfc6455(listener: TcpListener, size: usize, workers: usize) -> io::Result<()> {
    use rfc6455::tokio::{Offered, WhenFull, WriteHalf};
    type Writers = Arc<Mutex<Vec<WriteHalf<TcpStream>>>>;
    let schedule = Schedule::new(size);
    let shards: Vec<Writers> = (0..workers).map(|_| Writers::default()).collect();
    for shard in &shards {
        let publisher = shard.clone();
        tokio::spawn(publish(schedule.clone(), move |batch| {
            let batch: Vec<_> = batch
                .into_iter()
                .map(rfc6455::PreparedMessage::binary)
                .collect();
            publisher.lock().unwrap().retain(|writer| {
                writer.offer_many(&batch, 1 << 20, WhenFull::Drop).ok() != Some(Offered::Closed)
            });
        }));
    }
    for accepted in 0.. {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let writers = shards[accepted % workers].clone();
        tokio::spawn(async move {
            let Ok(ws) = rfc6455::tokio::accept(stream).await else {
                return;
            };
            let (mut reader, writer) = ws.split();
            writers.lock().unwrap().push(writer);
            while let Ok(Some(_)) = reader.recv().await {}
        });
    }
    Ok(())
}

/// The event-loop server: the publisher's passes (as [`publish`] makes
/// them) between the loop's turns, on the one thread. With more than one
/// worker, one server per thread, each on a listener of its own on the
/// same port (`SO_REUSEPORT`: the kernel deals the connections) and
/// publishing to its own connections, as uWebSockets' threads do.
fn serve_mio(size: usize, workers: usize) -> io::Result<()> {
    let schedule = Schedule::new(size);
    let first = reuse_port_listener(0)?;
    let port = first.local_addr()?.port();
    let mut listeners = vec![first];
    for _ in 1..workers {
        listeners.push(reuse_port_listener(port)?);
    }
    println!("ready {port}");
    let threads: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let schedule = schedule.clone();
            std::thread::spawn(move || mio_worker(listener, schedule))
        })
        .collect();
    for thread in threads {
        thread
            .join()
            .map_err(|_| io::Error::other("a worker panicked"))??;
    }
    Ok(())
}

/// A listener on 127.0.0.1:`port` (0: any free port) that other sockets
/// may bind too (`SO_REUSEPORT`), for a server per thread.
fn reuse_port_listener(port: u16) -> io::Result<std::net::TcpListener> {
    use std::os::fd::FromRawFd;
    let check = |r: libc::c_int| {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    };
    // SAFETY: plain socket calls on a descriptor this function owns; the
    // address and option are initialised values of the sizes passed.
    unsafe {
        let fd = check(libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
        ))?;
        let listener = std::net::TcpListener::from_raw_fd(fd);
        let one: libc::c_int = 1;
        for option in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
            check(libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ))?;
        }
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = port.to_be();
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        check(libc::bind(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ))?;
        check(libc::listen(fd, 4096))?;
        Ok(listener)
    }
}

/// One thread's server: its connections, and every pass of `schedule`
/// published to them.
fn mio_worker(listener: std::net::TcpListener, mut schedule: Schedule) -> io::Result<()> {
    use rfc6455::mio::{Ctx, Handler, Id, Server, WhenFull};

    /// Reads and drops what clients send.
    struct Quiet;

    impl Handler for Quiet {
        fn message(&mut self, _: &mut Ctx<'_>, _: Id, _: rfc6455::MessageRef<'_>) {}
    }

    let mut server = Server::from_std(listener, rfc6455::Config::default())?;
    let mut ids = Vec::new();
    loop {
        let wait = schedule.next_at().saturating_duration_since(Instant::now());
        let until = server.now().as_nanos() + wait.as_nanos() as u64;
        server.turn(&mut Quiet, Some(rfc6455::Timestamp::from_nanos(until)))?;
        let batch: Vec<_> = schedule
            .due()
            .into_iter()
            .map(rfc6455::PreparedMessage::binary)
            .collect();
        if batch.is_empty() {
            continue;
        }
        server.with(&mut Quiet, |ctx| {
            ids.clear();
            ids.extend(ctx.ids());
            for &id in &ids {
                let _ = ctx.offer_many(id, &batch, 1 << 20, WhenFull::Drop);
            }
        });
    }
}

async fn serve_channel(lib: Lib, listener: TcpListener, size: usize) -> io::Result<()> {
    let (tx, _) = tokio::sync::broadcast::channel::<bytes::Bytes>(1024);
    let publisher = tx.clone();
    tokio::spawn(publish(Schedule::new(size), move |batch| {
        for bytes in batch {
            let _ = publisher.send(bytes);
        }
    }));
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let rx = tx.subscribe();
        match lib {
            Lib::Tungstenite => drop(tokio::spawn(tungstenite_client(stream, rx, false))),
            Lib::TungsteniteFeed => drop(tokio::spawn(tungstenite_client(stream, rx, true))),
            _ => drop(tokio::spawn(fastwebsockets_client(stream, rx))),
        }
    }
}

/// A tokio-tungstenite connection: each message sent (`send`: a write
/// each), or with `batch` fed with whatever else is waiting and flushed
/// once (a write for all).
async fn tungstenite_client(
    stream: TcpStream,
    mut rx: tokio::sync::broadcast::Receiver<bytes::Bytes>,
    batch: bool,
) {
    use futures_util::{SinkExt, StreamExt};
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    loop {
        match rx.recv().await {
            Ok(bytes) if batch => {
                // Feed what else is waiting, then flush once.
                let mut next = Some(bytes);
                while let Some(bytes) = next.take() {
                    if sink
                        .feed(tungstenite::Message::Binary(bytes))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    next = rx.try_recv().ok();
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
            Ok(bytes) => {
                let message = tungstenite::Message::Binary(bytes);
                if sink.send(message).await.is_err() {
                    return;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return,
        }
    }
}

async fn fastwebsockets_client(
    mut stream: TcpStream,
    mut rx: tokio::sync::broadcast::Receiver<bytes::Bytes>,
) {
    if crate::servers::handshake_by_hand(&mut stream)
        .await
        .is_err()
    {
        return;
    }
    let mut ws = fastwebsockets::WebSocket::after_handshake(stream, fastwebsockets::Role::Server);
    loop {
        match rx.recv().await {
            Ok(bytes) => {
                let frame =
                    fastwebsockets::Frame::binary(fastwebsockets::Payload::Borrowed(&bytes));
                if ws.write_frame(frame).await.is_err() {
                    return;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return,
        }
    }
}

// ----- the clients -----

/// `bench broadcast-clients ADDR N STALLED WARMUP_MS MEASURE_MS`: opens N
/// connections (the last STALLED of them never read), prints `connected`,
/// measures, and prints `result RECEIVED P50_US P95_US P99_US`.
pub fn clients_main(args: &[String]) -> io::Result<()> {
    let bad = || io::Error::other("usage: broadcast-clients ADDR N STALLED WARMUP_MS MEASURE_MS");
    let addr: SocketAddr = args.first().and_then(|a| a.parse().ok()).ok_or_else(bad)?;
    let number =
        |i: usize| -> io::Result<u64> { args.get(i).and_then(|a| a.parse().ok()).ok_or_else(bad) };
    let (n, stalled) = (number(1)? as usize, number(2)? as usize);
    let (warmup, measure) = (
        Duration::from_millis(number(3)?),
        Duration::from_millis(number(4)?),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Every connection reads from the moment it is open (what arrives
        // before the measured window is read and not counted), but the
        // stalled ones.
        let start = std::sync::Arc::new(std::sync::OnceLock::<(Instant, Instant)>::new());
        let mut set = tokio::task::JoinSet::new();
        let mut held = Vec::new();
        let connecting_since = Instant::now();
        for first in (0..n).step_by(100) {
            // A server too busy to accept: say so rather than wait forever.
            if connecting_since.elapsed() > CONNECT_LIMIT {
                println!("failed: {first} of {n} connected in {CONNECT_LIMIT:?}");
                return Ok(());
            }
            let mut connecting = tokio::task::JoinSet::new();
            for _ in first..(first + 100).min(n) {
                connecting.spawn(crate::echo::connect(addr));
            }
            while let Some(stream) = connecting.join_next().await {
                let stream = stream.map_err(io::Error::other)??;
                if held.len() < stalled {
                    held.push(stream);
                } else {
                    set.spawn(read_until(stream, start.clone()));
                }
            }
        }
        println!("connected");
        let begin = Instant::now() + warmup;
        let _ = start.set((begin, begin + measure));
        let mut latencies: Vec<u32> = Vec::new();
        while let Some(result) = set.join_next().await {
            latencies.extend(result.map_err(io::Error::other)?);
        }
        drop(held);
        let received = latencies.len();
        latencies.sort_unstable();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len().max(1) - 1) as f64 * p) as usize)
                .copied()
                .unwrap_or(u32::MAX)
        };
        println!("result {received} {} {} {}", pct(0.5), pct(0.95), pct(0.99));
        Ok(())
    })
}

/// Reads frames until the window `start` holds (once set) ends; the
/// latencies (µs) of those that arrived within it.
async fn read_until(
    mut stream: TcpStream,
    start: std::sync::Arc<std::sync::OnceLock<(Instant, Instant)>>,
) -> Vec<u32> {
    let mut latencies = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut have = 0;
    loop {
        let now = Instant::now();
        let (begin, end) = start.get().copied().unwrap_or((
            now + Duration::from_secs(3600),
            now + Duration::from_secs(3600),
        ));
        if now >= end {
            return latencies;
        }
        let wait = if start.get().is_some() {
            end - now
        } else {
            Duration::from_millis(100)
        };
        let read = tokio::time::timeout(wait, stream.read(&mut buf[have..])).await;
        let n = match read {
            Ok(Ok(0)) | Ok(Err(_)) => return latencies,
            Ok(Ok(n)) => n,
            Err(_) if start.get().is_some_and(|(_, end)| Instant::now() >= *end) => {
                return latencies
            }
            Err(_) => continue,
        };
        have += n;
        let arrived = now_ns();
        let counting = Instant::now() >= begin;
        // Whole frames: 2-byte header, 16- or 64-bit lengths, no mask.
        let mut at = 0;
        loop {
            let rest = &buf[at..have];
            if rest.len() < 2 {
                break;
            }
            let (len, head) = match rest[1] & 0x7f {
                126 if rest.len() >= 4 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
                127 if rest.len() >= 10 => (
                    u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                len => (len as usize, 2),
            };
            if rest.len() < head + len {
                if head + len > buf.len() {
                    buf.resize(head + len, 0);
                }
                break;
            }
            if counting && len >= 8 {
                let sent = u64::from_be_bytes(rest[head..head + 8].try_into().unwrap());
                latencies.push((arrived.saturating_sub(sent) / 1000).min(u32::MAX as u64) as u32);
            }
            at += head + len;
        }
        buf.copy_within(at..have, 0);
        have -= at;
    }
}

// ----- the run -----

/// A server process for the run, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(lib: Lib, size: usize, workers: usize) -> io::Result<Server> {
    let mut command = match lib {
        Lib::NodeWs => {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            let mut c = Command::new("node");
            c.arg(root.join("broadcast/ws_server.mjs"))
                .arg(size.to_string())
                .env("NODE_PATH", root.join("../tests/interop/node_modules"));
            c
        }
        Lib::UWebSockets => {
            let mut c = Command::new(crate::servers::uws_path("uws_broadcast"));
            c.args([size, workers].map(|v| v.to_string()));
            c
        }
        _ => {
            let mut c = Command::new(std::env::current_exe()?);
            c.args(["serve-broadcast", lib.name()])
                .args([size, workers].map(|v| v.to_string()));
            c
        }
    };
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());
    // One worker: CPU 0, the load on CPU 1. More: every CPU, shared with
    // the load.
    pin_to(&mut command, if workers > 1 { ALL_CPUS } else { 0..1 });
    let mut child = command.spawn()?;
    let mut line = String::new();
    io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let port = line
        .strip_prefix("ready ")
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("{}: {line:?}", lib.name())))?;
    Ok(Server { child, port })
}

/// Every CPU (of a machine with fewer than 64).
const ALL_CPUS: std::ops::Range<usize> = 0..64;

/// Runs `command` on the CPUs `cpus` (those of them the machine has; the
/// last one if none).
fn pin_to(command: &mut Command, cpus: std::ops::Range<usize>) {
    use std::os::unix::process::CommandExt;
    let count = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpus = cpus.start.min(count - 1)..cpus.end.clamp(1, count);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for cpu in cpus.clone() {
                libc::CPU_SET(cpu, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

struct Row {
    received_per_s: f64,
    /// The load generator's CPU (share of its core): near 1, it is the
    /// limit, not the server.
    client_cpu: f64,
    p50: u32,
    p95: u32,
    p99: u32,
    cpu: f64,
    rss_mib: f64,
}

/// How one server is run in a row: its message size, how many of the
/// clients never read, and on how many threads it serves.
#[derive(Clone, Copy)]
struct Setup {
    size: usize,
    stalled: usize,
    workers: usize,
}

fn one(lib: Lib, n: usize, setup: Setup, budget: Budget) -> io::Result<Row> {
    let Setup {
        size,
        stalled,
        workers,
    } = setup;
    let server = start_server(lib, size, workers)?;
    let (warmup, measure) = if budget.quick {
        (300, 700)
    } else {
        (1000, 3000)
    };
    let mut clients = Command::new(std::env::current_exe()?);
    clients
        .args(["broadcast-clients", &format!("127.0.0.1:{}", server.port)])
        .args([n, stalled, warmup, measure].map(|v| v.to_string()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    pin_to(&mut clients, if workers > 1 { ALL_CPUS } else { 1..2 });
    let mut clients = clients.spawn()?;
    let mut lines = io::BufReader::new(clients.stdout.take().expect("piped")).lines();
    let first = lines.next().transpose()?.unwrap_or_default();
    if first != "connected" {
        let _ = clients.kill();
        let _ = clients.wait();
        return Err(io::Error::other(first));
    }
    std::thread::sleep(Duration::from_millis(warmup as u64));
    let (cpu_before, t0) = (crate::harness::cpu_time(server.child.id()), Instant::now());
    let client_before = crate::harness::cpu_time(clients.id());
    std::thread::sleep(Duration::from_millis(measure as u64));
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = (crate::harness::cpu_time(server.child.id()) - cpu_before).as_secs_f64() / elapsed;
    let client_cpu =
        (crate::harness::cpu_time(clients.id()) - client_before).as_secs_f64() / elapsed;
    let rss_mib = rss_kib(server.child.id()) as f64 / 1024.0;
    let result = lines.next().transpose()?.unwrap_or_default();
    let _ = clients.wait();
    let fields: Vec<u64> = result
        .strip_prefix("result ")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    if fields.len() != 4 {
        return Err(io::Error::other(format!("clients: {result:?}")));
    }
    Ok(Row {
        received_per_s: fields[0] as f64 / (measure as f64 / 1000.0),
        client_cpu,
        p50: fields[1] as u32,
        p95: fields[2] as u32,
        p99: fields[3] as u32,
        cpu,
        rss_mib,
    })
}

fn fmt_ms(us: u32) -> String {
    if us == u32::MAX {
        "-".into()
    } else {
        format!("{:.1}", f64::from(us) / 1000.0)
    }
}

/// Whether `lib` runs: all do, unless `BROADCAST_SERVERS` lists some
/// (`BROADCAST_SERVERS=rfc6455,uwebsockets bench broadcast`).
fn chosen(lib: Lib) -> bool {
    std::env::var("BROADCAST_SERVERS").map_or(true, |list| {
        list.split(',').any(|name| name.trim() == lib.name())
    })
}

pub fn run(budget: Budget) {
    println!("\n## Part 9: broadcast, a message every 10 ms to N clients");
    let node = Command::new("node").arg("--version").output().is_ok()
        && std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/interop/node_modules/ws")
            .exists();
    if !node {
        println!("(Node's ws is not installed: run tests/interop/run once; its rows are skipped)");
    }
    let uws = crate::servers::uws_built("broadcast");
    let sizes: &[usize] = if budget.quick { &[64] } else { &[64, 4096] };
    let ns: &[usize] = if budget.quick {
        &[1000]
    } else {
        &[1000, 5000, 10_000, 19_000]
    };
    for &size in sizes {
        for stalled_tenth in [false, true] {
            if stalled_tenth && size != 64 {
                continue;
            }
            println!(
                "\n{size}-byte messages{}; latency in ms; CPU = share of one core\n",
                if stalled_tenth {
                    ", a tenth of the clients never reading"
                } else {
                    ""
                }
            );
            println!("{TABLE_HEAD}");
            for &n in ns {
                let stalled = if stalled_tenth { n / 10 } else { 0 };
                let offered = (n - stalled) as f64 * 100.0;
                let mut ours = None;
                for lib in Lib::ALL {
                    if (lib == Lib::NodeWs && !node)
                        || (lib == Lib::UWebSockets && !uws)
                        || !chosen(lib)
                    {
                        continue;
                    }
                    let setup = Setup {
                        size,
                        stalled,
                        workers: 1,
                    };
                    let row = one(lib, n, setup, budget);
                    if let Ok(row) = &row {
                        ours.get_or_insert(row.received_per_s);
                    }
                    print_row(n, lib.name(), &row, offered, ours);
                }
            }
        }
    }
}

const TABLE_HEAD: &str = "| N | server | delivered/s | of offered | p50 | p95 | p99 | CPU | µs/msg | RSS MiB | load CPU | ours / this |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

/// One row of a table headed [`TABLE_HEAD`]; `ours` is the first server's
/// rate in the row's group.
fn print_row(n: usize, name: &str, row: &io::Result<Row>, offered: f64, ours: Option<f64>) {
    match row {
        Ok(row) => println!(
            "| {n} | {name} | {} | {:.2} | {} | {} | {} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} |",
            fmt_rate(row.received_per_s),
            row.received_per_s / offered,
            fmt_ms(row.p50),
            fmt_ms(row.p95),
            fmt_ms(row.p99),
            row.cpu,
            row.cpu * 1e6 / row.received_per_s.max(1.0),
            row.rss_mib,
            row.client_cpu,
            ours.unwrap_or(row.received_per_s) / row.received_per_s.max(1.0),
        ),
        Err(e) => println!("| {n} | {name} | failed: {e} | | | | | | | | | |"),
    }
}

/// Part 10: the broadcast past one core. The event-loop server with one
/// thread and with two (a server per thread on one port, each publishing
/// to its own connections), uWebSockets the same way (its
/// `EchoServerThreaded` pattern), the tokio driver on a runtime of two
/// workers; 64-byte messages, N rising to the descriptor limit. Reports
/// the largest N each keeps under 250 ms at p95 with everything offered
/// delivered.
pub fn run_workers(budget: Budget) {
    println!("\n## Part 10: broadcast past one core, 64-byte messages every 10 ms to N clients");
    println!(
        "\nOne worker: the server on CPU 0, the load on CPU 1. Two: both processes on both CPUs.\n"
    );
    let uws = crate::servers::uws_built("broadcast-workers");
    let servers: Vec<(Lib, usize)> = [
        (Lib::Rfc6455Mio, 1),
        (Lib::Rfc6455Mio, 2),
        (Lib::UWebSockets, 1),
        (Lib::UWebSockets, 2),
        (Lib::Rfc6455, 2),
    ]
    .into_iter()
    .filter(|&(lib, _)| (lib != Lib::UWebSockets || uws) && chosen(lib))
    .collect();
    let ns: &[usize] = if budget.quick {
        &[1000]
    } else {
        &[2500, 5000, 7500, 10_000, 15_000, 19_000]
    };
    println!("{TABLE_HEAD}");
    let mut largest = vec![None; servers.len()];
    for &n in ns {
        let offered = n as f64 * 100.0;
        let mut ours = None;
        for (i, &(lib, workers)) in servers.iter().enumerate() {
            let setup = Setup {
                size: 64,
                stalled: 0,
                workers,
            };
            let row = one(lib, n, setup, budget);
            if let Ok(row) = &row {
                ours.get_or_insert(row.received_per_s);
                if row.p95 < 250_000 && row.received_per_s >= 0.99 * offered {
                    largest[i] = Some(n);
                }
            }
            let name = format!("{} x{workers}", lib.name());
            print_row(n, &name, &row, offered, ours);
        }
    }
    println!("\nThe largest N under 250 ms at p95 with everything delivered:");
    for (&(lib, workers), n) in servers.iter().zip(largest) {
        let n = n.map_or("none of those tried".to_string(), |n| n.to_string());
        println!("- {} with {workers} worker(s): {n}", lib.name());
    }
}
