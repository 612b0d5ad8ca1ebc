//! The client side: one HTTP/2 connection, any number of WebSockets.

use alloc::string::ToString;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Error;
use super::TokioClock;
use super::{
    h2_error, header_list_size, race, Io, Time, WebSocket, CONNECTION_WINDOW, MAX_FRAME,
    MAX_STREAMS, STREAM_WINDOW,
};
use crate::driver::Clock;
use crate::handshake::{ExtendedConnectClient, HandshakeError};
use crate::Config;

/// The client side of one HTTP/2 connection, on which any number of
/// WebSockets can be opened.
#[derive(Clone, Debug)]
pub struct Client {
    send_request: h2::client::SendRequest<Bytes>,
}

impl Client {
    /// Starts HTTP/2 on `io` (the connection runs on a task of its own)
    /// and waits for the server's SETTINGS, which say whether it takes
    /// WebSockets. A response's header block may take up to the default
    /// `Config::max_header_bytes` (16 KiB), as SETTINGS_MAX_HEADER_LIST_SIZE
    /// counts it; each WebSocket's `Config` can lower that.
    pub async fn handshake<IO>(io: IO) -> Result<Client, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send_request, mut connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(MAX_FRAME)
            .max_concurrent_streams(MAX_STREAMS)
            .max_header_list_size(header_list_size(&Config::default()))
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
    pub async fn websocket(&self, mut connect: ExtendedConnectClient) -> Result<WebSocket, Error> {
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
