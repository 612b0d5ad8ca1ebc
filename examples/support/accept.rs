//! Accepting connections without dying of a failed accept: what every
//! server example here uses.
//!
//! An accept fails for reasons that pass: the process is out of file
//! descriptors (`EMFILE`; the system, `ENFILE`), memory is short, or a
//! client gave up before it was accepted (`ECONNABORTED`). Ending the
//! server then would drop every connection it serves. The helpers log the
//! error, wait [`BACKOFF`] (a tight retry would spin: the next accept
//! fails the same way until a connection closes) and accept again. Only an
//! error that says the listener itself is unusable ends the loop.

#![allow(dead_code)] // Each example uses some of them.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// How long to wait after a failed accept.
pub const BACKOFF: Duration = Duration::from_millis(100);

/// Whether a failed accept means the listener is unusable (not a
/// listening socket, closed), rather than a shortage that passes.
fn is_fatal(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::InvalidInput | io::ErrorKind::NotConnected | io::ErrorKind::Unsupported
    )
}

/// Judges one accept: `Ok` with what to return (the connection, or an
/// error that ends the loop), or `Err` with how long to wait before the
/// next try (logged; at once after `Interrupted`). The three helpers below
/// differ only in their listener and their sleep.
fn judge<T>(accepted: io::Result<T>) -> Result<io::Result<T>, Duration> {
    match accepted {
        Ok(connection) => Ok(Ok(connection)),
        Err(error) if is_fatal(&error) => Ok(Err(error)),
        Err(error) if error.kind() == io::ErrorKind::Interrupted => Err(Duration::ZERO),
        Err(error) => {
            println!("accept: {error}; again in {BACKOFF:?}");
            Err(BACKOFF)
        }
    }
}

/// The next connection from a tokio listener, with TCP_NODELAY set.
pub async fn accept(
    listener: &tokio::net::TcpListener,
) -> io::Result<(tokio::net::TcpStream, SocketAddr)> {
    loop {
        match judge(listener.accept().await) {
            Ok(done) => {
                return done.inspect(|(tcp, _)| {
                    let _ = tcp.set_nodelay(true);
                })
            }
            Err(wait) => tokio::time::sleep(wait).await,
        }
    }
}

/// The next connection from a std listener, with TCP_NODELAY set.
pub fn accept_blocking(
    listener: &std::net::TcpListener,
) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    loop {
        match judge(listener.accept()) {
            Ok(done) => {
                return done.inspect(|(tcp, _)| {
                    let _ = tcp.set_nodelay(true);
                })
            }
            Err(wait) => std::thread::sleep(wait),
        }
    }
}

/// The next connection from a compio listener, with TCP_NODELAY set.
#[cfg(feature = "compio")]
pub async fn accept_uring(
    listener: &compio::net::TcpListener,
) -> io::Result<(compio::net::TcpStream, SocketAddr)> {
    loop {
        match judge(listener.accept().await) {
            Ok(done) => {
                return done.inspect(|(tcp, _)| {
                    let _ = tcp.set_nodelay(true);
                })
            }
            Err(wait) => compio::time::sleep(wait).await,
        }
    }
}
