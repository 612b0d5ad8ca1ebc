//! Arbitrary bytes as the payload of compressed messages, into a server
//! that negotiated permessage-deflate with a small message limit.
//!
//! Invariants, beyond "never panics":
//! - every message delivered is within the limit, and text is UTF-8;
//! - the connection ends, if it does, with 1002 (bad DEFLATE in binary),
//!   1007 (bad DEFLATE in text, or inflated text that is not UTF-8) or 1009
//!   (inflated past the limit), and nothing comes after Closed;
//! - the same events whatever the chunking of the frames.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rfc6455::frame::{Header, OpCode, MAX_HEADER_LEN};
use rfc6455::{Config, Connection, DeflateConfig, DeflateParams, Event, Role};
use rfc6455_fuzz::{chunks, normalize, Norm};

const LIMIT: usize = 4096;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Bit 0: text; bit 1: no context takeover; bit 2: streaming.
    flags: u8,
    /// Each message's compressed payload, split into frames of this size (0: one frame).
    fragment: u8,
    sizes: [u8; 4],
    messages: Vec<&'a [u8]>,
}

fn server(flags: u8) -> Connection {
    let mut config = Config::default();
    config.deflate = Some(DeflateConfig::default());
    config.max_message_size = Some(LIMIT);
    config.streaming = flags & 4 != 0;
    let params = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: flags & 2 != 0,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    Connection::with_deflate(Role::Server, config, params)
}

fn frame(out: &mut Vec<u8>, fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let header = Header {
        fin,
        rsv,
        opcode,
        mask: Some(key),
        len: payload.len() as u64,
    };
    let mut head = [0; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    out.extend_from_slice(&head[..n]);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
}

fn run(flags: u8, wire: &[u8], sizes: &[u8]) -> Vec<Event> {
    let mut conn = server(flags);
    let mut events = Vec::new();
    for piece in chunks(wire, sizes) {
        conn.handle_read(piece);
        while let Some(event) = conn.poll_event() {
            assert!(
                !matches!(events.last(), Some(Event::Closed(_))),
                "event after Closed"
            );
            events.push(event);
        }
        assert!(conn.buffered_input() <= wire.len());
    }
    events
}

fuzz_target!(|input: Input<'_>| {
    let opcode = if input.flags & 1 != 0 {
        OpCode::Text
    } else {
        OpCode::Binary
    };
    let mut wire = Vec::new();
    for payload in input.messages.iter().take(8) {
        let size = usize::from(input.fragment);
        let pieces: Vec<&[u8]> = if size == 0 || payload.is_empty() {
            vec![payload]
        } else {
            payload.chunks(size).collect()
        };
        for (i, piece) in pieces.iter().enumerate() {
            let first = i == 0;
            let op = if first { opcode } else { OpCode::Continuation };
            frame(
                &mut wire,
                i + 1 == pieces.len(),
                if first { 0b100 } else { 0 },
                op,
                piece,
            );
        }
    }
    let events = run(input.flags, &wire, &input.sizes);
    let mut streamed = 0usize;
    for event in &events {
        match event {
            Event::Message(message) => {
                assert!(
                    message.as_bytes().len() <= LIMIT,
                    "a message over the limit"
                );
                if opcode == OpCode::Text {
                    assert!(message.as_text().is_some());
                }
            }
            Event::Fragment(fragment) => {
                streamed += fragment.data.len();
                if fragment.last {
                    streamed = 0;
                }
            }
            Event::Closed(closed) => {
                let code = closed.code().0;
                assert!(matches!(code, 1002 | 1007 | 1009), "closed with {code}");
                if code == 1002 {
                    assert_eq!(opcode, OpCode::Binary, "bad text must be 1007");
                }
            }
            Event::Ping(_) | Event::Pong(_) => panic!("no control frames were sent"),
        }
        let _ = streamed;
    }
    // Chunking never changes the outcome: the same whole messages and the
    // same end. (In streaming mode how much of an unfinished message was
    // delivered before a failure depends on the reads, as documented.)
    let streaming = input.flags & 4 != 0;
    // A corrupt stream whose first inflated bytes are already invalid text
    // may be caught as either fault, depending on the reads; both are 1007,
    // so the close code is what must agree.
    let outcome = |events: &[Event]| -> Vec<(Option<Norm>, Option<u16>)> {
        normalize(events, streaming)
            .into_iter()
            .filter_map(|n| match n {
                Norm::Partial(..) => None,
                Norm::Closed(closed) => Some((None, Some(closed.code().0))),
                other => Some((Some(other), None)),
            })
            .collect()
    };
    assert_eq!(outcome(&run(input.flags, &wire, &[0])), outcome(&events));
});
