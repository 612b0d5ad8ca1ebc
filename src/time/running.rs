//! The deadlines a connection and a handshake keep (feature `timers`).

use core::time::Duration;

use super::{Expired, Timeouts, Timestamp};

/// A time since the epoch or a period, in nanoseconds, or [`NEVER`](Nanos::NEVER):
/// 8 bytes where an `Option<Timestamp>` takes 16, in a struct that every
/// connection carries. 584 years fit; a deadline later than that is as
/// good as none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Nanos(u64);

impl Nanos {
    const NEVER: Nanos = Nanos(u64::MAX);

    fn of(d: Duration) -> Nanos {
        Nanos(u64::try_from(d.as_nanos()).map_or(u64::MAX - 1, |n| n.min(u64::MAX - 1)))
    }

    /// A period of the heartbeat or the closing countdown. One of zero
    /// would be due again at once, forever: a millisecond is the shortest
    /// we run.
    fn period(d: Option<Duration>) -> Nanos {
        d.map_or(Nanos::NEVER, |d| Nanos::of(d.max(Duration::from_millis(1))))
    }

    /// `period` after this time ([`NEVER`](Nanos::NEVER) if it is).
    fn after(self, period: Nanos) -> Nanos {
        if period == Nanos::NEVER || self == Nanos::NEVER {
            return Nanos::NEVER;
        }
        Nanos(self.0.saturating_add(period.0).min(u64::MAX - 1))
    }

    fn is_set(self) -> bool {
        self != Nanos::NEVER
    }

    fn timestamp(self) -> Option<Timestamp> {
        self.is_set()
            .then(|| Timestamp::from_duration(Duration::from_nanos(self.0)))
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
    /// Runs until `Timers::closing_at`.
    Running,
    /// Ran out.
    Expired,
}

/// A connection's deadlines: the heartbeat while it is open, the closing
/// countdown after, with the periods of the connection's [`Timeouts`].
#[derive(Clone, Debug)]
pub(crate) struct Timers {
    /// [`Timeouts::ping_interval`].
    ping_every: Nanos,
    /// [`Timeouts::idle`].
    idle_after: Nanos,
    /// [`Timeouts::close`].
    close_after: Nanos,
    /// The latest time the driver reported; `NEVER` until it reports one,
    /// and until then no timer runs.
    now: Nanos,
    /// When to send the next Ping, while open.
    ping_at: Nanos,
    /// When a silent peer is taken for gone, while open.
    idle_at: Nanos,
    /// When the closing countdown runs out, once it runs.
    closing_at: Nanos,
    /// The closing handshake's countdown.
    closing: Countdown,
    /// Bytes arrived since the last reported time.
    heard: bool,
}

impl Timers {
    /// The timers of a connection with these timeouts, none running yet.
    pub(crate) fn new(timeouts: &Timeouts) -> Timers {
        Timers {
            ping_every: Nanos::period(timeouts.ping_interval),
            idle_after: Nanos::period(timeouts.idle),
            close_after: Nanos::period(timeouts.close),
            now: Nanos::NEVER,
            ping_at: Nanos::NEVER,
            idle_at: Nanos::NEVER,
            closing_at: Nanos::NEVER,
            closing: Countdown::Off,
            heard: false,
        }
    }

    /// Bytes arrived from the peer: it is alive.
    #[inline]
    pub(crate) fn heard(&mut self) {
        self.heard = true;
    }

    /// We sent a Close frame (or the connection ended): the heartbeat
    /// stops and the closing countdown starts.
    pub(crate) fn start_closing(&mut self) {
        self.ping_at = Nanos::NEVER;
        self.idle_at = Nanos::NEVER;
        if self.closing == Countdown::Off && self.close_after.is_set() {
            self.closing = Countdown::Starting;
        }
    }

    /// The closing countdown ran out.
    pub(crate) fn closing_expired(&self) -> bool {
        self.closing == Countdown::Expired
    }

