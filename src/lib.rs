//! A sans-IO implementation of the WebSocket protocol, [RFC 6455].
//!
//! The core of this crate does no I/O: no sockets, no threads, no clock.
//! You give it the bytes you read and it gives you events; you give it
//! messages and it gives you the bytes to write; you tell it the time and
//! it tells you when it next needs to know. That makes it usable with any
//! transport (TCP, TLS, a test buffer, a fuzzer) and any runtime, and
//! makes every behaviour testable in memory, timers included.
//!
//! - [`handshake`]: the HTTP/1.1 Upgrade exchange, for the
//!   [client](handshake::ClientHandshake) and the [server](handshake::ServerHandshake).
//! - [`Connection`]: the state machine after the handshake: frames,
//!   fragmentation, UTF-8, pings, the closing handshake, limits, and the
//!   timers ([`Timeouts`], on the driver's clock as [`Timestamp`]s).
//! - The drivers, each a transport and its handshake entry points over one
//!   shared loop: `blocking` over `std::io::Read + Write`; [`socket`], the
//!   async loop written once over any transport, which the `embedded`
//!   (`embedded_io_async::Read + Write`, no std), `compio` (io_uring) and
//!   `http2` (RFC 8441 streams on h2) drivers are; `tokio` over tokio's
//!   `AsyncRead + AsyncWrite`, with `Stream`, `Sink` and split halves; and
//!   `mio`, a server that keeps every connection as a record in one event
//!   loop. None holds protocol logic: they move bytes and sleep until the
//!   core's deadline.
//!
//! Without the default `std` feature the crate is `#![no_std]` and needs
//! only `alloc`; a client then takes its masking keys from
//! [`Config::mask_keys`] (see [`MaskKeys`]).
//!
//! # Where to read on
//!
//! | to | read |
//! |---|---|
//! | learn how WebSocket works, byte by byte | [`guide::protocol`] |
//! | write a driver for your own transport | [`guide::core`], [`Connection`], [`plumbing`] |
//! | pick a driver: blocking, tokio, io_uring, embedded | [`guide::drivers`], [`Driver`] |
//! | serve WebSockets over HTTP/2 or HTTP/3 | [`guide::http2_http3`] |
//! | run it safely against untrusted peers | [`guide::production`], [`Config`] |
//! | check conformance, fuzz, benchmark | [`guide::conformance`], [`guide::performance`] |
//!
//! The [`guide`] lists every chapter.
//!
//! # The driver loop
//!
//! Input, time, events, commands, output: [`Connection`] describes the
//! loop. In memory, with the handshake:
//!
//! ```
//! use rfc6455::handshake::{Accept, ClientHandshake, ClientRequest, ServerHandshake};
//! use rfc6455::{Config, Event, Message};
//!
//! // Two endpoints in memory; a real driver moves these bytes over a socket.
//! let client = ClientHandshake::new(&ClientRequest::new("localhost", "/"), Config::default());
//! let server = ServerHandshake::new(Config::default());
//!
//! // Each handshake is fed until it is done (here, in one piece).
//! let request = server.handle_read(client.request()).unwrap().done().expect("whole request");
//! let accepted = request.accept(Accept::new()).unwrap();
//! let mut server = accepted.connection;
//! let connected = client.handle_read(&accepted.response).unwrap().done().expect("101");
//! let mut client = connected.connection;
//!
//! client.send_text("Hello").unwrap();
//! server.handle_read(client.pending_output());
//! let n = client.pending_output().len();
//! client.consume_output(n);
//!
//! assert_eq!(server.poll_event(), Some(Event::Message(Message::from("Hello"))));
//! ```
//!
//! [RFC 6455]: https://www.rfc-editor.org/rfc/rfc6455
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]
// On docs.rs, each item says which features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

// The core needs only `core` and `alloc`; std comes in with the `std`
// feature (random keys, CPU feature detection, `IoSlice`, the drivers).
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod close;
mod config;
mod connection;
mod error;
mod extension;
#[cfg(feature = "forwarded")]
pub mod forwarded;
pub mod frame;
#[cfg(any(feature = "http3", fuzzing, feature = "internals"))]
mod h3;
pub mod handshake;
mod mask;
mod message;
mod prepared;
pub mod proxy;

/// The driver's tier of a [`Connection`], out of an application's way:
/// reading straight into the receive buffer, lending buffers between
/// connections, the output as pieces or owned bytes. Import
/// [`Plumbing`](plumbing::Plumbing) to call these on a connection.
pub mod plumbing {
    pub use crate::connection::{Buffers, Plumbing, ReadBuffer, Unread};
    pub use crate::message::Received;
}
mod time;
mod utf8;

