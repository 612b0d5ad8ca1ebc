//! Fragmentation: RFC 6455 §5.4, whole messages and streaming mode.

mod common;

use bytes::Bytes;
use common::{
    conn_with, drain_frames, feed_all, frame, poll_all, same_for_every_chunking, server, Chunking,
    BINARY, CONTINUATION, KEY, PING, PONG, TEXT,
};
use rfc6455::{Config, Connection, Event, Fragment, Message, MessageKind, Role};

fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, 0, Some(KEY), payload)
}

fn streaming_server() -> Connection {
    let mut config = Config::default();
    config.streaming = true;
    conn_with(Role::Server, config)
}

#[test]
fn pings_between_fragments_come_first() {
    // §5.4: "Control frames (see Section 5.5) MAY be injected in the middle
    // of a fragmented message." §5.5.2 asks for a Pong "as soon as is
    // practical": it must not wait for the message to end.
    let mut bytes = masked(false, TEXT, b"Hel");
    bytes.extend(masked(true, PING, b"one"));
    bytes.extend(masked(false, CONTINUATION, b"l"));
    bytes.extend(masked(true, PING, b"two"));
    bytes.extend(masked(true, PONG, b"three"));
    bytes.extend(masked(true, CONTINUATION, b"o"));
    let (events, output) = same_for_every_chunking(server, &bytes, None);
    assert_eq!(
        events,
        [
            Event::Ping(Bytes::from_static(b"one")),
            Event::Ping(Bytes::from_static(b"two")),
            Event::Pong(Bytes::from_static(b"three")),
            Event::Message(Message::from("Hello")),
        ]
    );
    let frames = common::decode_frames(Role::Server, &output);
    let pongs: Vec<(u8, &[u8])> = frames
        .iter()
        .map(|f| (f.opcode, f.payload.as_slice()))
        .collect();
    assert_eq!(pongs, [(PONG, &b"one"[..]), (PONG, &b"two"[..])]);
}

#[test]
fn the_pong_is_queued_before_the_message_ends() {
    let mut s = server();
    let events = feed_all(
        &mut s,
        &[masked(false, BINARY, b"ab"), masked(true, PING, b"p")].concat(),
        Chunking::Whole,
    );
    assert_eq!(events, [Event::Ping(Bytes::from_static(b"p"))]);
    let frames = drain_frames(&mut s);
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (frames[0].opcode, frames[0].payload.as_slice()),
        (PONG, &b"p"[..])
    );
    let events = feed_all(&mut s, &masked(true, CONTINUATION, b"c"), Chunking::Whole);
    assert_eq!(events, [Event::Message(Message::from(&b"abc"[..]))]);
}

#[test]
fn empty_fragments_are_allowed_anywhere() {
    // §5.4 allows fragments of any length, zero included.
    let mut bytes = masked(false, TEXT, b"");
    bytes.extend(masked(false, CONTINUATION, b"Hel"));
    bytes.extend(masked(false, CONTINUATION, b""));
    bytes.extend(masked(false, CONTINUATION, b"lo"));
    bytes.extend(masked(true, CONTINUATION, b""));
    let (events, _) = same_for_every_chunking(server, &bytes, None);
    assert_eq!(events, [Event::Message(Message::from("Hello"))]);

    // A message of nothing but empty fragments is an empty message.
    let mut bytes = masked(false, BINARY, b"");
    bytes.extend(masked(true, CONTINUATION, b""));
    bytes.extend(masked(true, TEXT, b""));
    let (events, _) = same_for_every_chunking(server, &bytes, None);
    assert_eq!(
        events,
        [
            Event::Message(Message::from(Vec::new())),
            Event::Message(Message::from(""))
        ]
    );
}

