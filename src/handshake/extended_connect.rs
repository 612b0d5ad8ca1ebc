//! The opening handshake over HTTP/2: an extended CONNECT (RFC 8441).
//!
//! Over HTTP/2 a WebSocket is one stream of a connection the client and
//! server already share. The client asks with a CONNECT request that names
//! the protocol (`:protocol = websocket`, §4) once the server's SETTINGS
//! said `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1` (§3); the server answers
//! with a 2xx, and from then on the stream's DATA carries exactly the
//! frames a TCP connection carries after a 101. There is no
//! `Sec-WebSocket-Key`/`Accept` and no `Upgrade`/`Connection`: HTTP/2 has
//! no connection-level upgrade, and the stream is new (§5).
//!
//! This module does not speak HTTP/2 (an HTTP/2 library moves the
//! HEADERS): it takes the pseudo-header fields and the header fields, and
//! makes the same decisions as the HTTP/1.1 handshake (version 13,
//! subprotocols, permessage-deflate, Origin left to the embedder), then
//! gives the response fields and the [`Connection`].
//!
//! ```
//! use rfc6455::handshake::{Accept, ExtendedConnectClient, ClientRequest, ExtendedConnectRequest};
//! use rfc6455::Config;
//!
//! // The client's HEADERS, as its HTTP/2 library would send them ...
//! let client = ExtendedConnectClient::new(&ClientRequest::new("example.com", "/chat"), Config::default());
//! let pseudo = client.pseudo_headers();
//! let fields = client.headers();
//! // ... and as the server's library hands them over.
//! let fields = fields.iter().map(|(name, value)| (name.as_str(), value.as_bytes()));
//! let request = ExtendedConnectRequest::new(Config::default(), &pseudo, fields);
//! assert_eq!(request.path(), "/chat");
//! let accepted = request.accept(Accept::new()).unwrap();
//! assert_eq!(accepted.response.status, 200);
//!
//! let response = accepted.response.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()));
//! let connected = client.handle_response(accepted.response.status, response).unwrap();
//! # let _ = connected.connection;
//! ```

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::client::{agree as client_agree, offer, ClientRequest, Connected, Response};
use super::error::refusal_status;
use super::head::{
    bounded_fields, header_tokens, header_values, is_safe_field, kept_fields, Measure,
};
use super::server::{agree as server_agree, check_no_body, check_version, Accept, Agreement};
use super::{check_time, HandshakeError};
use crate::time::HandshakeTimer;
use crate::{Config, Connection, Timestamp, UsageError};

/// The pseudo-header fields of an HTTP/2 request (RFC 9113 §8.3.1), and
/// `:protocol` (RFC 8441 §4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PseudoHeaders {
    /// `:method`; `CONNECT` for a WebSocket.
    pub method: String,
    /// `:protocol`; `websocket` for a WebSocket.
    pub protocol: Option<String>,
    /// `:scheme`: `https`, or `http` over cleartext HTTP/2.
    pub scheme: Option<String>,
    /// `:authority`: the host, and the port if not the scheme's default.
    pub authority: Option<String>,
    /// `:path`: the path and query of the WebSocket's URI.
    pub path: Option<String>,
}

impl PseudoHeaders {
    /// Their size as a field section counts it (RFC 9113 §6.5.2).
    fn size(&self) -> usize {
        let method = Measure::FieldSection.of(":method", self.method.as_bytes());
        let optional = [
            (":protocol", &self.protocol),
            (":scheme", &self.scheme),
            (":authority", &self.authority),
            (":path", &self.path),
        ];
        optional
            .iter()
            .filter_map(|(name, value)| {
                Some(Measure::FieldSection.of(name, value.as_ref()?.as_bytes()))
            })
            .fold(method, usize::saturating_add)
    }
}

/// A response to send on the request's stream: a status and header fields
/// (names in lowercase, as HTTP/2 requires), and for a refusal a short
/// plain-text body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtendedConnectResponse {
    /// The `:status`: 200 to accept.
    pub status: u16,
    /// Header fields, lowercase names.
    pub headers: Vec<(String, String)>,
    /// The body: empty when accepting (the stream then carries frames).
    pub body: Vec<u8>,
}

