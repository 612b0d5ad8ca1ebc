//! Arbitrary bytes as a PROXY protocol header (v1 or v2), alone and in
//! front of a request to a server that expects one, in arbitrary chunks.
//!
//! Invariants, beyond "never panics":
//! - a header found is at most as long as the input, and the same header
//!   is found in exactly its own bytes and whatever follows them; every
//!   shorter prefix of it asks for more;
//! - a v1 header that names addresses, written out again, reads the same;
//! - the server handshake's verdict is the same whatever the chunking; a
//!   request it completes carries the header the parser finds, and is the
//!   request a server without the PROXY protocol reads from the bytes
//!   after the header; an error is a 400 that names the PROXY header when
//!   the header was at fault;
//! - with no proxy trusted, the client's address is the header's source
//!   (or the socket's peer), whatever the fields say.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rfc6455::forwarded::{parse_proxy_header, ProxyHeader, TrustedProxies};
use rfc6455::handshake::{HandshakeError, Progress, Request, ServerHandshake};
use rfc6455::Config;
use rfc6455_fuzz::chunks;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Chunk lengths, cycled.
    sizes: [u8; 8],
    data: &'a [u8],
}

fn config(proxy_protocol: bool) -> Config {
    let mut config = Config::default();
    config.proxy_protocol = proxy_protocol;
    config
}

type Verdict = Result<Option<Request>, HandshakeError>;

fn feed(config: Config, pieces: &[&[u8]]) -> Verdict {
    let mut handshake = ServerHandshake::new(config);
    for piece in pieces {
        handshake = match handshake.handle_read(piece)? {
            Progress::Partial(handshake) => handshake,
            Progress::Done(request) => return Ok(Some(request)),
        };
    }
    Ok(None)
}

fn summary(verdict: &Verdict) -> String {
    match verdict {
        Ok(Some(request)) => format!(
            "{} {} {:?} {:?}",
            request.method(),
            request.path(),
            request.headers().collect::<Vec<_>>(),
            request.proxy_header()
        ),
        other => format!("{:?}", other.as_ref().map(|_| ())),
    }
}

fuzz_target!(|input: Input<'_>| {
    let data = input.data;
    let parsed = parse_proxy_header(data);
    if let Ok(Some((header, used))) = parsed {
        assert!(used <= data.len());
        assert_eq!(parse_proxy_header(&data[..used]), Ok(Some((header, used))));
        for cut in 0..used {
            assert_eq!(parse_proxy_header(&data[..cut]), Ok(None), "cut at {cut}");
        }
        if data.starts_with(b"PROXY ") {
            if let ProxyHeader::Proxied {
                source,
                destination,
            } = header
            {
                let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
                let line = format!(
                    "PROXY {family} {} {} {} {}\r\n",
                    source.ip(),
                    destination.ip(),
                    source.port(),
                    destination.port()
                );
                let again = parse_proxy_header(line.as_bytes());
                assert_eq!(again, Ok(Some((header, line.len()))), "{line:?}");
            }
        }
    }

    let pieces = chunks(data, &input.sizes);
    let chunked = feed(config(true), &pieces);
    let whole = feed(config(true), &[data]);
    assert_eq!(summary(&chunked), summary(&whole), "the chunking matters");
    match (&whole, parsed) {
        (Ok(Some(request)), Ok(Some((header, used)))) => {
            assert_eq!(request.proxy_header(), Some(&header));
            let plain = feed(config(false), &[&data[used..]]);
            let plain = plain.expect("the same request").expect("complete");
            assert_eq!(plain.path(), request.path());
            assert!(plain.headers().eq(request.headers()));
            assert_eq!(plain.leftover(), request.leftover());
            let peer = "192.0.2.1".parse().unwrap();
            let client = request.client_addr(peer, &TrustedProxies::none());
            assert_eq!(client, header.source().map_or(peer, |s| s.ip()));
        }
        (Ok(Some(_)), _) => panic!("a request without a header"),
        (Err(HandshakeError::ProxyHeader(_)), Err(_)) => {}
        (Err(HandshakeError::ProxyHeader(why)), _) => {
            panic!("the handshake refused a header the parser takes: {why}")
        }
        (Err(error), Ok(Some(_))) => assert!(error.status() != 101),
        (Err(error), _) => panic!("{error:?} without a header"),
        (Ok(None), Ok(None) | Ok(Some(_))) => {}
        (Ok(None), Err(err)) => panic!("waits for more after a bad header: {err}"),
    }
    if let Err(error) = &whole {
        let response = error.response();
        assert!(response.starts_with(b"HTTP/1.1 4"), "{error:?}");
    }
});
