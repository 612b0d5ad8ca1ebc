//! The closing handshake: RFC 6455 §5.5.1 (Close frames), §7 (closing the
//! connection) and §7.4 (status codes).

mod common;

use bytes::Bytes;
use common::{
    assert_failed, client, client_frame, close_payload, conn, drain, drain_frames, feed_all,
    last_closed, peer_frame, poll_all, server, server_frame, Chunking, BINARY, CLOSE, KEY, PING,
    TEXT,
};
use rfc6455::{
    CloseCode, CloseFrame, Event, Initiator, Message, MessageKind, ProtocolError, Role, State,
    UsageError,
};

const VALID_CODES: &[u16] = &[
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
];
const INVALID_CODES: &[u16] = &[
    0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
];

fn peer_close(role: Role, code: u16, reason: &[u8]) -> Vec<u8> {
    peer_frame(role, true, CLOSE, &close_payload(code, reason))
}

#[test]
fn valid_received_codes_are_echoed() {
    // §5.5.1: "If an endpoint receives a Close frame and did not previously
    // send a Close frame, the endpoint MUST send a Close frame in response.
    // (When sending a Close frame in response, the endpoint typically echos
    // the status code it received.)"
    for role in [Role::Server, Role::Client] {
        for &code in VALID_CODES {
            let mut c = conn(role);
            let events = feed_all(&mut c, &peer_close(role, code, b"done"), Chunking::Whole);
            assert_eq!(events.len(), 1);
            let closed = last_closed(&events);
            assert_eq!(closed.initiator, Initiator::Remote, "{code}");
            assert_eq!(
                closed.received,
                Some(CloseFrame::new(CloseCode(code), "done"))
            );
            assert_eq!(closed.sent.as_ref().map(|f| f.code), Some(CloseCode(code)));
            assert_eq!(closed.error, None);
            assert!(closed.is_clean());
            assert_eq!(closed.code(), CloseCode(code));
            assert_eq!(c.state(), State::Closed);

            let frames = drain_frames(&mut c);
            assert_eq!(frames.len(), 1, "{role:?} {code}");
            assert_eq!(frames[0].close_code(), Some(code), "{role:?}");
        }
    }
}

#[test]
fn invalid_received_codes_fail_with_1002() {
    // §7.4.2 lists the codes that "MUST NOT be set as a status code in a
    // Close control frame by an endpoint" (1004 reserved, 1005, 1006, 1015)
    // and says "Status codes in the range 0-999 are not used." §7.1.7 then
    // asks us to fail a connection whose peer breaks the protocol.
    for role in [Role::Server, Role::Client] {
        for &code in INVALID_CODES {
            let mut c = conn(role);
            let events = feed_all(&mut c, &peer_close(role, code, b""), Chunking::Whole);
            assert_eq!(
                last_closed(&events).error,
                Some(ProtocolError::InvalidCloseCode(code)),
                "{role:?} {code}"
            );
            assert_failed(&mut c, &events, 1002);
        }
    }
}

#[test]
fn a_one_byte_close_payload_fails_with_1002() {
    // §5.5.1: "If there is a body, the first two bytes of the body MUST be
    // a 2-byte unsigned integer (in network byte order) representing a
    // status code".
    let mut s = server();
    let events = feed_all(&mut s, &client_frame(CLOSE, &[0x03]), Chunking::Whole);
    assert_eq!(
        last_closed(&events).error,
        Some(ProtocolError::CloseLengthOne)
    );
    assert_failed(&mut s, &events, 1002);
}

#[test]
fn an_empty_close_is_answered_with_an_empty_close() {
    // §5.5.1: "The Close frame MAY contain a body". §7.1.5: "If this Close
    // control frame contains no status code, _The WebSocket Connection
    // Close Code_ is considered to be 1005."
    let mut s = server();
    let events = feed_all(&mut s, &client_frame(CLOSE, b""), Chunking::Whole);
    let closed = last_closed(&events);
    assert_eq!(closed.code(), CloseCode::NO_STATUS);
    assert!(closed.is_clean());
    assert_eq!(drain(&mut s), [0x88, 0x00]);
    assert!(s.should_close_transport());
}

