//! The permessage-deflate codec (RFC 7692 §7.2): compression of whole
//! messages, and inflation bounded by the message limit (feature
//! `deflate`). The handshake negotiates it (`handshake::deflate`); the
//! connection runs it through the [`MessageExtension`] seam.
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

use alloc::vec::Vec;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use core::any::Any;

use super::{DecodeError, MessageExtension, RSV1};
use crate::Role;

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

/// How much output to make room for at a time while inflating.
const INFLATE_CHUNK: usize = 16 * 1024;

/// The trailer of a sync flush, stripped by the sender (§7.2.1) and put
/// back by the receiver (§7.2.2).
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The per-connection permessage-deflate state: a compressor for what we
/// send, an inflater for what we receive.
#[derive(Debug)]
pub(crate) struct Deflate {
    params: DeflateParams,
    threshold: usize,
    compressor: Compressor,
    inflater: Inflater,
}

impl Deflate {
    pub(crate) fn new(role: Role, params: DeflateParams, config: &DeflateConfig) -> Self {
        let (bits, reset_ours, reset_theirs) = params.ours(role);
        Deflate {
            params,
            threshold: config.threshold,
            compressor: Compressor {
                level: config.level.min(9),
                bits: (bits >= 9).then_some(bits),
                reset: reset_ours,
                stream: None,
            },
            inflater: Inflater {
                reset: reset_theirs,
                stream: None,
                ended: false,
            },
        }
    }

    pub(crate) fn params(&self) -> DeflateParams {
        self.params
    }

    /// Whether a message of `len` bytes should go out compressed.
    pub(crate) fn should_compress(&self, len: usize) -> bool {
        self.compressor.bits.is_some() && len >= self.threshold
    }
}

/// Our side: what we send.
#[derive(Debug)]
struct Compressor {
    level: u32,
    /// Our window bits; `None` when the peer limited us to 8 and we do not compress.
    bits: Option<u8>,
    /// No context takeover: forget the window after each message.
    reset: bool,
    stream: Option<Compress>,
}

impl Compressor {
    /// Compresses `data` and appends it to `out`. With `last`, the message
    /// ends: the sync flush's trailer is removed and, without context
    /// takeover, the compressor forgotten.
    fn compress(&mut self, data: &[u8], last: bool, out: &mut Vec<u8>) {
        let bits = self.bits.expect("should_compress was checked");
        let level = self.level;
        let compressor = self.stream.get_or_insert_with(|| {
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
            if self.reset {
                self.stream = None;
            }
        }
    }
}

/// The peer's side: what we receive.
#[derive(Debug)]
struct Inflater {
    /// The peer forgets its window after each message: so do we.
    reset: bool,
    stream: Option<Decompress>,
    /// The peer ended a stream with BFINAL; start afresh at the next message.
    ended: bool,
}

impl Inflater {
    /// Inflates `input` (part of a compressed message) onto `out`, never
    /// letting `out` grow past `limit` plus one chunk. With `last`, the
    /// message ends: the trailer is fed, and without context takeover
    /// the decompressor is forgotten.
    fn decompress(
        &mut self,
        input: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        limit: Option<usize>,
    ) -> Result<(), DecodeError> {
        self.inflate(input, out, limit)?;
        if last {
            if !self.ended {
                self.inflate(&TRAILER, out, limit)?;
            }
            if self.reset || self.ended {
                self.stream = None;
                self.ended = false;
            }
        }
        Ok(())
    }

    fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: Option<usize>,
    ) -> Result<(), DecodeError> {
        let decompressor = self
            .stream
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, 15));
        loop {
            if self.ended && !input.is_empty() {
                // Data after the end of a DEFLATE stream in one message.
                return Err(DecodeError::Invalid);
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
            let result = decompressor.decompress_vec(input, out, FlushDecompress::Sync);
            // Output past the limit came from data before any corruption
            // the inflater then ran into: the limit is the first fault, as
            // it is when the same data arrives in smaller pieces.
            if limit.is_some_and(|limit| out.len() > limit) {
                return Err(DecodeError::TooBig);
            }
            let status = result.map_err(|_| DecodeError::Invalid)?;
            let consumed = (decompressor.total_in() - before_in) as usize;
            let produced = (decompressor.total_out() - before_out) as usize;
            input = &input[consumed..];
            if status == Status::StreamEnd {
                self.ended = true;
            }
            // A full output buffer may hide more output inside the inflater.
            let full = out.len() == out.capacity();
            if !full && input.is_empty() {
                break;
            }
            if !full && consumed == 0 && produced == 0 {
                // Input left, room to write, and no progress: not DEFLATE.
                return Err(DecodeError::Invalid);
            }
        }
        Ok(())
    }
}

impl MessageExtension for Deflate {
    fn rsv(&self) -> u8 {
        RSV1
    }

    fn encodes(&self, len: usize) -> bool {
        self.should_compress(len)
    }

    fn encodes_stream(&self) -> bool {
        self.compressor.bits.is_some()
    }

    fn encode(&mut self, data: &[u8], last: bool, out: &mut Vec<u8>) {
        self.compressor.compress(data, last, out);
    }

    /// Without context takeover on our side, a message's compressed bytes
    /// depend only on the window bits and the level.
    fn shared_encoding(&self) -> Option<u64> {
        let bits = self.compressor.bits.filter(|_| self.compressor.reset)?;
        Some(u64::from(bits) << 8 | u64::from(self.compressor.level))
    }

    fn decode(
        &mut self,
        data: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        limit: Option<usize>,
    ) -> Result<(), DecodeError> {
        self.inflater.decompress(data, last, out, limit)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
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
                client.encode(message, true, &mut wire);
                let mut out = Vec::new();
                server.decode(&wire, true, &mut out, None).unwrap();
                assert_eq!(out, message);
            }
        }
    }

    #[test]
    fn empty_message_is_one_zero_byte() {
        // RFC 7692 §7.2.3.6: an empty message compresses to a single 0x00.
        let (mut client, _) = pair(true);
        let mut wire = Vec::new();
        client.encode(b"", true, &mut wire);
        assert_eq!(wire, [0x00]);
    }

    #[test]
    fn rfc_example_hello() {
        // §7.2.3.1: "Hello" compressed is c2 ... the payload f2 48 cd c9 c9 07 00.
        let (_, mut server) = pair(true);
        let mut out = Vec::new();
        server
            .decode(
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
        client.encode(&vec![0u8; 10 << 20], true, &mut wire);
        assert!(
            wire.len() < 200 << 10,
            "10 MiB of zeros compress to {} bytes",
            wire.len()
        );
        let mut out = Vec::new();
        assert_eq!(
            server.decode(&wire, true, &mut out, Some(1 << 20)),
            Err(DecodeError::TooBig)
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
            server.decode(&[0xff; 16], true, &mut out, None),
            Err(DecodeError::Invalid)
        );
    }
}
