//! QPACK (RFC 9204) without a dynamic table: the field sections of
//! HTTP/3's HEADERS frames.
//!
//! We advertise `SETTINGS_QPACK_MAX_TABLE_CAPACITY = 0` (the default), so
//! a peer may not insert into our dynamic table: every field line it
//! sends is a static-table reference or a literal (§3.2.3), and we never
//! need the encoder and decoder streams. We encode the same way, with the
//! static table and plain (not Huffman) literals, which never blocks a
//! stream and needs no state between field sections.

use alloc::string::String;
use alloc::vec::Vec;

use super::huffman::{self, BadHuffman};

/// The static table (RFC 9204 Appendix A), by index.
const STATIC: [(&str, &str); 99] = [
    (":authority", ""),
    (":path", "/"),
    ("age", "0"),
    ("content-disposition", ""),
    ("content-length", "0"),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("referer", ""),
    ("set-cookie", ""),
    (":method", "CONNECT"),
    (":method", "DELETE"),
    (":method", "GET"),
    (":method", "HEAD"),
    (":method", "OPTIONS"),
    (":method", "POST"),
    (":method", "PUT"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "103"),
    (":status", "200"),
    (":status", "304"),
    (":status", "404"),
    (":status", "503"),
    ("accept", "*/*"),
    ("accept", "application/dns-message"),
    ("accept-encoding", "gzip, deflate, br"),
    ("accept-ranges", "bytes"),
    ("access-control-allow-headers", "cache-control"),
    ("access-control-allow-headers", "content-type"),
    ("access-control-allow-origin", "*"),
    ("cache-control", "max-age=0"),
    ("cache-control", "max-age=2592000"),
    ("cache-control", "max-age=604800"),
    ("cache-control", "no-cache"),
    ("cache-control", "no-store"),
    ("cache-control", "public, max-age=31536000"),
    ("content-encoding", "br"),
    ("content-encoding", "gzip"),
    ("content-type", "application/dns-message"),
    ("content-type", "application/javascript"),
    ("content-type", "application/json"),
    ("content-type", "application/x-www-form-urlencoded"),
    ("content-type", "image/gif"),
    ("content-type", "image/jpeg"),
    ("content-type", "image/png"),
    ("content-type", "text/css"),
    ("content-type", "text/html; charset=utf-8"),
    ("content-type", "text/plain"),
    ("content-type", "text/plain;charset=utf-8"),
    ("range", "bytes=0-"),
    ("strict-transport-security", "max-age=31536000"),
    (
        "strict-transport-security",
        "max-age=31536000; includesubdomains",
    ),
    (
        "strict-transport-security",
        "max-age=31536000; includesubdomains; preload",
    ),
    ("vary", "accept-encoding"),
    ("vary", "origin"),
    ("x-content-type-options", "nosniff"),
    ("x-xss-protection", "1; mode=block"),
    (":status", "100"),
    (":status", "204"),
    (":status", "206"),
    (":status", "302"),
    (":status", "400"),
    (":status", "403"),
    (":status", "421"),
    (":status", "425"),
    (":status", "500"),
    ("accept-language", ""),
    ("access-control-allow-credentials", "FALSE"),
    ("access-control-allow-credentials", "TRUE"),
    ("access-control-allow-headers", "*"),
    ("access-control-allow-methods", "get"),
    ("access-control-allow-methods", "get, post, options"),
    ("access-control-allow-methods", "options"),
    ("access-control-expose-headers", "content-length"),
    ("access-control-request-headers", "content-type"),
    ("access-control-request-method", "get"),
    ("access-control-request-method", "post"),
    ("alt-svc", "clear"),
    ("authorization", ""),
    (
        "content-security-policy",
        "script-src 'none'; object-src 'none'; base-uri 'none'",
    ),
    ("early-data", "1"),
    ("expect-ct", ""),
    ("forwarded", ""),
    ("if-range", ""),
    ("origin", ""),
    ("purpose", "prefetch"),
    ("server", ""),
    ("timing-allow-origin", "*"),
    ("upgrade-insecure-requests", "1"),
    ("user-agent", ""),
    ("x-forwarded-for", ""),
    ("x-frame-options", "deny"),
    ("x-frame-options", "sameorigin"),
];

/// Decoded fields, names and values, in order.
pub type Fields = Vec<(String, Vec<u8>)>;

/// Why a field section was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum FieldsError {
    /// Its fields take more than the limit (name, value and 32 octets
    /// each, RFC 9114 §4.2.2): a request gets 431.
    TooLarge,
    /// It does not decode, or refers to a dynamic table we never allowed:
    /// the connection fails with `QPACK_DECOMPRESSION_FAILED` (§2.2.3).
    Malformed(&'static str),
}

