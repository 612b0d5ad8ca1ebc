//! Negotiating permessage-deflate (RFC 7692 §7.1) in the opening
//! handshake: the client's offer, the server's choice, the client's check
//! of the answer. The codec that runs afterwards is
//! `extension::deflate`; what passes between the two is [`DeflateParams`].

use super::{Extension, HandshakeError};
use crate::{DeflateConfig, DeflateParams};
use alloc::format;
use alloc::string::String;
use alloc::string::ToString;
use alloc::vec::Vec;

/// The extension's registered name.
const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The value of the server's `Sec-WebSocket-Extensions` answer, for an
/// offer that did or did not carry each window-bits parameter.
fn response_value(
    params: &DeflateParams,
    offered_server_bits: bool,
    offered_client_bits: bool,
) -> String {
    let mut value = PERMESSAGE_DEFLATE.to_string();
    if params.server_no_context_takeover {
        value.push_str("; server_no_context_takeover");
    }
    if params.client_no_context_takeover {
        value.push_str("; client_no_context_takeover");
    }
    // Accepting a limit the client asked for means repeating it
    // (§7.1.2.1); a tighter one of ours is stated either way.
    if offered_server_bits || params.server_max_window_bits < 15 {
        value.push_str(&format!(
            "; server_max_window_bits={}",
            params.server_max_window_bits
        ));
    }
    // "A server MUST NOT include the client_max_window_bits parameter if
    // the offer did not have it" (§7.1.2.2).
    if offered_client_bits && params.client_max_window_bits < 15 {
        value.push_str(&format!(
            "; client_max_window_bits={}",
            params.client_max_window_bits
        ));
    }
    value
}

/// An offer's parameters, checked (§7.1). `None` if the offer is invalid,
/// in which case a server declines it (and a client fails).
#[derive(Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: the parameter without a value.
    client_max_window_bits: Option<Option<u8>>,
}

