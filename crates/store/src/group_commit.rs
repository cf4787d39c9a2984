//! Group commit: several deliveries' events written in one PostgreSQL transaction, so one
//! durable commit (one WAL flush) serves many deliveries instead of one each.
//!
//! The rows are exactly postgres-es's: the same table and columns, each event serialized by
//! cqrs-es's own `SerializedEvent::try_from` (event type and version, payload and metadata as
//! postgres-es binds them) at the sequence postgres-es's `wrap_events` gives it (the stored
//! head plus one, on). The optimistic check is the same too: the primary key on
//! (aggregate_type, aggregate_id, sequence) and the unique event id refuse a second writer with
//! SQLSTATE 23505. Nothing is hidden with `ON CONFLICT`.
//!
//! First the whole batch is inserted with one statement (one round trip, whatever the batch's
//! size). Only if PostgreSQL refuses it is the transaction rolled back and the batch written
//! again one savepoint per delivery, so a delivery whose rows are refused (a conflict, data
//! PostgreSQL will not take) is rolled back to its savepoint and answered with its own error
//! while the others commit. (A batch of one delivery needs no second pass: the refusal is its.)
//! A refused row's triggers have thus run twice for one attempt of a delivery in a bigger batch. Deliveries are
//! written in participant order, so two ledgers' batches take the unique-index locks in the
//! same order and cannot deadlock on each other.

use std::collections::HashMap;

use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, EventEnvelope};
use domain::{Participant, ParticipantEvent, ParticipantId};
use sqlx::{Executor, PgPool};

use crate::StoreError;

/// postgres-es 0.5's own insert (`SqlQueryFactory::insert_event`), over our `events` table.
const INSERT_EVENT: &str = "
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// The same rows, a whole batch in one statement (row order is the array order, so
/// `global_position` follows it as it would follow single inserts).
const INSERT_EVENTS_UNNESTED: &str = "
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])";

/// One delivery's decision, waiting to be committed.
#[derive(Clone, Debug)]
pub struct PendingCommit {
    /// The participant (aggregate id).
    pub participant_id: ParticipantId,
    /// The stored head the events were decided on (postgres-es's `current_sequence`): the
    /// first event is stored at this plus one.
    pub expected_sequence: u64,
    /// The events, in order.
    pub events: Vec<ParticipantEvent>,
    /// The metadata stored with each of them.
    pub metadata: HashMap<String, String>,
}

/// What became of one delivery of a batch (the batch itself committed).
#[derive(Debug)]
pub enum CommitOutcome {
    /// Its rows are committed.
    Written,
    /// PostgreSQL refused its rows; they were rolled back to its savepoint, nothing of it is
    /// stored. The error's SQLSTATE tells a conflict (23505) from refused data.
    Refused(sqlx::Error),
    /// An event could not be serialized (nothing was sent for it).
    Unserializable(String),
}

/// What a committed batch did.
#[derive(Debug)]
pub struct GroupCommitReport {
    /// One outcome per pending commit, in the order given.
    pub outcomes: Vec<CommitOutcome>,
    /// Deliveries rolled back to their savepoint.
    pub savepoint_rollbacks: u64,
    /// Whether the one-statement insert was refused and the batch written one savepoint per
    /// delivery.
    pub written_per_savepoint: bool,
}

/// The rows postgres-es would write for one pending commit.
fn serialized(commit: &PendingCommit) -> Result<Vec<SerializedEvent>, String> {
    let aggregate_id = commit.participant_id.to_string();
    let first = usize::try_from(commit.expected_sequence)
        .map_err(|_| format!("sequence {} out of range", commit.expected_sequence))?
        + 1;
    commit
        .events
        .iter()
        .zip(first..)
        .map(|(event, sequence)| {
            // Refused here, for this delivery alone, rather than when the batch binds it.
            crate::storable_i64("events.sequence", sequence as u64)
                .map_err(|error| error.to_string())?;
            let envelope = EventEnvelope::<Participant> {
                aggregate_id: aggregate_id.clone(),
                sequence,
                payload: event.clone(),
                metadata: commit.metadata.clone(),
            };
            SerializedEvent::try_from(&envelope).map_err(|error| error.to_string())
        })
        .collect()
}

fn sequence_bound(row: &SerializedEvent) -> Result<i64, StoreError> {
    crate::storable_i64("events.sequence", row.sequence as u64)
}

