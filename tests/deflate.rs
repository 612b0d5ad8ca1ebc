//! permessage-deflate (RFC 7692): negotiation through the real handshakes,
//! compression both ways, the RSV1 rules, and failures with their codes.
#![cfg(feature = "deflate")]

mod common;

use common::{feed_all, frame, Chunking, BINARY, CONTINUATION, KEY, PING, TEXT};
use proptest::prelude::*;
use rfc6455::frame::Header;
use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, HandshakeError, ServerHandshake};
use rfc6455::{
    CloseCode, Config, Connection, DeflateConfig, DeflateParams, Event, Message, MessageKind, Role,
};

fn config(deflate: Option<DeflateConfig>) -> Config {
    let mut config = Config::default();
    config.deflate = deflate;
    config
}

/// A `DeflateConfig` from the defaults and some changes.
fn dc(change: impl FnOnce(&mut DeflateConfig)) -> DeflateConfig {
    let mut config = DeflateConfig::default();
    change(&mut config);
    config
}

fn all_messages() -> DeflateConfig {
    dc(|c| {
        c.threshold = 0;
    })
}

/// Runs both handshakes in memory. Returns the server's response head and
/// the two connections (client first).
fn handshake(mut client: Config, server: Config) -> (String, Connection, Connection) {
    client.mask_keys = rfc6455::MaskKeys::Fixed(KEY);
    let hs = ClientHandshake::new(&ClientRequest::new("localhost", "/"), client);
    let request = ServerHandshake::new(server)
        .handle_read(hs.request())
        .unwrap()
        .done()
        .unwrap();
    let accepted = request.accept(Accept::new()).unwrap();
    let response = String::from_utf8(accepted.response.clone()).unwrap();
    let client = hs
        .handle_read(&accepted.response)
        .unwrap()
        .done()
        .unwrap()
        .connection;
    (response, client, accepted.connection)
}

fn extension_line(response: &str) -> Option<&str> {
    response
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "))
}

/// Moves everything `from` wrote into `to` and returns `to`'s events.
fn pass(from: &mut Connection, to: &mut Connection, chunking: Chunking<'_>) -> Vec<Event> {
    let bytes = from.pending_output().to_vec();
    from.consume_output(bytes.len());
    feed_all(to, &bytes, chunking)
}

/// Decodes frames (any RSV bits), returning (rsv, opcode, payload) each.
fn frames(mut bytes: &[u8]) -> Vec<(u8, u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (header, n) = Header::decode(bytes).unwrap().unwrap();
        let len = header.len as usize;
        let mut payload = bytes[n..n + len].to_vec();
        if let Some(key) = header.mask {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        out.push((header.rsv, header.opcode.as_u8(), payload));
        bytes = &bytes[n + len..];
    }
    out
}

#[test]
fn negotiation_table() {
    // (client preferences, server preferences, expected answer, expected params)
    let base = DeflateConfig::default();
    type Case = (
        DeflateConfig,
        DeflateConfig,
        &'static str,
        (bool, bool, u8, u8),
    );
    let cases: Vec<Case> = vec![
        (
            base.clone(),
            base.clone(),
            "permessage-deflate",
            (false, false, 15, 15),
        ),
        (
            dc(|c| {
                c.server_no_context_takeover = true;
            }),
            base.clone(),
            "permessage-deflate; server_no_context_takeover",
            (true, false, 15, 15),
        ),
        (
            base.clone(),
            dc(|c| {
                c.client_no_context_takeover = true;
            }),
            "permessage-deflate; client_no_context_takeover",
            (false, true, 15, 15),
        ),
        (
            dc(|c| {
                c.server_max_window_bits = Some(10);
            }),
            base.clone(),
            "permessage-deflate; server_max_window_bits=10",
            (false, false, 10, 15),
        ),
        (
            base.clone(),
            dc(|c| {
                c.client_max_window_bits = Some(9);
                c.server_max_window_bits = Some(12);
            }),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=9",
            (false, false, 12, 9),
        ),
    ];
    for (client, server, answer, (snc, cnc, sbits, cbits)) in cases {
        let (response, c, s) = handshake(config(Some(client)), config(Some(server)));
        assert_eq!(extension_line(&response), Some(answer), "{response}");
        let expected = DeflateParams {
            server_no_context_takeover: snc,
            client_no_context_takeover: cnc,
            server_max_window_bits: sbits,
            client_max_window_bits: cbits,
        };
        assert_eq!(s.deflate_params(), Some(expected));
        assert_eq!(c.deflate_params(), Some(expected));
    }
}

