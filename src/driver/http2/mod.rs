//! WebSocket over HTTP/2 (RFC 8441), on the `h2` crate (feature `http2`).
//!
//! Each WebSocket is one stream of an HTTP/2 connection: the opening
//! handshake is an extended CONNECT, decided by the core
//! ([`ExtendedConnectRequest`](crate::handshake::ExtendedConnectRequest), [`ExtendedConnectClient`](crate::handshake::ExtendedConnectClient)), and then the stream's DATA
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
use alloc::string::String;
use core::future::Future;
use std::io;

pub use super::Error;
pub use super::TokioClock;
use crate::socket;
use crate::Timestamp;

mod client;
mod server;
mod stream;

pub use client::Client;
pub use server::{
    serve_connection, serve_connection_with, sniff, Incoming, RequestStream, Rewind, Routes,
    PREFACE,
};
pub use stream::{Io, WebSocket};

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

/// `Config::max_header_bytes` as SETTINGS_MAX_HEADER_LIST_SIZE: the most
/// a header block may take, counted as the core counts it.
fn header_list_size(config: &crate::Config) -> u32 {
    u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX)
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

/// `future`, unless the core's `deadline` comes first (`None`).
async fn race<F: Future>(future: F, deadline: Option<Timestamp>) -> Option<F::Output> {
    socket::race(future, &TokioClock, deadline).await
}
