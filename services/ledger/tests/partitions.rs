//! Several ledgers share the stream's partitions: at any moment one applies a partition (its
//! consumer pins one ledger's pull stream), the live ledgers share the partitions out so each
//! applies some, a ledger that joins takes its share from the others, and when a ledger dies
//! or stops its partitions move to the others (a stopped one releases its pins, so that takes
//! far less than `pinned_client_timeout_ms`). Whatever moves, every participant's events are
//! stored in stream order, each once.
//!
//! A ledger is "killed" by dropping it in-process without a shutdown: its tasks are aborted
//! mid-flight (lanes mid-commit, pull streams open, deliveries unacked), so its pins lapse and
//! its unacked messages come back after `ack_wait`, behind newer ones, as after a crash. A
//! separate process (as `tests/crash.rs` does) would add process start-up to every run without
//! exercising anything more of the hand-over.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::{
    ConsentId, ConsentParty, DataCategory, EventBody, EventId, ParticipantId, PersonId,
    ReferralSource, UnitId,
};
use testkit::TestDatabase;

/// Participants per test: enough that every one of the test's partitions has several (so each
/// ledger's share has traffic).
const PARTICIPANTS: usize = 64;

/// How long the ledgers may take to learn of each other and share the partitions out.
const SHARED_WITHIN: Duration = Duration::from_secs(15);

/// How long the test waits for everything published to be stored: a few pin timeouts.
const STORED_WITHIN: Duration = Duration::from_secs(30);

fn referral() -> EventBody {
    EventBody::ParticipantReferred {
        source: ReferralSource::Vuxenpsykiatri,
        referrer: None,
    }
}

fn enrolment() -> EventBody {
    EventBody::ParticipantEnrolled {
        unit: UnitId("hudiksvall-ips".into()),
        coach: PersonId("coach-17".into()),
    }
}

fn consent() -> EventBody {
    EventBody::ConsentGranted {
        consent_id: ConsentId(uuid::Uuid::new_v4()),
        discloser: ConsentParty::Forsakringskassan,
        recipient: ConsentParty::IpsUnit,
        data_categories: vec![DataCategory::BenefitDecisions],
        valid_from: domain::business_date(Utc::now()),
        valid_to: domain::business_date(Utc::now()) + chrono::Days::new(365),
    }
}

/// A test's ledgers on one database and one stream.
struct Ledgers {
    database: TestDatabase,
    bus_config: bus::BusConfig,
    running: Vec<Option<(ledger::RunningLedger, tokio::sync::watch::Sender<bool>)>>,
    publisher: bus::SubmissionPublisher,
    /// Every event published, per participant, with its stream sequence.
    published: BTreeMap<ParticipantId, Vec<(EventId, u64)>>,
}

impl Ledgers {
    /// Starts `count` ledgers at once.
    async fn start(count: usize) -> anyhow::Result<Self> {
        Self::start_on(count, testkit::unique_bus_config()).await
    }

    /// Starts `count` ledgers at once on a stream of `bus_config`.
    async fn start_on(count: usize, bus_config: bus::BusConfig) -> anyhow::Result<Self> {
        let database = TestDatabase::create().await?;
        // Migrations and the stream's creation once, before the ledgers race to pull.
        let client = bus::connect(&bus_config, "partitions-test").await?;
        bus::IngestConsumer::open_all(client.clone(), &bus_config).await?;
        let starts = (0..count).map(|_| {
            let config = testkit::ledger_config(&database, &bus_config);
            async move {
                let (shutdown, receiver) = tokio::sync::watch::channel(false);
                let ledger =
                    ledger::start(config, Arc::new(ledger::clock::SystemClock), receiver).await?;
                anyhow::Ok(Some((ledger, shutdown)))
            }
        });
        let mut running = Vec::new();
        for started in futures::future::join_all(starts).await {
            running.push(started?);
        }
        Ok(Self {
            publisher: bus::SubmissionPublisher::new(client, &bus_config),
            database,
            bus_config,
            running,
            published: BTreeMap::new(),
        })
    }

