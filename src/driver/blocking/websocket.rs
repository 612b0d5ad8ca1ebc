//! The WebSocket over a blocking stream: receiving, commands, getters.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use std::io::{self, IoSlice, Read, Write};

use bytes::BytesMut;

use super::{is_tick, Error, Time, WakeAt, HIGH_WATER, READ_BUF};
use crate::driver::api::holds;
use crate::driver::policy::{next_event, Held, Next};
use crate::driver::{received, Clock, Driver};
use crate::plumbing::Plumbing;
use crate::{CloseCode, Closed, Connection, Event, Message, MessageKind};

/// A WebSocket over a blocking stream.
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    held: Held,
    buf: Vec<u8>,
    /// On a socket the driver opened: how to wake at the next deadline.
    pub(super) timeouts: Option<WakeAt<S>>,
}

impl<S: Read + Write> WebSocket<S> {
    pub(super) fn new(stream: S, conn: Connection, protocol: Option<String>, buf: Vec<u8>) -> Self {
        WebSocket {
            stream,
            held: Held::new(conn, protocol),
            buf,
            timeouts: None,
        }
    }

    /// Wraps a stream on which the handshake already happened. The
    /// connection's timers run from now, on the driver's clock.
    pub fn from_connection(stream: S, mut conn: Connection) -> Self {
        conn.handle_timeout(Time::timestamp());
        Self::new(stream, conn, None, vec![0; READ_BUF])
    }

    /// The next data message. Pings are answered (and Pongs dropped) on
    /// the way. `Ok(None)`: the closing handshake finished; see
    /// [`closed`](WebSocket::closed). `Err(Error::Protocol(_))`: the peer
    /// broke the protocol, and we sent it a Close frame saying so.
    pub fn recv(&mut self) -> Result<Option<Message>, Error> {
        loop {
            if let Some(done) = received(self.recv_event()?) {
                return done;
            }
        }
    }

    /// The next event of any kind. After [`Event::Closed`], every call
    /// returns the same `Closed` again. Output is written as every driver
    /// writes it ([when output is written](crate::socket#when-output-is-written)):
    /// before the read that waits for the peer, not before handing out an
    /// event.
    pub fn recv_event(&mut self) -> Result<Event, Error> {
        loop {
            match next_event(&mut self.held) {
                Next::Event(event) => return Ok(event),
                Next::End(closed) => {
                    self.finish();
                    return Ok(closed);
                }
                Next::Wait => {
                    self.flush()?;
                    self.fill()?;
                }
            }
        }
    }

    /// Reads once from the stream into the connection (or wakes on the
    /// stream's read timeout), then tells the connection the time.
    fn fill(&mut self) -> Result<(), Error> {
        if let Some(set) = self.timeouts {
            let mut deadline = self.held.conn.poll_timeout();
            if self.held.shutdown.is_pending() {
                // A read cannot be woken from another thread: wake to
                // look at the shutdown signal.
                deadline = Some(crate::driver::clock::or_shutdown_tick(deadline));
            }
            set(&self.stream, deadline)?;
        }
        match self.stream.read(&mut self.buf) {
            Ok(0) => self.held.conn.handle_eof(),
            Ok(n) => self.held.conn.handle_read(&self.buf[..n]),
            Err(e) if is_tick(&e) => {}
            Err(e) => return Err(e.into()),
        }
        self.held.heed_shutdown();
        self.tell_time();
        Ok(())
    }

    /// Tells the core the time, if it keeps a deadline: after every read
    /// (so silence is measured from the last bytes) and at every tick.
    fn tell_time(&mut self) {
        if self.held.conn.poll_timeout().is_some() {
            self.held.conn.handle_timeout(Time::timestamp());
        }
    }

    /// After the Closed event: write the last output, then, unless the
    /// transport is ours to close now (a server's, after the closing
    /// handshake), read and discard until the peer ends the stream (§7.1.1)
    /// or the core's closing deadline passes.
    fn finish(&mut self) {
        if self.flush().is_err() {
            return;
        }
        // What arrives now is dropped by the core; only the end counts.
        while !self.held.conn.should_close_transport() && !self.held.conn.is_finished() {
            if self.fill().is_err() {
                return;
            }
        }
    }
}

/// Commands: each queues its frames and writes them out.
impl<S: Read + Write> WebSocket<S> {
    /// Sends a message in one frame and flushes.
    pub fn send(&mut self, message: &Message) -> Result<(), Error> {
        self.held.conn.send(message)?;
        self.flush()
    }

    /// Sends a message prepared for many connections
    /// ([`PreparedMessage`](crate::PreparedMessage): encoded once, its
    /// payload shared) and flushes.
    pub fn send_prepared(&mut self, prepared: &crate::PreparedMessage) -> Result<(), Error> {
        self.held.conn.send_prepared(prepared)?;
        self.flush()
    }

