//! Group commit writes rows without postgres-es's own commit, so they must be exactly the rows
//! postgres-es writes: here the same decisions are committed through postgres-es into one
//! database and in group commits into another, and every column the events table holds
//! (generated and defaulted ones aside: positions, transaction, time) must be equal; what
//! the batch wrote must read back through postgres-es and `load_verified_history` as decided,
//! with intact chains. And a delivery PostgreSQL refuses inside a batch (a conflict, refused
//! data) is rolled back to its savepoint, answered with its own error, while the rest commits;
//! a batch whose COMMIT fails stores nothing at all.

use std::collections::HashMap;

use cqrs_es::persist::EventStoreAggregateContext;
use cqrs_es::{Aggregate, EventStore};
use domain::{Participant, ParticipantEvent, ParticipantId};
use sqlx::PgPool;
use store::group_commit::{commit_group, CommitOutcome, PendingCommit};
use testkit::TestDatabase;

/// The participant's entries for `submissions`, decided through the aggregate as the ledger
/// decides them (each one chained onto the one before).
async fn decided(submissions: Vec<domain::Submission>) -> anyhow::Result<Vec<ParticipantEvent>> {
    let mut participant = Participant::default();
    let mut events = Vec::new();
    for submission in submissions {
        let sink = cqrs_es::event_sink::EventSink::default();
        let command = domain::ParticipantCommand::Record {
            submission,
            recorded_at: chrono::Utc::now(),
        };
        participant
            .handle(command, &(), &sink)
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        events.extend(sink.collect().await);
    }
    Ok(events)
}

fn metadata(stream_sequence: u64) -> HashMap<String, String> {
    HashMap::from([
        ("stream_sequence".to_owned(), stream_sequence.to_string()),
        ("subject".to_owned(), "ips.v1.0.municipality.x".to_owned()),
    ])
}

async fn migrated_database() -> anyhow::Result<(TestDatabase, PgPool)> {
    let database = TestDatabase::create().await?;
    let pool = database.pool().await?;
    store::migrate(&pool).await?;
    Ok((database, pool))
}

type StoredRow = (
    String,
    String,
    i64,
    String,
    String,
    serde_json::Value,
    serde_json::Value,
    uuid::Uuid,
);

