//! Base framing: RFC 6455 §5.2 (the wire format and what a receiver must
//! refuse) and the examples of §5.7, decoded and encoded byte for byte.

mod common;

use bytes::{BufMut, Bytes};
use common::{
    assert_failed, client, client_frame, conn, decode_frames, drain, feed_all, frame, header,
    same_for_every_chunking, server, server_frame, Chunking, BINARY, CLOSE, CONTINUATION, KEY,
    PING, PONG, TEXT,
};
use rfc6455::plumbing::Plumbing;
use rfc6455::{Connection, Event, Message, MessageKind, ProtocolError, Role, State};

/// §5.7: "A single-frame unmasked text message (contains "Hello")".
const UNMASKED_HELLO: &[u8] = &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// §5.7: "A single-frame masked text message (contains "Hello")".
const MASKED_HELLO: &[u8] = &[
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
/// §5.7: "A fragmented unmasked text message": "Hel" then "lo".
const FRAGMENTED_HELLO: &[u8] = &[
    0x01, 0x03, 0x48, 0x65, 0x6c, // contains "Hel"
    0x80, 0x02, 0x6c, 0x6f, // contains "lo"
];
/// §5.7: "Unmasked Ping request".
const UNMASKED_PING: &[u8] = &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// §5.7: "masked Ping response" (a Pong).
const MASKED_PONG: &[u8] = &[
    0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

/// §5.7: "256 bytes binary message in a single unmasked frame".
fn binary_256() -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..=255).collect();
    let mut wire = vec![0x82, 0x7E, 0x01, 0x00];
    wire.extend_from_slice(&payload);
    (wire, payload)
}

/// §5.7: "64KiB binary message in a single unmasked frame".
fn binary_64k() -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut wire = vec![0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
    wire.extend_from_slice(&payload);
    (wire, payload)
}

fn hello() -> Event {
    Event::Message(Message::from("Hello"))
}

#[test]
fn unmasked_hello_received_by_a_client() {
    let (events, output) = same_for_every_chunking(client, UNMASKED_HELLO, None);
    assert_eq!(events, [hello()]);
    assert!(output.is_empty());
}

#[test]
fn masked_hello_received_by_a_server() {
    let (events, output) = same_for_every_chunking(server, MASKED_HELLO, None);
    assert_eq!(events, [hello()]);
    assert!(output.is_empty());
}

#[test]
fn fragmented_hello_received_by_a_client() {
    let (events, _) = same_for_every_chunking(client, FRAGMENTED_HELLO, None);
    assert_eq!(events, [hello()]);
}

#[test]
fn unmasked_ping_is_answered_with_the_masked_pong_of_the_rfc() {
    // §5.5.3: "A Pong frame sent in response to a Ping frame must have
    // identical "Application data" as found in the message body of the
    // Ping frame being replied to." With the example's key, our answer is
    // the example's bytes.
    let (events, output) = same_for_every_chunking(client, UNMASKED_PING, None);
    assert_eq!(events, [Event::Ping(Bytes::from_static(b"Hello"))]);
    assert_eq!(output, MASKED_PONG);
}

#[test]
fn masked_pong_received_by_a_server() {
    let (events, output) = same_for_every_chunking(server, MASKED_PONG, None);
    assert_eq!(events, [Event::Pong(Bytes::from_static(b"Hello"))]);
    // A Pong needs no answer.
    assert!(output.is_empty());
}

#[test]
fn binary_256_received_by_a_client() {
    let (wire, payload) = binary_256();
    let (events, _) = same_for_every_chunking(client, &wire, None);
    assert_eq!(events, [Event::Message(Message::from(payload))]);
}

#[test]
fn binary_64k_received_by_a_client() {
    let (wire, payload) = binary_64k();
    // Every split of 64 KiB would copy 4 GiB; split inside and around the
    // header, at a stride through the payload, and near the end.
    let mut splits: Vec<usize> = (0..=20).collect();
    splits.extend((20..wire.len()).step_by(4093));
    splits.extend(wire.len() - 20..=wire.len());
    let (events, _) = same_for_every_chunking(client, &wire, Some(&splits));
    assert_eq!(events, [Event::Message(Message::from(payload))]);
}

