//! Driver conformance: one table of cases, run through every driver
//! (blocking, tokio, embedded-io-async over tokio's traits, compio,
//! HTTP/2 on h2 and HTTP/3 on quinn), each as a server against the same
//! peer: the sans-IO core as a client, moving its bytes over the
//! transport the driver's cell sets up (loopback TCP for blocking and
//! compio, `tokio::io::duplex` for tokio and embedded, an h2 connection
//! over a duplex for HTTP/2, a QUIC connection over loopback UDP for
//! HTTP/3).
//!
//! The drivers share one output rule and one set of commands (see
//! `rfc6455::socket`), so every row must come out the same on each: the
//! messages each side saw (kind, length and a digest of the bytes), the
//! events in order, the results of `offer`, how many bytes wait unsent
//! after a command, the `Closed` record (who, which codes, which error),
//! what `recv` returned, and the server's frames as the peer read them
//! off the wire. Nothing is asserted about time: the timer rows run with
//! real timeouts of a few hundred milliseconds on every driver. (tokio's
//! paused clock would suit the drivers that sleep on tokio, but it needs
//! tokio's `test-util` feature, which the dev-dependency does not enable.)
//!
//! The server side is written once, over [`rfc6455::Driver`] (the
//! commands every driver's WebSocket has); the peer side once, over [`Pipe`] (a byte
//! stream). Each driver's test only builds the transport and the
//! handshake, then runs the whole table and reports every row that
//! differs. A cell that fails is a finding: it is listed in [`FINDINGS`],
//! left out of its driver's test and run, strictly, by that driver's
//! ignored `*_findings` test (`cargo test --test drivers -- --ignored`).
#![cfg(all(feature = "tokio", feature = "blocking"))]

mod common;
#[cfg(feature = "http3")]
#[path = "common/tls.rs"]
mod tls;
#[cfg(feature = "embedded-io-async")]
#[path = "common/tokio_clock.rs"]
mod tokio_clock;

use rfc6455::Driver;
use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::FutureExt;
use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, Progress};
use rfc6455::socket::{Offered, WhenFull};
use rfc6455::{
    CloseCode, Closed, Config, Connection, Event, Initiator, Message, MessageKind, PreparedMessage,
    ProtocolError, Role,
};

use common::{client_frame, decode_frames, BINARY, CLOSE, CONTINUATION, PONG, TEXT};

// ----- the table -----

/// What a row does; [`serve`] and [`play`] act it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    /// Each message kind: the peer sends it, the server echoes it with the
    /// command of the same name.
    Text,
    Binary,
    Empty,
    Large,
    Fragmented,
    Prepared,
    Owned,
    /// The server answers with `queue` and `queue_prepared`, then `flush`.
    QueueThenFlush,
    /// The peer sends a burst (text, a Ping, a fragmented message, 1 MiB
    /// cut across reads, a short binary message); the server echoes each
    /// message from `for_each_message`'s closure.
    Each,
    /// The peer pings; the server's `recv` sends the Pong.
    AutoPong,
    /// The peer closes with a code and a reason.
    PeerCloses,
    /// The server closes with 1000.
    ServerCloses,
    /// The peer sends a frame with a reserved opcode.
    BadOpcode,
    /// The peer sends a text frame that is not UTF-8.
    BadUtf8,
    /// `offer` with a small backlog and `WhenFull::Drop`.
    OfferDrop,
    /// `offer_many` with a small backlog and `WhenFull::Close(1013, ..)`.
    OfferClose,
    /// The server closes; the peer reads but never answers.
    CloseTimesOut,
    /// The peer says nothing; the server's idle timeout closes.
    Idle,
    /// The server watches a shutdown, begun (1012) from another thread
    /// while its `recv` waits for the peer.
    Shutdown,
    /// The server watches a shutdown already begun (1012) when it
    /// accepted.
    ShutdownBegun,
}

/// What one side saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    /// A message: its kind, length and digest ([`msg`]).
    Message(MessageKind, usize, u64),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// What `offer` or `offer_many` returned.
    Offered(Offered),
    /// The bytes queued and not yet taken by the transport, after a
    /// command (`send_*` write before they return; `queue_*` and `offer*`
    /// do not).
    Unsent(usize),
    /// The end: who started it, the code we sent, the frame we got, the
    /// peer's fault.
    Closed {
        by: Initiator,
        sent: Option<u16>,
        got: Option<(u16, String)>,
        error: Option<ProtocolError>,
    },
    /// What `recv` returned at the end: `Ok(None)`, or the error.
    Recv(Result<(), Failure>),
    /// The WebSockets a shutdown counted open.
    Open(usize),
}

/// A driver's error, in the terms the table compares.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Failure {
    Protocol(ProtocolError),
    Timeout,
    Other(String),
}

/// A frame the server sent, as the peer read it: FIN, opcode, length.
type Frame = (bool, u8, usize);

/// One row: a case, and what the server and the peer must see.
struct Row {
    name: &'static str,
    case: Case,
    server: Vec<Seen>,
    peer: Vec<Seen>,
    frames: Vec<Frame>,
}

const TEXT_MSG: &str = "héllo, wörld";
const BINARY_MSG: &[u8] = &[0, 1, 2, 0x7f, 0x80, 0xfe, 0xff];
const FRAGMENTED: &str = "split into three frames";
const FRAGMENT_SIZE: usize = 8;
const PREPARED: &str = "prepared once, sent anywhere";
const QUEUED: &str = "queue me";
const QUEUED_TOO: &str = "and me";
const PING: &[u8] = b"are you there?";
const PEER_REASON: &str = "done, thanks";
const SHUTDOWN_REASON: &str = "restarting";
/// The prepared message `offer` is given: 600 bytes, 604 on the wire.
const OFFERED: usize = 600;
/// The backlog `offer` allows: one message fits under it, two do not.
const BACKLOG: usize = 1000;

/// 1 MiB.
fn large() -> Vec<u8> {
    (0..1usize << 20).map(|i| (i * 31 % 251) as u8).collect()
}

/// Large enough that the server sends it without copying.
fn owned() -> Vec<u8> {
    (0..70_000usize).map(|i| (i % 253) as u8).collect()
}

