//! Throughput probe: the whole write path (municipality service → JetStream → ledger →
//! aggregate → events table → verdict back) sustained for a set time, and an open-loop load
//! read back through `GetTimeline`, each printed beside the raw ceilings measured in the same
//! run and the ratio against it, so a figure is never read without its context (issue 14's
//! "Benchmarks").
//!
//! Ceilings, all with PostgreSQL's `fsync` and `synchronous_commit` on (the probe refuses to run
//! otherwise): rows shaped like the events table (the same table, from the migrations, on a
//! scratch database, with payloads sampled from this run's own stored events) inserted at one
//! row per transaction on 1 and on 8 connections and at 100 rows per transaction; bare cqrs-es +
//! postgres-es with 8 tasks; bare JetStream publishes to a stream with the project's settings,
//! one at a time and as many in flight as the whole path has clients.
//!
//! `cargo run --release -p bench --bin throughput_probe -- [--duration-s 60] [--clients 64]
//! [--ceiling-s 10] [--open-loop-rate 1000] [--open-loop-s <duration-s>]
//! [--open-loop-in-flight-max 20000] [--nats-sync always|default|both]
//! [--commit-batch-size-max N] [--commit-linger-ms N] [--lanes N]`. The last three set the
//! ledger's `ingest.commit_batch_size_max` (1: group commit off), `ingest.commit_linger_ms` and
//! `ingest.lanes` (unset: the ledger's defaults). Uses a fresh database
//! and stream, like the tests. With `--nats-sync`, each pass gets a nats-server of its own (the
//! pinned binary): `always` is the project's `sync_interval: always`, `default` the server's lazy
//! fsync, and `both` runs the two one after the other in the same process, so what
//! fsync-per-write costs is read off one run. Without it the shared server of
//! `IPS_TEST_NATS_URL` is used.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::ceilings::Measured;
use bench::{percentile, rate};
use domain::Role;
use futures::future::join_all;
use proto::v1;
use tokio::sync::Semaphore;

/// Events per participant in the whole path (referral, enrolment, consents), as in the tests.
const EVENTS_PER_PARTICIPANT: usize = 10;

/// Stored rows sampled as the ceilings' templates.
const TEMPLATE_ROWS: i64 = 200;

/// How long an open-loop write may take to show in GetTimeline before it counts as failed.
const OPEN_LOOP_VISIBLE_WITHIN: Duration = Duration::from_secs(60);

/// Pause between GetTimeline reads of a write not yet visible (each read already waits for
/// its `min_sequence` up to the ledger's read-your-writes bound).
const OPEN_LOOP_READ_RETRY_PAUSE: Duration = Duration::from_millis(5);

/// gRPC connections the open-loop load spreads its calls over.
const OPEN_LOOP_CHANNELS: usize = 16;

/// How long the clients use one officer token before signing a new one (tokens are valid ten
/// minutes).
const CLIENT_TOKEN_REUSED_FOR: Duration = Duration::from_secs(300);

