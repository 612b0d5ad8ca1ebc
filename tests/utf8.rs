//! Text must be UTF-8: RFC 6455 §8.1, §5.6, and the close reason of §5.5.1.

mod common;

use common::{
    assert_failed, client_frame, close_payload, feed_all, frame, header, last_closed, poll_all,
    same_for_every_chunking, server, Chunking, BINARY, CLOSE, CONTINUATION, KEY, TEXT,
};
use rfc6455::{Event, Message, ProtocolError, State};

fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, 0, Some(KEY), payload)
}

/// Byte strings that no continuation can make UTF-8.
const INVALID: &[&[u8]] = &[
    b"\x80",                                                           // a lone continuation byte
    b"\xbf",                                                           // another
    b"\xc0\xaf",                                                       // overlong '/'
    b"\xc1\xbf",                                                       // overlong
    b"\xe0\x80\xaf",                                                   // overlong, three bytes
    b"\xf0\x80\x80\xaf",                                               // overlong, four bytes
    b"\xed\xa0\x80",                                                   // a UTF-16 surrogate, U+D800
    b"\xed\xbf\xbf",                                                   // U+DFFF
    b"\xf4\x90\x80\x80", // U+110000, past the last code point
    b"\xf5\x80\x80\x80", // lead byte that never occurs
    b"\xfe",             // never in UTF-8
    b"\xff",             // never in UTF-8
    b"\xe2\x82\x41",     // a character cut short by ASCII
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", // Autobahn 6.3.1
    b"Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!\xff",
];

/// Valid text with characters of every width and the edge code points.
const VALID: &[&str] = &[
    "",
    "Hello",
    "κόσμε",
    "Hello-µ@ßöäüàá-UTF-8!!",
    "\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}",
    "\u{d7ff}\u{e000}\u{fffd}\u{fffe}",
    "𝄞 music, € money, ✓ check",
];

#[test]
fn invalid_text_fails_with_1007() {
    // §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but
    // finds that the byte stream is not, in fact, a valid UTF-8 stream,
    // that endpoint MUST _Fail the WebSocket Connection_." §7.4.1: "1007
    // indicates that an endpoint is terminating the connection because it
    // has received data within a message that was not consistent with the
    // type of the message (e.g., non-UTF-8 [RFC3629] data within a text
    // message)."
    for bad in INVALID {
        let bytes = masked(true, TEXT, bad);
        let (events, _) = same_for_every_chunking(server, &bytes, None);
        assert_eq!(events.len(), 1, "{bad:x?}: {events:?}");
        assert_eq!(
            last_closed(&events).error,
            Some(ProtocolError::InvalidUtf8),
            "{bad:x?}"
        );
        let mut s = server();
        let events = feed_all(&mut s, &bytes, Chunking::Whole);
        assert_failed(&mut s, &events, 1007);
    }
}

#[test]
fn valid_text_is_accepted_at_every_split() {
    for text in VALID {
        let bytes = masked(true, TEXT, text.as_bytes());
        let (events, _) = same_for_every_chunking(server, &bytes, None);
        assert_eq!(events, [Event::Message(Message::from(*text))], "{text:?}");
    }
}

#[test]
fn binary_is_not_checked() {
    for bad in INVALID {
        let mut s = server();
        let events = feed_all(&mut s, &masked(true, BINARY, bad), Chunking::Whole);
        assert_eq!(events, [Event::Message(Message::from(*bad))]);
    }
}

#[test]
fn text_split_inside_a_character_across_fragments_is_accepted() {
    // §5.6: "Note that a particular text frame might include a partial
    // UTF-8 sequence; however, the whole message MUST contain valid UTF-8."
    for text in VALID {
        let raw = text.as_bytes();
        for cut in 0..=raw.len() {
            let mut bytes = masked(false, TEXT, &raw[..cut]);
            bytes.extend(masked(true, CONTINUATION, &raw[cut..]));
            let mut s = server();
            let events = feed_all(&mut s, &bytes, Chunking::Whole);
            assert_eq!(
                events,
                [Event::Message(Message::from(*text))],
                "{text:?} cut at {cut}"
            );
        }
    }
    // One byte per frame: every character spans frames.
    let text = "€𝄞ü";
    let raw = text.as_bytes();
    let mut bytes = masked(false, TEXT, &raw[..1]);
    for b in &raw[1..raw.len() - 1] {
        bytes.extend(masked(false, CONTINUATION, std::slice::from_ref(b)));
    }
    bytes.extend(masked(true, CONTINUATION, &raw[raw.len() - 1..]));
    let (events, _) = same_for_every_chunking(server, &bytes, None);
    assert_eq!(events, [Event::Message(Message::from(text))]);
}

