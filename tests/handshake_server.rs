//! The server's opening handshake: RFC 6455 §4.2.1 (reading the client's
//! request) and §4.2.2 (the response).

mod common;

use common::{client_frame, poll_all, BINARY, TEXT};
use rfc6455::handshake::{accept_key, Accept, HandshakeError, Progress, Request, ServerHandshake};
use rfc6455::{Config, Event, Message};

/// The request of RFC 6455 §1.2, with its Origin and subprotocols.
const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\n\
    Host: server.example.com\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Origin: http://example.com\r\n\
    Sec-WebSocket-Protocol: chat, superchat\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// A request built from header lines, each without its CRLF.
fn request(start: &str, fields: &[&str]) -> Vec<u8> {
    let mut out = format!("{start}\r\n");
    for field in fields {
        out.push_str(field);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

const HOST: &str = "Host: server.example.com";
const UPGRADE: &str = "Upgrade: websocket";
const CONNECTION: &str = "Connection: Upgrade";
const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
const VERSION: &str = "Sec-WebSocket-Version: 13";

fn good_fields() -> Vec<&'static str> {
    vec![HOST, UPGRADE, CONNECTION, KEY, VERSION]
}

/// Feeds all of `bytes` in one read.
fn parse(bytes: &[u8]) -> Result<Option<Request>, HandshakeError> {
    ServerHandshake::new(Config::default())
        .handle_read(bytes)
        .map(Progress::done)
}

/// Feeds `bytes` one at a time: the handshake must take every byte but
/// the last without finishing, and finish at the last.
fn byte_by_byte(mut handshake: ServerHandshake, bytes: &[u8]) -> Request {
    let (last, init) = bytes.split_last().unwrap();
    for (at, b) in init.iter().enumerate() {
        handshake = match handshake.handle_read(std::slice::from_ref(b)).unwrap() {
            Progress::Partial(handshake) => handshake,
            Progress::Done(_) => panic!("done at byte {at} of {}", bytes.len()),
        };
    }
    handshake
        .handle_read(&[*last])
        .unwrap()
        .done()
        .expect("done at the last byte")
}

/// Parses and accepts; the error of whichever step failed.
fn accept(bytes: &[u8]) -> Result<rfc6455::handshake::Accepted, HandshakeError> {
    parse(bytes)?
        .expect("a complete head")
        .accept(Accept::new())
}

/// The response header block as a string (the 101 has no body).
fn text(response: &[u8]) -> &str {
    std::str::from_utf8(response).expect("responses are ASCII")
}

/// Everything observable about a parsed request, for comparisons.
fn summary(request: &Request) -> String {
    format!(
        "{} {} {:?} {:?} {:?} {:?} {:?}",
        request.method(),
        request.path(),
        request.headers().collect::<Vec<_>>(),
        request.protocols(),
        request.origin(),
        request.leftover(),
        request.clone().accept(Accept::new()).map(|a| a.response),
    )
}

#[test]
fn accept_key_matches_the_rfc_example() {
    // §1.3: "the server would concatenate the string
    // "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" to form the string
    // "dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11". The
    // server would then take the SHA-1 hash of this, giving the value 0xb3
    // 0x7a 0x4f ... This value is then base64-encoded ..., to give the value
    // "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="".
    assert_eq!(
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn the_rfc_request_is_accepted_with_the_rfc_response() {
    let request = parse(RFC_REQUEST.as_bytes()).unwrap().expect("complete");
    assert_eq!(request.method(), "GET");
    assert_eq!(request.path(), "/chat");
    assert_eq!(request.host(), Some("server.example.com"));
    assert_eq!(request.origin(), Some("http://example.com"));
    assert_eq!(request.protocols(), ["chat", "superchat"]);
    assert!(request.is_upgrade());
    assert_eq!(request.validate(), Ok("dGhlIHNhbXBsZSBub25jZQ=="));
    assert!(request.leftover().is_empty());

    let accepted = request.accept(Accept::new()).unwrap();
    // §4.2.2 item 5: "A Status-Line with a 101 response code", "An
    // |Upgrade| header field with value "websocket"", "A |Connection| header
    // field with value "Upgrade"", "A |Sec-WebSocket-Accept| header field".
    assert_eq!(
        text(&accepted.response),
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    );
    assert_eq!(accepted.protocol, None);
}

#[test]
fn every_split_and_one_byte_at_a_time_give_the_same_request() {
    let bytes = RFC_REQUEST.as_bytes();
    let whole = summary(&parse(bytes).unwrap().unwrap());

    for split in 0..=bytes.len() {
        let handshake = ServerHandshake::new(Config::default());
        let request = match handshake.handle_read(&bytes[..split]).unwrap() {
            Progress::Done(request) => {
                assert_eq!(split, bytes.len(), "complete before the blank line");
                request
            }
            Progress::Partial(handshake) => handshake
                .handle_read(&bytes[split..])
                .unwrap()
                .done()
                .expect("complete after the rest"),
        };
        assert_eq!(summary(&request), whole, "split at {split}");
    }

    let request = byte_by_byte(ServerHandshake::new(Config::default()), bytes);
    assert_eq!(summary(&request), whole, "one byte at a time");
}

#[test]
fn bad_requests_get_the_exact_status() {
    let without = |name: &str| -> Vec<&'static str> {
        good_fields()
            .into_iter()
            .filter(|f| !f.starts_with(name))
            .collect()
    };
    let with = |extra: &'static str, drop: &str| -> Vec<&'static str> {
        let mut fields = without(drop);
        fields.push(extra);
        fields
    };
    let get = "GET /chat HTTP/1.1";
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<u8>, u16, HandshakeError)> = vec![
        // §4.2.1 item 2: "A |Host| header field containing the server's authority."
        ("missing Host", request(get, &without("Host")), 400, HandshakeError::MissingHost),
        ("empty Host", request(get, &with("Host:", "Host")), 400, HandshakeError::MissingHost),
        // item 3: "An |Upgrade| header field containing the value "websocket""
        ("missing Upgrade", request(get, &without("Upgrade")), 400, HandshakeError::MissingUpgrade),
        ("Upgrade: h2c", request(get, &with("Upgrade: h2c", "Upgrade")), 400, HandshakeError::MissingUpgrade),
        // item 4: "A |Connection| header field that includes the token "Upgrade""
        ("missing Connection", request(get, &without("Connection")), 400, HandshakeError::MissingConnectionUpgrade),
        ("Connection: keep-alive", request(get, &with("Connection: keep-alive", "Connection")), 400, HandshakeError::MissingConnectionUpgrade),
        // item 5: "A |Sec-WebSocket-Key| header field with a base64-encoded
        // (...) value that, when decoded, is 16 bytes in length."
        ("missing key", request(get, &without("Sec-WebSocket-Key")), 400, HandshakeError::InvalidKey),
        ("key not base64", request(get, &with("Sec-WebSocket-Key: !!!!not*base64!!!!!!!!", "Sec-WebSocket-Key")), 400, HandshakeError::InvalidKey),
        ("key of 15 bytes", request(get, &with("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA", "Sec-WebSocket-Key")), 400, HandshakeError::InvalidKey),
        ("key of 17 bytes", request(get, &with("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=", "Sec-WebSocket-Key")), 400, HandshakeError::InvalidKey),
        ("key repeated", request(get, &with("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==", "X-None")), 400, HandshakeError::InvalidKey),
        // item 1: "An HTTP/1.1 or higher GET request"
        ("POST", request("POST /chat HTTP/1.1", &good_fields()), 405, HandshakeError::MethodNotGet("POST".into())),
        ("HTTP/1.0", request("GET /chat HTTP/1.0", &good_fields()), 400, HandshakeError::HttpVersion),
        // item 6: "A |Sec-WebSocket-Version| header field, with a value of 13."
        ("version 8", request(get, &with("Sec-WebSocket-Version: 8", "Sec-WebSocket-Version")), 426, HandshakeError::UnsupportedVersion),
        ("missing version", request(get, &without("Sec-WebSocket-Version")), 426, HandshakeError::UnsupportedVersion),
        ("version repeated", request(get, &with("Sec-WebSocket-Version: 8", "X-None")), 426, HandshakeError::UnsupportedVersion),
        // §4.1: the handshake is a head alone; a body would be read as
        // frames (request smuggling behind a proxy that forwards it).
        ("Content-Length: 5", request(get, &with("Content-Length: 5", "X-None")), 400, HandshakeError::RequestBody),
        ("Transfer-Encoding", request(get, &with("Transfer-Encoding: chunked", "X-None")), 400, HandshakeError::RequestBody),
        ("two lengths, one 0", request(get, &[good_fields(), vec!["Content-Length: 0", "Content-Length: 7"]].concat()), 400, HandshakeError::RequestBody),
    ];
    for (name, bytes, status, error) in cases {
        let got = accept(&bytes).map(|a| a.response).unwrap_err();
        assert_eq!(got, error, "{name}");
        assert_eq!(got.status(), status, "{name}");
        let response = got.response();
        let prefix = format!("HTTP/1.1 {status} ");
        assert!(
            text(&response).starts_with(&prefix),
            "{name}: {}",
            text(&response)
        );
        if status == 426 {
            // §4.2.2: "If this version does not match a version understood
            // by the server, the server MUST abort the WebSocket handshake
            // described in this section and instead send an appropriate HTTP
            // error code (such as 426 Upgrade Required) and a
            // |Sec-WebSocket-Version| header field indicating the
            // version(s) the server is capable of understanding."
            assert!(
                text(&response).contains("\r\nSec-WebSocket-Version: 13\r\n"),
                "{name}: {}",
                text(&response)
            );
        }
        if status == 405 {
            assert!(text(&response).contains("\r\nAllow: GET\r\n"), "{name}");
        }
    }
}

#[test]
fn a_head_larger_than_the_limit_is_431() {
    let mut config = Config::default();
    config.max_header_bytes = 256;
    let padding = format!("X-Padding: {}", "a".repeat(300));
    let mut fields = good_fields();
    fields.push(&padding);
    let bytes = request("GET / HTTP/1.1", &fields);

    let err = ServerHandshake::new(config.clone())
        .handle_read(&bytes)
        .unwrap_err();
    assert_eq!(err, HandshakeError::HeadTooLarge { max: 256 });
    assert_eq!(err.status(), 431);
    assert!(text(&err.response()).starts_with("HTTP/1.1 431 "));

    // Fed a byte at a time, it fails as soon as the limit is passed,
    // without waiting for an end that may never come.
    let mut handshake = ServerHandshake::new(config);
    let mut fed = 0;
    let err = loop {
        handshake = match handshake.handle_read(&bytes[fed..fed + 1]) {
            Ok(Progress::Partial(handshake)) => {
                fed += 1;
                handshake
            }
            Ok(Progress::Done(_)) => panic!("accepted an oversized head"),
            Err(err) => break err,
        };
    };
    assert_eq!(err.status(), 431);
    assert_eq!(fed, 256, "failed at byte {}", fed + 1);
}

#[test]
fn a_head_exactly_at_the_limit_is_accepted() {
    let bytes = request("GET / HTTP/1.1", &good_fields());
    let mut config = Config::default();
    config.max_header_bytes = bytes.len();
    assert!(ServerHandshake::new(config.clone())
        .handle_read(&bytes)
        .unwrap()
        .done()
        .is_some());
    config.max_header_bytes = bytes.len() - 1;
    let err = ServerHandshake::new(config)
        .handle_read(&bytes)
        .unwrap_err();
    assert_eq!(err.status(), 431);
}

#[test]
fn too_many_header_fields_is_431() {
    let mut config = Config::default();
    config.max_headers = 8;
    let extra: Vec<String> = (0..4).map(|i| format!("X-Extra-{i}: {i}")).collect();
    let mut fields = good_fields();
    fields.extend(extra.iter().map(String::as_str));
    let bytes = request("GET / HTTP/1.1", &fields);
    let err = ServerHandshake::new(config.clone())
        .handle_read(&bytes)
        .unwrap_err();
    assert_eq!(err, HandshakeError::TooManyHeaders { max: 8 });
    assert_eq!(err.status(), 431);
    assert!(text(&err.response()).starts_with("HTTP/1.1 431 "));

    // Eight fields exactly is fine.
    let bytes = request("GET / HTTP/1.1", &fields[..8]);
    assert!(ServerHandshake::new(config)
        .handle_read(&bytes)
        .unwrap()
        .done()
        .is_some());
}

#[test]
fn token_lists_are_case_insensitive_and_span_lines() {
    // §4.2.1 items 3 and 4: the values are "treated as an ASCII
    // case-insensitive value", and Connection need only *include* the
    // token; HTTP lets a list field be split over several lines.
    let variants: &[&[&str]] = &[
        &["Connection: keep-alive, Upgrade", "Upgrade: websocket"],
        &["connection: upgrade", "upgrade: WebSocket"],
        &["CONNECTION: UPGRADE", "UPGRADE: WEBSOCKET"],
        &[
            "Connection: keep-alive",
            "Connection: Upgrade",
            "Upgrade: websocket",
        ],
        &[
            "Connection: keep-alive,upgrade ,  close",
            "Upgrade: websocket",
        ],
        &["Connection: Upgrade", "Upgrade: h2c, websocket"],
        &["Connection: Upgrade", "Upgrade: h2c", "Upgrade: websocket"],
    ];
    for fields in variants {
        let mut all = vec![HOST, KEY, VERSION];
        all.extend_from_slice(fields);
        let bytes = request("GET / HTTP/1.1", &all);
        let accepted = accept(&bytes).unwrap_or_else(|e| panic!("{fields:?}: {e}"));
        assert!(text(&accepted.response).starts_with("HTTP/1.1 101 "));
    }
    // Lenient about a token's neighbours, strict about the token itself.
    let bytes = request(
        "GET / HTTP/1.1",
        &[HOST, KEY, VERSION, UPGRADE, "Connection: Upgraded"],
    );
    assert_eq!(
        accept(&bytes).unwrap_err(),
        HandshakeError::MissingConnectionUpgrade
    );
}

#[test]
fn subprotocol_is_sent_only_if_offered() {
    let rfc = || parse(RFC_REQUEST.as_bytes()).unwrap().unwrap();

    // §4.2.2 /subprotocol/: "The value chosen MUST be derived from the
    // client's handshake, specifically by selecting one of the values from
    // the |Sec-WebSocket-Protocol| field that the server is willing to use
    // for this connection (if any)."
    let accepted = rfc().accept(Accept::new().protocol("superchat")).unwrap();
    assert_eq!(accepted.protocol.as_deref(), Some("superchat"));
    assert!(text(&accepted.response).contains("\r\nSec-WebSocket-Protocol: superchat\r\n"));

    let accepted = rfc().accept(Accept::new().protocol("mqtt")).unwrap();
    assert_eq!(accepted.protocol, None);
    assert!(!text(&accepted.response).contains("Sec-WebSocket-Protocol"));

    // Without an offer, no choice can be sent.
    let bytes = request("GET / HTTP/1.1", &good_fields());
    let accepted = parse(&bytes)
        .unwrap()
        .unwrap()
        .accept(Accept::new().protocol("chat"))
        .unwrap();
    assert_eq!(accepted.protocol, None);
    assert!(!text(&accepted.response).contains("Sec-WebSocket-Protocol"));
}

#[test]
fn bytes_after_the_request_reach_the_connection() {
    // A client may send its first frame right behind the request; one read
    // can carry both.
    let mut bytes = request("GET / HTTP/1.1", &good_fields());
    let head_len = bytes.len();
    bytes.extend(client_frame(TEXT, b"early"));
    bytes.extend(client_frame(BINARY, &[1, 2, 3]));

    for split in [0, head_len - 1, head_len, head_len + 3, bytes.len()] {
        let handshake = ServerHandshake::new(Config::default());
        let (request, rest) = match handshake.handle_read(&bytes[..split]).unwrap() {
            Progress::Done(request) => (request, &bytes[split..]),
            Progress::Partial(handshake) => {
                let request = handshake.handle_read(&bytes[split..]).unwrap().done();
                (request.expect("complete"), &[][..])
            }
        };
        let mut connection = request.accept(Accept::new()).unwrap().connection;
        connection.handle_read(rest);
        assert_eq!(
            poll_all(&mut connection),
            [
                Event::Message(Message::from("early")),
                Event::Message(Message::from(&[1u8, 2, 3][..])),
            ],
            "split at {split}"
        );
    }
}

#[test]
fn leftover_larger_than_the_head_limit_is_not_part_of_the_head() {
    // The limit is on the head; a first read may carry much more.
    let mut config = Config::default();
    config.max_header_bytes = 256;
    let mut bytes = request("GET / HTTP/1.1", &good_fields());
    bytes.extend(client_frame(BINARY, &[7; 10_000]));
    let request = ServerHandshake::new(config)
        .handle_read(&bytes)
        .unwrap()
        .done()
        .expect("complete");
    let mut connection = request.accept(Accept::new()).unwrap().connection;
    assert_eq!(
        poll_all(&mut connection),
        [Event::Message(Message::from(vec![7; 10_000]))]
    );
}

#[test]
fn reject_builds_the_given_status() {
    let request = parse(RFC_REQUEST.as_bytes()).unwrap().unwrap();
    let response = request.reject(403, "origin not allowed");
    let response = text(&response);
    assert!(
        response.starts_with("HTTP/1.1 403 Forbidden\r\n"),
        "{response}"
    );
    assert!(
        response.ends_with("\r\n\r\norigin not allowed\n"),
        "{response}"
    );
    let length = response
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length");
    assert_eq!(length, "origin not allowed\n".len().to_string());
}

#[test]
fn a_large_head_fed_one_byte_at_a_time_completes() {
    // The end of the head must be found in time linear in its size: a
    // parser that rescans the whole buffer on every read would take
    // ~2 * 10^10 steps here and not finish.
    let mut config = Config::default();
    config.max_header_bytes = 1 << 20;
    let padding = format!("X-Padding: {}", "p".repeat(200_000));
    let mut fields = good_fields();
    fields.push(&padding);
    let bytes = request("GET /big HTTP/1.1", &fields);
    assert!(bytes.len() > 200_000);

    let request = byte_by_byte(ServerHandshake::new(config), &bytes);
    assert_eq!(request.path(), "/big");
    assert_eq!(request.header("X-Padding").map(str::len), Some(200_000));
    assert!(request.accept(Accept::new()).is_ok());
}

#[test]
fn malformed_http_is_400() {
    for bytes in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: a\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
    ] {
        let err = parse(bytes).unwrap_err();
        assert!(matches!(err, HandshakeError::Malformed(_)), "{err:?}");
        assert_eq!(err.status(), 400);
        assert!(text(&err.response()).starts_with("HTTP/1.1 400 "));
    }
}

