//! Close codes and the payload of a Close frame (RFC 6455 §5.5.1, §7.4).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A close status code (RFC 6455 §7.4).
///
/// This is an open newtype: any `u16` can be held, so codes from the IANA
/// registry or an application's private range (4000–4999) need no new
/// variant. The constants name the codes the RFC defines.
///
/// Three codes exist only to be *reported* and are never put on the wire:
/// [`CloseCode::NO_STATUS`] (1005), [`CloseCode::ABNORMAL`] (1006) and
/// [`CloseCode::TLS_HANDSHAKE`] (1015).
///
/// ```
/// use rfc6455::CloseCode;
///
/// assert!(CloseCode::SERVICE_RESTART.is_sendable());
/// assert!(CloseCode(4000).is_sendable()); // an application's own
/// assert!(!CloseCode::ABNORMAL.is_sendable()); // reported, never sent
/// assert_eq!(CloseCode::from(1001), CloseCode::GOING_AWAY);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept (binary to a text-only app).
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: reported when a Close frame carried no code. Never sent.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: reported when the connection ended without a Close frame. Never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a text message (or close reason) was not valid UTF-8.
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a frame or message was larger than the endpoint accepts.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: (client) the server did not negotiate an extension the client needs.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server met an unexpected condition (our own bug).
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: a gateway got an invalid response upstream (IANA registry).
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: reported when the TLS handshake failed. Never sent.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether this code may appear in a Close frame on the wire.
    ///
    /// §7.4.2: codes below 1000 are not used; 1004, 1005, 1006 and 1015 are
    /// reserved and "MUST NOT be set as a status code in a Close control
    /// frame by an endpoint". 1000–2999 belong to the protocol and the IANA
    /// registry (1000–1003 and 1007–1014 are assigned), 3000–4999 to
    /// libraries, frameworks and applications. Anything else is invalid, and
    /// receiving it is a protocol error (1002).
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The contents of a Close frame: a code and a UTF-8 reason.
///
/// A Close frame with an empty payload is represented with
/// [`CloseCode::NO_STATUS`] and an empty reason, as the RFC reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, at most 123 bytes of UTF-8 on the wire.
    pub reason: String,
}

impl CloseFrame {
    /// The largest reason that fits a control frame: 125 bytes less the code.
    pub const MAX_REASON: usize = 123;

    /// A Close frame with a code and a reason.
    pub fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        CloseFrame {
            code,
            reason: reason.into(),
        }
    }

    /// Writes the payload of this Close frame: the code, then the reason.
    /// `NO_STATUS` writes an empty payload.
    pub(crate) fn write_payload(&self, out: &mut Vec<u8>) {
        if self.code == CloseCode::NO_STATUS {
            return;
        }
        out.extend_from_slice(&self.code.0.to_be_bytes());
        out.extend_from_slice(self.reason.as_bytes());
    }
}
