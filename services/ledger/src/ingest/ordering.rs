//! Per-participant ordering: which lane a delivery goes to, and when the read of a
//! participant's earlier messages from the stream may be skipped because nothing can have been
//! overtaken.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use bus::Subjects;

/// The lane of a delivery: by participant id, so one participant is always handled by one lane
/// (a subject that names none still goes to a fixed lane, where it is parked).
pub(super) fn lane_of(subjects: &Subjects, subject: &str, lanes: usize) -> usize {
    assert!(
        lanes >= 1,
        "LedgerConfig::validate keeps ingest.lanes between 1 and 256"
    );
    let mut hasher = DefaultHasher::new();
    match subjects.parse_stored_event(subject) {
        Some((_, _, participant_id)) => participant_id.hash(&mut hasher),
        None => subject.hash(&mut hasher),
    }
    (hasher.finish() % lanes as u64) as usize
}

/// When a delivery cannot have overtaken an earlier message about its participant, so the
/// stream read before it may be skipped.
///
/// Within one run of contiguous deliveries to this process (no consumer sequence missing), a
/// participant's first deliveries reach its lane in stream order, and the lane applies them in
/// that order. What can be overtaken lies outside that run: messages delivered before it (to a
/// crashed ledger, or to this process before another client's delivery broke the run) and
/// messages this process handed back with a nak. So the watermark is the highest stream
/// sequence that must be settled (acked) before the read may be skipped. It is `u64::MAX`
/// (always read) from a break in the run until the next first delivery shows where it stands:
/// every message delivered before a first delivery lies below it in the stream.
#[derive(Debug)]
pub(crate) struct OrderWatermark {
    settled_needed_through: AtomicU64,
}

impl Default for OrderWatermark {
    fn default() -> Self {
        Self {
            settled_needed_through: AtomicU64::new(u64::MAX),
        }
    }
}

impl OrderWatermark {
    /// Whether, with everything up to `ack_floor` settled, no first delivery in the current run
    /// can have overtaken anything.
    pub(super) fn nothing_overtaken(&self, ack_floor: u64) -> bool {
        ack_floor >= self.settled_needed_through.load(Ordering::SeqCst)
    }

    /// This process handed a message back; later messages may overtake it until it is acked.
    pub(super) fn handed_back(&self, stream_sequence: u64) {
        self.settled_needed_through
            .fetch_max(stream_sequence, Ordering::SeqCst);
    }
}

/// What ordering knows about one partition: its consumer's ack floor and watermark. Consumer
/// and stream positions are compared only within a partition (a participant's messages are all
/// in one), because each partition's consumer has its own sequence and ack floor.
#[derive(Debug, Default)]
pub(crate) struct PartitionOrder {
    /// The partition consumer's ack floor as last sampled: every message of the partition at or
    /// below it is settled (recorded or parked). It only moves forward, so a stale value is a
    /// safe lower bound.
    pub(crate) ack_floor_stream_sequence: AtomicU64,
    /// When the stream read before a delivery may be skipped.
    pub(crate) order_watermark: OrderWatermark,
    /// The partition's messages not yet delivered, as last sampled (for metrics).
    pub(crate) pending: AtomicU64,
    /// The partition's messages delivered and not yet acked, as last sampled (for metrics).
    pub(crate) ack_pending: AtomicU64,
    /// Deliveries of this partition handed to the lanes and not yet finished by them: a
    /// partition leaving this ledger's share is released only once this is 0.
    pub(crate) in_flight: AtomicU64,
}

/// One [`PartitionOrder`] per partition, found by a delivery's stored subject.
#[derive(Debug)]
pub(crate) struct PartitionOrders {
    partitions: Vec<PartitionOrder>,
}

impl PartitionOrders {
    /// One entry for each of `partitions` (at least one).
    pub(crate) fn new(partitions: u32) -> Self {
        Self {
            partitions: (0..partitions.max(1))
                .map(|_| PartitionOrder::default())
                .collect(),
        }
    }

    /// The partition of a stored subject. A subject naming none (parked anyway) or a partition
    /// out of range is given partition 0: handing such a message back there only makes that
    /// partition read the stream more often, never less.
    pub(crate) fn of(&self, subjects: &Subjects, subject: &str) -> &PartitionOrder {
        let index = subjects
            .parse_stored_event(subject)
            .map_or(0, |(partition, _, _)| partition as usize);
        self.get(index)
    }

