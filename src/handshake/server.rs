//! The server side of the opening handshake (§4.2).

use alloc::string::String;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::error::{error_response, is_refusal_field};
use super::head::{
    has_token, header_tokens, header_values, httparse_error, is_handshake_field, is_safe_field,
    is_token, kept_fields, owned_headers, push_field, HeadBuffer, Measure,
};
use super::{accept_key, check_time, HandshakeError, Progress};
#[cfg(feature = "forwarded")]
use crate::forwarded::{
    forwarded_hops, parse_proxy_header, walk_back, x_forwarded_for_hops, ProxyHeader,
    TrustedProxies,
};
use crate::time::HandshakeTimer;
use crate::{Config, Connection, Role, Timestamp};

/// Reads a client's opening handshake in pieces.
///
/// ```
/// use rfc6455::handshake::{Accept, ServerHandshake};
/// use rfc6455::Config;
///
/// let handshake = ServerHandshake::new(Config::default());
/// let request = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\n\
///     Upgrade: websocket\r\nConnection: Upgrade\r\n\
///     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Version: 13\r\n\r\n";
/// let request = handshake.handle_read(request).unwrap().done().expect("complete");
/// assert_eq!(request.path(), "/chat");
/// let accepted = request.accept(Accept::new()).unwrap();
/// assert!(accepted.response.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
/// ```
#[derive(Debug)]
pub struct ServerHandshake {
    config: Config,
    head: HeadBuffer,
    timer: HandshakeTimer,
    /// The PROXY protocol header read before the request, if
    /// `Config::proxy_protocol` asks for one.
    #[cfg(feature = "forwarded")]
    proxy: ProxyStage,
}

/// Where the handshake is with a PROXY protocol header.
#[cfg(feature = "forwarded")]
#[derive(Debug)]
enum ProxyStage {
    /// The bytes so far, which begin a header.
    Reading(Vec<u8>),
    /// Read (`Some`), or none expected.
    Done(Option<ProxyHeader>),
}

impl ServerHandshake {
    /// A handshake waiting for the first byte of the request.
    pub fn new(config: Config) -> Self {
        let head = HeadBuffer::new(config.max_header_bytes);
        let timer = HandshakeTimer::new(&config.timeouts);
        ServerHandshake {
            #[cfg(feature = "forwarded")]
            proxy: match config.proxy_protocol {
                true => ProxyStage::Reading(Vec::new()),
                false => ProxyStage::Done(None),
            },
            config,
            head,
            timer,
        }
    }

