//! permessage-deflate (RFC 7692): negotiation, and compression of whole
//! messages with bounded inflation (feature `deflate`).
//!
//! A message is compressed as one raw DEFLATE stream flushed with a sync
//! flush, minus the four bytes `00 00 ff ff` that end every sync flush
//! (§7.2.1); RSV1 marks the first frame of a compressed message. With
//! "context takeover", the window (the last 2^bits bytes seen) carries over
//! to the next message, which compresses repetitive traffic much better at
//! the price of keeping the compressor and decompressor state alive.
//!
//! # Memory
//!
//! With the default window (15 bits) and context takeover both ways, a
//! connection holds a compressor of about 256 KiB (zlib: a 2^(bits+2)
//! window plus a 128 KiB hash table at memLevel 8) and a decompressor of
//! about 40 KiB (a 2^bits window plus state). Without context takeover in
//! a direction, that side's state is created for each message and dropped
//! after it, so an idle connection holds none. Smaller window bits shrink
//! the windows proportionally.
//!
//! # Window bits of 8
//!
//! zlib cannot produce raw DEFLATE with a 256-byte window (it silently
//! uses 512). When the peer limits our compressor to 8 bits, we honour it
//! by not compressing at all: compression is per message and optional, so
//! every message then goes out uncompressed, which every peer accepts.
//! Our decompressor always uses a 32 KiB window, which inflates data made
//! with any smaller window.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::handshake::{Extension, HandshakeError};
use crate::Role;

/// The extension's registered name.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// Our permessage-deflate preferences, in [`Config::deflate`](crate::Config::deflate).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Ask that the server forget its window after each message (and, on a
    /// server, do so). Saves the server's compressor memory between
    /// messages at some cost in ratio. Default: `false`.
    pub server_no_context_takeover: bool,
    /// Ask that the client forget its window after each message (and, on a
    /// client, do so). Default: `false`.
    pub client_no_context_takeover: bool,
    /// The largest window the server may compress with, 8 to 15 bits.
    /// On a client, offered as `server_max_window_bits`; on a server, the
    /// largest window we will use. Default: `None` (15).
    pub server_max_window_bits: Option<u8>,
    /// The largest window the client may compress with, 8 to 15 bits.
    /// Default: `None` (15).
    pub client_max_window_bits: Option<u8>,
    /// The compression level, 0 (store) to 9 (best). Default: 1, the
    /// fastest level that still compresses well.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed: for a few bytes
    /// the DEFLATE framing costs more than it saves. Default: 32.
    pub threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
            level: 1,
            threshold: 32,
        }
    }
}

/// What the handshake agreed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The server compresses with at most this many window bits.
    pub server_max_window_bits: u8,
    /// The client compresses with at most this many window bits.
    pub client_max_window_bits: u8,
}

impl DeflateParams {
    /// The value of the server's `Sec-WebSocket-Extensions` answer, for an
    /// offer that did or did not carry each window-bits parameter.
    pub(crate) fn response_value(
        &self,
        offered_server_bits: bool,
        offered_client_bits: bool,
    ) -> String {
        let mut value = PERMESSAGE_DEFLATE.to_string();
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        // Accepting a limit the client asked for means repeating it
        // (§7.1.2.1); a tighter one of ours is stated either way.
        if offered_server_bits || self.server_max_window_bits < 15 {
            value.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        // "A server MUST NOT include the client_max_window_bits parameter if
        // the offer did not have it" (§7.1.2.2).
        if offered_client_bits && self.client_max_window_bits < 15 {
            value.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits
            ));
        }
        value
    }

    /// (our compressor's window, whether we reset after each message,
    /// whether the peer resets) for `role`.
    fn ours(&self, role: Role) -> (u8, bool, bool) {
        match role {
            Role::Server => (
                self.server_max_window_bits,
                self.server_no_context_takeover,
                self.client_no_context_takeover,
            ),
            Role::Client => (
                self.client_max_window_bits,
                self.client_no_context_takeover,
                self.server_no_context_takeover,
            ),
        }
    }
}

/// An offer's parameters, checked (§7.1). `None` if the offer is invalid,
/// in which case a server declines it (and a client fails).
#[derive(Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: the parameter without a value.
    client_max_window_bits: Option<Option<u8>>,
}

