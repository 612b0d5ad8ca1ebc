//! WebSocket over HTTP/3 (RFC 9220), on quinn's QUIC (feature `http3`).
//!
//! Each WebSocket is one request stream of an HTTP/3 connection, as over
//! HTTP/2: the opening handshake is an extended CONNECT (`:protocol =
//! websocket`) that the core decides
//! ([`ExtendedConnectRequest`](crate::handshake::ExtendedConnectRequest),
//! [`ExtendedConnectClient`](crate::handshake::ExtendedConnectClient)),
//! once the server's SETTINGS said `SETTINGS_ENABLE_CONNECT_PROTOCOL`;
//! then the stream's DATA frames carry the WebSocket's bytes, driven by the
//! shared loop ([`socket::WebSocket`](crate::socket::WebSocket)). The
//! stream's FIN is the orderly end of the transport, as TCP's FIN is; a
//! reset (`H3_REQUEST_CANCELLED`) the abrupt one (RFC 9220 §3).
//!
//! HTTP/3's framing, SETTINGS and QPACK (static table only) are the
//! crate's own, sans-IO: the released `h3` crate cannot carry
//! `:protocol = websocket`. QUIC is quinn's, with rustls.
//!
//! **No 0-RTT.** A WebSocket handshake is not replay-safe, so
//! [`server_config`] sets rustls' `max_early_data_size` to 0 (the server
//! never accepts early data, so no request can arrive in it) and
//! [`client_config`] turns early data off (the client never sends any).

use alloc::string::String;
use std::io;

pub use super::Error;
pub use super::TokioClock;
use crate::h3::code;

mod client;
mod control;
mod quic;
mod server;
mod stream;

pub use client::Client;
pub use quic::{
    client_config, endpoint, server_config, CONNECTION_WINDOW, KEEP_ALIVE, MAX_STREAMS,
    STREAM_WINDOW, UDP_BUFFER,
};
pub use server::{serve_connection, Incoming, RequestStream};
pub use stream::{Io, WebSocket};

/// The ALPN token of HTTP/3.
pub const ALPN: &[u8] = b"h3";

/// The clock the driver reads for the core.
type Time = tokio::time::Instant;

/// An HTTP/3 error code as a QUIC one.
fn varint(code: u64) -> quinn::VarInt {
    quinn::VarInt::from_u64(code).unwrap_or(quinn::VarInt::MAX)
}

/// A fault of the peer's HTTP/3 (or a stream it broke off), as the
/// driver's I/O error.
fn h3_error(kind: io::ErrorKind, what: &str) -> Error {
    Error::Io(io::Error::new(kind, alloc::format!("HTTP/3: {what}")))
}

/// The name of an HTTP/3 error code, for messages.
fn code_name(code: u64) -> String {
    let name = match code {
        code::NO_ERROR => "H3_NO_ERROR",
        code::GENERAL_PROTOCOL_ERROR => "H3_GENERAL_PROTOCOL_ERROR",
        code::FRAME_UNEXPECTED => "H3_FRAME_UNEXPECTED",
        code::FRAME_ERROR => "H3_FRAME_ERROR",
        code::REQUEST_REJECTED => "H3_REQUEST_REJECTED",
        code::REQUEST_CANCELLED => "H3_REQUEST_CANCELLED",
        code::REQUEST_INCOMPLETE => "H3_REQUEST_INCOMPLETE",
        code::MESSAGE_ERROR => "H3_MESSAGE_ERROR",
        _ => return alloc::format!("{code:#x}"),
    };
    name.into()
}

/// A quinn read error as the driver's: a reset stream is
/// `ConnectionReset` with its code, as over HTTP/2.
fn read_error(e: quinn::ReadError) -> Error {
    match e {
        quinn::ReadError::Reset(code) => h3_error(
            io::ErrorKind::ConnectionReset,
            &alloc::format!(
                "the peer reset the stream ({})",
                code_name(code.into_inner())
            ),
        ),
        other => Error::Io(other.into()),
    }
}

/// A quinn write error as the driver's.
fn write_error(e: quinn::WriteError) -> Error {
    match e {
        quinn::WriteError::Stopped(code) => h3_error(
            io::ErrorKind::BrokenPipe,
            &alloc::format!(
                "the peer stopped the stream ({})",
                code_name(code.into_inner())
            ),
        ),
        other => Error::Io(other.into()),
    }
}

/// A quinn connection error as the driver's.
fn connection_error(e: quinn::ConnectionError) -> Error {
    Error::Io(e.into())
}
