//! PostgreSQL for IPS Samverkan: the only crate that knows SQL.
//!
//! - [`events`]: the event store (postgres-es in plain event-store mode, over our own tables),
//!   look-ups by event id, chain verification, and parked messages.
//! - [`group_commit`]: several deliveries' events in one transaction, exactly postgres-es's rows.
//! - [`projector`]: the gap-safe projector that tails the events table into read models.
//! - [`timeline`]: the timeline read model's queries.
//!
//! The pool is built here rather than with postgres-es's `default_postgress_pool`, which hard-codes
//! ten connections and panics when it cannot connect.

pub mod access_log;
pub mod caseload;
pub mod events;
pub mod failure;
pub mod green_light;
pub mod group_commit;
pub mod participants;
pub mod projector;
pub mod timeline;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

pub use caseload::CaseloadRow;
pub use events::{participant_event_store, ParkedMessage, ParticipantEventStore, RecordedEvent};
pub use projector::{ProjectorConfig, TimelineProjector};
pub use timeline::{TimelineFilter, TimelinePage, TimelineRow};

/// Database configuration (section `store`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The service's own role, e.g. `postgres://ips_service@127.0.0.1:5432/ips`: it may only
    /// SELECT and INSERT on the events and the access log. Never logged: it may hold a password.
    pub database_url: String,
    /// The owner's connection, used only to run migrations at start (they create tables and
    /// grants). Empty: migrate over `database_url` (only works if that role owns the schema).
    pub migration_database_url: String,
    /// Most connections this process holds.
    pub pool_connections_max: u32,
    /// How long a query waits for a free connection before failing.
    pub pool_acquire_timeout_ms: u64,
    /// Longest any statement may run.
    pub statement_timeout_ms: u64,
    /// Whether the pool pings a connection before lending it out. Off by default: the ping is
    /// a round trip before every statement (7 % of the ledger's CPU under load, by perf); a
    /// connection a PostgreSQL restart broke fails the one statement it is used for, is closed,
    /// and that failure is retried as any store failure is (ingest redelivers, reads answer
    /// UNAVAILABLE).
    pub pool_test_before_acquire: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            database_url: "postgres://ips_service@127.0.0.1:5432/ips".into(),
            migration_database_url: "postgres://postgres@127.0.0.1:5432/ips".into(),
            pool_connections_max: 16,
            pool_acquire_timeout_ms: 5_000,
            statement_timeout_ms: 30_000,
            pool_test_before_acquire: false,
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration `store.{field}`: {reason}")]
pub struct ConfigError {
    /// The offending key.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl StoreConfig {
    /// Checks every value at start-up.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |field, reason: &str| {
            Err(ConfigError {
                field,
                reason: reason.to_owned(),
            })
        };
        let scheme_ok = self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://");
        if !scheme_ok || self.database_url.parse::<PgConnectOptions>().is_err() {
            return fail("database_url", "is not a PostgreSQL connection URL");
        }
        if !self.migration_database_url.is_empty()
            && self
                .migration_database_url
                .parse::<PgConnectOptions>()
                .is_err()
        {
            return fail(
                "migration_database_url",
                "is not a PostgreSQL connection URL",
            );
        }
        if !(1..=200).contains(&self.pool_connections_max) {
            return fail("pool_connections_max", "must be between 1 and 200");
        }
        if !(100..=60_000).contains(&self.pool_acquire_timeout_ms) {
            return fail("pool_acquire_timeout_ms", "must be between 100 and 60000");
        }
        if !(100..=3_600_000).contains(&self.statement_timeout_ms) {
            return fail("statement_timeout_ms", "must be between 100 and 3600000");
        }
        Ok(())
    }
}

/// Errors of this crate, by what the caller can do about them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is unreachable or a query failed; retrying later may help.
    #[error("database_unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration_failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored row could not be decoded: a schema problem, not a transient one.
    #[error("stored_row_unreadable: {0}")]
    Unreadable(String),
    /// A value is beyond what its column holds (a position past `i64::MAX` for a BIGINT): it
    /// is refused rather than stored as another value.
    #[error("value_out_of_range: {value} does not fit column `{column}`")]
    ValueOutOfRange {
        /// The column, as `table.column`.
        column: &'static str,
        /// The value.
        value: u64,
    },
    /// One read would log more access-log entries than one statement may write (every read is
    /// bounded below it, so this is a bug in a read path, not bad input).
    #[error("access_log_batch_too_large: {entries} entries in one read; at most {entries_max}")]
    AccessLogBatchTooLarge {
        /// Entries the read would log.
        entries: usize,
        /// [`crate::access_log::ENTRIES_PER_RECORD_MAX`].
        entries_max: usize,
    },
}

/// A stored BIGINT that counts or positions something (never negative when this code wrote
/// it), as the `u64` it stands for; a negative value is reported naming `column`.
pub(crate) fn stored_u64(column: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| {
        StoreError::Unreadable(format!("`{column}` holds {value}, a negative position"))
    })
}

/// A position as the BIGINT its column stores; one past `i64::MAX` is refused, not clamped
/// (two different positions must never be stored as one).
pub(crate) fn storable_i64(column: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::ValueOutOfRange { column, value })
}

/// Connects a pool with the configured bounds. Fails (does not panic) when unreachable.
pub async fn connect(config: &StoreConfig) -> Result<PgPool, StoreError> {
    let options: PgConnectOptions = config
        .database_url
        .parse::<PgConnectOptions>()?
        .options([("statement_timeout", config.statement_timeout_ms.to_string())])
        .application_name("ips-samverkan");
    let pool = PgPoolOptions::new()
        .max_connections(config.pool_connections_max)
        .acquire_timeout(Duration::from_millis(config.pool_acquire_timeout_ms))
        .test_before_acquire(config.pool_test_before_acquire)
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Applies the migrations over `migration_database_url` (the owner) when it is set, else over
/// `database_url`. Runs before the service's pool connects: the migrations create its role.
pub async fn migrate_with(config: &StoreConfig) -> Result<(), StoreError> {
    let url = if config.migration_database_url.is_empty() {
        &config.database_url
    } else {
        &config.migration_database_url
    };
    let owner = connect(&StoreConfig {
        database_url: url.clone(),
        pool_connections_max: 1,
        ..config.clone()
    })
    .await?;
    let migrated = migrate(&owner).await;
    owner.close().await;
    migrated
}

/// Applies the project's migrations (idempotent; safe to run from several processes).
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::migrate!("./migrations").run(pool).await?;
    Ok(())
}
