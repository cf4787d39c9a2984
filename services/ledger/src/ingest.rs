//! Ingest: pull agency events from JetStream, apply each through the participant aggregate,
//! commit, then ack, then announce the verdict.
//!
//! Exactly-once comes from three layers, so that no crash point loses or doubles an event:
//! 1. ack only after the commit (a crash before the ack means a redelivery);
//! 2. the aggregate remembers every recorded event id (a redelivery is a no-op, whenever it
//!    comes, unlike JetStream's time-bounded dedupe window);
//! 3. the events table has a unique index on the event id (a last guard against two writers).
//!
//! Ordering: deliveries are routed to a fixed lane by participant id, and each lane handles one
//! delivery at a time, so a participant's events are applied in stream order by one worker.
//! A second ledger process may still race on a participant; postgres-es's optimistic check turns
//! that into `AggregateConflict`, which is retried after reloading.
//!
//! Nothing is dropped: a message that cannot be applied (undecodable, a subject that disagrees
//! with its envelope, a submission that can never be recorded, or one that keeps failing) is
//! parked in `parked_messages` with the reason, logged at error level, and only then acked.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bus::{verdicts, Delivery, IngestConsumer, Subjects, Verdict};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, AggregateError, EventStore};
use domain::{ParticipantCommand, ParticipantError, Submission};
use sqlx::PgPool;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::config::IngestConfig;
use crate::verdict::{verdict_of_event, verdict_of_recorded};

/// Counters an operator reads (exported as metrics).
#[derive(Debug, Default)]
pub struct IngestCounters {
    /// Submissions recorded as accepted.
    pub accepted: AtomicU64,
    /// Submissions recorded as rejections.
    pub rejected: AtomicU64,
    /// Redeliveries of an already recorded event id (no-ops).
    pub duplicates: AtomicU64,
    /// Messages parked.
    pub parked: AtomicU64,
    /// `AggregateConflict`s retried.
    pub conflicts: AtomicU64,
    /// Database failures retried.
    pub store_failures: AtomicU64,
    /// Messages in the stream not yet delivered to the ledger (sampled).
    pub consumer_pending: AtomicU64,
    /// Messages delivered and not yet acked (sampled).
    pub consumer_ack_pending: AtomicU64,
}

impl IngestCounters {
    /// Renders the counters in Prometheus text format.
    pub fn render(&self) -> String {
        let mut output = String::new();
        let metrics: [(&str, &str, &str, &AtomicU64); 8] = [
            (
                "ips_ledger_events_accepted_total",
                "counter",
                "Submissions recorded as accepted.",
                &self.accepted,
            ),
            (
                "ips_ledger_events_rejected_total",
                "counter",
                "Submissions recorded as rejections (a rule was broken).",
                &self.rejected,
            ),
            (
                "ips_ledger_redeliveries_ignored_total",
                "counter",
                "Redeliveries of an already recorded event id.",
                &self.duplicates,
            ),
            (
                "ips_ledger_messages_parked_total",
                "counter",
                "Messages parked in parked_messages.",
                &self.parked,
            ),
            (
                "ips_ledger_conflicts_retried_total",
                "counter",
                "AggregateConflicts retried.",
                &self.conflicts,
            ),
            (
                "ips_ledger_store_failures_total",
                "counter",
                "Database failures retried.",
                &self.store_failures,
            ),
            (
                "ips_ledger_consumer_pending",
                "gauge",
                "Stream messages not yet delivered to the ledger.",
                &self.consumer_pending,
            ),
            (
                "ips_ledger_consumer_ack_pending",
                "gauge",
                "Messages delivered and not yet acked.",
                &self.consumer_ack_pending,
            ),
        ];
        for (name, kind, help, value) in metrics {
            telemetry::write_metric(&mut output, name, kind, help, value.load(Ordering::Relaxed));
        }
        output
    }
}

/// Why one apply attempt did not commit.
enum ApplyFailure {
    /// Another writer appended first; reload and retry.
    Conflict,
    /// The database is unavailable or failed; retry later.
    Transient(String),
    /// Nothing can ever be recorded for this submission.
    Unrecordable(String),
}

