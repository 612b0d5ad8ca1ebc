//! The stream under a tokio WebSocket: writing the core's output with
//! backpressure, the wakers of the tasks that wait to write, and the end
//! of the stream after the Closed event.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll, Wake, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Time, READ_BUF, WRITE_SLICES};
use crate::driver::Alarm;
use crate::driver::Error;
use crate::plumbing::Plumbing;
use crate::Connection;

/// Which half is polling: each keeps its own waker for write readiness.
#[derive(Clone, Copy)]
pub(super) enum Side {
    Reader = 0,
    Writer = 1,
}

/// Wakes every task waiting for the stream to take more bytes. Both halves
/// may wait on one write; a stream keeps only the last waker it was given,
/// so it is given this one, which wakes both.
#[derive(Debug, Default)]
pub(super) struct WriteWakers {
    wakers: Mutex<[Option<Waker>; 2]>,
}

impl Wake for WriteWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }
}

/// The stream, and the wakers of the tasks waiting to write to it.
#[derive(Debug)]
pub(super) struct Io<S> {
    pub(super) stream: S,
    /// We shut down our sending side after the Closed event.
    pub(super) shut: bool,
    /// Done with the stream: nothing more to write or read.
    pub(super) finished: bool,
    /// Written since the stream was last flushed: a stream that buffers
    /// (TLS) may still hold it.
    pub(super) unflushed: bool,
    /// The shared write waker, made the first time a write has to wait:
    /// until then no task waits to write, and a write that the stream
    /// takes at once needs no waker. Most connections never wait, and an
    /// idle one keeps 64 bytes less (the README's echo, `bench memory`).
    pub(super) write_wakers: Option<SharedWaker>,
}

/// The wakers of the tasks waiting to write, and the one waker given to
/// the stream that wakes them all.
#[derive(Debug)]
pub(super) struct SharedWaker {
    wakers: Arc<WriteWakers>,
    waker: Waker,
}

/// The waker a write or flush is polled with: the shared one, or, before
/// any task has waited to write, none (there is no task to wake: a write
/// that cannot go on stores its task's waker, which makes the shared one,
/// and is tried again with it, see [`Io::poll_write_some`]).
fn write_waker(shared: &Option<SharedWaker>) -> &Waker {
    shared
        .as_ref()
        .map_or(Waker::noop(), |shared| &shared.waker)
}

impl SharedWaker {
    fn new() -> Self {
        let wakers = Arc::new(WriteWakers::default());
        SharedWaker {
            waker: Waker::from(wakers.clone()),
            wakers,
        }
    }
}

/// The end of the stream, after the Closed event.
impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    /// After the Closed event: write the last output, shut down our side
    /// when the core says it is ours to close, and read (discarding) until
    /// the core is finished: the peer ended the stream, or the closing
    /// deadline passed. So nothing the peer sent resets the connection
    /// before it has read our Close frame.
    ///
    /// Never inlined: its 32 KiB read buffer on the stack would otherwise
    /// sit in the frame of every `recv` (probed page by page on each call,
    /// for every message), where it is needed once, at the end.
    #[inline(never)]
    pub(super) fn poll_finish(
        &mut self,
        conn: &mut Connection,
        alarm: &mut Alarm<Time>,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<()> {
        while !self.finished {
            alarm.poll(conn, cx);
            if conn.is_finished() {
                if !self.shut {
                    let _ = ready!(Pin::new(&mut self.stream).poll_shutdown(cx));
                    self.shut = true;
                }
                self.finished = true;
                break;
            }
            if ready!(self.poll_flush_output(conn, cx, side)).is_err() {
                self.finished = true;
                break;
            }
            if conn.should_close_transport() && !self.shut {
                let _ = ready!(Pin::new(&mut self.stream).poll_shutdown(cx));
                self.shut = true;
            }
            let mut stack = [MaybeUninit::<u8>::uninit(); READ_BUF];
            let mut read = ReadBuf::uninit(&mut stack);
            match ready!(Pin::new(&mut self.stream).poll_read(cx, &mut read)) {
                Ok(()) if !read.filled().is_empty() => {}
                // End of stream, or a broken one: the peer is done.
                _ => conn.handle_eof(),
            }
        }
        Poll::Ready(())
    }
}

