//! The read paths' folds of participants (consents, allow-list, units, and the hash chain as
//! verified so far), kept so a read does not re-read and re-fold a whole history: each read asks
//! the store only for what was stored after the fold it holds, in the same statement as its
//! other reads, and folds that tail in before deciding anything.
//!
//! The cache only saves work; it never decides on stale state. A fold is used only once it has
//! caught up with the participant's stored head as of the read's own snapshot: the statement
//! that returns the data (or the one that opens the participant) also returns every entry stored
//! after the fold's head, so a consent withdrawn and committed before the read began is always
//! folded in before the read decides (a withdrawn consent is never honoured late). Nothing
//! invalidates the cache from outside (no hook from ingest, no notification): a write by this
//! ledger, another ledger or a direct insert is the same to it.
//!
//! The events table is append-only, so entries past the head are the only change a fold can
//! miss, except an edit made around the append-only guard. Each fold keeps the guard's
//! fingerprint (`store::events::append_guard_fingerprint`, read in the same statement) it was
//! made under; under another fingerprint it is dropped and the participant is folded afresh, as
//! the ingest's aggregate cache does.
//!
//! Memory is bounded by `timeline.read_fold_cache_bytes_max` (estimated per participant from
//! its entries); the least recently used go first; 0 keeps nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use domain::chain::{ChainReport, ChainVerifier};
use domain::{Participant, ParticipantEvent};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use uuid::Uuid;

/// One participant as the read paths fold it.
#[derive(Clone, Debug)]
pub struct ReadFold {
    /// The aggregate folded from every stored entry (consent and allow-list decisions).
    pub participant: Participant,
    /// The hash chain verified over the same entries.
    chain: ChainVerifier,
    /// The row sequence of the last entry folded: the next read asks for what follows it.
    stored_through: u64,
    /// The append-only guard this fold was made under.
    append_guard_fingerprint: Arc<str>,
}

impl ReadFold {
    /// The chain as verified over every entry folded.
    pub fn chain(&self) -> ChainReport {
        self.chain.report().clone()
    }

    /// The row sequence of the last entry folded (0: none).
    pub fn stored_through(&self) -> u64 {
        self.stored_through
    }

    /// This fold with `tail` (the entries stored after it, in order) folded in.
    fn extended(
        participant_id: Uuid,
        base: Option<&ReadFold>,
        tail: store::participants::StoredTail,
        append_guard_fingerprint: &Arc<str>,
    ) -> Result<ReadFold, store::StoreError> {
        let mut fold = base.cloned().unwrap_or_else(|| ReadFold {
            participant: Participant::default(),
            chain: ChainVerifier::default(),
            stored_through: 0,
            append_guard_fingerprint: append_guard_fingerprint.clone(),
        });
        for (sequence, payload) in tail {
            fold.chain.push(sequence, &payload);
            let event: ParticipantEvent = serde_json::from_value(payload).map_err(|error| {
                store::StoreError::Unreadable(format!(
                    "entry {sequence} of {participant_id} does not decode: {error}"
                ))
            })?;
            cqrs_es::Aggregate::apply(&mut fold.participant, event);
            fold.stored_through = sequence;
        }
        Ok(fold)
    }

    fn bytes_estimate(&self) -> u64 {
        // Held behind an `Arc`: its two counters sit beside the fold.
        crate::ingest::participant_bytes_estimate(
            std::mem::size_of::<ReadFold>() + 2 * std::mem::size_of::<usize>(),
            self.stored_through,
        )
    }
}

/// How a read found its participant, for `ips_read_folds_total`.
#[derive(Clone, Debug)]
pub struct ReadFoldCounters {
    /// Served from a cached fold, with nothing stored after it.
    pub current: Counter,
    /// A cached fold with entries stored after it, folded in.
    pub extended: Counter,
    /// Folded from the whole history (not cached, evicted, or the guard changed).
    pub folded_whole: Counter,
}