    /// Tells the handshake the time on the driver's clock. The first call
    /// starts the countdown of [`Timeouts::handshake`](crate::Timeouts::handshake);
    /// once it has run out, this returns [`HandshakeError::Timeout`]: send
    /// its [`response`](HandshakeError::response) (408) and close. Call it
    /// when the driver starts, and whenever the deadline of
    /// [`poll_timeout`](ServerHandshake::poll_timeout) has passed. The
    /// request, and the connection made from it, carry on from the latest
    /// time given here.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Result<(), HandshakeError> {
        check_time(&mut self.timer, now)
    }

    /// When the handshake gives up, on the driver's clock; `None` before
    /// the first [`handle_timeout`](ServerHandshake::handle_timeout), or
    /// without a handshake timeout.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timer.poll_timeout()
    }

    /// Feeds bytes read from the client; the handshake is consumed.
    ///
    /// [`Progress::Partial`]: the head is not complete yet; feed the
    /// handshake it gives back. [`Progress::Done`]: the whole head arrived;
    /// it is a well-formed HTTP request, which may or may not be a valid
    /// WebSocket upgrade (see [`Request::accept`]). `Err`: the bytes are
    /// not an acceptable HTTP request; send [`HandshakeError::response`]
    /// and close.
    ///
    /// With `Config::proxy_protocol` (feature `forwarded`), the bytes
    /// begin with a PROXY protocol header, read first
    /// (`Request::proxy_header`).
    pub fn handle_read(
        self,
        data: &[u8],
    ) -> Result<Progress<ServerHandshake, Request>, HandshakeError> {
        #[cfg(feature = "forwarded")]
        if let ProxyStage::Reading(_) = self.proxy {
            return self.read_proxy_header(data);
        }
        self.read_head(data)
    }

    /// Feeds bytes of the PROXY protocol header, and of the request head
    /// once the header is whole.
    #[cfg(feature = "forwarded")]
    fn read_proxy_header(
        mut self,
        data: &[u8],
    ) -> Result<Progress<ServerHandshake, Request>, HandshakeError> {
        let ProxyStage::Reading(read) = &mut self.proxy else {
            return self.read_head(data);
        };
        let mut read = core::mem::take(read);
        // Bounded: a header is refused once longer than its version allows.
        read.extend_from_slice(data);
        match parse_proxy_header(&read).map_err(HandshakeError::ProxyHeader)? {
            None => {
                self.proxy = ProxyStage::Reading(read);
                Ok(Progress::Partial(self))
            }
            Some((header, used)) => {
                self.proxy = ProxyStage::Done(Some(header));
                self.read_head(&read[used..])
            }
        }
    }

    /// Feeds bytes of the request head.
    fn read_head(
        mut self,
        data: &[u8],
    ) -> Result<Progress<ServerHandshake, Request>, HandshakeError> {
        let Some(head_len) = self.head.push(data)? else {
            return Ok(Progress::Partial(self));
        };
        let bytes = self.head.bytes();
        let mut fields = vec![httparse::EMPTY_HEADER; self.config.max_headers];
        let mut parsed = httparse::Request::new(&mut fields);
        match parsed.parse(&bytes[..head_len]) {
            Ok(httparse::Status::Complete(_)) => {}
            // The blank line was found, so httparse has the whole head.
            Ok(httparse::Status::Partial) => {
                return Err(HandshakeError::Malformed("incomplete request head"))
            }
            Err(err) => return Err(httparse_error(err, self.config.max_headers)),
        }
        Ok(Progress::Done(Request {
            method: parsed.method.unwrap_or_default().to_string(),
            path: parsed.path.unwrap_or_default().to_string(),
            http_minor: parsed.version.unwrap_or(0),
            headers: owned_headers(parsed.headers),
            refused: None,
            leftover: bytes[head_len..].to_vec(),
            #[cfg(feature = "forwarded")]
            proxy_header: match self.proxy {
                ProxyStage::Done(header) => header,
                ProxyStage::Reading(_) => None,
            },
            config: self.config,
            timer: self.timer,
        }))
    }
}

/// A complete HTTP request head, waiting for the embedder's decision.
///
/// Look at the path, Origin, subprotocols and any header, then either
/// [`accept`](Request::accept) (which also checks that this really is a
/// WebSocket upgrade) or [`reject`](Request::reject) with a status of your
/// choice. A request that is plain HTTP ([`is_upgrade`](Request::is_upgrade)
/// is false) can be served as such: the handshake parser is only a parser.
#[derive(Clone, Debug)]
pub struct Request {
    method: String,
    path: String,
    http_minor: u8,
    headers: Vec<(String, Vec<u8>)>,
    /// The head broke a limit (`from_head`): its fields were not kept.
    refused: Option<HandshakeError>,
    leftover: Vec<u8>,
    /// The PROXY protocol header before the request, if one was expected.
    #[cfg(feature = "forwarded")]
    proxy_header: Option<ProxyHeader>,
    config: Config,
    /// The handshake's countdown, which goes on while the embedder decides
    /// and the response is written.
    timer: HandshakeTimer,
}

impl Request {
    /// A request head that another HTTP library parsed (hyper, axum, an
    /// `http::Request`; see the `http` feature): its method, path with
    /// query, HTTP/1.x minor version and fields. Checked and answered as
    /// one from [`ServerHandshake`]; the handshake timer starts at the
    /// first [`handle_timeout`](Request::handle_timeout).
    pub fn from_head<'a>(
        config: Config,
        method: &str,
        path: &str,
        http_minor: u8,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Request {
        let timer = HandshakeTimer::new(&config.timeouts);
        // The fewest bytes of the request line ("METHOD path HTTP/1.1" and
        // LF) and the blank line.
        let start = method.len() + path.len() + 12;
        let (headers, refused) = kept_fields(headers, Measure::Http1, start, &config);
        Request {
            method: method.to_string(),
            path: path.to_string(),
            http_minor,
            headers,
            refused,
            leftover: Vec::new(),
            #[cfg(feature = "forwarded")]
            proxy_header: None,
            config,
            timer,
        }
    }

