//! The clocks the std drivers read for the core, and the alarm the async
//! ones sleep on until the core's next deadline. No deadline is decided
//! here: every one is the core's.

#[cfg(feature = "tokio")]
use std::fmt;
#[cfg(feature = "blocking")]
use std::io;
use std::ops::Add;
use std::sync::OnceLock;
use std::time::Duration;

use crate::Timestamp;

/// A monotonic clock the drivers read for the core: the time since one
/// epoch per process, so that every handshake and connection of a process
/// counts from the same point.
pub(crate) trait Clock: Copy + Add<Duration, Output = Self> + Send + Sync + 'static {
    /// The clock's time now.
    fn read() -> Self;
    /// How long after `earlier` this is (zero if not after).
    fn since(self, earlier: Self) -> Duration;
    /// The epoch, fixed at the first call.
    fn epoch() -> Self;

    /// Now, as the core counts time.
    fn timestamp() -> Timestamp {
        Timestamp::from(Self::read().since(Self::epoch()))
    }

    /// A deadline of the core, on this clock.
    fn at(deadline: Timestamp) -> Self {
        Self::epoch() + deadline.since_epoch()
    }
}

impl Clock for std::time::Instant {
    fn read() -> Self {
        std::time::Instant::now()
    }

    fn since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }

    fn epoch() -> Self {
        static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
        *EPOCH.get_or_init(std::time::Instant::now)
    }
}

/// How long an event loop may wait for its sockets: until the earliest
/// of these deadlines on the core's clock (a passed one: not at all);
/// `None` when there is none.
#[cfg(feature = "mio")]
pub(crate) fn wait_for(deadlines: impl IntoIterator<Item = Option<Timestamp>>) -> Option<Duration> {
    let at = deadlines.into_iter().flatten().min()?;
    let instant = std::time::Instant::at(at);
    Some(instant.since(std::time::Instant::read()))
}

/// A runtime's timer on its clock: what [`Alarm`] sleeps with.
#[cfg(feature = "tokio")]
pub(crate) trait Timer: Clock {
    /// A sleep until an instant of this clock (boxed where the runtime's
    /// own is not `Unpin`, or has no name).
    type Sleep: core::future::Future<Output = ()> + Unpin;
    /// A sleep until `at`.
    fn sleep_until(at: Self) -> Self::Sleep;
    /// Moves `sleep` to `at`; `false` if this timer cannot (then a new
    /// sleep is made).
    fn reset(_sleep: &mut Self::Sleep, _at: Self) -> bool {
        false
    }
}

/// Sleeps until the core's next deadline on the timer `T`, and tells the
/// core the time when it comes: how the async drivers hand the core its
/// time. The core decides every deadline; this only keeps the appointment.
#[cfg(feature = "tokio")]
pub(crate) struct Alarm<T: Timer> {
    sleep: Option<T::Sleep>,
    /// The deadline `sleep` is set for, on the core's clock.
    armed: Option<Timestamp>,
}

#[cfg(feature = "tokio")]
impl<T: Timer> Default for Alarm<T> {
    fn default() -> Self {
        Alarm {
            sleep: None,
            armed: None,
        }
    }
}

#[cfg(feature = "tokio")]
impl<T: Timer> fmt::Debug for Alarm<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alarm").field("armed", &self.armed).finish()
    }
}

#[cfg(feature = "tokio")]
impl<T: Timer> Alarm<T> {
    /// Sleeps until the core's deadline; when it comes, tells the core the
    /// time. Returns whether it did (then there may be work), having
    /// registered for the next deadline either way.
    pub(crate) fn poll(
        &mut self,
        conn: &mut crate::Connection,
        cx: &mut core::task::Context<'_>,
    ) -> bool {
        use core::future::Future;
        use core::pin::Pin;
        let mut told = false;
        while let Some(deadline) = conn.poll_timeout() {
            if self.armed != Some(deadline) {
                let at = T::at(deadline);
                let reset = match &mut self.sleep {
                    Some(sleep) => T::reset(sleep, at),
                    None => false,
                };
                if !reset {
                    self.sleep = Some(T::sleep_until(at));
                }
                self.armed = Some(deadline);
            }
            let sleep = self.sleep.as_mut().expect("armed above");
            if Pin::new(sleep).poll(cx).is_pending() {
                break;
            }
            self.armed = None;
            conn.handle_timeout(T::timestamp());
            told = true;
        }
        told
    }
}

/// How often a WebSocket on a socket the blocking driver opened looks at
/// the [`Shutdown`](crate::Shutdown) it watches while it waits for the
/// peer: a blocking read cannot be woken from another thread. On a stream
/// you pass in, your read timeout is the tick.
#[cfg(feature = "blocking")]
pub const SHUTDOWN_TICK: Duration = Duration::from_millis(100);

/// The core's `deadline`, or a [`SHUTDOWN_TICK`] from now if that is
/// sooner: when the blocking driver next wakes while a shutdown may come.
#[cfg(feature = "blocking")]
pub(crate) fn or_shutdown_tick(deadline: Option<Timestamp>) -> Timestamp {
    let look = std::time::Instant::timestamp() + SHUTDOWN_TICK;
    deadline.map_or(look, |at| at.min(look))
}

/// Makes the next read on `tcp` wait no longer than until the core's
/// `deadline` (`None`: until bytes come): how the blocking driver wakes
/// for the core's timers on a socket it opened, as the async drivers
/// sleep until the deadline.
#[cfg(feature = "blocking")]
pub(crate) fn read_until(tcp: &std::net::TcpStream, deadline: Option<Timestamp>) -> io::Result<()> {
    let now = std::time::Instant::read();
    let left = deadline.map(|at| {
        // Never zero: a socket refuses a zero timeout.
        std::time::Instant::at(at)
            .since(now)
            .max(Duration::from_millis(1))
    });
    tcp.set_read_timeout(left)
}

/// tokio's clock, which tests can pause and advance.
#[cfg(feature = "tokio")]
impl Clock for tokio::time::Instant {
    fn read() -> Self {
        tokio::time::Instant::now()
    }

    fn since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }

    fn epoch() -> Self {
        static EPOCH: OnceLock<tokio::time::Instant> = OnceLock::new();
        *EPOCH.get_or_init(tokio::time::Instant::now)
    }
}

#[cfg(feature = "tokio")]
/// tokio's timers, on tokio's clock (which tests can pause and advance):
/// the clock of the drivers that run on tokio (the `tokio` driver's
/// engine sleeps on it; `http2` is the shared loop on it).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

#[cfg(feature = "tokio")]
impl crate::socket::Clock for TokioClock {
    fn now(&self) -> Timestamp {
        tokio::time::Instant::timestamp()
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        tokio::time::sleep_until(tokio::time::Instant::at(deadline)).await;
    }
}
