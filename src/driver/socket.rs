//! The async driver loop, written once: a [`WebSocket`] over any
//! [`Transport`], on any [`Clock`].
//!
//! A driver is a transport and its handshake entry points. The loop here
//! does the rest for all of them: it keeps the state around the core (the
//! agreed subprotocol, how the connection ended), reads the transport into
//! the core and hands out its events, writes the core's output as the
//! [output rule](crate::socket#when-output-is-written) says, races every
//! read and write against the core's next deadline and tells the core the
//! time, and runs the end of the connection (the last output, our end of
//! the transport, the peer's end). The embedded, compio (io_uring) and
//! HTTP/2 drivers are this type over their transports; your own transport
//! (a QUIC stream, a test pipe) can be too.
//!
//! ```
//! # async fn run<T: rfc6455::socket::Transport, C: rfc6455::socket::Clock>(
//! #     mut ws: rfc6455::socket::WebSocket<T, C>,
//! # ) -> Result<(), T::Error> {
//! use rfc6455::Driver;
//!
//! // Works the same over every driver: generic over the transport.
//! while let Some(message) = ws.recv().await? {
//!     ws.queue(&message).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! # When output is written
//!
//! One rule for every driver. A command (`send_*`, `ping`, `close`,
//! `flush`) writes everything queued before it returns. `queue_*` and
//! `offer*` only queue (`queue_*` writes once more than [`HIGH_WATER`]
//! bytes wait; the writing half of a split tokio WebSocket, whose task is
//! not the reader's, also writes at once what the stream takes). `recv` hands out an event without writing; before it
//! waits for the peer it writes everything queued: the Pongs and Close
//! replies the core made, and what `queue` left. So a loop that answers
//! each message with `queue` writes the answers to a burst of messages at
//! once, and still answers a lone message at once. The `Closed` event
//! comes after the last output was written and the transport's end was
//! seen (or the core's closing deadline passed).
//!
//! # Two tasks
//!
//! With `std`, `WebSocket::split` gives a `ReadHalf` and a `WriteHalf`.
//! The halves share the WebSocket and take turns: the reading half has it
//! while it reads, and steps aside as soon as the writing half asks for it
//! (`WriteHalf::lock`, which lends the whole WebSocket for any command) and the reading half is only waiting for the peer. The
//! reading half answers Pings and the peer's Close on its own.
//!
//! ```
//! # #[cfg(feature = "std")]
//! # mod example {
//! use rfc6455::socket::{Clock, ReadHalf, Transport, WriteHalf};
//! use rfc6455::{CloseCode, Driver};
//!
//! /// One task: everything the peer sends.
//! async fn reading<T: Transport, C: Clock>(mut read: ReadHalf<T, C>) -> Result<(), T::Error> {
//!     while let Some(message) = read.recv().await? {
//!         println!("{message:?}");
//!     }
//!     Ok(())
//! }
//!
//! /// Another task: what we send, whenever we like.
//! async fn writing<T: Transport, C: Clock>(write: WriteHalf<T, C>) -> Result<(), T::Error> {
//!     write.lock().await.send_text("hello").await?;
//!     write.lock().await.close(CloseCode::NORMAL, "bye").await
//! }
//! // let (read, write) = ws.split(); then run both, as two tasks or joined.
//! # }
//! ```
//!
//! With the feature `futures`, the halves are a `Stream` of messages
//! (`ReadHalf::into_stream`) and a `Sink` of them
//! (`WriteHalf::into_sink`), and `WebSocket::into_stream_sink` is one
//! value that is both, for one task.

use alloc::string::String;
use core::future::{pending, poll_fn, Future};
use core::pin::{pin, Pin};
use core::task::Poll;

use super::api::holds;
pub use super::api::Driver;
#[cfg(any(feature = "http2", feature = "http3"))]
pub use super::extended::{Incoming, Respond};
#[cfg(feature = "std")]
pub use super::halves::{Locked, ReadHalf, WriteHalf};
use super::policy::{ended, lend_read, next_event, Held, Next, GATHER_ABOVE};
pub use super::policy::{Offered, WhenFull, HIGH_WATER};
use crate::plumbing::Plumbing;
use crate::{Connection, Event, MessageRef, ProtocolError, Timestamp, UsageError};

