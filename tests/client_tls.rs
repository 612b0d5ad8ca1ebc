//! `connect("wss://...")` in both adapters, against a local TLS server
//! whose CA the test makes: it succeeds with that CA given through the
//! Connector, and fails with a clear TLS error on a wrong host name and on
//! a CA nobody trusts; without TLS configured, `wss://` says what to do.
#![cfg(all(
    feature = "rustls-tls-webpki-roots",
    feature = "tokio",
    feature = "blocking"
))]

#[path = "common/tls.rs"]
mod tls;

use rfc6455::tokio::{Connector, Error};
use rfc6455::Driver;
use rfc6455::{Config, Message};
use tls::{echo_server, TestPki};

#[tokio::test]
async fn wss_with_a_private_ca_given_through_the_connector() {
    let pki = TestPki::new(&["localhost"]);
    let addr = echo_server(Some(pki.acceptor()));
    let connector = Connector::new().no_proxy().rustls(pki.client_config());
    let url = format!("wss://localhost:{}/secure", addr.port());

    let mut ws = rfc6455::tokio::connect_with_connector(&url, Config::default(), &connector)
        .await
        .unwrap();
    assert!(matches!(
        ws.get_ref(),
        rfc6455::tokio::MaybeTlsStream::Rustls(_)
    ));
    ws.send_text("over TLS").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Message::from("over TLS")));
    ws.send(&Message::from(vec![7u8; 200_000])).await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap(),
        Some(Message::from(vec![7u8; 200_000]))
    );

    let blocking = tokio::task::spawn_blocking(move || {
        let mut ws =
            rfc6455::blocking::connect_with_connector(&url, Config::default(), &connector).unwrap();
        ws.send_text("blocking over TLS").unwrap();
        ws.recv().unwrap()
    });
    assert_eq!(
        blocking.await.unwrap(),
        Some(Message::from("blocking over TLS"))
    );
}

/// The certificate names `localhost` only; the client asks for 127.0.0.1.
#[tokio::test]
async fn a_wrong_host_name_is_a_clear_tls_error() {
    let pki = TestPki::new(&["localhost"]);
    let addr = echo_server(Some(pki.acceptor()));
    let connector = Connector::new().no_proxy().rustls(pki.client_config());
    let url = format!("wss://127.0.0.1:{}/", addr.port());
    let err = rfc6455::tokio::connect_with_connector(&url, Config::default(), &connector)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Tls(why) if why.contains("127.0.0.1") && why.contains("not valid for name")),
        "{err}"
    );
    let err = tokio::task::spawn_blocking(move || {
        rfc6455::blocking::connect_with_connector(&url, Config::default(), &connector).unwrap_err()
    })
    .await
    .unwrap();
    assert!(
        matches!(&err, Error::Tls(why) if why.contains("not valid for name")),
        "{err}"
    );
}

/// With the default roots (Mozilla's, from the webpki-roots feature), a
/// private CA is not trusted.
#[tokio::test]
async fn an_unknown_ca_is_a_clear_tls_error() {
    let pki = TestPki::new(&["localhost"]);
    let addr = echo_server(Some(pki.acceptor()));
    let url = format!("wss://localhost:{}/", addr.port());
    let connector = Connector::new().no_proxy();
    let err = rfc6455::tokio::connect_with_connector(&url, Config::default(), &connector)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Tls(why) if why.contains("UnknownIssuer")),
        "{err}"
    );
    assert!(err
        .to_string()
        .starts_with("TLS: localhost: invalid peer certificate"));
}

/// A server that does not speak TLS (it answers plain HTTP): the TLS
/// handshake fails as such, not as a WebSocket error.
#[tokio::test]
async fn tls_to_a_plain_server_fails_in_tls() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let (mut tcp, _) = listener.accept().await.unwrap();
        let _ = tcp
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
    });
    let connector = Connector::new().no_proxy();
    let url = format!("wss://localhost:{port}/");
    let err = rfc6455::tokio::connect_with_connector(&url, Config::default(), &connector)
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Tls(_)), "{err}");
}
