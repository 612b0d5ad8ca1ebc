//! Dialling a URL: TCP, through a proxy, with TLS for `wss://`.

#[cfg(feature = "rustls")]
use alloc::boxed::Box;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;

use super::{client_timed, wake_at, Connector, Error, WebSocket};
use crate::proxy::ProxyHandshake;
use crate::Config;

/// Connects to a `ws://` or `wss://` URL and performs the handshake:
/// through the proxy the environment names, if any, and for `wss://`
/// with TLS from a `rustls-tls-*` feature (see [`Connector`]).
pub fn connect(url: &str) -> Result<WebSocket<MaybeTlsStream>, Error> {
    connect_with(url, Config::default())
}

/// [`connect`] with a configuration of your choice.
pub fn connect_with(url: &str, config: Config) -> Result<WebSocket<MaybeTlsStream>, Error> {
    connect_with_connector(url, config, &Connector::new())
}

/// [`connect`] with a configuration, and a [`Connector`] that says which
/// proxy and which TLS configuration to use.
pub fn connect_with_connector(
    url: &str,
    config: Config,
    connector: &Connector,
) -> Result<WebSocket<MaybeTlsStream>, Error> {
    let (url, addr, tunnel_through) = connector.route(url)?;
    let mut tcp = TcpStream::connect(addr)?;
    if let Some(handshake) = tunnel_through {
        tunnel(&mut tcp, handshake)?;
    }
    tcp.set_nodelay(true)?;
    let stream = if url.secure {
        secure(tcp, &url.host, connector)?
    } else {
        MaybeTlsStream::Plain(tcp)
    };
    client_timed(stream, &url.request(), config, Some(wake_at))
}

/// Opens the tunnel through the proxy: the exchange `handshake` runs.
fn tunnel(tcp: &mut TcpStream, mut handshake: ProxyHandshake) -> Result<(), Error> {
    let mut buf = [0u8; 512];
    while !handshake.is_done() {
        tcp.write_all(&handshake.take_output())?;
        let n = tcp.read(&mut buf[..handshake.read_limit().min(512)])?;
        handshake.handle_read(&buf[..n])?;
    }
    Ok(())
}

/// TLS over `tcp` for `host`, the handshake done at once so that a bad
/// certificate is reported here.
#[cfg(feature = "rustls")]
fn secure(mut tcp: TcpStream, host: &str, connector: &Connector) -> Result<MaybeTlsStream, Error> {
    use crate::driver::{server_name, tls_error};
    let config = connector.tls_config()?;
    let mut tls = rustls::ClientConnection::new(config, server_name(host)?)
        .map_err(|e| Error::Tls(alloc::format!("{host}: {e}")))?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).map_err(|e| tls_error(host, e))?;
    }
    Ok(MaybeTlsStream::Rustls(Box::new(rustls::StreamOwned::new(
        tls, tcp,
    ))))
}

#[cfg(not(feature = "rustls"))]
fn secure(_tcp: TcpStream, _host: &str, _connector: &Connector) -> Result<MaybeTlsStream, Error> {
    Err(crate::driver::no_tls())
}

/// The stream [`connect`] opens: TCP for `ws://`, TLS over TCP for
/// `wss://`.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`, with rustls.
    #[cfg(feature = "rustls")]
    Rustls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP stream underneath (to set its read timeout, say).
    pub fn get_ref(&self) -> &TcpStream {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.get_ref(),
        }
    }
}

impl Read for MaybeTlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.read(buf),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.read(buf),
        }
    }
}

impl Write for MaybeTlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.write(buf),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.write_vectored(bufs),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.flush(),
            #[cfg(feature = "rustls")]
            MaybeTlsStream::Rustls(tls) => tls.flush(),
        }
    }
}
