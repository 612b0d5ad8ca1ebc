//! Graceful shutdown: see [`Shutdown`].

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::poll_fn;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::{CloseCode, Connection};

/// Graceful shutdown: one signal for every WebSocket a server holds, on
/// any driver.
///
/// A server makes one `Shutdown` and has each WebSocket it accepts
/// [`watch`](crate::Driver::watch) it. When the server is told to stop
/// (SIGTERM, a deploy), it calls [`Shutdown::begin`] with the code its
/// clients should see: 1001 (Going Away) when the server leaves, 1012
/// (Service Restart) when it comes back. From then:
///
/// 1. the accept loop, racing [`Shutdown::begun`], stops accepting;
/// 2. every watching WebSocket sends that Close frame as soon as its loop
///    next waits for the peer (at once, for one waiting in `recv`), and
///    runs the closing handshake as any other: the peer's Close, then the
///    end of the transport, or the core's closing deadline
///    ([`Timeouts::close`](crate::Timeouts::close)), whichever comes
///    first;
/// 3. [`Shutdown::ended`] is ready when every watching WebSocket has been
///    dropped: each handler has seen its `recv` end and returned, so
///    nothing is left half-written. The server waits for it, bounded by a
///    timeout of its own runtime's, and exits.
///
/// ```no_run
/// # #[cfg(feature = "tokio")]
/// # async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
/// use rfc6455::{CloseCode, Driver, Shutdown};
/// use std::time::Duration;
///
/// let shutdown = Shutdown::new();
/// let on_signal = shutdown.clone();
/// tokio::spawn(async move {
///     let _ = tokio::signal::ctrl_c().await;
///     on_signal.begin(CloseCode::SERVICE_RESTART, "restarting");
/// });
/// loop {
///     let (stream, _) = tokio::select! {
///         accepted = listener.accept() => accepted?,
///         () = shutdown.begun() => break,
///     };
///     let shutdown = shutdown.clone();
///     tokio::spawn(async move {
///         let Ok(mut ws) = rfc6455::tokio::accept(stream).await else { return };
///         ws.watch(&shutdown);
///         while let Ok(Some(message)) = ws.recv().await {
///             if ws.queue(&message).await.is_err() {
///                 break;
///             }
///         }
///     });
/// }
/// // Every client got its 1012; wait (bounded) for their answers.
/// let _ = tokio::time::timeout(Duration::from_secs(10), shutdown.ended()).await;
/// # Ok(()) }
/// ```
///
/// The signal is heeded where a driver's loop waits for the peer: the
/// async drivers are woken by it; the blocking driver, whose read cannot
/// be woken from another thread, looks at it every read-timeout tick (on
/// the sockets it opens itself, at least every
/// [`SHUTDOWN_TICK`](crate::blocking::SHUTDOWN_TICK)). A WebSocket
/// already closing keeps its own Close; one that never calls `recv` heeds
/// the signal at its next `recv`.
///
/// Cheap to clone; every clone is the same signal.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Set once begun: what a WebSocket's loop reads on every turn,
    /// without taking the lock every WebSocket shares.
    begun: AtomicBool,
    state: Mutex<State>,
    /// Notified when the last watching WebSocket is dropped.
    emptied: Condvar,
}

/// Where a WebSocket's loop leaves its waker while it waits for the peer:
/// its own lock, so that thousands of loops going idle do not queue on
/// one.
type Slot = Mutex<Option<Waker>>;

#[derive(Debug, Default)]
struct State {
    /// The Close frame to send, once begun.
    begun: Option<(CloseCode, String)>,
    /// One slot per watching WebSocket. `None` slots are free.
    watchers: Vec<Option<Arc<Slot>>>,
    /// The watching WebSockets not yet dropped.
    open: usize,
    /// The tasks waiting in [`Shutdown::begun`] or [`Shutdown::ended`].
    waiting: Vec<Waker>,
}

impl Shutdown {
    /// A signal not yet given, watched by nothing.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Gives the signal: every watching WebSocket (and every one that
    /// watches later) closes with `code` and `reason`. Only the first call
    /// counts. A `code` that may not be sent (1005, 1006, 1015, out of
    /// range) or a reason longer than 123 bytes is replaced by 1001 with
    /// no reason when each WebSocket closes.
    pub fn begin(&self, code: CloseCode, reason: &str) {
        let mut state = self.lock();
        if state.begun.is_some() {
            return;
        }
        state.begun = Some((code, reason.to_string()));
        // Set before the wakers are taken: a loop that left its waker
        // after this finds the flag set when it looks (see `poll_signal`).
        self.shared.begun.store(true, Ordering::SeqCst);
        for slot in state.watchers.iter().flatten() {
            if let Some(waker) = lock(slot).take() {
                waker.wake();
            }
        }
        for waker in state.waiting.drain(..) {
            waker.wake();
        }
    }

    /// Whether [`begin`](Shutdown::begin) was called.
    pub fn is_begun(&self) -> bool {
        self.shared.begun.load(Ordering::SeqCst)
    }

    /// Ready once [`begin`](Shutdown::begin) is called: for an accept loop
    /// to race, and stop accepting.
    pub async fn begun(&self) {
        poll_fn(|cx| self.ready_when(cx, |state| state.begun.is_some())).await
    }

    /// The WebSockets watching this signal and not yet dropped.
    pub fn open(&self) -> usize {
        self.lock().open
    }

    /// Ready when no watching WebSocket is left (at once if none ever
    /// watched): after [`begin`](Shutdown::begin), when every closing
    /// handshake has ended and its handler has dropped its WebSocket.
    /// Bound it with a timeout of your runtime's.
    pub async fn ended(&self) {
        poll_fn(|cx| self.ready_when(cx, |state| state.open == 0)).await
    }

