//! The event store: postgres-es over our own `events` table, and the queries the ledger and
//! auditors need beside it (by event id, chain verification, parked messages).
//!
//! postgres-es runs in plain event-store mode (its snapshot modes apply events twice in 0.5.0).
//! Its `AggregateConflict` (a primary-key or event-id uniqueness violation) means another writer
//! got there first; the ledger reloads and retries.

use cqrs_es::persist::PersistedEventStore;
use domain::chain::{BrokenLink, ChainReport, ChainVerifier};
use domain::{EventId, Participant, ParticipantEvent, ParticipantId};
use futures::TryStreamExt;
use postgres_es::PostgresEventRepository;
use sqlx::{PgPool, Row};

use crate::StoreError;

/// The participant aggregate's event store.
pub type ParticipantEventStore = PersistedEventStore<PostgresEventRepository, Participant>;

/// Builds the event store over `pool`.
pub fn participant_event_store(pool: PgPool) -> ParticipantEventStore {
    PersistedEventStore::new_event_store(PostgresEventRepository::new(pool))
}

/// A stored event with its place in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The participant (aggregate id).
    pub participant_id: ParticipantId,
    /// Its per-participant sequence.
    pub sequence: u64,
    /// The event as stored.
    pub event: ParticipantEvent,
}

/// Finds the stored entry for a submitted event id (accepted or rejected).
pub async fn find_by_event_id(
    pool: &PgPool,
    event_id: EventId,
) -> Result<Option<RecordedEvent>, StoreError> {
    let row = sqlx::query("SELECT aggregate_id, sequence, payload FROM events WHERE event_id = $1")
        .bind(event_id.0)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let aggregate_id: String = row.try_get("aggregate_id")?;
    let sequence: i64 = row.try_get("sequence")?;
    let payload: serde_json::Value = row.try_get("payload")?;
    let participant_id = ParticipantId::parse(&aggregate_id)
        .map_err(|error| StoreError::Unreadable(error.to_string()))?;
    let event = serde_json::from_value(payload)
        .map_err(|error| StoreError::Unreadable(error.to_string()))?;
    Ok(Some(RecordedEvent {
        participant_id,
        sequence: crate::stored_u64("events.sequence", sequence)?,
        event,
    }))
}

