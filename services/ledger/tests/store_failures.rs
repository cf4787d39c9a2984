//! How the ledger meets a store that says no (issue 9, defects 1 and 8). PostgreSQL refuses
//! some messages for good (a NUL in a free-text field, SQLSTATE 22P05): those must be parked
//! after a bounded number of attempts so the other participants of their lane go on. An outage
//! is nobody's message's fault: it must park nothing and lose nothing, however long it lasts.
//! A lane wedged by an outage must not keep the ledger from stopping. And an event store
//! edited around its append-only triggers must get nothing more appended to the broken chain,
//! nor after an entry that lost the stream position the ledger keeps in its metadata.
//!
//! Each test runs its own ledger on its own database and stream; outages are made on the
//! test's own database only (`ALLOW_CONNECTIONS false` and terminating its connections).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::{EventId, ParticipantId, Submission};
use sqlx::Connection;
use testkit::TestDatabase;

/// One ledger on the test's own database and stream, and a publisher onto that stream.
struct LedgerUnderTest {
    database: TestDatabase,
    bus_config: bus::BusConfig,
    config: ledger::LedgerConfig,
    publisher: bus::SubmissionPublisher,
    shutdown: tokio::sync::watch::Sender<bool>,
    ledger: Option<ledger::RunningLedger>,
}

impl LedgerUnderTest {
    async fn start(
        bus_config: bus::BusConfig,
        change: impl FnOnce(&mut ledger::LedgerConfig),
    ) -> anyhow::Result<Self> {
        let database = TestDatabase::create().await?;
        let mut config = testkit::ledger_config(&database, &bus_config);
        change(&mut config);
        let (shutdown, receiver) = tokio::sync::watch::channel(false);
        let ledger = ledger::start(
            config.clone(),
            Arc::new(ledger::clock::SystemClock),
            receiver,
        )
        .await?;
        let client = bus::connect(&bus_config, "store-failures-test").await?;
        let publisher = bus::SubmissionPublisher::new(client, &bus_config);
        Ok(Self {
            database,
            bus_config,
            config,
            publisher,
            shutdown,
            ledger: Some(ledger),
        })
    }

    async fn publish(&self, submission: &Submission) -> anyhow::Result<EventId> {
        self.publisher.publish(submission).await?;
        Ok(submission.envelope.event_id)
    }

    fn counters(&self) -> anyhow::Result<Arc<ledger::IngestCounters>> {
        Ok(self
            .ledger
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the ledger is stopped"))?
            .counters
            .clone())
    }

    fn render_metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .ledger
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the ledger is stopped"))?
            .render_metrics())
    }

    /// Stops the ledger (it drains and releases its partitions), keeping the database and the
    /// stream for `start_again`.
    async fn pause(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(ledger) = self.ledger.take() {
            ledger.wait().await;
        }
    }

    /// Starts a new ledger on the same database and stream (after the previous one stopped).
    async fn start_again(&mut self) -> anyhow::Result<()> {
        let (shutdown, receiver) = tokio::sync::watch::channel(false);
        self.ledger = Some(
            ledger::start(
                self.config.clone(),
                Arc::new(ledger::clock::SystemClock),
                receiver,
            )
            .await?,
        );
        self.shutdown = shutdown;
        Ok(())
    }

    async fn stop(self) {
        let _ = self.shutdown.send(true);
        if let Some(ledger) = self.ledger {
            ledger.wait().await;
        }
        self.database.drop_database().await;
        testkit::delete_streams(&self.bus_config).await;
    }
}

/// Waits until `condition` holds on the test's database, or fails naming `what`.
async fn eventually<F, Fut>(
    pool: &sqlx::PgPool,
    within: Duration,
    what: &str,
    condition: F,
) -> anyhow::Result<()>
where
    F: Fn(sqlx::PgPool) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition(pool.clone()).await? {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How often each event id is stored.
async fn stored_event_ids(pool: &sqlx::PgPool) -> anyhow::Result<HashMap<uuid::Uuid, i64>> {
    let rows: Vec<(uuid::Uuid, i64)> =
        sqlx::query_as("SELECT event_id, count(*) FROM events GROUP BY event_id")
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().collect())
}

