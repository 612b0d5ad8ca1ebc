//! Properties over arbitrary input (proptest):
//! 1. what one endpoint sends, the other receives, exactly, however the
//!    bytes are cut into reads and whichever mode the receiver is in;
//! 2. how bytes are cut into reads never changes the events or the output,
//!    for valid frames and for garbage alike.

mod common;

use bytes::{Bytes, BytesMut};
use common::{drain, feed_all, frame, Chunking, BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT};
use proptest::collection::vec;
use proptest::prelude::*;
use rfc6455::{
    CloseCode, Config, Connection, Event, Fragment, Initiator, Message, MessageKind, Role,
};

// ----- strategies -----

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        any::<String>().prop_map(Message::from),
        vec(any::<u8>(), 0..4096).prop_map(Message::from),
        Just(Message::from("")),
        Just(Message::from(Vec::new())),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Send(Message),
    /// A message sent from a buffer handed over (`send_owned`).
    Owned(Message),
    /// A message in frames of at most this many bytes.
    Fragmented(Message, usize),
    Ping(Vec<u8>),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => arb_message().prop_map(Op::Send),
        2 => arb_message().prop_map(Op::Owned),
        3 => (arb_message(), 1usize..200).prop_map(|(m, n)| Op::Fragmented(m, n)),
        2 => vec(any::<u8>(), 0..=125).prop_map(Op::Ping),
    ]
}

/// Read sizes to cut input into: at least one non-zero, some zero (an
/// empty read must change nothing).
fn arb_sizes() -> impl Strategy<Value = Vec<usize>> {
    vec(
        prop_oneof![1 => Just(0usize), 10 => 1usize..64, 1 => 64usize..5000],
        1..8,
    )
    .prop_map(|mut sizes| {
        if sizes.iter().all(|&n| n == 0) {
            sizes.push(1);
        }
        sizes
    })
}

fn arb_role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Client), Just(Role::Server)]
}

/// One frame as the peer of `role` might send it: mostly well-formed,
/// sometimes with a forbidden bit, opcode, mask, length or close code.
fn arb_frame(role: Role) -> BoxedStrategy<Vec<u8>> {
    let opcode = prop_oneof![
        8 => prop::sample::select(vec![TEXT, BINARY]),
        3 => Just(CONTINUATION),
        3 => prop::sample::select(vec![PING, PONG]),
        1 => Just(CLOSE),
        1 => 0u8..16,
    ];
    let rsv = prop_oneof![40 => Just(0u8), 1 => 0u8..8];
    let fin = prop_oneof![3 => Just(true), 1 => Just(false)];
    let proper_mask = prop_oneof![40 => Just(true), 1 => Just(false)];
    let payload = prop_oneof![
        4 => any::<String>().prop_map(String::into_bytes),
        2 => vec(any::<u8>(), 0..40),
        1 => vec(any::<u8>(), 120..300),
        // A Close payload: a code (valid or not) and a reason.
        2 => (
            prop::sample::select(vec![1000u16, 1001, 1002, 1005, 1006, 3000, 4999, 5000, 999]),
            any::<String>()
        )
            .prop_map(|(code, reason)| {
                let mut p = code.to_be_bytes().to_vec();
                p.extend(reason.into_bytes().into_iter().take(60));
                p
            }),
    ];
    (fin, opcode, rsv, proper_mask, any::<[u8; 4]>(), payload)
        .prop_map(move |(fin, opcode, rsv, proper_mask, key, payload)| {
            let masked = (role == Role::Server) == proper_mask;
            frame(fin, opcode, rsv, masked.then_some(key), &payload)
        })
        .boxed()
}

/// A well-formed message as the peer of `role` sends it: its payload cut
/// into frames (anywhere, even inside a character), with control frames
/// between them.
fn arb_valid_message(role: Role) -> BoxedStrategy<Vec<u8>> {
    let mask = (role == Role::Server).then_some([0x11, 0x22, 0x33, 0x44]);
    (
        arb_message(),
        vec(any::<prop::sample::Index>(), 0..4),
        vec(prop::option::of(vec(any::<u8>(), 0..20)), 0..4),
    )
        .prop_map(move |(message, cuts, pings)| {
            let data = message.as_bytes();
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
            cuts.sort_unstable();
            cuts.push(data.len());
            let mut out = Vec::new();
            let mut start = 0;
            for (i, &end) in cuts.iter().enumerate() {
                let opcode = match (i, message.kind()) {
                    (0, MessageKind::Text) => TEXT,
                    (0, MessageKind::Binary) => BINARY,
                    _ => CONTINUATION,
                };
                let last = i == cuts.len() - 1;
                out.extend(frame(last, opcode, 0, mask, &data[start..end]));
                start = end;
                if let Some(Some(ping)) = pings.get(i) {
                    if !last {
                        out.extend(frame(true, PING, 0, mask, ping));
                    }
                }
            }
            out
        })
        .boxed()
}

