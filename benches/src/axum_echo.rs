//! Part 8: echo through axum, with rfc6455's extractor
//! (`rfc6455::axum::WebSocketUpgrade`) against axum's own
//! (`axum::extract::ws`, on tokio-tungstenite).
//!
//! The same axum app in both servers, one route, `recv` then `send`, each
//! in its own `bench serve` process; the load generator and its checks are
//! the echo part's (raw WebSocket, every echoed byte compared). Ping-pong
//! and pipelined, 1, 16 and 256 connections, 16 B, 1 KiB and 64 KiB;
//! server on CPU 0 and load on CPU 1 (or both on CPU 0 on one CPU); the
//! median msgs/s of 3 runs, and the ratio ours / axum's.

use crate::echo::{self, Mode, Timing};
use crate::harness::{fmt_rate, pin_current_thread, Budget};
use crate::servers::{ServerLib, ServerProcess};

pub fn run(budget: Budget) {
    println!("\n## Part 8: echo through axum, our extractor against axum's own");
    let (timing, runs) = Timing::for_budget(budget);
    let placement = echo::placements(true)[0];
    println!("{}; msgs/s, median of {runs}\n", placement.name);
    pin_current_thread(Some(placement.load_cpus));
    let libs = [ServerLib::AxumOurs, ServerLib::AxumOwn];
    let servers: Vec<ServerProcess> = libs
        .iter()
        .map(|&lib| ServerProcess::start(lib, placement.server_cpus).expect("a server starts"))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("| row | axum + rfc6455 | axum + tokio-tungstenite | ours / theirs |");
    println!("|---|---:|---:|---:|");
    for mode in [Mode::PingPong, Mode::Pipelined] {
        for conns in [1usize, 16, 256] {
            for size in [16usize, 1024, 65536] {
                let mut medians = Vec::new();
                for server in &servers {
                    let mut rates: Vec<f64> = (0..runs)
                        .map(|_| {
                            rt.block_on(echo::measure(server.addr, conns, size, mode, &timing))
                                .map(|r| r.msgs_per_s)
                                .unwrap_or(f64::NAN)
                        })
                        .collect();
                    rates.sort_by(f64::total_cmp);
                    medians.push(rates[rates.len() / 2]);
                }
                let size = match size {
                    16 => "16 B".to_string(),
                    s => format!("{} KiB", s / 1024),
                };
                println!(
                    "| {} {size} x {conns} | {} | {} | {:.2} |",
                    mode.name(),
                    fmt_rate(medians[0]),
                    fmt_rate(medians[1]),
                    medians[0] / medians[1]
                );
            }
        }
    }
}