async fn parked(pool: &sqlx::PgPool) -> anyhow::Result<Vec<(i64, String)>> {
    Ok(sqlx::query_as(
        "SELECT stream_sequence, reason FROM parked_messages ORDER BY stream_sequence",
    )
    .fetch_all(pool)
    .await?)
}

/// Makes the test's own database refuse every connection and ends the open ones.
async fn start_outage(database: &TestDatabase) -> anyhow::Result<()> {
    let mut admin = sqlx::PgConnection::connect(&testkit::admin_database_url()).await?;
    sqlx::query(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS false",
        database.name
    ))
    .execute(&mut admin)
    .await?;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&database.name)
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(())
}

async fn end_outage(database: &TestDatabase) -> anyhow::Result<()> {
    let mut admin = sqlx::PgConnection::connect(&testkit::admin_database_url()).await?;
    sqlx::query(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS true",
        database.name
    ))
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(())
}

/// A NUL in a free-text field would be refused by PostgreSQL's jsonb for good, so the ledger's
/// decode parks the message at once (`payload_unstorable`, found by `crates/fuzz`) without
/// trying the store, whether the aggregate would have accepted it or recorded a rejection
/// (which stores the attempted body), and every participant behind it on the same lane goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_a_nul_is_parked_and_the_rest_of_its_lane_goes_on() -> anyhow::Result<()> {
    let under_test = LedgerUnderTest::start(testkit::unique_bus_config(), |config| {
        // One lane: every participant is behind the poisoned message.
        config.ingest.lanes = 1;
    })
    .await?;
    let [nul_referral, rejected_nul, rejected_clean, last] =
        [(); 4].map(|()| ParticipantId(uuid::Uuid::new_v4()));

    // The aggregate would accept it; the store would refuse it.
    under_test
        .publish(&testkit::coach_referral(nul_referral, Some("unit\u{0}one")))
        .await?;
    // Not enrolled: the aggregate records a rejection, which stores the body with its NUL.
    let rejected_nul_referral = under_test
        .publish(&testkit::coach_referral(rejected_nul, None))
        .await?;
    under_test
        .publish(&testkit::coach_employer_contact(
            rejected_nul,
            "Acme\u{0}Corp",
        ))
        .await?;
    // The same rejection without a NUL is recorded: the NUL, not the rule, is what parks.
    under_test
        .publish(&testkit::coach_referral(rejected_clean, None))
        .await?;
    let clean_rejection = under_test
        .publish(&testkit::coach_employer_contact(
            rejected_clean,
            "Acme Corp",
        ))
        .await?;
    let last_referral = under_test
        .publish(&testkit::coach_referral(last, None))
        .await?;

    let pool = under_test.database.pool().await?;
    eventually(
        &pool,
        Duration::from_secs(20),
        "the participants behind the NUL messages are applied",
        |pool| async move { Ok(stored_event_ids(&pool).await?.len() >= 4) },
    )
    .await?;
    let stored = stored_event_ids(&pool).await?;
    for event_id in [rejected_nul_referral, clean_rejection, last_referral] {
        assert_eq!(stored.get(&event_id.0), Some(&1), "{event_id} stored once");
    }
    assert_eq!(stored.len(), 4, "{stored:?}");
    let clean_rejection_type: String =
        sqlx::query_scalar("SELECT event_type FROM events WHERE event_id = $1")
            .bind(clean_rejection.0)
            .fetch_one(&pool)
            .await?;
    assert_eq!(
        clean_rejection_type, "SubmissionRejected",
        "the NUL-free twin is a rejection, so the parked one was a rejection entry"
    );
    let parked = parked(&pool).await?;
    assert_eq!(parked.len(), 2, "{parked:?}");
    for (_, reason) in &parked {
        assert!(
            reason.starts_with("payload_unstorable: field ")
                && reason.contains("must not contain U+0000"),
            "{reason}"
        );
    }
    let counters = under_test.counters()?;
    assert_eq!(testkit::counted(|| counters.parked.get(), 2).await, 2);
    assert_eq!(
        counters.store_data_refusals.get(),
        0,
        "parked at decode: the store was never asked"
    );
    assert_eq!(counters.store_failures.get(), 0, "no outage was reported");
    pool.close().await;
    under_test.stop().await;
    Ok(())
}

