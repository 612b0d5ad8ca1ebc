//! The way through a proxy: an arbitrary proxy URL, `NO_PROXY` list and
//! host, then arbitrary bytes as the proxy's answer, read the way a
//! driver reads (never more than `read_limit`), in arbitrary chunks.
//!
//! Invariants, beyond "never panics":
//! - a parsed URL names a host, and `*` in `NO_PROXY` covers every host;
//! - the verdict (need more, error, tunnel open) is the same whatever the
//!   chunking, and so is the byte after which the tunnel opens;
//! - the handshake never takes a byte past the proxy's answer: once the
//!   tunnel is open it asks for nothing more and has nothing to write.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rfc6455::proxy::{no_proxy_matches, Proxy, ProxyError, ProxyHandshake};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Used as given when it parses; else one of four fixed proxies.
    url: &'a str,
    /// Which fixed proxy: HTTP or SOCKS5, with or without credentials.
    fallback: u8,
    no_proxy: &'a str,
    host: &'a str,
    port: u16,
    /// Chunk lengths, cycled; 0 means "as much as `read_limit` allows".
    sizes: [u8; 8],
    answer: &'a [u8],
}

fn proxy(input: &Input<'_>) -> Proxy {
    if let Ok(proxy) = Proxy::parse(input.url) {
        assert!(!proxy.host.is_empty(), "a proxy without a host: {proxy:?}");
        return proxy;
    }
    let url = match input.fallback % 4 {
        0 => "http://proxy.example:3128",
        1 => "http://user:p%40ss@proxy.example",
        2 => "socks5://proxy.example",
        _ => "socks5h://user:pass@proxy.example:1080",
    };
    Proxy::parse(url).expect("a fixed proxy URL")
}

type Verdict = Result<bool, ProxyError>;

/// Feeds the answer as a driver reads it: each read at most `read_limit`
/// bytes (and at most the chunk size); returns the verdict and how many
/// bytes were taken.
fn feed(mut handshake: ProxyHandshake, answer: &[u8], sizes: &[u8]) -> (Verdict, usize) {
    let mut taken = 0;
    let mut round = 0;
    loop {
        // The request (or the next SOCKS5 message) is written first.
        let written = handshake.output().len();
        handshake.consume_output(written);
        let limit = handshake.read_limit();
        assert!(limit > 0, "an open handshake that reads nothing");
        let size = match sizes[round % sizes.len()] {
            0 => limit,
            n => usize::from(n).min(limit),
        };
        round += 1;
        let piece = &answer[taken..(taken + size).min(answer.len())];
        if piece.is_empty() {
            return (Ok(false), taken);
        }
        taken += piece.len();
        match handshake.handle_read(piece) {
            Ok(true) => {
                assert!(handshake.is_done());
                assert_eq!(handshake.read_limit(), 0, "an open tunnel asks for more");
                assert!(handshake.output().is_empty(), "an open tunnel writes more");
                return (Ok(true), taken);
            }
            Ok(false) => assert!(!handshake.is_done()),
            Err(error) => return (Err(error), taken),
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    assert!(
        no_proxy_matches("*", input.host),
        "`*` must cover {:?}",
        input.host
    );
    let _ = no_proxy_matches(input.no_proxy, input.host);

    let proxy = proxy(&input);
    let start = || ProxyHandshake::new(&proxy, input.host, input.port);
    assert!(!start().output().is_empty(), "nothing to send the proxy");
    let (chunked, chunked_taken) = feed(start(), input.answer, &input.sizes);
    let (greedy, greedy_taken) = feed(start(), input.answer, &[0]);
    assert_eq!(chunked, greedy, "the verdict depends on the chunking");
    if chunked == Ok(true) {
        assert_eq!(
            chunked_taken, greedy_taken,
            "the tunnel opened at another byte"
        );
    }
});
