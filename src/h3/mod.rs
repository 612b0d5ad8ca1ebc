//! The part of HTTP/3 (RFC 9114) a WebSocket needs, sans-IO: frames,
//! SETTINGS, and QPACK field sections without a dynamic table. The
//! `http3` driver moves these bytes over QUIC streams (quinn); the
//! handshake's decisions are the core's, as over HTTP/2
//! ([`ExtendedConnectRequest`](crate::handshake::ExtendedConnectRequest)).
//!
//! Why not an HTTP/3 crate: the released `h3` (0.0.8) refuses a
//! `:protocol` other than `webtransport` and `connect-udp`, so it cannot
//! carry RFC 9220's `websocket`. What a WebSocket needs of HTTP/3 is
//! small: one HEADERS frame each way, then DATA frames, and a control
//! stream with SETTINGS.

// Without the driver, only the fuzz targets and benchmarks (`internals`)
// use this, and not all of it.
#![cfg_attr(not(feature = "http3"), allow(dead_code))]

pub(crate) mod huffman;
pub(crate) mod qpack;

use alloc::vec::Vec;

/// Frame types (RFC 9114 §7.2, and §11.2.1 for the reserved ones).
pub(crate) mod frame {
    /// DATA: the WebSocket's bytes.
    pub(crate) const DATA: u64 = 0x00;
    /// HEADERS: a field section.
    pub(crate) const HEADERS: u64 = 0x01;
    /// CANCEL_PUSH.
    pub(crate) const CANCEL_PUSH: u64 = 0x03;
    /// SETTINGS, first on the control stream.
    pub(crate) const SETTINGS: u64 = 0x04;
    /// PUSH_PROMISE, which only a server sends, and never unasked.
    pub(crate) const PUSH_PROMISE: u64 = 0x05;
    /// GOAWAY.
    pub(crate) const GOAWAY: u64 = 0x07;
    /// MAX_PUSH_ID, which only a client sends.
    pub(crate) const MAX_PUSH_ID: u64 = 0x0d;

    /// A type RFC 9114 defines, or one of HTTP/2's that it reserves
    /// (receiving those is `H3_FRAME_UNEXPECTED`, §7.2.8): every other
    /// type is skipped as unknown (§9).
    pub(crate) fn is_known(ty: u64) -> bool {
        matches!(
            ty,
            DATA | HEADERS | CANCEL_PUSH | SETTINGS | PUSH_PROMISE | GOAWAY | MAX_PUSH_ID
        ) || matches!(ty, 0x02 | 0x06 | 0x08 | 0x09)
    }
}

/// Unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2).
pub(crate) mod stream {
    /// The control stream.
    pub(crate) const CONTROL: u64 = 0x00;
    /// A push stream.
    pub(crate) const PUSH: u64 = 0x01;
    /// QPACK's encoder stream.
    pub(crate) const QPACK_ENCODER: u64 = 0x02;
    /// QPACK's decoder stream.
    pub(crate) const QPACK_DECODER: u64 = 0x03;
}

/// Error codes (RFC 9114 §8.1, RFC 9204 §6).
pub(crate) mod code {
    /// No error: a graceful end.
    pub(crate) const NO_ERROR: u64 = 0x100;
    /// A protocol error no other code fits.
    pub(crate) const GENERAL_PROTOCOL_ERROR: u64 = 0x101;
    /// A stream of a type the peer may not open.
    pub(crate) const STREAM_CREATION_ERROR: u64 = 0x103;
    /// The control stream (or a QPACK stream) ended.
    pub(crate) const CLOSED_CRITICAL_STREAM: u64 = 0x104;
    /// A frame not allowed where it came.
    pub(crate) const FRAME_UNEXPECTED: u64 = 0x105;
    /// A frame that does not parse.
    pub(crate) const FRAME_ERROR: u64 = 0x106;
    /// A push ID we never allowed.
    pub(crate) const ID_ERROR: u64 = 0x108;
    /// SETTINGS that are wrong.
    pub(crate) const SETTINGS_ERROR: u64 = 0x109;
    /// The control stream did not start with SETTINGS.
    pub(crate) const MISSING_SETTINGS: u64 = 0x10a;
    /// The request was not processed.
    pub(crate) const REQUEST_REJECTED: u64 = 0x10b;
    /// The request (the WebSocket) is cancelled: RFC 9220's abrupt end.
    pub(crate) const REQUEST_CANCELLED: u64 = 0x10c;
    /// The stream ended before the request was complete.
    pub(crate) const REQUEST_INCOMPLETE: u64 = 0x10d;
    /// A malformed request or response.
    pub(crate) const MESSAGE_ERROR: u64 = 0x10e;
    /// A field section that does not decode.
    pub(crate) const QPACK_DECOMPRESSION_FAILED: u64 = 0x200;
}

