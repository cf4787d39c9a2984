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
//!
//! Waking (issue 14): the projector wakes on this process's commits (an in-process [`Notify`])
//! and, through PostgreSQL `LISTEN`, on any process's: the events table's trigger announces
//! every committed insert on [`EVENTS_COMMITTED_CHANNEL`] and every projected batch is
//! announced on [`READ_MODELS_PROJECTED_CHANNEL`], so the projector of another ledger wakes
//! too. A notification cannot move the snapshot horizon, so when committed events wait behind
//! an older transaction still running the projector looks again after `horizon_wait_ms`, and a
//! re-poll every `repoll_interval_ms` covers a notification lost while the listener reconnects.
//!
//! Announcing (issue 14): after each batch, the projector tells this process's watches which
//! participants changed ([`ProjectedChange`], a bounded broadcast), whether it projected the
//! batch itself or found the shared checkpoint moved by another process's projector; a watch
//! that falls behind the broadcast re-reads everything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::ParticipantEvent;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::{broadcast, watch, Notify};

use crate::{caseload, green_light, timeline, StoreError};

/// The channel the events table's trigger notifies after every committed insert
/// (`0012_commit_notifications.sql`).
pub const EVENTS_COMMITTED_CHANNEL: &str = "ips_events_committed";
/// The channel a projector notifies in the transaction that moves the checkpoint, so the
/// projectors of other processes announce the change to their own watches at once.
pub const READ_MODELS_PROJECTED_CHANNEL: &str = "ips_read_models_projected";

/// Projector limits (section `projector`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectorConfig {
    /// Most events applied in one read-model transaction; also the most participants one
    /// announcement lists for a range another process projected (beyond it, "everything").
    pub batch_size_max: i64,
    /// The re-poll: how long the projector sleeps when it has caught up and nobody wakes it.
    /// Commits wake it (in-process and by `LISTEN/NOTIFY`), so this only bounds the delay
    /// after a notification lost while the listener was reconnecting. (Its former name,
    /// `idle_poll_ms`, is refused as an unknown key: a serde alias cannot be kept, since the
    /// defaults already carry the new name and the two would collide as a duplicate field.)
    pub repoll_interval_ms: u64,
    /// How soon it looks again when committed events wait behind an older transaction that is
    /// still running (the snapshot horizon): that transaction's end sends no notification.
    /// Doubled while the horizon stays put, up to `repoll_interval_ms`.
    pub horizon_wait_ms: u64,
    /// How long it waits before retrying after a database error.
    pub error_backoff_ms: u64,
    /// How long the listener waits before connecting again after its connection failed
    /// (meanwhile the re-poll keeps the projector going).
    pub listen_reconnect_backoff_ms: u64,
    /// Announcements of projected changes kept for this process's watches; a watch that falls
    /// further behind re-reads everything it shows.
    pub changes_announced_max: usize,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        Self {
            batch_size_max: 500,
            repoll_interval_ms: 200,
            horizon_wait_ms: 5,
            error_backoff_ms: 1_000,
            listen_reconnect_backoff_ms: 1_000,
            changes_announced_max: 1_024,
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
        if !(5..=60_000).contains(&self.repoll_interval_ms) {
            return fail("repoll_interval_ms", "must be between 5 and 60000");
        }
        if !(1..=10_000).contains(&self.horizon_wait_ms) {
            return fail("horizon_wait_ms", "must be between 1 and 10000");
        }
        if !(10..=600_000).contains(&self.error_backoff_ms) {
            return fail("error_backoff_ms", "must be between 10 and 600000");
        }
        if !(10..=600_000).contains(&self.listen_reconnect_backoff_ms) {
            return fail(
                "listen_reconnect_backoff_ms",
                "must be between 10 and 600000",
            );
        }
        if !(16..=1_000_000).contains(&self.changes_announced_max) {
            return fail("changes_announced_max", "must be between 16 and 1000000");
        }
        Ok(())
    }
}

/// The projector's name in `projector_checkpoints`.
pub const TIMELINE_PROJECTOR: &str = "timeline";

/// What the read models gained since the last announcement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProjectedChange {
    /// These participants' rows changed; each with the coaches its read-model rows name now
    /// (a coach's watch learns of a participant newly on its board without a read).
    Participants(Arc<BTreeMap<uuid::Uuid, BTreeSet<String>>>),
    /// Too much changed to list (or the read models were rebuilt): re-read everything.
    Everything,
}

/// How one pass went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Pass {
    applied: usize,
    /// Committed events wait behind an older transaction still running.
    behind_horizon: bool,
}

/// Tails the events table into the timeline read model.
#[derive(Clone)]
pub struct TimelineProjector {
    pool: PgPool,
    config: ProjectorConfig,
    wake: Arc<Notify>,
    projected: watch::Sender<u64>,
    changes: broadcast::Sender<ProjectedChange>,
    /// The checkpoint as this process last saw it (`None` before the first pass): a later
    /// checkpoint it did not write means another process projected the range in between.
    seen: Arc<Mutex<Option<(u64, i64)>>>,
}

