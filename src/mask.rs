//! Payload masking (RFC 6455 §5.3): `octet i XOR key[i mod 4]`.
//!
//! [`apply_mask`] is the fast path; [`apply_mask_reference`] is the
//! byte-by-byte twin it is tested (and fuzzed) against. The fast path is
//! safe code: XOR over 8-byte words, which the compiler turns into SIMD.

/// Masks (or unmasks: the operation is its own inverse) `data` in place.
///
/// `offset` is how many payload bytes came before `data` in the same frame,
/// so a payload may be masked in pieces as it arrives.
#[inline]
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    // The word loop starts at the key's phase zero because `key` is already
    // rotated for `offset`; the address alignment does not matter.
    let mut wide_bytes = [0u8; 8];
    wide_bytes[..4].copy_from_slice(&key);
    wide_bytes[4..].copy_from_slice(&key);
    let wide = u64::from_ne_bytes(wide_bytes);
    let mut chunks = data.chunks_exact_mut(32);
    for chunk in &mut chunks {
        for lane in chunk.chunks_exact_mut(8) {
            let v = u64::from_ne_bytes(lane.try_into().expect("lane of 8 bytes")) ^ wide;
            lane.copy_from_slice(&v.to_ne_bytes());
        }
    }
    let rest = chunks.into_remainder();
    let mut lanes = rest.chunks_exact_mut(8);
    for lane in &mut lanes {
        let v = u64::from_ne_bytes(lane.try_into().expect("lane of 8 bytes")) ^ wide;
        lane.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, byte) in lanes.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

/// The plain definition from §5.3, one byte at a time.
#[cfg_attr(not(any(test, fuzzing, feature = "internals")), allow(dead_code))]
pub fn apply_mask_reference(data: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in data.iter_mut().enumerate() {
        *byte ^= key[(offset + i) % 4];
    }
}

/// The key as seen from payload byte `offset`.
#[inline]
fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    let mut k = key;
    k.rotate_left(offset % 4);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_mask_matches_reference_at_every_length_and_offset() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..100 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(31)).collect();
                let mut fast = data.clone();
                let mut slow = data.clone();
                apply_mask(&mut fast, key, offset);
                apply_mask_reference(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn masking_in_pieces_equals_masking_whole() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..=255).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for split in 0..data.len() {
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            assert_eq!(pieces, whole, "split {split}");
        }
    }
}
