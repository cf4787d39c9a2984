//! The aggregate cache: participants as folded by earlier deliveries, kept so that the next
//! delivery about them does not re-read and re-fold their whole history (the cost of an apply
//! then no longer grows with the history's length).
//!
//! The cache only saves work; it never decides. A cached participant is *taken out* for the
//! decision and put back only after its commit succeeded (or nothing needed committing), so a
//! failed or aborted commit leaves nothing behind and the next attempt loads from the store.
//! The store still decides every race: postgres-es inserts at the cached sequence + 1, and its
//! unique (aggregate type, id, sequence) index refuses the row if another writer got there
//! first (`AggregateConflict`), after which the ledger loads afresh. A cached entry can be behind
//! the store (another ledger wrote), never ahead of it (it only grows by this ledger's commits).
//!
//! Memory is bounded by `ingest.aggregate_cache_bytes_max`, an estimate per participant that
//! grows with its entries; the least recently used participants go first.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use domain::{Participant, ParticipantId};

/// A participant as folded for a write: everything the next decision and commit need.
#[derive(Debug)]
pub struct FoldedParticipant {
    /// The aggregate (its `last_hash` continues the chain, its `last_recorded_at` keeps
    /// `recorded_at` increasing, its `recorded` map makes a redelivery a no-op).
    pub(crate) aggregate: Participant,
    /// The stored head: the sequence postgres-es's next insert follows.
    pub(crate) current_sequence: usize,
    /// The highest stream sequence applied to it (ordering reads the stream past it).
    pub(crate) applied_through_stream_sequence: u64,
    /// Whether it came from the cache (rather than straight from the store) for this attempt.
    pub(crate) from_cache: bool,
}

impl FoldedParticipant {
    /// `aggregate` as folded from the `current_sequence` entries stored (a participant made
    /// outside a delivery, as `tests/cache_memory.rs` makes them).
    pub fn folded(aggregate: Participant, current_sequence: usize) -> Self {
        Self {
            aggregate,
            current_sequence,
            applied_through_stream_sequence: 0,
            from_cache: false,
        }
    }

    /// The memory this participant is reckoned to take in the cache.
    pub(crate) fn bytes_estimate(&self) -> u64 {
        participant_bytes_estimate(
            std::mem::size_of::<FoldedParticipant>(),
            self.current_sequence as u64,
        )
    }
}

/// What a participant folded from `entries` entries is reckoned to take in a cache whose value
/// (`value_inline_bytes`, holding the aggregate) sits boxed behind the cache's map. One rule for
/// both caches (this one and the reads' folds), checked against the allocator by
/// `tests/cache_memory.rs`:
/// - the boxed value itself, with the map's slot (key, box, recency; a hash table keeps up to
///   twice its entries in slots) and the recency index's node;
/// - the aggregate's first nodes and strings: the `recorded` map's first B-tree leaf holds room
///   for eleven verdicts however few there are, and the chain head is a 64-character string;
/// - per entry: its `recorded` verdict (id, sequence, 64-character hash, outcome, event type,
///   a share of a B-tree node) and what the event adds to the state.
pub(crate) fn participant_bytes_estimate(value_inline_bytes: usize, entries: u64) -> u64 {
    value_inline_bytes as u64 + PARTICIPANT_FIXED_BYTES_ESTIMATE + ENTRY_BYTES_ESTIMATE * entries
}

/// A cached participant's cost beyond its boxed value and its entries (see
/// [`participant_bytes_estimate`]).
const PARTICIPANT_FIXED_BYTES_ESTIMATE: u64 = 1_700;

/// What one entry of a participant's history is reckoned to take once folded (see
/// [`participant_bytes_estimate`]).
const ENTRY_BYTES_ESTIMATE: u64 = 400;

/// What the cache holds, behind one lock (never held across an await).
#[derive(Debug, Default)]
struct Cached {
    entries: HashMap<ParticipantId, Slot>,
    /// Last use → participant, oldest first.
    recency: BTreeMap<u64, ParticipantId>,
    next_use: u64,
    bytes: u64,
    /// The append-only guard as last seen (see [`AggregateCache::check_append_guard`]).
    append_guard_fingerprint: Option<String>,
}

#[derive(Debug)]
struct Slot {
    /// Boxed, so the map's slots (a hash table keeps up to twice its entries) stay small.
    folded: Box<FoldedParticipant>,
    last_use: u64,
    bytes: u64,
}

/// Folded participants, least recently used out past a byte budget (0 keeps nothing).
#[derive(Debug)]
pub struct AggregateCache {
    bytes_max: u64,
    cached: Mutex<Cached>,
}

/// What a call to [`AggregateCache::put`] did, for the counters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PutOutcome {
    /// Participants pushed out to stay within the budget.
    pub evicted: u64,
}

