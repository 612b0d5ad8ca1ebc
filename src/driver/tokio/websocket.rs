//! The WebSocket: its commands, and the `Stream` and `Sink` it is.

use alloc::string::String;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};

use super::engine::{Inner, Side};
use super::split::{self, ReadHalf, WriteHalf};
use super::{Time, HIGH_WATER};
use crate::driver::policy::offer as policy_offer;
use crate::driver::{Clock, Error};
use crate::socket::{Offered, WhenFull};
use crate::{CloseCode, Closed, Connection, Event, Message, MessageKind, PreparedMessage};

/// A WebSocket over an async stream.
#[derive(Debug)]
pub struct WebSocket<S> {
    inner: Inner<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Wraps a stream on which the handshake already happened. The
    /// connection's timers run from now, on the driver's clock.
    pub fn from_connection(stream: S, mut conn: Connection) -> Self {
        conn.handle_timeout(Time::timestamp());
        Self::with_protocol(stream, conn, None)
    }

    /// After a handshake that agreed on `protocol`.
    pub(super) fn with_protocol(stream: S, conn: Connection, protocol: Option<String>) -> Self {
        WebSocket {
            inner: Inner::new(stream, conn, protocol),
        }
    }

    /// The next data message. Pings are answered on the way. `Ok(None)`:
    /// the connection closed cleanly; see [`closed`](WebSocket::closed).
    /// `Err(Error::Protocol(_))`: the peer broke the protocol and we sent
    /// it a Close frame saying so. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<Message>, Error> {
        poll_fn(|cx| self.inner.poll_message(cx, Side::Reader)).await
    }

    /// The next event of any kind, [`Event::Closed`] last (and again on
    /// every later call). Cancel-safe.
    pub async fn recv_event(&mut self) -> Result<Event, Error> {
        poll_fn(|cx| self.inner.poll_event(cx, Side::Reader)).await
    }

    /// Sends a message in one frame and writes it out.
    pub async fn send(&mut self, message: &Message) -> Result<(), Error> {
        self.inner.sender().send_message(message)?;
        self.flush().await
    }

    /// Queues a message in one frame without writing it, unless more than
    /// [`HIGH_WATER`] bytes are waiting (then it writes until fewer are).
    ///
    /// The frame goes out on [`flush`](WebSocket::flush), on a later
    /// `send`, or when [`recv`](WebSocket::recv) is about to wait for the
    /// peer: the pattern for a loop that answers what it receives, which
    /// then writes all the answers to a burst of messages at once. A task
    /// that only sends should use [`send`](WebSocket::send), or flush.
    pub async fn queue(&mut self, message: &Message) -> Result<(), Error> {
        self.inner.sender().send_message(message)?;
        self.write_below_high_water().await
    }

    /// Sends a message prepared for many connections
    /// ([`PreparedMessage`]: encoded once, its payload shared) and writes
    /// it out.
    pub async fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.inner.sender().send_prepared(prepared)?;
        self.flush().await
    }

    /// Queues a prepared message as [`queue`](WebSocket::queue) queues a
    /// message.
    pub async fn queue_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.inner.sender().send_prepared(prepared)?;
        self.write_below_high_water().await
    }

    /// Writes until fewer than [`HIGH_WATER`] bytes wait (at once if
    /// fewer already do): what [`queue`](WebSocket::queue) waits for.
    async fn write_below_high_water(&mut self) -> Result<(), Error> {
        let Inner { io, conn, .. } = &mut self.inner;
        poll_fn(|cx| io.poll_write_down_to(conn, cx, Side::Writer, HIGH_WATER - 1)).await
    }

    /// Offers a prepared message without waiting: queued unless more than
    /// `backlog` bytes wait, else `when_full` decides (miss it, or close).
    /// It goes out when [`recv`](WebSocket::recv) next waits for the
    /// peer, or on [`flush`](WebSocket::flush). (The writing half of a
    /// split WebSocket also writes at once what the stream takes: see
    /// [`WriteHalf::offer`].)
    pub fn offer(
        &mut self,
        prepared: &PreparedMessage,
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, Error> {
        self.offer_many(core::slice::from_ref(prepared), backlog, when_full)
    }

    /// Offers several prepared messages in order, as
    /// [`WriteHalf::offer_many`] does.
    pub fn offer_many(
        &mut self,
        messages: &[PreparedMessage],
        backlog: usize,
        when_full: WhenFull,
    ) -> Result<Offered, Error> {
        let conn = self.inner.sender();
        Ok(policy_offer(conn, messages, backlog, when_full)?)
    }

    /// Sends a text message and writes it out.
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.inner.sender().send_text(text)?;
        self.flush().await
    }

    /// Sends a message from a buffer handed over, without copying a large
    /// one ([`Connection::send_owned`]: a client masks it in place), and
    /// writes it out.
    pub async fn send_owned(&mut self, kind: MessageKind, payload: BytesMut) -> Result<(), Error> {
        self.inner.sender().send_owned(kind, payload)?;
        self.flush().await
    }

    /// Sends a binary message and writes it out.
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.inner.sender().send_binary(data)?;
        self.flush().await
    }

    /// Sends a message in frames of `fragment_size` bytes and writes it out.
    pub async fn send_fragmented(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fragment_size: usize,
    ) -> Result<(), Error> {
        self.inner
            .sender()
            .send_fragmented(kind, data, fragment_size)?;
        self.flush().await
    }

    /// Sends a Ping. The Pong arrives as [`Event::Pong`].
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.inner.sender().ping(payload)?;
        self.flush().await
    }

    /// Starts the closing handshake. Keep calling [`recv`](WebSocket::recv)
    /// until it returns `Ok(None)` to let the peer answer; the closing
    /// timeout bounds the wait.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.inner.sender().close(code, reason)?;
        self.flush().await
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        if self.inner.io.flush_now(&mut self.inner.conn) {
            return Ok(());
        }
        poll_fn(|cx| self.inner.poll_flush_output(cx, Side::Writer)).await
    }

    /// How the connection ended, once it has.
    pub fn closed(&self) -> Option<&Closed> {
        self.inner.closed.as_ref()
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.inner.protocol.as_deref()
    }

    /// The sans-IO connection underneath.
    pub fn connection(&self) -> &Connection {
        &self.inner.conn
    }

    /// The sans-IO connection underneath, for commands the driver does
    /// not wrap. Call [`flush`](WebSocket::flush) after queueing output.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.inner.conn
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.inner.io.stream
    }

    /// Splits into a reading half and a writing half that can be used from
    /// different tasks. The reading half also writes what the protocol
    /// itself asks for (Pongs, Close replies), so a task that only reads
    /// keeps the connection healthy.
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        split::halves(self.inner)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let inner = &mut self.get_mut().inner;
        inner.poll_next_item(cx, Side::Reader)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_ready(cx, Side::Writer)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        Ok(self.get_mut().inner.sender().send_message(&message)?)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_flush_output(cx, Side::Writer)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_close_sink(cx, Side::Writer)
    }
}
