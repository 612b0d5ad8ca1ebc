//! The state machine after the handshake: bytes in, events out; messages
//! in, bytes out; the time in, deadlines out.
//!
//! - `receive`: frames into messages (the fast path for a whole frame, the
//!   general path for fragments and streaming, the extension's transform);
//! - `send`: messages into frames, and the output queue;
//! - `buffers`: what a driver uses to read straight into the connection
//!   and to lend buffers between connections;
//! - this file: the connection's life (open, closing, closed) and its time.

mod buffers;
mod receive;
mod send;

use bytes::BytesMut;

pub use buffers::{Buffers, ReadBuffer};

use crate::extension::MessageExtension;
use crate::output::Output;
use crate::time::{Expired, Timers};
use crate::{CloseCode, CloseFrame, Closed, Config, Initiator, ProtocolError, Role, Timestamp};

/// Where the closing handshake stands (§7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a Close frame and wait for the peer's. Messages still arrive;
    /// we send nothing more.
    Closing,
    /// Both Close frames were exchanged, or the connection failed, or the
    /// transport ended. Input is ignored from here on.
    Closed,
}

/// One WebSocket connection after a successful handshake, with no I/O.
///
/// # The driver loop
///
/// The connection never touches a socket or a clock. Whoever drives it (the
/// [`blocking`](crate::blocking) adapter, a tokio task, a test) repeats:
///
/// 1. **Input**: pass every byte read from the transport to
///    [`handle_read`](Connection::handle_read) (or read straight into
///    [`read_buffer`](Connection::read_buffer)); when the transport reports
///    end of stream, call [`handle_eof`](Connection::handle_eof).
/// 2. **Time**: when the deadline from
///    [`poll_timeout`](Connection::poll_timeout) has passed, call
///    [`handle_timeout`](Connection::handle_timeout) with the time. Tell
///    the time once when the driver starts, too (the handshakes do it for
///    the connections they make): a connection that is never told the time
///    runs no timer. The heartbeat Ping, the close of a silent peer (1001)
///    and the end of a closing handshake that takes too long all happen
///    here, by the [`Timeouts`](crate::Timeouts) of the configuration.
/// 3. **Events**: call [`poll_event`](Connection::poll_event) until it gives
///    `None`. Frames are decoded here, lazily, so a driver that stops
///    polling stops the work. Handling a Ping or a Close may queue output.
/// 4. **Commands**: [`send_text`](Connection::send_text),
///    [`send_binary`](Connection::send_binary), [`ping`](Connection::ping),
///    [`close`](Connection::close) and friends queue output. They fail only
///    on misuse ([`UsageError`](crate::UsageError)); the connection is then
///    unchanged.
/// 5. **Output**: write [`pending_output`](Connection::pending_output) to
///    the transport and report how much went with
///    [`consume_output`](Connection::consume_output), until nothing is
///    pending (the output may come in several pieces; or write them all at
///    once with [`pending_output_vectored`](Connection::pending_output_vectored)).
///
/// Then wait until the transport has bytes to read, or the deadline of
/// [`poll_timeout`](Connection::poll_timeout) comes, and go round again.
///
/// **Shutdown**: once [`should_close_transport`](Connection::should_close_transport)
/// is true, shut down the transport's sending side (or close it). It becomes
/// true only when the output is drained, so the peer gets our Close frame
/// before the socket goes. Keep reading (the bytes are dropped) until
/// [`is_finished`](Connection::is_finished), so that the peer's last bytes
/// do not make the kernel reset the connection; then drop the transport.
///
/// ```
/// use rfc6455::{Config, Connection, Event, Role, Timestamp};
///
/// let mut server = Connection::new(Role::Server, Config::default());
/// server.handle_timeout(Timestamp::ZERO); // the driver's clock starts
/// // A masked "Hello" text frame from RFC 6455 §5.7.
/// server.handle_read(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// match server.poll_event() {
///     Some(Event::Message(message)) => assert_eq!(message.as_text(), Some("Hello")),
///     other => panic!("unexpected {other:?}"),
/// }
/// server.send_text("Hello").unwrap();
/// assert_eq!(server.pending_output(), b"\x81\x05Hello");
/// // No heartbeat is configured; the only deadline is the closing one,
/// // which runs only once a Close frame is sent.
/// assert_eq!(server.poll_timeout(), None);
/// ```
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: Config,
    /// Open, closing or closed, with what each stage needs.
    life: Life,
    /// The heartbeat and the closing countdown.
    timers: Timers,

    // ----- receiving (receive.rs) -----
    /// Received bytes not yet turned into events. While `frame` is `Some`,
    /// this starts with that frame's unconsumed payload.
    input: BytesMut,
    /// The frame whose header has been decoded and whose payload is arriving.
    frame: Option<receive::FrameInProgress>,
    /// The data message being received, from its first frame to its last.
    message: Option<receive::MessageInProgress>,
    /// The transport reported end of stream.
    eof: bool,

    // ----- sending (send.rs) -----
    /// Bytes to send.
    output: Output,
    /// The fragmented message we are sending, if any: its kind, and
    /// whether the extension transforms it.
    sending: Option<(crate::MessageKind, bool)>,
    /// A reused buffer for the extension's output.
    scratch: Vec<u8>,

    // ----- the extension -----
    /// The negotiated per-message extension (permessage-deflate), if any.
    extension: Option<Box<dyn MessageExtension>>,
    /// RSV bits the extension defines; any other set bit is a fault.
    rsv_allowed: u8,
}

