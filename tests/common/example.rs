//! An example program run as a server by a test: started on a free port
//! of 127.0.0.1 (its first argument), waited for until it listens, killed
//! and reaped on drop whatever happens in between.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// An example's binary: `cargo test` builds the examples next to the test
/// binaries.
pub fn path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

/// A free port of 127.0.0.1 (free when asked).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Waits until something accepts connections on `addr`.
pub fn wait_listening(addr: SocketAddr) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens on {addr}");
}

/// A running example server.
pub struct ExampleServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ExampleServer {
    /// Starts example `name` with its address and then `args`.
    pub fn start(name: &str, args: &[&str]) -> ExampleServer {
        let addr = free_addr();
        let mut command = Command::new(path(name));
        command.arg(addr.to_string()).args(args);
        ExampleServer::spawn(name, command, addr)
    }

    /// Starts example `name` as [`start`](ExampleServer::start) does, in a
    /// process allowed only `max_files` open file descriptors (`ulimit -n`).
    pub fn start_with_file_limit(name: &str, args: &[&str], max_files: u32) -> ExampleServer {
        let addr = free_addr();
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {max_files} && exec \"$0\" \"$@\""))
            .arg(path(name))
            .arg(addr.to_string())
            .args(args);
        ExampleServer::spawn(name, command, addr)
    }

    fn spawn(name: &str, mut command: Command, addr: SocketAddr) -> ExampleServer {
        let child = command
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e} (built by cargo test --all-features)"));
        let server = ExampleServer { child, addr };
        wait_listening(addr);
        server
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How the process ended, if it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
