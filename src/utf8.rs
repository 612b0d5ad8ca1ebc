//! UTF-8 that is checked as it arrives, and bytes known to be UTF-8.
//!
//! A text message may be split across frames, and a frame across reads, at
//! any byte, even inside a character. [`Utf8Validator`] keeps the (at most
//! three) bytes of an unfinished character between calls, so it can say
//! "invalid" at the first byte that makes the text invalid, not at the end
//! of the message (§8.1; Autobahn cases 6.4.* check this "fail fast").
//!
//! The check itself is simdutf8's, which gives the same answers as
//! `core::str::from_utf8` (position and length of the error included),
//! much faster on non-ASCII text (the benchmark's physical-limits
//! table, benches/README.md, part 1); the tests compare the two.

use alloc::string::String;
use core::fmt;

use bytes::Bytes;

/// Validates UTF-8 fed in pieces.
#[derive(Clone, Debug, Default)]
pub struct Utf8Validator {
    /// The start of a character cut off at the end of the last piece.
    pending: [u8; 4],
    /// How many bytes of `pending` are in use (0 to 3).
    pending_len: u8,
}

/// The input can never become valid UTF-8, whatever follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next piece. `Err` means the text so far is already
    /// invalid. `Ok` means it is valid, or a valid prefix that a later
    /// piece may complete.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            // Finish the character the last piece cut off.
            let have = usize::from(self.pending_len);
            let need = char_width(self.pending[0]) - have;
            let take = need.min(input.len());
            self.pending[have..have + take].copy_from_slice(&input[..take]);
            let candidate = &self.pending[..have + take];
            match simdutf8::compat::from_utf8(candidate) {
                Ok(_) => self.pending_len = 0,
                // Still incomplete, and still a valid prefix: the input ran out.
                Err(e) if e.error_len().is_none() => {
                    self.pending_len = (have + take) as u8;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
            input = &input[take..];
        }
        match simdutf8::compat::from_utf8(input) {
            Ok(_) => Ok(()),
            // `error_len() == None`: the input ends inside a character whose
            // bytes so far are a valid prefix (the second byte's range is
            // checked eagerly, so an impossible prefix is reported at once;
            // simdutf8's `compat` API reports exactly what `std` would).
            Err(e) if e.error_len().is_none() => {
                let tail = &input[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Whether the text fed so far ends on a character boundary. A message
    /// that ends while this is false is invalid.
    pub fn is_complete(&self) -> bool {
        self.pending_len == 0
    }
}

/// The number of bytes of the character that starts with `lead`, for a
/// lead byte that `from_utf8` accepted as the start of a prefix.
fn char_width(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// Bytes that are valid UTF-8: the payload of a text message.
///
/// It derefs to `str` without copying the received bytes, and
/// [`Utf8Bytes::into_bytes`] gives back the [`Bytes`] view.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Wraps bytes that have already been validated.
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(core::str::from_utf8(&bytes).is_ok());
        Utf8Bytes(bytes)
    }

    /// Checks `bytes` and wraps them.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, core::str::Utf8Error> {
        core::str::from_utf8(&bytes)?;
        Ok(Utf8Bytes(bytes))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor either validated the bytes
        // (`try_from_bytes`, the `From<String>`/`From<&str>` impls) or is
        // `from_validated`, which the connection calls only on payloads that
        // `Utf8Validator` accepted as complete UTF-8. `Bytes` is immutable,
        // so the bytes cannot change after the check. Checking again here
        // would validate every text message twice.
        unsafe { core::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The underlying [`Bytes`], without a copy.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl core::ops::Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Utf8Bytes(Bytes::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Utf8Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn feed_split(bytes: &[u8], split: usize) -> Result<bool, InvalidUtf8> {
        let mut v = Utf8Validator::new();
        v.feed(&bytes[..split])?;
        v.feed(&bytes[split..])?;
        Ok(v.is_complete())
    }

    #[test]
    fn every_split_agrees_with_std() {
        let samples: &[&[u8]] = &[
            "κόσμε".as_bytes(),
            "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
            "\u{10FFFF}\u{FFFF}a".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf4\x90\x80\x80",
            b"\xf0\x9f\x98",
            b"\xc0\xaf",
            b"\xed\x9f\xbf",
        ];
        for sample in samples {
            let expected = core::str::from_utf8(sample).is_ok();
            for split in 0..=sample.len() {
                let got = matches!(feed_split(sample, split), Ok(true));
                assert_eq!(got, expected, "{sample:x?} split at {split}");
            }
        }
    }

    proptest::proptest! {
        /// Fed in any pieces, the validator agrees with `std` on arbitrary
        /// bytes (mostly near-valid: multibyte text with bytes flipped).
        #[test]
        fn agrees_with_std_at_any_split(
            text in ".{0,40}",
            flips in proptest::collection::vec((0usize..200, proptest::prelude::any::<u8>()), 0..3),
            cuts in proptest::collection::vec(0usize..200, 0..4),
        ) {
            let mut bytes = text.into_bytes();
            for (at, byte) in flips {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = byte;
                }
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut v = Utf8Validator::new();
            let mut ok = true;
            let mut start = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                ok &= v.feed(&bytes[start..cut]).is_ok();
                start = cut;
                if !ok {
                    break;
                }
            }
            let valid = ok && v.is_complete();
            proptest::prop_assert_eq!(valid, core::str::from_utf8(&bytes).is_ok());
        }
    }

    #[test]
    fn validated_bytes_read_back_as_the_same_text() {
        for text in ["", "ascii", "κόσμε", "\u{10FFFF}\u{FFFF}a"] {
            let bytes = Utf8Bytes::from_validated(Bytes::copy_from_slice(text.as_bytes()));
            assert_eq!(bytes.as_str(), text);
            assert_eq!(&*bytes, text);
            let checked = Utf8Bytes::try_from_bytes(Bytes::copy_from_slice(text.as_bytes()));
            assert_eq!(checked.unwrap().as_str(), text);
        }
        assert!(Utf8Bytes::try_from_bytes(Bytes::from_static(b"\xff")).is_err());
    }

    #[test]
    fn fails_at_the_first_impossible_byte() {
        // 0xF4 0x90 can start no character (above U+10FFFF): fail at once,
        // without waiting for the rest of the character.
        let mut v = Utf8Validator::new();
        v.feed(b"ok \xf4").unwrap();
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
    }
}
