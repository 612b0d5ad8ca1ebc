//! The error of the std drivers, and what `recv` makes of an event.

use alloc::string::String;
use std::fmt;
use std::io;

use crate::handshake::HandshakeError;
use crate::proxy::ProxyError;
use crate::{ProtocolError, UsageError};

/// What can go wrong on a connection driven by a driver.
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
        super::policy::opening_timeout(e).map_or_else(Error::Handshake, Error::Timeout)
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

/// The peer's fault, or the core's closing deadline, as the error `recv`
/// reports at the end of a failed connection.
impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        super::policy::closing_timeout(e).map_or_else(Error::Protocol, Error::Timeout)
    }
}
