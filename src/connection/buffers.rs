//! What drivers use beyond the driver loop: reading straight into the
//! connection's receive buffer, and lending buffers between connections.
//! An application never needs these.

use alloc::vec::Vec;
use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};

use super::{Connection, Io};
use crate::message::Received;
use crate::time::Timers;

/// The largest send buffer [`Plumbing::take_buffers`](crate::plumbing::Plumbing::take_buffers) leaves in place.
const KEEP_OUTPUT: usize = 512;

/// The most receive buffer reserved ahead of the bytes of a frame.
pub(super) const MAX_RESERVE_AHEAD: u64 = 16 << 20;

/// The connection's receive buffer, lent to a driver that reads straight
/// into it (see [`Plumbing::read_buffer`](crate::plumbing::Plumbing::read_buffer)).
///
/// It can only be appended to, through [`BufMut`] (tokio's `read_buf`,
/// `put_slice`) or, for a reader that takes `&mut [u8]`, through
/// [`unfilled`](ReadBuffer::unfilled) and [`advance`](ReadBuffer::advance):
/// the bytes already received are out of reach. Bytes appended are input
/// exactly as if passed to [`handle_read`](Connection::handle_read).
#[derive(Debug)]
pub struct ReadBuffer<'a> {
    buf: &'a mut BytesMut,
    timers: &'a mut Timers,
    /// The length when lent: growth past it is input.
    start: usize,
    /// The room asked for (`Connection::read_buffer`'s `size`).
    size: usize,
    /// Zeroed bytes at the end of `buf` lent by `unfilled`, not input yet.
    lent: usize,
}

impl ReadBuffer<'_> {
    /// The room after the received bytes (the `size` asked of
    /// [`read_buffer`](crate::plumbing::Plumbing::read_buffer)), zeroed, for a reader that
    /// fills a `&mut [u8]` (`embedded_io_async::Read`, say). Report how
    /// many bytes it filled with [`advance`](ReadBuffer::advance); bytes
    /// not reported are not input.
    pub fn unfilled(&mut self) -> &mut [u8] {
        self.release();
        let filled = self.buf.len();
        let room = self.size.min(self.buf.capacity() - filled);
        self.buf.resize(filled + room, 0);
        self.lent = room;
        &mut self.buf[filled..]
    }

    /// Records that the reader filled the first `n` bytes of
    /// [`unfilled`](ReadBuffer::unfilled).
    ///
    /// # Panics
    /// If `n` is more than `unfilled` lent: a bug in the driver.
    pub fn advance(&mut self, n: usize) {
        assert!(n <= self.lent, "advanced past the unfilled room");
        let filled = self.buf.len() - self.lent;
        self.buf.truncate(filled + n);
        self.lent = 0;
    }

    /// Takes back the room lent by `unfilled` and not reported: it is not input.
    fn release(&mut self) {
        let filled = self.buf.len() - self.lent;
        self.buf.truncate(filled);
        self.lent = 0;
    }
}

impl Drop for ReadBuffer<'_> {
    fn drop(&mut self) {
        self.release();
        if self.buf.len() > self.start {
            self.timers.heard();
        }
    }
}

// SAFETY: every method forwards to `BytesMut`'s own implementation, which
// upholds the trait's contract; `ReadBuffer` only hides the bytes that are
// already in the buffer, which `BufMut` gives no access to anyway.
unsafe impl BufMut for ReadBuffer<'_> {
    fn remaining_mut(&self) -> usize {
        self.buf.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller promises that the first `cnt` bytes of
        // `chunk_mut` are initialized, which is what `BytesMut::advance_mut`
        // asks of its caller; `chunk_mut` is `BytesMut`'s own.
        unsafe { self.buf.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.release();
        self.buf.chunk_mut()
    }
}

/// Bytes a driver read into a buffer of its own that a connection has not
/// taken yet (see [`Plumbing::poll_event_from`](crate::plumbing::Plumbing::poll_event_from)).
///
/// The connection decodes whole messages where they are, unmasking them
/// in place, and lends them out; what it cannot decode there (a frame cut
/// by the end of the read, a control frame, a fragment) it copies into
/// its own receive buffer, with everything after it.
#[derive(Debug)]
pub struct Unread<'a> {
    rest: &'a mut [u8],
}

