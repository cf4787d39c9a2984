//! The committer: one task shared by all lanes that writes what the lanes decided in group
//! commits (`store::group_commit`), so one durable PostgreSQL commit serves many deliveries.
//!
//! A lane that has decided hands its events over and waits for the answer; it acks and
//! announces only after the answer says its rows are committed, so "committed, then acked,
//! then announced" holds per delivery. A lane has at most one commit waiting at a time (it
//! handles one delivery at a time, and its catch-up commits one earlier message after the
//! other), so one participant appears at most once in a batch and no decision in a batch
//! depends on another's. A batch is full at `ingest.commit_batch_size_max` or with one
//! commit from every lane; until then it waits at most `ingest.commit_linger_ms` after its
//! first commit arrived. While a batch commits, the next one gathers.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::counters::IngestCounters;

/// What the committer answers a lane about its commit.
#[derive(Debug)]
pub(crate) enum CommitAnswer {
    /// Its rows are committed.
    Written,
    /// PostgreSQL refused its rows (rolled back to its savepoint; the rest of the batch
    /// committed): a conflict or the message's data, told by the SQLSTATE.
    Refused(sqlx::Error),
    /// An event could not be serialized; nothing was written for it.
    Unserializable(String),
    /// The batch did not commit, or COMMIT's outcome is unknown: the delivery is retried after
    /// loading its participant again (a redelivery finds it recorded if it was).
    BatchFailed {
        /// What failed.
        error: String,
        /// Its SQLSTATE, if PostgreSQL reported one.
        sqlstate: Option<String>,
    },
}

/// One lane's decided commit and where its answer goes.
struct CommitRequest {
    commit: store::group_commit::PendingCommit,
    answer: oneshot::Sender<CommitAnswer>,
}

/// A lane's handle on the committer.
#[derive(Clone)]
pub struct Committer {
    requests: mpsc::Sender<CommitRequest>,
}

impl Committer {
    /// The handle, and the committer's own loop to spawn (it ends when every handle is gone).
    pub fn start(
        pool: PgPool,
        batch_size_max: usize,
        linger: Duration,
        lanes: usize,
        counters: Arc<IngestCounters>,
    ) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        // Never more than one waiting commit per lane, so `lanes` never blocks a sender.
        let (requests, receiver) = mpsc::channel(lanes.max(1));
        let full_at = batch_size_max.min(lanes).max(1);
        (
            Self { requests },
            run(pool, receiver, full_at, linger, counters),
        )
    }

    /// Commits `commit` in the next batch and waits for its answer.
    pub(crate) async fn commit(&self, commit: store::group_commit::PendingCommit) -> CommitAnswer {
        let (answer, answered) = oneshot::channel();
        if self
            .requests
            .send(CommitRequest { commit, answer })
            .await
            .is_err()
        {
            return CommitAnswer::BatchFailed {
                error: "the committer has stopped".to_owned(),
                sqlstate: None,
            };
        }
        answered.await.unwrap_or_else(|_| {
            // The committer dropped the request unanswered (it was stopped mid-batch): the
            // outcome is unknown, as after a lost connection during COMMIT.
            CommitAnswer::BatchFailed {
                error: "the committer stopped before answering".to_owned(),
                sqlstate: None,
            }
        })
    }
}

/// Gathers batches and commits them, one transaction at a time, until every lane is gone.
async fn run(
    pool: PgPool,
    mut receiver: mpsc::Receiver<CommitRequest>,
    full_at: usize,
    linger: Duration,
    counters: Arc<IngestCounters>,
) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        let linger_until = tokio::time::Instant::now() + linger;
        while batch.len() < full_at {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) if linger.is_zero() => break,
                Err(_) => match tokio::time::timeout_at(linger_until, receiver.recv()).await {
                    Ok(Some(request)) => batch.push(request),
                    Ok(None) | Err(_) => break,
                },
            }
        }
        // A lane that gave up (stopped at the drain deadline) waits for nothing; its
        // delivery is handed back, and committing it anyway would only be a redelivery's no-op.
        batch.retain(|request| !request.answer.is_closed());
        if batch.is_empty() {
            continue;
        }
        let (commits, answers): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|request| (request.commit, request.answer))
            .unzip();
        match store::group_commit::commit_group(&pool, &commits).await {
            Ok(report) => {
                counters.commit_batches.inc();
                counters
                    .commit_batch_deliveries
                    .inc_by(commits.len() as u64);
                counters
                    .commit_savepoint_rollbacks
                    .inc_by(report.savepoint_rollbacks);
                for (outcome, answer) in report.outcomes.into_iter().zip(answers) {
                    let _ = answer.send(match outcome {
                        store::group_commit::CommitOutcome::Written => CommitAnswer::Written,
                        store::group_commit::CommitOutcome::Refused(error) => {
                            CommitAnswer::Refused(error)
                        }
                        store::group_commit::CommitOutcome::Unserializable(error) => {
                            CommitAnswer::Unserializable(error)
                        }
                    });
                }
            }
            Err(error) => {
                counters.commit_batches_failed.inc();
                tracing::warn!(%error, deliveries = commits.len(), "a group commit failed; each of its deliveries is retried");
                let sqlstate = match &error {
                    store::StoreError::Unavailable(sqlx_error) => {
                        store::failure::classify_sqlx(sqlx_error).sqlstate
                    }
                    _ => None,
                };
                for answer in answers {
                    let _ = answer.send(CommitAnswer::BatchFailed {
                        error: format!("group commit failed: {error}"),
                        sqlstate: sqlstate.clone(),
                    });
                }
            }
        }
    }
}