/// The time as the core counts it, and a way to wait for a deadline.
///
/// `now` must never go backwards. It is read after every read from the
/// transport and whenever a deadline of the core passes.
#[allow(async_fn_in_trait)] // Futures are polled where they are made: no Send needed.
pub trait Clock {
    /// The time now, since an epoch of your choosing (boot, say).
    fn now(&self) -> Timestamp;
    /// Completes at (or after) `deadline`, on the same clock as `now`.
    async fn sleep_until(&self, deadline: Timestamp);
}

/// What a driver gives the loop: a way to move bytes.
///
/// `read` and `write` race the core's deadline: when the deadline comes
/// first, their future is dropped, and called again later. So a dropped
/// call must lose nothing: bytes it read are in the connection or still in
/// the transport, bytes it took from the connection are still on their way
/// (a completion-based transport keeps its operation in flight).
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// The error a [`WebSocket`] on this transport reports: the
    /// transport's own, the caller's misuse, the peer's fault.
    type Error: From<UsageError> + From<ProtocolError> + core::fmt::Debug + core::fmt::Display;

    /// Reads once into `conn`: what arrived
    /// ([`handle_read`](Connection::handle_read)), or the end of the
    /// transport ([`handle_eof`](Connection::handle_eof)). After the end,
    /// it may never complete.
    async fn read(&mut self, conn: &mut Connection) -> Result<(), Self::Error>;

    /// Reads once, as [`read`](Transport::read) does; with `lend`, a
    /// transport that reads into a buffer of its own hands what arrived
    /// to `lend` (with the connection) to decode where it lies
    /// ([`Plumbing::poll_event_from`](crate::plumbing::Plumbing::poll_event_from)),
    /// and gives back what `lend` returned: what
    /// [`for_each_message`](Driver::for_each_message) reads with. By
    /// default it reads into the connection as `read` does and does not
    /// call `lend` (`Ok(None)`): the messages then come out of the
    /// connection's [`poll_event`](Connection::poll_event).
    async fn read_lent<L, R>(
        &mut self,
        conn: &mut Connection,
        lend: Option<L>,
    ) -> Result<Option<R>, Self::Error>
    where
        L: FnOnce(&mut Connection, &mut [u8]) -> R,
    {
        drop(lend);
        self.read(conn).await.map(|()| None)
    }

    /// Writes all of `conn`'s pending output
    /// ([`consume_output`](Connection::consume_output) or
    /// [`take_output`](crate::plumbing::Plumbing::take_output) as it goes) and flushes
    /// it; completes at once when there is nothing to write.
    async fn write(&mut self, conn: &mut Connection) -> Result<(), Self::Error>;

    /// Ends our sending side after the closing handshake (TCP's FIN,
    /// HTTP/2's `END_STREAM`), so the peer reads the end after our last
    /// frame. `false` if the transport cannot end one side alone: the loop
    /// then stops there, and its owner closes it.
    async fn shutdown(&mut self) -> bool;

    /// The core gave up on the unsent output (its closing deadline
    /// passed): drop it, and whatever is in flight (HTTP/2 resets the
    /// stream). By default nothing.
    fn abandon(&mut self) {}
}

/// `work`, unless the core's `deadline` comes first (`None`).
pub(crate) async fn race<F: Future, C: Clock>(
    work: F,
    clock: &C,
    deadline: Option<Timestamp>,
) -> Option<F::Output> {
    race_pinned(pin!(work), clock, deadline).await
}

