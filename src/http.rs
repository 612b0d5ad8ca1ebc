//! The opening handshake in the `http` crate's types (feature `http`), for
//! servers and clients whose HTTP library parses and writes the heads:
//! hyper, axum, and anything else built on `http::Request` and
//! `http::Response`.
//!
//! The decisions stay the core's: [`request`] turns an `http::Request`
//! into the same [`Request`] our own parser makes, so
//! [`Request::accept`] checks it (§4.2.1) and agrees on subprotocol and
//! extensions exactly as for a request read from a socket; [`response`]
//! writes the result back as an `http::Response<()>` (status 101), and
//! [`error_response`] the refusal (400, 405, 426 with
//! `Sec-WebSocket-Version: 13`, ...). On the client side,
//! [`client_request`] gives the request of a [`ClientHandshake`] and
//! [`check_response`] checks the server's answer (§4.1).
//!
//! What remains is the library's upgrade: hand the upgraded stream and
//! the [`Connection`](crate::Connection) to a driver
//! (`rfc6455::tokio::WebSocket::from_connection`).
//!
//! ```
//! use rfc6455::handshake::Accept;
//! use rfc6455::Config;
//!
//! let request = http::Request::get("/chat")
//!     .header("Host", "example.com")
//!     .header("Upgrade", "websocket")
//!     .header("Connection", "Upgrade")
//!     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
//!     .header("Sec-WebSocket-Version", "13")
//!     .body(())
//!     .unwrap();
//! let accepted = rfc6455::http::request(&request, Config::default())
//!     .accept(Accept::new())
//!     .unwrap();
//! let response = rfc6455::http::response(&accepted);
//! assert_eq!(response.status(), 101);
//! assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! ```

use alloc::string::String;

use bytes::Bytes;

use crate::handshake::{Accepted, ClientHandshake, Connected, HandshakeError, Request};
use crate::Config;

/// The request as the core's [`Request`], to check and
/// [`accept`](Request::accept) or [`reject`](Request::reject): method,
/// path with query, version and every field. HTTP/2 and later requests
/// come out with a version the checks refuse: a WebSocket over HTTP/2 is
/// an extended CONNECT (see [`ExtendedConnectRequest`](crate::handshake::ExtendedConnectRequest)).
pub fn request<B>(request: &::http::Request<B>, config: Config) -> Request {
    head(
        request.method(),
        request.uri(),
        request.version(),
        request.headers(),
        config,
    )
}

/// [`request`], from the parts of a request (what an extractor sees).
pub fn request_from_parts(parts: &::http::request::Parts, config: Config) -> Request {
    head(
        &parts.method,
        &parts.uri,
        parts.version,
        &parts.headers,
        config,
    )
}

fn head(
    method: &::http::Method,
    uri: &::http::Uri,
    version: ::http::Version,
    headers: &::http::HeaderMap,
    config: Config,
) -> Request {
    let path = uri
        .path_and_query()
        .map_or("/", ::http::uri::PathAndQuery::as_str);
    let minor = match version {
        ::http::Version::HTTP_11 => 1,
        // HTTP/1.0 and older; and HTTP/2 and later, which are not an
        // HTTP/1.x upgrade: `validate` says so.
        _ => 0,
    };
    let fields = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    Request::from_head(config, method.as_str(), path, minor, fields)
}

/// The accepting response: `101 Switching Protocols` with `Upgrade`,
/// `Connection`, `Sec-WebSocket-Accept` and what was agreed.
pub fn response(accepted: &Accepted) -> ::http::Response<()> {
    with_fields(::http::StatusCode::SWITCHING_PROTOCOLS, &accepted.headers)
        .body(())
        .unwrap_or_else(|_| server_error(()))
}

/// The refusal for a request that is not a valid upgrade: the error's
/// [`status`](HandshakeError::status), `Sec-WebSocket-Version: 13` with a
/// 426 (§4.4) and `Allow: GET` with a 405, and the error's text as a
/// plain-text body.
pub fn error_response(error: &HandshakeError) -> ::http::Response<Bytes> {
    let extra: &[(&str, &str)] = match error {
        HandshakeError::UnsupportedVersion => &[("Sec-WebSocket-Version", "13")],
        HandshakeError::MethodNotGet(_) => &[("Allow", "GET")],
        _ => &[],
    };
    refusal(error.status(), extra, &alloc::format!("{error}"))
}

/// A refusal of your own: `status` (403 for a foreign Origin, 401 without
/// credentials; one outside 300-599 goes out as 500) and `reason` as a
/// plain-text body.
pub fn rejection(status: u16, reason: &str) -> ::http::Response<Bytes> {
    refusal(status, &[], reason)
}

fn refusal(status: u16, extra: &[(&str, &str)], reason: &str) -> ::http::Response<Bytes> {
    let status = ::http::StatusCode::from_u16(crate::handshake::refusal_status(status))
        .unwrap_or(::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = ::http::Response::builder().status(status);
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    let mut body = String::from(reason);
    body.push('\n');
    builder
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(Bytes::from(body))
        .unwrap_or_else(|_| server_error(Bytes::new()))
}

/// The client's request: `GET` over HTTP/1.1, with the fields of the
/// handshake (Host, Upgrade, Connection, Sec-WebSocket-Key, version 13,
/// subprotocols, extensions, your own).
pub fn client_request(handshake: &ClientHandshake) -> ::http::Request<()> {
    let mut builder = ::http::Request::get(handshake.path()).version(::http::Version::HTTP_11);
    for (name, value) in handshake.fields() {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(())
        .unwrap_or_else(|_| ::http::Request::new(()))
}

/// Checks the server's response to [`client_request`] (§4.1: 101, Upgrade,
/// Connection, the accept key, what was agreed); the connection then
/// starts on the upgraded stream.
pub fn check_response<B>(
    handshake: ClientHandshake,
    response: &::http::Response<B>,
) -> Result<Connected, HandshakeError> {
    let fields = response
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    handshake.handle_response(response.status().as_u16(), fields)
}

fn with_fields(
    status: ::http::StatusCode,
    fields: &[(String, String)],
) -> ::http::response::Builder {
    let mut builder = ::http::Response::builder().status(status);
    for (name, value) in fields {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
}

/// A 500, for fields the `http` crate refuses (ours never are: names and
/// values were checked when they were added).
fn server_error<B>(body: B) -> ::http::Response<B> {
    let mut response = ::http::Response::new(body);
    *response.status_mut() = ::http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}
