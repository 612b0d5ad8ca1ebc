//! The seam between the connection and a per-message extension.
//!
//! An extension negotiated in the handshake (RFC 6455 §9) may give meaning
//! to the RSV bits and transform the payload of the messages it marks.
//! The connection knows an extension only through [`MessageExtension`]:
//! which RSV bits it claims, and a transform of each message on the way
//! out and back on the way in. It never knows which extension it holds.
//!
//! Negotiation (the offer, the answer, the parameters) lives with the
//! handshake; the codecs live here, one file each. permessage-deflate
//! (RFC 7692, feature `deflate`) is the one extension so far.

// Without an extension feature, the seam has nothing plugged in.
#![cfg_attr(not(feature = "deflate"), allow(dead_code))]

#[cfg(feature = "deflate")]
pub(crate) mod deflate;

use alloc::vec::Vec;
use core::any::Any;
use core::fmt::Debug;

/// RSV1: "Per-Message Compressed" under permessage-deflate (RFC 7692 §6).
#[cfg(feature = "deflate")]
pub(crate) const RSV1: u8 = 0b100;

/// Why an extension could not decode a received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The payload is not what the extension produces (not DEFLATE data).
    Invalid,
    /// The decoded message passed the size limit.
    TooBig,
}

/// A per-message extension, as the connection sees it.
///
/// Only the first frame of a message carries the RSV bits; the transform
/// applies to the whole message, across its frames and any control frames
/// in between.
pub(crate) trait MessageExtension: Debug + Send + Sync {
    /// The RSV bits the extension gives meaning to (`0b100` is RSV1).
    fn rsv(&self) -> u8;

    /// Whether an outgoing message of `len` bytes is to be transformed.
    fn encodes(&self, len: usize) -> bool;

    /// Whether an outgoing message sent in pieces, whose length is not
    /// known in advance, is to be transformed.
    fn encodes_stream(&self) -> bool;

    /// Transforms the next piece of an outgoing message onto `out`;
    /// `last` ends the message.
    fn encode(&mut self, data: &[u8], last: bool, out: &mut Vec<u8>);

    /// For a transform that does not depend on earlier messages (no state
    /// carried from one message to the next): a key such that extensions
    /// with equal keys turn a message into the same bytes, so that one
    /// encoding can be shared by many connections. `None` when each
    /// connection's output depends on its own history.
    fn shared_encoding(&self) -> Option<u64> {
        None
    }

    /// Reverses the transform on the next piece of a received message,
    /// appending to `out`, which may not grow past `limit` (plus the
    /// extension's own slack); `last` ends the message.
    fn decode(
        &mut self,
        data: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        limit: Option<usize>,
    ) -> Result<(), DecodeError>;

    /// The extension itself, for the getters of its own module.
    fn as_any(&self) -> &dyn Any;
}