#[test]
fn a_local_close_waits_for_the_peer() {
    let mut s = server();
    s.close(CloseCode::GOING_AWAY, "restart").unwrap();
    assert_eq!(s.state(), State::Closing);
    assert!(!s.can_send());
    let frames = drain_frames(&mut s);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].close_code(), Some(1001));
    assert_eq!(&frames[0].payload[2..], b"restart");
    assert!(!s.should_close_transport(), "the peer has not answered");

    // §5.5.1: "An endpoint MAY delay sending a Close frame until its
    // current message is sent": the peer's messages keep arriving after our
    // Close, until its own.
    let mut bytes = client_frame(TEXT, b"in flight");
    bytes.extend(client_frame(BINARY, &[1, 2]));
    let events = feed_all(&mut s, &bytes, Chunking::Whole);
    assert_eq!(
        events,
        [
            Event::Message(Message::from("in flight")),
            Event::Message(Message::from(&[1u8, 2][..]))
        ]
    );
    assert_eq!(s.state(), State::Closing);

    let events = feed_all(
        &mut s,
        &client_frame(CLOSE, &close_payload(1001, b"")),
        Chunking::Whole,
    );
    let closed = last_closed(&events);
    assert_eq!(closed.initiator, Initiator::Local);
    assert!(closed.is_clean());
    assert_eq!(
        closed.sent,
        Some(CloseFrame::new(CloseCode(1001), "restart"))
    );
    assert_eq!(closed.received, Some(CloseFrame::new(CloseCode(1001), "")));
    assert_eq!(s.state(), State::Closed);
    // We already sent our Close: no second one.
    assert!(s.pending_output().is_empty());
    // §7.1.1: "the underlying TCP connection, in most normal cases, SHOULD
    // be closed first by the server".
    assert!(s.should_close_transport());
    assert_eq!(s.poll_event(), None);
}

#[test]
fn no_pong_after_our_close() {
    // §5.5.2 only asks for a Pong "unless it already received a Close
    // frame"; once we sent ours we send nothing at all (the closing
    // handshake is under way), but the Ping is still reported.
    for role in [Role::Server, Role::Client] {
        let mut c = conn(role);
        c.close(CloseCode::NORMAL, "").unwrap();
        drain(&mut c);
        let events = feed_all(&mut c, &peer_frame(role, true, PING, b"?"), Chunking::Whole);
        assert_eq!(events, [Event::Ping(Bytes::from_static(b"?"))]);
        assert!(c.pending_output().is_empty(), "{role:?} answered a ping");
    }
}

#[test]
fn sending_after_close_is_a_usage_error_and_queues_nothing() {
    // §5.5.1: "The application MUST NOT send any more data frames after
    // sending a Close frame."
    let check = |c: &mut rfc6455::Connection| {
        assert_eq!(c.send_text("x"), Err(UsageError::Closed));
        assert_eq!(c.send_binary(b"x"), Err(UsageError::Closed));
        assert_eq!(c.send(&Message::from("x")), Err(UsageError::Closed));
        assert_eq!(
            c.send_fragmented(MessageKind::Text, b"xy", 1),
            Err(UsageError::Closed)
        );
        assert_eq!(
            c.send_fragment(MessageKind::Binary, b"x", false),
            Err(UsageError::Closed)
        );
        assert_eq!(c.ping(b""), Err(UsageError::Closed));
        assert_eq!(c.pong(b""), Err(UsageError::Closed));
        assert_eq!(c.close(CloseCode::NORMAL, ""), Err(UsageError::Closed));
        assert!(c.pending_output().is_empty(), "output queued after close");
    };

    // After our own close.
    let mut s = server();
    s.close(CloseCode::NORMAL, "").unwrap();
    drain(&mut s);
    check(&mut s);
    assert_eq!(s.state(), State::Closing);

    // After the closing handshake the peer started.
    let mut s = server();
    feed_all(&mut s, &client_frame(CLOSE, &[0x03, 0xe8]), Chunking::Whole);
    drain(&mut s);
    check(&mut s);

    // After a failure.
    let mut s = server();
    feed_all(&mut s, &server_frame(TEXT, b"unmasked"), Chunking::Whole);
    drain(&mut s);
    check(&mut s);
}

