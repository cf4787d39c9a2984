//! Every read of participant data goes through here: who reads (the verified caller), whether
//! they may open each participant (protected identity), what they may see of it (consent, in
//! the domain's `visibility` rules, judged on the ledger clock's today), and the access-log
//! entry written before anything is returned: no entry, no data (DESIGN.md §7, invariants 6
//! and 7).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use domain::visibility::Reader;
use domain::Participant;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use tonic::Status;
use uuid::Uuid;

use rpc::errors;

pub use crate::read_folds::{ReadFold, ReadFolds};

/// The reader of a request, from the caller the gatekeeper verified.
pub fn reader(extensions: &tonic::Extensions) -> Result<Reader, Status> {
    let caller = rpc::identity::caller(extensions)?;
    Ok(Reader {
        agency: caller.agency,
        actor: caller.actor,
    })
}

/// Loads participants for `reader`, each caught up with its stored head by this call's own
/// statement (`read_folds`). Those the reader may not open (protected identity) are left out;
/// [`open_one`] turns that into `PERMISSION_DENIED` for single-participant reads.
pub async fn open(
    folds: &ReadFolds,
    reader: &Reader,
    participant_ids: &[Uuid],
) -> Result<HashMap<Uuid, Participant>, Status> {
    let folded = folds
        .current(participant_ids)
        .await
        .map_err(|error| crate::store_errors::from_store(&error))?;
    Ok(folded
        .into_iter()
        .filter(|(participant_id, fold)| {
            may_open(reader, *participant_id, &fold.participant).is_ok()
        })
        .map(|(participant_id, fold)| (participant_id, fold.participant.clone()))
        .collect())
}

/// The one allow-list and unit decision of every read, logged when it leaves a participant out.
pub fn may_open(
    reader: &Reader,
    participant_id: Uuid,
    participant: &Participant,
) -> Result<(), domain::visibility::OpenRefused> {
    participant.may_open(reader).inspect_err(|refused| {
        tracing::info!(%participant_id, reader = %reader.actor.person_id, rule = refused.rule(), "participant left out of a read");
    })
}

