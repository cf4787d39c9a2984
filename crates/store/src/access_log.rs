//! The access log: who read which participant's data, when, what, and why (HSLF-FS 2016:40).
//!
//! Read paths call [`record`] with one entry per participant they are about to return, and
//! return nothing if it fails: no entry, no data (DESIGN.md §7, invariant 6). The table is
//! append-only (trigger and grants), and [`extract`] serves the participant's extract.
//!
//! An entry may carry a [`ReadRecord`]: what the read depended on beyond the events (its
//! request, the business date, where the event store and the read model stood), so an auditor
//! can rebuild exactly what the reader was shown ([`entry`], [`read_entries`]; issue 11).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::StoreError;

/// One read of one participant's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessEntry {
    /// Reader's person pseudo-id.
    pub reader_person_id: String,
    /// Reader's role token.
    pub reader_role: String,
    /// Reader's unit.
    pub reader_unit: String,
    /// Reader's agency token.
    pub reader_agency: String,
    /// Whose data.
    pub participant_id: Uuid,
    /// The RPC, e.g. `ips.v1.TimelineService/GetTimeline`.
    pub action: String,
    /// The consent or legal basis (`own_records`, `consent:<id>`, `audit`, ...).
    pub basis: String,
    /// What the read depended on, for the read paths that can be rebuilt.
    pub read: Option<ReadRecord>,
}

/// What one read of one participant depended on beyond the events: enough to rebuild what it
/// returned from the events and the reader's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    /// The read (one call, one watch push); shared by every participant it returned.
    pub read_id: Uuid,
    /// The request's parameters, as the read path took them.
    pub request: serde_json::Value,
    /// The day consents and time-dependent statuses were judged on.
    pub business_date: NaiveDate,
    /// The participant's event-store head the read folded (consents, allow-list, units).
    pub history_sequence: Option<u64>,
    /// The participant's head in the read model the data came from.
    pub read_model_sequence: Option<u64>,
    /// The projector's checkpoint (global position) when the read began.
    pub projector_checkpoint: Option<i64>,
    /// What the read handed out beyond the events (ids only), e.g. a watch's pushed activities.
    pub shown: Option<serde_json::Value>,
}

/// A stored entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedAccess {
    /// Position in the whole log.
    pub position: u64,
    /// When.
    pub read_at: DateTime<Utc>,
    /// What.
    pub entry: AccessEntry,
}

/// Most entries one call writes. Every read is bounded below it (a board lists at most 1,000
/// active participants plus its waiting list; a watch follows at most 5,000 gates), and one
/// statement with arrays this long stays well under a millisecond per hundred rows.
pub const ENTRIES_PER_RECORD_MAX: usize = 10_000;

/// Writes `entries` in one statement; all or none.
pub async fn record(pool: &PgPool, entries: &[AccessEntry]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    if entries.len() > ENTRIES_PER_RECORD_MAX {
        return Err(StoreError::AccessLogBatchTooLarge {
            entries: entries.len(),
            entries_max: ENTRIES_PER_RECORD_MAX,
        });
    }
    let column = |pick: fn(&AccessEntry) -> &str| -> Vec<String> {
        entries.iter().map(|entry| pick(entry).to_owned()).collect()
    };
    let read = |pick: fn(&ReadRecord) -> Option<String>| -> Vec<Option<String>> {
        entries
            .iter()
            .map(|entry| entry.read.as_ref().and_then(pick))
            .collect()
    };
    let sequence = |value: Option<u64>| value.and_then(|value| i64::try_from(value).ok());
    sqlx::query(
        "INSERT INTO access_log (reader_person_id, reader_role, reader_unit, reader_agency, participant_id, action, basis,
             read_id, request, business_date, history_sequence, read_model_sequence, projector_checkpoint, shown)
         SELECT person, role, unit, agency, participant, action, basis,
                read_id, request::jsonb, business_date, history_sequence, read_model_sequence, checkpoint, shown::jsonb
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[],
                     $8::uuid[], $9::text[], $10::date[], $11::bigint[], $12::bigint[], $13::bigint[], $14::text[])
              AS read (person, role, unit, agency, participant, action, basis,
                       read_id, request, business_date, history_sequence, read_model_sequence, checkpoint, shown)",
    )
    .bind(column(|entry| &entry.reader_person_id))
    .bind(column(|entry| &entry.reader_role))
    .bind(column(|entry| &entry.reader_unit))
    .bind(column(|entry| &entry.reader_agency))
    .bind(entries.iter().map(|entry| entry.participant_id).collect::<Vec<_>>())
    .bind(column(|entry| &entry.action))
    .bind(column(|entry| &entry.basis))
    .bind(
        entries
            .iter()
            .map(|entry| entry.read.as_ref().map(|read| read.read_id))
            .collect::<Vec<_>>(),
    )
    .bind(read(|read| Some(read.request.to_string())))
    .bind(
        entries
            .iter()
            .map(|entry| entry.read.as_ref().map(|read| read.business_date))
            .collect::<Vec<_>>(),
    )
    .bind(
        entries
            .iter()
            .map(|entry| entry.read.as_ref().and_then(|read| sequence(read.history_sequence)))
            .collect::<Vec<_>>(),
    )
    .bind(
        entries
            .iter()
            .map(|entry| {
                entry
                    .read
                    .as_ref()
                    .and_then(|read| sequence(read.read_model_sequence))
            })
            .collect::<Vec<_>>(),
    )
    .bind(
        entries
            .iter()
            .map(|entry| entry.read.as_ref().and_then(|read| read.projector_checkpoint))
            .collect::<Vec<_>>(),
    )
    .bind(read(|read| read.shown.as_ref().map(ToString::to_string)))
    .execute(pool)
    .await?;
    Ok(())
}