/// Input for a connection of some role: frames, garbage, or frames with
/// garbage (or a cut) at the end.
fn arb_input() -> impl Strategy<Value = (Role, Vec<u8>)> {
    arb_role().prop_flat_map(|role| {
        let frames = prop_oneof![
            vec(arb_frame(role), 0..16).prop_map(|fs| fs.concat()),
            (
                vec(arb_valid_message(role), 0..8),
                vec(arb_frame(role), 0..3)
            )
                .prop_map(|(ms, fs)| [ms.concat(), fs.concat()].concat()),
        ];
        let garbage = vec(any::<u8>(), 0..512);
        let input = prop_oneof![
            4 => frames.clone(),
            1 => garbage.clone(),
            1 => (frames.clone(), garbage).prop_map(|(f, g)| [f, g].concat()),
            1 => (frames, any::<prop::sample::Index>()).prop_map(|(f, cut)| {
                let at = if f.is_empty() { 0 } else { cut.index(f.len()) };
                f[..at].to_vec()
            }),
        ];
        (Just(role), input)
    })
}

// ----- helpers -----

fn config(streaming: bool) -> Config {
    let mut config = Config::default();
    config.streaming = streaming;
    config
}

/// A connection with a fixed mask, so that its output is deterministic.
fn endpoint(role: Role, streaming: bool, key: [u8; 4]) -> Connection {
    let mut config = config(streaming);
    config.mask_keys = rfc6455::MaskKeys::Fixed(key);
    Connection::new(role, config)
}

/// Streaming events with each message's pieces joined into one
/// `Event::Message` at its last piece; a message left unfinished when the
/// connection closes is dropped (how much of it was delivered depends on
/// the reads). Checks the first/last flags on the way.
fn join_pieces(events: Vec<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    let mut current: Option<(MessageKind, Vec<u8>)> = None;
    for event in events {
        match event {
            Event::Fragment(Fragment {
                kind,
                data,
                first,
                last,
            }) => {
                assert_eq!(first, current.is_none(), "first flag");
                let (k, buf) = current.get_or_insert_with(|| (kind, Vec::new()));
                assert_eq!(*k, kind, "kind changed within a message");
                buf.extend_from_slice(&data);
                if last {
                    let (kind, buf) = current.take().expect("just inserted");
                    out.push(Event::Message(match kind {
                        MessageKind::Text => {
                            Message::from(String::from_utf8(buf).expect("validated text"))
                        }
                        MessageKind::Binary => Message::from(buf),
                    }));
                }
            }
            Event::Message(m) => panic!("whole message {m:?} in streaming mode"),
            other => out.push(other),
        }
    }
    out
}

fn send(conn: &mut Connection, op: &Op) {
    match op {
        Op::Send(m) => conn.send(m).unwrap(),
        Op::Owned(m) => conn
            .send_owned(m.kind(), BytesMut::from(m.as_bytes()))
            .unwrap(),
        Op::Fragmented(m, size) => conn.send_fragmented(m.kind(), m.as_bytes(), *size).unwrap(),
        Op::Ping(p) => conn.ping(p).unwrap(),
    }
}

/// Receives `bytes` cut by `sizes`, in whole-message or streaming mode,
/// and gives the events with streamed pieces joined.
fn receive(conn: &mut Connection, bytes: &[u8], sizes: &[usize]) -> Vec<Event> {
    let events = feed_all(conn, bytes, Chunking::Sizes(sizes));
    if conn.is_streaming() {
        join_pieces(events)
    } else {
        events
    }
}

/// Everything observable after feeding `bytes` cut as `chunking` says.
fn observe(
    role: Role,
    streaming: bool,
    bytes: &[u8],
    chunking: Chunking<'_>,
    eof: bool,
) -> (Vec<Event>, Vec<u8>, rfc6455::State, bool) {
    let mut c = endpoint(role, streaming, [0x37, 0xfa, 0x21, 0x3d]);
    let mut events = feed_all(&mut c, bytes, chunking);
    if eof {
        c.handle_eof();
        events.extend(common::poll_all(&mut c));
    }
    let output = drain(&mut c);
    (events, output, c.state(), c.should_close_transport())
}

