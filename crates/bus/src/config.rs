//! The bus's names and limits, each explicit and named with its unit.
//!
//! Defaults suit a development machine; tests override the names (stream, prefix, consumer) so
//! that parallel tests never share a stream, and shorten `ack_wait_ms` so that crash tests see
//! redeliveries quickly.

use serde::{Deserialize, Serialize};

/// Bus configuration. Deserialised from the service's layered config (section `bus`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// NATS server URL, or several separated by commas (the nodes of a cluster; the client also
    /// learns the others from the server it reaches, and reconnects to any of them).
    pub nats_url: String,
    /// Optional NATS user and password (issue 5 gives each agency its own).
    pub nats_user: Option<String>,
    /// Password for `nats_user`; never logged.
    pub nats_password: Option<String>,
    /// The JetStream stream holding agency events.
    pub stream_name: String,
    /// Subject prefix; events go to `<prefix>.<agency>.<participant_id>`.
    pub subject_prefix: String,
    /// How long JetStream remembers message ids for dedupe.
    pub duplicate_window_ms: u64,
    /// Oldest message the stream keeps. The ledger must catch up within this.
    pub stream_max_age_ms: u64,
    /// Largest the stream may grow; publishing fails beyond it (discard new), never drops.
    pub stream_max_bytes: i64,
    /// How many servers hold a copy of the stream: 1 on a single server, 3 on the project's
    /// cluster (deploy/nats/cluster/). With 3, a write is acknowledged only once a majority has
    /// it, each having synced it to disk (`sync_interval: always`), so an ACCEPTED or PENDING
    /// survives the loss of any one server.
    pub stream_replicas: usize,
    /// Largest single encoded submission.
    pub message_size_max_bytes: usize,
    /// How long a publisher waits for the stream's ack before retrying with the same id.
    pub publish_ack_timeout_ms: u64,
    /// How many times a publisher tries (same message id each time).
    pub publish_attempts_max: u32,
    /// How many partitions the stream maps participants onto (`partition(N, participant)` in the
    /// stream's subject transform). Each partition has its own durable consumer, applied by one
    /// ledger at a time. Fixed for a stream's life: changing it moves participants between
    /// partitions, so it is done only by a migration (stop every ledger, drain, recreate the
    /// stream's transform and the consumers), never by a restart with a new value; the ledger
    /// refuses to start when the stream's transform names another count.
    pub partitions: u32,
    /// The ledger's durable consumers' name; partition `k`'s consumer is `<name>-p<k>`.
    pub consumer_name: String,
    /// How long a partition stays pinned to a ledger that has stopped pulling before the server
    /// hands it to a waiting ledger (the priority group's `priority_timeout`; the server's
    /// default is 2 minutes). It is the failover time after a ledger dies. A live ledger renews
    /// its pin with every pull (one per `fetch_wait_ms` at the least), so this must be several
    /// pulls long; shorter only risks a pin moving from a slow but live ledger, which the
    /// ledger's own ordering and the optimistic check make safe, not wrong.
    pub pinned_client_timeout_ms: u64,
    /// How often each ledger announces itself on `<prefix>.ledger.presence.<consumer_name>`
    /// (core NATS, nothing stored), so the ledgers know which of them are live and share the
    /// partitions among themselves.
    pub ledger_heartbeat_interval_ms: u64,
    /// A ledger not heard from for this long is taken as gone: the others share out its
    /// partitions and release its pins at once instead of waiting `pinned_client_timeout_ms`.
    /// Taking a live but silent ledger for gone only moves pins (safe, as above).
    pub ledger_presumed_gone_after_ms: u64,
    /// How often a ledger works out which partitions are its share. Partitions move only when
    /// the set of live ledgers is the same at two evaluations in a row (a ledger whose
    /// heartbeats come and go does not make the pins thrash); a ledger that says goodbye at
    /// shutdown is let go at the next evaluation.
    pub rebalance_interval_ms: u64,
    /// How long the server waits for an ack before redelivering.
    pub ack_wait_ms: u64,
    /// Deliveries after which the server stops redelivering. The ledger parks a message well
    /// before this (`park_after_deliveries`), so nothing reaches it unreported.
    pub max_deliver: i64,
    /// Deliveries after which the ledger parks a message that keeps failing.
    pub park_after_deliveries: i64,
    /// Unacked messages the server lets the ledger hold.
    pub max_ack_pending: i64,
    /// Most messages asked for in one pull.
    pub fetch_batch_size_max: usize,
    /// How long one pull waits for messages before the ledger checks for shutdown again.
    pub fetch_wait_ms: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_user: None,
            nats_password: None,
            stream_name: "AGENCY_EVENTS".into(),
            subject_prefix: "ips.v1".into(),
            duplicate_window_ms: 2 * 60 * 60 * 1000,
            stream_max_age_ms: 30 * 24 * 60 * 60 * 1000,
            stream_max_bytes: 8 * 1024 * 1024 * 1024,
            stream_replicas: 1,
            message_size_max_bytes: 64 * 1024,
            publish_ack_timeout_ms: 2_000,
            publish_attempts_max: 5,
            partitions: 8,
            consumer_name: "ledger".into(),
            pinned_client_timeout_ms: 10_000,
            ledger_heartbeat_interval_ms: 1_000,
            ledger_presumed_gone_after_ms: 3_500,
            rebalance_interval_ms: 2_000,
            ack_wait_ms: 30_000,
            max_deliver: 100,
            park_after_deliveries: 20,
            max_ack_pending: 1_000,
            fetch_batch_size_max: 100,
            fetch_wait_ms: 500,
        }
    }
}

