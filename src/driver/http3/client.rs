//! The client: any number of WebSockets on one HTTP/3 connection.

use std::io;

use bytes::{Bytes, BytesMut};

use super::stream::{headers_frame, read_headers, split_fields, HeadError};
use super::WebSocket;
use super::{connection_error, control, h3_error, write_error, Error, Io, Time, TokioClock};
use crate::driver::Clock;
use crate::h3::{qpack, Settings};
use crate::handshake::{ExtendedConnectClient, HandshakeError};
use crate::socket;
use crate::time::HandshakeTimer;
use crate::Config;

/// A request stream with its response's HEADERS read: the stream, what
/// came after the HEADERS frame, the status and the fields.
type Opened = (
    quinn::SendStream,
    quinn::RecvStream,
    BytesMut,
    u16,
    qpack::Fields,
);

/// The client side of one HTTP/3 connection, on which any number of
/// WebSockets can be opened.
#[derive(Debug)]
pub struct Client {
    conn: quinn::Connection,
    settings: Settings,
    /// The most a response's field section may take.
    max_head: usize,
}

impl Client {
    /// Starts HTTP/3 on a QUIC connection (our control stream and SETTINGS)
    /// and waits for the server's SETTINGS, which say whether it takes
    /// WebSockets, with the default `Config`'s limits.
    pub async fn handshake(conn: quinn::Connection) -> Result<Client, Error> {
        Client::handshake_with(conn, &Config::default()).await
    }

    /// [`handshake`](Client::handshake), within `config`'s handshake
    /// timeout, taking responses' field sections up to its
    /// `max_header_bytes`.
    pub async fn handshake_with(conn: quinn::Connection, config: &Config) -> Result<Client, Error> {
        let ours = Settings {
            enable_connect_protocol: false,
            max_field_section_size: Some(config.max_header_bytes as u64),
        };
        let mut peer = control::start(&conn, &ours, false).await?;
        let settings = async {
            loop {
                if let Some(settings) = peer.borrow_and_update().clone() {
                    return Ok(settings);
                }
                tokio::select! {
                    changed = peer.changed() => if changed.is_err() {
                        return Err(h3_error(io::ErrorKind::ConnectionAborted, "the connection ended before the server's SETTINGS"));
                    },
                    e = conn.closed() => return Err(connection_error(e)),
                }
            }
        };
        // The server's SETTINGS within the core's handshake deadline.
        let mut timer = HandshakeTimer::new(&config.timeouts);
        timer.handle_timeout(Time::timestamp());
        let settings = socket::race(settings, &TokioClock, timer.poll_timeout())
            .await
            .ok_or(Error::Timeout("no SETTINGS from the server"))??;
        Ok(Client {
            conn,
            settings,
            max_head: config.max_header_bytes,
        })
    }

    /// Whether the server advertised `SETTINGS_ENABLE_CONNECT_PROTOCOL`.
    pub fn supports_websocket(&self) -> bool {
        self.settings.enable_connect_protocol
    }

    /// The QUIC connection underneath.
    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Opens a WebSocket on a new request stream: sends the extended
    /// CONNECT that `connect` describes and checks the response. A server
    /// that did not advertise the extended CONNECT gets no request: the
    /// call fails with [`HandshakeError::NoExtendedConnect`].
    pub async fn websocket(&self, mut connect: ExtendedConnectClient) -> Result<WebSocket, Error> {
        if !self.supports_websocket() {
            return Err(HandshakeError::NoExtendedConnect.into());
        }
        connect.handle_timeout(Time::timestamp())?;
        let deadline = connect.poll_timeout();
        let opened = socket::race(self.open(&connect), &TokioClock, deadline).await;
        let (send, recv, inbound, status, fields) = match opened {
            Some(opened) => opened?,
            None => return Err(HandshakeError::Timeout.into()),
        };
        let fields = fields.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
        let connected = connect.handle_response(status, fields)?;
        Ok(WebSocket::with_protocol(
            Io::new(send, recv, inbound, Bytes::new()),
            TokioClock,
            connected.connection,
            connected.response.protocol,
        ))
    }

    /// Sends the request and reads the response's HEADERS.
    async fn open(&self, connect: &ExtendedConnectClient) -> Result<Opened, Error> {
        let (mut send, mut recv) = self.conn.open_bi().await.map_err(connection_error)?;
        let pseudo = connect.pseudo_headers();
        let pseudo_fields = [
            (":method", Some(pseudo.method.as_str())),
            (":protocol", pseudo.protocol.as_deref()),
            (":scheme", pseudo.scheme.as_deref()),
            (":authority", pseudo.authority.as_deref()),
            (":path", pseudo.path.as_deref()),
        ];
        let fields = pseudo_fields
            .iter()
            .filter_map(|&(n, v)| Some((n, v?.as_bytes())))
            .chain(
                connect
                    .headers()
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_bytes())),
            );
        // A server that refuses (a head too large, say) may stop reading
        // before it has the whole request: its response still counts.
        let written = match send.write_all(&headers_frame(fields)).await {
            Err(quinn::WriteError::Stopped(code)) => Err(quinn::WriteError::Stopped(code)),
            Err(other) => return Err(write_error(other)),
            Ok(()) => Ok(()),
        };
        let max = self.max_head;
        let mut inbound = BytesMut::new();
        let block = match (read_headers(&mut recv, &mut inbound, max).await, written) {
            (Ok(block), _) => block,
            (Err(_), Err(stopped)) => return Err(write_error(stopped)),
            (Err(HeadError::TooLarge), Ok(())) => {
                return Err(HandshakeError::HeadTooLarge { max }.into())
            }
            (Err(HeadError::Frame(_, what)), Ok(())) => {
                return Err(h3_error(io::ErrorKind::InvalidData, what))
            }
            (Err(HeadError::Ended(e)), Ok(())) => return Err(e),
        };
        let fields = qpack::decode(&block, max).map_err(|e| match e {
            qpack::FieldsError::TooLarge => Error::from(HandshakeError::HeadTooLarge { max }),
            qpack::FieldsError::Malformed(what) => h3_error(io::ErrorKind::InvalidData, what),
        })?;
        let malformed = || Error::from(HandshakeError::Malformed("a malformed response head"));
        let (pseudo, fields) = split_fields(fields).ok_or_else(malformed)?;
        let status = match pseudo.as_slice() {
            [(name, value)] if name == ":status" => core::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(malformed)?,
            _ => return Err(malformed()),
        };
        Ok((send, recv, inbound, status, fields))
    }
}