/// Recomputes a participant's hash chain from the stored rows, streaming, in constant memory.
pub async fn verify_chain(
    pool: &PgPool,
    participant_id: ParticipantId,
) -> Result<ChainReport, StoreError> {
    let mut rows = sqlx::query(
        "SELECT sequence, payload FROM events WHERE aggregate_type = 'Participant' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(participant_id.to_string())
    .fetch(pool);
    let mut verifier = ChainVerifier::default();
    while let Some(row) = rows.try_next().await? {
        let sequence: i64 = row.try_get("sequence")?;
        let payload: serde_json::Value = row.try_get("payload")?;
        verifier.push(crate::stored_u64("events.sequence", sequence)?, &payload);
    }
    Ok(verifier.finish())
}

/// [`verify_chain`] over the entries up to and including `through_sequence`: the chain as a
/// read that stood there saw it.
pub async fn verify_chain_through(
    pool: &PgPool,
    participant_id: ParticipantId,
    through_sequence: u64,
) -> Result<ChainReport, StoreError> {
    let mut rows = sqlx::query(
        "SELECT sequence, payload FROM events WHERE aggregate_type = 'Participant' AND aggregate_id = $1
           AND sequence <= $2
         ORDER BY sequence",
    )
    .bind(participant_id.to_string())
    .bind(i64::try_from(through_sequence).unwrap_or(i64::MAX))
    .fetch(pool);
    let mut verifier = ChainVerifier::default();
    while let Some(row) = rows.try_next().await? {
        let sequence: i64 = row.try_get("sequence")?;
        let payload: serde_json::Value = row.try_get("payload")?;
        verifier.push(u64::try_from(sequence).unwrap_or(0), &payload);
    }
    Ok(verifier.finish())
}

/// One stored entry of a participant's history, as the ledger needs it to decide the next.
#[derive(Clone, Debug)]
pub struct StoredEntry {
    /// Its per-participant sequence (the row's).
    pub sequence: u64,
    /// The event as stored.
    pub event: ParticipantEvent,
    /// The metadata stored with it (the ledger keeps the stream position there).
    pub metadata: serde_json::Value,
}

/// A participant's history loaded for a write, with its chain verified on the way.
#[derive(Clone, Debug)]
pub struct VerifiedHistory {
    /// The entries, in sequence order: all of them when the chain is intact, else those before
    /// the first broken link.
    pub entries: Vec<StoredEntry>,
    /// The first link that does not hold: nothing may be appended after it.
    pub first_broken_link: Option<BrokenLink>,
}

/// Loads a participant's whole history for a write, verifying every link of its hash chain
/// before decoding the entry (an edited row is reported as a broken link, not as an unreadable
/// row, and is never decoded into the aggregate). Reading stops at the first broken link.
pub async fn load_verified_history(
    pool: &PgPool,
    participant_id: ParticipantId,
) -> Result<VerifiedHistory, StoreError> {
    let mut rows = sqlx::query(
        "SELECT sequence, payload, metadata FROM events WHERE aggregate_type = 'Participant' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(participant_id.to_string())
    .fetch(pool);
    let mut verifier = ChainVerifier::default();
    let mut entries = Vec::new();
    while let Some(row) = rows.try_next().await? {
        let sequence: i64 = row.try_get("sequence")?;
        let sequence = crate::stored_u64("events.sequence", sequence)?;
        let payload: serde_json::Value = row.try_get("payload")?;
        verifier.push(sequence, &payload);
        if let Some(link) = &verifier.report().first_broken_link {
            return Ok(VerifiedHistory {
                entries,
                first_broken_link: Some(link.clone()),
            });
        }
        let metadata: serde_json::Value = row.try_get("metadata")?;
        let event = serde_json::from_value(payload).map_err(|error| {
            StoreError::Unreadable(format!(
                "entry {sequence} of {participant_id} does not decode: {error}"
            ))
        })?;
        entries.push(StoredEntry {
            sequence,
            event,
            metadata,
        });
    }
    Ok(VerifiedHistory {
        entries,
        first_broken_link: None,
    })
}

/// The events table's append-only guard as the catalog holds it: each trigger's row version
/// and whether it is enabled. Disabling a trigger (to edit a row) and enabling it again writes
/// new catalog rows, so the fingerprint changes; the ledger's aggregate cache compares it on
/// every write and forgets what it verified before the change. One catalog read, whatever the
/// histories' lengths.
pub async fn append_guard_fingerprint(pool: &PgPool) -> Result<String, StoreError> {
    let fingerprint: String = sqlx::query_scalar(&format!("SELECT {APPEND_GUARD_FINGERPRINT}"))
        .fetch_one(pool)
        .await?;
    Ok(fingerprint)
}

/// [`append_guard_fingerprint`] as a scalar subquery, so a read can take it in the same
/// statement (and snapshot) as the rows it checks.
pub(crate) const APPEND_GUARD_FINGERPRINT: &str =
    "(SELECT coalesce(string_agg(xmin::text || ':' || tgenabled::text, ',' ORDER BY oid), '') FROM pg_trigger
       WHERE tgrelid = 'events'::regclass)";

/// The sequence of a participant's last stored entry (0 without entries): one index probe.
pub async fn stored_head(pool: &PgPool, participant_id: ParticipantId) -> Result<u64, StoreError> {
    let head: Option<i64> = sqlx::query_scalar(
        "SELECT max(sequence) FROM events WHERE aggregate_type = 'Participant' AND aggregate_id = $1",
    )
    .bind(participant_id.to_string())
    .fetch_one(pool)
    .await?;
    head.map_or(Ok(0), |head| crate::stored_u64("events.sequence", head))
}

/// A participant's entries recorded at or before `recorded_by` (the payload's `recorded_at`,
/// the ledger's stamp, which is part of the hashed link), in sequence order, at most `limit`:
/// an auditor's replay "as recorded at T". One indexed scan of the participant; the cut is
/// made on the decoded entries (PostgreSQL would have to take every payload apart to make it,
/// which costs more than decoding the few entries a past T leaves out).
pub async fn history_recorded_by(
    pool: &PgPool,
    participant_id: ParticipantId,
    recorded_by: chrono::DateTime<chrono::Utc>,
    limit: usize,
) -> Result<Vec<ParticipantEvent>, StoreError> {
    let mut entries = Vec::new();
    each_recorded_by(pool, participant_id, recorded_by, limit, |entry| {
        entries.push(entry)
    })
    .await?;
    Ok(entries)
}

/// [`history_recorded_by`], each entry handed to `each` as soon as it is decoded (a replay
/// folds while the rest still arrives); returns how many were handed over.
pub async fn each_recorded_by(
    pool: &PgPool,
    participant_id: ParticipantId,
    recorded_by: chrono::DateTime<chrono::Utc>,
    limit: usize,
    mut each: impl FnMut(ParticipantEvent) + Send,
) -> Result<usize, StoreError> {
    let mut rows = sqlx::query(
        "SELECT sequence, payload FROM events WHERE aggregate_type = 'Participant' AND aggregate_id = $1
         ORDER BY sequence",
    )
    .bind(participant_id.to_string())
    .fetch(pool);
    let mut taken = 0;
    while let Some(row) = rows.try_next().await? {
        let entry = decoded_entry(&row, participant_id)?;
        if entry.recorded_at <= recorded_by {
            if taken == limit {
                break;
            }
            taken += 1;
            each(entry);
        }
    }
    Ok(taken)
}

/// A participant's entries up to and including `through_sequence`, in sequence order: the
/// history a read folded or projected when it stood there.
pub async fn history_through(
    pool: &PgPool,
    participant_id: ParticipantId,
    through_sequence: u64,
) -> Result<Vec<ParticipantEvent>, StoreError> {
    let mut rows = sqlx::query(
        "SELECT sequence, payload FROM events WHERE aggregate_type = 'Participant' AND aggregate_id = $1
           AND sequence <= $2
         ORDER BY sequence",
    )
    .bind(participant_id.to_string())
    .bind(i64::try_from(through_sequence).unwrap_or(i64::MAX))
    .fetch(pool);
    let mut entries = Vec::new();
    while let Some(row) = rows.try_next().await? {
        entries.push(decoded_entry(&row, participant_id)?);
    }
    Ok(entries)
}

fn decoded_entry(
    row: &sqlx::postgres::PgRow,
    participant_id: ParticipantId,
) -> Result<ParticipantEvent, StoreError> {
    let sequence: i64 = row.try_get("sequence")?;
    let sqlx::types::Json(event): sqlx::types::Json<ParticipantEvent> =
        row.try_get("payload").map_err(|error| {
            StoreError::Unreadable(format!(
                "entry {sequence} of {participant_id} does not decode: {error}"
            ))
        })?;
    Ok(event)
}

/// Every participant id with stored entries (for whole-store verification and tests).
pub async fn participant_ids(pool: &PgPool) -> Result<Vec<ParticipantId>, StoreError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'Participant'",
    )
    .fetch_all(pool)
    .await?;
    ids.iter()
        .map(|id| {
            ParticipantId::parse(id).map_err(|error| StoreError::Unreadable(error.to_string()))
        })
        .collect()
}

