//! The timeline read model: one row per recorded entry, ordered by participant and sequence.
//!
//! Written only by the projector (inside its checkpoint transaction); read by the ledger's
//! `TimelineService`. It keeps what a reader needs without parsing the stored payload again.

use chrono::{DateTime, Utc};
use domain::{Outcome, ParticipantEvent, ParticipantId};
use sqlx::{PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::StoreError;

/// One entry of a participant's timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineRow {
    /// Per-participant sequence.
    pub sequence: u64,
    /// The submitted event id.
    pub event_id: Uuid,
    /// The body's type, or `SubmissionRejected`.
    pub event_type: String,
    /// The agency token.
    pub agency: String,
    /// Actor person id.
    pub actor_person_id: String,
    /// Actor role token.
    pub actor_role: String,
    /// Actor unit.
    pub actor_unit: String,
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// System time.
    pub recorded_at: DateTime<Utc>,
    /// Correlation id.
    pub correlation_id: Option<Uuid>,
    /// Causation id.
    pub causation_id: Option<Uuid>,
    /// Data category token.
    pub data_category: String,
    /// Schema version.
    pub schema_version: i32,
    /// The body as JSON.
    pub body: serde_json::Value,
    /// The broken rule, for a rejection.
    pub rejected_rule: Option<String>,
    /// Previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// Inserts one entry inside the projector's transaction.
pub(crate) async fn insert_entry(
    transaction: &mut Transaction<'_, Postgres>,
    event: &ParticipantEvent,
    global_position: i64,
) -> Result<(), StoreError> {
    let envelope = &event.envelope;
    let rejected_rule = match &event.outcome {
        Outcome::Accepted => None,
        Outcome::Rejected { rule } => Some(rule.name()),
    };
    let body = serde_json::to_value(&event.body)
        .map_err(|error| StoreError::Unreadable(error.to_string()))?;
    sqlx::query(
        "INSERT INTO timeline_entries (participant_id, sequence, event_id, event_type, agency, actor_person_id,
             actor_role, actor_unit, occurred_at, recorded_at, correlation_id, causation_id, data_category,
             schema_version, body, rejected_rule, prev_hash, hash, global_position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(envelope.participant_id.0)
    .bind(crate::storable_i64(
        "timeline_entries.sequence",
        event.sequence,
    )?)
    .bind(envelope.event_id.0)
    .bind(event.stored_event_type())
    .bind(envelope.agency.token())
    .bind(&envelope.actor.person_id.0)
    .bind(envelope.actor.role.token())
    .bind(&envelope.actor.unit.0)
    .bind(envelope.occurred_at)
    .bind(event.recorded_at)
    .bind(envelope.correlation_id.map(|id| id.0))
    .bind(envelope.causation_id.map(|id| id.0))
    .bind(envelope.data_category.token())
    .bind(i32::try_from(envelope.schema_version).map_err(|_| {
        StoreError::ValueOutOfRange {
            column: "timeline_entries.schema_version",
            value: u64::from(envelope.schema_version),
        }
    })?)
    .bind(body)
    .bind(rejected_rule)
    .bind(&event.prev_hash)
    .bind(&event.hash)
    .bind(global_position)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Which entries a timeline read wants; empty lists and `None` mean "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimelineFilter {
    /// Agency tokens.
    pub agencies: Vec<String>,
    /// Event types (as stored, e.g. `JobStarted`).
    pub event_types: Vec<String>,
    /// Business time from (inclusive).
    pub occurred_from: Option<DateTime<Utc>>,
    /// Business time to (exclusive).
    pub occurred_to: Option<DateTime<Utc>>,
}

/// Up to `limit` entries after `after_sequence` that match `filter`, in order.
pub async fn page(
    pool: &PgPool,
    participant_id: ParticipantId,
    after_sequence: u64,
    limit: i64,
    filter: &TimelineFilter,
) -> Result<Vec<TimelineRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT sequence, event_id, event_type, agency, actor_person_id, actor_role, actor_unit, occurred_at,
                recorded_at, correlation_id, causation_id, data_category, schema_version, body, rejected_rule,
                prev_hash, hash
         FROM timeline_entries
         WHERE participant_id = $1 AND sequence > $2
           AND (cardinality($4::text[]) = 0 OR agency = ANY($4))
           AND (cardinality($5::text[]) = 0 OR event_type = ANY($5))
           AND ($6::timestamptz IS NULL OR occurred_at >= $6)
           AND ($7::timestamptz IS NULL OR occurred_at < $7)
         ORDER BY sequence LIMIT $3",
    )
    .bind(participant_id.0)
    // No stored sequence lies beyond i64::MAX, so "after" a larger one is exactly "after all".
    .bind(i64::try_from(after_sequence).unwrap_or(i64::MAX))
    .bind(limit)
    .bind(&filter.agencies)
    .bind(&filter.event_types)
    .bind(filter.occurred_from)
    .bind(filter.occurred_to)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(TimelineRow {
                sequence: crate::stored_u64("timeline_entries.sequence", row.try_get("sequence")?)?,
                event_id: row.try_get("event_id")?,
                event_type: row.try_get("event_type")?,
                agency: row.try_get("agency")?,
                actor_person_id: row.try_get("actor_person_id")?,
                actor_role: row.try_get("actor_role")?,
                actor_unit: row.try_get("actor_unit")?,
                occurred_at: row.try_get("occurred_at")?,
                recorded_at: row.try_get("recorded_at")?,
                correlation_id: row.try_get("correlation_id")?,
                causation_id: row.try_get("causation_id")?,
                data_category: row.try_get("data_category")?,
                schema_version: row.try_get("schema_version")?,
                body: row.try_get("body")?,
                rejected_rule: row.try_get("rejected_rule")?,
                prev_hash: row.try_get("prev_hash")?,
                hash: row.try_get("hash")?,
            })
        })
        .collect()
}

/// The highest projected sequence for a participant (0 when none).
pub async fn head_sequence(
    pool: &PgPool,
    participant_id: ParticipantId,
) -> Result<u64, StoreError> {
    let head: Option<i64> =
        sqlx::query_scalar("SELECT max(sequence) FROM timeline_entries WHERE participant_id = $1")
            .bind(participant_id.0)
            .fetch_one(pool)
            .await?;
    head.map_or(Ok(0), |head| {
        crate::stored_u64("timeline_entries.sequence", head)
    })
}