    /// The request with another configuration for the connection it
    /// makes: limits and extensions chosen per route, once the path is
    /// known. The handshake's countdown goes on.
    pub fn with_config(mut self, config: Config) -> Request {
        self.config = config;
        self
    }

    /// Tells the request the time, as
    /// [`ServerHandshake::handle_timeout`] does, for a request made with
    /// [`from_head`](Request::from_head).
    pub fn handle_timeout(&mut self, now: Timestamp) -> Result<(), HandshakeError> {
        check_time(&mut self.timer, now)
    }

    /// The method, such as `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target, such as `/chat?room=1`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query string of the request target, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.path.split_once('?').map(|(_, query)| query)
    }

    /// The first value of a query parameter, percent-decoded (`+` as a
    /// space), such as the `token` in `/ws?token=abc`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
    }

    /// The PROXY protocol header the connection began with, when
    /// [`Config::proxy_protocol`] asked for one.
    #[cfg(feature = "forwarded")]
    pub fn proxy_header(&self) -> Option<&ProxyHeader> {
        self.proxy_header.as_ref()
    }

    /// The client's address, `peer` being the socket's: the PROXY
    /// header's source if there was one, then back through the
    /// `Forwarded` fields (or, without them, `X-Forwarded-For`) for as long
    /// as the address so far is one of the `trusted` proxies. With no
    /// proxy trusted, no field is read.
    ///
    /// ```
    /// use rfc6455::forwarded::TrustedProxies;
    /// use rfc6455::handshake::Request;
    /// use rfc6455::Config;
    ///
    /// let fields = [("Host", &b"example.com"[..]), ("X-Forwarded-For", b"203.0.113.9")];
    /// let request = Request::from_head(Config::default(), "GET", "/", 1, fields);
    /// let balancer = "10.0.0.2".parse().unwrap();
    /// let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
    /// assert_eq!(request.client_addr(balancer, &trusted).to_string(), "203.0.113.9");
    /// // A client that writes the field itself is not believed.
    /// let client = "198.51.100.4".parse().unwrap();
    /// assert_eq!(request.client_addr(client, &trusted), client);
    /// assert_eq!(request.client_addr(balancer, &TrustedProxies::none()), balancer);
    /// ```
    #[cfg(feature = "forwarded")]
    pub fn client_addr(
        &self,
        peer: core::net::IpAddr,
        trusted: &TrustedProxies,
    ) -> core::net::IpAddr {
        let direct = self
            .proxy_header
            .and_then(|header| header.source())
            .map_or(peer, |source| source.ip());
        if !trusted.contains(direct) {
            return direct;
        }
        let values = |name| -> Vec<&str> {
            header_values(&self.headers, name)
                .filter_map(|v| core::str::from_utf8(v).ok())
                .collect()
        };
        let forwarded = values("Forwarded");
        let hops = match forwarded.is_empty() {
            false => forwarded_hops(&forwarded),
            true => x_forwarded_for_hops(&values("X-Forwarded-For")),
        };
        walk_back(direct, &hops, trusted)
    }

    /// Every header field, in order, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The first field named `name` (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_values(&self.headers, name)
            .next()
            .and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The Host field.
    pub fn host(&self) -> Option<&str> {
        self.header("Host")
    }

    /// The Origin field, which browsers always send (§4.2.1 item 7, §10.2).
    /// Check it against the origins you serve, and reject with 403.
    pub fn origin(&self) -> Option<&str> {
        self.header("Origin")
    }

    /// The subprotocols the client offers, in its order of preference.
    pub fn protocols(&self) -> Vec<&str> {
        header_tokens(&self.headers, "Sec-WebSocket-Protocol").collect()
    }

    /// The raw `Sec-WebSocket-Extensions` field values the client sent.
    pub fn extensions(&self) -> Vec<&str> {
        header_values(&self.headers, "Sec-WebSocket-Extensions")
            .filter_map(|v| core::str::from_utf8(v).ok())
            .collect()
    }

    /// Whether this asks for a WebSocket (`Upgrade: websocket`), as opposed
    /// to plain HTTP. It may still be an invalid one.
    pub fn is_upgrade(&self) -> bool {
        has_token(&self.headers, "Upgrade", "websocket")
    }

    /// Bytes that arrived after the head in the same reads: the client's
    /// first frames, or an HTTP body.
    pub fn leftover(&self) -> &[u8] {
        &self.leftover
    }

    /// The handshake's deadline, on the driver's clock: write the response
    /// ([`accept`](Request::accept) or [`reject`](Request::reject)) by
    /// then. `None` if the handshake was never told the time, or has no
    /// timeout.
    pub fn deadline(&self) -> Option<Timestamp> {
        self.timer.poll_timeout()
    }

    /// Checks the request against §4.2.1 and returns the key.
    pub fn validate(&self) -> Result<&str, HandshakeError> {
        if let Some(refused) = &self.refused {
            return Err(refused.clone());
        }
        // 1. "An HTTP/1.1 or higher GET request"
        if self.method != "GET" {
            return Err(HandshakeError::MethodNotGet(self.method.clone()));
        }
        if self.http_minor < 1 {
            return Err(HandshakeError::HttpVersion);
        }
        // 2. "A |Host| header field containing the server's authority."
        if self.host().is_none_or(str::is_empty) {
            return Err(HandshakeError::MissingHost);
        }
        check_no_body(&self.headers)?;
        upgrade_key(&self.headers)
    }

    /// Accepts the upgrade: checks the request (§4.2.1), builds the `101`
    /// response (§4.2.2) and the connection, with any leftover bytes already
    /// fed to it.
    ///
    /// On `Err`, send [`HandshakeError::response`] and close.
    pub fn accept(self, options: Accept) -> Result<Accepted, HandshakeError> {
        let key = self.validate()?;
        let mut headers = vec![
            ("Upgrade".to_string(), "websocket".to_string()),
            ("Connection".to_string(), "Upgrade".to_string()),
            (
                "Sec-WebSocket-Accept".to_string(),
                accept_key(key.as_bytes()),
            ),
        ];
        let Agreement {
            fields,
            protocol,
            connection,
        } = agree(
            &self.headers,
            self.config,
            options,
            &self.timer,
            &self.leftover,
        );
        headers.extend(fields);
        let mut response = Vec::with_capacity(160);
        response.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
        for (name, value) in &headers {
            push_field(&mut response, name, value);
        }
        response.extend_from_slice(b"\r\n");
        Ok(Accepted {
            response,
            headers,
            connection,
            protocol,
        })
    }

    /// A response refusing the upgrade with `status` (403 for an Origin you
    /// do not serve, 401 without credentials, ...) and `reason` as a short
    /// plain-text body. Send it and close. A `status` that does not refuse
    /// (outside 300-599) goes out as 500.
    pub fn reject(&self, status: u16, reason: &str) -> Vec<u8> {
        error_response(status, &[], reason.as_bytes())
    }

    /// Like [`reject`](Request::reject), with extra header fields:
    /// `WWW-Authenticate` with a 401, `Retry-After` with a 429 or 503.
    /// A field that could not be sent as given is dropped: a name that is
    /// not a token (RFC 9110 §5.1), a value with a control character
    /// other than the tab (CR or LF would split the head), and a field
    /// the refusal writes itself (`Content-Length`, `Transfer-Encoding`,
    /// `Content-Type`, `Connection`).
    pub fn reject_with_headers(
        &self,
        status: u16,
        headers: &[(&str, &str)],
        reason: &str,
    ) -> Vec<u8> {
        let clean: Vec<(&str, &str)> = headers
            .iter()
            .copied()
            .filter(|(n, v)| is_safe_field(n, v) && !is_refusal_field(n))
            .collect();
        error_response(status, &clean, reason.as_bytes())
    }
}