#[cfg(any(
    feature = "blocking",
    feature = "tokio",
    feature = "compio",
    feature = "embedded-io-async",
    feature = "mio"
))]
// With the mio server alone, parts of the shared async loop have no user.
#[cfg_attr(
    not(any(
        feature = "blocking",
        feature = "tokio",
        feature = "compio",
        feature = "embedded-io-async"
    )),
    allow(dead_code)
)]
mod driver;
#[cfg(feature = "axum")]
pub use driver::axum;
#[cfg(feature = "blocking")]
pub use driver::blocking;
#[cfg(feature = "compio")]
pub use driver::compio;
#[cfg(feature = "embedded-io-async")]
pub use driver::embedded;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http2")]
pub use driver::http2;
#[cfg(feature = "http3")]
pub use driver::http3;
#[cfg(feature = "mio")]
pub use driver::mio;
#[cfg(any(
    feature = "blocking",
    feature = "tokio",
    feature = "compio",
    feature = "embedded-io-async",
    feature = "mio"
))]
pub use driver::socket;
#[cfg(feature = "tokio")]
pub use driver::tokio;

pub use close::{CloseCode, CloseFrame};
pub use config::{Config, MaskKeys};
pub use connection::{Connection, State};
#[cfg(any(
    feature = "blocking",
    feature = "tokio",
    feature = "compio",
    feature = "embedded-io-async",
    feature = "mio"
))]
pub use driver::Driver;
#[cfg(all(
    feature = "std",
    any(
        feature = "blocking",
        feature = "tokio",
        feature = "compio",
        feature = "embedded-io-async",
        feature = "mio"
    )
))]
pub use driver::Shutdown;
pub use error::{ProtocolError, UsageError};
#[cfg(feature = "deflate")]
pub use extension::deflate::{DeflateConfig, DeflateParams};
pub use message::{Closed, Event, Fragment, Initiator, Message, MessageKind, MessageRef, Role};
pub use prepared::PreparedMessage;
pub use time::{Timeouts, Timestamp};
pub use utf8::Utf8Bytes;

/// Internals exposed to the fuzz targets and benchmarks, not a stable API.
#[cfg(any(fuzzing, feature = "internals"))]
#[doc(hidden)]
pub mod internals {
    pub use crate::h3::qpack::{
        decode as qpack_decode, encode as qpack_encode, Fields as QpackFields,
        FieldsError as QpackError,
    };
    pub use crate::h3::{
        frame_header as h3_frame_header, get_varint, put_varint, Settings as H3Settings,
    };
    pub use crate::mask::{apply_mask, apply_mask_reference, extend_masked};
    pub use crate::utf8::{InvalidUtf8, Utf8Validator};
}

/// A guide to WebSocket and to this library, chapter by chapter (the same
/// files as `guide/` in the repository). Every Rust sample in it is a doc
/// test: CI compiles and runs it, so it cannot drift from what the library
/// does.
///
/// 1. [The protocol, byte by byte](guide::protocol): from the client's
///    request line to the last Close frame, each step with the bytes the
///    library produces and parses.
/// 2. [Embedding the sans-IO core](guide::core): the driver loop.
/// 3. [Choosing a driver](guide::drivers): blocking, tokio, io_uring,
///    embedded; TLS and proxies; hyper, axum and the `http` crate.
/// 4. [WebSocket over HTTP/2 and HTTP/3](guide::http2_http3).
/// 5. [permessage-deflate](guide::deflate).
/// 6. [Conformance and faults](guide::conformance).
/// 7. [Performance](guide::performance).
/// 8. [In the browser](guide::apps): the demo apps.
/// 9. [The project](guide::project): unsafe code, dependencies, layout.
/// 10. [Running in production](guide::production): limits, timeouts,
///     slow consumers, compression's memory, TLS, proxies, balancers.
#[cfg(any(doc, doctest))]
pub mod guide {
    #[doc = include_str!("../guide/protocol.md")]
    pub mod protocol {}
    #[doc = include_str!("../guide/core.md")]
    pub mod core {}
    #[doc = include_str!("../guide/drivers.md")]
    pub mod drivers {}
    #[doc = include_str!("../guide/http2-http3.md")]
    pub mod http2_http3 {}
    #[doc = include_str!("../guide/deflate.md")]
    pub mod deflate {}
    #[doc = include_str!("../guide/conformance.md")]
    pub mod conformance {}
    #[doc = include_str!("../guide/performance.md")]
    pub mod performance {}
    #[doc = include_str!("../guide/apps.md")]
    pub mod apps {}
    #[doc = include_str!("../guide/project.md")]
    pub mod project {}
    // The chapter links the `forwarded` module, which a build without
    // its feature does not have.
    #[doc = include_str!("../guide/production.md")]
    #[cfg_attr(not(feature = "forwarded"), allow(rustdoc::broken_intra_doc_links))]
    pub mod production {}
}

/// The code in README.md, compiled and run as doc tests so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
