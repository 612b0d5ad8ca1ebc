//! The connection's life in time: the heartbeat and the closing deadline,
//! failing and ending the connection, and when the transport may go.

use alloc::boxed::Box;
use bytes::BytesMut;

use super::{Connection, Ended, Life};
use crate::time::Expired;
use crate::{CloseCode, CloseFrame, Closed, Initiator, ProtocolError, Role, Timestamp};

impl Connection {
    /// Tells the connection the time on the driver's clock, and runs every
    /// timer that is due: a heartbeat Ping after
    /// [`ping_interval`](crate::Timeouts::ping_interval) of silence from
    /// the peer; a Close with 1001 after [`idle`](crate::Timeouts::idle)
    /// of silence; the end of a closing handshake that took longer than
    /// [`close`](crate::Timeouts::close) (the final
    /// [`Event::Closed`](crate::Event::Closed) then comes from
    /// [`poll_event`](Connection::poll_event), after any bytes already
    /// received, with [`ProtocolError::Timeout`]).
    ///
    /// Call it once when the driver starts, after each read, and whenever
    /// the deadline of [`poll_timeout`](Connection::poll_timeout) has
    /// passed; calling it more often is harmless. Bytes received since the
    /// last call count as a sign of life at `now`, so a driver that calls
    /// it only at deadlines measures the peer's silence more coarsely (a
    /// Ping may then come up to one interval late).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let open = self.can_send();
        match self.timers.handle_timeout(now, open) {
            Expired::None => {}
            Expired::Ping => {
                let sent = self.ping(b"");
                debug_assert!(sent.is_ok(), "heartbeats run only while open");
            }
            Expired::Idle => {
                // "1001 indicates that an endpoint is "going away"" (§7.4.1):
                // we stop waiting for a peer that stopped talking.
                let sent = self.close(CloseCode::GOING_AWAY, "idle timeout");
                debug_assert!(sent.is_ok(), "idleness is checked only while open");
                self.timers.handle_timeout(now, false);
            }
        }
    }

    /// When the driver should next call
    /// [`handle_timeout`](Connection::handle_timeout), on the clock it
    /// reports: `None` while no timer runs. A deadline that is not later
    /// than the last time reported means "at once" (a countdown that an
    /// event started, such as the closing one after we sent a Close).
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.poll_timeout()
    }

    /// Whether the driver should close the transport now.
    ///
    /// True once the connection is [`State::Closed`](crate::State::Closed) and its output is
    /// drained, and we are the one to close: the server after the closing
    /// handshake (§7.1.1: "the underlying TCP connection ... SHOULD be
    /// closed first by the server"), either side after failing the
    /// connection or after the peer's end of stream. A client that finished
    /// the closing handshake waits for the server's end of stream, until
    /// the closing timeout ([`Timeouts::close`](crate::Timeouts::close))
    /// runs out.
    pub fn should_close_transport(&self) -> bool {
        let Life::Closed(ended) = &self.life else {
            return false;
        };
        if self.timers.closing_expired() {
            return true;
        }
        self.pending_output_len() == 0 && (self.role == Role::Server || ended.failed || self.eof)
    }

    /// Whether the driver is done with the transport and can drop it: the
    /// connection is closed, the [`Event::Closed`](crate::Event::Closed)
    /// was polled, and either the peer ended the stream after our output
    /// was drained, or the closing timeout ran out (then whatever is
    /// still unsent is given up).
    pub fn is_finished(&self) -> bool {
        let Life::Closed(ended) = &self.life else {
            return false;
        };
        ended.event.is_none()
            && (self.timers.closing_expired() || (self.eof && self.pending_output_len() == 0))
    }

    // ----- the connection's life -----

    /// _Fail the WebSocket Connection_ (§7.1.7): send a Close frame with the
    /// code for this fault, unless we already sent one, and stop reading.
    pub(super) fn fail(&mut self, error: ProtocolError) {
        let sent = match &self.life {
            Life::Open => {
                let frame = CloseFrame::new(error.close_code(), error.close_reason());
                self.queue_close(&frame);
                frame
            }
            Life::Closing(sent) => (**sent).clone(),
            Life::Closed(_) => return,
        };
        self.end(Initiator::Local, Some(sent), None, Some(error), true);
    }

    /// Enters the closed state and prepares the final event.
    pub(super) fn end(
        &mut self,
        initiator: Initiator,
        sent: Option<CloseFrame>,
        received: Option<CloseFrame>,
        error: Option<ProtocolError>,
        failed: bool,
    ) {
        if let Some(io) = self.io.peek_mut() {
            io.input = BytesMut::new();
            io.held = bytes::Bytes::new();
            io.frame = None;
            io.message = None;
        }
        self.timers.start_closing();
        self.life = Life::Closed(Box::new(Ended {
            event: Some(Closed {
                initiator,
                sent,
                received,
                error,
            }),
            failed,
        }));
    }
}
