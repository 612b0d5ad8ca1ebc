//! Reaching a server through a proxy, as bytes a driver carries: an HTTP
//! `CONNECT` tunnel (RFC 9110 §9.3.6, with Basic credentials) or SOCKS5
//! (RFC 1928, with RFC 1929's username and password). Which proxy, if
//! any, comes from the caller or from the environment variables curl and
//! reqwest read ([`Proxy::from_env`]).
//!
//! Like the handshakes, [`ProxyHandshake`] does no I/O: write its
//! [`output`](ProxyHandshake::output), read at most
//! [`read_limit`](ProxyHandshake::read_limit) bytes and feed them to
//! [`handle_read`](ProxyHandshake::handle_read), until it is done; the
//! stream is then a tunnel to the server, and it has read nothing of what
//! the server sends after.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// The kind of proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyKind {
    /// An HTTP proxy, asked for a tunnel with `CONNECT host:port`.
    Http,
    /// A SOCKS5 proxy; the host name goes to the proxy, which resolves it.
    Socks5,
}

/// A proxy: where it is, its kind, and credentials if it wants them.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// HTTP `CONNECT` or SOCKS5.
    pub kind: ProxyKind,
    /// The proxy's host name or address.
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// User name and password (Basic for HTTP, RFC 1929 for SOCKS5).
    pub credentials: Option<(String, String)>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        f.debug_struct("Proxy")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish()
    }
}

/// What went wrong on the way through a proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyError {
    /// A proxy URL that cannot be used (`http://`, `socks5://` or
    /// `socks5h://`, with a host).
    Url(String),
    /// The HTTP proxy answered the `CONNECT` with another status than 2xx;
    /// 407 means it wants (other) credentials.
    Refused(u16),
    /// The SOCKS5 proxy refused to connect (RFC 1928 §6 reply code).
    Socks(u8),
    /// The SOCKS5 proxy wants an authentication method we do not offer,
    /// or refused the credentials.
    SocksAuth,
    /// The proxy's answer is not what the protocol allows.
    Malformed(&'static str),
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::Url(why) => write!(f, "proxy URL: {why}"),
            ProxyError::Refused(407) => {
                f.write_str("the proxy wants authentication (407 Proxy Authentication Required)")
            }
            ProxyError::Refused(status) => {
                write!(f, "the proxy refused the tunnel with status {status}")
            }
            ProxyError::Socks(code) => {
                write!(f, "the SOCKS5 proxy refused: {}", socks_reply(*code))
            }
            ProxyError::SocksAuth => f.write_str(
                "the SOCKS5 proxy refused our authentication (none, or user and password)",
            ),
            ProxyError::Malformed(why) => write!(f, "the proxy's answer is malformed: {why}"),
        }
    }
}

impl core::error::Error for ProxyError {}

/// RFC 1928 §6's reply codes.
fn socks_reply(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown reply code",
    }
}

impl Proxy {
    /// Parses `http://[user:password@]host[:port]` (port 80 by default, as
    /// curl and reqwest), `socks5://...` or `socks5h://...` (port 1080).
    /// Credentials are percent-decoded.
    ///
    /// ```
    /// use rfc6455::proxy::{Proxy, ProxyKind};
    ///
    /// let proxy = Proxy::parse("socks5://user:p%40ss@10.0.0.1").unwrap();
    /// assert_eq!((proxy.kind, proxy.port), (ProxyKind::Socks5, 1080));
    /// assert_eq!(proxy.host, "10.0.0.1");
    /// assert!(Proxy::parse("ftp://10.0.0.1").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<Proxy, ProxyError> {
        let bad = |why: &str| ProxyError::Url(format!("{url}: {why}"));
        let (kind, rest, default_port) = if let Some(rest) = url.strip_prefix("http://") {
            (ProxyKind::Http, rest, 80)
        } else if let Some(rest) = url
            .strip_prefix("socks5://")
            .or_else(|| url.strip_prefix("socks5h://"))
        {
            (ProxyKind::Socks5, rest, 1080)
        } else if !url.contains("://") {
            // curl reads a bare `host:port` as an HTTP proxy.
            (ProxyKind::Http, url, 80)
        } else {
            return Err(bad("the scheme must be http://, socks5:// or socks5h://"));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (credentials, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                (
                    Some((percent_decode(user), percent_decode(password))),
                    host_port,
                )
            }
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            match after.strip_prefix(':') {
                Some(port) => (host, port.parse().map_err(|_| bad("invalid port"))?),
                None => (host, default_port),
            }
        } else {
            match host_port.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().map_err(|_| bad("invalid port"))?),
                None => (host_port, default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Proxy {
            kind,
            host: host.to_string(),
            port,
            credentials,
        })
    }

    /// The proxy for a connection to `host` (`secure` for `wss://`), as
    /// curl and reqwest choose it from the environment: `HTTPS_PROXY` for
    /// `wss://`, `HTTP_PROXY` for `ws://`, else `ALL_PROXY` (each name in
    /// lower case first, then upper case), unless `NO_PROXY` lists the
    /// host. `env` looks a variable up (`|name| std::env::var(name).ok()`).
    pub fn from_env(
        secure: bool,
        host: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Option<Result<Proxy, ProxyError>> {
        let get = |name: &str| {
            env(&name.to_ascii_lowercase())
                .or_else(|| env(name))
                .filter(|v| !v.is_empty())
        };
        if let Some(no_proxy) = get("NO_PROXY") {
            if no_proxy_matches(&no_proxy, host) {
                return None;
            }
        }
        let scheme = if secure { "HTTPS_PROXY" } else { "HTTP_PROXY" };
        let url = get(scheme).or_else(|| get("ALL_PROXY"))?;
        Some(Proxy::parse(&url))
    }
}

