//! History probe: what one more event costs a participant with a long history against one with
//! a short history, with the ledger's aggregate cache warm and with it off (every delivery
//! loads and folds the whole history, as before the cache), printed side by side with the
//! ratio and beside the bare one-row PostgreSQL transaction measured in the same run; then the
//! RSS of a ledger process of its own (`bench-ledger`: the service's `main.rs`, its defaults)
//! once many participants have passed through its cache, beside the cache's budget. Set
//! `IPS_INGEST__AGGREGATE_CACHE_BYTES_MAX` to try another budget in that process.
//!
//! `cargo build --release -p bench --bin bench-ledger && cargo run --release -p bench --bin
//! history_probe -- [long_entries] [samples]
//! [participants_through_cache]` (defaults 10000, 30 and 100000). For the appends the ledger runs
//! in this process (as in the other probes), on a fresh database and stream; one append is timed
//! from the publish to its verdict, as an agency service waits for it.

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

/// Megabytes (10^6 bytes) in a mebibyte.
const MIB_IN_MB: f64 = 1.048_576;

/// A process's resident and peak resident memory (`VmRSS`, `VmHWM`) from its `status` file,
/// in MiB (Linux).
fn resident_mib(status_path: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(status_path).unwrap_or_default();
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

/// The `bench-ledger` binary next to this probe; checked before the first phase, so a missing
/// one is named at once rather than after minutes of appends.
fn ledger_binary() -> anyhow::Result<std::path::PathBuf> {
    let binary = std::env::current_exe()?
        .parent()
        .map(|directory| directory.join("bench-ledger"))
        .ok_or_else(|| anyhow::anyhow!("no directory for the probe's binary"))?;
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: cargo build --release -p bench --bin bench-ledger",
        binary.display()
    );
    Ok(binary)
}

/// How long the ledger process may take to listen.
const LEDGER_STARTED_WITHIN: Duration = Duration::from_secs(60);

/// The ledger as a process of its own (`bench-ledger`, built from the service's `main.rs` next
/// to this probe), configured like a deployment: its defaults, plus the test database, stream
/// and PKI. Killed when dropped, so a failing probe leaves no orphan behind.
struct LedgerProcess {
    child: std::process::Child,
    metrics_address: std::net::SocketAddr,
    log_path: std::path::PathBuf,
}

impl LedgerProcess {
    async fn spawn(
        database: &testkit::TestDatabase,
        bus_config: &bus::BusConfig,
    ) -> anyhow::Result<Self> {
        let binary = ledger_binary()?;
        let ports = testkit::free_ports(2)?;
        let (grpc_port, metrics_port) = (ports[0], ports[1]);
        let log_path =
            std::env::temp_dir().join(format!("history-probe-ledger-{}.log", uuid::Uuid::new_v4()));
        let child = std::process::Command::new(binary)
            .envs(testkit::ledger_process_environment(database, bus_config))
            .env(
                "IPS_SERVER__LISTEN_ADDRESS",
                format!("127.0.0.1:{grpc_port}"),
            )
            .env(
                "IPS_METRICS_LISTEN_ADDRESS",
                format!("127.0.0.1:{metrics_port}"),
            )
            .env("IPS_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log_path)?)
            .spawn()?;
        let mut ledger = Self {
            child,
            metrics_address: std::net::SocketAddr::from(([127, 0, 0, 1], metrics_port)),
            log_path,
        };
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", grpc_port))
            .await
            .is_err()
        {
            ledger.assert_running()?;
            anyhow::ensure!(
                started.elapsed() < LEDGER_STARTED_WITHIN,
                "the ledger process did not listen within {LEDGER_STARTED_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(ledger)
    }

    /// Fails, with the ledger's own words, if it has exited by itself.
    fn assert_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
            anyhow::bail!("the ledger process exited by itself ({status}):\n{log}");
        }
        Ok(())
    }

    /// Its metrics, scraped from `GET /metrics` (one HTTP/1.0 request: the probe reads a
    /// few gauges once, so it needs no HTTP client).
    async fn metrics(&self) -> anyhow::Result<telemetry::Exposition> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.metrics_address).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: probe\r\n\r\n")
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .ok_or_else(|| anyhow::anyhow!("a metrics response without a body: {response}"))?;
        Ok(telemetry::parse_exposition(body)?)
    }

    /// Stops it with SIGTERM (it drains) and waits for it.
    fn stop(mut self) -> anyhow::Result<()> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "could not signal the ledger process");
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for LedgerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log_path);
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
    if participants_through_cache > 0 {
        ledger_binary()?;
    }
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
        let budget = std::env::var("IPS_INGEST__AGGREGATE_CACHE_BYTES_MAX")
            .ok()
            .and_then(|bytes| bytes.parse::<u64>().ok())
            .unwrap_or(default_budget);
        let mut ledger = LedgerProcess::spawn(&database, &bus_config).await?;
        let before = stored_events(&pool).await?;
        let started = Instant::now();
        // Made and published a chunk at a time, so the probe's own memory stays small (it is
        // not measured: the ledger is a process of its own).
        for chunk_start in (0..participants_through_cache).step_by(REFERRALS_PER_CHUNK) {
            let chunk_end = (chunk_start + REFERRALS_PER_CHUNK).min(participants_through_cache);
            let referrals: Vec<Submission> = (chunk_start..chunk_end)
                .map(|_| testkit::coach_referral(domain::ParticipantId(uuid::Uuid::new_v4()), None))
                .collect();
            publish_all(&jetstream, &subjects, &referrals).await?;
            ledger.assert_running()?;
        }
        wait_until_stored(&pool, before + participants_through_cache as i64).await?;
        let elapsed = started.elapsed();
        let (rss, peak) = resident_mib(&format!("/proc/{}/status", ledger.child.id()));
        let metrics = ledger.metrics().await?;
        println!(
            "  {participants_through_cache} participants through the cache of a ledger process in {:.1} s ({:.0} events/s; {} pushed out)",
            elapsed.as_secs_f64(),
            participants_through_cache as f64 / elapsed.as_secs_f64(),
            metrics
                .value("ips_ledger_aggregate_cache_evictions_total")
                .unwrap_or(f64::NAN)
        );
        println!(
            "  ledger process RSS: {rss:.0} MiB after ({:.0} MB), peak {peak:.0} MiB ({:.0} MB) over its life; \
             cache estimate {:.1} MiB of its {:.0} MiB budget; target ≤ 200 MB",
            rss * MIB_IN_MB,
            peak * MIB_IN_MB,
            metrics
                .value("ips_ledger_aggregate_cache_bytes")
                .unwrap_or(f64::NAN)
                / (1024.0 * 1024.0),
            budget as f64 / (1024.0 * 1024.0)
        );
        ledger.stop()?;
    }
    pool.close().await;
    database.drop_database().await;
    testkit::delete_streams(&bus_config).await;
    Ok(())
}
