//! Helpers shared by the integration tests: a frame builder that knows
//! nothing of the crate (so a bug in our encoder cannot hide a bug in our
//! decoder), a decoder for what we send, and ways to feed bytes in pieces.
#![allow(dead_code)]

pub mod pair;

use rfc6455::{CloseCode, Closed, Config, Connection, Event, MaskKeys, Role, State};

/// The masking key of RFC 6455 §5.7's masked examples.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// A frame header with any bits, including forbidden ones. The length is
/// written in the fewest bytes unless it has the top bit set (which only
/// the 64-bit form can carry).
pub fn header(fin: bool, opcode: u8, rsv: u8, mask: Option<[u8; 4]>, len: u64) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 0b111) << 4) | (opcode & 0x0F)];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len <= 125 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xFFFF {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// A whole frame: header, then the payload masked with `mask` if given.
pub fn frame(fin: bool, opcode: u8, rsv: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = header(fin, opcode, rsv, mask, payload.len() as u64);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        for (i, b) in out[start..].iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    out
}

/// A final frame as a client sends it: masked with [`KEY`].
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(true, opcode, 0, Some(KEY), payload)
}

/// A final frame as a server sends it: unmasked.
pub fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(true, opcode, 0, None, payload)
}

/// A frame as the peer of `role` sends it: masked iff `role` is the server.
pub fn peer_frame(role: Role, fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = match role {
        Role::Server => Some(KEY),
        Role::Client => None,
    };
    frame(fin, opcode, 0, mask, payload)
}

/// The payload of a Close frame.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut out = code.to_be_bytes().to_vec();
    out.extend_from_slice(reason);
    out
}

/// A connection of `role` with the default config and, for a client, a
/// fixed masking key so its output is deterministic.
pub fn conn(role: Role) -> Connection {
    conn_with(role, Config::default())
}

pub fn conn_with(role: Role, mut config: Config) -> Connection {
    if role == Role::Client {
        config.mask_keys = MaskKeys::Fixed(KEY);
    }
    Connection::new(role, config)
}

pub fn server() -> Connection {
    conn(Role::Server)
}

pub fn client() -> Connection {
    conn(Role::Client)
}

/// How to cut input into reads.
#[derive(Clone, Debug)]
pub enum Chunking<'a> {
    /// One read.
    Whole,
    /// One read per byte.
    Bytewise,
    /// Two reads, the first of this many bytes.
    SplitAt(usize),
    /// Reads of these sizes, cycled; a zero size is an empty read.
    Sizes(&'a [usize]),
}

/// Every event ready now.
pub fn poll_all(conn: &mut Connection) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(event) = conn.poll_event() {
        events.push(event);
        assert!(events.len() < 1_000_000, "poll_event never ran dry");
    }
    events
}

/// Feeds `bytes` in reads cut as `chunking` says, polling every event
/// after each read, and returns the events in order.
pub fn feed_all(conn: &mut Connection, bytes: &[u8], chunking: Chunking<'_>) -> Vec<Event> {
    let mut events = Vec::new();
    let mut feed = |conn: &mut Connection, piece: &[u8]| {
        conn.handle_read(piece);
        events.extend(poll_all(conn));
    };
    match chunking {
        Chunking::Whole => feed(conn, bytes),
        Chunking::Bytewise => {
            for b in bytes.chunks(1) {
                feed(conn, b);
            }
        }
        Chunking::SplitAt(at) => {
            feed(conn, &bytes[..at]);
            feed(conn, &bytes[at..]);
        }
        Chunking::Sizes(sizes) => {
            assert!(!sizes.is_empty(), "no chunk sizes given");
            let mut rest = bytes;
            let mut sizes = sizes.iter().cycle();
            let mut empty_reads = 0;
            while !rest.is_empty() {
                let n = (*sizes.next().expect("cycle")).min(rest.len());
                empty_reads = if n == 0 { empty_reads + 1 } else { 0 };
                assert!(empty_reads <= 1_000, "only empty reads");
                feed(conn, &rest[..n]);
                rest = &rest[n..];
            }
        }
    }
    events
}

/// Takes everything the connection wants to send.
pub fn drain(conn: &mut Connection) -> Vec<u8> {
    // The output may come in several pieces (large payloads a server
    // sends without copying are pieces of their own).
    let mut out = Vec::new();
    while !conn.pending_output().is_empty() {
        out.extend_from_slice(conn.pending_output());
        conn.consume_output(conn.pending_output().len());
    }
    assert_eq!(conn.pending_output_len(), 0);
    out
}

/// A frame as it appeared on the wire, unmasked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireFrame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub payload: Vec<u8>,
}

impl WireFrame {
    /// The close code of a Close frame (`None` for an empty payload).
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, CLOSE, "not a Close frame: {self:?}");
        match self.payload.as_slice() {
            [] => None,
            [hi, lo, ..] => Some(u16::from_be_bytes([*hi, *lo])),
            [_] => panic!("we sent a one-byte Close payload"),
        }
    }
}