/// A request from the coach, carrying the token the clients share: an officer's client signs
/// in once and reuses its token, so the clients do too (a token signed per call made the load
/// generator 6 % of the process's CPU, and no verified token was ever seen twice).
fn as_coach<T>(message: T) -> tonic::Request<T> {
    static SHARED: std::sync::Mutex<Option<(Instant, String)>> = std::sync::Mutex::new(None);
    let token = {
        let mut shared = SHARED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match shared.as_ref() {
            Some((signed_at, token)) if signed_at.elapsed() < CLIENT_TOKEN_REUSED_FOR => {
                token.clone()
            }
            _ => {
                let token = testkit::token(
                    domain::Agency::Municipality,
                    "coach-17",
                    Role::Coach,
                    "hudiksvall-ips",
                );
                *shared = Some((Instant::now(), token.clone()));
                token
            }
        }
    };
    let mut request = tonic::Request::new(message);
    rpc::identity::attach_token(request.metadata_mut(), &token);
    request
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// The value after `--name`, parsed.
fn flag<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>> {
    let mut arguments = std::env::args().skip_while(|argument| argument != name);
    if arguments.next().is_none() {
        return Ok(None);
    }
    let value = arguments
        .next()
        .ok_or_else(|| anyhow::anyhow!("{name} needs a value"))?;
    value
        .parse()
        .map(Some)
        .map_err(|_| anyhow::anyhow!("{name}: cannot read {value:?}"))
}

/// What a run is asked to do.
#[derive(Clone, Copy, Debug)]
struct ProbeSettings {
    duration: Duration,
    clients: usize,
    ceiling_duration: Duration,
    open_loop_rate_per_second: u32,
    open_loop_duration: Duration,
    open_loop_in_flight_max: usize,
}

/// One write of a participant's history: referral, enrolment, then consents.
async fn write(
    client: &mut v1::municipality_service_client::MunicipalityServiceClient<
        tonic::transport::Channel,
    >,
    index: usize,
    participant_id: &mut String,
) -> anyhow::Result<()> {
    let response = match index % EVENTS_PER_PARTICIPANT {
        0 => {
            let request = v1::ReferParticipantRequest {
                source: v1::ReferralSource::Ifo as i32,
                ..Default::default()
            };
            client
                .refer_participant(as_coach(request))
                .await?
                .into_inner()
        }
        1 => {
            let request = v1::EnrollParticipantRequest {
                participant_id: participant_id.clone(),
                unit: "hudiksvall-ips".into(),
                coach_person_id: "coach-17".into(),
                ..Default::default()
            };
            client
                .enroll_participant(as_coach(request))
                .await?
                .into_inner()
        }
        month => {
            let request = v1::GrantConsentRequest {
                participant_id: participant_id.clone(),
                discloser: v1::ConsentParty::SocialServices as i32,
                recipient: v1::ConsentParty::IpsUnit as i32,
                data_categories: vec![v1::DataCategory::SocialAssistanceStatus as i32],
                valid_from: format!("2026-{month:02}-01"),
                valid_to: format!("2026-{month:02}-28"),
                ..Default::default()
            };
            client.grant_consent(as_coach(request)).await?.into_inner()
        }
    };
    anyhow::ensure!(
        response.status == v1::WriteStatus::Accepted as i32,
        "not accepted: {response:?}"
    );
    if index.is_multiple_of(EVENTS_PER_PARTICIPANT) {
        *participant_id = response.participant_id;
    }
    Ok(())
}

/// One closed-loop client: writes participants' histories, each RPC waiting for the ledger's
/// verdict, until `deadline` (a history cut short there is still a valid one). Returns the
/// per-RPC latencies.
async fn drive_until(
    mut client: v1::municipality_service_client::MunicipalityServiceClient<
        tonic::transport::Channel,
    >,
    deadline: Instant,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    let mut participant_id = String::new();
    let mut index = 0;
    while Instant::now() < deadline {
        let started = Instant::now();
        write(&mut client, index, &mut participant_id).await?;
        latencies.push(started.elapsed());
        index += 1;
    }
    Ok(latencies)
}

/// The process's peak resident set (VmHWM), in bytes.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

/// Resets the peak resident set (Linux: `5` to `clear_refs`), so the next reading covers only
/// what follows. Whether it worked.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let duration = Duration::from_secs(flag("--duration-s")?.unwrap_or(60));
    let settings = ProbeSettings {
        duration,
        clients: flag("--clients")?.unwrap_or(64_usize).max(1),
        ceiling_duration: Duration::from_secs(flag("--ceiling-s")?.unwrap_or(10)),
        open_loop_rate_per_second: flag("--open-loop-rate")?.unwrap_or(1_000_u32).max(1),
        open_loop_duration: flag("--open-loop-s")?
            .map(Duration::from_secs)
            .unwrap_or(duration),
        open_loop_in_flight_max: flag("--open-loop-in-flight-max")?.unwrap_or(20_000_usize),
    };
    let sync: Option<String> = flag("--nats-sync")?;
    let mut ingest = ledger::config::IngestConfig {
        // As the tests' ledgers (`testkit::ledger_config`), so only the flags below differ.
        store_retry_backoff_max_ms: 1_000,
        ..ledger::config::IngestConfig::default()
    };
    if let Some(batch_size_max) = flag("--commit-batch-size-max")? {
        ingest.commit_batch_size_max = batch_size_max;
    }
    if let Some(linger_ms) = flag("--commit-linger-ms")? {
        ingest.commit_linger_ms = linger_ms;
    }
    if let Some(lanes) = flag("--lanes")? {
        ingest.lanes = lanes;
    }
    println!(
        "ledger ingest: lanes {}, commit_batch_size_max {}{}, commit_linger_ms {}",
        ingest.lanes,
        ingest.commit_batch_size_max,
        if ingest.commit_batch_size_max == 1 {
            " (group commit off)"
        } else {
            ""
        },
        ingest.commit_linger_ms
    );
    let policies: Vec<Option<testkit::FsyncPolicy>> = match sync.as_deref() {
        None => vec![None],
        Some("always") => vec![Some(testkit::FsyncPolicy::Always)],
        Some("default") => vec![Some(testkit::FsyncPolicy::ServerDefault)],
        Some("both") => vec![
            Some(testkit::FsyncPolicy::ServerDefault),
            Some(testkit::FsyncPolicy::Always),
        ],
        Some(other) => anyhow::bail!("--nats-sync takes always, default or both, not {other}"),
    };
    for policy in policies {
        let server = match policy {
            Some(policy) => Some(testkit::NatsServer::start(policy).await?),
            None => None,
        };
        let label = match policy {
            None => "the shared nats-server (IPS_TEST_NATS_URL)",
            Some(testkit::FsyncPolicy::Always) => "own nats-server, sync_interval: always",
            Some(testkit::FsyncPolicy::ServerDefault) => {
                "own nats-server, default lazy fsync (2 min timer)"
            }
        };
        let options = testkit::StackOptions {
            nats_url: server.as_ref().map(|server| server.url.clone()),
            ledger_ingest: Some(ingest.clone()),
            ..testkit::StackOptions::default()
        };
        probe(settings, label, options).await?;
    }
    Ok(())
}

