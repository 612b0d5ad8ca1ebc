//! The state machine after the handshake: bytes in, events out; messages in, bytes out.

use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

#[cfg(feature = "deflate")]
use crate::deflate::{Deflate, DeflateParams, InflateError};
use crate::frame::{Header, OpCode, MAX_HEADER_LEN};
use crate::mask::{apply_mask, extend_masked};
use crate::output::Output;
use crate::utf8::Utf8Validator;
use crate::{
    CloseCode, CloseFrame, Closed, Config, Event, Fragment, Initiator, Message, MessageKind,
    ProtocolError, Role, UsageError, Utf8Bytes,
};

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
///    [`handle_read`](Connection::handle_read); when the transport reports
///    end of stream, call [`handle_eof`](Connection::handle_eof).
/// 2. **Events**: call [`poll_event`](Connection::poll_event) until it gives
///    `None`. Frames are decoded here, lazily, so a driver that stops
///    polling stops the work. Handling a Ping or a Close may queue output.
/// 3. **Commands**: [`send_text`](Connection::send_text),
///    [`send_binary`](Connection::send_binary), [`ping`](Connection::ping),
///    [`close`](Connection::close) and friends queue output. They fail only
///    on misuse ([`UsageError`]); the connection is then unchanged.
/// 4. **Output**: write [`pending_output`](Connection::pending_output) to
///    the transport and report how much went with
///    [`consume_output`](Connection::consume_output), until nothing is
///    pending (the output may come in several pieces; or write them all at
///    once with [`pending_output_vectored`](Connection::pending_output_vectored)).
/// 5. **Shutdown**: once [`should_close_transport`](Connection::should_close_transport)
///    is true, close the transport. It becomes true only when the output is
///    drained, so the peer gets our Close frame before the socket goes.
///
/// ```
/// use rfc6455::{Config, Connection, Event, Role};
///
/// let mut server = Connection::new(Role::Server, Config::default());
/// // A masked "Hello" text frame from RFC 6455 §5.7.
/// server.handle_read(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// match server.poll_event() {
///     Some(Event::Message(message)) => assert_eq!(message.as_text(), Some("Hello")),
///     other => panic!("unexpected {other:?}"),
/// }
/// server.send_text("Hello").unwrap();
/// assert_eq!(server.pending_output(), b"\x81\x05Hello");
/// ```
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: Config,
    state: State,
    /// Received bytes not yet turned into events. While `frame` is `Some`,
    /// this starts with that frame's unconsumed payload.
    input: BytesMut,
    /// The frame whose header has been decoded and whose payload is arriving.
    frame: Option<FrameInProgress>,
    /// The data message being received, from its first frame to its last.
    message: Option<MessageInProgress>,
    /// The transport reported end of stream.
    eof: bool,
    /// We failed the connection because of a peer's fault.
    failed: bool,
    /// The final event, waiting to be polled.
    closed_event: Option<Closed>,
    close_sent: Option<CloseFrame>,
    close_received: Option<CloseFrame>,
    /// Bytes to send.
    output: Output,
    /// The fragmented message we are sending, if any: its kind, and
    /// whether it is compressed.
    sending: Option<(MessageKind, bool)>,
    /// A fixed masking key, for tests; `None` draws a fresh random key per frame.
    fixed_mask: Option<[u8; 4]>,
    /// RSV bits that negotiated extensions define; any other set bit is a fault.
    rsv_allowed: u8,
    /// permessage-deflate, when negotiated.
    #[cfg(feature = "deflate")]
    deflate: Option<Box<Deflate>>,
    /// A reused buffer for compressed output.
    #[cfg(feature = "deflate")]
    scratch: Vec<u8>,
}

/// A connection's receive and send buffers, empty but with their
/// capacity, on their way from one connection to another (see
/// [`Connection::take_buffers`]).
#[derive(Debug, Default)]
pub struct Buffers {
    input: BytesMut,
    output: Vec<u8>,
}

impl Buffers {
    /// The bytes of memory these buffers hold.
    pub fn capacity(&self) -> usize {
        self.input.capacity() + self.output.capacity()
    }
}

/// RSV1: "Per-Message Compressed" under permessage-deflate (RFC 7692 §6).
const RSV1: u8 = 0b100;

/// A server sends payloads at least this long that it holds as `Bytes`
/// without copying them (below, a copy costs less than a separate piece).
const SHARE_MIN: usize = 1024;

/// The most receive buffer reserved ahead of the bytes of a frame.
const MAX_RESERVE_AHEAD: u64 = 16 << 20;

