//! Dialling HTTP/3 for the example clients (`--http3 --ca FILE`): a QUIC
//! connection that trusts the certificates in FILE (PEM), and HTTP/3 on it.

use std::sync::Arc;

use tokio_rustls::rustls;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// An HTTP/3 connection to `addr` ("host:port"), the server's certificate
/// checked against the ones in `ca` for the name `localhost`.
pub async fn dial(addr: &str, ca: &str) -> Result<rfc6455::http3::Client> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let addr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or("no address")?;
    let local = if addr.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let mut endpoint = rfc6455::http3::endpoint(local.parse()?, None)?;
    endpoint.set_default_client_config(rfc6455::http3::client_config(tls)?);
    let conn = endpoint.connect(addr, "localhost")?.await?;
    Ok(rfc6455::http3::Client::handshake(conn).await?)
}
