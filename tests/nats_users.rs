//! Each agency service talks to NATS as its own user (deploy/nats/agency-users.conf), allowed to
//! publish only under its own subject prefix (issue 5; DESIGN.md §4):
//!
//! - the whole stack works with those users (every agency writes; the ledger applies);
//! - FK's user publishing on psychiatry's subject is refused by the server, and nothing of it
//!   reaches the event store;
//! - FK's user publishing on its own subject an envelope that claims psychiatry is parked and
//!   reported by the ledger.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use domain::{Agency, DataCategory, EventBody, ParticipantId, Role, Submission};
use proto::v1;
use testkit::{Stack, StackOptions};

fn availability_claiming(agency: Agency, participant_id: ParticipantId) -> Submission {
    tests::submission_claiming(
        agency,
        participant_id,
        DataCategory::HealthCoarse,
        EventBody::AvailabilityChanged {
            availability: domain::values::Availability::TemporarilyUnavailable,
            from: chrono::Utc::now().date_naive(),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agencies_publish_only_under_their_own_subjects_and_forged_envelopes_are_parked(
) -> anyhow::Result<()> {
    let nats = testkit::NatsWithUsers::start().await?;
    let stack = Stack::start_with(StackOptions {
        nats_with_users: Some(nats.clone()),
        ..StackOptions::default()
    })
    .await?;

    // The stack works with per-agency users: the municipality and FK write, the ledger applies.
    let referred = stack
        .municipality()
        .await?
        .refer_participant(testkit::as_coach(v1::ReferParticipantRequest {
            source: v1::ReferralSource::Vuxenpsykiatri as i32,
            ..Default::default()
        }))
        .await?
        .into_inner();
    assert_eq!(
        referred.status,
        v1::WriteStatus::Accepted as i32,
        "{referred:?}"
    );
    let availability = stack
        .psychiatry()
        .await?
        .change_availability(testkit::as_officer(
            v1::ChangeAvailabilityRequest {
                write: Some(v1::ParticipantWrite {
                    context: None,
                    participant_id: referred.participant_id.clone(),
                }),
                availability: v1::Availability::Available as i32,
                from: chrono::Utc::now().date_naive().to_string(),
            },
            Agency::Psychiatry,
            "rehab-coordinator-2",
            Role::CaseOfficer,
            "hudiksvall-vuxenpsykiatri",
        ))
        .await?
        .into_inner();
    assert_eq!(
        availability.status,
        v1::WriteStatus::Accepted as i32,
        "{availability:?}"
    );
    let stored_before = stack.stored_events(None).await?;
    assert_eq!(stored_before, 2);

    let participant_id = domain::ParticipantId::parse(&referred.participant_id)?;
    let subjects = bus::Subjects::new("ips.v1");
    let fk = async_nats::jetstream::new(nats.connect_as("fk").await?);

    // FK on psychiatry's subject: the server refuses the publish; no ack ever comes.
    let forged = serde_json::to_vec(&availability_claiming(Agency::Psychiatry, participant_id))?;
    let refused = tokio::time::timeout(Duration::from_secs(3), async {
        fk.publish(
            subjects.event(Agency::Psychiatry, participant_id),
            forged.clone().into(),
        )
        .await?
        .await
        .map_err(anyhow::Error::from)
    })
    .await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "the server must refuse FK publishing on psychiatry's subject, got {refused:?}"
    );

    // FK on its own subject, with an envelope claiming psychiatry: accepted by the server,
    // parked and reported by the ledger.
    fk.publish(
        subjects.event(Agency::Forsakringskassan, participant_id),
        forged.into(),
    )
    .await?
    .await?;
    let pool = stack.database.pool().await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reasons: Vec<String> = Vec::new();
    while Instant::now() < deadline && reasons.is_empty() {
        reasons = sqlx::query_scalar("SELECT reason FROM parked_messages")
            .fetch_all(&pool)
            .await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].starts_with("agency_mismatch"), "{reasons:?}");
    assert_eq!(stack.ledger_counters.parked.load(Ordering::Relaxed), 1);
    assert_eq!(
        stack.stored_events(None).await?,
        stored_before,
        "neither forged event reached the event store"
    );

    // A wrong password does not connect at all.
    let wrong = async_nats::ConnectOptions::new()
        .user_and_password("fk".into(), "not-the-password".into())
        .connect(&nats.url)
        .await;
    assert!(wrong.is_err(), "a wrong password must not connect");
    pool.close().await;
    stack.stop().await;
    Ok(())
}
