//! `--tls` for the examples: a certificate made at start, signed by its
//! own key, for `localhost` and `127.0.0.1`, served with rustls, and the
//! ALPN protocols the server speaks (`h2` first when it serves HTTP/2).
//!
//! Browsers warn about such a certificate (nobody vouches for it); accept
//! the warning once, or start Chromium with `--ignore-certificate-errors`
//! for tests. The library itself stays TLS-agnostic: it takes the TLS
//! stream like any other.

#![allow(dead_code)]

use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// Where to write the certificate (PEM) when it is made.
pub static CERT_OUT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// ALPN's name for HTTP/2 over TLS (RFC 9113 §3.2).
pub const H2: &[u8] = b"h2";
/// ALPN's name for HTTP/1.1.
pub const HTTP_1_1: &[u8] = b"http/1.1";

/// A TLS acceptor with a self-signed certificate, offering `alpn` in the
/// server's order of preference.
pub fn self_signed(alpn: &[&[u8]]) -> Result<TlsAcceptor, Box<dyn std::error::Error>> {
    Ok(TlsAcceptor::from(Arc::new(self_signed_config(alpn)?)))
}

/// The rustls configuration of [`self_signed`], for QUIC as well as TCP.
pub fn self_signed_config(
    alpn: &[&[u8]],
) -> Result<rustls::ServerConfig, Box<dyn std::error::Error>> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names)?;
    // `--cert-out FILE`: the certificate, for clients to trust.
    if let Some(path) = CERT_OUT.get() {
        use base64::Engine;
        let body = base64::engine::general_purpose::STANDARD.encode(certified.cert.der());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap_or_default())
            .collect();
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        );
        std::fs::write(path, pem)?;
    }
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    // Name the provider rather than rely on the process default, which
    // panics if another crate in the build enables a second one.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Whether the client chose HTTP/2 in the TLS handshake.
pub fn chose_h2<S>(stream: &tokio_rustls::server::TlsStream<S>) -> bool {
    stream.get_ref().1.alpn_protocol() == Some(H2)
}
