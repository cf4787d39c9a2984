//! The storage property for real: a sample of what the edge (and the bus decode) accepted is
//! written the way the ledger writes it, against PostgreSQL: load the participant's verified
//! history (`store::events::load_verified_history`), decide through the aggregate, commit
//! through postgres-es into `events` (the chain hash, the payload as `jsonb`, the generated
//! `event_id`), load it back and verify the chain; then the projector puts everything into
//! the read models (`TimelineProjector::project_batch`: timeline, caseload, green light).
//!
//! Each sample gets a participant of its own after a referral and an enrolment, so that
//! more of the fuzzed submissions are accepted (and reach the read models) rather than
//! rejected for want of a participant. Ids are fresh per sample (a fuzzed request may reuse
//! the same participant or request id), which changes no stored text.

use std::collections::HashMap;

use cqrs_es::persist::EventStoreAggregateContext;
use cqrs_es::{Aggregate, EventStore};
use domain::{
    Actor, Agency, EventBody, EventId, Participant, ParticipantCommand, ParticipantId, PersonId,
    Role, Submission, UnitId,
};
use futures::StreamExt;
use sqlx::PgPool;

use crate::check::Broken;

/// Samples stored at the same time (each on its own participant).
pub const STORAGE_CONCURRENCY: usize = 6;

/// What the storage phase did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageReport {
    /// Fuzzed submissions stored.
    pub stored: u64,
    /// Of which the aggregate accepted.
    pub accepted: u64,
    /// Of which it recorded as a rejection.
    pub rejected: u64,
    /// Entries in `events` (fuzzed and preludes).
    pub event_rows: i64,
    /// Rows the projector wrote to `timeline_entries`.
    pub timeline_rows: i64,
    /// Refused bus messages parked.
    pub parked: u64,
}

fn broken(property: &'static str, detail: String) -> Broken {
    Broken { property, detail }
}

/// A referral and an enrolment of `participant_id` by a municipality coach, before `at`.
fn prelude(participant_id: ParticipantId, at: chrono::DateTime<chrono::Utc>) -> Vec<Submission> {
    let actor = Actor {
        person_id: PersonId("coach-17".into()),
        role: Role::Coach,
        unit: UnitId("hudiksvall-ips".into()),
    };
    [
        EventBody::ParticipantReferred {
            source: domain::ReferralSource::Vuxenpsykiatri,
            referrer: None,
        },
        EventBody::ParticipantEnrolled {
            unit: UnitId("hudiksvall-ips".into()),
            coach: PersonId("coach-17".into()),
        },
    ]
    .into_iter()
    .map(|body| {
        let context = rpc::fields::ParsedWriteContext {
            request_id: None,
            occurred_at: at - chrono::Duration::days(30),
            correlation_id: None,
            causation_id: None,
        };
        let envelope = rpc::submit::envelope(
            Agency::Municipality,
            actor.clone(),
            participant_id,
            &context,
            &body,
        );
        Submission { envelope, body }
    })
    .collect()
}