#[derive(Debug)]
struct FrameInProgress {
    header: Header,
    /// Payload bytes not yet split off the front of `input`.
    remaining: u64,
    /// How many bytes at the front of `input` are already unmasked and
    /// checked; at most `remaining`.
    processed: usize,
    /// Payload bytes of this frame unmasked so far: the masking key's phase.
    unmasked: usize,
}

#[derive(Debug)]
struct MessageInProgress {
    kind: MessageKind,
    /// The fragments so far (not used in streaming mode).
    data: BytesMut,
    /// The declared length of every frame so far, for the message limit.
    len: u64,
    utf8: Utf8Validator,
    /// Streaming mode: a piece of this message was already delivered.
    delivered: bool,
    /// RSV1 was set on the first frame: the payload is DEFLATE data.
    compressed: bool,
    /// The inflated payload so far, for a compressed message.
    inflated: Vec<u8>,
    /// Inflated bytes already delivered as fragments (streaming mode).
    drained: usize,
}

/// What one decoding step produced.
enum Step {
    Event(Event),
    /// Progress was made; step again.
    Continue,
    /// Nothing more can be done until more bytes arrive.
    NeedMore,
}

impl Connection {
    /// A connection in the open state, for the given role.
    ///
    /// Normally the handshake gives you one (with any bytes that followed
    /// the handshake already fed in); build one directly when the handshake
    /// happened elsewhere.
    pub fn new(role: Role, config: Config) -> Connection {
        Connection {
            role,
            config,
            state: State::Open,
            input: BytesMut::new(),
            frame: None,
            message: None,
            eof: false,
            failed: false,
            closed_event: None,
            close_sent: None,
            close_received: None,
            output: Output::default(),
            sending: None,
            fixed_mask: None,
            rsv_allowed: 0,
            #[cfg(feature = "deflate")]
            deflate: None,
            #[cfg(feature = "deflate")]
            scratch: Vec::new(),
        }
    }

    /// A connection that speaks permessage-deflate with the parameters a
    /// handshake agreed. (The handshakes in [`handshake`](crate::handshake)
    /// do this for you.) The compression level and threshold come from
    /// [`Config::deflate`], or its defaults.
    #[cfg(feature = "deflate")]
    pub fn with_deflate(role: Role, config: Config, params: DeflateParams) -> Connection {
        let deflate_config = config.deflate.clone().unwrap_or_default();
        let mut conn = Connection::new(role, config);
        conn.deflate = Some(Box::new(Deflate::new(role, params, &deflate_config)));
        conn.rsv_allowed = RSV1;
        conn
    }

    /// The permessage-deflate parameters in force, if it was negotiated.
    #[cfg(feature = "deflate")]
    pub fn deflate_params(&self) -> Option<DeflateParams> {
        self.deflate.as_ref().map(|d| d.params())
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
        self.state
    }

    /// Whether [`send_text`](Connection::send_text) and the other data
    /// commands would be accepted now.
    pub fn can_send(&self) -> bool {
        self.state == State::Open
    }

    /// Bytes received but not yet decoded into events.
    pub fn buffered_input(&self) -> usize {
        self.input.len()
    }

    // ----- input -----

    /// Feeds bytes read from the transport. Decoding happens in
    /// [`poll_event`](Connection::poll_event). Bytes that arrive after the
    /// connection is closed are dropped.
    pub fn handle_read(&mut self, data: &[u8]) {
        if self.state == State::Closed {
            return;
        }
        if let Some(frame) = &self.frame {
            // A large payload is arriving in pieces: make room for the rest
            // of the frame at once. Growing step by step would copy the
            // buffered part again at every step (a third of the time of a
            // 1 MiB frame read in 64 KiB pieces). The frame's length passed
            // the size limits already; without limits, the room made ahead
            // is capped.
            let frame_len = frame.remaining.min(MAX_RESERVE_AHEAD) as usize;
            let after = self.input.len() + data.len();
            if after > self.input.capacity() && frame_len > after {
                // Plus room for one more read like this one: the read that
                // ends the frame carries the start of the next, and must
                // not make the buffer grow (copying the whole frame) then.
                self.input
                    .reserve(frame_len - self.input.len() + data.len());
            }
        }
        self.input.extend_from_slice(data);
    }

    /// The receive buffer with room for at least `size` more bytes, for a
    /// driver that reads straight into it (tokio's `read_buf`, say)
    /// instead of reading elsewhere and calling
    /// [`handle_read`](Connection::handle_read): that saves a copy of every
    /// byte received. **Only append**: bytes appended are input exactly as
    /// if passed to `handle_read`; changing bytes already there corrupts
    /// the stream. Once the connection is closed, appended bytes are
    /// dropped at the next [`poll_event`](Connection::poll_event), as
    /// `handle_read` drops them.
    ///
    /// [`read_size_hint`](Connection::read_size_hint) says how much to ask for.
    pub fn read_buffer(&mut self, size: usize) -> &mut BytesMut {
        if self.input.len() + size > self.input.capacity() {
            self.input.reserve(size);
        }
        &mut self.input
    }

