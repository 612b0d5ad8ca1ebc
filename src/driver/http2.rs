//! WebSocket over HTTP/2 (RFC 8441), on the `h2` crate (feature `http2`).
//!
//! Each WebSocket is one stream of an HTTP/2 connection: the opening
//! handshake is an extended CONNECT, decided by the core
//! ([`ConnectRequest`], [`ClientConnect`]), and then the stream's DATA
//! carries the same frames a TCP connection would, driven by the same
//! loop as the tokio driver: bytes in, time, events, output, sleep until
//! the core's deadline. HTTP/2's flow control is the backpressure: a
//! stream whose peer stops reading stops taking our output, and the other
//! streams go on. The end of the stream (`END_STREAM`) is the end of the
//! transport, as TCP's FIN is; a reset ends the WebSocket at once.
//!
//! h2 is the HTTP/2 implementation hyper, tonic and reqwest are built on:
//! the one its users already run, and it implements the extended CONNECT
//! (`SETTINGS_ENABLE_CONNECT_PROTOCOL`, the `:protocol` pseudo-header).

use alloc::string::{String, ToString};
use core::future::{poll_fn, Future};
use core::task::Poll;
use std::io;

use bytes::Bytes;
use h2::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite};

pub use super::tokio::TokioClock;
use super::Clock;
pub use super::Error;
use crate::handshake::{
    Accept, ClientConnect, ConnectRequest, ConnectResponse, HandshakeError, PseudoHeaders,
};
use crate::plumbing::Plumbing;
use crate::socket::{self, Transport};
use crate::{Config, Connection, Timestamp};

/// The clock the driver reads for the core.
type Time = tokio::time::Instant;

/// Each stream's flow-control window: how much one WebSocket may have in
/// flight towards a peer that is not reading. 128 KiB holds a 64 KiB
/// message and its frame header, so such a message crosses in one round
/// trip, not two (HTTP/2's default of 64 KiB halved the 64 KiB echo).
const STREAM_WINDOW: u32 = 128 * 1024;
/// The largest DATA frame we take: a whole window at once (HTTP/2's
/// default of 16 KiB cuts a 64 KiB message into five frames, each a wake-up
/// of the stream's task).
const MAX_FRAME: u32 = STREAM_WINDOW;
/// At most this many WebSockets (streams) at once on one connection.
const MAX_STREAMS: u32 = 128;
/// The connection's window holds every stream's window at once, so
/// streams whose readers stop can never use up the connection's window
/// and stall the others; it is also the most a peer can make us buffer
/// per connection (16 MiB).
const CONNECTION_WINDOW: u32 = STREAM_WINDOW * MAX_STREAMS;

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

/// An h2 error as the driver's I/O error, saying who ended what: a reset
/// stream is `ConnectionReset` (as a TCP reset is), with its reason.
fn h2_error(e: h2::Error) -> Error {
    if e.is_io() {
        return Error::Io(e.into_io().unwrap_or_else(|| io::ErrorKind::Other.into()));
    }
    let reason = e
        .reason()
        .map_or_else(String::new, |r| alloc::format!(" ({r:?})"));
    let (kind, what) = if e.is_reset() && e.is_remote() {
        (
            io::ErrorKind::ConnectionReset,
            "the peer reset the HTTP/2 stream",
        )
    } else if e.is_reset() {
        (
            io::ErrorKind::ConnectionReset,
            "the HTTP/2 stream was reset",
        )
    } else if e.is_go_away() {
        (
            io::ErrorKind::ConnectionAborted,
            "the HTTP/2 connection went away",
        )
    } else {
        return Error::Io(io::Error::other(alloc::format!("HTTP/2: {e}")));
    };
    Error::Io(io::Error::new(kind, alloc::format!("{what}{reason}")))
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
    builder
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME)
        .max_concurrent_streams(MAX_STREAMS);
    let mut connection = builder.handshake::<_, Bytes>(io).await.map_err(h2_error)?;
    while let Some(next) = connection.accept().await {
        let (request, respond) = next.map_err(h2_error)?;
        tokio::spawn(on_request(Incoming::new(request, respond, config.clone())));
    }
    Ok(())
}

/// A request on an HTTP/2 stream: a WebSocket's extended CONNECT, or
/// anything else (which [`accept`](Incoming::accept) refuses with its
/// status).
pub struct Incoming {
    request: ConnectRequest,
    respond: h2::server::SendResponse<Bytes>,
    body: RecvStream,
}

impl core::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Incoming")
            .field("request", &self.request)
            .finish()
    }
}

