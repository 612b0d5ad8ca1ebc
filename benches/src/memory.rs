//! Part 3: server memory per connection. For each library a fresh server
//! process (the same `bench serve` as the echo part), N idle WebSocket
//! connections opened from this process with blocking sockets, the
//! server's VmRSS read from /proc, then one 1 KiB echo on every
//! connection and VmRSS again.
//!
//! Per connection = (VmRSS now - VmRSS before the N connections) / N. The
//! baseline is taken after one warm-up connection (handshake, one echo,
//! close), so one-time costs of the runtime are not charged to N.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::codec::{header_len, push_client_frame};
use crate::echo::{check_response, handshake_request, message_for};
use crate::harness::{fmt_ratio, raise_fd_limit, rss_kib, Budget, Table};
use crate::servers::{ServerLib, ServerProcess};

/// The target of the issue: at most 3 kB (KiB here) of server RSS per idle connection.
const TARGET_KIB: f64 = 3.0;

fn open(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.write_all(handshake_request(addr).as_bytes())?;
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    check_response(&head)?;
    Ok(stream)
}

fn echo_once(stream: &mut TcpStream, index: usize, size: usize) -> io::Result<()> {
    let (payload, key) = message_for(index, size);
    let mut frame = Vec::new();
    push_client_frame(&mut frame, 2, &payload, key);
    stream.write_all(&frame)?;
    let mut reply = vec![0u8; header_len(size, false) + size];
    stream.read_exact(&mut reply)?;
    if reply[0] != 0x82 || reply[header_len(size, false)..] != payload[..] {
        return Err(io::Error::other("echo differs"));
    }
    Ok(())
}

struct Measured {
    idle_kib: f64,
    echo_kib: f64,
}

fn measure(lib: ServerLib, n: usize) -> io::Result<Measured> {
    let server = ServerProcess::start(lib, &[0])?;
    {
        let mut warm = open(server.addr)?;
        echo_once(&mut warm, usize::MAX / 2, 1024)?;
    }
    std::thread::sleep(Duration::from_millis(200));
    let base = rss_kib(server.pid());
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(open(server.addr)?);
    }
    std::thread::sleep(Duration::from_millis(300));
    let idle = rss_kib(server.pid());
    for (i, c) in clients.iter_mut().enumerate() {
        echo_once(c, i, 1024)?;
    }
    std::thread::sleep(Duration::from_millis(300));
    let echoed = rss_kib(server.pid());
    drop(clients);
    drop(server);
    Ok(Measured {
        idle_kib: idle.saturating_sub(base) as f64 / n as f64,
        echo_kib: echoed.saturating_sub(base) as f64 / n as f64,
    })
}

/// Whether `lib` runs: all do, unless `MEMORY_SERVERS` lists some
/// (`MEMORY_SERVERS=rfc6455,uwebsockets bench memory`); the ratios need
/// rfc6455 and a peer.
fn chosen(lib: ServerLib) -> bool {
    std::env::var("MEMORY_SERVERS").map_or(true, |list| {
        list.split(',').any(|name| name.trim() == lib.name())
    })
}