fn offered() -> PreparedMessage {
    PreparedMessage::binary(vec![0x5a; OFFERED])
}

/// A message as the table records it: kind, length, FNV-1a of the bytes.
fn msg(kind: MessageKind, bytes: &[u8]) -> Seen {
    let digest = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Seen::Message(kind, bytes.len(), digest)
}

fn text(s: &str) -> Seen {
    msg(MessageKind::Text, s.as_bytes())
}

fn binary(b: &[u8]) -> Seen {
    msg(MessageKind::Binary, b)
}

fn closed(
    by: Initiator,
    sent: u16,
    got: Option<(u16, &str)>,
    error: Option<ProtocolError>,
) -> Seen {
    Seen::Closed {
        by,
        sent: Some(sent),
        got: got.map(|(code, reason)| (code, reason.to_string())),
        error,
    }
}

/// The peer closes with 1000 after its echo; the server saw this.
fn peer_closed_normally() -> Vec<Seen> {
    vec![
        closed(Initiator::Remote, 1000, Some((1000, "done")), None),
        Seen::Recv(Ok(())),
    ]
}

/// ... and the peer this.
fn closed_by_peer() -> Seen {
    closed(Initiator::Local, 1000, Some((1000, "")), None)
}

/// The table. Every row runs through every driver.
fn table() -> Vec<Row> {
    use Initiator::{Local, Remote};
    let close = |reason: &str| (true, CLOSE, 2 + reason.len());
    // A message row: the peer sends `sent`, the server echoes it.
    let echo = |name, case, sent: Seen, frames: Vec<Frame>| {
        let mut server = vec![sent.clone(), Seen::Unsent(0)];
        server.extend(peer_closed_normally());
        let mut frames = frames;
        frames.push(close(""));
        Row {
            name,
            case,
            server,
            peer: vec![sent, closed_by_peer()],
            frames,
        }
    };
    let large = large();
    let owned = owned();
    let bad_utf8 = ProtocolError::InvalidUtf8;
    let bad_opcode = ProtocolError::ReservedOpcode(3);
    vec![
        echo(
            "text both ways (send_text)",
            Case::Text,
            text(TEXT_MSG),
            vec![(true, TEXT, TEXT_MSG.len())],
        ),
        echo(
            "binary both ways (send_binary)",
            Case::Binary,
            binary(BINARY_MSG),
            vec![(true, BINARY, BINARY_MSG.len())],
        ),
        echo(
            "an empty text message both ways (send)",
            Case::Empty,
            text(""),
            vec![(true, TEXT, 0)],
        ),
        echo(
            "1 MiB both ways (send_binary)",
            Case::Large,
            binary(&large),
            vec![(true, BINARY, large.len())],
        ),
        echo(
            "a fragmented message both ways (send_fragmented)",
            Case::Fragmented,
            text(FRAGMENTED),
            vec![
                (false, TEXT, 8),
                (false, CONTINUATION, 8),
                (true, CONTINUATION, 7),
            ],
        ),
        echo(
            "a prepared message both ways (send_prepared)",
            Case::Prepared,
            text(PREPARED),
            vec![(true, TEXT, PREPARED.len())],
        ),
        echo(
            "an owned buffer both ways (send_owned)",
            Case::Owned,
            binary(&owned),
            vec![(true, BINARY, owned.len())],
        ),
        Row {
            name: "queue and queue_prepared write nothing; flush writes both",
            case: Case::QueueThenFlush,
            server: [
                vec![
                    text(QUEUED),
                    Seen::Unsent(2 + QUEUED.len() + 2 + QUEUED_TOO.len()),
                    Seen::Unsent(0),
                ],
                peer_closed_normally(),
            ]
            .concat(),
            peer: vec![text(QUEUED), text(QUEUED_TOO), closed_by_peer()],
            frames: vec![
                (true, TEXT, QUEUED.len()),
                (true, TEXT, QUEUED_TOO.len()),
                close(""),
            ],
        },
        Row {
            name: "for_each_message lends every message of a burst, in order",
            case: Case::Each,
            server: [
                vec![
                    text(TEXT_MSG),
                    text(FRAGMENTED),
                    binary(&large),
                    binary(BINARY_MSG),
                    Seen::Recv(Ok(())),
                ],
                // `recv` after the end, and `closed()`.
                vec![
                    Seen::Recv(Ok(())),
                    closed(Remote, 1000, Some((1000, "done")), None),
                ],
            ]
            .concat(),
            peer: vec![
                text(TEXT_MSG),
                Seen::Pong(PING.to_vec()),
                text(FRAGMENTED),
                binary(&large),
                binary(BINARY_MSG),
                closed_by_peer(),
            ],
            frames: vec![
                (true, TEXT, TEXT_MSG.len()),
                (true, PONG, PING.len()),
                (true, TEXT, FRAGMENTED.len()),
                (true, BINARY, large.len()),
                (true, BINARY, BINARY_MSG.len()),
                close(""),
            ],
        },
        Row {
            name: "a Ping is answered by recv with its payload",
            case: Case::AutoPong,
            server: [vec![Seen::Ping(PING.to_vec())], peer_closed_normally()].concat(),
            peer: vec![Seen::Pong(PING.to_vec()), closed_by_peer()],
            frames: vec![(true, PONG, PING.len()), close("")],
        },
        Row {
            name: "the peer closes with 4000 and a reason; the server echoes the code",
            case: Case::PeerCloses,
            server: vec![
                closed(Remote, 4000, Some((4000, PEER_REASON)), None),
                Seen::Recv(Ok(())),
            ],
            peer: vec![closed(Local, 4000, Some((4000, "")), None)],
            frames: vec![close("")],
        },
        Row {
            name: "the server closes with 1000",
            case: Case::ServerCloses,
            server: vec![
                Seen::Unsent(0),
                Seen::Recv(Ok(())),
                closed(Local, 1000, Some((1000, "")), None),
            ],
            peer: vec![closed(Remote, 1000, Some((1000, "bye")), None)],
            frames: vec![close("bye")],
        },
        Row {
            name: "a reserved opcode: recv fails, Close 1002",
            case: Case::BadOpcode,
            server: vec![
                Seen::Recv(Err(Failure::Protocol(bad_opcode.clone()))),
                closed(Local, 1002, None, Some(bad_opcode)),
            ],
            peer: vec![closed(Remote, 1002, Some((1002, "reserved opcode")), None)],
            frames: vec![close("reserved opcode")],
        },
        Row {
            name: "invalid UTF-8: recv fails, Close 1007",
            case: Case::BadUtf8,
            server: vec![
                Seen::Recv(Err(Failure::Protocol(bad_utf8.clone()))),
                closed(Local, 1007, None, Some(bad_utf8)),
            ],
            peer: vec![closed(
                Remote,
                1007,
                Some((1007, "text is not valid UTF-8")),
                None,
            )],
            frames: vec![close("text is not valid UTF-8")],
        },
        Row {
            name: "offer over the backlog with WhenFull::Drop drops",
            case: Case::OfferDrop,
            server: [
                vec![
                    Seen::Offered(Offered::Queued),
                    Seen::Offered(Offered::Queued),
                    Seen::Offered(Offered::Dropped),
                    Seen::Unsent(2 * (4 + OFFERED)),
                ],
                peer_closed_normally(),
            ]
            .concat(),
            peer: vec![
                binary(&[0x5a; OFFERED]),
                binary(&[0x5a; OFFERED]),
                closed_by_peer(),
            ],
            frames: vec![(true, BINARY, OFFERED), (true, BINARY, OFFERED), close("")],
        },
        Row {
            name: "offer over the backlog with WhenFull::Close(1013) closes",
            case: Case::OfferClose,
            server: vec![
                Seen::Offered(Offered::Closing),
                Seen::Offered(Offered::Closed),
                Seen::Unsent(2 * (4 + OFFERED) + 2 + 2 + "slow".len()),
                closed(Local, 1013, Some((1013, "")), None),
                Seen::Recv(Ok(())),
            ],
            peer: vec![
                binary(&[0x5a; OFFERED]),
                binary(&[0x5a; OFFERED]),
                closed(Remote, 1013, Some((1013, "slow")), None),
            ],
            frames: vec![
                (true, BINARY, OFFERED),
                (true, BINARY, OFFERED),
                close("slow"),
            ],
        },
        Row {
            name: "an unanswered Close times out",
            case: Case::CloseTimesOut,
            server: vec![
                Seen::Unsent(0),
                Seen::Recv(Err(Failure::Timeout)),
                closed(Local, 1000, None, Some(ProtocolError::Timeout)),
            ],
            // The peer reads the bytes but never hands them to its core.
            peer: vec![],
            frames: vec![close("bye")],
        },
        Row {
            name: "a silent peer is closed with 1001 (idle)",
            case: Case::Idle,
            server: vec![
                Seen::Recv(Ok(())),
                closed(Local, 1001, Some((1001, "")), None),
            ],
            peer: vec![closed(Remote, 1001, Some((1001, "idle timeout")), None)],
            frames: vec![close("idle timeout")],
        },
        shutdown(
            "a shutdown while recv waits: Close 1012, the handshake ends, none open",
            Case::Shutdown,
        ),
        shutdown(
            "a shutdown begun before the WebSocket watched it: Close 1012 at once",
            Case::ShutdownBegun,
        ),
    ]
}

