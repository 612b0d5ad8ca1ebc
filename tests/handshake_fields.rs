//! The embedder's own header fields and refusal statuses, through every
//! form the opening handshake goes out in: HTTP/1.1 bytes (server and
//! client), the `http` crate's types (hyper, axum) and HTTP/2 fields.
//! One table of fields and one of statuses: a field goes out in every form
//! or in none (over HTTP/2 none of those about one HTTP/1.1 connection),
//! and whatever goes out parses.

use rfc6455::handshake::{
    Accept, ClientHandshake, ClientRequest, ExtendedConnectClient, ExtendedConnectRequest,
    PseudoHeaders, ServerHandshake,
};
use rfc6455::Config;

/// A field, and where it goes out: in a 101 and in a client's request
/// over HTTP/1.1; the same over HTTP/2; in a refusal of one's own. Only a
/// token for the name (RFC 9110 §5.1), no control character but the tab
/// in the value (§5.5); never a field the handshake or the refusal writes
/// itself; over HTTP/2 nothing about one HTTP/1.1 connection.
const FIELDS: [(&str, &str, bool, bool, bool); 25] = [
    ("Server", "rfc6455", true, true, true),
    ("X-Tab", "a\tb", true, true, true),
    ("X-Utf8", "café", true, true, true),
    ("X-Empty", "", true, true, true),
    ("X-Token-Chars!#$%&'*+.^_`|~", "v", true, true, true),
    ("X Space", "v", false, false, false),
    ("X:Colon", "v", false, false, false),
    ("X(Paren)", "v", false, false, false),
    ("Ünï", "v", false, false, false),
    ("", "empty name", false, false, false),
    ("X-Nul", "a\0b", false, false, false),
    ("X-Del", "a\x7fb", false, false, false),
    ("X-Evil", "a\r\nSet-Cookie: stolen=1", false, false, false),
    ("X-Bare-Cr", "c\rd", false, false, false),
    ("X-Bare-Lf\n", "b", false, false, false),
    // About one HTTP/1.1 connection.
    ("Keep-Alive", "timeout=5", true, false, true),
    // The handshake's own: a 426 of one's own may still name the
    // protocol and the version it wants.
    ("Upgrade", "h2c", false, false, true),
    ("Host", "elsewhere.example", false, false, true),
    ("Sec-WebSocket-Protocol", "chat", false, false, true),
    ("sec-websocket-version", "13", false, false, true),
    // The refusal's own, and the body's framing.
    ("Connection", "keep-alive", false, false, false),
    ("Content-Length", "5", false, false, false),
    ("Transfer-Encoding", "chunked", false, false, false),
    ("content-length", "0", false, false, false),
    ("Content-Type", "text/html", true, true, false),
];

const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
    Host: server.example.com\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

fn request() -> rfc6455::handshake::Request {
    ServerHandshake::new(Config::default())
        .handle_read(REQUEST)
        .unwrap()
        .done()
        .unwrap()
}

/// The fields of an HTTP/1.1 head, which must parse whole.
fn parse_response(bytes: &[u8]) -> (u16, Vec<(String, Vec<u8>)>) {
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut fields);
    let status = response.parse(bytes).expect("the response parses");
    assert!(status.is_complete(), "the head is complete");
    let fields = response
        .headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    (response.code.unwrap(), fields)
}

fn connect_request() -> ExtendedConnectRequest {
    let pseudo = PseudoHeaders {
        method: "CONNECT".into(),
        protocol: Some("websocket".into()),
        scheme: Some("https".into()),
        authority: Some("server.example.com".into()),
        path: Some("/chat".into()),
    };
    let fields = [("sec-websocket-version", "13".as_bytes())];
    ExtendedConnectRequest::new(Config::default(), &pseudo, fields)
}

/// An embedder's field, if any.
type Extra<'a> = Option<(&'a str, &'a str)>;

fn accept_options(extra: Extra<'_>) -> Accept {
    extra.map_or(Accept::new(), |(name, value)| {
        Accept::new().header(name, value)
    })
}

fn client_request(extra: Extra<'_>) -> ClientRequest {
    let request = ClientRequest::new("example.com", "/");
    match extra {
        Some((name, value)) => request.header(name, value),
        None => request,
    }
}

