//! The client's opening handshake: RFC 6455 §4.1 (the request it sends and
//! the checks on the server's response).

mod common;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::{poll_all, server_frame, BINARY, PING, TEXT};
use rfc6455::handshake::{accept_key, ClientHandshake, ClientRequest, HandshakeError, Progress};
use rfc6455::{Config, Connection, Event, MaskKeys, Message, Role, UsageError};

/// A handshake with the key of RFC 6455 §1.3 ("the sample nonce").
fn rfc_handshake(request: &ClientRequest) -> ClientHandshake {
    let key: [u8; 16] = *b"the sample nonce";
    ClientHandshake::with_key(request, Config::default(), key)
}

const RFC_ACCEPT: &str = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A response built from a status line and header lines, each without CRLF.
fn response(status: &str, fields: &[&str]) -> Vec<u8> {
    let mut out = format!("{status}\r\n");
    for field in fields {
        out.push_str(field);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

const SWITCHING: &str = "HTTP/1.1 101 Switching Protocols";
const UPGRADE: &str = "Upgrade: websocket";
const CONNECTION: &str = "Connection: Upgrade";

fn good_response() -> Vec<u8> {
    response(SWITCHING, &[UPGRADE, CONNECTION, RFC_ACCEPT])
}

fn request_lines(handshake: &ClientHandshake) -> Vec<String> {
    let text = std::str::from_utf8(handshake.request()).expect("ASCII request");
    assert!(text.ends_with("\r\n\r\n"), "{text}");
    text.strip_suffix("\r\n\r\n")
        .unwrap()
        .split("\r\n")
        .map(str::to_string)
        .collect()
}

fn field<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.split_once(": "))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

#[test]
fn the_request_has_every_required_field() {
    let request = ClientRequest::new("server.example.com:8080", "/chat?room=1");
    let handshake = ClientHandshake::new(&request, Config::default());
    let lines = request_lines(&handshake);

    // §4.1 item 2: "The method of the request MUST be GET, and the HTTP
    // version MUST be at least 1.1." Item 3: "The "Request-URI" part of the
    // request MUST match the /resource name/".
    assert_eq!(lines[0], "GET /chat?room=1 HTTP/1.1");
    // Item 4: "The request MUST contain a |Host| header field".
    assert_eq!(field(&lines, "Host"), ["server.example.com:8080"]);
    // Item 5: "an |Upgrade| header field whose value MUST include the
    // "websocket" keyword."
    assert_eq!(field(&lines, "Upgrade"), ["websocket"]);
    // Item 6: "a |Connection| header field whose value MUST include the
    // "Upgrade" token."
    assert_eq!(field(&lines, "Connection"), ["Upgrade"]);
    // Item 9: "The value of this header field MUST be 13."
    assert_eq!(field(&lines, "Sec-WebSocket-Version"), ["13"]);
    // Item 7: "The value of this header field MUST be a nonce consisting of
    // a randomly selected 16-byte value that has been base64-encoded".
    let keys = field(&lines, "Sec-WebSocket-Key");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].len(), 24);
    assert_eq!(BASE64.decode(keys[0]).unwrap().len(), 16);
    assert_eq!(keys[0], handshake.key());
    // No subprotocol offered, no field.
    assert!(field(&lines, "Sec-WebSocket-Protocol").is_empty());
    assert!(field(&lines, "Sec-WebSocket-Extensions").is_empty());
}

#[test]
fn keys_are_fresh_for_every_handshake() {
    // §4.1 item 7: "The nonce MUST be selected randomly for each connection."
    let request = ClientRequest::new("example.com", "/");
    let a = ClientHandshake::new(&request, Config::default());
    let b = ClientHandshake::new(&request, Config::default());
    assert_ne!(a.key(), b.key());
    assert_ne!(a.request(), b.request());
}

