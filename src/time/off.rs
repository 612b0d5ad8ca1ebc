//! The deadlines without the `timers` feature: the same calls as
//! `running`'s, and none of them ever runs out. A driver that tells the
//! time is still correct; it is told no deadline (`poll_timeout` is
//! `None`), so it sleeps until bytes arrive.

use super::{Expired, Timeouts, Timestamp};

/// A connection's deadlines, none of which runs.
#[derive(Clone, Debug)]
pub(crate) struct Timers;

impl Timers {
    #[inline(always)]
    pub(crate) fn new(_: &Timeouts) -> Timers {
        Timers
    }

    #[inline(always)]
    pub(crate) fn heard(&mut self) {}

    #[inline(always)]
    pub(crate) fn start_closing(&mut self) {}

    #[inline(always)]
    pub(crate) fn closing_expired(&self) -> bool {
        false
    }

    #[inline(always)]
    pub(crate) fn handle_timeout(&mut self, _: Timestamp, _: bool) -> Expired {
        Expired::None
    }

    #[inline(always)]
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        None
    }
}

/// The opening handshake's deadline, which never comes.
#[derive(Clone, Debug)]
pub(crate) struct HandshakeTimer;

impl HandshakeTimer {
    #[inline(always)]
    pub(crate) fn new(_: &Timeouts) -> HandshakeTimer {
        HandshakeTimer
    }

    #[inline(always)]
    pub(crate) fn handle_timeout(&mut self, _: Timestamp) -> bool {
        false
    }

    #[inline(always)]
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        None
    }

    #[inline(always)]
    pub(crate) fn now(&self) -> Option<Timestamp> {
        None
    }
}
