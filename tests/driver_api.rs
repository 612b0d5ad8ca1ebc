//! Every driver offers the same API, and the README's driver table says
//! what each one offers.
//!
//! The functions below call every command on every driver's WebSocket:
//! they are compiled, never run, so a driver that loses a method fails to
//! build here. The table in [`TABLE`] is the one the README shows; the
//! test compares the two, cell by cell, so neither can drift from the
//! other, and a "yes" in the table stands on a call below.
#![cfg(all(
    feature = "blocking",
    feature = "tokio",
    feature = "compio",
    feature = "embedded-io-async",
    feature = "http2",
    feature = "http3"
))]
#![allow(dead_code)]

use bytes::BytesMut;
use rfc6455::socket::{Clock, Offered, Transport, WhenFull};
use rfc6455::Driver;
use rfc6455::{CloseCode, Message, MessageKind, PreparedMessage};

/// Every command of the async drivers, on one WebSocket.
macro_rules! async_commands {
    ($ws:expr, $prepared:expr) => {{
        let ws = $ws;
        let _ = ws.recv().await;
        let _ = ws.recv_event().await;
        let _ = ws.send(&Message::from("x")).await;
        let _ = ws.send_text("x").await;
        let _ = ws.send_binary(b"x").await;
        let _ = ws.send_fragmented(MessageKind::Text, b"xy", 1).await;
        let _ = ws.send_prepared($prepared).await;
        let _ = ws
            .send_owned(MessageKind::Binary, BytesMut::from(&b"x"[..]))
            .await;
        let _ = ws.queue(&Message::from("x")).await;
        let _ = ws.queue_prepared($prepared).await;
        let _: Result<Offered, _> = ws.offer($prepared, 1024, WhenFull::Drop);
        let _: Result<Offered, _> =
            ws.offer_many(core::slice::from_ref($prepared), 1024, WhenFull::Drop);
        let _ = ws.ping(b"x").await;
        let _ = ws.close(CloseCode::NORMAL, "bye").await;
        let _ = ws.flush().await;
        let _ = ws.for_each_message(|_, _| Ok(())).await;
        let _ = (ws.closed(), ws.protocol(), ws.connection());
    }};
}

/// The shared async loop: every command, whatever the transport; and its
/// halves: the reading one receives, the writing one lends the whole
/// WebSocket for every command.
async fn socket<T: Transport, C: Clock>(
    mut ws: rfc6455::socket::WebSocket<T, C>,
    prepared: &PreparedMessage,
) {
    async_commands!(&mut ws, prepared);
    let (mut read, write) = ws.split();
    let _ = read.recv().await;
    let _ = read.recv_event().await;
    async_commands!(&mut *write.lock().await, prepared);
    stream_sink(read.into_stream(), write.into_sink());
}

/// `Stream` + `Sink` on the shared loop: the halves, and one value that
/// is both.
fn stream_sink<E>(
    _: impl futures_util::Stream<Item = Result<Message, E>>,
    _: impl futures_util::Sink<Message, Error = E>,
) {
}

fn stream_sink_whole<T: Transport, C: Clock>(ws: rfc6455::socket::WebSocket<T, C>) {
    let both = ws.into_stream_sink();
    let (sink, stream) = futures_util::StreamExt::split(both);
    stream_sink(stream, sink);
}

/// The HTTP/2 driver's `Stream` and `Sink` can move to another thread
/// (tokio's `spawn`), as its WebSocket can.
fn http2_stream_sink_is_send(ws: rfc6455::http2::WebSocket) {
    fn send<X: Send>(_: X) {}
    let (read, write) = ws.split();
    send(read.into_stream());
    send(write.into_sink());
}

/// The embedded, compio and HTTP/2 drivers are the shared loop: each of
/// their WebSockets is a `socket::WebSocket`, so it has every command
/// above.
fn embedded<S: embedded_io_async::Read + embedded_io_async::Write, C: Clock>(
    ws: rfc6455::embedded::WebSocket<S, C>,
) -> rfc6455::socket::WebSocket<rfc6455::embedded::Io<S>, C> {
    ws
}

fn compio(
    ws: rfc6455::compio::WebSocket<compio::net::TcpStream>,
) -> rfc6455::socket::WebSocket<
    rfc6455::compio::Io<compio::net::TcpStream>,
    rfc6455::compio::CompioClock,
> {
    ws
}

fn http2(
    ws: rfc6455::http2::WebSocket,
) -> rfc6455::socket::WebSocket<rfc6455::http2::Io, rfc6455::http2::TokioClock> {
    ws
}

fn http3(
    ws: rfc6455::http3::WebSocket,
) -> rfc6455::socket::WebSocket<rfc6455::http3::Io, rfc6455::http3::TokioClock> {
    ws
}

