//! The ledger's configuration: every section, every limit named with its unit, validated at
//! start-up so a bad value stops the process with a message naming the key.

use serde::{Deserialize, Serialize};

/// The largest aggregate or read-fold cache budget accepted (16 GiB): a bigger figure is a typo.
const AGGREGATE_CACHE_BYTES_MAX_LIMIT: u64 = 16 * 1024 * 1024 * 1024;

/// The most deliveries one group commit may hold: past it a batch's one transaction holds
/// locks and subtransactions long enough to slow every other writer and reader.
const COMMIT_BATCH_SIZE_MAX_LIMIT: usize = 10_000;

/// The longest a batch may wait for more deliveries: a delivery's verdict waits as long.
const COMMIT_LINGER_MS_LIMIT: u64 = 1_000;

/// Ingest limits (section `ingest`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Worker lanes. A participant always maps to the same lane, so one participant is handled
    /// by one worker at a time while different participants proceed in parallel.
    pub lanes: usize,
    /// Deliveries queued per lane before the puller waits (backpressure).
    pub lane_queue_length_max: usize,
    /// Times an `AggregateConflict` is retried at once before the message is handed back.
    pub conflict_retries_max: u32,
    /// First pause after a database failure; doubles up to the max.
    pub store_retry_backoff_ms: u64,
    /// Longest pause between database retries.
    pub store_retry_backoff_max_ms: u64,
    /// Earlier messages about one participant read from the stream, per attempt, before a
    /// delivery that overtook them (a crashed ledger's unacked deliveries come back late).
    pub catch_up_messages_max: usize,
    /// Attempts at a message whose data PostgreSQL refuses (SQLSTATE class 22, or 23 other than
    /// a unique conflict) before it is parked. An outage is never counted here.
    pub data_error_attempts_max: u32,
    /// After shutdown is asked for, how long the lanes may finish what they hold; what is
    /// unfinished then is handed back (nak) and the ledger exits.
    pub drain_timeout_ms: u64,
    /// Memory (estimated) for participants folded by earlier deliveries, so the next delivery
    /// about one does not re-read its whole history; least recently used out. 0 turns the
    /// cache off (every delivery loads from the store).
    pub aggregate_cache_bytes_max: u64,
    /// Most deliveries committed in one PostgreSQL transaction (group commit), each under its
    /// own savepoint. 1 turns group commit off: every delivery is its own transaction, written
    /// by the lane through postgres-es, as before group commit.
    pub commit_batch_size_max: usize,
    /// How long a batch waits for more deliveries after its first, unless it is full (at
    /// `commit_batch_size_max`, or one delivery from every lane). 0: no wait, a batch takes
    /// whatever queued while the previous one committed.
    pub commit_linger_ms: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            lanes: 8,
            lane_queue_length_max: 64,
            conflict_retries_max: 5,
            store_retry_backoff_ms: 100,
            store_retry_backoff_max_ms: 5_000,
            catch_up_messages_max: 10_000,
            data_error_attempts_max: 3,
            drain_timeout_ms: 10_000,
            aggregate_cache_bytes_max: 64 * 1024 * 1024,
            commit_batch_size_max: 64,
            commit_linger_ms: 0,
        }
    }
}

/// Read API limits (section `timeline`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimelineConfig {
    /// Entries per page when the caller does not say.
    pub page_size_default: u32,
    /// Most entries per page.
    pub page_size_max: u32,
    /// Longest a read waits for its `min_sequence` to be projected.
    pub read_your_writes_wait_max_ms: u64,
    /// Memory (estimated) for participants as the read paths folded them (consents,
    /// allow-list, the verified chain), so a read folds in only what was stored since; least
    /// recently used out. 0 turns the cache off (every read folds the whole history).
    pub read_fold_cache_bytes_max: u64,
}

impl Default for TimelineConfig {
    fn default() -> Self {
        Self {
            page_size_default: 100,
            page_size_max: 1_000,
            read_your_writes_wait_max_ms: 5_000,
            read_fold_cache_bytes_max: 64 * 1024 * 1024,
        }
    }
}