#[test]
fn many_fragments_make_one_message() {
    // §5.4: "A fragmented message consists of a single frame with the FIN
    // bit clear and an opcode other than 0, followed by zero or more frames
    // with the FIN bit clear and the opcode set to 0, and terminated by a
    // single frame with the FIN bit set and an opcode of 0."
    let text = "Fragmentation with ünïcödé, split everywhere ✓ 𝄞".repeat(20);
    let raw = text.as_bytes();
    let mut bytes = masked(false, TEXT, &raw[..1]);
    for chunk in raw[1..raw.len() - 1].chunks(1) {
        bytes.extend(masked(false, CONTINUATION, chunk));
    }
    bytes.extend(masked(true, CONTINUATION, &raw[raw.len() - 1..]));
    let mut s = server();
    let events = feed_all(&mut s, &bytes, Chunking::Sizes(&[1, 7, 64, 1000]));
    assert_eq!(events, [Event::Message(Message::from(text.as_str()))]);
    assert!(s.pending_output().is_empty());
}

#[test]
fn messages_follow_each_other() {
    let mut bytes = masked(false, TEXT, b"a");
    bytes.extend(masked(true, CONTINUATION, b"b"));
    bytes.extend(masked(false, BINARY, &[1]));
    bytes.extend(masked(true, CONTINUATION, &[2]));
    bytes.extend(masked(true, TEXT, b"c"));
    let (events, _) = same_for_every_chunking(server, &bytes, None);
    assert_eq!(
        events,
        [
            Event::Message(Message::from("ab")),
            Event::Message(Message::from(&[1u8, 2][..])),
            Event::Message(Message::from("c")),
        ]
    );
}

#[test]
fn send_fragmented_splits_at_the_given_size() {
    let mut s = server();
    s.send_fragmented(MessageKind::Binary, &[0, 1, 2, 3, 4, 5, 6], 3)
        .unwrap();
    let frames = drain_frames(&mut s);
    let shape: Vec<(bool, u8, Vec<u8>)> = frames
        .into_iter()
        .map(|f| (f.fin, f.opcode, f.payload))
        .collect();
    assert_eq!(
        shape,
        [
            (false, BINARY, vec![0, 1, 2]),
            (false, CONTINUATION, vec![3, 4, 5]),
            (true, CONTINUATION, vec![6]),
        ]
    );
    // An empty message is one empty final frame.
    s.send_fragmented(MessageKind::Text, b"", 3).unwrap();
    assert_eq!(common::drain(&mut s), [0x81, 0x00]);
    assert_eq!(
        s.send_fragmented(MessageKind::Text, b"x", 0),
        Err(rfc6455::UsageError::ZeroFragmentSize)
    );
}

#[test]
fn send_fragment_interleaves_with_control_frames() {
    let mut s = server();
    s.send_fragment(MessageKind::Text, b"Hel", false).unwrap();
    // A whole message cannot start inside one being sent.
    assert_eq!(
        s.send_text("no"),
        Err(rfc6455::UsageError::MessageInProgress)
    );
    s.ping(b"p").unwrap();
    // The kind of a continuation is ignored.
    s.send_fragment(MessageKind::Binary, b"lo", true).unwrap();
    s.send_text("next").unwrap();
    let mut c = common::client();
    let events = feed_all(&mut c, &common::drain(&mut s), Chunking::Whole);
    assert_eq!(
        events,
        [
            Event::Ping(Bytes::from_static(b"p")),
            Event::Message(Message::from("Hello")),
            Event::Message(Message::from("next")),
        ]
    );
}

/// The pieces of every message, checked for their flags, concatenated.
fn join_fragments(events: &[Event]) -> Vec<(MessageKind, Vec<u8>)> {
    let mut messages = Vec::new();
    let mut current: Option<(MessageKind, Vec<u8>)> = None;
    for event in events {
        let Event::Fragment(Fragment {
            kind,
            data,
            first,
            last,
        }) = event
        else {
            continue;
        };
        assert_eq!(*first, current.is_none(), "first flag wrong: {events:?}");
        let (k, buf) = current.get_or_insert_with(|| (*kind, Vec::new()));
        assert_eq!(k, kind, "kind changed within a message");
        buf.extend_from_slice(data);
        if *last {
            messages.push(current.take().unwrap());
        }
    }
    assert!(current.is_none(), "a message without its last piece");
    messages
}