/// Writes one submission as the ledger does; returns whether it was accepted.
async fn write_as_the_ledger(
    pool: &PgPool,
    event_store: &store::ParticipantEventStore,
    submission: &Submission,
    stream_sequence: u64,
) -> Result<bool, Broken> {
    let participant_id = submission.envelope.participant_id;
    let history = store::events::load_verified_history(pool, participant_id)
        .await
        .map_err(|error| broken("stored_loads_back", format!("{error}")))?;
    if let Some(link) = history.first_broken_link {
        return Err(broken(
            "stored_chain_verifies",
            format!("{link:?} before {submission:?}"),
        ));
    }
    let mut context = EventStoreAggregateContext::<Participant> {
        aggregate_id: participant_id.to_string(),
        aggregate: Participant::default(),
        current_sequence: 0,
        current_snapshot: None,
    };
    for entry in history.entries {
        context.current_sequence = usize::try_from(entry.sequence).unwrap_or(usize::MAX);
        context.aggregate.apply(entry.event);
    }
    let recorded_at = chrono::Utc::now();
    let sink = cqrs_es::event_sink::EventSink::default();
    context
        .aggregate
        .handle(
            ParticipantCommand::Record {
                submission: submission.clone(),
                recorded_at,
            },
            &(),
            &sink,
        )
        .await
        .map_err(|error| broken("accepted_is_recorded", format!("{error}: {submission:?}")))?;
    let events = sink.collect().await;
    let Some(event) = events.first().cloned() else {
        return Err(broken(
            "accepted_is_recorded",
            format!("nothing recorded for {submission:?}"),
        ));
    };
    let metadata = HashMap::from([
        ("stream_sequence".to_owned(), stream_sequence.to_string()),
        (
            "subject".to_owned(),
            crate::check::stored_subject("ips.v1", submission),
        ),
    ]);
    event_store
        .commit(events, context, metadata)
        .await
        .map_err(|error| {
            broken(
                "accepted_is_stored",
                format!(
                    "PostgreSQL refused the entry: {error}; submission {}",
                    serde_json::to_string(submission).unwrap_or_default()
                ),
            )
        })?;
    let stored = store::events::load_verified_history(pool, participant_id)
        .await
        .map_err(|error| broken("stored_loads_back", format!("{error}: {submission:?}")))?;
    if let Some(link) = stored.first_broken_link {
        return Err(broken(
            "stored_chain_verifies",
            format!("{link:?} after storing {submission:?}"),
        ));
    }
    match stored.entries.last() {
        Some(entry) if entry.event == event => Ok(event.is_accepted()),
        other => Err(broken(
            "stored_loads_back",
            format!(
                "stored {event:?}, loaded {:?}",
                other.map(|entry| &entry.event)
            ),
        )),
    }
}

/// Stores every sample (on a participant of its own, after a prelude) and projects them all;
/// parks every message in `parked` as the ledger parks it (`store::events::park`).
pub async fn store_samples(
    pool: &PgPool,
    samples: Vec<Submission>,
    parked: Vec<store::ParkedMessage>,
) -> Result<StorageReport, Broken> {
    store::migrate(pool)
        .await
        .map_err(|error| broken("storage_setup", error.to_string()))?;
    let event_store = store::participant_event_store(pool.clone());
    let now = chrono::Utc::now();
    let results: Vec<Result<bool, Broken>> = futures::stream::iter(samples)
        .enumerate()
        .map(|(index, mut sample)| {
            let event_store = &event_store;
            async move {
                let participant_id = ParticipantId(uuid::Uuid::new_v4());
                let base = (index as u64) * 3 + 1;
                for (offset, submission) in prelude(participant_id, now).iter().enumerate() {
                    write_as_the_ledger(pool, event_store, submission, base + offset as u64)
                        .await?;
                }
                sample.envelope.participant_id = participant_id;
                sample.envelope.event_id = EventId(uuid::Uuid::now_v7());
                write_as_the_ledger(pool, event_store, &sample, base + 2).await
            }
        })
        .buffer_unordered(STORAGE_CONCURRENCY)
        .collect()
        .await;
    let mut report = StorageReport::default();
    for result in results {
        report.stored += 1;
        if result? {
            report.accepted += 1;
        } else {
            report.rejected += 1;
        }
    }
    for (index, mut message) in parked.into_iter().enumerate() {
        message.stream_sequence = index as u64 + 1;
        store::events::park(pool, &message).await.map_err(|error| {
            broken(
                "parked_is_stored",
                format!(
                    "{error}: reason {:?}, subject {:?}",
                    message.reason, message.subject
                ),
            )
        })?;
        report.parked += 1;
    }
    let projector = store::TimelineProjector::new(pool.clone(), store::ProjectorConfig::default());
    loop {
        match projector.project_batch().await {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => {
                return Err(broken(
                    "stored_is_projected",
                    format!("the projector stalls: {error}"),
                ))
            }
        }
    }
    let count = |table: &'static str| async move {
        sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .map_err(|error| broken("storage_count", error.to_string()))
    };
    report.event_rows = count("events").await?;
    report.timeline_rows = count("timeline_entries").await?;
    if report.timeline_rows != report.event_rows {
        return Err(broken(
            "stored_is_projected",
            format!(
                "{} events but {} timeline entries",
                report.event_rows, report.timeline_rows
            ),
        ));
    }
    Ok(report)
}
