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

/// A whole data message lent for the time of a call: a driver that
/// decodes in place (see [`Plumbing::poll_event_from`]) hands it out
/// without copying it out of the bytes it read, as a view of them.
///
/// Read it where it is ([`as_bytes`](MessageRef::as_bytes),
/// [`as_text`](MessageRef::as_text)); to keep it, make it a [`Message`]
/// with [`to_message`](MessageRef::to_message).
///
/// ```
/// use rfc6455::{Message, MessageKind, MessageRef};
///
/// let owned = Message::from("hi");
/// let lent = MessageRef::from(&owned);
/// assert_eq!(lent.kind(), MessageKind::Text);
/// assert_eq!(lent.as_text(), Some("hi"));
/// assert_eq!(lent.to_message(), owned);
/// ```
///
/// [`Plumbing::poll_event_from`]: crate::plumbing::Plumbing::poll_event_from
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRef<'a>(Lent<'a>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lent<'a> {
    /// Text in the reader's buffer, checked.
    Text(&'a str),
    /// Binary data in the reader's buffer.
    Binary(&'a [u8]),
    /// A message the connection assembled (from fragments, say).
    Whole(&'a Message),
}

impl<'a> MessageRef<'a> {
    /// Text, in a buffer that is not the connection's.
    pub(crate) fn text(text: &'a str) -> MessageRef<'a> {
        MessageRef(Lent::Text(text))
    }

    /// Binary data, in a buffer that is not the connection's.
    pub(crate) fn binary(data: &'a [u8]) -> MessageRef<'a> {
        MessageRef(Lent::Binary(data))
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        match self.0 {
            Lent::Text(_) => MessageKind::Text,
            Lent::Binary(_) => MessageKind::Binary,
            Lent::Whole(message) => message.kind(),
        }
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        match self.0 {
            Lent::Text(text) => text.as_bytes(),
            Lent::Binary(data) => data,
            Lent::Whole(message) => message.as_bytes(),
        }
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&'a str> {
        match self.0 {
            Lent::Text(text) => Some(text),
            Lent::Binary(_) => None,
            Lent::Whole(message) => message.as_text(),
        }
    }

    /// The message, to keep: its bytes copied, or, when it lends a whole
    /// [`Message`], that message shared (a count goes up, nothing is copied).
    pub fn to_message(&self) -> Message {
        match self.0 {
            Lent::Text(text) => Message::from(text),
            Lent::Binary(data) => Message::from(data),
            Lent::Whole(message) => message.clone(),
        }
    }

    /// The whole [`Message`] it lends, if it lends one: a sender can
    /// share its bytes instead of copying them.
    pub fn as_message(&self) -> Option<&'a Message> {
        match self.0 {
            Lent::Whole(message) => Some(message),
            _ => None,
        }
    }
}

impl<'a> From<&'a Message> for MessageRef<'a> {
    fn from(message: &'a Message) -> MessageRef<'a> {
        MessageRef(Lent::Whole(message))
    }
}

/// What [`Plumbing::poll_event_from`] gives: a message lent from the
/// bytes read, or any event as [`Connection::poll_event`] gives it.
///
/// [`Plumbing::poll_event_from`]: crate::plumbing::Plumbing::poll_event_from
/// [`Connection::poll_event`]: crate::Connection::poll_event
#[derive(Debug, PartialEq, Eq)]
pub enum Received<'a> {
    /// A whole data message, decoded where it was read.
    Message(MessageRef<'a>),
    /// Any other event, or a message the connection had to buffer.
    Event(Event),
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