#[test]
fn an_empty_path_is_sent_as_slash() {
    let handshake = ClientHandshake::new(&ClientRequest::new("h", ""), Config::default());
    assert_eq!(request_lines(&handshake)[0], "GET / HTTP/1.1");
}

#[test]
fn protocols_and_extra_fields_are_sent_and_bad_ones_dropped() {
    let request = ClientRequest::new("example.com", "/")
        .protocol("chat")
        .protocol("superchat")
        .header("Origin", "http://example.com")
        .header("X-Evil", "a\r\nInjected: 1")
        .header("X-Evil2\n", "b");
    let handshake = ClientHandshake::new(&request, Config::default());
    let lines = request_lines(&handshake);
    // §4.1 item 10: "The request MAY include a header field with the name
    // |Sec-WebSocket-Protocol|. If present, this value indicates one or more
    // comma-separated subprotocol the client wishes to speak, ordered by
    // preference."
    assert_eq!(field(&lines, "Sec-WebSocket-Protocol"), ["chat, superchat"]);
    assert_eq!(field(&lines, "Origin"), ["http://example.com"]);
    let text = String::from_utf8(handshake.request().to_vec()).unwrap();
    assert!(!text.contains("X-Evil"), "{text}");
    assert!(!text.contains("Injected"), "{text}");
}

#[test]
fn host_and_path_cannot_split_the_request() {
    // `ClientRequest::header` drops a field with CR or LF; the host and
    // the path must not be a way around that. Bytes that cannot appear in a
    // request line or a field value are percent-encoded.
    let request = ClientRequest::new("a.com\r\nX-Injected: 1", "/p ath\r\nX-Other: 2\u{e9}");
    let handshake = ClientHandshake::new(&request, Config::default());
    let lines = request_lines(&handshake);
    assert_eq!(lines[0], "GET /p%20ath%0D%0AX-Other:%202%C3%A9 HTTP/1.1");
    assert_eq!(field(&lines, "Host"), ["a.com%0D%0AX-Injected:%201"]);
    assert!(field(&lines, "X-Injected").is_empty());
    assert!(field(&lines, "X-Other").is_empty());
    assert_eq!(request.path(), "/p%20ath%0D%0AX-Other:%202%C3%A9");
    // Ordinary targets are sent as given.
    let request = ClientRequest::new("[::1]:8080", "/chat?room=1&x=%41#frag");
    assert_eq!(request.host(), "[::1]:8080");
    assert_eq!(request.path(), "/chat?room=1&x=%41#frag");
}

