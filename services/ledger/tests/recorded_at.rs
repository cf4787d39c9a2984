//! `recorded_at` is what an auditor's replay "as recorded at T" cuts on (issue 11), so it must
//! be the time the entry was finally committed and increase strictly along each participant's
//! chain: a retry after a store outage must not keep the time its first attempt read, and a
//! ledger host whose clock is behind another's must still stamp each entry after the previous
//! one (the stamp is part of the hashed link, so the chain must still verify).
//!
//! Each test runs its own ledgers on its own database and stream, with clocks of its own.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use domain::{EventId, ParticipantId};
use sqlx::Connection;
use testkit::TestDatabase;

/// A clock the test sets, forwards or backwards.
struct SetClock(Mutex<DateTime<Utc>>);

impl SetClock {
    fn at(now: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(now)))
    }

    fn set(&self, now: DateTime<Utc>) {
        if let Ok(mut held) = self.0.lock() {
            *held = now;
        }
    }
}

impl ledger::clock::Clock for SetClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
            .lock()
            .map(|now| *now)
            .unwrap_or_else(|poisoned| *poisoned.into_inner())
    }
}

fn noon(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

async fn start_ledger(
    config: &ledger::LedgerConfig,
    clock: Arc<dyn ledger::clock::Clock>,
) -> anyhow::Result<(tokio::sync::watch::Sender<bool>, ledger::RunningLedger)> {
    let (shutdown, receiver) = tokio::sync::watch::channel(false);
    let running = ledger::start(config.clone(), clock, receiver).await?;
    Ok((shutdown, running))
}

/// The stored entry of `event_id`, once it is stored (within `within`).
async fn stored(
    database: &TestDatabase,
    event_id: EventId,
    within: Duration,
) -> anyhow::Result<domain::ParticipantEvent> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(pool) = database.pool().await {
            let found = store::events::find_by_event_id(&pool, event_id).await;
            pool.close().await;
            if let Ok(Some(recorded)) = found {
                return Ok(recorded.event);
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "{event_id} not stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn set_connections_allowed(database: &TestDatabase, allowed: bool) -> anyhow::Result<()> {
    let mut admin = sqlx::PgConnection::connect(&testkit::admin_database_url()).await?;
    sqlx::query(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS {allowed}",
        database.name
    ))
    .execute(&mut admin)
    .await?;
    if !allowed {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&database.name)
        .execute(&mut admin)
        .await?;
    }
    admin.close().await?;
    Ok(())
}

fn count(counter: &prometheus_client::metrics::counter::Counter) -> u64 {
    counter.get()
}

/// A delivery that meets a store outage is retried until the store is back; the entry it
/// finally commits carries the time of that commit, not the time its first attempt began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_committed_after_an_outage_is_stamped_when_it_commits() -> anyhow::Result<()> {
    let database = TestDatabase::create().await?;
    let bus_config = bus::BusConfig {
        ack_wait_ms: 1_000,
        fetch_wait_ms: 200,
        park_after_deliveries: 3,
        max_deliver: 10,
        ..testkit::unique_bus_config()
    };
    let mut config = testkit::ledger_config(&database, &bus_config);
    config.ingest.store_retry_backoff_ms = 50;
    config.ingest.store_retry_backoff_max_ms = 200;
    config.store.pool_acquire_timeout_ms = 500;
    let clock = SetClock::at(noon(2));
    let (shutdown, running) = start_ledger(&config, clock.clone()).await?;
    let publisher = bus::SubmissionPublisher::new(
        bus::connect(&bus_config, "recorded-at-test").await?,
        &bus_config,
    );
    let participant_id = ParticipantId(uuid::Uuid::new_v4());
    let first = testkit::coach_referral(participant_id, None);
    publisher.publish(&first).await?;
    stored(&database, first.envelope.event_id, Duration::from_secs(20)).await?;

    set_connections_allowed(&database, false).await?;
    let second = testkit::coach_employer_contact(participant_id, "Acme");
    publisher.publish(&second).await?;
    // The lane has tried the delivery and met the outage...
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&running.counters.store_failures) == 0 {
        anyhow::ensure!(Instant::now() < deadline, "the outage was never met");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and commits only a day later by the ledger's clock.
    let store_is_back_at = noon(3);
    clock.set(store_is_back_at);
    set_connections_allowed(&database, true).await?;
    let entry = stored(&database, second.envelope.event_id, Duration::from_secs(30)).await?;
    assert_eq!(
        entry.recorded_at,
        store_is_back_at,
        "stamped when it committed, not when its first attempt began ({})",
        noon(2)
    );

    let _ = shutdown.send(true);
    running.wait().await;
    database.drop_database().await;
    testkit::delete_streams(&bus_config).await;
    Ok(())
}

/// Two ledger hosts whose clocks disagree by an hour write one participant's history in turn:
/// the host that is behind stamps its entry just after the previous one, not an hour before
/// it, and the chain verifies end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_at_increases_along_a_chain_written_by_hosts_whose_clocks_disagree(
) -> anyhow::Result<()> {
    let database = TestDatabase::create().await?;
    let bus_config = testkit::unique_bus_config();
    let config = testkit::ledger_config(&database, &bus_config);
    let publisher = bus::SubmissionPublisher::new(
        bus::connect(&bus_config, "recorded-at-test").await?,
        &bus_config,
    );
    let participant_id = ParticipantId(uuid::Uuid::new_v4());
    let ahead = noon(2) + chrono::Duration::hours(1);
    let behind = noon(2);

    let (shutdown, running) = start_ledger(&config, SetClock::at(ahead)).await?;
    let first = testkit::coach_referral(participant_id, None);
    publisher.publish(&first).await?;
    let first_entry = stored(&database, first.envelope.event_id, Duration::from_secs(20)).await?;
    let _ = shutdown.send(true);
    running.wait().await;

    let (shutdown, running) = start_ledger(&config, SetClock::at(behind)).await?;
    let mut entries = vec![first_entry];
    for submission in [
        testkit::coach_employer_contact(participant_id, "Acme"),
        testkit::coach_employer_contact(participant_id, "Acme"),
    ] {
        publisher.publish(&submission).await?;
        entries.push(
            stored(
                &database,
                submission.envelope.event_id,
                Duration::from_secs(20),
            )
            .await?,
        );
    }
    assert_eq!(entries[0].recorded_at, ahead);
    for pair in entries.windows(2) {
        assert_eq!(
            pair[1].recorded_at,
            pair[0].recorded_at + domain::aggregate::RECORDED_AT_STEP,
            "entry {} is stamped just after entry {}",
            pair[1].sequence,
            pair[0].sequence
        );
    }
    let pool = database.pool().await?;
    let report = store::events::verify_chain(&pool, participant_id).await?;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified_entries, 3);
    pool.close().await;

    let _ = shutdown.send(true);
    running.wait().await;
    database.drop_database().await;
    testkit::delete_streams(&bus_config).await;
    Ok(())
}
