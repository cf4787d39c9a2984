//! The aggregate cache's byte budget (`ingest.aggregate_cache_bytes_max`, and the reads' fold
//! cache, which reckons the same way) bounds the ledger's memory only if its per-participant
//! estimate covers what a cached participant really takes. This test counts, with a counting
//! allocator, what folding and caching participants keeps allocated, and holds the estimate to
//! it. It is a file of its own because the allocator counts the whole process: one test per
//! binary, so nothing else allocates while it measures.

use domain::{Participant, ParticipantEvent, ParticipantId};
use ledger::ingest::{AggregateCache, FoldedParticipant};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// What the system allocator (glibc) adds to each live allocation: an 8-byte header, and the
/// size rounded up to 16 bytes (8 on average). The budget bounds the heap, so this counts.
const MALLOC_OVERHEAD_BYTES_PER_ALLOCATION: usize = 16;

/// What folding `participants` participants of `length` entries each and caching them keeps
/// allocated (their aggregates, the cache's map slots and its recency index), beside the
/// cache's estimate of it.
fn allocated_and_estimated(participants: usize, length: usize) -> (u64, u64) {
    let histories: Vec<(ParticipantId, Vec<ParticipantEvent>)> = (0..participants)
        .map(|_| {
            let participant_id = ParticipantId(uuid::Uuid::new_v4());
            let first_recorded_at = chrono::Utc::now() - chrono::Duration::days(400);
            (
                participant_id,
                testkit::linked_history(participant_id, length, first_recorded_at),
            )
        })
        .collect();
    let cache = AggregateCache::new(u64::MAX / 2);
    let region = Region::new(ALLOCATOR);
    for (participant_id, entries) in &histories {
        let mut aggregate = Participant::default();
        for entry in entries {
            // Cloned and consumed: only what the aggregate keeps stays allocated.
            cqrs_es::Aggregate::apply(&mut aggregate, entry.clone());
        }
        cache.put(
            *participant_id,
            FoldedParticipant::folded(aggregate, length),
        );
    }
    let change = region.change();
    let live_allocations = change.allocations.saturating_sub(change.deallocations);
    let allocated = (change.bytes_allocated + change.bytes_reallocated.max(0) as usize)
        .saturating_sub(change.bytes_deallocated)
        + live_allocations * MALLOC_OVERHEAD_BYTES_PER_ALLOCATION;
    let estimated = cache.bytes();
    drop(cache);
    (allocated as u64, estimated)
}

/// The allocator's count must stay within the estimate (else the budget lets memory grow past
/// it), and the estimate within twice the count (a budget that mostly counts air caches little),
/// for short, middling and long histories.
#[test]
fn the_estimate_covers_what_cached_participants_allocate() {
    let measured: Vec<(usize, u64, u64)> = [(3_000, 1), (1_000, 10), (100, 100), (20, 1_000)]
        .into_iter()
        .map(|(participants, length)| {
            let (allocated, estimated) = allocated_and_estimated(participants, length);
            eprintln!(
                "{participants} participants of {length} entries: allocated {allocated} bytes \
                 ({} per participant), estimated {estimated} ({:.2}×)",
                allocated / participants as u64,
                estimated as f64 / allocated as f64
            );
            (length, allocated, estimated)
        })
        .collect();
    for (length, allocated, estimated) in measured {
        assert!(
            estimated >= allocated,
            "{length} entries: the estimate {estimated} is short of the {allocated} bytes allocated"
        );
        assert!(
            estimated <= 2 * allocated,
            "{length} entries: the estimate {estimated} is over twice the {allocated} bytes allocated"
        );
    }
}
