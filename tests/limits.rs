//! Size limits: `Config::max_frame_size` and `Config::max_message_size`,
//! answered with 1009 (§7.4.1: "1009 indicates that an endpoint is
//! terminating the connection because it has received a message that is
//! too big for it to process").

mod common;

use common::{
    assert_failed, conn_with, feed_all, frame, header, last_closed, poll_all, Chunking, BINARY,
    CONTINUATION, KEY, PING, TEXT,
};
use rfc6455::{Config, Connection, Event, Message, ProtocolError, Role};

fn limited(frame_max: Option<usize>, message_max: Option<usize>) -> Connection {
    let mut config = Config::default();
    config.max_frame_size = frame_max;
    config.max_message_size = message_max;
    conn_with(Role::Server, config)
}

fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, 0, Some(KEY), payload)
}

#[test]
fn a_huge_declared_frame_fails_on_its_header_alone() {
    // A frame declaring 2^62 bytes: refuse it before buffering anything.
    let mut s = Connection::new(Role::Server, Config::default());
    let head = header(true, BINARY, 0, Some(KEY), 1 << 62);
    assert_eq!(head.len(), 14);
    s.handle_read(&head);
    let events = poll_all(&mut s);
    assert_eq!(
        last_closed(&events).error,
        Some(ProtocolError::FrameTooBig {
            len: 1 << 62,
            max: 16 << 20
        })
    );
    assert_eq!(s.buffered_input(), 0);
    assert_failed(&mut s, &events, 1009);

    // Whatever payload follows is dropped, not buffered.
    s.handle_read(&vec![0; 1 << 20]);
    assert_eq!(s.buffered_input(), 0);
    assert_eq!(s.poll_event(), None);
}

#[test]
fn an_oversized_frame_fails_as_soon_as_its_header_arrives() {
    let mut s = limited(Some(100), None);
    let bytes = masked(true, BINARY, &[0; 101]);
    // One byte at a time: nothing until the header is whole, then 1009
    // with none of the payload read.
    for (i, b) in bytes[..6].iter().enumerate() {
        s.handle_read(std::slice::from_ref(b));
        let events = poll_all(&mut s);
        if i < 5 {
            assert_eq!(events, [], "byte {i}");
        } else {
            assert_failed(&mut s, &events, 1009);
        }
    }
}

#[test]
fn a_frame_exactly_at_the_limit_is_accepted() {
    for opcode in [TEXT, BINARY] {
        let mut s = limited(Some(100), Some(100));
        let events = feed_all(&mut s, &masked(true, opcode, &[b'a'; 100]), Chunking::Whole);
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(matches!(&events[0], Event::Message(m) if m.as_bytes().len() == 100));

        let mut s = limited(Some(100), Some(100));
        let events = feed_all(&mut s, &masked(true, opcode, &[b'a'; 101]), Chunking::Whole);
        assert_failed(&mut s, &events, 1009);
    }
}

#[test]
fn a_fragmented_message_over_the_limit_fails() {
    let mut s = limited(Some(100), Some(250));
    let mut bytes = masked(false, TEXT, &[b'a'; 100]);
    bytes.extend(masked(true, PING, b"p"));
    bytes.extend(masked(false, CONTINUATION, &[b'b'; 100]));
    let events = feed_all(&mut s, &bytes, Chunking::Whole);
    assert_eq!(events.len(), 1, "only the ping so far: {events:?}");
    common::drain(&mut s);

    // The third fragment would make 300 bytes: refused on its header.
    let events = feed_all(
        &mut s,
        &header(true, CONTINUATION, 0, Some(KEY), 100),
        Chunking::Whole,
    );
    assert_eq!(
        last_closed(&events).error,
        Some(ProtocolError::MessageTooBig { len: 300, max: 250 })
    );
    assert_failed(&mut s, &events, 1009);
}

#[test]
fn a_fragmented_message_exactly_at_the_limit_is_accepted() {
    let mut s = limited(Some(100), Some(250));
    let mut bytes = masked(false, BINARY, &[1; 100]);
    bytes.extend(masked(false, CONTINUATION, &[2; 100]));
    bytes.extend(masked(true, CONTINUATION, &[3; 50]));
    let events = feed_all(&mut s, &bytes, Chunking::Sizes(&[7]));
    let expected: Vec<u8> = [[1; 100].as_slice(), &[2; 100], &[3; 50]].concat();
    assert_eq!(events, [Event::Message(Message::from(expected))]);

    // The count starts again with the next message.
    let events = feed_all(&mut s, &masked(true, BINARY, &[4; 100]), Chunking::Whole);
    assert_eq!(events, [Event::Message(Message::from(vec![4; 100]))]);
}

#[test]
fn control_frames_do_not_count_towards_the_message() {
    let mut s = limited(None, Some(10));
    let mut bytes = masked(false, TEXT, b"12345");
    for _ in 0..5 {
        bytes.extend(masked(true, PING, &[b'p'; 100]));
    }
    bytes.extend(masked(true, CONTINUATION, b"67890"));
    let events = feed_all(&mut s, &bytes, Chunking::Whole);
    assert_eq!(events.len(), 6);
    assert_eq!(events[5], Event::Message(Message::from("1234567890")));
}

#[test]
fn no_limits_means_none() {
    let mut s = limited(None, None);
    let head = header(true, BINARY, 0, Some(KEY), 1 << 40);
    s.handle_read(&head);
    assert_eq!(poll_all(&mut s), []);
    assert_eq!(s.state(), rfc6455::State::Open);
}

#[test]
fn streaming_mode_applies_the_message_limit_too() {
    let mut config = Config::default();
    config.streaming = true;
    config.max_message_size = Some(10);
    let mut s = conn_with(Role::Server, config);
    let mut bytes = masked(false, BINARY, &[0; 6]);
    bytes.extend(masked(true, CONTINUATION, &[0; 6]));
    let events = feed_all(&mut s, &bytes, Chunking::Whole);
    assert!(matches!(events[0], Event::Fragment(_)));
    assert_failed(&mut s, &events, 1009);
}