impl ExtendedConnectResponse {
    /// A response with `status`, one `content-type` field and `body`: a
    /// page served on the same HTTP/2 connection as the WebSockets.
    pub fn new(
        status: u16,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) -> ExtendedConnectResponse {
        ExtendedConnectResponse {
            status,
            headers: alloc::vec![("content-type".to_string(), content_type.to_string())],
            body: body.into(),
        }
    }

    fn refusal(status: u16, extra: &[(&str, &str)], reason: &[u8]) -> ExtendedConnectResponse {
        let mut headers: Vec<(String, String)> = extra
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
            .filter(|(name, value)| may_send(name, value))
            .collect();
        headers.push((
            "content-type".to_string(),
            "text/plain; charset=utf-8".to_string(),
        ));
        let mut body = reason.to_vec();
        body.push(b'\n');
        ExtendedConnectResponse {
            status: refusal_status(status),
            headers,
            body,
        }
    }
}

impl HandshakeError {
    /// The HTTP/2 response a server sends for this error: its
    /// [`status`](HandshakeError::status) (400 where HTTP/1.1 says 426,
    /// since 426 needs an `Upgrade` field that HTTP/2 forbids; still with
    /// `sec-websocket-version: 13`, §4.4), and its text as the body.
    pub fn extended_connect_response(&self) -> ExtendedConnectResponse {
        let (status, extra): (u16, &[(&str, &str)]) = match self {
            HandshakeError::UnsupportedVersion => (400, &[("sec-websocket-version", "13")]),
            HandshakeError::MethodNotConnect(_) => (405, &[("allow", "CONNECT")]),
            _ => (self.status(), &[]),
        };
        let mut body = Vec::new();
        self.write_text(&mut body);
        ExtendedConnectResponse::refusal(status, extra, &body)
    }
}

/// Header fields that are about one HTTP/1.1 connection, which a request
/// over HTTP/2 must not carry (RFC 9113 §8.2.2: such a request is
/// malformed).
const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
];

/// Whether a field (lowercase name) may go out over HTTP/2: a
/// safe field ([`is_safe_field`]) that is not about
/// one HTTP/1.1 connection. An embedder's `Connection` or `Keep-Alive`
/// in [`Accept`] means something over HTTP/1.1 only; sent over HTTP/2 it
/// would make the response malformed (§8.2.2), so it is left out.
fn may_send(name: &str, value: &str) -> bool {
    is_safe_field(name, value) && !CONNECTION_SPECIFIC.contains(&name) && name != "te"
}

/// A WebSocket request that arrived as an extended CONNECT.
///
/// Look at the path, Origin and subprotocols, then
/// [`accept`](ExtendedConnectRequest::accept) (which also checks that this is a
/// valid WebSocket request) or [`reject`](ExtendedConnectRequest::reject).
#[derive(Clone, Debug)]
pub struct ExtendedConnectRequest {
    pseudo: PseudoHeaders,
    headers: Vec<(String, Vec<u8>)>,
    /// The fields broke a limit: they were not kept.
    refused: Option<HandshakeError>,
    config: Config,
    timer: HandshakeTimer,
}

impl ExtendedConnectRequest {
    /// The request as the HTTP/2 library received it: its pseudo-header
    /// fields and its header fields, names in any case.
    pub fn new<'a>(
        config: Config,
        pseudo: &PseudoHeaders,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> ExtendedConnectRequest {
        let start = pseudo.size();
        let (headers, refused) = kept_fields(headers, Measure::FieldSection, start, &config);
        let timer = HandshakeTimer::new(&config.timeouts);
        ExtendedConnectRequest {
            pseudo: pseudo.clone(),
            headers,
            refused,
            config,
            timer,
        }
    }

    /// The request, its handshake countdown the one that ran while its
    /// HEADERS were read (by a driver that reads them itself).
    #[cfg(feature = "http3")]
    pub(crate) fn with_timer(mut self, timer: HandshakeTimer) -> ExtendedConnectRequest {
        self.timer = timer;
        self
    }

    /// Tells the request the time: the connection made from it carries
    /// on from it, and once [`Timeouts::handshake`](crate::Timeouts::handshake)
    /// has run out since the first call this returns
    /// [`HandshakeError::Timeout`] (for a server that waits long before it
    /// decides).
    pub fn handle_timeout(&mut self, now: Timestamp) -> Result<(), HandshakeError> {
        check_time(&mut self.timer, now)
    }

