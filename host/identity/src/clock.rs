//! Where the host reads time: the system clock, or one tests move by hand.

use std::sync::atomic::{AtomicU64, Ordering};

/// Where the host reads time. Tests use [`ManualClock`].
pub trait Clock: Send + Sync {
    /// The current time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// The current time in whole seconds since the Unix epoch (rounded down):
    /// the unit of token claims and stored records.
    fn now(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock tests move by hand.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock at `secs`.
    pub fn at(secs: u64) -> Self {
        Self(AtomicU64::new(secs.saturating_mul(1000)))
    }
    /// Moves the clock forward by `secs` seconds.
    pub fn advance(&self, secs: u64) {
        self.0
            .fetch_add(secs.saturating_mul(1000), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
