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

/// A deadline that starts with an event of the protocol (we sent a Close)
/// rather than with a call that carries the time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Countdown {
    /// Not running.
    #[default]
    Off,
    /// Started by an event whose time the core does not know yet: it is
    /// due at once, so the driver calls `handle_timeout(now)` and the
    /// countdown starts from that `now`.
    Starting,
    /// Runs until this time.
    Until(Timestamp),
    /// Ran out.
    Expired,
}

/// What ran out at a `handle_timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expired {
    /// Nothing.
    None,
    /// The peer was silent for a ping interval: send a Ping.
    Ping,
    /// The peer was silent for the idle timeout: close with 1001.
    Idle,
}

/// A connection's deadlines: the heartbeat while it is open, the closing
/// countdown after. The durations are the connection's [`Timeouts`],
/// passed in (not copied: every connection would carry them twice).
#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    /// The latest time the driver reported; `None` until it reports one,
    /// and then no timer runs.
    now: Option<Timestamp>,
    /// Bytes arrived since the last reported time.
    heard: bool,
    /// When to send the next Ping, while open.
    ping_at: Option<Timestamp>,
    /// When a silent peer is taken for gone, while open.
    idle_at: Option<Timestamp>,
    /// The closing handshake's countdown.
    closing: Countdown,
}

impl Timers {
    /// Bytes arrived from the peer: it is alive.
    #[inline]
    pub(crate) fn heard(&mut self) {
        self.heard = true;
    }

    /// We sent a Close frame (or the connection ended): the heartbeat
    /// stops and the closing countdown starts.
    pub(crate) fn start_closing(&mut self, timeouts: &Timeouts) {
        self.ping_at = None;
        self.idle_at = None;
        if self.closing == Countdown::Off {
            self.closing = match timeouts.close {
                Some(_) => Countdown::Starting,
                None => Countdown::Off,
            };
        }
    }

    /// The closing countdown ran out.
    pub(crate) fn closing_expired(&self) -> bool {
        self.closing == Countdown::Expired
    }

    /// The driver reports the time; returns which heartbeat timer ran out
    /// (the caller acts on it). `open`: the connection still takes
    /// commands, so the heartbeat runs.
    pub(crate) fn handle_timeout(
        &mut self,
        timeouts: &Timeouts,
        now: Timestamp,
        open: bool,
    ) -> Expired {
        // A heartbeat period of zero would be due again at once, forever:
        // a millisecond is the shortest we run.
        let period = |t: Option<Duration>| t.map(|t| t.max(Duration::from_millis(1)));
        let (ping_interval, idle) = (period(timeouts.ping_interval), period(timeouts.idle));
        // A clock that went backwards is held where it was.
        let now = self.now.map_or(now, |last| last.max(now));
        let first = self.now.is_none();
        self.now = Some(now);
        if first || self.heard {
            self.heard = false;
            if open {
                self.ping_at = ping_interval.map(|t| now + t);
                self.idle_at = idle.map(|t| now + t);
            }
        }
        match self.closing {
            Countdown::Starting => {
                let close = timeouts
                    .close
                    .expect("a countdown starts only with a timeout");
                self.closing = Countdown::Until(now + close);
            }
            Countdown::Until(at) if now >= at => self.closing = Countdown::Expired,
            _ => {}
        }
        if !open {
            return Expired::None;
        }
        if self.idle_at.is_some_and(|at| now >= at) {
            return Expired::Idle;
        }
        if self.ping_at.is_some_and(|at| now >= at) {
            self.ping_at = ping_interval.map(|t| now + t);
            return Expired::Ping;
        }
        Expired::None
    }

    /// When the driver should next report the time; `None`: no timer runs.
    /// Always later than the last reported time, except for a countdown
    /// that an event started since, which is due at once.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        let now = self.now?;
        let closing = match self.closing {
            Countdown::Starting => return Some(now),
            Countdown::Until(at) => Some(at),
            Countdown::Off | Countdown::Expired => None,
        };
        [closing, self.ping_at, self.idle_at]
            .into_iter()
            .flatten()
            .min()
    }
}

