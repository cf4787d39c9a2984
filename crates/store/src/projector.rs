//! The gap-safe projector: tails the events table into read models, exactly once.
//!
//! Why not postgres-es queries run after the commit: a crash between the commit and the query
//! loses the update. Why not `ORDER BY global_position` alone: identity values are taken at
//! insert time, so a slow transaction can commit position 7 after a fast one committed 8, and a
//! reader that already moved past 8 would skip 7 forever. So the cursor is
//! `(tx_id, global_position)`, and only transactions older than the oldest one still running
//! (`tx_id < pg_snapshot_xmin(pg_current_snapshot())`) are read: nothing can still appear
//! behind the cursor. The checkpoint is updated in the same transaction as the read model, and
//! locked `FOR UPDATE`, so two projector instances never apply a batch twice.

use std::sync::Arc;
use std::time::Duration;

use domain::ParticipantEvent;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::{watch, Notify};

use crate::{caseload, green_light, timeline, StoreError};

/// Projector limits (section `projector`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectorConfig {
    /// Most events applied in one read-model transaction.
    pub batch_size_max: i64,
    /// How long the projector sleeps when it has caught up and nobody wakes it.
    pub idle_poll_ms: u64,
    /// How long it waits before retrying after a database error.
    pub error_backoff_ms: u64,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        Self {
            batch_size_max: 500,
            idle_poll_ms: 200,
            error_backoff_ms: 1_000,
        }
    }
}

impl ProjectorConfig {
    /// Checks every value at start-up.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        let fail = |field, reason: &str| {
            Err(crate::ConfigError {
                field,
                reason: reason.to_owned(),
            })
        };
        if !(1..=10_000).contains(&self.batch_size_max) {
            return fail("batch_size_max", "must be between 1 and 10000");
        }
        if !(5..=60_000).contains(&self.idle_poll_ms) {
            return fail("idle_poll_ms", "must be between 5 and 60000");
        }
        if !(10..=600_000).contains(&self.error_backoff_ms) {
            return fail("error_backoff_ms", "must be between 10 and 600000");
        }
        Ok(())
    }
}

/// The projector's name in `projector_checkpoints`.
pub const TIMELINE_PROJECTOR: &str = "timeline";

/// Tails the events table into the timeline read model.
#[derive(Clone)]
pub struct TimelineProjector {
    pool: PgPool,
    config: ProjectorConfig,
    wake: Arc<Notify>,
    projected: watch::Sender<u64>,
}

impl TimelineProjector {
    /// A projector over `pool`. Notify its [`TimelineProjector::waker`] after commits for low
    /// latency (cheap; coalesces).
    pub fn new(pool: PgPool, config: ProjectorConfig) -> Self {
        let (projected, _) = watch::channel(0);
        Self {
            pool,
            config,
            wake: Arc::new(Notify::new()),
            projected,
        }
    }

    /// A handle that wakes the projector.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Changes every time a batch is committed to the read model (the value counts batches).
    pub fn subscribe_progress(&self) -> watch::Receiver<u64> {
        self.projected.subscribe()
    }

    /// Runs until `shutdown` turns true; the batch in progress completes first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let pause = match self.project_batch().await {
                Ok(applied) if applied as i64 >= self.config.batch_size_max => None,
                Ok(_) => Some(Duration::from_millis(self.config.idle_poll_ms)),
                Err(error) => {
                    tracing::error!(%error, "timeline projector failed; retrying");
                    Some(Duration::from_millis(self.config.error_backoff_ms))
                }
            };
            if let Some(pause) = pause {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = self.wake.notified() => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    /// Projects one batch; returns how many events it applied.
    pub async fn project_batch(&self) -> Result<usize, StoreError> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO projector_checkpoints (projector_name, last_tx_id, last_global_position)
             VALUES ($1, '0'::xid8, 0) ON CONFLICT (projector_name) DO NOTHING",
        )
        .bind(TIMELINE_PROJECTOR)
        .execute(&mut *transaction)
        .await?;
        // The checkpoint is kept as text on the Rust side: sqlx has no xid8 type, and the value
        // is only ever compared inside SQL. The text column must not be named `tx_id`: ORDER BY
        // would then sort by the text ('1000' < '999') instead of the xid8 column.
        let checkpoint = sqlx::query(
            "SELECT last_tx_id::text AS last_tx_id, last_global_position FROM projector_checkpoints
             WHERE projector_name = $1 FOR UPDATE",
        )
        .bind(TIMELINE_PROJECTOR)
        .fetch_one(&mut *transaction)
        .await?;
        let last_tx_id = parse_tx_id(&checkpoint.try_get::<String, _>("last_tx_id")?)?;
        let last_global_position: i64 = checkpoint.try_get("last_global_position")?;

        let rows: Vec<sqlx::postgres::PgRow> = sqlx::query(
            "SELECT tx_id::text AS tx_id_text, global_position, aggregate_id, sequence, payload FROM events
             WHERE (tx_id, global_position) > ($1::text::xid8, $2)
               AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
             ORDER BY tx_id, global_position
             LIMIT $3",
        )
        .bind(last_tx_id.to_string())
        .bind(last_global_position)
        .bind(self.config.batch_size_max)
        .fetch(&mut *transaction)
        .try_collect()
        .await?;
        if rows.is_empty() {
            transaction.rollback().await?;
            return Ok(0);
        }
        let mut cursor = (last_tx_id, last_global_position);
        let mut touched = std::collections::BTreeSet::new();
        for row in &rows {
            let payload: serde_json::Value = row.try_get("payload")?;
            let position = (
                parse_tx_id(&row.try_get::<String, _>("tx_id_text")?)?,
                row.try_get::<i64, _>("global_position")?,
            );
            // The cursor only ever moves forward; anything else would skip or repeat events.
            if position <= cursor {
                return Err(StoreError::Unreadable(format!(
                    "projector cursor would move backwards from {cursor:?} to {position:?}"
                )));
            }
            let event: ParticipantEvent = serde_json::from_value(payload).map_err(|error| {
                StoreError::Unreadable(format!("event at global position {}: {error}", position.1))
            })?;
            timeline::insert_entry(&mut transaction, &event, position.1).await?;
            caseload::apply(&mut transaction, &event).await?;
            touched.insert(event.envelope.participant_id);
            cursor = position;
        }
        for participant_id in touched {
            green_light::refresh(&mut transaction, participant_id).await?;
        }
        save_checkpoint(&mut transaction, cursor.0, cursor.1).await?;
        transaction.commit().await?;
        self.projected.send_modify(|batches| *batches += 1);
        Ok(rows.len())
    }
}

/// Where the projector stands: the global position of the last event it projected (0 before
/// the first). Kept with a read in the access log, beside the participant's own heads.
pub async fn checkpoint_position(pool: &PgPool) -> Result<i64, StoreError> {
    let position: Option<i64> = sqlx::query_scalar(
        "SELECT last_global_position FROM projector_checkpoints WHERE projector_name = $1",
    )
    .bind(TIMELINE_PROJECTOR)
    .fetch_optional(pool)
    .await?;
    Ok(position.unwrap_or(0))
}

fn parse_tx_id(text: &str) -> Result<u64, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Unreadable(format!("transaction id `{text}` is not a number")))
}

async fn save_checkpoint(
    transaction: &mut Transaction<'_, Postgres>,
    tx_id: u64,
    global_position: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE projector_checkpoints SET last_tx_id = $2::text::xid8, last_global_position = $3, updated_at = now()
         WHERE projector_name = $1",
    )
    .bind(TIMELINE_PROJECTOR)
    .bind(tx_id.to_string())
    .bind(global_position)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}