#[test]
fn either_side_without_deflate_means_no_extension() {
    for (client, server) in [
        (None, Some(DeflateConfig::default())),
        (Some(DeflateConfig::default()), None),
    ] {
        let (response, c, s) = handshake(config(client), config(server));
        assert_eq!(extension_line(&response), None);
        assert_eq!((c.deflate_params(), s.deflate_params()), (None, None));
    }
}

#[test]
fn server_declines_offers_it_cannot_parse_or_accept() {
    for offer in [
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; unknown_param",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; =broken",
        "x-webkit-deflate-frame",
    ] {
        let head = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Extensions: {offer}\r\n\r\n"
        );
        let request = ServerHandshake::new(config(Some(DeflateConfig::default())))
            .handle_read(head.as_bytes())
            .unwrap()
            .done()
            .unwrap();
        let accepted = request.accept(Accept::new()).expect("declined, not failed");
        let response = String::from_utf8(accepted.response).unwrap();
        assert_eq!(extension_line(&response), None, "{offer}");
        assert_eq!(accepted.connection.deflate_params(), None);
    }
}

#[test]
fn client_fails_on_answers_it_did_not_allow() {
    let mut asked = DeflateConfig::default();
    asked.server_max_window_bits = Some(10);
    let cases = [
        (
            DeflateConfig::default(),
            "permessage-deflate; client_max_window_bits",
        ),
        (DeflateConfig::default(), "permessage-deflate; nonsense=1"),
        (
            DeflateConfig::default(),
            "permessage-deflate, permessage-deflate",
        ),
        (DeflateConfig::default(), "foo"),
        (
            DeflateConfig::default(),
            "permessage-deflate; server_max_window_bits=\"x y\"",
        ),
        (
            asked.clone(),
            "permessage-deflate; server_max_window_bits=12",
        ),
        (asked, "permessage-deflate"),
    ];
    for (ours, answer) in cases {
        let hs = ClientHandshake::new(&ClientRequest::new("h", "/"), config(Some(ours)));
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: {answer}\r\n\r\n",
            rfc6455::handshake::accept_key(hs.key().as_bytes())
        );
        let result = hs.handle_read(response.as_bytes());
        assert!(
            matches!(result, Err(HandshakeError::UnexpectedExtension(_))),
            "{answer}: {result:?}"
        );
    }
}

#[test]
fn compressed_frames_carry_rsv1_on_the_first_frame_only() {
    let (_, mut client, _) = handshake(config(Some(all_messages())), config(Some(all_messages())));
    client
        .send_fragmented(MessageKind::Text, "a".repeat(3000).as_bytes(), 8)
        .unwrap();
    client.ping(b"p").unwrap();
    let out = client.pending_output().to_vec();
    let frames = frames(&out);
    assert!(frames.len() >= 2, "{frames:?}");
    assert_eq!((frames[0].0, frames[0].1), (0b100, TEXT));
    for (rsv, opcode, _) in &frames[1..] {
        assert_eq!(*rsv, 0, "RSV1 on a continuation or control frame");
        assert!(*opcode == CONTINUATION || *opcode == PING);
    }
    // 3000 repeated bytes compress far below 3000.
    let wire: usize = frames
        .iter()
        .filter(|f| f.1 != PING)
        .map(|f| f.2.len())
        .sum();
    assert!(wire < 100, "{wire} bytes on the wire");
}