    /// Publishes one event about each participant, interleaved.
    async fn publish_round(
        &mut self,
        participants: &[ParticipantId],
        body: impl Fn() -> EventBody,
    ) -> anyhow::Result<()> {
        for participant_id in participants {
            let submission = testkit::coach_submission(*participant_id, body());
            let receipt = self.publisher.publish(&submission).await?;
            self.published
                .entry(*participant_id)
                .or_default()
                .push((submission.envelope.event_id, receipt.stream_sequence));
        }
        Ok(())
    }

    /// Starts one more ledger on the same database and stream.
    async fn add(&mut self) -> anyhow::Result<()> {
        let config = testkit::ledger_config(&self.database, &self.bus_config);
        let (shutdown, receiver) = tokio::sync::watch::channel(false);
        let ledger = ledger::start(config, Arc::new(ledger::clock::SystemClock), receiver).await?;
        self.running.push(Some((ledger, shutdown)));
        Ok(())
    }

    /// Whether every running ledger knows all the others and their shares cover the partitions.
    fn shared(&self) -> bool {
        let live: Vec<&ledger::RunningLedger> = self
            .running
            .iter()
            .flatten()
            .map(|(ledger, _)| ledger)
            .collect();
        let assigned: u64 = live
            .iter()
            .map(|ledger| ledger.counters.partitions_assigned.get())
            .sum();
        live.iter()
            .all(|ledger| ledger.counters.ledgers_live.get() == live.len() as u64)
            && assigned == u64::from(self.bus_config.partitions)
    }