/// Every row as stored, but for what PostgreSQL generates (position, transaction, time).
async fn stored_rows(pool: &PgPool) -> anyhow::Result<Vec<StoredRow>> {
    Ok(sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, event_id
           FROM events ORDER BY aggregate_id, sequence",
    )
    .fetch_all(pool)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_commit_writes_exactly_the_rows_postgres_es_writes() -> anyhow::Result<()> {
    let participants: Vec<ParticipantId> = (0..3)
        .map(|_| ParticipantId(uuid::Uuid::new_v4()))
        .collect();
    // Each participant's deliveries: (events of one delivery, its stream position).
    let mut deliveries: Vec<Vec<(Vec<ParticipantEvent>, u64)>> = Vec::new();
    let mut stream_sequence = 0;
    for (index, participant_id) in participants.iter().enumerate() {
        let mut submissions = vec![testkit::coach_referral(*participant_id, None)];
        for contact in 0..index + 1 {
            submissions.push(testkit::coach_employer_contact(
                *participant_id,
                &format!("Employer {contact}"),
            ));
        }
        let events = decided(submissions).await?;
        let mut own = Vec::new();
        let mut events = events.into_iter();
        // The first delivery of the last participant carries two events, as postgres-es allows.
        let first_take = if index == 2 { 2 } else { 1 };
        own.push((events.by_ref().take(first_take).collect(), {
            stream_sequence += 1;
            stream_sequence
        }));
        for event in events {
            stream_sequence += 1;
            own.push((vec![event], stream_sequence));
        }
        deliveries.push(own);
    }

    // Through postgres-es, one commit per delivery, as the ledger without group commit.
    let (through_postgres_es, postgres_es_pool) = migrated_database().await?;
    let event_store = store::participant_event_store(postgres_es_pool.clone());
    for (participant_id, own) in participants.iter().zip(&deliveries) {
        let mut current_sequence = 0;
        for (events, stream_sequence) in own {
            let context = EventStoreAggregateContext::<Participant> {
                aggregate_id: participant_id.to_string(),
                aggregate: Participant::default(),
                current_sequence,
                current_snapshot: None,
            };
            event_store
                .commit(events.clone(), context, metadata(*stream_sequence))
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            current_sequence += events.len();
        }
    }

    // In group commits: round k holds every participant's k-th delivery.
    let (grouped, grouped_pool) = migrated_database().await?;
    let rounds = deliveries.iter().map(Vec::len).max().unwrap_or(0);
    let mut heads = vec![0_u64; participants.len()];
    for round in 0..rounds {
        let mut batch = Vec::new();
        for (index, own) in deliveries.iter().enumerate() {
            if let Some((events, stream_sequence)) = own.get(round) {
                batch.push(PendingCommit {
                    participant_id: participants[index],
                    expected_sequence: heads[index],
                    events: events.clone(),
                    metadata: metadata(*stream_sequence),
                });
                heads[index] += events.len() as u64;
            }
        }
        let report = commit_group(&grouped_pool, &batch).await?;
        assert!(
            report
                .outcomes
                .iter()
                .all(|outcome| matches!(outcome, CommitOutcome::Written)),
            "{report:?}"
        );
        assert!(!report.written_per_savepoint, "nothing was refused");
    }

    let expected = stored_rows(&postgres_es_pool).await?;
    assert_eq!(
        expected.len(),
        deliveries
            .iter()
            .flatten()
            .map(|(events, _)| events.len())
            .sum::<usize>()
    );
    assert_eq!(stored_rows(&grouped_pool).await?, expected);

    // Read back through postgres-es and through the ledger's verified load.
    let grouped_store = store::participant_event_store(grouped_pool.clone());
    for (participant_id, own) in participants.iter().zip(&deliveries) {
        let decided: Vec<ParticipantEvent> = own
            .iter()
            .flat_map(|(events, _)| events.iter().cloned())
            .collect();
        let loaded = grouped_store
            .load_events(&participant_id.to_string())
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        assert_eq!(
            loaded
                .iter()
                .map(|envelope| envelope.payload.clone())
                .collect::<Vec<_>>(),
            decided
        );
        assert_eq!(
            loaded
                .iter()
                .map(|envelope| envelope.sequence)
                .collect::<Vec<_>>(),
            (1..=decided.len()).collect::<Vec<_>>()
        );
        let history = store::events::load_verified_history(&grouped_pool, *participant_id).await?;
        assert!(history.first_broken_link.is_none(), "{history:?}");
        assert_eq!(
            history
                .entries
                .iter()
                .map(|entry| entry.event.clone())
                .collect::<Vec<_>>(),
            decided
        );
        let chain = store::events::verify_chain(&grouped_pool, *participant_id).await?;
        assert!(chain.first_broken_link.is_none(), "{chain:?}");
        assert_eq!(chain.verified_entries, decided.len() as u64);
    }
    postgres_es_pool.close().await;
    grouped_pool.close().await;
    through_postgres_es.drop_database().await;
    grouped.drop_database().await;
    Ok(())
}

/// A test-only trigger refusing (SQLSTATE 22023) any row whose payload carries the marker.
async fn refuse_marked_rows(pool: &PgPool) -> anyhow::Result<()> {
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
        sqlx::query(statement).execute(pool).await?;
    }
    Ok(())
}