/// Any data error (here a test-only trigger raising SQLSTATE 22023 for one marked message) is
/// tried exactly `data_error_attempts_max` times, then parked with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_error_is_parked_after_the_configured_number_of_attempts() -> anyhow::Result<()> {
    const DATA_ERROR_ATTEMPTS_MAX: u32 = 4;
    let under_test = LedgerUnderTest::start(testkit::unique_bus_config(), |config| {
        config.ingest.lanes = 1;
        config.ingest.data_error_attempts_max = DATA_ERROR_ATTEMPTS_MAX;
    })
    .await?;
    let pool = under_test.database.pool().await?;
    // A sequence counts the attempts: nextval survives the refused transaction's rollback.
    for statement in [
        "CREATE SEQUENCE refused_attempts",
        "GRANT USAGE ON SEQUENCE refused_attempts TO ips_service",
        "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.payload::text LIKE '%refuse-me%' THEN
                 PERFORM nextval('refused_attempts');
                 RAISE EXCEPTION 'test refusal of a marked message' USING ERRCODE = '22023';
             END IF;
             RETURN NEW;
         END $$",
        "CREATE TRIGGER refuse_marked BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_marked()",
    ] {
        sqlx::query(statement).execute(&pool).await?;
    }
    let marked = ParticipantId(uuid::Uuid::new_v4());
    let behind = ParticipantId(uuid::Uuid::new_v4());
    under_test
        .publish(&testkit::coach_referral(marked, Some("refuse-me")))
        .await?;
    let behind_referral = under_test
        .publish(&testkit::coach_referral(behind, None))
        .await?;

    eventually(
        &pool,
        Duration::from_secs(20),
        "the marked message is parked and the one behind it applied",
        |pool| async move {
            Ok(parked(&pool).await?.len() == 1 && !stored_event_ids(&pool).await?.is_empty())
        },
    )
    .await?;
    let attempts: i64 = sqlx::query_scalar("SELECT last_value FROM refused_attempts")
        .fetch_one(&pool)
        .await?;
    assert_eq!(attempts, i64::from(DATA_ERROR_ATTEMPTS_MAX));
    let parked = parked(&pool).await?;
    assert!(
        parked[0]
            .1
            .starts_with("store_refused_data: SQLSTATE 22023"),
        "{parked:?}"
    );
    assert!(parked[0].1.contains("refused 4 times"), "{parked:?}");
    assert_eq!(
        stored_event_ids(&pool).await?,
        HashMap::from([(behind_referral.0, 1)])
    );
    pool.close().await;
    under_test.stop().await;
    Ok(())
}

/// Settings for the outage tests: a short ack_wait, fast pool timeouts and retries, so that
/// an outage spans many attempts and several ack_waits.
fn outage_bus_config() -> bus::BusConfig {
    bus::BusConfig {
        ack_wait_ms: 1_000,
        fetch_wait_ms: 200,
        // A message waiting behind an outage must not count as a poison message either.
        park_after_deliveries: 3,
        max_deliver: 10,
        ..testkit::unique_bus_config()
    }
}

