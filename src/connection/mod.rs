//! The state machine after the handshake: bytes in, events out; messages
//! in, bytes out; the time in, deadlines out.
//!
//! - `receive`: frames into messages (the fast path for a whole frame, the
//!   general path for fragments and streaming, the extension's transform);
//! - `send`: messages into frames, and the output queue;
//! - `life`: time (the heartbeat, the closing deadline), failing and
//!   ending the connection, and when the transport may go;
//! - `buffers`: what a driver uses to read straight into the connection
//!   and to lend buffers between connections;
//! - this file: the connection's state, and its getters.

mod buffers;
mod life;
mod output;
mod receive;
mod send;

use alloc::boxed::Box;
use alloc::vec::Vec;
use bytes::{Bytes, BytesMut};

pub use buffers::{Buffers, Plumbing, ReadBuffer, Unread};

use crate::extension::MessageExtension;
use crate::time::Timers;
use crate::{CloseFrame, Closed, Config, Role, UsageError};
use output::Output;

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
/// blocking driver, a tokio task, a test) repeats:
///
/// 1. **Input**: pass every byte read from the transport to
///    [`handle_read`](Connection::handle_read) (or read straight into
///    [`read_buffer`](crate::plumbing::Plumbing::read_buffer)); when the transport reports
///    end of stream, call [`handle_eof`](Connection::handle_eof).
/// 2. **Time**: call [`handle_timeout`](Connection::handle_timeout) with
///    the time after a read, and whenever the deadline from
///    [`poll_timeout`](Connection::poll_timeout) has passed (calling it on
///    every turn is simplest). Tell the time once when the driver starts,
///    too (the handshakes do it for the connections they make): a
///    connection that is never told the time runs no timer. The heartbeat
///    Ping, the close of a silent peer (1001) and the end of a closing
///    handshake that takes too long all happen here, by the
///    [`Timeouts`](crate::Timeouts) of the configuration.
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
///    once with [`pending_output_pieces`](crate::plumbing::Plumbing::pending_output_pieces)).
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
    /// What it keeps of its [`Config`] (the timeouts are the timers').
    settings: Settings,
    /// [`Config::auto_pong`].
    auto_pong: bool,
    /// [`Config::streaming`].
    streaming: bool,
    /// Open, closing or closed, with what each stage needs.
    life: Life,
    /// The heartbeat and the closing countdown.
    timers: Timers,
    /// The bytes received and to send, and the frame and message on their
    /// way: none at all while the connection waits with nothing in them.
    io: IoSlot,
    /// The transport reported end of stream.
    eof: bool,

    // ----- sending (send.rs) -----
    /// The fragmented message we are sending, if any: its kind, and
    /// whether the extension transforms it.
    sending: Option<(crate::MessageKind, bool)>,
    /// A payload only this connection sends is copied into the output
    /// below this size, and goes out as a piece of its own from it
    /// (`Plumbing::copy_below`).
    copy_below: u32,

    // ----- the extension -----
    /// The negotiated per-message extension (permessage-deflate), if any.
    extension: Option<Box<Negotiated>>,
    /// RSV bits the extension defines; any other set bit is a fault.
    rsv_allowed: u8,
}

/// What a connection holds while it has work: the bytes received and not
/// yet decoded, the frame and the message arriving, the bytes to send.
///
/// Most of the connections of a busy server wait for their peer with none
/// of this: an `Io` is allocated when bytes or a command come, and freed
/// when the connection is left with nothing in it (its buffers taken,
/// [`Plumbing::take_buffers`](crate::plumbing::Plumbing::take_buffers)),
/// so that a waiting connection is the size of its settings, its timers
/// and its state.
#[derive(Debug, Default)]
struct Io {
    // ----- receiving (receive.rs) -----
    /// Received bytes not yet turned into events. While `frame` is `Some`,
    /// this starts with that frame's unconsumed payload.
    input: BytesMut,
    /// Received bytes a server's transport handed over owned
    /// ([`handle_read_bytes`](crate::plumbing::Plumbing::handle_read_bytes))
    /// while `input` was empty: a whole masked payload in them is unmasked
    /// as it is copied out, and the rest joins `input` before it is decoded.
    held: Bytes,
    /// The frame whose header has been decoded and whose payload is arriving.
    frame: Option<receive::FrameInProgress>,
    /// The data message being received, from its first frame to its last.
    message: Option<receive::MessageInProgress>,

