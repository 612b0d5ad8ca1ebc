//! Payload masking (RFC 6455 §5.3): `octet i XOR key[i mod 4]`.
//!
//! Two kernels: [`apply_mask`] unmasks received bytes in place, and
//! [`extend_masked`] appends a payload to the output already masked, so a
//! frame we send is read once and written once (not copied, then masked in
//! a second pass). [`apply_mask_reference`] is the byte-by-byte twin both
//! are tested (and fuzzed) against.
//!
//! Both work on 8-byte words, which the compiler turns into SIMD. On
//! x86-64 the same code is also compiled for AVX2 and picked at run time
//! when the CPU has it: a baseline x86-64 build never uses AVX2 by itself,
//! and 256-bit XOR outruns the SSE2 code on large payloads (the
//! benchmark's physical-limits table, benches/README.md, part 1).

use alloc::vec::Vec;
use core::mem::MaybeUninit;

/// Masks (or unmasks: the operation is its own inverse) `data` in place.
///
/// `offset` is how many payload bytes came before `data` in the same frame,
/// so a payload may be masked in pieces as it arrives.
#[inline]
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if data.len() >= AVX2_MIN_LEN && avx2::detected() {
        // SAFETY: the CPU supports AVX2, checked just above; that is the
        // only requirement of a `#[target_feature(enable = "avx2")]` fn.
        unsafe { avx2::mask_in_place(data, key) };
        return;
    }
    mask_in_place(data, key);
}

/// Appends `payload` to `out`, masked with `key` from phase zero: one pass
/// that reads the payload and writes the masked bytes.
#[inline]
pub fn extend_masked(out: &mut Vec<u8>, payload: &[u8], key: [u8; 4]) {
    out.reserve(payload.len());
    let start = out.len();
    let spare = &mut out.spare_capacity_mut()[..payload.len()];
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    let done = if payload.len() >= AVX2_MIN_LEN && avx2::detected() {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { avx2::mask_copy(spare, payload, key) };
        true
    } else {
        false
    };
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let done = false;
    if !done {
        mask_copy(spare, payload, key);
    }
    // SAFETY: `mask_copy` wrote every one of the `payload.len()` bytes of
    // `spare` (its loops cover the whole slice: whole words, then the
    // tail), and `reserve` made that much capacity exist after `start`.
    unsafe { out.set_len(start + payload.len()) };
}

/// Below this length the AVX2 path does not pay for its feature check.
#[cfg(all(target_arch = "x86_64", not(miri)))]
const AVX2_MIN_LEN: usize = 256;

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod avx2 {
    use core::mem::MaybeUninit;

    /// Whether this CPU has AVX2: asked at run time with std; without std,
    /// known at compile time (`-C target-feature=+avx2`), else the portable
    /// kernel runs.
    #[inline]
    pub(super) fn detected() -> bool {
        #[cfg(feature = "std")]
        return std::is_x86_feature_detected!("avx2");
        #[cfg(not(feature = "std"))]
        return cfg!(target_feature = "avx2");
    }

    /// [`super::mask_in_place`] compiled with AVX2 enabled.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn mask_in_place(data: &mut [u8], key: [u8; 4]) {
        super::mask_in_place(data, key)
    }

    /// [`super::mask_copy`] compiled with AVX2 enabled.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn mask_copy(dst: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4]) {
        super::mask_copy(dst, src, key)
    }
}

/// The key repeated over a 64-bit word, in memory order.
#[inline(always)]
fn wide_key(key: [u8; 4]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&key);
    bytes[4..].copy_from_slice(&key);
    u64::from_ne_bytes(bytes)
}

