//! The aggregate cache keeps folded participants between deliveries, but the store decides:
//! here two ledgers, each with its own consumer on one stream, both apply every message about
//! the same participants, so for every message one of them holds a cached participant the other
//! has just moved on. Its commit must conflict, drop the cached participant and load afresh
//! (never retry from the stale copy), and the redelivered-event-id path must then answer from
//! the reloaded state. Every event is stored once, in stream order, with an intact chain and
//! strictly increasing `recorded_at`. And an edit made around the append-only guard is still
//! refused although the participant was cached before the edit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::ParticipantId;
use testkit::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_cached_participant_conflicts_is_dropped_and_the_store_decides(
) -> anyhow::Result<()> {
    const PARTICIPANTS: usize = 2;
    const EVENTS_PER_PARTICIPANT: usize = 6;
    let two = testkit::RivalLedgers::start("aggregate-cache-test", |config| {
        config.ingest.aggregate_cache_bytes_max = 16 * 1024 * 1024;
    })
    .await?;
    let participants: Vec<ParticipantId> = (0..PARTICIPANTS)
        .map(|_| ParticipantId(uuid::Uuid::new_v4()))
        .collect();
    let mut published = Vec::new();
    // One message at a time, each handled by both ledgers before the next: from the second
    // message about a participant on, both hold it cached at the same head, so whichever
    // ledger commits second holds a stale copy.
    for round in 0..EVENTS_PER_PARTICIPANT {
        for participant_id in &participants {
            let submission = if round == 0 {
                testkit::coach_referral(*participant_id, None)
            } else {
                testkit::coach_employer_contact(*participant_id, &format!("Employer {round}"))
            };
            two.publisher.publish(&submission).await?;
            published.push((*participant_id, submission.envelope.event_id));
            two.wait_until_each_answered(published.len() as u64, Duration::from_secs(30))
                .await?;
        }
    }
    let events = published.len() as u64;
    assert_eq!(two.sum(|c| c.accepted.get() + c.rejected.get()), events);
    assert_eq!(
        two.sum(|c| c.duplicates.get()),
        events,
        "each message recorded by one ledger and found recorded by the other"
    );
    let conflicts = two.sum(|c| c.conflicts.get());
    let later_messages = (PARTICIPANTS * (EVENTS_PER_PARTICIPANT - 1)) as u64;
    assert!(
        conflicts >= later_messages,
        "every later message met a stale cached participant: {conflicts} conflicts for {later_messages}"
    );
    for ledger in &two.ledgers {
        let counters = &ledger.counters;
        // One load from the store per participant, and one more after each conflict: a
        // conflicting participant is never retried from the cache.
        assert_eq!(
            counters.aggregate_cache_misses.get(),
            PARTICIPANTS as u64 + counters.conflicts.get(),
            "misses {} conflicts {}",
            counters.aggregate_cache_misses.get(),
            counters.conflicts.get()
        );
        assert!(counters.aggregate_cache_hits.get() > 0);
    }

    let pool = two.database.pool().await?;
    for participant_id in &participants {
        let rows: Vec<(i64, uuid::Uuid, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
            "SELECT sequence, event_id, (payload->>'recorded_at')::timestamptz FROM events
              WHERE aggregate_id = $1 ORDER BY sequence",
        )
        .bind(participant_id.to_string())
        .fetch_all(&pool)
        .await?;
        let expected: Vec<uuid::Uuid> = published
            .iter()
            .filter(|(published_for, _)| published_for == participant_id)
            .map(|(_, event_id)| event_id.0)
            .collect();
        let stored: Vec<uuid::Uuid> = rows.iter().map(|(_, event_id, _)| *event_id).collect();
        assert_eq!(stored, expected, "once each, in stream order");
        let sequences: Vec<i64> = rows.iter().map(|(sequence, _, _)| *sequence).collect();
        assert_eq!(
            sequences,
            (1..=EVENTS_PER_PARTICIPANT as i64).collect::<Vec<_>>()
        );
        assert!(
            rows.windows(2).all(|pair| pair[0].2 < pair[1].2),
            "recorded_at strictly increasing: {rows:?}"
        );
        let report = store::events::verify_chain(&pool, *participant_id).await?;
        assert!(report.first_broken_link.is_none(), "{report:?}");
    }
    pool.close().await;
    two.stop().await;
    Ok(())
}

/// A cached participant was verified when it was loaded; an edit made afterwards around the
/// append-only guard must still stop the next append, though the participant is cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_around_the_guard_is_caught_for_a_cached_participant() -> anyhow::Result<()> {
    let database = TestDatabase::create().await?;
    let bus_config = testkit::unique_bus_config();
    let config = testkit::ledger_config(&database, &bus_config);
    assert!(
        config.ingest.aggregate_cache_bytes_max > 0,
        "the cache is on"
    );
    let (shutdown, receiver) = tokio::sync::watch::channel(false);
    let ledger = ledger::start(config, Arc::new(ledger::clock::SystemClock), receiver).await?;
    let client = bus::connect(&bus_config, "aggregate-cache-test").await?;
    let publisher = bus::SubmissionPublisher::new(client, &bus_config);
    let pool = database.pool().await?;
    let tampered = ParticipantId(uuid::Uuid::new_v4());
    publisher
        .publish(&testkit::coach_referral(tampered, None))
        .await?;
    publisher
        .publish(&testkit::coach_employer_contact(tampered, "Acme Corp"))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while ledger.counters.accepted.get() + ledger.counters.rejected.get() < 2 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the two entries were not applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        ledger.counters.aggregate_cache_hits.get() >= 1,
        "the second write found the participant cached"
    );

    testkit::edit_entry_around_append_guard(
        &pool,
        "payload = jsonb_set(payload, '{envelope,actor,person_id}', '\"someone-else\"')",
        &tampered.to_string(),
        1,
    )
    .await?;

    let refused = testkit::coach_employer_contact(tampered, "Beta AB");
    publisher.publish(&refused).await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while ledger.counters.chain_broken_refusals.get() == 0 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the write after the edit was not refused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
        .bind(tampered.to_string())
        .fetch_one(&pool)
        .await?;
    assert_eq!(entries, 2, "nothing appended after the edit");
    pool.close().await;
    let _ = shutdown.send(true);
    ledger.wait().await;
    database.drop_database().await;
    testkit::delete_streams(&bus_config).await;
    Ok(())
}
