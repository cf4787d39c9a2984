//! Crash test: the ledger process is SIGKILLed at least three times while it consumes a stream
//! of 1,000 events over 100 participants, and restarted each time. Afterwards every event id is
//! in PostgreSQL exactly once, every participant's chain verifies, nothing was parked, no event
//! was rejected and each participant's events are stored in stream order (so order survived the
//! crashes), and the timeline read model holds every event once. Finally a SIGTERM drains the ledger and it exits cleanly.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use domain::{
    ConsentId, ConsentParty, DataCategory, EventBody, ParticipantId, PersonId, ReferralSource,
    Submission, UnitId,
};
use sqlx::PgPool;
use testkit::TestDatabase;

const PARTICIPANTS: usize = 100;
const EVENTS_PER_PARTICIPANT: usize = 10;
const EVENTS_TOTAL: i64 = (PARTICIPANTS * EVENTS_PER_PARTICIPANT) as i64;
const KILLS_WANTED: usize = 4;

fn submission(participant_id: ParticipantId, body: EventBody) -> Submission {
    testkit::coach_submission(participant_id, body)
}

/// Ten events per participant whose order matters: referral, enrolment, then consents.
fn participant_history(participant_id: ParticipantId) -> Vec<Submission> {
    let date = |month: u32| NaiveDate::from_ymd_opt(2026, month, 1).unwrap_or_default();
    let mut history = vec![
        submission(
            participant_id,
            EventBody::ParticipantReferred {
                source: ReferralSource::Vuxenpsykiatri,
                referrer: None,
            },
        ),
        submission(
            participant_id,
            EventBody::ParticipantEnrolled {
                unit: UnitId("hudiksvall-ips".into()),
                coach: PersonId("coach-17".into()),
            },
        ),
    ];
    for month in 1..=(EVENTS_PER_PARTICIPANT as u32 - 2) {
        history.push(submission(
            participant_id,
            EventBody::ConsentGranted {
                consent_id: ConsentId(uuid::Uuid::new_v4()),
                discloser: ConsentParty::Forsakringskassan,
                recipient: ConsentParty::IpsUnit,
                data_categories: vec![DataCategory::BenefitDecisions],
                valid_from: date(month),
                valid_to: date(month + 1),
            },
        ));
    }
    history
}

/// The ledger process; killed when dropped, so a failing test leaves no orphan behind. Its
/// stderr goes to a file, shown when it exits by itself.
struct LedgerProcess(Child, std::path::PathBuf);

impl LedgerProcess {
    /// Fails the test, with the ledger's own words, if it has exited by itself.
    fn assert_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.0.try_wait()? {
            let log = std::fs::read_to_string(&self.1).unwrap_or_default();
            anyhow::bail!("the ledger exited by itself ({status}):\n{log}");
        }
        Ok(())
    }
}

impl Drop for LedgerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(&self.1);
    }
}

