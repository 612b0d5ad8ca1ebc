//! Part 2: loopback echo. One load generator (this process, one thread,
//! 127.0.0.1 only, bounded in time and in messages) against an echo server
//! process per library.
//!
//! The load generator speaks raw WebSocket: a pre-masked binary frame per
//! connection, and a check of every echoed frame (header, length, every
//! payload byte), so a broken server setup cannot report fast numbers. It
//! is the same code against every server.
//!
//! - ping-pong: one message in flight per connection; round trip = send to
//!   reply.
//! - pipelined: up to `window` messages in flight per connection (64, or
//!   256 KiB worth for big messages); round trip includes queueing.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use crate::codec::{header_len, push_client_frame};
use crate::harness::{
    fmt_rate, fmt_ratio, fmt_us, median, pin_current_thread, softnet_dropped, Budget, Rng, Table,
};
use crate::servers::{ServerLib, ServerProcess};

pub const CONNS: [usize; 3] = [1, 16, 256];
pub const SIZES: [usize; 3] = [16, 1024, 64 << 10];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    PingPong,
    Pipelined,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::PingPong => "ping-pong",
            Mode::Pipelined => "pipelined",
        }
    }
    pub fn window(self, size: usize) -> usize {
        match self {
            Mode::PingPong => 1,
            Mode::Pipelined => ((256 << 10) / size).clamp(1, 64),
        }
    }
}

/// The request from RFC 6455 §1.3, and the answer it must get.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

pub fn handshake_request(addr: SocketAddr) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Checks a response head; `Err` says what was wrong.
pub fn check_response(head: &[u8]) -> io::Result<()> {
    let text = String::from_utf8_lossy(head);
    if text.starts_with("HTTP/1.1 101") && text.contains(ACCEPT) {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "bad handshake response: {text:?}"
        )))
    }
}

pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    stream.write_all(handshake_request(addr).as_bytes()).await?;
    // Read byte by byte up to the blank line: no frame bytes follow a 101
    // until we send, and this runs once per connection.
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        let b = stream.read_u8().await?;
        head.push(b);
        if head.len() > 4096 {
            return Err(io::Error::other("handshake response too long"));
        }
    }
    check_response(&head)?;
    Ok(stream)
}

/// What each connection of one measurement does.
pub struct Job {
    pub size: usize,
    pub window: usize,
    /// Replies received from here to `end` count.
    pub measure_start: Instant,
    /// No new message is sent after this.
    pub end: Instant,
    /// Nor after this many per connection.
    pub max_msgs: u64,
}

#[derive(Default)]
pub struct ConnStats {
    pub completed: u64,
    pub latencies_ns: Vec<u32>,
}

/// The message of connection `index`: random bytes, so a reply that
/// belongs to another connection or is unmasked wrongly is caught.
pub fn message_for(index: usize, size: usize) -> (Vec<u8>, [u8; 4]) {
    let mut rng = Rng::new(index as u64 + 7);
    let mut payload = vec![0; size];
    rng.fill(&mut payload);
    let key = (rng.next_u64() as u32).to_ne_bytes();
    (payload, key)
}