/// One participant's entries after `after_position`, oldest first, at most `limit`.
pub async fn extract(
    pool: &PgPool,
    participant_id: Uuid,
    after_position: i64,
    limit: i64,
) -> Result<Vec<LoggedAccess>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM access_log WHERE participant_id = $1 AND position > $2 ORDER BY position LIMIT $3"
    ))
    .bind(participant_id)
    .bind(after_position)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(logged_access).collect()
}

const COLUMNS: &str = "position, read_at, reader_person_id, reader_role, reader_unit, reader_agency, participant_id, action, basis,
     read_id, request, business_date, history_sequence, read_model_sequence, projector_checkpoint, shown";

fn logged_access(row: &sqlx::postgres::PgRow) -> Result<LoggedAccess, StoreError> {
    let read_id: Option<Uuid> = row.try_get("read_id")?;
    let sequence = |column: &str| -> Result<Option<u64>, StoreError> {
        row.try_get::<Option<i64>, _>(column)?
            .map(|value| crate::stored_u64(column, value))
            .transpose()
    };
    let read = match (
        read_id,
        row.try_get::<Option<NaiveDate>, _>("business_date")?,
    ) {
        (Some(read_id), Some(business_date)) => Some(ReadRecord {
            read_id,
            request: row
                .try_get::<Option<serde_json::Value>, _>("request")?
                .unwrap_or_default(),
            business_date,
            history_sequence: sequence("history_sequence")?,
            read_model_sequence: sequence("read_model_sequence")?,
            projector_checkpoint: row.try_get("projector_checkpoint")?,
            shown: row.try_get("shown")?,
        }),
        _ => None,
    };
    Ok(LoggedAccess {
        position: crate::stored_u64("access_log.position", row.try_get("position")?)?,
        read_at: row.try_get("read_at")?,
        entry: AccessEntry {
            reader_person_id: row.try_get("reader_person_id")?,
            reader_role: row.try_get("reader_role")?,
            reader_unit: row.try_get("reader_unit")?,
            reader_agency: row.try_get("reader_agency")?,
            participant_id: row.try_get("participant_id")?,
            action: row.try_get("action")?,
            basis: row.try_get("basis")?,
            read,
        },
    })
}

/// The entry at `position`, if any.
pub async fn entry(pool: &PgPool, position: i64) -> Result<Option<LoggedAccess>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM access_log WHERE position = $1"
    ))
    .bind(position)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(logged_access).transpose()
}

/// Every entry of one read (all participants it returned), oldest first, at most `limit`.
pub async fn read_entries(
    pool: &PgPool,
    read_id: Uuid,
    limit: i64,
) -> Result<Vec<LoggedAccess>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM access_log WHERE read_id = $1 ORDER BY position LIMIT $2"
    ))
    .bind(read_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(logged_access).collect()
}