impl Incoming {
    fn new(
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
        let mut request = ConnectRequest::new(config, &pseudo, fields);
        // The handshake's countdown starts now; it is over once accepted.
        let _ = request.handle_timeout(Time::timestamp());
        Incoming {
            request,
            respond,
            body,
        }
    }

    /// The request: path, Origin, subprotocols, fields.
    pub fn request(&self) -> &ConnectRequest {
        &self.request
    }

    /// Accepts the WebSocket (checking the request first: a request that
    /// is not a valid extended CONNECT gets its status and reason, and the
    /// call fails with [`Error::Handshake`]).
    pub fn accept(mut self, options: Accept) -> Result<WebSocket, Error> {
        match self.request.accept(options) {
            Ok(accepted) => {
                let response = response(&accepted.response);
                let send = self
                    .respond
                    .send_response(response, false)
                    .map_err(h2_error)?;
                Ok(WebSocket::with_protocol(
                    Io::new(send, self.body),
                    TokioClock,
                    accepted.connection,
                    accepted.protocol,
                ))
            }
            Err(e) => {
                answer(&mut self.respond, &e.connect_response());
                Err(e.into())
            }
        }
    }

    /// Refuses with `status` and `reason` (403 for a foreign Origin, 404
    /// for a path you do not serve).
    pub fn reject(mut self, status: u16, reason: &str) {
        let response = self.request.reject(status, reason);
        answer(&mut self.respond, &response);
    }

    /// Answers a request that is not a WebSocket (see
    /// [`ConnectRequest::is_websocket`]) with `response` and its body, and
    /// ends the stream: the page that opens the WebSockets, served on the
    /// same connection.
    pub fn respond(mut self, response: &ConnectResponse) {
        answer(&mut self.respond, response);
    }
}

/// The `http` response for a [`ConnectResponse`]'s status and fields.
fn response(from: &ConnectResponse) -> http::Response<()> {
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
fn answer(respond: &mut h2::server::SendResponse<Bytes>, from: &ConnectResponse) {
    if let Ok(mut send) = respond.send_response(response(from), from.body.is_empty()) {
        if !from.body.is_empty() {
            let _ = send.send_data(Bytes::copy_from_slice(&from.body), true);
        }
    }
}

/// The client side of one HTTP/2 connection, on which any number of
/// WebSockets can be opened.
#[derive(Clone, Debug)]
pub struct Client {
    send_request: h2::client::SendRequest<Bytes>,
}

impl Client {
    /// Starts HTTP/2 on `io` (the connection runs on a task of its own)
    /// and waits for the server's SETTINGS, which say whether it takes
    /// WebSockets.
    pub async fn handshake<IO>(io: IO) -> Result<Client, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send_request, mut connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(MAX_FRAME)
            .max_concurrent_streams(MAX_STREAMS)
            .handshake(io)
            .await
            .map_err(h2_error)?;
        let pings = connection.ping_pong();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        // The server's SETTINGS is the first frame it sends, so it has
        // arrived once a PING of ours is answered.
        if let Some(mut pings) = pings {
            pings.ping(h2::Ping::opaque()).await.map_err(h2_error)?;
        }
        Ok(Client { send_request })
    }

    /// Whether the server advertised `SETTINGS_ENABLE_CONNECT_PROTOCOL`.
    pub fn supports_websocket(&self) -> bool {
        self.send_request.is_extended_connect_protocol_enabled()
    }

    /// Opens a WebSocket on a new stream: sends the extended CONNECT that
    /// `connect` describes and checks the response. A server that did not
    /// advertise the extended CONNECT gets no request: the call fails with
    /// [`HandshakeError::NoExtendedConnect`].
    pub async fn websocket(&self, mut connect: ClientConnect) -> Result<WebSocket, Error> {
        let mut send_request = self.send_request.clone().ready().await.map_err(h2_error)?;
        if !send_request.is_extended_connect_protocol_enabled() {
            return Err(HandshakeError::NoExtendedConnect.into());
        }
        connect.handle_timeout(Time::timestamp())?;
        let pseudo = connect.pseudo_headers();
        let uri = http::Uri::builder()
            .scheme(pseudo.scheme.as_deref().unwrap_or("https"))
            .authority(pseudo.authority.as_deref().unwrap_or_default())
            .path_and_query(pseudo.path.as_deref().unwrap_or("/"))
            .build()
            .map_err(|e| Error::Url(e.to_string()))?;
        let mut request = http::Request::builder()
            .method(http::Method::CONNECT)
            .uri(uri)
            .extension(h2::ext::Protocol::from("websocket"));
        for (name, value) in connect.headers() {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request.body(()).map_err(|e| Error::Url(e.to_string()))?;
        let (response, send) = send_request
            .send_request(request, false)
            .map_err(h2_error)?;
        let deadline = connect.poll_timeout();
        let response = match race(response, deadline).await {
            Some(response) => response.map_err(h2_error)?,
            None => return Err(HandshakeError::Timeout.into()),
        };
        let (parts, body) = response.into_parts();
        let fields = parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()));
        let connected = connect.handle_response(parts.status.as_u16(), fields)?;
        Ok(WebSocket::with_protocol(
            Io::new(send, body),
            TokioClock,
            connected.connection,
            connected.response.protocol,
        ))
    }
}