    /// How many bytes the next read should ask for: `default` between
    /// frames, and exactly what is missing of a frame whose payload is
    /// arriving. A read that stops at the frame's end leaves nothing of the
    /// next frame behind it, so the buffer is empty once the message is
    /// handed out, and the next frame needs no copy to a larger buffer.
    pub fn read_size_hint(&self, default: usize) -> usize {
        match &self.frame {
            Some(frame) => {
                let missing = frame.remaining.saturating_sub(self.input.len() as u64);
                (missing.min(MAX_RESERVE_AHEAD) as usize).max(1)
            }
            None => default,
        }
    }

    /// Reports that the transport will deliver no more bytes. Events for
    /// the bytes already fed still come first; then, unless the closing
    /// handshake had finished, [`Event::Closed`] with code 1006.
    pub fn handle_eof(&mut self) {
        self.eof = true;
    }

    /// The next event, or `None` when more input is needed (or the
    /// connection is closed and its [`Event::Closed`] was delivered).
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            if self.state == State::Closed {
                // Bytes read into `read_buffer` after the end are dropped.
                self.input.clear();
                return self
                    .closed_event
                    .take()
                    .map(|closed| Event::Closed(Box::new(closed)));
            }
            match self.step() {
                Ok(Step::Event(event)) => return Some(event),
                Ok(Step::Continue) => {}
                Ok(Step::NeedMore) if self.eof => {
                    // Inside a frame: its header or payload was cut off.
                    // Between the frames of a fragmented message is not.
                    let mid_frame = self.frame.is_some() || !self.input.is_empty();
                    self.finish(
                        Initiator::Remote,
                        Some(ProtocolError::UnexpectedEof { mid_frame }),
                    );
                }
                Ok(Step::NeedMore) => return None,
                Err(error) => self.fail(error),
            }
        }
    }

    /// Decodes as far as the next event.
    fn step(&mut self) -> Result<Step, ProtocolError> {
        if self.frame.is_none() {
            let Some((header, header_len)) = Header::decode(&self.input)? else {
                return Ok(Step::NeedMore);
            };
            self.check_header(&header)?;
            self.input.advance(header_len);
            if let Some(event) = self.whole_frame_message(&header)? {
                return Ok(Step::Event(event));
            }
            self.begin_frame(header);
        }
        let frame = self.frame.as_mut().expect("a frame is in progress");
        let available = (self.input.len() as u64).min(frame.remaining) as usize;
        if available > frame.processed {
            let fresh = &mut self.input[frame.processed..available];
            if let Some(key) = frame.header.mask {
                apply_mask(fresh, key, frame.unmasked);
            }
            frame.unmasked += fresh.len();
            frame.processed = available;
            if !frame.header.opcode.is_control() {
                let message = self
                    .message
                    .as_mut()
                    .expect("data frames belong to a message");
                if message.compressed {
                    #[cfg(feature = "deflate")]
                    inflate(&mut self.deflate, message, fresh, false, &self.config)?;
                // Fail fast: check text as it arrives, not when it is whole.
                } else if message.kind == MessageKind::Text && message.utf8.feed(fresh).is_err() {
                    return Err(ProtocolError::InvalidUtf8);
                }
            }
        }
        if (frame.processed as u64) < frame.remaining {
            if self.config.streaming && !frame.header.opcode.is_control() {
                let message = self
                    .message
                    .as_mut()
                    .expect("data frames belong to a message");
                if message.compressed && !message.inflated.is_empty() {
                    // The compressed bytes are spent; deliver what they made.
                    self.input.advance(frame.processed);
                    frame.remaining -= frame.processed as u64;
                    frame.processed = 0;
                    message.drained += message.inflated.len();
                    let data = Bytes::from(std::mem::take(&mut message.inflated));
                    return Ok(Step::Event(self.fragment(data, false)));
                }
                if !message.compressed && frame.processed > 0 {
                    let data = self.input.split_to(frame.processed).freeze();
                    frame.remaining -= frame.processed as u64;
                    frame.processed = 0;
                    return Ok(Step::Event(self.fragment(data, false)));
                }
            }
            return Ok(Step::NeedMore);
        }
        let frame = self.frame.take().expect("a frame is in progress");
        let payload = self.input.split_to(frame.remaining as usize);
        self.end_frame(frame.header, payload)
    }

    /// The fast path for the common case: an unfragmented, uncompressed
    /// data message whose whole payload is already buffered becomes its
    /// event at once, with no per-frame or per-message state. `None`: take
    /// the general path. The header has passed `check_header`.
    fn whole_frame_message(&mut self, header: &Header) -> Result<Option<Event>, ProtocolError> {
        let kind = match header.opcode {
            OpCode::Text => MessageKind::Text,
            OpCode::Binary => MessageKind::Binary,
            _ => return Ok(None),
        };
        if !header.fin
            || header.rsv != 0
            || self.config.streaming
            || header.len > self.input.len() as u64
        {
            return Ok(None);
        }
        let mut payload = self.input.split_to(header.len as usize);
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        // Short ASCII text is checked in a few word-wide steps (simdutf8's
        // set-up costs more there); anything else takes the full check.
        let short_ascii = payload.len() <= 64 && payload.is_ascii();
        if kind == MessageKind::Text
            && !short_ascii
            && simdutf8::basic::from_utf8(&payload).is_err()
        {
            return Err(ProtocolError::InvalidUtf8);
        }
        Ok(Some(Event::Message(whole(kind, payload.freeze()))))
    }

    /// Checks what the header alone can tell (§5.2, §5.4, §5.5) and the limits.
    fn check_header(&self, header: &Header) -> Result<(), ProtocolError> {
        // "MUST be 0 unless an extension is negotiated that defines meanings
        // for non-zero values. If a nonzero value is received and none of
        // the negotiated extensions defines the meaning of such a nonzero
        // value, the receiving endpoint MUST _Fail the WebSocket
        // Connection_." (§5.2)
        let stray = header.rsv & !self.rsv_allowed;
        if stray != 0 {
            return Err(ProtocolError::ReservedBits(stray));
        }
        // "An endpoint MUST NOT set the "Per-Message Compressed" bit of
        // control frames and non-first fragments of a data message. An
        // endpoint receiving such a frame MUST _Fail the WebSocket
        // Connection_." (RFC 7692 §6.1)
        if header.rsv & RSV1 != 0 && !matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            return Err(ProtocolError::ReservedBits(RSV1));
        }
        // "a client MUST mask all frames that it sends to the server ... A
        // server MUST NOT mask any frames that it sends to the client. A
        // client MUST close a connection if it detects a masked frame." (§5.1)
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if header.opcode.is_control() {
            // "All control frames MUST have a payload length of 125 bytes or
            // less and MUST NOT be fragmented." (§5.5)
            if !header.fin {
                return Err(ProtocolError::FragmentedControl);
            }
            if header.len > 125 {
                return Err(ProtocolError::ControlTooLong(header.len));
            }
            return Ok(());
        }
        match (header.opcode, &self.message) {
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation)
            }
            _ => {}
        }
        if let Some(max) = self.config.max_frame_size {
            if header.len > max as u64 {
                return Err(ProtocolError::FrameTooBig {
                    len: header.len,
                    max,
                });
            }
        }
        if let Some(max) = self.config.max_message_size {
            let len = self
                .message
                .as_ref()
                .map_or(0, |m| m.len)
                .saturating_add(header.len);
            if len > max as u64 {
                return Err(ProtocolError::MessageTooBig { len, max });
            }
        }
        Ok(())
    }

    fn begin_frame(&mut self, header: Header) {
        match header.opcode {
            OpCode::Text | OpCode::Binary => {
                let kind = if header.opcode == OpCode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                self.message = Some(MessageInProgress {
                    kind,
                    data: BytesMut::new(),
                    len: header.len,
                    utf8: Utf8Validator::new(),
                    delivered: false,
                    compressed: header.rsv & RSV1 != 0,
                    inflated: Vec::new(),
                    drained: 0,
                });
            }
            OpCode::Continuation => {
                let message = self.message.as_mut().expect("checked in check_header");
                message.len = message.len.saturating_add(header.len);
            }
            OpCode::Close | OpCode::Ping | OpCode::Pong => {}
        }
        self.frame = Some(FrameInProgress {
            header,
            remaining: header.len,
            processed: 0,
            unmasked: 0,
        });
    }

    /// A frame's payload is complete (and unmasked, and its text checked).
    fn end_frame(&mut self, header: Header, payload: BytesMut) -> Result<Step, ProtocolError> {
        match header.opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                let message = self
                    .message
                    .as_mut()
                    .expect("data frames belong to a message");
                if message.compressed {
                    if header.fin {
                        // The message's DEFLATE data ends here (RFC 7692 §7.2.2).
                        #[cfg(feature = "deflate")]
                        inflate(&mut self.deflate, message, &[], true, &self.config)?;
                    }
                    return self.end_compressed_frame(header.fin);
                }
                if header.fin && message.kind == MessageKind::Text && !message.utf8.is_complete() {
                    return Err(ProtocolError::InvalidUtf8);
                }
                if self.config.streaming {
                    if payload.is_empty() && !header.fin {
                        return Ok(Step::Continue);
                    }
                    return Ok(Step::Event(self.fragment(payload.freeze(), header.fin)));
                }
                if !header.fin {
                    if message.data.is_empty() {
                        message.data = payload;
                    } else {
                        message.data.extend_from_slice(&payload);
                    }
                    return Ok(Step::Continue);
                }
                let mut message = self.message.take().expect("checked above");
                let data = if message.data.is_empty() {
                    payload.freeze()
                } else {
                    message.data.extend_from_slice(&payload);
                    message.data.freeze()
                };
                Ok(Step::Event(Event::Message(whole(message.kind, data))))
            }
            OpCode::Ping => {
                // "Upon receipt of a Ping frame, an endpoint MUST send a Pong
                // frame in response, unless it already received a Close
                // frame." (§5.5.2) Once we sent our Close we send nothing.
                if self.config.auto_pong && self.state == State::Open {
                    self.write_frame(true, OpCode::Pong, 0, &payload);
                }
                Ok(Step::Event(Event::Ping(payload.freeze())))
            }
            OpCode::Pong => Ok(Step::Event(Event::Pong(payload.freeze()))),
            OpCode::Close => {
                let frame = CloseFrame::parse(&payload)?;
                self.close_received = Some(frame.clone());
                let initiator = match self.state {
                    State::Open => {
                        // "If an endpoint receives a Close frame and did not
                        // previously send a Close frame, the endpoint MUST
                        // send a Close frame in response. ... it typically
                        // echos the status code it received." (§5.5.1)
                        self.queue_close(CloseFrame::new(frame.code, ""));
                        Initiator::Remote
                    }
                    _ => Initiator::Local,
                };
                self.finish(initiator, None);
                Ok(Step::Continue)
            }
        }
    }

    /// A frame of a compressed message is complete: its payload was
    /// inflated on arrival, so only the inflated bytes matter now.
    fn end_compressed_frame(&mut self, fin: bool) -> Result<Step, ProtocolError> {
        let message = self
            .message
            .as_mut()
            .expect("data frames belong to a message");
        if fin && message.kind == MessageKind::Text && !message.utf8.is_complete() {
            return Err(ProtocolError::InvalidUtf8);
        }
        if self.config.streaming {
            if message.inflated.is_empty() && !fin {
                return Ok(Step::Continue);
            }
            message.drained += message.inflated.len();
            let data = Bytes::from(std::mem::take(&mut message.inflated));
            return Ok(Step::Event(self.fragment(data, fin)));
        }
        if !fin {
            return Ok(Step::Continue);
        }
        let message = self.message.take().expect("checked above");
        let data = Bytes::from(message.inflated);
        Ok(Step::Event(Event::Message(whole(message.kind, data))))
    }

    /// A streaming-mode piece of the current message.
    fn fragment(&mut self, data: Bytes, last: bool) -> Event {
        let message = self
            .message
            .as_mut()
            .expect("data frames belong to a message");
        let first = !message.delivered;
        message.delivered = true;
        let kind = message.kind;
        if last {
            self.message = None;
        }
        Event::Fragment(Fragment {
            kind,
            data,
            first,
            last,
        })
    }

    /// _Fail the WebSocket Connection_ (§7.1.7): send a Close frame with the
    /// code for this fault, unless we already sent one, and stop reading.
    fn fail(&mut self, error: ProtocolError) {
        if self.state == State::Open {
            self.queue_close(CloseFrame::new(error.close_code(), error.close_reason()));
        }
        self.failed = true;
        self.finish(Initiator::Local, Some(error));
    }

    /// Enters the closed state and prepares the final event.
    fn finish(&mut self, initiator: Initiator, error: Option<ProtocolError>) {
        self.state = State::Closed;
        self.input = BytesMut::new();
        self.frame = None;
        self.message = None;
        self.closed_event = Some(Closed {
            initiator,
            sent: self.close_sent.clone(),
            received: self.close_received.clone(),
            error,
        });
    }

    // ----- commands -----

    /// Queues a text message in one frame.
    pub fn send_text(&mut self, text: &str) -> Result<(), UsageError> {
        self.send(MessageKind::Text, text.as_bytes())
    }

    /// Queues a binary message in one frame.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), UsageError> {
        self.send(MessageKind::Binary, data)
    }

    /// Queues a message in one frame.
    ///
    /// A server sends the payload of a large message (1 KiB or more) as
    /// it is, without copying it into the output: echoing a received
    /// message, or broadcasting one to many connections, costs no copy.
    pub fn send_message(&mut self, message: &Message) -> Result<(), UsageError> {
        let len = message.as_bytes().len();
        if self.role == Role::Server && len >= SHARE_MIN && !self.would_compress(len) {
            self.check_can_start_message()?;
            self.write_header(true, opcode_of(message.kind()), 0, len, None);
            self.output.push_shared(message.clone().into_bytes());
            return Ok(());
        }
        self.send(message.kind(), message.as_bytes())
    }

    /// Whether a message of `len` bytes would be compressed.
    fn would_compress(&self, len: usize) -> bool {
        #[cfg(feature = "deflate")]
        return self
            .deflate
            .as_ref()
            .is_some_and(|d| d.should_compress(len));
        #[cfg(not(feature = "deflate"))]
        {
            let _ = len;
            false
        }
    }

    /// Queues a data message of either kind in one frame.
    ///
    /// For [`MessageKind::Text`] the caller vouches that `data` is UTF-8;
    /// prefer [`send_text`](Connection::send_text), which takes a `&str`.
    pub fn send(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), UsageError> {
        self.check_can_start_message()?;
        #[cfg(feature = "deflate")]
        if let Some(compressed) = self.compress_message(data) {
            self.write_frame(true, opcode_of(kind), RSV1, &compressed);
            self.scratch = compressed;
            return Ok(());
        }
        self.write_frame(true, opcode_of(kind), 0, data);
        Ok(())
    }

    /// The whole message compressed, if permessage-deflate is on and the
    /// message is worth compressing.
    #[cfg(feature = "deflate")]
    fn compress_message(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        let deflate = self
            .deflate
            .as_mut()
            .filter(|d| d.should_compress(data.len()))?;
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        deflate.compress(data, true, &mut out);
        Some(out)
    }

    /// Queues a data message split into frames of at most `fragment_size`
    /// payload bytes (an empty message is one empty frame).
    pub fn send_fragmented(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fragment_size: usize,
    ) -> Result<(), UsageError> {
        if fragment_size == 0 {
            return Err(UsageError::ZeroFragmentSize);
        }
        self.check_can_start_message()?;
        #[cfg(feature = "deflate")]
        if let Some(compressed) = self.compress_message(data) {
            // The compressed bytes are what gets fragmented (RFC 7692 §6.1).
            self.write_fragments(kind, RSV1, &compressed, fragment_size);
            self.scratch = compressed;
            return Ok(());
        }
        self.write_fragments(kind, 0, data, fragment_size);
        Ok(())
    }

    fn write_fragments(&mut self, kind: MessageKind, rsv: u8, data: &[u8], fragment_size: usize) {
        let mut chunks = data.chunks(fragment_size).peekable();
        let (mut opcode, mut rsv) = (opcode_of(kind), rsv);
        if chunks.peek().is_none() {
            self.write_frame(true, opcode, rsv, &[]);
        }
        while let Some(chunk) = chunks.next() {
            self.write_frame(chunks.peek().is_none(), opcode, rsv, chunk);
            // Continuations carry neither the opcode nor RSV1.
            (opcode, rsv) = (OpCode::Continuation, 0);
        }
    }

    /// Queues one frame of a message sent in pieces, for messages too large
    /// to hold whole. The first call starts a message of `kind`; each later
    /// call continues it (and `kind` is ignored) until one with `last` set.
    /// Control frames may be sent in between.
    ///
    /// For text, the concatenation of the pieces must be UTF-8; a piece may
    /// end inside a character.
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        last: bool,
    ) -> Result<(), UsageError> {
        if self.state != State::Open {
            return Err(UsageError::Closed);
        }
        let (opcode, compressed) = match self.sending {
            Some((_, compressed)) => (OpCode::Continuation, compressed),
            None => (opcode_of(kind), self.can_compress_stream()),
        };
        self.sending = if last { None } else { Some((kind, compressed)) };
        #[cfg(feature = "deflate")]
        if compressed {
            let deflate = self
                .deflate
                .as_mut()
                .expect("checked when the message began");
            let mut out = std::mem::take(&mut self.scratch);
            out.clear();
            deflate.compress(data, last, &mut out);
            let rsv = if opcode == OpCode::Continuation {
                0
            } else {
                RSV1
            };
            self.write_frame(last, opcode, rsv, &out);
            self.scratch = out;
            return Ok(());
        }
        self.write_frame(last, opcode, 0, data);
        Ok(())
    }

    /// Queues a Ping with up to 125 bytes of payload.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.send_control(OpCode::Ping, payload)
    }

    /// Queues an unsolicited Pong (a one-way heartbeat, §5.5.3). Pongs that
    /// answer Pings are sent automatically unless
    /// [`auto_pong`](Config::auto_pong) is off.
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.send_control(OpCode::Pong, payload)
    }

    /// Starts the closing handshake: queues a Close frame and moves to
    /// [`State::Closing`]. Messages may still arrive until the peer's Close.
    ///
    /// Use [`CloseCode::NO_STATUS`] to send a Close frame with no payload.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), UsageError> {
        if self.state != State::Open {
            return Err(UsageError::Closed);
        }
        if code != CloseCode::NO_STATUS && !code.is_sendable() {
            return Err(UsageError::InvalidCloseCode(code.0));
        }
        if reason.len() > CloseFrame::MAX_REASON
            || (code == CloseCode::NO_STATUS && !reason.is_empty())
        {
            return Err(UsageError::ReasonTooLong(reason.len()));
        }
        self.queue_close(CloseFrame::new(code, reason));
        self.state = State::Closing;
        Ok(())
    }

    /// Whether a message sent in pieces will be compressed.
    fn can_compress_stream(&self) -> bool {
        #[cfg(feature = "deflate")]
        return self.deflate.as_ref().is_some_and(|d| d.can_compress());
        #[cfg(not(feature = "deflate"))]
        false
    }

    fn check_can_start_message(&self) -> Result<(), UsageError> {
        if self.state != State::Open {
            return Err(UsageError::Closed);
        }
        if self.sending.is_some() {
            return Err(UsageError::MessageInProgress);
        }
        Ok(())
    }

    fn send_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), UsageError> {
        if self.state != State::Open {
            return Err(UsageError::Closed);
        }
        if payload.len() > 125 {
            return Err(UsageError::ControlTooLong(payload.len()));
        }
        self.write_frame(true, opcode, 0, payload);
        Ok(())
    }

    fn queue_close(&mut self, frame: CloseFrame) {
        let mut payload = Vec::with_capacity(2 + frame.reason.len());
        frame.write_payload(&mut payload);
        self.write_frame(true, OpCode::Close, 0, &payload);
        self.close_sent = Some(frame);
    }

    /// Encodes one frame into the output, masked if we are the client.
    fn write_frame(&mut self, fin: bool, opcode: OpCode, rsv: u8, payload: &[u8]) {
        let mask = match self.role {
            Role::Client => Some(self.fixed_mask.unwrap_or_else(rand::random)),
            Role::Server => None,
        };
        self.output.buf().reserve(MAX_HEADER_LEN + payload.len());
        self.write_header(fin, opcode, rsv, payload.len(), mask);
        let output = self.output.buf();
        match mask {
            // One pass: the payload is masked as it is copied.
            Some(key) => extend_masked(output, payload, key),
            None => output.extend_from_slice(payload),
        }
    }

    /// Encodes a frame header into the output.
    fn write_header(
        &mut self,
        fin: bool,
        opcode: OpCode,
        rsv: u8,
        len: usize,
        mask: Option<[u8; 4]>,
    ) {
        let header = Header {
            fin,
            rsv,
            opcode,
            mask,
            len: len as u64,
        };
        let mut head = [0; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        self.output.buf().extend_from_slice(&head[..head_len]);
    }

    /// Uses `key` to mask every frame we send (client role), instead of a
    /// fresh random key per frame; `None` goes back to random keys.
    ///
    /// For tests and examples only: §10.3 requires keys the peer cannot
    /// predict.
    pub fn set_fixed_mask(&mut self, key: Option<[u8; 4]>) {
        self.fixed_mask = key;
    }

    // ----- output -----

    /// Bytes waiting to be written to the transport.
    ///
    /// This is the next contiguous piece of the output: when it is written,
    /// more may follow. [`pending_output_len`](Connection::pending_output_len)
    /// counts all of it, and
    /// [`pending_output_vectored`](Connection::pending_output_vectored)
    /// gives all of it for one vectored write.
    pub fn pending_output(&self) -> &[u8] {
        self.output.pending()
    }

    /// How many bytes are waiting to be written, in all pieces.
    pub fn pending_output_len(&self) -> usize {
        self.output.len()
    }

    /// Fills `slices` with the pieces of the pending output, in order, for
    /// one vectored write (`write_vectored`); returns how many it filled.
    /// Report what was written with
    /// [`consume_output`](Connection::consume_output), as usual.
    pub fn pending_output_vectored<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        self.output.pending_vectored(slices)
    }

    /// Records that the first `n` bytes of the pending output were
    /// written (`n` may span several pieces after a vectored write).
    ///
    /// # Panics
    /// If `n` is more than is pending: that is a bug in the driver.
    pub fn consume_output(&mut self, n: usize) {
        self.output.consume(n);
    }

    /// Whether the driver should close the transport now.
    ///
    /// True once the connection is [`State::Closed`] and its output is
    /// drained, and we are the one to close: the server after the closing
    /// handshake (§7.1.1: "the underlying TCP connection ... SHOULD be
    /// closed first by the server"), either side after failing the
    /// connection or after the peer's end of stream. A client that finished
    /// the closing handshake waits for the server's end of stream; its
    /// driver should stop waiting after a timeout of its choice.
    pub fn should_close_transport(&self) -> bool {
        self.state == State::Closed
            && self.output.len() == 0
            && (self.role == Role::Server || self.failed || self.eof)
    }

    /// The bytes of memory the receive and send buffers hold now, used or not.
    pub fn buffer_capacity(&self) -> usize {
        self.input.capacity() + self.output.capacity()
    }

    /// Takes out the receive and send buffers, with their capacity, if
    /// both are empty and there is capacity to take; the connection goes on
    /// with unallocated ones. With [`give_buffers`](Connection::give_buffers)
    /// a driver of many connections can pass buffers from connections that
    /// wait to connections that have work, so that waiting connections hold
    /// no buffer memory and busy ones allocate none.
    pub fn take_buffers(&mut self) -> Option<Buffers> {
        let idle = self.input.is_empty() && self.frame.is_none() && self.output.len() == 0;
        if !idle || self.buffer_capacity() == 0 {
            return None;
        }
        Some(Buffers {
            input: std::mem::take(&mut self.input),
            output: self.output.take_buf().expect("nothing is pending"),
        })
    }

    /// Installs buffers from [`take_buffers`](Connection::take_buffers)
    /// (of this or another connection) where this connection has none
    /// allocated. Buffers it does not need are dropped.
    pub fn give_buffers(&mut self, buffers: Buffers) {
        if self.input.capacity() == 0 && self.input.is_empty() && self.frame.is_none() {
            self.input = buffers.input;
            self.input.clear();
        }
        self.output.give_buf(buffers.output);
    }

    /// Releases the receive and send buffers if they are empty, so an idle
    /// connection holds no buffer memory. Call it when the connection goes
    /// quiet; the buffers are allocated again when bytes arrive.
    pub fn shrink_buffers(&mut self) {
        if self.input.is_empty() && self.frame.is_none() {
            self.input = BytesMut::new();
        }
        drop(self.output.take_buf());
    }
}

