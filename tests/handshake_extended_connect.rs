//! The opening handshake over HTTP/2 (RFC 8441): an extended CONNECT,
//! checked without an HTTP/2 library (the core takes and gives fields).
//! One table of requests and the status each must get, then the
//! agreements (subprotocol, permessage-deflate) and the client's checks,
//! then frames through the connections the handshake makes.

mod common;

use common::{drain, poll_all};
use rfc6455::handshake::{
    Accept, ClientRequest, ExtendedConnectClient, ExtendedConnectRequest, HandshakeError,
    PseudoHeaders,
};
use rfc6455::{Config, Connection, Event, MaskKeys, Message, Role, UsageError};

/// The pseudo-header fields of a valid WebSocket request (RFC 8441 §5.1's
/// example: `:method = CONNECT`, `:protocol = websocket`, `:scheme =
/// https`, `:path = /chat`, `:authority = server.example.com`).
fn pseudo() -> PseudoHeaders {
    PseudoHeaders {
        method: "CONNECT".into(),
        protocol: Some("websocket".into()),
        scheme: Some("https".into()),
        authority: Some("server.example.com".into()),
        path: Some("/chat".into()),
    }
}

/// The fields of §5.1's example.
const FIELDS: [(&str, &str); 3] = [
    ("sec-websocket-protocol", "chat, superchat"),
    ("sec-websocket-version", "13"),
    ("origin", "http://www.example.com"),
];

fn request(pseudo: &PseudoHeaders, fields: &[(&str, &str)]) -> ExtendedConnectRequest {
    let fields = fields.iter().map(|(n, v)| (*n, v.as_bytes()));
    ExtendedConnectRequest::new(Config::default(), pseudo, fields)
}

fn field<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn every_invalid_request_gets_its_status_and_a_reason() {
    type Change = fn(&mut PseudoHeaders, &mut Vec<(&'static str, &'static str)>);
    /// What is wrong, how, the status, a field the response must carry.
    type Row = (
        &'static str,
        Change,
        u16,
        Option<(&'static str, &'static str)>,
    );
    let table: [Row; 13] = [
        (
            "GET is not CONNECT",
            |p, _| p.method = "GET".into(),
            405,
            Some(("allow", "CONNECT")),
        ),
        (
            "a CONNECT without :protocol is a tunnel, not a WebSocket",
            |p, _| p.protocol = None,
            400,
            None,
        ),
        (
            "another :protocol is not implemented",
            |p, _| p.protocol = Some("webtransport".into()),
            501,
            None,
        ),
        (
            ":protocol is case-sensitive",
            |p, _| p.protocol = Some("WebSocket".into()),
            501,
            None,
        ),
        ("no :scheme", |p, _| p.scheme = None, 400, None),
        ("no :path", |p, _| p.path = None, 400, None),
        (
            "an empty :path",
            |p, _| p.path = Some(String::new()),
            400,
            None,
        ),
        ("no :authority", |p, _| p.authority = None, 400, None),
        (
            "no version",
            |_, f| f.retain(|(n, _)| *n != "sec-websocket-version"),
            400,
            Some(("sec-websocket-version", "13")),
        ),
        (
            "version 8",
            |_, f| f[1] = ("sec-websocket-version", "8"),
            400,
            Some(("sec-websocket-version", "13")),
        ),
        (
            "an HTTP/1.1 upgrade field",
            |_, f| f.push(("Upgrade", "websocket")),
            400,
            None,
        ),
        (
            "a connection field",
            |_, f| f.push(("connection", "keep-alive")),
            400,
            None,
        ),
        (
            "a content-length: the stream's DATA is the WebSocket, not a body",
            |_, f| f.push(("content-length", "12")),
            400,
            None,
        ),
    ];
    for (what, change, status, extra) in table {
        let (mut p, mut f) = (pseudo(), FIELDS.to_vec());
        change(&mut p, &mut f);
        let error = request(&p, &f).accept(Accept::new()).unwrap_err();
        let response = error.extended_connect_response();
        assert_eq!(response.status, status, "{what}: {error:?}");
        assert!(
            response.body.len() > 10 && response.body.ends_with(b"\n"),
            "{what}: a reason in the body"
        );
        if let Some((name, value)) = extra {
            assert_eq!(field(&response.headers, name), Some(value), "{what}");
        }
        assert!(
            response
                .headers
                .iter()
                .all(|(n, _)| *n == n.to_ascii_lowercase()),
            "{what}: HTTP/2 field names are lowercase"
        );
    }
}

