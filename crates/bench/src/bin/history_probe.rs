//! History probe: what one more event costs a participant with a long history against one with
//! a short history, with the ledger's aggregate cache warm and with it off (every delivery
//! loads and folds the whole history, as before the cache), printed side by side with the
//! ratio and beside the bare one-row PostgreSQL transaction measured in the same run; then the
//! process's RSS once many participants have passed through the cache, beside its budget.
//!
//! `cargo run --release -p bench --bin history_probe -- [long_entries] [samples]
//! [participants_through_cache]` (defaults 10000, 30 and 100000). The ledger runs in this
//! process (as in the other probes), on a fresh database and stream; one append is timed from
//! the publish to its verdict, as an agency service waits for it.

use std::time::{Duration, Instant};

use bench::percentile;
use domain::{EventBody, PersonId, Submission, UnitId};
use futures::future::join_all;

const SHORT_ENTRIES: usize = 10;
const VERDICT_WAIT: Duration = Duration::from_secs(60);

fn enrolment(participant_id: domain::ParticipantId) -> Submission {
    testkit::coach_submission(
        participant_id,
        EventBody::ParticipantEnrolled {
            unit: UnitId("hudiksvall-ips".into()),
            coach: PersonId("coach-17".into()),
        },
    )
}

fn employer_contact(participant_id: domain::ParticipantId, index: usize) -> Submission {
    testkit::coach_submission(
        participant_id,
        EventBody::EmployerContactMade {
            employer: format!("Employer {index}"),
            face_to_face: index.is_multiple_of(2),
            with_participant: false,
        },
    )
}

/// A history of `entries`: referral, enrolment, then employer contacts.
fn history(participant_id: domain::ParticipantId, entries: usize) -> Vec<Submission> {
    let mut history = vec![
        testkit::coach_referral(participant_id, None),
        enrolment(participant_id),
    ];
    history.extend((2..entries).map(|index| employer_contact(participant_id, index)));
    history.truncate(entries);
    history
}

/// Publishes in order on one connection, awaiting the stream's acks a chunk at a time.
async fn publish_all(
    jetstream: &async_nats::jetstream::Context,
    subjects: &bus::Subjects,
    submissions: &[Submission],
) -> anyhow::Result<()> {
    for chunk in submissions.chunks(500) {
        let mut acks = Vec::with_capacity(chunk.len());
        for submission in chunk {
            let subject = subjects.event(
                submission.envelope.agency,
                submission.envelope.participant_id,
            );
            let message = async_nats::jetstream::message::PublishMessage::build()
                .payload(serde_json::to_vec(submission)?.into())
                .message_id(submission.envelope.event_id.to_string());
            acks.push(jetstream.send_publish(subject, message).await?);
        }
        for ack in join_all(acks.into_iter().map(std::future::IntoFuture::into_future)).await {
            ack?;
        }
    }
    Ok(())
}

async fn stored_events(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await?)
}

async fn wait_until_stored(pool: &sqlx::PgPool, expected: i64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let stored = stored_events(pool).await?;
        if stored >= expected {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1_800),
            "only {stored} of {expected} events stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One append, timed from publish to verdict.
async fn append(
    client: &async_nats::Client,
    publisher: &bus::SubmissionPublisher,
    submission: &Submission,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let waiter = bus::VerdictWaiter::subscribe(
        client,
        publisher.subjects(),
        submission.envelope.agency,
        submission.envelope.event_id,
    )
    .await?;
    publisher.publish(submission).await?;
    let verdict = waiter
        .wait(VERDICT_WAIT)
        .await
        .ok_or_else(|| anyhow::anyhow!("no verdict within {VERDICT_WAIT:?}"))?;
    anyhow::ensure!(
        verdict.status == bus::VerdictStatus::Accepted,
        "not accepted: {verdict:?}"
    );
    Ok(started.elapsed())
}

/// The medians of `samples` appends to each participant, alternating.
async fn appends(
    client: &async_nats::Client,
    publisher: &bus::SubmissionPublisher,
    short: domain::ParticipantId,
    long: domain::ParticipantId,
    samples: usize,
    index_from: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let (mut short_latencies, mut long_latencies) = (Vec::new(), Vec::new());
    for sample in 0..samples {
        let index = index_from + sample;
        short_latencies.push(append(client, publisher, &employer_contact(short, index)).await?);
        long_latencies.push(append(client, publisher, &employer_contact(long, index)).await?);
    }
    short_latencies.sort();
    long_latencies.sort();
    Ok((
        percentile(&short_latencies, 50.0),
        percentile(&long_latencies, 50.0),
    ))
}

async fn start_ledger(
    database: &testkit::TestDatabase,
    bus_config: &bus::BusConfig,
    aggregate_cache_bytes_max: u64,
) -> anyhow::Result<(ledger::RunningLedger, tokio::sync::watch::Sender<bool>)> {
    let mut config = testkit::ledger_config(database, bus_config);
    config.ingest.aggregate_cache_bytes_max = aggregate_cache_bytes_max;
    let (shutdown, receiver) = tokio::sync::watch::channel(false);
    let ledger = ledger::start(
        config,
        std::sync::Arc::new(ledger::clock::SystemClock),
        receiver,
    )
    .await?;
    Ok((ledger, shutdown))
}

async fn stop_ledger(running: (ledger::RunningLedger, tokio::sync::watch::Sender<bool>)) {
    let _ = running.1.send(true);
    running.0.wait().await;
}

/// This process's resident and peak resident memory, in MiB (Linux).
fn resident_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Starts the process's peak RSS (`VmHWM`) afresh from its current RSS (Linux `clear_refs` 5).
fn reset_peak_resident() {
    if let Err(error) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!(
            "could not reset the peak RSS ({error}); the peak printed includes earlier phases"
        );
    }
}

