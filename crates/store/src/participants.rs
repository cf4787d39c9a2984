//! Participants as the aggregate sees them, folded from the events table, for the read paths'
//! consent and protected-identity decisions (consent is judged at the moment of reading).
//!
//! This folds each participant's whole history on every read. A consents read model would be
//! cheaper for wide boards; the fold keeps one implementation of the consent rules (the
//! domain's) until a measurement says otherwise.

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
