//! Group commit (issue 14): the ledger commits many deliveries in one PostgreSQL transaction,
//! each under its own savepoint. One message whose data PostgreSQL refuses must fail alone:
//! the good ones of its batch commit (in the very transaction its refusal was rolled back in),
//! it is retried and parked as without batching, and nothing is lost or stored twice. And two
//! ledgers racing on the same participants, their batches conflicting row by row, must still
//! store every event once, in stream order, with intact chains.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::ParticipantId;
use testkit::TestDatabase;

/// Waits until `condition` holds, or fails naming `what`.
async fn eventually<F, Fut>(within: Duration, what: &str, condition: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await? {
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

/// Attempts recorded by the refusing trigger, each with the transaction it ran in (at most
/// this many; the test's message is refused far fewer times).
const RECORDED_REFUSALS_MAX: i64 = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refused_message_fails_alone_in_its_batch_and_is_parked() -> anyhow::Result<()> {
    const DATA_ERROR_ATTEMPTS_MAX: u32 = 3;
    const GOOD_MESSAGES: usize = 15;
    let database = TestDatabase::create().await?;
    let bus_config = testkit::unique_bus_config();
    let mut config = testkit::ledger_config(&database, &bus_config);
    config.ingest.lanes = 8;
    // Long enough that the messages published right after the refused one join its batch.
    config.ingest.commit_linger_ms = 200;
    config.ingest.data_error_attempts_max = DATA_ERROR_ATTEMPTS_MAX;
    assert!(
        config.ingest.commit_batch_size_max > 1,
        "group commit is on"
    );
    let (shutdown, receiver) = tokio::sync::watch::channel(false);
    let ledger = ledger::start(config, Arc::new(ledger::clock::SystemClock), receiver).await?;
    let pool = database.pool().await?;
    // Every refusal records its transaction in a sequence of its own (setval survives the
    // rollback), so the test can tell which transactions a refusal was rolled back in.
    let mut statements = vec![
        "CREATE SEQUENCE refused_attempts".to_owned(),
        "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
         DECLARE attempt bigint;
         BEGIN
             IF NEW.payload::text LIKE '%refuse-me%' THEN
                 attempt := nextval('refused_attempts');
                 PERFORM setval(format('refused_in_%s', attempt)::regclass,
                                pg_current_xact_id()::text::bigint);
                 RAISE EXCEPTION 'test refusal of a marked message' USING ERRCODE = '22023';
             END IF;
             RETURN NEW;
         END $$"
            .to_owned(),
        "CREATE TRIGGER refuse_marked BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_marked()"
            .to_owned(),
    ];
    for attempt in 1..=RECORDED_REFUSALS_MAX {
        statements.push(format!("CREATE SEQUENCE refused_in_{attempt}"));
    }
    for statement in &statements {
        sqlx::query(statement).execute(&pool).await?;
    }

    let client = bus::connect(&bus_config, "group-commit-test").await?;
    let publisher = bus::SubmissionPublisher::new(client, &bus_config);
    let marked = testkit::coach_referral(ParticipantId(uuid::Uuid::new_v4()), Some("refuse-me"));
    publisher.publish(&marked).await?;
    let mut good = Vec::new();
    for _ in 0..GOOD_MESSAGES {
        let submission = testkit::coach_referral(ParticipantId(uuid::Uuid::new_v4()), None);
        publisher.publish(&submission).await?;
        good.push(submission.envelope.event_id.0);
    }

    eventually(
        Duration::from_secs(30),
        "the refused message parked and every good one stored",
        || async {
            let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM parked_messages")
                .fetch_one(&pool)
                .await?;
            Ok(parked == 1 && stored_event_ids(&pool).await?.len() == GOOD_MESSAGES)
        },
    )
    .await?;
    // Settled: nothing more arrives after the park.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stored = stored_event_ids(&pool).await?;
    let each_once: HashMap<uuid::Uuid, i64> = good.iter().map(|event_id| (*event_id, 1)).collect();
    assert_eq!(
        stored, each_once,
        "every good message once, the refused one not at all"
    );
    let reason: String = sqlx::query_scalar("SELECT reason FROM parked_messages")
        .fetch_one(&pool)
        .await?;
    assert!(
        reason.starts_with("store_refused_data: SQLSTATE 22023"),
        "{reason}"
    );
    assert!(
        reason.contains(&format!("refused {DATA_ERROR_ATTEMPTS_MAX} times")),
        "{reason}"
    );
    let counters = &ledger.counters;
    assert_eq!(
        counters.store_data_refusals.get(),
        u64::from(DATA_ERROR_ATTEMPTS_MAX),
        "tried exactly data_error_attempts_max times"
    );
    assert_eq!(testkit::counted(|| counters.parked.get(), 1).await, 1);
    assert_eq!(counters.store_failures.get(), 0, "no outage was reported");
    assert!(
        counters.commit_savepoint_rollbacks.get() >= 1,
        "the refused message was rolled back to its savepoint"
    );
    assert!(
        counters.commit_batch_deliveries.get() > counters.commit_batches.get(),
        "batches held several deliveries: {} in {}",
        counters.commit_batch_deliveries.get(),
        counters.commit_batches.get()
    );

    // Its refusal was rolled back inside a transaction that committed good messages.
    let attempts: i64 = sqlx::query_scalar("SELECT last_value FROM refused_attempts")
        .fetch_one(&pool)
        .await?;
    assert!(
        (1..=RECORDED_REFUSALS_MAX).contains(&attempts),
        "{attempts}"
    );
    let mut refused_in = HashSet::new();
    for attempt in 1..=attempts {
        let transaction: i64 =
            sqlx::query_scalar(&format!("SELECT last_value FROM refused_in_{attempt}"))
                .fetch_one(&pool)
                .await?;
        refused_in.insert(transaction);
    }
    let committed_in: HashSet<i64> =
        sqlx::query_scalar("SELECT DISTINCT tx_id::text::bigint FROM events")
            .fetch_all(&pool)
            .await?
            .into_iter()
            .collect();
    assert!(
        !refused_in.is_disjoint(&committed_in),
        "the refused message shared a committed batch with good ones: refused in {refused_in:?}, committed in {committed_in:?}"
    );

    pool.close().await;
    let _ = shutdown.send(true);
    ledger.wait().await;
    database.drop_database().await;
    testkit::delete_streams(&bus_config).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_inside_batches_still_store_each_event_once_in_stream_order() -> anyhow::Result<()>
{
    const PARTICIPANTS: usize = 4;
    const EVENTS_PER_PARTICIPANT: usize = 5;
    // Each ledger is handed every message, so the two race on every participant and one of
    // them conflicts inside its batch (a linger long enough to gather several into one).
    let rivals = testkit::RivalLedgers::start("group-commit-test", |config| {
        config.ingest.commit_linger_ms = 100;
    })
    .await?;
    let participants: Vec<ParticipantId> = (0..PARTICIPANTS)
        .map(|_| ParticipantId(uuid::Uuid::new_v4()))
        .collect();
    let mut published = Vec::new();
    for round in 0..EVENTS_PER_PARTICIPANT {
        for participant_id in &participants {
            let submission = if round == 0 {
                testkit::coach_referral(*participant_id, None)
            } else {
                testkit::coach_employer_contact(*participant_id, &format!("Employer {round}"))
            };
            rivals.publisher.publish(&submission).await?;
            published.push((*participant_id, submission.envelope.event_id.0));
        }
    }
    let total = published.len() as u64;
    rivals
        .wait_until_each_answered(total, Duration::from_secs(60))
        .await?;
    let sum = |counter: fn(&ledger::IngestCounters) -> u64| rivals.sum(counter);
    assert_eq!(
        sum(|counters| counters.accepted.get() + counters.rejected.get()),
        total,
        "each message recorded once, by one of the two"
    );
    assert!(
        sum(|counters| counters.conflicts.get()) > 0,
        "the ledgers raced"
    );
    assert!(
        sum(|counters| counters.commit_savepoint_rollbacks.get()) > 0,
        "a conflict was rolled back to its savepoint inside a batch"
    );
    assert_eq!(sum(|counters| counters.parked.get()), 0);

    let pool = rivals.database.pool().await?;
    for participant_id in &participants {
        let rows: Vec<(i64, uuid::Uuid, String)> = sqlx::query_as(
            "SELECT sequence, event_id, metadata->>'stream_sequence' FROM events
              WHERE aggregate_id = $1 ORDER BY sequence",
        )
        .bind(participant_id.to_string())
        .fetch_all(&pool)
        .await?;
        let expected: Vec<uuid::Uuid> = published
            .iter()
            .filter(|(published_for, _)| published_for == participant_id)
            .map(|(_, event_id)| *event_id)
            .collect();
        let stored: Vec<uuid::Uuid> = rows.iter().map(|(_, event_id, _)| *event_id).collect();
        assert_eq!(stored, expected, "once each, in stream order");
        assert_eq!(
            rows.iter()
                .map(|(sequence, _, _)| *sequence)
                .collect::<Vec<_>>(),
            (1..=EVENTS_PER_PARTICIPANT as i64).collect::<Vec<_>>()
        );
        let stream_sequences: Vec<u64> = rows
            .iter()
            .map(|(_, _, stream_sequence)| stream_sequence.parse())
            .collect::<Result<_, _>>()?;
        assert!(
            stream_sequences.windows(2).all(|pair| pair[0] < pair[1]),
            "{stream_sequences:?}"
        );
        let report = store::events::verify_chain(&pool, *participant_id).await?;
        assert!(report.first_broken_link.is_none(), "{report:?}");
    }
    pool.close().await;
    rivals.stop().await;
    Ok(())
}