impl<'a> Unread<'a> {
    /// The bytes of one read, none taken yet.
    pub fn new(bytes: &'a mut [u8]) -> Unread<'a> {
        Unread { rest: bytes }
    }

    /// How many bytes are not taken yet.
    pub fn len(&self) -> usize {
        self.rest.len()
    }

    /// Whether every byte was taken.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The bytes not taken yet.
    pub(crate) fn rest(&self) -> &[u8] {
        self.rest
    }

    /// Takes `skip` bytes, then the `len` after them, which it returns.
    pub(super) fn take(&mut self, skip: usize, len: usize) -> &'a mut [u8] {
        let rest = core::mem::take(&mut self.rest);
        let (taken, rest) = rest[skip..].split_at_mut(len);
        self.rest = rest;
        taken
    }

    /// Takes every byte left.
    pub(super) fn take_all(&mut self) -> &'a mut [u8] {
        core::mem::take(&mut self.rest)
    }
}

/// A connection's receive and send buffers, empty but with their
/// capacity, on their way from one connection to another (see
/// [`Plumbing::take_buffers`](crate::plumbing::Plumbing::take_buffers)).
#[derive(Debug, Default)]
pub struct Buffers {
    input: BytesMut,
    output: Vec<u8>,
}

impl Buffers {
    /// New buffers with room for `input` received bytes, for a driver
    /// whose pool is empty (the output buffer grows as it is used).
    pub fn with_capacity(input: usize) -> Buffers {
        Buffers {
            input: BytesMut::with_capacity(input),
            output: Vec::new(),
        }
    }

    /// The bytes of memory these buffers hold.
    pub fn capacity(&self) -> usize {
        self.input.capacity() + self.output.capacity()
    }
}

/// The driver's tier of a [`Connection`]: what a driver of many
/// connections uses beyond the loop of the connection's own methods
/// (`handle_read`, `poll_event`, `pending_output`, ...): reading straight
/// into the receive buffer, lending buffers between connections, and the
/// output as pieces or owned bytes, without a copy. An application never
/// needs it; a driver imports it.
pub trait Plumbing {
    /// The receive buffer with room for at least `size` more bytes, for a
    /// driver that reads straight into it (tokio's `read_buf`, say)
    /// instead of reading elsewhere and calling
    /// [`handle_read`](Connection::handle_read): that saves a copy of every
    /// byte received. Once the connection is closed, appended bytes are
    /// dropped at the next [`poll_event`](Connection::poll_event), as
    /// `handle_read` drops them.
    ///
    /// [`read_size_hint`](crate::plumbing::Plumbing::read_size_hint) says how much to ask for.
    fn read_buffer(&mut self, size: usize) -> ReadBuffer<'_>;

    /// The room for the next read as an owned buffer, for a driver whose
    /// reads complete later (io_uring, IOCP): the kernel fills the buffer
    /// while the driver goes on, so it cannot borrow the connection the
    /// way [`read_buffer`](crate::plumbing::Plumbing::read_buffer) does.
    ///
    /// The buffer is empty, with room for at least `size` bytes: the
    /// spare capacity of the connection's own receive buffer, split off.
    /// Hand it back filled (or empty, after an error or end of stream)
    /// with [`handle_read_owned`](crate::plumbing::Plumbing::handle_read_owned), which
    /// joins it to the bytes received before without a copy.
    fn read_buffer_owned(&mut self, size: usize) -> BytesMut;

    /// Feeds the bytes a read put in a buffer from
    /// [`read_buffer_owned`](crate::plumbing::Plumbing::read_buffer_owned): input exactly
    /// as if passed to [`handle_read`](Connection::handle_read). The buffer
    /// rejoins the connection's receive buffer in place when it is the one
    /// lent (any other buffer's bytes are copied), so its capacity serves
    /// the next read. Bytes that arrive after the connection is closed
    /// are dropped.
    fn handle_read_owned(&mut self, data: BytesMut);

    /// Feeds bytes the transport hands over as owned [`Bytes`] (an HTTP/2
    /// or HTTP/3 stream's DATA, which its library read into a buffer of
    /// its own): input exactly as if passed to
    /// [`handle_read`](Connection::handle_read). A server keeps them as
    /// they are while its receive buffer is empty, and a masked payload
    /// whole in them is unmasked as it is copied out, in one pass, where
    /// copying into the receive buffer and unmasking there are two.
    ///
    /// A client's input (never masked) is copied into the receive buffer
    /// at once, as `handle_read` does: a message that kept the transport's
    /// buffer alive would make the transport allocate a new one for each
    /// read (h2's read buffer, under glibc's default allocator, cost a page
    /// fault per 4 KiB received that way).
    fn handle_read_bytes(&mut self, data: Bytes);

