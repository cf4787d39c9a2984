//! Replay probe: what an auditor's replay of one participant costs against the bare read of the
//! same history (issue 11; target: at most 1.5 × the ceiling).
//!
//! For a participant with 1,000 and one with 10,000 entries, recorded in the past, it measures in
//! the same run on the same database:
//! - the ceiling: a bare `SELECT sequence, payload FROM events … ORDER BY sequence` of the
//!   participant's rows, each payload deserialised into the stored event type;
//! - `ReplayParticipant` as recorded at a past T (every entry), through gRPC as an auditor:
//!   mTLS, token, access table, the recorded-at cut, the fold, each entry's view, the state with
//!   its gates, the access-log insert, and the whole stream received by the client; once in
//!   pages of 1,000 (the most a request may ask) and once in the service's default pages;
//! - the same through the coach's eyes (every entry's consent decision and view);
//! - the replay's own work in process, as the service does it (store read with the fold as the
//!   rows arrive, the views, the state), no gRPC; and the store read with the cut alone.
//!
//! Then, for the ceiling and the replay in default pages, the machine's busy CPU time per call
//! (every process, PostgreSQL's backend included) over at least a second of calls back to back:
//! on a machine with few cores the wall-time ratio cannot be lower than the CPU-time ratio.
//!
//! The histories are written straight into the event store as correctly chained entries (via
//! the domain's `ParticipantEvent::link`), since writing 11,000 events through the ledger would
//! fold each participant's history once per write.
//!
//! `cargo run --release -p bench --bin replay_probe -- [runs]` (default 20). Uses a fresh
//! database and stream, like the tests.

use std::time::{Duration, Instant};

use bench::percentile;
use chrono::{DateTime, Utc};
use domain::{ParticipantEvent, ParticipantId, PersonId, UnitId};
use futures::TryStreamExt;
use proto::v1;
use sqlx::Row;

/// Entries per participant, one participant each.
const HISTORY_LENGTHS: [usize; 2] = [1_000, 10_000];
/// Rows per INSERT while writing a history.
const INSERT_BATCH_ROWS: usize = 1_000;

fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    percentile(&samples, 50.0)
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// A participant's history of `length` entries, the n-th recorded a minute after the previous,
/// starting `length + 60` minutes ago (`testkit::linked_history`).
fn history(participant_id: ParticipantId, length: usize) -> Vec<ParticipantEvent> {
    let first_recorded_at = Utc::now() - chrono::Duration::minutes(length as i64 + 60);
    testkit::linked_history(participant_id, length, first_recorded_at)
}

