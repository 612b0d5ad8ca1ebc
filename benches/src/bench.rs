//! Side-by-side benchmarks of rfc6455 against tungstenite,
//! tokio-tungstenite and fastwebsockets, and of its permessage-deflate
//! against flate2 alone. See benches/README.md.
//!
//! ```text
//! cargo run --release --manifest-path benches/Cargo.toml [-- [codec] [send] [echo] [memory] [alloc] [deflate] [embedded] [http2] [--quick]]
//! bench serve --lib rfc6455|rfc6455-send|tungstenite|tungstenite4k|fastwebsockets [--addr 127.0.0.1:0]
//! ```

mod alloc;
mod axum_echo;
mod broadcast;
mod cluster;
mod codec;
mod deflate;
mod echo;
mod embedded;
mod harness;
mod http2;
mod memory;
mod scaling;
mod send;
mod servers;

use std::time::Instant;

use harness::Budget;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

const PARTS: [&str; 14] = [
    "codec",
    "send",
    "echo",
    "memory",
    "alloc",
    "deflate",
    "embedded",
    "http2",
    "http3",
    "axum",
    "broadcast",
    "broadcast-workers",
    "scaling",
    "cluster",
];

fn usage() -> ! {
    eprintln!(
        "usage: bench [codec] [send] [echo] [memory] [alloc] [deflate] [embedded] [http2] [http3] [axum] [broadcast] [broadcast-workers] [scaling] [cluster] [--quick]\n       \
         bench serve --lib LIB [--addr ADDR]\n       \
         bench probe LIB CONNS SIZE pingpong|pipelined MS [SERVER_CPU LOAD_CPU]\n       \
         bench loop decode|encode rfc6455|tungstenite|tungstenite4k|fastwebsockets SIZE binary|ascii|mixed many|one SECONDS\n       \
         bench loop deflate ours|limit SIZE json|binary SECONDS"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        let mut lib = None;
        let mut addr = "127.0.0.1:0".to_string();
        let mut it = args[1..].iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--lib" => lib = it.next().and_then(|l| servers::ServerLib::parse(l)),
                "--addr" => addr = it.next().cloned().unwrap_or_else(|| usage()),
                _ => usage(),
            }
        }
        let lib = lib.unwrap_or_else(|| usage());
        if let Err(e) = servers::serve_main(lib, &addr) {
            eprintln!("serve: {e}");
            std::process::exit(1);
        }
        return;
    }

    if args.first().map(String::as_str) == Some("serve-broadcast") {
        let lib = args.get(1).and_then(|l| broadcast::Lib::parse(l));
        let size = args.get(2).and_then(|s| s.parse().ok());
        let workers = args.get(3).map_or(Some(1), |w| w.parse().ok());
        let (Some(lib), Some(size), Some(workers)) = (lib, size, workers) else {
            usage()
        };
        harness::raise_fd_limit();
        if let Err(e) = broadcast::serve_main(lib, size, workers) {
            eprintln!("serve-broadcast: {e}");
            std::process::exit(1);
        }
        return;
    }
    if args.first().map(String::as_str) == Some("broadcast-clients") {
        harness::raise_fd_limit();
        if let Err(e) = broadcast::clients_main(&args[1..]) {
            eprintln!("broadcast-clients: {e}");
            std::process::exit(1);
        }
        return;
    }

    if args.first().map(String::as_str) == Some("probe") {
        // One echo cell, for looking closer: probe LIB CONNS SIZE MODE MS [CPU_SERVER CPU_LOAD]
        let lib = servers::ServerLib::parse(&args[1]).unwrap_or_else(|| usage());
        let conns: usize = args[2].parse().unwrap_or_else(|_| usage());
        let size: usize = args[3].parse().unwrap_or_else(|_| usage());
        let mode = if args[4] == "pipelined" {
            echo::Mode::Pipelined
        } else {
            echo::Mode::PingPong
        };
        let ms: u64 = args[5].parse().unwrap_or_else(|_| usage());
        let server_cpu: usize = args.get(6).and_then(|a| a.parse().ok()).unwrap_or(0);
        let load_cpu: usize = args.get(7).and_then(|a| a.parse().ok()).unwrap_or(1);
        harness::pin_current_thread(Some(&[load_cpu]));
        let server = servers::ServerProcess::start(lib, &[server_cpu]).expect("server");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        let timing = echo::Timing {
            warmup: std::time::Duration::from_millis(ms / 4),
            window: std::time::Duration::from_millis(ms),
        };
        for _ in 0..3 {
            // The server's CPU time over the whole measurement (warm-up at
            // the same load), per message of the window's rate.
            let (cpu_before, t0) = (harness::cpu_time(server.pid()), std::time::Instant::now());
            let r = rt.block_on(echo::measure(server.addr, conns, size, mode, &timing));
            let busy = (harness::cpu_time(server.pid()) - cpu_before).as_secs_f64()
                / t0.elapsed().as_secs_f64();
            match r {
                Ok(r) => println!(
                    "{:.0} msgs/s p50 {:.1} us p99 {:.1} us server CPU {:.0} % = {:.0} ns/msg",
                    r.msgs_per_s,
                    r.p50_ns / 1e3,
                    r.p99_ns / 1e3,
                    busy * 100.0,
                    busy / r.msgs_per_s * 1e9
                ),
                Err(e) => println!("error: {e}"),
            }
        }
        return;
    }

    if args.first().map(String::as_str) == Some("loop") {
        // For a profiler: loop decode|encode LIB SIZE binary|ascii|mixed many|one SECONDS,
        // or loop deflate ours|limit SIZE json|binary SECONDS
        if args.get(1).map(String::as_str) == Some("deflate") {
            deflate::loop_main(&args[2..]).unwrap_or_else(|| usage());
        } else {
            codec::loop_main(&args[1..]).unwrap_or_else(|| usage());
        }
        return;
    }

    let mut quick = false;
    let mut parts: Vec<&str> = Vec::new();
    for a in &args {
        match a.as_str() {
            "--quick" => quick = true,
            p if PARTS.contains(&p) => parts.push(PARTS.iter().find(|x| **x == p).expect("listed")),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if parts.is_empty() {
        parts = PARTS.to_vec();
    }
    let budget = Budget { quick };
    let started = Instant::now();
    harness::raise_fd_limit();
    println!(
        "# rfc6455 benchmarks{}",
        if quick {
            " (--quick: a smoke run, not figures)"
        } else {
            ""
        }
    );
    println!("machine: {}", harness::machine_description());
    println!("load average at start: {}", harness::load_average());
    println!("parts: {}", parts.join(", "));
    for part in &parts {
        let t = Instant::now();
        match *part {
            "codec" => codec::run(budget),
            "send" => send::run(budget),
            "echo" => echo::run(budget),
            "memory" => memory::run(budget),
            "alloc" => alloc::run(budget),
            "deflate" => deflate::run(budget),
            "embedded" => embedded::run(),
            "http2" => http2::run(budget),
            "http3" => http2::run_http3(budget),
            "axum" => axum_echo::run(budget),
            "broadcast" => broadcast::run(budget),
            "broadcast-workers" => broadcast::run_workers(budget),
            "scaling" => scaling::run(budget),
            "cluster" => cluster::run(budget),
            _ => unreachable!("checked above"),
        }
        println!(
            "({part}: {:.0} s, load average now {})",
            t.elapsed().as_secs_f64(),
            harness::load_average()
        );
    }
    println!("\ntotal: {:.0} s", started.elapsed().as_secs_f64());
}
