//! Arbitrary bytes into a `ServerHandshake`, in arbitrary chunks.
//!
//! Invariants, beyond "never panics":
//! - the verdict (need more, error, request) is the same whatever the
//!   chunking, and the bytes after the head are kept, whatever read they
//!   came in;
//! - an error's response is a well-formed HTTP response with its status;
//! - a request that validates survives a round trip: rebuilt from its
//!   method, path and headers and parsed again, it is the same request;
//! - accepting it gives a 101 that a client with the same key accepts;
//!   with permessage-deflate configured (an odd `head_limit`), the 101
//!   agrees on it only if the request offered it;
//! - the same head handed over parsed (`Request::from_head`, what the
//!   hyper and axum drivers do) gets the same verdict and the same 101;
//! - the bytes after the head, as an embedder's field, status and reason:
//!   a refusal (or a 101) that carries them is one whole HTTP head, with
//!   the field or without it but never split, a status that refuses, and
//!   the reason as its body;
//! - a query parameter whose name needs no decoding is found;
//! - the handshake's deadline, set before the first byte, stays with the
//!   request, and once it has passed the request is refused with 408.
#![no_main]

use arbitrary::Arbitrary;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use rfc6455::handshake::{
    Accept, ClientHandshake, ClientRequest, HandshakeError, Progress, Request, ServerHandshake,
};
use rfc6455::{Config, Timestamp};
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
    if input.head_limit % 2 == 1 {
        config.deflate = Some(rfc6455::DeflateConfig::default());
    }
    config
}

type Verdict = Result<Option<Request>, HandshakeError>;

/// The time the handshake is told before the first byte.
const START: Timestamp = Timestamp::from_millis(1_000);

/// Feeds the pieces until the handshake decides; also returns how many
/// bytes were fed.
fn feed(config: Config, pieces: &[&[u8]]) -> (Verdict, usize) {
    let limit = config.timeouts.handshake.expect("the default has one");
    let mut handshake = ServerHandshake::new(config);
    handshake
        .handle_timeout(START)
        .expect("the deadline is ahead");
    assert_eq!(handshake.poll_timeout(), Some(START + limit));
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
    let (status, fields, head) = parse_response(&response);
    assert_eq!(status, error.status());
    let length = fields
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, value)| {
            std::str::from_utf8(value)
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

/// An HTTP/1.1 response head, which must parse whole: its status, its
/// fields and the length of the head.
fn parse_response(bytes: &[u8]) -> (u16, Vec<(String, Vec<u8>)>, usize) {
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut fields);
    let status = parsed.parse(bytes).expect("our response parses");
    let httparse::Status::Complete(head) = status else {
        panic!("our response is incomplete");
    };
    let fields = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    (parsed.code.expect("a status"), fields, head)
}

/// An embedder's field, status and reason, made of the bytes after the
/// head (whatever they are) and the chunk sizes.
fn embedder_parts<'a>(leftover: &'a str, sizes: &[u8; 8]) -> (&'a str, &'a str, u16) {
    let mut middle = leftover.len() / 2;
    while !leftover.is_char_boundary(middle) {
        middle += 1;
    }
    let (name, value) = leftover.split_at(middle);
    (name, value, u16::from_le_bytes([sizes[0], sizes[1]]))
}

/// A refusal carrying the embedder's field is one whole head: the fixed
/// fields, the embedder's or not (never more), a status that refuses,
/// and the reason as the body.
fn check_refusal(request: &Request, sizes: &[u8; 8]) {
    let leftover = String::from_utf8_lossy(request.leftover());
    let (name, value, status) = embedder_parts(&leftover, sizes);
    let response = request.reject_with_headers(status, &[(name, value)], &leftover);
    let (sent, fields, head) = parse_response(&response);
    assert!((300..=599).contains(&sent), "{sent} does not refuse");
    assert!(sent == status || sent == 500, "{status} went out as {sent}");
    assert!(
        fields.len() == 3 || fields.len() == 4,
        "{} fields for one of ours",
        fields.len()
    );
    if fields.len() == 4 {
        assert!(fields[0].0 == name, "another field went out");
    }
    assert_eq!(&response[head..], format!("{leftover}\n").as_bytes());
}