    // ----- sending (send.rs) -----
    /// Bytes to send.
    output: Output,
}

impl Io {
    /// Holds nothing: no bytes, no buffer memory, nothing under way.
    fn is_vacant(&self) -> bool {
        self.input.is_empty()
            && self.input.capacity() == 0
            && self.held.is_empty()
            && self.frame.is_none()
            && self.message.is_none()
            && self.output.len() == 0
            && self.output.capacity() == 0
    }
}

/// A connection's [`Io`], allocated on first use.
#[derive(Debug, Default)]
struct IoSlot(Option<Box<Io>>);

impl IoSlot {
    /// The `Io`, allocated if there is none.
    #[inline]
    fn get(&mut self) -> &mut Io {
        if self.0.is_none() {
            self.allocate();
        }
        self.0.as_deref_mut().expect("allocated above")
    }

    /// Allocates the `Io`: out of line, so that the paths that find one
    /// (nearly all) stay small.
    #[cold]
    #[inline(never)]
    fn allocate(&mut self) {
        self.0 = Some(Box::default());
    }

    /// The `Io`, if there is one.
    #[inline]
    fn peek(&self) -> Option<&Io> {
        self.0.as_deref()
    }

    /// The `Io`, if there is one, to change.
    #[inline]
    fn peek_mut(&mut self) -> Option<&mut Io> {
        self.0.as_deref_mut()
    }

    /// Frees the `Io` if it holds nothing.
    fn free_if_vacant(&mut self) {
        if self.0.as_deref().is_some_and(Io::is_vacant) {
            self.0 = None;
        }
    }
}

/// What an open connection keeps of its [`Config`]: the limits, the
/// delivery and the key source. The handshake's parts (the head's limits,
/// the PROXY protocol, the handshake's timeout, the deflate settings) stay
/// with the handshake, and the other timeouts are in the timers: every
/// connection carries this, so it holds nothing else.
#[derive(Debug)]
struct Settings {
    /// [`Config::max_frame_size`]; `usize::MAX` for none.
    max_frame_size: usize,
    /// [`Config::max_message_size`]; `usize::MAX` for none.
    max_message_size: usize,
    /// [`Config::mask_keys`].
    mask_keys: crate::MaskKeys,
}

impl Settings {
    /// The frame size limit, if any.
    fn max_frame_size(&self) -> Option<usize> {
        (self.max_frame_size != usize::MAX).then_some(self.max_frame_size)
    }

    /// The message size limit, if any.
    fn max_message_size(&self) -> Option<usize> {
        (self.max_message_size != usize::MAX).then_some(self.max_message_size)
    }
}

/// The negotiated per-message extension, and the buffer it encodes into
/// (reused from message to message). Boxed in the connection: most
/// connections have none, and pay a pointer for it.
#[derive(Debug)]
struct Negotiated {
    codec: Box<dyn MessageExtension>,
    scratch: Vec<u8>,
}

/// A connection's life, from open to closed, each stage with its data.
#[derive(Debug)]
enum Life {
    /// Messages flow both ways.
    Open,
    /// We sent this Close frame and wait for the peer's (boxed: an open
    /// connection, which is most of them, pays a pointer for it).
    Closing(Box<CloseFrame>),
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
    ///
    /// # Panics
    /// For a client whose configuration has no key source
    /// ([`MaskKeys::Unset`](crate::MaskKeys::Unset)); [`try_new`](Connection::try_new)
    /// returns that as an error instead.
    pub fn new(role: Role, config: Config) -> Connection {
        match Connection::try_new(role, config) {
            Ok(conn) => conn,
            Err(_) => panic!("a client connection needs Config::mask_keys"),
        }
    }