fn window_bits(value: &str) -> Option<u8> {
    // "a decimal integer value without leading zeros between 8 to 15,
    // inclusive" (§7.1.2.1)
    if value.starts_with('0') {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

fn parse_params(extension: &Extension) -> Option<Offer> {
    let mut offer = Offer::default();
    for (name, value) in &extension.params {
        let value = value.as_deref();
        match (name.as_str(), value) {
            ("server_no_context_takeover", None) if !offer.server_no_context_takeover => {
                offer.server_no_context_takeover = true
            }
            ("client_no_context_takeover", None) if !offer.client_no_context_takeover => {
                offer.client_no_context_takeover = true
            }
            ("server_max_window_bits", Some(v)) if offer.server_max_window_bits.is_none() => {
                offer.server_max_window_bits = Some(window_bits(v)?)
            }
            ("client_max_window_bits", v) if offer.client_max_window_bits.is_none() => {
                offer.client_max_window_bits = Some(match v {
                    Some(v) => Some(window_bits(v)?),
                    None => None,
                })
            }
            // An unknown parameter, a value where none belongs, or a
            // parameter given twice: the offer is invalid (§7.1).
            _ => return None,
        }
    }
    Some(offer)
}

/// The server's choice among the client's offers: the first valid
/// permessage-deflate offer, shaped by our config. Returns the agreed
/// parameters and the response field's value, or `None` to decline.
pub(crate) fn server_negotiate(
    offers: &[Extension],
    config: &DeflateConfig,
) -> Option<(DeflateParams, String)> {
    offers
        .iter()
        .filter(|e| e.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE))
        .find_map(|extension| {
            let offer = parse_params(extension)?;
            let ours = config.server_max_window_bits.unwrap_or(15);
            let params = DeflateParams {
                server_no_context_takeover: offer.server_no_context_takeover
                    || config.server_no_context_takeover,
                client_no_context_takeover: offer.client_no_context_takeover
                    || config.client_no_context_takeover,
                server_max_window_bits: offer.server_max_window_bits.unwrap_or(15).min(ours),
                // We may only limit the client's window if it said it can be limited.
                client_max_window_bits: match offer.client_max_window_bits {
                    Some(Some(bits)) => bits.min(config.client_max_window_bits.unwrap_or(15)),
                    Some(None) => config.client_max_window_bits.unwrap_or(15),
                    None => 15,
                },
            };
            let value = params.response_value(
                offer.server_max_window_bits.is_some(),
                offer.client_max_window_bits.is_some(),
            );
            Some((params, value))
        })
}

/// The client's offer, as the field value.
pub(crate) fn client_offer(config: &DeflateConfig) -> String {
    let mut value = PERMESSAGE_DEFLATE.to_string();
    if config.server_no_context_takeover {
        value.push_str("; server_no_context_takeover");
    }
    if config.client_no_context_takeover {
        value.push_str("; client_no_context_takeover");
    }
    if let Some(bits) = config.server_max_window_bits {
        value.push_str(&format!("; server_max_window_bits={bits}"));
    }
    // Without a value: we can honour any limit the server sets.
    match config.client_max_window_bits {
        Some(bits) => value.push_str(&format!("; client_max_window_bits={bits}")),
        None => value.push_str("; client_max_window_bits"),
    }
    value
}

/// Checks the server's answer to our offer (§7.1): at most one
/// permessage-deflate, nothing else, and only parameters our offer allows.
pub(crate) fn client_accept(
    answer: &[Extension],
    config: &DeflateConfig,
) -> Result<Option<DeflateParams>, HandshakeError> {
    let [extension] = answer else {
        return match answer.first() {
            None => Ok(None),
            Some(_) => Err(HandshakeError::UnexpectedExtension(
                answer
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        };
    };
    let refuse = || HandshakeError::UnexpectedExtension(extension.to_string());
    if !extension.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
        return Err(refuse());
    }
    let answer = parse_params(extension).ok_or_else(refuse)?;
    // The server may not widen a limit we asked for.
    let server_bits = answer.server_max_window_bits.unwrap_or(15);
    if config
        .server_max_window_bits
        .is_some_and(|asked| server_bits > asked)
        || (config.server_max_window_bits.is_some() && answer.server_max_window_bits.is_none())
    {
        return Err(refuse());
    }
    let client_bits = match answer.client_max_window_bits {
        // "the server ... MUST include a value" (§7.1.2.2) when it answers it.
        Some(None) => return Err(refuse()),
        Some(Some(bits)) => bits,
        None => config.client_max_window_bits.unwrap_or(15),
    };
    Ok(Some(DeflateParams {
        server_no_context_takeover: answer.server_no_context_takeover,
        client_no_context_takeover: answer.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits.min(config.client_max_window_bits.unwrap_or(15)),
    }))
}

/// How much output to make room for at a time while inflating.
const INFLATE_CHUNK: usize = 16 * 1024;

/// The trailer of a sync flush, stripped by the sender (§7.2.1) and put
/// back by the receiver (§7.2.2).
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Inflating failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// The data is not valid DEFLATE.
    Corrupt,
    /// The output passed the message size limit.
    TooBig,
}

/// The per-connection compression state.
#[derive(Debug)]
pub(crate) struct Deflate {
    params: DeflateParams,
    level: u32,
    threshold: usize,
    /// Our window bits; `None` when the peer limited us to 8 and we do not compress.
    compress_bits: Option<u8>,
    reset_ours: bool,
    reset_theirs: bool,
    compressor: Option<Compress>,
    decompressor: Option<Decompress>,
    /// The peer ended a stream with BFINAL; start afresh at the next message.
    stream_ended: bool,
}

impl Deflate {
    pub(crate) fn new(role: Role, params: DeflateParams, config: &DeflateConfig) -> Self {
        let (bits, reset_ours, reset_theirs) = params.ours(role);
        Deflate {
            params,
            level: config.level.min(9),
            threshold: config.threshold,
            compress_bits: (bits >= 9).then_some(bits),
            reset_ours,
            reset_theirs,
            compressor: None,
            decompressor: None,
            stream_ended: false,
        }
    }

    pub(crate) fn params(&self) -> DeflateParams {
        self.params
    }

    /// Whether a message of `len` bytes should go out compressed.
    pub(crate) fn should_compress(&self, len: usize) -> bool {
        self.compress_bits.is_some() && len >= self.threshold
    }

    /// Whether pieces of a streamed message can be compressed.
    pub(crate) fn can_compress(&self) -> bool {
        self.compress_bits.is_some()
    }

    /// Compresses `data` and appends it to `out`. With `last`, the message
    /// ends: the sync flush's trailer is removed and, without context
    /// takeover, the compressor forgotten.
    pub(crate) fn compress(&mut self, data: &[u8], last: bool, out: &mut Vec<u8>) {
        let bits = self.compress_bits.expect("should_compress was checked");
        let level = self.level;
        let compressor = self.compressor.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(level), false, bits)
        });
        let flush = if last {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        let start = out.len();
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(input.len() / 2 + 64);
            }
            let before = compressor.total_in();
            // Writing into a Vec's spare capacity cannot fail for raw deflate
            // with valid parameters; a failure would be a bug in the backend.
            compressor
                .compress_vec(input, out, flush)
                .expect("compressing into memory does not fail");
            let consumed = (compressor.total_in() - before) as usize;
            input = &input[consumed..];
            // Done when all input is in and the output did not fill up.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if last {
            if out[start..].ends_with(&TRAILER) {
                out.truncate(out.len() - TRAILER.len());
            } else if out.len() == start {
                // Nothing was pending, so the sync flush wrote nothing: send
                // the start of an empty stored block, which the trailer the
                // receiver appends completes (RFC 7692 §7.2.3.6).
                out.push(0x00);
            }
            if self.reset_ours {
                self.compressor = None;
            }
        }
    }

    /// Inflates `input` (part of a compressed message) onto `out`, never
    /// letting `out` grow past `limit` plus one chunk. With `last`, the
    /// message ends: the trailer is fed, and without context takeover
    /// the decompressor is forgotten.
    pub(crate) fn decompress(
        &mut self,
        input: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        limit: Option<usize>,
    ) -> Result<(), InflateError> {
        self.inflate(input, out, limit)?;
        if last {
            if !self.stream_ended {
                self.inflate(&TRAILER, out, limit)?;
            }
            if self.reset_theirs || self.stream_ended {
                self.decompressor = None;
                self.stream_ended = false;
            }
        }
        Ok(())
    }

    fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: Option<usize>,
    ) -> Result<(), InflateError> {
        let decompressor = self
            .decompressor
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, 15));
        loop {
            if self.stream_ended && !input.is_empty() {
                // Data after the end of a DEFLATE stream in one message.
                return Err(InflateError::Corrupt);
            }
            if out.capacity() - out.len() < 64 {
                // Grow geometrically (linear time overall), starting from a
                // guess of four times the input, but never past one byte
                // over the limit: that byte is how we notice.
                let want = if out.capacity() == 0 {
                    (input.len() * 4).clamp(256, INFLATE_CHUNK)
                } else {
                    out.len().max(256)
                };
                let room = limit.map_or(want, |limit| {
                    want.min((limit + 1).saturating_sub(out.len()))
                });
                out.reserve_exact(room.max(1));
            }
            let (before_in, before_out) = (decompressor.total_in(), decompressor.total_out());
            let status = decompressor
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Corrupt)?;
            let consumed = (decompressor.total_in() - before_in) as usize;
            let produced = (decompressor.total_out() - before_out) as usize;
            input = &input[consumed..];
            if limit.is_some_and(|limit| out.len() > limit) {
                return Err(InflateError::TooBig);
            }
            if status == Status::StreamEnd {
                self.stream_ended = true;
            }
            // A full output buffer may hide more output inside the inflater.
            let full = out.len() == out.capacity();
            if !full && input.is_empty() {
                break;
            }
            if !full && consumed == 0 && produced == 0 {
                // Input left, room to write, and no progress: not DEFLATE.
                return Err(InflateError::Corrupt);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::parse_extensions;

    fn offers(value: &str) -> Vec<Extension> {
        parse_extensions([value.as_bytes()]).unwrap()
    }

    #[test]
    fn server_takes_the_first_valid_offer() {
        let config = DeflateConfig::default();
        let (params, value) = server_negotiate(
            &offers("permessage-deflate; foo=1, permessage-deflate; client_max_window_bits"),
            &config,
        )
        .unwrap();
        assert_eq!(value, "permessage-deflate");
        assert_eq!(params.client_max_window_bits, 15);
        assert!(server_negotiate(&offers("x-webkit-deflate-frame"), &config).is_none());
        assert!(server_negotiate(
            &offers("permessage-deflate; server_max_window_bits=7"),
            &config
        )
        .is_none());
        assert!(server_negotiate(
            &offers("permessage-deflate; server_max_window_bits=010"),
            &config
        )
        .is_none());
    }

    #[test]
    fn limits_are_honoured_in_the_answer() {
        let config = DeflateConfig {
            client_max_window_bits: Some(10),
            ..Default::default()
        };
        let (params, value) = server_negotiate(
            &offers("permessage-deflate; server_max_window_bits=12; client_max_window_bits"),
            &config,
        )
        .unwrap();
        assert_eq!(
            value,
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10"
        );
        assert_eq!(
            (params.server_max_window_bits, params.client_max_window_bits),
            (12, 10)
        );
        let back = client_accept(&offers(&value), &DeflateConfig::default())
            .unwrap()
            .unwrap();
        assert_eq!(back, params);
    }

    #[test]
    fn client_refuses_what_it_did_not_allow() {
        let config = DeflateConfig::default();
        for answer in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; unknown",
            "permessage-deflate, permessage-deflate",
            "other-extension",
        ] {
            assert!(client_accept(&offers(answer), &config).is_err(), "{answer}");
        }
        let asked = DeflateConfig {
            server_max_window_bits: Some(10),
            ..Default::default()
        };
        assert!(client_accept(
            &offers("permessage-deflate; server_max_window_bits=12"),
            &asked
        )
        .is_err());
        assert!(client_accept(&offers("permessage-deflate"), &asked).is_err());
    }

    fn pair(takeover: bool) -> (Deflate, Deflate) {
        let params = DeflateParams {
            server_no_context_takeover: !takeover,
            client_no_context_takeover: !takeover,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let config = DeflateConfig {
            threshold: 0,
            ..Default::default()
        };
        (
            Deflate::new(Role::Client, params, &config),
            Deflate::new(Role::Server, params, &config),
        )
    }

    #[test]
    fn round_trip_with_and_without_context_takeover() {
        for takeover in [true, false] {
            let (mut client, mut server) = pair(takeover);
            for message in [&b"Hello"[..], b"", b"Hello", &[7u8; 100_000]] {
                let mut wire = Vec::new();
                client.compress(message, true, &mut wire);
                let mut out = Vec::new();
                server.decompress(&wire, true, &mut out, None).unwrap();
                assert_eq!(out, message);
            }
        }
    }

    #[test]
    fn empty_message_is_one_zero_byte() {
        // RFC 7692 §7.2.3.6: an empty message compresses to a single 0x00.
        let (mut client, _) = pair(true);
        let mut wire = Vec::new();
        client.compress(b"", true, &mut wire);
        assert_eq!(wire, [0x00]);
    }

    #[test]
    fn rfc_example_hello() {
        // §7.2.3.1: "Hello" compressed is c2 ... the payload f2 48 cd c9 c9 07 00.
        let (_, mut server) = pair(true);
        let mut out = Vec::new();
        server
            .decompress(
                &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
                true,
                &mut out,
                None,
            )
            .unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn inflation_stops_at_the_limit() {
        let (mut client, mut server) = pair(true);
        let mut wire = Vec::new();
        client.compress(&vec![0u8; 10 << 20], true, &mut wire);
        assert!(
            wire.len() < 200 << 10,
            "10 MiB of zeros compress to {} bytes",
            wire.len()
        );
        let mut out = Vec::new();
        assert_eq!(
            server.decompress(&wire, true, &mut out, Some(1 << 20)),
            Err(InflateError::TooBig)
        );
        assert!(
            out.capacity() <= (1 << 20) + INFLATE_CHUNK + 1,
            "capacity {}",
            out.capacity()
        );
    }

    #[test]
    fn garbage_is_corrupt() {
        let (_, mut server) = pair(true);
        let mut out = Vec::new();
        assert_eq!(
            server.decompress(&[0xff; 16], true, &mut out, None),
            Err(InflateError::Corrupt)
        );
    }
}