    /// Waits until [`Self::shared`].
    async fn wait_until_shared(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        while !self.shared() {
            anyhow::ensure!(
                started.elapsed() < SHARED_WITHIN,
                "the ledgers did not share the partitions out within {SHARED_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(())
    }

    fn published_count(&self) -> usize {
        self.published.values().map(Vec::len).sum()
    }

    /// What each ledger has accepted so far (a killed one: `None`).
    fn accepted(&self) -> Vec<Option<u64>> {
        self.running
            .iter()
            .map(|ledger| {
                ledger
                    .as_ref()
                    .map(|(ledger, _)| ledger.counters.accepted.get())
            })
            .collect()
    }

    /// Waits until the live ledgers' `accepted` counters sum to at least `expected`. A ledger
    /// counts a verdict just after its commit, so a count read the moment the rows are visible
    /// can still be short by the deliveries in that instant.
    async fn wait_until_counted(&self, expected: u64) -> anyhow::Result<u64> {
        let started = Instant::now();
        loop {
            let counted: u64 = self.accepted().iter().flatten().sum();
            if counted >= expected {
                return Ok(counted);
            }
            anyhow::ensure!(
                started.elapsed() < STORED_WITHIN,
                "the live ledgers counted {counted} of {expected} accepted after {STORED_WITHIN:?}; \
                 accepted per ledger {:?}",
                self.accepted()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until every published event is stored; how long it took.
    async fn wait_until_all_stored(&self, pool: &sqlx::PgPool) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let expected = i64::try_from(self.published_count())?;
        loop {
            let (stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
                .fetch_one(pool)
                .await?;
            if stored >= expected {
                return Ok(started.elapsed());
            }
            anyhow::ensure!(
                started.elapsed() < STORED_WITHIN,
                "{stored} of {expected} events stored after {STORED_WITHIN:?}; accepted per ledger {:?}",
                self.accepted()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Every participant's stored events are exactly what was published about it, in stream
    /// order, each once.
    async fn assert_stored_in_stream_order_once(&self, pool: &sqlx::PgPool) -> anyhow::Result<()> {
        let rows: Vec<(String, uuid::Uuid, i64)> = sqlx::query_as(
            "SELECT aggregate_id, event_id, (metadata->>'stream_sequence')::bigint FROM events
             ORDER BY aggregate_id, sequence",
        )
        .fetch_all(pool)
        .await?;
        let mut stored: BTreeMap<String, Vec<(EventId, u64)>> = BTreeMap::new();
        for (participant, event_id, stream_sequence) in rows {
            stored
                .entry(participant)
                .or_default()
                .push((EventId(event_id), u64::try_from(stream_sequence)?));
        }
        let published: BTreeMap<String, Vec<(EventId, u64)>> = self
            .published
            .iter()
            .map(|(participant_id, events)| (participant_id.to_string(), events.clone()))
            .collect();
        assert_eq!(
            stored, published,
            "each participant's events stored once each, in the order of their stream positions"
        );
        Ok(())
    }

    /// Stops ledger `index` gracefully: it finishes what it holds and releases its pins.
    async fn stop_one(&mut self, index: usize) {
        if let Some((ledger, shutdown)) = self.running.get_mut(index).and_then(Option::take) {
            let _ = shutdown.send(true);
            ledger.wait().await;
        }
    }

    fn participants(count: usize) -> Vec<ParticipantId> {
        (0..count)
            .map(|_| ParticipantId(uuid::Uuid::new_v4()))
            .collect()
    }

    /// Drops ledger `index` without a shutdown (see the file's opening comment).
    fn kill(&mut self, index: usize) {
        if let Some(slot) = self.running.get_mut(index) {
            drop(slot.take());
        }
    }

    async fn stop(mut self) {
        for (ledger, shutdown) in self.running.iter_mut().filter_map(Option::take) {
            let _ = shutdown.send(true);
            ledger.wait().await;
        }
        self.database.drop_database().await;
        testkit::delete_streams(&self.bus_config).await;
    }
}

/// Publishes a round before and after killing the ledger that applied most, once the ledgers
/// have shared the partitions out (each applies some), and checks that the others take its
/// partitions over.
async fn a_killed_ledgers_partitions_move(ledger_count: usize) -> anyhow::Result<()> {
    let mut ledgers = Ledgers::start(ledger_count).await?;
    ledgers.wait_until_shared().await?;
    let pool = ledgers.database.pool().await?;
    let participants = Ledgers::participants(PARTICIPANTS);
    let partitions_used: BTreeSet<u32> = participants
        .iter()
        .map(|participant_id| testkit::partition_of(*participant_id, ledgers.bus_config.partitions))
        .collect();
    assert!(
        partitions_used.len() > 1,
        "the participants span partitions"
    );

    ledgers.publish_round(&participants, referral).await?;
    ledgers.publish_round(&participants, enrolment).await?;
    ledgers.wait_until_all_stored(&pool).await?;
    let published_before = u64::try_from(ledgers.published_count())?;
    ledgers.wait_until_counted(published_before).await?;
    let before = ledgers.accepted();
    let total_before: u64 = before.iter().flatten().sum();
    assert_eq!(
        total_before, published_before,
        "each event accepted once, by one ledger"
    );
    assert!(
        before.iter().flatten().all(|accepted| *accepted > 0),
        "every ledger applied its share: accepted per ledger {before:?}"
    );
    let (victim, victim_accepted) = before
        .iter()
        .enumerate()
        .filter_map(|(index, accepted)| accepted.map(|accepted| (index, accepted)))
        .max_by_key(|(_, accepted)| *accepted)
        .ok_or_else(|| anyhow::anyhow!("no ledger"))?;
    assert!(victim_accepted > 0);

    // Killed with deliveries in flight: published while it still holds its pins.
    ledgers.publish_round(&participants, consent).await?;
    ledgers.kill(victim);
    ledgers.publish_round(&participants, consent).await?;
    let moved_within = ledgers.wait_until_all_stored(&pool).await?;
    eprintln!(
        "{ledger_count} ledgers: accepted before the kill {before:?}; ledger {victim} killed; \
         everything stored {moved_within:?} after the kill; accepted after {:?}",
        ledgers.accepted()
    );
    ledgers.assert_stored_in_stream_order_once(&pool).await?;
    let survivors_before: u64 = before
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != victim)
        .filter_map(|(_, accepted)| *accepted)
        .sum();
    // The round after the kill can only have been applied by the survivors; wait for their
    // counters to catch up with their commits, bounded.
    let survivors_after = ledgers
        .wait_until_counted(survivors_before + u64::try_from(participants.len())?)
        .await
        .unwrap_or_else(|_| ledgers.accepted().iter().flatten().sum());
    assert!(
        survivors_after - survivors_before >= u64::try_from(participants.len())?,
        "the survivors applied at least the round published after the kill (the dead ledger's \
         partitions included)"
    );
    // Order held without a single refusal, whatever moved (an enrolment or consent applied
    // before its referral would be refused).
    for (ledger, _) in ledgers.running.iter().flatten() {
        assert_eq!(ledger.counters.rejected.get(), 0);
    }
    pool.close().await;
    ledgers.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ledgers_share_the_partitions_and_a_killed_ones_move() -> anyhow::Result<()> {
    a_killed_ledgers_partitions_move(2).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_ledgers_share_the_partitions_and_a_killed_ones_move() -> anyhow::Result<()> {
    a_killed_ledgers_partitions_move(3).await
}

/// A ledger that joins while events flow takes its share: the ledger that applied everything
/// releases partitions mid-stream (deliveries in flight), and still every participant's events
/// are stored once each, in stream order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_ledger_takes_its_share_under_load() -> anyhow::Result<()> {
    let mut ledgers = Ledgers::start(1).await?;
    ledgers.wait_until_shared().await?;
    let pool = ledgers.database.pool().await?;
    let participants = Ledgers::participants(PARTICIPANTS);
    ledgers.publish_round(&participants, referral).await?;
    ledgers.add().await?;
    // Rounds keep coming while the partitions move (a round of publishes takes a fraction of
    // the sharing's evaluation interval, so several land mid-move).
    ledgers.publish_round(&participants, enrolment).await?;
    let started = Instant::now();
    while !ledgers.shared() {
        anyhow::ensure!(
            started.elapsed() < SHARED_WITHIN,
            "no sharing within {SHARED_WITHIN:?}"
        );
        ledgers.publish_round(&participants, consent).await?;
    }
    ledgers.publish_round(&participants, consent).await?;
    ledgers.publish_round(&participants, consent).await?;
    ledgers.wait_until_all_stored(&pool).await?;
    ledgers
        .wait_until_counted(u64::try_from(ledgers.published_count())?)
        .await?;
    let accepted = ledgers.accepted();
    eprintln!("a ledger joined: accepted per ledger {accepted:?}");
    ledgers.assert_stored_in_stream_order_once(&pool).await?;
    assert!(
        accepted.iter().flatten().all(|accepted| *accepted > 0),
        "the joining ledger applied its share: {accepted:?}"
    );
    let first = &ledgers.running[0].as_ref().expect("running").0;
    assert!(
        first.counters.pins_released.get() > 0,
        "the first ledger released partitions"
    );
    for (ledger, _) in ledgers.running.iter().flatten() {
        assert_eq!(ledger.counters.rejected.get(), 0);
    }
    pool.close().await;
    ledgers.stop().await;
    Ok(())
}

/// A ledger stopped gracefully finishes what it holds and releases its pins, so the other
/// takes its partitions over at once: far sooner than the pin's timeout, which is made long
/// here so that waiting for it would fail the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_ledgers_partitions_move_without_waiting_for_the_pin_timeout(
) -> anyhow::Result<()> {
    let pinned_client_timeout = Duration::from_secs(30);
    let bus_config = bus::BusConfig {
        pinned_client_timeout_ms: u64::try_from(pinned_client_timeout.as_millis())?,
        ..testkit::unique_bus_config()
    };
    let mut ledgers = Ledgers::start_on(2, bus_config).await?;
    ledgers.wait_until_shared().await?;
    let pool = ledgers.database.pool().await?;
    let participants = Ledgers::participants(PARTICIPANTS);
    ledgers.publish_round(&participants, referral).await?;
    ledgers.publish_round(&participants, enrolment).await?;
    ledgers.wait_until_all_stored(&pool).await?;
    ledgers
        .wait_until_counted(u64::try_from(ledgers.published_count())?)
        .await?;
    let before = ledgers.accepted();
    assert!(
        before.iter().flatten().all(|accepted| *accepted > 0),
        "both ledgers hold partitions (so the stopped one has pins to release): {before:?}"
    );

    // Published while it still runs, so it stops with deliveries in hand.
    ledgers.publish_round(&participants, consent).await?;
    let stopped_at = Instant::now();
    let stopped = ledgers.running[0]
        .as_ref()
        .expect("running")
        .0
        .counters
        .clone();
    ledgers.stop_one(0).await;
    ledgers.publish_round(&participants, consent).await?;
    ledgers.wait_until_all_stored(&pool).await?;
    let moved_within = stopped_at.elapsed();
    eprintln!(
        "a stopped ledger's partitions moved within {moved_within:?} (pin timeout \
         {pinned_client_timeout:?}); accepted before {before:?}, after {:?}",
        ledgers.accepted()
    );
    assert!(
        stopped.pins_released.get() > 0,
        "the stopped ledger released its pins"
    );
    assert!(
        moved_within < pinned_client_timeout / 4,
        "everything stored {moved_within:?} after a graceful stop: the pins were not released \
         (the timeout is {pinned_client_timeout:?})"
    );
    ledgers.assert_stored_in_stream_order_once(&pool).await?;
    for (ledger, _) in ledgers.running.iter().flatten() {
        assert_eq!(ledger.counters.rejected.get(), 0);
    }
    pool.close().await;
    ledgers.stop().await;
    Ok(())
}

/// The stream stores each event under the partition `partition(N, participant)` gives it (the
/// participant token alone decides, whichever agency published), and a stream whose transform
/// names another partition count is refused at start-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partition_follows_the_participant_and_its_count_is_fixed() -> anyhow::Result<()> {
    let bus_config = testkit::unique_bus_config();
    let client = bus::connect(&bus_config, "partitions-test").await?;
    bus::IngestConsumer::open_all(client.clone(), &bus_config).await?;
    let publisher = bus::SubmissionPublisher::new(client.clone(), &bus_config);
    let reader = bus::StreamReader::open(client.clone(), &bus_config).await?;
    let subjects = bus::Subjects::new(&bus_config.subject_prefix);
    let mut partitions_seen = BTreeSet::new();
    for _ in 0..PARTICIPANTS {
        let participant_id = ParticipantId(uuid::Uuid::new_v4());
        publisher
            .publish(&testkit::coach_submission(participant_id, referral()))
            .await?;
        let stored = reader
            .first_for_participant_from(participant_id, 1)
            .await?
            .ok_or_else(|| anyhow::anyhow!("nothing stored about {participant_id}"))?;
        let (partition, _, stored_participant) = subjects
            .parse_stored_event(&stored.subject)
            .ok_or_else(|| anyhow::anyhow!("unparseable stored subject {}", stored.subject))?;
        assert_eq!(stored_participant, participant_id);
        assert_eq!(
            partition,
            testkit::partition_of(participant_id, bus_config.partitions)
        );
        partitions_seen.insert(partition);
    }
    assert!(partitions_seen.len() > 1, "{partitions_seen:?}");

    let other_count = bus::BusConfig {
        partitions: bus_config.partitions + 1,
        ..bus_config.clone()
    };
    let refused = bus::IngestConsumer::open(client, &other_count, 0).await;
    assert!(
        matches!(&refused, Err(bus::BusError::Setup(reason)) if reason.contains("migration")),
        "{:?}",
        refused.err()
    );
    testkit::delete_streams(&bus_config).await;
    Ok(())
}