    /// A connection in the open state, or [`UsageError::NoKeySource`] for
    /// a client without a key source to mask its frames with.
    pub fn try_new(role: Role, config: Config) -> Result<Connection, UsageError> {
        if role == Role::Client && !config.mask_keys.is_set() {
            return Err(UsageError::NoKeySource);
        }
        Ok(Connection {
            role,
            timers: Timers::new(&config.timeouts),
            settings: Settings {
                max_frame_size: config.max_frame_size.unwrap_or(usize::MAX),
                max_message_size: config.max_message_size.unwrap_or(usize::MAX),
                mask_keys: config.mask_keys,
            },
            auto_pong: config.auto_pong,
            streaming: config.streaming,
            life: Life::Open,
            io: IoSlot::default(),
            eof: false,
            sending: None,
            copy_below: send::COPY_BELOW as u32,
            extension: None,
            rsv_allowed: 0,
        })
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
        conn.extension = Some(Box::new(Negotiated {
            codec: extension,
            scratch: Vec::new(),
        }));
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
        let extension = self.extension.as_deref()?.codec.as_any();
        Some(extension.downcast_ref::<Deflate>()?.params())
    }

    // ----- getters -----

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether messages are delivered in pieces as they arrive
    /// ([`Config::streaming`]).
    pub fn is_streaming(&self) -> bool {
        self.streaming
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
    #[inline]
    pub fn can_send(&self) -> bool {
        matches!(self.life, Life::Open)
    }

    /// Bytes received but not yet decoded into events.
    pub fn buffered_input(&self) -> usize {
        self.io
            .peek()
            .map_or(0, |io| io.input.len() + io.held.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plumbing::Plumbing;
    use crate::{Event, MessageKind};

    /// A client's frames, masked, as the server receives them.
    fn client_frames(f: impl FnOnce(&mut Connection)) -> Vec<u8> {
        let config = Config {
            mask_keys: crate::MaskKeys::Fixed([1, 2, 3, 4]),
            ..Config::default()
        };
        let mut client = Connection::new(Role::Client, config);
        f(&mut client);
        let wire: Vec<u8> = client.pending_output_pieces().flatten().copied().collect();
        client.consume_output(wire.len());
        wire
    }

    /// Takes the buffers back as a driver of many connections does when
    /// the connection waits.
    fn wait(conn: &mut Connection) {
        drop(conn.take_buffers());
        conn.shrink_buffers();
    }

    #[test]
    fn a_connection_that_waits_with_nothing_under_way_holds_no_io() {
        let mut server = Connection::new(Role::Server, Config::default());
        assert!(
            server.io.peek().is_none(),
            "nothing is allocated before work"
        );
        server.handle_read(&client_frames(|c| c.send_text("hello").unwrap()));
        let Some(Event::Message(message)) = server.poll_event() else {
            panic!("the message");
        };
        server.send(&message).unwrap();
        assert!(server.io.peek().is_some());
        let n = server.pending_output_len();
        server.consume_output(n);
        wait(&mut server);
        assert!(
            server.io.peek().is_none(),
            "freed once nothing is under way"
        );
        assert_eq!(server.poll_event().map(|_| ()), None);
        assert!(
            server.io.peek().is_none(),
            "polling with nothing to do allocates nothing"
        );
    }

    #[test]
    fn a_message_under_way_keeps_its_fragments_while_the_connection_waits() {
        let first = client_frames(|c| c.send_fragment(MessageKind::Text, b"hel", false).unwrap());
        let last = client_frames(|c| {
            c.send_fragment(MessageKind::Text, b"", false).unwrap();
            let n = c.pending_output_len();
            c.consume_output(n);
            c.send_fragment(MessageKind::Text, b"lo", true).unwrap();
        });
        let mut server = Connection::new(Role::Server, Config::default());
        server.handle_read(&first);
        assert!(
            server.poll_event().is_none(),
            "the message is not whole yet"
        );
        wait(&mut server);
        assert!(server.io.peek().is_some(), "the first fragment is kept");
        server.handle_read(&last);
        match server.poll_event() {
            Some(Event::Message(message)) => assert_eq!(message.as_text(), Some("hello")),
            other => panic!("expected the whole message, got {other:?}"),
        }
    }
}