/// How one read reaches the connection.
#[derive(Clone, Copy, Debug)]
enum Feed {
    /// `handle_read`: copied in.
    Copied,
    /// `handle_read_bytes`: the transport's buffer, handed over.
    Handed,
    /// `read_buffer_owned` filled, then `handle_read_owned`.
    Lent,
    /// Decoded where it was read (`poll_event_from`): polled at once, as
    /// the driver's buffer is its own again only when nothing is left.
    InPlace,
}

/// Everything observable after feeding `bytes` in reads of `sizes`, each
/// fed as `feeds` says (cycled), polling after a read only where `polls`
/// says (cycled) and always at the end.
fn observe_fed(
    role: Role,
    bytes: &[u8],
    sizes: &[usize],
    feeds: &[(Feed, bool)],
    eof: bool,
) -> (Vec<Event>, Vec<u8>, rfc6455::State, bool) {
    use rfc6455::plumbing::Plumbing;
    let mut c = endpoint(role, false, [0x37, 0xfa, 0x21, 0x3d]);
    let mut events = Vec::new();
    let mut rest = bytes;
    let mut ways = feeds.iter().cycle();
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let n = size.max(1).min(rest.len());
        let (piece, after) = rest.split_at(n);
        let &(feed, poll) = ways.next().expect("cycle");
        if let Feed::InPlace = feed {
            events.extend(poll_in_place(&mut c, &mut piece.to_vec()));
            rest = after;
            continue;
        }
        match feed {
            Feed::Copied => c.handle_read(piece),
            Feed::Handed => c.handle_read_bytes(Bytes::copy_from_slice(piece)),
            Feed::Lent => {
                let mut buf = c.read_buffer_owned(n);
                buf.extend_from_slice(piece);
                c.handle_read_owned(buf);
            }
            Feed::InPlace => unreachable!("polled above"),
        }
        if poll {
            events.extend(common::poll_all(&mut c));
        }
        rest = after;
    }
    events.extend(common::poll_all(&mut c));
    if eof {
        c.handle_eof();
        events.extend(common::poll_all(&mut c));
    }
    let output = drain(&mut c);
    (events, output, c.state(), c.should_close_transport())
}

/// Every event of one read decoded where it lies, lent messages made owned.
fn poll_in_place(c: &mut Connection, read: &mut [u8]) -> Vec<Event> {
    use rfc6455::plumbing::{Plumbing, Received, Unread};
    let mut unread = Unread::new(read);
    let mut events = Vec::new();
    while let Some(received) = c.poll_event_from(&mut unread) {
        events.push(match received {
            Received::Message(message) => Event::Message(message.to_message()),
            Received::Event(event) => event,
        });
    }
    assert!(unread.is_empty(), "bytes left untaken");
    events
}

fn arb_feeds() -> impl Strategy<Value = Vec<(Feed, bool)>> {
    let feed = prop_oneof![
        1 => Just(Feed::Copied),
        3 => Just(Feed::Handed),
        1 => Just(Feed::Lent),
        3 => Just(Feed::InPlace),
    ];
    vec((feed, prop_oneof![3 => Just(true), 1 => Just(false)]), 1..6)
}

// ----- properties -----