/// The most partitions a stream may have: each is a consumer every ledger pulls from.
pub const PARTITIONS_MAX: u32 = 1_024;

/// What a pull's round trip may add to `fetch_wait_ms` between two pulls of a live ledger.
const PULL_GAP_ALLOWANCE_MS: u64 = 500;

/// A configuration value that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration `bus.{field}`: {reason}")]
pub struct ConfigError {
    /// The offending key.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

fn require(condition: bool, field: &'static str, reason: &str) -> Result<(), ConfigError> {
    if condition {
        Ok(())
    } else {
        Err(ConfigError {
            field,
            reason: reason.to_owned(),
        })
    }
}

fn is_subject_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_".contains(character))
}

impl BusConfig {
    /// The server URLs of `nats_url`, trimmed.
    pub fn nats_urls(&self) -> impl Iterator<Item = &str> {
        self.nats_url.split(',').map(str::trim)
    }

    /// Checks every value at start-up, so a bad one stops the service with a clear message.
    pub fn validate(&self) -> Result<(), ConfigError> {
        require(
            self.nats_urls()
                .all(|url| url.starts_with("nats://") || url.starts_with("tls://")),
            "nats_url",
            "each comma-separated URL must start with nats:// or tls://",
        )?;
        require(
            self.nats_user.is_some() == self.nats_password.is_some(),
            "nats_password",
            "nats_user and nats_password go together",
        )?;
        require(
            is_subject_token(&self.stream_name),
            "stream_name",
            "must be letters, digits, '-' or '_'",
        )?;
        require(
            self.subject_prefix.split('.').all(is_subject_token),
            "subject_prefix",
            "must be dot-separated tokens of letters, digits, '-' or '_'",
        )?;
        require(
            is_subject_token(&self.consumer_name),
            "consumer_name",
            "must be letters, digits, '-' or '_'",
        )?;
        require(
            (1..=PARTITIONS_MAX).contains(&self.partitions),
            "partitions",
            "must be between 1 and 1024",
        )?;
        require(
            (1_000..=600_000).contains(&self.pinned_client_timeout_ms),
            "pinned_client_timeout_ms",
            "must be between 1000 and 600000",
        )?;
        require(
            (50..=60_000).contains(&self.ledger_heartbeat_interval_ms),
            "ledger_heartbeat_interval_ms",
            "must be between 50 and 60000",
        )?;
        require(
            self.ledger_presumed_gone_after_ms >= 3 * self.ledger_heartbeat_interval_ms,
            "ledger_presumed_gone_after_ms",
            "must be at least three ledger_heartbeat_interval_ms, so two lost heartbeats move nothing",
        )?;
        require(
            (100..=600_000).contains(&self.rebalance_interval_ms),
            "rebalance_interval_ms",
            "must be between 100 and 600000",
        )?;
        require(
            self.duplicate_window_ms >= 1_000,
            "duplicate_window_ms",
            "must be at least 1000",
        )?;
        require(
            self.stream_max_age_ms >= self.duplicate_window_ms,
            "stream_max_age_ms",
            "must be at least duplicate_window_ms",
        )?;
        require(
            self.stream_max_bytes >= 1024 * 1024,
            "stream_max_bytes",
            "must be at least 1 MiB",
        )?;
        require(
            [1, 3, 5].contains(&self.stream_replicas),
            "stream_replicas",
            "must be 1, 3 or 5 (an even count tolerates no more failures than one fewer)",
        )?;
        require(
            (1024..=1024 * 1024).contains(&self.message_size_max_bytes),
            "message_size_max_bytes",
            "must be between 1 KiB and 1 MiB",
        )?;
        require(
            (100..=60_000).contains(&self.publish_ack_timeout_ms),
            "publish_ack_timeout_ms",
            "must be between 100 and 60000",
        )?;
        require(
            (1..=20).contains(&self.publish_attempts_max),
            "publish_attempts_max",
            "must be between 1 and 20",
        )?;
        require(
            (500..=600_000).contains(&self.ack_wait_ms),
            "ack_wait_ms",
            "must be between 500 and 600000",
        )?;
        require(
            self.park_after_deliveries >= 2,
            "park_after_deliveries",
            "must be at least 2",
        )?;
        require(
            self.max_deliver > self.park_after_deliveries,
            "max_deliver",
            "must exceed park_after_deliveries, so the ledger parks before the server gives up",
        )?;
        require(
            (1..=100_000).contains(&self.max_ack_pending),
            "max_ack_pending",
            "must be between 1 and 100000",
        )?;
        require(
            (1..=1_000).contains(&self.fetch_batch_size_max),
            "fetch_batch_size_max",
            "must be between 1 and 1000",
        )?;
        require(
            (50..=30_000).contains(&self.fetch_wait_ms),
            "fetch_wait_ms",
            "must be between 50 and 30000",
        )?;
        require(
            self.fetch_wait_ms < self.ack_wait_ms,
            "fetch_wait_ms",
            "must be shorter than ack_wait_ms",
        )?;
        require(
            self.pinned_client_timeout_ms >= 2 * (self.fetch_wait_ms + PULL_GAP_ALLOWANCE_MS),
            "pinned_client_timeout_ms",
            "must be at least twice (fetch_wait_ms + 500), so a live ledger's pulls keep its pin",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(change: impl FnOnce(&mut BusConfig), expected: Result<(), &'static str>) {
        let mut config = BusConfig::default();
        change(&mut config);
        assert_eq!(config.validate().map_err(|error| error.field), expected);
    }

    #[test]
    fn defaults_are_valid() {
        check(|_| {}, Ok(()));
    }

    #[test]
    fn each_broken_limit_is_named() {
        check(|config| config.max_deliver = 5, Err("max_deliver"));
        check(
            |config| config.fetch_batch_size_max = 0,
            Err("fetch_batch_size_max"),
        );
        check(
            |config| config.subject_prefix = "ips..v1".into(),
            Err("subject_prefix"),
        );
        check(
            |config| config.nats_user = Some("fk".into()),
            Err("nats_password"),
        );
        check(|config| config.fetch_wait_ms = 40_000, Err("fetch_wait_ms"));
        check(|config| config.stream_replicas = 2, Err("stream_replicas"));
        check(|config| config.partitions = 0, Err("partitions"));
        check(|config| config.partitions = 1_025, Err("partitions"));
        check(
            |config| config.pinned_client_timeout_ms = 1_500,
            Err("pinned_client_timeout_ms"),
        );
        check(|config| config.stream_replicas = 0, Err("stream_replicas"));
        check(
            |config| config.ledger_presumed_gone_after_ms = 2_000,
            Err("ledger_presumed_gone_after_ms"),
        );
        check(
            |config| config.rebalance_interval_ms = 50,
            Err("rebalance_interval_ms"),
        );
        check(
            |config| config.nats_url = "nats://127.0.0.1:4251,127.0.0.1:4252".into(),
            Err("nats_url"),
        );
    }

    #[test]
    fn a_cluster_is_a_list_of_urls_with_three_replicas() {
        check(
            |config| {
                config.nats_url =
                    "nats://127.0.0.1:4251, nats://127.0.0.1:4252,nats://127.0.0.1:4253".into();
                config.stream_replicas = 3;
            },
            Ok(()),
        );
    }
}
