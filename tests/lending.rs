//! `Driver::for_each_message` where the messages are lent where they were
//! read: through the tokio driver (its own loop), and through the shared
//! loop over a transport that reads into a buffer of its own (compio's
//! way, `Transport::read_lent`). tests/drivers.rs runs one burst through
//! every driver. Properties over arbitrary messages and read sizes, on
//! both loops:
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
use rfc6455::socket::{Clock, Transport};
use rfc6455::tokio::WebSocket;
use rfc6455::{
    CloseCode, Config, Connection, Driver, Event, MaskKeys, Message, ProtocolError, Role,
    Timestamp, UsageError,
};
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
        let room = buf.remaining();
        buf.put_slice(self.next(room));
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

impl Reads {
    /// The next read's bytes: the next size in turn, at most `room`.
    fn next(&mut self, room: usize) -> &[u8] {
        let size = self.sizes[self.turn % self.sizes.len()];
        self.turn += 1;
        let n = size.min(room).min(self.input.len() - self.at);
        self.at += n;
        &self.input[self.at - n..self.at]
    }
}

/// The same reads as a transport of the shared loop that lends them from
/// a buffer of its own, as compio's does.
struct Lending(Reads);

impl Transport for Lending {
    type Error = TransportError;

    async fn read(&mut self, conn: &mut Connection) -> Result<(), TransportError> {
        match self.0.next(32 * 1024) {
            [] => conn.handle_eof(),
            read => conn.handle_read(read),
        }
        Ok(())
    }

    async fn read_lent<L, R>(
        &mut self,
        conn: &mut Connection,
        lend: Option<L>,
    ) -> Result<Option<R>, TransportError>
    where
        L: FnOnce(&mut Connection, &mut [u8]) -> R,
    {
        let Some(lend) = lend else {
            return self.read(conn).await.map(|()| None);
        };
        let mut own = self.0.next(32 * 1024).to_vec();
        if own.is_empty() {
            conn.handle_eof();
            return Ok(None);
        }
        Ok(Some(lend(conn, &mut own)))
    }

    async fn write(&mut self, conn: &mut Connection) -> Result<(), TransportError> {
        while conn.pending_output_len() > 0 {
            let piece = conn.pending_output();
            self.0.written.extend_from_slice(piece);
            let n = piece.len();
            conn.consume_output(n);
        }
        Ok(())
    }

    async fn shutdown(&mut self) -> bool {
        true
    }
}

/// The shared loop's errors, as a driver's are made.
#[derive(Debug)]
enum TransportError {
    Usage(UsageError),
    Protocol(ProtocolError),
}

impl From<UsageError> for TransportError {
    fn from(e: UsageError) -> Self {
        TransportError::Usage(e)
    }
}

impl From<ProtocolError> for TransportError {
    fn from(e: ProtocolError) -> Self {
        TransportError::Protocol(e)
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Usage(e) => e.fmt(f),
            TransportError::Protocol(e) => e.fmt(f),
        }
    }
}

/// A clock that stands still: no deadline of the core ever comes.
struct Still;

impl Clock for Still {
    fn now(&self) -> Timestamp {
        Timestamp::from(std::time::Duration::ZERO)
    }

    async fn sleep_until(&self, _: Timestamp) {
        std::future::pending().await
    }
}

/// A server on either loop, and what it wrote.
trait Server: Driver {
    fn written(&self) -> &[u8];
}

impl Server for WebSocket<Reads> {
    fn written(&self) -> &[u8] {
        &self.get_ref().written
    }
}

