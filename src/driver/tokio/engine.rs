//! The state a WebSocket shares between its halves, and the poll-based
//! engine that drives it: reading into the core, the core's timers, the
//! events handed out; the writing is stream.rs's.

use alloc::boxed::Box;
use alloc::string::String;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::stream::{Io, Side};
use super::{Time, HIGH_WATER, READ_BUF};
use crate::driver::policy::{ended, lend_read, offer as policy_offer, Held, GATHER_ABOVE};
use crate::driver::pool;
use crate::driver::pool::COPY_BELOW;
use crate::driver::{received, Alarm, Clock, Error, Timer};
use crate::plumbing::Plumbing;
use crate::socket::{Offered, WhenFull};
use crate::{
    CloseCode, Connection, Event, Message, MessageRef, PreparedMessage, State, UsageError,
};

#[derive(Debug)]
pub(super) struct Inner<S> {
    pub(super) io: Io<S>,
    pub(super) held: Held,
    /// The Closed event was handed out, so the `Stream` impls end.
    pub(super) reported: bool,
    pub(super) alarm: Alarm<Time>,
    /// The task waiting for input, to wake when output is queued from
    /// elsewhere ([`WriteHalf::offer`]) so that it writes it.
    pub(super) reader: Option<Waker>,
}

impl Timer for Time {
    type Sleep = Pin<Box<Sleep>>;

    fn sleep_until(at: Self) -> Self::Sleep {
        Box::pin(tokio::time::sleep_until(at))
    }

    fn reset(sleep: &mut Self::Sleep, at: Self) -> bool {
        sleep.as_mut().reset(at);
        true
    }
}