#[test]
fn the_rfc_example_is_accepted_with_200_and_no_key() {
    let request = request(&pseudo(), &FIELDS);
    assert_eq!(request.path(), "/chat");
    assert_eq!(request.authority(), Some("server.example.com"));
    assert_eq!(request.origin(), Some("http://www.example.com"));
    assert_eq!(request.protocols(), ["chat", "superchat"]);
    let accepted = request.accept(Accept::new().protocol("chat")).unwrap();
    assert_eq!(accepted.response.status, 200);
    assert_eq!(accepted.protocol.as_deref(), Some("chat"));
    assert_eq!(
        accepted.response.headers,
        [("sec-websocket-protocol".to_string(), "chat".to_string())]
    );
    assert!(accepted.response.body.is_empty());
    // A Sec-WebSocket-Key, if a client sends one anyway, changes nothing:
    // "the Sec-WebSocket-Key and Sec-WebSocket-Accept header fields are
    // not used" (RFC 8441 §5).
    let mut with_key = FIELDS.to_vec();
    with_key.push(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="));
    let accepted = accepted_fields(&with_key);
    assert!(field(&accepted, "sec-websocket-accept").is_none());
}

fn accepted_fields(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    request(&pseudo(), fields)
        .accept(Accept::new())
        .unwrap()
        .response
        .headers
}

#[test]
fn a_subprotocol_not_offered_is_not_agreed() {
    let accepted = request(&pseudo(), &FIELDS)
        .accept(Accept::new().protocol("mqtt").header("Server", "rfc6455"))
        .unwrap();
    assert_eq!(accepted.protocol, None);
    assert_eq!(
        accepted.response.headers,
        [("server".to_string(), "rfc6455".to_string())]
    );
}

#[test]
fn a_refusal_has_its_status_and_reason() {
    let response = request(&pseudo(), &FIELDS).reject(403, "origin not allowed");
    assert_eq!(response.status, 403);
    assert_eq!(response.body, b"origin not allowed\n");
}

/// A client and a server handshake in memory; the connections they made.
fn connected(client: Config, server: Config, accept: Accept) -> (Connection, Connection) {
    let request = ClientRequest::new("example.com", "/ws").protocol("chat");
    let connect = ExtendedConnectClient::new(&request, client).scheme("http");
    let pseudo = connect.pseudo_headers();
    assert_eq!(pseudo.method, "CONNECT");
    assert_eq!(pseudo.protocol.as_deref(), Some("websocket"));
    assert_eq!(pseudo.scheme.as_deref(), Some("http"));
    assert_eq!(pseudo.authority.as_deref(), Some("example.com"));
    assert_eq!(pseudo.path.as_deref(), Some("/ws"));
    assert!(connect
        .headers()
        .iter()
        .all(|(n, _)| *n == n.to_ascii_lowercase()));
    let fields = connect.headers().to_vec();
    let fields = fields.iter().map(|(n, v)| (n.as_str(), v.as_bytes()));
    let accepted = ExtendedConnectRequest::new(server, &pseudo, fields)
        .accept(accept)
        .unwrap();
    let response = accepted.response.headers.clone();
    let response = response.iter().map(|(n, v)| (n.as_str(), v.as_bytes()));
    let connected = connect
        .handle_response(accepted.response.status, response)
        .unwrap();
    assert_eq!(connected.response.protocol, accepted.protocol);
    (connected.connection, accepted.connection)
}

#[test]
fn frames_flow_both_ways_through_the_connections_it_makes() {
    let (mut client, mut server) = connected(
        Config::default(),
        Config::default(),
        Accept::new().protocol("chat"),
    );
    assert_eq!(client.role(), Role::Client);
    assert_eq!(server.role(), Role::Server);
    client.send_text("over a stream").unwrap();
    client.send_binary(&[7; 70_000]).unwrap();
    server.handle_read(&drain(&mut client));
    let events = poll_all(&mut server);
    assert_eq!(
        events,
        [
            Event::Message(Message::from("over a stream")),
            Event::Message(Message::from(vec![7; 70_000]))
        ]
    );
    server.send_text("and back").unwrap();
    client.handle_read(&drain(&mut server));
    assert_eq!(
        poll_all(&mut client),
        [Event::Message(Message::from("and back"))]
    );
}

#[cfg(feature = "deflate")]
#[test]
fn permessage_deflate_is_negotiated_as_over_http_1_1() {
    let mut config = Config::default();
    config.deflate = Some(rfc6455::DeflateConfig::default());
    let (mut client, mut server) = connected(config.clone(), config, Accept::new());
    assert!(client.deflate_params().is_some() && server.deflate_params().is_some());
    let text = "compressible ".repeat(1000);
    client.send_text(&text).unwrap();
    let wire = drain(&mut client);
    assert!(wire.len() < text.len() / 4, "the message went compressed");
    server.handle_read(&wire);
    assert_eq!(
        poll_all(&mut server),
        [Event::Message(Message::from(text.as_str()))]
    );
}

#[test]
fn the_client_checks_the_response() {
    let request = ClientRequest::new("example.com", "/").protocol("chat");
    let check = |status: u16, fields: &[(&str, &str)]| {
        ExtendedConnectClient::new(&request, Config::default())
            .handle_response(status, fields.iter().map(|(n, v)| (*n, v.as_bytes())))
            .map(|connected| connected.response.protocol)
    };
    assert_eq!(check(200, &[]), Ok(None));
    assert_eq!(check(204, &[]), Ok(None), "any 2xx");
    assert_eq!(
        check(200, &[("sec-websocket-protocol", "chat")]),
        Ok(Some("chat".into()))
    );
    assert_eq!(check(400, &[]), Err(HandshakeError::Status(400)));
    assert_eq!(
        check(101, &[]),
        Err(HandshakeError::Status(101)),
        "no 101 over HTTP/2"
    );
    assert!(matches!(
        check(200, &[("sec-websocket-protocol", "mqtt")]),
        Err(HandshakeError::UnexpectedProtocol(_))
    ));
    assert!(matches!(
        check(200, &[("sec-websocket-extensions", "x-unknown")]),
        Err(HandshakeError::UnexpectedExtension(_))
    ));
}

#[test]
fn a_client_needs_a_key_source() {
    let mut config = Config::default();
    config.mask_keys = MaskKeys::Unset;
    let request = ClientRequest::new("example.com", "/");
    assert_eq!(
        ExtendedConnectClient::try_new(&request, config).unwrap_err(),
        UsageError::NoKeySource
    );
}