/// The cache, behind one lock (never held across an await).
#[derive(Debug, Default)]
struct Cached {
    entries: HashMap<Uuid, Slot>,
    /// Last use → participant, oldest first.
    recency: BTreeMap<u64, Uuid>,
    next_use: u64,
    bytes: u64,
    /// The guard as the latest read saw it; folds made under another one are dropped.
    append_guard_fingerprint: Option<Arc<str>>,
}

#[derive(Debug)]
struct Slot {
    fold: Arc<ReadFold>,
    last_use: u64,
    bytes: u64,
}

impl Cached {
    fn remove(&mut self, participant_id: &Uuid) {
        if let Some(slot) = self.entries.remove(participant_id) {
            self.recency.remove(&slot.last_use);
            self.bytes -= slot.bytes;
        }
    }

    /// The fingerprint of the guard as a read just saw it, shared (one allocation per change).
    fn observe(&mut self, fingerprint: &str) -> Arc<str> {
        match &self.append_guard_fingerprint {
            Some(seen) if seen.as_ref() == fingerprint => seen.clone(),
            _ => {
                // The guard changed (or this is the first look): nothing made before may be
                // extended, so nothing made before is worth its memory.
                self.entries.clear();
                self.recency.clear();
                self.bytes = 0;
                let seen: Arc<str> = Arc::from(fingerprint);
                self.append_guard_fingerprint = Some(seen.clone());
                seen
            }
        }
    }
}

/// The read paths' folds: the store they read from, the cache and its counters.
#[derive(Debug)]
pub struct ReadFolds {
    pool: PgPool,
    bytes_max: u64,
    cached: Mutex<Cached>,
    counters: ReadFoldCounters,
}

/// A read's participants, each caught up with its stored head as of the read's statement.
pub type Folded = HashMap<Uuid, Arc<ReadFold>>;

impl ReadFolds {
    /// Folds read from `pool`, at most `bytes_max` (estimated) kept; counted in `registry`.
    pub fn registered(pool: PgPool, bytes_max: u64, registry: &mut Registry) -> Self {
        let counters = ReadFoldCounters {
            current: Counter::default(),
            extended: Counter::default(),
            folded_whole: Counter::default(),
        };
        registry.register(
            "ips_read_folds_current",
            "Participants a read found folded and current (nothing stored after the cached fold)",
            counters.current.clone(),
        );
        registry.register(
            "ips_read_folds_extended",
            "Participants a read found folded, with entries stored after the fold that it folded in",
            counters.extended.clone(),
        );
        registry.register(
            "ips_read_folds_whole",
            "Participants a read folded from their whole history",
            counters.folded_whole.clone(),
        );
        Self {
            pool,
            bytes_max,
            cached: Mutex::new(Cached::default()),
            counters,
        }
    }

    /// The pool reads go to.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        // Folds go in and out whole, so a panic while locked leaves only bookkeeping behind.
        self.cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached fold of `participant_id`, if any: where a read's catch-up starts. Not to be
    /// used before [`Self::caught_up`] has folded in what was stored after it.
    pub fn start(&self, participant_id: Uuid) -> Option<Arc<ReadFold>> {
        let mut cached = self.lock();
        let use_now = cached.next_use;
        cached.next_use += 1;
        let slot = cached.entries.get_mut(&participant_id)?;
        let previous_use = std::mem::replace(&mut slot.last_use, use_now);
        let fold = slot.fold.clone();
        cached.recency.remove(&previous_use);
        cached.recency.insert(use_now, participant_id);
        Some(fold)
    }