/// An outage lasting longer than data_error_attempts_max × ack_wait (and longer than
/// park_after_deliveries × ack_wait) is not the messages' fault: nothing is parked, nothing is
/// lost, every event is stored exactly once, and the outage shows in the metrics while it
/// lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_attempts_limit_parks_nothing_and_loses_nothing(
) -> anyhow::Result<()> {
    const DATA_ERROR_ATTEMPTS_MAX: u32 = 2;
    let bus_config = outage_bus_config();
    let outage = Duration::from_millis(bus_config.ack_wait_ms * 5);
    let under_test = LedgerUnderTest::start(bus_config, |config| {
        config.ingest.data_error_attempts_max = DATA_ERROR_ATTEMPTS_MAX;
        config.ingest.store_retry_backoff_ms = 50;
        config.ingest.store_retry_backoff_max_ms = 400;
        config.store.pool_acquire_timeout_ms = 500;
    })
    .await?;
    assert!(outage > Duration::from_millis(u64::from(DATA_ERROR_ATTEMPTS_MAX) * 1_000));
    let participants: Vec<ParticipantId> = (0..6)
        .map(|_| ParticipantId(uuid::Uuid::new_v4()))
        .collect();
    let mut published = Vec::new();
    for participant_id in &participants {
        published.push(
            under_test
                .publish(&testkit::coach_referral(*participant_id, None))
                .await?,
        );
    }
    let pool = under_test.database.pool().await?;
    eventually(
        &pool,
        Duration::from_secs(20),
        "the first events",
        |pool| async move { Ok(stored_event_ids(&pool).await?.len() >= 6) },
    )
    .await?;
    pool.close().await;

    start_outage(&under_test.database).await?;
    let outage_began = Instant::now();
    for participant_id in &participants {
        published.push(
            under_test
                .publish(&testkit::coach_employer_contact(
                    *participant_id,
                    "Acme Corp",
                ))
                .await?,
        );
        published.push(
            under_test
                .publish(&testkit::coach_referral(
                    ParticipantId(uuid::Uuid::new_v4()),
                    None,
                ))
                .await?,
        );
    }
    let counters = under_test.counters()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while counters.store_unavailable_since_seconds.get() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(
        counters.store_unavailable_since_seconds.get(),
        0,
        "the outage shows in the metrics while it lasts"
    );
    tokio::time::sleep(outage.saturating_sub(outage_began.elapsed())).await;
    end_outage(&under_test.database).await?;

    let pool = under_test.database.pool().await?;
    let expected = published.len();
    eventually(
        &pool,
        Duration::from_secs(30),
        "every event after the outage",
        |pool| async move { Ok(stored_event_ids(&pool).await?.len() >= expected) },
    )
    .await?;
    let stored = stored_event_ids(&pool).await?;
    for event_id in &published {
        assert_eq!(stored.get(&event_id.0), Some(&1), "{event_id} stored once");
    }
    assert_eq!(stored.len(), published.len());
    assert_eq!(parked(&pool).await?, Vec::new(), "nothing parked");
    assert_eq!(counters.parked.get(), 0);
    assert_eq!(counters.store_data_refusals.get(), 0);
    assert!(
        counters.store_failures.get() > u64::from(DATA_ERROR_ATTEMPTS_MAX),
        "the outage spanned many attempts: {}",
        counters.store_failures.get()
    );
    assert_eq!(
        counters.store_unavailable_since_seconds.get(),
        0,
        "the outage is over"
    );
    pool.close().await;
    under_test.stop().await;
    Ok(())
}

