//! The embedder's own header fields and refusal statuses, through every
//! form the opening handshake goes out in: HTTP/1.1 bytes (server and
//! client), the `http` crate's types (hyper, axum) and HTTP/2 fields.
//! One table of fields and one of statuses: a field goes out in every form
//! or in none (over HTTP/2 none of those about one HTTP/1.1 connection),
//! and whatever goes out parses.

use rfc6455::handshake::{
    Accept, ClientConnect, ClientHandshake, ClientRequest, ConnectRequest, PseudoHeaders,
    ServerHandshake,
};
use rfc6455::Config;

/// A field, and whether it may go out: a token for the name (RFC 9110
/// §5.1), no control character but the tab in the value (§5.5).
const FIELDS: [(&str, &str, bool); 15] = [
    ("Server", "rfc6455", true),
    ("X-Tab", "a\tb", true),
    ("X-Utf8", "café", true),
    ("X-Empty", "", true),
    ("X-Token-Chars!#$%&'*+.^_`|~", "v", true),
    ("X Space", "v", false),
    ("X:Colon", "v", false),
    ("X(Paren)", "v", false),
    ("Ünï", "v", false),
    ("", "empty name", false),
    ("X-Nul", "a\0b", false),
    ("X-Del", "a\x7fb", false),
    ("X-Evil", "a\r\nSet-Cookie: stolen=1", false),
    ("X-Bare-Cr", "c\rd", false),
    ("X-Bare-Lf\n", "b", false),
];

/// Fields about one HTTP/1.1 connection: they go out over HTTP/1.1 only.
const HTTP1_ONLY: [&str; 3] = ["Connection", "Keep-Alive", "Transfer-Encoding"];

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

fn has(fields: &[(String, Vec<u8>)], name: &str, value: &str) -> bool {
    fields
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value.as_bytes())
}

fn connect_request() -> ConnectRequest {
    let pseudo = PseudoHeaders {
        method: "CONNECT".into(),
        protocol: Some("websocket".into()),
        scheme: Some("https".into()),
        authority: Some("server.example.com".into()),
        path: Some("/chat".into()),
    };
    let fields = [("sec-websocket-version", "13".as_bytes())];
    ConnectRequest::new(Config::default(), &pseudo, fields)
}

fn has_h2(fields: &[(String, String)], name: &str, value: &str) -> bool {
    let name = name.to_ascii_lowercase();
    fields.iter().any(|(n, v)| *n == name && v == value)
}

/// Every row, plus the HTTP/1.1-only names with a plain value, as
/// (name, value, goes out over HTTP/1.1, goes out over HTTP/2).
fn rows() -> Vec<(&'static str, &'static str, bool, bool)> {
    let mut rows: Vec<_> = FIELDS.iter().map(|&(n, v, ok)| (n, v, ok, ok)).collect();
    rows.extend(HTTP1_ONLY.iter().map(|&n| (n, "x", true, false)));
    rows
}

#[test]
fn a_field_goes_out_in_every_form_or_in_none() {
    for (name, value, http1, h2) in rows() {
        let why = format!("{name:?}: {value:?}");

        // The server's 101, as bytes.
        let accepted = request().accept(Accept::new().header(name, value)).unwrap();
        let (status, fields) = parse_response(&accepted.response);
        assert_eq!(status, 101, "{why}");
        assert_eq!(has(&fields, name, value), http1, "101: {why}");

        // A refusal with the field, as bytes.
        let refusal = request().reject_with_headers(401, &[(name, value)], "no");
        let (status, fields) = parse_response(&refusal);
        assert_eq!(status, 401, "{why}");
        assert_eq!(has(&fields, name, value), http1, "401: {why}");

        // The client's request, as bytes.
        let client_request = ClientRequest::new("example.com", "/").header(name, value);
        let client = ClientHandshake::with_key(&client_request, Config::default(), [7; 16]);
        let mut parsed = [httparse::EMPTY_HEADER; 32];
        let mut head = httparse::Request::new(&mut parsed);
        let status = head.parse(client.request()).expect("the request parses");
        assert!(status.is_complete(), "{why}");
        let sent = head
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case(name) && h.value == value.as_bytes());
        assert_eq!(sent, http1, "client: {why}");

        // The same over HTTP/2: the 200's fields, a refusal's, the client's.
        let over_h2 = connect_request()
            .accept(Accept::new().header(name, value))
            .unwrap();
        assert_eq!(over_h2.response.status, 200);
        assert_eq!(
            has_h2(&over_h2.response.headers, name, value),
            h2,
            "HTTP/2 200: {why}"
        );
        let connect = ClientConnect::new(&client_request, Config::default());
        assert_eq!(
            has_h2(connect.headers(), name, value),
            h2,
            "HTTP/2 client: {why}"
        );

        #[cfg(feature = "http")]
        {
            // The `http` crate's types would refuse what the bytes refuse;
            // they are built whole, never the 500 fallback.
            let response = rfc6455::http::response(&accepted);
            assert_eq!(response.status(), 101, "http 101: {why}");
            let sent = response
                .headers()
                .get_all(name.to_ascii_lowercase().as_str())
                .iter()
                .any(|v| v.as_bytes() == value.as_bytes());
            assert_eq!(sent, http1, "http 101: {why}");
            let client = rfc6455::http::client_request(&client);
            assert_eq!(client.method(), "GET", "http client: {why}");
            assert!(client.headers().contains_key("sec-websocket-key"), "{why}");
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
        assert!(has(&fields, "Content-Length", "3"), "reject({given})");
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
