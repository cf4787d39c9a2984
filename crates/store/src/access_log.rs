//! The access log: who read which participant's data, when, what, and why (HSLF-FS 2016:40).
//!
//! Read paths call [`record`] with one entry per participant they are about to return, and
//! return nothing if it fails: no entry, no data (DESIGN.md §7, invariant 6). The table is
//! append-only (trigger and grants), and [`extract`] serves the participant's extract.

use chrono::{DateTime, Utc};
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
    sqlx::query(
        "INSERT INTO access_log (reader_person_id, reader_role, reader_unit, reader_agency, participant_id, action, basis)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[])",
    )
    .bind(column(|entry| &entry.reader_person_id))
    .bind(column(|entry| &entry.reader_role))
    .bind(column(|entry| &entry.reader_unit))
    .bind(column(|entry| &entry.reader_agency))
    .bind(entries.iter().map(|entry| entry.participant_id).collect::<Vec<_>>())
    .bind(column(|entry| &entry.action))
    .bind(column(|entry| &entry.basis))
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
    let rows = sqlx::query(
        "SELECT position, read_at, reader_person_id, reader_role, reader_unit, reader_agency, action, basis
         FROM access_log WHERE participant_id = $1 AND position > $2 ORDER BY position LIMIT $3",
    )
    .bind(participant_id)
    .bind(after_position)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(LoggedAccess {
                position: crate::stored_u64("access_log.position", row.try_get("position")?)?,
                read_at: row.try_get("read_at")?,
                entry: AccessEntry {
                    reader_person_id: row.try_get("reader_person_id")?,
                    reader_role: row.try_get("reader_role")?,
                    reader_unit: row.try_get("reader_unit")?,
                    reader_agency: row.try_get("reader_agency")?,
                    participant_id,
                    action: row.try_get("action")?,
                    basis: row.try_get("basis")?,
                },
            })
        })
        .collect()
}