/// A shutdown row: whenever the signal comes, the server closes with
/// 1012, the peer answers, and the WebSocket stops counting as open once
/// dropped.
fn shutdown(name: &'static str, case: Case) -> Row {
    use Initiator::{Local, Remote};
    Row {
        name,
        case,
        server: vec![
            Seen::Open(1),
            Seen::Recv(Ok(())),
            closed(Local, 1012, Some((1012, "")), None),
            Seen::Open(0),
        ],
        peer: vec![closed(Remote, 1012, Some((1012, SHUTDOWN_REASON)), None)],
        frames: vec![(true, CLOSE, 2 + SHUTDOWN_REASON.len())],
    }
}

/// The cells of the table that fail, a finding each: left out of their
/// driver's test, and run (strictly, as every cell) by its ignored
/// `*_findings` test, so `cargo test -- --ignored` shows them.
const FINDINGS: &[(&str, Case, &str)] = &[];

/// The rows `driver` runs: those that pass, or only its findings.
fn rows(driver: &str, findings: bool) -> Vec<Row> {
    let is_finding = |case: Case| {
        FINDINGS
            .iter()
            .any(|&(on, found, _)| on == driver && found == case)
    };
    table()
        .into_iter()
        .filter(|row| is_finding(row.case) == findings)
        .collect()
}

/// The server's configuration for a case: the timer rows get short
/// timeouts; the others keep the defaults (no idle timeout, 5 s to close).
fn config(case: Case) -> Config {
    let mut config = Config::default();
    let (close, idle) = (Duration::from_millis(200), Duration::from_millis(200));
    match case {
        Case::CloseTimesOut => config.timeouts.close = Some(close),
        Case::Idle => {
            config.timeouts.close = Some(close);
            config.timeouts.idle = Some(idle);
        }
        _ => {}
    }
    config
}

// ----- the server side, written once -----

/// A driver's error as the table compares it.
trait Failing: Debug {
    fn failure(&self) -> Failure;
}

/// The error of the blocking, tokio, compio and HTTP/2 drivers.
impl Failing for rfc6455::tokio::Error {
    fn failure(&self) -> Failure {
        match self {
            rfc6455::tokio::Error::Protocol(e) => Failure::Protocol(e.clone()),
            rfc6455::tokio::Error::Timeout(_) => Failure::Timeout,
            other => Failure::Other(format!("{other:?}")),
        }
    }
}

#[cfg(feature = "embedded-io-async")]
impl<E: Debug> Failing for rfc6455::embedded::Error<E> {
    fn failure(&self) -> Failure {
        match self {
            rfc6455::embedded::Error::Protocol(e) => Failure::Protocol(e.clone()),
            rfc6455::embedded::Error::Timeout(_) => Failure::Timeout,
            other => Failure::Other(format!("{other:?}")),
        }
    }
}

