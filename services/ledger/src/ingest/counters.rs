//! Ingest's counters: what an operator reads about the flow of deliveries, registered in each
//! ledger's own registry so that two ledgers in one process count apart.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A gauge holding a non-negative integer (a count sampled, or a Unix time).
pub type U64Gauge = Gauge<u64, AtomicU64>;

/// Counters an operator reads: this ledger's own handles, exported when [`IngestCounters::register`]
/// adds them to its registry (never a process global: two ledgers in one process count apart).
#[derive(Debug, Default)]
pub struct IngestCounters {
    /// Submissions recorded as accepted.
    pub accepted: Counter,
    /// Submissions recorded as rejections.
    pub rejected: Counter,
    /// Redeliveries of an already recorded event id (no-ops).
    pub duplicates: Counter,
    /// Messages parked.
    pub parked: Counter,
    /// `AggregateConflict`s retried.
    pub conflicts: Counter,
    /// Store calls that failed because the store was unavailable (outage, resources, a
    /// missing grant or table), retried without limit.
    pub store_failures: Counter,
    /// When the current store outage began (Unix seconds); 0 while the store answers.
    pub store_unavailable_since_seconds: U64Gauge,
    /// Attempts whose data PostgreSQL refused (SQLSTATE class 22 or 23): the message's fault.
    pub store_data_refusals: Counter,
    /// Messages parked because their participant's stored hash chain does not verify.
    pub chain_broken_refusals: Counter,
    /// Deliveries handed back (nak) unfinished at shutdown.
    pub handed_back_at_shutdown: Counter,
    /// Messages in the stream not yet delivered to the ledger (sampled).
    pub consumer_pending: U64Gauge,
    /// Messages delivered and not yet acked (sampled).
    pub consumer_ack_pending: U64Gauge,
    /// Live ledgers sharing the partitions, this one included, as this one last applied it.
    pub ledgers_live: U64Gauge,
    /// Partitions that are this ledger's share (it pulls only these).
    pub partitions_assigned: U64Gauge,
    /// Pins this ledger released: partitions that left its share, and its pins at shutdown.
    pub pins_released: Counter,
    /// Pins of a vanished ledger this ledger released to take its partitions at once.
    pub pins_taken_over: Counter,
    /// Earlier messages read from the stream and applied ahead of their own redelivery.
    pub applied_from_stream: Counter,
    /// Deliveries preceded by a read of the participant's earlier messages from the stream.
    pub order_reads: Counter,
    /// Loads for a write answered by the aggregate cache.
    pub aggregate_cache_hits: Counter,
    /// Loads for a write that read and folded the participant's history from the store (not
    /// cached yet, pushed out, or dropped after a conflict or a failed commit).
    pub aggregate_cache_misses: Counter,
    /// Participants pushed out of the aggregate cache to stay within its byte budget.
    pub aggregate_cache_evictions: Counter,
    /// The aggregate cache's estimated size.
    pub aggregate_cache_bytes: U64Gauge,
    /// Group commits (transactions holding one or more deliveries) that committed.
    pub commit_batches: Counter,
    /// Deliveries in the group commits that committed (divided by `commit_batches`: the mean
    /// batch), each one's outcome counted, refused ones included.
    pub commit_batch_deliveries: Counter,
    /// Deliveries of a group commit rolled back to their own savepoint (a conflict, refused
    /// data) while the rest of the batch committed.
    pub commit_savepoint_rollbacks: Counter,
    /// Group commits that did not commit (the store unavailable, the outcome of COMMIT
    /// unknown): every delivery in them is retried after loading its participant again.
    pub commit_batches_failed: Counter,
}