#[test]
fn server_encodes_the_rfc_examples() {
    let mut s = server();
    s.send_text("Hello").unwrap();
    assert_eq!(drain(&mut s), UNMASKED_HELLO);

    s.send_fragmented(MessageKind::Text, b"Hello", 3).unwrap();
    assert_eq!(drain(&mut s), FRAGMENTED_HELLO);

    s.ping(b"Hello").unwrap();
    assert_eq!(drain(&mut s), UNMASKED_PING);

    let (wire, payload) = binary_256();
    s.send_binary(&payload).unwrap();
    assert_eq!(drain(&mut s), wire);

    let (wire, payload) = binary_64k();
    s.send_binary(&payload).unwrap();
    assert_eq!(drain(&mut s), wire);
}

#[test]
fn client_encodes_the_rfc_masked_examples() {
    let mut config = rfc6455::Config::default();
    config.mask_keys = rfc6455::MaskKeys::Fixed([0x37, 0xfa, 0x21, 0x3d]);
    let mut c = Connection::new(Role::Client, config);
    c.send_text("Hello").unwrap();
    assert_eq!(drain(&mut c), MASKED_HELLO);
    c.pong(b"Hello").unwrap();
    assert_eq!(drain(&mut c), MASKED_PONG);
}

#[test]
fn client_masks_with_fresh_keys() {
    // §5.3: "The masking key is a 32-bit value chosen at random by the
    // client. When preparing a masked frame, the client MUST pick a fresh
    // masking key from the set of allowed 32-bit values."
    let mut c = Connection::new(Role::Client, rfc6455::Config::default());
    for _ in 0..8 {
        c.send_text("Hello").unwrap();
    }
    let frames = decode_frames(Role::Client, &drain(&mut c));
    assert_eq!(frames.len(), 8);
    let mut keys: Vec<[u8; 4]> = frames.iter().map(|f| f.mask.unwrap()).collect();
    assert!(frames.iter().all(|f| f.payload == b"Hello"));
    keys.sort();
    keys.dedup();
    assert!(keys.len() > 1, "eight frames with one key");
}

#[test]
fn every_length_form_round_trips() {
    // §5.2: "the minimal number of bytes MUST be used to encode the length".
    // `decode_frames` checks that; here we check every boundary both ways.
    for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        for role in [Role::Client, Role::Server] {
            let peer = match role {
                Role::Client => Role::Server,
                Role::Server => Role::Client,
            };
            let mut sender = conn(role);
            sender.send_binary(&payload).unwrap();
            let wire = drain(&mut sender);
            let header_len = match len {
                0..=125 => 2,
                126..=65535 => 4,
                _ => 10,
            } + if role == Role::Client { 4 } else { 0 };
            assert_eq!(wire.len(), header_len + len, "{role:?} {len}");
            let mut receiver = conn(peer);
            let events = feed_all(&mut receiver, &wire, Chunking::Sizes(&[1, 3, 1000]));
            assert_eq!(
                events,
                [Event::Message(Message::from(payload.clone()))],
                "{role:?} {len}"
            );
        }
    }
}

#[test]
fn non_minimal_lengths_are_accepted() {
    // The minimal-length rule binds the sender; a receiver that refused a
    // 126-form length for 5 bytes would gain nothing. We accept them.
    let mut wire = vec![0x81, 0x7E, 0x00, 0x05];
    wire.extend_from_slice(b"Hello");
    let (events, _) = same_for_every_chunking(client, &wire, None);
    assert_eq!(events, [hello()]);
    let mut wire = vec![0x81, 0x7F, 0, 0, 0, 0, 0, 0, 0, 5];
    wire.extend_from_slice(b"Hello");
    let (events, _) = same_for_every_chunking(client, &wire, None);
    assert_eq!(events, [hello()]);
}

/// A protocol violation, the role that receives it, and the code we must
/// answer with.
struct Violation {
    name: String,
    role: Role,
    bytes: Vec<u8>,
    code: u16,
    error: ProtocolError,
}

