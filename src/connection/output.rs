//! The bytes waiting to be sent.
//!
//! Frames are encoded into one buffer, except the payload of a large
//! message the caller already holds as [`Bytes`] (a received message sent
//! back, say): the server sends it as it is, spliced in after its header,
//! with no copy. Writers take the pending bytes one piece at a time
//! ([`Output::pending`]) or all at once ([`Output::pieces`]) for one
//! vectored write.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use bytes::{Buf, Bytes};

#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Encoded frames; `buf[sent..]` is unsent.
    buf: Vec<u8>,
    sent: usize,
    /// Shared payloads, in order, each going before `buf[at..]`.
    splices: VecDeque<Splice>,
    /// Unsent bytes in `splices`.
    splice_len: usize,
}

#[derive(Debug)]
struct Splice {
    /// Position in `buf` this payload goes before.
    at: usize,
    /// Its unsent bytes.
    data: Bytes,
}

/// Drain the sent front of the buffer when more than this has been sent
/// and it is over half of the buffer.
const DRAIN_AFTER: usize = 64 * 1024;

/// [`Output::take`] hands the whole buffer over, rather than copy it, from
/// this size on (below it, a copy costs less than a new buffer).
const HAND_OVER: usize = 16 * 1024;

impl Output {
    /// The buffer frames are encoded into (append only).
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Appends `data` to the output without copying it.
    pub(crate) fn push_shared(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        self.splice_len += data.len();
        self.splices.push_back(Splice {
            at: self.buf.len(),
            data,
        });
    }

    /// The next contiguous piece of unsent bytes (empty if none).
    pub(crate) fn pending(&self) -> &[u8] {
        match self.splices.front() {
            Some(splice) if self.sent == splice.at => &splice.data,
            Some(splice) => &self.buf[self.sent..splice.at],
            None => &self.buf[self.sent..],
        }
    }

