//! The one notion of "today" the rules use, and the trait every service's clock implements.
//!
//! A rule that asks for a day (a consent in force today, an approval that has expired, a
//! follow-up due) means the Swedish calendar day, not the UTC one: otherwise a consent valid
//! through the 30th would stop at 01:00 or 02:00 on the 30th in Stockholm, and an approval
//! would expire an hour or two early. Every timestamp that becomes a day goes through
//! [`business_date`], so the ledger, the agency services and the read models agree on the day.
//!
//! The trait lives here because it is pure (nothing here reads a clock: the domain is handed
//! instants and days); the system clock and the manual test clock live in `rpc::clock`, which
//! both the ledger and the agency services depend on.

use chrono::{DateTime, NaiveDate, Utc};

/// The time zone whose calendar day is the business day: Sweden's, with its summer time.
pub const BUSINESS_TIME_ZONE: chrono_tz::Tz = chrono_tz::Europe::Stockholm;

/// The business day (the Stockholm calendar date) at the instant `at`.
pub fn business_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&BUSINESS_TIME_ZONE).date_naive()
}

/// A source of the current instant. Services receive one (the system clock in production, a
/// manual clock in tests), so every decision by "now" or "today" can be tested at any moment.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// The current business day: [`business_date`] of [`Clock::now`].
    fn today(&self) -> NaiveDate {
        business_date(self.now())
    }

    /// How many times the clock was moved by hand: always 0 for a clock that follows real
    /// time. A task waiting for an instant (a watch sleeping until an approval expires)
    /// compares it around [`Clock::wake_on_move`] to notice a test moving time, which no
    /// real-time sleep would.
    fn moves(&self) -> u64 {
        0
    }

    /// Has `waker` woken at the clock's next move by hand (never, for a clock that follows
    /// real time).
    fn wake_on_move(&self, _waker: &std::task::Waker) {}
}

/// The instant the business day after `day` begins: Stockholm midnight, in UTC. Every
/// time-driven status (an expiry, "expiring within 5 days", a SIP turning overdue, a consent
/// ending) is a function of the business day, so this is when the next one can change.
pub fn next_business_day_start(day: NaiveDate) -> DateTime<Utc> {
    use chrono::TimeZone;
    let next = day
        .succ_opt()
        .unwrap_or(day)
        .and_time(chrono::NaiveTime::MIN);
    match BUSINESS_TIME_ZONE.from_local_datetime(&next).earliest() {
        Some(start) => start.with_timezone(&Utc),
        // Stockholm's clock changes at 02:00 and 03:00, so midnight always exists; should a
        // zone ever skip it, the day begins no later than at midnight UTC + 1 hour.
        None => next.and_utc() + chrono::Duration::hours(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn the_next_business_day_starts_at_stockholm_midnight() {
        // Summer time, winter time, and the nights the clocks change: the day after still
        // begins at local midnight.
        for (business_day, next_start) in [
            ("2026-03-30", "2026-03-30T22:00:00Z"),
            ("2026-01-15", "2026-01-15T23:00:00Z"),
            ("2026-03-28", "2026-03-28T23:00:00Z"),
            ("2026-03-29", "2026-03-29T22:00:00Z"),
            ("2026-10-25", "2026-10-25T23:00:00Z"),
        ] {
            assert_eq!(
                next_business_day_start(day(business_day)),
                at(next_start),
                "{business_day}"
            );
        }
        for start in ["2026-03-30", "2026-10-24", "2026-10-25"] {
            let start = next_business_day_start(day(start));
            assert_eq!(
                business_date(start - chrono::Duration::seconds(1)) + chrono::Days::new(1),
                business_date(start)
            );
        }
    }

    #[test]
    fn the_business_day_turns_at_stockholm_midnight_in_summer_and_winter() {
        // Summer time (UTC+2): midnight is 22:00 UTC.
        assert_eq!(business_date(at("2026-03-30T21:59:59Z")), day("2026-03-30"));
        assert_eq!(business_date(at("2026-03-30T22:00:00Z")), day("2026-03-31"));
        assert_eq!(business_date(at("2026-03-30T22:30:00Z")), day("2026-03-31"));
        // Winter time (UTC+1): midnight is 23:00 UTC.
        assert_eq!(business_date(at("2026-01-15T22:59:59Z")), day("2026-01-15"));
        assert_eq!(business_date(at("2026-01-15T23:30:00Z")), day("2026-01-16"));
        // The nights the clocks change: 2026-03-29 (02:00 → 03:00) and 2026-10-25 (03:00 → 02:00).
        assert_eq!(business_date(at("2026-03-28T23:00:00Z")), day("2026-03-29"));
        assert_eq!(business_date(at("2026-03-29T21:59:59Z")), day("2026-03-29"));
        assert_eq!(business_date(at("2026-03-29T22:00:00Z")), day("2026-03-30"));
        assert_eq!(business_date(at("2026-10-24T21:59:59Z")), day("2026-10-24"));
        assert_eq!(business_date(at("2026-10-24T22:00:00Z")), day("2026-10-25"));
        assert_eq!(business_date(at("2026-10-25T22:59:59Z")), day("2026-10-25"));
        assert_eq!(business_date(at("2026-10-25T23:00:00Z")), day("2026-10-26"));
    }

    struct Fixed(DateTime<Utc>);

    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    #[test]
    fn a_clock_s_today_is_the_business_day_not_the_utc_date() {
        let clock = Fixed(at("2026-11-28T23:14:00Z"));
        assert_eq!(clock.today(), day("2026-11-29"));
        assert_ne!(clock.today(), clock.now().date_naive());
    }
}
