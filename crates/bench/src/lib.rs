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

/// CPU time the whole machine spent busy (every process: the probe, PostgreSQL's backends,
/// nats-server), from `/proc/stat` (clock ticks of 10 ms, so read it over a second or more);
/// `None` where `/proc/stat` cannot be read. On a machine with few cores, a path's wall time
/// beside its busy time tells whether it waited or was short of CPU.
pub fn machine_busy() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let totals = text.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = totals
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user, nice, system, idle, iowait, irq, softirq, steal: all but idle and iowait are busy.
    let busy_ticks: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|field| ticks.get(*field))
        .sum();
    Some(Duration::from_millis(busy_ticks.saturating_mul(10)))
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

    /// One row of the events table as the whole path stores it (the probe samples these from
    /// its own run), with `{EVENT_ID}` where the payload names its event id: the table derives
    /// a unique column from it, so every inserted row gets a new one.
    #[derive(Clone, Debug)]
    pub struct EventRowTemplate {
        /// `aggregate_type`.
        pub aggregate_type: String,
        /// `event_type`.
        pub event_type: String,
        /// `event_version`.
        pub event_version: String,
        /// `payload` (JSON text) with the placeholder.
        pub payload: String,
        /// `metadata` (JSON text).
        pub metadata: String,
    }

    /// The placeholder for the event id in [`EventRowTemplate::payload`].
    pub const EVENT_ID_PLACEHOLDER: &str = "{EVENT_ID}";

    /// Rows stored by a run, as templates (at most `rows_max`).
    pub async fn sample_event_rows(
        pool: &sqlx::PgPool,
        rows_max: i64,
    ) -> anyhow::Result<Vec<EventRowTemplate>> {
        let rows: Vec<(String, String, String, String, String, Option<uuid::Uuid>)> =
            sqlx::query_as(
                "SELECT aggregate_type, event_type, event_version, payload::text, metadata::text, event_id
                 FROM events ORDER BY global_position LIMIT $1",
            )
            .bind(rows_max)
            .fetch_all(pool)
            .await?;
        let templates: Vec<EventRowTemplate> = rows
            .into_iter()
            .map(
                |(aggregate_type, event_type, event_version, payload, metadata, event_id)| {
                    let payload = match event_id {
                        Some(event_id) => {
                            payload.replace(&event_id.to_string(), EVENT_ID_PLACEHOLDER)
                        }
                        None => payload,
                    };
                    EventRowTemplate {
                        aggregate_type,
                        event_type,
                        event_version,
                        payload,
                        metadata,
                    }
                },
            )
            .collect();
        anyhow::ensure!(!templates.is_empty(), "no stored rows to take as templates");
        Ok(templates)
    }

    /// What one ceiling loop did.
    #[derive(Clone, Copy, Debug)]
    pub struct Measured {
        /// Rows, events or messages completed.
        pub count: usize,
        /// How long it ran.
        pub elapsed: Duration,
    }

    impl Measured {
        /// Per second.
        pub fn rate(&self) -> f64 {
            crate::rate(self.count, self.elapsed)
        }
    }

    /// Inserts rows shaped like the whole path's (same table definition: run it on a migrated
    /// scratch database) for `duration`, on `connections` connections, `rows_per_transaction`
    /// rows per transaction (one multi-row INSERT each), ten rows per aggregate as the probe's
    /// clients write them. Each transaction commits with the server's fsync and
    /// synchronous_commit settings.
    pub async fn events_table_insert(
        database_url: &str,
        templates: &[EventRowTemplate],
        connections: usize,
        rows_per_transaction: usize,
        duration: Duration,
    ) -> anyhow::Result<Measured> {
        let deadline = Instant::now() + duration;
        let started = Instant::now();
        let workers = (0..connections).map(|_| async move {
            let mut connection = sqlx::PgConnection::connect(database_url).await?;
            let mut inserted = 0_usize;
            let mut aggregate_id = uuid::Uuid::new_v4().to_string();
            let mut sequence: i64 = 0;
            while Instant::now() < deadline {
                let mut aggregate_types = Vec::with_capacity(rows_per_transaction);
                let mut aggregate_ids = Vec::with_capacity(rows_per_transaction);
                let mut sequences = Vec::with_capacity(rows_per_transaction);
                let mut event_types = Vec::with_capacity(rows_per_transaction);
                let mut event_versions = Vec::with_capacity(rows_per_transaction);
                let mut payloads = Vec::with_capacity(rows_per_transaction);
                let mut metadata = Vec::with_capacity(rows_per_transaction);
                for _ in 0..rows_per_transaction {
                    if sequence == 10 {
                        aggregate_id = uuid::Uuid::new_v4().to_string();
                        sequence = 0;
                    }
                    sequence += 1;
                    let template = &templates[(inserted + aggregate_ids.len()) % templates.len()];
                    aggregate_types.push(template.aggregate_type.clone());
                    aggregate_ids.push(aggregate_id.clone());
                    sequences.push(sequence);
                    event_types.push(template.event_type.clone());
                    event_versions.push(template.event_version.clone());
                    payloads.push(
                        template
                            .payload
                            .replace(EVENT_ID_PLACEHOLDER, &uuid::Uuid::new_v4().to_string()),
                    );
                    metadata.push(template.metadata.clone());
                }
                if rows_per_transaction == 1 {
                    // postgres-es's own statement, one row, its own transaction.
                    sqlx::query(
                        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)",
                    )
                    .bind(&aggregate_types[0])
                    .bind(&aggregate_ids[0])
                    .bind(sequences[0])
                    .bind(&event_types[0])
                    .bind(&event_versions[0])
                    .bind(&payloads[0])
                    .bind(&metadata[0])
                    .execute(&mut connection)
                    .await?;
                } else {
                    sqlx::query(
                        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                         SELECT t, a, s, e, v, p::jsonb, m::jsonb
                         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
                              AS rows (t, a, s, e, v, p, m)",
                    )
                    .bind(&aggregate_types)
                    .bind(&aggregate_ids)
                    .bind(&sequences)
                    .bind(&event_types)
                    .bind(&event_versions)
                    .bind(&payloads)
                    .bind(&metadata)
                    .execute(&mut connection)
                    .await?;
                }
                inserted += rows_per_transaction;
            }
            anyhow::Ok(inserted)
        });
        let mut count = 0;
        for inserted in futures::future::join_all(workers).await {
            count += inserted?;
        }
        Ok(Measured {
            count,
            elapsed: started.elapsed(),
        })
    }

    /// Publishes to a scratch stream made with the project's own stream settings
    /// (`bus::setup::stream_config`: file storage, the subject transform, dedupe window,
    /// replicas) for `duration`, each message with its own message id, `concurrency` publishes
    /// in flight, each ack awaited. Returns the count and each publish's latency.
    pub async fn jetstream_publish_project_stream(
        bus_config: &bus::BusConfig,
        payload_bytes: usize,
        concurrency: usize,
        duration: Duration,
    ) -> anyhow::Result<(Measured, Vec<Duration>)> {
        let scratch = bus::BusConfig {
            stream_name: format!("{}_RAW", bus_config.stream_name),
            subject_prefix: format!("{}raw", bus_config.subject_prefix),
            ..bus_config.clone()
        };
        let client = bus::connect(&scratch, "probe").await?;
        let jetstream = async_nats::jetstream::new(client);
        let stream_config = bus::setup::stream_config(&scratch);
        let _ = jetstream.delete_stream(&stream_config.name).await;
        jetstream.create_stream(stream_config.clone()).await?;
        let subjects = bus::Subjects::new(&scratch.subject_prefix);
        let payload = bytes::Bytes::from(vec![b'x'; payload_bytes]);
        let deadline = Instant::now() + duration;
        let started = Instant::now();
        let workers = (0..concurrency).map(|_| {
            let jetstream = jetstream.clone();
            let subjects = subjects.clone();
            let payload = payload.clone();
            async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let subject = subjects.event(
                        domain::Agency::Municipality,
                        domain::ParticipantId(uuid::Uuid::new_v4()),
                    );
                    let publish_started = Instant::now();
                    jetstream
                        .send_publish(
                            subject,
                            async_nats::jetstream::message::PublishMessage::build()
                                .payload(payload.clone())
                                .message_id(uuid::Uuid::new_v4().to_string()),
                        )
                        .await?
                        .await?;
                    latencies.push(publish_started.elapsed());
                }
                anyhow::Ok(latencies)
            }
        });
        let mut latencies = Vec::new();
        for worker in futures::future::join_all(workers).await {
            latencies.extend(worker?);
        }
        let elapsed = started.elapsed();
        let _ = jetstream.delete_stream(&stream_config.name).await;
        latencies.sort();
        Ok((
            Measured {
                count: latencies.len(),
                elapsed,
            },
            latencies,
        ))
    }

    /// Bare cqrs-es + postgres-es: an aggregate that decides nothing, one event per command,
    /// ten per aggregate (each command loads the aggregate's events, as postgres-es does),
    /// `tasks` tasks on a pool of as many connections, for `duration`.
    pub async fn cqrs_es_append(
        database_url: &str,
        payload_bytes: usize,
        tasks: usize,
        duration: Duration,
    ) -> anyhow::Result<Measured> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(u32::try_from(tasks).unwrap_or(u32::MAX))
            .connect(database_url)
            .await?;
        let cqrs = std::sync::Arc::new(postgres_es::postgres_cqrs::<bare::Counter>(
            pool.clone(),
            Vec::new(),
            (),
        ));
        let pad = "x".repeat(payload_bytes);
        let deadline = Instant::now() + duration;
        let started = Instant::now();
        let workers = (0..tasks).map(|_| {
            let cqrs = cqrs.clone();
            let pad = pad.clone();
            async move {
                let mut appended = 0_usize;
                let mut aggregate_id = uuid::Uuid::new_v4().to_string();
                while Instant::now() < deadline {
                    if appended.is_multiple_of(10) {
                        aggregate_id = uuid::Uuid::new_v4().to_string();
                    }
                    cqrs.execute(&aggregate_id, bare::Append { pad: pad.clone() })
                        .await
                        .map_err(|error| anyhow::anyhow!("cqrs-es: {error}"))?;
                    appended += 1;
                }
                anyhow::Ok(appended)
            }
        });
        let mut count = 0;
        for appended in futures::future::join_all(workers).await {
            count += appended?;
        }
        let elapsed = started.elapsed();
        pool.close().await;
        Ok(Measured { count, elapsed })
    }

    /// The aggregate of [`cqrs_es_append`]: no rules, only an event count.
    mod bare {
        use cqrs_es::event_sink::EventSink;
        use cqrs_es::{Aggregate, DomainEvent};
        use serde::{Deserialize, Serialize};

        #[derive(Debug, Default, Serialize, Deserialize)]
        pub(super) struct Counter {
            appended: u64,
        }

        pub(super) struct Append {
            pub(super) pad: String,
        }

        /// Shaped like a stored participant event where the table looks (the event id is
        /// what its unique column derives from).
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub(super) struct Appended {
            envelope: Envelope,
            pad: String,
        }

        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        struct Envelope {
            event_id: uuid::Uuid,
        }

        impl DomainEvent for Appended {
            fn event_type(&self) -> String {
                "Appended".into()
            }

            fn event_version(&self) -> String {
                "1".into()
            }
        }

        #[derive(Debug, thiserror::Error)]
        #[error("never")]
        pub(super) struct Never;

        impl Aggregate for Counter {
            const TYPE: &'static str = "ProbeCounter";
            type Command = Append;
            type Event = Appended;
            type Error = Never;
            type Services = ();

            async fn handle(
                &mut self,
                command: Append,
                _services: &(),
                sink: &EventSink<Self>,
            ) -> Result<(), Never> {
                let event = Appended {
                    envelope: Envelope {
                        event_id: uuid::Uuid::new_v4(),
                    },
                    pad: command.pad,
                };
                sink.write(event, self).await;
                Ok(())
            }

            fn apply(&mut self, _event: Appended) {
                self.appended += 1;
            }
        }
    }
}
