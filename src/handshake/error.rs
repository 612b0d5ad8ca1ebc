//! Why a handshake failed ([`HandshakeError`]), and the HTTP response a
//! server refuses with: the status each error maps to, the fields a
//! refusal writes itself, and the plain-text body that carries the error's
//! text.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::head::{push_decimal, push_field};

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
    /// [`Config::proxy_protocol`](crate::Config::proxy_protocol) is set and
    /// the connection does not begin with a valid PROXY protocol header.
    #[cfg(feature = "forwarded")]
    ProxyHeader(crate::forwarded::ProxyHeaderError),
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
            #[cfg(feature = "forwarded")]
            HandshakeError::ProxyHeader(why) => ("bad PROXY protocol header: ", Text(why.0), ""),
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
    pub(super) fn write_text(&self, out: &mut Vec<u8>) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
