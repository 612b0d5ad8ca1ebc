//! Buffers of connections that wait for their peer, kept per thread for
//! the next connection that has work: a waiting connection holds no
//! buffer memory, and steady traffic allocates none.

use alloc::vec::Vec;
use std::cell::{Cell, RefCell};
use std::thread_local;

use crate::plumbing::Buffers;
use crate::plumbing::Plumbing;

/// Payloads under this are copied into the output (`Plumbing::copy_below`)
/// by the drivers that write to a socket (tokio, mio): one `send` of a
/// header and a copied payload costs less than a `writev` of the two up
/// to about here (the pipelined 1 KiB echo on 16 connections through
/// tokio: 0.96M msgs/s sharing from 1 KiB, 1.11M copying up to 16 KiB),
/// and the output buffers come back to this pool when a connection is
/// idle.
pub(crate) const COPY_BELOW: usize = 16 * 1024;

/// The most buffer memory kept per thread.
const MAX_BYTES: usize = 32 << 20;
/// Larger sets (left by a big message) are freed, not kept.
const MAX_KEPT: usize = 256 * 1024;

#[derive(Default)]
struct Pool {
    sets: Vec<Buffers>,
    bytes: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
    /// The thread's buffer for reads decoded where they land
    /// ([`with_scratch`]).
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Lends `f` this thread's read buffer, `len` bytes long (zeroed when
/// first made, then as the last read left it): a driver that decodes
/// messages where they were read and lends them out
/// ([`Driver::for_each_message`](crate::Driver::for_each_message)) reads
/// into it, so that no connection holds a buffer for it. A call made
/// while another has it (from inside `f`) gets a buffer of its own.
#[cfg(feature = "tokio")]
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut buf = SCRATCH.try_with(Cell::take).unwrap_or_default();
    if buf.len() < len {
        buf.resize(len, 0);
    }
    let result = f(&mut buf[..len]);
    // During thread teardown the slot may be gone: then just free.
    let _ = SCRATCH.try_with(|slot| slot.set(buf));
    result
}

fn put(buffers: Buffers) {
    let size = buffers.capacity();
    if size <= MAX_KEPT {
        // During thread teardown the pool may be gone: then just free.
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.bytes + size <= MAX_BYTES {
                pool.bytes += size;
                pool.sets.push(buffers);
            }
        });
    }
}

/// Takes `conn`'s buffers into the pool if it is idle (nothing received
/// waits to be decoded, nothing to be written): a connection that waits
/// for its peer holds no buffer memory.
pub(crate) fn reclaim(conn: &mut crate::Connection) {
    if let Some(buffers) = conn.take_buffers() {
        put(buffers);
    }
}

/// Takes `conn`'s buffers into the pool, as [`reclaim`] does, and frees
/// a small send buffer that `take_buffers` leaves in place: for a driver
/// whose connections are all written on this thread (the mio server),
/// so that a waiting connection holds no buffer at all.
#[cfg(feature = "mio")]
pub(crate) fn release(conn: &mut crate::Connection) {
    reclaim(conn);
    conn.shrink_buffers();
}

/// Gives `conn` pooled buffers if it has none.
pub(crate) fn lend(conn: &mut crate::Connection) {
    if conn.needs_buffers() {
        if let Some(buffers) = take() {
            conn.give_buffers(buffers);
        }
    }
}

/// Gives `conn` pooled buffers if it has none, or new ones with room
/// for `input` bytes if the pool has none either: a driver that copies
/// its reads in (`handle_read`) then copies into room that goes back to
/// the pool, rather than into an allocation made to the read's size.
#[cfg(feature = "mio")]
pub(crate) fn lend_or_new(conn: &mut crate::Connection, input: usize) {
    lend(conn);
    if conn.needs_buffers() {
        conn.give_buffers(Buffers::with_capacity(input));
    }
}

fn take() -> Option<Buffers> {
    POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        let buffers = pool.sets.pop()?;
        pool.bytes -= buffers.capacity();
        Some(buffers)
    })
    .ok()
    .flatten()
}
