//! The handshake in the `http` crate's types gives the same decisions as
//! the handshake read from bytes: for every request in a table of valid
//! and invalid upgrades, the same status or the same 101 fields; for the
//! client, the same request and the same verdict on each response.
#![cfg(feature = "http")]

use rfc6455::handshake::{
    Accept, ClientHandshake, ClientRequest, HandshakeError, Progress, ServerHandshake,
};
use rfc6455::{Config, Message};

/// A request: method, path, fields.
type Case = (&'static str, String, Vec<(String, String)>);

/// The RFC's example request (§1.3), and variations on it, each one field
/// changed, left out or added.
fn requests() -> Vec<Case> {
    let base: Vec<(&str, &str)> = vec![
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Origin", "http://example.com"),
        ("Sec-WebSocket-Protocol", "chat, superchat"),
        ("Sec-WebSocket-Version", "13"),
    ];
    let owned = |fields: &[(&str, &str)]| -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    let without = |name: &str| {
        owned(
            &base
                .iter()
                .copied()
                .filter(|(n, _)| *n != name)
                .collect::<Vec<_>>(),
        )
    };
    let with = |name: &str, value: &str| {
        let mut fields = without(name);
        fields.push((name.to_string(), value.to_string()));
        fields
    };
    vec![
        ("GET", "/chat".into(), owned(&base)),
        ("POST", "/chat".into(), owned(&base)),
        ("GET", "/chat".into(), without("Host")),
        ("GET", "/chat".into(), without("Upgrade")),
        ("GET", "/chat".into(), with("Upgrade", "h2c")),
        ("GET", "/chat".into(), with("Connection", "keep-alive")),
        (
            "GET",
            "/chat".into(),
            with("Connection", "keep-alive, Upgrade"),
        ),
        ("GET", "/chat".into(), without("Sec-WebSocket-Key")),
        ("GET", "/chat".into(), with("Sec-WebSocket-Key", "c2hvcnQ=")),
        ("GET", "/chat".into(), without("Sec-WebSocket-Version")),
        ("GET", "/chat".into(), with("Sec-WebSocket-Version", "8")),
        (
            "GET",
            "/chat?room=1".into(),
            without("Sec-WebSocket-Protocol"),
        ),
        (
            "GET",
            "/chat".into(),
            with("Sec-WebSocket-Extensions", "permessage-deflate"),
        ),
    ]
}

/// What a server decides: the 101's fields, or the error.
fn decide(
    request: Result<rfc6455::handshake::Request, HandshakeError>,
) -> Result<Vec<(String, String)>, HandshakeError> {
    request?
        .accept(Accept::new().protocol("chat"))
        .map(|accepted| accepted.headers)
}

#[test]
fn an_http_request_gets_the_decision_its_bytes_get() {
    for (method, path, fields) in requests() {
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        for (name, value) in &fields {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let from_bytes = ServerHandshake::new(Config::default())
            .handle_read(head.as_bytes())
            .map(|progress| match progress {
                Progress::Done(request) => request,
                Progress::Partial(_) => panic!("a whole head"),
            });

        let mut builder = http::Request::builder().method(method).uri(path.as_str());
        for (name, value) in &fields {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(()).unwrap();
        let from_http = Ok(rfc6455::http::request(&request, Config::default()));

        let (bytes, typed) = (decide(from_bytes), decide(from_http));
        assert_eq!(bytes, typed, "{method} {path} {fields:?}");
        // Accepted: the http response carries the same fields with 101;
        // refused: the same status, the version with a 426.
        match typed {
            Ok(headers) => {
                let accepted = rfc6455::http::request(&request, Config::default())
                    .accept(Accept::new().protocol("chat"))
                    .unwrap();
                let response = rfc6455::http::response(&accepted);
                assert_eq!(response.status(), 101);
                for (name, value) in &headers {
                    assert_eq!(response.headers()[name.as_str()], value.as_str());
                }
            }
            Err(error) => {
                let response = rfc6455::http::error_response(&error);
                assert_eq!(response.status().as_u16(), error.status());
                assert_ne!(response.status(), 200);
                let body = String::from_utf8(response.body().to_vec()).unwrap();
                assert_eq!(body.trim_end(), error.to_string());
                if error.status() == 426 {
                    assert_eq!(response.headers()["sec-websocket-version"], "13");
                }
            }
        }
    }
}

#[test]
fn an_http_2_request_is_not_an_upgrade() {
    let request = http::Request::get("/chat")
        .version(http::Version::HTTP_2)
        .header("Host", "example.com")
        .body(())
        .unwrap();
    let error = rfc6455::http::request(&request, Config::default())
        .accept(Accept::new())
        .unwrap_err();
    assert_eq!(error, HandshakeError::HttpVersion);
}

/// A client handshake with a fixed key, offering a subprotocol.
fn client() -> ClientHandshake {
    let request = ClientRequest::new("example.com", "/chat?x=1")
        .protocol("chat")
        .header("Origin", "http://example.com");
    ClientHandshake::with_key(&request, Config::default(), [7; 16])
}

#[test]
fn the_client_request_is_the_same_in_both_forms() {
    let handshake = client();
    let request = rfc6455::http::client_request(&handshake);
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method(), request.uri());
    for (name, value) in request.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    head.push_str("\r\n");
    assert_eq!(
        head.to_lowercase(),
        String::from_utf8_lossy(handshake.request()).to_lowercase()
    );
}

#[test]
fn the_client_checks_an_http_response_as_it_checks_bytes() {
    // The server's answer to our request, in http types.
    let request = rfc6455::http::client_request(&client());
    let accepted = rfc6455::http::request(&request, Config::default())
        .accept(Accept::new().protocol("chat"))
        .unwrap();
    let good = rfc6455::http::response(&accepted);
    let mut connected = rfc6455::http::check_response(client(), &good).unwrap();
    assert_eq!(connected.response.protocol.as_deref(), Some("chat"));
    // Each way a response can be wrong, as bytes and as http types.
    let mut cases: Vec<http::Response<()>> = Vec::new();
    let mut wrong_status = rfc6455::http::response(&accepted);
    *wrong_status.status_mut() = http::StatusCode::OK;
    cases.push(wrong_status);
    let mut wrong_key = rfc6455::http::response(&accepted);
    wrong_key
        .headers_mut()
        .insert("sec-websocket-accept", "AAAA".parse().unwrap());
    cases.push(wrong_key);
    let mut no_upgrade = rfc6455::http::response(&accepted);
    no_upgrade.headers_mut().remove("upgrade");
    cases.push(no_upgrade);
    let mut other_protocol = rfc6455::http::response(&accepted);
    other_protocol
        .headers_mut()
        .insert("sec-websocket-protocol", "superchat".parse().unwrap());
    cases.push(other_protocol);
    for response in cases {
        let mut head = format!("HTTP/1.1 {} x\r\n", response.status().as_u16());
        for (name, value) in response.headers() {
            head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
        }
        head.push_str("\r\n");
        let from_bytes = client()
            .handle_read(head.as_bytes())
            .map(|_| ())
            .unwrap_err();
        let from_http = rfc6455::http::check_response(client(), &response)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(from_bytes, from_http, "{head}");
    }

    // And the two connections talk.
    let mut server = accepted.connection;
    connected.connection.send_text("over http types").unwrap();
    server.handle_read(connected.connection.pending_output());
    assert!(
        matches!(server.poll_event(), Some(rfc6455::Event::Message(m)) if m == Message::from("over http types"))
    );
}