/// Auditors' API limits (section `audit`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Entries per streamed replay message when the caller does not say.
    pub replay_page_size_default: u32,
    /// Most entries per streamed replay message.
    pub replay_page_size_max: u32,
    /// Most entries one replay holds (the participant's history as recorded at T is folded
    /// whole before anything is shown, since what a reader saw depends on all of it); a longer
    /// history is refused with RESOURCE_EXHAUSTED rather than risking the ledger's memory.
    pub replay_entries_max: usize,
    /// Most participants one rebuilt read may hold (a pending-approvals page lists up to 1,000).
    pub reconstruct_participants_max: i64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            replay_page_size_default: 100,
            replay_page_size_max: 1_000,
            replay_entries_max: 200_000,
            reconstruct_participants_max: 1_000,
        }
    }
}

/// The smallest `reports.lead_time_cell_count_min` accepted: with 1, a cell of one decision
/// names the participant whose gate it was, which is what the minimum exists to prevent.
pub const LEAD_TIME_CELL_COUNT_MIN_LOWEST: u32 = 2;

/// Aggregate reports' disclosure limits (section `reports`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportsConfig {
    /// Fewest decisions a `GateLeadTimes` cell (one gate over the months reported) must hold
    /// in each of its months with any decision before its figures are shown: a team leader who
    /// knows when a participant's activity was proposed could otherwise read from a cell of
    /// one or two which agency's gate (a benefit, psychiatric care) applied to them.
    pub lead_time_cell_count_min: u32,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        Self {
            lead_time_cell_count_min: 5,
        }
    }
}

/// Live watches (section `watch`): each open `WatchGreenLight` holds a task that re-reads its
/// board (up to 5,000 gates) on every projected batch that touches it, so how many may be
/// open is bounded, in all and per officer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// Most watches open at once on this ledger.
    pub watches_max: u32,
    /// Most watches one officer (agency and person id) has open at once: a board or two per
    /// screen, not thousands from one credential.
    pub watches_per_caller_max: u32,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            watches_max: 2_000,
            watches_per_caller_max: 16,
        }
    }
}

/// The whole ledger configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// gRPC server.
    pub server: rpc::ServerConfig,
    /// NATS JetStream.
    pub bus: bus::BusConfig,
    /// PostgreSQL.
    pub store: store::StoreConfig,
    /// The read-model projector.
    pub projector: store::ProjectorConfig,
    /// Ingest workers.
    pub ingest: IngestConfig,
    /// Read API.
    pub timeline: TimelineConfig,
    /// Auditors' API.
    pub audit: AuditConfig,
    /// Aggregate reports.
    pub reports: ReportsConfig,
    /// Live watches.
    pub watch: WatchConfig,
    /// Where Prometheus metrics are served (`GET /metrics`); empty turns them off.
    pub metrics_listen_address: String,
    /// mTLS certificates and token keys.
    pub identity: rpc::identity::IdentityConfig,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            server: rpc::ServerConfig {
                listen_address: "127.0.0.1:7400".into(),
                ..rpc::ServerConfig::default()
            },
            bus: bus::BusConfig::default(),
            store: store::StoreConfig::default(),
            projector: store::ProjectorConfig::default(),
            ingest: IngestConfig::default(),
            timeline: TimelineConfig::default(),
            audit: AuditConfig::default(),
            reports: ReportsConfig::default(),
            watch: WatchConfig::default(),
            metrics_listen_address: "127.0.0.1:9650".into(),
            identity: rpc::identity::IdentityConfig::default(),
        }
    }
}

impl LedgerConfig {
    /// The ledger's defaults (the same as `Default`, kept for readability at call sites).
    pub fn with_defaults() -> Self {
        Self::default()
    }

