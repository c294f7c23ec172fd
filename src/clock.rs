//! The injected clock. Every time the product uses comes from here, so the same
//! mail at the same `--now` gives the same reply bytes. (Ids are injected the
//! same way: server-trids and handles come from sequences in the store, so they
//! depend only on the database's state.)

use chrono::{DateTime, Utc};

/// A source of the current instant.
pub trait Clock: std::fmt::Debug + Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock, truncated to milliseconds (the precision of replies).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
    }
}

/// A fixed instant (`--now`, tests, replays).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}