#[test]
fn close_refuses_bad_codes_and_long_reasons() {
    let mut s = server();
    // §7.4.1/§7.4.2: 1005, 1006 and 1015 are reported, never sent.
    for code in [0u16, 999, 1004, 1006, 1015, 1016, 2999, 5000, 65535] {
        assert_eq!(
            s.close(CloseCode(code), ""),
            Err(UsageError::InvalidCloseCode(code)),
            "{code}"
        );
    }
    // §5.5: control frame payloads are at most 125 bytes: 2 of code, 123
    // of reason.
    let long = "r".repeat(124);
    assert_eq!(
        s.close(CloseCode::NORMAL, &long),
        Err(UsageError::ReasonTooLong(124))
    );
    // A reason needs a code to go with it.
    assert_eq!(
        s.close(CloseCode::NO_STATUS, "why"),
        Err(UsageError::ReasonTooLong(3))
    );
    // None of that changed anything.
    assert_eq!(s.state(), State::Open);
    assert!(s.pending_output().is_empty());
    assert!(s.can_send());

    // The longest reason fits exactly.
    s.close(CloseCode::NORMAL, &long[..123]).unwrap();
    let frames = drain_frames(&mut s);
    assert_eq!(frames[0].payload.len(), 125);
}

#[test]
fn close_without_a_code_sends_an_empty_payload() {
    let mut c = client();
    c.close(CloseCode::NO_STATUS, "").unwrap();
    assert_eq!(drain(&mut c), [0x88, 0x80, KEY[0], KEY[1], KEY[2], KEY[3]]);
}

#[test]
fn server_closes_the_transport_after_the_handshake() {
    // Peer-initiated: our echo must be written first.
    let mut s = server();
    feed_all(&mut s, &client_frame(CLOSE, &[0x03, 0xe8]), Chunking::Whole);
    assert_eq!(s.state(), State::Closed);
    assert!(!s.should_close_transport(), "our Close is not written yet");
    let pending = s.pending_output().len();
    s.consume_output(pending - 1);
    assert!(!s.should_close_transport(), "one byte still pending");
    s.consume_output(1);
    assert!(s.should_close_transport());
}

#[test]
fn client_waits_for_the_server_to_close_the_transport() {
    // §7.1.1: the client "SHOULD wait for the server to close the
    // connection but MAY close the connection at any time after sending
    // and receiving a Close message".
    // Server-initiated.
    let mut c = client();
    let events = feed_all(&mut c, &server_frame(CLOSE, &[0x03, 0xe8]), Chunking::Whole);
    assert!(last_closed(&events).is_clean());
    drain(&mut c);
    assert_eq!(c.state(), State::Closed);
    assert!(!c.should_close_transport());
    c.handle_eof();
    assert_eq!(c.poll_event(), None, "Closed was already delivered");
    assert!(c.should_close_transport());

    // Client-initiated.
    let mut c = client();
    c.close(CloseCode::NORMAL, "").unwrap();
    drain(&mut c);
    let events = feed_all(&mut c, &server_frame(CLOSE, &[0x03, 0xe8]), Chunking::Whole);
    let closed = last_closed(&events);
    assert_eq!(closed.initiator, Initiator::Local);
    assert!(closed.is_clean());
    assert!(c.pending_output().is_empty());
    assert!(!c.should_close_transport());
    c.handle_eof();
    assert!(c.should_close_transport());
}

#[test]
fn client_closes_the_transport_after_failing() {
    let mut c = client();
    let events = feed_all(&mut c, &client_frame(TEXT, b"masked"), Chunking::Whole);
    // `assert_failed` checks should_close_transport before and after the
    // Close frame is written, with no end of stream from the server.
    assert_failed(&mut c, &events, 1002);
}

#[test]
fn eof_inside_a_frame_is_1006() {
    // §7.1.5: "If _The WebSocket Connection is Closed_ and no Close control
    // frame was received by the endpoint (such as could occur if the
    // underlying transport connection is lost), _The WebSocket Connection
    // Close Code_ is considered to be 1006."
    let bytes = client_frame(TEXT, b"Hello");
    for cut in 1..bytes.len() {
        let mut s = server();
        s.handle_read(&bytes[..cut]);
        assert_eq!(poll_all(&mut s), []);
        s.handle_eof();
        let events = poll_all(&mut s);
        assert_eq!(events.len(), 1, "cut at {cut}");
        let closed = last_closed(&events);
        assert_eq!(closed.code(), CloseCode::ABNORMAL);
        assert_eq!(
            closed.error,
            Some(ProtocolError::UnexpectedEof { mid_frame: true }),
            "cut at {cut}"
        );
        assert_eq!(closed.initiator, Initiator::Remote);
        assert_eq!(closed.sent, None);
        assert_eq!(closed.received, None);
        assert!(!closed.is_clean());
        assert_eq!(s.state(), State::Closed);
        // 1006 "MUST NOT be set as a status code in a Close control frame"
        // (§7.4.1), and the transport is gone anyway: nothing to send.
        assert!(s.pending_output().is_empty());
        assert!(s.should_close_transport());
    }
}

