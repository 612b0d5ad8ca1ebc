//! Receiving: frames into messages.
//!
//! One shape for every message: a header is decoded and checked; its
//! payload is unmasked (and, for text, checked) as it arrives; at the end
//! of a frame the payload joins its message. The fast path takes a whole
//! unfragmented frame that is already buffered straight to its event. A
//! message whose first frame carries the extension's RSV bits goes through
//! the extension's transform as it arrives (permessage-deflate inflates it).

use alloc::boxed::Box;
use alloc::vec::Vec;
use bytes::{Buf, Bytes};

use super::buffers::{Unread, MAX_RESERVE_AHEAD};
use super::{Connection, Io, Life};
use crate::extension::DecodeError;
use crate::frame::{Header, OpCode};
use crate::mask::{apply_mask, extend_masked};
use crate::message::Received;
use crate::utf8::Utf8Validator;
use crate::{
    CloseCode, CloseFrame, Event, Fragment, Initiator, Message, MessageKind, MessageRef,
    ProtocolError, Role, Utf8Bytes,
};

#[derive(Debug)]
pub(super) struct FrameInProgress {
    header: Header,
    /// Payload bytes not yet split off the front of `input`.
    pub(super) remaining: u64,
    /// How many bytes at the front of `input` are already unmasked and
    /// checked; at most `remaining`.
    processed: usize,
    /// Payload bytes of this frame unmasked so far: the masking key's phase.
    unmasked: usize,
}

#[derive(Debug)]
pub(super) struct MessageInProgress {
    kind: MessageKind,
    /// The fragments so far, for an untransformed message outside
    /// streaming mode; for a transformed one, its decoded payload so far
    /// (in streaming mode, since the last piece delivered).
    data: Vec<u8>,
    /// The declared length of every frame so far, for the message limit.
    len: u64,
    utf8: Utf8Validator,
    /// Streaming mode: a piece of this message was already delivered.
    delivered: bool,
    /// The first frame carried the extension's RSV bits: the payload is
    /// the extension's (DEFLATE data, say), decoded as it arrives.
    transformed: bool,
    /// Decoded bytes already delivered as fragments (streaming mode).
    drained: usize,
}

/// Appends a fragment to a message being assembled. The assembly has an
/// allocation of its own (a fragment split from the receive buffer would
/// keep the whole receive buffer alive). It starts at four times the first
/// fragment (a message in fragments rarely has only two), then doubles,
/// never past the message limit: with 1 KiB frames under a 4 KiB limit, a
/// 4 KiB message is one allocation of 4 KiB, never regrown.
fn append(data: &mut Vec<u8>, fragment: &[u8], max: Option<usize>) {
    let needed = data.len() + fragment.len();
    if needed > data.capacity() {
        let grown = if data.capacity() == 0 {
            needed.saturating_mul(4)
        } else {
            needed.max(data.capacity() * 2)
        };
        let capacity = max.map_or(grown, |max| grown.min(max).max(needed));
        data.reserve_exact(capacity - data.len());
    }
    data.extend_from_slice(fragment);
}

/// What one decoding step produced.
enum Step {
    Event(Event),
    /// Progress was made; step again.
    Continue,
    /// Nothing more can be done until more bytes arrive.
    NeedMore,
}

impl Io {
    /// Nothing received waits here: no bytes, held or copied, and no
    /// frame under way.
    pub(super) fn holds_no_input(&self) -> bool {
        self.input.is_empty() && self.held.is_empty() && self.frame.is_none()
    }

    /// Moves held input into `input`, where the general decoder reads it.
    pub(super) fn spill_held(&mut self) {
        if !self.held.is_empty() {
            let held = core::mem::take(&mut self.held);
            self.append_input(&held);
        }
    }

    /// Appends to `input`, making room for a large frame's whole payload
    /// at once.
    fn append_input(&mut self, data: &[u8]) {
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
}

impl Connection {
    /// Feeds bytes read from the transport. Decoding happens in
    /// [`poll_event`](Connection::poll_event). Bytes that arrive after the
    /// connection is closed are dropped.
    pub fn handle_read(&mut self, data: &[u8]) {
        if matches!(self.life, Life::Closed(_)) || data.is_empty() {
            return;
        }
        self.timers.heard();
        let io = self.io.get();
        io.spill_held();
        io.append_input(data);
    }