fn spawn_ledger(
    database: &TestDatabase,
    bus_config: &bus::BusConfig,
) -> anyhow::Result<LedgerProcess> {
    let log_path =
        std::env::temp_dir().join(format!("crash-test-ledger-{}.log", uuid::Uuid::new_v4()));
    let log = std::fs::File::create(&log_path)?;
    let child = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .envs(testkit::ledger_process_environment(database, bus_config))
        .env("IPS_BUS__ACK_WAIT_MS", bus_config.ack_wait_ms.to_string())
        .env(
            "IPS_BUS__PINNED_CLIENT_TIMEOUT_MS",
            bus_config.pinned_client_timeout_ms.to_string(),
        )
        .env(
            "IPS_BUS__FETCH_WAIT_MS",
            bus_config.fetch_wait_ms.to_string(),
        )
        .env("IPS_INGEST__STORE_RETRY_BACKOFF_MAX_MS", "1000")
        .env("IPS_SERVER__LISTEN_ADDRESS", "127.0.0.1:0")
        .env("IPS_METRICS_LISTEN_ADDRESS", "127.0.0.1:0")
        .env(
            "IPS_LOG",
            std::env::var("IPS_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    Ok(LedgerProcess(child, log_path))
}

async fn stored_events(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_ledger_loses_nothing_and_duplicates_nothing() -> anyhow::Result<()> {
    let database = TestDatabase::create().await?;
    let bus_config = bus::BusConfig {
        ack_wait_ms: 2_000,
        ..testkit::unique_bus_config()
    };
    let client = bus::connect(&bus_config, "crash-test-publisher").await?;
    bus::setup::ensure_stream(&async_nats::jetstream::new(client.clone()), &bus_config).await?;
    let publisher = bus::SubmissionPublisher::new(client, &bus_config);

    // Interleave participants so every pull mixes many of them, and publish at a steady pace so
    // the ledger is always mid-stream when it is killed.
    let histories: Vec<Vec<Submission>> = (0..PARTICIPANTS)
        .map(|_| participant_history(ParticipantId(uuid::Uuid::new_v4())))
        .collect();
    let mut published_ids = BTreeSet::new();
    let mut ordered = Vec::new();
    for step in 0..EVENTS_PER_PARTICIPANT {
        for history in &histories {
            published_ids.insert(history[step].envelope.event_id.0);
            ordered.push(history[step].clone());
        }
    }
    let publishing = tokio::spawn(async move {
        for chunk in ordered.chunks(20) {
            for submission in chunk {
                publisher.publish(submission).await?;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        anyhow::Ok(())
    });

    let pool = database.pool().await?;
    let mut ledger = spawn_ledger(&database, &bus_config)?;
    let mut kills_while_consuming = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while kills_while_consuming < KILLS_WANTED && Instant::now() < deadline {
        let before = stored_events(&pool).await?;
        // Let it make some progress after (re)start, then kill it mid-stream.
        while stored_events(&pool).await? < before + 40 && Instant::now() < deadline {
            ledger.assert_running()?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let at_kill = stored_events(&pool).await?;
        if at_kill >= EVENTS_TOTAL {
            break;
        }
        ledger.0.kill()?;
        ledger.0.wait()?;
        kills_while_consuming += 1;
        ledger = spawn_ledger(&database, &bus_config)?;
    }
    publishing.await??;
    while stored_events(&pool).await? < EVENTS_TOTAL && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        kills_while_consuming >= 3,
        "the ledger was killed only {kills_while_consuming} times while consuming"
    );

    let (stored, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM events")
            .fetch_one(&pool)
            .await?;
    assert_eq!(
        (stored, distinct),
        (EVENTS_TOTAL, EVENTS_TOTAL),
        "every event exactly once"
    );
    let stored_ids: BTreeSet<uuid::Uuid> = sqlx::query_scalar("SELECT event_id FROM events")
        .fetch_all(&pool)
        .await?
        .into_iter()
        .collect();
    assert_eq!(stored_ids, published_ids);
    let rejected: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'SubmissionRejected'")
            .fetch_one(&pool)
            .await?;
    assert_eq!(
        rejected, 0,
        "a rejection means a participant's events were applied out of order"
    );
    // Stricter than "no rejection": consents do not depend on each other's order, so check
    // that each participant's events were stored in the order the stream holds them.
    let stored_out_of_stream_order: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT (metadata->>'stream_sequence')::bigint AS stream_sequence,
                    lag((metadata->>'stream_sequence')::bigint)
                        OVER (PARTITION BY aggregate_id ORDER BY sequence) AS previous
             FROM events) ordered
         WHERE stream_sequence <= previous",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(stored_out_of_stream_order, 0);
    let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM parked_messages")
        .fetch_one(&pool)
        .await?;
    assert_eq!(parked, 0);
    for participant_id in store::events::participant_ids(&pool).await? {
        let report = store::events::verify_chain(&pool, participant_id).await?;
        assert!(report.is_intact(), "{participant_id}: {report:?}");
        assert_eq!(report.verified_entries, EVENTS_PER_PARTICIPANT as u64);
    }
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM timeline_entries")
        .fetch_one(&pool)
        .await?
        < EVENTS_TOTAL
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let projected: i64 = sqlx::query_scalar("SELECT count(*) FROM timeline_entries")
        .fetch_one(&pool)
        .await?;
    assert_eq!(projected, EVENTS_TOTAL);

    // Graceful shutdown: SIGTERM drains and exits with success.
    let terminated = Command::new("kill")
        .arg("-TERM")
        .arg(ledger.0.id().to_string())
        .status()?;
    assert!(terminated.success());
    let exit_deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = ledger.0.try_wait()? {
            break Some(status);
        }
        if Instant::now() > exit_deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        status.is_some_and(|status| status.success()),
        "SIGTERM must drain and exit cleanly: {status:?}"
    );

    pool.close().await;
    database.drop_database().await;
    testkit::delete_streams(&bus_config).await;
    Ok(())
}