fn violations() -> Vec<Violation> {
    let mut cases = Vec::new();
    let mut add = |name: String, role: Role, bytes: Vec<u8>, error: ProtocolError| {
        cases.push(Violation {
            name,
            role,
            bytes,
            code: 1002,
            error,
        });
    };
    for role in [Role::Server, Role::Client] {
        let mask = (role == Role::Server).then_some(KEY);
        let f = |fin, opcode, rsv, payload: &[u8]| frame(fin, opcode, rsv, mask, payload);
        // §5.2 RSV1-3: "MUST be 0 unless an extension is negotiated that
        // defines meanings for non-zero values. If a nonzero value is
        // received and none of the negotiated extensions defines the
        // meaning of such a nonzero value, the receiving endpoint MUST
        // _Fail the WebSocket Connection_."
        for rsv in 1..=7u8 {
            add(
                format!("{role:?} RSV {rsv:#05b}"),
                role,
                f(true, TEXT, rsv, b"Hello"),
                ProtocolError::ReservedBits(rsv),
            );
        }
        add(
            format!("{role:?} RSV1 on a ping"),
            role,
            f(true, PING, 0b100, b""),
            ProtocolError::ReservedBits(0b100),
        );
        // §5.2 Opcode: "If an unknown opcode is received, the receiving
        // endpoint MUST _Fail the WebSocket Connection_." (%x3-7 and
        // %xB-F are reserved.)
        for opcode in (0x3..=0x7).chain(0xB..=0xF) {
            add(
                format!("{role:?} opcode {opcode:#x}"),
                role,
                f(true, opcode, 0, b"x"),
                ProtocolError::ReservedOpcode(opcode),
            );
        }
        // §5.5: "All control frames MUST have a payload length of 125 bytes
        // or less and MUST NOT be fragmented."
        for opcode in [PING, PONG, CLOSE] {
            add(
                format!("{role:?} opcode {opcode:#x} without FIN"),
                role,
                f(false, opcode, 0, b""),
                ProtocolError::FragmentedControl,
            );
            add(
                format!("{role:?} opcode {opcode:#x} of 126 bytes"),
                role,
                f(true, opcode, 0, &[b'a'; 126]),
                ProtocolError::ControlTooLong(126),
            );
        }
        // §5.2: "the most significant bit MUST be 0".
        let mut top_bit = vec![0x82, 0x7F | if mask.is_some() { 0x80 } else { 0 }];
        top_bit.extend_from_slice(&(1u64 << 63).to_be_bytes());
        top_bit.extend_from_slice(&mask.unwrap_or_default()[..if mask.is_some() { 4 } else { 0 }]);
        add(
            format!("{role:?} length with the top bit set"),
            role,
            top_bit,
            ProtocolError::LengthTopBit,
        );
        let mut top_bit_alone = vec![0x82, 0x7F];
        top_bit_alone.extend_from_slice(&u64::MAX.to_be_bytes());
        if role == Role::Server {
            top_bit_alone[1] |= 0x80;
        }
        add(
            format!("{role:?} length of all ones"),
            role,
            top_bit_alone,
            ProtocolError::LengthTopBit,
        );
        // §5.4: a continuation frame continues a fragmented message; with
        // none in progress there is nothing to continue.
        add(
            format!("{role:?} continuation first"),
            role,
            f(true, CONTINUATION, 0, b"lo"),
            ProtocolError::UnexpectedContinuation,
        );
        let mut after_whole = f(true, TEXT, 0, b"Hel");
        after_whole.extend(f(true, CONTINUATION, 0, b"lo"));
        add(
            format!("{role:?} continuation after a whole message"),
            role,
            after_whole,
            ProtocolError::UnexpectedContinuation,
        );
        // §5.4: "The fragments of one message MUST NOT be interleaved
        // between the fragments of another message".
        for opcode in [TEXT, BINARY] {
            let mut interleaved = f(false, TEXT, 0, b"Hel");
            interleaved.extend(f(true, opcode, 0, b"lo"));
            add(
                format!("{role:?} opcode {opcode:#x} inside a fragmented message"),
                role,
                interleaved,
                ProtocolError::ExpectedContinuation,
            );
        }
    }
    // §5.1: "The server MUST close the connection upon receiving a frame
    // that is not masked." "A client MUST close a connection if it detects
    // a masked frame."
    add(
        "unmasked frame to a server".into(),
        Role::Server,
        server_frame(TEXT, b"Hello"),
        ProtocolError::UnmaskedFrame,
    );
    add(
        "unmasked ping to a server".into(),
        Role::Server,
        server_frame(PING, b""),
        ProtocolError::UnmaskedFrame,
    );
    add(
        "masked frame to a client".into(),
        Role::Client,
        client_frame(TEXT, b"Hello"),
        ProtocolError::MaskedFrame,
    );
    add(
        "masked close to a client".into(),
        Role::Client,
        client_frame(CLOSE, &[0x03, 0xe8]),
        ProtocolError::MaskedFrame,
    );
    cases
}