/// Referrals made and published at a time in the cache phase.
const REFERRALS_PER_CHUNK: usize = 500;

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging_with_default("history_probe", "warn");
    let arguments = bench::numeric_arguments();
    let long_entries = arguments
        .first()
        .copied()
        .unwrap_or(10_000)
        .max(SHORT_ENTRIES);
    let samples = arguments.get(1).copied().unwrap_or(30).max(1);
    let participants_through_cache = arguments.get(2).copied().unwrap_or(100_000);
    let default_budget = ledger::LedgerConfig::default()
        .ingest
        .aggregate_cache_bytes_max;

    let database = testkit::TestDatabase::create().await?;
    let bus_config = testkit::unique_bus_config();
    let pool = database.pool().await?;
    let client = bus::connect(&bus_config, "history-probe").await?;
    let jetstream = async_nats::jetstream::new(client.clone());
    let publisher = bus::SubmissionPublisher::new(client.clone(), &bus_config);
    let subjects = bus::Subjects::new(&bus_config.subject_prefix);
    println!(
        "history probe: {long_entries} vs {SHORT_ENTRIES} entries, {samples} appends each, \
         then {participants_through_cache} participants through the cache; fresh database and stream"
    );

    let ceiling_rows = 500;
    let postgres = bench::ceilings::postgres_insert_loop(&database.url, ceiling_rows).await?;
    let jetstream_raw = bench::ceilings::jetstream_publish_loop(&bus_config, ceiling_rows).await?;

    let warm_ledger = start_ledger(&database, &bus_config, default_budget).await?;
    let short = domain::ParticipantId(uuid::Uuid::new_v4());
    let long = domain::ParticipantId(uuid::Uuid::new_v4());
    let mut seed = history(short, SHORT_ENTRIES);
    seed.extend(history(long, long_entries));
    let seeded_in = {
        publish_all(&jetstream, &subjects, &seed).await?;
        wait_until_stored(&pool, seed.len() as i64).await?
    };
    println!(
        "  seeded {} entries in {:.1} s (through the ledger, cache on)",
        seed.len(),
        seeded_in.as_secs_f64()
    );
    let warm = appends(&client, &publisher, short, long, samples, 1_000_000).await?;
    stop_ledger(warm_ledger).await;

    let cold_ledger = start_ledger(&database, &bus_config, 0).await?;
    let cold = appends(&client, &publisher, short, long, samples, 2_000_000).await?;
    stop_ledger(cold_ledger).await;

    println!(
        "  bare PostgreSQL one-row transaction (ceiling): {:.2} ms; bare JetStream publish, ack awaited: {:.2} ms",
        ms(postgres) / ceiling_rows as f64,
        ms(jetstream_raw) / ceiling_rows as f64
    );
    println!("  one append, publish → verdict, median   {SHORT_ENTRIES:>6} entries  {long_entries:>6} entries   ratio");
    for (label, (short_median, long_median)) in [("warm cache", warm), ("cold (cache off)", cold)] {
        println!(
            "    {label:<37} {:>9.2} ms  {:>9.2} ms  {:>6.2}×",
            ms(short_median),
            ms(long_median),
            long_median.as_secs_f64() / short_median.as_secs_f64().max(f64::MIN_POSITIVE)
        );
    }

    if participants_through_cache > 0 {
        let through_ledger = start_ledger(&database, &bus_config, default_budget).await?;
        let (rss_before, _) = resident_mib();
        let before = stored_events(&pool).await?;
        // The peak is measured from here: the earlier phases' is not the cache's.
        reset_peak_resident();
        let started = Instant::now();
        // Made and published a chunk at a time: 100,000 submissions held by the probe would
        // count in the process's RSS as if the ledger held them.
        for chunk_start in (0..participants_through_cache).step_by(REFERRALS_PER_CHUNK) {
            let chunk_end = (chunk_start + REFERRALS_PER_CHUNK).min(participants_through_cache);
            let referrals: Vec<Submission> = (chunk_start..chunk_end)
                .map(|_| testkit::coach_referral(domain::ParticipantId(uuid::Uuid::new_v4()), None))
                .collect();
            publish_all(&jetstream, &subjects, &referrals).await?;
        }
        wait_until_stored(&pool, before + participants_through_cache as i64).await?;
        let elapsed = started.elapsed();
        let (rss, peak) = resident_mib();
        let counters = &through_ledger.0.counters;
        println!(
            "  {participants_through_cache} participants through the cache in {:.1} s ({:.0} events/s; {} pushed out)",
            elapsed.as_secs_f64(),
            participants_through_cache as f64 / elapsed.as_secs_f64(),
            counters.aggregate_cache_evictions.get()
        );
        println!(
            "  process RSS (ledger in-process): {rss_before:.0} MiB before, {rss:.0} MiB after, peak {peak:.0} MiB during this phase; \
             cache estimate {:.1} MiB of its {:.0} MiB budget; target ≤ 200 MB",
            counters.aggregate_cache_bytes.get() as f64 / (1024.0 * 1024.0),
            default_budget as f64 / (1024.0 * 1024.0)
        );
        stop_ledger(through_ledger).await;
    }
    pool.close().await;
    database.drop_database().await;
    testkit::delete_streams(&bus_config).await;
    Ok(())
}
