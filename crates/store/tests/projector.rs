//! The projector against real PostgreSQL: transactions that commit out of order are never
//! skipped, nothing is projected twice, and a dropped read model rebuilds to the same content.

use chrono::{TimeZone, Utc};
use domain::{
    Agency, EventBody, EventId, Outcome, ParticipantEvent, ParticipantId, PersonId, ReferralSource,
    Submission, UnitId,
};
use sqlx::{Acquire, PgPool};
use store::{ProjectorConfig, TimelineProjector};
use testkit::TestDatabase;

/// Waits (bounded) until every committed event lies below the snapshot horizon, so that a
/// projector batch may see them all. The horizon is cluster-wide: an open transaction of another
/// test, in any database, holds it back, and the projector rightly waits for it.
async fn wait_for_horizon(pool: &PgPool) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let held_back: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events WHERE tx_id >= pg_snapshot_xmin(pg_current_snapshot()))",
        )
        .fetch_one(pool)
        .await?;
        if !held_back {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the snapshot horizon did not pass the test's events within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn first_event(participant_id: ParticipantId) -> ParticipantEvent {
    let mut submission = testkit::coach_submission(
        participant_id,
        EventBody::ParticipantReferred {
            source: ReferralSource::OwnInitiative,
            referrer: None,
        },
    );
    submission.envelope.occurred_at = Utc
        .with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
        .single()
        .unwrap_or_default();
    ParticipantEvent::link(
        submission,
        Utc::now(),
        Outcome::Accepted,
        1,
        domain::chain::GENESIS_HASH,
    )
}

async fn insert(
    connection: &mut sqlx::PgConnection,
    event: &ParticipantEvent,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Participant', $1, $2, $3, '1', $4, '{}')",
    )
    .bind(event.envelope.participant_id.to_string())
    .bind(event.sequence as i64)
    .bind(event.stored_event_type())
    .bind(serde_json::to_value(event)?)
    .execute(connection)
    .await?;
    Ok(())
}

async fn projected_event_ids(pool: &PgPool) -> anyhow::Result<Vec<uuid::Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT event_id FROM timeline_entries ORDER BY global_position")
            .fetch_all(pool)
            .await?,
    )
}

async fn migrated_database() -> anyhow::Result<(TestDatabase, PgPool)> {
    let database = TestDatabase::create().await?;
    let pool = database.pool().await?;
    store::migrate(&pool).await?;
    Ok((database, pool))
}

#[tokio::test]
async fn a_slow_transaction_that_commits_last_is_not_skipped() -> anyhow::Result<()> {
    let (database, pool) = migrated_database().await?;
    let projector = TimelineProjector::new(pool.clone(), ProjectorConfig::default());
    let slow_event = first_event(ParticipantId(uuid::Uuid::new_v4()));
    let fast_event = first_event(ParticipantId(uuid::Uuid::new_v4()));

    // The slow transaction takes the lower global position and stays open...
    let mut slow_connection = pool.acquire().await?;
    let mut slow = slow_connection.begin().await?;
    insert(&mut slow, &slow_event).await?;
    // ...while a fast one inserts after it and commits first.
    let mut fast_connection = pool.acquire().await?;
    let mut fast = fast_connection.begin().await?;
    insert(&mut fast, &fast_event).await?;
    fast.commit().await?;

    // The fast event is committed, but projecting it now would move the cursor past the slow
    // one's position; the projector must hold back.
    projector.project_batch().await?;
    assert_eq!(projected_event_ids(&pool).await?, Vec::<uuid::Uuid>::new());

    slow.commit().await?;
    wait_for_horizon(&pool).await?;
    while projector.project_batch().await? > 0 {}
    let mut projected = projected_event_ids(&pool).await?;
    projected.sort();
    let mut expected = vec![
        slow_event.envelope.event_id.0,
        fast_event.envelope.event_id.0,
    ];
    expected.sort();
    assert_eq!(projected, expected);

    // Projecting again adds nothing: the checkpoint moved in the same transaction.
    assert_eq!(projector.project_batch().await?, 0);
    drop(slow_connection);
    drop(fast_connection);
    pool.close().await;
    database.drop_database().await;
    Ok(())
}

#[tokio::test]
async fn a_dropped_read_model_rebuilds_to_the_same_content() -> anyhow::Result<()> {
    let (database, pool) = migrated_database().await?;
    let projector = TimelineProjector::new(
        pool.clone(),
        ProjectorConfig {
            batch_size_max: 7,
            ..ProjectorConfig::default()
        },
    );
    let mut connection = pool.acquire().await?;
    for _ in 0..30 {
        insert(
            &mut connection,
            &first_event(ParticipantId(uuid::Uuid::new_v4())),
        )
        .await?;
    }
    drop(connection);
    wait_for_horizon(&pool).await?;
    while projector.project_batch().await? > 0 {}
    let snapshot =
        "SELECT string_agg(t::text, '|' ORDER BY participant_id, sequence) FROM timeline_entries t";
    let before: Option<String> = sqlx::query_scalar(snapshot).fetch_one(&pool).await?;

    sqlx::query("TRUNCATE timeline_entries")
        .execute(&pool)
        .await?;
    sqlx::query("DELETE FROM projector_checkpoints")
        .execute(&pool)
        .await?;
    while projector.project_batch().await? > 0 {}
    let after: Option<String> = sqlx::query_scalar(snapshot).fetch_one(&pool).await?;
    assert!(before.is_some());
    assert_eq!(before, after);
    pool.close().await;
    database.drop_database().await;
    Ok(())
}

