//! Sending: messages into frames, and the output queue the driver drains.

use super::{Connection, Life};
use crate::frame::{Header, OpCode, MAX_HEADER_LEN};
use crate::mask::{apply_mask, extend_masked};
use crate::{CloseCode, CloseFrame, MessageKind, MessageRef, PreparedMessage, Role, UsageError};
use alloc::boxed::Box;
use alloc::vec::Vec;
use bytes::BytesMut;

/// A server sends payloads at least this long that it holds as `Bytes`
/// without copying them (below, a copy costs less than a separate piece).
/// For a payload only this connection sends, the driver may raise it
/// (`Plumbing::copy_below`); a prepared one, which many send, keeps it.
pub(super) const COPY_BELOW: usize = 1024;

impl Connection {
    // ----- commands -----

    /// Queues a text message in one frame.
    pub fn send_text(&mut self, text: &str) -> Result<(), UsageError> {
        self.send_data(MessageKind::Text, text.as_bytes())
    }

    /// Queues a binary message in one frame.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), UsageError> {
        self.send_data(MessageKind::Binary, data)
    }

    /// Queues a message in one frame: a `&`[`Message`](crate::Message), or a
    /// [`MessageRef`] (the one [`for_each_message`](crate::Driver::for_each_message)
    /// lends, say).
    ///
    /// A server sends the payload of a large message it can share (a
    /// `Message`, or a `MessageRef` that lends one whole) as it is, without
    /// copying it into the output: echoing a received message, or
    /// broadcasting one to many connections, costs no copy. A lent view of
    /// bytes that are not the connection's is copied.
    pub fn send<'m>(&mut self, message: impl Into<MessageRef<'m>>) -> Result<(), UsageError> {
        let message = message.into();
        if let Some(whole) = message.as_message() {
            let len = whole.as_bytes().len();
            if self.role == Role::Server && len >= self.copy_below as usize && !self.transforms(len)
            {
                self.check_can_start_message()?;
                self.write_header(true, opcode_of(whole.kind()), 0, len, None);
                self.io.get().output.push_shared(whole.clone().into_bytes());
                return Ok(());
            }
        }
        self.send_data(message.kind(), message.as_bytes())
    }

    /// Queues a message in one frame from a buffer the caller hands over:
    /// no copy of a large payload on either side. A client masks it in
    /// place, where [`send_data`](Connection::send_data) must copy a borrowed
    /// payload to mask it (the frame is then written twice, into the
    /// output and into the socket); a server sends it as it is. The
    /// payload goes out as its own piece of the output
    /// ([`pending_output_pieces`](crate::plumbing::Plumbing::pending_output_pieces)); one
    /// under 1 KiB is copied instead, which costs less. With an extension
    /// that transforms the message (permessage-deflate), it is encoded as
    /// by `send`.
    ///
    /// For [`MessageKind::Text`] the caller vouches that `payload` is
    /// UTF-8, as for `send`.
    pub fn send_owned(
        &mut self,
        kind: MessageKind,
        mut payload: BytesMut,
    ) -> Result<(), UsageError> {
        let len = payload.len();
        if len < self.copy_below as usize || self.transforms(len) {
            return self.send_data(kind, &payload);
        }
        self.check_can_start_message()?;
        let mask = self.next_mask();
        if let Some(key) = mask {
            apply_mask(&mut payload, key, 0);
        }
        self.write_header(true, opcode_of(kind), 0, len, mask);
        self.io.get().output.push_shared(payload.freeze());
        Ok(())
    }

    /// Queues a message prepared for many connections (broadcast).
    ///
    /// On a server: the header encoded once, then the shared payload, with
    /// no copy of a large payload and no allocation (a payload under 1 KiB
    /// is copied, which costs less than a separate piece of output). With
    /// an extension whose encoding does not depend on earlier messages
    /// (permessage-deflate without server context takeover), the encoded
    /// frame is shared too: made by the first connection with these
    /// parameters, taken by the others. Otherwise (a client, which masks
    /// with keys of its own; an extension with context takeover) the
    /// message is encoded here, as by [`send_data`](Connection::send_data).
    pub fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), UsageError> {
        let payload = prepared.payload();
        if self.role == Role::Client {
            return self.send_data(prepared.kind(), payload);
        }
        if self.transforms(payload.len()) {
            #[cfg(feature = "std")]
            if let Some(key) = self
                .extension
                .as_ref()
                .and_then(|e| e.codec.shared_encoding())
            {
                self.check_can_start_message()?;
                let rsv = self.rsv_allowed;
                let extension = self.extension.as_mut().expect("checked above");
                let (head, frame_payload) = prepared.shared(key, |data| {
                    let mut out = Vec::new();
                    extension.codec.encode(data, true, &mut out);
                    (out, rsv)
                });
                self.io
                    .get()
                    .output
                    .buf()
                    .extend_from_slice(head.as_bytes());
                self.io.get().output.push_shared(frame_payload);
                return Ok(());
            }
            return self.send_data(prepared.kind(), payload);
        }
        self.check_can_start_message()?;
        self.io
            .get()
            .output
            .buf()
            .extend_from_slice(prepared.head().as_bytes());
        if payload.len() >= COPY_BELOW {
            self.io.get().output.push_shared(payload.clone());
        } else {
            self.io.get().output.buf().extend_from_slice(payload);
        }
        Ok(())
    }

    /// Queues a data message of either kind in one frame.
    ///
    /// For [`MessageKind::Text`] the caller vouches that `data` is UTF-8;
    /// prefer [`send_text`](Connection::send_text), which takes a `&str`.
    pub fn send_data(&mut self, kind: MessageKind, data: &[u8]) -> Result<(), UsageError> {
        self.check_can_start_message()?;
        if let Some((encoded, rsv)) = self.encode_message(data) {
            self.write_frame(true, opcode_of(kind), rsv, &encoded);
            self.keep_scratch(encoded);
            return Ok(());
        }
        self.write_frame(true, opcode_of(kind), 0, data);
        Ok(())
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
        if let Some((encoded, rsv)) = self.encode_message(data) {
            // The transformed bytes are what gets fragmented (RFC 7692 §6.1).
            self.write_fragments(kind, rsv, &encoded, fragment_size);
            self.keep_scratch(encoded);
            return Ok(());
        }
        self.write_fragments(kind, 0, data, fragment_size);
        Ok(())
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
        if !self.can_send() {
            return Err(UsageError::Closed);
        }
        let (opcode, transformed) = match self.sending {
            Some((_, transformed)) => (OpCode::Continuation, transformed),
            None => (
                opcode_of(kind),
                self.extension
                    .as_ref()
                    .is_some_and(|e| e.codec.encodes_stream()),
            ),
        };
        self.sending = if last {
            None
        } else {
            Some((kind, transformed))
        };
        if !transformed {
            self.write_frame(last, opcode, 0, data);
            return Ok(());
        }
        let extension = self
            .extension
            .as_mut()
            .expect("checked when the message began");
        let mut out = core::mem::take(&mut extension.scratch);
        out.clear();
        extension.codec.encode(data, last, &mut out);
        // Only the first frame of the message carries the RSV bits.
        let rsv = if opcode == OpCode::Continuation {
            0
        } else {
            self.rsv_allowed
        };
        self.write_frame(last, opcode, rsv, &out);
        self.keep_scratch(out);
        Ok(())
    }

    /// Queues a Ping with up to 125 bytes of payload.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.send_control(OpCode::Ping, payload)
    }

    /// Queues an unsolicited Pong (a one-way heartbeat, §5.5.3). Pongs that
    /// answer Pings are sent automatically unless
    /// [`auto_pong`](crate::Config::auto_pong) is off.
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.send_control(OpCode::Pong, payload)
    }

    /// Starts the closing handshake: queues a Close frame and moves to
    /// [`State::Closing`](crate::State::Closing). Messages may still arrive
    /// until the peer's Close, for at most
    /// [`Timeouts::close`](crate::Timeouts::close).
    ///
    /// Use [`CloseCode::NO_STATUS`] to send a Close frame with no payload.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), UsageError> {
        if !self.can_send() {
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
        let frame = CloseFrame::new(code, reason);
        self.queue_close(&frame);
        self.life = Life::Closing(Box::new(frame));
        self.timers.start_closing();
        Ok(())
    }

    // ----- encoding -----

    /// Whether the extension would transform a message of `len` bytes.
    fn transforms(&self, len: usize) -> bool {
        self.extension
            .as_ref()
            .is_some_and(|e| e.codec.encodes(len))
    }

    /// The whole message transformed by the extension, with the RSV bits
    /// that mark it, if the extension takes a message of this size.
    fn encode_message(&mut self, data: &[u8]) -> Option<(Vec<u8>, u8)> {
        let extension = self
            .extension
            .as_mut()
            .filter(|e| e.codec.encodes(data.len()))?;
        let mut out = core::mem::take(&mut extension.scratch);
        out.clear();
        extension.codec.encode(data, true, &mut out);
        Some((out, self.rsv_allowed))
    }

    /// Gives the extension's buffer back, for the next message.
    fn keep_scratch(&mut self, out: Vec<u8>) {
        if let Some(extension) = self.extension.as_mut() {
            extension.scratch = out;
        }
    }

    fn write_fragments(&mut self, kind: MessageKind, rsv: u8, data: &[u8], fragment_size: usize) {
        let mut chunks = data.chunks(fragment_size).peekable();
        let (mut opcode, mut rsv) = (opcode_of(kind), rsv);
        if chunks.peek().is_none() {
            self.write_frame(true, opcode, rsv, &[]);
        }
        while let Some(chunk) = chunks.next() {
            self.write_frame(chunks.peek().is_none(), opcode, rsv, chunk);
            // Continuations carry neither the opcode nor the RSV bits.
            (opcode, rsv) = (OpCode::Continuation, 0);
        }
    }

    fn check_can_start_message(&self) -> Result<(), UsageError> {
        if !self.can_send() {
            return Err(UsageError::Closed);
        }
        if self.sending.is_some() {
            return Err(UsageError::MessageInProgress);
        }
        Ok(())
    }

    fn send_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), UsageError> {
        if !self.can_send() {
            return Err(UsageError::Closed);
        }
        if payload.len() > 125 {
            return Err(UsageError::ControlTooLong(payload.len()));
        }
        self.write_frame(true, opcode, 0, payload);
        Ok(())
    }

    pub(super) fn queue_close(&mut self, frame: &CloseFrame) {
        let mut payload = Vec::with_capacity(2 + frame.reason.len());
        frame.write_payload(&mut payload);
        self.write_frame(true, OpCode::Close, 0, &payload);
    }

    /// Encodes one frame into the output, masked if we are the client.
    #[inline]
    pub(super) fn write_frame(&mut self, fin: bool, opcode: OpCode, rsv: u8, payload: &[u8]) {
        let mask = self.next_mask();
        self.io
            .get()
            .output
            .buf()
            .reserve(MAX_HEADER_LEN + payload.len());
        self.write_header(fin, opcode, rsv, payload.len(), mask);
        let output = self.io.get().output.buf();
        match mask {
            // One pass: the payload is masked as it is copied.
            Some(key) => extend_masked(output, payload, key),
            None => output.extend_from_slice(payload),
        }
    }

    /// The masking key of our next frame: a fresh one if we are the
    /// client (§5.3), none if we are the server.
    ///
    /// Always inlined, the key's source never: a server's every frame
    /// asked a call that saved and restored six registers to answer
    /// `None` (1.8 % of the tokio echo server's CPU, pipelined 16 B).
    #[inline(always)]
    fn next_mask(&mut self) -> Option<[u8; 4]> {
        match self.role {
            Role::Client => Some(self.fresh_key()),
            Role::Server => None,
        }
    }

    /// A client's next masking key.
    #[inline(never)]
    fn fresh_key(&mut self) -> [u8; 4] {
        // A client is only made with a key source (`Connection::try_new`).
        self.settings.mask_keys.next_key().unwrap_or_default()
    }

    /// Encodes a frame header into the output.
    #[inline]
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
        let output = self.io.get().output.buf();
        if let Some(two) = header.short() {
            // Built in a register and stored at once: written byte by byte
            // into an array and read back as two, it waited for the
            // bytes to reach the array (3 % of an echo server's time).
            output.extend_from_slice(&two);
            return;
        }
        let mut head = [0; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        output.extend_from_slice(&head[..head_len]);
    }

    // ----- output -----

    /// Bytes waiting to be written to the transport.
    ///
    /// This is the next contiguous piece of the output: when it is written,
    /// more may follow. [`pending_output_len`](Connection::pending_output_len)
    /// counts all of it, and
    /// [`pending_output_pieces`](crate::plumbing::Plumbing::pending_output_pieces)
    /// gives all of it for one vectored write.
    #[inline]
    pub fn pending_output(&self) -> &[u8] {
        self.io.peek().map_or(&[], |io| io.output.pending())
    }

    /// How many bytes are waiting to be written, in all pieces.
    #[inline]
    pub fn pending_output_len(&self) -> usize {
        self.io.peek().map_or(0, |io| io.output.len())
    }

    /// Records that the first `n` bytes of the pending output were
    /// written (`n` may span several pieces after a vectored write).
    ///
    /// # Panics
    /// If `n` is more than is pending: that is a bug in the driver.
    #[inline]
    pub fn consume_output(&mut self, n: usize) {
        match self.io.peek_mut() {
            Some(io) => io.output.consume(n),
            None => assert!(n == 0, "consumed more output than was pending"),
        }
    }
}

fn opcode_of(kind: MessageKind) -> OpCode {
    match kind {
        MessageKind::Text => OpCode::Text,
        MessageKind::Binary => OpCode::Binary,
    }
}
