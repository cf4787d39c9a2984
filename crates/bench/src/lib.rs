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

/// The program's numeric arguments, in order (anything else is skipped).
pub fn numeric_arguments() -> Vec<usize> {
    std::env::args()
        .skip(1)
        .filter_map(|argument| argument.parse().ok())
        .collect()
}

/// Events per second.
pub fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// Raw ceilings measured in the same run as a benchmark, on its fresh database and stream.
pub mod ceilings {
    use std::time::{Duration, Instant};

    use sqlx::Connection;

    fn payload() -> String {
        format!(
            "{{\"envelope\":{{\"event_id\":\"{}\",\"agency\":\"municipality\"}},\"body\":{{\"type\":\"ParticipantReferred\",\"source\":\"ifo\"}},\"pad\":\"{}\"}}",
            uuid::Uuid::now_v7(),
            "x".repeat(400)
        )
    }

    /// `rows` single-row inserts, each its own transaction, on one connection.
    pub async fn postgres_insert_loop(database_url: &str, rows: usize) -> anyhow::Result<Duration> {
        let mut connection = sqlx::PgConnection::connect(database_url).await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS probe_rows (id bigserial PRIMARY KEY, payload jsonb NOT NULL)").execute(&mut connection).await?;
        let payload = payload();
        let started = Instant::now();
        for _ in 0..rows {
            sqlx::query("INSERT INTO probe_rows (payload) VALUES ($1::jsonb)")
                .bind(&payload)
                .execute(&mut connection)
                .await?;
        }
        Ok(started.elapsed())
    }

    /// `messages` JetStream publishes, each ack awaited before the next, on a scratch stream.
    pub async fn jetstream_publish_loop(
        bus_config: &bus::BusConfig,
        messages: usize,
    ) -> anyhow::Result<Duration> {
        let client = bus::connect(bus_config, "probe").await?;
        let jetstream = async_nats::jetstream::new(client);
        let config = async_nats::jetstream::stream::Config {
            name: format!("{}_RAW", bus_config.stream_name),
            subjects: vec![format!("{}.raw", bus_config.subject_prefix)],
            max_age: Duration::from_secs(3600),
            ..Default::default()
        };
        jetstream.get_or_create_stream(config.clone()).await?;
        let payload = payload().into_bytes();
        let started = Instant::now();
        for _ in 0..messages {
            jetstream
                .publish(
                    format!("{}.raw", bus_config.subject_prefix),
                    payload.clone().into(),
                )
                .await?
                .await?;
        }
        let elapsed = started.elapsed();
        let _ = jetstream.delete_stream(&config.name).await;
        Ok(elapsed)
    }
}
