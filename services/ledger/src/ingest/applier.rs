//! Applying one delivery: decode it, apply the participant's earlier unapplied messages from the
//! stream, decide through the aggregate and commit; classify what failed (retry, park, or wait
//! out the store) and park what can never be recorded.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bus::{verdicts, Delivery, StoredMessage, StreamReader, Subjects, Verdict};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::EventStoreAggregateContext;
use cqrs_es::{Aggregate, AggregateError, EventStore};
use domain::{Participant, ParticipantCommand, ParticipantError, ParticipantId, Submission};
use sqlx::PgPool;
use tokio::sync::{watch, Notify};

use super::cache::{AggregateCache, FoldedParticipant};
use super::committer::{CommitAnswer, Committer};
use super::counters::IngestCounters;
use super::ordering::{PartitionOrder, PartitionOrders};
use crate::clock::Clock;
use crate::config::IngestConfig;
use crate::verdict::{verdict_of_event, verdict_of_recorded};

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

/// What postgres-es's commit takes: in event-store mode it reads only the id and the stored
/// head from it, so the aggregate itself stays with the ledger (and its cache).
type ParticipantContext = EventStoreAggregateContext<Participant>;

/// The metadata key under which each stored event keeps its stream position.
const STREAM_SEQUENCE_KEY: &str = "stream_sequence";