    /// [`ended`](Shutdown::ended) for a thread: blocks until no watching
    /// WebSocket is left or `timeout` passes; `true` if none is left.
    pub fn wait_ended(&self, timeout: Duration) -> bool {
        let state = self.lock();
        let (state, _) = self
            .shared
            .emptied
            .wait_timeout_while(state, timeout, |state| state.open > 0)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.open == 0
    }

    /// A new watcher, counted open until dropped.
    pub(crate) fn watch(&self) -> Watch {
        let mut state = self.lock();
        state.open += 1;
        let slot = match state.watchers.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                state.watchers.push(None);
                state.watchers.len() - 1
            }
        };
        let waker = Arc::new(Slot::default());
        state.watchers[slot] = Some(waker.clone());
        Watch {
            shutdown: self.clone(),
            slot,
            waker,
            heeded: false,
        }
    }

    fn ready_when(&self, cx: &mut Context<'_>, ready: impl Fn(&State) -> bool) -> Poll<()> {
        let mut state = self.lock();
        if ready(&state) {
            return Poll::Ready(());
        }
        if !state.waiting.iter().any(|w| w.will_wake(cx.waker())) {
            state.waiting.push(cx.waker().clone());
        }
        Poll::Pending
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }
}

/// Takes a lock. A panic elsewhere while it was held leaves what it
/// guards whole (every change is a single step), so go on with it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One WebSocket's hold on a [`Shutdown`]: kept by the driver with the
/// connection, counted open until dropped.
#[derive(Debug)]
pub(crate) struct Watch {
    shutdown: Shutdown,
    slot: usize,
    /// Its slot's waker, also in the shutdown's list.
    waker: Arc<Slot>,
    /// The signal was acted on: the Close was queued, or the connection
    /// was already closing.
    heeded: bool,
}

impl Watch {
    /// Acts on the signal, once: queues its Close frame on `conn` unless
    /// the connection is already closing.
    pub(crate) fn heed(&mut self, conn: &mut Connection) {
        if self.heeded || !self.shutdown.shared.begun.load(Ordering::Acquire) {
            return;
        }
        let Some((code, reason)) = self.shutdown.lock().begun.clone() else {
            return;
        };
        self.heeded = true;
        if conn.can_send() && conn.close(code, &reason).is_err() {
            let _ = conn.close(CloseCode::GOING_AWAY, "");
        }
    }

    /// Whether the signal came and is not yet heeded; if not, wakes this
    /// task when it comes.
    pub(crate) fn poll_signal(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.heeded {
            return Poll::Pending;
        }
        // The waker first, then the flag: `begin` sets the flag, then
        // takes the wakers, so one of the two sees the other.
        {
            let mut slot = lock(&self.waker);
            if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *slot = Some(cx.waker().clone());
            }
        }
        match self.shutdown.shared.begun.load(Ordering::SeqCst) {
            true => Poll::Ready(()),
            false => Poll::Pending,
        }
    }

    /// Whether a signal may still come to heed (the blocking driver then
    /// keeps its reads short).
    #[cfg(feature = "blocking")]
    pub(crate) fn is_pending(&self) -> bool {
        !self.heeded
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut state = self.shutdown.lock();
        state.watchers[self.slot] = None;
        state.open -= 1;
        if state.open == 0 {
            for waker in state.waiting.drain(..) {
                waker.wake();
            }
            self.shutdown.shared.emptied.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Role, State};

    #[test]
    fn the_first_signal_counts_and_each_watcher_heeds_it_once() {
        let shutdown = Shutdown::new();
        let (mut a, mut b) = (shutdown.watch(), shutdown.watch());
        let mut conn = Connection::new(Role::Server, Config::default());
        a.heed(&mut conn);
        assert_eq!(conn.state(), State::Open, "nothing to heed before begin");
        shutdown.begin(CloseCode::SERVICE_RESTART, "restart");
        shutdown.begin(CloseCode::GOING_AWAY, "later, ignored");
        a.heed(&mut conn);
        assert_eq!(conn.pending_output(), b"\x88\x09\x03\xf4restart");
        a.heed(&mut conn);
        assert_eq!(conn.pending_output().len(), 11, "heeded once");
        // A connection already closing keeps its own Close.
        let mut closing = Connection::new(Role::Server, Config::default());
        closing.close(CloseCode::NORMAL, "").unwrap();
        let before = closing.pending_output().to_vec();
        b.heed(&mut closing);
        assert_eq!(closing.pending_output(), before);
        // A code that may not be sent becomes 1001.
        let bad = Shutdown::new();
        bad.begin(CloseCode::ABNORMAL, "");
        let mut conn = Connection::new(Role::Server, Config::default());
        bad.watch().heed(&mut conn);
        assert_eq!(conn.pending_output(), b"\x88\x02\x03\xe9");
    }

    #[test]
    fn ended_counts_the_watchers_not_yet_dropped() {
        let shutdown = Shutdown::new();
        assert!(shutdown.wait_ended(Duration::ZERO), "none ever watched");
        let (a, b) = (shutdown.watch(), shutdown.watch());
        assert_eq!(shutdown.open(), 2);
        drop(a);
        assert!(!shutdown.wait_ended(Duration::from_millis(1)));
        let waiter = {
            let shutdown = shutdown.clone();
            std::thread::spawn(move || shutdown.wait_ended(Duration::from_secs(30)))
        };
        drop(b);
        assert!(waiter.join().unwrap());
        assert_eq!(shutdown.open(), 0);
        // A slot freed is used again.
        let c = shutdown.watch();
        assert_eq!(c.slot, 0);
    }
}