/// Inflates the newly arrived part of a compressed message (or, with
/// `last`, finishes it), checking the inflated text and the size limit.
#[cfg(feature = "deflate")]
fn inflate(
    deflate: &mut Option<Box<Deflate>>,
    message: &mut MessageInProgress,
    input: &[u8],
    last: bool,
    config: &Config,
) -> Result<(), ProtocolError> {
    let deflate = deflate
        .as_mut()
        .expect("RSV1 is accepted only when deflate was negotiated");
    let text = message.kind == MessageKind::Text;
    let start = message.inflated.len();
    // The limit is on the whole inflated message; in streaming mode part of
    // it may already have been delivered, so what is left is the budget.
    let limit = config.max_message_size;
    let budget = limit.map(|limit| limit.saturating_sub(message.drained));
    let result = deflate.decompress(input, last, &mut message.inflated, budget);
    // Whatever stopped the inflater, the text it produced up to there is
    // checked first: the first fault in the stream decides the code, and
    // so the code does not depend on how the bytes were split into reads.
    if text && message.utf8.feed(&message.inflated[start..]).is_err() {
        return Err(ProtocolError::InvalidUtf8);
    }
    match result {
        Ok(()) => Ok(()),
        Err(InflateError::Corrupt) => Err(ProtocolError::InvalidCompression { text }),
        Err(InflateError::TooBig) => Err(ProtocolError::MessageTooBig {
            len: (message.drained + message.inflated.len()) as u64,
            max: limit.unwrap_or(usize::MAX),
        }),
    }
}

/// A received message, whole; text was checked as it arrived.
fn whole(kind: MessageKind, data: Bytes) -> Message {
    match kind {
        MessageKind::Text => Message::Text(Utf8Bytes::from_validated(data)),
        MessageKind::Binary => Message::Binary(data),
    }
}

fn opcode_of(kind: MessageKind) -> OpCode {
    match kind {
        MessageKind::Text => OpCode::Text,
        MessageKind::Binary => OpCode::Binary,
    }
}
