//! A test CA, a server certificate it signs, and echo servers over TLS:
//! what a user with a private CA has, made fresh for each test.

#![allow(dead_code)]

use rfc6455::Driver;
use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio_rustls::rustls;

/// A CA and a server certificate for `names`, signed by it.
pub struct TestPki {
    /// The CA's certificate, for the client's roots.
    pub ca: rustls::pki_types::CertificateDer<'static>,
    server: rustls::pki_types::CertificateDer<'static>,
    server_key: Vec<u8>,
}

impl TestPki {
    pub fn new(names: &[&str]) -> TestPki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Names of their own: a leaf whose issuer is its own subject reads
        // as self-signed to OpenSSL (aioquic's client).
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rfc6455 test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut server_params = CertificateParams::new(names).unwrap();
        server_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rfc6455 test server");
        let server = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();
        TestPki {
            ca: ca.der().clone(),
            server: server.der().clone(),
            server_key: server_key.serialize_der(),
        }
    }

    /// The server's TLS configuration.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::new(self.server_config()))
    }

    /// The CA's certificate, the server's and its key, as PEM files in
    /// `dir` (for peers in other languages): their paths, in that order.
    pub fn write_pem(&self, dir: &std::path::Path) -> [std::path::PathBuf; 3] {
        use base64::Engine;
        let pem = |label: &str, der: &[u8]| {
            let body = base64::engine::general_purpose::STANDARD.encode(der);
            let lines: Vec<&str> = body
                .as_bytes()
                .chunks(64)
                .map(|line| std::str::from_utf8(line).unwrap())
                .collect();
            format!(
                "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
                lines.join("\n")
            )
        };
        let files = [
            ("ca.pem", pem("CERTIFICATE", &self.ca)),
            ("cert.pem", pem("CERTIFICATE", &self.server)),
            ("key.pem", pem("PRIVATE KEY", &self.server_key)),
        ];
        files.map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        })
    }

    /// The server's rustls configuration.
    pub fn server_config(&self) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(self.server_key.clone().into());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.server.clone()], key)
            .unwrap()
    }

    /// A client configuration that trusts this CA only.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

/// Echoes every message on every connection, over TLS if `tls` is given;
/// runs on its own thread until the process ends.
pub fn echo_server(tls: Option<tokio_rustls::TlsAcceptor>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                echo(stream).await;
                            }
                        }
                        None => echo(tcp).await,
                    }
                });
            }
        });
    });
    addr
}

async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(stream: S) {
    let Ok(mut ws) = rfc6455::tokio::accept(stream).await else {
        return;
    };
    while let Ok(Some(message)) = ws.recv().await {
        if ws.send(&message).await.is_err() {
            break;
        }
    }
}

/// QUIC endpoints for the HTTP/3 tests, with this PKI's certificates.
#[cfg(feature = "http3")]
impl TestPki {
    /// A server endpoint on a free port of 127.0.0.1, and its address.
    pub fn h3_server(&self) -> (quinn::Endpoint, SocketAddr) {
        let config = rfc6455::http3::server_config(self.server_config()).unwrap();
        let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = endpoint.local_addr().unwrap();
        (endpoint, addr)
    }

    /// A client endpoint that trusts this CA only.
    pub fn h3_client(&self) -> quinn::Endpoint {
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let tls = (*self.client_config()).clone();
        endpoint.set_default_client_config(rfc6455::http3::client_config(tls).unwrap());
        endpoint
    }
}