fn sqlstate(outcome: &CommitOutcome) -> Option<String> {
    match outcome {
        CommitOutcome::Refused(sqlx::Error::Database(error)) => {
            error.code().map(|code| code.into_owned())
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_delivery_is_rolled_back_alone_and_the_rest_of_its_batch_commits(
) -> anyhow::Result<()> {
    let (database, pool) = migrated_database().await?;
    refuse_marked_rows(&pool).await?;
    let [conflicting, good, refused, good_after] =
        [(); 4].map(|()| ParticipantId(uuid::Uuid::new_v4()));
    // `conflicting` already has its first entry: a second writer's first entry conflicts.
    let first = decided(vec![testkit::coach_referral(conflicting, None)]).await?;
    let report = commit_group(
        &pool,
        &[PendingCommit {
            participant_id: conflicting,
            expected_sequence: 0,
            events: first,
            metadata: metadata(1),
        }],
    )
    .await?;
    assert!(matches!(report.outcomes[..], [CommitOutcome::Written]));

    let pending = |participant_id, events, stream_sequence| PendingCommit {
        participant_id,
        expected_sequence: 0,
        events,
        metadata: metadata(stream_sequence),
    };
    let batch = vec![
        pending(
            good,
            decided(vec![testkit::coach_referral(good, None)]).await?,
            2,
        ),
        pending(
            conflicting,
            decided(vec![testkit::coach_referral(conflicting, None)]).await?,
            3,
        ),
        pending(
            refused,
            decided(vec![testkit::coach_referral(refused, Some("refuse-me"))]).await?,
            4,
        ),
        pending(
            good_after,
            decided(vec![testkit::coach_referral(good_after, None)]).await?,
            5,
        ),
    ];
    let report = commit_group(&pool, &batch).await?;
    assert!(report.written_per_savepoint);
    assert_eq!(report.savepoint_rollbacks, 2);
    assert!(
        matches!(report.outcomes[0], CommitOutcome::Written),
        "{report:?}"
    );
    assert_eq!(sqlstate(&report.outcomes[1]).as_deref(), Some("23505"));
    assert_eq!(sqlstate(&report.outcomes[2]).as_deref(), Some("22023"));
    assert!(
        matches!(report.outcomes[3], CommitOutcome::Written),
        "{report:?}"
    );
    let stored: Vec<(String, i64, uuid::Uuid)> = sqlx::query_as(
        "SELECT aggregate_id, sequence, event_id FROM events ORDER BY global_position",
    )
    .fetch_all(&pool)
    .await?;
    let expected_ids: Vec<uuid::Uuid> = [&batch[0], &batch[3]]
        .iter()
        .map(|commit| commit.events[0].envelope.event_id.0)
        .collect();
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert_eq!(stored[0].0, conflicting.to_string());
    let mut written: Vec<uuid::Uuid> = stored[1..].iter().map(|row| row.2).collect();
    written.sort();
    let mut expected_sorted = expected_ids.clone();
    expected_sorted.sort();
    assert_eq!(written, expected_sorted);
    // The two that committed did so in one transaction.
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT tx_id) FROM events WHERE sequence = 1 AND aggregate_id <> $1",
    )
    .bind(conflicting.to_string())
    .fetch_one(&pool)
    .await?;
    assert_eq!(transactions, 1);

    // Alone in its batch, a refused delivery is answered without a second pass.
    let alone = commit_group(
        &pool,
        &[pending(
            refused,
            decided(vec![testkit::coach_referral(refused, Some("refuse-me"))]).await?,
            6,
        )],
    )
    .await?;
    assert!(!alone.written_per_savepoint);
    assert_eq!(sqlstate(&alone.outcomes[0]).as_deref(), Some("22023"));
    pool.close().await;
    database.drop_database().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_commit_fails_stores_nothing() -> anyhow::Result<()> {
    let (database, pool) = migrated_database().await?;
    // Checked only at COMMIT: the statement and every savepoint pass, the transaction fails.
    for statement in [
        "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.payload::text LIKE '%refuse-at-commit%' THEN
                 RAISE EXCEPTION 'test refusal at commit' USING ERRCODE = '23514';
             END IF;
             RETURN NEW;
         END $$",
        "CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON events
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()",
    ] {
        sqlx::query(statement).execute(&pool).await?;
    }
    let [good, marked] = [(); 2].map(|()| ParticipantId(uuid::Uuid::new_v4()));
    let batch = vec![
        PendingCommit {
            participant_id: good,
            expected_sequence: 0,
            events: decided(vec![testkit::coach_referral(good, None)]).await?,
            metadata: metadata(1),
        },
        PendingCommit {
            participant_id: marked,
            expected_sequence: 0,
            events: decided(vec![testkit::coach_referral(
                marked,
                Some("refuse-at-commit"),
            )])
            .await?,
            metadata: metadata(2),
        },
    ];
    assert!(commit_group(&pool, &batch).await.is_err());
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    assert_eq!(stored, 0);
    pool.close().await;
    database.drop_database().await;
    Ok(())
}