/// Applies deliveries; shared by all lanes.
pub struct Applier {
    pub(crate) event_store: store::ParticipantEventStore,
    pub(crate) pool: PgPool,
    pub(crate) client: async_nats::Client,
    pub(crate) subjects: Subjects,
    pub(crate) stream_name: String,
    pub(crate) park_after_deliveries: i64,
    pub(crate) config: IngestConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) projector_waker: Arc<Notify>,
    pub(crate) counters: Arc<IngestCounters>,
}

impl Applier {
    /// Handles one delivery to the end: recorded and acked, parked and acked, or handed back
    /// (not acked) because the process is shutting down.
    pub async fn process(&self, delivery: Delivery, shutdown: &watch::Receiver<bool>) {
        let submission = match self.decode(&delivery) {
            Ok(submission) => submission,
            Err(reason) => return self.park(&delivery, reason, shutdown).await,
        };
        if delivery.delivered_count() > self.park_after_deliveries {
            let reason = format!(
                "delivered {} times without being applied",
                delivery.delivered_count()
            );
            return self.park(&delivery, reason, shutdown).await;
        }
        let recorded_at = self.clock.now();
        let metadata = HashMap::from([
            (
                "stream_sequence".to_owned(),
                delivery.stream_sequence().to_string(),
            ),
            ("subject".to_owned(), delivery.subject().to_owned()),
        ]);
        let mut conflicts_retried = 0;
        let mut backoff = Duration::from_millis(self.config.store_retry_backoff_ms);
        loop {
            match self.apply(&submission, recorded_at, metadata.clone()).await {
                Ok((verdict, newly_recorded)) => {
                    if let Err(error) = delivery.ack().await {
                        tracing::warn!(%error, "ack failed after commit; the redelivery will be a no-op");
                    }
                    if newly_recorded {
                        let counter = match verdict.status {
                            bus::VerdictStatus::Rejected => &self.counters.rejected,
                            _ => &self.counters.accepted,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        self.projector_waker.notify_one();
                    } else {
                        self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                    verdicts::announce(&self.client, &self.subjects, &verdict).await;
                    return;
                }
                Err(ApplyFailure::Conflict)
                    if conflicts_retried < self.config.conflict_retries_max =>
                {
                    conflicts_retried += 1;
                    self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
                }
                Err(ApplyFailure::Conflict) => {
                    tracing::warn!(event_id = %submission.envelope.event_id, "conflicts persist; handing the message back");
                    let _ = delivery.nak(backoff).await;
                    return;
                }
                Err(ApplyFailure::Unrecordable(reason)) => {
                    return self.park(&delivery, reason, shutdown).await
                }
                Err(ApplyFailure::Transient(error)) => {
                    self.counters.store_failures.fetch_add(1, Ordering::Relaxed);
                    if !self
                        .wait_before_retry(&delivery, &mut backoff, shutdown, &error)
                        .await
                    {
                        return;
                    }
                }
            }
        }
    }

    /// Pauses before a retry, keeping the message with an in-progress ack. Returns false (and
    /// hands the message back) when the process is shutting down.
    async fn wait_before_retry(
        &self,
        delivery: &Delivery,
        backoff: &mut Duration,
        shutdown: &watch::Receiver<bool>,
        error: &str,
    ) -> bool {
        if *shutdown.borrow() {
            let _ = delivery
                .nak(Duration::from_millis(self.config.store_retry_backoff_ms))
                .await;
            return false;
        }
        tracing::warn!(
            error,
            backoff_ms = backoff.as_millis() as u64,
            "database failure; retrying"
        );
        let _ = delivery.progress().await;
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(Duration::from_millis(
            self.config.store_retry_backoff_max_ms,
        ));
        true
    }

    fn decode(&self, delivery: &Delivery) -> Result<Submission, String> {
        let Some((subject_agency, subject_participant)) =
            self.subjects.parse_event(delivery.subject())
        else {
            return Err(format!(
                "subject_unparseable: `{}` is not <prefix>.<agency>.<participant_id>",
                delivery.subject()
            ));
        };
        let submission: Submission = serde_json::from_slice(delivery.payload())
            .map_err(|error| format!("payload_undecodable: {error}"))?;
        if submission.envelope.agency != subject_agency {
            return Err(format!(
                "agency_mismatch: the subject is {}'s but the envelope claims {}",
                subject_agency, submission.envelope.agency
            ));
        }
        if submission.envelope.participant_id != subject_participant {
            return Err(
                "participant_mismatch: the subject and the envelope name different participants"
                    .into(),
            );
        }
        Ok(submission)
    }

    /// One attempt: load, decide, commit. Returns the verdict and whether anything new was
    /// recorded (false for a redelivery).
    async fn apply(
        &self,
        submission: &Submission,
        recorded_at: chrono::DateTime<chrono::Utc>,
        metadata: HashMap<String, String>,
    ) -> Result<(Verdict, bool), ApplyFailure> {
        let event_id = submission.envelope.event_id;
        let participant_id = submission.envelope.participant_id;
        let mut context = self
            .event_store
            .load_aggregate(&participant_id.to_string())
            .await
            .map_err(classify)?;
        let sink = EventSink::default();
        let command = ParticipantCommand::Record {
            submission: submission.clone(),
            recorded_at,
        };
        context
            .aggregate
            .handle(command, &(), &sink)
            .await
            .map_err(|error: ParticipantError| ApplyFailure::Unrecordable(error.to_string()))?;
        let events = sink.collect().await;
        if events.is_empty() {
            let verdict = context
                .aggregate
                .verdict(event_id)
                .map(|recorded| verdict_of_recorded(event_id, participant_id, recorded))
                .ok_or_else(|| {
                    ApplyFailure::Unrecordable(
                        "aggregate recorded nothing and knows no verdict".into(),
                    )
                })?;
            return Ok((verdict, false));
        }
        let committed = self
            .event_store
            .commit(events, context, metadata)
            .await
            .map_err(classify)?;
        let verdict = committed
            .first()
            .map(|envelope| verdict_of_event(&envelope.payload))
            .ok_or_else(|| ApplyFailure::Transient("commit returned no events".into()))?;
        Ok((verdict, true))
    }

    async fn park(&self, delivery: &Delivery, reason: String, shutdown: &watch::Receiver<bool>) {
        let message = store::ParkedMessage {
            stream_name: self.stream_name.clone(),
            stream_sequence: delivery.stream_sequence(),
            subject: delivery.subject().to_owned(),
            payload: delivery.payload().to_vec(),
            reason: reason.clone(),
            delivered_count: delivery.delivered_count(),
        };
        let mut backoff = Duration::from_millis(self.config.store_retry_backoff_ms);
        loop {
            match store::events::park(&self.pool, &message).await {
                Ok(()) => {
                    tracing::error!(stream_sequence = message.stream_sequence, subject = %message.subject, %reason, "message parked");
                    self.counters.parked.fetch_add(1, Ordering::Relaxed);
                    let _ = delivery.ack().await;
                    return;
                }
                Err(error) => {
                    if !self
                        .wait_before_retry(delivery, &mut backoff, shutdown, &error.to_string())
                        .await
                    {
                        return;
                    }
                }
            }
        }
    }
}

fn classify(error: AggregateError<ParticipantError>) -> ApplyFailure {
    match error {
        AggregateError::AggregateConflict => ApplyFailure::Conflict,
        AggregateError::UserError(error) => ApplyFailure::Unrecordable(error.to_string()),
        AggregateError::DeserializationError(error) => {
            ApplyFailure::Unrecordable(format!("stored_history_unreadable: {error}"))
        }
        AggregateError::DatabaseConnectionError(error) | AggregateError::UnexpectedError(error) => {
            ApplyFailure::Transient(error.to_string())
        }
    }
}

fn lane_of(subjects: &Subjects, subject: &str, lanes: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    match subjects.parse_event(subject) {
        Some((_, participant_id)) => participant_id.hash(&mut hasher),
        None => subject.hash(&mut hasher),
    }
    (hasher.finish() % lanes as u64) as usize
}

/// How often the consumer's lag is sampled for metrics.
const LAG_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Waits, at start, for messages an earlier (crashed) ledger held unacked to come due again.
///
/// JetStream redelivers them only after `ack_wait`, but hands out never-delivered messages at
/// once; pulling right away could apply a participant's later event before its earlier one.
/// Redeliveries due at our first pull are served first and in stream order, so waiting out one
/// `ack_wait` when anything is pending keeps per-participant order across a crash.
async fn wait_for_orphaned_deliveries(
    consumer: &mut IngestConsumer,
    ack_wait: Duration,
    fetch_wait: Duration,
    shutdown: &watch::Receiver<bool>,
) {
    // A crashed ledger's open pull can still be handed messages until the server drops it, so
    // first let every open pull lapse (bounded), then count what was delivered and not acked.
    let pulls_lapse_by = tokio::time::Instant::now() + fetch_wait + Duration::from_secs(2);
    while tokio::time::Instant::now() < pulls_lapse_by {
        match consumer.waiting_pulls().await {
            Ok(0) => break,
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(error) => {
                tracing::warn!(%error, "could not read consumer state at start");
                break;
            }
        }
    }
    match consumer.lag().await {
        Ok((_, 0)) => {}
        Ok((_, ack_pending)) => {
            // The server notices expired deliveries on a timer that itself runs every
            // ack_wait, so one can come due up to two ack_waits after it was delivered.
            let wait = ack_wait * 2 + Duration::from_millis(500);
            tracing::info!(
                ack_pending,
                wait_ms = wait.as_millis() as u64,
                "unacked deliveries from an earlier run; waiting for their redelivery"
            );
            let mut shutdown = shutdown.clone();
            let _ = tokio::time::timeout(wait, shutdown.wait_for(|stop| *stop)).await;
        }
        Err(error) => tracing::warn!(%error, "could not read consumer state at start"),
    }
}

/// Pulls until shutdown, routing each delivery to its participant's lane; then lets the lanes
/// finish what they hold and returns.
pub async fn run(
    mut consumer: IngestConsumer,
    applier: Arc<Applier>,
    ack_wait: Duration,
    shutdown: watch::Receiver<bool>,
) {
    let fetch_wait = consumer.fetch_wait();
    wait_for_orphaned_deliveries(&mut consumer, ack_wait, fetch_wait, &shutdown).await;
    let lanes = applier.config.lanes;
    let mut senders = Vec::with_capacity(lanes);
    let mut workers = JoinSet::new();
    for _ in 0..lanes {
        let (sender, mut receiver) =
            mpsc::channel::<Delivery>(applier.config.lane_queue_length_max);
        senders.push(sender);
        let applier = applier.clone();
        let shutdown = shutdown.clone();
        workers.spawn(async move {
            while let Some(delivery) = receiver.recv().await {
                applier.process(delivery, &shutdown).await;
            }
        });
    }
    let mut pull_failures: u32 = 0;
    let mut lag_sampled_at = tokio::time::Instant::now() - LAG_SAMPLE_INTERVAL;
    while !*shutdown.borrow() {
        if lag_sampled_at.elapsed() >= LAG_SAMPLE_INTERVAL {
            lag_sampled_at = tokio::time::Instant::now();
            if let Ok((pending, ack_pending)) = consumer.lag().await {
                applier
                    .counters
                    .consumer_pending
                    .store(pending, Ordering::Relaxed);
                applier
                    .counters
                    .consumer_ack_pending
                    .store(ack_pending as u64, Ordering::Relaxed);
            }
        }
        let mut batch = match consumer.pull().await {
            Ok(batch) => {
                pull_failures = 0;
                batch
            }
            Err(error) => {
                pull_failures = pull_failures.saturating_add(1);
                tracing::warn!(%error, "pull failed; retrying");
                tokio::time::sleep(Duration::from_millis(
                    100 * u64::from(pull_failures.min(50)),
                ))
                .await;
                continue;
            }
        };
        while let Some(item) = batch.next().await {
            match item {
                Ok(delivery) => {
                    let lane = lane_of(&applier.subjects, delivery.subject(), lanes);
                    if senders[lane].send(delivery).await.is_err() {
                        tracing::error!(lane, "ingest lane stopped unexpectedly");
                    }
                }
                Err(error) => tracing::debug!(%error, "pull ended with an error"),
            }
        }
    }
    drop(senders);
    while workers.join_next().await.is_some() {}
    tracing::info!("ingest drained");
}