/// The fields of an encoded field section, pseudo-header fields first as
/// sent, unless they take more than `max` (as RFC 9114 §4.2.2 counts).
pub fn decode(block: &[u8], max: usize) -> Result<Fields, FieldsError> {
    let mut input = Input { rest: block };
    // The prefix: the Required Insert Count, which must be 0 without a
    // dynamic table, and the Base, which then means nothing.
    if input.int(8)? != 0 {
        return Err(FieldsError::Malformed("a dynamic table reference"));
    }
    input.int(7)?;
    let mut fields = Vec::new();
    let mut size = 0usize;
    while let Some(&first) = input.rest.first() {
        let (name, value) = if first & 0x80 != 0 {
            // Indexed field line: 1 T index(6).
            if first & 0x40 == 0 {
                return Err(FieldsError::Malformed("a dynamic table reference"));
            }
            let (name, value) = static_entry(input.int(6)?)?;
            (String::from(name), Vec::from(value.as_bytes()))
        } else if first & 0x40 != 0 {
            // Literal field line with name reference: 0 1 N T index(4).
            if first & 0x10 == 0 {
                return Err(FieldsError::Malformed("a dynamic table reference"));
            }
            let (name, _) = static_entry(input.int(4)?)?;
            let budget = budget(max, size, name.len())?;
            let value = input.string(7, budget)?;
            (String::from(name), value)
        } else if first & 0x20 != 0 {
            // Literal field line with literal name: 0 0 1 N H length(3).
            let name = input.string(3, budget(max, size, 0)?)?;
            let name =
                String::from_utf8(name).map_err(|_| FieldsError::Malformed("a field name"))?;
            let value = input.string(7, budget(max, size, name.len())?)?;
            (name, value)
        } else {
            // Post-base references exist only with a dynamic table.
            return Err(FieldsError::Malformed("a dynamic table reference"));
        };
        size = size.saturating_add(name.len() + value.len() + 32);
        if size > max {
            return Err(FieldsError::TooLarge);
        }
        fields.push((name, value));
    }
    Ok(fields)
}

/// What a field's value may take once its name is counted.
fn budget(max: usize, size: usize, name: usize) -> Result<usize, FieldsError> {
    max.checked_sub(size + name + 32)
        .ok_or(FieldsError::TooLarge)
}

fn static_entry(index: u64) -> Result<(&'static str, &'static str), FieldsError> {
    usize::try_from(index)
        .ok()
        .and_then(|i| STATIC.get(i).copied())
        .ok_or(FieldsError::Malformed("a static table index"))
}

/// The bytes of a field section still to decode.
struct Input<'a> {
    rest: &'a [u8],
}

impl Input<'_> {
    /// An integer with an `n`-bit prefix (RFC 7541 §5.1), the first byte's
    /// other bits left to the caller.
    fn int(&mut self, n: u32) -> Result<u64, FieldsError> {
        let truncated = FieldsError::Malformed("a truncated integer");
        let (&first, mut rest) = self.rest.split_first().ok_or(truncated)?;
        let mask = (1u16 << n) - 1;
        let mut value = u64::from(u16::from(first) & mask);
        if value == u64::from(mask) {
            let mut shift = 0;
            loop {
                let (&byte, more) = rest
                    .split_first()
                    .ok_or(FieldsError::Malformed("a truncated integer"))?;
                rest = more;
                if shift > 56 {
                    return Err(FieldsError::Malformed("an integer too large"));
                }
                value += u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
        }
        self.rest = rest;
        Ok(value)
    }

    /// A string literal: the Huffman flag just above an `n`-bit length
    /// prefix, then the bytes; refused if it decodes to more than `max`.
    fn string(&mut self, n: u32, max: usize) -> Result<Vec<u8>, FieldsError> {
        let huffman = self.rest.first().is_some_and(|b| b & (1 << n) != 0);
        let len = self.int(n)?;
        let len = usize::try_from(len).map_err(|_| FieldsError::TooLarge)?;
        if len > self.rest.len() {
            return Err(FieldsError::Malformed("a truncated string"));
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        if !huffman {
            if len > max {
                return Err(FieldsError::TooLarge);
            }
            return Ok(Vec::from(bytes));
        }
        let mut out = Vec::new();
        huffman::decode(bytes, &mut out, max).map_err(|e| match e {
            BadHuffman::TooLong => FieldsError::TooLarge,
            BadHuffman::Malformed => FieldsError::Malformed("a Huffman string"),
        })?;
        Ok(out)
    }
}

/// Encodes `fields` as a field section: static-table references where
/// the table has the field or its name, plain literals otherwise.
pub fn encode<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = (&'a str, &'a [u8])>) {
    // Required Insert Count 0, Base 0.
    out.extend_from_slice(&[0, 0]);
    for (name, value) in fields {
        let exact = STATIC
            .iter()
            .position(|&(n, v)| n == name && v.as_bytes() == value);
        if let Some(index) = exact {
            put_int(out, 0b1100_0000, 6, index as u64);
            continue;
        }
        match STATIC.iter().position(|&(n, _)| n == name) {
            Some(index) => put_int(out, 0b0101_0000, 4, index as u64),
            None => {
                put_int(out, 0b0010_0000, 3, name.len() as u64);
                out.extend_from_slice(name.as_bytes());
            }
        }
        put_int(out, 0, 7, value.len() as u64);
        out.extend_from_slice(value);
    }
}

