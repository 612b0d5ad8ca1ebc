//! Arbitrary pseudo-header and header fields into an HTTP/2 extended
//! CONNECT (`ExtendedConnectRequest`, RFC 8441).
//!
//! Invariants, beyond "never panics":
//! - `accept` succeeds exactly when `validate` does;
//! - a refusal has the error's status (400 where HTTP/1.1 says 426), a
//!   reason ending in a newline, and lowercase field names;
//! - an acceptance is a 200 with lowercase names, agrees on a subprotocol
//!   only if it was offered, and a client that offered what this request
//!   offers accepts it; a message then crosses from that client to us;
//!   a client reading the same fields with a status outside 2xx refuses
//!   it as that status;
//! - every field of a response, the embedder's own included (the first
//!   input field's, through `Accept::header`), is one the `http` crate
//!   takes as it is and HTTP/2 allows: a lowercase token, a value without
//!   control characters, nothing about one HTTP/1.1 connection;
//! - our clients' requests for the input's `:authority` and `:path` as
//!   host and path, with the first input field as the embedder's own:
//!   over HTTP/1.1 the head parses whole as one GET, its path and Host
//!   visible ASCII (`ClientRequest` percent-encodes the rest), with no
//!   field but the handshake's and the embedder's; over HTTP/2 every
//!   field one `http` and HTTP/2 take, as above.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rfc6455::handshake::{
    Accept, ClientHandshake, ClientRequest, ExtendedConnectClient, ExtendedConnectRequest,
    HandshakeError, PseudoHeaders,
};
use rfc6455::plumbing::Plumbing;
use rfc6455::{Config, Event, MaskKeys, Message};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    method: &'a str,
    protocol: Option<&'a str>,
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: Option<&'a str>,
    fields: Vec<(&'a str, &'a [u8])>,
    /// Which offered subprotocol to choose, if any.
    choose: Option<u8>,
    /// Swap in a valid request's fields, so that acceptance is reached.
    valid: bool,
    /// Then break that valid request in one or more ways, so that each of
    /// `validate`'s refusals is reached from a CONNECT that has all but
    /// one thing right: bit 0 the input's `:protocol` (other or none),
    /// bits 1-3 no `:scheme`, `:path`, `:authority`, bit 4 no version.
    breaks: u8,
    /// A status for a second client to read with the accepted fields:
    /// anything outside 2xx is refused as that status.
    status: u16,
}

/// Each field goes out over h2 as it is: the `http` crate takes it, and
/// it is not one HTTP/2 forbids (RFC 9113 §8.2.2).
fn check_fields(fields: &[(String, String)]) {
    const FORBIDDEN: [&str; 6] = [
        "connection",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
    ];
    for (name, value) in fields {
        let parsed = http::HeaderName::from_bytes(name.as_bytes()).expect("a field name");
        assert_eq!(parsed.as_str(), name, "not lowercase");
        http::HeaderValue::from_str(value).expect("a field value");
        assert!(!FORBIDDEN.contains(&name.as_str()), "{name} over HTTP/2");
    }
}

/// Our clients' requests for any host, path and embedder's field.
fn check_client_requests(input: &Input<'_>) {
    let mut request = ClientRequest::new(
        input.authority.unwrap_or("example.com"),
        input.path.unwrap_or("/"),
    );
    let own = input.fields.first().map(|(name, _)| *name);
    if let Some((name, value)) = input.fields.first() {
        request = request.header(*name, String::from_utf8_lossy(value));
    }
    let mut config = Config::default();
    config.mask_keys = MaskKeys::Fixed([1, 2, 3, 4]);
    check_fields(ExtendedConnectClient::new(&request, config.clone()).headers());

    let handshake = ClientHandshake::with_key(&request, config, [7; 16]);
    let bytes = handshake.request();
    let mut fields = [httparse::EMPTY_HEADER; 8];
    let mut parsed = httparse::Request::new(&mut fields);
    let status = parsed.parse(bytes).expect("our request parses");
    assert_eq!(
        status,
        httparse::Status::Complete(bytes.len()),
        "a split head"
    );
    assert_eq!(parsed.method, Some("GET"));
    assert_eq!(parsed.path, Some(request.path()));
    let visible = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
    assert!(visible(request.path()) && visible(request.host()));
    const OURS: [&str; 5] = [
        "Host",
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
    ];
    for (i, field) in parsed.headers.iter().enumerate() {
        let expected = OURS.get(i).copied().or(own);
        assert_eq!(Some(field.name), expected, "a field we did not write");
    }
    let host = parsed.headers.first().map(|field| field.value);
    assert_eq!(host, Some(request.host().as_bytes()));
}