impl Server for rfc6455::socket::WebSocket<Lending, Still> {
    fn written(&self) -> &[u8] {
        &self.transport().0.written
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

fn reads(input: Vec<u8>, sizes: Vec<usize>) -> Reads {
    Reads {
        input,
        at: 0,
        sizes,
        turn: 0,
        written: Vec::new(),
    }
}

/// The tokio driver's server, over `input` cut into reads of `sizes`.
fn on_tokio(input: Vec<u8>, sizes: Vec<usize>) -> WebSocket<Reads> {
    let conn = Connection::new(Role::Server, Config::default());
    WebSocket::from_connection(reads(input, sizes), conn)
}

/// The shared loop's server, over the same reads, lent.
fn on_shared_loop(input: Vec<u8>, sizes: Vec<usize>) -> rfc6455::socket::WebSocket<Lending, Still> {
    let conn = Connection::new(Role::Server, Config::default());
    rfc6455::socket::WebSocket::new(Lending(reads(input, sizes)), Still, conn)
}

/// Property 1 on one server: every message lent once, in order, and
/// every answer written.
fn lends_every_message<W: Server>(mut ws: W, sent: &[Message]) -> Result<(), TestCaseError> {
    let mut lent = Vec::new();
    let ended = runtime().block_on(ws.for_each_message(|message, conn| {
        lent.push(message.to_message());
        conn.send_data(message.kind(), message.as_bytes())
    }));
    prop_assert!(ended.is_ok(), "{ended:?}");
    prop_assert_eq!(&lent, sent);
    prop_assert_eq!(answers(ws.written()), sent);
    Ok(())
}

/// Property 2 on one server: the closure fails at message `fail_at`;
/// `recv` has every message after it.
fn leaves_the_rest<W: Server>(
    mut ws: W,
    sent: &[Message],
    fail_at: usize,
) -> Result<(), TestCaseError> {
    let rt = runtime();
    let mut lent = Vec::new();
    let ended = rt.block_on(ws.for_each_message(|message, _| {
        lent.push(message.to_message());
        if lent.len() == fail_at + 1 {
            return Err(UsageError::Closed);
        }
        Ok(())
    }));
    let error = ended.expect_err("the closure's error").to_string();
    prop_assert_eq!(error, W::Error::from(UsageError::Closed).to_string());
    while let Some(message) = rt.block_on(ws.recv()).unwrap() {
        lent.push(message);
    }
    prop_assert_eq!(lent, sent);
    Ok(())
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
        lends_every_message(on_tokio(input.clone(), sizes.clone()), &sent)?;
        lends_every_message(on_shared_loop(input, sizes), &sent)?;
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
        leaves_the_rest(on_tokio(input.clone(), sizes.clone()), &sent, fail_at)?;
        leaves_the_rest(on_shared_loop(input, sizes), &sent, fail_at)?;
    }
}

/// `Connection::send` of what `for_each_message` lends: a message the
/// connection gathered whole is shared into the output (its bytes are a
/// piece of the output, not a copy), a view of a read is copied, and the
/// frame on the wire is the same either way.
#[test]
fn send_shares_a_lent_whole_message_and_copies_a_view() {
    use rfc6455::plumbing::{Plumbing, Received, Unread};
    use rfc6455::MessageRef;

    let large = Message::from(vec![7u8; 64 * 1024]);
    let output = |server: &Connection| -> (Vec<u8>, Vec<*const u8>) {
        let pieces: Vec<&[u8]> = server.pending_output_pieces().collect();
        (pieces.concat(), pieces.iter().map(|p| p.as_ptr()).collect())
    };

    let mut whole = Connection::new(Role::Server, Config::default());
    whole.send(MessageRef::from(&large)).unwrap();
    let (whole_frame, whole_pieces) = output(&whole);
    assert!(whole_pieces.contains(&large.as_bytes().as_ptr()), "shared");

    let (mut read, _) = peer_bytes(&[Op::Whole(large.clone())]);
    let mut viewer = Connection::new(Role::Server, Config::default());
    let mut unread = Unread::new(&mut read);
    let Some(Received::Message(view)) = viewer.poll_event_from(&mut unread) else {
        panic!("a message lent from the read");
    };
    let at = view.as_bytes().as_ptr();
    assert_eq!(view.as_message(), None, "a view, not a whole message");
    let mut sender = Connection::new(Role::Server, Config::default());
    sender.send(view).unwrap();
    let (view_frame, view_pieces) = output(&sender);
    assert!(!view_pieces.contains(&at), "copied");
    assert_eq!(view_frame, whole_frame);
}

/// Frames cut by the end of a read do not shrink the reads after them:
/// 200 messages of 1 KiB, which straddle every 32 KiB read, come in about
/// as many reads as their bytes fill (a remainder gathered with a read of
/// its own size each time once made every later read one frame long).
#[test]
fn reads_stay_full_when_frames_straddle_them() {
    let ops: Vec<Op> = (0..200)
        .map(|_| Op::Whole(Message::from(vec![5u8; 1024])))
        .collect();
    let (input, _) = peer_bytes(&ops);
    let full_reads = input.len().div_ceil(32 * 1024);
    let mut ws = on_tokio(input, vec![usize::MAX]);
    runtime()
        .block_on(ws.for_each_message(|message, conn| conn.send(message)))
        .unwrap();
    let reads = ws.get_ref().turn;
    assert!(
        reads <= 2 * full_reads + 2,
        "{reads} reads for {full_reads} reads' worth"
    );
}