    /// Whether this is a WebSocket's extended CONNECT (`:method` CONNECT
    /// with `:protocol` websocket), which may still be invalid; anything
    /// else (a page's GET on the same connection) is for the application.
    pub fn is_websocket(&self) -> bool {
        self.pseudo.method == "CONNECT" && self.pseudo.protocol.as_deref() == Some("websocket")
    }

    /// The pseudo-header fields.
    pub fn pseudo_headers(&self) -> &PseudoHeaders {
        &self.pseudo
    }

    /// `:path`, or `/` if it is missing (which [`validate`](ExtendedConnectRequest::validate) refuses).
    pub fn path(&self) -> &str {
        self.pseudo.path.as_deref().unwrap_or("/")
    }

    /// `:authority`.
    pub fn authority(&self) -> Option<&str> {
        self.pseudo.authority.as_deref()
    }

    /// The first field named `name` (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_values(&self.headers, name)
            .next()
            .and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The Origin field (§4.2.1 item 7, §10.2): check it and reject with 403.
    pub fn origin(&self) -> Option<&str> {
        self.header("Origin")
    }

    /// The subprotocols the client offers, in its order of preference.
    pub fn protocols(&self) -> Vec<&str> {
        header_tokens(&self.headers, "Sec-WebSocket-Protocol").collect()
    }

    /// Checks the request against RFC 8441 §4 and §5 and RFC 6455 §4.2.1.
    pub fn validate(&self) -> Result<(), HandshakeError> {
        // The fields' size as HTTP/2 and HTTP/3 count it (pseudo-header
        // fields too), against the limit of an HTTP/1.1 head.
        if let Some(refused) = &self.refused {
            return Err(refused.clone());
        }
        // "A new pseudo-header field :protocol MAY be included on request
        // HEADERS indicating the desired protocol to be spoken on the
        // tunnel created by CONNECT." (§4) It is what makes a CONNECT a
        // WebSocket; without it, a plain CONNECT is a proxy tunnel.
        if self.pseudo.method != "CONNECT" {
            return Err(HandshakeError::MethodNotConnect(self.pseudo.method.clone()));
        }
        match self.pseudo.protocol.as_deref() {
            Some("websocket") => {}
            Some(other) => return Err(HandshakeError::UnknownProtocol(other.to_string())),
            None => return Err(HandshakeError::Malformed("CONNECT without :protocol")),
        }
        // "On requests that contain the :protocol pseudo-header field, the
        // :scheme and :path pseudo-header fields of the target URI MUST
        // also be included." (§4) And :authority, as on every CONNECT.
        let present = |field: &Option<String>| field.as_deref().is_some_and(|v| !v.is_empty());
        if !present(&self.pseudo.scheme) {
            return Err(HandshakeError::Malformed("CONNECT without :scheme"));
        }
        if !present(&self.pseudo.path) {
            return Err(HandshakeError::Malformed("CONNECT without :path"));
        }
        if !present(&self.pseudo.authority) {
            return Err(HandshakeError::Malformed("CONNECT without :authority"));
        }
        if let Some((name, _)) = self.headers.iter().find(|(name, _)| {
            CONNECTION_SPECIFIC
                .iter()
                .any(|field| name.eq_ignore_ascii_case(field))
        }) {
            return Err(HandshakeError::ConnectionSpecificField(
                name.to_ascii_lowercase(),
            ));
        }
        // The stream's DATA is the WebSocket, so a content-length
        // announces a body that is not there.
        check_no_body(&self.headers)?;
        // "The Sec-WebSocket-Version ... header fields are used as in
        // RFC 6455" (§5): 13 only.
        check_version(&self.headers)
    }

    /// Accepts: checks the request, and gives the 200 response's fields
    /// (the agreed subprotocol and extension, your extra fields) and the
    /// connection that the stream's DATA feeds from now on.
    ///
    /// On `Err`, send [`HandshakeError::extended_connect_response`] and end the stream.
    pub fn accept(self, options: Accept) -> Result<ExtendedConnectAccepted, HandshakeError> {
        self.validate()?;
        let Agreement {
            fields,
            protocol,
            connection,
        } = server_agree(&self.headers, self.config, options, &self.timer, &[]);
        let headers = fields
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .filter(|(name, value)| may_send(name, value))
            .collect();
        Ok(ExtendedConnectAccepted {
            response: ExtendedConnectResponse {
                status: 200,
                headers,
                body: Vec::new(),
            },
            connection,
            protocol,
        })
    }

