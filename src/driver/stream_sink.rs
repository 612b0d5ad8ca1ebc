//! `Stream` + `Sink` for the shared loop (feature `futures`): the split
//! halves as the futures crate's traits, for code written against them
//! (`forward`, `StreamExt`, `SinkExt`, a `select!` loop).
//!
//! A `Stream` is polled, not awaited, so the `recv` it runs must outlive
//! each poll: it is kept, boxed once for the stream's life, and owns the
//! half it runs on (it hands it back when done). The `Sink` keeps its
//! command the same way. Both stay `Send` when the transport and the
//! clock are: nothing here is a trait object.
//!
//! The reading half has the WebSocket while it waits for the peer, and
//! steps aside when the writing half asks, but only while its `recv` is
//! polled. [`WebSocket::into_stream_sink`] keeps both in one value, and
//! each of its sides drives the other's kept work too (the writing side
//! when it would wait for the WebSocket), so one task can use both sides
//! (with `StreamExt::split`, or in turns, leaving a `next` in flight) and
//! never wait on itself.

use alloc::boxed::Box;
use core::future::Future;
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;

use super::api::Driver;
use super::halves::{ReadHalf, WriteHalf};
use super::socket::{Clock, Transport, WebSocket};
use crate::{CloseCode, Message, State};

impl<T: Transport, C: Clock> ReadHalf<T, C> {
    /// The messages, as a `Stream`: each item is one
    /// [`recv`](ReadHalf::recv). It ends after the closing handshake, and
    /// after an error (the item before the end).
    pub fn into_stream(self) -> impl Stream<Item = Result<Message, T::Error>> + Unpin {
        messages(self)
    }
}

impl<T: Transport, C: Clock> WriteHalf<T, C> {
    /// A `Sink` of messages: `start_send` queues
    /// ([`queue`](Driver::queue), which writes once more than
    /// [`HIGH_WATER`](super::socket::HIGH_WATER) bytes wait), `poll_flush`
    /// writes everything queued, `poll_close` sends a Close (1000) if none
    /// was sent and writes it. An error of a queued message is reported by
    /// the next `poll_ready`, `poll_flush` or `poll_close`.
    pub fn into_sink(self) -> impl Sink<Message, Error = T::Error> + Unpin {
        sending(self)
    }
}

impl<T: Transport, C: Clock> WebSocket<T, C> {
    /// The WebSocket as one value that is both a `Stream` of messages
    /// ([`ReadHalf::into_stream`]) and a `Sink` of them
    /// ([`WriteHalf::into_sink`]), for one task; `StreamExt::split` gives
    /// its two sides to two.
    pub fn into_stream_sink(
        self,
    ) -> impl Stream<Item = Result<Message, T::Error>> + Sink<Message, Error = T::Error> + Unpin
    {
        let (read, write) = self.split();
        Both {
            read: messages(read),
            write: sending(write),
            received: None,
            written: None,
        }
    }
}

/// A `recv` done: the half back, and what it received.
type Received<T, C> = (
    ReadHalf<T, C>,
    Result<Option<Message>, <T as Transport>::Error>,
);

/// A command done: the half back, and how it went.
type Written<T, C> = (WriteHalf<T, C>, Result<(), <T as Transport>::Error>);

/// One of a `Sink`'s polls.
type PollSink<S, E> = fn(Pin<&mut S>, &mut Context<'_>) -> Poll<Result<(), E>>;

/// The reading half as a `Stream`, its type named.
fn messages<T: Transport, C: Clock>(
    read: ReadHalf<T, C>,
) -> Messages<ReadHalf<T, C>, impl Future<Output = Received<T, C>>> {
    Messages {
        work: Kept::new(read),
        start: recv_owned::<T, C>,
        ended: false,
    }
}

/// The writing half as a `Sink`, its type named.
fn sending<T: Transport, C: Clock>(
    write: WriteHalf<T, C>,
) -> Sending<WriteHalf<T, C>, impl Future<Output = Written<T, C>>> {
    Sending {
        work: Kept::new(write),
        start: command_owned::<T, C>,
        asked: None,
    }
}

async fn recv_owned<T: Transport, C: Clock>(mut read: ReadHalf<T, C>, (): ()) -> Received<T, C> {
    let received = read.recv().await;
    (read, received)
}

/// What the `Sink` asks of the WebSocket.
enum Command {
    Queue(Message),
    Flush,
    Close,
}

async fn command_owned<T: Transport, C: Clock>(
    write: WriteHalf<T, C>,
    command: Command,
) -> Written<T, C> {
    let done = {
        let mut ws = write.lock().await;
        match command {
            Command::Queue(message) => ws.queue(&message).await,
            Command::Flush => ws.flush().await,
            Command::Close if ws.connection().state() == State::Open => {
                ws.close(CloseCode::NORMAL, "").await
            }
            Command::Close => ws.flush().await,
        }
    };
    (write, done)
}

/// A half, or the work that has it: a future made from it, boxed once
/// and reused for the next.
struct Kept<H, F> {
    idle: Option<H>,
    work: Option<Pin<Box<F>>>,
}

impl<H, R, F: Future<Output = (H, R)>> Kept<H, F> {
    fn new(half: H) -> Self {
        Kept {
            idle: Some(half),
            work: None,
        }
    }

    fn busy(&self) -> bool {
        self.idle.is_none()
    }

    /// Starts work on the idle half.
    fn start<A>(&mut self, make: fn(H, A) -> F, argument: A) {
        let half = self.idle.take().expect("work starts on an idle half");
        let work = make(half, argument);
        match &mut self.work {
            Some(slot) => slot.set(work),
            None => self.work = Some(Box::pin(work)),
        }
    }

    /// Drives the work; the half is idle again once it is done.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<R> {
        let work = self.work.as_mut().expect("busy: work was started");
        let (half, result) = ready!(work.as_mut().poll(cx));
        self.idle = Some(half);
        Poll::Ready(result)
    }
}