    /// Input handed over owned (for [`Plumbing::handle_read_bytes`]): a
    /// server keeps it as it is while nothing else is buffered, so a
    /// masked payload in it is unmasked as it is copied out.
    ///
    /// [`Plumbing::handle_read_bytes`]: crate::plumbing::Plumbing::handle_read_bytes
    pub(super) fn hold_input(&mut self, data: Bytes) {
        if matches!(self.life, Life::Closed(_)) || data.is_empty() {
            return;
        }
        self.timers.heard();
        let io = self.io.get();
        if self.role == Role::Server && io.input.is_empty() && io.held.is_empty() {
            io.held = data;
        } else {
            io.spill_held();
            io.append_input(&data);
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
    // A fast path inlined into the driver where there is `std` (a server:
    // 10 to 17 % more pipelined 16 B echoes through tokio); none without
    // it (a microcontroller: 1.1 KB of flash).
    #[cfg_attr(feature = "std", inline(always))]
    pub fn poll_event(&mut self) -> Option<Event> {
        #[cfg(feature = "std")]
        match self.whole_message_first() {
            Ok(Some(event)) => return Some(event),
            Ok(None) => {}
            Err(error) => self.fail(error),
        }
        self.poll_event_general()
    }

    /// The first step of [`poll_event`](Connection::poll_event) for its
    /// commonest case, in the caller's body: a whole message buffered,
    /// nothing else under way. Returned from a call, the event went
    /// through memory and was read back at other widths than it was
    /// written, which stalls at every return on its way out.
    #[cfg(feature = "std")]
    #[inline(always)]
    fn whole_message_first(&mut self) -> Result<Option<Event>, ProtocolError> {
        let Some(io) = self.io.peek() else {
            return Ok(None);
        };
        if matches!(self.life, Life::Closed(_)) || !io.held.is_empty() || io.frame.is_some() {
            return Ok(None);
        }
        let Some((header, header_len)) = Header::decode_inline(&io.input)? else {
            return Ok(None);
        };
        if whole_kind(self.streaming, &header, io.input.len() - header_len).is_none() {
            return Ok(None);
        }
        self.check_header(&header)?;
        self.io.get().input.advance(header_len);
        self.whole_frame_message(&header)
    }

    /// Every step of [`poll_event`](Connection::poll_event) but its fast path.
    #[cfg_attr(feature = "std", inline(never))]
    fn poll_event_general(&mut self) -> Option<Event> {
        loop {
            if let Life::Closed(ended) = &mut self.life {
                // Bytes read into `read_buffer` after the end are dropped.
                if let Some(io) = self.io.peek_mut() {
                    io.input.clear();
                    io.held = Bytes::new();
                }
                return ended
                    .event
                    .take()
                    .map(|closed| Event::Closed(Box::new(closed)));
            }
            match self.step() {
                Ok(Step::Event(event)) => return Some(event),
                Ok(Step::Continue) => {}
                Ok(Step::NeedMore) if self.eof => {
                    // Inside a frame: its header or payload was cut off.
                    // Between the frames of a fragmented message is not.
                    let mid_frame = self
                        .io
                        .peek()
                        .is_some_and(|io| io.frame.is_some() || !io.input.is_empty());
                    let sent = match &self.life {
                        Life::Closing(sent) => Some((**sent).clone()),
                        _ => None,
                    };
                    let error = ProtocolError::UnexpectedEof { mid_frame };
                    self.end(Initiator::Remote, sent, None, Some(error), false);
                }
                // Everything received was looked at, and the peer has not
                // answered our Close in time: give up on it.
                Ok(Step::NeedMore) if self.timers.closing_expired() => {
                    self.fail(ProtocolError::Timeout)
                }
                Ok(Step::NeedMore) => return None,
                Err(error) => self.fail(error),
            }
        }
    }

    /// [`Plumbing::poll_event_from`](crate::plumbing::Plumbing::poll_event_from).
    /// Inlined into the driver's loop with its fast path, so that the
    /// message lent comes back in registers (returned through memory, it
    /// was read back at other widths than it was written, which stalls).
    #[inline(always)]
    pub(super) fn poll_event_in_place<'a>(
        &mut self,
        unread: &mut Unread<'a>,
    ) -> Option<Received<'a>> {
        if !unread.is_empty() {
            match self.whole_message_in_place(unread) {
                Ok(Some(message)) => return Some(Received::Message(message)),
                Ok(None) => {}
                Err(error) => self.fail(error),
            }
        }
        self.poll_event_in_general(unread)
    }

