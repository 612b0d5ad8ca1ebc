//! The server side: one HTTP/2 connection served, its extended CONNECTs
//! handed out as [`Incoming`] requests; telling HTTP/2 from HTTP/1.1.

use core::future::Future;
use core::task::Poll;
use std::io;

use bytes::Bytes;
use h2::RecvStream;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Error;
use super::{
    h2_error, header_list_size, Io, Time, CONNECTION_WINDOW, MAX_FRAME, MAX_STREAMS, STREAM_WINDOW,
};
use crate::driver::extended::Respond;
use crate::driver::Clock;
use crate::handshake::{ExtendedConnectRequest, ExtendedConnectResponse, PseudoHeaders};
use crate::Config;

/// The first bytes of an HTTP/2 connection with prior knowledge (RFC 9113
/// §3.4). A server that serves HTTP/1.1 and HTTP/2 on one port reads the
/// first bytes of a connection ([`sniff`]): these mean HTTP/2
/// ([`serve_connection`]), anything else HTTP/1.1 (the tokio driver).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads the first bytes of a connection to tell HTTP/2 with prior
/// knowledge from HTTP/1.1: `true` if they are the [`PREFACE`]. Reads no
/// more than the preface's 24 bytes, and stops at the first byte that
/// differs; the bytes read are given back in front of the stream
/// ([`Rewind`]), so either protocol's server reads them again. A client
/// that sends part of the preface and stops keeps this waiting, as a slow
/// HTTP/1.1 head would: bound it with your handshake timeout.
pub async fn sniff<S: AsyncRead + Unpin>(mut stream: S) -> io::Result<(bool, Rewind<S>)> {
    use tokio::io::AsyncReadExt;
    let mut seen = [0; PREFACE.len()];
    let mut n = 0;
    while n < PREFACE.len() && seen[..n] == PREFACE[..n] {
        match stream.read(&mut seen[n..]).await? {
            0 => break,
            read => n += read,
        }
    }
    let is_http2 = seen[..n] == *PREFACE;
    let rewind = Rewind {
        prefix: Bytes::copy_from_slice(&seen[..n]),
        stream,
    };
    Ok((is_http2, rewind))
}

/// A stream with the bytes [`sniff`] read put back in front of it.
#[derive(Debug)]
pub struct Rewind<S> {
    prefix: Bytes,
    stream: S,
}

impl<S> Rewind<S> {
    /// The stream underneath (its first bytes may still be in front).
    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let front = self.prefix.split_to(n);
            buf.put_slice(&front);
            return Poll::Ready(Ok(()));
        }
        core::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        core::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        core::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        mut self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        core::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> Poll<io::Result<()>> {
        core::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves one HTTP/2 connection (after its preface: cleartext with prior
/// knowledge, or TLS with ALPN `h2`), advertising
/// `SETTINGS_ENABLE_CONNECT_PROTOCOL`. Every request goes to
/// `on_request` as an [`Incoming`], on a task of its own, while the
/// connection goes on; returns when the client closes the connection.
///
/// A connection that serves no WebSocket route (only pages) should not
/// advertise the setting, or a browser may try to open its WebSockets on
/// it: serve those with [`serve_connection_with`] and
/// [`Routes::PagesOnly`].
pub async fn serve_connection<IO, F, Fut>(
    io: IO,
    config: Config,
    on_request: F,
) -> Result<(), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(Incoming) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    serve_connection_with(io, config, Routes::WebSocket, on_request).await
}

/// What an HTTP/2 connection serves, which decides whether the server
/// advertises `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 8441 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routes {
    /// WebSockets (and perhaps pages): advertise the extended CONNECT.
    WebSocket,
    /// Pages only: no setting, so clients never send an extended CONNECT
    /// here (h2 refuses one as a protocol error).
    PagesOnly,
}

/// [`serve_connection`], advertising the extended CONNECT only if `routes`
/// include WebSockets.
pub async fn serve_connection_with<IO, F, Fut>(
    io: IO,
    config: Config,
    routes: Routes,
    mut on_request: F,
) -> Result<(), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(Incoming) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut builder = h2::server::Builder::new();
    if routes == Routes::WebSocket {
        builder.enable_connect_protocol();
    }
    // The head limit of an HTTP/1.1 request, advertised as
    // SETTINGS_MAX_HEADER_LIST_SIZE: h2 answers a larger header block with
    // 431 and a reset stream (or, when one field alone is larger and spans
    // CONTINUATION frames, ends the connection), before it is buffered.
    // The core measures the fields the same way, and counts them.
    builder
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME)
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(header_list_size(&config));
    let mut connection = builder.handshake::<_, Bytes>(io).await.map_err(h2_error)?;
    while let Some(next) = connection.accept().await {
        let (request, respond) = next.map_err(h2_error)?;
        tokio::spawn(on_request(incoming(request, respond, config.clone())));
    }
    Ok(())
}

/// A request on an HTTP/2 stream: a WebSocket's extended CONNECT, or
/// anything else (which [`accept`](crate::socket::Incoming::accept) refuses with its
/// status). The same type as over HTTP/3, on an HTTP/2 [`RequestStream`].
pub type Incoming = crate::socket::Incoming<RequestStream>;

/// The HTTP/2 stream a request came on, as an [`Incoming`] holds it.
#[derive(Debug)]
pub struct RequestStream {
    respond: h2::server::SendResponse<Bytes>,
    body: RecvStream,
}

impl Respond for RequestStream {
    type Io = Io;

    fn open(mut self, accepted: &ExtendedConnectResponse) -> Result<Io, Error> {
        let send = self
            .respond
            .send_response(response(accepted), false)
            .map_err(h2_error)?;
        Ok(Io::new(send, self.body))
    }

    fn answer(mut self, response: &ExtendedConnectResponse) {
        answer(&mut self.respond, response);
    }
}

/// The request h2 received, for the core to decide.
fn incoming(
    request: http::Request<RecvStream>,
    respond: h2::server::SendResponse<Bytes>,
    config: Config,
) -> Incoming {
    let (parts, body) = request.into_parts();
    let pseudo = PseudoHeaders {
        method: parts.method.as_str().into(),
        protocol: parts
            .extensions
            .get::<h2::ext::Protocol>()
            .map(|p| p.as_str().into()),
        scheme: parts.uri.scheme_str().map(Into::into),
        authority: parts.uri.authority().map(|a| a.as_str().into()),
        path: parts.uri.path_and_query().map(|p| p.as_str().into()),
    };
    let fields = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()));
    let mut request = ExtendedConnectRequest::new(config, &pseudo, fields);
    // The handshake's countdown starts now; it is over once accepted.
    let _ = request.handle_timeout(Time::timestamp());
    Incoming::new(request, RequestStream { respond, body })
}

/// The `http` response for a [`ExtendedConnectResponse`]'s status and fields.
fn response(from: &ExtendedConnectResponse) -> http::Response<()> {
    let mut response = http::Response::builder().status(from.status);
    for (name, value) in &from.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    response.body(()).unwrap_or_else(|_| {
        let mut fallback = http::Response::new(());
        *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// Sends a response and its body (a refusal, or a page), ending the stream.
fn answer(respond: &mut h2::server::SendResponse<Bytes>, from: &ExtendedConnectResponse) {
    if let Ok(mut send) = respond.send_response(response(from), from.body.is_empty()) {
        if !from.body.is_empty() {
            let _ = send.send_data(Bytes::copy_from_slice(&from.body), true);
        }
    }
}