#[test]
fn query_parameters_are_percent_decoded() {
    let bytes = request(
        "GET /ws?room=a%20b&token=x%2By+z&empty&bad=%zz HTTP/1.1",
        &good_fields(),
    );
    let request = parse(&bytes).unwrap().unwrap();
    assert_eq!(
        request.query(),
        Some("room=a%20b&token=x%2By+z&empty&bad=%zz")
    );
    let cases = [
        ("room", Some("a b")),
        ("token", Some("x+y z")),
        ("empty", Some("")),
        ("bad", Some("%zz")),
        ("missing", None),
    ];
    for (name, expected) in cases {
        assert_eq!(request.query_param(name).as_deref(), expected, "{name}");
    }
}

/// `Content-Length: 0` announces no body: the upgrade goes on, and what
/// follows the head is read as frames.
#[test]
fn content_length_zero_is_no_body() {
    let mut fields = good_fields();
    fields.push("Content-Length: 0");
    let accepted = accept(&request("GET /chat HTTP/1.1", &fields)).expect("accepted");
    assert!(text(&accepted.response).starts_with("HTTP/1.1 101 "));
}

/// A server that expects the PROXY protocol.
fn behind_haproxy() -> ServerHandshake {
    let mut config = Config::default();
    config.proxy_protocol = true;
    ServerHandshake::new(config)
}