    /// All unsent bytes.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.sent + self.splice_len
    }

    /// The unsent bytes in order, as contiguous pieces (none empty).
    pub(crate) fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        let mut from = self.sent;
        let tail = self.splices.back().map_or(self.sent, |splice| splice.at);
        self.splices
            .iter()
            .flat_map(move |splice| {
                let before = &self.buf[from..splice.at];
                from = splice.at;
                [before, &splice.data[..]]
            })
            .chain(core::iter::once(&self.buf[tail..]))
            .filter(|piece| !piece.is_empty())
    }

    /// Records that the first `n` unsent bytes were written.
    pub(crate) fn consume(&mut self, mut n: usize) {
        assert!(n <= self.len(), "consumed more output than was pending");
        while n > 0 {
            match self.splices.front_mut() {
                Some(splice) if self.sent == splice.at => {
                    let k = n.min(splice.data.len());
                    splice.data.advance(k);
                    self.splice_len -= k;
                    n -= k;
                    if splice.data.is_empty() {
                        self.splices.pop_front();
                    }
                }
                front => {
                    let end = front.map_or(self.buf.len(), |splice| splice.at);
                    let k = n.min(end - self.sent);
                    self.sent += k;
                    n -= k;
                }
            }
        }
        self.after_consume();
    }

    /// Empties or drains the buffer once its front is sent.
    fn after_consume(&mut self) {
        if self.splices.is_empty() && self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
        } else if self.sent > DRAIN_AFTER && self.sent * 2 > self.buf.len() {
            self.buf.drain(..self.sent);
            for splice in &mut self.splices {
                splice.at -= self.sent;
            }
            self.sent = 0;
        }
    }

    /// Takes up to `max` bytes of the next piece as owned bytes, and
    /// records them as written: a shared payload's without a copy; encoded
    /// frames copied out of the buffer, unless the whole buffer is
    /// pending and large (then it is handed over, and the next frames start
    /// a new one).
    pub(crate) fn take(&mut self, max: usize) -> Bytes {
        match self.splices.front_mut() {
            Some(splice) if self.sent == splice.at => {
                let k = max.min(splice.data.len());
                let taken = splice.data.split_to(k);
                self.splice_len -= k;
                if splice.data.is_empty() {
                    self.splices.pop_front();
                }
                self.after_consume();
                taken
            }
            front => {
                let end = front.map_or(self.buf.len(), |splice| splice.at);
                let k = max.min(end - self.sent);
                let whole = self.sent == 0 && k == self.buf.len() && self.splices.is_empty();
                if whole && k >= HAND_OVER {
                    self.sent = 0;
                    return Bytes::from(core::mem::take(&mut self.buf));
                }
                let taken = Bytes::copy_from_slice(&self.buf[self.sent..self.sent + k]);
                self.sent += k;
                self.after_consume();
                taken
            }
        }
    }

    /// The buffer's capacity (shared payloads are not ours).
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Takes the buffer out if nothing is pending.
    pub(crate) fn take_buf(&mut self) -> Option<Vec<u8>> {
        (self.len() == 0).then(|| {
            self.sent = 0;
            let mut buf = core::mem::take(&mut self.buf);
            buf.clear();
            buf
        })
    }

    /// Installs `buf` if ours has no capacity and nothing is pending.
    pub(crate) fn give_buf(&mut self, mut buf: Vec<u8>) {
        if self.buf.capacity() == 0 && self.len() == 0 {
            buf.clear();
            self.buf = buf;
            self.sent = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// How a driver takes the output.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Mode {
        /// One piece at a time (`pending`).
        Piece,
        /// Several pieces in one write (`pieces`).
        Vectored,
        /// As owned bytes (`take`).
        Take,
    }

    /// Writes `output` out in writes of at most `step` bytes, as `mode`
    /// says, and returns what was written.
    fn drain(output: &mut Output, step: usize, mode: Mode) -> Vec<u8> {
        let mut written = Vec::new();
        while output.len() > 0 {
            if mode == Mode::Take {
                let before = output.len();
                let taken = output.take(step);
                assert!(!taken.is_empty() && taken.len() <= step);
                assert_eq!(output.len(), before - taken.len());
                written.extend_from_slice(&taken);
                continue;
            }
            let mut pieces = Vec::new();
            if mode == Mode::Vectored {
                for piece in output.pieces().take(3) {
                    pieces.extend_from_slice(piece);
                }
            } else {
                pieces.extend_from_slice(output.pending());
            }
            assert!(!pieces.is_empty(), "pending output must not be empty");
            let n = pieces.len().min(step);
            written.extend_from_slice(&pieces[..n]);
            output.consume(n);
        }
        written
    }

    #[test]
    fn spliced_payloads_come_out_in_order_whatever_the_write_sizes() {
        for step in [1, 2, 3, 7, 100, 10_000, 100_000] {
            for mode in [Mode::Piece, Mode::Vectored, Mode::Take] {
                let mut output = Output::default();
                let mut expected = Vec::new();
                for i in 0..6u8 {
                    // The last is large: `take` hands the buffer over.
                    let len = if i == 5 {
                        3 * HAND_OVER
                    } else {
                        usize::from(i) + 1
                    };
                    let head = vec![i; len];
                    output.buf().extend_from_slice(&head);
                    expected.extend_from_slice(&head);
                    if i % 2 == 0 {
                        let data = Bytes::from(vec![100 + i; 50 * usize::from(i) + 3]);
                        expected.extend_from_slice(&data);
                        output.push_shared(data);
                    }
                }
                assert_eq!(output.len(), expected.len());
                let written = drain(&mut output, step, mode);
                assert_eq!(written, expected, "step {step} {mode:?}");
                assert_eq!(output.len(), 0);
                assert!(output.pending().is_empty());
                // Frames encoded after a hand-over start a new buffer.
                output.buf().extend_from_slice(b"next");
                assert_eq!(drain(&mut output, step, mode), b"next");
            }
        }
    }

    #[test]
    fn draining_the_sent_front_keeps_splice_positions() {
        let mut output = Output::default();
        output.buf().extend_from_slice(&vec![1; 100_000]);
        output.push_shared(Bytes::from_static(b"spliced"));
        output.buf().extend_from_slice(b"tail");
        output.consume(90_000);
        let mut expected = vec![1; 10_000];
        expected.extend_from_slice(b"splicedtail");
        assert_eq!(drain(&mut output, 4096, Mode::Piece), expected);
    }
}
