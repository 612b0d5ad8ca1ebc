//! Errors, and the one mapping from a peer's fault to the close code we send.
//!
//! Two kinds of thing go wrong, and they have different types:
//! - [`ProtocolError`]: the *peer* broke RFC 6455. The connection answers by
//!   queueing a Close frame with [`ProtocolError::close_code`] and ends with
//!   an [`Event::Closed`](crate::Event::Closed) that carries the error.
//! - [`UsageError`]: *our caller* asked for something the protocol forbids
//!   (sending after close, a 200-byte ping). The call fails and the
//!   connection is left exactly as it was.
//!
//! Handshake failures have their own type,
//! [`HandshakeError`](crate::handshake::HandshakeError), which maps to an
//! HTTP status instead of a close code.

use core::fmt;

use crate::CloseCode;

/// The peer broke the protocol after the handshake; see [`ProtocolError::close_code`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An RSV bit was set that no negotiated extension defines (§5.2).
    ReservedBits(u8),
    /// An opcode in the reserved ranges 0x3–0x7 or 0xB–0xF (§5.2).
    ReservedOpcode(u8),
    /// A 64-bit payload length with its most significant bit set (§5.2).
    LengthTopBit,
    /// A control frame without FIN (§5.5: "Control frames ... MUST NOT be fragmented").
    FragmentedControl,
    /// A control frame with more than 125 bytes of payload (§5.5).
    ControlTooLong(u64),
    /// A client sent a frame without a mask (§5.1).
    UnmaskedFrame,
    /// A server sent a masked frame (§5.1).
    MaskedFrame,
    /// A continuation frame arrived with no fragmented message to continue (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame arrived inside a fragmented message (§5.4).
    ExpectedContinuation,
    /// A text message was not valid UTF-8 (§8.1).
    InvalidUtf8,
    /// A Close frame had a one-byte payload (§5.5.1).
    CloseLengthOne,
    /// A Close frame carried a code that may not be sent (§7.4).
    InvalidCloseCode(u16),
    /// A Close frame's reason was not valid UTF-8 (§5.5.1).
    InvalidCloseReason,
    /// A frame declared a payload larger than `Config::max_frame_size`.
    FrameTooBig {
        /// The declared payload length.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A message grew larger than `Config::max_message_size`.
    MessageTooBig {
        /// The message length so far, counting the frame that broke the limit.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A compressed message was not valid DEFLATE data (RFC 7692 §6.2).
    InvalidCompression {
        /// Whether the message was text (closed with 1007) or binary (1002).
        text: bool,
    },
    /// The peer did not answer our Close frame within
    /// [`Timeouts::close`](crate::Timeouts::close) (after an idle timeout,
    /// say: a peer that went silent seldom answers).
    Timeout,
    /// The transport ended without a closing handshake.
    UnexpectedEof {
        /// Whether the transport ended inside a frame.
        mid_frame: bool,
    },
}

impl ProtocolError {
    /// The status code of the Close frame that answers this error.
    ///
    /// This is the one place where faults become codes (§7.4.1):
    /// 1007 for bad UTF-8, 1009 for size limits, 1002 for the rest, and
    /// 1006 (reported, never sent) for a transport that simply ended or a
    /// peer that never answered our Close.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8
            | ProtocolError::InvalidCloseReason
            | ProtocolError::InvalidCompression { text: true } => CloseCode::INVALID_PAYLOAD,
            ProtocolError::FrameTooBig { .. } | ProtocolError::MessageTooBig { .. } => {
                CloseCode::MESSAGE_TOO_BIG
            }
            ProtocolError::UnexpectedEof { .. } | ProtocolError::Timeout => CloseCode::ABNORMAL,
            ProtocolError::ReservedBits(_)
            | ProtocolError::ReservedOpcode(_)
            | ProtocolError::LengthTopBit
            | ProtocolError::FragmentedControl
            | ProtocolError::ControlTooLong(_)
            | ProtocolError::UnmaskedFrame
            | ProtocolError::MaskedFrame
            | ProtocolError::UnexpectedContinuation
            | ProtocolError::ExpectedContinuation
            | ProtocolError::CloseLengthOne
            | ProtocolError::InvalidCloseCode(_)
            | ProtocolError::InvalidCompression { text: false } => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// The reason text we put in the Close frame: short, and never more
    /// than [`CloseFrame::MAX_REASON`](crate::CloseFrame::MAX_REASON) bytes.
    pub(crate) fn close_reason(&self) -> &'static str {
        match self {
            ProtocolError::ReservedBits(_) => "reserved bits set",
            ProtocolError::ReservedOpcode(_) => "reserved opcode",
            ProtocolError::LengthTopBit => "payload length has its top bit set",
            ProtocolError::FragmentedControl => "fragmented control frame",
            ProtocolError::ControlTooLong(_) => "control frame longer than 125 bytes",
            ProtocolError::UnmaskedFrame => "client frame not masked",
            ProtocolError::MaskedFrame => "server frame masked",
            ProtocolError::UnexpectedContinuation => "continuation with nothing to continue",
            ProtocolError::ExpectedContinuation => "new message inside a fragmented one",
            ProtocolError::InvalidUtf8 => "text is not valid UTF-8",
            ProtocolError::CloseLengthOne => "close payload of one byte",
            ProtocolError::InvalidCloseCode(_) => "invalid close code",
            ProtocolError::InvalidCloseReason => "close reason is not valid UTF-8",
            ProtocolError::FrameTooBig { .. } => "frame too big",
            ProtocolError::MessageTooBig { .. } => "message too big",
            ProtocolError::InvalidCompression { .. } => "invalid compressed data",
            ProtocolError::UnexpectedEof { .. } | ProtocolError::Timeout => "",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedBits(bits) => {
                write!(
                    f,
                    "reserved bits {bits:#05b} set with no extension negotiated"
                )
            }
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::ControlTooLong(len) => {
                write!(f, "control frame of {len} bytes (at most 125)")
            }
            ProtocolError::InvalidCloseCode(code) => {
                write!(f, "close code {code} may not be sent")
            }
            ProtocolError::FrameTooBig { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max}")
            }
            ProtocolError::MessageTooBig { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
            ProtocolError::UnexpectedEof { mid_frame: true } => {
                f.write_str("the transport ended in the middle of a frame")
            }
            ProtocolError::UnexpectedEof { mid_frame: false } => {
                f.write_str("the transport ended without a closing handshake")
            }
            ProtocolError::Timeout => {
                f.write_str("the peer did not finish the closing handshake in time")
            }
            other => f.write_str(other.close_reason()),
        }
    }
}