#[test]
fn protocol_violations_fail_with_1002() {
    for case in violations() {
        let Violation {
            name,
            role,
            bytes,
            code,
            error,
        } = case;
        let events = {
            let mut c = conn(role);
            let events = feed_all(&mut c, &bytes, Chunking::Whole);
            assert_eq!(c.state(), State::Closed, "{name}");
            let closed = common::last_closed(&events);
            assert_eq!(closed.error.as_ref(), Some(&error), "{name}");
            assert_failed(&mut c, &events, code);
            events
        };
        // The same events however the bytes arrive.
        for chunking in [Chunking::Bytewise, Chunking::Sizes(&[2, 3])] {
            let mut c = conn(role);
            assert_eq!(
                feed_all(&mut c, &bytes, chunking.clone()),
                events,
                "{name} {chunking:?}"
            );
        }
    }
}

#[test]
fn a_violation_is_found_before_the_payload_arrives() {
    // What the header alone shows needs no payload: a reserved opcode with
    // a declared (but unsent) payload fails at once.
    let mut s = server();
    s.handle_read(&header(true, 0x3, 0, Some(KEY), 1000));
    let events = common::poll_all(&mut s);
    assert_failed(&mut s, &events, 1002);
}

#[test]
fn messages_before_a_violation_are_delivered() {
    let mut bytes = client_frame(TEXT, b"first");
    bytes.extend(frame(true, TEXT, 0b010, Some(KEY), b"bad"));
    bytes.extend(client_frame(TEXT, b"never"));
    let mut s = server();
    let events = feed_all(&mut s, &bytes, Chunking::Whole);
    assert_eq!(events[0], Event::Message(Message::from("first")));
    assert_eq!(events.len(), 2);
    assert_failed(&mut s, &events, 1002);
}

#[test]
fn pings_are_answered_and_reported() {
    // §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong
    // frame in response".
    let mut s = server();
    let mut bytes = client_frame(PING, b"");
    bytes.extend(client_frame(PING, &[7; 125]));
    let events = feed_all(&mut s, &bytes, Chunking::Whole);
    assert_eq!(
        events,
        [
            Event::Ping(Bytes::new()),
            Event::Ping(Bytes::from(vec![7; 125]))
        ]
    );
    let frames = common::drain_frames(&mut s);
    assert_eq!(frames.len(), 2);
    assert_eq!((frames[0].opcode, frames[0].payload.len()), (PONG, 0));
    assert_eq!(
        (frames[1].opcode, frames[1].payload.clone()),
        (PONG, vec![7; 125])
    );
}

#[test]
fn without_auto_pong_pings_are_only_reported() {
    let mut config = rfc6455::Config::default();
    config.auto_pong = false;
    let mut s = common::conn_with(Role::Server, config);
    let events = feed_all(&mut s, &client_frame(PING, b"x"), Chunking::Whole);
    assert_eq!(events, [Event::Ping(Bytes::from_static(b"x"))]);
    assert!(s.pending_output().is_empty());
    s.pong(b"x").unwrap();
    assert_eq!(drain(&mut s), [0x8a, 0x01, b'x']);
}

#[test]
fn control_payloads_over_125_bytes_are_refused_locally() {
    let mut s = server();
    assert_eq!(
        s.ping(&[0; 126]),
        Err(rfc6455::UsageError::ControlTooLong(126))
    );
    assert_eq!(
        s.pong(&[0; 200]),
        Err(rfc6455::UsageError::ControlTooLong(200))
    );
    assert!(s.pending_output().is_empty());
    s.ping(&[0; 125]).unwrap();
    assert_eq!(drain(&mut s).len(), 127);
}

