//! A participant's messages are applied in stream order even when the consumer hands out a later
//! one first. That happens after every crash: a dead ledger's unacked deliveries come back only
//! after `ack_wait`, while messages published meanwhile are delivered at once. Here a "crashed"
//! consumer holds a participant's first messages with a two-minute `ack_wait`; the ledger must
//! apply them from the stream before the enrolment that overtook them, at once and without a
//! rejection, park the undecodable one, and record a re-published event id once. And without a
//! crash it must not read from the stream at all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::{
    Agency, ConsentId, ConsentParty, DataCategory, EventBody, ParticipantId, PersonId,
    ReferralSource, Submission, UnitId,
};
use testkit::TestDatabase;

fn submission(participant_id: ParticipantId, body: EventBody) -> Submission {
    testkit::coach_submission(participant_id, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_overtaken_by_a_later_delivery_are_applied_first_from_the_stream(
) -> anyhow::Result<()> {
    const ACK_WAIT_MS: u64 = 120_000;
    let database = TestDatabase::create().await?;
    let bus_config = bus::BusConfig {
        ack_wait_ms: ACK_WAIT_MS,
        ..testkit::unique_bus_config()
    };
    let client = bus::connect(&bus_config, "stream-order-test").await?;
    let participant_id = ParticipantId(uuid::Uuid::new_v4());
    // The crashed ledger held the participant's partition (the ledger under test takes the pin
    // over after pinned_client_timeout_ms).
    let crashed_consumer = bus::IngestConsumer::open(
        client.clone(),
        &bus_config,
        testkit::partition_of(participant_id, bus_config.partitions),
    )
    .await?;
    let jetstream = async_nats::jetstream::new(client.clone());
    let subject =
        bus::Subjects::new(&bus_config.subject_prefix).event(Agency::Municipality, participant_id);
    let publish = |payload: Vec<u8>| {
        let jetstream = jetstream.clone();
        let subject = subject.clone();
        async move {
            // No message id: JetStream's dedupe must not hide the re-published copy.
            let ack = jetstream.publish(subject, payload.into()).await?.await?;
            anyhow::Ok(ack.sequence)
        }
    };

    let referral = submission(
        participant_id,
        EventBody::ParticipantReferred {
            source: ReferralSource::Vuxenpsykiatri,
            referrer: None,
        },
    );
    let undecodable_sequence = publish(b"not json".to_vec()).await?;
    let referral_sequence = publish(serde_json::to_vec(&referral)?).await?;
    let republished_referral_sequence = publish(serde_json::to_vec(&referral)?).await?;

    // The crashed ledger took those three and never acked them.
    let mut pull = crashed_consumer.pull().await?;
    let mut held = Vec::new();
    while held.len() < 3 {
        match pull.next().await {
            Some(Ok(delivery)) => held.push(delivery.stream_sequence()),
            _ => break,
        }
    }
    assert_eq!(
        held,
        vec![
            undecodable_sequence,
            referral_sequence,
            republished_referral_sequence
        ]
    );
    drop(pull);

    // Published after the crash: delivered at once, ahead of the three held ones.
    let enrolment = submission(
        participant_id,
        EventBody::ParticipantEnrolled {
            unit: UnitId("hudiksvall-ips".into()),
            coach: PersonId("coach-17".into()),
        },
    );
    let consent = submission(
        participant_id,
        EventBody::ConsentGranted {
            consent_id: ConsentId(uuid::Uuid::new_v4()),
            discloser: ConsentParty::Forsakringskassan,
            recipient: ConsentParty::IpsUnit,
            data_categories: vec![DataCategory::BenefitDecisions],
            valid_from: domain::business_date(Utc::now()),
            valid_to: domain::business_date(Utc::now()) + chrono::Days::new(365),
        },
    );
    let enrolment_sequence = publish(serde_json::to_vec(&enrolment)?).await?;
    let consent_sequence = publish(serde_json::to_vec(&consent)?).await?;

    let (shutdown, shutdown_receiver) = tokio::sync::watch::channel(false);
    let ledger = ledger::start(
        testkit::ledger_config(&database, &bus_config),
        Arc::new(ledger::clock::SystemClock),
        shutdown_receiver,
    )
    .await?;
    let pool = database.pool().await?;
    let history_query = "SELECT event_type, (metadata->>'stream_sequence')::bigint FROM events
         WHERE aggregate_id = $1 ORDER BY sequence";
    // Far less than ack_wait: nothing may wait for the held messages' redelivery.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut history: Vec<(String, i64)> = Vec::new();
    while Instant::now() < deadline {
        history = sqlx::query_as(history_query)
            .bind(participant_id.to_string())
            .fetch_all(&pool)
            .await?;
        if history.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let as_i64 = |sequence: u64| i64::try_from(sequence).unwrap_or(i64::MAX);
    assert_eq!(
        history,
        vec![
            ("ParticipantReferred".to_owned(), as_i64(referral_sequence)),
            ("ParticipantEnrolled".to_owned(), as_i64(enrolment_sequence)),
            ("ConsentGranted".to_owned(), as_i64(consent_sequence)),
        ],
        "applied in stream order, each once, with its own stream position"
    );
    let parked: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT stream_sequence, reason, delivered_count FROM parked_messages ORDER BY stream_sequence",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].0, as_i64(undecodable_sequence));
    assert!(parked[0].1.starts_with("payload_undecodable"), "{parked:?}");
    assert_eq!(
        parked[0].2, 0,
        "parked from the stream, before any delivery"
    );
    // A verdict is counted just after its commit: the counters are read once the ledger has
    // drained, not the moment the rows became visible.
    let counters = Arc::clone(&ledger.counters);
    shutdown.send(true)?;
    ledger.wait().await;
    assert_eq!(counters.applied_from_stream.get(), 1);
    assert!(counters.order_reads.get() >= 1);
    assert_eq!(counters.accepted.get(), 3);
    assert_eq!(counters.rejected.get(), 0);
    assert_eq!(counters.parked.get(), 1);
    pool.close().await;
    database.drop_database().await;
    testkit::delete_streams(&bus_config).await;
    Ok(())
}

/// Without a crash, a nak or another client, nothing can be overtaken: the ledger applies
/// interleaved participants without a single read from the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_run_reads_nothing_back_from_the_stream() -> anyhow::Result<()> {
    let database = TestDatabase::create().await?;
    let bus_config = testkit::unique_bus_config();
    let (shutdown, shutdown_receiver) = tokio::sync::watch::channel(false);
    let ledger = ledger::start(
        testkit::ledger_config(&database, &bus_config),
        Arc::new(ledger::clock::SystemClock),
        shutdown_receiver,
    )
    .await?;
    let client = bus::connect(&bus_config, "stream-order-test").await?;
    let publisher = bus::SubmissionPublisher::new(client, &bus_config);
    let participants: Vec<ParticipantId> = (0..5)
        .map(|_| ParticipantId(uuid::Uuid::new_v4()))
        .collect();
    for participant_id in &participants {
        publisher
            .publish(&submission(
                *participant_id,
                EventBody::ParticipantReferred {
                    source: ReferralSource::Vuxenpsykiatri,
                    referrer: None,
                },
            ))
            .await?;
    }
    for participant_id in &participants {
        publisher
            .publish(&submission(
                *participant_id,
                EventBody::ParticipantEnrolled {
                    unit: UnitId("hudiksvall-ips".into()),
                    coach: PersonId("coach-17".into()),
                },
            ))
            .await?;
    }
    let counters = &ledger.counters;
    let deadline = Instant::now() + Duration::from_secs(20);
    while counters.accepted.get() < 10 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counters.accepted.get(), 10);
    assert_eq!(counters.rejected.get(), 0);
    assert_eq!(counters.order_reads.get(), 0, "nothing could be overtaken");
    assert_eq!(counters.applied_from_stream.get(), 0);

    shutdown.send(true)?;
    ledger.wait().await;
    database.drop_database().await;
    testkit::delete_streams(&bus_config).await;
    Ok(())
}
