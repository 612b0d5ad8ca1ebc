//! Arbitrary bytes into a `ServerHandshake`, in arbitrary chunks.
//!
//! Invariants, beyond "never panics":
//! - the verdict (need more, error, request) is the same whatever the
//!   chunking, and the bytes after the head are kept, whatever read they
//!   came in;
//! - an error's response is a well-formed HTTP response with its status;
//! - a request that validates survives a round trip: rebuilt from its
//!   method, path and headers and parsed again, it is the same request;
//! - accepting it gives a 101 that a client with the same key accepts.
#![no_main]

use arbitrary::Arbitrary;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use rfc6455::handshake::{
    Accept, ClientHandshake, ClientRequest, HandshakeError, Progress, Request, ServerHandshake,
};
use rfc6455::Config;
use rfc6455_fuzz::chunks;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// `max_header_bytes` is 64 + 32 times this.
    head_limit: u8,
    /// `max_headers` is this modulo 65.
    field_limit: u8,
    /// Chunk lengths, cycled.
    sizes: [u8; 8],
    data: &'a [u8],
}

fn config(input: &Input<'_>) -> Config {
    let mut config = Config::default();
    config.max_header_bytes = 64 + 32 * usize::from(input.head_limit);
    config.max_headers = usize::from(input.field_limit % 65);
    config
}

type Verdict = Result<Option<Request>, HandshakeError>;

/// Feeds the pieces until the handshake decides; also returns how many
/// bytes were fed.
fn feed(config: Config, pieces: &[&[u8]]) -> (Verdict, usize) {
    let mut handshake = ServerHandshake::new(config);
    let mut fed = 0;
    for piece in pieces {
        fed += piece.len();
        // A handshake that decided is gone: it cannot be fed again.
        handshake = match handshake.handle_read(piece) {
            Ok(Progress::Partial(handshake)) => handshake,
            Ok(Progress::Done(request)) => return (Ok(Some(request)), fed),
            Err(error) => return (Err(error), fed),
        };
    }
    (Ok(None), fed)
}

fn same_request(a: &Request, b: &Request) {
    assert_eq!(a.method(), b.method());
    assert_eq!(a.path(), b.path());
    assert!(a.headers().eq(b.headers()), "headers differ");
    assert_eq!(a.validate(), b.validate());
}

fn check_error_response(error: &HandshakeError) {
    assert!(!error.to_string().is_empty(), "{error:?} says nothing");
    let response = error.response();
    let mut fields = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Response::new(&mut fields);
    let status = parsed.parse(&response).expect("our error response parses");
    let httparse::Status::Complete(head) = status else {
        panic!("our error response is incomplete");
    };
    assert_eq!(parsed.code, Some(error.status()));
    let length = parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Content-Length"))
        .map(|h| {
            std::str::from_utf8(h.value)
                .unwrap()
                .parse::<usize>()
                .unwrap()
        });
    assert_eq!(
        length,
        Some(response.len() - head),
        "Content-Length is wrong"
    );
}

/// The request's bytes, rebuilt from what the parser kept.
fn rebuild(request: &Request) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", request.method(), request.path()).into_bytes();
    for (name, value) in request.headers() {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn check_accepted(request: &Request, key: &str) {
    // Parse the rebuilt bytes with room to spare: `\n` line ends and
    // `name:value` without a space grow by the rebuild.
    let mut roomy = Config::default();
    roomy.max_header_bytes = 1 << 20;
    roomy.max_headers = 1024;
    let bytes = rebuild(request);
    let again = ServerHandshake::new(roomy)
        .handle_read(&bytes)
        .expect("the rebuilt request parses")
        .done()
        .expect("the rebuilt request is complete");
    same_request(request, &again);
    assert!(again.leftover().is_empty());

    // The 101 must satisfy a client that sent this key and these protocols.
    let raw: [u8; 16] = BASE64
        .decode(key)
        .expect("validate() checked the base64")
        .try_into()
        .expect("validate() checked the length");
    let offered = request.protocols();
    let mut client_request = ClientRequest::new("example.com", "/");
    for protocol in &offered {
        client_request = client_request.protocol(*protocol);
    }
    let client = ClientHandshake::with_key(&client_request, Config::default(), raw);
    assert_eq!(client.key(), key, "base64 of a validated key is canonical");
    let mut options = Accept::new();
    if let Some(first) = offered.first() {
        options = options.protocol(*first);
    }
    let leftover = request.leftover().to_vec();
    let accepted = request.clone().accept(options).expect("validate() was Ok");
    assert_eq!(accepted.protocol.as_deref(), offered.first().copied());
    assert_eq!(accepted.connection.buffered_input(), leftover.len());
    let connected = client
        .handle_read(&accepted.response)
        .expect("the client accepts our 101")
        .done()
        .expect("our 101 is complete");
    assert_eq!(connected.response.status, 101);
    assert_eq!(connected.response.protocol, accepted.protocol);
    assert_eq!(connected.connection.buffered_input(), 0);
}

fuzz_target!(|input: Input<'_>| {
    let pieces = chunks(input.data, &input.sizes);
    let (chunked, fed) = feed(config(&input), &pieces);
    let (whole, _) = feed(config(&input), &[input.data]);
    match (&chunked, &whole) {
        (Ok(None), Ok(None)) => {}
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "the error depends on the chunking");
            check_error_response(a);
        }
        (Ok(Some(a)), Ok(Some(b))) => {
            same_request(a, b);
            // The bytes after the head: those of the deciding read, then
            // whatever the driver reads next.
            let mut leftover = a.leftover().to_vec();
            leftover.extend_from_slice(&input.data[fed..]);
            assert_eq!(leftover, b.leftover(), "bytes after the head were lost");
            match b.validate() {
                Ok(key) => check_accepted(b, key),
                Err(error) => check_error_response(&error),
            }
        }
        _ => panic!("the verdict depends on the chunking:\n{chunked:?}\n{whole:?}"),
    }
});
