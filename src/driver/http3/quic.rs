//! quinn's configurations for WebSockets over HTTP/3: TLS (ALPN `h3`, no
//! 0-RTT) and QUIC's transport (its keep-alive). The one place a driver
//! names a duration: QUIC's keep-alive is the transport's, not a deadline
//! of the WebSocket (those are the core's).

use alloc::sync::Arc;
use core::time::Duration;
use std::io;
use std::net::SocketAddr;

use super::{Error, ALPN};

/// How often QUIC proves the connection alive when nothing else crosses
/// it: well inside quinn's idle timeout (30 s), so an idle WebSocket lives
/// as long as its peer does, as over TCP. The core's own heartbeat
/// (`Timeouts::ping_interval`) is the WebSocket's, and works as anywhere.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// At most this many WebSockets (request streams) at once on one
/// connection, as over HTTP/2; the peer waits for a stream beyond it.
pub const MAX_STREAMS: u32 = 128;

/// Each stream's flow-control window: the most a peer can send on one
/// WebSocket that is not read (about quinn's default, 1.25 MB, which lets
/// one stream fill a long path: 128 KiB would cap it at 1.3 MB/s over a
/// 100 ms round trip).
pub const STREAM_WINDOW: u32 = 1024 * 1024;

/// The connection's window: the most a peer can make us buffer per
/// connection, over all its streams (quinn's default sets no limit). A
/// peer whose streams are not read can fill it and stall its own other
/// streams, never another connection's.
pub const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// QUIC's transport settings for WebSockets: the flow-control windows
/// that bound what a peer can make us buffer ([`STREAM_WINDOW`],
/// [`CONNECTION_WINDOW`]), [`MAX_STREAMS`] and [`KEEP_ALIVE`].
fn transport() -> Arc<quinn::TransportConfig> {
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(quinn::VarInt::from_u32(MAX_STREAMS));
    transport.stream_receive_window(quinn::VarInt::from_u32(STREAM_WINDOW));
    transport.receive_window(quinn::VarInt::from_u32(CONNECTION_WINDOW));
    transport.keep_alive_interval(Some(KEEP_ALIVE));
    Arc::new(transport)
}

/// quinn's server configuration for WebSockets over HTTP/3, from a rustls
/// one: ALPN `h3`, no 0-RTT (see the [module](crate::http3)), and [`KEEP_ALIVE`].
/// The rustls configuration must allow TLS 1.3.
pub fn server_config(mut tls: rustls::ServerConfig) -> Result<quinn::ServerConfig, Error> {
    tls.alpn_protocols = alloc::vec![ALPN.to_vec()];
    tls.max_early_data_size = 0;
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| Error::Tls(alloc::format!("{e}")))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(transport());
    Ok(config)
}

/// quinn's client configuration for WebSockets over HTTP/3, from a rustls
/// one: ALPN `h3`, no early data (see the [module](crate::http3)), and
/// [`KEEP_ALIVE`].
pub fn client_config(mut tls: rustls::ClientConfig) -> Result<quinn::ClientConfig, Error> {
    tls.alpn_protocols = alloc::vec![ALPN.to_vec()];
    tls.enable_early_data = false;
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| Error::Tls(alloc::format!("{e}")))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(transport());
    Ok(config)
}

/// The kernel buffers asked for a QUIC endpoint's UDP socket (the kernel
/// grants at most `net.core.rmem_max` and `wmem_max`).
pub const UDP_BUFFER: usize = 4 << 20;

/// A quinn endpoint on `addr`, a server if `server` is given, whose UDP
/// socket asks the kernel for [`UDP_BUFFER`] bytes each way. With the
/// default (208 KiB on Linux) a few WebSockets sending large messages at
/// once overflow the receive buffer; every datagram dropped there costs
/// QUIC a retransmission and a smaller congestion window.
pub fn endpoint(
    addr: SocketAddr,
    server: Option<quinn::ServerConfig>,
) -> io::Result<quinn::Endpoint> {
    let socket = std::net::UdpSocket::bind(addr)?;
    let state = quinn::udp::UdpSocketState::new((&socket).into())?;
    // As much as the kernel allows; less is not an error.
    let _ = state.set_recv_buffer_size((&socket).into(), UDP_BUFFER);
    let _ = state.set_send_buffer_size((&socket).into(), UDP_BUFFER);
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
}