/// Each query parameter whose name is plain (nothing to decode) is found.
fn check_query(request: &Request) {
    let Some(query) = request.query() else {
        assert!(!request.path().contains('?'));
        return;
    };
    for pair in query.split('&') {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        if !name.contains(['%', '+']) {
            assert!(request.query_param(name).is_some(), "{name} not found");
        }
    }
}

/// RFC 9110 §5.6.2's token, written out here as the oracle.
fn is_token(s: &str) -> bool {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    !s.is_empty() && s.bytes().all(tchar)
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

fn check_accepted(request: &Request, key: &str, input: &Input<'_>) {
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
    let accepted = request
        .clone()
        .accept(options.clone())
        .expect("validate() was Ok");
    // Agreed if it is a token, as a subprotocol's name must be (§4.1).
    let agreeable = offered.first().copied().filter(|p| is_token(p));
    assert_eq!(accepted.protocol.as_deref(), agreeable);
    assert_eq!(accepted.connection.buffered_input(), leftover.len());

    // The same head, handed over parsed (as the `http` drivers do), gets
    // the same 101.
    let parsed = Request::from_head(
        config(input),
        request.method(),
        request.path(),
        1,
        request.headers(),
    );
    assert_eq!(parsed.validate(), Ok(key));
    let again = parsed.accept(options.clone()).expect("the same head");
    assert_eq!(again.response, accepted.response, "from_head differs");

    // The embedder's own field: the 101 is still one whole head, with the
    // field or without it.
    let text = String::from_utf8_lossy(&leftover);
    let (name, value, _) = embedder_parts(&text, &input.sizes);
    let with_field = request
        .clone()
        .accept(options.header(name, value))
        .expect("validate() was Ok");
    let (status, fields, head) = parse_response(&with_field.response);
    assert_eq!(status, 101);
    assert_eq!(head, with_field.response.len(), "bytes after the 101");
    for (name, value) in &fields {
        http::HeaderName::from_bytes(name.as_bytes()).expect("http takes the name");
        http::HeaderValue::from_bytes(value).expect("http takes the value");
    }
    let (_, plain, _) = parse_response(&accepted.response);
    assert!(fields.len() == plain.len() || fields.len() == plain.len() + 1);

    // permessage-deflate is agreed only when offered.
    let agreed = plain
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("Sec-WebSocket-Extensions"));
    if let Some((_, value)) = agreed {
        assert!(value.starts_with(b"permessage-deflate"));
        assert!(
            request
                .extensions()
                .iter()
                // Extension names match whatever their case, as in the
                // client's check.
                .any(|offer| offer.to_ascii_lowercase().contains("permessage-deflate")),
            "agreed on an extension not offered"
        );
        // A client that did not offer it refuses the 101.
        assert!(client.handle_read(&accepted.response).is_err());
        return;
    }
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
            check_refusal(b, &input.sizes);
            check_query(b);
            // The request keeps the handshake's deadline, and past it
            // refuses with 408.
            let limit = config(&input).timeouts.handshake.expect("a default");
            assert_eq!(b.deadline(), Some(START + limit));
            let mut late = b.clone();
            let timeout = late.handle_timeout(START + limit).unwrap_err();
            assert_eq!(timeout, HandshakeError::Timeout);
            check_error_response(&timeout);
            match b.validate() {
                Ok(key) => check_accepted(b, key, &input),
                Err(error) => {
                    check_error_response(&error);
                    // Handed over parsed: the same error, but for the
                    // version, which `from_head` is told.
                    let parsed =
                        Request::from_head(config(&input), b.method(), b.path(), 1, b.headers());
                    if error != HandshakeError::HttpVersion {
                        assert_eq!(parsed.validate(), Err(error));
                    }
                }
            }
        }
        _ => panic!("the verdict depends on the chunking:\n{chunked:?}\n{whole:?}"),
    }
});
