//! The opening handshake (RFC 6455 §4): an HTTP/1.1 Upgrade exchange, or
//! over HTTP/2 an extended CONNECT (RFC 8441, [`ConnectRequest`]).
//!
//! The client sends a GET with `Upgrade: websocket`, `Connection: Upgrade`,
//! a random `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`
//! ([`ClientHandshake`]). The server checks it and answers `101 Switching
//! Protocols` with `Sec-WebSocket-Accept`, the base64 SHA-1 of the key and a
//! fixed GUID, which proves it understood the request ([`ServerHandshake`]).
//! After the blank line that ends the response, both sides speak frames.
//!
//! Both parsers take bytes in pieces and find the end of the head once, in
//! time linear in the bytes received; the head is then parsed by
//! `httparse` exactly once.
//!
//! Over HTTP/2 the same handshake is an extended CONNECT (RFC 8441):
//! [`ConnectRequest`] and [`ClientConnect`] take and give the fields an
//! HTTP/2 library moves, and make the same decisions (version 13,
//! subprotocols, permessage-deflate).

mod client;
mod connect;
#[cfg(feature = "deflate")]
mod deflate;
mod extensions;
mod server;

use alloc::string::String;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

pub use client::{ClientHandshake, ClientRequest, Connected, Response};
pub use connect::{ClientConnect, ConnectAccepted, ConnectRequest, ConnectResponse, PseudoHeaders};
pub use extensions::{parse_extensions, Extension, MalformedExtensions};
pub use server::{Accept, Accepted, Request, ServerHandshake};

/// What a handshake is after a read that did not fail: still waiting for
/// the rest of the head, or done.
///
/// The handshakes take themselves by value when fed, and give themselves
/// back only while there is more to read: a handshake that is done cannot
/// be fed again.
#[derive(Debug)]
#[must_use]
pub enum Progress<H, T> {
    /// The head is not complete yet: here is the handshake, to feed more
    /// bytes to.
    Partial(H),
    /// The whole head arrived: here is what the handshake made.
    Done(T),
}

impl<H, T> Progress<H, T> {
    /// What the handshake made, if it is done (for tests, and for a head
    /// that is known to arrive whole).
    pub fn done(self) -> Option<T> {
        match self {
            Progress::Partial(_) => None,
            Progress::Done(done) => Some(done),
        }
    }
}

/// The GUID that §1.3 appends to the key before hashing.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (§4.2.2, item 5.4):
/// base64(SHA-1(key + GUID)).
///
/// ```
/// // The example of RFC 6455 §1.3.
/// assert_eq!(
///     rfc6455::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// Why a handshake failed.
///
/// On the server, [`HandshakeError::status`] is the HTTP status to answer
/// with, and [`HandshakeError::response`] builds the whole response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The head is not valid HTTP/1.1 (httparse's verdict).
    Malformed(&'static str),
    /// The head is larger than `Config::max_header_bytes`.
    HeadTooLarge {
        /// The configured maximum.
        max: usize,
    },
    /// The head has more fields than `Config::max_headers`.
    TooManyHeaders {
        /// The configured maximum.
        max: usize,
    },
    /// The request method is not GET (§4.2.1 item 1).
    MethodNotGet(String),
    /// The HTTP version is older than 1.1 (§4.2.1 item 1).
    HttpVersion,
    /// The request has no Host field (§4.2.1 item 2).
    MissingHost,
    /// The head has no `Upgrade: websocket` (§4.2.1 item 3, §4.1).
    MissingUpgrade,
    /// The head has no `Connection: Upgrade` (§4.2.1 item 4, §4.1).
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Key` is missing, repeated, or not 16 bytes in base64 (§4.2.1 item 5).
    InvalidKey,
    /// `Sec-WebSocket-Version` is missing or not 13 (§4.2.1 item 6).
    UnsupportedVersion,
    /// The server answered with a status other than 101 (§4.1).
    Status(u16),
    /// `Sec-WebSocket-Accept` is missing or does not match our key (§4.1).
    InvalidAccept,
    /// The server chose a subprotocol we did not offer, or several (§4.1).
    UnexpectedProtocol(String),
    /// The server named an extension we did not offer (§4.1).
    UnexpectedExtension(String),
    /// The embedder refused the request with this status (a foreign
    /// Origin, missing credentials).
    Rejected(u16),
    /// The handshake did not finish within
    /// [`Timeouts::handshake`](crate::Timeouts::handshake).
    Timeout,
    /// Over HTTP/2: the request method is not CONNECT (RFC 8441 §4).
    MethodNotConnect(String),
    /// Over HTTP/2: `:protocol` names something other than `websocket`
    /// (RFC 8441 §4); answered 501.
    UnknownProtocol(String),
    /// Over HTTP/2: the server did not advertise
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL`, so it takes no WebSocket on
    /// this connection (RFC 8441 §3); use HTTP/1.1.
    NoExtendedConnect,
    /// Over HTTP/2: a field that belongs to an HTTP/1.1 connection
    /// (`connection`, `upgrade`, ...), which makes the request malformed
    /// (RFC 9113 §8.2.2).
    ConnectionSpecificField(String),
    /// The request announces a body (`Transfer-Encoding`, or a
    /// `Content-Length` other than 0). The opening handshake has none
    /// (§4.1): the bytes after the head are the peer's frames, so a body
    /// would be read as frames, and a proxy in front that forwards it as
    /// a body would see another request than we do (request smuggling).
    RequestBody,
}