/// The writing side: output to the stream, with backpressure.
impl<S: AsyncWrite + Unpin> Io<S> {
    /// One write of the pending output, polled with the shared write
    /// waker (see [`WriteWakers`]): the stream keeps that one waker.
    pub(super) fn write_once(&mut self, conn: &Connection) -> Poll<io::Result<usize>> {
        let mut cx = Context::from_waker(write_waker(&self.write_wakers));
        let stream = Pin::new(&mut self.stream);
        let one_piece = conn.pending_output().len() == conn.pending_output_len();
        let polled = if stream.is_write_vectored() && !one_piece {
            // Frame headers and the payloads sent without a copy, in one
            // system call.
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let n = conn.pending_output_vectored(&mut slices);
            stream.poll_write_vectored(&mut cx, &slices[..n])
        } else {
            stream.poll_write(&mut cx, conn.pending_output())
        };
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.unflushed = true;
        }
        polled
    }

    /// Stores `cx`'s waker for `side`, to be woken when the stream can
    /// take more (unless the stored one would wake the same task).
    pub(super) fn register(&mut self, cx: &Context<'_>, side: Side) {
        let shared = self.write_wakers.get_or_insert_with(SharedWaker::new);
        let mut wakers = shared
            .wakers
            .wakers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let slot = &mut wakers[side as usize];
        if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *slot = Some(cx.waker().clone());
        }
    }

    /// One flush of the stream, if anything was written since the last,
    /// polled with the shared write waker.
    pub(super) fn flush_once(&mut self) -> Poll<io::Result<()>> {
        if !self.unflushed {
            return Poll::Ready(Ok(()));
        }
        let mut cx = Context::from_waker(write_waker(&self.write_wakers));
        let polled = Pin::new(&mut self.stream).poll_flush(&mut cx);
        if let Poll::Ready(Ok(())) = polled {
            self.unflushed = false;
        }
        polled
    }

    /// Flushes the stream; the task (`cx`) is woken when it can go on.
    pub(super) fn poll_flush_stream(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<io::Result<()>> {
        if let Poll::Ready(result) = self.flush_once() {
            return Poll::Ready(result);
        }
        self.register(cx, side);
        self.flush_once()
    }

    /// Writes and flushes everything pending if the stream takes it now:
    /// a send's fast path, which needs no task context; false if the
    /// caller must wait ([`Io::poll_flush_output`]).
    pub(super) fn flush_now(&mut self, conn: &mut Connection) -> bool {
        self.write_now(conn) && matches!(self.flush_once(), Poll::Ready(Ok(())))
    }

    /// One write; when the stream cannot take anything now, the task
    /// (`cx`) is woken when it can.
    ///
    /// The task's waker is stored only then, not on every write: the
    /// write is tried first, and if the stream is full the waker is
    /// stored and the write tried once more, so readiness that came in
    /// between is not missed (the stream holds the shared waker, which
    /// wakes what is stored when it fires).
    pub(super) fn poll_write_some(
        &mut self,
        conn: &Connection,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<io::Result<usize>> {
        if let Poll::Ready(result) = self.write_once(conn) {
            return Poll::Ready(result);
        }
        self.register(cx, side);
        self.write_once(conn)
    }

    /// Writes what the stream takes now, without waiting and without
    /// registering a task; true if nothing is left to write.
    pub(super) fn write_now(&mut self, conn: &mut Connection) -> bool {
        while conn.pending_output_len() > 0 {
            match self.write_once(conn) {
                Poll::Ready(Ok(n)) if n > 0 => conn.consume_output(n),
                _ => return false,
            }
        }
        true
    }

    /// Writes until at most `keep` bytes are unsent.
    pub(super) fn poll_write_down_to(
        &mut self,
        conn: &mut Connection,
        cx: &mut Context<'_>,
        side: Side,
        keep: usize,
    ) -> Poll<Result<(), Error>> {
        while conn.pending_output_len() > keep {
            match ready!(self.poll_write_some(conn, cx, side)) {
                Ok(0) => return Poll::Ready(Err(Error::Io(io::ErrorKind::WriteZero.into()))),
                Ok(n) => conn.consume_output(n),
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
        Poll::Ready(Ok(()))
    }

    pub(super) fn poll_flush_output(
        &mut self,
        conn: &mut Connection,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<Result<(), Error>> {
        ready!(self.poll_write_down_to(conn, cx, side, 0))?;
        ready!(self.poll_flush_stream(cx, side))?;
        Poll::Ready(Ok(()))
    }
}