/// A lane wedged on a store that does not answer (here: a lock held on the events table, so
/// every statement waits for statement_timeout; an unreachable host does the same with the
/// pool's acquire timeout) with its queue full behind it must not keep the ledger from
/// stopping: it stops within drain_timeout_ms plus a margin, hands the unfinished deliveries
/// back, and a later ledger stores every one of them once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_wedged_on_the_store_stops_within_the_drain_limit() -> anyhow::Result<()> {
    const DRAIN_TIMEOUT_MS: u64 = 1_000;
    let mut under_test = LedgerUnderTest::start(testkit::unique_bus_config(), |config| {
        config.ingest.lanes = 1;
        config.ingest.lane_queue_length_max = 2;
        config.ingest.drain_timeout_ms = DRAIN_TIMEOUT_MS;
        // The product defaults: each attempt may wait this long.
        config.store.statement_timeout_ms = 30_000;
        config.store.pool_acquire_timeout_ms = 5_000;
    })
    .await?;
    let mut published = vec![
        under_test
            .publish(&testkit::coach_referral(
                ParticipantId(uuid::Uuid::new_v4()),
                None,
            ))
            .await?,
    ];
    let pool = under_test.database.pool().await?;
    eventually(
        &pool,
        Duration::from_secs(20),
        "the first event",
        |pool| async move { Ok(!stored_event_ids(&pool).await?.is_empty()) },
    )
    .await?;

    let mut lock_holder = pool.begin().await?;
    sqlx::query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock_holder)
        .await?;
    for _ in 0..8 {
        published.push(
            under_test
                .publish(&testkit::coach_referral(
                    ParticipantId(uuid::Uuid::new_v4()),
                    None,
                ))
                .await?,
        );
    }
    let counters = under_test.counters()?;
    // The lane waits on the lock with the first of them; the rest fill its queue.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND usename = 'ips_service'",
        )
        .fetch_one(&pool)
        .await?;
        if waiting > 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the lane never waited on the lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let wedged = under_test
        .ledger
        .take()
        .ok_or_else(|| anyhow::anyhow!("the ledger is running"))?;
    let stopping = Instant::now();
    under_test.shutdown.send(true)?;
    let stopped = tokio::time::timeout(Duration::from_secs(120), wedged.wait()).await;
    let stopping_took = stopping.elapsed();
    let limit = Duration::from_millis(DRAIN_TIMEOUT_MS) + ledger::ingest::DRAIN_GRACE;
    assert!(
        stopped.is_ok() && stopping_took < limit + Duration::from_secs(2),
        "stopping took {stopping_took:?} (finished: {}); the limit is {limit:?} plus a margin",
        stopped.is_ok()
    );
    assert!(
        counters.handed_back_at_shutdown.get() > 0,
        "the unfinished deliveries were handed back"
    );

    lock_holder.rollback().await?;
    under_test.start_again().await?;
    let expected = published.len();
    eventually(
        &pool,
        Duration::from_secs(30),
        "every event after the restart",
        |pool| async move { Ok(stored_event_ids(&pool).await?.len() >= expected) },
    )
    .await?;
    let stored = stored_event_ids(&pool).await?;
    for event_id in &published {
        assert_eq!(stored.get(&event_id.0), Some(&1), "{event_id} stored once");
    }
    assert_eq!(parked(&pool).await?, Vec::new(), "nothing parked");
    pool.close().await;
    under_test.stop().await;
    Ok(())
}

/// An entry edited around the append-only triggers breaks the participant's hash chain. The
/// ledger verifies the chain when it loads the participant for a write, appends nothing to it,
/// parks the message naming the broken entry, counts it, and goes on with everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_appended_to_a_tampered_chain() -> anyhow::Result<()> {
    let under_test = LedgerUnderTest::start(testkit::unique_bus_config(), |_| {}).await?;
    let tampered = ParticipantId(uuid::Uuid::new_v4());
    let other = ParticipantId(uuid::Uuid::new_v4());
    under_test
        .publish(&testkit::coach_referral(tampered, None))
        .await?;
    under_test
        .publish(&testkit::coach_referral(other, None))
        .await?;
    let pool = under_test.database.pool().await?;
    eventually(
        &pool,
        Duration::from_secs(20),
        "both referrals",
        |pool| async move { Ok(stored_event_ids(&pool).await?.len() == 2) },
    )
    .await?;

    // As the superuser, around the trigger, as an intruder with database access would.
    testkit::edit_entry_around_append_guard(
        &pool,
        "payload = jsonb_set(payload, '{envelope,actor,person_id}', '\"someone-else\"')",
        &tampered.to_string(),
        1,
    )
    .await?;

    let refused = under_test
        .publish(&testkit::coach_employer_contact(tampered, "Acme Corp"))
        .await?;
    let behind = under_test
        .publish(&testkit::coach_referral(
            ParticipantId(uuid::Uuid::new_v4()),
            None,
        ))
        .await?;
    let other_contact = under_test
        .publish(&testkit::coach_employer_contact(other, "Acme Corp"))
        .await?;
    eventually(
        &pool,
        Duration::from_secs(20),
        "the message for the tampered participant is parked and the others applied",
        |pool| async move {
            let stored = stored_event_ids(&pool).await?;
            Ok(!parked(&pool).await?.is_empty()
                && stored.contains_key(&behind.0)
                && stored.contains_key(&other_contact.0))
        },
    )
    .await?;
    let stored = stored_event_ids(&pool).await?;
    assert!(
        !stored.contains_key(&refused.0),
        "nothing appended to the broken chain"
    );
    let tampered_entries: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
            .bind(tampered.to_string())
            .fetch_one(&pool)
            .await?;
    assert_eq!(tampered_entries, 1);
    let parked = parked(&pool).await?;
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert!(
        parked[0].1.starts_with(&format!(
            "chain_broken: entry 1 of participant {tampered} fails verification (hash_mismatch)"
        )),
        "{parked:?}"
    );
    let counters = under_test.counters()?;
    assert_eq!(counters.chain_broken_refusals.get(), 1);
    let scrape = under_test.render_metrics()?;
    assert_eq!(
        telemetry::parse_exposition(&scrape)?.value("ips_ledger_chain_broken_refusals_total"),
        Some(1.0),
        "{scrape}"
    );
    pool.close().await;
    under_test.stop().await;
    Ok(())
}