#[tokio::test]
async fn stored_events_cannot_be_updated_or_deleted() -> anyhow::Result<()> {
    let (database, pool) = migrated_database().await?;
    let mut connection = pool.acquire().await?;
    insert(
        &mut connection,
        &first_event(ParticipantId(uuid::Uuid::new_v4())),
    )
    .await?;
    drop(connection);
    let update = sqlx::query("UPDATE events SET event_type = 'Edited'")
        .execute(&pool)
        .await;
    assert!(update.is_err(), "an update must be refused");
    let delete = sqlx::query("DELETE FROM events").execute(&pool).await;
    assert!(delete.is_err(), "a delete must be refused");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    assert_eq!(count, 1);
    pool.close().await;
    database.drop_database().await;
    Ok(())
}

/// Records `bodies` for one participant through the aggregate, as the ledger would, and returns
/// the chained events.
async fn history(
    participant_id: ParticipantId,
    bodies: Vec<(Agency, EventBody)>,
) -> Vec<ParticipantEvent> {
    use cqrs_es::Aggregate;
    let mut participant = domain::Participant::default();
    let mut events = Vec::new();
    for (index, (agency, body)) in bodies.into_iter().enumerate() {
        let mut submission = Submission {
            envelope: first_event(participant_id).envelope,
            body,
        };
        submission.envelope.event_id = EventId(uuid::Uuid::now_v7());
        submission.envelope.agency = agency;
        submission.envelope.data_category = submission.body.data_category(agency);
        submission.envelope.occurred_at += chrono::Duration::days(index as i64);
        let sink = cqrs_es::event_sink::EventSink::default();
        let command = domain::ParticipantCommand::Record {
            submission,
            recorded_at: Utc::now(),
        };
        assert!(participant.handle(command, &(), &sink).await.is_ok());
        let recorded = sink.collect().await;
        assert!(
            recorded.iter().all(ParticipantEvent::is_accepted),
            "{recorded:?}"
        );
        events.extend(recorded);
    }
    events
}

#[tokio::test]
async fn a_decision_projected_in_the_same_batch_as_the_start_still_counts_for_lead_times(
) -> anyhow::Result<()> {
    use domain::values::{ActivityKind, BenefitKind, DecisionOutcome, Period};
    let (database, pool) = migrated_database().await?;
    let participant_id = ParticipantId(uuid::Uuid::new_v4());
    let day = |offset: i64| {
        chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default()
            + chrono::Duration::days(offset)
    };
    let activity_id = domain::ActivityId(uuid::Uuid::new_v4());
    let events = history(
        participant_id,
        vec![
            (
                Agency::Municipality,
                EventBody::ParticipantReferred {
                    source: ReferralSource::OwnInitiative,
                    referrer: None,
                },
            ),
            (
                Agency::Municipality,
                EventBody::ParticipantEnrolled {
                    unit: UnitId("hudiksvall-ips".into()),
                    coach: PersonId("coach-17".into()),
                },
            ),
            (
                Agency::Forsakringskassan,
                EventBody::BenefitRegistered {
                    benefit: BenefitKind::Sjukpenning,
                    degree_percent: 100,
                    period: Period {
                        from: day(0),
                        to: day(300),
                    },
                    employed: false,
                },
            ),
            (
                Agency::Municipality,
                EventBody::ActivityProposed {
                    activity_id,
                    kind: ActivityKind::Arbetstraning,
                    employer: None,
                    hours_per_week: 20,
                    planned_start: day(10),
                    planned_end: None,
                    subsidy: None,
                    at_own_employer: false,
                },
            ),
            (
                Agency::Forsakringskassan,
                EventBody::ActivityDecision {
                    activity_id,
                    outcome: DecisionOutcome::Approved,
                    valid: Some(Period {
                        from: day(10),
                        to: day(90),
                    }),
                    reason: String::new(),
                },
            ),
            (
                Agency::Municipality,
                EventBody::ActivityStarted {
                    activity_id,
                    started_on: day(10),
                },
            ),
        ],
    )
    .await;
    let mut connection = pool.acquire().await?;
    for event in &events {
        insert(&mut connection, event).await?;
    }
    drop(connection);
    wait_for_horizon(&pool).await?;
    // One batch sees the decision and the start together.
    let projector = TimelineProjector::new(pool.clone(), ProjectorConfig::default());
    assert_eq!(projector.project_batch().await?, events.len());
    let (decision, open): (Option<String>, bool) = sqlx::query_as("SELECT decision, open FROM green_light_gates WHERE activity_id = $1 AND gate = 'fk_activity_decision'")
        .bind(activity_id.0)
        .fetch_one(&pool)
        .await?;
    assert_eq!((decision.as_deref(), open), (Some("approved"), false));
    pool.close().await;
    database.drop_database().await;
    Ok(())
}