/// Whether `NO_PROXY` (comma-separated: `*`, host names, domain suffixes
/// with or without a leading dot, addresses; ports ignored) covers `host`.
pub fn no_proxy_matches(no_proxy: &str, host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    no_proxy.split(',').map(str::trim).any(|entry| {
        if entry == "*" {
            return true;
        }
        // An entry may carry a port (`example.com:8080`): ignored, as curl.
        let entry = match entry.rsplit_once(':') {
            Some((name, port))
                if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name
            }
            _ => entry,
        };
        let entry = entry.trim_start_matches('.').to_ascii_lowercase();
        !entry.is_empty()
            && (host == entry
                || host
                    .strip_suffix(entry.as_str())
                    .is_some_and(|rest| rest.ends_with('.')))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| core::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The exchange with a proxy that opens a tunnel to a host and port.
#[derive(Debug)]
pub struct ProxyHandshake {
    /// Bytes to write to the proxy.
    output: Vec<u8>,
    /// The proxy's answer so far.
    input: Vec<u8>,
    /// What we wait for.
    step: Step,
    /// The SOCKS5 side's request and credentials (unused for HTTP).
    socks: Socks5,
}

/// What the handshake waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// HTTP: the response head to the CONNECT.
    HttpResponse,
    /// SOCKS5: the method the proxy chose (2 bytes).
    SocksMethod,
    /// SOCKS5: the answer to our credentials (2 bytes).
    SocksAuth,
    /// SOCKS5: the reply to CONNECT (its first 5 bytes say how long it is).
    SocksReply,
    /// Nothing: the tunnel is open.
    Done,
}

/// The longest HTTP response head a proxy may send us.
const MAX_PROXY_HEAD: usize = 8 * 1024;

impl ProxyHandshake {
    /// Starts the exchange with `proxy` for a tunnel to `host:port`.
    pub fn new(proxy: &Proxy, host: &str, port: u16) -> ProxyHandshake {
        let socks = Socks5 {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            credentials: proxy.credentials.clone(),
        };
        let (output, step) = match proxy.kind {
            ProxyKind::Http => (http_connect(proxy, host, port), Step::HttpResponse),
            ProxyKind::Socks5 => (socks.greeting(), Step::SocksMethod),
        };
        ProxyHandshake {
            output,
            input: Vec::new(),
            step,
            socks,
        }
    }

    /// Bytes to write to the proxy now.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// Records that `n` bytes of the output were written.
    pub fn consume_output(&mut self, n: usize) {
        self.output.drain(..n.min(self.output.len()));
    }

    /// Takes all the bytes to write to the proxy now, for a driver that
    /// writes them whole (empty when there is nothing to write).
    pub fn take_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.output)
    }

    /// Whether the tunnel is open.
    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    /// The most bytes to read next: never past the end of the proxy's
    /// answer, so no byte of the server's is taken.
    pub fn read_limit(&self) -> usize {
        let need = |n: usize| n.saturating_sub(self.input.len()).max(1);
        match self.step {
            Step::HttpResponse => head_read_limit(&self.input),
            Step::SocksMethod | Step::SocksAuth => need(2),
            Step::SocksReply => need(socks_reply_len(&self.input)),
            Step::Done => 0,
        }
    }

    /// Feeds bytes read from the proxy (at most [`read_limit`](Self::read_limit)).
    /// `Ok(true)` once the tunnel is open; then there is nothing more to
    /// write or read. An empty `data` is a read of 0 bytes, the proxy's
    /// end of stream: an error while the tunnel is not open yet.
    pub fn handle_read(&mut self, data: &[u8]) -> Result<bool, ProxyError> {
        if data.is_empty() && self.step != Step::Done {
            return Err(ProxyError::Malformed("the proxy closed the connection"));
        }
        self.input.extend_from_slice(data);
        let complete = match self.step {
            Step::HttpResponse => http_response_complete(&self.input)?,
            Step::SocksMethod | Step::SocksAuth => self.input.len() >= 2,
            Step::SocksReply => self.input.len() >= socks_reply_len(&self.input),
            Step::Done => return Ok(true),
        };
        if !complete {
            return Ok(false);
        }
        let answer = core::mem::take(&mut self.input);
        self.step = match self.step {
            Step::HttpResponse | Step::Done => Step::Done,
            Step::SocksMethod => match self.socks.method_chosen(&answer)? {
                Some(credentials) => {
                    self.output = credentials;
                    Step::SocksAuth
                }
                None => {
                    self.output = self.socks.connect()?;
                    Step::SocksReply
                }
            },
            Step::SocksAuth => {
                Socks5::auth_answer(&answer)?;
                self.output = self.socks.connect()?;
                Step::SocksReply
            }
            Step::SocksReply => {
                Socks5::reply(&answer)?;
                Step::Done
            }
        };
        Ok(self.step == Step::Done)
    }
}

