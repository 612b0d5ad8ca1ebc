//! What the blocking and tokio adapters share: their error type, URL
//! parsing, and the clock they read for the core. No protocol logic lives
//! here: every deadline is the core's.

use alloc::format;
use alloc::string::String;
use alloc::string::ToString;
use std::fmt;
use std::io;
use std::ops::Add;
use std::sync::OnceLock;
use std::time::Duration;

use crate::handshake::{ClientRequest, HandshakeError};
#[cfg(any(feature = "tokio", feature = "blocking"))]
use crate::proxy::Proxy;
use crate::proxy::ProxyError;
use crate::{Closed, Event, Message, ProtocolError, Timestamp, UsageError};

/// What can go wrong on a connection driven by an adapter.
///
/// I/O failures, handshake failures, the peer's protocol faults and the
/// caller's misuse are distinct variants, so a caller can tell "the network
/// broke" from "the peer misbehaved" from "I called it wrong".
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    Io(io::Error),
    /// The opening handshake failed. On a server, the HTTP error response
    /// was already sent.
    Handshake(HandshakeError),
    /// The peer broke the protocol; we sent a Close frame with the
    /// matching code and closed. Also the transport ending without a
    /// closing handshake ([`ProtocolError::UnexpectedEof`]).
    Protocol(ProtocolError),
    /// The call is not allowed in this state (sending after close, ...).
    Usage(UsageError),
    /// A `ws://` URL that cannot be parsed.
    Url(String),
    /// A timer of the core ran out: the opening handshake took too long,
    /// or the peer did not answer our Close (after an idle timeout, say).
    Timeout(&'static str),
    /// The TLS handshake failed (a certificate not valid for the host, or
    /// not signed by a trusted root), or `wss://` without TLS configured.
    Tls(String),
    /// The proxy on the way refused or failed (407, a SOCKS5 failure).
    Proxy(ProxyError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Handshake(e) => write!(f, "handshake failed: {e}"),
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
            Error::Usage(e) => write!(f, "usage error: {e}"),
            Error::Url(e) => write!(f, "invalid URL: {e}"),
            Error::Timeout(what) => write!(f, "timed out: {what}"),
            Error::Tls(e) => write!(f, "TLS: {e}"),
            Error::Proxy(e) => write!(f, "proxy: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Handshake(e) => Some(e),
            Error::Protocol(e) => Some(e),
            Error::Usage(e) => Some(e),
            Error::Proxy(e) => Some(e),
            Error::Url(_) | Error::Timeout(_) | Error::Tls(_) => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        match e {
            HandshakeError::Timeout => Error::Timeout("opening handshake"),
            e => Error::Handshake(e),
        }
    }
}

impl From<ProxyError> for Error {
    fn from(e: ProxyError) -> Self {
        Error::Proxy(e)
    }
}

impl From<UsageError> for Error {
    fn from(e: UsageError) -> Self {
        Error::Usage(e)
    }
}

/// The error, if any, that a finished connection reports to `recv`/`read`:
/// none for a closing handshake, the fault for a failed connection.
pub(crate) fn closed_error(closed: &Closed) -> Option<Error> {
    closed.error.clone().map(|e| match e {
        ProtocolError::Timeout => Error::Timeout("closing handshake: the peer did not answer"),
        e => Error::Protocol(e),
    })
}

/// What `recv` (`read`) makes of an event: `Some` of what to return (a
/// message; at the end `Ok(None)`, or the error if the connection failed),
/// or `None` for an event the caller of `recv` does not see (a Ping, a
/// Pong, a fragment of a streamed message).
pub(crate) fn received(event: Event) -> Option<Result<Option<Message>, Error>> {
    match event {
        Event::Message(message) => Some(Ok(Some(message))),
        Event::Closed(closed) => Some(closed_error(&closed).map_or(Ok(None), Err)),
        Event::Fragment(_) | Event::Ping(_) | Event::Pong(_) => None,
    }
}

/// A monotonic clock the adapters read for the core: the time since one
/// epoch per process, so that every handshake and connection of a process
/// counts from the same point.
pub(crate) trait Clock: Copy + Add<Duration, Output = Self> + Send + Sync + 'static {
    /// The clock's time now.
    fn read() -> Self;
    /// How long after `earlier` this is (zero if not after).
    fn since(self, earlier: Self) -> Duration;
    /// The epoch, fixed at the first call.
    fn epoch() -> Self;

    /// Now, as the core counts time.
    fn timestamp() -> Timestamp {
        Timestamp::from(Self::read().since(Self::epoch()))
    }

    /// A deadline of the core, on this clock.
    fn at(deadline: Timestamp) -> Self {
        Self::epoch() + deadline.since_epoch()
    }
}