impl IngestCounters {
    /// Adds the counters to `registry` under their metric names. A counter's name is given
    /// without `_total`: the OpenMetrics encoder appends it to the sample (so the scrape shows
    /// `ips_ledger_events_accepted_total`), and the help text gets its closing full stop there.
    pub fn register(&self, registry: &mut Registry) {
        let counters: [(&str, &str, &Counter); 20] = [
            (
                "ips_ledger_events_accepted",
                "Submissions recorded as accepted",
                &self.accepted,
            ),
            (
                "ips_ledger_events_rejected",
                "Submissions recorded as rejections (a rule was broken)",
                &self.rejected,
            ),
            (
                "ips_ledger_redeliveries_ignored",
                "Redeliveries of an already recorded event id",
                &self.duplicates,
            ),
            (
                "ips_ledger_messages_parked",
                "Messages parked in parked_messages",
                &self.parked,
            ),
            (
                "ips_ledger_conflicts_retried",
                "AggregateConflicts retried",
                &self.conflicts,
            ),
            (
                "ips_ledger_store_failures",
                "Store calls failed for unavailability (outage, resources, missing grant or table), retried without limit; nothing is parked for them",
                &self.store_failures,
            ),
            (
                "ips_ledger_store_data_refusals",
                "Attempts whose data PostgreSQL refused (SQLSTATE class 22 or 23); parked after ingest.data_error_attempts_max",
                &self.store_data_refusals,
            ),
            (
                "ips_ledger_chain_broken_refusals",
                "Messages parked because their participant's stored hash chain does not verify",
                &self.chain_broken_refusals,
            ),
            (
                "ips_ledger_handed_back_at_shutdown",
                "Deliveries handed back (nak) unfinished when the ledger stopped",
                &self.handed_back_at_shutdown,
            ),
            (
                "ips_ledger_applied_from_stream",
                "Earlier messages read from the stream and applied ahead of their redelivery, to keep a participant's order",
                &self.applied_from_stream,
            ),
            (
                "ips_ledger_order_reads",
                "Deliveries preceded by a read of the participant's earlier messages from the stream (after a restart, a nak, or another client's delivery)",
                &self.order_reads,
            ),
            (
                "ips_ledger_pins_released",
                "Partition pins this ledger released (a partition leaving its share, or at shutdown)",
                &self.pins_released,
            ),
            (
                "ips_ledger_pins_taken_over",
                "Partition pins of a ledger gone silent that this ledger released to take its partitions",
                &self.pins_taken_over,
            ),
            (
                "ips_ledger_aggregate_cache_hits",
                "Loads for a write answered by the aggregate cache",
                &self.aggregate_cache_hits,
            ),
            (
                "ips_ledger_aggregate_cache_misses",
                "Loads for a write that read and folded the participant's history from the store",
                &self.aggregate_cache_misses,
            ),
            (
                "ips_ledger_aggregate_cache_evictions",
                "Participants pushed out of the aggregate cache to stay within ingest.aggregate_cache_bytes_max",
                &self.aggregate_cache_evictions,
            ),
            (
                "ips_ledger_commit_batches",
                "Group commits (one transaction, one or more deliveries) that committed",
                &self.commit_batches,
            ),
            (
                "ips_ledger_commit_batch_deliveries",
                "Deliveries in the group commits that committed; over ips_ledger_commit_batches_total, the mean batch",
                &self.commit_batch_deliveries,
            ),
            (
                "ips_ledger_commit_savepoint_rollbacks",
                "Deliveries rolled back to their own savepoint (a conflict or refused data) while the rest of their group commit committed",
                &self.commit_savepoint_rollbacks,
            ),
            (
                "ips_ledger_commit_batches_failed",
                "Group commits that did not commit (store unavailable or COMMIT's outcome unknown); their deliveries are retried",
                &self.commit_batches_failed,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        let gauges: [(&str, &str, &U64Gauge); 6] = [
            (
                "ips_ledger_store_unavailable_since_seconds",
                "Unix time the current store outage began; 0 while the store answers",
                &self.store_unavailable_since_seconds,
            ),
            (
                "ips_ledger_consumer_pending",
                "Stream messages not yet delivered to the ledger",
                &self.consumer_pending,
            ),
            (
                "ips_ledger_consumer_ack_pending",
                "Messages delivered and not yet acked",
                &self.consumer_ack_pending,
            ),
            (
                "ips_ledger_ledgers_live",
                "Live ledgers sharing the partitions, this one included",
                &self.ledgers_live,
            ),
            (
                "ips_ledger_partitions_assigned",
                "Partitions that are this ledger's share",
                &self.partitions_assigned,
            ),
            (
                "ips_ledger_aggregate_cache_bytes",
                "The aggregate cache's estimated size in bytes",
                &self.aggregate_cache_bytes,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
    }
}
