//! Limits and options, each default stated on its field.

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
        }
    }
}
