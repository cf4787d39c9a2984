//! Each agency service talks to NATS as its own user (deploy/nats/agency-users.conf), allowed to
//! publish only under its own subject prefix (issue 5; DESIGN.md §4):
//!
//! - the whole stack works with those users (every agency writes; the ledger applies);
//! - FK's user publishing on psychiatry's subject is refused by the server, and nothing of it
//!   reaches the event store;
//! - FK's user publishing on its own subject an envelope that claims psychiatry is parked and
//!   reported by the ledger;
//! - FK's user asking about its own event with a reply subject outside FK's inbox (another
//!   agency's verdict subject or inbox) gets no answer sent there.

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
            from: domain::business_date(chrono::Utc::now()),
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
    let referred = refer(&stack).await?;
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
                from: domain::business_date(chrono::Utc::now()).to_string(),
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
    assert_eq!(
        testkit::counted(|| stack.ledger_counters.parked.get(), 1).await,
        1
    );
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

/// Whether a subscription receives anything within `quiet`.
async fn receives_anything(subscriber: &mut async_nats::Subscriber, quiet: Duration) -> bool {
    use futures::StreamExt;
    tokio::time::timeout(quiet, subscriber.next())
        .await
        .ok()
        .flatten()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_hears_only_its_own_verdicts_and_replies_and_asks_only_about_its_own_events(
) -> anyhow::Result<()> {
    let nats = testkit::NatsWithUsers::start().await?;
    let stack = Stack::start_with(StackOptions {
        nats_with_users: Some(nats.clone()),
        ..StackOptions::default()
    })
    .await?;
    let subjects = bus::Subjects::new("ips.v1");
    // FK's user, as an attacker holding FK's credentials would use it: listening to every
    // verdict and every inbox, and asking about events that are not FK's.
    let fk = nats.connect_as("fk").await?;
    let mut every_verdict = fk.subscribe("ips.v1.verdict.>").await?;
    let mut municipality_verdicts = fk.subscribe("ips.v1.verdict.municipality.>").await?;
    let mut every_inbox = fk.subscribe("_INBOX.>").await?;
    let mut municipality_inbox = fk.subscribe("_INBOX.municipality.>").await?;
    fk.flush().await?;

    // The municipality writes; its verdict and its PubAck travel on the bus meanwhile.
    let referred = refer(&stack).await?;
    assert_eq!(
        referred.status,
        v1::WriteStatus::Accepted as i32,
        "{referred:?}"
    );
    let quiet = Duration::from_secs(1);
    assert!(
        !receives_anything(&mut every_verdict, quiet).await,
        "FK heard another agency's verdict"
    );
    assert!(
        !receives_anything(&mut municipality_verdicts, quiet).await,
        "FK heard the municipality's verdicts"
    );
    assert!(
        !receives_anything(&mut every_inbox, quiet).await,
        "FK heard another agency's replies"
    );
    assert!(
        !receives_anything(&mut municipality_inbox, quiet).await,
        "FK heard the municipality's inbox"
    );

    // Asking about the municipality's event: on the old shared subject and on the
    // municipality's own status subject the server refuses FK (no answer); on FK's own status
    // subject the ledger answers as for an event it never saw.
    let event_id: domain::EventId = domain::EventId::parse(&referred.event_id)?;
    let payload: bytes::Bytes = serde_json::to_vec(&event_id)?.into();
    let fk_with_own_inbox = async_nats::ConnectOptions::new()
        .user_and_password("fk".into(), nats.password("fk"))
        .custom_inbox_prefix(subjects.inbox_prefix(Agency::Forsakringskassan))
        .connect(&nats.url)
        .await?;
    for subject in ["ips.v1.ledger.status", "ips.v1.ledger.status.municipality"] {
        let answer =
            tokio::time::timeout(quiet, fk_with_own_inbox.request(subject, payload.clone())).await;
        assert!(
            !matches!(answer, Ok(Ok(_))),
            "FK was answered on {subject}: {answer:?}"
        );
    }
    let answer = bus::verdicts::look_up(
        &fk_with_own_inbox,
        &subjects,
        Agency::Forsakringskassan,
        event_id,
        Duration::from_secs(3),
    )
    .await
    .ok_or_else(|| anyhow::anyhow!("the ledger did not answer FK about its own status subject"))?;
    assert_eq!(
        answer,
        bus::Verdict::unknown(event_id),
        "FK learnt of another agency's event"
    );

    // Its own events, FK may ask about and hear of: FK writes, then looks its event up.
    let benefit = fk_registers_sjukpenning(&stack, &referred.participant_id).await?;
    let own = bus::verdicts::look_up(
        &fk_with_own_inbox,
        &subjects,
        Agency::Forsakringskassan,
        domain::EventId::parse(&benefit.event_id)?,
        Duration::from_secs(3),
    )
    .await
    .ok_or_else(|| anyhow::anyhow!("no answer about FK's own event"))?;
    assert_eq!(own.status, bus::VerdictStatus::Accepted);
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_answer_goes_only_to_the_asking_agencys_own_inbox() -> anyhow::Result<()> {
    let nats = testkit::NatsWithUsers::start().await?;
    let stack = Stack::start_with(StackOptions {
        nats_with_users: Some(nats.clone()),
        ..StackOptions::default()
    })
    .await?;
    let subjects = bus::Subjects::new("ips.v1");

    // FK records an event of its own, so the ledger has an ACCEPTED verdict to tell about it.
    let referred = refer(&stack).await?;
    let benefit = fk_registers_sjukpenning(&stack, &referred.participant_id).await?;
    let fk_event = domain::EventId::parse(&benefit.event_id)?;

    // A municipality officer's service waits on the verdict of one of its events (and on its
    // inbox); FK, holding its own credentials, asks about its own event on its own status
    // subject with the reply subject set to where the municipality is listening.
    let awaited = domain::EventId(uuid::Uuid::now_v7());
    let municipality = nats.connect_as("municipality").await?;
    let fk = nats.connect_as("fk").await?;
    let payload: bytes::Bytes = serde_json::to_vec(&fk_event)?.into();
    let foreign_replies = [
        subjects.verdict(Agency::Municipality, awaited),
        format!("{}.forged", subjects.inbox_prefix(Agency::Municipality)),
    ];
    for reply in foreign_replies {
        let mut listening = municipality.subscribe(reply.clone()).await?;
        municipality.flush().await?;
        fk.publish_with_reply(
            subjects.status_requests(Agency::Forsakringskassan),
            reply.clone(),
            payload.clone(),
        )
        .await?;
        fk.flush().await?;
        assert!(
            !receives_anything(&mut listening, Duration::from_secs(2)).await,
            "the ledger sent FK's status answer to {reply}"
        );
    }

    // Asked properly, into FK's own inbox, the ledger still answers.
    let own = bus::verdicts::look_up(
        &fk,
        &subjects,
        Agency::Forsakringskassan,
        fk_event,
        Duration::from_secs(3),
    )
    .await
    .ok_or_else(|| anyhow::anyhow!("no answer about FK's own event into its own inbox"))?;
    assert_eq!(own.status, bus::VerdictStatus::Accepted);
    stack.stop().await;
    Ok(())
}

/// FK registers full sjukpenning for 90 days from today, accepted: an event of FK's own for
/// the ledger to tell FK (and only FK) about.
async fn fk_registers_sjukpenning(
    stack: &Stack,
    participant_id: &str,
) -> anyhow::Result<v1::WriteResponse> {
    let today = domain::business_date(chrono::Utc::now());
    let benefit = stack
        .forsakringskassan()
        .await?
        .register_benefit(testkit::as_fk_officer(v1::RegisterBenefitRequest {
            write: Some(v1::ParticipantWrite {
                context: None,
                participant_id: participant_id.to_owned(),
            }),
            benefit: v1::BenefitKind::Sjukpenning as i32,
            degree_percent: 100,
            period: Some(v1::Period {
                from: today.to_string(),
                to: (today + chrono::Duration::days(90)).to_string(),
            }),
            employed: false,
        }))
        .await?
        .into_inner();
    assert_eq!(
        benefit.status,
        v1::WriteStatus::Accepted as i32,
        "{benefit:?}"
    );
    Ok(benefit)
}

/// The municipality refers a participant (from psychiatry).
async fn refer(stack: &Stack) -> anyhow::Result<v1::WriteResponse> {
    Ok(stack
        .municipality()
        .await?
        .refer_participant(testkit::as_coach(v1::ReferParticipantRequest {
            source: v1::ReferralSource::Vuxenpsykiatri as i32,
            ..Default::default()
        }))
        .await?
        .into_inner())
}