impl HandshakeError {
    /// The HTTP status a server answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::HeadTooLarge { .. } | HandshakeError::TooManyHeaders { .. } => 431,
            HandshakeError::MethodNotGet(_) | HandshakeError::MethodNotConnect(_) => 405,
            HandshakeError::UnknownProtocol(_) => 501,
            HandshakeError::UnsupportedVersion => 426,
            HandshakeError::Rejected(status) => *status,
            HandshakeError::Timeout => 408,
            _ => 400,
        }
    }

    /// The whole HTTP response a server sends for this error: the status,
    /// `Sec-WebSocket-Version: 13` with a 426 (§4.4), `Allow: GET` with a
    /// 405, and this error's text as a short plain-text body.
    pub fn response(&self) -> Vec<u8> {
        let extra: &[(&str, &str)] = match self {
            HandshakeError::UnsupportedVersion => &[("Sec-WebSocket-Version", "13")],
            HandshakeError::MethodNotGet(_) => &[("Allow", "GET")],
            _ => &[],
        };
        let mut body = Vec::new();
        self.write_text(&mut body);
        error_response(self.status(), extra, &body)
    }
}

/// A detail inside an error's text: none, a name, or a number.
enum Detail<'a> {
    None,
    Text(&'a str),
    Number(usize),
}

impl HandshakeError {
    /// The error's text in three parts: before the detail, the detail,
    /// after it. Display and the response body both write these, so the
    /// response needs no formatting machinery (small targets count it).
    fn parts(&self) -> (&'static str, Detail<'_>, &'static str) {
        use Detail::{None, Number, Text};
        match self {
            HandshakeError::Malformed(why) => ("malformed HTTP head: ", Text(why), ""),
            HandshakeError::HeadTooLarge { max } => {
                ("HTTP head larger than ", Number(*max), " bytes")
            }
            HandshakeError::TooManyHeaders { max } => {
                ("more than ", Number(*max), " header fields")
            }
            HandshakeError::MethodNotGet(m) => ("method ", Text(m), " is not GET"),
            HandshakeError::HttpVersion => ("HTTP version older than 1.1", None, ""),
            HandshakeError::RequestBody => (
                "an opening handshake has no body (Content-Length or Transfer-Encoding)",
                None,
                "",
            ),
            HandshakeError::MissingHost => ("missing Host header", None, ""),
            HandshakeError::MissingUpgrade => ("missing `Upgrade: websocket`", None, ""),
            HandshakeError::MissingConnectionUpgrade => ("missing `Connection: Upgrade`", None, ""),
            HandshakeError::InvalidKey => (
                "Sec-WebSocket-Key must be one base64 value of 16 bytes",
                None,
                "",
            ),
            HandshakeError::UnsupportedVersion => ("Sec-WebSocket-Version must be 13", None, ""),
            HandshakeError::Status(code) => (
                "server answered with status ",
                Number(usize::from(*code)),
                ", not 101",
            ),
            HandshakeError::InvalidAccept => (
                "Sec-WebSocket-Accept is missing or does not match the key",
                None,
                "",
            ),
            HandshakeError::UnexpectedProtocol(p) => (
                "server chose subprotocol \"",
                Text(p),
                "\", which was not offered",
            ),
            HandshakeError::UnexpectedExtension(e) => (
                "server chose extension \"",
                Text(e),
                "\", which was not offered",
            ),
            HandshakeError::Rejected(status) => (
                "request refused with status ",
                Number(usize::from(*status)),
                "",
            ),
            HandshakeError::Timeout => ("the opening handshake took too long", None, ""),
            HandshakeError::MethodNotConnect(m) => ("method ", Text(m), " is not CONNECT"),
            HandshakeError::NoExtendedConnect => (
                "the HTTP/2 server does not take WebSockets (no SETTINGS_ENABLE_CONNECT_PROTOCOL)",
                None,
                "",
            ),
            HandshakeError::UnknownProtocol(p) => (":protocol \"", Text(p), "\" is not websocket"),
            HandshakeError::ConnectionSpecificField(name) => {
                ("field ", Text(name), " is not allowed over HTTP/2")
            }
        }
    }