/// Applies deliveries; shared by all lanes.
pub struct Applier {
    pub(crate) event_store: store::ParticipantEventStore,
    pub(crate) stream_reader: StreamReader,
    /// Each partition's ack floor and order watermark.
    pub(crate) partition_orders: PartitionOrders,
    pub(crate) pool: PgPool,
    pub(crate) client: async_nats::Client,
    pub(crate) subjects: Subjects,
    pub(crate) stream_name: String,
    pub(crate) park_after_deliveries: i64,
    pub(crate) config: IngestConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) projector_waker: Arc<Notify>,
    pub(crate) counters: Arc<IngestCounters>,
    /// Participants folded by earlier deliveries (`ingest.aggregate_cache_bytes_max`).
    pub(crate) aggregate_cache: Arc<AggregateCache>,
    /// The group committer (`ingest.commit_batch_size_max` above 1); without it each delivery
    /// is committed by its lane through postgres-es, in a transaction of its own.
    pub(crate) committer: Option<Committer>,
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
                    self.partition_orders.of(&self.subjects, delivery.subject()),
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
                    self.partition_orders
                        .of(&self.subjects, delivery.subject())
                        .order_watermark
                        .handed_back(delivery.stream_sequence());
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
        self.partition_orders
            .of(&self.subjects, delivery.subject())
            .order_watermark
            .handed_back(delivery.stream_sequence());
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

    /// A participant folded for a write: from the cache when it holds it (after checking the
    /// append-only guard, one catalog read), else loaded from the store.
    async fn load(&self, participant_id: ParticipantId) -> Result<FoldedParticipant, ApplyFailure> {
        let fingerprint = store::events::append_guard_fingerprint(&self.pool)
            .await
            .map_err(|error| classify_store(&error))?;
        let forgotten = self.aggregate_cache.check_append_guard(&fingerprint);
        if forgotten > 0 {
            tracing::warn!(
                forgotten,
                "the events table's append-only guard changed; every cached participant is loaded and verified again"
            );
        }
        if let Some(folded) = self.aggregate_cache.take(participant_id) {
            self.counters.aggregate_cache_hits.inc();
            return Ok(folded);
        }
        self.counters.aggregate_cache_misses.inc();
        self.load_from_store(participant_id).await
    }

    /// Keeps a participant whose folded state matches what is committed, for the next delivery.
    fn keep(&self, participant_id: ParticipantId, folded: FoldedParticipant) {
        let outcome = self.aggregate_cache.put(participant_id, folded);
        self.counters
            .aggregate_cache_evictions
            .inc_by(outcome.evicted);
        self.counters
            .aggregate_cache_bytes
            .set(self.aggregate_cache.bytes());
    }

    /// Loads a participant's whole history from the store and folds it, verifying its chain.
    async fn load_from_store(
        &self,
        participant_id: ParticipantId,
    ) -> Result<FoldedParticipant, ApplyFailure> {
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
        let mut folded = FoldedParticipant {
            aggregate: Participant::default(),
            current_sequence: 0,
            applied_through_stream_sequence: 0,
            from_cache: false,
        };
        for entry in history.entries {
            folded.current_sequence = usize::try_from(entry.sequence).map_err(|_| {
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
            folded.applied_through_stream_sequence =
                folded.applied_through_stream_sequence.max(stream_sequence);
            folded.aggregate.apply(entry.event);
        }
        Ok(folded)
    }

    /// One attempt: applies the participant's earlier unapplied messages from the stream, then
    /// this one. Returns this one's verdict and whether anything new was recorded for it.
    async fn apply_in_stream_order(
        &self,
        order: &PartitionOrder,
        submission: &Submission,
        stream_sequence: u64,
        redelivered: bool,
        metadata: HashMap<String, String>,
    ) -> Result<(Verdict, bool), ApplyFailure> {
        let participant_id = submission.envelope.participant_id;
        // Taken out of the cache: any failure below drops it, so it is loaded afresh next time.
        let mut folded = self.load(participant_id).await?;
        let ack_floor = order.ack_floor_stream_sequence.load(Ordering::Relaxed);
        // Both bounds are read (from stored rows and from the server), so they are compared
        // without `+ 1`: an impossible position (a tampered row's `u64::MAX`) cannot overflow.
        // A cached participant behind the store (another ledger wrote) only reads more.
        let settled_through = folded.applied_through_stream_sequence.max(ack_floor);
        if stream_sequence.saturating_sub(settled_through) > 1
            && (redelivered || !order.order_watermark.nothing_overtaken(ack_floor))
        {
            self.counters.order_reads.inc();
            folded = self
                .catch_up(participant_id, settled_through, stream_sequence, folded)
                .await?;
        }
        let (verdict, newly_recorded, folded) = self
            .decide_and_commit(submission, folded, metadata, stream_sequence)
            .await?;
        self.keep(participant_id, folded);
        Ok((verdict, newly_recorded))
    }

    /// Applies, in stream order, the participant's messages after `settled_through` and before
    /// `stream_sequence` that the aggregate has not recorded: a delivery that overtook them.
    async fn catch_up(
        &self,
        participant_id: ParticipantId,
        settled_through: u64,
        stream_sequence: u64,
        mut folded: FoldedParticipant,
    ) -> Result<FoldedParticipant, ApplyFailure> {
        assert!(
            settled_through < stream_sequence,
            "apply_in_stream_order catches up only on a delivery past what is settled"
        );
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
            folded = self.apply_earlier(participant_id, &earlier, folded).await?;
            from = earlier.stream_sequence + 1;
        }
        Ok(folded)
    }

    /// Applies (or parks) one earlier message read from the stream, unless it is recorded.
    async fn apply_earlier(
        &self,
        participant_id: ParticipantId,
        earlier: &StoredMessage,
        folded: FoldedParticipant,
    ) -> Result<FoldedParticipant, ApplyFailure> {
        let submission = match decode(&self.subjects, &earlier.subject, &earlier.payload) {
            Ok(submission) => submission,
            Err(reason) => {
                self.park_stored(earlier, reason).await?;
                return Ok(folded);
            }
        };
        if folded
            .aggregate
            .verdict(submission.envelope.event_id)
            .is_some()
        {
            // The same event id published twice: recorded once, the copy is a no-op.
            return Ok(folded);
        }
        if store::events::is_parked(&self.pool, &self.stream_name, earlier.stream_sequence)
            .await
            .map_err(|error| classify_store(&error))?
        {
            // Parked already (its data refused, say): passed over, not tried again.
            return Ok(folded);
        }
        let metadata = stream_metadata(earlier.stream_sequence, &earlier.subject);
        match self
            .decide_and_commit(&submission, folded, metadata, earlier.stream_sequence)
            .await
        {
            Ok((verdict, newly_recorded, folded)) => {
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
                Ok(folded)
            }
            Err(ApplyFailure::Unrecordable(reason)) => {
                self.park_stored(earlier, reason).await?;
                // The failed attempt took the folded participant with it: load it again.
                self.load_from_store(participant_id).await
            }
            Err(ApplyFailure::DataRefused {
                reason,
                earlier: None,
            }) => Err(ApplyFailure::DataRefused {
                reason,
                earlier: Some(Box::new(earlier.clone())),
            }),
            Err(failure) => Err(failure),
        }
    }

    /// Decides on one submission against a folded participant and commits what it records.
    /// Returns the verdict, whether anything new was recorded (false for a redelivery), and
    /// the participant as committed, to be kept for the next delivery. On any failure the
    /// folded participant is dropped (it may hold the uncommitted entry).
    ///
    /// The clock is read here, on every attempt, after the history is loaded: an entry is
    /// stamped when the attempt that commits it decides, never with the time an earlier attempt
    /// (before a conflict or a store outage) read, and the aggregate stamps it after the
    /// previous entry whatever this host's clock says.
    async fn decide_and_commit(
        &self,
        submission: &Submission,
        mut folded: FoldedParticipant,
        metadata: HashMap<String, String>,
        stream_sequence: u64,
    ) -> Result<(Verdict, bool, FoldedParticipant), ApplyFailure> {
        let participant_id = submission.envelope.participant_id;
        let event_id = submission.envelope.event_id;
        if folded.from_cache && folded.aggregate.verdict(event_id).is_some() {
            // A redelivery answered from memory commits nothing, so no optimistic check will
            // catch a cached participant that another ledger moved on since: its verdict is
            // explained with today's state (a withdrawn consent counts), so compare the head.
            let head = store::events::stored_head(&self.pool, participant_id)
                .await
                .map_err(|error| classify_store(&error))?;
            if head != folded.current_sequence as u64 {
                folded = self.load_from_store(participant_id).await?;
            }
        }
        let clock_reading = self.clock.now();
        let sink = EventSink::default();
        let command = ParticipantCommand::Record {
            submission: submission.clone(),
            recorded_at: clock_reading,
        };
        folded
            .aggregate
            .handle(command, &(), &sink)
            .await
            .map_err(|error: ParticipantError| ApplyFailure::Unrecordable(error.to_string()))?;
        let events = sink.collect().await;
        let Some(event) = events.first() else {
            let recorded = folded
                .aggregate
                .verdict(event_id)
                .expect("Participant::handle records nothing only for an event id it has recorded");
            let verdict = verdict_of_recorded(
                &submission.envelope,
                recorded,
                &folded.aggregate,
                crate::clock::business_date(clock_reading),
            );
            return Ok((verdict, false, folded));
        };
        // Explained before the commit: a rejection records nothing that changes what its
        // submitter may see. (`handle` has applied the entry to the aggregate already.)
        let verdict = verdict_of_event(
            event,
            &folded.aggregate,
            crate::clock::business_date(clock_reading),
        );
        let recorded_entries = events.len();
        match &self.committer {
            None => {
                let context = ParticipantContext {
                    aggregate_id: participant_id.to_string(),
                    aggregate: Participant::default(),
                    current_sequence: folded.current_sequence,
                    current_snapshot: None,
                };
                self.event_store
                    .commit(events, context, metadata)
                    .await
                    .map_err(classify)?;
            }
            Some(committer) => {
                let pending = store::group_commit::PendingCommit {
                    participant_id,
                    expected_sequence: folded.current_sequence as u64,
                    events,
                    metadata,
                };
                match committer.commit(pending).await {
                    CommitAnswer::Written => {}
                    CommitAnswer::Refused(error) => return Err(classify_refused(&error)),
                    CommitAnswer::Unserializable(error) => {
                        return Err(ApplyFailure::Unrecordable(format!(
                            "payload_unstorable: {error}"
                        )))
                    }
                    CommitAnswer::BatchFailed { error, sqlstate } => {
                        return Err(ApplyFailure::StoreUnavailable { error, sqlstate })
                    }
                }
            }
        }
        folded.current_sequence += recorded_entries;
        folded.applied_through_stream_sequence =
            folded.applied_through_stream_sequence.max(stream_sequence);
        Ok((verdict, true, folded))
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

/// Reads a submission from a message, checking that its subject and envelope agree and that
/// it can be stored (even as a rejection). Public
/// (as `ingest::decode_submission`) so the fuzz program feeds raw bytes through it.
pub fn decode(subjects: &Subjects, subject: &str, payload: &[u8]) -> Result<Submission, String> {
    let Some((_, subject_agency, subject_participant)) = subjects.parse_stored_event(subject)
    else {
        return Err(format!(
            "subject_unparseable: `{subject}` is not <prefix>.<partition>.<agency>.<participant_id>"
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
    // Found by the fuzz program (crates/fuzz/regressions.txt): a NUL in any string would be
    // recorded as a rejection that PostgreSQL refuses on every attempt until the lane parks it.
    submission
        .check_storable()
        .map_err(|error| format!("payload_unstorable: {error}"))?;
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

/// What a delivery's rows refused inside a group commit mean. A deadlock is a conflict too:
/// two ledgers' batches may wait on each other's rows of the same participants.
fn classify_refused(error: &sqlx::Error) -> ApplyFailure {
    let classified = store::failure::classify_sqlx(error);
    if matches!(classified.sqlstate.as_deref(), Some("40P01" | "40001")) {
        return ApplyFailure::Conflict;
    }
    by_class(classified, error.to_string())
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