impl TimelineProjector {
    /// A projector over `pool`. Notify its [`TimelineProjector::waker`] after commits for low
    /// latency (cheap; coalesces).
    pub fn new(pool: PgPool, config: ProjectorConfig) -> Self {
        let (projected, _) = watch::channel(0);
        let (changes, _) = broadcast::channel(config.changes_announced_max.max(1));
        Self {
            pool,
            config,
            wake: Arc::new(Notify::new()),
            projected,
            changes,
            seen: Arc::new(Mutex::new(None)),
        }
    }

    /// A handle that wakes the projector.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Changes every time the read models move (the value counts the moves this process saw,
    /// its own batches and other processes').
    pub fn subscribe_progress(&self) -> watch::Receiver<u64> {
        self.projected.subscribe()
    }

    /// The announcements of what each batch changed, from now on (`resubscribe` it for each
    /// reader; subscribe before the first read, so no change after that read is missed). The
    /// stream closes when the projector stops, which ends the watches with it.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<ProjectedChange> {
        self.changes.subscribe()
    }

    /// Runs until `shutdown` turns true; the batch in progress completes first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let listener = tokio::spawn(listen(
            self.pool.clone(),
            self.wake.clone(),
            Duration::from_millis(self.config.listen_reconnect_backoff_ms),
            shutdown.clone(),
        ));
        let repoll = Duration::from_millis(self.config.repoll_interval_ms);
        let horizon_wait = Duration::from_millis(self.config.horizon_wait_ms);
        // Doubles while the same old transaction holds the horizon (up to the re-poll), so a
        // long one does not have the events table polled every few milliseconds.
        let mut horizon_pause = horizon_wait;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let pause = match self.pass().await {
                Ok(pass) if pass.applied as i64 >= self.config.batch_size_max => None,
                Ok(pass) if pass.behind_horizon => {
                    let pause = horizon_pause;
                    horizon_pause = if pass.applied == 0 {
                        (horizon_pause * 2).min(repoll)
                    } else {
                        horizon_wait
                    };
                    Some(pause.min(repoll))
                }
                Ok(_) => {
                    horizon_pause = horizon_wait;
                    Some(repoll)
                }
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
        listener.abort();
    }

    /// Projects one batch; returns how many events it applied.
    pub async fn project_batch(&self) -> Result<usize, StoreError> {
        Ok(self.pass().await?.applied)
    }

    async fn pass(&self) -> Result<Pass, StoreError> {
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
        let checkpoint = (last_tx_id, last_global_position);
        let seen = *self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Another process's projector moved the checkpoint since this one last looked: what it
        // projected is announced here too, for this process's watches. Before the first look
        // nothing is known of what came before, so everything is.
        let foreign = match seen {
            None => Some(ProjectedChange::Everything),
            Some(seen) if seen != checkpoint => Some(
                self.projected_between(&mut transaction, seen, checkpoint)
                    .await?,
            ),
            Some(_) => None,
        };

        // Rows after the cursor, each marked whether it lies below the snapshot horizon (its
        // transaction is older than every one still running). Sorted by tx_id, the settled rows
        // come first; only they are projected, and an unsettled one means "look again soon".
        let rows: Vec<sqlx::postgres::PgRow> = sqlx::query(
            "WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
             SELECT tx_id::text AS tx_id_text, global_position, aggregate_id, sequence, payload,
                    tx_id < horizon.xmin AS settled
             FROM events, horizon
             WHERE (tx_id, global_position) > ($1::text::xid8, $2)
             ORDER BY tx_id, global_position
             LIMIT $3",
        )
        .bind(last_tx_id.to_string())
        .bind(last_global_position)
        .bind(self.config.batch_size_max)
        .fetch(&mut *transaction)
        .try_collect()
        .await?;
        let mut settled = Vec::with_capacity(rows.len());
        let mut behind_horizon = false;
        for row in rows {
            if row.try_get::<bool, _>("settled")? {
                settled.push(row);
            } else {
                behind_horizon = true;
                break;
            }
        }
        if settled.is_empty() {
            transaction.rollback().await?;
            self.saw(checkpoint, foreign);
            return Ok(Pass {
                applied: 0,
                behind_horizon,
            });
        }
        let mut cursor = checkpoint;
        let mut touched = BTreeSet::new();
        for row in &settled {
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
        for participant_id in &touched {
            green_light::refresh(&mut transaction, *participant_id).await?;
        }
        save_checkpoint(&mut transaction, cursor.0, cursor.1).await?;
        let touched: Vec<uuid::Uuid> = touched.into_iter().map(|id| id.0).collect();
        let changed = coaches_of(&mut transaction, &touched).await?;
        // Delivered on commit only: the other processes' projectors announce this batch too.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(READ_MODELS_PROJECTED_CHANNEL)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        let change = match foreign {
            Some(ProjectedChange::Everything) => ProjectedChange::Everything,
            Some(ProjectedChange::Participants(other)) => {
                let mut changed = changed;
                for (participant_id, coaches) in other.iter() {
                    changed
                        .entry(*participant_id)
                        .or_default()
                        .extend(coaches.iter().cloned());
                }
                ProjectedChange::Participants(Arc::new(changed))
            }
            None => ProjectedChange::Participants(Arc::new(changed)),
        };
        self.saw(cursor, Some(change));
        Ok(Pass {
            applied: settled.len(),
            behind_horizon,
        })
    }

    /// Remembers where the checkpoint stands and announces what changed up to it.
    fn saw(&self, checkpoint: (u64, i64), change: Option<ProjectedChange>) {
        *self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(checkpoint);
        if let Some(change) = change {
            // No receiver (no watch open) is no failure.
            let _ = self.changes.send(change);
            self.projected.send_modify(|moves| *moves += 1);
        }
    }

    /// The participants of the events after `from` through `to` (a range another process
    /// projected), with their coaches now; "everything" past `batch_size_max` participants.
    async fn projected_between(
        &self,
        transaction: &mut Transaction<'_, Postgres>,
        from: (u64, i64),
        to: (u64, i64),
    ) -> Result<ProjectedChange, StoreError> {
        if to < from {
            // The checkpoint went back: the read models are being rebuilt.
            return Ok(ProjectedChange::Everything);
        }
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT aggregate_id FROM events
             WHERE (tx_id, global_position) > ($1::text::xid8, $2)
               AND (tx_id, global_position) <= ($3::text::xid8, $4)
             LIMIT $5",
        )
        .bind(from.0.to_string())
        .bind(from.1)
        .bind(to.0.to_string())
        .bind(to.1)
        .bind(self.config.batch_size_max + 1)
        .fetch_all(&mut **transaction)
        .await?;
        if ids.len() as i64 > self.config.batch_size_max {
            return Ok(ProjectedChange::Everything);
        }
        let mut participants = Vec::with_capacity(ids.len());
        for id in &ids {
            match uuid::Uuid::parse_str(id) {
                Ok(participant_id) => participants.push(participant_id),
                // Not a participant's id: the watches cannot be told precisely.
                Err(_) => return Ok(ProjectedChange::Everything),
            }
        }
        Ok(ProjectedChange::Participants(Arc::new(
            coaches_of(transaction, &participants).await?,
        )))
    }
}

