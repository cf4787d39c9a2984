//! Ingest: pull agency events from JetStream, apply each through the participant aggregate,
//! commit, then ack, then announce the verdict.
//!
//! Exactly-once comes from three layers, so that no crash point loses or doubles an event:
//! 1. ack only after the commit (a crash before the ack means a redelivery);
//! 2. the aggregate remembers every recorded event id (a redelivery is a no-op, whenever it
//!    comes, unlike JetStream's time-bounded dedupe window);
//! 3. the events table has a unique index on the event id (a last guard against two writers).
//!
//! Ordering: a participant's messages are applied in stream order, whatever order they are
//! delivered in. Deliveries are routed to a fixed lane by participant id and each lane handles
//! one at a time, which keeps order while nothing fails. But JetStream hands a message that was
//! delivered and not acked (a crashed ledger's) back only after `ack_wait`, behind messages
//! published meanwhile. So before applying a message, the ledger reads the participant's earlier
//! messages it has not applied straight from the stream and applies (or parks) them first; their
//! own redeliveries are then no-ops. "Applied" is known from the store: each event carries its
//! stream sequence, and everything at or below the consumer's ack floor is settled.
//! That stream read is skipped when nothing can have been overtaken
//! ([`ordering::OrderWatermark`]): a first delivery that no other client's delivery interleaved
//! with, once everything delivered before this process's run of contiguous deliveries is acked.
//! A second ledger process may still race on a participant; postgres-es's optimistic check turns
//! that into `AggregateConflict`, which is retried after reloading.
//!
//! Partitions: the stream stores each event under its participant's partition, and each
//! partition has its own pinned consumer (`bus::ingest`). The live ledgers share the partitions
//! out among themselves ([`sharing`]): each pulls only its share, releases (unpins) a partition
//! that leaves it once its deliveries are finished, and releases its pins at shutdown after
//! draining, so the next owner takes over at once rather than after the pin's timeout. The pin is not the ordering
//! guarantee (an old owner's unacked messages come back after `ack_wait`, behind newer ones, and
//! a paused old owner can wake and commit): the stream read above and the optimistic check are.
//! A new owner sees a gap in its partition's consumer sequence, which makes it read until a
//! first delivery shows where it stands. Ack floors and watermarks are kept per partition
//! (`ordering::PartitionOrders`), since each consumer counts its own positions.
//!
//! Nothing is dropped: a message that cannot be applied (undecodable, a subject that disagrees
//! with its envelope, a submission that can never be recorded, or one that keeps failing) is
//! parked in `parked_messages` with the reason, logged at error level, and only then acked.
//!
//! Store failures are classified by SQLSTATE (`store::failure`): data PostgreSQL refuses (a NUL
//! character in a free-text field) is the message's fault and is parked after
//! `data_error_attempts_max` attempts; anything else (an outage, a missing grant or table) is
//! retried without limit, counted and logged, and parks nothing. A participant whose stored
//! hash chain does not verify gets nothing more appended: the message is parked, naming the
//! broken entry. On shutdown the lanes hand back (nak) what they have not finished within
//! `drain_timeout_ms`, so a lane wedged by an outage cannot keep the process alive.
//!
//! The aggregate cache (`cache`): a participant folded by one delivery is kept for the next,
//! within `aggregate_cache_bytes_max`, so an apply costs the same whatever the history's length.
//! It is taken out for each decision and put back only after the commit succeeded; the store's
//! optimistic check still decides (a conflict drops it and the next attempt loads afresh), and
//! a change of the events table's append-only guard forgets every cached participant, so a
//! chain is verified again before anything is appended after an edit made around the guard.
//!
//! Group commit (`committer`): the lanes decide in parallel and hand what they decided to one
//! committer, which writes many deliveries in one transaction, each under its own savepoint,
//! so a delivery refused by PostgreSQL (a conflict, data it will not take) fails alone. A lane
//! acks and announces only after the batch's COMMIT succeeded; a batch that does not commit
//! fails every delivery in it, whose participants are out of the cache already (taken out for
//! the decision) and are loaded again on the retry.
//!
//! The parts: `counters` (what an operator reads), `ordering` (lanes and the order watermark),
//! `applier` (one delivery, from decoding to ack or park), `cache` (folded participants), `committer` (group commit),
//! `sharing` (who is live and which partitions are this ledger's), `run` (the pullers, the
//! lanes, releasing partitions and the drain at shutdown).

mod applier;
mod cache;
mod committer;
mod counters;
mod ordering;
mod run;
pub mod sharing;

pub use applier::{decode as decode_submission, Applier};
pub(crate) use cache::participant_bytes_estimate;
pub use cache::{AggregateCache, FoldedParticipant, PutOutcome};
pub use committer::Committer;
pub use counters::{IngestCounters, U64Gauge};
pub(crate) use ordering::PartitionOrders;
pub use run::{drain_deadline, run, DRAIN_GRACE};