impl Clock for std::time::Instant {
    fn read() -> Self {
        std::time::Instant::now()
    }

    fn since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }

    fn epoch() -> Self {
        static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
        *EPOCH.get_or_init(std::time::Instant::now)
    }
}

/// A runtime's timer on its clock: what [`Alarm`] sleeps with.
#[cfg(any(feature = "tokio", feature = "compio"))]
pub(crate) trait Timer: Clock {
    /// A sleep until an instant of this clock (boxed where the runtime's
    /// own is not `Unpin`, or has no name).
    type Sleep: core::future::Future<Output = ()> + Unpin;
    /// A sleep until `at`.
    fn sleep_until(at: Self) -> Self::Sleep;
    /// Moves `sleep` to `at`; `false` if this timer cannot (then a new
    /// sleep is made).
    fn reset(_sleep: &mut Self::Sleep, _at: Self) -> bool {
        false
    }
}

/// Sleeps until the core's next deadline on the timer `T`, and tells the
/// core the time when it comes: how the async drivers hand the core its
/// time. The core decides every deadline; this only keeps the appointment.
#[cfg(any(feature = "tokio", feature = "compio"))]
pub(crate) struct Alarm<T: Timer> {
    sleep: Option<T::Sleep>,
    /// The deadline `sleep` is set for, on the core's clock.
    armed: Option<Timestamp>,
}

#[cfg(any(feature = "tokio", feature = "compio"))]
impl<T: Timer> Default for Alarm<T> {
    fn default() -> Self {
        Alarm {
            sleep: None,
            armed: None,
        }
    }
}

#[cfg(any(feature = "tokio", feature = "compio"))]
impl<T: Timer> fmt::Debug for Alarm<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alarm").field("armed", &self.armed).finish()
    }
}

#[cfg(any(feature = "tokio", feature = "compio"))]
impl<T: Timer> Alarm<T> {
    /// Sleeps until the core's deadline; when it comes, tells the core the
    /// time. Returns whether it did (then there may be work), having
    /// registered for the next deadline either way.
    pub(crate) fn poll(
        &mut self,
        conn: &mut crate::Connection,
        cx: &mut core::task::Context<'_>,
    ) -> bool {
        use core::future::Future;
        use core::pin::Pin;
        let mut told = false;
        while let Some(deadline) = conn.poll_timeout() {
            if self.armed != Some(deadline) {
                let at = T::at(deadline);
                let reset = match &mut self.sleep {
                    Some(sleep) => T::reset(sleep, at),
                    None => false,
                };
                if !reset {
                    self.sleep = Some(T::sleep_until(at));
                }
                self.armed = Some(deadline);
            }
            let sleep = self.sleep.as_mut().expect("armed above");
            if Pin::new(sleep).poll(cx).is_pending() {
                break;
            }
            self.armed = None;
            conn.handle_timeout(T::timestamp());
            told = true;
        }
        told
    }
}

/// Makes the next read on `tcp` wait no longer than until the core's
/// `deadline` (`None`: until bytes come): how the blocking adapter wakes
/// for the core's timers on a socket it opened, as the async adapters
/// sleep until the deadline.
#[cfg(feature = "blocking")]
pub(crate) fn read_until(tcp: &std::net::TcpStream, deadline: Option<Timestamp>) -> io::Result<()> {
    let now = std::time::Instant::read();
    let left = deadline.map(|at| {
        // Never zero: a socket refuses a zero timeout.
        std::time::Instant::at(at)
            .since(now)
            .max(Duration::from_millis(1))
    });
    tcp.set_read_timeout(left)
}

