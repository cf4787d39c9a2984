//! The ledger's notion of "now" and "today", injectable so tests can control it (the expiry of
//! green-light decisions, the business day turning at Stockholm midnight). The clocks are
//! `rpc::clock`'s, shared with the agency services; this module keeps the ledger's paths, and
//! how a task waits for the business day to turn by whichever clock it was given.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use chrono::NaiveDate;
pub use domain::clock::next_business_day_start;
pub use rpc::clock::{business_date, Clock, ManualClock, SystemClock};

/// Resolves once `clock`'s business day is no longer `today`: at the next Stockholm midnight
/// by real time, or as soon as a test moves a manual clock to another day (either way).
pub async fn day_turns(clock: &dyn Clock, today: NaiveDate) {
    loop {
        let moves = clock.moves();
        let now = clock.now();
        if business_date(now) != today {
            return;
        }
        // Real time runs on; `now` is re-read after the sleep, so an early wake only loops.
        let remaining = (next_business_day_start(today) - now)
            .to_std()
            .unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(remaining) => {}
            () = Moved { clock, seen: moves } => {}
        }
    }
}

/// Resolves when `clock` is moved by hand after its move count was `seen`.
struct Moved<'a> {
    clock: &'a dyn Clock,
    seen: u64,
}

impl Future for Moved<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        if self.clock.moves() != self.seen {
            return Poll::Ready(());
        }
        self.clock.wake_on_move(context.waker());
        // A move between the first look and the registration must not be slept through.
        if self.clock.moves() != self.seen {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_manual_clock_moved_past_midnight_ends_the_wait_at_once() {
        let start = chrono::DateTime::parse_from_rfc3339("2026-05-04T21:59:00Z")
            .map(|time| time.with_timezone(&chrono::Utc))
            .unwrap_or_default();
        let clock = Arc::new(ManualClock::new(start));
        let today = clock.today();
        let waiting = tokio::spawn({
            let clock = clock.clone();
            async move { day_turns(&*clock, today).await }
        });
        // A move within the day does not end it.
        clock.advance(chrono::Duration::seconds(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the day has not turned yet");
        clock.advance(chrono::Duration::seconds(31));
        let ended = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(
            matches!(ended, Ok(Ok(()))),
            "the wait ends when the day turns"
        );
    }
}
