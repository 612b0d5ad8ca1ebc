//! Dialling a URL: `ws://` and `wss://` URLs, the proxy and TLS
//! configuration of [`Connector`], and closing a TCP stream without losing
//! its last bytes.

use alloc::format;
use alloc::string::String;
use alloc::string::ToString;
#[cfg(any(feature = "tokio", feature = "blocking"))]
use std::fmt;
#[cfg(all(feature = "rustls", any(feature = "tokio", feature = "blocking")))]
use std::io;
#[cfg(all(feature = "rustls", any(feature = "tokio", feature = "blocking")))]
use std::sync::OnceLock;
#[cfg(feature = "blocking")]
use std::time::Duration;

use super::Error;
use crate::handshake::ClientRequest;
#[cfg(any(feature = "tokio", feature = "blocking"))]
use crate::proxy::{Proxy, ProxyHandshake};

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

    /// The parsed `url`, where to open the TCP connection for it
    /// ("host:port"), and the exchange that opens a tunnel from there when
    /// it is a proxy.
    pub(crate) fn route(
        &self,
        url: &str,
    ) -> Result<(WsUrl, String, Option<ProxyHandshake>), Error> {
        let url = WsUrl::parse(url)?;
        let proxy = match &self.proxy {
            ProxyChoice::Direct => None,
            ProxyChoice::Through(proxy) => Some(proxy.clone()),
            ProxyChoice::FromEnvironment => {
                Proxy::from_env(url.secure, &url.host, |name| std::env::var(name).ok())
                    .transpose()
                    .map_err(Error::Proxy)?
            }
        };
        Ok(match proxy {
            Some(proxy) => {
                let tunnel = ProxyHandshake::new(&proxy, &url.host, url.port);
                (url, host_port(&proxy.host, proxy.port), Some(tunnel))
            }
            None => {
                let addr = url.socket_addr();
                (url, addr, None)
            }
        })
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
        host_port(&self.host, self.port)
    }

    /// A handshake request for this URL.
    pub fn request(&self) -> ClientRequest {
        ClientRequest::new(self.host_header(), self.path.clone())
    }
}

/// "host:port", an IPv6 address in brackets.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
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
