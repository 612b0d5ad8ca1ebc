//! The client's real address behind proxies: the PROXY protocol header
//! (v1 and v2, as haproxy's `send-proxy` and `send-proxy-v2` send it) and
//! the `Forwarded` (RFC 7239) and `X-Forwarded-For` fields, each believed
//! only from a sender you configured.
//!
//! Behind a load balancer, the socket's peer is the balancer. Where the
//! client really is comes in one of two ways:
//!
//! - **The PROXY protocol**: the balancer writes a short header before
//!   anything the client sent. Set [`Config::proxy_protocol`] and the
//!   server handshake reads it first, as bytes like the request after it:
//!   [`Request::proxy_header`](crate::handshake::Request::proxy_header)
//!   gives it to the accept callback. A connection without a valid header
//!   is refused with 400, so set it only where every connection comes
//!   through such a balancer (a client could otherwise write its own).
//! - **HTTP fields**: `Forwarded: for=...` or `X-Forwarded-For`, which a
//!   balancer appends to. Any client can write them too, so
//!   [`Request::client_addr`](crate::handshake::Request::client_addr)
//!   reads them only while the address it has so far is one of your
//!   [`TrustedProxies`]: with none trusted, the socket's peer is the
//!   answer whatever the fields say.
//!
//! ```
//! use rfc6455::forwarded::{parse_proxy_header, ProxyHeader};
//!
//! let header = b"PROXY TCP4 203.0.113.7 10.0.0.2 51234 443\r\nGET / HTTP/1.1\r\n";
//! let (parsed, used) = parse_proxy_header(header).unwrap().expect("whole");
//! assert_eq!(used, 43);
//! let ProxyHeader::Proxied { source, .. } = parsed else { panic!() };
//! assert_eq!(source.to_string(), "203.0.113.7:51234");
//! ```
//!
//! [`Config::proxy_protocol`]: crate::Config::proxy_protocol

use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::str::FromStr;

/// What a PROXY protocol header says about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The client's connection as the proxy saw it: `source` is the
    /// client, `destination` the address the client reached.
    Proxied {
        /// The client's address and port.
        source: SocketAddr,
        /// The proxy's address and port the client connected to.
        destination: SocketAddr,
    },
    /// No client address: the proxy's own connection (v2 `LOCAL`, a
    /// health check), or one it could not describe (v1 `UNKNOWN`, v2 with
    /// an unspecified or Unix-socket family). The socket's peer stands.
    Unknown,
}

impl ProxyHeader {
    /// The client's address, if the header gives one.
    pub fn source(&self) -> Option<SocketAddr> {
        match self {
            ProxyHeader::Proxied { source, .. } => Some(*source),
            ProxyHeader::Unknown => None,
        }
    }
}

/// Why bytes are not a PROXY protocol header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyHeaderError(pub &'static str);

impl fmt::Display for ProxyHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl core::error::Error for ProxyHeaderError {}

/// The v2 header's first 12 bytes.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The longest v1 header, `\r\n` included (the specification's limit).
pub const V1_MAX: usize = 107;

/// The longest v2 header read: 16 bytes and up to this many more (the
/// addresses and the TLVs a balancer appends; haproxy's fit in a few
/// hundred bytes).
pub const V2_MAX_BODY: usize = 4096;

