//! `examples/wscat` through pipes: against the echo_server example, the
//! handshake and every frame of a round trip are printed as the guide's
//! first chapter (guide/protocol.md) describes them (masked as sent and unmasked, the close
//! codes); with --deflate the frames carry RSV1; with --listen it is a
//! server our client talks to.
#![cfg(all(feature = "tokio", feature = "deflate"))]

#[path = "common/example.rs"]
mod example;

use rfc6455::Driver;
use std::io::Write;
use std::process::{Child, Command, Stdio};

use example::{free_addr, wait_listening, ExampleServer};

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs wscat against a fresh echo server with `input` on stdin; its stdout.
fn wscat_against_echo(input: &str, args: &[&str]) -> String {
    let server = ExampleServer::start("echo_server", &[]);
    let addr = server.addr;
    let mut child = Command::new(example::path("wscat"))
        .arg(format!("ws://{addr}/chat"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("wscat is built by cargo test");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "wscat failed");
    String::from_utf8(output.stdout).unwrap()
}

fn assert_lines(output: &str, expected: &[&str]) {
    // In order: each expected line is found after the previous one.
    let mut rest = output;
    for line in expected {
        match rest.find(line) {
            Some(at) => rest = &rest[at + line.len()..],
            None => panic!("{line:?} missing (or out of order) in:\n{output}"),
        }
    }
}

#[test]
fn show_frames_prints_the_handshake_and_every_frame_of_a_round_trip() {
    let output = wscat_against_echo("Hello\n", &["--show-frames"]);
    assert_lines(
        &output,
        &[
            ">> GET /chat HTTP/1.1",
            ">> Sec-WebSocket-Version: 13",
            "<< HTTP/1.1 101 Switching Protocols",
            "<< Sec-WebSocket-Accept: ",
            ">> frame FIN=1 RSV=000 opcode=0x1 (text) MASK=1 key=",
            ">>   unmasked:        48 65 6c 6c 6f",
            ">>   as text:         \"Hello\"",
        ],
    );
    assert_lines(
        &output,
        &[
            "<< frame FIN=1 RSV=000 opcode=0x1 (text) MASK=0 length=5",
            "<<   payload:         48 65 6c 6c 6f",
        ],
    );
    assert_lines(&output, &["< Hello"]);
    assert_lines(
        &output,
        &[
            ">> frame FIN=1 RSV=000 opcode=0x8 (close) MASK=1",
            ">>   close code 1000",
            "<< frame FIN=1 RSV=000 opcode=0x8 (close) MASK=0 length=2",
            "<<   close code 1000",
            "closed: 1000",
        ],
    );
    // The masked bytes are the unmasked ones XOR the key, as printed.
    let frame = output
        .lines()
        .find(|l| l.contains("(text) MASK=1 key="))
        .unwrap();
    let key = frame
        .split("key=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let key: Vec<u8> = (0..4)
        .map(|i| u8::from_str_radix(&key[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let sent = output
        .lines()
        .find(|l| l.starts_with(">>   payload as sent:"))
        .unwrap();
    let sent: Vec<u8> = sent
        .split(':')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    let unmasked: Vec<u8> = sent
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i % 4])
        .collect();
    assert_eq!(unmasked, b"Hello");
}

#[test]
fn deflate_frames_carry_rsv1() {
    // Longer than DeflateConfig::threshold (32 bytes): shorter messages go
    // uncompressed.
    let text = "Hello ".repeat(10);
    let output = wscat_against_echo(&format!("{text}\n"), &["--show-frames", "--deflate"]);
    assert_lines(
        &output,
        &[
            ">> Sec-WebSocket-Extensions: permessage-deflate",
            "<< Sec-WebSocket-Extensions: permessage-deflate",
            ">> frame FIN=1 RSV=100 opcode=0x1 (text) MASK=1",
            "compressed with permessage-deflate",
            "<< frame FIN=1 RSV=100 opcode=0x1 (text) MASK=0",
        ],
    );
    assert_lines(&output, &[&format!("< {text}")]);
}

#[test]
fn listen_is_a_server_our_client_talks_to() {
    let addr = free_addr();
    let mut server = Command::new(example::path("wscat"))
        .args(["--listen", &addr.to_string(), "--subprotocol", "chat"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("wscat is built by cargo test");
    let stdout = server.stdout.take().unwrap();
    // Should it never report the end, the reading below ends anyway.
    let pid = server.id().to_string();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(30));
        let _ = Command::new("kill").arg(&pid).status();
    });
    let server = Killed(server);
    wait_listening(addr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request =
            rfc6455::handshake::ClientRequest::new(addr.to_string(), "/").protocol("chat");
        let mut ws = rfc6455::tokio::client_with(tcp, &request, rfc6455::Config::default())
            .await
            .unwrap();
        assert_eq!(ws.protocol(), Some("chat"));
        ws.send_text("hi there").await.unwrap();
        ws.close(rfc6455::CloseCode::NORMAL, "bye").await.unwrap();
        while ws.recv().await.unwrap().is_some() {}
    });
    // Its lines until it reports the end of the connection (it then
    // waits for the next one, so it is stopped here).
    let mut output = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.unwrap();
        output.push_str(&line);
        output.push('\n');
        if line.starts_with("closed:") {
            break;
        }
    }
    drop(server);
    assert_lines(
        &output,
        &[
            "listening on ws://",
            "subprotocol: chat",
            "< hi there",
            "closed: 1000 bye",
        ],
    );
}

/// `--http3 --ca FILE`: the same round trip over HTTP/3 (RFC 9220)
/// against `echo_server --tls`, which serves it beside TLS and writes its
/// certificate for wscat to trust.
#[cfg(feature = "http3")]
#[test]
fn over_http3_the_echo_comes_back() {
    let dir = std::env::temp_dir().join(format!("rfc6455-wscat-h3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let cert = cert.to_str().unwrap();
    let server = ExampleServer::start("echo_server", &["--tls", "--cert-out", cert]);
    let mut child = Command::new(example::path("wscat"))
        .arg(format!("ws://localhost:{}/chat", server.addr.port()))
        .args(["--http3", "--ca", cert])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("wscat is built by cargo test");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"over QUIC\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let output = String::from_utf8(output.stdout).unwrap();
    assert_lines(&output, &["< over QUIC", "closed: 1000"]);
}
