//! A message encoded once for many connections: broadcast.
//!
//! A server's frames are not masked, so the same frame goes to every
//! client: [`PreparedMessage`] holds its header, encoded once, and its
//! payload as [`Bytes`], which every connection's output shares without a
//! copy ([`Connection::send_prepared`](crate::Connection::send_prepared)).
//!
//! With a per-message extension that carries no state from one message to
//! the next (permessage-deflate negotiated with `server_no_context_takeover`),
//! connections with the same parameters also share the transformed frame:
//! the first one to send the message encodes it, the others take that
//! encoding. A connection whose extension keeps context between messages
//! (context takeover) encodes the message itself, as any message.

use alloc::sync::Arc;
#[cfg(feature = "std")]
use alloc::vec::Vec;

use bytes::Bytes;

use crate::frame::{Header, OpCode, MAX_HEADER_LEN};
use crate::{Message, MessageKind};

/// A message ready to be sent on any number of server connections; cheap
/// to clone (it is shared).
///
/// A server's frames are not masked, so one encoding serves every
/// connection: a broadcast encodes once, not once per client.
///
/// ```
/// use rfc6455::{Config, Connection, PreparedMessage, Role};
///
/// let news = PreparedMessage::text("the market opens");
/// let mut clients: Vec<Connection> =
///     (0..3).map(|_| Connection::new(Role::Server, Config::default())).collect();
/// for client in &mut clients {
///     client.send_prepared(&news).unwrap();
/// }
/// // Every client's output is the same frame: FIN + text, 16 bytes.
/// assert!(clients.iter().all(|c| c.pending_output() == b"\x81\x10the market opens"));
/// ```
#[derive(Clone, Debug)]
pub struct PreparedMessage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    kind: MessageKind,
    payload: Bytes,
    /// The header of the frame without any extension.
    head: EncodedHead,
    /// Frames transformed by an extension, by the extension's key.
    #[cfg(feature = "std")]
    shared: std::sync::Mutex<Vec<(u64, EncodedHead, Bytes)>>,
}

/// A frame header, encoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EncodedHead {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl EncodedHead {
    /// The header of a server's (unmasked) single-frame message.
    pub(crate) fn new(kind: MessageKind, rsv: u8, len: usize) -> EncodedHead {
        let opcode = match kind {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        };
        let header = Header {
            fin: true,
            rsv,
            opcode,
            mask: None,
            len: len as u64,
        };
        let mut bytes = [0; MAX_HEADER_LEN];
        let len = header.encode(&mut bytes) as u8;
        EncodedHead { bytes, len }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl PreparedMessage {
    /// Prepares `message` (its payload is shared, not copied).
    pub fn new(message: &Message) -> PreparedMessage {
        let payload = message.clone().into_bytes();
        let kind = message.kind();
        PreparedMessage {
            inner: Arc::new(Inner {
                kind,
                head: EncodedHead::new(kind, 0, payload.len()),
                payload,
                #[cfg(feature = "std")]
                shared: std::sync::Mutex::new(Vec::new()),
            }),
        }
    }

    /// A text message.
    pub fn text(text: &str) -> PreparedMessage {
        PreparedMessage::new(&Message::from(text))
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> PreparedMessage {
        PreparedMessage::new(&Message::Binary(data.into()))
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        self.inner.kind
    }

    /// The message's payload.
    pub fn payload(&self) -> &Bytes {
        &self.inner.payload
    }

    /// How many transformed frames it holds (one per distinct
    /// permessage-deflate parameter set it was sent with, without context
    /// takeover).
    pub fn shared_encodings(&self) -> usize {
        #[cfg(feature = "std")]
        {
            self.inner
                .shared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .len()
        }
        #[cfg(not(feature = "std"))]
        0
    }

    pub(crate) fn head(&self) -> &EncodedHead {
        &self.inner.head
    }

    /// The transformed frame for the extension key `key`, made by `encode`
    /// (which returns the payload and its RSV bits) the first time.
    #[cfg(feature = "std")]
    pub(crate) fn shared(
        &self,
        key: u64,
        encode: impl FnOnce(&[u8]) -> (Vec<u8>, u8),
    ) -> (EncodedHead, Bytes) {
        let mut shared = self.inner.shared.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, head, bytes)) = shared.iter().find(|(k, ..)| *k == key) {
            return (*head, bytes.clone());
        }
        let (encoded, rsv) = encode(&self.inner.payload);
        let head = EncodedHead::new(self.inner.kind, rsv, encoded.len());
        let bytes = Bytes::from(encoded);
        shared.push((key, head, bytes.clone()));
        (head, bytes)
    }
}

impl From<Message> for PreparedMessage {
    fn from(message: Message) -> PreparedMessage {
        PreparedMessage::new(&message)
    }
}
