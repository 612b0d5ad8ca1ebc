//! The server examples when the process runs out of file descriptors: a
//! failed accept must not end the server. Each is started allowed 64
//! descriptors and sent 100 connections; it must keep running, and serve
//! again once those connections are gone.
#![cfg(all(feature = "tokio", feature = "blocking", unix))]

#[path = "common/example.rs"]
mod example;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use example::ExampleServer;
use rfc6455::Message;

/// How long the server is given to run into the limit.
const PRESSURE: Duration = Duration::from_millis(500);
/// The bound on serving again once descriptors are free.
const LIMIT: Duration = Duration::from_secs(20);

fn keeps_serving(args: &[&str]) {
    let mut server = ExampleServer::start_with_file_limit("echo_server", args, 64);
    let held: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(server.addr).expect("the backlog takes them"))
        .collect();
    std::thread::sleep(PRESSURE);
    assert_eq!(
        server.exited(),
        None,
        "the server exited out of descriptors"
    );
    drop(held);

    // The connections it holds end (their peers are gone), and a new
    // client is served.
    let url = format!("ws://{}/", server.addr);
    let started = Instant::now();
    let mut ws = loop {
        match rfc6455::blocking::connect(&url) {
            Ok(ws) => break ws,
            Err(err) if started.elapsed() < LIMIT => {
                println!("not yet: {err}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(err) => panic!("not served again within {LIMIT:?}: {err}"),
        }
    };
    ws.send_text("still here").unwrap();
    assert_eq!(ws.recv().unwrap(), Some(Message::from("still here")));
    assert_eq!(server.exited(), None);
}

#[test]
fn the_tokio_echo_server_keeps_serving_out_of_descriptors() {
    keeps_serving(&[]);
}

#[test]
fn the_blocking_echo_server_keeps_serving_out_of_descriptors() {
    keeps_serving(&["--blocking"]);
}