/// Each participant with the coaches its read-model rows name now (none without a coach).
async fn coaches_of(
    transaction: &mut Transaction<'_, Postgres>,
    participants: &[uuid::Uuid],
) -> Result<BTreeMap<uuid::Uuid, BTreeSet<String>>, StoreError> {
    let mut changed: BTreeMap<uuid::Uuid, BTreeSet<String>> = participants
        .iter()
        .map(|participant_id| (*participant_id, BTreeSet::new()))
        .collect();
    if participants.is_empty() {
        return Ok(changed);
    }
    let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT participant_id, coach FROM caseload_participants
          WHERE participant_id = ANY($1) AND coach IS NOT NULL
         UNION
         SELECT participant_id, coach FROM green_light_gates
          WHERE participant_id = ANY($1) AND coach IS NOT NULL",
    )
    .bind(participants)
    .fetch_all(&mut **transaction)
    .await?;
    for (participant_id, coach) in rows {
        changed.entry(participant_id).or_default().insert(coach);
    }
    Ok(changed)
}

/// Listens for commits of every process (`LISTEN`) and wakes the projector on each. The
/// connection is taken from the pool and held; when it drops, the projector is woken (a
/// notification may have been lost) and the listener connects again, after
/// `reconnect_backoff` if connecting fails, while the re-poll keeps the projector going.
async fn listen(
    pool: PgPool,
    wake: Arc<Notify>,
    reconnect_backoff: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() || pool.is_closed() {
            return;
        }
        match listen_until_lost(&pool, &wake, &mut shutdown).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, "the projector's LISTEN connection failed; re-polling until it is back");
                wake.notify_one();
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(reconnect_backoff) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One listening connection's life: `Ok` at shutdown, the error that ended it otherwise.
async fn listen_until_lost(
    pool: &PgPool,
    wake: &Notify,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([EVENTS_COMMITTED_CHANNEL, READ_MODELS_PROJECTED_CHANNEL])
        .await?;
    // Whatever committed while nobody listened is looked for now.
    wake.notify_one();
    loop {
        tokio::select! {
            received = listener.try_recv() => match received? {
                Some(_) => wake.notify_one(),
                // The connection was lost (and taken again): notifications may be lost.
                None => {
                    tracing::warn!("the projector's LISTEN connection was lost and re-established");
                    wake.notify_one();
                }
            },
            _ = shutdown.changed() => return Ok(()),
        }
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
