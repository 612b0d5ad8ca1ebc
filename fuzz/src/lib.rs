//! Helpers shared by the fuzz targets: chunking, event normalisation, and an
//! independent reader for the frames a connection writes.
//!
//! Every target asserts invariants, not only "no panic"; the helpers here
//! are the vocabulary those assertions are written in.

use rfc6455::frame::{Header, OpCode, MAX_HEADER_LEN};
use rfc6455::{CloseCode, CloseFrame, Config, Connection, DeflateParams, Event, MessageKind, Role};

/// Splits `data` into chunks whose lengths cycle through `sizes`.
///
/// A size of 0 yields an empty chunk (feeding nothing is a case too); if
/// every size is 0 the data comes in one chunk. The chunks concatenate to
/// `data`, and there is none when `data` is empty.
pub fn chunks<'a>(data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    if sizes.iter().all(|&s| s == 0) {
        return if data.is_empty() { vec![] } else { vec![data] };
    }
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < data.len() {
        let size = usize::from(sizes[i % sizes.len()]).min(data.len() - pos);
        out.push(&data[pos..pos + size]);
        pos += size;
        i += 1;
    }
    out
}

/// An event with streaming fragments merged into messages, so that event
/// lists can be compared whatever the chunking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Norm {
    /// A whole message: an [`Event::Message`], or fragments from first to last.
    Message(MessageKind, Vec<u8>),
    /// The fragments of a message that never got its last piece.
    Partial(MessageKind, Vec<u8>),
    /// [`Event::Ping`].
    Ping(Vec<u8>),
    /// [`Event::Pong`].
    Pong(Vec<u8>),
    /// [`Event::Closed`].
    Closed(rfc6455::Closed),
}

/// Merges the fragments of `events` into messages, asserting on the way
/// that the fragment flags are consistent, that each mode delivers only
/// its own kind of data event, and that text is UTF-8.
///
/// A message is placed where its last piece (or the whole message) was
/// delivered; an unfinished one becomes a [`Norm::Partial`] before
/// `Closed`, or at the end.
pub fn normalize(events: &[Event], streaming: bool) -> Vec<Norm> {
    let mut out = Vec::new();
    let mut partial: Option<(MessageKind, Vec<u8>)> = None;
    for event in events {
        match event {
            Event::Message(message) => {
                assert!(!streaming, "a whole message in streaming mode");
                out.push(Norm::Message(message.kind(), message.as_bytes().to_vec()));
            }
            Event::Fragment(fragment) => {
                assert!(streaming, "a fragment outside streaming mode");
                match &mut partial {
                    None => {
                        assert!(fragment.first, "a message began without `first`");
                        partial = Some((fragment.kind, fragment.data.to_vec()));
                    }
                    Some((kind, data)) => {
                        assert!(!fragment.first, "`first` inside a message");
                        assert_eq!(*kind, fragment.kind, "the kind changed mid-message");
                        data.extend_from_slice(&fragment.data);
                    }
                }
                if fragment.last {
                    let (kind, data) = partial.take().expect("set above");
                    if kind == MessageKind::Text {
                        assert!(std::str::from_utf8(&data).is_ok(), "text message not UTF-8");
                    }
                    out.push(Norm::Message(kind, data));
                }
            }
            Event::Ping(p) => out.push(Norm::Ping(p.to_vec())),
            Event::Pong(p) => out.push(Norm::Pong(p.to_vec())),
            Event::Closed(closed) => {
                if let Some((kind, data)) = partial.take() {
                    out.push(Norm::Partial(kind, data));
                }
                out.push(Norm::Closed(rfc6455::Closed::clone(closed)));
            }
        }
    }
    if let Some((kind, data)) = partial {
        out.push(Norm::Partial(kind, data));
    }
    for norm in &out {
        if let Norm::Partial(MessageKind::Text, data) = norm {
            // Fail fast: a piece is delivered only once checked, so what was
            // delivered of a text message is a valid prefix.
            if let Err(e) = std::str::from_utf8(data) {
                assert!(
                    e.error_len().is_none(),
                    "delivered text is not a UTF-8 prefix"
                );
            }
        }
    }
    out
}

/// Asserts that two normalised event lists tell the same story.
///
/// They must be equal, except that the unfinished message (if any) may
/// have been delivered further in one than in the other: in streaming mode
/// a piece is delivered as soon as it arrives, so the bytes of a frame that
/// later fails are delivered with small reads and not with one big read.
pub fn assert_same_story(a: &[Norm], b: &[Norm]) {
    let strip = |v: &[Norm]| -> (Vec<Norm>, Option<(MessageKind, Vec<u8>)>) {
        let mut partial = None;
        let rest = v
            .iter()
            .filter(|n| match n {
                Norm::Partial(kind, data) => {
                    assert!(partial.is_none(), "two unfinished messages");
                    partial = Some((*kind, data.clone()));
                    false
                }
                _ => true,
            })
            .cloned()
            .collect();
        (rest, partial)
    };
    let (a_rest, a_partial) = strip(a);
    let (b_rest, b_partial) = strip(b);
    assert_eq!(a_rest, b_rest, "the events differ");
    if let (Some((ka, da)), Some((kb, db))) = (a_partial, b_partial) {
        assert_eq!(ka, kb, "unfinished messages of different kinds");
        let n = da.len().min(db.len());
        assert_eq!(da[..n], db[..n], "unfinished messages disagree");
    }
}

