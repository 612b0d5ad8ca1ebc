//! The deadlines a connection and a handshake keep (feature `timers`).

use core::time::Duration;

use super::{Expired, Timeouts, Timestamp};

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
