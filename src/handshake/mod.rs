//! The opening handshake (RFC 6455 §4): an HTTP/1.1 Upgrade exchange, or
//! over HTTP/2 an extended CONNECT (RFC 8441, [`ExtendedConnectRequest`]).
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
//! [`ExtendedConnectRequest`] and [`ExtendedConnectClient`] take and give the fields an
//! HTTP/2 library moves, and make the same decisions (version 13,
//! subprotocols, permessage-deflate).

mod client;
#[cfg(feature = "deflate")]
mod deflate;
mod error;
mod extended_connect;
mod extensions;
mod head;
mod server;

use alloc::string::String;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

pub use client::{ClientHandshake, ClientRequest, Connected, Response};
pub use error::HandshakeError;
pub use extended_connect::{
    ExtendedConnectAccepted, ExtendedConnectClient, ExtendedConnectRequest,
    ExtendedConnectResponse, PseudoHeaders,
};
pub use extensions::{parse_extensions, Extension, MalformedExtensions};
pub use server::{Accept, Accepted, Request, ServerHandshake};
// For the `http` feature's refusals, which go out as `http::Response`s.
#[cfg(feature = "http")]
pub(crate) use error::refusal_status;

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