/// A message the ledger could not apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParkedMessage {
    /// The stream it came from.
    pub stream_name: String,
    /// Its stream position (the key: parking twice is a no-op).
    pub stream_sequence: u64,
    /// Its subject.
    pub subject: String,
    /// The raw payload, kept whole.
    pub payload: Vec<u8>,
    /// Why it was parked.
    pub reason: String,
    /// How many deliveries it took (0: read straight from the stream, ahead of its delivery).
    pub delivered_count: i64,
}

/// Stores a parked message; parking the same stream position again is a no-op. Returns whether
/// this call stored it (so a message parked twice, once read from the stream and once
/// delivered, is counted once).
pub async fn park(pool: &PgPool, message: &ParkedMessage) -> Result<bool, StoreError> {
    let outcome = sqlx::query(
        "INSERT INTO parked_messages (stream_name, stream_sequence, subject, payload, reason, delivered_count)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (stream_name, stream_sequence) DO NOTHING",
    )
    .bind(&message.stream_name)
    .bind(crate::storable_i64(
        "parked_messages.stream_sequence",
        message.stream_sequence,
    )?)
    // PostgreSQL text cannot hold U+0000; a subject or reason quoting a message must still be
    // storable (the payload is bytea and kept whole).
    .bind(message.subject.replace('\0', "\\u0000"))
    .bind(&message.payload)
    .bind(message.reason.replace('\0', "\\u0000"))
    .bind(message.delivered_count)
    .execute(pool)
    .await?;
    Ok(outcome.rows_affected() == 1)
}

/// Whether the message at this stream position is parked (a participant's catch-up passes
/// over it rather than trying it again).
pub async fn is_parked(
    pool: &PgPool,
    stream_name: &str,
    stream_sequence: u64,
) -> Result<bool, StoreError> {
    let parked: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM parked_messages WHERE stream_name = $1 AND stream_sequence = $2)",
    )
    .bind(stream_name)
    .bind(crate::storable_i64(
        "parked_messages.stream_sequence",
        stream_sequence,
    )?)
    .fetch_one(pool)
    .await?;
    Ok(parked)
}

/// Parked messages, oldest first, at most `limit`.
pub async fn parked_messages(pool: &PgPool, limit: i64) -> Result<Vec<ParkedMessage>, StoreError> {
    let rows = sqlx::query(
        "SELECT stream_name, stream_sequence, subject, payload, reason, delivered_count FROM parked_messages
         ORDER BY parked_at, stream_sequence LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ParkedMessage {
                stream_name: row.try_get("stream_name")?,
                stream_sequence: crate::stored_u64(
                    "parked_messages.stream_sequence",
                    row.try_get("stream_sequence")?,
                )?,
                subject: row.try_get("subject")?,
                payload: row.try_get("payload")?,
                reason: row.try_get("reason")?,
                delivered_count: row.try_get("delivered_count")?,
            })
        })
        .collect()
}