#[test]
fn rfc7692_examples_decode() {
    // §7.2.3.1: "Hello" compressed, one frame; §7.2.3.2: the same in two
    // fragments; §7.2.3.3 with no compression (BTYPE 00).
    let (_, _, server) = handshake(config(Some(all_messages())), config(Some(all_messages())));
    let mut server = server;
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let mut bytes = frame(true, TEXT, 0b100, Some(KEY), &hello);
    bytes.extend(frame(false, TEXT, 0b100, Some(KEY), &[0xf2, 0x48, 0xcd]));
    bytes.extend(frame(
        true,
        CONTINUATION,
        0,
        Some(KEY),
        &[0xc9, 0xc9, 0x07, 0x00],
    ));
    bytes.extend(frame(
        true,
        TEXT,
        0b100,
        Some(KEY),
        &[
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ],
    ));
    // Context takeover: the second "Hello" refers back to the first.
    for chunking in [Chunking::Whole, Chunking::Bytewise] {
        let (_, _, mut server) =
            handshake(config(Some(all_messages())), config(Some(all_messages())));
        let events = feed_all(&mut server, &bytes, chunking);
        let hello = Event::Message(Message::from("Hello"));
        assert_eq!(events, vec![hello.clone(), hello.clone(), hello]);
    }
    let _ = &mut server;
}