    /// The next event, decoded from bytes the driver read into a buffer
    /// of its own: a whole message there is lent out where it lies
    /// ([`Received::Message`]), unmasked in place, with no copy into the
    /// receive buffer and no count to share it; anything else comes as
    /// [`poll_event`](Connection::poll_event) gives it. Call it until it
    /// gives `None`, as `poll_event`: by then every byte of `unread` was
    /// decoded or copied into the connection, and the buffer is the
    /// driver's again.
    ///
    /// Input exactly as if passed to [`handle_read`](Connection::handle_read):
    /// the same events, in the same order, and the same output. Only
    /// while the connection has nothing buffered (no partial frame, no
    /// bytes) is a message decoded in place; a connection in
    /// [streaming](crate::Config::streaming) mode, or a message the
    /// extension transforms, takes the general path.
    ///
    /// [`Received::Message`]: crate::plumbing::Received::Message
    fn poll_event_from<'a>(&mut self, unread: &mut Unread<'a>) -> Option<Received<'a>>;

    /// How many bytes the next read should ask for: `default` between
    /// frames, and exactly what is missing of a frame whose payload is
    /// arriving. A read that stops at the frame's end leaves nothing of the
    /// next frame behind it, so the buffer is empty once the message is
    /// handed out, and the next frame needs no copy to a larger buffer.
    fn read_size_hint(&self, default: usize) -> usize;

    /// The bytes of memory the receive and send buffers hold now, used or not.
    fn buffer_capacity(&self) -> usize;

    /// Takes out the receive and send buffers, with their capacity, if
    /// both are empty and there is capacity to take; the connection goes on
    /// with unallocated ones. With [`give_buffers`](crate::plumbing::Plumbing::give_buffers)
    /// a driver of many connections can pass buffers from connections that
    /// wait to connections that have work, so that waiting connections hold
    /// no buffer memory and busy ones allocate none.
    ///
    /// A send buffer of at most 512 bytes stays: it costs
    /// little, and a connection that another thread sends on (a
    /// broadcaster's writing half, while its reading half waits on its own
    /// thread) would otherwise allocate it again for every message there,
    /// and free it here.
    fn take_buffers(&mut self) -> Option<Buffers>;

    /// Whether the connection has no receive buffer memory (it was taken
    /// with [`take_buffers`](crate::plumbing::Plumbing::take_buffers), or never
    /// allocated): the time to [`give_buffers`](crate::plumbing::Plumbing::give_buffers)
    /// before reading.
    fn needs_buffers(&self) -> bool;

    /// Installs buffers from [`take_buffers`](crate::plumbing::Plumbing::take_buffers)
    /// (of this or another connection) where this connection has none
    /// allocated. Buffers it does not need are dropped.
    fn give_buffers(&mut self, buffers: Buffers);

    /// Releases the receive and send buffers if they are empty, so an idle
    /// connection holds no buffer memory. Call it when the connection goes
    /// quiet; the buffers are allocated again when bytes arrive.
    fn shrink_buffers(&mut self);

    /// The pending output in order, as contiguous pieces (none empty),
    /// for one vectored write. Report what was written with
    /// [`consume_output`](Connection::consume_output), as usual.
    fn pending_output_pieces(&self) -> impl Iterator<Item = &[u8]>;

    /// Payloads that only this connection sends (`send`, `send_owned`)
    /// are copied into the output below `bytes`, and go out as pieces of
    /// their own from there, without a copy (default: 1 KiB; at most
    /// 4 GiB). A driver whose vectored write costs more than a copy
    /// raises it: on a socket, the kernel's `writev` of a header and a
    /// payload costs more than one `send` of both, up to about 16 KiB.
    /// The copy needs output memory, so a connection on a heap counted in
    /// kilobytes keeps the default. A prepared message, which many
    /// connections send, is shared from 1 KiB whatever this says.
    fn copy_below(&mut self, bytes: usize);

    /// Fills `slices` with the pieces of the pending output, in order, for
    /// one vectored write (`write_vectored`); returns how many it filled.
    /// Report what was written with
    /// [`consume_output`](Connection::consume_output), as usual.
    #[cfg(feature = "std")]
    fn pending_output_vectored<'a>(&'a self, slices: &mut [std::io::IoSlice<'a>]) -> usize;

    /// Takes up to `max` bytes of the pending output as owned [`Bytes`]
    /// and records them as written: for a transport that keeps what it is
    /// given until it goes out (an HTTP/2 stream's DATA, a completion-based
    /// runtime's write). A payload the connection holds as `Bytes` (a
    /// received message sent back) comes out without a copy, and so does a
    /// large buffer of encoded frames; small frames are copied. Empty when
    /// nothing is pending.
    fn take_output(&mut self, max: usize) -> Bytes;
}

