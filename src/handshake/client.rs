//! The client side of the opening handshake (§4.1).

use alloc::format;
use alloc::string::String;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::head::{
    bounded_fields, has_token, header_tokens, header_values, httparse_error, is_handshake_field,
    is_safe_field, is_token, owned_headers, HeadBuffer, Measure,
};
use super::{accept_key, check_time, parse_extensions, HandshakeError, Progress};
use crate::time::HandshakeTimer;
use crate::{Config, Connection, Role, Timestamp, UsageError};

/// What the client asks for: where, and with which subprotocols and fields.
#[derive(Clone, Debug)]
pub struct ClientRequest {
    pub(super) host: String,
    pub(super) path: String,
    pub(super) protocols: Vec<String>,
    pub(super) headers: Vec<(String, String)>,
}

impl ClientRequest {
    /// A request for `path` (such as `/chat?room=1`) on `host` (the Host
    /// field: `example.com`, or `example.com:8080` for a port other than
    /// the scheme's default).
    ///
    /// Bytes that may not appear in a request line or a field value
    /// (controls, space, non-ASCII) are percent-encoded, so neither
    /// argument can split the request.
    pub fn new(host: impl Into<String>, path: impl Into<String>) -> Self {
        let path = percent_encode_unsafe(path.into());
        ClientRequest {
            host: percent_encode_unsafe(host.into()),
            path: if path.is_empty() { "/".into() } else { path },
            protocols: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Offers a subprotocol; offer several in order of preference. A name
    /// that is not a token (RFC 6455 §4.1: U+0021 to U+007E without the
    /// separators, so no space, comma or quote) is dropped: it could not
    /// be told apart in the field that lists them.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        let protocol = protocol.into();
        if is_token(&protocol) {
            self.protocols.push(protocol);
        }
        self
    }

    /// Adds a header field (Origin, Authorization, a cookie). A field that
    /// could not be sent as given by every driver is dropped: a name that
    /// is not a token (RFC 9110 §5.1), a value with a control character
    /// other than the tab (CR or LF would split the request); over HTTP/2
    /// also a field about one HTTP/1.1 connection (`Keep-Alive`, ...). So
    /// is a field the handshake writes itself (`Host`, `Upgrade`,
    /// `Connection`, `Sec-WebSocket-*`, `Content-Length`, ...): offer
    /// subprotocols with [`protocol`](ClientRequest::protocol).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        if is_safe_field(&name, &value) && !is_handshake_field(&name) {
            self.headers.push((name, value));
        }
        self
    }

    /// The path requested.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The Host field.
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// Percent-encodes every byte outside visible ASCII (0x21–0x7E): a CR or
/// LF in a host or path would otherwise end the line it is written on.
fn percent_encode_unsafe(s: String) -> String {
    if s.bytes().all(|b| b.is_ascii_graphic()) {
        return s;
    }
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_graphic() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds the client's request and checks the server's response.
///
/// ```
/// use rfc6455::handshake::{accept_key, ClientHandshake, ClientRequest};
/// use rfc6455::Config;
///
/// let handshake = ClientHandshake::new(&ClientRequest::new("example.com", "/chat"), Config::default());
/// let request = String::from_utf8(handshake.request().to_vec()).unwrap();
/// assert!(request.starts_with("GET /chat HTTP/1.1\r\nHost: example.com\r\n"));
///
/// let response = format!(
///     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
///      Sec-WebSocket-Accept: {}\r\n\r\n",
///     accept_key(handshake.key().as_bytes())
/// );
/// let connected = handshake.handle_read(response.as_bytes()).unwrap().done().expect("complete");
/// assert_eq!(connected.response.status, 101);
/// ```
#[derive(Debug)]
pub struct ClientHandshake {
    key: String,
    request: Vec<u8>,
    path: String,
    fields: Vec<(String, String)>,
    protocols: Vec<String>,
    head: HeadBuffer,
    timer: HandshakeTimer,
    config: Config,
}

impl ClientHandshake {
    /// A handshake with a fresh random key (§4.1: "a nonce consisting of a
    /// randomly selected 16-byte value"), drawn from the configuration's
    /// key source ([`Config::mask_keys`]).
    ///
    /// # Panics
    /// If the configuration has no key source
    /// ([`MaskKeys::Unset`](crate::MaskKeys::Unset), the default without the
    /// `std` feature); [`try_new`](ClientHandshake::try_new) returns that as
    /// an error instead.
    pub fn new(request: &ClientRequest, config: Config) -> Self {
        match Self::try_new(request, config) {
            Ok(handshake) => handshake,
            Err(_) => panic!("a client needs Config::mask_keys"),
        }
    }

    /// A handshake with a fresh key from the configuration's key source, or
    /// [`UsageError::NoKeySource`] if it has none.
    pub fn try_new(request: &ClientRequest, config: Config) -> Result<Self, UsageError> {
        let nonce = config.mask_keys.nonce()?;
        Ok(Self::with_key(request, config, nonce))
    }

    /// A handshake with a given 16-byte key, for tests and examples only.
    ///
    /// # Panics
    /// As [`new`](ClientHandshake::new), without a key source to mask frames with.
    pub fn with_key(request: &ClientRequest, config: Config, key: [u8; 16]) -> Self {
        assert!(
            config.mask_keys.is_set(),
            "a client needs Config::mask_keys"
        );
        let key = BASE64.encode(key);
        let mut fields = vec![
            ("Host".to_string(), request.host.clone()),
            ("Upgrade".to_string(), "websocket".to_string()),
            ("Connection".to_string(), "Upgrade".to_string()),
            ("Sec-WebSocket-Key".to_string(), key.clone()),
        ];
        fields.extend(offer(request, &config).map(|(name, value)| (name.to_string(), value)));
        let mut head = format!("GET {} HTTP/1.1\r\n", request.path);
        for (name, value) in &fields {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        ClientHandshake {
            key,
            request: head.into_bytes(),
            path: request.path.clone(),
            fields,
            protocols: request.protocols.clone(),
            head: HeadBuffer::new(config.max_header_bytes),
            timer: HandshakeTimer::new(&config.timeouts),
            config,
        }
    }

    /// The request bytes to send.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// The request's path (with query), for an HTTP library that writes
    /// the request itself (a `GET` over HTTP/1.1).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The request's header fields, in order, for an HTTP library that
    /// writes the request itself; [`request`](ClientHandshake::request)
    /// is these after the request line.
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// The `Sec-WebSocket-Key` value sent, in base64.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Tells the handshake the time on the driver's clock. The first call
    /// starts the countdown of [`Timeouts::handshake`](crate::Timeouts::handshake);
    /// once it has run out, this returns [`HandshakeError::Timeout`]: give
    /// up and close the transport. Call it when the driver starts, and
    /// whenever the deadline of [`poll_timeout`](ClientHandshake::poll_timeout)
    /// has passed. The connection the handshake makes starts its own
    /// timers from the latest time given here.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Result<(), HandshakeError> {
        check_time(&mut self.timer, now)
    }

    /// When the handshake gives up, on the driver's clock; `None` before
    /// the first [`handle_timeout`](ClientHandshake::handle_timeout), or
    /// without a handshake timeout.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timer.poll_timeout()
    }

    /// Feeds bytes read from the server; the handshake is consumed.
    ///
    /// [`Progress::Partial`]: the response head is not complete yet; feed
    /// the handshake it gives back. [`Progress::Done`]: the server
    /// accepted; the connection is ready, with any bytes that followed the
    /// response already fed to it. `Err`: the handshake failed, and the
    /// error names the check.
    pub fn handle_read(
        mut self,
        data: &[u8],
    ) -> Result<Progress<ClientHandshake, Connected>, HandshakeError> {
        let Some(head_len) = self.head.push(data)? else {
            return Ok(Progress::Partial(self));
        };
        let bytes = self.head.bytes();
        let mut fields = vec![httparse::EMPTY_HEADER; self.config.max_headers];
        let mut parsed = httparse::Response::new(&mut fields);
        match parsed.parse(&bytes[..head_len]) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(HandshakeError::Malformed("incomplete response head"))
            }
            Err(err) => return Err(httparse_error(err, self.config.max_headers)),
        }
        let status = parsed.code.unwrap_or(0);
        let headers = owned_headers(parsed.headers);
        let rest = bytes[head_len..].to_vec();
        self.check(status, headers, &rest).map(Progress::Done)
    }

    /// Checks a response that another HTTP library read (hyper, an
    /// `http::Response`; see the `http` feature): its status and fields,
    /// with the same checks as [`handle_read`](ClientHandshake::handle_read).
    /// The connection starts empty: the library hands over the upgraded
    /// stream with any bytes that followed.
    pub fn handle_response<'a>(
        self,
        status: u16,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Connected, HandshakeError> {
        // The fewest bytes of the status line ("HTTP/1.1 101" and LF) and
        // the blank line.
        let start = 14;
        let headers = bounded_fields(
            headers,
            Measure::Http1,
            start,
            self.config.max_header_bytes,
            self.config.max_headers,
        )?;
        self.check(status, headers, &[])
    }

    /// The checks of §4.1 on the server's response; `rest` is what followed
    /// its head.
    fn check(
        self,
        status: u16,
        headers: Vec<(String, Vec<u8>)>,
        rest: &[u8],
    ) -> Result<Connected, HandshakeError> {
        // "If the status code received from the server is not 101, the
        // client handles the response per HTTP procedures." (§4.1)
        if status != 101 {
            return Err(HandshakeError::Status(status));
        }
        // "If the response lacks an |Upgrade| header field or the |Upgrade|
        // header field contains a value that is not an ASCII case-insensitive
        // match for the value "websocket", the client MUST _Fail the
        // WebSocket Connection_."
        if !has_token(&headers, "Upgrade", "websocket") {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !has_token(&headers, "Connection", "Upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        let expected = accept_key(self.key.as_bytes());
        let accepts: Vec<&[u8]> = header_values(&headers, "Sec-WebSocket-Accept").collect();
        if !matches!(accepts.as_slice(), [value] if value.trim_ascii() == expected.as_bytes()) {
            return Err(HandshakeError::InvalidAccept);
        }
        let (protocol, mut connection) = agree(&headers, &self.protocols, &self.config)?;
        connection.handle_read(rest);
        if let Some(now) = self.timer.now() {
            connection.handle_timeout(now);
        }
        Ok(Connected {
            response: Response {
                status,
                headers,
                protocol,
            },
            connection,
        })
    }
}

/// What a client asks for, whatever carries the handshake (an HTTP/1.1
/// upgrade, an HTTP/2 extended CONNECT): version 13, its subprotocols,
/// permessage-deflate if configured, and the request's own fields.
pub(super) fn offer<'a>(
    request: &'a ClientRequest,
    config: &Config,
) -> impl Iterator<Item = (&'a str, String)> {
    let mut fields = vec![("Sec-WebSocket-Version", "13".to_string())];
    if !request.protocols.is_empty() {
        fields.push(("Sec-WebSocket-Protocol", request.protocols.join(", ")));
    }
    #[cfg(feature = "deflate")]
    if let Some(deflate) = &config.deflate {
        fields.push((
            "Sec-WebSocket-Extensions",
            super::deflate::client_offer(deflate),
        ));
    }
    #[cfg(not(feature = "deflate"))]
    let _ = config;
    let own = request.headers.iter().map(|(n, v)| (n.as_str(), v.clone()));
    fields.into_iter().chain(own)
}

