//! The timeline read model: one row per recorded entry, ordered by participant and sequence.
//!
//! Written only by the projector (inside its checkpoint transaction); read by the ledger's
//! `TimelineService`. It keeps what a reader needs without parsing the stored payload again.

use chrono::{DateTime, SubsecRound, Utc};
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

impl TimelineRow {
    /// The row the projector writes for `event`: the one mapping from a stored entry to the
    /// timeline, used by the projector and by an auditor rebuilding a read from the events.
    pub fn from_event(event: &ParticipantEvent) -> Result<TimelineRow, StoreError> {
        let mut row = Self::from_event_but_body(event)?;
        row.body = serde_json::to_value(&event.body)
            .map_err(|error| StoreError::Unreadable(error.to_string()))?;
        Ok(row)
    }

    /// [`TimelineRow::from_event`] with the body left `null`, for a caller that prints the
    /// body from the typed event itself (an auditor's replay).
    pub fn from_event_but_body(event: &ParticipantEvent) -> Result<TimelineRow, StoreError> {
        let envelope = &event.envelope;
        Ok(TimelineRow {
            sequence: event.sequence,
            event_id: envelope.event_id.0,
            event_type: event.stored_event_type().to_owned(),
            agency: envelope.agency.token().to_owned(),
            actor_person_id: envelope.actor.person_id.0.clone(),
            actor_role: envelope.actor.role.token().to_owned(),
            actor_unit: envelope.actor.unit.0.clone(),
            // As PostgreSQL keeps them: sqlx binds a timestamp as whole microseconds.
            occurred_at: envelope.occurred_at.trunc_subsecs(6),
            recorded_at: event.recorded_at.trunc_subsecs(6),
            correlation_id: envelope.correlation_id.map(|id| id.0),
            causation_id: envelope.causation_id.map(|id| id.0),
            data_category: envelope.data_category.token().to_owned(),
            schema_version: i32::try_from(envelope.schema_version).map_err(|_| {
                StoreError::ValueOutOfRange {
                    column: "timeline_entries.schema_version",
                    value: u64::from(envelope.schema_version),
                }
            })?,
            body: serde_json::Value::Null,
            rejected_rule: match &event.outcome {
                Outcome::Accepted => None,
                Outcome::Rejected { rule } => Some(rule.name().to_owned()),
            },
            prev_hash: event.prev_hash.clone(),
            hash: event.hash.clone(),
        })
    }
}

/// Inserts one entry inside the projector's transaction.
pub(crate) async fn insert_entry(
    transaction: &mut Transaction<'_, Postgres>,
    event: &ParticipantEvent,
    global_position: i64,
) -> Result<(), StoreError> {
    let row = TimelineRow::from_event(event)?;
    sqlx::query(
        "INSERT INTO timeline_entries (participant_id, sequence, event_id, event_type, agency, actor_person_id,
             actor_role, actor_unit, occurred_at, recorded_at, correlation_id, causation_id, data_category,
             schema_version, body, rejected_rule, prev_hash, hash, global_position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(event.envelope.participant_id.0)
    .bind(crate::storable_i64("timeline_entries.sequence", row.sequence)?)
    .bind(row.event_id)
    .bind(&row.event_type)
    .bind(&row.agency)
    .bind(&row.actor_person_id)
    .bind(&row.actor_role)
    .bind(&row.actor_unit)
    .bind(row.occurred_at)
    .bind(row.recorded_at)
    .bind(row.correlation_id)
    .bind(row.causation_id)
    .bind(&row.data_category)
    .bind(row.schema_version)
    .bind(&row.body)
    .bind(&row.rejected_rule)
    .bind(&row.prev_hash)
    .bind(&row.hash)
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

impl TimelineFilter {
    /// Whether `row` matches, exactly as [`page`]'s WHERE clause decides: for rebuilding a page
    /// from the events.
    pub fn matches(&self, row: &TimelineRow) -> bool {
        (self.agencies.is_empty() || self.agencies.contains(&row.agency))
            && (self.event_types.is_empty() || self.event_types.contains(&row.event_type))
            && self
                .occurred_from
                .is_none_or(|from| row.occurred_at >= from)
            && self.occurred_to.is_none_or(|to| row.occurred_at < to)
    }
}

/// One page of a participant's timeline and where the read model stood when it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelinePage {
    /// The rows, in sequence order.
    pub rows: Vec<TimelineRow>,
    /// The participant's highest projected sequence, read in the same statement as the rows
    /// (0 when none): the page is exactly the matching rows up to it.
    pub head_sequence: u64,
}

/// The page itself: the rows of participant `$1` after sequence `$2` matching the filter
/// (`$4`–`$7`), at most `$3`; joined laterally to a one-row head so an empty page still says
/// where the read model stood.
const PAGE_ROWS: &str = "LEFT JOIN LATERAL (
             SELECT sequence, event_id, event_type, agency, actor_person_id, actor_role, actor_unit, occurred_at,
                    recorded_at, correlation_id, causation_id, data_category, schema_version, body, rejected_rule,
                    prev_hash, hash
             FROM timeline_entries
             WHERE participant_id = $1 AND sequence > $2
               AND (cardinality($4::text[]) = 0 OR agency = ANY($4))
               AND (cardinality($5::text[]) = 0 OR event_type = ANY($5))
               AND ($6::timestamptz IS NULL OR occurred_at >= $6)
               AND ($7::timestamptz IS NULL OR occurred_at < $7)
             ORDER BY sequence LIMIT $3) page ON true
         ORDER BY page.sequence";