    /// `start` caught up with `tail`, the entries a read's statement found stored after it,
    /// under the guard that statement saw. `Ok(None)` when `start` was made under another
    /// guard: the caller folds the participant afresh ([`Self::current`] with nothing cached).
    /// A participant with no entries at all is `Some` of an empty fold, never cached.
    pub fn caught_up(
        &self,
        participant_id: Uuid,
        start: Option<Arc<ReadFold>>,
        tail: store::participants::StoredTail,
        append_guard_fingerprint: &str,
    ) -> Result<Option<Arc<ReadFold>>, store::StoreError> {
        let fingerprint = self.lock().observe(append_guard_fingerprint);
        if let Some(start) = &start {
            if start.append_guard_fingerprint != fingerprint {
                self.lock().remove(&participant_id);
                return Ok(None);
            }
            if tail.is_empty() {
                self.counters.current.inc();
                return Ok(Some(start.clone()));
            }
            self.counters.extended.inc();
        } else {
            self.counters.folded_whole.inc();
        }
        let fold = Arc::new(ReadFold::extended(
            participant_id,
            start.as_deref(),
            tail,
            &fingerprint,
        )?);
        if fold.stored_through > 0 {
            self.put(participant_id, fold.clone());
        }
        Ok(Some(fold))
    }

    fn put(&self, participant_id: Uuid, fold: Arc<ReadFold>) {
        let bytes = fold.bytes_estimate();
        if bytes > self.bytes_max {
            return;
        }
        let mut cached = self.lock();
        // Made under a guard a later read has since replaced: not worth keeping.
        if cached.append_guard_fingerprint.as_ref() != Some(&fold.append_guard_fingerprint) {
            return;
        }
        // A concurrent read may have put a fold further along; keep the one further along.
        if let Some(slot) = cached.entries.get(&participant_id) {
            if slot.fold.stored_through >= fold.stored_through {
                return;
            }
        }
        cached.remove(&participant_id);
        while cached.bytes + bytes > self.bytes_max {
            let Some((_, oldest)) = cached.recency.pop_first() else {
                break;
            };
            if let Some(slot) = cached.entries.remove(&oldest) {
                cached.bytes -= slot.bytes;
            }
        }
        let last_use = cached.next_use;
        cached.next_use += 1;
        cached.recency.insert(last_use, participant_id);
        cached.bytes += bytes;
        cached.entries.insert(
            participant_id,
            Slot {
                fold,
                last_use,
                bytes,
            },
        );
    }

    /// The listed participants as stored now: cached folds caught up with one statement (every
    /// entry after each fold's head, and the guard), the rest folded whole. Participants with
    /// no history are absent.
    pub async fn current(&self, participant_ids: &[Uuid]) -> Result<Folded, store::StoreError> {
        let mut starts: HashMap<Uuid, Option<Arc<ReadFold>>> = participant_ids
            .iter()
            .map(|participant_id| (*participant_id, self.start(*participant_id)))
            .collect();
        let mut folded = Folded::new();
        // At most twice: a fold made under an older guard is folded afresh in a second
        // statement, which asks for whole histories and so needs no cached fold at all.
        for _attempt in 0..2 {
            if starts.is_empty() {
                break;
            }
            let after: Vec<(Uuid, u64)> = starts
                .iter()
                .map(|(participant_id, start)| {
                    (
                        *participant_id,
                        start.as_ref().map_or(0, |fold| fold.stored_through),
                    )
                })
                .collect();
            let mut read = store::participants::entries_after(&self.pool, &after).await?;
            let mut again = HashMap::new();
            for (participant_id, start) in starts {
                let tail = read.tails.remove(&participant_id).unwrap_or_default();
                match self.caught_up(participant_id, start, tail, &read.append_guard_fingerprint)? {
                    Some(fold) if fold.stored_through > 0 => {
                        folded.insert(participant_id, fold);
                    }
                    Some(_) => {}
                    None => {
                        again.insert(participant_id, None);
                    }
                }
            }
            starts = again;
        }
        if !starts.is_empty() {
            return Err(store::StoreError::Unreadable(
                "the events table's append-only guard changed under a whole-history read".into(),
            ));
        }
        Ok(folded)
    }
}