/// `CONNECT host:port`, with Basic credentials if the proxy has them.
fn http_connect(proxy: &Proxy, host: &str, port: u16) -> Vec<u8> {
    let target = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some((user, password)) = &proxy.credentials {
        let token = BASE64.encode(format!("{user}:{password}"));
        head.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// How much of an HTTP head can be read without passing its blank line.
fn head_read_limit(input: &[u8]) -> usize {
    match input {
        [.., b'\r', b'\n', b'\r'] => 1,
        [.., b'\r', b'\n'] => 2,
        [.., b'\r'] => 3,
        _ => 4,
    }
}

/// Whether the response head to the CONNECT is complete, and if so,
/// whether it opened the tunnel ("HTTP/1.1 200 Connection established").
fn http_response_complete(input: &[u8]) -> Result<bool, ProxyError> {
    if input.len() > MAX_PROXY_HEAD {
        return Err(ProxyError::Malformed("response head too large"));
    }
    if !input.ends_with(b"\r\n\r\n") {
        return Ok(false);
    }
    let line = input.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = core::str::from_utf8(line).unwrap_or_default();
    let mut words = line.split_ascii_whitespace();
    let version = words.next().unwrap_or_default();
    let status: u16 = words
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(ProxyError::Malformed("no status line"))?;
    if !version.starts_with("HTTP/1.") {
        return Err(ProxyError::Malformed("not an HTTP/1.x response"));
    }
    if !(200..300).contains(&status) {
        return Err(ProxyError::Refused(status));
    }
    Ok(true)
}

/// The length of a whole SOCKS5 reply, once its first 5 bytes say (5
/// before): version, reply, reserved, address type, the address, the port.
fn socks_reply_len(input: &[u8]) -> usize {
    match input.get(3) {
        None => 5,
        Some(1) => 4 + 4 + 2,
        Some(4) => 4 + 16 + 2,
        Some(3) => match input.get(4) {
            Some(&n) => 4 + 1 + usize::from(n) + 2,
            None => 5,
        },
        Some(_) => 5,
    }
}

/// The SOCKS5 side (RFC 1928, RFC 1929): what we ask, and what the
/// proxy's answers mean.
#[derive(Debug)]
struct Socks5 {
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl Socks5 {
    /// Version 5, and the methods we offer: none, and user and password
    /// (2) when we have credentials.
    fn greeting(&self) -> Vec<u8> {
        if self.credentials.is_some() {
            alloc::vec![5, 2, 0, 2]
        } else {
            alloc::vec![5, 1, 0]
        }
    }

    /// The method the proxy chose: none (`None`: go on to CONNECT), or
    /// user and password (the RFC 1929 request to send).
    fn method_chosen(&self, answer: &[u8]) -> Result<Option<Vec<u8>>, ProxyError> {
        if answer[0] != 5 {
            return Err(ProxyError::Malformed("not a SOCKS5 answer"));
        }
        match (answer[1], &self.credentials) {
            (0, _) => Ok(None),
            (2, Some((user, password))) => {
                let (user, password) = (user.as_bytes(), password.as_bytes());
                let too_long = |b: &[u8]| u8::try_from(b.len()).map_err(|_| ProxyError::SocksAuth);
                // Version 1, then each as its length and its bytes.
                let mut out = alloc::vec![1, too_long(user)?];
                out.extend_from_slice(user);
                out.push(too_long(password)?);
                out.extend_from_slice(password);
                Ok(Some(out))
            }
            _ => Err(ProxyError::SocksAuth),
        }
    }

    /// The answer to our credentials: status 0 is success.
    fn auth_answer(answer: &[u8]) -> Result<(), ProxyError> {
        if answer[1] == 0 {
            Ok(())
        } else {
            Err(ProxyError::SocksAuth)
        }
    }

    /// CONNECT to the host by name (the proxy resolves it), or by address
    /// if it is one.
    fn connect(&self) -> Result<Vec<u8>, ProxyError> {
        let mut out = alloc::vec![5, 1, 0];
        if let Ok(v4) = self.host.parse::<core::net::Ipv4Addr>() {
            out.push(1);
            out.extend_from_slice(&v4.octets());
        } else if let Ok(v6) = self.host.parse::<core::net::Ipv6Addr>() {
            out.push(4);
            out.extend_from_slice(&v6.octets());
        } else {
            let name = self.host.as_bytes();
            let len = u8::try_from(name.len())
                .map_err(|_| ProxyError::Url("host name longer than 255 bytes".to_string()))?;
            out.push(3);
            out.push(len);
            out.extend_from_slice(name);
        }
        out.extend_from_slice(&self.port.to_be_bytes());
        Ok(out)
    }

    /// The reply to CONNECT: code 0 is success.
    fn reply(answer: &[u8]) -> Result<(), ProxyError> {
        match answer {
            [5, 0, ..] => Ok(()),
            [5, code, ..] => Err(ProxyError::Socks(*code)),
            _ => Err(ProxyError::Malformed("not a SOCKS5 reply")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// What a proxy URL parses into: kind, host, port, credentials.
    type Parsed<'a> = (ProxyKind, &'a str, u16, Option<(&'a str, &'a str)>);

    #[test]
    fn proxy_urls() {
        let cases: &[(&str, Option<Parsed>)] = &[
            (
                "http://proxy:3128",
                Some((ProxyKind::Http, "proxy", 3128, None)),
            ),
            ("http://proxy", Some((ProxyKind::Http, "proxy", 80, None))),
            ("proxy:8080", Some((ProxyKind::Http, "proxy", 8080, None))),
            (
                "http://us%40er:p%3Ass@proxy:3128/",
                Some((ProxyKind::Http, "proxy", 3128, Some(("us@er", "p:ss")))),
            ),
            (
                "socks5://127.0.0.1",
                Some((ProxyKind::Socks5, "127.0.0.1", 1080, None)),
            ),
            (
                "socks5h://u:p@[::1]:9050",
                Some((ProxyKind::Socks5, "::1", 9050, Some(("u", "p")))),
            ),
            ("https://proxy:443", None),
            ("socks4://proxy", None),
            ("http://:3128", None),
            ("http://proxy:port", None),
        ];
        for (url, want) in cases {
            let got = Proxy::parse(url)
                .ok()
                .map(|p| (p.kind, p.host, p.port, p.credentials));
            let want = want.map(|(k, h, p, c)| {
                (
                    k,
                    h.to_string(),
                    p,
                    c.map(|(u, w)| (u.to_string(), w.to_string())),
                )
            });
            assert_eq!(got, want, "{url}");
        }
        // The password never shows in Debug.
        let proxy = Proxy::parse("http://user:secret@proxy:1").unwrap();
        assert!(!alloc::format!("{proxy:?}").contains("secret"));
    }

    #[test]
    fn no_proxy_lists() {
        let cases = [
            ("*", "anything.example", true),
            ("example.com", "example.com", true),
            ("example.com", "www.example.com", true),
            (".example.com", "www.example.com", true),
            (".example.com", "example.com", true),
            ("example.com", "notexample.com", false),
            ("example.com:8080", "example.com", true),
            ("localhost, 127.0.0.1", "127.0.0.1", true),
            ("localhost,127.0.0.1", "127.0.0.2", false),
            ("::1", "[::1]", true),
            ("EXAMPLE.com", "www.Example.COM", true),
            ("", "example.com", false),
        ];
        for (list, host, want) in cases {
            assert_eq!(no_proxy_matches(list, host), want, "{list:?} {host}");
        }
    }

    #[test]
    fn the_environment_chooses_as_curl_does() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let pick =
            |secure, host, vars| Proxy::from_env(secure, host, env(vars)).map(|p| p.unwrap().host);
        let vars: &'static [(&str, &str)] = &[
            ("HTTP_PROXY", "http://plain:1"),
            ("https_proxy", "http://secure-lower:1"),
            ("HTTPS_PROXY", "http://secure-upper:1"),
            ("ALL_PROXY", "socks5://all:1"),
            ("NO_PROXY", "internal.example"),
        ];
        assert_eq!(pick(false, "a.example", vars).as_deref(), Some("plain"));
        // Lower case first, as curl.
        assert_eq!(
            pick(true, "a.example", vars).as_deref(),
            Some("secure-lower")
        );
        assert_eq!(pick(true, "x.internal.example", vars), None);
        let only_all: &'static [(&str, &str)] = &[("all_proxy", "socks5://all:1")];
        assert_eq!(pick(false, "a.example", only_all).as_deref(), Some("all"));
        assert_eq!(pick(false, "a.example", &[]), None);
        let empty: &'static [(&str, &str)] = &[("http_proxy", "")];
        assert_eq!(pick(false, "a.example", empty), None);
        let broken: &'static [(&str, &str)] = &[("http_proxy", "ftp://x")];
        assert!(matches!(
            Proxy::from_env(false, "a", env(broken)),
            Some(Err(ProxyError::Url(_)))
        ));
    }

    /// Runs `handshake` against a proxy that answers `answer` (then the
    /// server's first bytes, which must not be taken), reading in pieces
    /// of at most `piece` bytes; the requests it wrote, and the outcome.
    fn run(
        mut handshake: ProxyHandshake,
        answers: &[&[u8]],
        piece: usize,
    ) -> (Vec<Vec<u8>>, Result<(), ProxyError>) {
        let mut written = Vec::new();
        let mut answers = answers.iter();
        let mut pending: Vec<u8> = Vec::new();
        loop {
            if !handshake.output().is_empty() {
                written.push(handshake.output().to_vec());
                let n = handshake.output().len();
                handshake.consume_output(n);
                // Each request gets the next answer, followed by bytes of
                // the server that only the tunnel may read: the last
                // answer was read to its end, and not one byte further.
                assert!(
                    pending.is_empty() || pending == b"SERVER BYTES",
                    "read past an answer, or not to its end: {pending:?}"
                );
                pending.clear();
                pending.extend_from_slice(answers.next().expect("an answer"));
                pending.extend_from_slice(b"SERVER BYTES");
            }
            if handshake.is_done() {
                assert!(
                    pending.starts_with(b"SERVER BYTES"),
                    "took the server's bytes"
                );
                return (written, Ok(()));
            }
            let n = handshake.read_limit().min(piece).min(pending.len());
            assert!(n > 0, "the proxy's answer ran out");
            let chunk: Vec<u8> = pending.drain(..n).collect();
            if let Err(e) = handshake.handle_read(&chunk) {
                return (written, Err(e));
            }
            if handshake.is_done() {
                assert!(
                    pending.starts_with(b"SERVER BYTES"),
                    "took the server's bytes"
                );
                return (written, Ok(()));
            }
        }
    }

    fn proxy(url: &str) -> Proxy {
        Proxy::parse(url).unwrap()
    }

    #[test]
    fn http_connect() {
        for piece in [1, 2, 3, 5, 512] {
            let ok: &[u8] = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n";
            let (written, outcome) = run(
                ProxyHandshake::new(&proxy("http://p:1"), "example.com", 443),
                &[ok],
                piece,
            );
            assert_eq!(outcome, Ok(()));
            assert_eq!(
                written,
                vec![b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n".to_vec()]
            );
            let (written, _) = run(
                ProxyHandshake::new(&proxy("http://user:pass@p:1"), "::1", 80),
                &[ok],
                piece,
            );
            let request = String::from_utf8(written[0].clone()).unwrap();
            assert!(
                request.starts_with("CONNECT [::1]:80 HTTP/1.1\r\n"),
                "{request}"
            );
            // base64("user:pass")
            assert!(request.contains("Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"));

            let denied: &[u8] = b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n";
            let (_, outcome) = run(
                ProxyHandshake::new(&proxy("p:1"), "h", 80),
                &[denied],
                piece,
            );
            assert_eq!(outcome, Err(ProxyError::Refused(407)));
            let garbage: &[u8] = b"SSH-2.0-OpenSSH\r\n\r\n";
            let (_, outcome) = run(
                ProxyHandshake::new(&proxy("p:1"), "h", 80),
                &[garbage],
                piece,
            );
            assert!(matches!(outcome, Err(ProxyError::Malformed(_))));
        }
    }

    #[test]
    fn socks5() {
        let reply_v4: &[u8] = &[5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90];
        let reply_name: &[u8] = &[5, 0, 0, 3, 4, b'h', b'o', b's', b't', 0, 80];
        for piece in [1, 2, 3, 512] {
            for reply in [reply_v4, reply_name] {
                // No authentication.
                let (written, outcome) = run(
                    ProxyHandshake::new(&proxy("socks5://p:1"), "example.com", 8080),
                    &[&[5, 0], reply],
                    piece,
                );
                assert_eq!(outcome, Ok(()));
                let mut connect = vec![5, 1, 0, 3, 11];
                connect.extend_from_slice(b"example.com");
                connect.extend_from_slice(&8080u16.to_be_bytes());
                assert_eq!(written, vec![vec![5, 1, 0], connect]);
            }
            // User and password, to an IPv4 address.
            let (written, outcome) = run(
                ProxyHandshake::new(&proxy("socks5://ann:pw@p:1"), "10.0.0.1", 80),
                &[&[5, 2], &[1, 0], reply_v4],
                piece,
            );
            assert_eq!(outcome, Ok(()));
            assert_eq!(
                written,
                vec![
                    vec![5, 2, 0, 2],
                    vec![1, 3, b'a', b'n', b'n', 2, b'p', b'w'],
                    vec![5, 1, 0, 1, 10, 0, 0, 1, 0, 80],
                ]
            );
            // Credentials refused; no acceptable method; connection refused.
            let (_, outcome) = run(
                ProxyHandshake::new(&proxy("socks5://ann:pw@p:1"), "h", 80),
                &[&[5, 2], &[1, 1]],
                piece,
            );
            assert_eq!(outcome, Err(ProxyError::SocksAuth));
            let (_, outcome) = run(
                ProxyHandshake::new(&proxy("socks5://p:1"), "h", 80),
                &[&[5, 0xff]],
                piece,
            );
            assert_eq!(outcome, Err(ProxyError::SocksAuth));
            let (_, outcome) = run(
                ProxyHandshake::new(&proxy("socks5://p:1"), "h", 80),
                &[&[5, 0], &[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]],
                piece,
            );
            assert_eq!(outcome, Err(ProxyError::Socks(5)));
        }
        // The proxy's end of stream before its answer is whole, at every
        // step: the handshake says so instead of waiting for more.
        for (url, before_end) in [
            ("http://p:1", &b"HTTP/1.1 200 OK\r\n"[..]),
            ("socks5://p:1", &[5][..]),
            ("socks5://ann:pw@p:1", &[5, 2, 1][..]),
        ] {
            let mut handshake = ProxyHandshake::new(&proxy(url), "h", 80);
            assert!(!handshake.take_output().is_empty());
            for &byte in before_end {
                handshake.handle_read(&[byte]).unwrap();
                handshake.take_output();
            }
            assert_eq!(
                handshake.handle_read(&[]),
                Err(ProxyError::Malformed("the proxy closed the connection")),
                "{url}"
            );
        }
        assert_eq!(
            ProxyError::Socks(5).to_string(),
            "the SOCKS5 proxy refused: connection refused"
        );
    }
}