/// Every entry the ledger commits keeps its stream position in its metadata, which the hash
/// chain does not cover; the next write reads it to know which earlier messages are applied.
/// An entry without one was not written by the ledger: the write is parked naming the entry,
/// as for a broken chain, rather than read as position 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_without_its_stream_position_is_reported_and_gets_nothing_appended(
) -> anyhow::Result<()> {
    let under_test = LedgerUnderTest::start(testkit::unique_bus_config(), |_| {}).await?;
    let edited = ParticipantId(uuid::Uuid::new_v4());
    under_test
        .publish(&testkit::coach_referral(edited, None))
        .await?;
    let pool = under_test.database.pool().await?;
    eventually(
        &pool,
        Duration::from_secs(20),
        "the referral",
        |pool| async move { Ok(stored_event_ids(&pool).await?.len() == 1) },
    )
    .await?;

    testkit::edit_entry_around_append_guard(
        &pool,
        "metadata = metadata - 'stream_sequence'",
        &edited.to_string(),
        1,
    )
    .await?;

    let refused = under_test
        .publish(&testkit::coach_employer_contact(edited, "Acme Corp"))
        .await?;
    let behind = under_test
        .publish(&testkit::coach_referral(
            ParticipantId(uuid::Uuid::new_v4()),
            None,
        ))
        .await?;
    eventually(
        &pool,
        Duration::from_secs(20),
        "the message for the edited participant is parked and the other applied",
        |pool| async move {
            Ok(!parked(&pool).await?.is_empty()
                && stored_event_ids(&pool).await?.contains_key(&behind.0))
        },
    )
    .await?;
    assert!(
        !stored_event_ids(&pool).await?.contains_key(&refused.0),
        "nothing appended after an entry without its stream position"
    );
    let parked = parked(&pool).await?;
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert!(
        parked[0].1.starts_with(&format!(
            "stored_history_unreadable: entry 1 of participant {edited}: its metadata has no `stream_sequence`"
        )),
        "{parked:?}"
    );
    pool.close().await;
    under_test.stop().await;
    Ok(())
}

/// The event-id guard is a unique index, which postgres-es reports as a conflict like the
/// optimistic check. An event id already recorded for another participant never stops
/// conflicting: it is parked at once with the reason, not after park_after_deliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_id_recorded_for_another_participant_is_parked_as_reused() -> anyhow::Result<()> {
    let under_test = LedgerUnderTest::start(testkit::unique_bus_config(), |_| {}).await?;
    let first = testkit::coach_referral(ParticipantId(uuid::Uuid::new_v4()), None);
    under_test.publish(&first).await?;
    let mut reused = testkit::coach_referral(ParticipantId(uuid::Uuid::new_v4()), None);
    reused.envelope.event_id = first.envelope.event_id;
    // Without a message id, so JetStream's dedupe does not drop the copy.
    let client = bus::connect(&under_test.bus_config, "store-failures-test").await?;
    async_nats::jetstream::new(client)
        .publish(
            bus::Subjects::new(&under_test.bus_config.subject_prefix)
                .event(reused.envelope.agency, reused.envelope.participant_id),
            serde_json::to_vec(&reused)?.into(),
        )
        .await?
        .await?;
    let pool = under_test.database.pool().await?;
    eventually(
        &pool,
        Duration::from_secs(20),
        "the reused event id is parked",
        |pool| async move { Ok(!parked(&pool).await?.is_empty()) },
    )
    .await?;
    let parked = parked(&pool).await?;
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert!(parked[0].1.starts_with("event_id_reused"), "{parked:?}");
    assert_eq!(
        stored_event_ids(&pool).await?,
        HashMap::from([(first.envelope.event_id.0, 1)])
    );
    pool.close().await;
    under_test.stop().await;
    Ok(())
}

