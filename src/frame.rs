//! The frame header (RFC 6455 §5.2): decoding from partial input, and encoding.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! ```
//!
//! This module knows the wire layout only. Which frames are allowed where
//! (masking per role, RSV bits per extension, fragmentation) is the
//! connection's business.

use crate::ProtocolError;

/// The largest header: 2 bytes, 8 of extended length, 4 of masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// A frame opcode (§5.2). The reserved values are not representable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: begins or answers the closing handshake.
    Close,
    /// 0x9: asks the peer for a Pong.
    Ping,
    /// 0xA: answers a Ping, or is an unsolicited heartbeat.
    Pong,
}

impl OpCode {
    /// The 4-bit value on the wire.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// The opcode for a 4-bit value; `None` for the reserved ones.
    pub fn from_u8(value: u8) -> Option<OpCode> {
        Some(match value {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// Close, Ping and Pong: opcodes with the most significant bit set (§5.5).
    pub fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The final fragment of a message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the low three bits (RSV1 is `0b100`).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub len: u64,
}

impl Header {
    /// A header for an unmasked frame with no RSV bits.
    pub fn new(fin: bool, opcode: OpCode, len: u64) -> Header {
        Header {
            fin,
            rsv: 0,
            opcode,
            mask: None,
            len,
        }
    }

    /// The header's two bytes, if it has no more: no mask and a length
    /// under 126 (a server's small frame). The same bytes as
    /// [`Header::encode`], made in a register.
    #[inline]
    pub fn short(&self) -> Option<[u8; 2]> {
        (self.mask.is_none() && self.len <= 125).then(|| [self.first_byte(), self.len as u8])
    }

    /// FIN, the RSV bits and the opcode.
    #[inline]
    fn first_byte(&self) -> u8 {
        (u8::from(self.fin) << 7) | ((self.rsv & 0b111) << 4) | self.opcode.as_u8()
    }

    /// The number of bytes [`Header::encode`] writes for this header.
    pub fn encoded_len(&self) -> usize {
        let ext = match self.len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Writes the header into `out` and returns how many bytes it took.
    ///
    /// The length is written in the fewest bytes, as §5.2 requires: "the
    /// minimal number of bytes MUST be used to encode the length".
    ///
    /// # Panics
    /// If `len` has its most significant bit set, which no payload that fits
    /// in memory can have.
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        assert!(self.len >> 63 == 0, "payload length exceeds 2^63 - 1");
        out[0] = self.first_byte();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut n = match self.len {
            0..=125 => {
                out[1] = mask_bit | self.len as u8;
                2
            }
            126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(self.len as u16).to_be_bytes());
                4
            }
            _ => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&self.len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[n..n + 4].copy_from_slice(&key);
            n += 4;
        }
        n
    }

    /// Decodes a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` while `buf` holds only part of a header: that is
    /// not an error, the caller waits for more bytes. `Ok(Some((header,
    /// n)))` says the header took the first `n` bytes.
    ///
    /// Errors are the faults visible in the header alone: a reserved opcode
    /// and a 64-bit length with its top bit set.
    pub fn decode(buf: &[u8]) -> Result<Option<(Header, usize)>, ProtocolError> {
        Header::decode_inline(buf)
    }

    /// [`Header::decode`] in its caller's body, for the in-place fast
    /// path: returned from a call, the header went through memory and was
    /// read back at other widths than it was written, which stalls (3 %
    /// of an echo server's time).
    #[cfg_attr(feature = "std", inline(always))]
    pub(crate) fn decode_inline(buf: &[u8]) -> Result<Option<(Header, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(ProtocolError::ReservedOpcode(b0 & 0x0F))?;
        let masked = b1 & 0x80 != 0;
        let (len, mut n) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(ext) => (u64::from(u16::from_be_bytes([ext[0], ext[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(ext) => {
                    let mut be = [0; 8];
                    be.copy_from_slice(ext);
                    let len = u64::from_be_bytes(be);
                    // "the most significant bit MUST be 0" (§5.2)
                    if len >> 63 != 0 {
                        return Err(ProtocolError::LengthTopBit);
                    }
                    (len, 10)
                }
                None => return Ok(None),
            },
            short => (u64::from(short), 2),
        };
        let mask = if masked {
            match buf.get(n..n + 4) {
                Some(key) => {
                    n += 4;
                    let mut mask = [0; 4];
                    mask.copy_from_slice(key);
                    Some(mask)
                }
                None => return Ok(None),
            }
        } else {
            None
        };
        let header = Header {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0b111,
            opcode,
            mask,
            len,
        };
        Ok(Some((header, n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_header_is_the_encoded_header() {
        let opcodes = [
            OpCode::Continuation,
            OpCode::Text,
            OpCode::Binary,
            OpCode::Close,
        ];
        for (opcode, fin, rsv) in opcodes.into_iter().flat_map(|op| {
            [false, true]
                .into_iter()
                .flat_map(move |fin| (0..8).map(move |rsv| (op, fin, rsv)))
        }) {
            for len in [0, 1, 125, 126, 65_535, 65_536] {
                for mask in [None, Some([1, 2, 3, 4])] {
                    let header = Header {
                        fin,
                        rsv,
                        opcode,
                        mask,
                        len,
                    };
                    let mut buf = [0; MAX_HEADER_LEN];
                    let n = header.encode(&mut buf);
                    match header.short() {
                        Some(two) => assert_eq!(&buf[..n], &two, "{header:?}"),
                        None => assert!(n > 2, "{header:?} is short"),
                    }
                }
            }
        }
    }

    #[test]
    fn every_prefix_of_a_header_is_partial() {
        let header = Header {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: Some([1, 2, 3, 4]),
            len: 70_000,
        };
        let mut buf = [0; MAX_HEADER_LEN];
        let n = header.encode(&mut buf);
        assert_eq!(n, 14);
        for cut in 0..n {
            assert_eq!(Header::decode(&buf[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(Header::decode(&buf[..n]), Ok(Some((header, n))));
    }

    #[test]
    fn lengths_use_the_fewest_bytes() {
        for (len, expected) in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let header = Header::new(true, OpCode::Text, len);
            let mut buf = [0; MAX_HEADER_LEN];
            assert_eq!(header.encode(&mut buf), expected, "len {len}");
            assert_eq!(header.encoded_len(), expected);
        }
    }
}
