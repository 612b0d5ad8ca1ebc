//! `Utf8Validator` fed at arbitrary split points against `std::str::from_utf8`.
//!
//! Invariants:
//! - after every piece, the validator has failed exactly when std says the
//!   bytes fed so far can never become UTF-8 (`error_len()` is `Some`): it
//!   fails fast, at the piece that makes the text invalid, and never early;
//! - at the end, the text is valid iff every piece was accepted and
//!   `is_complete()` holds.
//!
//! About "fail fast": when std reports `valid_up_to() == k` and
//! `error_len() == Some(n)` for the whole input, the failure is not always
//! visible within the first `k + n` bytes. For `E0 80`, std says k = 0,
//! n = 1, yet `E0` alone is a valid prefix: only the `80` condemns it. So
//! the bound checked here is the exact one, prefix by prefix: the first
//! prefix for which std reports `error_len() == Some(_)` is where the
//! validator must fail (this is `k + n` or `k + n + 1`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rfc6455::internals::{InvalidUtf8, Utf8Validator};
use rfc6455_fuzz::chunks;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Piece lengths, cycled.
    sizes: [u8; 4],
    data: &'a [u8],
}

/// Whether no continuation can make `prefix` valid UTF-8.
fn doomed(prefix: &[u8]) -> bool {
    matches!(std::str::from_utf8(prefix), Err(e) if e.error_len().is_some())
}

fuzz_target!(|input: Input<'_>| {
    let data = input.data;
    let mut validator = Utf8Validator::new();
    let mut fed = 0;
    // The byte range of the piece at which the validator failed.
    let mut failed_in = None;
    for piece in chunks(data, &input.sizes) {
        let before = fed;
        fed += piece.len();
        let verdict = validator.feed(piece);
        assert_eq!(
            verdict.is_err(),
            doomed(&data[..fed]),
            "after {fed} bytes: validator {verdict:?}, std {:?}",
            std::str::from_utf8(&data[..fed])
        );
        if verdict == Err(InvalidUtf8) {
            failed_in = Some(before..fed);
            break;
        }
        // Between pieces: complete exactly when the prefix is valid.
        assert_eq!(
            validator.is_complete(),
            std::str::from_utf8(&data[..fed]).is_ok()
        );
    }
    let valid = failed_in.is_none() && validator.is_complete();
    assert_eq!(
        valid,
        std::str::from_utf8(data).is_ok(),
        "verdict differs from std"
    );

    if let Err(e) = std::str::from_utf8(data) {
        if let Some(n) = e.error_len() {
            let k = e.valid_up_to();
            let shortest = (k + 1..=data.len())
                .find(|&p| doomed(&data[..p]))
                .expect("the whole input is doomed");
            assert!(shortest == k + n || shortest == k + n + 1);
            // Fail fast: in the very piece that brought the condemning byte.
            let piece = failed_in.expect("invalid UTF-8 was accepted");
            assert!(
                piece.start < shortest && shortest <= piece.end,
                "failed in bytes {piece:?}, but the text was doomed at {shortest}"
            );
        }
    }
});