/// The fields that go out, in each form, with the embedder's field or
/// without; each form must parse (or be built) whole.
type Form = fn(Extra<'_>) -> Vec<(String, Vec<u8>)>;

fn owned<'a>(fields: impl Iterator<Item = (&'a str, &'a [u8])>) -> Vec<(String, Vec<u8>)> {
    fields.map(|(n, v)| (n.to_string(), v.to_vec())).collect()
}

fn server_101(extra: Extra<'_>) -> Vec<(String, Vec<u8>)> {
    let accepted = request().accept(accept_options(extra)).unwrap();
    let (status, fields) = parse_response(&accepted.response);
    assert_eq!(status, 101);
    fields
}

fn refusal_401(extra: Extra<'_>) -> Vec<(String, Vec<u8>)> {
    let extra: Vec<_> = extra.into_iter().collect();
    let (status, fields) = parse_response(&request().reject_with_headers(401, &extra, "no"));
    assert_eq!(status, 401);
    fields
}

fn client_head(extra: Extra<'_>) -> Vec<(String, Vec<u8>)> {
    let client = ClientHandshake::with_key(&client_request(extra), Config::default(), [7; 16]);
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut head = httparse::Request::new(&mut fields);
    let status = head.parse(client.request()).expect("the request parses");
    assert!(status.is_complete());
    owned(head.headers.iter().map(|h| (h.name, h.value)))
}

fn h2_200(extra: Extra<'_>) -> Vec<(String, Vec<u8>)> {
    let accepted = connect_request().accept(accept_options(extra)).unwrap();
    assert_eq!(accepted.response.status, 200);
    let fields = accepted.response.headers.iter();
    owned(fields.map(|(n, v)| (n.as_str(), v.as_bytes())))
}

fn h2_client(extra: Extra<'_>) -> Vec<(String, Vec<u8>)> {
    let connect = ExtendedConnectClient::new(&client_request(extra), Config::default());
    let fields = connect.headers().iter();
    owned(fields.map(|(n, v)| (n.as_str(), v.as_bytes())))
}

/// The `http` crate's types: built whole (never the 500 fallback).
#[cfg(feature = "http")]
fn http_101(extra: Extra<'_>) -> Vec<(String, Vec<u8>)> {
    let accepted = request().accept(accept_options(extra)).unwrap();
    let response = rfc6455::http::response(&accepted);
    assert_eq!(response.status(), 101);
    owned(
        response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
    )
}

#[cfg(feature = "http")]
fn http_client(extra: Extra<'_>) -> Vec<(String, Vec<u8>)> {
    let client = ClientHandshake::with_key(&client_request(extra), Config::default(), [7; 16]);
    let request = rfc6455::http::client_request(&client);
    assert!(request.headers().contains_key("sec-websocket-key"));
    owned(
        request
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
    )
}

/// Whether `form` sends the field: one more `name: value` than without it.
fn sends(form: Form, name: &str, value: &str) -> bool {
    let count = |fields: Vec<(String, Vec<u8>)>| {
        let same =
            |(n, v): &(String, Vec<u8>)| n.eq_ignore_ascii_case(name) && v == value.as_bytes();
        fields.iter().filter(|field| same(field)).count()
    };
    count(form(Some((name, value)))) > count(form(None))
}

#[test]
fn a_field_goes_out_in_every_form_or_in_none() {
    for (name, value, http1, h2, refusal) in FIELDS {
        #[allow(unused_mut)] // the `http` forms join with the feature
        let mut forms: Vec<(&str, Form, bool)> = vec![
            ("101", server_101, http1),
            ("client", client_head, http1),
            ("401", refusal_401, refusal),
            ("HTTP/2 200", h2_200, h2),
            ("HTTP/2 client", h2_client, h2),
        ];
        #[cfg(feature = "http")]
        forms.extend([
            ("http 101", http_101 as Form, http1),
            ("http client", http_client, http1),
        ]);
        for (form_name, form, expected) in forms {
            assert_eq!(
                sends(form, name, value),
                expected,
                "{form_name}: {name:?}: {value:?}"
            );
        }
    }
}