/// Which of the listed participants `reader` may open, folding only those with a protected
/// identity entry: a board needs no consent decision, only the allow-list one.
pub async fn openable(
    folds: &ReadFolds,
    reader: &Reader,
    participant_ids: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>, Status> {
    let protected = store::participants::with_protection_entries(folds.pool(), participant_ids)
        .await
        .map_err(|error| crate::store_errors::from_store(&error))?;
    let opened = open(folds, reader, &protected).await?;
    Ok(participant_ids
        .iter()
        .filter(|participant_id| {
            opened.contains_key(participant_id) || !protected.contains(participant_id)
        })
        .copied()
        .collect())
}

/// Participants a long-lived reader (a watch) keeps folded, refolding only those whose history
/// grew since the last look.
#[derive(Default)]
pub struct FoldedParticipants {
    folded: HashMap<Uuid, Participant>,
}

impl FoldedParticipants {
    /// The listed participants `reader` may open, current as of now (borrowed: a watch looks
    /// again on every change it is told of, and a history is not worth copying for that).
    pub async fn refresh(
        &mut self,
        pool: &PgPool,
        reader: &Reader,
        participant_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, &Participant>, Status> {
        self.refresh_changed(pool, reader, participant_ids, participant_ids)
            .await
    }

    /// As [`FoldedParticipants::refresh`], but compares with the stored heads only the
    /// participants in `changed` (a projected batch announced them): every other one kept is
    /// current, since any new entry of theirs would have been announced too. Folds of
    /// participants no longer listed are dropped.
    pub async fn refresh_changed(
        &mut self,
        pool: &PgPool,
        reader: &Reader,
        participant_ids: &[Uuid],
        changed: &[Uuid],
    ) -> Result<HashMap<Uuid, &Participant>, Status> {
        let heads = store::participants::heads(pool, changed)
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?;
        let stale: Vec<Uuid> = changed
            .iter()
            .filter(|participant_id| {
                self.folded
                    .get(participant_id)
                    .map(|participant| participant.chain_head().0)
                    != heads.get(participant_id).copied()
            })
            .copied()
            .collect();
        let reloaded = store::participants::load(pool, &stale)
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?;
        // Sets, not slices: a whole-board refresh passes every participant as changed, and a
        // slice's `contains` per kept fold would cost the board's size squared.
        let listed: std::collections::HashSet<&Uuid> = participant_ids.iter().collect();
        let changed: std::collections::HashSet<&Uuid> = changed.iter().collect();
        self.folded.retain(|participant_id, _| {
            listed.contains(participant_id)
                && (heads.contains_key(participant_id) || !changed.contains(participant_id))
        });
        self.folded.extend(reloaded);
        Ok(participant_ids
            .iter()
            .filter_map(|participant_id| {
                let participant = self.folded.get(participant_id)?;
                participant
                    .may_open(reader)
                    .is_ok()
                    .then_some((*participant_id, participant))
            })
            .collect())
    }
}

/// Loads one participant for `reader`, caught up with its stored head: `NOT_FOUND` without
/// history, `PERMISSION_DENIED` when its identity is protected and the reader is not on the
/// allow-list (or it is another unit's).
pub async fn open_one(
    folds: &ReadFolds,
    reader: &Reader,
    participant_id: Uuid,
) -> Result<Arc<ReadFold>, Status> {
    let fold = folds
        .current(&[participant_id])
        .await
        .map_err(|error| crate::store_errors::from_store(&error))?
        .remove(&participant_id);
    opened(reader, participant_id, fold)
}

/// [`open_one`]'s decision on a fold the caller caught up itself (`None`: no history).
pub fn opened(
    reader: &Reader,
    participant_id: Uuid,
    fold: Option<Arc<ReadFold>>,
) -> Result<Arc<ReadFold>, Status> {
    let fold = fold
        .filter(|fold| fold.stored_through() > 0)
        .ok_or_else(|| errors::participant_not_found(&participant_id.to_string()))?;
    fold.participant
        .may_open(reader)
        .map_err(|refused| errors::denied(refused.rule(), &refused.to_string()))?;
    Ok(fold)
}

/// Whether `reader` may open `participant_id` (unit boundary and allow-list; true without
/// history: nothing to protect). For look-ups that answer "unknown" rather than refuse.
pub async fn opens(
    folds: &ReadFolds,
    reader: &Reader,
    participant_id: Uuid,
) -> Result<bool, Status> {
    let folded = folds
        .current(&[participant_id])
        .await
        .map_err(|error| crate::store_errors::from_store(&error))?;
    Ok(folded
        .get(&participant_id)
        .is_none_or(|fold| fold.participant.may_open(reader).is_ok()))
}

/// The access log's basis text for a set of bases (sorted, comma-separated), or `fallback`.
pub fn basis_text(bases: &BTreeSet<String>, fallback: &str) -> String {
    if bases.is_empty() {
        fallback.to_owned()
    } else {
        bases.iter().cloned().collect::<Vec<_>>().join(",")
    }
}

/// Where this ledger's read paths write the access log, and its count of the entries written
/// (`ips_access_log_entries_total`, this ledger's own: never a process global).
#[derive(Clone, Debug)]
pub struct AccessLog {
    /// The store the entries go to.
    pub pool: PgPool,
    /// Entries this ledger has written.
    pub entries_written: Counter,
}

impl AccessLog {
    /// An access log writing to `pool`, its count registered in `registry`.
    pub fn registered(pool: PgPool, registry: &mut Registry) -> Self {
        let entries_written = Counter::default();
        registry.register(
            "ips_access_log_entries",
            "Access-log entries written (one per participant per read)",
            entries_written.clone(),
        );
        Self {
            pool,
            entries_written,
        }
    }
}

/// Writes one access-log entry per `(participant, basis)` read by `reader` through `action`.
/// Fails with `UNAVAILABLE` when the log cannot be written, so the caller returns nothing.
pub async fn log(
    access_log: &AccessLog,
    reader: &Reader,
    action: &str,
    reads: impl IntoIterator<Item = (Uuid, String)>,
) -> Result<(), Status> {
    record(
        access_log,
        reader,
        action,
        reads
            .into_iter()
            .map(|(participant_id, basis)| (participant_id, basis, None))
            .collect(),
    )
    .await
}

/// What a read that can be rebuilt shares among the participants it returns: the request as
/// the read path took it, the day it judged on, and where the projector stood.
#[derive(Clone, Debug)]
pub struct ReadContext {
    /// The request's parameters.
    pub request: serde_json::Value,
    /// The day consents and time-dependent statuses were judged on.
    pub business_date: chrono::NaiveDate,
    /// The projector's checkpoint when the read began.
    pub projector_checkpoint: Option<i64>,
}

/// One participant a rebuildable read returned: the basis, and where its history and the read
/// model stood for this read.
#[derive(Clone, Debug)]
pub struct ParticipantRead {
    /// Whose data.
    pub participant_id: Uuid,
    /// The access log's basis.
    pub basis: String,
    /// The event-store head the read folded.
    pub history_sequence: Option<u64>,
    /// The read-model head the data came from.
    pub read_model_sequence: Option<u64>,
    /// What the read handed out beyond the events (ids only).
    pub shown: Option<serde_json::Value>,
}

/// [`log`] for a read that can be rebuilt (issue 11): each entry also keeps the read's
/// context and the participant's positions, under one read id.
pub async fn log_read(
    access_log: &AccessLog,
    reader: &Reader,
    action: &str,
    context: &ReadContext,
    reads: impl IntoIterator<Item = ParticipantRead>,
) -> Result<(), Status> {
    let read_id = Uuid::now_v7();
    record(
        access_log,
        reader,
        action,
        reads
            .into_iter()
            .map(|read| {
                let record = store::access_log::ReadRecord {
                    read_id,
                    request: context.request.clone(),
                    business_date: context.business_date,
                    history_sequence: read.history_sequence,
                    read_model_sequence: read.read_model_sequence,
                    projector_checkpoint: context.projector_checkpoint,
                    shown: read.shown,
                };
                (read.participant_id, read.basis, Some(record))
            })
            .collect(),
    )
    .await
}

async fn record(
    access_log: &AccessLog,
    reader: &Reader,
    action: &str,
    reads: Vec<(Uuid, String, Option<store::access_log::ReadRecord>)>,
) -> Result<(), Status> {
    let entries: Vec<store::access_log::AccessEntry> = reads
        .into_iter()
        .map(
            |(participant_id, basis, read)| store::access_log::AccessEntry {
                reader_person_id: reader.actor.person_id.0.clone(),
                reader_role: reader.actor.role.token().to_owned(),
                reader_unit: reader.actor.unit.0.clone(),
                reader_agency: reader.agency.token().to_owned(),
                participant_id,
                action: action.to_owned(),
                basis,
                read,
            },
        )
        .collect();
    store::access_log::record(&access_log.pool, &entries)
        .await
        .map_err(|error| {
            Status::unavailable(format!(
                "the access log cannot be written, so nothing is returned: {error}"
            ))
        })?;
    access_log
        .entries_written
        .inc_by(u64::try_from(entries.len()).unwrap_or(u64::MAX));
    Ok(())
}

/// Waits until the read models hold `participant_id`'s history up to `min_sequence` (the
/// projector writes every read model and its checkpoint in one transaction, so the timeline's
/// head stands for all of them). A read served from a read model calls this first, so a caller
/// who has just been told ACCEPTED never reads an older state, and never `NOT_FOUND` for a
/// participant it has just referred. `DEADLINE_EXCEEDED` after `wait_max`.
pub async fn wait_until_projected(
    pool: &PgPool,
    progress: &tokio::sync::watch::Receiver<u64>,
    participant_id: domain::ParticipantId,
    min_sequence: u64,
    wait_max: std::time::Duration,
) -> Result<(), Status> {
    if min_sequence == 0 {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + wait_max;
    let mut progress = progress.clone();
    loop {
        let head = store::timeline::head_sequence(pool, participant_id)
            .await
            .map_err(|error| crate::store_errors::from_store(&error))?;
        if head >= min_sequence {
            return Ok(());
        }
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() {
            return Err(Status::deadline_exceeded(format!(
                "sequence {min_sequence} is not yet in the read models; retry shortly"
            )));
        }
        // Wake on the next projected batch, or re-check soon in case it was already missed.
        let _ = tokio::time::timeout(
            remaining.min(std::time::Duration::from_millis(50)),
            progress.changed(),
        )
        .await;
    }
}

/// The newest recorded sequence of `participant_id` (0 without history).
pub async fn recorded_head(
    pool: &PgPool,
    participant_id: domain::ParticipantId,
) -> Result<u64, Status> {
    let heads = store::participants::heads(pool, &[participant_id.0])
        .await
        .map_err(|error| crate::store_errors::from_store(&error))?;
    Ok(heads.get(&participant_id.0).copied().unwrap_or(0))
}

/// Where the projector stands, for a read's context (`None` when it cannot be read: the read
/// then goes on, and its rebuild says the checkpoint is unknown).
pub async fn projector_checkpoint(pool: &PgPool) -> Option<i64> {
    store::projector::checkpoint_position(pool).await.ok()
}
