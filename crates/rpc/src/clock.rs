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
/// business day turning at Stockholm midnight). Each move wakes whoever waits for one
/// ([`Clock::wake_on_move`]), so a watch sleeping until an expiry sees a test move past it.
#[derive(Debug)]
pub struct ManualClock {
    state: std::sync::Mutex<ManualState>,
}

#[derive(Debug)]
struct ManualState {
    now: DateTime<Utc>,
    moves: u64,
    waiting: Vec<std::task::Waker>,
}

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            state: std::sync::Mutex::new(ManualState {
                now,
                moves: 0,
                waiting: Vec::new(),
            }),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        self.set(self.now() + by);
    }

    /// Puts the clock at `now`.
    pub fn set(&self, now: DateTime<Utc>) {
        let waiting = {
            let mut state = self.lock();
            state.now = now;
            state.moves += 1;
            std::mem::take(&mut state.waiting)
        };
        for waker in waiting {
            waker.wake();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    fn moves(&self) -> u64 {
        self.lock().moves
    }

    fn wake_on_move(&self, waker: &std::task::Waker) {
        let mut state = self.lock();
        // One entry per waiting task, however often it asks.
        if !state.waiting.iter().any(|waiting| waiting.will_wake(waker)) {
            state.waiting.push(waker.clone());
        }
    }
}
