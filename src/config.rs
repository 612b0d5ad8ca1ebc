//! Limits and options, each default stated on its field.

use crate::{Timeouts, UsageError};

/// Options for a connection and its handshake.
///
/// Build one from [`Config::default`] and change the fields you need:
///
/// ```
/// let mut config = rfc6455::Config::default();
/// config.max_message_size = Some(1 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The largest frame payload accepted; a larger declared length closes
    /// the connection with 1009 as soon as the header arrives, before any of
    /// the payload is buffered. `None` for no limit.
    ///
    /// This is also the memory a connection may set aside for one frame:
    /// once a frame's payload starts arriving in pieces, room for the whole
    /// frame (up to 16 MiB) is reserved at once instead of growing the
    /// receive buffer piece by piece.
    ///
    /// Default: 16 MiB.
    pub max_frame_size: Option<usize>,
    /// The largest message accepted, summed over its fragments; exceeding
    /// it closes with 1009. In [`streaming`](Config::streaming) mode the
    /// message is never buffered, so `None` (no limit) is reasonable there.
    ///
    /// Default: 64 MiB.
    pub max_message_size: Option<usize>,
    /// Answer every Ping with a Pong carrying the same payload (§5.5.2).
    /// Pings are reported as events either way.
    ///
    /// Default: `true`.
    pub auto_pong: bool,
    /// Deliver data messages in pieces ([`Event::Fragment`](crate::Event::Fragment))
    /// as their bytes arrive, instead of whole ([`Event::Message`](crate::Event::Message)).
    /// Text is still validated as it arrives.
    ///
    /// Default: `false`.
    pub streaming: bool,
    /// The most bytes an HTTP request or response head may take, up to and
    /// including the blank line. A server answers a larger one with 431.
    ///
    /// Default: 16 KiB.
    pub max_header_bytes: usize,
    /// The most header fields in a handshake head. A server answers more
    /// with 431.
    ///
    /// Default: 64.
    pub max_headers: usize,
    /// Negotiate permessage-deflate (RFC 7692) with these preferences: a
    /// client offers it, a server accepts a valid offer. `None` neither
    /// offers nor accepts it.
    ///
    /// Default: `None`.
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::DeflateConfig>,
    /// How long to wait for the peer: the opening handshake, the closing
    /// handshake, and the heartbeat. The timers run on the time the driver
    /// reports (`handle_timeout`).
    ///
    /// Default: [`Timeouts::default`].
    pub timeouts: Timeouts,
    /// A server expects a PROXY protocol header (v1 or v2) before the
    /// request, and refuses a connection without one with 400. Set it only
    /// behind a proxy that sends one on every connection (haproxy's
    /// `send-proxy` or `send-proxy-v2`); the accept callback reads it with
    /// [`Request::proxy_header`](crate::handshake::Request::proxy_header).
    /// See [`forwarded`](crate::forwarded).
    ///
    /// Default: `false`.
    #[cfg(feature = "forwarded")]
    pub proxy_protocol: bool,
    /// Where a client's masking keys (and its handshake nonce) come from.
    ///
    /// Default: `MaskKeys::Random` with the `std` feature;
    /// [`MaskKeys::Unset`] without it, where only a server can be made
    /// until the embedder supplies a key source.
    pub mask_keys: MaskKeys,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_size: Some(16 << 20),
            max_message_size: Some(64 << 20),
            auto_pong: true,
            streaming: false,
            max_header_bytes: 16 << 10,
            max_headers: 64,
            #[cfg(feature = "deflate")]
            deflate: None,
            timeouts: Timeouts::default(),
            #[cfg(feature = "forwarded")]
            proxy_protocol: false,
            #[cfg(feature = "std")]
            mask_keys: MaskKeys::Random,
            #[cfg(not(feature = "std"))]
            mask_keys: MaskKeys::Unset,
        }
    }
}

/// Where a client's masking keys come from (§5.3).
///
/// "The masking key is a 32-bit value chosen at random by the client ...
/// The unpredictability of the masking key is essential to prevent authors
/// of malicious applications from selecting the bytes that appear on the
/// wire." (§10.3) Anything but `MaskKeys::Random` is for tests, or for a
/// target that brings its own random source.
///
/// A client also draws its handshake nonce (`Sec-WebSocket-Key`, 16 bytes)
/// from here, four keys at a time.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum MaskKeys {
    /// A fresh key for every frame from `rand`'s thread-local generator
    /// (feature `std`).
    #[cfg(feature = "std")]
    Random,
    /// The same key for every frame: deterministic output for tests and
    /// examples. Never use it on a real connection.
    Fixed([u8; 4]),
    /// A fresh key for every frame from this function (a hardware random
    /// number generator, on a target without `rand`'s).
    With(fn() -> [u8; 4]),
    /// No key source: enough for a server, which never masks. A client
    /// cannot be made with it ([`UsageError::NoKeySource`]). The default
    /// without the `std` feature, where there is no `rand` to fall back on.
    Unset,
}

impl MaskKeys {
    /// The key for the next frame; `None` if there is no key source.
    #[inline]
    pub(crate) fn next_key(&self) -> Option<[u8; 4]> {
        match self {
            #[cfg(feature = "std")]
            MaskKeys::Random => Some(rand::random()),
            MaskKeys::Fixed(key) => Some(*key),
            MaskKeys::With(source) => Some(source()),
            MaskKeys::Unset => None,
        }
    }

    /// Whether there is a key source (anything but `Unset`).
    pub(crate) fn is_set(&self) -> bool {
        !matches!(self, MaskKeys::Unset)
    }

    /// A client's 16-byte handshake nonce: four keys from this source.
    pub(crate) fn nonce(&self) -> Result<[u8; 16], UsageError> {
        let mut nonce = [0; 16];
        for chunk in nonce.chunks_exact_mut(4) {
            chunk.copy_from_slice(&self.next_key().ok_or(UsageError::NoKeySource)?);
        }
        Ok(nonce)
    }
}

impl PartialEq for MaskKeys {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            #[cfg(feature = "std")]
            (MaskKeys::Random, MaskKeys::Random) => true,
            (MaskKeys::Unset, MaskKeys::Unset) => true,
            (MaskKeys::Fixed(a), MaskKeys::Fixed(b)) => a == b,
            (MaskKeys::With(a), MaskKeys::With(b)) => core::ptr::fn_addr_eq(*a, *b),
            _ => false,
        }
    }
}

impl Eq for MaskKeys {}