/// Settings identifiers (RFC 9114 §7.2.4.1, RFC 8441 §3 as RFC 9220 §3
/// registers it for HTTP/3). QPACK's two (RFC 9204 §5) we leave at their
/// defaults, no dynamic table, and so never send.
pub(crate) mod setting {
    /// The largest field section a peer will take.
    pub(crate) const MAX_FIELD_SECTION_SIZE: u64 = 0x06;
    /// The extended CONNECT is welcome (`:protocol`).
    pub(crate) const ENABLE_CONNECT_PROTOCOL: u64 = 0x08;
}

/// A QUIC variable-length integer (RFC 9000 §16): the largest.
pub const VARINT_MAX: u64 = (1 << 62) - 1;

/// Appends `v` (at most `VARINT_MAX`, 2^62 - 1) as a variable-length integer.
pub fn put_varint(out: &mut Vec<u8>, v: u64) {
    debug_assert!(v <= VARINT_MAX);
    if v < 1 << 6 {
        out.push(v as u8);
    } else if v < 1 << 14 {
        out.extend_from_slice(&(0x4000 | v as u16).to_be_bytes());
    } else if v < 1 << 30 {
        out.extend_from_slice(&(0x8000_0000 | v as u32).to_be_bytes());
    } else {
        out.extend_from_slice(&(0xc000_0000_0000_0000 | v).to_be_bytes());
    }
}

/// A variable-length integer at the start of `buf` and its length, or
/// `None` if `buf` holds only part of it.
pub fn get_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let len = 1usize << (first >> 6);
    let bytes = buf.get(..len)?;
    let mut v = u64::from(first & 0x3f);
    for &b in &bytes[1..] {
        v = (v << 8) | u64::from(b);
    }
    Some((v, len))
}

/// A frame's header: its type, its payload's length, and the header's
/// own length; `None` while `buf` holds only part of it.
pub fn frame_header(buf: &[u8]) -> Option<(u64, u64, usize)> {
    let (ty, a) = get_varint(buf)?;
    let (len, b) = get_varint(&buf[a..])?;
    Some((ty, len, a + b))
}

/// Reads a stream's frames as its bytes arrive, passing over frames of
/// unknown types ("Implementations MUST ignore unknown or unsupported
/// values in all extensible protocol elements", RFC 9114 §9), which may
/// arrive in pieces. The one frame reader of the request and control
/// streams: each decides what a known frame means where it is.
#[derive(Debug, Default)]
pub(crate) struct Frames {
    /// Bytes of an unknown frame still to pass over.
    skip: u64,
}

impl Frames {
    /// The next known frame's type, payload length and header length: its
    /// header is at the front of `buf`, left there, so the caller can look
    /// at the length before taking anything (an oversized HEADERS is
    /// refused unread). Unknown frames before it are taken off `buf`.
    /// `None`: more bytes are needed.
    pub(crate) fn peek(&mut self, buf: &mut bytes::BytesMut) -> Option<(u64, u64, usize)> {
        use bytes::Buf;
        loop {
            if self.skip > 0 {
                let n = usize::try_from(self.skip).map_or(buf.len(), |s| s.min(buf.len()));
                buf.advance(n);
                self.skip -= n as u64;
                if self.skip > 0 {
                    return None;
                }
            }
            let (ty, len, at) = frame_header(buf)?;
            if frame::is_known(ty) {
                return Some((ty, len, at));
            }
            buf.advance(at);
            self.skip = len;
        }
    }

    /// Whether an unknown frame is being passed over (so a stream that
    /// ends now ends inside a frame).
    pub(crate) fn skipping(&self) -> bool {
        self.skip > 0
    }
}

/// Appends a frame's header.
pub(crate) fn put_frame_header(out: &mut Vec<u8>, ty: u64, len: u64) {
    put_varint(out, ty);
    put_varint(out, len);
}

/// The settings we care about, of either side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL = 1`.
    pub(crate) enable_connect_protocol: bool,
    /// `SETTINGS_MAX_FIELD_SECTION_SIZE`, if given.
    pub(crate) max_field_section_size: Option<u64>,
}

impl Settings {
    /// The SETTINGS frame, whole. QPACK's dynamic table is left at its
    /// default, none.
    pub fn frame(&self) -> Vec<u8> {
        let mut payload = Vec::new();
        if self.enable_connect_protocol {
            put_varint(&mut payload, setting::ENABLE_CONNECT_PROTOCOL);
            put_varint(&mut payload, 1);
        }
        if let Some(size) = self.max_field_section_size {
            put_varint(&mut payload, setting::MAX_FIELD_SECTION_SIZE);
            put_varint(&mut payload, size.min(VARINT_MAX));
        }
        let mut frame = Vec::new();
        put_frame_header(&mut frame, frame::SETTINGS, payload.len() as u64);
        frame.extend_from_slice(&payload);
        frame
    }