/// PostgreSQL's durability settings, which every figure here assumes on.
async fn durability(pool: &sqlx::PgPool) -> anyhow::Result<(String, String)> {
    let fsync: String = sqlx::query_scalar("SHOW fsync").fetch_one(pool).await?;
    let synchronous_commit: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(pool)
        .await?;
    anyhow::ensure!(
        fsync == "on" && synchronous_commit == "on",
        "the probe measures durable commits: fsync is {fsync}, synchronous_commit is {synchronous_commit}"
    );
    Ok((fsync, synchronous_commit))
}

/// The raw ceilings of one run.
struct Ceilings {
    insert_one_row_one_connection: Measured,
    insert_one_row_eight_connections: Measured,
    insert_hundred_rows_eight_connections: Measured,
    cqrs_es_eight_tasks: Measured,
    publish_one_at_a_time: (Measured, Vec<Duration>),
    publish_concurrent: (Measured, Vec<Duration>),
    payload_bytes: usize,
}

async fn measure_ceilings(
    stack: &testkit::Stack,
    settings: ProbeSettings,
) -> anyhow::Result<Ceilings> {
    // Real rows to copy: one participant's history written through the whole path.
    let mut client = stack.municipality().await?;
    let mut participant_id = String::new();
    for index in 0..EVENTS_PER_PARTICIPANT * 2 {
        write(&mut client, index, &mut participant_id).await?;
    }
    let pool = stack.database.pool().await?;
    let templates = bench::ceilings::sample_event_rows(&pool, TEMPLATE_ROWS).await?;
    pool.close().await;
    let payload_bytes = templates
        .iter()
        .map(|template| template.payload.len())
        .sum::<usize>()
        / templates.len();

    let scratch = testkit::TestDatabase::create().await?;
    store::migrate_with(&store::StoreConfig {
        database_url: scratch.url.clone(),
        migration_database_url: scratch.url.clone(),
        ..store::StoreConfig::default()
    })
    .await?;
    let time = settings.ceiling_duration;
    let url = scratch.url.as_str();
    let insert_one_row_one_connection =
        bench::ceilings::events_table_insert(url, &templates, 1, 1, time).await?;
    let insert_one_row_eight_connections =
        bench::ceilings::events_table_insert(url, &templates, 8, 1, time).await?;
    let insert_hundred_rows_eight_connections =
        bench::ceilings::events_table_insert(url, &templates, 8, 100, time).await?;
    let cqrs_es_eight_tasks = bench::ceilings::cqrs_es_append(url, payload_bytes, 8, time).await?;
    scratch.drop_database().await;
    let publish_one_at_a_time = bench::ceilings::jetstream_publish_project_stream(
        &stack.bus_config,
        payload_bytes,
        1,
        time,
    )
    .await?;
    let publish_concurrent = bench::ceilings::jetstream_publish_project_stream(
        &stack.bus_config,
        payload_bytes,
        settings.clients,
        time,
    )
    .await?;
    Ok(Ceilings {
        insert_one_row_one_connection,
        insert_one_row_eight_connections,
        insert_hundred_rows_eight_connections,
        cqrs_es_eight_tasks,
        publish_one_at_a_time,
        publish_concurrent,
        payload_bytes,
    })
}