fn seen_closed(closed: &Closed) -> Seen {
    Seen::Closed {
        by: closed.initiator,
        sent: closed.sent.as_ref().map(|f| f.code.0),
        got: closed
            .received
            .as_ref()
            .map(|f| (f.code.0, f.reason.clone())),
        error: closed.error.clone(),
    }
}

fn seen_event(event: &Event) -> Seen {
    match event {
        Event::Message(m) => msg(m.kind(), m.as_bytes()),
        Event::Ping(p) => Seen::Ping(p.to_vec()),
        Event::Pong(p) => Seen::Pong(p.to_vec()),
        Event::Closed(c) => seen_closed(c),
        Event::Fragment(f) => panic!("a fragment without streaming: {f:?}"),
    }
}

/// The server's side of a row, on any driver. Takes the WebSocket, so it
/// is dropped (and its transport with it) when the row is done.
async fn serve<W: Driver>(case: Case, mut ws: W) -> Vec<Seen>
where
    W::Error: Failing,
{
    assert_eq!(ws.protocol(), None);
    assert_eq!(ws.connection().role(), Role::Server);
    let mut seen = Vec::new();
    let unsent = |ws: &W| Seen::Unsent(ws.connection().pending_output_len());
    let shutdown = rfc6455::Shutdown::new();
    let by_events = match case {
        Case::Text
        | Case::Binary
        | Case::Empty
        | Case::Large
        | Case::Fragmented
        | Case::Prepared
        | Case::Owned
        | Case::QueueThenFlush => {
            let event = ws.recv_event().await.expect("the peer's message");
            seen.push(seen_event(&event));
            let Event::Message(m) = event else {
                return seen;
            };
            let sent = match case {
                Case::Text => ws.send_text(m.as_text().expect("text")).await,
                Case::Binary | Case::Large => ws.send_binary(m.as_bytes()).await,
                Case::Empty => ws.send(&m).await,
                Case::Fragmented => {
                    ws.send_fragmented(m.kind(), m.as_bytes(), FRAGMENT_SIZE)
                        .await
                }
                Case::Prepared => ws.send_prepared(&PreparedMessage::new(&m)).await,
                Case::Owned => ws.send_owned(m.kind(), BytesMut::from(m.as_bytes())).await,
                _ => {
                    ws.queue(&m).await.expect("queue");
                    let too = PreparedMessage::text(QUEUED_TOO);
                    ws.queue_prepared(&too).await.expect("queue_prepared");
                    seen.push(unsent(&ws));
                    ws.flush().await
                }
            };
            sent.expect("the echo");
            seen.push(unsent(&ws));
            true
        }
        Case::Each => {
            let mut lent = Vec::new();
            let ended = ws
                .for_each_message(|m, conn| {
                    lent.push(msg(m.kind(), m.as_bytes()));
                    conn.send_data(m.kind(), m.as_bytes())
                })
                .await;
            seen.extend(lent);
            seen.push(Seen::Recv(ended.map_err(|e| e.failure())));
            false
        }
        Case::AutoPong | Case::PeerCloses => true,
        Case::ServerCloses | Case::CloseTimesOut => {
            ws.close(CloseCode::NORMAL, "bye").await.expect("close");
            seen.push(unsent(&ws));
            false
        }
        Case::BadOpcode | Case::BadUtf8 | Case::Idle => false,
        Case::Shutdown => {
            ws.watch(&shutdown);
            let signal = shutdown.clone();
            std::thread::spawn(move || {
                // After the server's recv is waiting for the peer (no
                // harm if not: the signal is heeded either way).
                std::thread::sleep(Duration::from_millis(50));
                signal.begin(CloseCode::SERVICE_RESTART, SHUTDOWN_REASON);
            });
            seen.push(Seen::Open(shutdown.open()));
            false
        }
        Case::ShutdownBegun => {
            shutdown.begin(CloseCode::SERVICE_RESTART, SHUTDOWN_REASON);
            ws.watch(&shutdown);
            seen.push(Seen::Open(shutdown.open()));
            false
        }
        Case::OfferDrop => {
            // The peer reads nothing meanwhile: offer never writes.
            for _ in 0..3 {
                let offered = ws.offer(&offered(), BACKLOG, WhenFull::Drop);
                seen.push(Seen::Offered(offered.expect("offer")));
            }
            seen.push(unsent(&ws));
            true
        }
        Case::OfferClose => {
            let full = WhenFull::Close(CloseCode::TRY_AGAIN_LATER, "slow");
            let three = [offered(), offered(), offered()];
            let offered_many = ws.offer_many(&three, BACKLOG, full);
            seen.push(Seen::Offered(offered_many.expect("offer_many")));
            let offered = ws.offer(&offered(), BACKLOG, full);
            seen.push(Seen::Offered(offered.expect("offer")));
            seen.push(unsent(&ws));
            true
        }
    };
    if by_events {
        // Every event up to Closed, then what `recv` makes of the end.
        loop {
            match ws.recv_event().await {
                Ok(event) => {
                    seen.push(seen_event(&event));
                    if let Event::Closed(closed) = event {
                        assert_eq!(ws.closed(), Some(&*closed), "closed()");
                        break;
                    }
                }
                Err(e) => {
                    seen.push(Seen::Recv(Err(e.failure())));
                    return seen;
                }
            }
        }
        seen.push(recv_end(&mut ws).await);
    } else {
        // `recv` until the end, then how it ended.
        loop {
            match ws.recv().await {
                Ok(Some(m)) => seen.push(msg(m.kind(), m.as_bytes())),
                Ok(None) => {
                    seen.push(Seen::Recv(Ok(())));
                    break;
                }
                Err(e) => {
                    seen.push(Seen::Recv(Err(e.failure())));
                    break;
                }
            }
        }
        seen.push(match ws.closed() {
            Some(closed) => seen_closed(closed),
            None => Seen::Recv(Err(Failure::Other("closed() is None at the end".into()))),
        });
    }
    if matches!(case, Case::Shutdown | Case::ShutdownBegun) {
        drop(ws);
        seen.push(Seen::Open(shutdown.open()));
    }
    seen
}

