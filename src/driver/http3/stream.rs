//! One WebSocket on one HTTP/3 request stream: the HEADERS frame that
//! opens it, then the shared loop over its DATA frames.

use alloc::vec::Vec;
use std::io;

use bytes::{Buf, Bytes, BytesMut};
use quinn::{RecvStream, SendStream};

use super::{h3_error, read_error, varint, write_error, Error, TokioClock};
use crate::driver::extended::{Ends, StreamEnd};
use crate::h3::qpack::{self, Fields};
use crate::h3::{self, code, frame, Frames};
use crate::plumbing::Plumbing;
use crate::socket::{self, Transport};
use crate::Connection;

/// A WebSocket on an HTTP/3 stream: the [shared driver loop](crate::socket)
/// over [`Io`], on tokio's timers.
pub type WebSocket = socket::WebSocket<Io, TokioClock>;

/// The most one read takes from the stream.
const READ_CHUNK: usize = 64 * 1024;
/// The most one DATA frame carries.
const MAX_DATA: usize = 64 * 1024;

/// The transport: one HTTP/3 request stream, its DATA frames both ways.
#[derive(Debug)]
pub struct Io {
    send: StreamEnd<Send>,
    recv: RecvStream,
    /// Read and not yet taken: a frame header in pieces, or what came
    /// after the HEADERS frame.
    inbound: BytesMut,
    /// What is left of the DATA frame being read.
    data_left: u64,
    /// The stream's frames, frames of unknown types passed over (§9).
    frames: Frames,
    /// A frame on its way out: its header and payload, emptied as they
    /// are written (the response's HEADERS first, on a server).
    out: [Bytes; 2],
}

/// quinn's sending side, as the stream's end needs it.
#[derive(Debug)]
struct Send(SendStream);

impl Ends for Send {
    fn finish(&mut self) -> bool {
        self.0.finish().is_ok()
    }

    /// `H3_REQUEST_CANCELLED`: RFC 9220's abrupt end.
    fn reset(&mut self) {
        let _ = self.0.reset(varint(code::REQUEST_CANCELLED));
    }
}

impl Io {
    /// The stream after its HEADERS frames: `inbound` is what was read
    /// past them, `first` what goes out before any DATA.
    pub(super) fn new(send: SendStream, recv: RecvStream, inbound: BytesMut, first: Bytes) -> Self {
        Io {
            send: StreamEnd::new(Send(send)),
            recv,
            inbound,
            data_left: 0,
            frames: Frames::default(),
            out: [first, Bytes::new()],
        }
    }

    /// Hands the core what `inbound` holds of DATA frames, skipping frames
    /// of unknown types. Whether any bytes went to the core.
    fn deliver(&mut self, conn: &mut Connection) -> Result<bool, Error> {
        let mut delivered = false;
        loop {
            if self.data_left > 0 {
                if self.inbound.is_empty() {
                    return Ok(delivered);
                }
                let n = cap(self.data_left, self.inbound.len());
                conn.handle_read(&self.inbound[..n]);
                self.inbound.advance(n);
                self.data_left -= n as u64;
                delivered = true;
                continue;
            }
            let Some((ty, len, at)) = self.frames.peek(&mut self.inbound) else {
                return Ok(delivered);
            };
            self.inbound.advance(at);
            match ty {
                frame::DATA => self.data_left = len,
                // Trailers, or anything but DATA after them: a WebSocket's
                // stream carries DATA only (RFC 9220 §3).
                frame::HEADERS => {
                    return Err(self.fail(code::MESSAGE_ERROR, "HEADERS after the opening"))
                }
                _ => {
                    return Err(self.fail(
                        code::FRAME_UNEXPECTED,
                        "a frame not allowed on a request stream",
                    ))
                }
            }
        }
    }

    /// Resets the stream for the peer's fault, and says what it was.
    fn fail(&mut self, code: u64, what: &str) -> Error {
        self.send.end_with(|send| {
            let _ = send.0.reset(varint(code));
        });
        let _ = self.recv.stop(varint(code));
        h3_error(io::ErrorKind::InvalidData, what)
    }

    fn mid_frame(&self) -> bool {
        self.data_left > 0 || self.frames.skipping() || !self.inbound.is_empty()
    }
}

/// `left` as a length, at most `available`.
fn cap(left: u64, available: usize) -> usize {
    usize::try_from(left).map_or(available, |left| left.min(available))
}

impl Transport for Io {
    type Error = Error;

    /// Waits for DATA (or the stream's end, or a reset).
    async fn read(&mut self, conn: &mut Connection) -> Result<(), Error> {
        loop {
            if self.deliver(conn)? {
                return Ok(());
            }
            match self.recv.read_chunk(READ_CHUNK, true).await {
                Ok(Some(chunk)) => {
                    let mut bytes = chunk.bytes;
                    // Inside a DATA frame with nothing buffered: quinn's
                    // own buffer, handed straight to the core.
                    if self.inbound.is_empty() && self.data_left > 0 {
                        let n = cap(self.data_left, bytes.len());
                        conn.handle_read_bytes(bytes.split_to(n));
                        self.data_left -= n as u64;
                        self.inbound.extend_from_slice(&bytes);
                        return Ok(());
                    }
                    self.inbound.extend_from_slice(&bytes);
                }
                // FIN: the peer's transport ended, as with TCP's.
                Ok(None) => {
                    conn.handle_eof();
                    if self.mid_frame() {
                        return Err(h3_error(
                            io::ErrorKind::UnexpectedEof,
                            "the stream ended inside a frame",
                        ));
                    }
                    return Ok(());
                }
                Err(e) => {
                    conn.handle_eof();
                    return Err(read_error(e));
                }
            }
        }
    }