/// What a server agrees to, whatever carries the handshake (an HTTP/1.1
/// upgrade, an HTTP/2 extended CONNECT): the subprotocol, the extension,
/// the response fields that say so, and the connection.
pub(super) struct Agreement {
    /// Response fields, names as in HTTP/1.1 (`Sec-WebSocket-Protocol`).
    pub(super) fields: Vec<(String, String)>,
    pub(super) protocol: Option<String>,
    pub(super) connection: Connection,
}

/// Agrees on what the client offered in `headers` and the embedder chose
/// in `options`; the connection is fed `leftover` and told the handshake's
/// time.
pub(super) fn agree(
    headers: &[(String, Vec<u8>)],
    config: Config,
    options: Accept,
    timer: &HandshakeTimer,
    leftover: &[u8],
) -> Agreement {
    let mut fields = Vec::new();
    // "the value MUST be one of the values the client sent" (§4.2.2, /subprotocol/)
    // A subprotocol's name is a token (§4.1): one that is not cannot be
    // sent back as it was offered.
    let protocol = options.protocol.filter(|chosen| {
        is_token(chosen)
            && header_tokens(headers, "Sec-WebSocket-Protocol").any(|offered| offered == chosen)
    });
    if let Some(protocol) = &protocol {
        fields.push(("Sec-WebSocket-Protocol".to_string(), protocol.clone()));
    }
    // permessage-deflate: accept the first valid offer, if configured.
    // A malformed field is declined, not failed: RFC 7692 §5 lets a
    // server ignore offers it does not understand.
    #[cfg(feature = "deflate")]
    let deflate = config.deflate.as_ref().and_then(|deflate| {
        let offers = super::parse_extensions(header_values(headers, "Sec-WebSocket-Extensions"));
        super::deflate::server_negotiate(&offers.ok()?, deflate)
    });
    #[cfg(feature = "deflate")]
    if let Some((_, value)) = &deflate {
        fields.push(("Sec-WebSocket-Extensions".to_string(), value.clone()));
    }
    fields.extend(options.headers);
    #[cfg(feature = "deflate")]
    let mut connection = match deflate {
        Some((params, _)) => Connection::with_deflate(Role::Server, config, params),
        None => Connection::new(Role::Server, config),
    };
    #[cfg(not(feature = "deflate"))]
    let mut connection = Connection::new(Role::Server, config);
    connection.handle_read(leftover);
    if let Some(now) = timer.now() {
        connection.handle_timeout(now);
    }
    Agreement {
        fields,
        protocol,
        connection,
    }
}