/// What `recv` returns once the connection has ended.
async fn recv_end<W: Driver>(ws: &mut W) -> Seen
where
    W::Error: Failing,
{
    match ws.recv().await {
        Ok(None) => Seen::Recv(Ok(())),
        Ok(Some(m)) => msg(m.kind(), m.as_bytes()),
        Err(e) => Seen::Recv(Err(e.failure())),
    }
}

// ----- the peer, written once -----

/// A byte stream the peer reads and writes.
#[allow(async_fn_in_trait)]
trait Pipe {
    /// What arrived next; `None` at the end (or a reset).
    async fn read(&mut self) -> Option<Vec<u8>>;
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Ends our sending side.
    async fn shutdown(&mut self);
}

/// The bound on a wait of the peer: longer is a hang.
const LIMIT: Duration = Duration::from_secs(20);

/// A blocking socket (the blocking and compio rows): the futures are
/// ready at once.
impl Pipe for std::net::TcpStream {
    async fn read(&mut self) -> Option<Vec<u8>> {
        let mut buf = vec![0; 64 * 1024];
        match io::Read::read(self, &mut buf) {
            Ok(0) => None,
            Ok(n) => Some(buf[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("peer: read failed (hung for {LIMIT:?}?): {e}"),
        }
    }
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        io::Write::write_all(self, bytes)
    }
    async fn shutdown(&mut self) {
        let _ = std::net::TcpStream::shutdown(self, std::net::Shutdown::Write);
    }
}

impl Pipe for tokio::io::DuplexStream {
    async fn read(&mut self) -> Option<Vec<u8>> {
        let mut buf = vec![0; 64 * 1024];
        match tokio::io::AsyncReadExt::read(self, &mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(buf[..n].to_vec()),
        }
    }
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        tokio::io::AsyncWriteExt::write_all(self, bytes).await
    }
    async fn shutdown(&mut self) {
        let _ = tokio::io::AsyncWriteExt::shutdown(self).await;
    }
}

/// The peer: the sans-IO core as a client, and every byte the server
/// sent it.
struct Peer<P> {
    io: P,
    conn: Connection,
    wire: Vec<u8>,
    /// Where the frames start in `wire` (after a 101 response's head).
    head: usize,
    /// The core handed out `Closed`: writes may fail from now on.
    closed: bool,
}

impl<P: Pipe> Peer<P> {
    /// The opening handshake over HTTP/1.1.
    async fn handshake(mut io: P) -> Peer<P> {
        let request = ClientRequest::new("localhost", "/");
        let mut handshake = ClientHandshake::new(&request, Config::default());
        io.write_all(handshake.request())
            .await
            .expect("peer: the request");
        let mut wire = Vec::new();
        loop {
            let bytes = io.read().await.expect("peer: the response");
            wire.extend_from_slice(&bytes);
            handshake = match handshake.handle_read(&bytes).expect("peer: a 101") {
                Progress::Partial(handshake) => handshake,
                Progress::Done(connected) => {
                    let head = wire
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .expect("a head")
                        + 4;
                    return Peer {
                        io,
                        conn: connected.connection,
                        wire,
                        head,
                        closed: false,
                    };
                }
            }
        }
    }

    async fn flush(&mut self) {
        while self.conn.pending_output_len() > 0 {
            let out = self.conn.pending_output().to_vec();
            let written = self.io.write_all(&out).await;
            if let Err(e) = written {
                assert!(self.closed, "peer: a write failed before the end: {e}");
                return;
            }
            self.conn.consume_output(out.len());
        }
    }

    async fn write_raw(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.expect("peer: a raw write");
    }

    /// The core's next event, reading as it needs.
    async fn next_event(&mut self) -> Event {
        loop {
            if let Some(event) = self.conn.poll_event() {
                self.closed |= matches!(event, Event::Closed(_));
                return event;
            }
            self.flush().await;
            match self.io.read().await {
                Some(bytes) => {
                    self.wire.extend_from_slice(&bytes);
                    self.conn.handle_read(&bytes);
                }
                None => self.conn.handle_eof(),
            }
        }
    }

    /// Events into `seen` until `count` of them match `want` (true), or
    /// the end (false).
    async fn until(
        &mut self,
        seen: &mut Vec<Seen>,
        count: usize,
        want: fn(&Event) -> bool,
    ) -> bool {
        let mut got = 0;
        while got < count {
            let event = self.next_event().await;
            seen.push(seen_event(&event));
            if let Event::Closed(_) = event {
                return false;
            }
            got += usize::from(want(&event));
        }
        true
    }

    /// Reads everything to the end without a word to the core: a peer
    /// that never answers.
    async fn mute(&mut self) {
        while let Some(bytes) = self.io.read().await {
            self.wire.extend_from_slice(&bytes);
        }
    }

    /// The server's frames, as read.
    fn frames(&self) -> Vec<Frame> {
        decode_frames(Role::Server, &self.wire[self.head..])
            .iter()
            .map(|f| (f.fin, f.opcode, f.payload.len()))
            .collect()
    }
}