/// The reading half as a `Stream`.
struct Messages<H, F> {
    work: Kept<H, F>,
    start: fn(H, ()) -> F,
    /// The end, or an error, was handed out: nothing follows.
    ended: bool,
}

/// Nothing in here is pinned in place but the boxed work.
impl<H, F> Unpin for Messages<H, F> {}

impl<H, F, E> Stream for Messages<H, F>
where
    F: Future<Output = (H, Result<Option<Message>, E>)>,
{
    type Item = Result<Message, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if !this.work.busy() {
            this.work.start(this.start, ());
        }
        let item = ready!(this.work.poll(cx)).transpose();
        this.ended = !matches!(item, Some(Ok(_)));
        Poll::Ready(item)
    }
}

/// The writing half as a `Sink`.
struct Sending<H, F> {
    work: Kept<H, F>,
    start: fn(H, Command) -> F,
    /// A flush or a close was started, and is what the caller waits for.
    asked: Option<Asked>,
}

#[derive(Clone, Copy, PartialEq)]
enum Asked {
    Flush,
    Close,
}

impl<H, F> Unpin for Sending<H, F> {}

impl<H, F, E> Sending<H, F>
where
    F: Future<Output = (H, Result<(), E>)>,
{
    /// Drives the command in flight, if any; an error of a queued message
    /// is the caller's now.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        if !self.work.busy() {
            return Poll::Ready(Ok(()));
        }
        let done = ready!(self.work.poll(cx));
        self.asked = None;
        Poll::Ready(done)
    }

    /// Runs `asked` to its end (after what is in flight).
    fn poll_asked(&mut self, cx: &mut Context<'_>, asked: Asked) -> Poll<Result<(), E>> {
        loop {
            if self.work.busy() {
                let was = self.asked;
                ready!(self.poll_idle(cx))?;
                if was == Some(asked) {
                    return Poll::Ready(Ok(()));
                }
            }
            let command = match asked {
                Asked::Flush => Command::Flush,
                Asked::Close => Command::Close,
            };
            self.work.start(self.start, command);
            self.asked = Some(asked);
        }
    }
}

impl<H, F, E> Sink<Message> for Sending<H, F>
where
    F: Future<Output = (H, Result<(), E>)>,
{
    type Error = E;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.get_mut().poll_idle(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), E> {
        let this = self.get_mut();
        this.work.start(this.start, Command::Queue(message));
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.get_mut().poll_asked(cx, Asked::Flush)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.get_mut().poll_asked(cx, Asked::Close)
    }
}

/// Both sides in one value. Each side first drives the other's work in
/// flight, so that neither waits for a WebSocket the other holds in work
/// nobody polls: the reading half steps aside for the writing one, the
/// writing one finishes its command. What that work gives is kept for its
/// own side.
struct Both<R, FR, W, FW, E> {
    read: Messages<R, FR>,
    write: Sending<W, FW>,
    /// A message (or the end) the reading side got while the writing side
    /// was polled.
    received: Option<Option<Result<Message, E>>>,
    /// What the writing side's command gave while the reading side was
    /// polled.
    written: Option<Result<(), E>>,
}

impl<R, FR, W, FW, E> Unpin for Both<R, FR, W, FW, E> {}

impl<R, FR, W, FW, E> Both<R, FR, W, FW, E>
where
    FR: Future<Output = (R, Result<Option<Message>, E>)>,
    FW: Future<Output = (W, Result<(), E>)>,
{
    /// Polls the writing side; if it waits, gives the reading side's
    /// `recv` in flight a turn to step aside, and polls it again.
    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        poll: PollSink<Sending<W, FW>, E>,
    ) -> Poll<Result<(), E>> {
        if let Some(written) = self.written.take() {
            written?;
        }
        if let Poll::Ready(done) = poll(Pin::new(&mut self.write), cx) {
            return Poll::Ready(done);
        }
        if !self.read.work.busy() || self.received.is_some() {
            return Poll::Pending;
        }
        // The writing side now waits for the WebSocket: the reading side
        // steps aside (or finishes), and the writing side goes on.
        if let Poll::Ready(item) = Pin::new(&mut self.read).poll_next(cx) {
            self.received = Some(item);
        }
        poll(Pin::new(&mut self.write), cx)
    }
}

impl<R, FR, W, FW, E> Stream for Both<R, FR, W, FW, E>
where
    FR: Future<Output = (R, Result<Option<Message>, E>)>,
    FW: Future<Output = (W, Result<(), E>)>,
{
    type Item = Result<Message, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(item) = this.received.take() {
            return Poll::Ready(item);
        }
        if this.write.work.busy() && this.written.is_none() {
            if let Poll::Ready(done) = this.write.poll_idle(cx) {
                this.written = Some(done);
            }
        }
        Pin::new(&mut this.read).poll_next(cx)
    }
}

impl<R, FR, W, FW, E> Sink<Message> for Both<R, FR, W, FW, E>
where
    FR: Future<Output = (R, Result<Option<Message>, E>)>,
    FW: Future<Output = (W, Result<(), E>)>,
{
    type Error = E;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.get_mut().poll_write(cx, Sink::poll_ready)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), E> {
        Pin::new(&mut self.get_mut().write).start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.get_mut().poll_write(cx, Sink::poll_flush)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.get_mut().poll_write(cx, Sink::poll_close)
    }
}
