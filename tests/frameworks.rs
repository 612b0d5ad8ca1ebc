//! Our WebSockets inside the HTTP frameworks users already run: the
//! `hyper_server` example (hyper's own upgrade, the core's decisions,
//! the tokio adapter) and the `axum_echo` example (our extractor in place
//! of axum's), checked by the Python `websockets` client
//! (tests/interop/echo_check.py: text, 1 MiB binary, fragments, ping,
//! close 4000), with and without permessage-deflate. Run by
//! tests/interop/run, which sets `INTEROP_PYTHON`.
#![cfg(all(feature = "http", feature = "axum", feature = "deflate"))]

#[path = "common/example.rs"]
mod example;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use example::ExampleServer;

/// Runs echo_check.py against `url`.
fn echo_check(url: &str, deflate: bool) {
    let python = std::env::var_os("INTEROP_PYTHON").expect("INTEROP_PYTHON: run tests/interop/run");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/echo_check.py");
    let mut command = Command::new(python);
    command.arg(script).arg(url);
    if deflate {
        command.arg("--deflate");
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "{url} (deflate {deflate}): {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
#[ignore = "needs the Python peer: tests/interop/run"]
fn hyper_server_passes_the_python_round_trips() {
    let server = ExampleServer::start("hyper_server", &[]);
    let url = format!("ws://{}/ws", server.addr);
    echo_check(&url, false);
    echo_check(&url, true);
}

#[test]
#[ignore = "needs the Python peer: tests/interop/run"]
fn axum_echo_passes_the_python_round_trips() {
    let server = ExampleServer::start("axum_echo", &[]);
    let url = format!("ws://{}/ws", server.addr);
    echo_check(&url, false);
    echo_check(&url, true);
}

/// Requests that are not upgrades get the status and reason our own
/// parser gives them, through axum's rejection.
#[test]
fn axum_rejections_have_the_right_status() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = ExampleServer::start("axum_echo", &[]);
    runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        let cases = [
            (format!("GET /ws HTTP/1.1\r\nHost: x\r\n{upgrade}Sec-WebSocket-Version: 8\r\n\r\n"), "426", Some("sec-websocket-version: 13")),
            ("GET /ws HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Version: 13\r\n\r\n".to_string(), "400", Some("missing `Upgrade: websocket`")),
            ("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n".to_string(), "400", Some("Sec-WebSocket-Key")),
            (format!("GET /ws HTTP/1.1\r\nHost: x\r\n{upgrade}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: echo\r\n\r\n"), "101", Some("sec-websocket-protocol: echo")),
        ];
        for (request, status, contains) in cases {
            let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
            tcp.write_all(request.as_bytes()).await.unwrap();
            let mut head = vec![0; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut head))
                .await
                .unwrap()
                .unwrap();
            let head = String::from_utf8_lossy(&head[..n]).to_lowercase();
            assert!(head.starts_with(&format!("http/1.1 {status}")), "{request}\n->\n{head}");
            if let Some(text) = contains {
                assert!(head.contains(&text.to_lowercase()), "{request}\n->\n{head}");
            }
        }
    });
}