#[test]
fn streaming_delivers_pieces_whose_concatenation_is_the_message() {
    let mut bytes = masked(false, TEXT, "Hé".as_bytes());
    bytes.extend(masked(true, PING, b"p"));
    bytes.extend(masked(false, CONTINUATION, b""));
    bytes.extend(masked(true, CONTINUATION, "llo ✓".as_bytes()));
    bytes.extend(masked(true, BINARY, &[9; 300]));
    bytes.extend(masked(true, TEXT, b""));

    for chunking in [
        Chunking::Whole,
        Chunking::Bytewise,
        Chunking::Sizes(&[5, 1, 2, 100]),
    ] {
        let mut s = streaming_server();
        let events = feed_all(&mut s, &bytes, chunking.clone());
        assert!(
            !events.iter().any(|e| matches!(e, Event::Message(_))),
            "{chunking:?}: whole messages in streaming mode"
        );
        assert_eq!(
            join_fragments(&events),
            [
                (MessageKind::Text, "Héllo ✓".as_bytes().to_vec()),
                (MessageKind::Binary, vec![9; 300]),
                (MessageKind::Text, Vec::new()),
            ],
            "{chunking:?}"
        );
        let ping_at = events
            .iter()
            .position(|e| matches!(e, Event::Ping(_)))
            .unwrap();
        assert!(
            matches!(&events[ping_at - 1], Event::Fragment(f) if !f.last),
            "{chunking:?}: the ping comes between the pieces"
        );
    }

    // Whole frames in one read: one piece per frame (the empty non-final
    // frame gives none).
    let mut s = streaming_server();
    let events = feed_all(&mut s, &bytes, Chunking::Whole);
    let fragment = |kind, data: &[u8], first, last| {
        Event::Fragment(Fragment {
            kind,
            data: Bytes::copy_from_slice(data),
            first,
            last,
        })
    };
    assert_eq!(
        events,
        [
            fragment(MessageKind::Text, "Hé".as_bytes(), true, false),
            Event::Ping(Bytes::from_static(b"p")),
            fragment(MessageKind::Text, "llo ✓".as_bytes(), false, true),
            fragment(MessageKind::Binary, &[9; 300], true, true),
            fragment(MessageKind::Text, b"", true, true),
        ]
    );
}

#[test]
fn streaming_delivers_a_frame_as_its_bytes_arrive() {
    // A large frame need not be buffered whole: every read of its payload
    // comes out as a piece at once.
    let payload: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    let bytes = masked(true, BINARY, &payload);
    let header_len = bytes.len() - payload.len();
    let mut s = streaming_server();

    s.handle_read(&bytes[..header_len]);
    assert_eq!(poll_all(&mut s), []);

    let mut pieces = Vec::new();
    let mut at = header_len;
    for size in [1, 999, 4000, 3000] {
        s.handle_read(&bytes[at..at + size]);
        at += size;
        let events = poll_all(&mut s);
        assert_eq!(events.len(), 1, "one piece per read: {events:?}");
        let Event::Fragment(f) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(f.data.len(), size);
        assert!(!f.last);
        assert_eq!(f.first, pieces.is_empty());
        // Nothing of the payload stays buffered.
        assert_eq!(s.buffered_input(), 0);
        pieces.push(f.clone());
    }
    s.handle_read(&bytes[at..]);
    let events = poll_all(&mut s);
    let Event::Fragment(f) = &events[0] else {
        panic!("{events:?}")
    };
    assert!(f.last && !f.first);
    pieces.push(f.clone());

    let joined: Vec<u8> = pieces.iter().flat_map(|f| f.data.to_vec()).collect();
    assert_eq!(joined, payload);
}

#[test]
fn streaming_text_may_split_inside_a_character() {
    // "a piece may end inside a character" (Fragment docs): the
    // concatenation is what must be UTF-8.
    let text = "€€€";
    let bytes = masked(true, TEXT, text.as_bytes());
    let mut s = streaming_server();
    let events = feed_all(&mut s, &bytes, Chunking::Bytewise);
    assert_eq!(
        join_fragments(&events),
        [(MessageKind::Text, text.as_bytes().to_vec())]
    );
    // Header bytes give nothing; then one piece per payload byte.
    assert_eq!(events.len(), text.len());
}
