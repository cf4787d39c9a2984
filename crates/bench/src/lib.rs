//! Benchmark programs (not tests): each prints its figures next to the raw ceiling measured in
//! the same run on the same machine, so a number is never read without its context. Run them
//! with `cargo run --release -p bench --bin <name>`.

use std::time::Duration;

/// Percentile (0–100) of a sorted slice of durations.
pub fn percentile(sorted: &[Duration], percent: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((percent / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Events per second.
pub fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}