    /// Checks every value; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.server.validate()?;
        self.identity.validate()?;
        self.bus.validate().map_err(|error| error.to_string())?;
        self.store.validate().map_err(|error| error.to_string())?;
        self.projector.validate().map_err(|error| {
            format!(
                "invalid configuration `projector.{}`: {}",
                error.field, error.reason
            )
        })?;
        let ingest = &self.ingest;
        if !(1..=256).contains(&ingest.lanes) {
            return Err("ingest.lanes must be between 1 and 256".into());
        }
        if !(1..=10_000).contains(&ingest.lane_queue_length_max) {
            return Err("ingest.lane_queue_length_max must be between 1 and 10000".into());
        }
        if !(1..=1_000_000).contains(&ingest.catch_up_messages_max) {
            return Err("ingest.catch_up_messages_max must be between 1 and 1000000".into());
        }
        if !(1..=100).contains(&ingest.data_error_attempts_max) {
            return Err("ingest.data_error_attempts_max must be between 1 and 100".into());
        }
        if !(100..=600_000).contains(&ingest.drain_timeout_ms) {
            return Err("ingest.drain_timeout_ms must be between 100 and 600000".into());
        }
        if ingest.aggregate_cache_bytes_max > AGGREGATE_CACHE_BYTES_MAX_LIMIT {
            return Err(format!(
                "ingest.aggregate_cache_bytes_max must be at most {AGGREGATE_CACHE_BYTES_MAX_LIMIT} (16 GiB)"
            ));
        }
        if self.timeline.read_fold_cache_bytes_max > AGGREGATE_CACHE_BYTES_MAX_LIMIT {
            return Err(format!(
                "timeline.read_fold_cache_bytes_max must be at most {AGGREGATE_CACHE_BYTES_MAX_LIMIT} (16 GiB)"
            ));
        }
        if !(1..=COMMIT_BATCH_SIZE_MAX_LIMIT).contains(&ingest.commit_batch_size_max) {
            return Err(format!(
                "ingest.commit_batch_size_max must be between 1 and {COMMIT_BATCH_SIZE_MAX_LIMIT}"
            ));
        }
        if ingest.commit_linger_ms > COMMIT_LINGER_MS_LIMIT {
            return Err(format!(
                "ingest.commit_linger_ms must be at most {COMMIT_LINGER_MS_LIMIT}"
            ));
        }
        if ingest.conflict_retries_max > 100 {
            return Err("ingest.conflict_retries_max must be at most 100".into());
        }
        if !(1..=ingest.store_retry_backoff_max_ms).contains(&ingest.store_retry_backoff_ms)
            || ingest.store_retry_backoff_max_ms > 600_000
        {
            return Err("ingest.store_retry_backoff_ms must be between 1 and store_retry_backoff_max_ms (at most 600000)".into());
        }
        if ingest.store_retry_backoff_max_ms >= self.bus.ack_wait_ms {
            return Err("ingest.store_retry_backoff_max_ms must be shorter than bus.ack_wait_ms, so in-progress acks keep a message".into());
        }
        if !self.metrics_listen_address.is_empty()
            && self
                .metrics_listen_address
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            return Err(format!(
                "metrics_listen_address `{}` is not an address like 127.0.0.1:9650",
                self.metrics_listen_address
            ));
        }
        let timeline = &self.timeline;
        if !(1..=timeline.page_size_max).contains(&timeline.page_size_default)
            || timeline.page_size_max > 10_000
        {
            return Err(
                "timeline.page_size_default must be between 1 and page_size_max (at most 10000)"
                    .into(),
            );
        }
        if timeline.read_your_writes_wait_max_ms > 60_000 {
            return Err("timeline.read_your_writes_wait_max_ms must be at most 60000".into());
        }
        let audit = &self.audit;
        if !(1..=audit.replay_page_size_max).contains(&audit.replay_page_size_default)
            || audit.replay_page_size_max > 10_000
        {
            return Err(
                "audit.replay_page_size_default must be between 1 and replay_page_size_max (at most 10000)"
                    .into(),
            );
        }
        if !(1..=domain::PARTICIPANT_EVENTS_MAX as usize).contains(&audit.replay_entries_max) {
            return Err("audit.replay_entries_max must be between 1 and 1000000".into());
        }
        if !(1..=10_000).contains(&audit.reconstruct_participants_max) {
            return Err("audit.reconstruct_participants_max must be between 1 and 10000".into());
        }
        if !(1..=100_000).contains(&self.watch.watches_max)
            || !(1..=self.watch.watches_max).contains(&self.watch.watches_per_caller_max)
        {
            return Err(
                "watch.watches_max must be between 1 and 100000, and watch.watches_per_caller_max between 1 and watch.watches_max".into(),
            );
        }
        if self.reports.lead_time_cell_count_min < LEAD_TIME_CELL_COUNT_MIN_LOWEST {
            return Err(format!(
                "reports.lead_time_cell_count_min must be at least {LEAD_TIME_CELL_COUNT_MIN_LOWEST}: a lead-time cell of one decision identifies the participant it concerns"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(change: impl FnOnce(&mut LedgerConfig), expected_key: Option<&str>) {
        let mut config = LedgerConfig::with_defaults();
        change(&mut config);
        match (config.validate(), expected_key) {
            (Ok(()), None) => {}
            (Err(message), Some(key)) => {
                assert!(message.contains(key), "{message} should name {key}")
            }
            (result, _) => panic!("unexpected validation result {result:?} for {expected_key:?}"),
        }
    }

    #[test]
    fn defaults_are_valid_and_each_bad_value_is_named() {
        check(|_| {}, None);
        check(|config| config.ingest.lanes = 0, Some("ingest.lanes"));
        check(
            |config| config.ingest.catch_up_messages_max = 0,
            Some("ingest.catch_up_messages_max"),
        );
        check(
            |config| config.ingest.data_error_attempts_max = 0,
            Some("ingest.data_error_attempts_max"),
        );
        check(|config| config.ingest.aggregate_cache_bytes_max = 0, None);
        check(
            |config| config.ingest.aggregate_cache_bytes_max = u64::MAX,
            Some("ingest.aggregate_cache_bytes_max"),
        );
        check(|config| config.timeline.read_fold_cache_bytes_max = 0, None);
        check(
            |config| config.timeline.read_fold_cache_bytes_max = u64::MAX,
            Some("timeline.read_fold_cache_bytes_max"),
        );
        check(|config| config.ingest.commit_batch_size_max = 1, None);
        check(
            |config| config.ingest.commit_batch_size_max = 0,
            Some("ingest.commit_batch_size_max"),
        );
        check(
            |config| config.ingest.commit_batch_size_max = 10_001,
            Some("ingest.commit_batch_size_max"),
        );
        check(|config| config.ingest.commit_linger_ms = 0, None);
        check(
            |config| config.ingest.commit_linger_ms = 1_001,
            Some("ingest.commit_linger_ms"),
        );
        check(
            |config| config.ingest.drain_timeout_ms = 0,
            Some("ingest.drain_timeout_ms"),
        );
        check(
            |config| config.ingest.store_retry_backoff_max_ms = 60_000,
            Some("store_retry_backoff_max_ms"),
        );
        check(
            |config| config.server.listen_address = "nowhere".into(),
            Some("server.listen_address"),
        );
        check(
            |config| config.bus.fetch_batch_size_max = 0,
            Some("bus.fetch_batch_size_max"),
        );
        check(
            |config| config.store.database_url = "mysql:/x".into(),
            Some("store.database_url"),
        );
        check(
            |config| config.projector.batch_size_max = 0,
            Some("projector.batch_size_max"),
        );
        check(
            |config| config.timeline.page_size_default = 0,
            Some("timeline.page_size_default"),
        );
        check(
            |config| config.watch.watches_max = 0,
            Some("watch.watches_max"),
        );
        check(
            |config| config.watch.watches_per_caller_max = 2_001,
            Some("watch.watches_per_caller_max"),
        );
        check(|config| config.watch.watches_per_caller_max = 1, None);
        check(
            |config| config.audit.replay_page_size_default = 0,
            Some("audit.replay_page_size_default"),
        );
        check(
            |config| config.audit.replay_entries_max = 0,
            Some("audit.replay_entries_max"),
        );
        check(|config| config.reports.lead_time_cell_count_min = 2, None);
        for lowered in [0, 1] {
            check(
                |config| config.reports.lead_time_cell_count_min = lowered,
                Some("reports.lead_time_cell_count_min"),
            );
        }
    }
}