/// An integer with an `n`-bit prefix, the first byte's other bits `high`.
fn put_int(out: &mut Vec<u8>, high: u8, n: u32, value: u64) {
    let mask = (1u64 << n) - 1;
    if value < mask {
        out.push(high | value as u8);
        return;
    }
    out.push(high | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn fields(list: &[(&str, &str)]) -> Fields {
        list.iter()
            .map(|(n, v)| (String::from(*n), Vec::from(v.as_bytes())))
            .collect()
    }

    #[test]
    fn encode_then_decode_is_identity() {
        let sent = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":authority", "example.com:4433"),
            (":path", "/chat?room=1"),
            ("sec-websocket-version", "13"),
            ("origin", "https://example.com"),
            ("x-long", &"a".repeat(300)),
        ];
        let mut block = Vec::new();
        encode(&mut block, sent.iter().map(|(n, v)| (*n, v.as_bytes())));
        assert_eq!(decode(&block, 16 << 10).unwrap(), fields(&sent));
    }

    /// Field lines as a peer may send them, byte by byte (RFC 9204 §4.5).
    #[test]
    fn each_representation_decodes() {
        let cases: Vec<(Vec<u8>, Fields)> = vec![
            // Indexed, static: 25 is ":status: 200".
            (vec![0, 0, 0xc0 | 25], fields(&[(":status", "200")])),
            // Name reference, static (1 = ":path"), literal value "/x".
            (vec![0, 0, 0x51, 2, b'/', b'x'], fields(&[(":path", "/x")])),
            // Literal name "ab", literal value "c".
            (
                vec![0, 0, 0x22, b'a', b'b', 1, b'c'],
                fields(&[("ab", "c")]),
            ),
            // A Huffman value: "www.example.com" (RFC 7541 C.4.1), under
            // static name 0 (":authority").
            (
                vec![
                    0, 0, 0x50, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90,
                    0xf4, 0xff,
                ],
                fields(&[(":authority", "www.example.com")]),
            ),
            // An index past the 6-bit prefix: 98 = 63 + 35.
            (
                vec![0, 0, 0xff, 35],
                fields(&[("x-frame-options", "sameorigin")]),
            ),
        ];
        for (block, want) in cases {
            assert_eq!(decode(&block, 1000).unwrap(), want, "{block:x?}");
        }
    }

    #[test]
    fn dynamic_references_and_garbage_are_refused() {
        let malformed =
            |block: &[u8]| matches!(decode(block, 1000), Err(FieldsError::Malformed(_)));
        // A Required Insert Count.
        assert!(malformed(&[1, 0]));
        // Indexed, dynamic (T = 0).
        assert!(malformed(&[0, 0, 0x80]));
        // Name reference, dynamic.
        assert!(malformed(&[0, 0, 0x40, 0]));
        // Post-base forms.
        assert!(malformed(&[0, 0, 0x10]));
        assert!(malformed(&[0, 0, 0x00]));
        // Static index past the table.
        assert!(malformed(&[0, 0, 0xff, 36]));
        // A string longer than the block.
        assert!(malformed(&[0, 0, 0x22, b'a']));
        // An integer that never ends.
        assert!(malformed(&[0, 0, 0xff, 0xff, 0xff]));
        assert!(malformed(&[
            0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1
        ]));
    }

    #[test]
    fn the_size_limit_counts_as_rfc_9114_does() {
        let mut block = Vec::new();
        encode(&mut block, [("ab", &b"cd"[..])]);
        // 2 + 2 + 32 = 36.
        assert!(decode(&block, 36).is_ok());
        assert_eq!(decode(&block, 35), Err(FieldsError::TooLarge));
        // A long literal is refused by its length, before it is copied.
        let mut block = Vec::new();
        encode(&mut block, [("x", &[b'a'; 1 << 20][..])]);
        assert_eq!(decode(&block, 16 << 10), Err(FieldsError::TooLarge));
    }

    #[test]
    fn prefix_integers_round_trip() {
        for n in [3, 4, 6, 7, 8] {
            for value in [
                0,
                1,
                6,
                7,
                14,
                15,
                62,
                63,
                126,
                127,
                128,
                255,
                256,
                1 << 20,
                1 << 40,
            ] {
                let mut out = Vec::new();
                put_int(&mut out, 0, n, value);
                let mut input = Input { rest: &out };
                assert_eq!(input.int(n).unwrap(), value, "n = {n}");
                assert!(input.rest.is_empty());
            }
        }
    }
}