    /// The sums of the partitions' sampled lag: (pending, ack pending).
    pub(crate) fn lag_totals(&self) -> (u64, u64) {
        self.partitions
            .iter()
            .fold((0, 0), |(pending, ack_pending), order| {
                (
                    pending + order.pending.load(Ordering::Relaxed),
                    ack_pending + order.ack_pending.load(Ordering::Relaxed),
                )
            })
    }

    /// Partition `index` (partition 0 when out of range, as in [`Self::of`]).
    pub(crate) fn get(&self, index: usize) -> &PartitionOrder {
        self.partitions.get(index).unwrap_or(&self.partitions[0])
    }
}

/// The puller's view of the consumer sequence, to notice deliveries made to another client.
#[derive(Debug, Default)]
pub(super) struct DeliveryContiguity {
    next_consumer_sequence: Option<u64>,
    run_broken: bool,
}

impl DeliveryContiguity {
    pub(super) fn observe(
        &mut self,
        consumer_sequence: u64,
        stream_sequence: u64,
        first_delivery: bool,
        watermark: &OrderWatermark,
    ) {
        // `bus::Delivery` hands out only positions the server counted from 1, so the bound
        // below (everything before this first delivery) is a real stream position.
        assert!(
            stream_sequence >= 1 && consumer_sequence >= 1,
            "bus::Delivery verifies that JetStream positions start at 1"
        );
        if self.next_consumer_sequence != Some(consumer_sequence) {
            self.run_broken = true;
            watermark
                .settled_needed_through
                .store(u64::MAX, Ordering::SeqCst);
        }
        self.next_consumer_sequence = Some(consumer_sequence + 1);
        if self.run_broken && first_delivery {
            // Everything delivered so far, to anyone (and anything handed back), lies below a
            // first delivery, so this bound covers every earlier cause. The consumer's very
            // first delivery has nothing before it at all: a partition's consumer skips the
            // other partitions' positions, so its first message rarely sits at stream
            // sequence 1.
            self.run_broken = false;
            let settled_needed_through = if consumer_sequence == 1 {
                0
            } else {
                stream_sequence - 1
            };
            watermark
                .settled_needed_through
                .store(settled_needed_through, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds (consumer sequence, stream sequence, first delivery) to the puller's view, hands a
    /// message back if asked, then checks whether the read may be skipped at each ack floor.
    fn check(deliveries: &[(u64, u64, bool)], handed_back: Option<u64>, expected: &[(u64, bool)]) {
        let watermark = OrderWatermark::default();
        let mut contiguity = DeliveryContiguity::default();
        for &(consumer_sequence, stream_sequence, first_delivery) in deliveries {
            contiguity.observe(
                consumer_sequence,
                stream_sequence,
                first_delivery,
                &watermark,
            );
        }
        if let Some(stream_sequence) = handed_back {
            watermark.handed_back(stream_sequence);
        }
        for &(ack_floor, skip) in expected {
            assert_eq!(
                watermark.nothing_overtaken(ack_floor),
                skip,
                "deliveries {deliveries:?}, handed back {handed_back:?}, ack floor {ack_floor}"
            );
        }
    }

    #[test]
    fn the_read_is_skipped_only_once_everything_outside_the_contiguous_run_is_settled() {
        // Nothing delivered yet: always read.
        check(&[], None, &[(0, false), (1_000, false)]);
        // The consumer's first delivery at stream sequence 11 (a partition's consumer, the
        // lower positions being other partitions'): nothing was delivered before it.
        check(&[(1, 11, true), (2, 12, true)], None, &[(0, true)]);
        // A start at consumer sequence 4 (three delivered before this process started), stream
        // sequence 11: skipped once 1..=10 are acked.
        check(
            &[(4, 11, true), (5, 12, true)],
            None,
            &[(9, false), (10, true)],
        );
        // A start on a redelivery (a crashed ledger's message): unknown until a first delivery.
        check(&[(5, 3, false)], None, &[(1_000, false)]);
        check(
            &[(5, 3, false), (6, 40, true)],
            None,
            &[(38, false), (39, true)],
        );
        // Another client took consumer sequences 3 and 4: everything below stream sequence 20
        // must be settled again.
        check(
            &[(1, 11, true), (2, 12, true), (5, 20, true)],
            None,
            &[(12, false), (18, false), (19, true)],
        );
        // A break whose next delivery is a redelivery: always read until a first delivery.
        check(
            &[(1, 11, true), (2, 12, true), (5, 8, false)],
            None,
            &[(1_000, false)],
        );
        // A message handed back (nak) must be acked before the read is skipped again.
        check(
            &[(1, 11, true), (2, 12, true), (3, 13, true)],
            Some(12),
            &[(11, false), (12, true)],
        );
    }
}