fn window_bits(value: &str) -> Option<u8> {
    // "a decimal integer value without leading zeros between 8 to 15,
    // inclusive" (§7.1.2.1)
    if value.starts_with('0') {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

fn parse_params(extension: &Extension) -> Option<Offer> {
    let mut offer = Offer::default();
    for (name, value) in &extension.params {
        let value = value.as_deref();
        match (name.as_str(), value) {
            ("server_no_context_takeover", None) if !offer.server_no_context_takeover => {
                offer.server_no_context_takeover = true
            }
            ("client_no_context_takeover", None) if !offer.client_no_context_takeover => {
                offer.client_no_context_takeover = true
            }
            ("server_max_window_bits", Some(v)) if offer.server_max_window_bits.is_none() => {
                offer.server_max_window_bits = Some(window_bits(v)?)
            }
            ("client_max_window_bits", v) if offer.client_max_window_bits.is_none() => {
                offer.client_max_window_bits = Some(match v {
                    Some(v) => Some(window_bits(v)?),
                    None => None,
                })
            }
            // An unknown parameter, a value where none belongs, or a
            // parameter given twice: the offer is invalid (§7.1).
            _ => return None,
        }
    }
    Some(offer)
}

/// The server's choice among the client's offers: the first valid
/// permessage-deflate offer, shaped by our config. Returns the agreed
/// parameters and the response field's value, or `None` to decline.
pub(crate) fn server_negotiate(
    offers: &[Extension],
    config: &DeflateConfig,
) -> Option<(DeflateParams, String)> {
    offers
        .iter()
        .filter(|e| e.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE))
        .find_map(|extension| {
            let offer = parse_params(extension)?;
            let ours = config.server_max_window_bits.unwrap_or(15);
            let params = DeflateParams {
                server_no_context_takeover: offer.server_no_context_takeover
                    || config.server_no_context_takeover,
                client_no_context_takeover: offer.client_no_context_takeover
                    || config.client_no_context_takeover,
                server_max_window_bits: offer.server_max_window_bits.unwrap_or(15).min(ours),
                // We may only limit the client's window if it said it can be limited.
                client_max_window_bits: match offer.client_max_window_bits {
                    Some(Some(bits)) => bits.min(config.client_max_window_bits.unwrap_or(15)),
                    Some(None) => config.client_max_window_bits.unwrap_or(15),
                    None => 15,
                },
            };
            let value = response_value(
                &params,
                offer.server_max_window_bits.is_some(),
                offer.client_max_window_bits.is_some(),
            );
            Some((params, value))
        })
}

/// The client's offer, as the field value.
pub(crate) fn client_offer(config: &DeflateConfig) -> String {
    let mut value = PERMESSAGE_DEFLATE.to_string();
    if config.server_no_context_takeover {
        value.push_str("; server_no_context_takeover");
    }
    if config.client_no_context_takeover {
        value.push_str("; client_no_context_takeover");
    }
    if let Some(bits) = config.server_max_window_bits {
        value.push_str(&format!("; server_max_window_bits={bits}"));
    }
    // Without a value: we can honour any limit the server sets.
    match config.client_max_window_bits {
        Some(bits) => value.push_str(&format!("; client_max_window_bits={bits}")),
        None => value.push_str("; client_max_window_bits"),
    }
    value
}

/// Checks the server's answer to our offer (§7.1): at most one
/// permessage-deflate, nothing else, and only parameters our offer allows.
pub(crate) fn client_accept(
    answer: &[Extension],
    config: &DeflateConfig,
) -> Result<Option<DeflateParams>, HandshakeError> {
    let [extension] = answer else {
        return match answer.first() {
            None => Ok(None),
            Some(_) => Err(HandshakeError::UnexpectedExtension(
                answer
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        };
    };
    let refuse = || HandshakeError::UnexpectedExtension(extension.to_string());
    if !extension.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
        return Err(refuse());
    }
    let answer = parse_params(extension).ok_or_else(refuse)?;
    // The server may not widen a limit we asked for.
    let server_bits = answer.server_max_window_bits.unwrap_or(15);
    if config
        .server_max_window_bits
        .is_some_and(|asked| server_bits > asked)
        || (config.server_max_window_bits.is_some() && answer.server_max_window_bits.is_none())
    {
        return Err(refuse());
    }
    let client_bits = match answer.client_max_window_bits {
        // "the server ... MUST include a value" (§7.1.2.2) when it answers it.
        Some(None) => return Err(refuse()),
        Some(Some(bits)) => bits,
        None => config.client_max_window_bits.unwrap_or(15),
    };
    Ok(Some(DeflateParams {
        server_no_context_takeover: answer.server_no_context_takeover,
        client_no_context_takeover: answer.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits.min(config.client_max_window_bits.unwrap_or(15)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::parse_extensions;

    fn offers(value: &str) -> Vec<Extension> {
        parse_extensions([value.as_bytes()]).unwrap()
    }

    #[test]
    fn server_takes_the_first_valid_offer() {
        let config = DeflateConfig::default();
        let (params, value) = server_negotiate(
            &offers("permessage-deflate; foo=1, permessage-deflate; client_max_window_bits"),
            &config,
        )
        .unwrap();
        assert_eq!(value, "permessage-deflate");
        assert_eq!(params.client_max_window_bits, 15);
        assert!(server_negotiate(&offers("x-webkit-deflate-frame"), &config).is_none());
        assert!(server_negotiate(
            &offers("permessage-deflate; server_max_window_bits=7"),
            &config
        )
        .is_none());
        assert!(server_negotiate(
            &offers("permessage-deflate; server_max_window_bits=010"),
            &config
        )
        .is_none());
    }

    #[test]
    fn limits_are_honoured_in_the_answer() {
        let config = DeflateConfig {
            client_max_window_bits: Some(10),
            ..Default::default()
        };
        let (params, value) = server_negotiate(
            &offers("permessage-deflate; server_max_window_bits=12; client_max_window_bits"),
            &config,
        )
        .unwrap();
        assert_eq!(
            value,
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10"
        );
        assert_eq!(
            (params.server_max_window_bits, params.client_max_window_bits),
            (12, 10)
        );
        let back = client_accept(&offers(&value), &DeflateConfig::default())
            .unwrap()
            .unwrap();
        assert_eq!(back, params);
    }

    #[test]
    fn client_refuses_what_it_did_not_allow() {
        let config = DeflateConfig::default();
        for answer in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; unknown",
            "permessage-deflate, permessage-deflate",
            "other-extension",
        ] {
            assert!(client_accept(&offers(answer), &config).is_err(), "{answer}");
        }
        let asked = DeflateConfig {
            server_max_window_bits: Some(10),
            ..Default::default()
        };
        assert!(client_accept(
            &offers("permessage-deflate; server_max_window_bits=12"),
            &asked
        )
        .is_err());
        assert!(client_accept(&offers("permessage-deflate"), &asked).is_err());
    }
}
