//! The echo server stops gracefully on SIGTERM and SIGINT, in every mode
//! (tokio, blocking, embedded-io-async, compio): every connected client
//! receives a Close with the code the server chose (1001 Going Away, or
//! 1012 Service Restart with `--restart`), answers it, sees the closing
//! handshake end normally, and the process exits with success once they
//! have.
#![cfg(all(
    feature = "tokio",
    feature = "blocking",
    feature = "embedded-io-async",
    feature = "compio"
))]

#[path = "common/example.rs"]
mod example;

use rfc6455::{Driver, Initiator};
use std::process::Command;
use std::time::{Duration, Instant};

use example::ExampleServer;

/// The clients connected when the signal comes.
const CLIENTS: usize = 20;

/// A bound on every wait: longer is a hang.
const LIMIT: Duration = Duration::from_secs(30);

/// Starts the echo server with `args`, connects [`CLIENTS`] clients (each
/// gets one echo back), sends `signal`, and checks what every client and
/// the server saw.
fn stops(args: &[&str], signal: &str, code: u16) {
    let mut server = ExampleServer::start("echo_server", args);
    let url = format!("ws://{}/stop", server.addr);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut clients = Vec::new();
    runtime.block_on(async {
        for i in 0..CLIENTS {
            let mut ws = rfc6455::tokio::connect(&url).await.expect("connect");
            ws.send_text(&format!("hello {i}")).await.unwrap();
            let echo = ws.recv().await.unwrap().expect("the echo");
            assert_eq!(echo.as_text(), Some(format!("hello {i}").as_str()));
            clients.push(ws);
        }
    });
    let pid = server.pid().to_string();
    let sent = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(sent.success(), "kill {signal} {pid}");

    runtime.block_on(async {
        for mut ws in clients {
            let end = tokio::time::timeout(LIMIT, ws.recv()).await;
            let end = end.expect("the server's Close within the limit");
            assert!(matches!(end, Ok(None)), "{args:?}: {end:?}");
            let closed = ws.closed().expect("closed");
            assert_eq!(closed.initiator, Initiator::Remote, "{args:?}");
            let received = closed.received.as_ref().expect("a Close frame");
            assert_eq!(received.code.0, code, "{args:?}");
            assert_eq!(closed.error, None, "{args:?}");
        }
    });

    let start = Instant::now();
    let status = loop {
        if let Some(status) = server.exited() {
            break status;
        }
        assert!(start.elapsed() < LIMIT, "{args:?}: still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{args:?}: {status}");
}

#[test]
fn the_tokio_server_stops_on_sigterm_with_1001() {
    stops(&[], "-TERM", 1001);
}

#[test]
fn the_tokio_server_stops_on_sigint_with_1012_when_restarting() {
    stops(&["--restart"], "-INT", 1012);
}

#[test]
fn the_blocking_server_stops_on_sigterm() {
    stops(&["--blocking"], "-TERM", 1001);
}

#[test]
fn the_embedded_server_stops_on_sigterm() {
    stops(&["--embedded"], "-TERM", 1001);
}

#[test]
fn the_compio_server_stops_on_sigterm() {
    stops(&["--uring", "--restart"], "-TERM", 1012);
}