/// The reading side: input, time, events, and the end of the transport.
impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    pub(super) fn new(stream: S, mut conn: Connection, protocol: Option<String>) -> Self {
        conn.copy_below(COPY_BELOW);
        Inner {
            io: Io {
                stream,
                shut: false,
                finished: false,
                unflushed: false,
                write_wakers: None,
            },
            held: Held::new(conn, protocol),
            reported: false,
            alarm: Alarm::default(),
            reader: None,
        }
    }

    /// Wakes the task waiting for input, if any, to write what was queued.
    pub(super) fn wake_reader(&mut self) {
        if let Some(waker) = self.reader.take() {
            waker.wake();
        }
    }

    /// The writing half's `offer_many`: the shared policy, then what the
    /// stream takes now is written here (no task switch), the rest by the
    /// task that waits for input, as the peer reads.
    pub(super) fn offer_and_write(
        &mut self,
        messages: &[PreparedMessage],
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, Error> {
        pool::lend(&mut self.held.conn);
        // Output already waiting: the reading task waits to write it (it
        // registered for the stream's readiness), so this only queues.
        let behind = self.held.conn.pending_output_len();
        let outcome = policy_offer(&mut self.held.conn, messages, backlog, when_full)?;
        if outcome == Offered::Closed || (behind > 0 && outcome != Offered::Closing) {
            return Ok(outcome);
        }
        if !self.write_now_unconstrained() {
            self.wake_reader();
        }
        Ok(outcome)
    }

    /// [`Io::write_now`] outside tokio's cooperative budget. `offer` is
    /// called from a loop that never yields (one publisher offering to
    /// thousands of connections), so the budget cannot make it yield: once
    /// spent (after 128 writes in a task's turn), every write would fail
    /// at once and be handed to the connection's reading task, a wake-up
    /// and a second turn for every connection after the 128th.
    fn write_now_unconstrained(&mut self) -> bool {
        let conn = &mut self.held.conn;
        let io = &mut self.io;
        let write = std::future::poll_fn(|_| Poll::Ready(io.write_now(conn)));
        let mut write = std::pin::pin!(tokio::task::coop::unconstrained(write));
        // Always ready: the write above never waits.
        let mut cx = Context::from_waker(Waker::noop());
        matches!(write.as_mut().poll(&mut cx), Poll::Ready(true))
    }

    /// The connection, with buffers to queue output into.
    pub(super) fn sender(&mut self) -> &mut Connection {
        pool::lend(&mut self.held.conn);
        &mut self.held.conn
    }

    #[inline(always)]
    pub(super) fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<Result<Option<Message>, Error>> {
        loop {
            if let Some(done) = received(ready!(self.poll_event(cx, side))?) {
                return Poll::Ready(done);
            }
        }
    }

    pub(super) fn poll_next_item(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<Option<Result<Message, Error>>> {
        if self.reported {
            return Poll::Ready(None);
        }
        let item = ready!(self.poll_message(cx, side)).transpose();
        if self.held.closed.is_some() {
            self.reported = true;
        }
        Poll::Ready(item)
    }

    /// Nothing to read: ready if the loop must turn anyway (the time: what
    /// the timers queue, a Ping or a Close, or end is handled on the next
    /// turn; or a shutdown signal, heeded there); otherwise the task waits
    /// for the peer, having lent the buffers to the thread's other
    /// connections until bytes arrive.
    #[inline(always)]
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.alarm.poll(&mut self.held.conn, cx) || self.held.shutdown.poll(cx).is_ready() {
            return Poll::Ready(());
        }
        pool::reclaim(&mut self.held.conn);
        self.reader = Some(cx.waker().clone());
        Poll::Pending
    }

    /// One read straight into the connection's receive buffer (no copy
    /// through a buffer of our own), and what the core must hear of it:
    /// the end of the stream, or, if it keeps a deadline, the time the
    /// bytes came (silence is measured from the last bytes).
    #[inline(always)]
    fn poll_read_into_conn(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, Error>> {
        let size = self.held.conn.read_size_hint(READ_BUF);
        let polled = {
            let mut buffer = self.held.conn.read_buffer(size);
            let read = self.io.stream.read_buf(&mut buffer);
            std::pin::pin!(read).poll(cx)
        };
        let n = ready!(polled)?;
        if n == 0 {
            self.held.conn.handle_eof();
        } else if self.held.conn.poll_timeout().is_some() {
            self.held.conn.handle_timeout(Time::timestamp());
        }
        Poll::Ready(Ok(n))
    }

    #[inline(always)]
    pub(super) fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<Result<Event, Error>> {
        loop {
            if self.held.closed.is_some() {
                ready!(self
                    .io
                    .poll_finish(&mut self.held.conn, &mut self.alarm, cx, side));
                let closed = self.held.closed.clone().expect("checked above");
                return Poll::Ready(Ok(Event::Closed(closed)));
            }
            self.held.heed_shutdown();
            if let Some(event) = self.held.conn.poll_event() {
                if let Event::Closed(closed) = event {
                    self.held.closed = Some(closed);
                    continue;
                }
                // Any Pong this queued goes out with the other output
                // when we next wait for input (below), so the answers to a
                // burst of messages leave in one write.
                return Poll::Ready(Ok(event));
            }
            if let Poll::Ready(Err(e)) = self.poll_flush_output(cx, side) {
                return Poll::Ready(Err(e));
            }
            pool::lend(&mut self.held.conn);
            match self.poll_read_into_conn(cx) {
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => ready!(self.poll_idle(cx)),
            }
        }
    }
}

/// [`Driver::for_each_message`](crate::Driver::for_each_message): the
/// messages lent where they were read.
impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    /// Runs `answer` on every message until the connection ends. Each read
    /// lands in the thread's scratch buffer ([`pool::with_scratch`]), and
    /// the core decodes its messages there and lends them out
    /// ([`Plumbing::poll_event_from`]); what it cannot decode there (a
    /// frame cut by the end of the read, a fragment) it keeps, and it
    /// comes out of [`Connection::poll_event`] once whole.
    pub(super) fn poll_each<F>(
        &mut self,
        cx: &mut Context<'_>,
        answer: &mut F,
    ) -> Poll<Result<(), Error>>
    where
        F: FnMut(MessageRef<'_>, &mut Connection) -> Result<(), UsageError>,
    {
        loop {
            if self.held.closed.is_some() {
                ready!(self
                    .io
                    .poll_finish(&mut self.held.conn, &mut self.alarm, cx, Side::Reader));
                let closed = self.held.closed.as_deref().expect("checked above");
                return Poll::Ready(ended(closed));
            }
            self.held.heed_shutdown();
            if let Some(event) = self.held.conn.poll_event() {
                if let Err(e) = self.held.lend(event, answer) {
                    return Poll::Ready(Err(e.into()));
                }
                continue;
            }
            // What the answers queued goes out before we wait for the
            // peer; more than `HIGH_WATER` of it, before we read on.
            match self.poll_flush_output(cx, Side::Reader) {
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending if self.held.conn.pending_output_len() > HIGH_WATER => {
                    return Poll::Pending
                }
                _ => {}
            }
            pool::lend(&mut self.held.conn);
            // A large frame on its way is gathered in the connection: its
            // bytes are read straight there, not lent, which would copy
            // them there.
            let polled = if self.held.conn.read_size_hint(0) > GATHER_ABOVE {
                self.poll_read_into_conn(cx).map_ok(drop)
            } else {
                self.poll_read_lent(cx, answer)
            };
            match polled {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => ready!(self.poll_idle(cx)),
            }
        }
    }

    /// One read into the thread's scratch buffer, its messages lent to
    /// `answer` where they lie.
    fn poll_read_lent<F>(&mut self, cx: &mut Context<'_>, answer: &mut F) -> Poll<Result<(), Error>>
    where
        F: FnMut(MessageRef<'_>, &mut Connection) -> Result<(), UsageError>,
    {
        pool::with_scratch(READ_BUF, |scratch| {
            let mut read = ReadBuf::new(scratch);
            let n = match Pin::new(&mut self.io.stream).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => read.filled().len(),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::from(e))),
                Poll::Pending => return Poll::Pending,
            };
            if n == 0 {
                self.held.conn.handle_eof();
                return Poll::Ready(Ok(()));
            }
            let held = &mut self.held;
            let read = &mut scratch[..n];
            let lent = lend_read(
                &mut held.conn,
                &mut held.closed,
                read,
                Time::timestamp,
                answer,
            );
            Poll::Ready(lent.map_err(Error::from))
        })
    }
}

/// What the `Sink` impls and the writing calls need.
impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    pub(super) fn poll_flush_output(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<Result<(), Error>> {
        self.io.poll_flush_output(&mut self.held.conn, cx, side)
    }

    pub(super) fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<Result<(), Error>> {
        if !self.held.conn.can_send() {
            return Poll::Ready(Err(Error::Usage(crate::UsageError::Closed)));
        }
        ready!(self
            .io
            .poll_write_down_to(&mut self.held.conn, cx, side, HIGH_WATER - 1))?;
        Poll::Ready(Ok(()))
    }

    pub(super) fn poll_close_sink(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<Result<(), Error>> {
        if self.held.conn.state() == State::Open {
            self.held.conn.close(CloseCode::NORMAL, "")?;
        }
        self.poll_flush_output(cx, side)
    }
}
