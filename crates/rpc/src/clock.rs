//! The clocks services are given: the system clock in production, a manual clock in tests.
//!
//! Every decision by "now" or "today" (the business day, [`domain::business_date`]) reads the
//! clock a service was started with, never the system time directly, so a test can put a
//! service at any instant: just after Stockholm midnight, at the end of an approval's validity.
//! The trait is the domain's (pure); the implementations live here because both the ledger and
//! the agency services depend on this crate, and the domain may not read a clock.
//!
//! Officer tokens are the one exception: their validity is checked against the system clock,
//! because the issuer stamps them with real time, and a test that moves business time must not
//! turn its own credentials invalid.

use chrono::{DateTime, Utc};
pub use domain::clock::{business_date, Clock, BUSINESS_TIME_ZONE};

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to: for tests of time-driven behaviour (expiry, the
/// business day turning at Stockholm midnight).
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now: std::sync::Mutex::new(now),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        self.set(self.now() + by);
    }

    /// Puts the clock at `now`.
    pub fn set(&self, now: DateTime<Utc>) {
        match self.now.lock() {
            Ok(mut shown) => *shown = now,
            Err(poisoned) => *poisoned.into_inner() = now,
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.now
            .lock()
            .map(|now| *now)
            .unwrap_or_else(|poisoned| *poisoned.into_inner())
    }
}
