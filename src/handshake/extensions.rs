//! The `Sec-WebSocket-Extensions` field (RFC 6455 §9.1), parsed in one
//! linear pass without regular expressions (CVE-2020-7662 was a regex
//! over this field).
//!
//! ```text
//! Sec-WebSocket-Extensions = extension-list
//! extension-list = 1#extension
//! extension = extension-token *( ";" extension-param )
//! extension-param = token [ "=" (token | quoted-string) ]
//! ```
//!
//! A field may be repeated; its values are concatenated with commas, as
//! for any HTTP list.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::head::is_tchar;

/// One extension offered or accepted, with its parameters in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// The extension's name, such as `permessage-deflate`.
    pub name: String,
    /// Its parameters: a name, and a value if one was given (quotes removed).
    pub params: Vec<(String, Option<String>)>,
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for (name, value) in &self.params {
            match value {
                Some(value) => write!(f, "; {name}={value}")?,
                None => write!(f, "; {name}")?,
            }
        }
        Ok(())
    }
}

/// The field's value does not follow the grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedExtensions;

/// Parses the values of every `Sec-WebSocket-Extensions` field.
pub fn parse_extensions<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Extension>, MalformedExtensions> {
    let mut extensions = Vec::new();
    for value in values {
        let mut parser = Parser {
            input: value,
            pos: 0,
        };
        parser.list(&mut extensions)?;
    }
    Ok(extensions)
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// `1#extension`, allowing empty elements as RFC 7230 §7 does.
    fn list(&mut self, out: &mut Vec<Extension>) -> Result<(), MalformedExtensions> {
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Ok(()),
                Some(b',') => self.pos += 1,
                Some(_) => {
                    out.push(self.extension()?);
                    self.skip_ws();
                    match self.peek() {
                        None => return Ok(()),
                        Some(b',') => self.pos += 1,
                        Some(_) => return Err(MalformedExtensions),
                    }
                }
            }
        }
    }

    fn extension(&mut self) -> Result<Extension, MalformedExtensions> {
        let name = self.token()?;
        let mut params = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() != Some(b';') {
                return Ok(Extension { name, params });
            }
            self.pos += 1;
            self.skip_ws();
            let param = self.token()?;
            self.skip_ws();
            let value = if self.peek() == Some(b'=') {
                self.pos += 1;
                self.skip_ws();
                Some(if self.peek() == Some(b'"') {
                    self.quoted()?
                } else {
                    self.token()?
                })
            } else {
                None
            };
            params.push((param, value));
        }
    }

    /// `token = 1*tchar` (RFC 7230 §3.2.6).
    fn token(&mut self) -> Result<String, MalformedExtensions> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(MalformedExtensions);
        }
        // tchar is ASCII, so this cannot fail.
        Ok(String::from_utf8_lossy(&self.input[start..self.pos]).into_owned())
    }

    /// A quoted-string with backslash escapes. RFC 6455 §9.1 requires the
    /// unquoted value to be a token, so anything else is malformed.
    fn quoted(&mut self) -> Result<String, MalformedExtensions> {
        self.pos += 1; // the opening quote
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => return Err(MalformedExtensions),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    let escaped = *self.input.get(self.pos + 1).ok_or(MalformedExtensions)?;
                    value.push(escaped);
                    self.pos += 2;
                }
                Some(byte) => {
                    value.push(byte);
                    self.pos += 1;
                }
            }
        }
        if value.is_empty() || !value.iter().copied().all(is_tchar) {
            return Err(MalformedExtensions);
        }
        Ok(String::from_utf8_lossy(&value).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn parse(values: &[&str]) -> Result<Vec<Extension>, MalformedExtensions> {
        parse_extensions(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn offers_params_quotes_and_lines() {
        let exts = parse(&[
            "permessage-deflate; client_max_window_bits; server_max_window_bits=\"10\", foo",
            "permessage-deflate",
        ])
        .unwrap();
        assert_eq!(exts.len(), 3);
        assert_eq!(exts[0].name, "permessage-deflate");
        assert_eq!(
            exts[0].params,
            vec![
                ("client_max_window_bits".into(), None),
                ("server_max_window_bits".into(), Some("10".into()))
            ]
        );
        assert_eq!(exts[1].name, "foo");
        assert_eq!(exts[2].params, vec![]);
    }

    #[test]
    fn malformed() {
        for bad in [
            "a;",
            "a; =1",
            "a b",
            "a; b=\"x y\"",
            "a; b=\"unclosed",
            "a; b=",
            "\"a\"",
        ] {
            assert_eq!(parse(&[bad]), Err(MalformedExtensions), "{bad}");
        }
    }

    #[test]
    fn empty_elements_are_skipped() {
        assert_eq!(parse(&[" , a ,, b , "]).unwrap().len(), 2);
        assert_eq!(parse(&[""]).unwrap().len(), 0);
    }
}
