//! Arbitrary bytes into a `ClientHandshake` (with the key of RFC 6455 §1.3,
//! so that a valid `Sec-WebSocket-Accept` is a dictionary word), in
//! arbitrary chunks.
//!
//! Invariants, beyond "never panics":
//! - the verdict (need more, error, connected) is the same whatever the
//!   chunking;
//! - an accepted response is a 101 with the right accept key and at most
//!   a subprotocol we offered;
//! - permessage-deflate is agreed only if we offered it (flags bit 1,
//!   with the preferences of bits 2-5), and then within what we asked:
//!   no wider a window for either end, our own context takeover off if we
//!   said so;
//! - the frames that followed the response reach the connection, whatever
//!   read they came in: the events are the same.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rfc6455::handshake::{
    accept_key, ClientHandshake, ClientRequest, Connected, HandshakeError, Progress,
};
use rfc6455::{Config, DeflateConfig, DeflateParams, Event};
use rfc6455_fuzz::{chunks, drain};

/// "the sample nonce": `dGhlIHNhbXBsZSBub25jZQ==` in base64 (§1.3).
const KEY: [u8; 16] = *b"the sample nonce";

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Bit 0: offer the subprotocols "chat" and "superchat". Bit 1: offer
    /// permessage-deflate; bits 2 and 3: asking for server and client no
    /// context takeover; bits 4 and 5: limiting the server's and the
    /// client's window (to 8 + `sizes[0]` % 8 and 8 + `sizes[1]` % 8 bits).
    flags: u8,
    /// `max_header_bytes` is 64 + 32 times this.
    head_limit: u8,
    /// `max_headers` is this modulo 65.
    field_limit: u8,
    /// Chunk lengths, cycled.
    sizes: [u8; 8],
    data: &'a [u8],
}

fn handshake(input: &Input<'_>) -> ClientHandshake {
    let mut request = ClientRequest::new("server.example.com", "/chat");
    if input.flags & 1 != 0 {
        request = request.protocol("chat").protocol("superchat");
    }
    let mut config = Config::default();
    config.max_header_bytes = 64 + 32 * usize::from(input.head_limit);
    config.max_headers = usize::from(input.field_limit % 65);
    config.mask_keys = rfc6455::MaskKeys::Fixed([0x37, 0xfa, 0x21, 0x3d]);
    config.deflate = deflate(input);
    let handshake = ClientHandshake::with_key(&request, config, KEY);
    assert_eq!(handshake.key(), "dGhlIHNhbXBsZSBub25jZQ==");
    handshake
}

/// The permessage-deflate we offer, if flags bit 1 says so.
fn deflate(input: &Input<'_>) -> Option<DeflateConfig> {
    let bit = |n: u8| input.flags & (1 << n) != 0;
    bit(1).then(|| {
        let mut deflate = DeflateConfig::default();
        deflate.server_no_context_takeover = bit(2);
        deflate.client_no_context_takeover = bit(3);
        deflate.server_max_window_bits = bit(4).then_some(8 + input.sizes[0] % 8);
        deflate.client_max_window_bits = bit(5).then_some(8 + input.sizes[1] % 8);
        deflate
    })
}

/// What the handshake agreed is within what we offered.
fn check_deflate(input: &Input<'_>, agreed: Option<DeflateParams>) {
    let Some(params) = agreed else { return };
    let offer = deflate(input).expect("agreed to permessage-deflate we did not offer");
    for bits in [params.server_max_window_bits, params.client_max_window_bits] {
        assert!((8..=15).contains(&bits), "a window of {bits} bits");
    }
    let asked = |limit: Option<u8>| limit.unwrap_or(15);
    assert!(params.server_max_window_bits <= asked(offer.server_max_window_bits));
    assert!(params.client_max_window_bits <= asked(offer.client_max_window_bits));
    assert!(params.client_no_context_takeover || !offer.client_no_context_takeover);
}

type Verdict = Result<Option<Connected>, HandshakeError>;

/// Feeds the pieces until the handshake decides; also returns how many
/// bytes were fed.
fn feed(mut handshake: ClientHandshake, pieces: &[&[u8]]) -> (Verdict, usize) {
    let mut fed = 0;
    for piece in pieces {
        fed += piece.len();
        // A handshake that decided is gone: it cannot be fed again.
        handshake = match handshake.handle_read(piece) {
            Ok(Progress::Partial(handshake)) => handshake,
            Ok(Progress::Done(connected)) => return (Ok(Some(connected)), fed),
            Err(error) => return (Err(error), fed),
        };
    }
    (Ok(None), fed)
}

fn events(connected: &mut Connected, more: &[u8]) -> (Vec<Event>, Vec<u8>) {
    let connection = &mut connected.connection;
    connection.handle_read(more);
    let mut events = Vec::new();
    drain(connection, &mut events);
    (events, connection.pending_output().to_vec())
}

fuzz_target!(|input: Input<'_>| {
    let pieces = chunks(input.data, &input.sizes);
    let (mut chunked, fed) = feed(handshake(&input), &pieces);
    let (mut whole, _) = feed(handshake(&input), &[input.data]);
    match (&mut chunked, &mut whole) {
        (Ok(None), Ok(None)) => {}
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "the error depends on the chunking");
            assert!(!a.to_string().is_empty(), "{a:?} says nothing");
        }
        (Ok(Some(a)), Ok(Some(b))) => {
            assert_eq!(a.response.status, 101);
            assert_eq!(a.response.status, b.response.status);
            assert_eq!(a.response.headers, b.response.headers);
            assert_eq!(a.response.protocol, b.response.protocol);
            let accept = a.response.header("Sec-WebSocket-Accept").map(str::trim);
            assert_eq!(
                accept,
                Some(accept_key(b"dGhlIHNhbXBsZSBub25jZQ==").as_str()),
                "accepted a wrong Sec-WebSocket-Accept"
            );
            if let Some(protocol) = &a.response.protocol {
                assert!(input.flags & 1 != 0 && ["chat", "superchat"].contains(&protocol.as_str()));
            }
            assert_eq!(a.connection.deflate_params(), b.connection.deflate_params());
            check_deflate(&input, a.connection.deflate_params());
            // The rest of the bytes go to the connection, as a driver would.
            let (a_events, a_out) = events(a, &input.data[fed..]);
            let (b_events, b_out) = events(b, &[]);
            assert_eq!(a_events, b_events, "frames after the head were lost");
            assert_eq!(a_out, b_out);
        }
        _ => panic!("the verdict depends on the chunking:\n{chunked:?}\n{whole:?}"),
    }
});