/// The tokio driver's own WebSocket, and its halves.
async fn tokio(
    mut ws: rfc6455::tokio::WebSocket<tokio::io::DuplexStream>,
    prepared: &PreparedMessage,
) {
    async_commands!(&mut ws, prepared);
    let (mut read, mut write) = ws.split();
    let _ = read.recv().await;
    let _ = write.send(&Message::from("x")).await;
    let _ = write.offer(prepared, 1024, WhenFull::Drop);
}

/// The blocking driver: the same commands, without `.await`.
fn blocking(
    ws: &mut rfc6455::blocking::WebSocket<std::net::TcpStream>,
    prepared: &PreparedMessage,
) {
    let _ = ws.recv();
    let _ = ws.recv_event();
    let _ = ws.send(&Message::from("x"));
    let _ = ws.send_text("x");
    let _ = ws.send_binary(b"x");
    let _ = ws.send_fragmented(MessageKind::Text, b"xy", 1);
    let _ = ws.send_prepared(prepared);
    let _ = ws.send_owned(MessageKind::Binary, BytesMut::from(&b"x"[..]));
    let _ = ws.queue(&Message::from("x"));
    let _ = ws.queue_prepared(prepared);
    let _: Result<Offered, _> = ws.offer(prepared, 1024, WhenFull::Drop);
    let _: Result<Offered, _> =
        ws.offer_many(core::slice::from_ref(prepared), 1024, WhenFull::Drop);
    let _ = ws.ping(b"x");
    let _ = ws.close(CloseCode::NORMAL, "bye");
    let _ = ws.flush();
    let _ = rfc6455::blocking::block_on(Driver::for_each_message(ws, |_, _| Ok(())));
    let _ = (ws.closed(), ws.protocol(), ws.connection());
}

/// Every driver's WebSocket is a [`Driver`]: code written once runs on
/// each (the blocking one's futures through `blocking::block_on`).
fn generic<W: Driver>() {}
fn every_driver_is_a_driver<
    S: embedded_io_async::Read + embedded_io_async::Write,
    C: Clock,
    R: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
>() {
    generic::<rfc6455::blocking::WebSocket<std::net::TcpStream>>();
    generic::<rfc6455::tokio::WebSocket<R>>();
    generic::<rfc6455::compio::WebSocket<compio::net::TcpStream>>();
    generic::<rfc6455::embedded::WebSocket<S, C>>();
    generic::<rfc6455::http2::WebSocket>();
    generic::<rfc6455::http3::WebSocket>();
}

/// The handshake entry points and constructors, by their signatures.
fn entry_points() {
    use rfc6455::handshake::ClientRequest;
    use rfc6455::Config;
    let _ = rfc6455::blocking::accept::<std::net::TcpStream>;
    let _ = rfc6455::blocking::accept_with::<std::net::TcpStream, fn(&_) -> _>;
    let _ = rfc6455::blocking::client::<std::net::TcpStream>;
    let _ = rfc6455::blocking::client_with::<std::net::TcpStream>;
    let _ = rfc6455::blocking::connect;
    let _ = rfc6455::blocking::WebSocket::<std::net::TcpStream>::from_connection;
    let _ = rfc6455::tokio::accept::<tokio::io::DuplexStream>;
    let _ = rfc6455::tokio::client::<tokio::io::DuplexStream>;
    let _ = rfc6455::tokio::client_with::<tokio::io::DuplexStream>;
    let _ = rfc6455::tokio::connect;
    let _ = rfc6455::tokio::WebSocket::<tokio::io::DuplexStream>::from_connection;
    let _ = rfc6455::compio::accept::<compio::net::TcpStream>;
    let _ = rfc6455::compio::client::<compio::net::TcpStream>;
    let _ = rfc6455::compio::client_with::<compio::net::TcpStream>;
    let _ = rfc6455::compio::connect;
    let _ = rfc6455::compio::WebSocket::<compio::net::TcpStream>::from_connection;
    let _ = |stream: tokio::io::DuplexStream, request: ClientRequest| async move {
        let stream = embedded_io_adapters::tokio_1::FromTokio::new(stream);
        rfc6455::embedded::client(stream, NoClock, &request, Config::default()).await
    };
    let _ = rfc6455::embedded::accept::<
        embedded_io_adapters::tokio_1::FromTokio<tokio::io::DuplexStream>,
        NoClock,
    >;
    let _ = rfc6455::embedded::WebSocket::<
        embedded_io_adapters::tokio_1::FromTokio<tokio::io::DuplexStream>,
        NoClock,
    >::from_connection;
    let _ = rfc6455::http2::Client::websocket;
    let _ = rfc6455::http2::Incoming::accept;
    let _ = rfc6455::http3::Client::websocket;
    let _ = rfc6455::http3::Incoming::accept;
}

/// A clock for the signatures above.
struct NoClock;

impl Clock for NoClock {
    fn now(&self) -> rfc6455::Timestamp {
        rfc6455::Timestamp::from_millis(0)
    }
    async fn sleep_until(&self, _: rfc6455::Timestamp) {}
}