proptest! {
    // 256 cases each by default; set PROPTEST_CASES for a longer hunt.

    /// Sent messages arrive exactly, in order, with pings answered, and
    /// the closing handshake completes cleanly on both sides.
    #[test]
    fn what_is_sent_is_received(
        ops in vec(arb_op(), 0..12),
        sender_role in arb_role(),
        streaming in any::<bool>(),
        key in any::<[u8; 4]>(),
        sizes in arb_sizes(),
        back_sizes in arb_sizes(),
    ) {
        let receiver_role = match sender_role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        let mut sender = endpoint(sender_role, false, key);
        let mut receiver = endpoint(receiver_role, streaming, key);

        for op in &ops {
            send(&mut sender, op);
        }
        sender.close(CloseCode::NORMAL, "bye").unwrap();
        let wire = drain(&mut sender);
        let events = receive(&mut receiver, &wire, &sizes);

        let expected: Vec<Event> = ops
            .iter()
            .map(|op| match op {
                Op::Send(m) | Op::Owned(m) | Op::Fragmented(m, _) => Event::Message(m.clone()),
                Op::Ping(p) => Event::Ping(Bytes::from(p.clone())),
            })
            .collect();
        let (last, received) = events.split_last().expect("at least Closed");
        prop_assert_eq!(received, expected.as_slice());
        let Event::Closed(closed) = last else {
            return Err(TestCaseError::fail(format!("last event {last:?}")));
        };
        prop_assert!(closed.is_clean(), "{:?}", closed);
        prop_assert_eq!(closed.initiator, Initiator::Remote);
        prop_assert_eq!(closed.code(), CloseCode::NORMAL);
        prop_assert_eq!(&closed.received.as_ref().unwrap().reason, "bye");

        // The pongs and the echoed Close go back.
        let back = drain(&mut receiver);
        let events = receive(&mut sender, &back, &back_sizes);
        let pings: Vec<Event> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Ping(p) => Some(Event::Pong(Bytes::from(p.clone()))),
                _ => None,
            })
            .collect();
        let (last, pongs) = events.split_last().expect("at least Closed");
        prop_assert_eq!(pongs, pings.as_slice());
        let Event::Closed(closed) = last else {
            return Err(TestCaseError::fail(format!("last event {last:?}")));
        };
        prop_assert!(closed.is_clean(), "{:?}", closed);
        prop_assert_eq!(closed.initiator, Initiator::Local);
        prop_assert!(sender.pending_output().is_empty());
    }

    /// However the input is cut into reads, the events, the output and the
    /// final state are the same.
    #[test]
    fn chunking_never_changes_the_outcome(
        (role, bytes) in arb_input(),
        sizes in arb_sizes(),
        eof in any::<bool>(),
    ) {
        let whole = observe(role, false, &bytes, Chunking::Whole, eof);
        let cut = observe(role, false, &bytes, Chunking::Sizes(&sizes), eof);
        prop_assert_eq!(&cut, &whole);
        // Every event stream ends, if at all, with exactly one Closed.
        let closed = whole.0.iter().filter(|e| matches!(e, Event::Closed(_))).count();
        prop_assert!(closed <= 1);
        if closed == 1 {
            prop_assert!(matches!(whole.0.last(), Some(Event::Closed(_))));
        }
        if eof {
            prop_assert_eq!(closed, 1, "end of stream must close");
        }
    }

    /// However each read is handed over (copied, as the transport's own
    /// buffer, or in a buffer the connection lent), and whether events are
    /// polled between reads, the events, the output and the final state
    /// are those of one copied read: a whole message taken out of a
    /// handed-over buffer without a copy is the same message.
    #[test]
    fn handing_over_never_changes_the_outcome(
        (role, bytes) in arb_input(),
        sizes in arb_sizes(),
        feeds in arb_feeds(),
        eof in any::<bool>(),
    ) {
        let whole = observe(role, false, &bytes, Chunking::Whole, eof);
        let fed = observe_fed(role, &bytes, &sizes, &feeds, eof);
        prop_assert_eq!(&fed, &whole);
        let handed = observe_fed(role, &bytes, &[bytes.len()], &[(Feed::Handed, true)], eof);
        prop_assert_eq!(&handed, &whole);
        let in_place = observe_fed(role, &bytes, &[bytes.len()], &[(Feed::InPlace, true)], eof);
        prop_assert_eq!(&in_place, &whole);
    }

    /// Streaming mode gives the same messages, pings, pongs, closing and
    /// output as whole-message mode, however the input is cut.
    #[test]
    fn streaming_agrees_with_whole_messages(
        (role, bytes) in arb_input(),
        sizes in arb_sizes(),
        eof in any::<bool>(),
    ) {
        let whole = observe(role, false, &bytes, Chunking::Whole, eof);
        let (events, output, state, close) =
            observe(role, true, &bytes, Chunking::Sizes(&sizes), eof);
        prop_assert_eq!((join_pieces(events), output, state, close), whole);
    }

    /// Garbage never panics, and what comes out is always well-formed: a
    /// server never masks, a client always does, and a failure sends at
    /// most one Close frame, last.
    #[test]
    fn output_is_always_well_formed(
        (role, bytes) in arb_input(),
        sizes in arb_sizes(),
    ) {
        let (events, output, _, _) = observe(role, false, &bytes, Chunking::Sizes(&sizes), false);
        let frames = common::decode_frames(role, &output);
        let closes = frames.iter().filter(|f| f.opcode == CLOSE).count();
        prop_assert!(closes <= 1);
        if closes == 1 {
            prop_assert_eq!(frames.last().unwrap().opcode, CLOSE);
            let code = frames.last().unwrap().close_code();
            // Never a code reserved for reporting (§7.4.1).
            prop_assert!(!matches!(code, Some(1005 | 1006 | 1015)), "{:?}", code);
            prop_assert!(matches!(events.last(), Some(Event::Closed(_))));
        }
        for f in &frames {
            prop_assert!(matches!(f.opcode, PONG | CLOSE), "unprompted {:?}", f);
        }
        let pings = events.iter().filter(|e| matches!(e, Event::Ping(_))).count();
        let pongs = frames.iter().filter(|f| f.opcode == PONG).count();
        prop_assert!(pongs <= pings);
    }
}
