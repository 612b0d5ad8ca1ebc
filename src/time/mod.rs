//! Time as an input: the driver's clock, the timeouts, and the deadlines
//! a connection keeps.
//!
//! The core never reads a clock. A driver tells it the time with
//! `handle_timeout(now)` and asks when to do so next with `poll_timeout()`
//! (on [`Connection`](crate::Connection) and on both handshakes); it
//! sleeps until then, or until bytes arrive, whichever comes first. Every
//! decision about time (when to send a heartbeat Ping, when a silent peer
//! is taken for dead, when a closing handshake has taken too long, when to
//! give up on an opening handshake) is made here, the same for every
//! driver.
//!
//! Times are [`Timestamp`]s: a monotonic count from an epoch the driver
//! chooses (its start, say), so that the core needs neither `std::time`
//! nor a clock of any kind.

use core::ops::Add;
use core::time::Duration;

/// A point in time on the driver's monotonic clock: the time since an
/// epoch of the driver's choosing.
///
/// A driver over `std` takes one `Instant` as its epoch and passes
/// `Timestamp::from(epoch.elapsed())`; a test counts from zero. Only
/// differences between timestamps matter, so every timestamp given to one
/// connection must count from the same epoch, and never go backwards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(Duration);

impl Timestamp {
    /// The epoch itself.
    pub const ZERO: Timestamp = Timestamp(Duration::ZERO);

    /// The time `since_epoch` after the epoch.
    pub const fn from_duration(since_epoch: Duration) -> Timestamp {
        Timestamp(since_epoch)
    }

    /// `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Timestamp {
        Timestamp(Duration::from_millis(millis))
    }

    /// The time since the epoch.
    pub const fn since_epoch(self) -> Duration {
        self.0
    }

    /// The time since the epoch in nanoseconds, in 8 bytes where a
    /// `Timestamp` takes 16, for a driver that keeps a deadline for each
    /// of many connections; [`from_nanos`](Timestamp::from_nanos) turns
    /// it back. Saturates at `u64::MAX` (584 years).
    pub fn as_nanos(self) -> u64 {
        u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX)
    }

    /// `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Timestamp {
        Timestamp(Duration::from_nanos(nanos))
    }

    /// How long after `earlier` this is (zero if it is not after it).
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl From<Duration> for Timestamp {
    fn from(since_epoch: Duration) -> Self {
        Timestamp(since_epoch)
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    /// Saturates instead of overflowing: a deadline centuries away is as
    /// good as none.
    fn add(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(rhs))
    }
}

/// How long the core waits for the peer, in [`Config::timeouts`](crate::Config::timeouts).
///
/// A timer runs only on a connection (or handshake) that is told the time
/// (`handle_timeout`); one that never is runs none.
///
/// ```
/// use rfc6455::{Config, Connection, Event, Role, Timestamp};
/// use std::time::Duration;
///
/// // A heartbeat: a Ping after 15 s of silence, closed after 45 s.
/// let mut config = Config::default();
/// config.timeouts.ping_interval = Some(Duration::from_secs(15));
/// config.timeouts.idle = Some(Duration::from_secs(45));
/// let mut conn = Connection::new(Role::Server, config);
/// conn.handle_timeout(Timestamp::from_millis(0));
/// // The core says when it next needs the time; the driver sleeps until then.
/// assert_eq!(conn.poll_timeout(), Some(Timestamp::from_millis(15_000)));
/// conn.handle_timeout(Timestamp::from_millis(15_000));
/// assert_eq!(conn.pending_output(), b"\x89\x00"); // the Ping
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// The opening handshake must finish within this time. A server then
    /// answers 408 and closes (a client sending one header byte a minute
    /// holds nothing for long); a client gives up.
    ///
    /// Default: 10 seconds.
    pub handshake: Option<Duration>,
    /// Once we sent a Close frame (because the application closed, or the
    /// peer was idle, or the peer broke the protocol), the peer has this
    /// long to answer it; after the closing handshake, it has this long to
    /// end the transport. Then the connection ends anyway.
    ///
    /// Default: 5 seconds.
    pub close: Option<Duration>,
    /// Send a Ping after this much silence from the peer, and again after
    /// each further interval of silence.
    ///
    /// Default: none.
    pub ping_interval: Option<Duration>,
    /// Close with 1001 (going away) after this much silence from the peer;
    /// any bytes, a Pong among them, count as a sign of life.
    ///
    /// Silence is measured at the times the driver reports: a driver that
    /// calls `handle_timeout` only when a deadline passes (as the drivers
    /// do) notices bytes at the next deadline, so a peer is given up on
    /// after between `idle` and `idle` plus one ping interval of silence.
    ///
    /// Default: none.
    pub idle: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            handshake: Some(Duration::from_secs(10)),
            close: Some(Duration::from_secs(5)),
            ping_interval: None,
            idle: None,
        }
    }
}

/// What ran out at a `handle_timeout`.
// Without the `timers` feature nothing runs out: only `None` is made.
#[cfg_attr(not(feature = "timers"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expired {
    /// Nothing.
    None,
    /// The peer was silent for a ping interval: send a Ping.
    Ping,
    /// The peer was silent for the idle timeout: close with 1001.
    Idle,
}

// The deadlines run with the `timers` feature; without it, no timer runs
// and the same calls do nothing (`off`), so the connection and the
// handshakes are written once for both.
#[cfg(feature = "timers")]
mod running;
#[cfg(feature = "timers")]
pub(crate) use running::{HandshakeTimer, Timers};

#[cfg(not(feature = "timers"))]
mod off;
#[cfg(not(feature = "timers"))]
pub(crate) use off::{HandshakeTimer, Timers};