/// The drivers, in the README's order.
const DRIVERS: [&str; 6] = ["blocking", "tokio", "compio", "embedded", "http2", "http3"];

/// The README's table: a row per capability, a cell per driver; "yes"
/// (with the names it goes by, if they differ) or "no: " and why.
const TABLE: &[(&str, [&str; 6])] = &[
    (
        "server: `accept`, `accept_with`",
        [
            "yes",
            "yes",
            "yes",
            "yes",
            "yes (`Incoming::accept` in `serve_connection`)",
            "yes (`Incoming::accept` in `serve_connection`)",
        ],
    ),
    (
        "client on an open stream",
        [
            "yes (`client`, `client_with`)",
            "yes (`client`, `client_with`)",
            "yes (`client`, `client_with`)",
            "yes (`client`)",
            "yes (`Client::websocket`)",
            "yes (`Client::websocket`)",
        ],
    ),
    (
        "dial a URL: `connect`",
        [
            "yes",
            "yes",
            "yes (`ws://`)",
            "no: no sockets without std; the embedder's network stack opens them",
            "no: `Client::handshake` over a connection you open",
            "no: `Client::handshake` over a QUIC connection you open",
        ],
    ),
    (
        "`wss://` and proxies in `connect`",
        [
            "yes",
            "yes",
            "no: compio has no TLS stream here; use tokio",
            "no: pass a TLS stream",
            "no: pass a TLS stream",
            "no: QUIC has its own TLS (`http3::client_config`)",
        ],
    ),
    ("`recv`, `recv_event`", ["yes"; 6]),
    (
        "`send`, `send_text`, `send_binary`, `send_fragmented`",
        ["yes"; 6],
    ),
    ("`send_prepared`, `send_owned`", ["yes"; 6]),
    ("`queue`, `queue_prepared`", ["yes"; 6]),
    ("`offer`, `offer_many` (slow consumers)", ["yes"; 6]),
    ("`ping`, `close`, `flush`", ["yes"; 6]),
    (
        "`for_each_message` (each message lent to a closure)",
        [
            "yes (through `blocking::block_on`)",
            "yes, decoded where it was read: no copy, no reference count",
            "yes",
            "yes",
            "yes",
            "yes",
        ],
    ),
    (
        "the `Driver` trait (code generic over drivers)",
        [
            "yes (its futures through `blocking::block_on`)",
            "yes",
            "yes",
            "yes",
            "yes",
            "yes",
        ],
    ),
    (
        "`from_connection` (after your own handshake)",
        [
            "yes",
            "yes",
            "yes",
            "yes",
            "no: the stream comes from h2's handshake",
            "no: the stream comes from the extended CONNECT",
        ],
    ),
    (
        "split halves for two tasks",
        [
            "no: one thread owns a blocking stream",
            "yes (`split`)",
            "yes (`split`; the writing half's `lock`)",
            "yes (`split`, with `std`; the writing half's `lock`)",
            "yes (`split`; the writing half's `lock`)",
            "yes (`split`; the writing half's `lock`)",
        ],
    ),
    (
        "`Stream` + `Sink`",
        [
            "no: not async",
            "yes",
            "yes (`into_stream_sink`; the halves' `into_stream`, `into_sink`)",
            "yes (with `std` and `futures`: `into_stream_sink`; the halves' `into_stream`, `into_sink`)",
            "yes (`into_stream_sink`; the halves' `into_stream`, `into_sink`)",
            "yes (`into_stream_sink`; the halves' `into_stream`, `into_sink`)",
        ],
    ),
];

/// The table between the README's markers, as rows of cells.
fn readme_table() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find("<!-- driver table")
        .expect("the README marks its driver table");
    let end = readme[start..]
        .find("<!-- end of driver table -->")
        .expect("the README marks the table's end")
        + start;
    readme[start..end]
        .lines()
        .filter(|line| line.starts_with('|'))
        .map(|line| {
            line.trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn the_readme_table_is_the_drivers_table() {
    let rows = readme_table();
    let mut header = vec![String::new()];
    header.extend(DRIVERS.iter().map(|d| d.to_string()));
    assert_eq!(rows[0], header, "the README's columns");
    let body: Vec<_> = rows[2..].to_vec();
    let want: Vec<Vec<String>> = TABLE
        .iter()
        .map(|(row, cells)| {
            let mut r = vec![row.to_string()];
            r.extend(cells.iter().map(|c| c.to_string()));
            r
        })
        .collect();
    assert_eq!(body, want, "the README's driver table against the code's");
}

#[test]
fn every_gap_says_why() {
    for (row, cells) in TABLE {
        for (driver, cell) in DRIVERS.iter().zip(cells) {
            assert!(
                cell.starts_with("yes") || (cell.starts_with("no: ") && cell.len() > 4),
                "{row} / {driver}: {cell:?} is neither yes nor a reason"
            );
        }
    }
}