#[test]
fn fail_fast_within_a_frame_split_across_reads() {
    // Autobahn 6.4.*: an endpoint should fail as soon as the text is known
    // to be invalid, not when the message is complete.
    let payload = [&b"valid half "[..], b"\xed\xa0\x80 and more"].concat();
    let bytes = masked(true, TEXT, &payload);
    let split = bytes.len() - payload.len() + 11; // header + "valid half "
    let mut s = server();
    s.handle_read(&bytes[..split]);
    assert_eq!(poll_all(&mut s), [], "the first half is valid");
    assert_eq!(s.state(), State::Open);
    s.handle_read(&bytes[split..]);
    let events = poll_all(&mut s);
    assert_failed(&mut s, &events, 1007);
}

#[test]
fn fail_fast_before_the_rest_of_the_frame_arrives() {
    // A single-frame message of 20 bytes whose first 10 contain an invalid
    // sequence: the header and those 10 bytes are enough to fail.
    let payload = b"abcd\xf4\x90\x80\x80ef0123456789";
    assert_eq!(payload.len(), 20);
    let bytes = masked(true, TEXT, payload);
    let header_len = bytes.len() - 20;
    let mut s = server();
    s.handle_read(&bytes[..header_len + 10]);
    let events = poll_all(&mut s);
    assert_eq!(last_closed(&events).error, Some(ProtocolError::InvalidUtf8));
    assert_failed(&mut s, &events, 1007);

    // Even the first impossible byte pair is enough: 0xF4 0x90 can start
    // no character.
    let mut s = server();
    s.handle_read(&header(true, TEXT, 0, Some(KEY), 20));
    s.handle_read(&[b'a' ^ KEY[0], 0xf4 ^ KEY[1], 0x90 ^ KEY[2]]);
    let events = poll_all(&mut s);
    assert_failed(&mut s, &events, 1007);
}

#[test]
fn fail_fast_in_the_first_fragment() {
    // The rest of the message may never come; the bad fragment is enough.
    let mut s = server();
    let events = feed_all(&mut s, &masked(false, TEXT, b"ok \xff"), Chunking::Whole);
    assert_failed(&mut s, &events, 1007);

    // And in a continuation, before the final fragment.
    let mut s = server();
    let mut bytes = masked(false, TEXT, "caf".as_bytes());
    bytes.extend(masked(false, CONTINUATION, b"\xc3"));
    assert_eq!(feed_all(&mut s, &bytes, Chunking::Whole), []);
    let events = feed_all(&mut s, &masked(false, CONTINUATION, b"("), Chunking::Whole);
    assert_failed(&mut s, &events, 1007);
}

#[test]
fn a_message_ending_inside_a_character_fails_with_1007() {
    for cut in ["€", "𝄞", "ü"] {
        let raw = cut.as_bytes();
        let partial = &raw[..raw.len() - 1];
        // In one frame.
        let bytes = masked(true, TEXT, &[b"ok ", partial].concat());
        let (events, _) = same_for_every_chunking(server, &bytes, None);
        assert_eq!(last_closed(&events).error, Some(ProtocolError::InvalidUtf8));
        let mut s = server();
        let events = feed_all(&mut s, &bytes, Chunking::Whole);
        assert_failed(&mut s, &events, 1007);

        // Over fragments, ending with an empty final one.
        let mut bytes = masked(false, TEXT, b"ok ");
        bytes.extend(masked(false, CONTINUATION, partial));
        bytes.extend(masked(true, CONTINUATION, b""));
        let mut s = server();
        let events = feed_all(&mut s, &bytes, Chunking::Whole);
        assert_failed(&mut s, &events, 1007);
    }
}

#[test]
fn a_close_reason_that_is_not_utf8_fails_with_1007() {
    // §5.5.1: "Following the 2-byte integer, the body MAY contain
    // UTF-8-encoded data with value /reason/", and §8.1 applies to it as to
    // any text.
    for bad in [&b"\xff"[..], b"bye \xed\xa0\x80", b"cut \xe2\x82"] {
        let bytes = client_frame(CLOSE, &close_payload(1000, bad));
        let mut s = server();
        let events = feed_all(&mut s, &bytes, Chunking::Whole);
        assert_eq!(
            last_closed(&events).error,
            Some(ProtocolError::InvalidCloseReason)
        );
        assert_failed(&mut s, &events, 1007);
    }
    // A valid multi-byte reason is fine.
    let bytes = client_frame(CLOSE, &close_payload(1000, "¡adiós!".as_bytes()));
    let mut s = server();
    let events = feed_all(&mut s, &bytes, Chunking::Whole);
    let closed = last_closed(&events);
    assert!(closed.is_clean(), "{closed:?}");
    assert_eq!(closed.received.as_ref().unwrap().reason, "¡adiós!");
}
