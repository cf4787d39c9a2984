//! Participants as the aggregate sees them, folded from the events table, for the read paths'
//! consent and protected-identity decisions (consent is judged at the moment of reading).
//!
//! [`load`] folds each participant's whole history. The ledger's read paths keep their folds
//! and ask only for what was stored after them ([`entries_after`]): one statement returns every
//! entry past each fold's head together with the append-only guard's fingerprint, so a fold is
//! never used behind the stored head (a withdrawn consent is never honoured late). The fold
//! itself stays the domain's: one implementation of the consent rules.

use std::collections::HashMap;

use cqrs_es::Aggregate;
use domain::{Participant, ParticipantEvent};
use futures::TryStreamExt;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::StoreError;

/// Folds every listed participant's history. Participants with no history are absent.
pub async fn load(
    pool: &PgPool,
    participant_ids: &[Uuid],
) -> Result<HashMap<Uuid, Participant>, StoreError> {
    let mut participants: HashMap<Uuid, Participant> = HashMap::new();
    if participant_ids.is_empty() {
        return Ok(participants);
    }
    let mut rows = sqlx::query(
        "SELECT aggregate_id::uuid AS participant_id, payload FROM events WHERE aggregate_type = 'Participant' AND aggregate_id = ANY($1::uuid[]::text[]) ORDER BY aggregate_id, sequence",
    )
    .bind(participant_ids)
    .fetch(pool);
    while let Some(row) = rows.try_next().await? {
        let participant_id: Uuid = row.try_get("participant_id")?;
        // Decoded straight from the row's bytes; the fetched row can fail only to decode.
        let sqlx::types::Json(event): sqlx::types::Json<ParticipantEvent> = row
            .try_get("payload")
            .map_err(|error| StoreError::Unreadable(error.to_string()))?;
        participants.entry(participant_id).or_default().apply(event);
    }
    Ok(participants)
}

/// Folds one participant that has history (an entry of theirs was just read). The events table
/// is append-only, so finding none means it was changed around its triggers: reported, never
/// answered with an empty participant (who would be judged as having given no consent).
pub async fn load_recorded(pool: &PgPool, participant_id: Uuid) -> Result<Participant, StoreError> {
    load(pool, &[participant_id])
        .await?
        .remove(&participant_id)
        .ok_or_else(|| {
            StoreError::Unreadable(format!(
                "participant {participant_id}: an entry was read but the history is gone"
            ))
        })
}

/// The newest sequence of each listed participant (absent: no history). One indexed query, so
/// a long-lived reader (a watch) refolds only the participants whose history grew.
pub async fn heads(
    pool: &PgPool,
    participant_ids: &[Uuid],
) -> Result<HashMap<Uuid, u64>, StoreError> {
    if participant_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(
        "SELECT aggregate_id::uuid AS participant_id, max(sequence) AS head FROM events WHERE aggregate_type = 'Participant' AND aggregate_id = ANY($1::uuid[]::text[]) GROUP BY aggregate_id",
    )
    .bind(participant_ids)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let participant_id: Uuid = row.try_get("participant_id")?;
            let head: i64 = row.try_get("head")?;
            Ok((participant_id, crate::stored_u64("events.sequence", head)?))
        })
        .collect()
}

/// Of the listed participants, those whose history holds an `IdentityProtected` entry (accepted
/// or not: callers fold these to decide). Lets a board skip folding everyone else.
pub async fn with_protection_entries(
    pool: &PgPool,
    participant_ids: &[Uuid],
) -> Result<Vec<Uuid>, StoreError> {
    if participant_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id::uuid FROM events WHERE aggregate_type = 'Participant' AND aggregate_id = ANY($1::uuid[]::text[]) AND 'IdentityProtected' IN (payload #>> '{body,type}', payload #>> '{body,corrected,type}')",
    )
    .bind(participant_ids)
    .fetch_all(pool)
    .await?)
}

/// Stored entries of one participant past a fold's head: `(row sequence, payload as stored)`,
/// in sequence order.
pub type StoredTail = Vec<(u64, serde_json::Value)>;

/// What [`entries_after`] read, all in one snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EntriesAfter {
    /// The append-only guard as the snapshot held it ([`crate::events::append_guard_fingerprint`]):
    /// a fold made under another fingerprint may hold a row since edited, so it is not extended.
    pub append_guard_fingerprint: String,
    /// Per participant, the entries stored after the given sequence (absent: none).
    pub tails: HashMap<Uuid, StoredTail>,
}

/// Every entry of each listed participant stored after its given sequence (0: the whole
/// history), with the append-only guard's fingerprint, in one statement: the head check and
/// the catch-up are one read, so what it returns is the participant as stored now.
pub async fn entries_after(
    pool: &PgPool,
    after: &[(Uuid, u64)],
) -> Result<EntriesAfter, StoreError> {
    let participant_ids: Vec<Uuid> = after
        .iter()
        .map(|(participant_id, _)| *participant_id)
        .collect();
    let after_sequences: Vec<i64> = after
        .iter()
        // No stored sequence lies beyond i64::MAX, so "after" a larger one is "after all".
        .map(|(_, sequence)| i64::try_from(*sequence).unwrap_or(i64::MAX))
        .collect();
    let sql = format!(
        "SELECT {} AS fingerprint, tail.participant_id, tail.sequence, tail.payload
         FROM (SELECT 1) one LEFT JOIN LATERAL (
             SELECT wanted.participant_id, events.sequence, events.payload
             FROM unnest($1::uuid[], $2::bigint[]) AS wanted (participant_id, after_sequence)
             JOIN events ON events.aggregate_type = 'Participant'
                        AND events.aggregate_id = wanted.participant_id::text
                        AND events.sequence > wanted.after_sequence) tail ON true
         ORDER BY tail.participant_id, tail.sequence",
        crate::events::APPEND_GUARD_FINGERPRINT
    );
    let mut rows = sqlx::query(&sql)
        .bind(&participant_ids)
        .bind(&after_sequences)
        .fetch(pool);
    let mut read = EntriesAfter::default();
    while let Some(row) = rows.try_next().await? {
        read.append_guard_fingerprint = row.try_get("fingerprint")?;
        let Some(participant_id) = row.try_get::<Option<Uuid>, _>("participant_id")? else {
            continue;
        };
        let sequence: i64 = row.try_get("sequence")?;
        let payload: serde_json::Value = row
            .try_get("payload")
            .map_err(|error| StoreError::Unreadable(error.to_string()))?;
        read.tails
            .entry(participant_id)
            .or_default()
            .push((crate::stored_u64("events.sequence", sequence)?, payload));
    }
    Ok(read)
}