    /// The general path, for the frame at the start of `unread` and all
    /// after it (once the connection is closed, `handle_read` drops them).
    #[inline(never)]
    fn poll_event_in_general<'a>(&mut self, unread: &mut Unread<'a>) -> Option<Received<'a>> {
        if !unread.is_empty() {
            self.handle_read(unread.take_all());
        }
        self.poll_event().map(Received::Event)
    }

    /// The fast path of [`whole_frame_message`](Connection::whole_frame_message)
    /// on bytes that are not the connection's: a whole unfragmented,
    /// untransformed message at the start of `unread`, while the
    /// connection has nothing buffered, is unmasked and checked where it
    /// lies. `None`: take the general path.
    #[inline(always)]
    fn whole_message_in_place<'a>(
        &mut self,
        unread: &mut Unread<'a>,
    ) -> Result<Option<MessageRef<'a>>, ProtocolError> {
        let buffered = self.io.peek().is_some_and(|io| !io.holds_no_input());
        if buffered || matches!(self.life, Life::Closed(_)) {
            return Ok(None);
        }
        let Some((header, header_len)) = Header::decode_inline(unread.rest())? else {
            return Ok(None);
        };
        let available = unread.len() - header_len;
        let Some(kind) = whole_kind(self.streaming, &header, available) else {
            return Ok(None);
        };
        self.check_header(&header)?;
        self.timers.heard();
        let payload = unread.take(header_len, header.len as usize);
        if let Some(key) = header.mask {
            apply_mask(payload, key, 0);
        }
        Ok(Some(match kind {
            MessageKind::Text => MessageRef::text(checked_text(payload)?),
            MessageKind::Binary => MessageRef::binary(payload),
        }))
    }

    /// Decodes as far as the next event.
    fn step(&mut self) -> Result<Step, ProtocolError> {
        let Some(io) = self.io.peek_mut() else {
            return Ok(Step::NeedMore);
        };
        if !io.held.is_empty() {
            if let Some(step) = self.step_held()? {
                return Ok(step);
            }
            self.io.get().spill_held();
        }
        if self.io.get().frame.is_none() {
            let Some((header, header_len)) = Header::decode(&self.io.get().input)? else {
                return Ok(Step::NeedMore);
            };
            self.check_header(&header)?;
            self.io.get().input.advance(header_len);
            if let Some(event) = self.whole_frame_message(&header)? {
                return Ok(Step::Event(event));
            }
            self.begin_frame(header);
        }
        let io = self.io.get();
        let frame = io.frame.as_mut().expect("a frame is in progress");
        let available = (io.input.len() as u64).min(frame.remaining) as usize;
        if available > frame.processed {
            let fresh = &mut io.input[frame.processed..available];
            if let Some(key) = frame.header.mask {
                apply_mask(fresh, key, frame.unmasked);
            }
            frame.unmasked += fresh.len();
            frame.processed = available;
            if !frame.header.opcode.is_control() {
                let message = io
                    .message
                    .as_mut()
                    .expect("data frames belong to a message");
                if message.transformed {
                    decode(
                        &mut self.extension,
                        message,
                        fresh,
                        false,
                        self.settings.max_message_size(),
                    )?;
                // Fail fast: check text as it arrives, not when it is whole.
                } else if message.kind == MessageKind::Text && message.utf8.feed(fresh).is_err() {
                    return Err(ProtocolError::InvalidUtf8);
                }
            }
        }
        if (frame.processed as u64) < frame.remaining {
            if self.streaming && !frame.header.opcode.is_control() {
                let message = io
                    .message
                    .as_mut()
                    .expect("data frames belong to a message");
                if message.transformed && !message.data.is_empty() {
                    // The frame's bytes so far are spent; deliver what they made.
                    io.input.advance(frame.processed);
                    frame.remaining -= frame.processed as u64;
                    frame.processed = 0;
                    message.drained += message.data.len();
                    let data = Bytes::from(core::mem::take(&mut message.data));
                    return Ok(Step::Event(self.fragment(data, false)));
                }
                if !message.transformed && frame.processed > 0 {
                    let data = io.input.split_to(frame.processed).freeze();
                    frame.remaining -= frame.processed as u64;
                    frame.processed = 0;
                    return Ok(Step::Event(self.fragment(data, false)));
                }
            }
            return Ok(Step::NeedMore);
        }
        let frame = io.frame.take().expect("a frame is in progress");
        let payload = io.input.split_to(frame.remaining as usize);
        self.end_frame(frame.header, payload.freeze())
    }

    /// The fast path for the common case: an unfragmented, untransformed
    /// data message whose whole payload is already buffered becomes its
    /// event at once, with no per-frame or per-message state. `None`: take
    /// the general path. The header has passed `check_header`.
    #[cfg_attr(feature = "std", inline(always))]
    fn whole_frame_message(&mut self, header: &Header) -> Result<Option<Event>, ProtocolError> {
        let Some(kind) = whole_kind(self.streaming, header, self.io.get().input.len()) else {
            return Ok(None);
        };
        let mut payload = self.io.get().input.split_to(header.len as usize);
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        check_whole_text(kind, &payload)?;
        Ok(Some(Event::Message(whole(kind, payload.freeze()))))
    }

    /// A step on held input (the transport's own buffer) that needs no
    /// copy of it into `input`: a whole masked message at its start (the
    /// fast path above), or the whole rest of a masked frame whose header
    /// came before (a peer that sends a frame's header and its payload as
    /// two pieces, as the core itself does for a large payload it shares).
    /// The payload is unmasked as it is copied out, in one pass. `None`:
    /// the held bytes go to `input` for the general path.
    fn step_held(&mut self) -> Result<Option<Step>, ProtocolError> {
        let io = self.io.get();
        if !io.input.is_empty() || self.streaming {
            return Ok(None);
        }
        if let Some(frame) = &io.frame {
            let transformed = !frame.header.opcode.is_control()
                && io.message.as_ref().is_some_and(|m| m.transformed);
            let Some(key) = frame.header.mask else {
                return Ok(None);
            };
            if transformed || frame.unmasked > 0 || (io.held.len() as u64) < frame.remaining {
                return Ok(None);
            }
            let frame = io.frame.take().expect("matched above");
            let payload = unmasked(&io.held.split_to(frame.remaining as usize), key);
            if !frame.header.opcode.is_control() {
                let message = io
                    .message
                    .as_mut()
                    .expect("data frames belong to a message");
                if message.kind == MessageKind::Text && message.utf8.feed(&payload).is_err() {
                    return Err(ProtocolError::InvalidUtf8);
                }
            }
            return self.end_frame(frame.header, payload).map(Some);
        }
        let Some((header, header_len)) = Header::decode(&io.held)? else {
            return Ok(None);
        };
        let (Some(kind), Some(key)) = (
            whole_kind(self.streaming, &header, io.held.len() - header_len),
            header.mask,
        ) else {
            return Ok(None);
        };
        self.check_header(&header)?;
        let held = &mut self.io.get().held;
        held.advance(header_len);
        let payload = unmasked(&held.split_to(header.len as usize), key);
        check_whole_text(kind, &payload)?;
        Ok(Some(Step::Event(Event::Message(whole(kind, payload)))))
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
        // A per-message extension marks the first frame of a message only:
        // "An endpoint MUST NOT set the "Per-Message Compressed" bit of
        // control frames and non-first fragments of a data message. An
        // endpoint receiving such a frame MUST _Fail the WebSocket
        // Connection_." (RFC 7692 §6.1)
        if header.rsv != 0 && !matches!(header.opcode, OpCode::Text | OpCode::Binary) {
            return Err(ProtocolError::ReservedBits(header.rsv));
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
        let message = self.io.peek().and_then(|io| io.message.as_ref());
        match (header.opcode, message) {
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation)
            }
            _ => {}
        }
        if let Some(max) = self.settings.max_frame_size() {
            if header.len > max as u64 {
                return Err(ProtocolError::FrameTooBig {
                    len: header.len,
                    max,
                });
            }
        }
        if let Some(max) = self.settings.max_message_size() {
            let len = message.map_or(0, |m| m.len).saturating_add(header.len);
            if len > max as u64 {
                return Err(ProtocolError::MessageTooBig { len, max });
            }
        }
        Ok(())
    }

    fn begin_frame(&mut self, header: Header) {
        let io = self.io.get();
        match header.opcode {
            OpCode::Text | OpCode::Binary => {
                let kind = if header.opcode == OpCode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                };
                io.message = Some(MessageInProgress {
                    kind,
                    data: Vec::new(),
                    len: header.len,
                    utf8: Utf8Validator::new(),
                    delivered: false,
                    transformed: header.rsv != 0,
                    drained: 0,
                });
            }
            OpCode::Continuation => {
                let message = io.message.as_mut().expect("checked in check_header");
                message.len = message.len.saturating_add(header.len);
            }
            OpCode::Close | OpCode::Ping | OpCode::Pong => {}
        }
        io.frame = Some(FrameInProgress {
            header,
            remaining: header.len,
            processed: 0,
            unmasked: 0,
        });
    }

    /// A frame's payload is complete (and unmasked, and its text checked).
    fn end_frame(&mut self, header: Header, payload: Bytes) -> Result<Step, ProtocolError> {
        match header.opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                let io = self.io.get();
                let message = io
                    .message
                    .as_mut()
                    .expect("data frames belong to a message");
                if message.transformed {
                    if header.fin {
                        // The message ends here: the extension finishes it
                        // (for DEFLATE, the trailer of RFC 7692 §7.2.2).
                        decode(
                            &mut self.extension,
                            message,
                            &[],
                            true,
                            self.settings.max_message_size(),
                        )?;
                    }
                    return self.end_transformed_frame(header.fin);
                }
                if header.fin && message.kind == MessageKind::Text && !message.utf8.is_complete() {
                    return Err(ProtocolError::InvalidUtf8);
                }
                if self.streaming {
                    if payload.is_empty() && !header.fin {
                        return Ok(Step::Continue);
                    }
                    return Ok(Step::Event(self.fragment(payload, header.fin)));
                }
                let max = self.settings.max_message_size();
                if !header.fin {
                    append(&mut message.data, &payload, max);
                    return Ok(Step::Continue);
                }
                let mut message = io.message.take().expect("checked above");
                let data = if message.data.is_empty() {
                    payload
                } else {
                    append(&mut message.data, &payload, max);
                    Bytes::from(message.data)
                };
                Ok(Step::Event(Event::Message(whole(message.kind, data))))
            }
            OpCode::Ping => {
                // "Upon receipt of a Ping frame, an endpoint MUST send a Pong
                // frame in response, unless it already received a Close
                // frame." (§5.5.2) Once we sent our Close we send nothing.
                if self.auto_pong && self.can_send() {
                    self.write_frame(true, OpCode::Pong, 0, &payload);
                }
                Ok(Step::Event(Event::Ping(payload)))
            }
            OpCode::Pong => Ok(Step::Event(Event::Pong(payload))),
            OpCode::Close => {
                let received = parse_close(&payload)?;
                let (initiator, sent) = match &self.life {
                    Life::Closing(sent) => (Initiator::Local, (**sent).clone()),
                    _ => {
                        // "If an endpoint receives a Close frame and did not
                        // previously send a Close frame, the endpoint MUST
                        // send a Close frame in response. ... it typically
                        // echos the status code it received." (§5.5.1)
                        let echo = CloseFrame::new(received.code, "");
                        self.queue_close(&echo);
                        (Initiator::Remote, echo)
                    }
                };
                self.end(initiator, Some(sent), Some(received), None, false);
                Ok(Step::Continue)
            }
        }
    }

    /// A frame of a transformed message is complete: its payload was
    /// decoded on arrival, so only the decoded bytes matter now.
    fn end_transformed_frame(&mut self, fin: bool) -> Result<Step, ProtocolError> {
        let io = self.io.get();
        let message = io
            .message
            .as_mut()
            .expect("data frames belong to a message");
        if fin && message.kind == MessageKind::Text && !message.utf8.is_complete() {
            return Err(ProtocolError::InvalidUtf8);
        }
        if self.streaming {
            if message.data.is_empty() && !fin {
                return Ok(Step::Continue);
            }
            message.drained += message.data.len();
            let data = Bytes::from(core::mem::take(&mut message.data));
            return Ok(Step::Event(self.fragment(data, fin)));
        }
        if !fin {
            return Ok(Step::Continue);
        }
        let message = io.message.take().expect("checked above");
        let data = Bytes::from(message.data);
        Ok(Step::Event(Event::Message(whole(message.kind, data))))
    }

    /// A streaming-mode piece of the current message.
    fn fragment(&mut self, data: Bytes, last: bool) -> Event {
        let io = self.io.get();
        let message = io
            .message
            .as_mut()
            .expect("data frames belong to a message");
        let first = !message.delivered;
        message.delivered = true;
        let kind = message.kind;
        if last {
            io.message = None;
        }
        Event::Fragment(Fragment {
            kind,
            data,
            first,
            last,
        })
    }
}

