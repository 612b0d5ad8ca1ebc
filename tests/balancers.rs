//! The echo server behind Debian's haproxy and nginx, with the
//! configurations shipped in deploy/: WebSockets through each balancer to
//! two servers, and the client's real address (a PROXY v2 header from
//! haproxy, `X-Forwarded-For` from nginx) believed only from the balancer.
//!
//! Ignored by `cargo test`: they need haproxy and nginx. `deploy/run`
//! installs both (Debian's packages) if missing and runs them.
#![cfg(all(feature = "tokio", feature = "blocking"))]

#[path = "common/example.rs"]
mod example;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use example::{free_addr, wait_listening, ExampleServer};
use rfc6455::handshake::{ClientHandshake, ClientRequest, Progress, Response};
use rfc6455::{Config, Event, Message};

/// The address the test's clients connect from: not the balancers' (they
/// connect to the servers from 127.0.0.1 or 127.0.0.2), so a server that
/// names it learned it from the balancer.
const CLIENT_IP: &str = "127.0.0.3";

/// A balancer process, stopped on drop.
struct Balancer {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("rfc6455-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A shipped configuration with its `@NAME@`s filled in.
fn render(file: &str, values: &[(&str, String)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file);
    let mut text = std::fs::read_to_string(path).unwrap();
    for (name, value) in values {
        text = text.replace(&format!("@{name}@"), value);
    }
    assert!(!text.contains("@SERVER"), "a value is missing in {file}");
    text
}

fn haproxy(servers: [SocketAddr; 2], options: &str) -> Balancer {
    let dir = TempDir::new("haproxy");
    let addr = free_addr();
    let config = render(
        "haproxy.cfg",
        &[
            ("LISTEN", addr.to_string()),
            ("SERVER_A", servers[0].to_string()),
            ("SERVER_B", servers[1].to_string()),
            ("SERVER_OPTIONS", options.to_string()),
            ("RUN", dir.0.display().to_string()),
        ],
    );
    let file = dir.0.join("haproxy.cfg");
    std::fs::write(&file, config).unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy (deploy/run installs it)");
    start(child, addr, dir)
}

fn nginx(servers: [SocketAddr; 2], bind: &str) -> Balancer {
    let dir = TempDir::new("nginx");
    let addr = free_addr();
    let config = render(
        "nginx.conf",
        &[
            ("LISTEN", addr.to_string()),
            ("SERVER_A", servers[0].to_string()),
            ("SERVER_B", servers[1].to_string()),
            ("BIND", bind.to_string()),
        ],
    );
    let file = dir.0.join("nginx.conf");
    std::fs::write(&file, config).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&dir.0)
        .arg("-c")
        .arg(&file)
        .arg("-g")
        // One process, so that killing it leaves no worker behind.
        .arg("daemon off; master_process off;")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (deploy/run installs it)");
    start(child, addr, dir)
}

fn start(child: Child, addr: SocketAddr, dir: TempDir) -> Balancer {
    let balancer = Balancer {
        child,
        addr,
        _dir: dir,
    };
    wait_listening(addr);
    balancer
}

/// A TCP connection to `addr` from [`CLIENT_IP`].
fn dial(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{CLIENT_IP}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// A WebSocket through `addr` (with extra request fields), echoed once:
/// the server's 101 and the address it said it took us for.
fn echo_through(addr: SocketAddr, fields: &[(&str, &str)]) -> (Response, Option<String>) {
    let mut stream = dial(addr);
    let mut request = ClientRequest::new(addr.to_string(), "/through");
    for (name, value) in fields {
        request = request.header(*name, *value);
    }
    let mut handshake = ClientHandshake::new(&request, Config::default());
    stream.write_all(handshake.request()).unwrap();
    let mut buf = [0; 4096];
    let connected = loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the balancer closed during the handshake");
        handshake = match handshake.handle_read(&buf[..n]).unwrap() {
            Progress::Partial(handshake) => handshake,
            Progress::Done(connected) => break connected,
        };
    };
    let client = connected
        .response
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("Client-Address"))
        .map(|(_, value)| String::from_utf8(value.clone()).unwrap());
    let mut ws = rfc6455::blocking::WebSocket::from_connection(stream, connected.connection);
    ws.send_text("through the balancer").unwrap();
    assert_eq!(
        ws.recv().unwrap(),
        Some(Message::from("through the balancer"))
    );
    ws.close(rfc6455::CloseCode::NORMAL, "").unwrap();
    while !matches!(ws.recv_event().unwrap(), Event::Closed(_)) {}
    (connected.response, client)
}

fn two_servers(args: &[&str]) -> [ExampleServer; 2] {
    [
        ExampleServer::start("echo_server", args),
        ExampleServer::start("echo_server", args),
    ]
}

#[test]
#[ignore = "needs haproxy: deploy/run"]
fn haproxy_sends_proxy_v2_and_the_server_takes_the_address_from_it() {
    let servers = two_servers(&["--proxy-protocol"]);
    let balancer = haproxy(
        [servers[0].addr, servers[1].addr],
        "send-proxy-v2 check-send-proxy",
    );
    for _ in 0..4 {
        let (response, client) = echo_through(balancer.addr, &[]);
        assert_eq!(response.status, 101);
        assert_eq!(client.as_deref(), Some(CLIENT_IP));
    }
    // A client that reaches a server directly must send the header
    // itself: without one it is refused (400), and it cannot choose
    // another server's settings.
    let mut direct = dial(servers[0].addr);
    let request = ClientHandshake::new(&ClientRequest::new("x", "/"), Config::default());
    direct.write_all(request.request()).unwrap();
    let mut answer = String::new();
    let _ = direct.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("PROXY"), "{answer}");
}

#[test]
#[ignore = "needs nginx: deploy/run"]
fn nginx_passes_the_upgrade_and_x_forwarded_for_is_believed_only_from_it() {
    let servers = two_servers(&["--trust-proxy", "127.0.0.2"]);
    let balancer = nginx([servers[0].addr, servers[1].addr], "127.0.0.2");
    // Through nginx: the address nginx saw, not the one the client wrote.
    let forged = [("X-Forwarded-For", "203.0.113.66")];
    for _ in 0..4 {
        let (response, client) = echo_through(balancer.addr, &forged);
        assert_eq!(response.status, 101);
        assert_eq!(client.as_deref(), Some(CLIENT_IP));
    }
    // Straight to a server: the field is the client's own word, ignored.
    let (_, client) = echo_through(servers[0].addr, &forged);
    assert_eq!(client.as_deref(), Some(CLIENT_IP));
}

#[test]
fn with_no_proxy_trusted_a_forwarded_field_is_never_believed() {
    let servers = two_servers(&[]);
    let forged = [
        ("X-Forwarded-For", "203.0.113.66"),
        ("Forwarded", "for=203.0.113.66"),
    ];
    let (_, client) = echo_through(servers[0].addr, &forged);
    assert_eq!(client.as_deref(), Some(CLIENT_IP));
}