/// Sends and checks messages on one connection until the job ends, then
/// waits for the replies still in flight.
pub async fn drive(stream: &mut TcpStream, job: &Job, index: usize) -> io::Result<ConnStats> {
    let (payload, key) = message_for(index, job.size);
    let mut frame = Vec::new();
    push_client_frame(&mut frame, 2, &payload, key);
    let flen = frame.len();
    let wire = frame.repeat(job.window);
    let mut expected = vec![0x82u8];
    match job.size {
        0..=125 => expected.push(job.size as u8),
        126..=0xFFFF => {
            expected.push(126);
            expected.extend_from_slice(&(job.size as u16).to_be_bytes());
        }
        _ => {
            expected.push(127);
            expected.extend_from_slice(&(job.size as u64).to_be_bytes());
        }
    }
    let hlen = header_len(job.size, false);
    assert_eq!(expected.len(), hlen);
    expected.extend_from_slice(&payload);
    let rlen = expected.len();

    let mut stats = ConnStats::default();
    let mut inflight: VecDeque<Instant> = VecDeque::with_capacity(job.window);
    let (mut wpos, mut wend) = (0, 0);
    let mut rbuf = vec![0u8; (256 << 10).max(2 * rlen)];
    let mut filled = 0;
    let mut sent = 0u64;
    let give_up = job.end + Duration::from_secs(5);
    loop {
        let now = Instant::now();
        if wpos == wend && now < job.end && sent < job.max_msgs {
            let k = (job.window - inflight.len()).min((job.max_msgs - sent) as usize);
            if k > 0 {
                inflight.extend(std::iter::repeat_n(now, k));
                wpos = 0;
                wend = k * flen;
                sent += k as u64;
            }
        }
        if inflight.is_empty() && wpos == wend {
            return Ok(stats);
        }
        let interest = if wpos < wend {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let ready = tokio::time::timeout_at(give_up.into(), stream.ready(interest))
            .await
            .map_err(|_| io::Error::other("the server stopped answering"))??;
        if ready.is_writable() && wpos < wend {
            match stream.try_write(&wire[wpos..wend]) {
                Ok(n) => wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if ready.is_readable() {
            match stream.try_read(&mut rbuf[filled..]) {
                Ok(0) => return Err(io::Error::other("the server closed the connection")),
                Ok(n) => {
                    filled += n;
                    let t = Instant::now();
                    let mut off = 0;
                    while filled - off >= rlen {
                        if rbuf[off..off + rlen] != expected[..] {
                            return Err(io::Error::other(
                                "an echoed frame differs from the message sent",
                            ));
                        }
                        let sent_at = inflight
                            .pop_front()
                            .ok_or_else(|| io::Error::other("a reply to nothing"))?;
                        if t >= job.measure_start && t <= job.end {
                            stats.completed += 1;
                            if sent_at >= job.measure_start {
                                stats
                                    .latencies_ns
                                    .push((t - sent_at).as_nanos().min(u32::MAX as u128) as u32);
                            }
                        }
                        off += rlen;
                    }
                    rbuf.copy_within(off..filled, 0);
                    filled -= off;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct EchoResult {
    pub msgs_per_s: f64,
    pub p50_ns: f64,
    pub p99_ns: f64,
}

pub struct Timing {
    pub warmup: Duration,
    pub window: Duration,
}

impl Timing {
    /// The warm-up and measured window of every echo row, and how many
    /// runs a row's median is taken over.
    pub fn for_budget(budget: Budget) -> (Timing, usize) {
        if budget.quick {
            let quick = Timing {
                warmup: Duration::from_millis(30),
                window: Duration::from_millis(100),
            };
            (quick, 1)
        } else {
            let full = Timing {
                warmup: Duration::from_millis(100),
                window: Duration::from_millis(350),
            };
            (full, 3)
        }
    }
}

/// One measurement: `conns` connections, all driven until the window ends.
pub async fn measure(
    addr: SocketAddr,
    conns: usize,
    size: usize,
    mode: Mode,
    timing: &Timing,
) -> io::Result<EchoResult> {
    let mut streams = Vec::with_capacity(conns);
    for chunk_start in (0..conns).step_by(64) {
        let n = 64.min(conns - chunk_start);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            set.spawn(connect(addr));
        }
        while let Some(r) = set.join_next().await {
            streams.push(r.map_err(io::Error::other)??);
        }
    }
    let start = Instant::now() + Duration::from_millis(2);
    let job = Arc::new(Job {
        size,
        window: mode.window(size),
        measure_start: start + timing.warmup,
        end: start + timing.warmup + timing.window,
        max_msgs: 50_000_000,
    });
    let mut set = tokio::task::JoinSet::new();
    for (i, mut stream) in streams.into_iter().enumerate() {
        let job = job.clone();
        set.spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            drive(&mut stream, &job, i).await
        });
    }
    let mut completed = 0;
    let mut latencies = Vec::new();
    while let Some(r) = set.join_next().await {
        let stats = r.map_err(io::Error::other)??;
        completed += stats.completed;
        latencies.extend(stats.latencies_ns);
    }
    if latencies.is_empty() {
        // Starved (a loaded machine can stall a process for a whole short
        // window): report nothing done rather than a number.
        return Ok(EchoResult {
            msgs_per_s: completed as f64 / timing.window.as_secs_f64(),
            p50_ns: f64::NAN,
            p99_ns: f64::NAN,
        });
    }
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize] as f64;
    Ok(EchoResult {
        msgs_per_s: completed as f64 / timing.window.as_secs_f64(),
        p50_ns: pct(0.50),
        p99_ns: pct(0.99),
    })
}

/// Where the server and the load generator run.
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    pub name: &'static str,
    pub server_cpus: &'static [usize],
    pub load_cpus: &'static [usize],
}

pub fn placements(quick: bool) -> Vec<Placement> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shared = Placement {
        name: "server and load generator on one core (CPU 0)",
        server_cpus: &[0],
        load_cpus: &[0],
    };
    let separate = Placement {
        name: "server on CPU 0, load generator on CPU 1",
        server_cpus: &[0],
        load_cpus: &[1],
    };
    match (cpus, quick) {
        (1, _) => vec![shared],
        (_, true) => vec![separate],
        _ => vec![shared, separate],
    }
}

pub fn run(budget: Budget) {
    println!("\n## Part 2: loopback echo");
    let (timing, runs) = Timing::for_budget(budget);
    for placement in placements(budget.quick) {
        pin_current_thread(Some(placement.load_cpus));
        // uWebSockets, a peer in every row, when it was built.
        let uws = crate::servers::uws_built("echo").then_some(ServerLib::UWebSockets);
        let mut servers: Vec<ServerProcess> = ServerLib::MAIN
            .iter()
            .chain(&[
                ServerLib::TungsteniteFeed,
                ServerLib::Rfc6455Send,
                ServerLib::Rfc6455Uring,
                ServerLib::Rfc6455Mio,
                ServerLib::Rfc6455Each,
                ServerLib::Rfc6455UringEach,
            ])
            .chain(uws.as_ref())
            .map(|&lib| ServerProcess::start(lib, placement.server_cpus).expect("start a server"))
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut table = Table::new(
            format!(
                "Echo, {}: msgs/s (p50/p99 round trip, µs); median of {runs} interleaved run(s)",
                placement.name
            ),
            &[
                "mode",
                "conns",
                "size",
                "rfc6455",
                "tungstenite",
                "tungstenite4k",
                "fastwebsockets",
                "tungstenite-feed",
                "uwebsockets",
                "ours/best peer",
                "p99 ours/best peer",
                "rfc6455-send",
                "rfc6455-uring",
                "uring/best peer",
                "uring/rfc6455",
                "CPU µs/msg uring / rfc6455",
                "rfc6455-mio",
                "mio/uwebsockets",
                "rfc6455-each",
                "each/uwebsockets",
                "rfc6455-uring-each",
                "uring-each/uwebsockets",
                "drops",
            ],
        );
        for mode in [Mode::PingPong, Mode::Pipelined] {
            for &conns in &CONNS {
                for &size in &SIZES {
                    let mut libs: Vec<ServerLib> = ServerLib::MAIN.to_vec();
                    if mode == Mode::Pipelined {
                        libs.push(ServerLib::TungsteniteFeed);
                        libs.push(ServerLib::Rfc6455Send);
                    }
                    libs.push(ServerLib::Rfc6455Uring);
                    libs.push(ServerLib::Rfc6455Mio);
                    libs.push(ServerLib::Rfc6455Each);
                    libs.push(ServerLib::Rfc6455UringEach);
                    libs.extend(uws);
                    let mut samples: Vec<Vec<EchoResult>> = vec![Vec::new(); libs.len()];
                    // The server's CPU time per message, µs: what a server
                    // costs when the load generator, not the server, sets
                    // the pace.
                    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); libs.len()];
                    let drops_before = softnet_dropped();
                    for run in 0..runs {
                        // Interleaved: every run visits every server, in a
                        // rotated order.
                        for k in 0..libs.len() {
                            let i = (k + run) % libs.len();
                            let server = servers
                                .iter_mut()
                                .find(|s| s.lib == libs[i])
                                .expect("started above");
                            let (cpu_before, t0) =
                                (crate::harness::cpu_time(server.pid()), Instant::now());
                            let result = rt
                                .block_on(measure(server.addr, conns, size, mode, &timing))
                                .unwrap_or_else(|e| {
                                    panic!(
                                        "{} {} x{conns} {size} B: {e}",
                                        libs[i].name(),
                                        mode.name()
                                    )
                                });
                            let busy = (crate::harness::cpu_time(server.pid()) - cpu_before)
                                .as_secs_f64()
                                / t0.elapsed().as_secs_f64();
                            cpu[i].push(busy / result.msgs_per_s * 1e6);
                            samples[i].push(result);
                        }
                    }
                    let med: Vec<EchoResult> = samples
                        .iter()
                        .map(|s| EchoResult {
                            msgs_per_s: median(
                                &mut s.iter().map(|r| r.msgs_per_s).collect::<Vec<_>>(),
                            ),
                            p50_ns: median(&mut s.iter().map(|r| r.p50_ns).collect::<Vec<_>>()),
                            p99_ns: median(&mut s.iter().map(|r| r.p99_ns).collect::<Vec<_>>()),
                        })
                        .collect();
                    let of = |lib: ServerLib| libs.iter().position(|&l| l == lib).map(|i| med[i]);
                    let cpu_of = |lib: ServerLib| {
                        let i = libs.iter().position(|&l| l == lib).expect("measured");
                        median(&mut cpu[i].clone())
                    };
                    let cell = |r: Option<EchoResult>| {
                        r.map_or("-".into(), |r| {
                            format!(
                                "{} ({}/{})",
                                fmt_rate(r.msgs_per_s),
                                fmt_us(r.p50_ns),
                                fmt_us(r.p99_ns)
                            )
                        })
                    };
                    let ours = of(ServerLib::Rfc6455).expect("measured");
                    let uring = of(ServerLib::Rfc6455Uring).expect("measured");
                    // Peers: tungstenite (both buffers), fastwebsockets,
                    // uWebSockets, and in the pipelined rows
                    // tungstenite-feed.
                    let peers: Vec<EchoResult> = [
                        ServerLib::Tungstenite,
                        ServerLib::Tungstenite4k,
                        ServerLib::Fastwebsockets,
                        ServerLib::TungsteniteFeed,
                        ServerLib::UWebSockets,
                    ]
                    .into_iter()
                    .filter_map(of)
                    .collect();
                    let best_rate = peers.iter().map(|r| r.msgs_per_s).fold(0.0, f64::max);
                    let best_p99 = peers.iter().map(|r| r.p99_ns).fold(f64::INFINITY, f64::min);
                    let drops = softnet_dropped() - drops_before;
                    let mut row = vec![
                        mode.name().to_string(),
                        conns.to_string(),
                        crate::harness::size_name(size),
                    ];
                    for lib in [
                        ServerLib::Rfc6455,
                        ServerLib::Tungstenite,
                        ServerLib::Tungstenite4k,
                        ServerLib::Fastwebsockets,
                        ServerLib::TungsteniteFeed,
                        ServerLib::UWebSockets,
                    ] {
                        row.push(cell(of(lib)));
                    }
                    row.push(fmt_ratio(ours.msgs_per_s / best_rate));
                    row.push(fmt_ratio(ours.p99_ns / best_p99));
                    row.push(cell(of(ServerLib::Rfc6455Send)));
                    row.push(cell(Some(uring)));
                    row.push(fmt_ratio(uring.msgs_per_s / best_rate));
                    row.push(fmt_ratio(uring.msgs_per_s / ours.msgs_per_s));
                    row.push(format!(
                        "{:.2} / {:.2}",
                        cpu_of(ServerLib::Rfc6455Uring),
                        cpu_of(ServerLib::Rfc6455)
                    ));
                    let mio = of(ServerLib::Rfc6455Mio).expect("measured");
                    row.push(cell(Some(mio)));
                    row.push(
                        of(ServerLib::UWebSockets)
                            .map_or("-".into(), |u| fmt_ratio(mio.msgs_per_s / u.msgs_per_s)),
                    );
                    let each = of(ServerLib::Rfc6455Each).expect("measured");
                    row.push(cell(Some(each)));
                    row.push(
                        of(ServerLib::UWebSockets)
                            .map_or("-".into(), |u| fmt_ratio(each.msgs_per_s / u.msgs_per_s)),
                    );
                    let uring_each = of(ServerLib::Rfc6455UringEach).expect("measured");
                    row.push(cell(Some(uring_each)));
                    row.push(of(ServerLib::UWebSockets).map_or("-".into(), |u| {
                        fmt_ratio(uring_each.msgs_per_s / u.msgs_per_s)
                    }));
                    row.push(drops.to_string());
                    table.row(row);
                }
            }
            eprintln!("  echo: {} {} done", placement.name, mode.name());
        }
        table.note("ours/best peer: msgs/s, > 1 means rfc6455 is faster. p99 ours/best peer: < 1 means rfc6455 has the lower p99.");
        table.note("Every server: its own process, tokio current-thread runtime, TCP_NODELAY, one task per connection. rfc6455: recv then queue (the echo is written when recv next waits for input); tungstenite, fastwebsockets: read then send/write_frame per message.");
        table.note("tungstenite-feed (pipelined rows, a peer there): Sink::feed while next().now_or_never() has more, then flush.");
        table.note("uwebsockets: uWebSockets (C++) built from source by benches/uws/build, ws->send in its message handler, compression off, its own event loop on one thread; \"-\" where it was not built.");
        table.note("rfc6455-mio (every row, not in the ratios to the best peer): the rfc6455::mio event-loop server on one thread, its handler sending each message back as it is lent; mio/uwebsockets compares msgs/s.");
        table.note("rfc6455-each (every row, not in the ratios to the best peer): our tokio adapter echoing from for_each_message, each message lent as a view of the bytes read (the shape of uWebSockets' handler); each/uwebsockets compares msgs/s. rfc6455-uring-each: the same on the compio driver (io_uring).");
        table.note("drops: packets the kernel dropped (softnet backlog, whole machine) during the row; each costs a 200 ms+ retransmission timeout, so such a row says more about loopback than about the servers.");
        table.note("rfc6455-send (pipelined rows, not in the ratios): recv then send, one write per message.");
        table.note("rfc6455-uring: the compio driver (io_uring), compio's runtime on one thread, recv then queue; uring/best peer and uring/rfc6455 (our tokio adapter) compare msgs/s; CPU µs/msg: the server process's CPU time (user + system) over the whole measurement, per message of its rate (median of the runs): what it costs where the load generator sets the pace.");
        table.print();
        drop(servers.drain(..));
    }
    pin_current_thread(None);
}