/// A message the store refuses can also be met in a participant's catch-up, read from the
/// stream ahead of its own redelivery (a crashed ledger held it). It is parked after the same
/// number of attempts, and the delivery that overtook it is then applied, without waiting for
/// ack_wait. The refusal is a test-only trigger's (SQLSTATE 22023 for a marked message): a NUL,
/// which PostgreSQL refuses too, no longer reaches the store (the decode parks it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_met_in_catch_up_is_parked_and_the_later_one_applied(
) -> anyhow::Result<()> {
    const DATA_ERROR_ATTEMPTS_MAX: u32 = 3;
    let bus_config = bus::BusConfig {
        ack_wait_ms: 120_000,
        ..testkit::unique_bus_config()
    };
    // A first ledger migrates the database; the refusal is installed while none runs.
    let mut under_test = LedgerUnderTest::start(bus_config.clone(), |config| {
        config.ingest.data_error_attempts_max = DATA_ERROR_ATTEMPTS_MAX;
    })
    .await?;
    under_test.pause().await;
    let pool = under_test.database.pool().await?;
    for statement in [
        "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.payload::text LIKE '%refuse-me%' THEN
                 RAISE EXCEPTION 'test refusal of a marked message' USING ERRCODE = '22023';
             END IF;
             RETURN NEW;
         END $$",
        "CREATE TRIGGER refuse_marked BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_marked()",
    ] {
        sqlx::query(statement).execute(&pool).await?;
    }
    // The crashed ledger takes the marked message and never acks it.
    let client = bus::connect(&bus_config, "store-failures-test").await?;
    let participant_id = ParticipantId(uuid::Uuid::new_v4());
    let crashed_consumer = bus::IngestConsumer::open(
        client.clone(),
        &bus_config,
        testkit::partition_of(participant_id, bus_config.partitions),
    )
    .await?;
    let publisher = bus::SubmissionPublisher::new(client, &bus_config);
    publisher
        .publish(&testkit::coach_referral(participant_id, Some("refuse-me")))
        .await?;
    let mut pull = crashed_consumer.pull().await?;
    let held = match pull.next().await {
        Some(Ok(delivery)) => delivery.stream_sequence(),
        _ => anyhow::bail!("the crashed consumer got nothing"),
    };
    drop(pull);
    let later = testkit::coach_referral(participant_id, None);
    publisher.publish(&later).await?;

    under_test.start_again().await?;
    eventually(
        &pool,
        Duration::from_secs(20),
        "the later message is applied, far sooner than ack_wait",
        |pool| async move { Ok(!stored_event_ids(&pool).await?.is_empty()) },
    )
    .await?;
    assert_eq!(
        stored_event_ids(&pool).await?,
        HashMap::from([(later.envelope.event_id.0, 1)])
    );
    let parked_rows: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT stream_sequence, reason, delivered_count FROM parked_messages")
            .fetch_all(&pool)
            .await?;
    assert_eq!(parked_rows.len(), 1, "{parked_rows:?}");
    assert_eq!(parked_rows[0].0, i64::try_from(held)?);
    assert!(
        parked_rows[0]
            .1
            .starts_with("store_refused_data: SQLSTATE 22023"),
        "{parked_rows:?}"
    );
    assert_eq!(
        parked_rows[0].2, 0,
        "parked from the stream, before its redelivery"
    );
    let counters = under_test.counters()?;
    assert_eq!(
        counters.store_data_refusals.get(),
        u64::from(DATA_ERROR_ATTEMPTS_MAX)
    );
    pool.close().await;
    under_test.stop().await;
    Ok(())
}