    /// Sends a text message and flushes.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.held.conn.send_text(text)?;
        self.flush()
    }

    /// Sends a binary message and flushes.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.held.conn.send_binary(data)?;
        self.flush()
    }

    /// Sends a message from a buffer handed over, without copying a large
    /// one ([`Connection::send_owned`]: a client masks it in place), and
    /// flushes.
    pub fn send_owned(&mut self, kind: MessageKind, payload: BytesMut) -> Result<(), Error> {
        self.held.conn.send_owned(kind, payload)?;
        self.flush()
    }

    /// Sends a message split into frames of `fragment_size` bytes, and flushes.
    pub fn send_fragmented(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fragment_size: usize,
    ) -> Result<(), Error> {
        self.held.conn.send_fragmented(kind, data, fragment_size)?;
        self.flush()
    }

    /// Queues a message in one frame; it goes out when
    /// [`recv`](WebSocket::recv) next waits for the peer, or on
    /// [`flush`](WebSocket::flush) or a `send_*`. Writes first if more
    /// than [`HIGH_WATER`] bytes wait.
    pub fn queue(&mut self, message: &Message) -> Result<(), Error> {
        self.held.conn.send(message)?;
        self.write_above_high_water()
    }

    /// Queues a prepared message as [`queue`](WebSocket::queue) queues a
    /// message.
    pub fn queue_prepared(&mut self, prepared: &crate::PreparedMessage) -> Result<(), Error> {
        self.held.conn.send_prepared(prepared)?;
        self.write_above_high_water()
    }

    fn write_above_high_water(&mut self) -> Result<(), Error> {
        if self.held.conn.pending_output_len() > HIGH_WATER {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends a Ping and flushes. The Pong arrives as [`Event::Pong`].
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.held.conn.ping(payload)?;
        self.flush()
    }

    /// Starts the closing handshake. Keep calling [`recv`](WebSocket::recv)
    /// until it returns `Ok(None)` to let the peer answer.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.held.conn.close(code, reason)?;
        self.flush()
    }

    /// Writes all pending output and flushes the stream.
    pub fn flush(&mut self) -> Result<(), Error> {
        let mut wrote = false;
        while self.held.conn.pending_output_len() > 0 {
            match write_some(&mut self.stream, &self.held.conn) {
                Ok(0) => return Err(Error::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.held.conn.consume_output(n);
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if wrote {
            self.stream.flush()?;
        }
        Ok(())
    }
}

/// The same loops under [`Driver`], for code generic over drivers (its
/// futures block and are done when first polled: see
/// [`block_on`](super::block_on)). `offer`, `offer_many`, `backlog` and
/// `can_send` are the trait's: a blocking server offers to each peer, then
/// flushes each with a write timeout on its socket, so one peer that
/// stopped reading holds at most `backlog` bytes and cannot stall the
/// others for longer than the timeout.
impl<S: Read + Write> Driver for WebSocket<S> {
    type Error = Error;

    async fn recv_event(&mut self) -> Result<Event, Error> {
        WebSocket::recv_event(self)
    }

    async fn recv(&mut self) -> Result<Option<Message>, Error> {
        WebSocket::recv(self)
    }

    async fn flush(&mut self) -> Result<(), Error> {
        WebSocket::flush(self)
    }
}

/// Getters, and the parts underneath.
impl<S> WebSocket<S> {
    /// How the connection ended, once it has.
    pub fn closed(&self) -> Option<&Closed> {
        self.held.closed.as_deref()
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.held.protocol.as_deref()
    }

    /// The sans-IO connection underneath.
    pub fn connection(&self) -> &Connection {
        &self.held.conn
    }

    /// The sans-IO connection underneath, for commands the driver does not
    /// wrap. Call [`flush`](WebSocket::flush) after queueing output.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.held.conn
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably (to set a read timeout, say).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Gives the stream back.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

/// One write of the connection's pending output.
fn write_some<S: Write>(stream: &mut S, conn: &Connection) -> io::Result<usize> {
    if conn.pending_output().len() == conn.pending_output_len() {
        // One piece: a plain write (for a socket, send rather than writev,
        // whose file layer costs more).
        stream.write(conn.pending_output())
    } else {
        // Frame headers and the payloads sent without a copy, in one
        // system call where the stream takes vectored writes.
        let mut slices = [IoSlice::new(&[]); 64];
        let n = conn.pending_output_vectored(&mut slices);
        stream.write_vectored(&slices[..n])
    }
}

holds!(impl[S] WebSocket<S>, held);
