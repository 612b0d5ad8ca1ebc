//! What the Autobahn runs need from `echo_server` and `autobahn_client`:
//! their configuration, and a TCP stream that acknowledges every read at
//! once (Linux `TCP_QUICKACK`).
//!
//! kosoku, which runs the Autobahn passes, leaves Nagle's algorithm on. Its
//! large compressed messages (cases 12.* and 13.*) leave the last segment
//! waiting for our ACK, which the kernel delays by up to 40 ms: a thousand
//! messages then take 40 seconds of doing nothing. Acknowledging at once
//! removes the wait without changing a byte of what is exchanged. Linux
//! clears the flag as it goes, so it is set again before every read.
//! Nothing here is needed by a server talking to ordinary clients.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub fn quickack<S: std::os::fd::AsFd>(socket: &S) {
    // Best effort: on failure the stream is merely slower.
    let _ = socket2::SockRef::from(socket).set_tcp_quickack(true);
}

/// A tokio `TcpStream` that sets `TCP_QUICKACK` before each read, if `.1`.
pub struct QuickAck(pub tokio::net::TcpStream, pub bool);

impl AsyncRead for QuickAck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.1 {
            quickack(&self.0);
        }
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A std `TcpStream` that sets `TCP_QUICKACK` before each read, if `.1`.
pub struct BlockingQuickAck(pub std::net::TcpStream, pub bool);

impl Read for BlockingQuickAck {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.1 {
            quickack(&self.0);
        }
        self.0.read(buf)
    }
}

impl Write for BlockingQuickAck {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The default configuration, with permessage-deflate offered (`client`)
/// or accepted when the `deflate` feature is on.
pub fn config(client: bool) -> rfc6455::Config {
    #[allow(unused_mut)]
    let mut config = rfc6455::Config::default();
    #[cfg(feature = "deflate")]
    {
        // Compress every message, however short. Sending short messages
        // uncompressed is allowed (RFC 7692 §6), but kosoku 0.1.0, which
        // runs our Autobahn passes, fails cases on uncompressed echoes.
        let mut deflate = rfc6455::DeflateConfig::default();
        deflate.threshold = 0;
        // The client offers `client_no_context_takeover`: cases 13.2, 13.5
        // and 13.6 have a server that asks the client to forget its window,
        // and kosoku's server asks only a client whose offer says it will.
        deflate.client_no_context_takeover = client;
        config.deflate = Some(deflate);
    }
    let _ = client;
    config
}

/// The embedded driver on a host: tokio's clock behind
/// [`rfc6455::embedded::Clock`], and a tokio stream behind
/// `embedded-io-async`'s traits (embedded-io-adapters' bridge).
#[cfg(feature = "embedded-io-async")]
pub mod embedded {
    use std::sync::OnceLock;

    use rfc6455::Timestamp;

    /// The embedded driver's stream on a host.
    pub type Stream = embedded_io_adapters::tokio_1::FromTokio<super::QuickAck>;

    /// tokio's clock, counted from the first reading.
    pub struct TokioClock;

    fn epoch() -> tokio::time::Instant {
        static EPOCH: OnceLock<tokio::time::Instant> = OnceLock::new();
        *EPOCH.get_or_init(tokio::time::Instant::now)
    }

    impl rfc6455::embedded::Clock for TokioClock {
        fn now(&self) -> Timestamp {
            Timestamp::from(epoch().elapsed())
        }

        async fn sleep_until(&self, deadline: Timestamp) {
            tokio::time::sleep_until(epoch() + deadline.since_epoch()).await;
        }
    }
}

/// The compio driver's stream with `TCP_QUICKACK`, for the Autobahn runs.
#[cfg(feature = "compio")]
pub mod uring {
    use std::io;

    use compio::buf::{BufResult, IoBuf, IoBufMut, IoVectoredBuf};
    use compio::io::{AsyncRead, AsyncWrite};

    /// A compio `TcpStream` that sets `TCP_QUICKACK` before each read, if `.1`.
    pub struct QuickAck(pub compio::net::TcpStream, pub bool);

    impl AsyncRead for &QuickAck {
        async fn read<B: IoBufMut>(&mut self, buf: B) -> BufResult<usize, B> {
            if self.1 {
                super::quickack(&self.0);
            }
            let mut stream = &self.0;
            stream.read(buf).await
        }
    }

    impl AsyncWrite for &QuickAck {
        async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
            let mut stream = &self.0;
            stream.write(buf).await
        }

        async fn write_vectored<T: IoVectoredBuf>(&mut self, buf: T) -> BufResult<usize, T> {
            let mut stream = &self.0;
            stream.write_vectored(buf).await
        }

        async fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }

        async fn shutdown(&mut self) -> io::Result<()> {
            let mut stream = &self.0;
            stream.shutdown().await
        }
    }
}
