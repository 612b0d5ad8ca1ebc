//! What the connection delivers and what it is given to send.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

use crate::{CloseFrame, ProtocolError, Utf8Bytes};

/// Which endpoint of the connection we are. It decides masking (§5.1) and
/// who closes the transport first (§7.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// We opened the connection: our frames are masked.
    Client,
    /// We accepted the connection: the peer's frames must be masked.
    Server,
}

/// Text or binary: the two kinds of data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text (opcode 0x1).
    Text,
    /// Arbitrary bytes (opcode 0x2).
    Binary,
}

/// A complete data message.
///
/// ```
/// use rfc6455::{Message, MessageKind};
///
/// let text = Message::from("héllo");
/// assert_eq!(text.kind(), MessageKind::Text);
/// assert_eq!(text.as_text(), Some("héllo"));
/// assert_eq!(text.as_bytes().len(), 6); // UTF-8 bytes, not characters
///
/// let binary = Message::from(vec![0u8, 1, 2]);
/// assert_eq!(binary.as_text(), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message, valid UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Text(_) => MessageKind::Text,
            Message::Binary(_) => MessageKind::Binary,
        }
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// The payload bytes as [`Bytes`], without a copy.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Message::Text(text) => text.into_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text.as_str()),
            Message::Binary(_) => None,
        }
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::Text(s.into())
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::Text(s.into())
    }
}

impl From<Vec<u8>> for Message {
    fn from(v: Vec<u8>) -> Self {
        Message::Binary(v.into())
    }
}

impl From<&[u8]> for Message {
    fn from(v: &[u8]) -> Self {
        Message::Binary(Bytes::copy_from_slice(v))
    }
}

/// A piece of a data message, delivered in [streaming](crate::Config::streaming) mode.
///
/// Concatenating the `data` of every piece from `first` to `last` gives the
/// message. For text the concatenation is valid UTF-8 (each piece was
/// checked on arrival), but a piece may end inside a character.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Text or binary.
    pub kind: MessageKind,
    /// The bytes of this piece, unmasked.
    pub data: Bytes,
    /// This is the first piece of the message.
    pub first: bool,
    /// This is the last piece of the message.
    pub last: bool,
}

/// Something that happened on the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A whole data message arrived.
    Message(Message),
    /// A piece of a data message arrived ([streaming](crate::Config::streaming) mode only).
    Fragment(Fragment),
    /// A Ping arrived. If [`auto_pong`](crate::Config::auto_pong) is on, the
    /// Pong is already queued.
    Ping(Bytes),
    /// A Pong arrived.
    Pong(Bytes),
    /// The connection is closed; this is the last event. (Boxed: it is
    /// rare and large, and every other event is small.)
    Closed(Box<Closed>),
}

/// Who started the closing handshake (or ended the connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// We sent the first Close frame, or failed the connection.
    Local,
    /// The peer sent the first Close frame, or the transport ended.
    Remote,
}

/// How the connection ended.
///
/// ```
/// use rfc6455::{CloseCode, Config, Connection, Event, Initiator, Role};
///
/// // A server that closes; the client's Close (masked, code 1000) answers.
/// let mut server = Connection::new(Role::Server, Config::default());
/// server.close(CloseCode::GOING_AWAY, "bye").unwrap();
/// server.handle_read(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);
/// let Some(Event::Closed(closed)) = server.poll_event() else { panic!() };
/// assert_eq!(closed.initiator, Initiator::Local);
/// assert_eq!(closed.code(), CloseCode::NORMAL); // the peer's, reported
/// assert!(closed.is_clean());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closed {
    /// Who started it.
    pub initiator: Initiator,
    /// The Close frame we sent, if we sent one.
    pub sent: Option<CloseFrame>,
    /// The Close frame the peer sent, if it sent one.
    pub received: Option<CloseFrame>,
    /// The peer's fault, if the connection was failed because of one.
    pub error: Option<ProtocolError>,
}

impl Closed {
    /// The code to report: the peer's if it sent one, else ours, else 1006
    /// (the transport ended without a closing handshake).
    pub fn code(&self) -> crate::CloseCode {
        if let Some(err) = &self.error {
            return err.close_code();
        }
        self.received
            .as_ref()
            .or(self.sent.as_ref())
            .map_or(crate::CloseCode::ABNORMAL, |f| f.code)
    }

    /// Whether both Close frames were exchanged with no fault on either side.
    pub fn is_clean(&self) -> bool {
        self.sent.is_some() && self.received.is_some() && self.error.is_none()
    }
}