#[test]
fn a_partial_frame_waits_for_the_rest() {
    // Bytes of a frame that has not finished produce nothing, and are
    // buffered until the rest comes.
    let mut c = client();
    c.handle_read(&UNMASKED_HELLO[..4]);
    assert_eq!(c.poll_event(), None);
    c.handle_read(&UNMASKED_HELLO[4..]);
    assert_eq!(c.poll_event(), Some(hello()));
    assert_eq!(c.poll_event(), None);
    assert_eq!(c.buffered_input(), 0);
}

#[test]
fn output_can_be_written_in_pieces() {
    // A driver may write any prefix of the pending output; what remains
    // must be exactly the rest, across many frames and large payloads.
    let mut s = server();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    s.send_binary(&big).unwrap();
    s.send_text("after").unwrap();
    let mut expected = s.pending_output().to_vec();
    let mut written = Vec::new();
    let mut step = 1;
    let mut pinged = false;
    while !s.pending_output().is_empty() {
        assert_eq!(s.pending_output(), &expected[written.len()..]);
        let n = step.min(s.pending_output().len());
        written.extend_from_slice(&s.pending_output()[..n]);
        s.consume_output(n);
        step = step * 3 + 1;
        if written.len() >= 1000 && !pinged {
            pinged = true;
            // New output queued mid-write goes after what is pending.
            s.ping(b"p").unwrap();
            expected.extend_from_slice(&[0x89, 0x01, b'p']);
        }
    }
    assert!(pinged);
    assert_eq!(written, expected);
    let mut c = client();
    let events = feed_all(&mut c, &written, Chunking::Whole);
    assert_eq!(events.len(), 3);
    assert_eq!(events[0], Event::Message(Message::from(big)));
}

#[test]
fn shrink_buffers_keeps_a_partial_frame() {
    // Releasing idle buffers must not drop a frame that is half read.
    let bytes = client_frame(BINARY, &[5; 1000]);
    let mut s = server();
    s.handle_read(&bytes[..3]);
    assert_eq!(common::poll_all(&mut s), []);
    s.shrink_buffers();
    s.handle_read(&bytes[3..600]);
    assert_eq!(common::poll_all(&mut s), []);
    s.shrink_buffers();
    s.handle_read(&bytes[600..]);
    s.shrink_buffers();
    assert_eq!(
        common::poll_all(&mut s),
        [Event::Message(Message::from(vec![5; 1000]))]
    );
    s.shrink_buffers();
    s.ping(b"still works").unwrap();
    assert_eq!(&drain(&mut s)[2..], b"still works");
}

#[test]
fn buffers_pass_between_connections_only_when_idle() {
    // Taking buffers must never lose a half-read frame or unsent output,
    // and buffers given to another connection must work there: the tokio
    // adapter lends them from waiting connections to busy ones.
    let bytes = client_frame(BINARY, &[5; 1000]);
    let mut a = server();
    assert!(a.take_buffers().is_none(), "nothing allocated yet");
    a.handle_read(&bytes[..600]);
    assert_eq!(common::poll_all(&mut a), []);
    assert!(a.take_buffers().is_none(), "a frame is half read");
    a.handle_read(&bytes[600..]);
    assert_eq!(
        common::poll_all(&mut a),
        [Event::Message(Message::from(vec![5; 1000]))]
    );
    a.send_binary(b"unsent").unwrap();
    assert!(a.take_buffers().is_none(), "output is pending");
    assert_eq!(&drain(&mut a)[2..], b"unsent");
    // A small send buffer stays (a broadcaster on another thread would
    // allocate it again for every message); the receive buffer goes.
    let kept = a.buffer_capacity() - a.take_buffers().expect("idle, with capacity").capacity();
    assert!(kept > 0 && kept <= 512, "kept {kept} bytes");
    assert_eq!(a.buffer_capacity(), kept);
    assert!(
        a.take_buffers().is_none(),
        "only the small send buffer is left"
    );
    // A large one goes too.
    a.handle_read(&bytes);
    common::poll_all(&mut a);
    a.send_binary(&[7; 2000]).unwrap();
    drain(&mut a);
    let buffers = a.take_buffers().expect("idle, with capacity");
    let capacity = buffers.capacity();
    assert!(capacity > 2000);
    assert_eq!(a.buffer_capacity(), 0);

    let mut b = server();
    assert!(b.needs_buffers());
    b.give_buffers(buffers);
    assert_eq!(b.buffer_capacity(), capacity);
    b.handle_read(&bytes);
    assert_eq!(
        common::poll_all(&mut b),
        [Event::Message(Message::from(vec![5; 1000]))]
    );
    b.send_binary(b"after").unwrap();
    assert_eq!(&drain(&mut b)[2..], b"after");
    // The first connection goes on with fresh buffers.
    a.handle_read(&bytes);
    assert_eq!(
        common::poll_all(&mut a),
        [Event::Message(Message::from(vec![5; 1000]))]
    );
}