/// The peer's side of a row: what it saw, and the server's frames.
async fn play<P: Pipe>(case: Case, mut peer: Peer<P>) -> (Vec<Seen>, Vec<Frame>) {
    let mut seen = Vec::new();
    let is_message = |e: &Event| matches!(e, Event::Message(_));
    if case == Case::Shutdown {
        // The server's Close must come without a word from us: the signal
        // wakes its loop. Were it not woken, it would still be waiting
        // when we speak, a second on, and would see our message.
        let quiet = Duration::from_secs(1);
        let told = tokio::time::timeout(quiet, peer.until(&mut seen, usize::MAX, |_| false));
        if told.await.is_ok() {
            peer.flush().await;
            peer.io.shutdown().await;
            peer.mute().await;
            return (seen, peer.frames());
        }
        peer.conn
            .send_text("the signal did not wake you")
            .expect("a message");
    }
    let conn = &mut peer.conn;
    let answers = match case {
        Case::Text => conn.send_text(TEXT_MSG).map(|()| 1),
        Case::Binary => conn.send_binary(BINARY_MSG).map(|()| 1),
        Case::Empty => conn.send(&Message::from("")).map(|()| 1),
        Case::Large => conn.send_binary(&large()).map(|()| 1),
        Case::Fragmented => conn
            .send_fragmented(MessageKind::Text, FRAGMENTED.as_bytes(), FRAGMENT_SIZE)
            .map(|()| 1),
        Case::Prepared => conn
            .send_prepared(&PreparedMessage::text(PREPARED))
            .map(|()| 1),
        Case::Owned => conn
            .send_owned(MessageKind::Binary, BytesMut::from(&owned()[..]))
            .map(|()| 1),
        Case::QueueThenFlush => conn.send_text(QUEUED).map(|()| 2),
        Case::OfferDrop => Ok(2),
        Case::Each => (|| {
            conn.send_text(TEXT_MSG)?;
            conn.ping(PING)?;
            conn.send_fragmented(MessageKind::Text, FRAGMENTED.as_bytes(), FRAGMENT_SIZE)?;
            conn.send_binary(&large())?;
            conn.send_binary(BINARY_MSG)?;
            Ok(4)
        })(),
        Case::AutoPong => conn.ping(PING).map(|()| 0),
        Case::PeerCloses => conn.close(CloseCode(4000), PEER_REASON).map(|()| 0),
        Case::ServerCloses
        | Case::Idle
        | Case::OfferClose
        | Case::BadOpcode
        | Case::BadUtf8
        | Case::Shutdown
        | Case::ShutdownBegun => Ok(0),
        Case::CloseTimesOut => {
            peer.mute().await;
            return (seen, peer.frames());
        }
    };
    let answers = answers.expect("the peer's command");
    match case {
        Case::BadOpcode => peer.write_raw(&client_frame(0x3, b"?")).await,
        Case::BadUtf8 => peer.write_raw(&client_frame(TEXT, &[0xce, 0xff])).await,
        _ => peer.flush().await,
    }
    let more = match case {
        Case::AutoPong => {
            peer.until(&mut seen, 1, |e| matches!(e, Event::Pong(_)))
                .await
        }
        _ if answers > 0 => peer.until(&mut seen, answers, is_message).await,
        _ => false,
    };
    if more {
        peer.conn
            .close(CloseCode::NORMAL, "done")
            .expect("the peer's close");
    }
    peer.until(&mut seen, usize::MAX, |_| false).await;
    peer.flush().await;
    peer.io.shutdown().await;
    // A client waits for the server to end the transport (§7.1.1); an h2
    // stream dropped before then is reset, and the reset can overtake our
    // Close reply.
    peer.mute().await;
    (seen, peer.frames())
}

// ----- running the table -----

/// What one row gave on one driver: the server's and the peer's record,
/// or the panic that stopped it.
type Ran = Result<(Vec<Seen>, (Vec<Seen>, Vec<Frame>)), String>;

fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}