/// Decodes our output into frames, checking the encoding rules we must
/// follow when sending: minimal lengths, no RSV bits, and a mask exactly
/// when `role` is the client.
pub fn decode_frames(role: Role, mut bytes: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 2, "truncated header: {bytes:x?}");
        let fin = bytes[0] & 0x80 != 0;
        let rsv = (bytes[0] >> 4) & 0b111;
        let opcode = bytes[0] & 0x0F;
        let masked = bytes[1] & 0x80 != 0;
        let (len, mut n) = match bytes[1] & 0x7F {
            126 => {
                let len = u64::from(u16::from_be_bytes([bytes[2], bytes[3]]));
                assert!(len >= 126, "length {len} not minimally encoded");
                (len, 4)
            }
            127 => {
                let len = u64::from_be_bytes(bytes[2..10].try_into().unwrap());
                assert!(len > 0xFFFF, "length {len} not minimally encoded");
                assert_eq!(len >> 63, 0, "length with the top bit set");
                (len, 10)
            }
            short => (u64::from(short), 2),
        };
        let mask = if masked {
            let key: [u8; 4] = bytes[n..n + 4].try_into().unwrap();
            n += 4;
            Some(key)
        } else {
            None
        };
        assert_eq!(
            masked,
            role == Role::Client,
            "§5.1: a client masks every frame, a server none"
        );
        assert_eq!(rsv, 0, "we sent RSV bits");
        let len = usize::try_from(len).unwrap();
        assert!(bytes.len() >= n + len, "truncated payload");
        let mut payload = bytes[n..n + len].to_vec();
        if let Some(key) = mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        if opcode & 0x8 != 0 {
            assert!(fin && len <= 125, "we sent a bad control frame");
        }
        frames.push(WireFrame {
            fin,
            rsv,
            opcode,
            mask,
            payload,
        });
        bytes = &bytes[n + len..];
    }
    frames
}

/// Drains the output and decodes it.
pub fn drain_frames(conn: &mut Connection) -> Vec<WireFrame> {
    let role = conn.role();
    decode_frames(role, &drain(conn))
}

/// The `Closed` event that must end `events`.
pub fn last_closed(events: &[Event]) -> &Closed {
    match events.last() {
        Some(Event::Closed(closed)) => closed,
        other => panic!("expected Closed as the last event, got {other:?} in {events:?}"),
    }
}

/// Checks a connection that has just failed with `code`: the events end
/// with `Closed` carrying that code; the only output is one Close frame
/// with that code; the state is closed; nothing more comes out of it.
pub fn assert_failed(conn: &mut Connection, events: &[Event], code: u16) {
    let closed = last_closed(events);
    assert_eq!(closed.code(), CloseCode(code), "Closed event: {closed:?}");
    assert!(closed.error.is_some(), "no error in {closed:?}");
    assert_eq!(
        closed.sent.as_ref().map(|f| f.code),
        Some(CloseCode(code)),
        "the Close frame recorded as sent"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Closed(_)))
            .count(),
        1,
        "exactly one Closed event"
    );
    assert_eq!(conn.state(), State::Closed);
    assert!(
        !conn.should_close_transport(),
        "must not close the transport before our Close frame is written"
    );
    let frames = drain_frames(conn);
    let close = frames.last().expect("a Close frame was sent");
    assert_eq!(
        close.close_code(),
        Some(code),
        "Close frame sent: {close:?}"
    );
    assert!(
        std::str::from_utf8(&close.payload[2..]).is_ok(),
        "reason is UTF-8"
    );
    assert!(conn.should_close_transport());
    // §7.1.7: "An endpoint MUST NOT continue to attempt to process data
    // (including a responding Close frame) from the remote endpoint after
    // being instructed to _Fail the WebSocket Connection_."
    let more = peer_frame(conn.role(), true, TEXT, b"after the end");
    conn.handle_read(&more);
    assert_eq!(conn.poll_event(), None, "an event after Closed");
    assert_eq!(conn.buffered_input(), 0, "input kept after Closed");
    assert!(conn.pending_output().is_empty(), "output after Closed");
}

/// Feeds `bytes` whole, one byte at a time and split at `splits` (every
/// point when `None`) into fresh connections from `make`, and checks that
/// every way gives the same events and the same output. Returns them.
pub fn same_for_every_chunking(
    make: impl Fn() -> Connection,
    bytes: &[u8],
    splits: Option<&[usize]>,
) -> (Vec<Event>, Vec<u8>) {
    let run = |chunking: Chunking<'_>| {
        let mut conn = make();
        let events = feed_all(&mut conn, bytes, chunking);
        (events, drain(&mut conn))
    };
    let expected = run(Chunking::Whole);
    assert_eq!(run(Chunking::Bytewise), expected, "one byte at a time");
    let every: Vec<usize> = (0..=bytes.len()).collect();
    for &at in splits.unwrap_or(&every) {
        assert_eq!(run(Chunking::SplitAt(at)), expected, "split at {at}");
    }
    expected
}