impl core::error::Error for ProtocolError {}

/// The caller asked for something the protocol does not allow.
///
/// Returning this never changes the connection: nothing is queued and the
/// state is as before the call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// We already sent a Close frame, or the connection is closed; §5.5.1:
    /// "The application MUST NOT send any more data frames after sending a
    /// Close frame."
    Closed,
    /// A control frame payload over 125 bytes.
    ControlTooLong(usize),
    /// A close code that may not be sent (1005, 1006, 1015, out of range).
    InvalidCloseCode(u16),
    /// A close reason over 123 bytes.
    ReasonTooLong(usize),
    /// A new message was started while a fragmented one is unfinished.
    MessageInProgress,
    /// A fragment size of zero.
    ZeroFragmentSize,
    /// A client needs masking keys and a handshake nonce, and the
    /// configuration has no key source ([`MaskKeys::Unset`](crate::MaskKeys::Unset),
    /// the default without the `std` feature).
    NoKeySource,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::Closed => f.write_str("the connection is closing or closed"),
            UsageError::ControlTooLong(n) => {
                write!(f, "control frame payload of {n} bytes (at most 125)")
            }
            UsageError::InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
            UsageError::ReasonTooLong(n) => write!(f, "close reason of {n} bytes (at most 123)"),
            UsageError::MessageInProgress => {
                f.write_str("a fragmented message is in progress; finish it first")
            }
            UsageError::ZeroFragmentSize => f.write_str("fragment size must be at least 1"),
            UsageError::NoKeySource => {
                f.write_str("a client needs a key source for masking (Config::mask_keys)")
            }
        }
    }
}

impl core::error::Error for UsageError {}