/// Reads a PROXY protocol header (v1 or v2) at the start of `input`.
///
/// `Ok(None)`: the bytes so far begin a header; read more and call again
/// with all of them. `Ok(Some((header, used)))`: a whole header, `used`
/// bytes long; what follows is the client's. `Err`: not a valid header.
pub fn parse_proxy_header(input: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyHeaderError> {
    const V1: &[u8] = b"PROXY ";
    let start = input.len().min(V2_SIGNATURE.len());
    if input[..start] == V2_SIGNATURE[..start] {
        return if start < V2_SIGNATURE.len() {
            Ok(None)
        } else {
            v2(input)
        };
    }
    let start = input.len().min(V1.len());
    if input[..start] != V1[..start] {
        return Err(ProxyHeaderError(
            "the connection does not begin with a PROXY header",
        ));
    }
    v1(input)
}

/// `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`, `TCP6` alike, or
/// `PROXY UNKNOWN ...\r\n`.
fn v1(input: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyHeaderError> {
    // The line ends at its first LF, which must follow a CR: the verdict
    // is the same however the bytes arrive.
    let window = &input[..input.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if window.len() == V1_MAX {
            return Err(ProxyHeaderError("PROXY v1 line longer than 107 bytes"));
        }
        return Ok(None);
    };
    let Some(end) = lf.checked_sub(1).filter(|&cr| window[cr] == b'\r') else {
        return Err(ProxyHeaderError("PROXY v1 line not ended by CRLF"));
    };
    let line = core::str::from_utf8(&window[..end])
        .map_err(|_| ProxyHeaderError("PROXY v1 line is not ASCII"))?;
    let mut words = line.split(' ');
    words.next(); // "PROXY", checked by the caller
    let header = match words.next() {
        Some("UNKNOWN") => ProxyHeader::Unknown,
        Some(family @ ("TCP4" | "TCP6")) => {
            let v6 = family == "TCP6";
            let mut word = || {
                words
                    .next()
                    .ok_or(ProxyHeaderError("PROXY v1 line too short"))
            };
            let (src, dst) = (ip(word()?, v6)?, ip(word()?, v6)?);
            let (sport, dport) = (port(word()?)?, port(word()?)?);
            if words.next().is_some() {
                return Err(ProxyHeaderError("PROXY v1 line too long"));
            }
            ProxyHeader::Proxied {
                source: SocketAddr::new(src, sport),
                destination: SocketAddr::new(dst, dport),
            }
        }
        _ => {
            return Err(ProxyHeaderError(
                "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN",
            ))
        }
    };
    Ok(Some((header, end + 2)))
}

fn ip(word: &str, v6: bool) -> Result<IpAddr, ProxyHeaderError> {
    let parsed = match v6 {
        false => Ipv4Addr::from_str(word).map(IpAddr::V4),
        true => Ipv6Addr::from_str(word).map(IpAddr::V6),
    };
    parsed.map_err(|_| ProxyHeaderError("PROXY v1 address is not one of its family"))
}

/// A port: decimal, no sign, no leading zero.
fn port(word: &str) -> Result<u16, ProxyHeaderError> {
    let digits = !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit());
    if !digits || (word.len() > 1 && word.starts_with('0')) {
        return Err(ProxyHeaderError("PROXY v1 port is not a decimal number"));
    }
    word.parse()
        .map_err(|_| ProxyHeaderError("PROXY v1 port is above 65535"))
}

/// The binary header: signature, version and command, family and
/// transport, length, addresses, TLVs (skipped).
fn v2(input: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyHeaderError> {
    let Some(fixed) = input.get(..16) else {
        return Ok(None);
    };
    let (version, command) = (fixed[12] >> 4, fixed[12] & 0xf);
    if version != 2 {
        return Err(ProxyHeaderError("PROXY v2 header of another version"));
    }
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if len > V2_MAX_BODY {
        return Err(ProxyHeaderError("PROXY v2 header longer than 4096 bytes"));
    }
    let (family, transport) = (fixed[13] >> 4, fixed[13] & 0xf);
    if family > 3 || transport > 2 {
        return Err(ProxyHeaderError("PROXY v2 family or transport unknown"));
    }
    if transport == 2 {
        return Err(ProxyHeaderError(
            "PROXY v2 header for datagrams on a stream",
        ));
    }
    let Some(body) = input.get(16..16 + len) else {
        return Ok(None);
    };
    let used = 16 + len;
    let header = match command {
        // LOCAL: the proxy's own connection; the addresses are ignored.
        0 => ProxyHeader::Unknown,
        1 => match family {
            1 => {
                let a: &[u8; 12] = body
                    .get(..12)
                    .and_then(|a| a.try_into().ok())
                    .ok_or(ProxyHeaderError("PROXY v2 IPv4 addresses cut short"))?;
                let at = |i: usize| Ipv4Addr::new(a[i], a[i + 1], a[i + 2], a[i + 3]);
                let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
                ProxyHeader::Proxied {
                    source: SocketAddr::new(at(0).into(), port(8)),
                    destination: SocketAddr::new(at(4).into(), port(10)),
                }
            }
            2 => {
                let a: &[u8; 36] = body
                    .get(..36)
                    .and_then(|a| a.try_into().ok())
                    .ok_or(ProxyHeaderError("PROXY v2 IPv6 addresses cut short"))?;
                let at = |i: usize| {
                    let octets: [u8; 16] = a[i..i + 16].try_into().expect("16 bytes");
                    Ipv6Addr::from(octets)
                };
                let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
                ProxyHeader::Proxied {
                    source: SocketAddr::new(at(0).into(), port(32)),
                    destination: SocketAddr::new(at(16).into(), port(34)),
                }
            }
            // Unspecified, or Unix sockets: no IP address to give.
            _ => ProxyHeader::Unknown,
        },
        _ => {
            return Err(ProxyHeaderError(
                "PROXY v2 command is neither LOCAL nor PROXY",
            ))
        }
    };
    Ok(Some((header, used)))
}

/// The proxies whose word on the client's address is believed: addresses
/// and networks (`10.0.0.0/8`, `::1`). Empty by default: no one's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Nobody: the socket's peer is always the client.
    pub fn none() -> Self {
        TrustedProxies::default()
    }

    /// A comma-separated list of addresses and networks in CIDR form:
    /// `"127.0.0.1, 10.0.0.0/8, fd00::/8"`.
    pub fn parse(list: &str) -> Result<Self, ProxyHeaderError> {
        let mut trusted = TrustedProxies::none();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (addr, bits) = match item.split_once('/') {
                Some((addr, bits)) => (addr, Some(bits)),
                None => (item, None),
            };
            let addr = IpAddr::from_str(addr)
                .map_err(|_| ProxyHeaderError("a trusted proxy is not an IP address"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(bits) => bits
                    .parse()
                    .ok()
                    .filter(|&b| b <= max)
                    .ok_or(ProxyHeaderError("a trusted network's prefix is too long"))?,
            };
            trusted.networks.push((addr, bits));
        }
        Ok(trusted)
    }

    /// Whether `addr` is one of the trusted proxies.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.networks
            .iter()
            .any(|&(net, bits)| match (canonical(net), addr) {
                (IpAddr::V4(net), IpAddr::V4(a)) => prefix(&net.octets(), &a.octets(), bits),
                (IpAddr::V6(net), IpAddr::V6(a)) => prefix(&net.octets(), &a.octets(), bits),
                _ => false,
            })
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:1.2.3.4`, as a dual-stack
/// socket gives it) as the IPv4 address it is.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether the first `bits` bits of `a` and `b` are the same.
fn prefix(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = (usize::from(bits / 8), bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

/// The client's address: from `direct` (the socket's peer, or the PROXY
/// header's source), back through the `forwarded` hops (nearest last),
/// for as long as the address so far is a trusted proxy.
pub(crate) fn walk_back(
    direct: IpAddr,
    forwarded: &[Option<IpAddr>],
    trusted: &TrustedProxies,
) -> IpAddr {
    let mut client = direct;
    for hop in forwarded.iter().rev() {
        if !trusted.contains(client) {
            break;
        }
        match hop {
            Some(addr) => client = *addr,
            // `unknown` or an obfuscated name: no address beyond this.
            None => break,
        }
    }
    client
}

/// The hops of `Forwarded` fields (RFC 7239 §4): each element's `for=`,
/// in order. `None` for a node that is not an address (`unknown`,
/// `_hidden`, or no `for`).
pub(crate) fn forwarded_hops(values: &[&str]) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for element in values.iter().flat_map(|v| v.split(',')) {
        let node = element.split(';').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("for")
                .then(|| value.trim())
        });
        hops.push(node.and_then(|node| node_addr(node.trim_matches('"'))));
    }
    hops
}

/// The hops of `X-Forwarded-For` fields: comma-separated addresses.
pub(crate) fn x_forwarded_for_hops(values: &[&str]) -> Vec<Option<IpAddr>> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|item| node_addr(item.trim()))
        .collect()
}

/// An address, maybe with a port: `1.2.3.4`, `1.2.3.4:80`, `::1`,
/// `[::1]`, `[::1]:80`.
fn node_addr(node: &str) -> Option<IpAddr> {
    if let Ok(addr) = IpAddr::from_str(node) {
        return Some(addr);
    }
    if let Ok(addr) = SocketAddr::from_str(node) {
        return Some(addr.ip());
    }
    let inner = node.strip_prefix('[')?.strip_suffix(']')?;
    Ipv6Addr::from_str(inner).ok().map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    fn v2_header(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// Every prefix of a whole header asks for more; the whole gives it.
    fn whole(bytes: &[u8]) -> (ProxyHeader, usize) {
        for cut in 0..bytes.len() {
            assert_eq!(parse_proxy_header(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        parse_proxy_header(bytes).unwrap().unwrap()
    }

    fn proxied(source: &str, destination: &str) -> ProxyHeader {
        ProxyHeader::Proxied {
            source: source.parse().unwrap(),
            destination: destination.parse().unwrap(),
        }
    }

    #[test]
    fn v1_headers() {
        let table: &[(&[u8], Result<ProxyHeader, &str>)] = &[
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65535\r\n",
                Ok(proxied("1.2.3.4:1", "5.6.7.8:65535")),
            ),
            (
                b"PROXY TCP6 ::1 2001:db8::2 0 443\r\n",
                Ok(proxied("[::1]:0", "[2001:db8::2]:443")),
            ),
            (b"PROXY UNKNOWN\r\n", Ok(ProxyHeader::Unknown)),
            (
                b"PROXY UNKNOWN ffff:: 1.2.3.4 1 2\r\n",
                Ok(ProxyHeader::Unknown),
            ),
            (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", Err("family")),
            (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", Err("family")),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", Err("decimal")),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", Err("decimal")),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", Err("65535")),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", Err("short")),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", Err("long")),
            (b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", Err("family")),
            (b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", Err("TCP4")),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", Err("CRLF")),
            (b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", Err("begin")),
            (b"GET / HTTP/1.1\r\n", Err("begin")),
        ];
        for (bytes, expected) in table {
            let got = match expected {
                Ok(_) => whole(bytes).0,
                Err(why) => {
                    let err = parse_proxy_header(bytes).unwrap_err();
                    assert!(
                        err.0.contains(why),
                        "{:?}: {err}",
                        String::from_utf8_lossy(bytes)
                    );
                    continue;
                }
            };
            assert_eq!(Ok(got), *expected, "{:?}", String::from_utf8_lossy(bytes));
        }
        // The longest line is 107 bytes; one more is refused unended.
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(V1_MAX - 2, b'x');
        long.extend_from_slice(b"\r\n");
        assert_eq!(whole(&long), (ProxyHeader::Unknown, V1_MAX));
        long.insert(20, b'x');
        assert!(parse_proxy_header(&long).is_err());
    }

    #[test]
    fn v2_headers() {
        let v4 = [1, 2, 3, 4, 5, 6, 7, 8, 0x04, 0xd2, 0x01, 0xbb];
        let (header, used) = whole(&v2_header(1, 0x11, &v4));
        assert_eq!((header, used), (proxied("1.2.3.4:1234", "5.6.7.8:443"), 28));
        // TLVs after the addresses are passed over.
        let mut with_tlvs = v4.to_vec();
        with_tlvs.extend_from_slice(&[0x04, 0, 3, b'a', b'b', b'c']);
        assert_eq!(whole(&v2_header(1, 0x11, &with_tlvs)).1, 16 + 18);
        let mut v6 = vec![0; 36];
        v6[15] = 1;
        v6[31] = 2;
        v6[32..].copy_from_slice(&[0, 80, 0, 81]);
        assert_eq!(
            whole(&v2_header(1, 0x21, &v6)).0,
            proxied("[::1]:80", "[::2]:81")
        );
        // LOCAL, UNSPEC and Unix sockets: no address.
        assert_eq!(whole(&v2_header(0, 0x11, &v4)).0, ProxyHeader::Unknown);
        assert_eq!(whole(&v2_header(1, 0x00, &[])).0, ProxyHeader::Unknown);
        assert_eq!(
            whole(&v2_header(1, 0x31, &[0; 216])).0,
            ProxyHeader::Unknown
        );
        let refused: &[(Vec<u8>, &str)] = &[
            (v2_header(1, 0x11, &v4[..11]), "cut short"),
            (v2_header(1, 0x21, &v4), "cut short"),
            (v2_header(2, 0x11, &v4), "command"),
            (v2_header(1, 0x12, &v4), "datagrams"),
            (v2_header(1, 0x41, &v4), "unknown"),
            (v2_header(1, 0x11, &[0; V2_MAX_BODY + 1]), "4096"),
        ];
        for (bytes, why) in refused {
            let err = parse_proxy_header(bytes).unwrap_err();
            assert!(err.0.contains(why), "{bytes:?}: {err}");
        }
        let mut v1_version = v2_header(1, 0x11, &v4);
        v1_version[12] = 0x11;
        assert!(parse_proxy_header(&v1_version)
            .unwrap_err()
            .0
            .contains("version"));
    }

    #[test]
    fn trusted_networks() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 192.168.1.7, fd00::/8").unwrap();
        let table = [
            ("10.1.2.3", true),
            ("11.0.0.1", false),
            ("192.168.1.7", true),
            ("192.168.1.8", false),
            ("::ffff:10.9.9.9", true),
            ("fd12::1", true),
            ("fe80::1", false),
        ];
        for (addr, expected) in table {
            assert_eq!(trusted.contains(addr.parse().unwrap()), expected, "{addr}");
        }
        assert!(!TrustedProxies::none().contains("127.0.0.1".parse().unwrap()));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("example.com").is_err());
        let odd = TrustedProxies::parse("10.0.0.128/25").unwrap();
        assert!(odd.contains("10.0.0.200".parse().unwrap()));
        assert!(!odd.contains("10.0.0.127".parse().unwrap()));
    }

    #[test]
    fn the_walk_stops_at_the_first_untrusted_hop() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let hops = x_forwarded_for_hops(&["6.6.6.6, 1.1.1.1", "10.0.0.5"]);
        // peer 10.0.0.1 (trusted) says 10.0.0.5 (trusted) says 1.1.1.1,
        // who is not trusted: the client; its word (6.6.6.6) is not taken.
        assert_eq!(walk_back(ip("10.0.0.1"), &hops, &trusted), ip("1.1.1.1"));
        // An untrusted peer's fields are never read.
        assert_eq!(walk_back(ip("2.2.2.2"), &hops, &trusted), ip("2.2.2.2"));
        assert_eq!(
            walk_back(ip("10.0.0.1"), &hops, &TrustedProxies::none()),
            ip("10.0.0.1")
        );
        let hops =
            forwarded_hops(&[r#"for="[2001:db8::1]:4711";proto=https, For=unknown, for=10.0.0.9"#]);
        assert_eq!(
            hops,
            vec![Some(ip("2001:db8::1")), None, Some(ip("10.0.0.9"))]
        );
        // `unknown` ends the walk at the proxy that wrote it.
        assert_eq!(walk_back(ip("10.0.0.1"), &hops, &trusted), ip("10.0.0.9"));
    }
}