/// The kind of message `header` starts, if the fast path takes it: a
/// data frame that is the whole message, not transformed, not
/// streamed, with its whole payload among the `available` bytes.
fn whole_kind(streaming: bool, header: &Header, available: usize) -> Option<MessageKind> {
    let kind = match header.opcode {
        OpCode::Text => MessageKind::Text,
        OpCode::Binary => MessageKind::Binary,
        _ => return None,
    };
    let whole = header.fin && header.rsv == 0 && !streaming && header.len <= available as u64;
    whole.then_some(kind)
}

/// Runs the extension over the newly arrived part of a transformed
/// message (or, with `last`, finishes it), checking the decoded text and
/// the size limit.
fn decode(
    extension: &mut Option<Box<super::Negotiated>>,
    message: &mut MessageInProgress,
    input: &[u8],
    last: bool,
    limit: Option<usize>,
) -> Result<(), ProtocolError> {
    let extension = extension
        .as_mut()
        .expect("RSV bits are accepted only with a negotiated extension");
    let text = message.kind == MessageKind::Text;
    let start = message.data.len();
    // The limit is on the whole decoded message; in streaming mode part of
    // it may already have been delivered, so what is left is the budget.
    let budget = limit.map(|limit| limit.saturating_sub(message.drained));
    let result = extension
        .codec
        .decode(input, last, &mut message.data, budget);
    // Whatever stopped the decoder, the text it produced up to there is
    // checked first: the first fault in the stream decides the code, and
    // so the code does not depend on how the bytes were split into reads.
    if text && message.utf8.feed(&message.data[start..]).is_err() {
        return Err(ProtocolError::InvalidUtf8);
    }
    match result {
        Ok(()) => Ok(()),
        Err(DecodeError::Invalid) => Err(ProtocolError::InvalidCompression { text }),
        Err(DecodeError::TooBig) => Err(ProtocolError::MessageTooBig {
            len: (message.drained + message.data.len()) as u64,
            max: limit.unwrap_or(usize::MAX),
        }),
    }
}

