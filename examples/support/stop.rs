//! Stopping a server gracefully on SIGTERM or SIGINT, on any runtime:
//! the signal begins the server's [`Shutdown`] (every WebSocket watching it
//! sends its Close), the accept loop stops, and the server waits a bounded
//! time for the closing handshakes before it exits.

#![allow(dead_code)]

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::LazyLock;
use std::task::Poll;
use std::time::Duration;

use rfc6455::{CloseCode, Shutdown};

/// The server's one shutdown signal: every WebSocket it accepts watches it.
pub static SHUTDOWN: LazyLock<Shutdown> = LazyLock::new(Shutdown::new);

/// How long the server waits for the closing handshakes once stopped: a
/// little over the core's closing timeout, which bounds each of them.
pub const GRACE: Duration = Duration::from_secs(6);

/// On SIGTERM or SIGINT, begins [`SHUTDOWN`] with `code` (1001 Going Away
/// or 1012 Service Restart). `listening` is a blocking accept loop's
/// address: a connection to it wakes the loop to see that it must stop.
///
/// The signal handlers are installed before it returns, so the server
/// accepts nothing before it can be stopped (and a server short of file
/// descriptors later cannot lose them); where they cannot be, it says so
/// and the server runs without a graceful stop.
pub fn on_signals(code: CloseCode, listening: Option<SocketAddr>) {
    use tokio::signal::unix::{signal, SignalKind};
    let installed = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .and_then(|runtime| {
            let _entered = runtime.enter();
            let term = signal(SignalKind::terminate())?;
            let int = signal(SignalKind::interrupt())?;
            Ok((runtime, term, int))
        });
    let (runtime, mut term, mut int) = match installed {
        Ok(installed) => installed,
        Err(e) => {
            eprintln!("no graceful stop (signal handlers: {e})");
            return;
        }
    };
    std::thread::spawn(move || {
        let name = runtime.block_on(async {
            tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            }
        });
        let reason = match code {
            CloseCode::SERVICE_RESTART => "the server is restarting",
            _ => "the server is going away",
        };
        println!("{name}: closing every WebSocket with {}", code.0);
        SHUTDOWN.begin(code, reason);
        if let Some(addr) = listening {
            let _ = std::net::TcpStream::connect(addr);
        }
    });
}

/// `work`, unless the shutdown begins first (`None`): for an accept loop.
pub async fn unless_stopped<F: Future>(work: F) -> Option<F::Output> {
    let mut work = pin!(work);
    let mut stopped = pin!(SHUTDOWN.begun());
    poll_fn(|cx| {
        if stopped.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        work.as_mut().poll(cx).map(Some)
    })
    .await
}

/// After the accept loop, on tokio: waits (at most [`GRACE`]) for every
/// WebSocket to close; whether all did.
pub async fn wait_closed() -> bool {
    tokio::time::timeout(GRACE, SHUTDOWN.ended()).await.is_ok()
}

/// The last line: whether every WebSocket closed in time.
pub fn report(all_closed: bool) {
    match all_closed {
        true => println!("stopped: every WebSocket closed"),
        false => println!(
            "stopped: {} WebSocket(s) still open after {GRACE:?}",
            SHUTDOWN.open()
        ),
    }
}