/// Items 3 to 6 of §4.2.1: the fields that ask for a WebSocket, and the
/// key, which is returned.
fn upgrade_key(headers: &[(String, Vec<u8>)]) -> Result<&str, HandshakeError> {
    // 3. "An |Upgrade| header field containing the value "websocket",
    // treated as an ASCII case-insensitive value."
    if !has_token(headers, "Upgrade", "websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    // 4. "A |Connection| header field that includes the token "Upgrade",
    // treated as an ASCII case-insensitive value."
    if !has_token(headers, "Connection", "Upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    // Checked before the key so that an old client learns the version
    // we speak (426 with Sec-WebSocket-Version: 13, §4.4).
    check_version(headers)?;
    // 5. "A |Sec-WebSocket-Key| header field with a base64-encoded value
    // that, when decoded, is 16 bytes in length."
    let mut keys = header_values(headers, "Sec-WebSocket-Key");
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(HandshakeError::InvalidKey);
    };
    let key = key.trim_ascii();
    if !is_base64_of_16_bytes(key) {
        return Err(HandshakeError::InvalidKey);
    }
    core::str::from_utf8(key).map_err(|_| HandshakeError::InvalidKey)
}

/// A request that announces a body is refused, over HTTP/1.1 and HTTP/2
/// alike: the opening handshake is a head alone (§4.1), and what follows
/// it is the WebSocket. `Content-Length: 0` announces no body.
pub(super) fn check_no_body(headers: &[(String, Vec<u8>)]) -> Result<(), HandshakeError> {
    let transfer_encoding = header_values(headers, "Transfer-Encoding").next().is_some();
    let mut lengths = header_values(headers, "Content-Length");
    if transfer_encoding || lengths.any(|len| len.trim_ascii() != b"0") {
        return Err(HandshakeError::RequestBody);
    }
    Ok(())
}

/// Item 6 of §4.2.1, for HTTP/1.1 and HTTP/2 alike: "A
/// |Sec-WebSocket-Version| header field, with a value of 13."
pub(super) fn check_version(headers: &[(String, Vec<u8>)]) -> Result<(), HandshakeError> {
    let mut versions = header_values(headers, "Sec-WebSocket-Version");
    if versions.next().map(<[u8]>::trim_ascii) != Some(b"13") || versions.next().is_some() {
        return Err(HandshakeError::UnsupportedVersion);
    }
    Ok(())
}

/// Whether `key` is the canonical base64 (RFC 4648 §4) of 16 bytes: 21
/// characters of the alphabet, a 22nd that carries the last 2 bits and
/// four zero bits (so one of `A`, `Q`, `g`, `w`), then `==`. Checked by
/// hand rather than decoded: that is all a server needs of the key, and
/// it keeps a base64 decoder out of small targets.
fn is_base64_of_16_bytes(key: &[u8]) -> bool {
    let is_alphabet = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    match key {
        [head @ .., last, b'=', b'='] if head.len() == 21 => {
            head.iter().all(is_alphabet) && matches!(last, b'A' | b'Q' | b'g' | b'w')
        }
        _ => false,
    }
}

/// Decodes `%XX` escapes and `+`; invalid escapes are kept as they are,
/// and bytes that do not form UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The embedder's choices when accepting: a subprotocol and extra fields.
#[derive(Clone, Debug, Default)]
pub struct Accept {
    protocol: Option<String>,
    headers: Vec<(String, String)>,
}

impl Accept {
    /// Accept with no subprotocol and no extra fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chooses a subprotocol. It is sent only if the client offered it
    /// and is a token, as a subprotocol's name must be (§4.1);
    /// [`Accepted::protocol`] says what was agreed.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }

    /// Adds a header field to the 101 response (a cookie, a server name).
    /// A field that could not be sent as given by every driver is dropped:
    /// a name that is not a token (RFC 9110 §5.1), a value with a control
    /// character other than the tab (CR or LF would split the response);
    /// over HTTP/2 also a field about one HTTP/1.1 connection (`Keep-Alive`,
    /// ...). So is a field the handshake writes itself (`Upgrade`,
    /// `Connection`, `Sec-WebSocket-*`, `Content-Length`, ...): choose the
    /// subprotocol with [`protocol`](Accept::protocol).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        if is_safe_field(&name, &value) && !is_handshake_field(&name) {
            self.headers.push((name, value));
        }
        self
    }
}

