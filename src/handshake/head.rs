//! The HTTP/1.1 head toolkit both handshakes share: collecting a head in
//! pieces until its blank line, turning httparse's fields and errors into
//! ours, reading fields (values, `#rule` token lists), judging the names
//! and values of the embedder's own fields, and writing fields and numbers.

use alloc::string::String;
use alloc::string::ToString;
use alloc::vec::Vec;

use super::HandshakeError;

/// Whether a header field of the embedder's can be sent as given, by every
/// driver alike: the name a token (RFC 9110 §5.1, `field-name = token`),
/// the value free of control characters but the tab (§5.5: CR or LF would
/// split the head; NUL and the rest are refused by the `http` crate, so
/// the same field would fail over hyper or HTTP/2). Bytes from 0x80 are
/// allowed in the value (UTF-8 goes out as `obs-text`, as `http` allows).
pub(crate) fn is_safe_field(name: &str, value: &str) -> bool {
    let is_control = |b: u8| (b < b' ' && b != b'\t') || b == 0x7f;
    is_token(name) && !value.bytes().any(is_control)
}

/// Whether `name` is a field the handshake writes itself, which an
/// embedder's own field must not repeat: `Upgrade`, `Connection`, `Host`,
/// every `Sec-WebSocket-*` (a second `Sec-WebSocket-Protocol` would make
/// the peer refuse the handshake; offer and choose subprotocols with
/// `protocol`), and the fields that frame a body (`Content-Length`,
/// `Transfer-Encoding`: there is none, and a server refuses a request
/// that announces one).
pub(crate) fn is_handshake_field(name: &str) -> bool {
    const OWN: [&str; 5] = [
        "Upgrade",
        "Connection",
        "Host",
        "Content-Length",
        "Transfer-Encoding",
    ];
    let prefix = "Sec-WebSocket-";
    OWN.iter().any(|own| own.eq_ignore_ascii_case(name))
        || name
            .get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// Whether `s` is a token (RFC 9110 §5.6.2): what a subprotocol's name
/// must be (RFC 6455 §4.1: characters from U+0021 to U+007E but the
/// separators) and what a field's name is.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// A `tchar` of RFC 9110 §5.6.2, the characters of a token.
pub(crate) fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Appends `name: value` and CRLF.
pub(crate) fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal.
pub(crate) fn push_decimal(out: &mut Vec<u8>, n: usize) {
    if n >= 10 {
        push_decimal(out, n / 10);
    }
    out.push(b'0' + (n % 10) as u8);
}

/// Collects a head in pieces and finds the blank line that ends it, in
/// time linear in the bytes received.
#[derive(Debug)]
pub(crate) struct HeadBuffer {
    buf: Vec<u8>,
    /// Every line end that could start the terminator lies at or after this.
    scanned: usize,
    max: usize,
}

impl HeadBuffer {
    /// An empty buffer for a head of at most `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        HeadBuffer {
            buf: Vec::new(),
            scanned: 0,
            max,
        }
    }

    /// Adds bytes; returns the length of the head (through its blank line)
    /// once it is complete. Everything after it in the buffer is leftover.
    pub(crate) fn push(&mut self, data: &[u8]) -> Result<Option<usize>, HandshakeError> {
        // The buffer holds at most the limit plus one read: a head that has
        // not ended within the limit is refused below.
        self.buf.extend_from_slice(data);
        let end = find_head_end(&self.buf, self.scanned);
        // The terminator is at most 4 bytes; rescan only that much next time.
        self.scanned = self.buf.len().saturating_sub(3);
        match end {
            Some(end) if end <= self.max => Ok(Some(end)),
            Some(_) => Err(HandshakeError::HeadTooLarge { max: self.max }),
            None if self.buf.len() > self.max => {
                Err(HandshakeError::HeadTooLarge { max: self.max })
            }
            None => Ok(None),
        }
    }

    /// Everything pushed so far: the head, then any leftover.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// The index just past the blank line ending a head (`\r\n\r\n`, or `\n\n`
/// from a lenient peer), searching from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(pos) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + pos;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// httparse's fields, which borrow the head, as owned name and value
/// pairs (the head's limits were enforced by the parse that found them).
pub(crate) fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect()
}

/// How a head is measured against `Config::max_header_bytes`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Measure {
    /// HTTP/1.1: the fewest bytes the field takes in a head (`name:value`
    /// and a bare LF, which parsers accept), so a head another library
    /// parsed is never refused where our own parser took the same head.
    Http1,
    /// HTTP/2 and HTTP/3: each field's name and value and 32 octets, as
    /// `SETTINGS_MAX_HEADER_LIST_SIZE` (RFC 9113 §6.5.2) and
    /// `SETTINGS_MAX_FIELD_SECTION_SIZE` (RFC 9114 §4.2.2) count them.
    FieldSection,
}