/// [`race`] over a future the caller pinned. Each layer of async fns that
/// takes a future by value keeps it twice in its state (as the argument,
/// and where it is pinned), and these states are the driver's memory per
/// connection (on a microcontroller, its stack): the loop's own reads and
/// writes are pinned once, where they are made, and raced by reference.
pub(crate) async fn race_pinned<F: Future, C: Clock>(
    mut work: Pin<&mut F>,
    clock: &C,
    deadline: Option<Timestamp>,
) -> Option<F::Output> {
    let mut alarm = pin!(alarm(clock, deadline));
    poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        alarm.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// Ready at `deadline` on `clock`; never without one.
async fn alarm<C: Clock>(clock: &C, deadline: Option<Timestamp>) {
    match deadline {
        Some(deadline) => clock.sleep_until(deadline).await,
        None => core::future::pending().await,
    }
}

/// The `answer` of a [`WebSocket::fill`] that lends nothing (`recv`).
type NoAnswer = fn(MessageRef<'_>, &mut Connection) -> Result<(), UsageError>;

/// What ended a wait for the peer in [`WebSocket::fill`].
enum Woken<R> {
    /// The read finished.
    Read(R),
    /// The core's deadline or the shutdown signal came first.
    Turn,
    /// The caller's interrupt came first.
    Interrupted,
}

/// A WebSocket over a [`Transport`], on a [`Clock`].
///
/// Its commands and events are [`Driver`]'s (`use rfc6455::Driver;`):
/// [`recv`](Driver::recv) for messages, [`recv_event`](Driver::recv_event)
/// for every event; `send_*` write before they return, `queue_*` and `offer*` only queue
/// (see [when output is written](crate::socket#when-output-is-written)).
#[derive(Debug)]
pub struct WebSocket<T, C> {
    transport: T,
    clock: C,
    held: Held,
    /// Our side of the transport was ended.
    shut: bool,
}

impl<T: Transport, C: Clock> WebSocket<T, C> {
    /// A WebSocket over `transport`, on which the handshake that made
    /// `conn` already happened. The connection's timers run from now.
    pub fn new(transport: T, clock: C, conn: Connection) -> Self {
        Self::with_protocol(transport, clock, conn, None)
    }

    /// A WebSocket after a handshake that agreed on `protocol`; the
    /// connection's timers run from now.
    pub(crate) fn with_protocol(
        transport: T,
        clock: C,
        mut conn: Connection,
        protocol: Option<String>,
    ) -> Self {
        conn.handle_timeout(clock.now());
        WebSocket {
            transport,
            clock,
            held: Held::new(conn, protocol),
            shut: false,
        }
    }

    /// Reads once from the transport, or waits until the core's deadline
    /// or a shutdown signal; then tells the core the time, if it keeps a
    /// deadline (silence is measured from the last bytes).
    ///
    /// With `answer` (`for_each_message`), a transport that reads into a
    /// buffer of its own lends the read's messages to it where they lie.
    async fn fill<I: Future<Output = ()>, F>(
        &mut self,
        interrupt: Pin<&mut I>,
        answer: Option<&mut F>,
    ) -> Result<bool, T::Error>
    where
        F: FnMut(MessageRef<'_>, &mut Connection) -> Result<(), UsageError>,
    {
        let deadline = self.held.conn.poll_timeout();
        // The read, unless the deadline or the signal comes first (then
        // the loop turns: the core is told the time, the signal heeded),
        // or the caller's interrupt (then nothing was read). One poll over
        // the four, each pinned once here (see `race_pinned`).
        let woken = {
            let clock = &self.clock;
            let closed = &mut self.held.closed;
            // A large frame on its way is gathered in the connection: its
            // bytes are read straight there, not lent, which would copy
            // them there.
            let arriving = self.held.conn.read_size_hint(0) > GATHER_ABOVE;
            let lend = answer.filter(|_| !arriving).map(|answer| {
                |conn: &mut Connection, read: &mut [u8]| {
                    lend_read(conn, closed, read, || clock.now(), answer)
                }
            });
            let mut read = pin!(self.transport.read_lent(&mut self.held.conn, lend));
            let mut alarm = pin!(alarm(clock, deadline));
            let shutdown = &mut self.held.shutdown;
            let mut interrupt = interrupt;
            poll_fn(|cx| {
                if let Poll::Ready(result) = read.as_mut().poll(cx) {
                    return Poll::Ready(Woken::Read(result));
                }
                if alarm.as_mut().poll(cx).is_ready() || shutdown.poll(cx).is_ready() {
                    return Poll::Ready(Woken::Turn);
                }
                match interrupt.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Woken::Interrupted),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await
        };
        match woken {
            Woken::Interrupted => return Ok(false),
            Woken::Read(result) => {
                if let Some(Err(e)) = result? {
                    return Err(e.into());
                }
            }
            Woken::Turn => {}
        }
        self.held.heed_shutdown();
        if self.held.conn.poll_timeout().is_some() {
            self.held.conn.handle_timeout(self.clock.now());
        }
        Ok(true)
    }

    /// The next event, unless `interrupt` comes while the loop waits for
    /// the peer: `None` then, and nothing is lost (the read that was
    /// dropped took no bytes); the next call goes on. What the split
    /// halves' reading half runs, to step aside for the writing half.
    pub(crate) async fn recv_event_unless<I: Future<Output = ()>>(
        &mut self,
        interrupt: I,
    ) -> Option<Result<Event, T::Error>> {
        let mut interrupt = pin!(interrupt);
        loop {
            match next_event(&mut self.held) {
                Next::Event(event) => return Some(Ok(event)),
                Next::End(closed) => {
                    self.finish().await;
                    return Some(Ok(closed));
                }
                Next::Wait => {
                    if let Err(e) = self.flush().await {
                        return Some(Err(e));
                    }
                    match self.fill(interrupt.as_mut(), None::<&mut NoAnswer>).await {
                        Ok(true) => {}
                        Ok(false) => return None,
                        Err(e) => return Some(Err(e)),
                    }
                }
            }
        }
    }

    /// After the Closed event: write the last output, end our side when
    /// the core says the transport is ours to close, and read (discarding)
    /// until the core is finished: the peer ended the transport, or the
    /// closing deadline passed. So nothing the peer still sends resets the
    /// transport before the peer has read our Close frame.
    async fn finish(&mut self) {
        if self.flush().await.is_ok() {
            while !self.held.conn.is_finished() {
                if self.held.conn.should_close_transport() && !self.shut {
                    self.shut = true;
                    if !self.transport.shutdown().await {
                        return;
                    }
                }
                if self
                    .fill(pin!(pending()), None::<&mut NoAnswer>)
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
        if !self.shut {
            self.shut = true;
            self.transport.shutdown().await;
        }
    }
}

/// The loop: `recv_event` reads until the core has an event, `flush`
/// writes until the core's output is taken; both race the core's deadline.
/// Every command is [`Driver`]'s, over these.
impl<T: Transport, C: Clock> Driver for WebSocket<T, C> {
    type Error = T::Error;

    /// The next event of any kind. After [`Event::Closed`], every call
    /// returns the same `Closed` again.
    async fn recv_event(&mut self) -> Result<Event, T::Error> {
        loop {
            if let Some(event) = self.recv_event_unless(pending()).await {
                return event;
            }
        }
    }

    /// Each read goes to the transport's [`read_lent`](Transport::read_lent):
    /// on compio, into a buffer of its own, whose messages are lent where
    /// they lie.
    async fn for_each_message<F>(&mut self, mut answer: F) -> Result<(), T::Error>
    where
        F: FnMut(MessageRef<'_>, &mut Connection) -> Result<(), UsageError>,
    {
        loop {
            match next_event(&mut self.held) {
                // The end, kept by an earlier call or by a lent read: its
                // last steps (idempotent) before it is reported.
                Next::Event(Event::Closed(closed)) | Next::End(Event::Closed(closed)) => {
                    self.finish().await;
                    return ended(&closed);
                }
                Next::Event(event) | Next::End(event) => self.held.lend(event, &mut answer)?,
                Next::Wait => {
                    self.flush().await?;
                    self.fill(pin!(pending()), Some(&mut answer)).await?;
                }
            }
        }
    }

    /// Writes everything queued. The core's timers run while the
    /// transport takes the bytes: a deadline that passes (a heartbeat
    /// Ping, the closing timeout) is acted on, and output the core gives
    /// up on is not waited for.
    async fn flush(&mut self) -> Result<(), T::Error> {
        loop {
            let deadline = self.held.conn.poll_timeout();
            let raced = {
                let write = pin!(self.transport.write(&mut self.held.conn));
                race_pinned(write, &self.clock, deadline).await
            };
            if let Some(written) = raced {
                return written;
            }
            self.held.conn.handle_timeout(self.clock.now());
            if self.held.conn.should_close_transport() {
                // The closing deadline gave up on the unsent bytes; `recv`
                // reports the end.
                self.transport.abandon();
                return Ok(());
            }
        }
    }
}

impl<T: Transport, C: Clock> WebSocket<T, C> {
    /// Ends the WebSocket at once, without a closing handshake: the
    /// transport drops what is in flight ([`Transport::abandon`]; HTTP/2
    /// and HTTP/3 reset their stream) and is dropped.
    pub fn reset(mut self) {
        self.transport.abandon();
    }
}

/// The parts underneath.
impl<T, C> WebSocket<T, C> {
    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back.
    pub fn into_transport(self) -> T {
        self.transport
    }
}

holds!(impl[T, C] WebSocket<T, C>, held);