/// tokio's clock, which tests can pause and advance.
#[cfg(feature = "tokio")]
impl Clock for tokio::time::Instant {
    fn read() -> Self {
        tokio::time::Instant::now()
    }

    fn since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }

    fn epoch() -> Self {
        static EPOCH: OnceLock<tokio::time::Instant> = OnceLock::new();
        *EPOCH.get_or_init(tokio::time::Instant::now)
    }
}

/// Closes a TCP stream without losing what was last written to it.
///
/// Closing a socket whose receive queue still holds bytes makes the kernel
/// send a reset, and a reset can destroy data the peer has not read yet,
/// such as our Close frame. So this shuts down our sending side (the peer
/// sees end of stream after our last frame), then reads and discards until
/// the peer closes too or `timeout` passes.
#[cfg(feature = "blocking")]
pub fn close_tcp(stream: std::net::TcpStream, timeout: Duration) {
    use std::io::Read;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
    let deadline = std::time::Instant::now() + timeout;
    let mut sink = [0u8; 4096];
    while std::time::Instant::now() < deadline {
        match (&stream).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// How `connect` reaches a URL: through which proxy, and with which TLS
/// configuration for `wss://`.
///
/// The default reads the proxy from the environment as curl and reqwest
/// do (`HTTPS_PROXY` for `wss://`, `HTTP_PROXY` for `ws://`, `ALL_PROXY`,
/// `NO_PROXY`; see [`Proxy::from_env`]), and verifies servers against the
/// roots of the enabled feature: `rustls-tls-webpki-roots` (Mozilla's,
/// compiled in) and/or `rustls-tls-native-roots` (the operating system's).
#[cfg(any(feature = "tokio", feature = "blocking"))]
#[derive(Clone, Default)]
pub struct Connector {
    proxy: ProxyChoice,
    #[cfg(feature = "rustls")]
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

#[cfg(any(feature = "tokio", feature = "blocking"))]
impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

#[cfg(any(feature = "tokio", feature = "blocking"))]
#[derive(Clone, Debug, Default)]
enum ProxyChoice {
    #[default]
    FromEnvironment,
    Direct,
    Through(Proxy),
}

#[cfg(any(feature = "tokio", feature = "blocking"))]
impl Connector {
    /// Proxies from the environment, TLS roots from the features.
    pub fn new() -> Self {
        Connector::default()
    }

    /// Connects through `proxy`, whatever the environment says.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = ProxyChoice::Through(proxy);
        self
    }

    /// Connects directly, whatever the environment says.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = ProxyChoice::Direct;
        self
    }

    /// Uses `config` for `wss://`: a private CA, client certificates,
    /// other roots. Keep its ALPN protocols empty or `http/1.1`: the
    /// WebSocket handshake is HTTP/1.1.
    #[cfg(feature = "rustls")]
    pub fn rustls(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The proxy for `url`, if any.
    pub(crate) fn proxy_for(&self, url: &WsUrl) -> Result<Option<Proxy>, Error> {
        match &self.proxy {
            ProxyChoice::Direct => Ok(None),
            ProxyChoice::Through(proxy) => Ok(Some(proxy.clone())),
            ProxyChoice::FromEnvironment => {
                Proxy::from_env(url.secure, &url.host, |name| std::env::var(name).ok())
                    .transpose()
                    .map_err(Error::Proxy)
            }
        }
    }

    /// The TLS configuration for `wss://`.
    #[cfg(feature = "rustls")]
    pub(crate) fn tls_config(&self) -> Result<std::sync::Arc<rustls::ClientConfig>, Error> {
        match &self.tls {
            Some(config) => Ok(config.clone()),
            None => default_tls_config(),
        }
    }
}

/// The client configuration from the enabled roots, made once: ring as
/// the crypto provider, ALPN `http/1.1`.
#[cfg(all(feature = "rustls", any(feature = "tokio", feature = "blocking")))]
fn default_tls_config() -> Result<std::sync::Arc<rustls::ClientConfig>, Error> {
    static CONFIG: OnceLock<Result<std::sync::Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            #[allow(unused_mut)]
            let mut roots = rustls::RootCertStore::empty();
            #[cfg(feature = "rustls-tls-webpki-roots")]
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            #[cfg(feature = "rustls-tls-native-roots")]
            for cert in rustls_native_certs::load_native_certs().certs {
                // A platform certificate rustls cannot parse is skipped,
                // as reqwest does.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(
                    "no root certificates: enable the feature rustls-tls-webpki-roots or \
                            rustls-tls-native-roots, or pass a rustls::ClientConfig with \
                            Connector::rustls"
                        .to_string(),
                );
            }
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = alloc::vec![b"http/1.1".to_vec()];
            Ok(std::sync::Arc::new(config))
        })
        .clone()
        .map_err(Error::Tls)
}