/// The portable kernel: 32-byte blocks of four words (the compiler makes
/// vector instructions of them), then words, then bytes. The key is at
/// phase zero for `data[0]`; the address alignment does not matter.
#[inline(always)]
fn mask_in_place(data: &mut [u8], key: [u8; 4]) {
    let wide = wide_key(key);
    let mut blocks = data.chunks_exact_mut(32);
    for block in &mut blocks {
        for lane in block.chunks_exact_mut(8) {
            let v = u64::from_ne_bytes(word(lane)) ^ wide;
            lane.copy_from_slice(&v.to_ne_bytes());
        }
    }
    let mut lanes = blocks.into_remainder().chunks_exact_mut(8);
    for lane in &mut lanes {
        let v = u64::from_ne_bytes(word(lane)) ^ wide;
        lane.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, byte) in lanes.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

/// `dst[i] = src[i] ^ key[i % 4]` for every `i`, writing all of `dst`
/// (which must be as long as `src`).
#[inline(always)]
fn mask_copy(dst: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4]) {
    assert_eq!(dst.len(), src.len(), "mask_copy needs equal lengths");
    let wide = wide_key(key);
    let mut dst_blocks = dst.chunks_exact_mut(32);
    let mut src_blocks = src.chunks_exact(32);
    for (d, s) in (&mut dst_blocks).zip(&mut src_blocks) {
        for (dl, sl) in d.chunks_exact_mut(8).zip(s.chunks_exact(8)) {
            write_word(dl, sl, wide);
        }
    }
    let mut dst_lanes = dst_blocks.into_remainder().chunks_exact_mut(8);
    let mut src_lanes = src_blocks.remainder().chunks_exact(8);
    for (dl, sl) in (&mut dst_lanes).zip(&mut src_lanes) {
        write_word(dl, sl, wide);
    }
    let tail = dst_lanes.into_remainder().iter_mut();
    for (i, (d, s)) in tail.zip(src_lanes.remainder()).enumerate() {
        d.write(s ^ key[i & 3]);
    }
}

/// The 8 bytes of a lane, as an array (a lane is always 8 bytes long; a
/// copy rather than `try_into().expect()`, which would link a `Debug`
/// impl into small targets for a failure that cannot happen).
#[inline(always)]
fn word(lane: &[u8]) -> [u8; 8] {
    let mut word = [0; 8];
    word.copy_from_slice(lane);
    word
}

#[inline(always)]
fn write_word(dst: &mut [MaybeUninit<u8>], src: &[u8], wide: u64) {
    let v = (u64::from_ne_bytes(word(src)) ^ wide).to_ne_bytes();
    for (d, b) in dst.iter_mut().zip(v) {
        d.write(b);
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
    // Moving the bytes left by n is rotating their little-endian value
    // right by 8n bits: one instruction instead of a call.
    let shift = 8 * (offset % 4) as u32;
    u32::from_le_bytes(key).rotate_right(shift).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec;

    /// Lengths around every boundary of the kernels: the word and block
    /// tails, and the AVX2 threshold (fewer under miri, which is slow and
    /// takes the portable kernels only).
    fn lengths() -> Box<dyn Iterator<Item = usize>> {
        if cfg!(miri) {
            Box::new((0..41).chain([255, 256, 263]))
        } else {
            Box::new((0..100).chain(250..270).chain([1000, 4099]))
        }
    }

    #[test]
    fn fast_mask_matches_reference_at_every_length_and_offset() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in lengths() {
            for offset in 0..if cfg!(miri) { 4 } else { 8 } {
                let data: Vec<u8> = (0..len).map(|b| (b as u8).wrapping_mul(31)).collect();
                let mut fast = data.clone();
                let mut slow = data.clone();
                apply_mask(&mut fast, key, offset);
                apply_mask_reference(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn extend_masked_matches_reference_after_any_prefix() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in lengths() {
            for prefix in [0, 1, 3, 14] {
                let data: Vec<u8> = (0..len).map(|b| (b as u8).wrapping_mul(29)).collect();
                let mut out = vec![0xAA; prefix];
                extend_masked(&mut out, &data, key);
                let mut expected = data.clone();
                apply_mask_reference(&mut expected, key, 0);
                assert_eq!(out.len(), prefix + len);
                assert!(out[..prefix].iter().all(|&b| b == 0xAA), "prefix kept");
                assert_eq!(out[prefix..], expected[..], "len {len} prefix {prefix}");
            }
        }
    }

    #[test]
    fn masking_in_pieces_equals_masking_whole() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..=255).chain(0..=255).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let step = if cfg!(miri) { 37 } else { 1 };
        for split in (0..data.len()).step_by(step) {
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            assert_eq!(pieces, whole, "split {split}");
        }
    }
}