    /// The error's text, appended to `out`.
    fn write_text(&self, out: &mut Vec<u8>) {
        let (before, detail, after) = self.parts();
        out.extend_from_slice(before.as_bytes());
        match detail {
            Detail::None => {}
            Detail::Text(text) => out.extend_from_slice(text.as_bytes()),
            Detail::Number(n) => push_decimal(out, n),
        }
        out.extend_from_slice(after.as_bytes());
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::new();
        self.write_text(&mut text);
        f.write_str(&String::from_utf8_lossy(&text))
    }
}

impl core::error::Error for HandshakeError {}

/// Whether a header field of the embedder's can be sent as given, by every
/// driver alike: the name a token (RFC 9110 §5.1, `field-name = token`),
/// the value free of control characters but the tab (§5.5: CR or LF would
/// split the head; NUL and the rest are refused by the `http` crate, so
/// the same field would fail over hyper or HTTP/2). Bytes from 0x80 are
/// allowed in the value (UTF-8 goes out as `obs-text`, as `http` allows).
pub(crate) fn is_safe_field(name: &str, value: &str) -> bool {
    let is_control = |b: u8| (b < b' ' && b != b'\t') || b == 0x7f;
    is_token(name) && !value.bytes().any(is_control)
}

/// Whether `name` is a field the handshake writes itself, which an
/// embedder's own field must not repeat: `Upgrade`, `Connection`, `Host`,
/// every `Sec-WebSocket-*` (a second `Sec-WebSocket-Protocol` would make
/// the peer refuse the handshake; offer and choose subprotocols with
/// `protocol`), and the fields that frame a body (`Content-Length`,
/// `Transfer-Encoding`: there is none, and a server refuses a request
/// that announces one).
pub(crate) fn is_handshake_field(name: &str) -> bool {
    const OWN: [&str; 5] = [
        "Upgrade",
        "Connection",
        "Host",
        "Content-Length",
        "Transfer-Encoding",
    ];
    let prefix = "Sec-WebSocket-";
    OWN.iter().any(|own| own.eq_ignore_ascii_case(name))
        || name
            .get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// Whether `name` is a field that a refusal writes itself (it frames the
/// body, and the connection closes): a second `Content-Length` that
/// disagrees with the first is how responses are smuggled.
pub(crate) fn is_refusal_field(name: &str) -> bool {
    [
        "Content-Length",
        "Transfer-Encoding",
        "Content-Type",
        "Connection",
    ]
    .iter()
    .any(|own| own.eq_ignore_ascii_case(name))
}

/// Whether `s` is a token (RFC 9110 §5.6.2): what a subprotocol's name
/// must be (RFC 6455 §4.1: characters from U+0021 to U+007E but the
/// separators) and what a field's name is.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// A `tchar` of RFC 9110 §5.6.2, the characters of a token.
pub(crate) fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// The status a refusal goes out with: `status` if it refuses (a
/// redirection, a client or a server error: 300 to 599, RFC 9110 §15),
/// else 500 (a 200 or a 101 would not refuse, and a number outside
/// 100-599 is not a status at all: the response would not parse).
pub(crate) fn refusal_status(status: u16) -> u16 {
    if (300..=599).contains(&status) {
        status
    } else {
        500
    }
}

/// A plain-text HTTP response with a status, extra fields and a body.
/// A status that is not a refusal becomes 500 ([`refusal_status`]).
pub(crate) fn error_response(status: u16, extra: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let status = refusal_status(status);
    let mut out = Vec::with_capacity(160 + body.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(&mut out, usize::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in extra {
        push_field(&mut out, name, value);
    }
    out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: ");
    push_decimal(&mut out, body.len() + 1);
    out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    out.extend_from_slice(body);
    out.push(b'\n');
    out
}

/// Appends `name: value` and CRLF.
pub(crate) fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal.
pub(crate) fn push_decimal(out: &mut Vec<u8>, n: usize) {
    if n >= 10 {
        push_decimal(out, n / 10);
    }
    out.push(b'0' + (n % 10) as u8);
}

/// The standard reason phrase for the statuses a WebSocket server uses.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Tells a handshake's timer the time: an error once its deadline passed.
pub(crate) fn check_time(
    timer: &mut crate::time::HandshakeTimer,
    now: crate::Timestamp,
) -> Result<(), HandshakeError> {
    match timer.handle_timeout(now) {
        true => Err(HandshakeError::Timeout),
        false => Ok(()),
    }
}

/// Collects a head in pieces and finds the blank line that ends it, in
/// time linear in the bytes received.
#[derive(Debug)]
pub(crate) struct HeadBuffer {
    buf: Vec<u8>,
    /// Every line end that could start the terminator lies at or after this.
    scanned: usize,
    max: usize,
}

impl HeadBuffer {
    pub(crate) fn new(max: usize) -> Self {
        HeadBuffer {
            buf: Vec::new(),
            scanned: 0,
            max,
        }
    }

    /// Adds bytes; returns the length of the head (through its blank line)
    /// once it is complete. Everything after it in the buffer is leftover.
    pub(crate) fn push(&mut self, data: &[u8]) -> Result<Option<usize>, HandshakeError> {
        // The buffer holds at most the limit plus one read: a head that has
        // not ended within the limit is refused below.
        self.buf.extend_from_slice(data);
        let end = find_head_end(&self.buf, self.scanned);
        // The terminator is at most 4 bytes; rescan only that much next time.
        self.scanned = self.buf.len().saturating_sub(3);
        match end {
            Some(end) if end <= self.max => Ok(Some(end)),
            Some(_) => Err(HandshakeError::HeadTooLarge { max: self.max }),
            None if self.buf.len() > self.max => {
                Err(HandshakeError::HeadTooLarge { max: self.max })
            }
            None => Ok(None),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// The index just past the blank line ending a head (`\r\n\r\n`, or `\n\n`
/// from a lenient peer), searching from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(pos) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + pos;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// Parses a head with httparse into owned header fields, enforcing the
/// field-count limit. `parse` is given the header array to fill.
pub(crate) fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect()
}

pub(crate) fn httparse_error(err: httparse::Error, max_headers: usize) -> HandshakeError {
    match err {
        httparse::Error::TooManyHeaders => HandshakeError::TooManyHeaders { max: max_headers },
        httparse::Error::HeaderName => HandshakeError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HandshakeError::Malformed("invalid header value"),
        httparse::Error::NewLine => HandshakeError::Malformed("invalid line ending"),
        httparse::Error::Status => HandshakeError::Malformed("invalid status"),
        httparse::Error::Token => HandshakeError::Malformed("invalid token"),
        httparse::Error::Version => HandshakeError::Malformed("invalid HTTP version"),
    }
}

/// The values of every field named `name` (case-insensitive).
pub(crate) fn header_values<'a: 'b, 'b>(
    headers: &'a [(String, Vec<u8>)],
    name: &'b str,
) -> impl Iterator<Item = &'a [u8]> + 'b {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// The comma-separated tokens of every field named `name`, trimmed, empty
/// elements skipped (RFC 7230 §7: `#rule` lists).
pub(crate) fn header_tokens<'a: 'b, 'b>(
    headers: &'a [(String, Vec<u8>)],
    name: &'b str,
) -> impl Iterator<Item = &'a str> + 'b {
    header_values(headers, name)
        .filter_map(|v| core::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| !t.is_empty())
}

/// Whether a token list field contains `token` (case-insensitive).
pub(crate) fn has_token(headers: &[(String, Vec<u8>)], name: &str, token: &str) -> bool {
    header_tokens(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_is_found_across_pieces() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        for split in 0..head.len() {
            let mut buf = HeadBuffer::new(1024);
            let first = buf.push(&head[..split]).unwrap();
            let end = first.or_else(|| buf.push(&head[split..]).unwrap());
            assert_eq!(end, Some(head.len() - 4), "split {split}");
        }
    }

    #[test]
    fn head_over_the_limit_is_refused() {
        let mut buf = HeadBuffer::new(16);
        assert_eq!(buf.push(b"GET / HTTP/1.1\r\n"), Ok(None));
        assert_eq!(
            buf.push(b"X"),
            Err(HandshakeError::HeadTooLarge { max: 16 })
        );
    }

    #[test]
    fn decimals_are_written_as_fmt_writes_them() {
        use alloc::string::ToString;
        for n in [0, 7, 9, 10, 99, 101, 408, 16_384, usize::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn the_response_body_is_the_error_text() {
        use alloc::string::ToString;
        let errors = [
            HandshakeError::HeadTooLarge { max: 16_384 },
            HandshakeError::MethodNotGet("POST".into()),
            HandshakeError::UnsupportedVersion,
            HandshakeError::UnexpectedProtocol("chat".into()),
            HandshakeError::Timeout,
        ];
        for error in errors {
            let response = error.response();
            let text = error.to_string();
            assert!(!text.is_empty() && !text.contains("Detail"));
            let body = alloc::format!("\r\n\r\n{text}\n");
            assert!(response.ends_with(body.as_bytes()), "{error:?}");
            let length = alloc::format!("Content-Length: {}\r\n", text.len() + 1);
            assert!(response
                .windows(length.len())
                .any(|w| w == length.as_bytes()));
            let status = alloc::format!("HTTP/1.1 {} ", error.status());
            assert!(response.starts_with(status.as_bytes()));
        }
        assert_eq!(
            HandshakeError::HeadTooLarge { max: 16_384 }.to_string(),
            "HTTP head larger than 16384 bytes"
        );
    }
}