    /// Writes the output as DATA frames, as fast as QUIC's flow control
    /// allows. After our end (or a reset) what is left is dropped.
    async fn write(&mut self, conn: &mut Connection) -> Result<(), Error> {
        loop {
            if self.out.iter().any(|b| !b.is_empty()) {
                if self.send.is_ended() {
                    self.out = [Bytes::new(), Bytes::new()];
                    continue;
                }
                self.send
                    .get_mut()
                    .0
                    .write_chunks(&mut self.out)
                    .await
                    .map_err(write_error)?;
                continue;
            }
            let pending = conn.pending_output_len();
            if pending == 0 {
                return Ok(());
            }
            if self.send.is_ended() {
                conn.consume_output(pending);
                return Ok(());
            }
            // Owned bytes for quinn to keep until they are acknowledged: a
            // payload the connection shares, without a copy.
            let payload = conn.take_output(pending.min(MAX_DATA));
            let mut header = Vec::with_capacity(16);
            h3::put_frame_header(&mut header, frame::DATA, payload.len() as u64);
            self.out = [Bytes::from(header), payload];
        }
    }

    /// Ends our side of the stream (FIN), after everything written.
    async fn shutdown(&mut self) -> bool {
        self.send.shutdown()
    }

    /// The core gave up on the unsent output: the stream is reset
    /// (`H3_REQUEST_CANCELLED`), and we read no more of it.
    fn abandon(&mut self) {
        self.send.reset();
        let _ = self.recv.stop(varint(code::REQUEST_CANCELLED));
    }
}

/// Why a stream's HEADERS frame could not be read.
#[derive(Debug)]
pub(super) enum HeadError {
    /// Larger than the limit: a request gets 431.
    TooLarge,
    /// The peer broke HTTP/3: the stream is reset with this code.
    Frame(u64, &'static str),
    /// The stream ended (or was reset) before its HEADERS.
    Ended(Error),
}

/// Reads frames up to the stream's HEADERS frame and gives its field
/// section; what follows it stays in `inbound`. Frames of unknown types
/// before it are skipped; a field section over `max` bytes is refused
/// before it is read.
pub(super) async fn read_headers(
    recv: &mut RecvStream,
    inbound: &mut BytesMut,
    max: usize,
) -> Result<Bytes, HeadError> {
    let mut frames = Frames::default();
    loop {
        match frames.peek(inbound) {
            Some((frame::HEADERS, len, _)) if len > max as u64 => return Err(HeadError::TooLarge),
            Some((frame::HEADERS, len, at)) if inbound.len() >= at + len as usize => {
                inbound.advance(at);
                return Ok(inbound.split_to(len as usize).freeze());
            }
            Some((frame::HEADERS, ..)) => {}
            Some((frame::DATA, ..)) => {
                return Err(HeadError::Frame(
                    code::FRAME_UNEXPECTED,
                    "DATA before HEADERS",
                ))
            }
            Some(_) => {
                return Err(HeadError::Frame(
                    code::FRAME_UNEXPECTED,
                    "a frame not allowed on a request stream",
                ))
            }
            None => {}
        }
        match recv.read_chunk(READ_CHUNK, true).await {
            Ok(Some(chunk)) => inbound.extend_from_slice(&chunk.bytes),
            Ok(None) => {
                return Err(HeadError::Ended(h3_error(
                    io::ErrorKind::UnexpectedEof,
                    "the stream ended before its HEADERS",
                )))
            }
            Err(e) => return Err(HeadError::Ended(read_error(e))),
        }
    }
}

/// A HEADERS frame with `fields` (pseudo-header fields first).
pub(super) fn headers_frame<'a>(fields: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut block = Vec::new();
    qpack::encode(&mut block, fields);
    let mut frame = Vec::with_capacity(block.len() + 16);
    h3::put_frame_header(&mut frame, frame::HEADERS, block.len() as u64);
    frame.extend_from_slice(&block);
    frame
}

/// A DATA frame with `payload`.
pub(super) fn data_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 16);
    h3::put_frame_header(&mut frame, frame::DATA, payload.len() as u64);
    frame.extend_from_slice(payload);
    frame
}

/// The pseudo-header fields and the fields of a decoded field section,
/// apart; `None` if a pseudo-header field follows a field, is unknown or
/// repeated, or a name is not lowercase (a malformed message, RFC 9114
/// §4.1.2 and §4.3).
pub(super) fn split_fields(fields: Fields) -> Option<(Fields, Fields)> {
    let mut pseudo: Fields = Vec::new();
    let mut regular = Vec::new();
    for (name, value) in fields {
        let bad_name = name.is_empty()
            || name
                .bytes()
                .skip(usize::from(name.starts_with(':')))
                .any(|b| b.is_ascii_uppercase() || !is_tchar(b));
        let bad_value = value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0);
        if bad_name || bad_value {
            return None;
        }
        if name.starts_with(':') {
            if !regular.is_empty() || pseudo.iter().any(|(n, _)| *n == name) {
                return None;
            }
            pseudo.push((name, value));
        } else {
            regular.push((name, value));
        }
    }
    Some((pseudo, regular))
}

/// A byte of a token (RFC 9110 §5.6.2), which a field name is.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
