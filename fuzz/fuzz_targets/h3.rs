//! HTTP/3's field sections and SETTINGS, as the `http3` driver reads them
//! from a peer: QPACK without a dynamic table (static references,
//! literals, Huffman strings), SETTINGS payloads, frame headers.
//!
//! Invariants, beyond "never panics" and "never allocates past the limit":
//! - a field section that decodes takes at most the limit, as RFC 9114
//!   §4.2.2 counts (name, value and 32 octets each), and encoding what was
//!   decoded and decoding it again gives the same fields;
//! - SETTINGS that parse, written again, parse to the same settings;
//! - a frame header that parses says no more than the bytes it took.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rfc6455::internals::{
    get_varint, h3_frame_header, qpack_decode, qpack_encode, H3Settings, QpackError,
};

fuzz_target!(|data: &[u8]| {
    let (limit, block) = match data.split_first() {
        Some((&l, rest)) => (usize::from(l) * 64, rest),
        None => return,
    };
    match qpack_decode(block, limit) {
        Ok(fields) => {
            let size: usize = fields.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
            assert!(
                size <= limit,
                "{size} bytes of fields past the limit {limit}"
            );
            let mut again = Vec::new();
            qpack_encode(
                &mut again,
                fields.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
            );
            assert_eq!(
                qpack_decode(&again, limit),
                Ok(fields),
                "encode then decode"
            );
        }
        Err(QpackError::TooLarge | QpackError::Malformed(_)) => {}
    }

    if let Ok(settings) = H3Settings::parse(block) {
        let frame = settings.frame();
        let (ty, len, at) = h3_frame_header(&frame).expect("a whole frame header");
        assert_eq!((ty, len as usize), (0x04, frame.len() - at));
        assert_eq!(H3Settings::parse(&frame[at..]), Ok(settings));
    }

    if let Some((_, _, at)) = h3_frame_header(block) {
        assert!(at <= block.len() && at <= 16);
    }
    if let Some((_, n)) = get_varint(block) {
        assert!(n <= 8 && n <= block.len());
    }
});