impl Measure {
    /// The size of one field line.
    pub(crate) fn of(self, name: &str, value: &[u8]) -> usize {
        match self {
            Measure::Http1 => name.len() + value.len() + 2,
            Measure::FieldSection => name.len() + value.len() + 32,
        }
    }
}

/// The fields of a head another HTTP library parsed (hyper, h2, h3),
/// copied while they keep to `max_bytes` (with the `start` bytes the
/// request or status line took) and `max_headers`: the same 431 our own
/// parser gives, on every transport. Nothing past the limit is copied.
pub(crate) fn bounded_fields<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    measure: Measure,
    start: usize,
    max_bytes: usize,
    max_headers: usize,
) -> Result<Vec<(String, Vec<u8>)>, HandshakeError> {
    let mut size = start;
    let mut copied = Vec::new();
    for (name, value) in fields {
        size = size.saturating_add(measure.of(name, value));
        if size > max_bytes {
            return Err(HandshakeError::HeadTooLarge { max: max_bytes });
        }
        if copied.len() == max_headers {
            return Err(HandshakeError::TooManyHeaders { max: max_headers });
        }
        copied.push((name.to_string(), value.to_vec()));
    }
    Ok(copied)
}

/// [`bounded_fields`] for a request kept to be answered later: the fields,
/// or none and the refusal its `validate` reports.
pub(crate) fn kept_fields<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    measure: Measure,
    start: usize,
    config: &crate::Config,
) -> (Vec<(String, Vec<u8>)>, Option<HandshakeError>) {
    match bounded_fields(
        fields,
        measure,
        start,
        config.max_header_bytes,
        config.max_headers,
    ) {
        Ok(fields) => (fields, None),
        Err(refused) => (Vec::new(), Some(refused)),
    }
}

/// The error for a head httparse refused: too many fields for the
/// configured `max_headers`, or a malformed head and what was wrong.
pub(crate) fn httparse_error(err: httparse::Error, max_headers: usize) -> HandshakeError {
    match err {
        httparse::Error::TooManyHeaders => HandshakeError::TooManyHeaders { max: max_headers },
        httparse::Error::HeaderName => HandshakeError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HandshakeError::Malformed("invalid header value"),
        httparse::Error::NewLine => HandshakeError::Malformed("invalid line ending"),
        httparse::Error::Status => HandshakeError::Malformed("invalid status"),
        httparse::Error::Token => HandshakeError::Malformed("invalid token"),
        httparse::Error::Version => HandshakeError::Malformed("invalid HTTP version"),
    }
}

/// The values of every field named `name` (case-insensitive).
pub(crate) fn header_values<'a: 'b, 'b>(
    headers: &'a [(String, Vec<u8>)],
    name: &'b str,
) -> impl Iterator<Item = &'a [u8]> + 'b {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// The comma-separated tokens of every field named `name`, trimmed, empty
/// elements skipped (RFC 7230 §7: `#rule` lists).
pub(crate) fn header_tokens<'a: 'b, 'b>(
    headers: &'a [(String, Vec<u8>)],
    name: &'b str,
) -> impl Iterator<Item = &'a str> + 'b {
    header_values(headers, name)
        .filter_map(|v| core::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| !t.is_empty())
}

/// Whether a token list field contains `token` (case-insensitive).
pub(crate) fn has_token(headers: &[(String, Vec<u8>)], name: &str, token: &str) -> bool {
    header_tokens(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_is_found_across_pieces() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        for split in 0..head.len() {
            let mut buf = HeadBuffer::new(1024);
            let first = buf.push(&head[..split]).unwrap();
            let end = first.or_else(|| buf.push(&head[split..]).unwrap());
            assert_eq!(end, Some(head.len() - 4), "split {split}");
        }
    }

    #[test]
    fn head_over_the_limit_is_refused() {
        let mut buf = HeadBuffer::new(16);
        assert_eq!(buf.push(b"GET / HTTP/1.1\r\n"), Ok(None));
        assert_eq!(
            buf.push(b"X"),
            Err(HandshakeError::HeadTooLarge { max: 16 })
        );
    }

    #[test]
    fn decimals_are_written_as_fmt_writes_them() {
        use alloc::string::ToString;
        for n in [0, 7, 9, 10, 99, 101, 408, 16_384, usize::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
