//! Arbitrary messages, fragment sizes and interleaved pings, encoded by one
//! role and decoded by the other, in both directions, through arbitrary
//! chunks.
//!
//! Invariants: the receiver gets exactly the messages sent (whole, or as
//! streamed pieces that join up to them), the pings as `Ping` events with
//! their payloads, in order; its automatic Pongs come back to the sender
//! with the same payloads; and the closing handshake that ends it all is
//! clean on both sides. With permessage-deflate (flags bit 6; bit 7: no
//! context takeover, which lets a prepared message share one compressed
//! encoding), window bits, level and threshold from the `mask` bytes, the
//! same holds, and only a compressed message's first frame has RSV1.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rfc6455::plumbing::Plumbing;
use rfc6455::{
    CloseCode, CloseFrame, Config, Connection, DeflateConfig, DeflateParams, Event, Initiator,
    Message, MessageKind, PreparedMessage, Role,
};
use rfc6455_fuzz::{check_output_with, chunks, drain, normalize, Norm};

#[derive(Arbitrary, Debug)]
enum Op {
    /// A text message, in one frame (`fragment == 0`) or in frames of at
    /// most `fragment` bytes, which may end inside a character.
    Text {
        text: String,
        fragment: u8,
    },
    /// A binary message, likewise.
    Binary {
        data: Vec<u8>,
        fragment: u8,
    },
    /// A message sent piece by piece with `send_fragment`, with a Ping
    /// after some pieces. For text the data is made UTF-8 first; pieces
    /// are cut at byte offsets, inside characters too.
    Pieces {
        binary: bool,
        data: Vec<u8>,
        lengths: Vec<u8>,
        pings: Vec<Option<Vec<u8>>>,
    },
    /// A message prepared for broadcast (`send_prepared`), sent twice: the
    /// second send reuses what the first encoded. For text the data is made
    /// UTF-8 first.
    Prepared {
        binary: bool,
        data: Vec<u8>,
    },
    Ping(Vec<u8>),
    /// An unsolicited Pong (§5.5.3).
    Pong(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Bit 0: the receiver streams. Bit 1: the sender streams. Bits 2-3:
    /// how the output is taken; bits 4-5: how the input is fed. Bit 6:
    /// permessage-deflate; bit 7: with no context takeover.
    flags: u8,
    mask: [u8; 4],
    sizes: [u8; 8],
    close_code: u16,
    close_reason: String,
    ops: Vec<Op>,
}

fn control(payload: &[u8]) -> &[u8] {
    &payload[..payload.len().min(125)]
}

/// Sends the ops and returns what the receiver should see, and the pings.
fn send(sender: &mut Connection, ops: &[Op]) -> (Vec<Norm>, Vec<Vec<u8>>) {
    let mut expected = Vec::new();
    let mut pings = Vec::new();
    let mut ping = |sender: &mut Connection, payload: &[u8], expected: &mut Vec<Norm>| {
        let payload = control(payload);
        sender.ping(payload).expect("open");
        expected.push(Norm::Ping(payload.to_vec()));
        pings.push(payload.to_vec());
    };
    for op in ops {
        match op {
            Op::Text { text, fragment } => {
                let bytes = text.as_bytes();
                match fragment {
                    0 => sender.send_text(text).expect("open"),
                    n => sender
                        .send_fragmented(MessageKind::Text, bytes, usize::from(*n))
                        .expect("open"),
                }
                expected.push(Norm::Message(MessageKind::Text, bytes.to_vec()));
            }
            Op::Binary { data, fragment } => {
                match fragment {
                    // Through `send` and `send_owned` too: a server
                    // splices large payloads into its output without
                    // copying them, a client masks a handed-over one in place.
                    0 if data.len() % 3 == 0 => {
                        sender.send(&Message::from(data.clone())).expect("open")
                    }
                    0 if data.len() % 3 == 1 => sender
                        .send_owned(MessageKind::Binary, data[..].into())
                        .expect("open"),
                    0 => sender.send_binary(data).expect("open"),
                    n => sender
                        .send_fragmented(MessageKind::Binary, data, usize::from(*n))
                        .expect("open"),
                }
                expected.push(Norm::Message(MessageKind::Binary, data.clone()));
            }
            Op::Pieces {
                binary,
                data,
                lengths,
                pings: between,
            } => {
                let (kind, data) = if *binary {
                    (MessageKind::Binary, data.clone())
                } else {
                    let text = String::from_utf8_lossy(data).into_owned();
                    (MessageKind::Text, text.into_bytes())
                };
                let mut rest = &data[..];
                let mut i = 0;
                loop {
                    let len = lengths.get(i).map_or(rest.len(), |&l| usize::from(l));
                    let (piece, after) = rest.split_at(len.min(rest.len()));
                    // The last piece: the lengths ran out, or the data did.
                    let last = i >= lengths.len() || after.is_empty();
                    sender.send_fragment(kind, piece, last).expect("open");
                    rest = after;
                    if last {
                        break;
                    }
                    if let Some(Some(payload)) = between.get(i) {
                        ping(sender, payload, &mut expected);
                    }
                    i += 1;
                }
                assert!(rest.is_empty());
                expected.push(Norm::Message(kind, data));
            }
            Op::Prepared { binary, data } => {
                let (kind, prepared) = if *binary {
                    (MessageKind::Binary, PreparedMessage::binary(data.clone()))
                } else {
                    let text = String::from_utf8_lossy(data);
                    (MessageKind::Text, PreparedMessage::text(&text))
                };
                for _ in 0..2 {
                    sender.send_prepared(&prepared).expect("open");
                    expected.push(Norm::Message(kind, prepared.payload().to_vec()));
                }
            }
            Op::Ping(payload) => ping(sender, payload, &mut expected),
            Op::Pong(payload) => {
                let payload = control(payload);
                sender.pong(payload).expect("open");
                expected.push(Norm::Pong(payload.to_vec()));
            }
        }
    }
    (expected, pings)
}

/// Takes everything `from` wrote, the way driver `how` (0 to 3) takes it;
/// a writer that stops short writes at most one chunk length.
fn take_all(from: &mut Connection, how: u8, sizes: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut round = 0;
    // The output may come in pieces (a server splices large payloads in).
    while from.pending_output_len() > 0 {
        let size = usize::from(sizes[round % sizes.len()]).max(1);
        round += 1;
        match how % 4 {
            // One contiguous piece at a time, all of it written.
            0 | 1 => {
                let n = from.pending_output().len();
                bytes.extend_from_slice(from.pending_output());
                from.consume_output(n);
            }
            // Owned pieces (HTTP/2 DATA, a completion runtime's write).
            2 => bytes.extend_from_slice(&from.take_output(size)),
            // A vectored write that stops after `size` bytes.
            _ => {
                let mut slices = [std::io::IoSlice::new(&[]); 4];
                let filled = from.pending_output_vectored(&mut slices);
                let mut written = 0;
                for slice in &slices[..filled] {
                    let n = slice.len().min(size - written);
                    bytes.extend_from_slice(&slice[..n]);
                    written += n;
                }
                from.consume_output(written);
            }
        }
    }
    bytes
}

/// Feeds one read to `to`, the way driver `how` (0 to 3) reads.
fn feed(to: &mut Connection, chunk: &[u8], how: u8) {
    match how % 4 {
        0 => to.handle_read(chunk),
        // Straight into the receive buffer, as a `&mut [u8]` reader.
        1 => {
            let mut buffer = to.read_buffer(chunk.len());
            buffer.unfilled()[..chunk.len()].copy_from_slice(chunk);
            buffer.advance(chunk.len());
        }
        // An owned buffer filled later (io_uring).
        2 => {
            let mut buffer = to.read_buffer_owned(chunk.len());
            buffer.extend_from_slice(chunk);
            to.handle_read_owned(buffer);
        }
        // A driver of many connections lends idle buffers around.
        _ => {
            match to.take_buffers() {
                Some(buffers) => to.give_buffers(buffers),
                None => to.shrink_buffers(),
            }
            to.handle_read(chunk);
        }
    }
}

/// Moves everything `from` wrote into `to`, in chunks, and collects
/// `to`'s events; `flags` bits 2-3 and 4-5 choose how the bytes are taken
/// out and fed in.
fn transfer(from: &mut Connection, to: &mut Connection, input: &Input, events: &mut Vec<Event>) {
    let (flags, sizes) = (input.flags, &input.sizes[..]);
    let bytes = take_all(from, flags >> 2, sizes);
    check_output_with(&bytes, from.role(), sizes, deflate(input));
    for chunk in chunks(&bytes, sizes) {
        feed(to, chunk, flags >> 4);
        drain(to, events);
    }
}

/// The permessage-deflate both ends agreed on, if flags bit 6 says so.
fn deflate(input: &Input) -> Option<DeflateParams> {
    let reset = input.flags & 0x80 != 0;
    (input.flags & 0x40 != 0).then(|| DeflateParams {
        server_no_context_takeover: reset,
        client_no_context_takeover: reset || input.mask[1] & 1 != 0,
        server_max_window_bits: 8 + input.mask[0] % 8,
        client_max_window_bits: 8 + (input.mask[0] >> 3) % 8,
    })
}

/// A connection of `role`, speaking permessage-deflate if agreed, with a
/// compression level and threshold from the `mask` bytes.
fn connection(role: Role, mut config: Config, input: &Input) -> Connection {
    let Some(params) = deflate(input) else {
        return Connection::new(role, config);
    };
    let mut deflate = DeflateConfig::default();
    deflate.level = u32::from(input.mask[3] % 10);
    deflate.threshold = usize::from(input.mask[2] % 64);
    config.deflate = Some(deflate);
    Connection::with_deflate(role, config, params)
}

fn roundtrip(input: &Input, sender_role: Role) {
    let receiver_role = match sender_role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let mut config = Config::default();
    config.mask_keys = rfc6455::MaskKeys::Fixed(input.mask);
    config.streaming = input.flags & 1 != 0;
    let mut receiver = connection(receiver_role, config.clone(), input);
    config.streaming = input.flags & 2 != 0;
    let mut sender = connection(sender_role, config, input);

    let (mut expected, pings) = send(&mut sender, &input.ops);
    let code = CloseCode(input.close_code);
    let code = if code.is_sendable() {
        code
    } else {
        CloseCode::NORMAL
    };
    let mut reason = input.close_reason.as_str();
    while reason.len() > CloseFrame::MAX_REASON {
        let mut end = reason.len() - 1;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason = &reason[..end];
    }
    sender.close(code, reason).expect("open");

    // Sender to receiver: the messages, the pings, the Close.
    let mut received = Vec::new();
    transfer(&mut sender, &mut receiver, input, &mut received);
    let received = normalize(&received, input.flags & 1 != 0);
    let Some((Norm::Closed(closed), received)) = received.split_last() else {
        panic!("the receiver did not close: {received:?}");
    };
    assert_eq!(received, &expected[..], "the messages changed on the way");
    assert_eq!(closed.initiator, Initiator::Remote);
    assert_eq!(closed.received, Some(CloseFrame::new(code, reason)));
    assert!(closed.is_clean(), "{closed:?}");

    // Receiver to sender: one Pong per Ping, then the echoed Close.
    let mut answers = Vec::new();
    transfer(&mut receiver, &mut sender, input, &mut answers);
    expected = pings.into_iter().map(Norm::Pong).collect();
    let answers = normalize(&answers, input.flags & 2 != 0);
    let Some((Norm::Closed(closed), pongs)) = answers.split_last() else {
        panic!("the sender did not close: {answers:?}");
    };
    assert_eq!(pongs, &expected[..], "the Pongs do not answer the Pings");
    assert_eq!(closed.initiator, Initiator::Local);
    assert_eq!(closed.received, Some(CloseFrame::new(code, "")));
    assert!(closed.is_clean(), "{closed:?}");
    // The server closes the transport first (§7.1.1); the client waits.
    assert_eq!(
        receiver.should_close_transport(),
        receiver_role == Role::Server
    );
    assert_eq!(sender.should_close_transport(), sender_role == Role::Server);
}

fuzz_target!(|input: Input| {
    roundtrip(&input, Role::Client);
    roundtrip(&input, Role::Server);
});