/// One frame read back from a connection's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireFrame {
    /// FIN.
    pub fin: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

/// Reads back everything an endpoint of role `sender` wrote, independently
/// of [`Connection`]'s decoder, and asserts it is well formed for the peer:
/// whole frames, no RSV bits, masked exactly when the sender is the client,
/// lengths in the fewest bytes (§5.2), control frames unfragmented and at
/// most 125 bytes, nothing after a Close frame.
///
/// Then feeds the same bytes to a [`Connection`] of the peer's role (in
/// pieces of `sizes`) and asserts that it finds no fault in them.
pub fn check_output(bytes: &[u8], sender: Role, sizes: &[u8]) -> Vec<WireFrame> {
    check_output_with(bytes, sender, sizes, None)
}

/// [`check_output`] for a sender that may compress with the agreed
/// permessage-deflate `deflate` (RFC 7692 §6): RSV1 then marks the first
/// frame of a compressed message, and no other frame; the peer that reads
/// the bytes back speaks it too.
pub fn check_output_with(
    bytes: &[u8],
    sender: Role,
    sizes: &[u8],
    deflate: Option<DeflateParams>,
) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (header, n) = Header::decode(rest)
            .expect("our own header decodes")
            .expect("our output ends on a frame boundary (header)");
        let rsv1 = deflate.is_some()
            && !header.opcode.is_control()
            && header.opcode != OpCode::Continuation;
        assert!(
            header.rsv == 0 || (rsv1 && header.rsv == 0b100),
            "we set an RSV bit ({:03b} on {:?})",
            header.rsv,
            header.opcode
        );
        assert_eq!(
            header.mask.is_some(),
            sender == Role::Client,
            "masking does not match the role"
        );
        let mut again = [0; MAX_HEADER_LEN];
        let m = header.encode(&mut again);
        assert_eq!(
            &again[..m],
            &rest[..n],
            "header not in its minimal encoding"
        );
        let len = usize::try_from(header.len).expect("fits");
        assert!(
            rest.len() - n >= len,
            "our output ends on a frame boundary (payload)"
        );
        let mut payload = rest[n..n + len].to_vec();
        if let Some(key) = header.mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        if header.opcode.is_control() {
            assert!(header.fin, "we fragmented a control frame");
            assert!(len <= 125, "we sent a control frame over 125 bytes");
        }
        assert!(
            frames.last().map(|f: &WireFrame| f.opcode) != Some(OpCode::Close),
            "we sent a frame after our Close frame"
        );
        frames.push(WireFrame {
            fin: header.fin,
            opcode: header.opcode,
            payload,
        });
        rest = &rest[n + len..];
    }

    let peer_role = match sender {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let mut config = Config::default();
    config.mask_keys = rfc6455::MaskKeys::Fixed([1, 2, 3, 4]);
    let mut peer = match deflate {
        Some(params) => Connection::with_deflate(peer_role, config, params),
        None => Connection::new(peer_role, config),
    };
    for chunk in chunks(bytes, sizes) {
        peer.handle_read(chunk);
        while let Some(event) = peer.poll_event() {
            if let Event::Closed(closed) = &event {
                assert!(
                    closed.error.is_none(),
                    "the peer found a fault in our output: {closed:?}"
                );
            }
        }
    }
    frames
}

/// The Close frame a Close payload stands for, as the RFC reports it.
pub fn parse_close_payload(payload: &[u8]) -> CloseFrame {
    match payload {
        [] => CloseFrame::new(CloseCode::NO_STATUS, ""),
        [a, b, reason @ ..] => CloseFrame::new(
            CloseCode(u16::from_be_bytes([*a, *b])),
            std::str::from_utf8(reason).expect("we sent a UTF-8 reason"),
        ),
        [_] => panic!("we sent a one-byte Close payload"),
    }
}

/// Polls until `None`, asserting the events obey the contract: nothing
/// after `Closed`, and the state is `Closed` once it has been delivered.
pub fn drain(conn: &mut Connection, events: &mut Vec<Event>) {
    // `Closed` is always the last event, so looking at the last one suffices.
    while let Some(event) = conn.poll_event() {
        assert!(
            !matches!(events.last(), Some(Event::Closed(_))),
            "an event after Closed: {event:?}"
        );
        if matches!(event, Event::Closed(_)) {
            assert_eq!(conn.state(), rfc6455::State::Closed);
        }
        events.push(event);
    }
    assert!(
        conn.poll_event().is_none(),
        "poll_event after None gave an event"
    );
}