/// A status, and the one a refusal goes out with: one that refuses
/// (300-599) as it is, any other as 500.
const STATUSES: [(u16, u16); 12] = [
    (0, 500),
    (99, 500),
    (101, 500),
    (200, 500),
    (299, 500),
    (300, 300),
    (403, 403),
    (599, 599),
    (600, 500),
    (999, 500),
    (1000, 500),
    (u16::MAX, 500),
];

#[test]
fn a_refusal_always_has_a_status_that_refuses() {
    for (given, sent) in STATUSES {
        let (status, fields) = parse_response(&request().reject(given, "no"));
        assert_eq!(status, sent, "reject({given})");
        let length = fields.iter().find(|(n, _)| n == "Content-Length");
        assert_eq!(
            length.map(|(_, v)| &v[..]),
            Some(&b"3"[..]),
            "reject({given})"
        );
        let with = request().reject_with_headers(given, &[("Retry-After", "1")], "no");
        assert_eq!(
            parse_response(&with).0,
            sent,
            "reject_with_headers({given})"
        );
        assert_eq!(connect_request().reject(given, "no").status, sent);
        #[cfg(feature = "http")]
        assert_eq!(rfc6455::http::rejection(given, "no").status(), sent);
    }
}

/// A subprotocol's name, and whether it is a token (RFC 6455 §4.1: U+0021
/// to U+007E but the separators), as every name offered or agreed must be.
const PROTOCOLS: [(&str, bool); 9] = [
    ("chat", true),
    ("v2.chat+json", true),
    ("", false),
    ("a b", false),
    ("a,b", false),
    ("a;b", false),
    ("\"chat\"", false),
    ("café", false),
    ("x\0", false),
];

#[test]
fn a_subprotocol_is_offered_and_agreed_only_if_it_is_a_token() {
    for (name, token) in PROTOCOLS {
        // Offered by our client, over HTTP/1.1 and HTTP/2.
        let offer = ClientRequest::new("example.com", "/").protocol(name);
        let client = ClientHandshake::with_key(&offer, Config::default(), [7; 16]);
        let head = String::from_utf8_lossy(client.request()).to_ascii_lowercase();
        assert_eq!(head.contains("sec-websocket-protocol"), token, "{name:?}");
        let connect = ExtendedConnectClient::new(&offer, Config::default());
        let offered_h2 = connect
            .headers()
            .iter()
            .any(|(n, _)| n == "sec-websocket-protocol");
        assert_eq!(offered_h2, token, "HTTP/2 {name:?}");

        // Offered by any client, chosen by our server: agreed only if a
        // token (the head handed over parsed, so any bytes reach it).
        let mut fields: Vec<(&str, &[u8])> = vec![
            ("Host", b"example.com"),
            ("Upgrade", b"websocket"),
            ("Connection", b"Upgrade"),
            ("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", b"13"),
        ];
        fields.push(("Sec-WebSocket-Protocol", name.as_bytes()));
        let request = rfc6455::handshake::Request::from_head(
            Config::default(),
            "GET",
            "/",
            1,
            fields.iter().copied(),
        );
        let accepted = request.accept(Accept::new().protocol(name)).unwrap();
        assert_eq!(accepted.protocol.is_some(), token, "101 {name:?}");
        let (_, sent) = parse_response(&accepted.response);
        let named = sent.iter().any(|(n, _)| n == "Sec-WebSocket-Protocol");
        assert_eq!(named, token, "101 field {name:?}");

        let pseudo = connect_request();
        let h2_fields = [
            ("sec-websocket-version", "13".as_bytes()),
            ("sec-websocket-protocol", name.as_bytes()),
        ];
        let request = ExtendedConnectRequest::new(
            Config::default(),
            pseudo.pseudo_headers(),
            h2_fields.iter().copied(),
        );
        let accepted = request.accept(Accept::new().protocol(name)).unwrap();
        assert_eq!(accepted.protocol.is_some(), token, "HTTP/2 200 {name:?}");
        let named = accepted
            .response
            .headers
            .iter()
            .any(|(n, _)| n == "sec-websocket-protocol");
        assert_eq!(named, token, "HTTP/2 200 field {name:?}");
    }
}