/// The whole path, closed loop: `clients` clients for `duration`. Returns the events accepted,
/// the time taken, the sorted per-RPC latencies and the peak RSS meanwhile.
async fn whole_path(
    stack: &testkit::Stack,
    settings: ProbeSettings,
) -> anyhow::Result<(Measured, Vec<Duration>, Option<u64>, bool)> {
    let pool = stack.database.pool().await?;
    let stored_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    let mut clients = Vec::with_capacity(settings.clients);
    for _ in 0..settings.clients {
        clients.push(stack.municipality().await?);
    }
    let peak_reset = reset_peak_rss();
    let started = Instant::now();
    let deadline = started + settings.duration;
    let results = join_all(
        clients
            .into_iter()
            .map(|client| drive_until(client, deadline)),
    )
    .await;
    let elapsed = started.elapsed();
    let peak = peak_rss_bytes();
    let mut latencies = Vec::new();
    for result in results {
        latencies.extend(result?);
    }
    latencies.sort();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(
        usize::try_from(stored - stored_before)? == latencies.len(),
        "{} writes accepted, {} events stored",
        latencies.len(),
        stored - stored_before
    );
    pool.close().await;
    Ok((
        Measured {
            count: latencies.len(),
            elapsed,
        },
        latencies,
        peak,
        peak_reset,
    ))
}

/// What the open-loop load saw.
struct OpenLoop {
    latencies: Vec<Duration>,
    scheduled: usize,
    not_sent: usize,
    failures: usize,
    elapsed: Duration,
}