#[test]
fn reading_into_the_receive_buffer_equals_handle_read() {
    // The tokio adapter reads straight into `read_buffer`, asking for
    // `read_size_hint` bytes; whatever the read sizes, the events must be
    // those of `handle_read`.
    let mut wire = client_frame(BINARY, &[7; 100_000]);
    wire.extend(client_frame(TEXT, b"after"));
    wire.extend(client_frame(BINARY, &[9; 70_000]));
    let expected = feed_all(&mut server(), &wire, Chunking::Whole);
    assert_eq!(expected.len(), 3);
    for default in [1, 7, 4096, 1 << 20] {
        let mut s = server();
        let mut events = Vec::new();
        let mut at = 0;
        while at < wire.len() {
            let size = s.read_size_hint(default);
            assert!(size > 0);
            let n = size.min(wire.len() - at);
            let mut buffer = s.read_buffer(size);
            assert!(buffer.chunk_mut().len() >= size, "room for the read");
            buffer.put_slice(&wire[at..at + n]);
            drop(buffer);
            at += n;
            let in_frame = size != default;
            events.extend(common::poll_all(&mut s));
            if in_frame {
                // A read sized to the rest of a frame ends with the frame:
                // nothing of the next one is left to copy.
                assert_eq!(s.buffered_input(), 0, "default read size {default}");
            }
        }
        assert_eq!(events, expected, "default read size {default}");
    }
}

#[test]
fn reading_through_unfilled_and_advance_equals_handle_read() {
    // The embedded adapter lends `unfilled` to a reader that takes
    // `&mut [u8]` and reports what it filled with `advance`; a read that
    // is cancelled (the deadline came first) drops the lend after
    // scribbling on it. Only what `advance` reported may be input.
    let mut wire = client_frame(BINARY, &[7; 10_000]);
    wire.extend(client_frame(TEXT, b"after"));
    wire.extend(client_frame(PING, b"p"));
    let expected = feed_all(&mut server(), &wire, Chunking::Whole);
    assert_eq!(expected.len(), 3);
    for (size, fill) in [(1, 1), (16, 5), (1024, 1000), (4096, 4096)] {
        let mut s = server();
        let mut events = Vec::new();
        let mut at = 0;
        let mut round = 0;
        while at < wire.len() {
            round += 1;
            let size = s.read_size_hint(size).min(size);
            let mut input = s.read_buffer(size);
            let room = input.unfilled();
            assert_eq!(room.len(), size, "the room asked for");
            assert!(room.iter().all(|&b| b == 0), "zeroed");
            room.fill(0xEE);
            if round % 3 == 0 {
                // Cancelled: nothing reported, nothing is input.
                drop(input);
                continue;
            }
            let n = fill.min(size).min(wire.len() - at);
            let room = input.unfilled();
            room[..n].copy_from_slice(&wire[at..at + n]);
            input.advance(n);
            drop(input);
            at += n;
            events.extend(common::poll_all(&mut s));
        }
        assert_eq!(events, expected, "reads of {fill} in a room of {size}");
    }
}