    /// A SETTINGS frame's payload, or the error code that refuses it:
    /// HTTP/2's settings (§7.2.4.1), a repeated identifier, a value of
    /// ENABLE_CONNECT_PROTOCOL other than 0 or 1 (RFC 8441 §3).
    /// Unknown identifiers are ignored (§7.2.4), as they must be.
    pub fn parse(mut payload: &[u8]) -> Result<Settings, u64> {
        let mut settings = Settings::default();
        let mut seen = Vec::new();
        while !payload.is_empty() {
            let (id, a) = get_varint(payload).ok_or(code::FRAME_ERROR)?;
            let (value, b) = get_varint(&payload[a..]).ok_or(code::FRAME_ERROR)?;
            payload = &payload[a + b..];
            if seen.contains(&id) || matches!(id, 0x02..=0x05) {
                return Err(code::SETTINGS_ERROR);
            }
            seen.push(id);
            match id {
                setting::ENABLE_CONNECT_PROTOCOL => {
                    settings.enable_connect_protocol = match value {
                        0 => false,
                        1 => true,
                        _ => return Err(code::SETTINGS_ERROR),
                    }
                }
                setting::MAX_FIELD_SECTION_SIZE => settings.max_field_section_size = Some(value),
                _ => {}
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn varints_round_trip_at_every_length() {
        for v in [0, 63, 64, 16383, 16384, (1 << 30) - 1, 1 << 30, VARINT_MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(get_varint(&out), Some((v, out.len())));
            // Any prefix of it is "not yet".
            for cut in 0..out.len() {
                assert_eq!(get_varint(&out[..cut]), None);
            }
        }
        // RFC 9000 A.1's examples.
        assert_eq!(get_varint(&[0x25]), Some((37, 1)));
        assert_eq!(get_varint(&[0x7b, 0xbd]), Some((15293, 2)));
        assert_eq!(
            get_varint(&[0x9d, 0x7f, 0x3e, 0x7d]),
            Some((494_878_333, 4))
        );
    }

    /// However a stream's bytes are cut, the reader finds the same known
    /// frames and passes over the unknown ones (including a reserved type,
    /// 0x21, and one larger than any piece).
    #[test]
    fn frames_are_found_however_the_bytes_arrive() {
        let mut stream = Vec::new();
        let mut frame = |ty: u64, payload: &[u8]| {
            put_frame_header(&mut stream, ty, payload.len() as u64);
            stream.extend_from_slice(payload);
        };
        frame(0x21, b"reserved");
        frame(frame::HEADERS, b"fields");
        frame(0x1234, &[9u8; 300]);
        frame(frame::DATA, b"bytes");
        frame(0x21, b"");
        frame(frame::DATA, b"");
        let expected = [
            (frame::HEADERS, b"fields".to_vec()),
            (frame::DATA, b"bytes".to_vec()),
            (frame::DATA, Vec::new()),
        ];
        for piece in [1, 2, 3, 7, 64, stream.len()] {
            let (mut frames, mut buf, mut found) = (Frames::default(), BytesMut::new(), Vec::new());
            for chunk in stream.chunks(piece) {
                buf.extend_from_slice(chunk);
                while let Some((ty, len, at)) = frames.peek(&mut buf) {
                    if buf.len() < at + len as usize {
                        break;
                    }
                    bytes::Buf::advance(&mut buf, at);
                    found.push((ty, buf.split_to(len as usize).to_vec()));
                }
            }
            assert_eq!(found, expected, "pieces of {piece}");
            assert!(buf.is_empty() && !frames.skipping(), "pieces of {piece}");
        }
    }

    #[test]
    fn settings_round_trip_and_bad_ones_are_refused() {
        let ours = Settings {
            enable_connect_protocol: true,
            max_field_section_size: Some(16 << 10),
        };
        let frame = ours.frame();
        let (ty, len, at) = frame_header(&frame).unwrap();
        assert_eq!((ty, len as usize), (frame::SETTINGS, frame.len() - at));
        assert_eq!(Settings::parse(&frame[at..]), Ok(ours));

        let payload = |pairs: &[(u64, u64)]| {
            let mut p = Vec::new();
            for &(id, v) in pairs {
                put_varint(&mut p, id);
                put_varint(&mut p, v);
            }
            p
        };
        // Unknown (and reserved, 0x1f * N + 0x21) identifiers are ignored.
        assert!(Settings::parse(&payload(&[(0x21, 7), (0x1234, 1)])).is_ok());
        for bad in [
            payload(&[(0x02, 0)]),
            payload(&[(0x08, 1), (0x08, 1)]),
            payload(&[(0x08, 2)]),
        ] {
            assert_eq!(Settings::parse(&bad), Err(code::SETTINGS_ERROR));
        }
        assert_eq!(Settings::parse(&[0x08]), Err(code::FRAME_ERROR));
    }
}