#[test]
fn rsv1_rules_are_enforced() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("RSV1 on a ping", frame(true, PING, 0b100, Some(KEY), b"x")),
        (
            "RSV1 on a continuation",
            [
                frame(false, TEXT, 0b100, Some(KEY), &[0xf2, 0x48]),
                frame(true, CONTINUATION, 0b100, Some(KEY), &[0xcd, 0x00]),
            ]
            .concat(),
        ),
        ("RSV2 set", frame(true, TEXT, 0b010, Some(KEY), b"x")),
    ];
    for (what, bytes) in cases {
        let (_, _, mut server) =
            handshake(config(Some(all_messages())), config(Some(all_messages())));
        let events = feed_all(&mut server, &bytes, Chunking::Whole);
        match events.last() {
            Some(Event::Closed(closed)) => assert_eq!(closed.code(), CloseCode(1002), "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    // Without negotiation RSV1 is a plain protocol error.
    let (_, _, mut server) = handshake(config(None), config(None));
    let events = feed_all(
        &mut server,
        &frame(true, TEXT, 0b100, Some(KEY), b"x"),
        Chunking::Whole,
    );
    assert!(matches!(events.last(), Some(Event::Closed(c)) if c.code() == CloseCode(1002)));
}

#[test]
fn bad_deflate_data_is_1007_for_text_and_1002_for_binary() {
    for (opcode, code) in [(TEXT, 1007), (BINARY, 1002)] {
        let (_, _, mut server) =
            handshake(config(Some(all_messages())), config(Some(all_messages())));
        let events = feed_all(
            &mut server,
            &frame(true, opcode, 0b100, Some(KEY), &[0xff; 12]),
            Chunking::Whole,
        );
        match events.last() {
            Some(Event::Closed(closed)) => assert_eq!(closed.code(), CloseCode(code)),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn inflated_text_that_is_not_utf8_is_1007() {
    // A client that compresses invalid UTF-8 as "text": send it as binary
    // from our own client, then flip the opcode on the wire.
    let (_, mut client, mut server) =
        handshake(config(Some(all_messages())), config(Some(all_messages())));
    client.send_binary(b"ok \xff\xfe not text").unwrap();
    let mut bytes = client.pending_output().to_vec();
    bytes[0] = (bytes[0] & 0xF0) | TEXT;
    let events = feed_all(&mut server, &bytes, Chunking::Whole);
    assert!(
        matches!(events.last(), Some(Event::Closed(c)) if c.code() == CloseCode(1007)),
        "{events:?}"
    );
}

#[test]
fn inflating_past_the_message_limit_is_1009() {
    let mut small = config(Some(all_messages()));
    small.max_message_size = Some(64 * 1024);
    for streaming in [false, true] {
        small.streaming = streaming;
        let best = dc(|c| {
            c.threshold = 0;
            c.level = 9;
        });
        let (_, mut client, mut server) = handshake(config(Some(best)), small.clone());
        client.send_binary(&vec![0u8; 1 << 20]).unwrap();
        assert!(
            client.pending_output().len() < 2048,
            "1 MiB of zeros is about 1 KiB compressed"
        );
        let events = pass(&mut client, &mut server, Chunking::Whole);
        match events.last() {
            Some(Event::Closed(closed)) => assert_eq!(closed.code(), CloseCode(1009)),
            other => panic!("{other:?}"),
        }
    }
}

fn message_strategy() -> impl Strategy<Value = (MessageKind, Vec<u8>)> {
    prop_oneof![
        ".{0,300}".prop_map(|s: String| (MessageKind::Text, s.into_bytes())),
        proptest::collection::vec(0u8..4, 0..3000).prop_map(|v| (MessageKind::Binary, v)),
        proptest::collection::vec(any::<u8>(), 0..500).prop_map(|v| (MessageKind::Binary, v)),
    ]
}

fn deflate_strategy() -> impl Strategy<Value = DeflateConfig> {
    (
        any::<bool>(),
        any::<bool>(),
        0usize..64,
        prop_oneof![Just(None), (9u8..=15).prop_map(Some)],
    )
        .prop_map(|(snc, cnc, threshold, bits)| {
            dc(|c| {
                c.server_no_context_takeover = snc;
                c.client_no_context_takeover = cnc;
                c.server_max_window_bits = bits;
                c.client_max_window_bits = bits;
                c.threshold = threshold;
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever is negotiated, however messages are fragmented and however
    /// the bytes are cut, both directions deliver exactly what was sent.
    #[test]
    fn compressed_round_trip(
        client_cfg in deflate_strategy(),
        server_cfg in deflate_strategy(),
        messages in proptest::collection::vec((message_strategy(), 0usize..4000), 1..8),
        streaming in any::<bool>(),
        read_sizes in proptest::collection::vec(1usize..700, 1..5),
    ) {
        let mut server_config = config(Some(server_cfg));
        server_config.streaming = streaming;
        let (_, mut client, mut server) = handshake(config(Some(client_cfg)), server_config);
        prop_assert!(client.deflate_params().is_some());
        for ((kind, data), fragment) in &messages {
            if *fragment == 0 {
                client.send_data(*kind, data).unwrap();
                server.send_data(*kind, data).unwrap();
            } else {
                client.send_fragmented(*kind, data, *fragment).unwrap();
                server.send_fragmented(*kind, data, *fragment).unwrap();
            }
        }
        // client -> server (maybe streaming), server -> client (whole)
        let events = pass(&mut client, &mut server, Chunking::Sizes(&read_sizes));
        let mut got: Vec<(MessageKind, Vec<u8>)> = Vec::new();
        for event in events {
            match event {
                Event::Message(m) => got.push((m.kind(), m.as_bytes().to_vec())),
                Event::Fragment(f) => {
                    if f.first {
                        got.push((f.kind, Vec::new()));
                    }
                    got.last_mut().unwrap().1.extend_from_slice(&f.data);
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        let sent: Vec<(MessageKind, Vec<u8>)> = messages.iter().map(|(m, _)| m.clone()).collect();
        prop_assert_eq!(&got, &sent);
        let back: Vec<(MessageKind, Vec<u8>)> = pass(&mut server, &mut client, Chunking::Sizes(&read_sizes))
            .into_iter()
            .map(|e| match e {
                Event::Message(m) => (m.kind(), m.as_bytes().to_vec()),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        prop_assert_eq!(&back, &sent);
    }

    /// Messages sent in pieces with `send_fragment` (compressed piece by
    /// piece) arrive whole.
    #[test]
    fn streamed_sends_round_trip(
        pieces in proptest::collection::vec(proptest::collection::vec(0u8..8, 0..2000), 1..6),
    ) {
        let (_, mut client, mut server) =
            handshake(config(Some(all_messages())), config(Some(all_messages())));
        for (i, piece) in pieces.iter().enumerate() {
            client.send_fragment(MessageKind::Binary, piece, i + 1 == pieces.len()).unwrap();
        }
        let events = pass(&mut client, &mut server, Chunking::Whole);
        prop_assert_eq!(events, vec![Event::Message(Message::Binary(pieces.concat().into()))]);
    }
}

#[test]
fn a_server_limited_to_8_bits_sends_uncompressed() {
    // zlib cannot make raw DEFLATE with an 8-bit window; we honour the
    // limit by not compressing, which every peer must accept.
    let mut client_cfg = all_messages();
    client_cfg.server_max_window_bits = Some(8);
    let (response, mut client, mut server) =
        handshake(config(Some(client_cfg)), config(Some(all_messages())));
    assert_eq!(
        extension_line(&response),
        Some("permessage-deflate; server_max_window_bits=8")
    );
    server.send_text(&"x".repeat(1000)).unwrap();
    let bytes = server.pending_output().to_vec();
    assert_eq!(frames(&bytes)[0].0, 0, "RSV1 set with an 8-bit window");
    let events = pass(&mut server, &mut client, Chunking::Whole);
    assert_eq!(
        events,
        vec![Event::Message(Message::from("x".repeat(1000)))]
    );
    // The other direction still compresses.
    client.send_text(&"y".repeat(1000)).unwrap();
    assert_eq!(frames(client.pending_output())[0].0, 0b100);
    let _ = Role::Client;
}

/// Found by the `inflate` fuzz target: the outcome of a compressed message
/// must not depend on how its bytes were split into reads.
#[test]
fn the_close_code_does_not_depend_on_the_reads() {
    // (what is compressed, streaming, expected code)
    let mut bad_text = b"0123456789\xff".to_vec();
    bad_text.extend(std::iter::repeat_n(b'a', 10_000));
    // (what is compressed, bytes of garbage after it, streaming, expected code)
    let cases: [(&[u8], usize, bool, u16); 6] = [
        // Inflates past the 4 KiB limit: 1009 even when each read inflates
        // only a little and streaming mode hands it out as it comes.
        (&[b'a'; 10_000], 0, true, 1009),
        (&[b'a'; 10_000], 0, false, 1009),
        // Invalid text at byte 10, long before the limit: 1007, even when
        // one read inflates past the limit at once.
        (&bad_text, 0, true, 1007),
        (&bad_text, 0, false, 1007),
        // One byte over the limit, then corrupt data: the limit came
        // first, also when one read inflates the last byte and runs into
        // the corruption at once.
        (&[b'a'; 4097], 4, true, 1009),
        (&[b'a'; 4097], 4, false, 1009),
    ];
    for (payload, garbage, streaming, code) in cases {
        let mut sender = config(Some(all_messages()));
        sender.max_message_size = None;
        let (_, mut client, _) = handshake(sender, config(Some(all_messages())));
        client.send_data(MessageKind::Binary, payload).unwrap();
        let mut bytes = client.pending_output().to_vec();
        if garbage > 0 {
            // The compressed bytes, unmasked, then bytes that cannot
            // follow them (a stored block whose lengths disagree).
            let (rsv, _, mut data) = frames(&bytes).remove(0);
            data.extend(std::iter::repeat_n(0xff, garbage));
            bytes = frame(true, BINARY, rsv, Some(KEY), &data);
        }
        // Claim it is text: the checks are on the inflated bytes.
        bytes[0] = (bytes[0] & 0xF0) | TEXT;
        for chunking in [
            Chunking::Whole,
            Chunking::Bytewise,
            Chunking::Sizes(&[3, 50]),
        ] {
            let mut receiver = config(Some(all_messages()));
            receiver.max_message_size = Some(4096);
            receiver.streaming = streaming;
            let (_, _, mut server) = handshake(config(Some(all_messages())), receiver);
            let events = feed_all(&mut server, &bytes, chunking.clone());
            match events.last() {
                Some(Event::Closed(closed)) => assert_eq!(
                    closed.code(),
                    CloseCode(code),
                    "streaming {streaming}, {chunking:?}"
                ),
                other => panic!("streaming {streaming}, {chunking:?}: {other:?}"),
            }
        }
    }
}

/// A message sent from a buffer handed over is compressed like any other
/// (the buffer cannot go out as it is), both ways.
#[test]
fn owned_buffers_are_compressed_too() {
    let (_, mut client, mut server) =
        handshake(config(Some(all_messages())), config(Some(all_messages())));
    let text = "owned ".repeat(1000);
    for client_sends in [true, false] {
        let (from, to) = if client_sends {
            (&mut client, &mut server)
        } else {
            (&mut server, &mut client)
        };
        from.send_owned(MessageKind::Text, bytes::BytesMut::from(text.as_bytes()))
            .unwrap();
        let out = from.pending_output().to_vec();
        let sent = frames(&out);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, 0b100, "RSV1: compressed");
        assert!(
            sent[0].2.len() < 200,
            "{} bytes on the wire",
            sent[0].2.len()
        );
        let events = pass(from, to, Chunking::Whole);
        assert_eq!(events, [Event::Message(Message::from(text.clone()))]);
    }
}
