//! Our WebSockets inside the HTTP frameworks users already run: the
//! `hyper_server` example (hyper's own upgrade, the core's decisions,
//! the tokio adapter), checked by the Python `websockets` client
//! (tests/interop/echo_check.py: text, 1 MiB binary, fragments, ping,
//! close 4000), with and without permessage-deflate. Run by
//! tests/interop/run, which sets `INTEROP_PYTHON`.
#![cfg(all(feature = "http", feature = "deflate"))]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// An example server on a free port, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(example: &str) -> Server {
        // `cargo test` builds the examples next to the test binaries.
        let exe = std::env::current_exe().unwrap();
        let examples = exe.parent().unwrap().parent().unwrap().join("examples");
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new(examples.join(example))
            .arg(addr.to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{example}: {e} (built by cargo test --all-features)"));
        let server = Server { child, addr };
        for _ in 0..200 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("{example} did not listen on {addr}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let server = Server::start("hyper_server");
    let url = format!("ws://{}/ws", server.addr);
    echo_check(&url, false);
    echo_check(&url, true);
}