/// Parses the payload of a received Close frame (§5.5.1).
///
/// An empty payload gives `NO_STATUS`. One byte is a protocol error, as
/// is a code that may not be sent; a reason that is not UTF-8 is 1007.
fn parse_close(payload: &[u8]) -> Result<CloseFrame, ProtocolError> {
    match payload.len() {
        0 => Ok(CloseFrame::new(CloseCode::NO_STATUS, "")),
        // "If there is a body, the first two bytes of the body MUST be a
        // 2-byte unsigned integer (in network byte order) representing a
        // status code" (§5.5.1): one byte cannot be that.
        1 => Err(ProtocolError::CloseLengthOne),
        _ => {
            let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
            if !code.is_sendable() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            let reason = core::str::from_utf8(&payload[2..])
                .map_err(|_| ProtocolError::InvalidCloseReason)?;
            Ok(CloseFrame::new(code, reason))
        }
    }
}

/// A masked payload copied out unmasked (from the key's first phase), in
/// one pass.
fn unmasked(payload: &[u8], key: [u8; 4]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len());
    extend_masked(&mut out, payload, key);
    Bytes::from(out)
}

/// Checks a whole text message at once. Short ASCII text is checked in a
/// few word-wide steps (simdutf8's set-up costs more there); anything else
/// takes the full check.
fn check_whole_text(kind: MessageKind, payload: &[u8]) -> Result<(), ProtocolError> {
    let short_ascii = payload.len() <= 64 && payload.is_ascii();
    if kind == MessageKind::Text && !short_ascii && simdutf8::basic::from_utf8(payload).is_err() {
        return Err(ProtocolError::InvalidUtf8);
    }
    Ok(())
}

/// A whole text payload as text, if it is valid UTF-8.
fn checked_text(payload: &[u8]) -> Result<&str, ProtocolError> {
    let text = match payload.len() <= 64 {
        true => core::str::from_utf8(payload).ok(),
        false => simdutf8::basic::from_utf8(payload).ok(),
    };
    text.ok_or(ProtocolError::InvalidUtf8)
}

/// A received message, whole; text was checked as it arrived.
fn whole(kind: MessageKind, data: Bytes) -> Message {
    match kind {
        MessageKind::Text => Message::Text(Utf8Bytes::from_validated(data)),
        MessageKind::Binary => Message::Binary(data),
    }
}
