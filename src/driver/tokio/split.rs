//! The halves of a split WebSocket, each usable from its own task.

use alloc::string::String;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};

use super::engine::Inner;
use super::stream::Side;
use crate::driver::Error;
use crate::socket::{Offered, WhenFull};
use crate::{CloseCode, Closed, Connection, Event, Message, MessageKind, PreparedMessage};

/// The reading half of a split [`WebSocket`](super::WebSocket).
#[derive(Debug)]
pub struct ReadHalf<S> {
    shared: Arc<Mutex<Inner<S>>>,
}

/// The writing half of a split [`WebSocket`](super::WebSocket).
#[derive(Debug)]
pub struct WriteHalf<S> {
    shared: Arc<Mutex<Inner<S>>>,
}

/// The two halves of one WebSocket, sharing its state.
pub(super) fn halves<S>(inner: Inner<S>) -> (ReadHalf<S>, WriteHalf<S>) {
    let shared = Arc::new(Mutex::new(inner));
    (
        ReadHalf {
            shared: shared.clone(),
        },
        WriteHalf { shared },
    )
}

fn lock<S>(shared: &Mutex<Inner<S>>) -> MutexGuard<'_, Inner<S>> {
    // A panic while holding the lock can only come from a bug in this
    // module; the state is still consistent enough to report errors.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// The next data message; see [`WebSocket::recv`](crate::Driver::recv). Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<Message>, Error> {
        poll_fn(|cx| lock(&self.shared).poll_message(cx, Side::Reader)).await
    }

    /// The next event of any kind; see [`WebSocket::recv_event`](crate::Driver::recv_event). Cancel-safe.
    pub async fn recv_event(&mut self) -> Result<Event, Error> {
        poll_fn(|cx| lock(&self.shared).poll_event(cx, Side::Reader)).await
    }
}

impl<S> ReadHalf<S> {
    /// How the connection ended, once it has.
    pub fn closed(&self) -> Option<Closed> {
        lock(&self.shared).held.closed.as_deref().cloned()
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<String> {
        lock(&self.shared)
            .held
            .protocol
            .as_deref()
            .map(String::from)
    }
}

impl<S> WriteHalf<S> {
    /// How many bytes are queued and not yet taken by the stream: what a
    /// peer that does not read makes the connection hold.
    pub fn backlog(&self) -> usize {
        lock(&self.shared).held.conn.pending_output_len()
    }

    /// How the connection ended, once it has.
    pub fn closed(&self) -> Option<Closed> {
        lock(&self.shared).held.closed.as_deref().cloned()
    }

    /// Whether messages can still be sent.
    pub fn can_send(&self) -> bool {
        lock(&self.shared).held.conn.can_send()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        lock(&self.shared).poll_next_item(cx, Side::Reader)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// Sends a message and writes it out.
    pub async fn send(&mut self, message: &Message) -> Result<(), Error> {
        self.send_with(|conn| conn.send(message)).await
    }

    /// Sends a prepared message ([`PreparedMessage`]) and writes it out.
    pub async fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.send_with(|conn| conn.send_prepared(prepared)).await
    }

    /// Offers a prepared message without waiting, for a broadcaster that
    /// must never wait for one client. If at most `backlog` bytes are
    /// already waiting to be written, the message is queued, and the
    /// connection's reading half writes it as the peer takes it (keep a
    /// task in [`ReadHalf::recv`]); otherwise the peer is not keeping up,
    /// and `when_full` decides: miss this message, or close the
    /// connection. So a client that stops reading holds at most `backlog`
    /// bytes, one message and a Close frame, while the others go on.
    pub fn offer(
        &self,
        prepared: &PreparedMessage,
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, Error> {
        self.offer_many(core::slice::from_ref(prepared), backlog, when_full)
    }

    /// Offers several prepared messages at once, in order, as
    /// [`offer`](WriteHalf::offer) offers one, and writes them together:
    /// one system call for all of them where one each would be needed
    /// otherwise. For a broadcaster that falls behind its publishers: it
    /// offers everything published since its last pass, so the busier it
    /// is, the more each write carries (one message per pass when it keeps
    /// up, so no latency is added then).
    ///
    /// The backlog is checked before each message: `Dropped` means this
    /// message and those after it were not queued (the ones before were),
    /// `Closing` that the closing handshake started in their place.
    ///
    /// On a multi-threaded runtime, give each worker a publishing task
    /// with its share of the connections: the writes happen in the task
    /// that offers, so one task offering to all keeps them on one core
    /// (`benches`, part `scaling`, measures both).
    pub fn offer_many(
        &self,
        messages: &[PreparedMessage],
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, Error> {
        lock(&self.shared).offer_and_write(messages, backlog, when_full)
    }

    /// Sends a text message and writes it out.
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send_with(|conn| conn.send_text(text)).await
    }

    /// Sends a message from a buffer handed over
    /// ([`Connection::send_owned`]) and writes it out.
    pub async fn send_owned(&mut self, kind: MessageKind, payload: BytesMut) -> Result<(), Error> {
        self.send_with(|conn| conn.send_owned(kind, payload)).await
    }

    /// Sends a binary message and writes it out.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send_with(|conn| conn.send_binary(data)).await
    }

    /// Sends a Ping.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send_with(|conn| conn.ping(payload)).await
    }

    /// Starts the closing handshake; the reading half sees it finish.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.send_with(|conn| conn.close(code, reason)).await
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.send_with(|_| Ok(())).await
    }

    /// Queues output with `command`, then writes it: under one lock if the
    /// stream takes it all at once (the usual case), else waiting.
    async fn send_with(
        &mut self,
        command: impl FnOnce(&mut Connection) -> Result<(), crate::UsageError>,
    ) -> Result<(), Error> {
        {
            let inner = &mut *lock(&self.shared);
            command(inner.sender())?;
            if inner.io.flush_now(&mut inner.held.conn) {
                return Ok(());
            }
        }
        poll_fn(|cx| lock(&self.shared).poll_flush_output(cx, Side::Writer)).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared).poll_ready(cx, Side::Writer)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        Ok(lock(&self.shared).sender().send(&message)?)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared).poll_flush_output(cx, Side::Writer)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared).poll_close_sink(cx, Side::Writer)
    }
}
