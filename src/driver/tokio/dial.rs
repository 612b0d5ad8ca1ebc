//! Dialling a URL with tokio: through a proxy, with TLS for `wss://`.

#[cfg(feature = "rustls")]
use alloc::boxed::Box;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::{client_with, WebSocket};
use crate::driver::{Connector, Error};
use crate::proxy::ProxyHandshake;
use crate::Config;

/// Connects to a `ws://` or `wss://` URL and performs the handshake:
/// through the proxy the environment names, if any, and for `wss://`
/// with TLS from a `rustls-tls-*` feature (see [`Connector`]).
pub async fn connect(url: &str) -> Result<WebSocket<MaybeTlsStream>, Error> {
    connect_with(url, Config::default()).await
}

/// [`connect`] with a configuration of your choice.
pub async fn connect_with(url: &str, config: Config) -> Result<WebSocket<MaybeTlsStream>, Error> {
    connect_with_connector(url, config, &Connector::new()).await
}

/// [`connect`] with a configuration, and a [`Connector`] that says which
/// proxy and which TLS configuration to use.
pub async fn connect_with_connector(
    url: &str,
    config: Config,
    connector: &Connector,
) -> Result<WebSocket<MaybeTlsStream>, Error> {
    use tokio::net::TcpStream;
    let (url, addr, tunnel_through) = connector.route(url)?;
    let mut tcp = TcpStream::connect(addr).await?;
    if let Some(handshake) = tunnel_through {
        tunnel(&mut tcp, handshake).await?;
    }
    tcp.set_nodelay(true)?;
    let stream = if url.secure {
        secure(tcp, &url.host, connector).await?
    } else {
        MaybeTlsStream::Plain(tcp)
    };
    client_with(stream, &url.request(), config).await
}

/// Opens the tunnel through the proxy: the exchange `handshake` runs.
async fn tunnel(
    tcp: &mut tokio::net::TcpStream,
    mut handshake: ProxyHandshake,
) -> Result<(), Error> {
    let mut buf = [0u8; 512];
    while !handshake.is_done() {
        tcp.write_all(&handshake.take_output()).await?;
        let n = tcp
            .read(&mut buf[..handshake.read_limit().min(512)])
            .await?;
        handshake.handle_read(&buf[..n])?;
    }
    Ok(())
}

/// TLS over `tcp` for `host`.
#[cfg(feature = "rustls")]
async fn secure(
    tcp: tokio::net::TcpStream,
    host: &str,
    connector: &Connector,
) -> Result<MaybeTlsStream, Error> {
    use crate::driver::{server_name, tls_error};
    let connector_tls = tokio_rustls::TlsConnector::from(connector.tls_config()?);
    let tls = connector_tls
        .connect(server_name(host)?, tcp)
        .await
        .map_err(|e| tls_error(host, e))?;
    Ok(MaybeTlsStream::Rustls(Box::new(tls)))
}

#[cfg(not(feature = "rustls"))]
async fn secure(
    _tcp: tokio::net::TcpStream,
    _host: &str,
    _connector: &Connector,
) -> Result<MaybeTlsStream, Error> {
    Err(crate::driver::no_tls())
}

/// The stream [`connect`] opens: TCP for `ws://`, TLS over TCP for
/// `wss://`.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// `ws://`.
    Plain(tokio::net::TcpStream),
    /// `wss://`, with rustls.
    #[cfg(feature = "rustls")]
    Rustls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP stream underneath.
    pub fn get_ref(&self) -> &tokio::net::TcpStream {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.get_ref().0,
        }
    }
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.is_write_vectored(),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