impl Plumbing for Connection {
    fn read_buffer(&mut self, size: usize) -> ReadBuffer<'_> {
        let io = self.io.get();
        io.spill_held();
        if io.input.len() + size > io.input.capacity() {
            io.input.reserve(size);
        }
        ReadBuffer {
            start: io.input.len(),
            buf: &mut io.input,
            timers: &mut self.timers,
            size,
            lent: 0,
        }
    }

    fn read_buffer_owned(&mut self, size: usize) -> BytesMut {
        let io = self.io.get();
        io.spill_held();
        if io.input.len() + size > io.input.capacity() {
            io.input.reserve(size);
        }
        let filled = io.input.len();
        io.input.split_off(filled)
    }

    fn handle_read_owned(&mut self, data: BytesMut) {
        if matches!(self.state(), crate::State::Closed) {
            return;
        }
        if !data.is_empty() {
            self.timers.heard();
        }
        let io = self.io.get();
        io.spill_held();
        io.input.unsplit(data);
    }

    fn handle_read_bytes(&mut self, data: Bytes) {
        self.hold_input(data);
    }

    #[inline(always)]
    fn poll_event_from<'a>(&mut self, unread: &mut Unread<'a>) -> Option<Received<'a>> {
        self.poll_event_in_place(unread)
    }

    fn read_size_hint(&self, default: usize) -> usize {
        match self.io.peek() {
            Some(Io {
                frame: Some(frame),
                input,
                ..
            }) => {
                let missing = frame.remaining.saturating_sub(input.len() as u64);
                (missing.min(MAX_RESERVE_AHEAD) as usize).max(1)
            }
            _ => default,
        }
    }

    fn buffer_capacity(&self) -> usize {
        self.io
            .peek()
            .map_or(0, |io| io.input.capacity() + io.output.capacity())
    }

    fn take_buffers(&mut self) -> Option<Buffers> {
        let io = self.io.peek_mut()?;
        let idle = io.holds_no_input() && io.output.len() == 0;
        let output_too = io.output.capacity() > KEEP_OUTPUT;
        if idle && io.input.capacity() == 0 {
            // An empty view of the buffer the last message was cut from:
            // it would keep that buffer alive for as long as the
            // connection waits.
            io.input = BytesMut::new();
        }
        let taken = if !idle || (io.input.capacity() == 0 && !output_too) {
            None
        } else {
            let output = match output_too {
                true => io.output.take_buf().expect("nothing is pending"),
                false => Vec::new(),
            };
            Some(Buffers {
                input: core::mem::take(&mut io.input),
                output,
            })
        };
        self.io.free_if_vacant();
        taken
    }

    fn needs_buffers(&self) -> bool {
        self.io.peek().is_none_or(|io| io.input.capacity() == 0)
    }

    fn give_buffers(&mut self, buffers: Buffers) {
        let io = self.io.get();
        if io.input.capacity() == 0 && io.input.is_empty() && io.frame.is_none() {
            io.input = buffers.input;
            io.input.clear();
        }
        io.output.give_buf(buffers.output);
    }

    fn shrink_buffers(&mut self) {
        let Some(io) = self.io.peek_mut() else {
            return;
        };
        if io.holds_no_input() {
            io.input = BytesMut::new();
        }
        drop(io.output.take_buf());
        self.io.free_if_vacant();
    }

    fn pending_output_pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.io.peek().into_iter().flat_map(|io| io.output.pieces())
    }

    fn copy_below(&mut self, bytes: usize) {
        self.copy_below = u32::try_from(bytes).unwrap_or(u32::MAX);
    }

    #[cfg(feature = "std")]
    fn pending_output_vectored<'a>(&'a self, slices: &mut [std::io::IoSlice<'a>]) -> usize {
        let mut filled = 0;
        for (slice, piece) in slices.iter_mut().zip(self.pending_output_pieces()) {
            *slice = std::io::IoSlice::new(piece);
            filled += 1;
        }
        filled
    }

    fn take_output(&mut self, max: usize) -> Bytes {
        match self.io.peek_mut() {
            Some(io) => io.output.take(max),
            None => Bytes::new(),
        }
    }
}