    /// A response refusing the request with `status` (403 for an Origin
    /// you do not serve, 401 without credentials; one outside 300-599 goes
    /// out as 500) and `reason` as a short plain-text body. Send it and end
    /// the stream.
    pub fn reject(&self, status: u16, reason: &str) -> ExtendedConnectResponse {
        ExtendedConnectResponse::refusal(status, &[], reason.as_bytes())
    }
}

/// The result of accepting an extended CONNECT.
#[derive(Debug)]
pub struct ExtendedConnectAccepted {
    /// The 200 response: send its HEADERS before any DATA.
    pub response: ExtendedConnectResponse,
    /// The connection: feed it the stream's DATA, send its output as DATA.
    pub connection: Connection,
    /// The subprotocol agreed, if any.
    pub protocol: Option<String>,
}

/// The client side of an extended CONNECT: the request's fields, then the
/// check of the response.
#[derive(Debug)]
pub struct ExtendedConnectClient {
    pseudo: PseudoHeaders,
    headers: Vec<(String, String)>,
    protocols: Vec<String>,
    timer: HandshakeTimer,
    config: Config,
}

impl ExtendedConnectClient {
    /// A request for `request`'s path on its host, over `https`
    /// ([`scheme`](ExtendedConnectClient::scheme) changes it).
    ///
    /// # Panics
    /// If the configuration has no key source to mask frames with
    /// ([`MaskKeys::Unset`](crate::MaskKeys::Unset)); see [`try_new`](ExtendedConnectClient::try_new).
    pub fn new(request: &ClientRequest, config: Config) -> ExtendedConnectClient {
        match ExtendedConnectClient::try_new(request, config) {
            Ok(connect) => connect,
            Err(_) => panic!("a client needs Config::mask_keys"),
        }
    }

    /// As [`new`](ExtendedConnectClient::new), or [`UsageError::NoKeySource`].
    pub fn try_new(
        request: &ClientRequest,
        config: Config,
    ) -> Result<ExtendedConnectClient, UsageError> {
        if !config.mask_keys.is_set() {
            return Err(UsageError::NoKeySource);
        }
        let pseudo = PseudoHeaders {
            method: "CONNECT".to_string(),
            protocol: Some("websocket".to_string()),
            scheme: Some("https".to_string()),
            authority: Some(request.host.clone()),
            path: Some(request.path.clone()),
        };
        // HTTP/2 field names are lowercase (RFC 9113 §8.2.1), and fields
        // about one HTTP/1.1 connection are left out (§8.2.2).
        let headers = offer(request, &config)
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .filter(|(name, value)| may_send(name, value))
            .collect();
        Ok(ExtendedConnectClient {
            pseudo,
            headers,
            protocols: request.protocols.clone(),
            timer: HandshakeTimer::new(&config.timeouts),
            config,
        })
    }

    /// Sets `:scheme` (`http` for cleartext HTTP/2).
    pub fn scheme(mut self, scheme: &str) -> ExtendedConnectClient {
        self.pseudo.scheme = Some(scheme.to_string());
        self
    }

    /// The pseudo-header fields to send.
    pub fn pseudo_headers(&self) -> PseudoHeaders {
        self.pseudo.clone()
    }

    /// The header fields to send, lowercase names.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Tells the handshake the time; [`HandshakeError::Timeout`] once
    /// [`Timeouts::handshake`](crate::Timeouts::handshake) has run out
    /// since the first call.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Result<(), HandshakeError> {
        check_time(&mut self.timer, now)
    }

    /// When the handshake gives up, on the driver's clock.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timer.poll_timeout()
    }

    /// Checks the server's response: a 2xx status ("a successful response
    /// ... is a 2xx", RFC 8441 §5), a subprotocol and extension among
    /// those offered. Gives the connection the stream's DATA feeds.
    pub fn handle_response<'a>(
        self,
        status: u16,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Connected, HandshakeError> {
        if !(200..300).contains(&status) {
            return Err(HandshakeError::Status(status));
        }
        // `:status` and its three digits.
        let start = Measure::FieldSection.of(":status", b"200");
        let headers = bounded_fields(
            headers,
            Measure::FieldSection,
            start,
            self.config.max_header_bytes,
            self.config.max_headers,
        )?;
        let (protocol, mut connection) = client_agree(&headers, &self.protocols, &self.config)?;
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
