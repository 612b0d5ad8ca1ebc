//! `Driver::for_each_message` through the tokio driver, which decodes each
//! read where it lands and lends the messages out (the other drivers lend
//! what `recv` returns: tests/drivers.rs runs one burst through all).
//! Properties over arbitrary messages and arbitrary read sizes:
//! 1. the closure is lent exactly the messages the peer sent, in order,
//!    however the bytes are cut into reads (a frame cut anywhere, a read
//!    holding many messages, a message larger than a read), with Pings
//!    and fragmented messages among them; and the peer gets every answer;
//! 2. a closure that fails stops `for_each_message` with its error, and
//!    every message after it is still there for `recv`: nothing read is
//!    lost.
#![cfg(feature = "tokio")]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use proptest::collection::vec;
use proptest::prelude::*;
use rfc6455::tokio::{Error, WebSocket};
use rfc6455::{CloseCode, Config, Connection, Driver, Event, MaskKeys, Message, Role, UsageError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A peer's bytes, handed out in reads of the given sizes (in turn), then
/// the end of the stream; what the server writes is kept.
struct Reads {
    input: Vec<u8>,
    at: usize,
    sizes: Vec<usize>,
    turn: usize,
    written: Vec<u8>,
}

impl AsyncRead for Reads {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let size = self.sizes[self.turn % self.sizes.len()];
        self.turn += 1;
        let n = size.min(buf.remaining()).min(self.input.len() - self.at);
        let at = self.at;
        buf.put_slice(&self.input[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Reads {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.written.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What the peer sends: a message whole or in fragments of a size, or a
/// Ping.
#[derive(Clone, Debug)]
enum Op {
    Whole(Message),
    Fragmented(Message, usize),
    Ping(Vec<u8>),
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        any::<String>().prop_map(Message::from),
        vec(any::<u8>(), 0..200).prop_map(Message::from),
        // Larger than a read (32 KiB) now and then.
        (0usize..70_000).prop_map(|n| Message::from(vec![(n % 251) as u8; n])),
    ]
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => arb_message().prop_map(Op::Whole),
        2 => (arb_message(), 1usize..5000).prop_map(|(m, n)| Op::Fragmented(m, n)),
        1 => vec(any::<u8>(), 0..=125).prop_map(Op::Ping),
    ]
}

fn arb_sizes() -> impl Strategy<Value = Vec<usize>> {
    vec(
        prop_oneof![4 => 1usize..64, 2 => 64usize..5000, 1 => 5000usize..100_000],
        1..6,
    )
}

/// The peer's bytes for `ops`, then its Close; and the messages among them.
fn peer_bytes(ops: &[Op]) -> (Vec<u8>, Vec<Message>) {
    let mut config = Config::default();
    config.mask_keys = MaskKeys::With(|| [0x37, 0xfa, 0x21, 0x3d]);
    let mut peer = Connection::new(Role::Client, config);
    let mut messages = Vec::new();
    for op in ops {
        match op {
            Op::Whole(m) => {
                peer.send(m).unwrap();
                messages.push(m.clone());
            }
            Op::Fragmented(m, size) => {
                peer.send_fragmented(m.kind(), m.as_bytes(), *size).unwrap();
                messages.push(m.clone());
            }
            Op::Ping(payload) => peer.ping(payload).unwrap(),
        }
    }
    peer.close(CloseCode::NORMAL, "").unwrap();
    (peer.pending_output().to_vec(), messages)
}

/// The server, over `input` cut into reads of `sizes`.
fn server(input: Vec<u8>, sizes: Vec<usize>) -> WebSocket<Reads> {
    let reads = Reads {
        input,
        at: 0,
        sizes,
        turn: 0,
        written: Vec::new(),
    };
    WebSocket::from_connection(reads, Connection::new(Role::Server, Config::default()))
}

/// The messages in the server's output, as a client reads them.
fn answers(written: &[u8]) -> Vec<Message> {
    let mut client = Connection::new(Role::Client, Config::default());
    client.handle_read(written);
    let mut got = Vec::new();
    while let Some(event) = client.poll_event() {
        if let Event::Message(m) = event {
            got.push(m);
        }
    }
    got
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn every_message_is_lent_once_in_order_however_the_reads_fall(
        ops in vec(arb_op(), 0..12),
        sizes in arb_sizes(),
    ) {
        let (input, sent) = peer_bytes(&ops);
        let mut ws = server(input, sizes);
        let mut lent = Vec::new();
        let ended = runtime().block_on(ws.for_each_message(|message, conn| {
            lent.push(message.to_message());
            conn.send_data(message.kind(), message.as_bytes())
        }));
        prop_assert!(ended.is_ok(), "{ended:?}");
        prop_assert_eq!(&lent, &sent);
        prop_assert_eq!(answers(&ws.get_ref().written), sent);
    }

    #[test]
    fn a_failing_closure_leaves_the_rest_to_recv(
        ops in vec(arb_op(), 1..12),
        sizes in arb_sizes(),
        fail_at in any::<prop::sample::Index>(),
    ) {
        let (input, sent) = peer_bytes(&ops);
        prop_assume!(!sent.is_empty());
        let fail_at = fail_at.index(sent.len());
        let mut ws = server(input, sizes);
        let rt = runtime();
        let mut lent = Vec::new();
        let ended = rt.block_on(ws.for_each_message(|message, _| {
            lent.push(message.to_message());
            if lent.len() == fail_at + 1 {
                return Err(UsageError::Closed);
            }
            Ok(())
        }));
        prop_assert!(matches!(ended, Err(Error::Usage(UsageError::Closed))), "{ended:?}");
        let mut rest = Vec::new();
        while let Some(message) = rt.block_on(ws.recv()).unwrap() {
            rest.push(message);
        }
        lent.extend(rest);
        prop_assert_eq!(lent, sent);
    }
}
