//! Messages the ledger can never apply are parked (stored with the reason) and reported, never
//! dropped, and they do not stop the events behind them.

use std::time::{Duration, Instant};

use domain::{Agency, DataCategory, EventBody, ParticipantId, ReferralSource, Submission};
use proto::v1;
use testkit::{as_coach, Stack};

fn referral_claiming(agency: Agency, participant_id: ParticipantId) -> Submission {
    tests::submission_claiming(
        agency,
        participant_id,
        DataCategory::Participation,
        EventBody::ParticipantReferred {
            source: ReferralSource::Forsakringskassan,
            referrer: None,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unapplicable_messages_are_parked_with_their_reason_and_the_stream_goes_on(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let subjects = bus::Subjects::new(&stack.bus_config.subject_prefix);
    let client = bus::connect(&stack.bus_config, "parking-test").await?;
    let jetstream = async_nats::jetstream::new(client);
    let participant_id = ParticipantId(uuid::Uuid::new_v4());

    // Not JSON at all.
    jetstream
        .publish(
            subjects.event(Agency::Municipality, participant_id),
            "not json".into(),
        )
        .await?
        .await?;
    // Valid JSON whose envelope claims FK while the subject is the municipality's.
    let forged = serde_json::to_vec(&referral_claiming(
        Agency::Forsakringskassan,
        participant_id,
    ))?;
    jetstream
        .publish(
            subjects.event(Agency::Municipality, participant_id),
            forged.into(),
        )
        .await?
        .await?;
    // A subject whose last token is not a participant id.
    jetstream
        .publish(
            format!("{}.municipality.nobody", stack.bus_config.subject_prefix),
            "{}".into(),
        )
        .await?
        .await?;

    // The stream goes on: a good write behind them is applied.
    let mut municipality = stack.municipality().await?;
    let request = v1::ReferParticipantRequest {
        source: v1::ReferralSource::Ifo as i32,
        ..Default::default()
    };
    let accepted = municipality
        .refer_participant(as_coach(request))
        .await?
        .into_inner();
    assert_eq!(accepted.status, v1::WriteStatus::Accepted as i32);

    let pool = stack.database.pool().await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reasons: Vec<String> = Vec::new();
    while Instant::now() < deadline {
        reasons = sqlx::query_scalar("SELECT reason FROM parked_messages ORDER BY stream_sequence")
            .fetch_all(&pool)
            .await?;
        if reasons.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rules: Vec<&str> = reasons
        .iter()
        .map(|reason| reason.split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(
        rules,
        [
            "payload_undecodable",
            "agency_mismatch",
            "subject_unparseable"
        ],
        "{reasons:?}"
    );
    let payloads: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM parked_messages ORDER BY stream_sequence")
            .fetch_all(&pool)
            .await?;
    assert_eq!(payloads[0], b"not json", "the parked payload is kept whole");
    assert_eq!(
        testkit::counted(|| stack.ledger_counters.parked.get(), 3).await,
        3
    );
    let metrics = tests::ledger_metrics(&stack).await?;
    assert!(
        metrics.contains("\nips_ledger_messages_parked_total 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nips_ledger_events_accepted_total 1\n"),
        "{metrics}"
    );
    assert_eq!(
        stack.stored_events(None).await?,
        1,
        "only the good write is in the event store"
    );
    pool.close().await;
    stack.stop().await;
    Ok(())
}