/// Compares every row's run with the table; fails with all the rows that
/// differ.
fn check(driver: &str, rows: &[Row], ran: Vec<Ran>) {
    let mut failed = Vec::new();
    for (row, ran) in rows.iter().zip(ran) {
        match ran {
            Err(panic) => failed.push(format!("{driver}: {}: panicked: {panic}", row.name)),
            Ok((server, (peer, frames))) => {
                if server != row.server {
                    failed.push(format!(
                        "{driver}: {}: the server saw\n  {server:?}\nnot\n  {:?}",
                        row.name, row.server
                    ));
                }
                if peer != row.peer {
                    failed.push(format!(
                        "{driver}: {}: the peer saw\n  {peer:?}\nnot\n  {:?}",
                        row.name, row.peer
                    ));
                }
                if frames != row.frames {
                    failed.push(format!(
                        "{driver}: {}: the server sent\n  {frames:?}\nnot\n  {:?}",
                        row.name, row.frames
                    ));
                }
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// One row on a tokio runtime: server and peer side by side, a hang
/// bounded.
async fn side_by_side<S, P>(server: S, peer: P) -> Ran
where
    S: Future<Output = Vec<Seen>>,
    P: Future<Output = (Vec<Seen>, Vec<Frame>)>,
{
    let both = async {
        let (server, peer) = tokio::join!(
            AssertUnwindSafe(server).catch_unwind(),
            AssertUnwindSafe(peer).catch_unwind()
        );
        Ok((server.map_err(panic_text)?, peer.map_err(panic_text)?))
    };
    match tokio::time::timeout(LIMIT, both).await {
        Ok(ran) => ran,
        Err(_) => Err("hung".into()),
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// One row over loopback TCP: `server` on a thread of its own with the
/// accepted socket, the peer on this one.
fn over_tcp(
    case: Case,
    server: impl FnOnce(std::net::TcpStream) -> Vec<Seen> + Send + 'static,
) -> Ran {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = listener.local_addr().expect("its address");
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("the peer");
        stream.set_nodelay(true).expect("nodelay");
        server(stream)
    });
    let stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(LIMIT))
        .expect("a read timeout");
    let peer = std::panic::catch_unwind(AssertUnwindSafe(|| {
        current_thread().block_on(async { play(case, Peer::handshake(stream).await).await })
    }));
    let server = server.join().map_err(panic_text);
    Ok((server?, peer.map_err(panic_text)?))
}

/// The blocking driver's read timeout: the tick at which its timers run.
const TICK: Duration = Duration::from_millis(10);

#[test]
fn the_blocking_driver() {
    let rows = rows("blocking", false);
    let ran = rows
        .iter()
        .map(|row| {
            let case = row.case;
            over_tcp(case, move |stream| {
                stream.set_read_timeout(Some(TICK)).expect("a tick");
                let config = config(case);
                let ws = rfc6455::blocking::accept_with(stream, config, |_| Ok(Accept::new()))
                    .expect("the handshake");
                rfc6455::blocking::block_on(serve(case, ws))
            })
        })
        .collect();
    check("blocking", &rows, ran);
}

#[tokio::test]
async fn the_tokio_driver() {
    let rows = rows("tokio", false);
    check("tokio", &rows, on_tokio(&rows).await);
}

async fn on_tokio(rows: &[Row]) -> Vec<Ran> {
    let mut ran = Vec::new();
    for row in rows {
        let case = row.case;
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let server = async move {
            let config = config(case);
            let ws = rfc6455::tokio::accept_with(ours, config, |_| Ok(Accept::new()))
                .await
                .expect("the handshake");
            serve(case, ws).await
        };
        let peer = async move { play(case, Peer::handshake(theirs).await).await };
        ran.push(side_by_side(server, peer).await);
    }
    ran
}

#[cfg(feature = "embedded-io-async")]
#[tokio::test]
async fn the_embedded_driver() {
    use embedded_io_adapters::tokio_1::FromTokio;
    let rows = rows("embedded", false);
    let mut ran = Vec::new();
    for row in &rows {
        let case = row.case;
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let server = async move {
            let config = config(case);
            let ws = rfc6455::embedded::accept_with(
                FromTokio::new(ours),
                tokio_clock::TokioClock,
                config,
                |_| Ok(Accept::new()),
            )
            .await
            .expect("the handshake");
            serve(case, ws).await
        };
        let peer = async move { play(case, Peer::handshake(theirs).await).await };
        ran.push(side_by_side(server, peer).await);
    }
    check("embedded", &rows, ran);
}

#[cfg(feature = "compio")]
#[test]
fn the_compio_driver() {
    let rows = rows("compio", false);
    let ran = rows
        .iter()
        .map(|row| {
            let case = row.case;
            over_tcp(case, move |stream| {
                let runtime = rfc6455::compio::runtime().expect("a compio runtime");
                runtime.block_on(async move {
                    let stream = compio::net::TcpStream::from_std(stream).expect("a compio socket");
                    let config = config(case);
                    let ws = rfc6455::compio::accept_with(stream, config, |_| Ok(Accept::new()))
                        .await
                        .expect("the handshake");
                    serve(case, ws).await
                })
            })
        })
        .collect();
    check("compio", &rows, ran);
}

/// The HTTP/2 driver (RFC 8441): our server on an h2 connection over a
/// duplex; the peer opens its stream with a plain h2 client's extended
/// CONNECT and moves the core's bytes in the stream's DATA.
#[cfg(feature = "http2")]
mod on_http2 {
    use std::future::poll_fn;
    use std::io;

    use bytes::Bytes;
    use h2::{RecvStream, SendStream};
    use rfc6455::handshake::{Accept, ClientRequest, ExtendedConnectClient};
    use rfc6455::http2::{serve_connection, Incoming};
    use rfc6455::Config;

    use super::{check, config, play, rows, serve, side_by_side, Peer, Pipe};

    /// One h2 stream's DATA as a pipe.
    struct Stream {
        send: SendStream<Bytes>,
        recv: RecvStream,
    }

    impl Pipe for Stream {
        async fn read(&mut self) -> Option<Vec<u8>> {
            match self.recv.data().await {
                Some(Ok(data)) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    Some(data.to_vec())
                }
                Some(Err(_)) | None => None,
            }
        }

        async fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
            while !bytes.is_empty() {
                self.send.reserve_capacity(bytes.len());
                match poll_fn(|cx| self.send.poll_capacity(cx)).await {
                    Some(Ok(0)) => {}
                    Some(Ok(granted)) => {
                        let n = granted.min(bytes.len());
                        let chunk = Bytes::copy_from_slice(&bytes[..n]);
                        self.send
                            .send_data(chunk, false)
                            .map_err(io::Error::other)?;
                        bytes = &bytes[n..];
                    }
                    Some(Err(e)) => return Err(io::Error::other(e)),
                    None => return Err(io::ErrorKind::BrokenPipe.into()),
                }
            }
            Ok(())
        }

        async fn shutdown(&mut self) {
            let _ = self.send.send_data(Bytes::new(), true);
        }
    }

    /// The peer's side of the extended CONNECT, with h2's own client.
    async fn connect(io: tokio::io::DuplexStream) -> Peer<Stream> {
        let (send_request, mut connection) = h2::client::handshake(io).await.expect("h2");
        let pings = connection.ping_pong();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        // The server's SETTINGS (which allow the extended CONNECT) have
        // arrived once a PING is answered.
        if let Some(mut pings) = pings {
            pings.ping(h2::Ping::opaque()).await.expect("a PING");
        }
        let mut send_request = send_request.ready().await.expect("ready");
        assert!(send_request.is_extended_connect_protocol_enabled());
        let connect =
            ExtendedConnectClient::new(&ClientRequest::new("localhost", "/"), Config::default())
                .scheme("http");
        let mut request = http::Request::builder()
            .method(http::Method::CONNECT)
            .uri("http://localhost/")
            .extension(h2::ext::Protocol::from("websocket"));
        for (name, value) in connect.headers() {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request.body(()).expect("a request");
        let (response, send) = send_request
            .send_request(request, false)
            .expect("the CONNECT");
        let (parts, recv) = response.await.expect("a response").into_parts();
        let fields = parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()));
        let connected = connect
            .handle_response(parts.status.as_u16(), fields)
            .expect("a 200");
        Peer {
            io: Stream { send, recv },
            conn: connected.connection,
            wire: Vec::new(),
            head: 0,
            closed: false,
        }
    }

    #[tokio::test]
    async fn the_http2_driver() {
        let rows = rows("http2", false);
        let mut ran = Vec::new();
        for row in &rows {
            let case = row.case;
            let (ours, theirs) = tokio::io::duplex(1 << 20);
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Incoming>();
            let connection = tokio::spawn(serve_connection(ours, config(case), move |incoming| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(incoming);
                }
            }));
            let server = async move {
                let incoming = rx.recv().await.expect("the CONNECT");
                let ws = incoming.accept(Accept::new()).expect("the handshake");
                serve(case, ws).await
            };
            let peer = async move { play(case, connect(theirs).await).await };
            ran.push(side_by_side(server, peer).await);
            connection.abort();
        }
        check("http2", &rows, ran);
    }
}

/// The HTTP/3 driver: our server on quinn, the peer's bytes in DATA
/// frames on one request stream. The peer's HTTP/3 is written here, apart
/// from the crate's: SETTINGS on a control stream, the extended CONNECT
/// as a QPACK field section of plain literals, DATA frames both ways.
#[cfg(feature = "http3")]
mod on_http3 {
    use std::io;