fuzz_target!(|input: Input<'_>| {
    check_client_requests(&input);
    let mut pseudo = PseudoHeaders {
        method: input.method.into(),
        protocol: input.protocol.map(Into::into),
        scheme: input.scheme.map(Into::into),
        authority: input.authority.map(Into::into),
        path: input.path.map(Into::into),
    };
    let mut fields = input.fields.clone();
    if input.valid {
        pseudo.method = "CONNECT".into();
        pseudo.protocol = Some("websocket".into());
        pseudo.scheme.get_or_insert_with(|| "https".into());
        pseudo.authority = Some("example.com".into());
        pseudo.path = Some("/".into());
        fields.retain(|(name, _)| !name.eq_ignore_ascii_case("sec-websocket-version"));
        let bit = |n: u8| input.breaks & (1 << n) != 0;
        if bit(0) {
            pseudo.protocol = input.protocol.map(Into::into);
        }
        if bit(1) {
            pseudo.scheme = None;
        }
        if bit(2) {
            pseudo.path = None;
        }
        if bit(3) {
            pseudo.authority = None;
        }
        if !bit(4) {
            fields.push(("sec-websocket-version", b"13"));
        }
    }
    let request = ExtendedConnectRequest::new(Config::default(), &pseudo, fields.iter().copied());
    let offered: Vec<String> = request.protocols().iter().map(|p| p.to_string()).collect();
    let mut options = Accept::new();
    if let Some(choice) = input
        .choose
        .and_then(|i| offered.get(usize::from(i) % offered.len().max(1)))
    {
        options = options.protocol(choice.clone());
    }
    if let Some((name, value)) = input.fields.first() {
        options = options.header(*name, String::from_utf8_lossy(value));
    }
    let valid = request.validate();
    match request.accept(options) {
        Err(error) => {
            assert_eq!(Err(error.clone()), valid, "accept and validate disagree");
            let response = error.extended_connect_response();
            let expected = match error {
                HandshakeError::UnsupportedVersion => 400,
                ref other => other.status(),
            };
            assert_eq!(response.status, expected);
            check_fields(&response.headers);
            assert!(response.body.ends_with(b"\n") && response.body.len() > 1);
            assert!(response
                .headers
                .iter()
                .all(|(n, _)| *n == n.to_ascii_lowercase()));
        }
        Ok(accepted) => {
            assert_eq!(valid, Ok(()), "accepted what validate refused");
            assert_eq!(accepted.response.status, 200);
            check_fields(&accepted.response.headers);
            assert!(accepted
                .response
                .headers
                .iter()
                .all(|(n, _)| *n == n.to_ascii_lowercase()));
            if let Some(protocol) = &accepted.protocol {
                assert!(
                    offered.contains(protocol),
                    "agreed to a subprotocol not offered"
                );
            }
            // A client that offered the same subprotocols accepts it, when
            // they are tokens a client can send.
            let mut client_request = ClientRequest::new("example.com", "/");
            for protocol in &offered {
                client_request = client_request.protocol(protocol.clone());
            }
            let client = ExtendedConnectClient::new(&client_request, Config::default());
            let headers = accepted.response.headers.clone();
            let fields = || headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()));
            if !(200..300).contains(&input.status) {
                let refused = ExtendedConnectClient::new(&client_request, Config::default())
                    .handle_response(input.status, fields())
                    .err();
                assert_eq!(refused, Some(HandshakeError::Status(input.status)));
            }
            let connected = client
                .handle_response(200, fields())
                .expect("a client offering the same accepts our 200");
            assert_eq!(connected.response.protocol, accepted.protocol);
            let (mut client, mut server) = (connected.connection, accepted.connection);
            client.send_text("across").unwrap();
            let n = client.pending_output_len();
            let wire: Vec<u8> = client.pending_output_pieces().flatten().copied().collect();
            client.consume_output(n);
            server.handle_read(&wire);
            assert_eq!(
                server.poll_event(),
                Some(Event::Message(Message::from("across")))
            );
        }
    }
});
