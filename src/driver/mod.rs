//! The drivers: each moves bytes between a transport and a
//! [`Connection`](crate::Connection), and holds no protocol logic of its
//! own. Every deadline, Ping, Pong and Close is the core's; a driver reads
//! its transport, writes the core's output, and sleeps until the core's
//! next deadline.
//!
//! Nothing outside this folder names a socket, a runtime or a clock: the
//! rest of the crate is the sans-IO core, and CI checks the line.

#[cfg(any(
    feature = "blocking",
    feature = "tokio",
    feature = "compio",
    feature = "mio"
))]
mod clock;
#[cfg(any(feature = "blocking", feature = "tokio", feature = "compio"))]
mod dial;
#[cfg(any(feature = "blocking", feature = "tokio", feature = "compio"))]
mod error;

mod api;
#[cfg(any(feature = "http2", feature = "http3"))]
mod extended;
#[cfg(feature = "std")]
mod halves;
#[cfg(any(feature = "tokio", feature = "compio", feature = "embedded-io-async"))]
mod opening;
mod policy;
#[cfg(any(feature = "tokio", feature = "mio"))]
mod pool;
#[cfg(feature = "std")]
pub mod shutdown;
pub mod socket;
#[cfg(feature = "futures")]
mod stream_sink;

pub use api::Driver;
#[cfg(feature = "std")]
pub use shutdown::Shutdown;

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "blocking")]
pub mod blocking;
#[cfg(feature = "compio")]
pub mod compio;
#[cfg(feature = "embedded-io-async")]
pub mod embedded;
#[cfg(feature = "http2")]
pub mod http2;
#[cfg(feature = "http3")]
pub mod http3;
#[cfg(feature = "mio")]
pub mod mio;
#[cfg(feature = "tokio")]
pub mod tokio;

#[cfg(feature = "blocking")]
use clock::read_until;
#[cfg(any(feature = "blocking", feature = "tokio", feature = "compio"))]
use clock::Clock;
#[cfg(feature = "tokio")]
pub use clock::TokioClock;
#[cfg(feature = "tokio")]
use clock::{Alarm, Timer};
#[cfg(feature = "blocking")]
pub use dial::close_tcp;
#[cfg(all(not(feature = "rustls"), any(feature = "tokio", feature = "blocking")))]
use dial::no_tls;
#[cfg(any(feature = "blocking", feature = "tokio"))]
pub use dial::Connector;
#[cfg(any(feature = "blocking", feature = "tokio", feature = "compio"))]
pub use dial::WsUrl;
#[cfg(all(feature = "rustls", any(feature = "tokio", feature = "blocking")))]
use dial::{server_name, tls_error};
#[cfg(any(feature = "blocking", feature = "tokio", feature = "compio"))]
pub use error::Error;
#[cfg(any(feature = "blocking", feature = "tokio"))]
use policy::received;