    use rfc6455::handshake::{Accept, ClientRequest, ExtendedConnectClient};
    use rfc6455::http3::{serve_connection, Incoming};
    use rfc6455::Config;

    use super::{check, config, play, rows, serve, side_by_side, tls, Peer, Pipe};

    /// A QUIC variable-length integer (RFC 9000 §16).
    fn varint(out: &mut Vec<u8>, v: u64) {
        match v {
            0..=63 => out.push(v as u8),
            64..=16383 => out.extend_from_slice(&(0x4000 | v as u16).to_be_bytes()),
            _ => out.extend_from_slice(&(0x8000_0000 | v as u32).to_be_bytes()),
        }
    }

    fn read_varint(buf: &[u8]) -> Option<(u64, usize)> {
        let len = 1usize << (buf.first()? >> 6);
        let bytes = buf.get(..len)?;
        let v = bytes[1..]
            .iter()
            .fold(u64::from(bytes[0] & 0x3f), |v, &b| (v << 8) | u64::from(b));
        Some((v, len))
    }

    /// A QPACK prefixed integer (RFC 7541 §5.1) after `high`'s bits.
    fn prefixed(out: &mut Vec<u8>, high: u8, bits: u32, v: usize) {
        let max = (1usize << bits) - 1;
        if v < max {
            out.push(high | v as u8);
            return;
        }
        out.push(high | max as u8);
        let mut rest = v - max;
        while rest >= 0x80 {
            out.push(0x80 | (rest & 0x7f) as u8);
            rest >>= 7;
        }
        out.push(rest as u8);
    }

    /// A HEADERS frame: every field a literal with a literal name.
    fn headers(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut block = vec![0, 0];
        for (name, value) in fields {
            prefixed(&mut block, 0x20, 3, name.len());
            block.extend_from_slice(name.as_bytes());
            prefixed(&mut block, 0, 7, value.len());
            block.extend_from_slice(value.as_bytes());
        }
        let mut frame = vec![0x01];
        varint(&mut frame, block.len() as u64);
        frame.extend_from_slice(&block);
        frame
    }

    /// One request stream's DATA frames as a pipe.
    struct Stream {
        send: quinn::SendStream,
        recv: quinn::RecvStream,
        buf: Vec<u8>,
    }

    impl Stream {
        /// The next whole frame: its type and payload.
        async fn frame(&mut self) -> Option<(u64, Vec<u8>)> {
            loop {
                if let Some((ty, a)) = read_varint(&self.buf) {
                    if let Some((len, b)) = read_varint(&self.buf[a..]) {
                        let end = a + b + len as usize;
                        if self.buf.len() >= end {
                            let payload = self.buf[a + b..end].to_vec();
                            self.buf.drain(..end);
                            return Some((ty, payload));
                        }
                    }
                }
                match self.recv.read_chunk(64 * 1024, true).await {
                    Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk.bytes),
                    _ => return None,
                }
            }
        }
    }

    impl Pipe for Stream {
        async fn read(&mut self) -> Option<Vec<u8>> {
            loop {
                match self.frame().await? {
                    (0x00, payload) if !payload.is_empty() => return Some(payload),
                    (0x00, _) => {}
                    (ty, _) => panic!("peer: a frame of type {ty:#x} on the stream"),
                }
            }
        }

        async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
            let mut frame = vec![0x00];
            varint(&mut frame, bytes.len() as u64);
            frame.extend_from_slice(bytes);
            self.send.write_all(&frame).await.map_err(io::Error::from)
        }

        async fn shutdown(&mut self) {
            let _ = self.send.finish();
        }
    }

    /// The peer's side: SETTINGS, the extended CONNECT, and the 200 (our
    /// server sends `:status: 200` as the static table's entry 25).
    async fn connect(conn: quinn::Connection) -> Peer<Stream> {
        let mut control = conn.open_uni().await.expect("a control stream");
        control
            .write_all(&[0x00, 0x04, 0x00])
            .await
            .expect("SETTINGS");
        tokio::spawn(async move {
            let _control = control;
            std::future::pending::<()>().await
        });
        let (mut send, recv) = conn.open_bi().await.expect("a request stream");
        let connect =
            ExtendedConnectClient::new(&ClientRequest::new("localhost", "/"), Config::default());
        let mut fields = vec![
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":authority", "localhost"),
            (":path", "/"),
        ];
        fields.extend(
            connect
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        send.write_all(&headers(&fields))
            .await
            .expect("the CONNECT");
        let mut stream = Stream {
            send,
            recv,
            buf: Vec::new(),
        };
        let (ty, block) = stream.frame().await.expect("a response");
        assert_eq!(
            (ty, &block[..3]),
            (0x01, &[0, 0, 0xc0 | 25][..]),
            "HEADERS with :status 200"
        );
        let connected = connect.handle_response(200, []).expect("accepted");
        Peer {
            io: stream,
            conn: connected.connection,
            wire: Vec::new(),
            head: 0,
            closed: false,
        }
    }

    #[tokio::test]
    async fn the_http3_driver() {
        let rows = rows("http3", false);
        let pki = tls::TestPki::new(&["localhost"]);
        let mut ran = Vec::new();
        for row in &rows {
            let case = row.case;
            let (endpoint, addr) = pki.h3_server();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Incoming>();
            let serving = tokio::spawn(async move {
                let conn = endpoint.accept().await.unwrap().await.unwrap();
                let _ = serve_connection(conn, config(case), move |incoming| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(incoming);
                    }
                })
                .await;
            });
            let client = pki.h3_client();
            let conn = client.connect(addr, "localhost").unwrap().await.unwrap();
            let server = async move {
                let incoming = rx.recv().await.expect("the CONNECT");
                let ws = incoming.accept(Accept::new()).expect("the handshake");
                serve(case, ws).await
            };
            let peer_conn = conn.clone();
            let peer = async move { play(case, connect(peer_conn).await).await };
            ran.push(side_by_side(server, peer).await);
            conn.close(0u32.into(), b"");
            serving.abort();
        }
        check("http3", &rows, ran);
    }
}
