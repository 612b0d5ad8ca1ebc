//! [`Driver`]: what every driver's WebSocket does, written once.
//!
//! A driver supplies four things: the next event (its read loop), a flush
//! (its write loop), the connection underneath, and how the connection
//! ended. Every command is this trait's, the same on every driver: a
//! `send_*` queues its frames on the connection and flushes; a `queue_*`
//! queues and writes only when more than [`HIGH_WATER`] bytes wait;
//! `offer*` queues or not by the slow-consumer policy, never writing.

use alloc::boxed::Box;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use bytes::BytesMut;

use super::policy::{self, received, Held, Offered, WhenFull, HIGH_WATER};
use crate::{
    CloseCode, Closed, Connection, Event, Message, MessageKind, MessageRef, PreparedMessage,
    ProtocolError, UsageError,
};

/// A WebSocket of any driver: its commands and events, for code written
/// once for all of them (`async fn serve(ws: &mut impl Driver)`).
///
/// Bring it into scope to call the commands: `use rfc6455::Driver;`.
///
/// Every method is async, the blocking driver's too: its futures block
/// the thread and are done the first time they are polled, so generic
/// code runs on it through `rfc6455::blocking::block_on`
/// (its own methods of the same names stay sync). The futures are `Send`
/// when the driver's stream is; nothing here requires it, so the
/// single-threaded runtimes (compio, embedded executors) fit too.
///
/// Output, on every driver: `send_*`, `ping` and `close` write before they
/// return; `queue_*` and `offer*` only queue; `recv` and `recv_event`
/// write everything queued before they wait for the peer.
///
/// ```
/// use rfc6455::Driver;
///
/// /// Echoes every message, on any driver: the answers to a burst of
/// /// messages leave in one write, when `recv` next waits.
/// async fn echo<W: Driver>(ws: &mut W) -> Result<(), W::Error> {
///     while let Some(message) = ws.recv().await? {
///         ws.queue(&message).await?;
///     }
///     Ok(())
/// }
/// ```
#[allow(async_fn_in_trait)]
pub trait Driver: sealed::Holds {
    /// The driver's error: the transport's own, the caller's misuse
    /// ([`UsageError`]), the peer's fault ([`ProtocolError`]).
    type Error: From<UsageError> + From<ProtocolError> + core::fmt::Debug + core::fmt::Display;

    /// The next event of any kind, [`Event::Closed`] last (and again on
    /// every later call). Pings are answered on the way; what is queued is
    /// written before the driver waits for the peer.
    async fn recv_event(&mut self) -> Result<Event, Self::Error>;

    /// Writes everything queued. The core's timers run while the
    /// transport takes the bytes.
    async fn flush(&mut self) -> Result<(), Self::Error>;

    /// The sans-IO connection underneath.
    fn connection(&self) -> &Connection {
        &self.held().conn
    }

    /// The sans-IO connection underneath, ready to queue output: every
    /// command goes through it. Call [`flush`](Driver::flush) after
    /// queueing output on it directly.
    fn connection_mut(&mut self) -> &mut Connection {
        &mut self.held_mut().conn
    }

    /// How the connection ended, once it has.
    fn closed(&self) -> Option<&Closed> {
        self.held().closed.as_deref()
    }

    /// The subprotocol agreed in the handshake.
    fn protocol(&self) -> Option<&str> {
        self.held().protocol.as_deref()
    }

    /// The next data message. Pings are answered on the way. `Ok(None)`:
    /// the closing handshake finished; see [`closed`](Driver::closed). An
    /// error of the peer's protocol (or a timeout): we sent it a Close
    /// frame saying so.
    async fn recv(&mut self) -> Result<Option<Message>, Self::Error> {
        loop {
            if let Some(done) = received(self.recv_event().await?) {
                return done;
            }
        }
    }