/// Referrals sent on a fixed schedule (`open_loop_rate_per_second`), each followed by a
/// `GetTimeline` that waits for the entry (`min_sequence`); each latency runs from the
/// scheduled send time to the read returning the entry, so queueing in the client is counted.
async fn open_loop(stack: &testkit::Stack, settings: ProbeSettings) -> anyhow::Result<OpenLoop> {
    let mut writers = Vec::with_capacity(OPEN_LOOP_CHANNELS);
    let mut readers = Vec::with_capacity(OPEN_LOOP_CHANNELS);
    for _ in 0..OPEN_LOOP_CHANNELS {
        writers.push(stack.municipality().await?);
        readers.push(stack.timeline().await?);
    }
    let in_flight = Arc::new(Semaphore::new(settings.open_loop_in_flight_max));
    let interval = Duration::from_secs_f64(1.0 / f64::from(settings.open_loop_rate_per_second));
    let scheduled = (settings.open_loop_duration.as_secs_f64()
        * f64::from(settings.open_loop_rate_per_second)) as usize;
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    let mut not_sent = 0;
    for index in 0..scheduled {
        let at = started + interval.mul_f64(index as f64);
        tokio::time::sleep_until(at.into()).await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            not_sent += 1;
            continue;
        };
        let mut writer = writers[index % OPEN_LOOP_CHANNELS].clone();
        let mut reader = readers[index % OPEN_LOOP_CHANNELS].clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            let outcome = async {
                let written = writer
                    .refer_participant(as_coach(v1::ReferParticipantRequest {
                        source: v1::ReferralSource::Ifo as i32,
                        ..Default::default()
                    }))
                    .await?
                    .into_inner();
                // PENDING is a valid answer (stored, applied later): the read then waits for it.
                anyhow::ensure!(
                    written.status == v1::WriteStatus::Accepted as i32
                        || written.status == v1::WriteStatus::Pending as i32,
                    "neither accepted nor pending: {written:?}"
                );
                loop {
                    // A referral is its participant's first entry.
                    let read = reader
                        .get_timeline(testkit::as_auditor(v1::GetTimelineRequest {
                            participant_id: written.participant_id.clone(),
                            min_sequence: written.sequence.max(1),
                            ..Default::default()
                        }))
                        .await;
                    if read.is_ok_and(|page| !page.into_inner().entries.is_empty()) {
                        break;
                    }
                    anyhow::ensure!(
                        at.elapsed() < OPEN_LOOP_VISIBLE_WITHIN,
                        "not visible in GetTimeline within {OPEN_LOOP_VISIBLE_WITHIN:?}"
                    );
                    tokio::time::sleep(OPEN_LOOP_READ_RETRY_PAUSE).await;
                }
                anyhow::Ok(at.elapsed())
            }
            .await;
            let _ = sender.send(outcome.map_err(|error| error.to_string()));
            drop(permit);
        });
    }
    drop(sender);
    let mut latencies = Vec::with_capacity(scheduled);
    let mut failures = 0;
    let mut first_failure = None;
    while let Some(outcome) = receiver.recv().await {
        match outcome {
            Ok(latency) => latencies.push(latency),
            Err(error) => {
                failures += 1;
                first_failure.get_or_insert(error);
            }
        }
    }
    let elapsed = started.elapsed();
    if let Some(error) = first_failure {
        eprintln!("  open loop: first failure: {error}");
    }
    latencies.sort();
    Ok(OpenLoop {
        latencies,
        scheduled,
        not_sent,
        failures,
        elapsed,
    })
}

fn ratio_line(what: &str, figure: f64, ceiling: f64, target: &str) {
    println!(
        "    {what:<58}: {:>6.2}×   (target {target})",
        figure / ceiling.max(f64::MIN_POSITIVE)
    );
}