/// A payload only this connection sends is spliced into the output from
/// 1 KiB, unless the driver asked for copies up to a larger size
/// (`Plumbing::copy_below`); a prepared one is shared from 1 KiB either
/// way.
#[test]
fn a_driver_chooses_below_which_a_payload_is_copied() {
    let mid = Message::from(vec![5u8; 4096]);
    let one_piece = |s: &rfc6455::Connection| s.pending_output().len() == s.pending_output_len();
    let mut s = server();
    s.send(&mid).unwrap();
    assert!(!one_piece(&s), "spliced by default");
    let mut s = server();
    s.copy_below(16 << 10);
    s.send(&mid).unwrap();
    assert!(one_piece(&s), "copied below 16 KiB");
    s.send_owned(MessageKind::Binary, mid.as_bytes().into())
        .unwrap();
    assert!(one_piece(&s), "send_owned copies too");
    s.send_prepared(&rfc6455::PreparedMessage::binary(mid.as_bytes().to_vec()))
        .unwrap();
    assert!(!one_piece(&s), "a prepared payload is still shared");
    let expected: Vec<u8> = [0x82, 126, 0x10, 0x00]
        .into_iter()
        .chain(mid.as_bytes().iter().copied())
        .collect();
    let written: Vec<u8> = s.pending_output_pieces().flatten().copied().collect();
    assert_eq!(written, expected.repeat(3), "the same bytes either way");
}

#[test]
fn a_server_sends_large_messages_without_copying_and_in_order() {
    // `send` splices a large payload in after its header; the
    // bytes on the wire must be those of the copying path, in order with
    // the frames queued around it, however the driver writes them.
    let big = Message::from(vec![3u8; 5000]);
    let text = Message::from("é".repeat(800));
    let queue = |s: &mut rfc6455::Connection, shared: bool| {
        s.send_text("before").unwrap();
        for m in [&big, &text] {
            if shared {
                s.send(m).unwrap();
            } else {
                s.send_data(m.kind(), m.as_bytes()).unwrap();
            }
            s.ping(b"between").unwrap();
        }
    };
    let mut copied = server();
    queue(&mut copied, false);
    assert_eq!(
        copied.pending_output().len(),
        copied.pending_output_len(),
        "the copying path is one piece"
    );
    let expected = drain(&mut copied);

    let mut shared = server();
    queue(&mut shared, true);
    assert_eq!(shared.pending_output_len(), expected.len());
    assert!(shared.pending_output().len() < expected.len(), "spliced");
    let joined: Vec<u8> = shared.pending_output_pieces().flatten().copied().collect();
    assert_eq!(joined, expected, "the pieces");
    #[cfg(feature = "std")]
    {
        let mut slices = [std::io::IoSlice::new(&[]); 8];
        let n = shared.pending_output_vectored(&mut slices);
        let joined: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(joined, expected, "vectored pieces");
    }
    // Written in uneven steps across the pieces, at most 8 at a time.
    let mut written = Vec::new();
    while shared.pending_output_len() > 0 {
        let pieces = shared.pending_output_pieces().take(8);
        let piece: Vec<u8> = pieces.flatten().copied().collect();
        let step = piece.len().min(997);
        written.extend_from_slice(&piece[..step]);
        shared.consume_output(step);
    }
    assert_eq!(written, expected);
    let events = feed_all(&mut client(), &written, Chunking::Whole);
    assert_eq!(events[1], Event::Message(big));
    assert_eq!(events[3], Event::Message(text));
}

#[test]
fn a_client_masks_with_the_configured_key_source() {
    fn counting() -> [u8; 4] {
        use std::sync::atomic::{AtomicU8, Ordering};
        static NEXT: AtomicU8 = AtomicU8::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        [n, n, n, n]
    }
    let mut config = rfc6455::Config::default();
    config.mask_keys = rfc6455::MaskKeys::With(counting);
    let mut c = Connection::new(Role::Client, config);
    c.send_text("a").unwrap();
    c.send_text("b").unwrap();
    let frames = common::decode_frames(Role::Client, &drain(&mut c));
    let keys: Vec<[u8; 4]> = frames.iter().map(|f| f.mask.expect("masked")).collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1], "a fresh key per frame");
    assert!(keys
        .iter()
        .all(|k| k[0] == k[1] && k[1] == k[2] && k[2] == k[3]));
    assert_eq!(frames[0].payload, b"a");
}