/// The opening handshake's one deadline.
#[derive(Clone, Debug)]
pub(crate) struct HandshakeTimer {
    limit: Option<Duration>,
    /// The latest time reported, and the deadline once the first is.
    now: Option<Timestamp>,
    deadline: Option<Timestamp>,
}

impl HandshakeTimer {
    pub(crate) fn new(timeouts: &Timeouts) -> HandshakeTimer {
        HandshakeTimer {
            limit: timeouts.handshake,
            now: None,
            deadline: None,
        }
    }

    /// Reports the time; the first report starts the countdown. Returns
    /// whether the deadline has passed.
    pub(crate) fn handle_timeout(&mut self, now: Timestamp) -> bool {
        let now = self.now.map_or(now, |last| last.max(now));
        if self.now.is_none() {
            self.deadline = self.limit.map(|t| now + t);
        }
        self.now = Some(now);
        self.deadline.is_some_and(|at| now >= at)
    }

    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        self.deadline
    }

    /// The latest time reported, to hand to the connection.
    pub(crate) fn now(&self) -> Option<Timestamp> {
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts(ping: Option<u64>, idle: Option<u64>, close: Option<u64>) -> Timeouts {
        let ms = |v: Option<u64>| v.map(Duration::from_millis);
        Timeouts {
            handshake: None,
            close: ms(close),
            ping_interval: ms(ping),
            idle: ms(idle),
        }
    }

    #[test]
    fn no_timer_runs_before_the_first_time() {
        let to = timeouts(Some(10), Some(30), Some(5));
        let mut t = Timers::default();
        assert_eq!(t.poll_timeout(), None);
        t.start_closing(&to);
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn heartbeat_pings_each_silent_interval_then_goes_idle() {
        let to = timeouts(Some(10), Some(30), Some(5));
        let mut t = Timers::default();
        let at = Timestamp::from_millis;
        assert_eq!(t.handle_timeout(&to, at(0), true), Expired::None);
        assert_eq!(t.poll_timeout(), Some(at(10)));
        assert_eq!(t.handle_timeout(&to, at(10), true), Expired::Ping);
        assert_eq!(t.handle_timeout(&to, at(20), true), Expired::Ping);
        // Bytes arrive: the silence starts again from the next report.
        t.heard();
        assert_eq!(t.handle_timeout(&to, at(25), true), Expired::None);
        assert_eq!(t.poll_timeout(), Some(at(35)));
        assert_eq!(t.handle_timeout(&to, at(35), true), Expired::Ping);
        assert_eq!(t.handle_timeout(&to, at(45), true), Expired::Ping);
        assert_eq!(t.handle_timeout(&to, at(55), true), Expired::Idle);
    }

    #[test]
    fn a_countdown_started_by_an_event_is_due_at_once() {
        let to = timeouts(Some(10), None, Some(5));
        let mut t = Timers::default();
        t.handle_timeout(&to, Timestamp::from_millis(0), true);
        t.start_closing(&to);
        // Due now (the last reported time), so the driver reports at once.
        assert_eq!(t.poll_timeout(), Some(Timestamp::from_millis(0)));
        t.handle_timeout(&to, Timestamp::from_millis(100), false);
        assert_eq!(t.poll_timeout(), Some(Timestamp::from_millis(105)));
        assert!(!t.closing_expired());
        t.handle_timeout(&to, Timestamp::from_millis(105), false);
        assert!(t.closing_expired());
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn a_zero_period_is_a_millisecond() {
        let to = timeouts(Some(0), None, None);
        let mut t = Timers::default();
        t.handle_timeout(&to, Timestamp::from_millis(7), true);
        assert_eq!(t.poll_timeout(), Some(Timestamp::from_millis(8)));
    }

    #[test]
    fn a_clock_going_backwards_is_held() {
        let to = timeouts(Some(10), None, None);
        let mut t = Timers::default();
        t.handle_timeout(&to, Timestamp::from_millis(50), true);
        t.handle_timeout(&to, Timestamp::from_millis(20), true);
        assert_eq!(t.poll_timeout(), Some(Timestamp::from_millis(60)));
    }
}