async fn probe(
    settings: ProbeSettings,
    label: &str,
    options: testkit::StackOptions,
) -> anyhow::Result<()> {
    let stack = testkit::Stack::start_with(options).await?;
    let pool = stack.database.pool().await?;
    let (fsync, synchronous_commit) = durability(&pool).await?;
    pool.close().await;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "throughput probe on {label}: PostgreSQL fsync {fsync}, synchronous_commit {synchronous_commit}; \
         whole path {} s with {} clients; ceilings {} s each; load average at start {}",
        settings.duration.as_secs(),
        settings.clients,
        settings.ceiling_duration.as_secs(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );

    let ceilings = measure_ceilings(&stack, settings).await?;
    let (path, latencies, peak_rss, peak_reset) = whole_path(&stack, settings).await?;
    let open = open_loop(&stack, settings).await?;
    stack.stop().await;

    println!(
        "  raw ceilings (rows shaped like the events table, payloads ~{} bytes as stored):",
        ceilings.payload_bytes
    );
    let line = |what: &str, measured: &Measured, unit: &str| {
        println!("    {what:<58}: {:>8.0} {unit}/s", measured.rate());
    };
    line(
        "PostgreSQL insert, 1 row per transaction, 1 connection",
        &ceilings.insert_one_row_one_connection,
        "rows",
    );
    line(
        "PostgreSQL insert, 1 row per transaction, 8 connections",
        &ceilings.insert_one_row_eight_connections,
        "rows",
    );
    line(
        "PostgreSQL insert, 100 rows per transaction, 8 connections",
        &ceilings.insert_hundred_rows_eight_connections,
        "rows",
    );
    line(
        "cqrs-es + postgres-es, aggregate deciding nothing, 8 tasks",
        &ceilings.cqrs_es_eight_tasks,
        "events",
    );
    let (publish, publish_latencies) = &ceilings.publish_one_at_a_time;
    println!(
        "    {:<58}: {:>8.0} msgs/s (p50 {:.2} ms)",
        "JetStream publish, project stream settings, 1 in flight",
        publish.rate(),
        milliseconds(percentile(publish_latencies, 50.0))
    );
    let (publish, publish_latencies) = &ceilings.publish_concurrent;
    println!(
        "    {:<58}: {:>8.0} msgs/s (p50 {:.2} ms)",
        format!(
            "JetStream publish, project stream settings, {} in flight",
            settings.clients
        ),
        publish.rate(),
        milliseconds(percentile(publish_latencies, 50.0))
    );

    let path_rate = path.rate();
    println!(
        "  whole path gRPC → JetStream → ledger → PostgreSQL → verdict, {} clients, {:.0} s:",
        settings.clients,
        path.elapsed.as_secs_f64()
    );
    println!(
        "    {:<58}: {:>8.0} events/s",
        "sustained",
        rate(path.count, path.elapsed)
    );
    println!(
        "    per-RPC latency (verdict included): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        milliseconds(percentile(&latencies, 50.0)),
        milliseconds(percentile(&latencies, 99.0)),
        milliseconds(percentile(&latencies, 100.0))
    );
    ratio_line(
        "÷ PostgreSQL 1 row/tx on 8 connections",
        path_rate,
        ceilings.insert_one_row_eight_connections.rate(),
        "≥ 1.0×",
    );
    ratio_line(
        "÷ bare cqrs-es + postgres-es, 8 tasks",
        path_rate,
        ceilings.cqrs_es_eight_tasks.rate(),
        "≥ 2.0×",
    );
    ratio_line(
        "÷ PostgreSQL 100 rows/tx on 8 connections",
        path_rate,
        ceilings.insert_hundred_rows_eight_connections.rate(),
        "≥ 0.5×",
    );
    ratio_line(
        &format!("÷ JetStream publish, {} in flight", settings.clients),
        path_rate,
        ceilings.publish_concurrent.0.rate(),
        "none; the bus's own ceiling",
    );
    match peak_rss {
        Some(bytes) => {
            println!(
            "    peak RSS {} the whole path: {:.0} MB — the probe process, which runs the ledger \
             in-process with the four agency services and the clients, so an upper bound on the \
             ledger's (target for the ledger ≤ 200 MB)",
            if peak_reset { "during" } else { "up to the end of" },
            bytes as f64 / 1e6
        )
        }
        None => println!("    peak RSS: not readable here"),
    }

    let sent = open.scheduled - open.not_sent;
    println!(
        "  open loop: referral → visible in GetTimeline, {} /s scheduled for {} s ({} sent, {} not \
         sent at the in-flight limit {}, {} failed), {:.0} completed/s:",
        settings.open_loop_rate_per_second,
        settings.open_loop_duration.as_secs(),
        sent,
        open.not_sent,
        settings.open_loop_in_flight_max,
        open.failures,
        rate(open.latencies.len(), open.elapsed)
    );
    let p50 = milliseconds(percentile(&open.latencies, 50.0));
    let p99 = milliseconds(percentile(&open.latencies, 99.0));
    println!(
        "    latency from the scheduled time: p50 {p50:.1} ms (target ≤ 5 ms: {:.1}× it), \
         p99 {p99:.1} ms (target ≤ 50 ms: {:.1}× it), max {:.1} ms",
        p50 / 5.0,
        p99 / 50.0,
        milliseconds(percentile(&open.latencies, 100.0))
    );
    Ok(())
}