/// The result of accepting: the response to send, and the connection.
#[derive(Debug)]
pub struct Accepted {
    /// The `101 Switching Protocols` response: write it before any frame.
    pub response: Vec<u8>,
    /// The response's header fields, for an HTTP library that writes the
    /// response itself (with status 101).
    pub headers: Vec<(String, String)>,
    /// The connection, already fed with any bytes that followed the request.
    pub connection: Connection,
    /// The subprotocol agreed, if any.
    pub protocol: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine as _;

    /// The hand check says what a strict base64 decoder says: valid, and
    /// 16 bytes long.
    fn decoder_agrees(key: &[u8]) -> bool {
        let decoded = BASE64.decode(key).map(|raw| raw.len() == 16);
        is_base64_of_16_bytes(key) == decoded.unwrap_or(false)
    }

    proptest::proptest! {
        #[test]
        fn every_16_byte_key_is_accepted(raw in proptest::prelude::any::<[u8; 16]>()) {
            proptest::prop_assert!(is_base64_of_16_bytes(BASE64.encode(raw).as_bytes()));
        }

        #[test]
        fn the_check_agrees_with_a_decoder(
            raw in proptest::prelude::any::<[u8; 16]>(),
            at in 0usize..24,
            byte in proptest::sample::select(b"AQgwBz+/=-_ \0\xff".to_vec()),
            len in 0usize..30,
        ) {
            // A valid key with one byte changed, and one cut or padded to
            // any length.
            let mut key = BASE64.encode(raw).into_bytes();
            key[at] = byte;
            proptest::prop_assert!(decoder_agrees(&key), "{:?}", key);
            let mut resized: Vec<u8> = BASE64.encode(raw).into_bytes();
            resized.resize(len, b'A');
            proptest::prop_assert!(decoder_agrees(&resized), "{:?}", resized);
        }
    }
}