/// `future`, unless the core's `deadline` comes first (`None`).
async fn race<F: Future>(future: F, deadline: Option<Timestamp>) -> Option<F::Output> {
    socket::race(future, &TokioClock, deadline).await
}

/// A WebSocket on an HTTP/2 stream: the [shared driver loop](crate::socket)
/// over [`Io`], on tokio's timers.
pub type WebSocket = socket::WebSocket<Io, TokioClock>;

/// The transport: one HTTP/2 stream, its DATA both ways.
pub struct Io {
    send: SendStream<Bytes>,
    recv: RecvStream,
    /// We ended our side of the stream.
    ended: bool,
}

impl core::fmt::Debug for Io {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Io").field("ended", &self.ended).finish()
    }
}

impl Io {
    fn new(send: SendStream<Bytes>, recv: RecvStream) -> Self {
        Io {
            send,
            recv,
            ended: false,
        }
    }

    /// Resets the stream (`RST_STREAM` with `CANCEL`), unless it ended.
    fn reset(&mut self) {
        if !self.ended {
            self.ended = true;
            self.send.send_reset(h2::Reason::CANCEL);
        }
    }
}

impl Transport for Io {
    type Error = Error;

    /// Waits for DATA (or the stream's end, or a reset).
    async fn read(&mut self, conn: &mut Connection) -> Result<(), Error> {
        match self.recv.data().await {
            Some(Ok(data)) => {
                conn.handle_read(&data);
                // The window opens again as the core takes the bytes.
                let _ = self.recv.flow_control().release_capacity(data.len());
            }
            // END_STREAM: the peer's transport ended, as with TCP's FIN.
            None => conn.handle_eof(),
            // RST_STREAM, or the connection failed: the stream is gone.
            Some(Err(e)) => {
                conn.handle_eof();
                return Err(h2_error(e));
            }
        }
        Ok(())
    }

    /// Writes the output as DATA, as fast as the peer's window allows.
    /// After our end (or a reset) what is left is dropped.
    async fn write(&mut self, conn: &mut Connection) -> Result<(), Error> {
        while conn.pending_output_len() > 0 {
            if self.ended {
                conn.consume_output(conn.pending_output_len());
                break;
            }
            self.send.reserve_capacity(conn.pending_output().len());
            match poll_fn(|cx| self.send.poll_capacity(cx)).await {
                Some(Ok(0)) => {}
                Some(Ok(granted)) => {
                    // Owned bytes for h2 to keep until they go out: a
                    // payload the connection shares, without a copy.
                    let chunk = conn.take_output(granted);
                    self.send.send_data(chunk, false).map_err(h2_error)?;
                }
                Some(Err(e)) => return Err(h2_error(e)),
                None => return Err(Error::Io(io::ErrorKind::BrokenPipe.into())),
            }
        }
        Ok(())
    }

    /// Ends our side of the stream (`END_STREAM`), so nothing the peer
    /// still sends makes us reset the stream before it has read our Close
    /// frame (a proxy turns that reset into a TCP reset, which loses it).
    async fn shutdown(&mut self) -> bool {
        if !self.ended {
            self.ended = true;
            if self.send.send_data(Bytes::new(), true).is_err() {
                self.send.send_reset(h2::Reason::CANCEL);
            }
        }
        true
    }

    /// The core gave up on the unsent output: the stream is reset.
    fn abandon(&mut self) {
        self.reset();
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        // A WebSocket dropped before its end frees its stream at once.
        self.reset();
    }
}

/// What only this driver has.
impl WebSocket {
    /// Resets the stream at once (`RST_STREAM` with `CANCEL`), without a
    /// closing handshake.
    pub fn reset(mut self) {
        self.transport_mut().reset();
    }
}