/// Writes the pending commits in one transaction. `Err` means the transaction did not commit
/// (or its outcome is unknown: a lost connection during COMMIT): nothing of the batch may be
/// taken as stored, and each delivery must find out by loading its participant again.
pub async fn commit_group(
    pool: &PgPool,
    commits: &[PendingCommit],
) -> Result<GroupCommitReport, StoreError> {
    let mut outcomes: Vec<Option<CommitOutcome>> = Vec::with_capacity(commits.len());
    let mut rows_of: Vec<(usize, Vec<SerializedEvent>)> = Vec::with_capacity(commits.len());
    for (index, commit) in commits.iter().enumerate() {
        match serialized(commit) {
            Ok(rows) => {
                outcomes.push(None);
                rows_of.push((index, rows));
            }
            Err(error) => outcomes.push(Some(CommitOutcome::Unserializable(error))),
        }
    }
    // One lock order for every batch of every ledger (see the module comment); a stable sort
    // keeps one participant's commits, if several, in their given order.
    rows_of.sort_by(|(left, _), (right, _)| {
        commits[*left]
            .participant_id
            .0
            .cmp(&commits[*right].participant_id.0)
    });
    let mut report = GroupCommitReport {
        outcomes: Vec::new(),
        savepoint_rollbacks: 0,
        written_per_savepoint: false,
    };
    if !rows_of.is_empty() {
        match insert_at_once(pool, &rows_of).await? {
            Ok(()) => {
                for (index, _) in &rows_of {
                    outcomes[*index] = Some(CommitOutcome::Written);
                }
            }
            // One delivery: the refusal is its own, nothing to find out.
            Err(error) if rows_of.len() == 1 => {
                outcomes[rows_of[0].0] = Some(CommitOutcome::Refused(error));
            }
            Err(_) => {
                report.written_per_savepoint = true;
                let mut transaction = pool.begin().await?;
                for (savepoint, (index, rows)) in rows_of.iter().enumerate() {
                    let statement = format!("SAVEPOINT delivery_{savepoint}");
                    // Without arguments: the simple protocol, nothing prepared.
                    (&mut *transaction).execute(statement.as_str()).await?;
                    let mut refused = None;
                    for row in rows {
                        let inserted = sqlx::query(INSERT_EVENT)
                            .bind(Participant::TYPE)
                            .bind(row.aggregate_id.as_str())
                            .bind(sequence_bound(row)?)
                            .bind(&row.event_type)
                            .bind(&row.event_version)
                            .bind(&row.payload)
                            .bind(&row.metadata)
                            .execute(&mut *transaction)
                            .await;
                        if let Err(error) = inserted {
                            refused = Some(error);
                            break;
                        }
                    }
                    outcomes[*index] = Some(match refused {
                        None => CommitOutcome::Written,
                        Some(error) => {
                            // A lost connection fails this too, and with it the batch.
                            let statement = format!("ROLLBACK TO SAVEPOINT delivery_{savepoint}");
                            (&mut *transaction).execute(statement.as_str()).await?;
                            report.savepoint_rollbacks += 1;
                            CommitOutcome::Refused(error)
                        }
                    });
                }
                transaction.commit().await?;
            }
        }
    }
    report.outcomes = outcomes
        .into_iter()
        .map(|outcome| outcome.expect("every pending commit has an outcome"))
        .collect();
    Ok(report)
}

/// The whole batch in one statement and one transaction. `Ok(Err(refusal))`: PostgreSQL
/// refused the statement (some delivery's rows), so nothing was written; with more than one
/// delivery the caller writes the batch again one savepoint per delivery to find whose.
async fn insert_at_once(
    pool: &PgPool,
    rows_of: &[(usize, Vec<SerializedEvent>)],
) -> Result<Result<(), sqlx::Error>, StoreError> {
    let columns = Columns::of(rows_of)?;
    let mut transaction = pool.begin().await?;
    let inserted = sqlx::query(INSERT_EVENTS_UNNESTED)
        .bind(columns.aggregate_types)
        .bind(columns.aggregate_ids)
        .bind(columns.sequences)
        .bind(columns.event_types)
        .bind(columns.event_versions)
        .bind(columns.payloads)
        .bind(columns.metadata)
        .execute(&mut *transaction)
        .await;
    match inserted {
        Ok(_) => {
            transaction.commit().await?;
            Ok(Ok(()))
        }
        // Refused by PostgreSQL: the connection is fine (the rollback says so).
        Err(error @ sqlx::Error::Database(_)) => {
            transaction.rollback().await?;
            Ok(Err(error))
        }
        Err(error) => Err(error.into()),
    }
}

/// A batch's rows as one array per column, for [`INSERT_EVENTS_UNNESTED`].
struct Columns {
    aggregate_types: Vec<String>,
    aggregate_ids: Vec<String>,
    sequences: Vec<i64>,
    event_types: Vec<String>,
    event_versions: Vec<String>,
    payloads: Vec<serde_json::Value>,
    metadata: Vec<serde_json::Value>,
}

impl Columns {
    fn of(rows_of: &[(usize, Vec<SerializedEvent>)]) -> Result<Self, StoreError> {
        let count = rows_of.iter().map(|(_, rows)| rows.len()).sum();
        let mut columns = Self {
            aggregate_types: Vec::with_capacity(count),
            aggregate_ids: Vec::with_capacity(count),
            sequences: Vec::with_capacity(count),
            event_types: Vec::with_capacity(count),
            event_versions: Vec::with_capacity(count),
            payloads: Vec::with_capacity(count),
            metadata: Vec::with_capacity(count),
        };
        for row in rows_of.iter().flat_map(|(_, rows)| rows.iter()) {
            columns.aggregate_types.push(Participant::TYPE.to_owned());
            columns.aggregate_ids.push(row.aggregate_id.clone());
            columns.sequences.push(sequence_bound(row)?);
            columns.event_types.push(row.event_type.clone());
            columns.event_versions.push(row.event_version.clone());
            columns.payloads.push(row.payload.clone());
            columns.metadata.push(row.metadata.clone());
        }
        Ok(columns)
    }
}
