//! The fast `apply_mask` against the byte-by-byte `apply_mask_reference`,
//! at every length, key phase (offset) and sub-slice alignment.
//!
//! Invariants: the two agree; masking in two pieces (the second with the
//! offset advanced by the first's length) equals masking whole; masking
//! twice gives the data back; `extend_masked` (copy and mask in one pass,
//! after a prefix of any length) equals copying then masking.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rfc6455::internals::{apply_mask, apply_mask_reference, extend_masked};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    key: [u8; 4],
    /// The payload bytes before this slice in the frame. A `u32` keeps
    /// `offset + i` of the reference far from overflow; the fast path
    /// reduces it modulo 4 at once.
    offset: u32,
    /// Where to cut for the two-piece check.
    split: u16,
    data: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let key = input.key;
    let data = input.data;
    // Start the slice at every alignment of an 8-byte word, with every
    // short length and the whole remainder, and every key phase. The
    // buffers keep `data`'s address alignment; each check is undone by a copy.
    let mut fast = data.to_vec();
    let mut slow = data.to_vec();
    for start in 0..data.len().min(8) + 1 {
        let rest = data.len() - start;
        let lengths = (0..=rest.min(40)).chain(std::iter::once(rest));
        for len in lengths {
            for phase in 0..4 {
                let offset = input.offset as usize + phase;
                let range = start..start + len;
                apply_mask(&mut fast[range.clone()], key, offset);
                apply_mask_reference(&mut slow[range.clone()], key, offset);
                assert_eq!(
                    fast[range.clone()],
                    slow[range.clone()],
                    "start {start} len {len} offset {offset}"
                );
                fast[range.clone()].copy_from_slice(&data[range.clone()]);
                slow[range.clone()].copy_from_slice(&data[range]);
            }
        }
    }
    assert_eq!(fast, data);

    let offset = input.offset as usize;
    let mut whole = data.to_vec();
    apply_mask(&mut whole, key, offset);
    let split = usize::from(input.split) % (data.len() + 1);
    let mut pieces = data.to_vec();
    let (a, b) = pieces.split_at_mut(split);
    apply_mask(a, key, offset);
    apply_mask(b, key, offset + split);
    assert_eq!(pieces, whole, "masking in pieces differs, split {split}");
    apply_mask(&mut whole, key, offset);
    assert_eq!(whole, data, "masking twice is not the identity");

    let prefix = usize::from(input.split) % 16;
    let mut out = vec![0x5A; prefix];
    extend_masked(&mut out, data, key);
    let mut expected = data.to_vec();
    apply_mask_reference(&mut expected, key, 0);
    assert!(out[..prefix].iter().all(|&b| b == 0x5A), "prefix changed");
    assert_eq!(out[prefix..], expected[..], "extend_masked differs");
});
