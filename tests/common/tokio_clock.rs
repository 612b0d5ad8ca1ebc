//! The embedded adapter's clock in tests: tokio's, which tests can pause.

use std::sync::OnceLock;

use rfc6455::Timestamp;

/// A `rfc6455::embedded::Clock` on tokio's time.
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