/// A connection's life, from open to closed, each stage with its data.
#[derive(Debug)]
enum Life {
    /// Messages flow both ways.
    Open,
    /// We sent this Close frame and wait for the peer's.
    Closing(CloseFrame),
    /// The closing handshake finished, or the connection failed, or the
    /// transport ended.
    Closed(Box<Ended>),
}

/// How a closed connection ended, and what is left to do.
#[derive(Debug)]
struct Ended {
    /// The final event, until it is polled.
    event: Option<Closed>,
    /// We failed the connection (or gave up on the peer), so closing the
    /// transport is ours to do whatever our role.
    failed: bool,
}

impl Connection {
    /// A connection in the open state, for the given role.
    ///
    /// Normally the handshake gives you one (with any bytes that followed
    /// the handshake already fed in, and the time it was last told); build
    /// one directly when the handshake happened elsewhere, and tell it the
    /// time ([`handle_timeout`](Connection::handle_timeout)) for its
    /// timers to run.
    pub fn new(role: Role, config: Config) -> Connection {
        Connection {
            role,
            timers: Timers::new(&config.timeouts),
            config,
            life: Life::Open,
            input: BytesMut::new(),
            frame: None,
            message: None,
            eof: false,
            output: Output::default(),
            sending: None,
            scratch: Vec::new(),
            extension: None,
            rsv_allowed: 0,
        }
    }

    /// A connection with a negotiated per-message extension. (Unused in a
    /// build without any extension feature.)
    #[allow(dead_code)]
    pub(crate) fn with_extension(
        role: Role,
        config: Config,
        extension: Box<dyn MessageExtension>,
    ) -> Connection {
        let mut conn = Connection::new(role, config);
        conn.rsv_allowed = extension.rsv();
        conn.extension = Some(extension);
        conn
    }

    /// A connection that speaks permessage-deflate with the parameters a
    /// handshake agreed. (The handshakes in [`handshake`](crate::handshake)
    /// do this for you.) The compression level and threshold come from
    /// [`Config::deflate`], or its defaults.
    #[cfg(feature = "deflate")]
    pub fn with_deflate(role: Role, config: Config, params: crate::DeflateParams) -> Connection {
        use crate::extension::deflate::Deflate;
        let deflate = Deflate::new(role, params, &config.deflate.clone().unwrap_or_default());
        Connection::with_extension(role, config, Box::new(deflate))
    }

    /// The permessage-deflate parameters in force, if it was negotiated.
    #[cfg(feature = "deflate")]
    pub fn deflate_params(&self) -> Option<crate::DeflateParams> {
        use crate::extension::deflate::Deflate;
        let extension = self.extension.as_deref()?.as_any();
        Some(extension.downcast_ref::<Deflate>()?.params())
    }

    // ----- getters -----

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the closing handshake stands.
    pub fn state(&self) -> State {
        match self.life {
            Life::Open => State::Open,
            Life::Closing(_) => State::Closing,
            Life::Closed(_) => State::Closed,
        }
    }

    /// Whether [`send_text`](Connection::send_text) and the other data
    /// commands would be accepted now.
    pub fn can_send(&self) -> bool {
        matches!(self.life, Life::Open)
    }

    /// Bytes received but not yet decoded into events.
    pub fn buffered_input(&self) -> usize {
        self.input.len()
    }

    // ----- time -----

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
    /// Call it once when the driver starts, then whenever the deadline of
    /// [`poll_timeout`](Connection::poll_timeout) has passed; calling it
    /// more often is harmless. Bytes received since the last call count as
    /// a sign of life at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let open = self.can_send();
        match self.timers.handle_timeout(now, open) {
            Expired::None => {}
            Expired::Ping => {
                // Open, and a Ping's payload is in range: cannot fail.
                let _ = self.ping(b"");
            }
            Expired::Idle => {
                // "1001 indicates that an endpoint is "going away"" (§7.4.1):
                // we stop waiting for a peer that stopped talking.
                let _ = self.close(CloseCode::GOING_AWAY, "idle timeout");
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
    /// True once the connection is [`State::Closed`] and its output is
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
        self.output.len() == 0 && (self.role == Role::Server || ended.failed || self.eof)
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
            && (self.timers.closing_expired() || (self.eof && self.output.len() == 0))
    }

    // ----- the connection's life -----

    /// _Fail the WebSocket Connection_ (§7.1.7): send a Close frame with the
    /// code for this fault, unless we already sent one, and stop reading.
    fn fail(&mut self, error: ProtocolError) {
        let sent = match &self.life {
            Life::Open => {
                let frame = CloseFrame::new(error.close_code(), error.close_reason());
                self.queue_close(&frame);
                frame
            }
            Life::Closing(sent) => sent.clone(),
            Life::Closed(_) => return,
        };
        self.end(Initiator::Local, Some(sent), None, Some(error), true);
    }

    /// Enters the closed state and prepares the final event.
    fn end(
        &mut self,
        initiator: Initiator,
        sent: Option<CloseFrame>,
        received: Option<CloseFrame>,
        error: Option<ProtocolError>,
        failed: bool,
    ) {
        self.input = BytesMut::new();
        self.frame = None;
        self.message = None;
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
