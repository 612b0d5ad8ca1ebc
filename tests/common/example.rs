//! An example program run as a server by a test: started on port 0 of
//! 127.0.0.1 (its first argument), so the system picks a port no other
//! server can take in between, and read until it says where it listens
//! (its `listening on` line); killed and reaped on drop whatever happens in
//! between.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
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

/// The address an example server is given: any free port, its choice said
/// on its `listening on` line.
const ANY_PORT: &str = "127.0.0.1:0";

/// A free port of 127.0.0.1 (free when asked, so only for a server that
/// cannot say which port it took).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Waits until something accepts connections on `addr`. A connection to
/// a free port on loopback can, rarely, be made to itself (its own source
/// port chosen as the target: TCP's simultaneous open); that one is not a
/// listener, and it holds the port the server is about to bind, so it is
/// not taken for one.
pub fn wait_listening(addr: SocketAddr) {
    for _ in 0..200 {
        if let Ok(probe) = std::net::TcpStream::connect(addr) {
            if probe.local_addr().ok() != Some(addr) {
                return;
            }
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
        let mut command = Command::new(path(name));
        command.arg(ANY_PORT).args(args);
        ExampleServer::spawn(name, command)
    }

    /// Starts example `name` as [`start`](ExampleServer::start) does, in a
    /// process allowed only `max_files` open file descriptors (`ulimit -n`).
    pub fn start_with_file_limit(name: &str, args: &[&str], max_files: u32) -> ExampleServer {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {max_files} && exec \"$0\" \"$@\""))
            .arg(path(name))
            .arg(ANY_PORT)
            .args(args);
        ExampleServer::spawn(name, command)
    }

    /// Runs `command` and reads its output up to the first `listening on`
    /// line, whose last word is the address (after a `ws://`-like scheme);
    /// the rest of the output is read and dropped, so the server never
    /// blocks on a full pipe.
    fn spawn(name: &str, mut command: Command) -> ExampleServer {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e} (built by cargo test --all-features)"));
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut server = ExampleServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let mut line = String::new();
        loop {
            line.clear();
            let read = lines.read_line(&mut line).unwrap();
            if read == 0 {
                panic!("{name} ended before it listened: {:?}", server.exited());
            }
            if let Some((_, rest)) = line.split_once("listening on ") {
                let word = rest.split_whitespace().last().unwrap_or_default();
                let word = word.rsplit("://").next().unwrap_or(word);
                server.addr = word
                    .parse()
                    .unwrap_or_else(|e| panic!("{name} said {line:?}: {e}"));
                break;
            }
        }
        std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
        wait_listening(server.addr);
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
