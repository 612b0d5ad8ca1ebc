//! The WebSocket: its read and write loops under [`Driver`], and the
//! `Stream` and `Sink` it is.

use alloc::boxed::Box;
use alloc::string::String;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite};

use super::engine::Inner;
use super::split::{self, ReadHalf, WriteHalf};
use super::stream::Side;
use super::Time;
use crate::driver::api::holds;
use crate::driver::{Clock, Driver, Error};
use crate::{CloseCode, Connection, Event, Message, MessageRef, UsageError};

/// A WebSocket over an async stream.
#[derive(Debug)]
pub struct WebSocket<S> {
    /// Boxed: a task's future holds the WebSocket across every await, and
    /// tokio allocates the future in a cell aligned to 128 bytes; a
    /// pointer there and the state in an allocation of its own took the
    /// README's echo task from 512 bytes to 232, and the memory of an
    /// idle connection from 1.25 KiB to 1.16.
    inner: Box<Inner<S>>,
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
            inner: Box::new(Inner::new(stream, conn, protocol)),
        }
    }

    /// [`Driver::send`], here so that it, not `SinkExt::send`, is what
    /// `ws.send(..)` means when both traits are in scope.
    pub async fn send(&mut self, message: &Message) -> Result<(), Error> {
        Driver::send(self, message).await
    }

    /// [`Driver::flush`], here for the same reason as [`send`](Self::send).
    pub async fn flush(&mut self) -> Result<(), Error> {
        Driver::flush(self).await
    }

    /// [`Driver::close`], here for the same reason as [`send`](Self::send).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        Driver::close(self, code, reason).await
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
        split::halves(*self.inner)
    }
}

/// The driver's read and write loops; every command is [`Driver`]'s.
impl<S: AsyncRead + AsyncWrite + Unpin> Driver for WebSocket<S> {
    type Error = Error;

    /// Cancel-safe.
    async fn recv_event(&mut self) -> Result<Event, Error> {
        poll_fn(|cx| self.inner.poll_event(cx, Side::Reader)).await
    }

    /// Cancel-safe.
    fn recv(&mut self) -> impl Future<Output = Result<Option<Message>, Error>> {
        Recv {
            inner: &mut self.inner,
        }
    }

    /// Each read lands in a buffer the thread lends (not the
    /// connection's), and its messages are decoded and lent out where
    /// they lie. Cancel-safe: what was read is decoded before the future
    /// can be dropped, and what is left of a message stays with the
    /// connection.
    async fn for_each_message<F>(&mut self, mut answer: F) -> Result<(), Error>
    where
        F: FnMut(MessageRef<'_>, &mut Connection) -> Result<(), UsageError>,
    {
        poll_fn(|cx| self.inner.poll_each(cx, &mut answer)).await
    }

    async fn flush(&mut self) -> Result<(), Error> {
        if self.inner.io.flush_now(&mut self.inner.held.conn) {
            return Ok(());
        }
        poll_fn(|cx| self.inner.poll_flush_output(cx, Side::Writer)).await
    }

    /// The connection, its output buffers lent from the pool.
    fn connection_mut(&mut self) -> &mut Connection {
        self.inner.sender()
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
        Ok(self.get_mut().inner.sender().send(&message)?)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_flush_output(cx, Side::Writer)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_close_sink(cx, Side::Writer)
    }
}

holds!(impl[S] WebSocket<S>, inner.held);

/// The future of [`Driver::recv`], its poll inlined into the caller's:
/// the message comes out of it in registers, not through memory.
struct Recv<'a, S> {
    inner: &'a mut Inner<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Future for Recv<'_, S> {
    type Output = Result<Option<Message>, Error>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().inner.poll_message(cx, Side::Reader)
    }
}