/// The name the server's certificate must carry.
#[cfg(all(feature = "rustls", any(feature = "tokio", feature = "blocking")))]
pub(crate) fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, Error> {
    rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| Error::Tls(format!("{host} is not a valid server name: {e}")))
}

/// A TLS failure as a clear error: rustls's own message (the certificate
/// is not valid for the name, not trusted, expired...), with the host.
#[cfg(all(feature = "rustls", any(feature = "tokio", feature = "blocking")))]
pub(crate) fn tls_error(host: &str, e: io::Error) -> Error {
    let is_tls = e
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
    if is_tls {
        Error::Tls(format!("{host}: {e}"))
    } else {
        Error::Io(e)
    }
}

/// Without TLS: `wss://` cannot be reached by `connect`.
#[cfg(all(not(feature = "rustls"), any(feature = "tokio", feature = "blocking")))]
pub(crate) fn no_tls() -> Error {
    Error::Tls(
        "wss:// needs a TLS feature (rustls-tls-webpki-roots, rustls-tls-native-roots or rustls), \
         or open the TLS stream yourself and call client"
            .to_string(),
    )
}

/// A `ws://` or `wss://` URL, split into what the handshake and the
/// transport need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsUrl {
    /// `true` for `wss://`.
    pub secure: bool,
    /// The host name or address, without brackets for IPv6.
    pub host: String,
    /// The port: explicit, or 80 / 443.
    pub port: u16,
    /// The path and query, at least `/`.
    pub path: String,
}

impl WsUrl {
    /// Parses `ws://host[:port][/path][?query]` (or `wss://`).
    pub fn parse(url: &str) -> Result<WsUrl, Error> {
        let bad = |why: &str| Error::Url(format!("{url}: {why}"));
        let (secure, rest) = if let Some(rest) = url.strip_prefix("ws://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("wss://") {
            (true, rest)
        } else {
            return Err(bad("scheme must be ws:// or wss://"));
        };
        // "The <resource-name> ... and fragment identifiers are meaningless
        // in the context of WebSocket URIs and MUST NOT be used" (§3).
        if rest.contains('#') {
            return Err(bad("fragment identifiers are not allowed"));
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(bad("user information is not supported"));
        }
        let default_port = if secure { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            match after.strip_prefix(':') {
                Some(port) => (host, port.parse().map_err(|_| bad("invalid port"))?),
                None if after.is_empty() => (host, default_port),
                None => return Err(bad("junk after IPv6 address")),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().map_err(|_| bad("invalid port"))?),
                None => (authority, default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Ok(WsUrl {
            secure,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// The Host field: the host, with the port unless it is the default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default_port = if self.secure { 443 } else { 80 };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// `host:port`, for connecting a socket.
    pub fn socket_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// A handshake request for this URL.
    pub fn request(&self) -> ClientRequest {
        ClientRequest::new(self.host_header(), self.path.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = WsUrl::parse("ws://example.com/chat?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("example.com", 80, "/chat?x=1")
        );
        assert_eq!(u.host_header(), "example.com");
        let u = WsUrl::parse("wss://[::1]:9001").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 9001, "/")
        );
        assert_eq!(u.host_header(), "[::1]:9001");
        let u = WsUrl::parse("ws://h?q").unwrap();
        assert_eq!(u.path, "/?q");
        for bad in [
            "http://a/",
            "ws://",
            "ws://a:x/",
            "ws://a/#frag",
            "ws://u@a/",
        ] {
            assert!(WsUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