impl AggregateCache {
    /// An empty cache holding at most `bytes_max` (estimated).
    pub fn new(bytes_max: u64) -> Self {
        Self {
            bytes_max,
            cached: Mutex::new(Cached::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        // A panic while holding the lock leaves bookkeeping, never a half-applied aggregate
        // (aggregates are moved in and out whole), so the contents stay usable.
        self.cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a participant out for a decision; it is back only once [`Self::put`] is called
    /// after a successful commit.
    pub(crate) fn take(&self, participant_id: ParticipantId) -> Option<FoldedParticipant> {
        let mut cached = self.lock();
        let slot = cached.entries.remove(&participant_id)?;
        cached.recency.remove(&slot.last_use);
        cached.bytes -= slot.bytes;
        let mut folded = slot.folded;
        folded.from_cache = true;
        Some(*folded)
    }

    /// Keeps a participant whose state matches what is committed, pushing out the least
    /// recently used ones while over the budget. One bigger than the whole budget is not kept.
    pub fn put(&self, participant_id: ParticipantId, folded: FoldedParticipant) -> PutOutcome {
        let bytes = folded.bytes_estimate();
        let mut outcome = PutOutcome::default();
        if bytes > self.bytes_max {
            return outcome;
        }
        let mut cached = self.lock();
        if let Some(previous) = cached.entries.remove(&participant_id) {
            cached.recency.remove(&previous.last_use);
            cached.bytes -= previous.bytes;
        }
        while cached.bytes + bytes > self.bytes_max {
            let Some((_, oldest)) = cached.recency.pop_first() else {
                break;
            };
            if let Some(slot) = cached.entries.remove(&oldest) {
                cached.bytes -= slot.bytes;
                outcome.evicted += 1;
            }
        }
        let last_use = cached.next_use;
        cached.next_use += 1;
        cached.recency.insert(last_use, participant_id);
        cached.bytes += bytes;
        cached.entries.insert(
            participant_id,
            Slot {
                folded: Box::new(folded),
                last_use,
                bytes,
            },
        );
        outcome
    }

    /// Compares the events table's append-only guard (its triggers' catalog rows) with what
    /// it was when the cached participants were verified. Anyone who lifts the guard to edit
    /// a row changes those rows, and then every cached participant is forgotten, so each is
    /// loaded (and its chain verified) again before anything more is appended to it. Returns
    /// how many were forgotten.
    pub(crate) fn check_append_guard(&self, fingerprint: &str) -> u64 {
        let mut cached = self.lock();
        if cached.append_guard_fingerprint.as_deref() == Some(fingerprint) {
            return 0;
        }
        let forgotten = cached.entries.len() as u64;
        cached.entries.clear();
        cached.recency.clear();
        cached.bytes = 0;
        cached.append_guard_fingerprint = Some(fingerprint.to_owned());
        forgotten
    }

    /// The estimated bytes held.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// The participants held.
    pub fn participants(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(entries: usize) -> FoldedParticipant {
        FoldedParticipant {
            aggregate: Participant::default(),
            current_sequence: entries,
            applied_through_stream_sequence: 0,
            from_cache: false,
        }
    }

    fn id() -> ParticipantId {
        ParticipantId(uuid::Uuid::new_v4())
    }

    #[test]
    fn a_taken_participant_is_gone_until_put_back() {
        let cache = AggregateCache::new(1 << 20);
        let participant = id();
        cache.put(participant, folded(3));
        let taken = cache.take(participant).expect("cached");
        assert!(taken.from_cache);
        assert_eq!(taken.current_sequence, 3);
        assert!(cache.take(participant).is_none(), "taken out, not copied");
        assert_eq!(cache.bytes(), 0);
        cache.put(participant, taken);
        assert!(cache.bytes() > 0);
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_budget_holds() {
        let one = folded(10).bytes_estimate();
        let cache = AggregateCache::new(one * 3);
        let [first, second, third, fourth] = [id(), id(), id(), id()];
        for participant in [first, second, third] {
            assert_eq!(cache.put(participant, folded(10)).evicted, 0);
        }
        // Using `first` makes `second` the oldest.
        let used = cache.take(first).expect("cached");
        cache.put(first, used);
        assert_eq!(cache.put(fourth, folded(10)).evicted, 1);
        assert!(cache.take(second).is_none());
        assert!(cache.take(first).is_some());
        assert!(cache.bytes() <= one * 3);
        // A participant bigger than the whole budget is not kept, and pushes nobody out.
        let huge = id();
        cache.put(huge, folded(1_000_000));
        assert!(cache.take(huge).is_none());
        assert_eq!(cache.participants(), 2);
        // No budget, no cache.
        let off = AggregateCache::new(0);
        off.put(first, folded(0));
        assert_eq!(off.participants(), 0);
    }

    #[test]
    fn a_changed_append_guard_forgets_everyone() {
        let cache = AggregateCache::new(1 << 20);
        assert_eq!(cache.check_append_guard("a"), 0);
        let participant = id();
        cache.put(participant, folded(2));
        assert_eq!(cache.check_append_guard("a"), 0);
        assert!(cache.take(participant).is_some());
        cache.put(participant, folded(2));
        assert_eq!(cache.check_append_guard("b"), 1);
        assert!(cache.take(participant).is_none());
        assert_eq!(cache.bytes(), 0);
    }
}