/// haproxy's `send-proxy-v2` header for 203.0.113.7:51234 -> 10.0.0.2:443.
fn proxy_v2() -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    out.extend_from_slice(&[203, 0, 113, 7, 10, 0, 0, 2, 0xc8, 0x22, 0x01, 0xbb]);
    out
}

#[test]
fn a_proxy_header_in_any_split_gives_the_same_request_and_address() {
    use rfc6455::forwarded::{ProxyHeader, TrustedProxies};
    let source = "203.0.113.7:51234".parse().unwrap();
    let destination = "10.0.0.2:443".parse().unwrap();
    let expected = ProxyHeader::Proxied {
        source,
        destination,
    };
    let v1 = b"PROXY TCP4 203.0.113.7 10.0.0.2 51234 443\r\n".to_vec();
    for header in [v1, proxy_v2()] {
        let mut bytes = header.clone();
        bytes.extend_from_slice(RFC_REQUEST.as_bytes());
        bytes.extend_from_slice(b"frames");
        let head_end = bytes.len() - b"frames".len();
        for split in 0..=bytes.len() {
            let request = match behind_haproxy().handle_read(&bytes[..split]).unwrap() {
                Progress::Done(request) => request,
                Progress::Partial(handshake) => handshake
                    .handle_read(&bytes[split..])
                    .unwrap()
                    .done()
                    .expect("complete after the rest"),
            };
            assert_eq!(request.proxy_header(), Some(&expected), "split at {split}");
            assert_eq!(request.path(), "/chat");
            // What came after the head in the read that completed it: the
            // first read, or the second with the rest.
            let completed_by = if split < head_end { bytes.len() } else { split };
            let after = &bytes[head_end..completed_by];
            assert_eq!(request.leftover(), after, "split at {split}");
            // The socket's peer is the balancer; the header names the client.
            let balancer = "10.0.0.9".parse().unwrap();
            assert_eq!(
                request.client_addr(balancer, &TrustedProxies::none()),
                source.ip()
            );
        }
        let request = byte_by_byte(behind_haproxy(), &bytes[..bytes.len() - 6]);
        assert_eq!(request.proxy_header(), Some(&expected), "byte by byte");
    }
}

#[test]
fn the_proxy_protocol_is_read_only_when_configured() {
    let mut forged = b"PROXY TCP4 1.2.3.4 10.0.0.2 1 443\r\n".to_vec();
    forged.extend_from_slice(RFC_REQUEST.as_bytes());
    // Not configured: a client's PROXY line is a malformed request, 400.
    let err = parse(&forged).unwrap_err();
    assert_eq!(err.status(), 400, "{err}");
    // Configured: a connection without the header is refused, 400, and
    // the response says why.
    let err = behind_haproxy()
        .handle_read(RFC_REQUEST.as_bytes())
        .unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(
        text(&err.response()).contains("bad PROXY protocol header"),
        "{err}"
    );
    // A header longer than v1 allows, without its end, is refused rather
    // than read for ever.
    let err = behind_haproxy().handle_read(&[b'P'; 1]).unwrap();
    let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 200]].concat();
    let Progress::Partial(handshake) = err else {
        panic!("P is a beginning")
    };
    assert!(handshake.handle_read(&long[1..]).is_err());
}