#[test]
fn eof_between_frames_is_1006_not_mid_frame() {
    let mut s = server();
    let mut bytes = client_frame(TEXT, b"a");
    bytes.extend(client_frame(PING, b"b"));
    s.handle_read(&bytes);
    s.handle_eof();
    // The events of the bytes already fed come first.
    let events = poll_all(&mut s);
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0], Event::Message(Message::from("a")));
    assert_eq!(events[1], Event::Ping(Bytes::from_static(b"b")));
    assert_eq!(
        last_closed(&events).error,
        Some(ProtocolError::UnexpectedEof { mid_frame: false })
    );
    assert_eq!(last_closed(&events).code(), CloseCode::ABNORMAL);
}

#[test]
fn eof_between_fragments_is_not_mid_frame() {
    // `UnexpectedEof::mid_frame` says "whether the transport ended inside
    // a frame": between two whole fragments of a message it did not.
    let mut s = server();
    s.handle_read(&common::frame(false, TEXT, 0, Some(KEY), b"Hel"));
    assert_eq!(poll_all(&mut s), []);
    s.handle_eof();
    let events = poll_all(&mut s);
    assert_eq!(events.len(), 1, "{events:?}");
    let closed = last_closed(&events);
    assert_eq!(
        closed.error,
        Some(ProtocolError::UnexpectedEof { mid_frame: false })
    );
    assert_eq!(closed.code(), CloseCode::ABNORMAL);
    assert!(s.pending_output().is_empty());
}

#[test]
fn eof_after_our_close_is_not_clean() {
    let mut s = server();
    s.close(CloseCode::NORMAL, "").unwrap();
    drain(&mut s);
    s.handle_eof();
    let events = poll_all(&mut s);
    let closed = last_closed(&events);
    assert_eq!(closed.sent, Some(CloseFrame::new(CloseCode::NORMAL, "")));
    assert_eq!(closed.received, None);
    assert!(!closed.is_clean());
    assert_eq!(closed.code(), CloseCode::ABNORMAL);
    assert!(s.should_close_transport());
}

#[test]
fn input_after_the_peers_close_is_ignored() {
    // §5.5.1: "The application MUST NOT send any more data frames after
    // sending a Close frame." Whatever follows the peer's Close is ignored.
    let mut bytes = client_frame(CLOSE, &[0x03, 0xe8]);
    bytes.extend(client_frame(TEXT, b"late"));
    bytes.extend(client_frame(PING, b"late"));
    let mut s = server();
    let events = feed_all(&mut s, &bytes, Chunking::Whole);
    assert_eq!(events.len(), 1);
    assert!(last_closed(&events).is_clean());
    let frames = drain_frames(&mut s);
    assert_eq!(frames.len(), 1, "only the echoed Close: {frames:?}");
    s.handle_read(&client_frame(TEXT, b"later"));
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.buffered_input(), 0);
}

#[test]
fn a_bad_close_after_ours_fails_without_a_second_close() {
    let mut s = server();
    s.close(CloseCode::NORMAL, "").unwrap();
    drain(&mut s);
    let events = feed_all(
        &mut s,
        &client_frame(CLOSE, &close_payload(1005, b"")),
        Chunking::Whole,
    );
    let closed = last_closed(&events);
    assert_eq!(closed.error, Some(ProtocolError::InvalidCloseCode(1005)));
    assert_eq!(closed.code(), CloseCode::PROTOCOL_ERROR);
    assert_eq!(closed.initiator, Initiator::Local);
    assert!(
        s.pending_output().is_empty(),
        "a second Close frame was sent"
    );
    assert!(s.should_close_transport());
}

#[test]
fn a_close_received_mid_message_is_honoured() {
    // Control frames may come between fragments (§5.4), Close included.
    let mut bytes = common::frame(false, TEXT, 0, Some(KEY), b"unfinished");
    bytes.extend(client_frame(CLOSE, &close_payload(1001, b"")));
    let mut s = server();
    let events = feed_all(&mut s, &bytes, Chunking::Whole);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(last_closed(&events).is_clean());
    assert_eq!(drain_frames(&mut s)[0].close_code(), Some(1001));
}
