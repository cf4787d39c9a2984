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
//! That stream read is skipped when nothing can have been overtaken ([`OrderWatermark`]): a
//! first delivery that no other client's delivery interleaved with, once everything delivered
//! before this process's run of contiguous deliveries is acked.
//! A second ledger process may still race on a participant; postgres-es's optimistic check turns
//! that into `AggregateConflict`, which is retried after reloading.
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

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bus::{verdicts, Delivery, IngestConsumer, StoredMessage, StreamReader, Subjects, Verdict};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::EventStoreAggregateContext;
use cqrs_es::{Aggregate, AggregateError, EventStore};
use domain::{Participant, ParticipantCommand, ParticipantError, ParticipantId, Submission};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::config::IngestConfig;
use crate::verdict::{verdict_of_event, verdict_of_recorded};

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
    /// Earlier messages read from the stream and applied ahead of their own redelivery.
    pub applied_from_stream: Counter,
    /// Deliveries preceded by a read of the participant's earlier messages from the stream.
    pub order_reads: Counter,
}

impl IngestCounters {
    /// Adds the counters to `registry` under their metric names. A counter's name is given
    /// without `_total`: the OpenMetrics encoder appends it to the sample (so the scrape shows
    /// `ips_ledger_events_accepted_total`), and the help text gets its closing full stop there.
    pub fn register(&self, registry: &mut Registry) {
        let counters: [(&str, &str, &Counter); 11] = [
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
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        let gauges: [(&str, &str, &U64Gauge); 3] = [
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
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
    }
}

/// Why one apply attempt did not commit.
enum ApplyFailure {
    /// Another writer appended first; reload and retry.
    Conflict,
    /// Something other than the store failed (the stream read, a bound on one attempt); retry.
    Transient(String),
    /// The store is unavailable or misconfigured; retry without limit, park nothing.
    StoreUnavailable {
        error: String,
        sqlstate: Option<String>,
    },
    /// PostgreSQL refused the data of a message: this delivery's (`earlier` is `None`) or an
    /// earlier one read from the stream. Parked after `data_error_attempts_max` attempts.
    DataRefused {
        reason: String,
        earlier: Option<Box<StoredMessage>>,
    },
    /// The participant's stored hash chain is broken: nothing may be appended to it.
    ChainBroken(String),
    /// Nothing can ever be recorded for this submission.
    Unrecordable(String),
}

/// A participant's aggregate as loaded for one decision.
type ParticipantContext = EventStoreAggregateContext<Participant>;

/// The metadata key under which each stored event keeps its stream position.
const STREAM_SEQUENCE_KEY: &str = "stream_sequence";

/// Applies deliveries; shared by all lanes.
pub struct Applier {
    pub(crate) event_store: store::ParticipantEventStore,
    pub(crate) stream_reader: StreamReader,
    /// The consumer's ack floor as last sampled: every message at or below it is settled
    /// (recorded or parked). It only moves forward, so a stale value is a safe lower bound.
    pub(crate) ack_floor_stream_sequence: AtomicU64,
    /// When the stream read before a delivery may be skipped.
    pub(crate) order_watermark: OrderWatermark,
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
    pub async fn process(&self, delivery: &Delivery, shutdown: &watch::Receiver<bool>) {
        let submission = match decode(&self.subjects, delivery.subject(), delivery.payload()) {
            Ok(submission) => submission,
            Err(reason) => return self.park(delivery, reason, shutdown).await,
        };
        if delivery.delivered_count() > self.park_after_deliveries {
            let reason = format!(
                "delivered {} times without being applied",
                delivery.delivered_count()
            );
            return self.park(delivery, reason, shutdown).await;
        }
        let metadata = stream_metadata(delivery.stream_sequence(), delivery.subject());
        let mut conflicts_retried = 0;
        let mut backoff = Duration::from_millis(self.config.store_retry_backoff_ms);
        // Consecutive refusals of one message's data (the stream sequence refused, and how often).
        let mut data_refusals: (u64, u32) = (0, 0);
        loop {
            match self
                .apply_in_stream_order(
                    &submission,
                    delivery.stream_sequence(),
                    delivery.delivered_count() > 1,
                    metadata.clone(),
                )
                .await
            {
                Ok((verdict, newly_recorded)) => {
                    self.store_answered();
                    if let Err(error) = delivery.ack().await {
                        tracing::warn!(%error, "ack failed after commit; the redelivery will be a no-op");
                    }
                    if newly_recorded {
                        self.after_recording(&verdict);
                    } else {
                        self.counters.duplicates.inc();
                    }
                    verdicts::announce(
                        &self.client,
                        &self.subjects,
                        submission.envelope.agency,
                        &verdict,
                    )
                    .await;
                    return;
                }
                Err(ApplyFailure::Conflict)
                    if conflicts_retried < self.config.conflict_retries_max =>
                {
                    conflicts_retried += 1;
                    self.counters.conflicts.inc();
                }
                Err(ApplyFailure::Conflict) => {
                    // postgres-es reports both unique indexes as a conflict; an event id already
                    // recorded for another participant never stops conflicting.
                    if let Ok(Some(recorded)) =
                        store::events::find_by_event_id(&self.pool, submission.envelope.event_id)
                            .await
                    {
                        if recorded.participant_id != submission.envelope.participant_id {
                            let reason = format!(
                                "event_id_reused: event id {} is recorded for another participant",
                                submission.envelope.event_id
                            );
                            return self.park(delivery, reason, shutdown).await;
                        }
                    }
                    tracing::warn!(event_id = %submission.envelope.event_id, "conflicts persist; handing the message back");
                    self.order_watermark.handed_back(delivery.stream_sequence());
                    let _ = delivery.nak(backoff).await;
                    return;
                }
                Err(ApplyFailure::Unrecordable(reason)) => {
                    return self.park(delivery, reason, shutdown).await
                }
                Err(ApplyFailure::ChainBroken(reason)) => {
                    self.counters.chain_broken_refusals.inc();
                    tracing::error!(
                        participant_id = %submission.envelope.participant_id,
                        event_id = %submission.envelope.event_id,
                        %reason,
                        "refusing to append to a broken hash chain"
                    );
                    return self.park(delivery, reason, shutdown).await;
                }
                Err(ApplyFailure::DataRefused { reason, earlier }) => {
                    self.counters.store_data_refusals.inc();
                    let refused_sequence = earlier
                        .as_ref()
                        .map_or(delivery.stream_sequence(), |earlier| {
                            earlier.stream_sequence
                        });
                    if data_refusals.0 != refused_sequence {
                        data_refusals = (refused_sequence, 0);
                    }
                    data_refusals.1 += 1;
                    tracing::warn!(
                        stream_sequence = refused_sequence,
                        attempt = data_refusals.1,
                        attempts_max = self.config.data_error_attempts_max,
                        %reason,
                        "the store refused a message's data"
                    );
                    if data_refusals.1 >= self.config.data_error_attempts_max {
                        let reason = format!("{reason} (refused {} times)", data_refusals.1);
                        match earlier {
                            None => return self.park(delivery, reason, shutdown).await,
                            Some(earlier) => {
                                // Parked, the earlier message is passed over; this one retries.
                                if let Err(failure) = self.park_stored(&earlier, reason).await {
                                    self.note_failure(&failure);
                                    if !self
                                        .wait_before_retry(
                                            delivery,
                                            &mut backoff,
                                            shutdown,
                                            "parking failed",
                                        )
                                        .await
                                    {
                                        return;
                                    }
                                }
                                continue;
                            }
                        }
                    }
                    if !self
                        .wait_before_retry(delivery, &mut backoff, shutdown, &reason)
                        .await
                    {
                        return;
                    }
                }
                Err(
                    failure @ (ApplyFailure::Transient(_) | ApplyFailure::StoreUnavailable { .. }),
                ) => {
                    let error = self.note_failure(&failure);
                    if !self
                        .wait_before_retry(delivery, &mut backoff, shutdown, &error)
                        .await
                    {
                        return;
                    }
                }
            }
        }
    }

    /// Counts and logs a failure that is nobody's message's fault; returns its description.
    /// The first failure of a store outage is logged at error level and starts the gauge.
    fn note_failure(&self, failure: &ApplyFailure) -> String {
        match failure {
            ApplyFailure::StoreUnavailable { error, sqlstate } => {
                self.counters.store_failures.inc();
                let now_seconds = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |elapsed| elapsed.as_secs().max(1));
                if self
                    .counters
                    .store_unavailable_since_seconds
                    .inner()
                    .compare_exchange(0, now_seconds, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    tracing::error!(
                        error,
                        sqlstate = sqlstate.as_deref().unwrap_or("none"),
                        "the event store is unavailable; ingest retries without limit and parks nothing"
                    );
                }
                format!(
                    "store unavailable (SQLSTATE {}): {error}",
                    sqlstate.as_deref().unwrap_or("none")
                )
            }
            ApplyFailure::Transient(error) => error.clone(),
            ApplyFailure::Conflict => "conflict".to_owned(),
            ApplyFailure::DataRefused { reason, .. }
            | ApplyFailure::ChainBroken(reason)
            | ApplyFailure::Unrecordable(reason) => reason.clone(),
        }
    }

    /// The store answered: an outage, if there was one, is over.
    fn store_answered(&self) {
        let since = self
            .counters
            .store_unavailable_since_seconds
            .inner()
            .swap(0, Ordering::Relaxed);
        if since != 0 {
            tracing::warn!(
                unavailable_since_seconds = since,
                "the event store answers again"
            );
        }
    }

    /// Hands an unfinished delivery back to JetStream (at shutdown), to be redelivered.
    pub(crate) async fn hand_back(&self, delivery: &Delivery) {
        self.order_watermark.handed_back(delivery.stream_sequence());
        self.counters.handed_back_at_shutdown.inc();
        if let Err(error) = delivery.nak(Duration::ZERO).await {
            tracing::warn!(%error, stream_sequence = delivery.stream_sequence(), "could not hand a delivery back; it is redelivered after ack_wait");
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
            self.hand_back(delivery).await;
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

    /// Counts a newly recorded verdict and wakes the projector for it.
    fn after_recording(&self, verdict: &Verdict) {
        let counter = match verdict.status {
            bus::VerdictStatus::Rejected => &self.counters.rejected,
            bus::VerdictStatus::Accepted => &self.counters.accepted,
            bus::VerdictStatus::Unknown => unreachable!(
                "a verdict of something just recorded is accepted or rejected, never unknown"
            ),
        };
        counter.inc();
        self.projector_waker.notify_one();
    }

    /// Loads a participant's aggregate, and the highest stream sequence applied to it.
    async fn load(
        &self,
        participant_id: ParticipantId,
    ) -> Result<(ParticipantContext, u64), ApplyFailure> {
        // Verified on every load for a write: appending to an edited history would extend a
        // chain nobody can trust, and hide the edit behind newer, valid-looking links.
        let history = store::events::load_verified_history(&self.pool, participant_id)
            .await
            .map_err(|error| classify_store(&error))?;
        if let Some(link) = history.first_broken_link {
            return Err(ApplyFailure::ChainBroken(format!(
                "chain_broken: entry {} of participant {participant_id} fails verification ({}); nothing is appended to a broken chain",
                link.sequence,
                link.reason.name()
            )));
        }
        let mut context = ParticipantContext {
            aggregate_id: participant_id.to_string(),
            aggregate: Participant::default(),
            current_sequence: 0,
            current_snapshot: None,
        };
        let mut applied_through_stream_sequence = 0;
        for entry in history.entries {
            context.current_sequence = usize::try_from(entry.sequence).map_err(|_| {
                ApplyFailure::Unrecordable(format!(
                    "stored_history_unreadable: sequence {} out of range",
                    entry.sequence
                ))
            })?;
            let stream_sequence = stored_stream_sequence(&entry.metadata).map_err(|reason| {
                ApplyFailure::Unrecordable(format!(
                    "stored_history_unreadable: entry {} of participant {participant_id}: {reason}",
                    entry.sequence
                ))
            })?;
            applied_through_stream_sequence = applied_through_stream_sequence.max(stream_sequence);
            context.aggregate.apply(entry.event);
        }
        Ok((context, applied_through_stream_sequence))
    }

    /// One attempt: applies the participant's earlier unapplied messages from the stream, then
    /// this one. Returns this one's verdict and whether anything new was recorded for it.
    async fn apply_in_stream_order(
        &self,
        submission: &Submission,
        stream_sequence: u64,
        redelivered: bool,
        metadata: HashMap<String, String>,
    ) -> Result<(Verdict, bool), ApplyFailure> {
        let participant_id = submission.envelope.participant_id;
        let (mut context, applied_through) = self.load(participant_id).await?;
        let ack_floor = self.ack_floor_stream_sequence.load(Ordering::Relaxed);
        let settled_through = applied_through.max(ack_floor);
        if stream_sequence > settled_through + 1
            && (redelivered || !self.order_watermark.nothing_overtaken(ack_floor))
        {
            self.counters.order_reads.inc();
            context = self
                .catch_up(participant_id, settled_through, stream_sequence, context)
                .await?;
        }
        self.decide_and_commit(submission, context, metadata).await
    }

    /// Applies, in stream order, the participant's messages after `settled_through` and before
    /// `stream_sequence` that the aggregate has not recorded: a delivery that overtook them.
    async fn catch_up(
        &self,
        participant_id: ParticipantId,
        settled_through: u64,
        stream_sequence: u64,
        mut context: ParticipantContext,
    ) -> Result<ParticipantContext, ApplyFailure> {
        let mut from = settled_through + 1;
        let mut messages_read = 0;
        while from < stream_sequence {
            let Some(earlier) = self
                .stream_reader
                .first_for_participant_from(participant_id, from)
                .await
                .map_err(|error| ApplyFailure::Transient(error.to_string()))?
            else {
                break;
            };
            if earlier.stream_sequence >= stream_sequence {
                break;
            }
            messages_read += 1;
            if messages_read > self.config.catch_up_messages_max {
                // What was applied so far stays; the retry continues from there.
                return Err(ApplyFailure::Transient(format!(
                    "catch_up_messages_max: more than {} earlier messages about one participant",
                    self.config.catch_up_messages_max
                )));
            }
            context = self
                .apply_earlier(participant_id, &earlier, context)
                .await?;
            from = earlier.stream_sequence + 1;
        }
        Ok(context)
    }

    /// Applies (or parks) one earlier message read from the stream, unless it is recorded.
    async fn apply_earlier(
        &self,
        participant_id: ParticipantId,
        earlier: &StoredMessage,
        context: ParticipantContext,
    ) -> Result<ParticipantContext, ApplyFailure> {
        let submission = match decode(&self.subjects, &earlier.subject, &earlier.payload) {
            Ok(submission) => submission,
            Err(reason) => {
                self.park_stored(earlier, reason).await?;
                return Ok(context);
            }
        };
        if context
            .aggregate
            .verdict(submission.envelope.event_id)
            .is_some()
        {
            // The same event id published twice: recorded once, the copy is a no-op.
            return Ok(context);
        }
        if store::events::is_parked(&self.pool, &self.stream_name, earlier.stream_sequence)
            .await
            .map_err(|error| classify_store(&error))?
        {
            // Parked already (its data refused, say): passed over, not tried again.
            return Ok(context);
        }
        let metadata = stream_metadata(earlier.stream_sequence, &earlier.subject);
        match self.decide_and_commit(&submission, context, metadata).await {
            Ok((verdict, newly_recorded)) => {
                if newly_recorded {
                    self.after_recording(&verdict);
                    self.counters.applied_from_stream.inc();
                    tracing::info!(
                        stream_sequence = earlier.stream_sequence,
                        event_id = %submission.envelope.event_id,
                        "applied an earlier message from the stream ahead of its redelivery"
                    );
                }
                verdicts::announce(
                    &self.client,
                    &self.subjects,
                    submission.envelope.agency,
                    &verdict,
                )
                .await;
            }
            Err(ApplyFailure::Unrecordable(reason)) => self.park_stored(earlier, reason).await?,
            Err(ApplyFailure::DataRefused {
                reason,
                earlier: None,
            }) => {
                return Err(ApplyFailure::DataRefused {
                    reason,
                    earlier: Some(Box::new(earlier.clone())),
                })
            }
            Err(failure) => return Err(failure),
        }
        Ok(self.load(participant_id).await?.0)
    }

    /// Decides on one submission against a loaded aggregate and commits what it records.
    /// Returns the verdict and whether anything new was recorded (false for a redelivery).
    ///
    /// The clock is read here, on every attempt, after the history is loaded: an entry is
    /// stamped when the attempt that commits it decides, never with the time an earlier attempt
    /// (before a conflict or a store outage) read, and the aggregate stamps it after the
    /// previous entry whatever this host's clock says.
    async fn decide_and_commit(
        &self,
        submission: &Submission,
        mut context: ParticipantContext,
        metadata: HashMap<String, String>,
    ) -> Result<(Verdict, bool), ApplyFailure> {
        let clock_reading = self.clock.now();
        let event_id = submission.envelope.event_id;
        let sink = EventSink::default();
        let command = ParticipantCommand::Record {
            submission: submission.clone(),
            recorded_at: clock_reading,
        };
        context
            .aggregate
            .handle(command, &(), &sink)
            .await
            .map_err(|error: ParticipantError| ApplyFailure::Unrecordable(error.to_string()))?;
        let events = sink.collect().await;
        let Some(event) = events.first() else {
            let recorded = context
                .aggregate
                .verdict(event_id)
                .expect("Participant::handle records nothing only for an event id it has recorded");
            let verdict = verdict_of_recorded(
                &submission.envelope,
                recorded,
                &context.aggregate,
                crate::clock::business_date(clock_reading),
            );
            return Ok((verdict, false));
        };
        // Explained before the commit takes the aggregate: a rejection records nothing that
        // changes what its submitter may see.
        let verdict = verdict_of_event(
            event,
            &context.aggregate,
            crate::clock::business_date(clock_reading),
        );
        self.event_store
            .commit(events, context, metadata)
            .await
            .map_err(classify)?;
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
                Ok(newly_parked) => {
                    self.store_answered();
                    if newly_parked {
                        tracing::error!(stream_sequence = message.stream_sequence, subject = %message.subject, %reason, "message parked");
                        self.counters.parked.inc();
                    }
                    if let Err(error) = delivery.ack().await {
                        tracing::warn!(%error, stream_sequence = message.stream_sequence, "ack failed after parking; the message comes back after ack_wait");
                    }
                    return;
                }
                Err(error) => {
                    let error = self.note_failure(&classify_store(&error));
                    if !self
                        .wait_before_retry(delivery, &mut backoff, shutdown, &error)
                        .await
                    {
                        return;
                    }
                }
            }
        }
    }

    /// Parks a message read from the stream (its own delivery will find it parked already).
    async fn park_stored(
        &self,
        earlier: &StoredMessage,
        reason: String,
    ) -> Result<(), ApplyFailure> {
        let message = store::ParkedMessage {
            stream_name: self.stream_name.clone(),
            stream_sequence: earlier.stream_sequence,
            subject: earlier.subject.clone(),
            payload: earlier.payload.to_vec(),
            reason: reason.clone(),
            delivered_count: 0,
        };
        let newly_parked = store::events::park(&self.pool, &message)
            .await
            .map_err(|error| classify_store(&error))?;
        if newly_parked {
            tracing::error!(stream_sequence = message.stream_sequence, subject = %message.subject, %reason, "message parked");
            self.counters.parked.inc();
        }
        Ok(())
    }
}

/// Where in the stream a stored entry came from, as [`stream_metadata`] wrote it. Every entry
/// the ledger commits carries it; one without it (or with anything but a stream position) was
/// not written by the ledger, and the order of what follows it cannot be known.
fn stored_stream_sequence(metadata: &serde_json::Value) -> Result<u64, String> {
    let value = metadata
        .get(STREAM_SEQUENCE_KEY)
        .ok_or_else(|| format!("its metadata has no `{STREAM_SEQUENCE_KEY}`"))?;
    value
        .as_str()
        .and_then(|text| text.parse::<u64>().ok())
        .filter(|stream_sequence| *stream_sequence >= 1)
        .ok_or_else(|| format!("its `{STREAM_SEQUENCE_KEY}` {value} is not a stream position"))
}

/// The metadata stored with each event: where in the stream it came from.
fn stream_metadata(stream_sequence: u64, subject: &str) -> HashMap<String, String> {
    HashMap::from([
        (STREAM_SEQUENCE_KEY.to_owned(), stream_sequence.to_string()),
        ("subject".to_owned(), subject.to_owned()),
    ])
}

/// Reads a submission from a message, checking that its subject and envelope agree.
fn decode(subjects: &Subjects, subject: &str, payload: &[u8]) -> Result<Submission, String> {
    let Some((subject_agency, subject_participant)) = subjects.parse_event(subject) else {
        return Err(format!(
            "subject_unparseable: `{subject}` is not <prefix>.<agency>.<participant_id>"
        ));
    };
    let submission: Submission =
        serde_json::from_slice(payload).map_err(|error| format!("payload_undecodable: {error}"))?;
    if submission.envelope.agency != subject_agency {
        return Err(format!(
            "agency_mismatch: the subject is {}'s but the envelope claims {}",
            subject_agency, submission.envelope.agency
        ));
    }
    if submission.envelope.participant_id != subject_participant {
        return Err(
            "participant_mismatch: the subject and the envelope name different participants".into(),
        );
    }
    Ok(submission)
}

/// What a failed commit means (postgres-es boxes the sqlx error it got).
fn classify(error: AggregateError<ParticipantError>) -> ApplyFailure {
    match error {
        AggregateError::AggregateConflict => ApplyFailure::Conflict,
        AggregateError::UserError(error) => ApplyFailure::Unrecordable(error.to_string()),
        AggregateError::DeserializationError(error) => {
            ApplyFailure::Unrecordable(format!("payload_unstorable: {error}"))
        }
        AggregateError::DatabaseConnectionError(error) | AggregateError::UnexpectedError(error) => {
            let error: &(dyn std::error::Error + 'static) = error.as_ref();
            by_class(store::failure::classify(error), error.to_string())
        }
    }
}

/// What a failed store call (other than a commit) means.
fn classify_store(error: &store::StoreError) -> ApplyFailure {
    match error {
        store::StoreError::Unavailable(sqlx_error) => {
            by_class(store::failure::classify_sqlx(sqlx_error), error.to_string())
        }
        store::StoreError::Unreadable(reason) => {
            ApplyFailure::Unrecordable(format!("stored_history_unreadable: {reason}"))
        }
        // A position the store cannot hold is the message's (parking it fails the same way,
        // and is retried and logged without end, which is what an impossible position earns).
        store::StoreError::ValueOutOfRange { .. } => ApplyFailure::Unrecordable(error.to_string()),
        store::StoreError::Migration(_) | store::StoreError::AccessLogBatchTooLarge { .. } => {
            ApplyFailure::StoreUnavailable {
                error: error.to_string(),
                sqlstate: None,
            }
        }
    }
}

fn by_class(classified: store::failure::Classified, error: String) -> ApplyFailure {
    match classified.class {
        store::failure::FailureClass::UniqueConflict => ApplyFailure::Conflict,
        store::failure::FailureClass::MessageData => ApplyFailure::DataRefused {
            reason: format!(
                "store_refused_data: SQLSTATE {}: {error}",
                classified.sqlstate.as_deref().unwrap_or("none")
            ),
            earlier: None,
        },
        store::failure::FailureClass::Unavailable => ApplyFailure::StoreUnavailable {
            error,
            sqlstate: classified.sqlstate,
        },
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

/// How often the puller looks again whether the store answers, while it does not.
const PULL_PAUSE_WHILE_STORE_UNAVAILABLE: Duration = Duration::from_millis(100);

/// How often the consumer's lag (for metrics) and ack floor (for ordering) are sampled.
const LAG_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

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
    fn nothing_overtaken(&self, ack_floor: u64) -> bool {
        ack_floor >= self.settled_needed_through.load(Ordering::SeqCst)
    }

    /// This process handed a message back; later messages may overtake it until it is acked.
    fn handed_back(&self, stream_sequence: u64) {
        self.settled_needed_through
            .fetch_max(stream_sequence, Ordering::SeqCst);
    }
}

/// The puller's view of the consumer sequence, to notice deliveries made to another client.
#[derive(Debug, Default)]
struct DeliveryContiguity {
    next_consumer_sequence: Option<u64>,
    run_broken: bool,
}

impl DeliveryContiguity {
    fn observe(
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
            // first delivery, so this bound covers every earlier cause.
            self.run_broken = false;
            watermark
                .settled_needed_through
                .store(stream_sequence - 1, Ordering::SeqCst);
        }
    }
}

/// Samples the consumer's state: lag for metrics, and the ack floor for ordering.
async fn sample_consumer(consumer: &mut IngestConsumer, applier: &Applier) {
    match consumer.state().await {
        Ok(state) => {
            let counters = &applier.counters;
            counters.consumer_pending.set(state.pending);
            counters.consumer_ack_pending.set(state.ack_pending);
            applier
                .ack_floor_stream_sequence
                .fetch_max(state.ack_floor_stream_sequence, Ordering::Relaxed);
        }
        Err(error) => tracing::warn!(%error, "could not read the consumer's state"),
    }
}

/// Pulls until shutdown, routing each delivery to its participant's lane; then lets the lanes
/// finish what they hold and returns.
pub async fn run(
    mut consumer: IngestConsumer,
    applier: Arc<Applier>,
    shutdown: watch::Receiver<bool>,
) {
    let lanes = applier.config.lanes;
    let drain_timeout = Duration::from_millis(applier.config.drain_timeout_ms);
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
                if *shutdown.borrow() {
                    // Not started: handed back at once, so a long queue drains in no time.
                    applier.hand_back(&delivery).await;
                    continue;
                }
                tokio::select! {
                    () = applier.process(&delivery, &shutdown) => {}
                    () = drain_deadline(shutdown.clone(), drain_timeout) => {
                        // Dropping the attempt is safe: if its commit landed, the redelivery is
                        // a no-op (the aggregate remembers the event id).
                        tracing::warn!(stream_sequence = delivery.stream_sequence(), "unfinished at the drain deadline; handed back");
                        applier.hand_back(&delivery).await;
                    }
                }
            }
        });
    }
    let mut contiguity = DeliveryContiguity::default();
    let mut pull_failures: u32 = 0;
    let mut lag_sampled_at = tokio::time::Instant::now() - LAG_SAMPLE_INTERVAL;
    while !*shutdown.borrow() {
        if lag_sampled_at.elapsed() >= LAG_SAMPLE_INTERVAL {
            lag_sampled_at = tokio::time::Instant::now();
            sample_consumer(&mut consumer, &applier).await;
        }
        if applier.counters.store_unavailable_since_seconds.get() != 0 {
            // Pulled now, a message would only wait behind the outage, and every ack_wait it
            // waits would count as one more delivery towards park_after_deliveries (parking
            // healthy messages as poison). The lanes keep what they hold and retry themselves.
            tokio::time::sleep(PULL_PAUSE_WHILE_STORE_UNAVAILABLE).await;
            continue;
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
                Ok(delivery) if *shutdown.borrow() => applier.hand_back(&delivery).await,
                Ok(delivery) => {
                    // Before the lane sees it, so its check already counts this delivery.
                    contiguity.observe(
                        delivery.consumer_sequence(),
                        delivery.stream_sequence(),
                        delivery.delivered_count() <= 1,
                        &applier.order_watermark,
                    );
                    let lane = lane_of(&applier.subjects, delivery.subject(), lanes);
                    // A full lane (wedged by an outage) must not keep the puller from stopping.
                    let mut stopping = shutdown.clone();
                    tokio::select! {
                        permit = senders[lane].reserve() => match permit {
                            Ok(permit) => permit.send(delivery),
                            Err(_) => tracing::error!(lane, "ingest lane stopped unexpectedly"),
                        },
                        () = async { let _ = stopping.wait_for(|stop| *stop).await; } => {
                            applier.hand_back(&delivery).await
                        }
                    }
                }
                Err(error @ bus::BusError::DeliveryUnreadable(_)) => {
                    // Without its positions it can be neither ordered, parked nor acked; the
                    // server redelivers it after ack_wait.
                    tracing::error!(%error, "a delivery without readable delivery information was left unprocessed");
                }
                Err(error) => tracing::debug!(%error, "pull ended with an error"),
            }
        }
    }
    drop(senders);
    // Each lane is bounded by the drain deadline already; this bounds the nak calls after it.
    let drained = tokio::time::timeout(drain_timeout + DRAIN_GRACE, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::error!("ingest lanes did not stop in time; abandoned (their deliveries come back after ack_wait)");
        workers.abort_all();
    }
    tracing::info!(
        handed_back = applier.counters.handed_back_at_shutdown.get(),
        "ingest drained"
    );
}

/// What stopping may take beyond `ingest.drain_timeout_ms`: handing the unfinished deliveries
/// back (one nak each, no reply awaited).
pub const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Completes `drain_timeout` after `shutdown` turns true (never, until it does).
pub async fn drain_deadline(mut shutdown: watch::Receiver<bool>, drain_timeout: Duration) {
    let asked = shutdown.wait_for(|stop| *stop).await.is_ok();
    if !asked {
        // The sender is gone without a shutdown: nothing will ever ask to stop.
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(drain_timeout).await;
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
        // A clean start at stream sequence 11: skipped once 1..=10 are acked.
        check(
            &[(1, 11, true), (2, 12, true)],
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