    /// The driver reports the time; returns which heartbeat timer ran out
    /// (the caller acts on it). `open`: the connection still takes
    /// commands, so the heartbeat runs.
    pub(crate) fn handle_timeout(&mut self, now: Timestamp, open: bool) -> Expired {
        let now = Nanos::of(now.since_epoch());
        // A clock that went backwards is held where it was.
        let first = !self.now.is_set();
        let now = if first { now } else { self.now.max(now) };
        self.now = now;
        if first || self.heard {
            self.heard = false;
            if open {
                self.ping_at = now.after(self.ping_every);
                self.idle_at = now.after(self.idle_after);
            }
        }
        match self.closing {
            Countdown::Starting => {
                self.closing_at = now.after(self.close_after);
                self.closing = Countdown::Running;
            }
            Countdown::Running if now >= self.closing_at => self.closing = Countdown::Expired,
            _ => {}
        }
        if !open {
            return Expired::None;
        }
        if now >= self.idle_at {
            return Expired::Idle;
        }
        if now >= self.ping_at {
            self.ping_at = now.after(self.ping_every);
            return Expired::Ping;
        }
        Expired::None
    }

    /// When the driver should next report the time; `None`: no timer runs.
    /// Always later than the last reported time, except for a countdown
    /// that an event started since, which is due at once.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        if !self.now.is_set() {
            return None;
        }
        let closing = match self.closing {
            Countdown::Starting => return self.now.timestamp(),
            Countdown::Running => self.closing_at,
            Countdown::Off | Countdown::Expired => Nanos::NEVER,
        };
        closing.min(self.ping_at).min(self.idle_at).timestamp()
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
        let mut t = Timers::new(&to);
        assert_eq!(t.poll_timeout(), None);
        t.start_closing();
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn heartbeat_pings_each_silent_interval_then_goes_idle() {
        let to = timeouts(Some(10), Some(30), Some(5));
        let mut t = Timers::new(&to);
        let at = Timestamp::from_millis;
        assert_eq!(t.handle_timeout(at(0), true), Expired::None);
        assert_eq!(t.poll_timeout(), Some(at(10)));
        assert_eq!(t.handle_timeout(at(10), true), Expired::Ping);
        assert_eq!(t.handle_timeout(at(20), true), Expired::Ping);
        // Bytes arrive: the silence starts again from the next report.
        t.heard();
        assert_eq!(t.handle_timeout(at(25), true), Expired::None);
        assert_eq!(t.poll_timeout(), Some(at(35)));
        assert_eq!(t.handle_timeout(at(35), true), Expired::Ping);
        assert_eq!(t.handle_timeout(at(45), true), Expired::Ping);
        assert_eq!(t.handle_timeout(at(55), true), Expired::Idle);
    }

    #[test]
    fn a_countdown_started_by_an_event_is_due_at_once() {
        let to = timeouts(Some(10), None, Some(5));
        let mut t = Timers::new(&to);
        t.handle_timeout(Timestamp::from_millis(0), true);
        t.start_closing();
        // Due now (the last reported time), so the driver reports at once.
        assert_eq!(t.poll_timeout(), Some(Timestamp::from_millis(0)));
        t.handle_timeout(Timestamp::from_millis(100), false);
        assert_eq!(t.poll_timeout(), Some(Timestamp::from_millis(105)));
        assert!(!t.closing_expired());
        t.handle_timeout(Timestamp::from_millis(105), false);
        assert!(t.closing_expired());
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn a_zero_period_is_a_millisecond() {
        let to = timeouts(Some(0), None, None);
        let mut t = Timers::new(&to);
        t.handle_timeout(Timestamp::from_millis(7), true);
        assert_eq!(t.poll_timeout(), Some(Timestamp::from_millis(8)));
    }

    #[test]
    fn a_clock_going_backwards_is_held() {
        let to = timeouts(Some(10), None, None);
        let mut t = Timers::new(&to);
        t.handle_timeout(Timestamp::from_millis(50), true);
        t.handle_timeout(Timestamp::from_millis(20), true);
        assert_eq!(t.poll_timeout(), Some(Timestamp::from_millis(60)));
    }
}