#[test]
fn the_rfc_response_is_accepted() {
    let handshake = rfc_handshake(&ClientRequest::new("server.example.com", "/chat"));
    assert_eq!(handshake.key(), "dGhlIHNhbXBsZSBub25jZQ==");
    let connected = handshake
        .handle_read(&good_response())
        .unwrap()
        .done()
        .expect("complete");
    assert_eq!(connected.response.status, 101);
    assert_eq!(connected.response.protocol, None);
    assert_eq!(
        connected.response.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(connected.connection.role(), rfc6455::Role::Client);
}

#[test]
fn bad_responses_give_the_specific_error() {
    let offered = ClientRequest::new("server.example.com", "/chat").protocol("chat");
    let plain = ClientRequest::new("server.example.com", "/chat");
    let wrong_accept = format!("Sec-WebSocket-Accept: {}", accept_key(b"another key"));
    #[rustfmt::skip]
    let cases: Vec<(&str, &ClientRequest, Vec<u8>, HandshakeError)> = vec![
        // §4.1: "If the status code received from the server is not 101,
        // the client handles the response per HTTP procedures."
        ("200", &plain, response("HTTP/1.1 200 OK", &[UPGRADE, CONNECTION, RFC_ACCEPT]), HandshakeError::Status(200)),
        ("404", &plain, response("HTTP/1.1 404 Not Found", &["Content-Length: 0"]), HandshakeError::Status(404)),
        ("426", &plain, response("HTTP/1.1 426 Upgrade Required", &["Sec-WebSocket-Version: 13"]), HandshakeError::Status(426)),
        // "If the response lacks an |Upgrade| header field or the |Upgrade|
        // header field contains a value that is not an ASCII
        // case-insensitive match for the value "websocket", the client MUST
        // _Fail the WebSocket Connection_."
        ("missing Upgrade", &plain, response(SWITCHING, &[CONNECTION, RFC_ACCEPT]), HandshakeError::MissingUpgrade),
        ("Upgrade: h2c", &plain, response(SWITCHING, &["Upgrade: h2c", CONNECTION, RFC_ACCEPT]), HandshakeError::MissingUpgrade),
        // "If the response lacks a |Connection| header field or the
        // |Connection| header field doesn't contain a token that is an
        // ASCII case-insensitive match for the value "Upgrade", the client
        // MUST _Fail the WebSocket Connection_."
        ("missing Connection", &plain, response(SWITCHING, &[UPGRADE, RFC_ACCEPT]), HandshakeError::MissingConnectionUpgrade),
        ("Connection: close", &plain, response(SWITCHING, &[UPGRADE, "Connection: close", RFC_ACCEPT]), HandshakeError::MissingConnectionUpgrade),
        // "If the response lacks a |Sec-WebSocket-Accept| header field or
        // the |Sec-WebSocket-Accept| contains a value other than the
        // base64-encoded SHA-1 of the concatenation of the
        // |Sec-WebSocket-Key| ... with the string
        // "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" ..., the client MUST _Fail
        // the WebSocket Connection_."
        ("missing accept", &plain, response(SWITCHING, &[UPGRADE, CONNECTION]), HandshakeError::InvalidAccept),
        ("wrong accept", &plain, response(SWITCHING, &[UPGRADE, CONNECTION, &wrong_accept]), HandshakeError::InvalidAccept),
        ("accept is the key", &plain, response(SWITCHING, &[UPGRADE, CONNECTION, "Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ=="]), HandshakeError::InvalidAccept),
        ("accept twice", &plain, response(SWITCHING, &[UPGRADE, CONNECTION, RFC_ACCEPT, RFC_ACCEPT]), HandshakeError::InvalidAccept),
        // "If the response includes a |Sec-WebSocket-Protocol| header field
        // and this header field indicates the use of a subprotocol that was
        // not present in the client's handshake ..., the client MUST _Fail
        // the WebSocket Connection_."
        ("protocol, none offered", &plain, response(SWITCHING, &[UPGRADE, CONNECTION, RFC_ACCEPT, "Sec-WebSocket-Protocol: chat"]), HandshakeError::UnexpectedProtocol("chat".into())),
        ("protocol not offered", &offered, response(SWITCHING, &[UPGRADE, CONNECTION, RFC_ACCEPT, "Sec-WebSocket-Protocol: superchat"]), HandshakeError::UnexpectedProtocol("superchat".into())),
        ("two protocols", &offered, response(SWITCHING, &[UPGRADE, CONNECTION, RFC_ACCEPT, "Sec-WebSocket-Protocol: chat, chat"]), HandshakeError::UnexpectedProtocol("chat, chat".into())),
        // "If the response includes a |Sec-WebSocket-Extensions| header
        // field and this header field indicates the use of an extension
        // that was not present in the client's handshake ..., the client
        // MUST _Fail the WebSocket Connection_."
        ("extension not offered", &plain, response(SWITCHING, &[UPGRADE, CONNECTION, RFC_ACCEPT, "Sec-WebSocket-Extensions: permessage-deflate"]), HandshakeError::UnexpectedExtension("permessage-deflate".into())),
    ];
    for (name, request, bytes, error) in cases {
        let handshake = rfc_handshake(request);
        let got = handshake
            .handle_read(&bytes)
            .map(|c| c.done().map(|c| c.response));
        assert_eq!(got.unwrap_err(), error, "{name}");
    }
}

#[test]
fn response_tokens_are_case_insensitive() {
    let bytes = response(
        SWITCHING,
        &[
            "upgrade: WebSocket",
            "connection: keep-alive, UPGRADE",
            "sec-websocket-accept:   s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  ",
        ],
    );
    let handshake = rfc_handshake(&ClientRequest::new("h", "/"));
    assert!(handshake.handle_read(&bytes).unwrap().done().is_some());
}

#[test]
fn an_offered_protocol_is_agreed() {
    let request = ClientRequest::new("h", "/")
        .protocol("chat")
        .protocol("superchat");
    let bytes = response(
        SWITCHING,
        &[
            UPGRADE,
            CONNECTION,
            RFC_ACCEPT,
            "Sec-WebSocket-Protocol: superchat",
        ],
    );
    let connected = rfc_handshake(&request)
        .handle_read(&bytes)
        .unwrap()
        .done()
        .unwrap();
    assert_eq!(connected.response.protocol.as_deref(), Some("superchat"));
}

#[test]
fn every_split_gives_the_same_result() {
    let mut bytes = good_response();
    let head_len = bytes.len();
    bytes.extend(server_frame(TEXT, b"hi"));
    let describe = |connected: rfc6455::handshake::Connected| {
        let mut connection = connected.connection;
        (
            connected.response.status,
            connected.response.headers,
            poll_all(&mut connection),
        )
    };
    let request = ClientRequest::new("server.example.com", "/chat");
    let whole = describe(
        rfc_handshake(&request)
            .handle_read(&bytes)
            .unwrap()
            .done()
            .unwrap(),
    );
    assert_eq!(whole.2, [Event::Message(Message::from("hi"))]);

    for split in 0..=bytes.len() {
        let handshake = rfc_handshake(&request);
        let connected = match handshake.handle_read(&bytes[..split]).unwrap() {
            Progress::Done(mut connected) => {
                assert!(split >= head_len, "complete before the blank line");
                connected.connection.handle_read(&bytes[split..]);
                connected
            }
            Progress::Partial(handshake) => {
                assert!(split < head_len, "the head was complete at {split}");
                handshake
                    .handle_read(&bytes[split..])
                    .unwrap()
                    .done()
                    .unwrap()
            }
        };
        assert_eq!(describe(connected), whole, "split at {split}");
    }

    // One byte at a time: the handshake comes back for every byte of the
    // head but the last, and is done at the last.
    let mut state = Progress::Partial(rfc_handshake(&request));
    for (i, b) in bytes.iter().enumerate() {
        state = match state {
            Progress::Partial(handshake) => handshake.handle_read(&[*b]).unwrap(),
            Progress::Done(mut connected) => {
                connected.connection.handle_read(&[*b]);
                Progress::Done(connected)
            }
        };
        let done = matches!(state, Progress::Done(_));
        assert_eq!(done, i + 1 >= head_len, "byte {i}");
    }
    let connected = state.done().expect("done");
    assert_eq!(describe(connected), whole, "one byte at a time");
}

#[test]
fn frames_after_the_101_reach_the_connection() {
    // A server may send frames right behind its response, and one read
    // can carry both.
    let mut bytes = good_response();
    bytes.extend(server_frame(TEXT, b"welcome"));
    bytes.extend(server_frame(PING, b"?"));
    bytes.extend(server_frame(BINARY, &[0xff; 300]));
    let connected = rfc_handshake(&ClientRequest::new("h", "/"))
        .handle_read(&bytes)
        .unwrap()
        .done()
        .unwrap();
    let mut connection = connected.connection;
    assert_eq!(
        poll_all(&mut connection),
        [
            Event::Message(Message::from("welcome")),
            Event::Ping(bytes::Bytes::from_static(b"?")),
            Event::Message(Message::from(vec![0xff; 300])),
        ]
    );
}

#[test]
fn an_oversized_response_head_is_refused() {
    let mut config = Config::default();
    config.max_header_bytes = 128;
    let padding = format!("X-Padding: {}", "x".repeat(200));
    let bytes = response(SWITCHING, &[UPGRADE, CONNECTION, RFC_ACCEPT, &padding]);
    let handshake =
        ClientHandshake::with_key(&ClientRequest::new("h", "/"), config, *b"the sample nonce");
    assert_eq!(
        handshake.handle_read(&bytes).map(|c| c.done().is_some()),
        Err(HandshakeError::HeadTooLarge { max: 128 })
    );
}

#[test]
fn the_nonce_comes_from_the_key_source_and_a_client_needs_one() {
    let request = ClientRequest::new("example.com", "/");
    // Four keys make the 16-byte nonce, in order.
    let mut config = Config::default();
    config.mask_keys = MaskKeys::Fixed([1, 2, 3, 4]);
    let handshake = ClientHandshake::try_new(&request, config).unwrap();
    assert_eq!(handshake.key(), BASE64.encode([1, 2, 3, 4].repeat(4)));

    // No key source: a clear error for the client, never a panic from
    // try_new; the server never masks and needs none.
    let mut config = Config::default();
    config.mask_keys = MaskKeys::Unset;
    assert_eq!(
        ClientHandshake::try_new(&request, config.clone()).unwrap_err(),
        UsageError::NoKeySource
    );
    assert_eq!(
        Connection::try_new(Role::Client, config.clone()).unwrap_err(),
        UsageError::NoKeySource
    );
    assert!(Connection::try_new(Role::Server, config).is_ok());
}

/// Bytes 0x80 to 0xFF in a response's fields (obs-text, which HTTP
/// allows) give the specific error, never a panic: in
/// `Sec-WebSocket-Protocol` (which crashed another runtime's client in
/// 2026), `Sec-WebSocket-Extensions`, `Sec-WebSocket-Accept`, `Upgrade`,
/// and a field of no interest (which is ignored).
#[test]
fn bytes_above_ascii_in_response_fields() {
    let offered = ClientRequest::new("server.example.com", "/chat").protocol("chat");
    let head = |extra: &[u8]| -> Vec<u8> {
        let mut bytes = response(SWITCHING, &[UPGRADE, CONNECTION, RFC_ACCEPT]);
        bytes.truncate(bytes.len() - 2);
        bytes.extend_from_slice(extra);
        bytes.extend_from_slice(b"\r\n\r\n");
        bytes
    };
    let with_upgrade = |value: &[u8]| -> Vec<u8> {
        let mut bytes =
            format!("{SWITCHING}\r\n{CONNECTION}\r\n{RFC_ACCEPT}\r\nUpgrade: ").into_bytes();
        bytes.extend_from_slice(value);
        bytes.extend_from_slice(b"\r\n\r\n");
        bytes
    };
    let cases: Vec<(&str, Vec<u8>, Result<(), HandshakeError>)> = vec![
        (
            "protocol",
            head(b"Sec-WebSocket-Protocol: ch\xffat\x80"),
            Err(HandshakeError::UnexpectedProtocol(
                "ch\u{fffd}at\u{fffd}".into(),
            )),
        ),
        (
            "extension",
            head(b"Sec-WebSocket-Extensions: \xc3\xa9x"),
            Err(HandshakeError::UnexpectedExtension("(malformed)".into())),
        ),
        (
            "upgrade",
            with_upgrade(b"websocket\xff"),
            Err(HandshakeError::MissingUpgrade),
        ),
        (
            "a field of no interest",
            head(b"X-Note: \xfe\xff\x80"),
            Ok(()),
        ),
    ];
    for (name, bytes, want) in cases {
        let got = rfc_handshake(&offered)
            .handle_read(&bytes)
            .map(|c| c.done().map(drop).expect("a whole head"));
        match (&got, &want) {
            (Ok(()), Ok(())) => {}
            (Err(got), Err(want)) => assert_eq!(got, want, "{name}"),
            _ => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}