    /// Lends every data message to `answer`, with the connection to queue
    /// answers on, until the connection ends: `Ok(())` when the closing
    /// handshake finished, the error otherwise (as [`recv`](Driver::recv)
    /// ends), or the first error `answer` returns.
    ///
    /// The message is a [`MessageRef`]: where the driver can, a view of
    /// the bytes it read, decoded and unmasked where they lie, with no
    /// copy, no allocation and no reference count (the tokio driver);
    /// elsewhere a view of the message [`recv`](Driver::recv) would have
    /// returned. [`to_message`](MessageRef::to_message) keeps it. This is
    /// the shape of uWebSockets' message handler, for a server whose
    /// answers do not wait for anything else:
    ///
    /// ```
    /// use rfc6455::Driver;
    ///
    /// async fn echo<W: Driver>(ws: &mut W) -> Result<(), W::Error> {
    ///     ws.for_each_message(|message, conn| conn.send(message))
    ///         .await
    /// }
    /// ```
    ///
    /// `conn.send(message)` answers with the message itself: a view is
    /// copied into the output, a large message gathered in the connection
    /// (one larger than a read) is shared, not copied.
    ///
    /// Pings are answered on the way. What `answer` queues goes out as
    /// [`queue`](Driver::queue)'s does: all the answers to one read in one
    /// write when the driver next waits for the peer, and before the
    /// driver reads on once more than [`HIGH_WATER`] bytes wait.
    async fn for_each_message<F>(&mut self, mut answer: F) -> Result<(), Self::Error>
    where
        F: FnMut(MessageRef<'_>, &mut Connection) -> Result<(), UsageError>,
    {
        while let Some(message) = self.recv().await? {
            answer(MessageRef::from(&message), self.connection_mut())?;
            if self.connection().pending_output_len() > HIGH_WATER {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Sends a message in one frame.
    async fn send(&mut self, message: &Message) -> Result<(), Self::Error> {
        self.connection_mut().send(message)?;
        self.flush().await
    }

    /// Sends a text message.
    async fn send_text(&mut self, text: &str) -> Result<(), Self::Error> {
        self.connection_mut().send_text(text)?;
        self.flush().await
    }

    /// Sends a binary message.
    async fn send_binary(&mut self, data: &[u8]) -> Result<(), Self::Error> {
        self.connection_mut().send_binary(data)?;
        self.flush().await
    }

    /// Sends a message prepared for many connections
    /// ([`PreparedMessage`]: encoded once, its payload shared).
    async fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Self::Error> {
        self.connection_mut().send_prepared(prepared)?;
        self.flush().await
    }

    /// Sends a message from a buffer handed over, without copying a large
    /// one ([`Connection::send_owned`]: a client masks it in place).
    async fn send_owned(
        &mut self,
        kind: MessageKind,
        payload: BytesMut,
    ) -> Result<(), Self::Error> {
        self.connection_mut().send_owned(kind, payload)?;
        self.flush().await
    }

    /// Sends a message split into frames of `fragment_size` bytes.
    async fn send_fragmented(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fragment_size: usize,
    ) -> Result<(), Self::Error> {
        self.connection_mut()
            .send_fragmented(kind, data, fragment_size)?;
        self.flush().await
    }

    /// Queues a message in one frame; it goes out when `recv` next waits
    /// for the peer, or on `flush` or a `send_*`: the pattern for a loop
    /// that answers what it receives, which then writes all the answers
    /// to a burst at once. Writes first if more than [`HIGH_WATER`] bytes
    /// wait.
    ///
    /// The call itself queues the message, before the future is polled;
    /// the future is ready at once unless there is that much to write.
    fn queue(&mut self, message: &Message) -> impl Future<Output = Result<(), Self::Error>> {
        let queued = self.connection_mut().send(message);
        flush_above_high_water(self, queued)
    }

    /// Queues a prepared message as [`queue`](Driver::queue) queues a
    /// message.
    fn queue_prepared(
        &mut self,
        prepared: &PreparedMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> {
        let queued = self.connection_mut().send_prepared(prepared);
        flush_above_high_water(self, queued)
    }

    /// Offers a prepared message without waiting, for a broadcaster that
    /// must never wait for one client: queued if at most `backlog` bytes
    /// already wait to be written, otherwise `when_full` decides (miss
    /// this message, or close). What is queued goes out when `recv` next
    /// waits for the peer, or on `flush`.
    fn offer(
        &mut self,
        prepared: &PreparedMessage,
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, Self::Error> {
        self.offer_many(core::slice::from_ref(prepared), backlog, when_full)
    }

    /// Offers several prepared messages in order, as
    /// [`offer`](Driver::offer) offers one, the backlog checked before
    /// each: `Dropped` means this message and those after it were not
    /// queued, `Closing` that the closing handshake started in their place.
    fn offer_many(
        &mut self,
        messages: &[PreparedMessage],
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, Self::Error> {
        Ok(policy::offer(
            self.connection_mut(),
            messages,
            backlog,
            when_full,
        )?)
    }

    /// Sends a Ping. The Pong arrives as [`Event::Pong`].
    async fn ping(&mut self, payload: &[u8]) -> Result<(), Self::Error> {
        self.connection_mut().ping(payload)?;
        self.flush().await
    }

    /// Starts the closing handshake. Keep calling [`recv`](Driver::recv)
    /// until it returns `Ok(None)` to let the peer answer; the closing
    /// timeout bounds the wait.
    async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Self::Error> {
        self.connection_mut().close(code, reason)?;
        self.flush().await
    }

    /// How many bytes are queued and not yet taken by the transport: what
    /// a peer that does not read makes the connection hold.
    fn backlog(&self) -> usize {
        self.connection().pending_output_len()
    }

    /// Whether messages can still be sent.
    fn can_send(&self) -> bool {
        self.connection().can_send()
    }

    /// Watches a server's [`Shutdown`](crate::Shutdown): when it begins,
    /// this WebSocket sends its Close frame (1001, 1012, as the server
    /// chose) the next time its loop waits for the peer, and runs the
    /// closing handshake; it counts as open until dropped. A WebSocket
    /// watches one shutdown at a time: a second call replaces the first.
    #[cfg(feature = "std")]
    fn watch(&mut self, shutdown: &crate::Shutdown) {
        self.held_mut().shutdown.0 = Some(alloc::boxed::Box::new(shutdown.watch()));
    }
}

/// What a `queue_*` waits for, once it has queued (`queued`, the core's
/// answer): nothing, unless more than [`HIGH_WATER`] bytes wait; then all
/// of them are written. Inlined into the caller, with the future's poll.
#[inline(always)]
fn flush_above_high_water<D: Driver + ?Sized>(
    driver: &mut D,
    queued: Result<(), UsageError>,
) -> Queued<impl Future<Output = Result<(), D::Error>> + '_> {
    if queued.is_err() || driver.backlog() <= HIGH_WATER {
        return Queued::Done(Some(queued));
    }
    Queued::Flushing(flushing(driver))
}

/// The flush of a `queue_*` above [`HIGH_WATER`], out of its caller's way.
#[cold]
#[inline(never)]
fn flushing<D: Driver + ?Sized>(
    driver: &mut D,
) -> Pin<Box<impl Future<Output = Result<(), D::Error>> + '_>> {
    Box::pin(driver.flush())
}

/// The future of a `queue_*`: the core's answer, known when it was
/// called, or the flush it waits for (boxed: it comes once every
/// [`HIGH_WATER`] bytes, and the common case stays small). Its poll is
/// inlined, and the answer kept as the core's 16-byte error until it is
/// handed out: a driver's error is 32 bytes, and a result of that size
/// returned from a call went through memory, where the caller read it
/// back at other widths than it was written, and stalled.
enum Queued<F> {
    Done(Option<Result<(), UsageError>>),
    Flushing(Pin<Box<F>>),
}

/// Nothing in it is pinned in place: the flush is pinned in its box, and
/// the answer is moved out.
impl<F> Unpin for Queued<F> {}

impl<F: Future<Output = Result<(), E>>, E: From<UsageError>> Future for Queued<F> {
    type Output = Result<(), E>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            // Polled again after it was ready: nothing is left to do.
            Queued::Done(answer) => Poll::Ready(answer.take().unwrap_or(Ok(())).map_err(E::from)),
            Queued::Flushing(flush) => flush.as_mut().poll(cx),
        }
    }
}

/// Only this crate's drivers are [`Driver`]s (a transport of your own
/// becomes one through [`socket::WebSocket`](crate::socket::WebSocket)):
/// each gives the trait the state it keeps around the core.
pub(crate) mod sealed {
    use super::Held;

    /// Where a driver keeps its [`Held`].
    pub trait Holds {
        /// The state around the core.
        fn held(&self) -> &Held;
        /// The state around the core, mutably.
        fn held_mut(&mut self) -> &mut Held;
    }
}

/// [`sealed::Holds`] for a driver's WebSocket whose [`Held`] is at
/// `self.$($field).+`.
macro_rules! holds {
    (impl [$($generics:tt)*] $ty:ty, $($field:ident).+) => {
        impl<$($generics)*> $crate::driver::api::sealed::Holds for $ty {
            fn held(&self) -> &$crate::driver::policy::Held {
                &self.$($field).+
            }
            fn held_mut(&mut self) -> &mut $crate::driver::policy::Held {
                &mut self.$($field).+
            }
        }
    };
}
pub(crate) use holds;
