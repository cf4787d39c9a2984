//! PostgreSQL going away under load: the server crashes (stopped `immediate`, so every
//! connection is cut and new ones are refused) while events keep arriving, and comes back a
//! few seconds later after crash recovery. The ledger must neither panic nor lose anything: it
//! stops acking while the store is gone, retries with backoff, and resumes by itself; every
//! event ends up stored once, nothing is parked, and the projector catches up.
//!
//! The machine's shared PostgreSQL serves tests running in parallel, so this test runs its own
//! (`testkit::PrivatePostgres`: initdb into a temporary directory, its own port).

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::{EventBody, ParticipantId, ReferralSource};

/// Events published while the test runs, one every `PUBLISH_INTERVAL`.
const EVENTS: usize = 300;
const PUBLISH_INTERVAL: Duration = Duration::from_millis(10);
/// How long PostgreSQL stays down: several ack_waits, so deliveries come back while it is gone.
const OUTAGE: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_crash_and_restart_under_load_loses_nothing() -> anyhow::Result<()> {
    let postgres = testkit::PrivatePostgres::start().await?;
    let database = testkit::TestDatabase::create_on(&postgres.admin_url()).await?;
    let bus_config = bus::BusConfig {
        ack_wait_ms: 1_000,
        fetch_wait_ms: 200,
        // Waiting out an outage is not a poison message.
        park_after_deliveries: 5,
        max_deliver: 50,
        ..testkit::unique_bus_config()
    };
    let mut config = testkit::ledger_config(&database, &bus_config);
    config.ingest.store_retry_backoff_ms = 50;
    config.ingest.store_retry_backoff_max_ms = 500;
    config.store.pool_acquire_timeout_ms = 500;
    let (shutdown, receiver) = tokio::sync::watch::channel(false);
    let ledger = ledger::start(config, Arc::new(ledger::clock::SystemClock), receiver).await?;
    let counters = ledger.counters.clone();

    let client = bus::connect(&bus_config, "postgres-restart-test").await?;
    let publisher = bus::SubmissionPublisher::new(client, &bus_config);
    let publishing = tokio::spawn(async move {
        let mut published = Vec::with_capacity(EVENTS);
        for _ in 0..EVENTS {
            let submission = testkit::coach_submission(
                ParticipantId(uuid::Uuid::new_v4()),
                EventBody::ParticipantReferred {
                    source: ReferralSource::Ifo,
                    referrer: None,
                },
            );
            publisher.publish(&submission).await?;
            published.push(submission.envelope.event_id.0);
            tokio::time::sleep(PUBLISH_INTERVAL).await;
        }
        anyhow::Ok(published)
    });

    // Crash it once the ledger is busy applying.
    let deadline = Instant::now() + Duration::from_secs(20);
    while counters.accepted.get() < (EVENTS / 5) as u64 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the ledger did not start applying"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    postgres.crash()?;
    let accepted_at_crash = counters.accepted.get();
    tokio::time::sleep(OUTAGE).await;
    assert!(
        counters.store_failures.get() > 0,
        "the ledger noticed the store was gone"
    );
    assert_ne!(
        counters.store_unavailable_since_seconds.get(),
        0,
        "the outage shows in the metrics while it lasts"
    );
    // Nothing can have been applied while the store was down (one commit may have been in
    // flight at the crash).
    assert!(counters.accepted.get() <= accepted_at_crash + 1);
    postgres.start_server().await?;

    let published = publishing.await??;
    let pool = database.pool().await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (stored, projected) = loop {
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&pool)
            .await?;
        let projected: i64 = sqlx::query_scalar("SELECT count(*) FROM timeline_entries")
            .fetch_one(&pool)
            .await?;
        if (stored as usize >= EVENTS && projected >= stored) || Instant::now() > deadline {
            break (stored, projected);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stored_once: Vec<(uuid::Uuid, i64)> =
        sqlx::query_as("SELECT event_id, count(*) FROM events GROUP BY event_id")
            .fetch_all(&pool)
            .await?;
    let stored_once: std::collections::HashMap<uuid::Uuid, i64> = stored_once.into_iter().collect();
    for event_id in &published {
        assert_eq!(
            stored_once.get(event_id),
            Some(&1),
            "{event_id} stored once"
        );
    }
    assert_eq!(stored as usize, EVENTS);
    assert_eq!(
        projected, stored,
        "the projector caught up after the restart"
    );
    let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM parked_messages")
        .fetch_one(&pool)
        .await?;
    assert_eq!(parked, 0, "an outage parks nothing");
    assert_eq!(counters.parked.get(), 0);
    assert_eq!(counters.store_data_refusals.get(), 0);
    assert_eq!(
        counters.store_unavailable_since_seconds.get(),
        0,
        "the outage is over"
    );
    pool.close().await;

    let _ = shutdown.send(true);
    ledger.wait().await;
    testkit::delete_streams(&bus_config).await;
    Ok(())
}