/// Checks what the server agreed to against what we offered, whatever
/// carried the handshake (an HTTP/1.1 upgrade, an HTTP/2 extended
/// CONNECT); returns the subprotocol and a fresh connection.
pub(super) fn agree(
    headers: &[(String, Vec<u8>)],
    offered: &[String],
    config: &Config,
) -> Result<(Option<String>, Connection), HandshakeError> {
    // "If the response includes a |Sec-WebSocket-Extensions| header field
    // and this header field indicates the use of an extension that was
    // not present in the client's handshake ... the client MUST _Fail
    // the WebSocket Connection_." We offer permessage-deflate at most.
    let answer = parse_extensions(header_values(headers, "Sec-WebSocket-Extensions"))
        .map_err(|_| HandshakeError::UnexpectedExtension("(malformed)".into()))?;
    #[cfg(feature = "deflate")]
    let deflate = match &config.deflate {
        Some(deflate) => super::deflate::client_accept(&answer, deflate)?,
        None => None,
    };
    #[cfg(feature = "deflate")]
    let unexpected = deflate.is_none() && !answer.is_empty();
    #[cfg(not(feature = "deflate"))]
    let unexpected = !answer.is_empty();
    if unexpected {
        let names: Vec<String> = answer.iter().map(ToString::to_string).collect();
        return Err(HandshakeError::UnexpectedExtension(names.join(", ")));
    }
    // "If the response includes a |Sec-WebSocket-Protocol| header field
    // and this header field indicates the use of a subprotocol that was
    // not present in the client's handshake ..., the client MUST _Fail
    // the WebSocket Connection_."
    // A value that is not UTF-8 (bytes 0x80-0xFF, which HTTP allows in
    // a field) names no subprotocol we offered: we offer tokens only.
    if let Some(value) =
        header_values(headers, "Sec-WebSocket-Protocol").find(|v| core::str::from_utf8(v).is_err())
    {
        let value = String::from_utf8_lossy(value).into_owned();
        return Err(HandshakeError::UnexpectedProtocol(value));
    }
    let chosen: Vec<&str> = header_tokens(headers, "Sec-WebSocket-Protocol").collect();
    let protocol = match chosen.as_slice() {
        [] => None,
        [one] if offered.iter().any(|p| p == one) => Some(one.to_string()),
        _ => return Err(HandshakeError::UnexpectedProtocol(chosen.join(", "))),
    };
    #[cfg(feature = "deflate")]
    let connection = match deflate {
        Some(params) => Connection::with_deflate(Role::Client, config.clone(), params),
        None => Connection::new(Role::Client, config.clone()),
    };
    #[cfg(not(feature = "deflate"))]
    let connection = Connection::new(Role::Client, config.clone());
    Ok((protocol, connection))
}

/// The server's accepting response.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status: 101 over HTTP/1.1, a 2xx over HTTP/2.
    pub status: u16,
    /// Every header field, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
}

impl Response {
    /// The first field named `name` (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_values(&self.headers, name)
            .next()
            .and_then(|v| core::str::from_utf8(v).ok())
    }
}

/// A completed client handshake.
#[derive(Debug)]
pub struct Connected {
    /// The server's response.
    pub response: Response,
    /// The connection, already fed with any bytes that followed the response.
    pub connection: Connection,
}