/// Up to `limit` entries after `after_sequence` that match `filter`, in order, with the
/// participant's head in the read model as of the same snapshot.
pub async fn page(
    pool: &PgPool,
    participant_id: ParticipantId,
    after_sequence: u64,
    limit: i64,
    filter: &TimelineFilter,
) -> Result<TimelinePage, StoreError> {
    let rows = page_query(
        &format!(
            "WITH head AS (SELECT coalesce(max(sequence), 0) AS head_sequence FROM timeline_entries WHERE participant_id = $1)
             SELECT head.head_sequence, page.* FROM head {PAGE_ROWS}"
        ),
        participant_id,
        after_sequence,
        limit,
        filter,
    )
    .fetch_all(pool)
    .await?;
    page_of(&rows)
}

/// What a timeline read needs besides its page, read in the page's own statement: the entries
/// stored after the reader's fold of the participant, the append-only guard that fold is valid
/// under, and the projector's checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineRead {
    /// The page and the read model's head.
    pub page: TimelinePage,
    /// The participant's entries in the events table after the sequence asked for.
    pub stored_after: crate::participants::StoredTail,
    /// The append-only guard's fingerprint in the same snapshot.
    pub append_guard_fingerprint: String,
    /// The projector's checkpoint (global position; 0 before its first batch).
    pub projector_checkpoint: i64,
}

/// [`page`], and in the same statement (one round trip, one snapshot) the participant's events
/// stored after `stored_after_sequence`, the append-only guard and the projector's checkpoint:
/// the read path catches its consent fold up to the stored head with what it reads here, so
/// the fold it judges by is never behind the events table as of the page.
pub async fn page_with_stored_tail(
    pool: &PgPool,
    participant_id: ParticipantId,
    after_sequence: u64,
    limit: i64,
    filter: &TimelineFilter,
    stored_after_sequence: u64,
) -> Result<TimelineRead, StoreError> {
    // The tail and the guard ride on the first row only: a cold read's tail is the whole
    // history, not worth repeating on every row of the page.
    let rows = page_query(
        &format!(
            "WITH head AS (SELECT coalesce(max(sequence), 0) AS head_sequence FROM timeline_entries WHERE participant_id = $1),
                  stored AS (SELECT {fingerprint} AS append_guard_fingerprint,
                         coalesce((SELECT last_global_position FROM projector_checkpoints WHERE projector_name = $9), 0) AS projector_checkpoint,
                         (SELECT coalesce(json_agg(json_build_array(sequence, payload) ORDER BY sequence), '[]'::json)
                            FROM events WHERE aggregate_type = 'Participant' AND aggregate_id = $1::uuid::text
                             AND sequence > $8) AS stored_after)
             SELECT head.head_sequence, stored.projector_checkpoint,
                    CASE WHEN row_number() OVER (ORDER BY page.sequence) = 1 THEN stored.append_guard_fingerprint END AS append_guard_fingerprint,
                    CASE WHEN row_number() OVER (ORDER BY page.sequence) = 1 THEN stored.stored_after END AS stored_after,
                    page.*
             FROM head CROSS JOIN stored {PAGE_ROWS}",
            fingerprint = crate::events::APPEND_GUARD_FINGERPRINT
        ),
        participant_id,
        after_sequence,
        limit,
        filter,
    )
    .bind(i64::try_from(stored_after_sequence).unwrap_or(i64::MAX))
    .bind(crate::projector::TIMELINE_PROJECTOR)
    .fetch_all(pool)
    .await?;
    let first = rows.first().ok_or_else(|| {
        StoreError::Unreadable("a timeline read returned no row, not even its head".into())
    })?;
    let append_guard_fingerprint: String = first.try_get("append_guard_fingerprint")?;
    let projector_checkpoint: i64 = first.try_get("projector_checkpoint")?;
    let sqlx::types::Json(stored_after): sqlx::types::Json<Vec<(i64, serde_json::Value)>> = first
        .try_get("stored_after")
        .map_err(|error| StoreError::Unreadable(error.to_string()))?;
    let stored_after = stored_after
        .into_iter()
        .map(|(sequence, payload)| Ok((crate::stored_u64("events.sequence", sequence)?, payload)))
        .collect::<Result<_, StoreError>>()?;
    Ok(TimelineRead {
        page: page_of(&rows)?,
        stored_after,
        append_guard_fingerprint,
        projector_checkpoint,
    })
}

fn page_query<'q>(
    sql: &'q str,
    participant_id: ParticipantId,
    after_sequence: u64,
    limit: i64,
    filter: &'q TimelineFilter,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql)
        .bind(participant_id.0)
        // No stored sequence lies beyond i64::MAX, so "after" a larger one is exactly "after all".
        .bind(i64::try_from(after_sequence).unwrap_or(i64::MAX))
        .bind(limit)
        .bind(&filter.agencies)
        .bind(&filter.event_types)
        .bind(filter.occurred_from)
        .bind(filter.occurred_to)
}

fn page_of(rows: &[sqlx::postgres::PgRow]) -> Result<TimelinePage, StoreError> {
    let head_sequence = rows
        .first()
        .map(|row| row.try_get::<i64, _>("head_sequence"))
        .transpose()?
        .and_then(|head| u64::try_from(head).ok())
        .unwrap_or(0);
    let rows = rows
        .iter()
        .filter(|row| matches!(row.try_get::<Option<i64>, _>("sequence"), Ok(Some(_))))
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
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(TimelinePage {
        rows,
        head_sequence,
    })
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