async fn insert(pool: &sqlx::PgPool, entries: &[ParticipantEvent]) -> anyhow::Result<()> {
    for batch in entries.chunks(INSERT_BATCH_ROWS) {
        let Some(first) = batch.first() else {
            continue;
        };
        let sequences: Vec<i64> = batch
            .iter()
            .map(|entry| i64::try_from(entry.sequence))
            .collect::<Result<_, _>>()?;
        let event_types: Vec<String> = batch
            .iter()
            .map(|entry| entry.stored_event_type().to_owned())
            .collect();
        let payloads: Vec<String> = batch
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()?;
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             SELECT 'Participant', $1, sequence, event_type, '1', payload::jsonb, '{}'::jsonb
             FROM unnest($2::bigint[], $3::text[], $4::text[]) AS batch (sequence, event_type, payload)",
        )
        .bind(first.envelope.participant_id.to_string())
        .bind(&sequences)
        .bind(&event_types)
        .bind(&payloads)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// The ceiling: the participant's rows, ordered by sequence, each payload deserialised.
async fn bare_read(pool: &sqlx::PgPool, participant_id: ParticipantId) -> anyhow::Result<usize> {
    let mut rows = sqlx::query(
        "SELECT sequence, payload FROM events WHERE aggregate_type = 'Participant' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(participant_id.to_string())
    .fetch(pool);
    let mut decoded = 0;
    while let Some(row) = rows.try_next().await? {
        let _sequence: i64 = row.try_get("sequence")?;
        let sqlx::types::Json(event): sqlx::types::Json<ParticipantEvent> =
            row.try_get("payload")?;
        decoded += usize::from(event.sequence > 0);
    }
    Ok(decoded)
}

/// One replay through gRPC as the auditor, the whole stream received; returns the entries.
async fn grpc_replay(
    audit: &mut v1::audit_service_client::AuditServiceClient<tonic::transport::Channel>,
    request: v1::ReplayParticipantRequest,
) -> anyhow::Result<usize> {
    let mut stream = audit
        .replay_participant(testkit::as_auditor(request))
        .await?
        .into_inner();
    let mut entries = 0;
    let mut state = None;
    while let Some(message) = stream.message().await? {
        entries += message.entries.len();
        state = message.state.or(state);
    }
    anyhow::ensure!(state.is_some(), "the replay ended without its state");
    Ok(entries)
}

/// Waits until the projector has caught up with the histories written behind its back, so it
/// does not compete with the measurements.
async fn projected(pool: &sqlx::PgPool, entries: i64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let projected: i64 = sqlx::query_scalar("SELECT count(*) FROM timeline_entries")
            .fetch_one(pool)
            .await?;
        if projected >= entries {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the projector did not catch up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ratio(measured: Duration, ceiling: Duration) -> f64 {
    measured.as_secs_f64() / ceiling.as_secs_f64().max(f64::MIN_POSITIVE)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs = bench::numeric_arguments()
        .first()
        .copied()
        .unwrap_or(20)
        .max(1);
    let stack = testkit::Stack::start().await?;
    let owner = stack.database.pool().await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&stack.database.service_url())
        .await?;
    let mut audit = stack.audit_as(domain::Agency::Municipality).await?;
    let config = ledger::config::AuditConfig::default();
    let auditor = domain::Reader {
        agency: domain::Agency::Municipality,
        actor: domain::Actor {
            person_id: PersonId("probe-auditor".into()),
            role: domain::Role::Auditor,
            unit: UnitId("internal-control".into()),
        },
    };
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("replay probe ({build} build): {runs} runs each, p50");
    let mut written = 0;
    for length in HISTORY_LENGTHS {
        let participant_id = ParticipantId(uuid::Uuid::now_v7());
        let entries = history(participant_id, length);
        let recorded_by: DateTime<Utc> = entries
            .last()
            .map(|entry| entry.recorded_at)
            .unwrap_or_else(Utc::now)
            + chrono::Duration::seconds(1);
        insert(&owner, &entries).await?;
        written += length as i64;
        projected(&owner, written).await?;
        let as_auditor = v1::ReplayParticipantRequest {
            participant_id: participant_id.to_string(),
            recorded_at: recorded_by.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            page_size: 1_000,
            ..Default::default()
        };
        // The service's default page size (the request leaves it 0), so pages are decoded by
        // the client while the next is rendered.
        let as_auditor_default_pages = v1::ReplayParticipantRequest {
            page_size: 0,
            ..as_auditor.clone()
        };
        let as_coach = v1::ReplayParticipantRequest {
            as_reader: Some(v1::ReplayReader {
                party: v1::ConsentParty::IpsUnit as i32,
                role: "coach".into(),
                unit: "hudiksvall-ips".into(),
                person_id: "coach-17".into(),
            }),
            ..as_auditor.clone()
        };
        // Warm up, and check every measured path sees the whole history.
        anyhow::ensure!(bare_read(&pool, participant_id).await? == length);
        anyhow::ensure!(grpc_replay(&mut audit, as_auditor.clone()).await? == length);
        anyhow::ensure!(grpc_replay(&mut audit, as_coach.clone()).await? == length);
        anyhow::ensure!(grpc_replay(&mut audit, as_auditor_default_pages.clone()).await? == length);

        let mut ceiling = Vec::with_capacity(runs);
        let mut replay = Vec::with_capacity(runs);
        let mut replay_as_coach = Vec::with_capacity(runs);
        let mut replay_default_pages = Vec::with_capacity(runs);
        let mut in_process = Vec::with_capacity(runs);
        let mut store_read = Vec::with_capacity(runs);
        let parsed = ledger::replay::parse_request(&as_auditor, &config, Utc::now())
            .map_err(|status| anyhow::anyhow!("{status}"))?;
        for _ in 0..runs {
            let started = Instant::now();
            bare_read(&pool, participant_id).await?;
            ceiling.push(started.elapsed());

            let started = Instant::now();
            grpc_replay(&mut audit, as_auditor.clone()).await?;
            replay.push(started.elapsed());

            let started = Instant::now();
            grpc_replay(&mut audit, as_coach.clone()).await?;
            replay_as_coach.push(started.elapsed());

            let started = Instant::now();
            grpc_replay(&mut audit, as_auditor_default_pages.clone()).await?;
            replay_default_pages.push(started.elapsed());

            let started = Instant::now();
            let history =
                store::events::history_recorded_by(&pool, participant_id, recorded_by, usize::MAX)
                    .await?;
            store_read.push(started.elapsed());
            anyhow::ensure!(history.len() == length);

            // As the service does it: folded while the rows arrive, then every entry rendered.
            let started = Instant::now();
            let mut fold = domain::replay::ReplayFold::new(parsed.cut, 0);
            store::events::each_recorded_by(
                &pool,
                participant_id,
                recorded_by,
                usize::MAX,
                |entry| fold.push(entry),
            )
            .await?;
            let prepared = ledger::replay::prepare_folded(fold.finish(), parsed.clone(), &auditor);
            let entries = prepared.entries().count();
            let _state = prepared.state(entries);
            anyhow::ensure!(entries == length);
            in_process.push(started.elapsed());
        }
        let ceiling = p50(ceiling);
        // Machine CPU per call, over at least this long of each path back to back.
        let cpu_span = Duration::from_secs(1);
        // (wall, busy) per call: the ceiling's, then the replay's in default pages.
        let mut cpu_per_call = Vec::new();
        for replaying in [false, true] {
            let (Some(busy_before), started) = (bench::machine_busy(), Instant::now()) else {
                break;
            };
            let mut calls = 0u32;
            while started.elapsed() < cpu_span {
                if replaying {
                    grpc_replay(&mut audit, as_auditor_default_pages.clone()).await?;
                } else {
                    bare_read(&pool, participant_id).await?;
                }
                calls += 1;
            }
            let wall = started.elapsed() / calls;
            let busy = bench::machine_busy()
                .map(|busy_after| busy_after.saturating_sub(busy_before) / calls)
                .unwrap_or_default();
            cpu_per_call.push((wall, busy));
        }
        println!("  {length} entries, as recorded at a past T (every entry in the cut):");
        println!(
            "    ceiling: SELECT … ORDER BY sequence + deserialisation   {:>9.2} ms",
            milliseconds(ceiling)
        );
        for (name, samples) in [
            (
                "ReplayParticipant over gRPC, as the auditor, pages of 1,000",
                replay,
            ),
            (
                "ReplayParticipant over gRPC, as the auditor, default pages",
                replay_default_pages,
            ),
            (
                "ReplayParticipant over gRPC, through the coach's eyes, pages of 1,000",
                replay_as_coach,
            ),
            ("the replay's own work in process (no gRPC)", in_process),
            ("the store read and the recorded-at cut alone", store_read),
        ] {
            let measured = p50(samples);
            println!(
                "    {name:<70} {:>9.2} ms   {:.2} × ceiling",
                milliseconds(measured),
                ratio(measured, ceiling)
            );
        }
        if let [(ceiling_wall, ceiling_busy), (replay_wall, replay_busy)] = cpu_per_call[..] {
            println!(
                "    machine CPU per call, back to back for {} s (every process, /proc/stat):",
                cpu_span.as_secs()
            );
            println!(
                "      ceiling {:.2} ms busy in {:.2} ms ({:.2} cores); replay in default pages {:.2} ms busy in {:.2} ms ({:.2} cores): {:.2} × the ceiling's CPU",
                milliseconds(ceiling_busy),
                milliseconds(ceiling_wall),
                ratio(ceiling_busy, ceiling_wall),
                milliseconds(replay_busy),
                milliseconds(replay_wall),
                ratio(replay_busy, replay_wall),
                ratio(replay_busy, ceiling_busy)
            );
        }
    }
    pool.close().await;
    owner.close().await;
    stack.stop().await;
    Ok(())
}