pub fn run(budget: Budget) {
    println!("\n## Part 3: memory per connection");
    let limit = raise_fd_limit();
    let mut counts = vec![1000usize];
    if !budget.quick {
        counts.push(10_000);
    }
    counts.retain(|&n| (n as u64) + 64 <= limit);
    let mut header = vec!["server".to_string()];
    for &n in &counts {
        header.push(format!("idle @{n}"));
        header.push(format!("after 1 KiB echo @{n}"));
    }
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut table = Table::new(
        "Server RSS per connection, KiB (VmRSS delta / N)",
        &header_refs,
    );
    let mut results: Vec<(ServerLib, Vec<f64>)> = Vec::new();
    // uWebSockets, a peer, when it was built; the io_uring driver, a row
    // of its own, not a peer in the ratios.
    let uws = crate::servers::uws_built("memory").then_some(ServerLib::UWebSockets);
    for lib in ServerLib::MAIN
        .into_iter()
        .chain(uws)
        .chain([
            ServerLib::Rfc6455Each,
            ServerLib::Rfc6455Uring,
            ServerLib::Rfc6455Mio,
        ])
        .filter(|&lib| chosen(lib))
    {
        let mut values = Vec::new();
        for &n in &counts {
            let m = measure(lib, n).unwrap_or_else(|e| panic!("memory {} @{n}: {e}", lib.name()));
            values.push(m.idle_kib);
            values.push(m.echo_kib);
        }
        eprintln!("  memory: {} done", lib.name());
        results.push((lib, values));
    }
    for (lib, values) in &results {
        let mut row = vec![lib.name().to_string()];
        row.extend(values.iter().map(|v| format!("{v:.2}")));
        table.row(row);
    }
    // The ratios need rfc6455's row and a peer's.
    if let Some((ServerLib::Rfc6455, ours)) = results.first() {
        let mut ratio = vec!["ours/best peer".to_string()];
        let mut target = vec![format!("ours/target ({TARGET_KIB} KiB idle)")];
        for (col, &v) in ours.iter().enumerate() {
            let best = results[1..]
                .iter()
                .filter(|(lib, _)| {
                    !matches!(
                        lib,
                        ServerLib::Rfc6455Each | ServerLib::Rfc6455Uring | ServerLib::Rfc6455Mio
                    )
                })
                .map(|(_, vals)| vals[col])
                .fold(f64::INFINITY, f64::min);
            ratio.push(if best.is_finite() {
                fmt_ratio(v / best)
            } else {
                "-".into()
            });
            target.push(if col % 2 == 0 {
                fmt_ratio(v / TARGET_KIB)
            } else {
                "-".into()
            });
        }
        table.row(ratio);
        table.row(target);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Ok(sizes) = rt.block_on(crate::servers::task_sizes()) {
        let list: Vec<String> = sizes
            .iter()
            .filter(|(lib, _)| ServerLib::MAIN.contains(lib))
            .map(|(lib, n)| format!("{} {n} B", lib.name()))
            .collect();
        table.note(format!(
            "Connection future (before its first poll; tokio allocates it per connection): {}.",
            list.join(", ")
        ));
    }
    table.note("Lower is better; ratios < 1 favour rfc6455. tungstenite = tokio-tungstenite with default config.");
    table.note("rfc6455-each (not in the ratios): the tokio adapter echoing from for_each_message; its task's future holds no message across an await.");
    table.note("rfc6455-uring (not in the ratios): the compio driver keeps a read in flight on every connection, so an idle connection holds its receive buffer (16 KiB asked; the kernel writes, and so commits, only the pages that receive bytes).");
    table.note("rfc6455-mio (not in the ratios): the event-loop server (rfc6455::mio), one thread, every connection a record in its loop and no task; an idle connection lends its buffers to the thread's pool.");
    table.note(format!("Open-file limit raised to {limit} in-process (setrlimit); the hard limit caps the connection count."));
    table.print();
    if !budget.quick && chosen(ServerLib::Rfc6455Mio) {
        if let Err(e) = million(limit) {
            eprintln!("  memory: the million-connection figure failed: {e}");
        }
    }
}

/// The kernel's slab memory (/proc/meminfo `Slab`), in KiB: socket,
/// file, epoll and TCP structures live there.
fn slab_kib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find(|l| l.starts_with("Slab:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// One million connections on paper: the event-loop server (rfc6455-mio)
/// holding as many idle connections as the descriptor limit allows, its
/// RSS and the kernel's slab per connection, scaled to 10^6. Both ends of
/// each connection are on this machine, so the slab counts two sockets;
/// a server's own share is about half.
fn million(limit: u64) -> io::Result<()> {
    let n = limit.saturating_sub(200) as usize;
    let server = ServerProcess::start(ServerLib::Rfc6455Mio, &[0])?;
    {
        let mut warm = open(server.addr)?;
        echo_once(&mut warm, usize::MAX / 2, 1024)?;
    }
    std::thread::sleep(Duration::from_millis(300));
    let (rss0, slab0) = (rss_kib(server.pid()), slab_kib());
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(open(server.addr)?);
    }
    std::thread::sleep(Duration::from_millis(500));
    let (rss1, slab1) = (rss_kib(server.pid()), slab_kib());
    drop(clients);
    drop(server);
    let user = rss1.saturating_sub(rss0) as f64 / n as f64;
    let kernel = slab1.saturating_sub(slab0) as f64 / n as f64 / 2.0;
    let gib = |kib: f64| kib * 1e6 / (1024.0 * 1024.0);
    println!(
        "\nOne million connections, on paper (rfc6455-mio, {n} idle connections measured, \
         the descriptor limit): per connection {user:.2} KiB of server RSS + {kernel:.2} KiB of \
         kernel slab (half of the {:.2} KiB both loopback ends take); for 10^6: {:.2} GiB in the \
         server + {:.2} GiB in the kernel, before socket buffers (none while idle).",
        kernel * 2.0,
        gib(user),
        gib(kernel)
    );
    Ok(())
}
