//! The green light through the public API: the FK officer sees what waits on FK (oldest first,
//! paged), the coach's watch receives GREEN when FK approves, expired and expiring approvals
//! show as such without any new request, and lead times come from the read model.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use domain::Role;
use proto::v1;
use testkit::{as_coach, Stack};
use tokio_stream::StreamExt;

fn today() -> NaiveDate {
    domain::business_date(Utc::now())
}

fn at(days_from_today: i64) -> String {
    (today() + chrono::Duration::days(days_from_today)).to_string()
}

fn context(days_from_today: i64) -> Option<v1::WriteContext> {
    Some(v1::WriteContext {
        occurred_at: format!("{}T09:00:00Z", at(days_from_today)),
        ..Default::default()
    })
}

fn officer<T>(message: T) -> tonic::Request<T> {
    testkit::as_officer(
        message,
        domain::Agency::Forsakringskassan,
        "fk-officer-4",
        Role::CaseOfficer,
        "fk-lfc-gavleborg",
    )
}

/// A participant enrolled with `coach`, on sjukpenning, with an arbetsträning proposed 21 days
/// ago for a start in a week: FK's gate is open. Returns (participant, activity).
async fn waiting_on_fk(stack: &Stack, coach: &str) -> anyhow::Result<(String, String)> {
    waiting_on_fk_since(stack, coach, 0).await
}

/// As [`waiting_on_fk`], with every day `shift` days away (earlier when negative): the
/// proposal is made 21 days before day `shift`.
async fn waiting_on_fk_since(
    stack: &Stack,
    coach: &str,
    shift: i64,
) -> anyhow::Result<(String, String)> {
    let (participant_id, _) = stack
        .enrolled_participant(coach, context(shift - 30))
        .await?;
    let mut municipality = stack.municipality().await?;
    let mut fk = stack.forsakringskassan().await?;
    // The coach sees FK's gates only under the participant's consent FK → IPS unit, and FK
    // sees the IPS unit's requests only under consent IPS unit → FK.
    grant_fk_consent_since(stack, &participant_id, true, shift).await?;
    grant_other_deciders_consent_since(stack, &participant_id, shift).await?;
    let write = |days: i64| {
        Some(v1::ParticipantWrite {
            context: context(shift + days),
            participant_id: participant_id.clone(),
        })
    };
    let benefit = v1::RegisterBenefitRequest {
        write: write(-30),
        benefit: v1::BenefitKind::Sjukpenning as i32,
        degree_percent: 100,
        period: Some(v1::Period {
            from: at(shift - 60),
            to: at(300),
        }),
        employed: false,
    };
    fk.register_benefit(officer(benefit)).await?;
    let proposal = v1::ProposeActivityRequest {
        write: write(-21),
        kind: v1::ActivityKind::Arbetstraning as i32,
        employer: "Hudiksvalls bageri".into(),
        hours_per_week: 20,
        planned_start: at(shift + 7),
        ..Default::default()
    };
    let activity_id = municipality
        .propose_activity(as_coach(proposal))
        .await?
        .into_inner()
        .created_id;
    Ok((participant_id, activity_id))
}

/// The participant's consents FK → IPS unit (benefit decisions) and, when `both_ways`, IPS
/// unit → FK (activities and work).
async fn grant_fk_consent(
    stack: &Stack,
    participant_id: &str,
    both_ways: bool,
) -> anyhow::Result<()> {
    grant_fk_consent_since(stack, participant_id, both_ways, 0).await
}

/// As [`grant_fk_consent`], granted and in force from `shift - 30` days.
async fn grant_fk_consent_since(
    stack: &Stack,
    participant_id: &str,
    both_ways: bool,
    shift: i64,
) -> anyhow::Result<()> {
    let mut municipality = stack.municipality().await?;
    let mut directions = vec![(
        v1::ConsentParty::Forsakringskassan,
        v1::ConsentParty::IpsUnit,
        v1::DataCategory::BenefitDecisions,
    )];
    if both_ways {
        directions.push((
            v1::ConsentParty::IpsUnit,
            v1::ConsentParty::Forsakringskassan,
            v1::DataCategory::ActivitiesAndWork,
        ));
    }
    for (discloser, recipient, category) in directions {
        municipality
            .grant_consent(as_coach(v1::GrantConsentRequest {
                context: context(shift - 30),
                participant_id: participant_id.to_owned(),
                discloser: discloser as i32,
                recipient: recipient as i32,
                data_categories: vec![category as i32],
                valid_from: at(shift - 30),
                valid_to: at(300),
                ..Default::default()
            }))
            .await?;
    }
    Ok(())
}

/// The participant's consents to the IPS unit from every other agency that decides gates
/// (AF, psychiatry, social services): without them the coach's light is UNKNOWN, because
/// whether those agencies hold a gate is theirs to disclose. Granted and in force from
/// `shift - 30` days.
async fn grant_other_deciders_consent_since(
    stack: &Stack,
    participant_id: &str,
    shift: i64,
) -> anyhow::Result<()> {
    let mut municipality = stack.municipality().await?;
    for (discloser, category) in [
        (
            v1::ConsentParty::Arbetsformedlingen,
            v1::DataCategory::LabourMarket,
        ),
        (v1::ConsentParty::Psychiatry, v1::DataCategory::HealthCoarse),
        (
            v1::ConsentParty::SocialServices,
            v1::DataCategory::SocialAssistanceStatus,
        ),
    ] {
        municipality
            .grant_consent(as_coach(v1::GrantConsentRequest {
                context: context(shift - 30),
                participant_id: participant_id.to_owned(),
                discloser: discloser as i32,
                recipient: v1::ConsentParty::IpsUnit as i32,
                data_categories: vec![category as i32],
                valid_from: at(shift - 30),
                valid_to: at(300),
                ..Default::default()
            }))
            .await?;
    }
    Ok(())
}

/// A stack whose ledger runs on a clock the test moves, with coach-17's training (starting in a
/// week) approved by FK from today through day 10.
async fn approved_through_day_10() -> anyhow::Result<(
    std::sync::Arc<ledger::clock::ManualClock>,
    Stack,
    String,
    String,
)> {
    let clock = std::sync::Arc::new(ledger::clock::ManualClock::new(Utc::now()));
    let stack = Stack::start_with(testkit::StackOptions {
        ledger_clock: clock.clone(),
        ..Default::default()
    })
    .await?;
    let (participant, training) = waiting_on_fk(&stack, "coach-17").await?;
    fk_decides(&stack, &participant, &training, 0, 10).await?;
    Ok((clock, stack, participant, training))
}

async fn fk_decides(
    stack: &Stack,
    participant_id: &str,
    activity_id: &str,
    from: i64,
    to: i64,
) -> anyhow::Result<()> {
    fk_decides_on(stack, participant_id, activity_id, 0, (from, to)).await
}

/// FK approves `activity_id` on day `on` for the days `valid` (all from today).
async fn fk_decides_on(
    stack: &Stack,
    participant_id: &str,
    activity_id: &str,
    on: i64,
    (from, to): (i64, i64),
) -> anyhow::Result<()> {
    let decision = v1::ActivityDecisionRequest {
        write: Some(v1::ParticipantWrite {
            context: context(on),
            participant_id: participant_id.into(),
        }),
        activity_id: activity_id.into(),
        outcome: v1::DecisionOutcome::Approved as i32,
        valid: Some(v1::Period {
            from: at(from),
            to: at(to),
        }),
        reason: "rehabilitation plan".into(),
    };
    stack
        .forsakringskassan()
        .await?
        .decide_activity(officer(decision))
        .await?;
    Ok(())
}

async fn pending_on_fk(
    stack: &Stack,
    page_size: u32,
    page_token: String,
) -> anyhow::Result<v1::PendingApprovalsResponse> {
    let request = v1::PendingApprovalsRequest {
        agency: v1::Agency::Forsakringskassan as i32,
        unit: "hudiksvall-ips".into(),
        page_size,
        page_token,
    };
    Ok(stack
        .green_light_as(domain::Agency::Forsakringskassan)
        .await?
        .pending_approvals(testkit::as_fk_officer(request))
        .await?
        .into_inner())
}

/// Reads pending approvals until `ready` holds (the read model trails the event store).
async fn pending_when(
    stack: &Stack,
    ready: impl Fn(&v1::PendingApprovalsResponse) -> bool,
) -> anyhow::Result<v1::PendingApprovalsResponse> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let pending = pending_on_fk(stack, 1000, String::new()).await?;
        if ready(&pending) || tokio::time::Instant::now() > deadline {
            return Ok(pending);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coach_sees_green_when_fk_approves_and_fk_sees_what_waits_on_it() -> anyhow::Result<()>
{
    let stack = Stack::start().await?;
    let (anna, training) = waiting_on_fk(&stack, "coach-17").await?;
    let (other, other_training) = waiting_on_fk(&stack, "coach-18").await?;

    // What waits on FK, oldest first, 21 days waiting, paged one by one.
    let pending = pending_when(&stack, |pending| pending.approvals.len() == 2).await?;
    assert_eq!(pending.approvals.len(), 2);
    assert!(
        pending
            .approvals
            .iter()
            .all(|approval| approval.gate == "fk_activity_decision" && approval.waiting_days == 21),
        "{pending:?}"
    );
    let first_page = pending_on_fk(&stack, 1, String::new()).await?;
    let second_page = pending_on_fk(&stack, 1, first_page.next_page_token.clone()).await?;
    assert_eq!(first_page.approvals.len() + second_page.approvals.len(), 2);
    assert_ne!(
        first_page.approvals[0].participant_id,
        second_page.approvals[0].participant_id
    );
    assert!(second_page.next_page_token.is_empty());

    // The coach watches; the current state comes first.
    let mut watch = stack
        .green_light()
        .await?
        .watch_green_light(testkit::as_coach(v1::WatchGreenLightRequest {
            coach_person_id: "coach-17".into(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the watch ended"))??;
    assert!(first.initial);
    let light = first
        .activity
        .ok_or_else(|| anyhow::anyhow!("an activity"))?;
    assert_eq!(
        (light.participant_id.as_str(), light.activity_id.as_str()),
        (anna.as_str(), training.as_str())
    );
    assert_eq!(light.light, v1::Light::Waiting as i32);

    // FK approves: the coach's stream turns GREEN.
    fk_decides(&stack, &anna, &training, 0, 90).await?;
    let green = next_update(&mut watch, "GREEN", |activity| {
        activity.light == v1::Light::Green as i32
    })
    .await?;
    assert!(!green.initial);
    let gate = &green
        .activity
        .as_ref()
        .map(|activity| activity.gates.clone())
        .unwrap_or_default()[0];
    assert_eq!(
        (gate.status, gate.expiring),
        (v1::GateStatus::Approved as i32, false)
    );

    // FK no longer has Anna's gate waiting; the other participant's still waits.
    let pending = pending_when(&stack, |pending| pending.approvals.len() == 1).await?;
    assert_eq!(
        pending
            .approvals
            .iter()
            .map(|approval| approval.activity_id.as_str())
            .collect::<Vec<_>>(),
        [other_training.as_str()]
    );

    // Each pushed light and each pending-approvals page was a read of the participants in it,
    // logged under the reader before it was sent; the aggregate lead times log nothing.
    let pushes_logged = tests::reads_by(
        &stack,
        &light.participant_id,
        "coach-17",
        "ips.v1.GreenLightService/WatchGreenLight",
    )
    .await?;
    assert!(
        pushes_logged >= 2,
        "the initial and the GREEN push: {pushes_logged}"
    );
    let mut pages_logged = 0;
    for participant in [&anna, &other] {
        pages_logged += tests::reads_by(
            &stack,
            participant,
            "fk-officer-4",
            "ips.v1.GreenLightService/PendingApprovals",
        )
        .await?;
    }
    assert!(pages_logged > 0, "FK's pending pages are logged");

    // Lead times (requested 21 days ago, decided today) are reported only once the month has
    // ended, and only with enough decisions: see the lead-time tests below.

    // An approval that ended yesterday shows as expired (no request needed), and the light waits;
    // one that ends in 3 days shows as expiring.
    fk_decides(&stack, &other, &other_training, -30, -1).await?;
    let mut other_watch = watch_participant(&stack, &other).await?;
    let expired = next_update(&mut other_watch, "EXPIRED", |activity| {
        activity
            .gates
            .first()
            .is_some_and(|gate| gate.status == v1::GateStatus::Expired as i32)
    })
    .await?
    .activity
    .unwrap_or_default();
    assert_eq!(expired.light, v1::Light::Waiting as i32);
    fk_decides(&stack, &other, &other_training, 0, 10).await?;
    let expiring = next_update(&mut other_watch, "APPROVED", |activity| {
        activity
            .gates
            .first()
            .is_some_and(|gate| gate.status == v1::GateStatus::Approved as i32)
    })
    .await?
    .activity
    .unwrap_or_default();
    assert!(
        !expiring.gates[0].expiring,
        "ten days left is not yet expiring"
    );
    assert_eq!(expiring.light, v1::Light::Green as i32);
    // Three days left: expiring, and no longer covering the planned start (in a week).
    fk_decides(&stack, &other, &other_training, 0, 3).await?;
    let short = next_update(&mut other_watch, "EXPIRING", |activity| {
        activity.gates.first().is_some_and(|gate| gate.expiring)
    })
    .await?
    .activity
    .unwrap_or_default();
    assert_eq!(
        (short.gates[0].status, short.light),
        (v1::GateStatus::Approved as i32, v1::Light::Waiting as i32)
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_with_the_current_state_after_a_ledger_restart() -> anyhow::Result<()> {
    let mut stack = Stack::start().await?;
    let (participant, training) = waiting_on_fk(&stack, "coach-17").await?;
    let request = v1::WatchGreenLightRequest {
        participant_id: participant.clone(),
        ..Default::default()
    };
    let mut watch = stack
        .green_light()
        .await?
        .watch_green_light(testkit::as_coach(request.clone()))
        .await?
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the watch ended"))??;
    assert_eq!(
        first.activity.map(|activity| activity.light),
        Some(v1::Light::Waiting as i32)
    );

    stack.restart_ledger().await?;
    // The old stream ends (or errors) with the ledger; the client reconnects and resumes from the
    // current state, then sees the change that happens after.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(update) = watch.next().await {
            if update.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the old stream must end when its ledger stops"
    );
    let mut resumed = stack
        .green_light()
        .await?
        .watch_green_light(testkit::as_coach(request))
        .await?
        .into_inner();
    let current = tokio::time::timeout(Duration::from_secs(10), resumed.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the watch ended"))??;
    assert!(current.initial);
    assert_eq!(
        current
            .activity
            .as_ref()
            .map(|activity| (activity.activity_id.as_str(), activity.light)),
        Some((training.as_str(), v1::Light::Waiting as i32))
    );
    fk_decides(&stack, &participant, &training, 0, 90).await?;
    next_update(&mut resumed, "GREEN", |activity| {
        activity.light == v1::Light::Green as i32
    })
    .await?;
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_expires_when_the_clock_passes_its_end_without_any_request(
) -> anyhow::Result<()> {
    // Approved from today through day 10, covering the start in a week: GREEN.
    let (clock, stack, participant, _training) = approved_through_day_10().await?;
    let request = v1::WatchGreenLightRequest {
        participant_id: participant.clone(),
        ..Default::default()
    };
    let mut watch = stack
        .green_light()
        .await?
        .watch_green_light(testkit::as_coach(request))
        .await?
        .into_inner();
    let approved = next_update(&mut watch, "APPROVED", |activity| {
        activity
            .gates
            .first()
            .is_some_and(|gate| gate.status == v1::GateStatus::Approved as i32)
    })
    .await?
    .activity
    .unwrap_or_default();
    assert_eq!(
        (approved.light, approved.gates[0].expiring),
        (v1::Light::Green as i32, false)
    );

    // Six days on: within five days of the end, so expiring; nothing was recorded.
    clock.advance(chrono::Duration::days(6));
    let expiring = next_update(&mut watch, "EXPIRING", |activity| {
        activity.gates.first().is_some_and(|gate| gate.expiring)
    })
    .await?
    .activity
    .unwrap_or_default();
    assert_eq!(expiring.gates[0].status, v1::GateStatus::Approved as i32);

    // Past the end: EXPIRED and WAITING, pushed by the ledger's own re-evaluation.
    clock.advance(chrono::Duration::days(5));
    let expired = next_update(&mut watch, "EXPIRED", |activity| {
        activity
            .gates
            .first()
            .is_some_and(|gate| gate.status == v1::GateStatus::Expired as i32)
    })
    .await?
    .activity
    .unwrap_or_default();
    assert_eq!(expired.light, v1::Light::Waiting as i32);
    assert_eq!(
        stack.stored_events(Some("ActivityDecision")).await?,
        1,
        "expiry records nothing: it is a function of time"
    );
    stack.stop().await;
    Ok(())
}

/// The next update (within 10 s) whose activity is `wanted`; `what` names it in the failure.
async fn next_update(
    watch: &mut tonic::Streaming<v1::GreenLightUpdate>,
    what: &str,
    wanted: impl Fn(&v1::ActivityLight) -> bool,
) -> anyhow::Result<v1::GreenLightUpdate> {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(update) = watch.next().await {
            let update = update?;
            if update.activity.as_ref().is_some_and(&wanted) {
                return anyhow::Ok(update);
            }
        }
        anyhow::bail!("the watch ended before {what}")
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_consent_the_coach_sees_fk_s_gate_as_unknown_never_red() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant_id, activity_id) = waiting_on_fk(&stack, "coach-17").await?;
    // The participant withdraws the consent FK → IPS unit.
    withdraw_today(
        &stack,
        &participant_id,
        v1::ConsentParty::Forsakringskassan,
        v1::ConsentParty::IpsUnit,
        v1::DataCategory::BenefitDecisions,
    )
    .await?;
    let mut watch = watch_participant(&stack, &participant_id).await?;
    let unknown = next_update(&mut watch, "UNKNOWN", |activity| {
        activity.activity_id == activity_id && activity.light == v1::Light::Unknown as i32
    })
    .await?;
    let gate = unknown
        .activity
        .as_ref()
        .map(|activity| activity.gates.clone())
        .unwrap_or_default()[0]
        .clone();
    assert_eq!(gate.status, v1::GateStatus::UnknownNoConsent as i32);
    assert!(
        gate.guidance.contains("forsakringskassan → ips_unit"),
        "{}",
        gate.guidance
    );
    assert!(
        gate.requested_on.is_empty(),
        "nothing of FK's state leaks: {gate:?}"
    );
    // FK still sees the request: the consent IPS unit → FK stands.
    let pending = pending_on_fk(&stack, 10, String::new()).await?;
    assert_eq!(pending.approvals.len(), 1);
    stack.stop().await;
    Ok(())
}

/// Access-log rows of one reader and action, per participant.
async fn logged_reads(
    stack: &Stack,
    reader: &str,
    action: &str,
    participants: &[&str],
) -> anyhow::Result<Vec<i64>> {
    let mut counts = Vec::new();
    for participant in participants {
        counts.push(tests::reads_by(stack, participant, reader, action).await?);
    }
    Ok(counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_pending_page_and_each_push_logs_one_entry_per_participant_in_it() -> anyhow::Result<()>
{
    let stack = Stack::start().await?;
    let (first, _) = waiting_on_fk(&stack, "coach-17").await?;
    let (second, _) = waiting_on_fk(&stack, "coach-17").await?;
    let both = [first.as_str(), second.as_str()];
    pending_when(&stack, |pending| pending.approvals.len() == 2).await?;

    let pending_action = "ips.v1.GreenLightService/PendingApprovals";
    let before = logged_reads(&stack, "fk-officer-4", pending_action, &both).await?;
    let page = pending_on_fk(&stack, 10, String::new()).await?;
    assert_eq!(page.approvals.len(), 2);
    let after = logged_reads(&stack, "fk-officer-4", pending_action, &both).await?;
    assert_eq!(
        after,
        vec![before[0] + 1, before[1] + 1],
        "one entry per participant on the page"
    );
    // A page of one holds one participant: one entry, for that participant only.
    let before = after;
    let page = pending_on_fk(&stack, 1, String::new()).await?;
    let on_page = page.approvals[0].participant_id.clone();
    let after = logged_reads(&stack, "fk-officer-4", pending_action, &both).await?;
    let expected: Vec<i64> = both
        .iter()
        .zip(&before)
        .map(|(participant, count)| count + i64::from(*participant == on_page))
        .collect();
    assert_eq!(after, expected);

    // The initial push of a watch on the first participant is one read of the first only, and
    // nothing more is logged while nothing changes.
    let watch_action = "ips.v1.GreenLightService/WatchGreenLight";
    let mut watch = watch_participant(&stack, &first).await?;
    next_update(&mut watch, "the initial state", |_| true).await?;
    assert_eq!(
        logged_reads(&stack, "coach-17", watch_action, &both).await?,
        vec![1, 0]
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        logged_reads(&stack, "coach-17", watch_action, &both).await?,
        vec![1, 0]
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fk_sees_a_request_only_under_consent_and_the_coach_is_told_when_it_cannot(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant_id, activity_id) = waiting_on_fk(&stack, "coach-17").await?;
    pending_when(&stack, |pending| pending.approvals.len() == 1).await?;
    // The participant withdraws the consent IPS unit → FK: FK no longer sees the request...
    withdraw_today(
        &stack,
        &participant_id,
        v1::ConsentParty::IpsUnit,
        v1::ConsentParty::Forsakringskassan,
        v1::DataCategory::ActivitiesAndWork,
    )
    .await?;
    pending_when(&stack, |pending| pending.approvals.is_empty()).await?;
    // ...and the coach, who still sees the gate waiting, is told why it will not move.
    let mut watch = watch_participant(&stack, &participant_id).await?;
    let update = next_update(&mut watch, "the waiting gate", |activity| {
        activity.activity_id == activity_id
    })
    .await?;
    let gate = update
        .activity
        .as_ref()
        .map(|activity| activity.gates.clone())
        .unwrap_or_default()[0]
        .clone();
    assert_eq!(gate.status, v1::GateStatus::Requested as i32);
    assert!(
        gate.guidance
            .contains("forsakringskassan cannot see this request"),
        "{}",
        gate.guidance
    );
    stack.stop().await;
    Ok(())
}

/// The participant withdraws, from today, the consent `discloser` → `recipient` for `category`.
async fn withdraw_today(
    stack: &Stack,
    participant_id: &str,
    discloser: v1::ConsentParty,
    recipient: v1::ConsentParty,
    category: v1::DataCategory,
) -> anyhow::Result<()> {
    stack
        .municipality()
        .await?
        .withdraw_consent(as_coach(v1::WithdrawConsentRequest {
            participant_id: participant_id.to_owned(),
            discloser: discloser as i32,
            recipient: recipient as i32,
            data_categories: vec![category as i32],
            effective_from: at(0),
            ..Default::default()
        }))
        .await?;
    Ok(())
}

/// The coach's watch on one participant.
async fn watch_participant(
    stack: &Stack,
    participant_id: &str,
) -> anyhow::Result<tonic::Streaming<v1::GreenLightUpdate>> {
    Ok(stack
        .green_light()
        .await?
        .watch_green_light(testkit::as_coach(v1::WatchGreenLightRequest {
            participant_id: participant_id.to_owned(),
            ..Default::default()
        }))
        .await?
        .into_inner())
}

/// What an FK gate looks like at FK, for a participant proposed for an arbetsträning with no
/// consent at all: a benefit (which decides the kind of FK gate), or psychiatry's report that
/// the participant is temporarily unavailable (so there is a gate, but none at FK).
#[derive(Clone, Copy)]
enum HeldElsewhere {
    Benefit(v1::BenefitKind),
    UnavailableAtPsychiatry,
    Nothing,
}

/// A participant enrolled with coach-17 without any consent, with `held` recorded by its
/// agency and an arbetsträning proposed for a start in a week. Returns (participant, activity).
async fn proposed_without_consent(
    stack: &Stack,
    held: HeldElsewhere,
) -> anyhow::Result<(String, String)> {
    let (participant_id, _) = stack.enrolled_participant("coach-17", context(-30)).await?;
    let mut municipality = stack.municipality().await?;
    let write = |days| {
        Some(v1::ParticipantWrite {
            context: context(days),
            participant_id: participant_id.clone(),
        })
    };
    match held {
        HeldElsewhere::Benefit(benefit) => {
            let mut fk = stack.forsakringskassan().await?;
            fk.register_benefit(officer(v1::RegisterBenefitRequest {
                write: write(-30),
                benefit: benefit as i32,
                degree_percent: 100,
                period: Some(v1::Period {
                    from: at(-60),
                    to: at(300),
                }),
                employed: false,
            }))
            .await?;
        }
        HeldElsewhere::UnavailableAtPsychiatry => {
            let mut psychiatry = stack.psychiatry().await?;
            psychiatry
                .change_availability(testkit::as_officer(
                    v1::ChangeAvailabilityRequest {
                        write: write(-25),
                        availability: v1::Availability::TemporarilyUnavailable as i32,
                        from: at(-25),
                    },
                    domain::Agency::Psychiatry,
                    "psykiatri-4",
                    Role::CaseOfficer,
                    "vuxenpsykiatrin-hudiksvall",
                ))
                .await?;
        }
        HeldElsewhere::Nothing => {}
    }
    let activity_id = municipality
        .propose_activity(as_coach(v1::ProposeActivityRequest {
            write: write(-21),
            kind: v1::ActivityKind::Arbetstraning as i32,
            employer: "Hudiksvalls bageri".into(),
            hours_per_week: 20,
            planned_start: at(7),
            ..Default::default()
        }))
        .await?
        .into_inner()
        .created_id;
    Ok((participant_id, activity_id))
}

/// The coach's first view of an activity, without the ids and dates that differ by nature.
async fn coach_view_of(
    stack: &Stack,
    participant_id: &str,
    activity_id: &str,
) -> anyhow::Result<(i32, Vec<v1::GateState>)> {
    let mut watch = watch_participant(stack, participant_id).await?;
    let update = next_update(&mut watch, "the proposed activity", |activity| {
        activity.activity_id == activity_id
    })
    .await?;
    let activity = update
        .activity
        .ok_or_else(|| anyhow::anyhow!("no activity in the update"))?;
    Ok((activity.light, activity.gates))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_consent_the_coach_sees_the_same_gates_whatever_fk_or_psychiatry_hold_or_not(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut views = Vec::new();
    for held in [
        HeldElsewhere::Benefit(v1::BenefitKind::Sjukpenning),
        HeldElsewhere::Benefit(v1::BenefitKind::Aktivitetsersattning),
        HeldElsewhere::UnavailableAtPsychiatry,
        HeldElsewhere::Nothing,
    ] {
        let (participant_id, activity_id) = proposed_without_consent(&stack, held).await?;
        views.push(coach_view_of(&stack, &participant_id, &activity_id).await?);
    }
    // Sjukpenning opens fk_activity_decision, aktivitetsersättning fk_activity_agreement, and
    // an admission psychiatry_availability: without consent the coach sees none of that.
    assert_eq!(
        views[0], views[1],
        "the kind of FK gate shows which benefit FK pays"
    );
    assert_eq!(
        views[0], views[2],
        "whether FK or psychiatry holds the gate shows"
    );
    assert_eq!(views[0], views[3], "whether any agency holds a gate shows");
    let (light, gates) = &views[0];
    assert_eq!(*light, v1::Light::Unknown as i32);
    for gate in gates {
        assert_eq!(
            gate.status,
            v1::GateStatus::UnknownNoConsent as i32,
            "{gate:?}"
        );
        assert!(
            !gate.gate.contains("fk_") && !gate.gate.contains("psychiatry_availability"),
            "{gate:?}"
        );
    }
    // The guidance names both directions: the agency's consent to the IPS unit, so the coach
    // sees the gate, and the IPS unit's to the agency, so the agency sees the request.
    let fk_line = gates
        .iter()
        .find(|gate| gate.gate == "forsakringskassan")
        .ok_or_else(|| anyhow::anyhow!("no FK line: {gates:?}"))?;
    assert!(
        fk_line.guidance.contains("forsakringskassan → ips_unit"),
        "{}",
        fk_line.guidance
    );
    assert!(
        fk_line.guidance.contains("ips_unit → forsakringskassan"),
        "{}",
        fk_line.guidance
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_start_names_only_the_gates_its_submitter_may_see() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant_id, activity_id) =
        proposed_without_consent(&stack, HeldElsewhere::Benefit(v1::BenefitKind::Sjukpenning))
            .await?;
    let mut municipality = stack.municipality().await?;
    let start = |request_id: &str| v1::ActivityDateRequest {
        write: Some(v1::ParticipantWrite {
            context: Some(v1::WriteContext {
                occurred_at: format!("{}T09:00:00Z", at(0)),
                request_id: request_id.to_owned(),
                ..Default::default()
            }),
            participant_id: participant_id.clone(),
        }),
        activity_id: activity_id.clone(),
        date: at(0),
    };
    // Without consent FK → IPS unit: refused, without naming FK's gate, on the write path and
    // when the coach looks the refusal up.
    let refused = municipality
        .start_activity(as_coach(start("start-1")))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a start before FK's decision was accepted"))?;
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(
        !refused.message().contains("fk_activity_decision"),
        "{}",
        refused.message()
    );
    assert!(
        refused.message().contains("not shown without consent"),
        "{}",
        refused.message()
    );
    // The timeline is a read model: it shows the rejection once the projector has it.
    let rejection = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let timeline = stack
                .timeline()
                .await?
                .get_timeline(as_coach(v1::GetTimelineRequest {
                    participant_id: participant_id.clone(),
                    ..Default::default()
                }))
                .await?
                .into_inner();
            if let Some(entry) = timeline
                .entries
                .into_iter()
                .find(|entry| entry.event_type == "SubmissionRejected")
            {
                return anyhow::Ok(entry);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await??;
    assert!(
        !rejection.body_json.contains("fk_activity_decision"),
        "{}",
        rejection.body_json
    );
    let status = stack
        .timeline()
        .await?
        .get_event_status(as_coach(v1::GetEventStatusRequest {
            event_id: rejection.event_id.clone(),
        }))
        .await?
        .into_inner();
    assert_eq!(status.rejected_rule, "gate_not_green");
    assert!(
        !status.rejected_reason.contains("fk_activity_decision"),
        "{}",
        status.rejected_reason
    );
    // With consent FK → IPS unit, the same refusal names FK's gate.
    grant_fk_consent(&stack, &participant_id, false).await?;
    let refused = municipality
        .start_activity(as_coach(start("start-2")))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a start before FK's decision was accepted"))?;
    assert!(
        refused.message().contains("fk_activity_decision"),
        "{}",
        refused.message()
    );
    stack.stop().await;
    Ok(())
}

/// The next update that removes `activity_id` from the board.
async fn next_removal(
    watch: &mut tonic::Streaming<v1::GreenLightUpdate>,
    what: &str,
    activity_id: &str,
) -> anyhow::Result<v1::GreenLightUpdate> {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(update) = watch.next().await {
            let update = update?;
            if update.removed
                && update
                    .activity
                    .as_ref()
                    .is_some_and(|activity| activity.activity_id == activity_id)
            {
                return anyhow::Ok(update);
            }
        }
        anyhow::bail!("the watch ended before {what}")
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_pushes_what_leaves_the_board_and_flags_an_approval_that_expires_while_running(
) -> anyhow::Result<()> {
    // FK approves from today through day 10.
    let (clock, stack, participant, training) = approved_through_day_10().await?;
    let mut watch = watch_participant(&stack, &participant).await?;
    next_update(&mut watch, "GREEN", |activity| {
        activity.activity_id == training && activity.light == v1::Light::Green as i32
    })
    .await?;
    let mut municipality = stack.municipality().await?;
    let step = |request_id: &str| v1::ActivityDateRequest {
        write: Some(v1::ParticipantWrite {
            context: Some(v1::WriteContext {
                request_id: request_id.to_owned(),
                ..context(0).unwrap_or_default()
            }),
            participant_id: participant.clone(),
        }),
        activity_id: training.clone(),
        date: at(0),
    };
    // Started today: it leaves the board, and the open watch is told without reconnecting.
    municipality.start_activity(as_coach(step("start"))).await?;
    let removal = next_removal(&mut watch, "the start's removal", &training).await?;
    assert_eq!(
        removal.activity.map(|activity| activity.gates.len()),
        Some(0),
        "a removal names the activity, nothing more"
    );
    // Listed for renewal with the day the approval ends, not as a request still waiting.
    let fk_lists_it = |pending: &v1::PendingApprovalsResponse| {
        pending.approvals.iter().any(|approval| {
            approval.activity_id == training
                && approval.running
                && approval.valid_to == at(10)
                && approval.waiting_days == 0
        })
    };
    assert!(!fk_lists_it(
        &pending_on_fk(&stack, 10, String::new()).await?
    ));

    // Six days on, FK's approval ends within five days while the training runs: back on the
    // coach's board, flagged as running, and on FK's list, with nothing recorded.
    clock.advance(chrono::Duration::days(6));
    let expiring = next_update(
        &mut watch,
        "the running activity's expiring approval",
        |activity| activity.activity_id == training && activity.running,
    )
    .await?
    .activity
    .unwrap_or_default();
    assert!(
        expiring
            .gates
            .iter()
            .any(|gate| gate.gate == "fk_activity_decision" && gate.expiring),
        "{expiring:?}"
    );
    assert!(fk_lists_it(
        &pending_on_fk(&stack, 10, String::new()).await?
    ));

    // Past its end: EXPIRED on the board and still on FK's list.
    clock.advance(chrono::Duration::days(5));
    let expired = next_update(
        &mut watch,
        "the running activity's expired approval",
        |activity| {
            activity.activity_id == training
                && activity.running
                && activity
                    .gates
                    .iter()
                    .any(|gate| gate.status == v1::GateStatus::Expired as i32)
        },
    )
    .await?
    .activity
    .unwrap_or_default();
    assert_eq!(expired.light, v1::Light::Waiting as i32);
    assert!(fk_lists_it(
        &pending_on_fk(&stack, 10, String::new()).await?
    ));

    // The training ends: it leaves the board again, and FK's list.
    municipality.end_activity(as_coach(step("end"))).await?;
    next_removal(&mut watch, "the end's removal", &training).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fk_lists_it(&pending_on_fk(&stack, 10, String::new()).await?) {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "FK still lists an ended activity"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stack.stored_events(Some("ActivityDecision")).await?, 1);
    stack.stop().await;
    Ok(())
}

/// Hole A of the pending list: FK pages one request at a time through requests of participants
/// who never consented IPS unit → FK. Only the one FK may see is shown, and no page token
/// names anyone else (a token is plain text: it would hand out their ids and request dates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fk_pages_only_through_requests_it_may_see_and_no_token_names_a_hidden_one(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut hidden = Vec::new();
    for _ in 0..2 {
        let (participant_id, _) =
            proposed_without_consent(&stack, HeldElsewhere::Benefit(v1::BenefitKind::Sjukpenning))
                .await?;
        hidden.push(participant_id);
    }
    // Recorded last, so once its request is listed the hidden ones are projected too.
    let (seen, training) = waiting_on_fk(&stack, "coach-17").await?;
    pending_when(&stack, |pending| pending.approvals.len() == 1).await?;

    let mut shown = Vec::new();
    let mut token = String::new();
    for _ in 0..=hidden.len() + 1 {
        let page = pending_on_fk(&stack, 1, token.clone()).await?;
        for participant_id in &hidden {
            anyhow::ensure!(
                !page.next_page_token.contains(participant_id.as_str()),
                "a page token names {participant_id}, whom FK may not see: {page:?}"
            );
        }
        shown.extend(page.approvals.iter().map(|approval| {
            (
                approval.participant_id.clone(),
                approval.activity_id.clone(),
            )
        }));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert!(token.is_empty(), "the walk ends");
    assert_eq!(shown, [(seen, training)]);
    stack.stop().await;
    Ok(())
}

/// Every update of `watch` up to and including the first whose activity is `wanted` (within
/// 10 s), then whatever follows within a second (the rest of that push).
async fn updates_through(
    watch: &mut tonic::Streaming<v1::GreenLightUpdate>,
    what: &str,
    wanted: impl Fn(&v1::GreenLightUpdate) -> bool,
) -> anyhow::Result<Vec<v1::GreenLightUpdate>> {
    let mut updates = tokio::time::timeout(Duration::from_secs(10), async {
        let mut updates = Vec::new();
        while let Some(update) = watch.next().await {
            let update = update?;
            let found = wanted(&update);
            updates.push(update);
            if found {
                return anyhow::Ok(updates);
            }
        }
        anyhow::bail!("the watch ended before {what}")
    })
    .await??;
    while let Ok(Some(update)) = tokio::time::timeout(Duration::from_secs(1), watch.next()).await {
        updates.push(update?);
    }
    Ok(updates)
}

/// Hole B of the board: a running activity comes back on the coach's board while an approval
/// it runs on expires (as in
/// `the_watch_pushes_what_leaves_the_board_and_flags_an_approval_that_expires_while_running`),
/// but only for an approval the coach may see. With consent FK → IPS unit withdrawn after the
/// start, FK's expiring approval must not bring it back: that alone would tell the coach FK
/// holds a gate and when it ends. The same coach's other participant, still consenting, is the
/// control: it comes back in the same push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_activity_does_not_come_back_for_an_approval_the_coach_may_not_see(
) -> anyhow::Result<()> {
    let clock = std::sync::Arc::new(ledger::clock::ManualClock::new(Utc::now()));
    let stack = Stack::start_with(testkit::StackOptions {
        ledger_clock: clock.clone(),
        ..Default::default()
    })
    .await?;
    let (withdrawn, hidden_training) = waiting_on_fk(&stack, "coach-17").await?;
    let (consenting, seen_training) = waiting_on_fk(&stack, "coach-17").await?;
    let mut watch = stack
        .green_light()
        .await?
        .watch_green_light(as_coach(v1::WatchGreenLightRequest {
            coach_person_id: "coach-17".into(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let mut municipality = stack.municipality().await?;
    for (number, (participant_id, training)) in [
        (&withdrawn, &hidden_training),
        (&consenting, &seen_training),
    ]
    .into_iter()
    .enumerate()
    {
        // FK approves from today through day 10, and the training starts today.
        fk_decides(&stack, participant_id, training, 0, 10).await?;
        municipality
            .start_activity(as_coach(v1::ActivityDateRequest {
                write: Some(v1::ParticipantWrite {
                    context: Some(v1::WriteContext {
                        request_id: format!("start-{number}"),
                        ..context(0).unwrap_or_default()
                    }),
                    participant_id: participant_id.clone(),
                }),
                activity_id: training.clone(),
                date: at(0),
            }))
            .await?;
        next_removal(&mut watch, "the start's removal", training).await?;
    }
    withdraw_today(
        &stack,
        &withdrawn,
        v1::ConsentParty::Forsakringskassan,
        v1::ConsentParty::IpsUnit,
        v1::DataCategory::BenefitDecisions,
    )
    .await?;

    // Six days on, both approvals end within five days while the trainings run.
    clock.advance(chrono::Duration::days(6));
    let pushed = updates_through(
        &mut watch,
        "the consenting participant's expiring approval",
        |update| {
            update.activity.as_ref().is_some_and(|activity| {
                activity.activity_id == seen_training
                    && activity.running
                    && activity
                        .gates
                        .iter()
                        .any(|gate| gate.gate == "fk_activity_decision" && gate.expiring)
            })
        },
    )
    .await?;
    let leaked: Vec<&v1::GreenLightUpdate> = pushed
        .iter()
        .filter(|update| {
            update
                .activity
                .as_ref()
                .is_some_and(|activity| activity.activity_id == hidden_training)
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "without consent FK → IPS unit, FK's expiring approval brought the activity back: {leaked:?}"
    );
    // FK still sees both renewals due: its own gates, under consent IPS unit → FK.
    let fk_lists = pending_on_fk(&stack, 10, String::new()).await?;
    for training in [&hidden_training, &seen_training] {
        assert!(
            fk_lists
                .approvals
                .iter()
                .any(|approval| approval.activity_id == *training && approval.running),
            "{fk_lists:?}"
        );
    }
    stack.stop().await;
    Ok(())
}

/// The gate rows are a read model, rewritten by the projector. Whether a gate counts as
/// approved is decided from its stored decision, so a decision the projector never writes must
/// be reported (`DATA_LOSS`, `stored_history_unreadable`), never read as an approval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_gate_decision_that_is_no_decision_is_reported_never_read_as_approved(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant, _training) = waiting_on_fk(&stack, "coach-17").await?;
    let mut watch = watch_participant(&stack, &participant).await?;
    let first = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the watch ended"))??;
    assert_eq!(
        first.activity.map(|activity| activity.light),
        Some(v1::Light::Waiting as i32)
    );
    drop(watch);

    let pool = stack.database.pool().await?;
    sqlx::query(
        "UPDATE green_light_gates SET decision = 'approved_by_nobody', decided_on = $2::date,
             valid_from = $2::date, valid_to = $3::date
         WHERE participant_id = $1::uuid",
    )
    .bind(&participant)
    .bind(at(-1))
    .bind(at(300))
    .execute(&pool)
    .await?;
    let answer = match stack
        .green_light()
        .await?
        .watch_green_light(as_coach(v1::WatchGreenLightRequest {
            participant_id: participant.clone(),
            ..Default::default()
        }))
        .await
    {
        Err(status) => Err(status),
        Ok(response) => {
            let mut watch = response.into_inner();
            tokio::time::timeout(Duration::from_secs(10), watch.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("the watch ended"))?
        }
    };
    let refused = answer
        .err()
        .ok_or_else(|| anyhow::anyhow!("a gate whose decision is no decision was read"))?;
    assert_eq!(refused.code(), tonic::Code::DataLoss, "{refused:?}");
    assert_eq!(
        refused
            .metadata()
            .get("ips-rule")
            .and_then(|value| value.to_str().ok()),
        Some("stored_history_unreadable"),
        "{refused:?}"
    );
    assert!(
        refused.message().contains("approved_by_nobody"),
        "{refused:?}"
    );
    pool.close().await;
    stack.stop().await;
    Ok(())
}

/// Attacker's path: the IPS unit shares activities with FK, not the participant's vocational
/// profile. A gate that exists only because the participant told the coach about a benefit must
/// not tell FK about that statement through what FK reads of the activity: the proposal, or the
/// coach's start refused on that gate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fk_s_timeline_does_not_reveal_a_self_reported_benefit_without_consent(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let participant_id = municipality
        .refer_participant(as_coach(v1::ReferParticipantRequest {
            context: context(-30),
            source: v1::ReferralSource::Vuxenpsykiatri as i32,
            ..Default::default()
        }))
        .await?
        .into_inner()
        .participant_id;
    municipality
        .enroll_participant(as_coach(v1::EnrollParticipantRequest {
            context: context(-30),
            participant_id: participant_id.clone(),
            unit: "hudiksvall-ips".into(),
            coach_person_id: "coach-17".into(),
        }))
        .await?;
    grant_fk_consent(&stack, &participant_id, true).await?;
    let write = |days| {
        Some(v1::ParticipantWrite {
            context: context(days),
            participant_id: participant_id.clone(),
        })
    };
    municipality
        .record_benefit_self_report(as_coach(v1::RecordBenefitSelfReportRequest {
            write: write(-25),
            benefit: v1::BenefitKind::Sjukpenning as i32,
            said_on: at(-25),
        }))
        .await?;
    let proposed = municipality
        .propose_activity(as_coach(v1::ProposeActivityRequest {
            write: write(-21),
            kind: v1::ActivityKind::Arbetstraning as i32,
            employer: "Hudiksvalls bageri".into(),
            hours_per_week: 20,
            planned_start: at(7),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let activity_id = proposed.created_id;

    // The coach's watch shows the statement's gate (the premise of the test).
    let mut coach_watch = watch_participant(&stack, &participant_id).await?;
    let coach_sees = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(update) = coach_watch.next().await {
            if let Some(light) = update?.activity {
                if light.activity_id == activity_id {
                    return anyhow::Ok(light);
                }
            }
        }
        anyhow::bail!("the coach's watch ended")
    })
    .await??;
    assert!(
        coach_sees
            .gates
            .iter()
            .any(|gate| gate.status() == v1::GateStatus::UnknownSelfReported),
        "{coach_sees:?}"
    );

    // FK cannot watch a participant at all (`role_not_allowed`, tests/access.rs); what reaches it
    // is its timeline under the activities consent: the proposal, and the coach's refused start.
    let refused = municipality
        .start_activity(as_coach(v1::ActivityDateRequest {
            write: write(0),
            activity_id: activity_id.clone(),
            date: at(0),
        }))
        .await;
    assert!(refused.is_err(), "the start waits on the statement's gate");
    let fk_timeline = stack
        .timeline_as(domain::Agency::Forsakringskassan)
        .await?
        .get_timeline(officer(v1::GetTimelineRequest {
            participant_id: participant_id.clone(),
            page_size: 100,
            // The refused start is the entry after the proposal: read once it is projected.
            min_sequence: proposed.sequence + 1,
            ..Default::default()
        }))
        .await?
        .into_inner();
    for premise in ["ActivityProposed", "SubmissionRejected"] {
        assert!(
            fk_timeline
                .entries
                .iter()
                .any(|entry| entry.event_type == premise),
            "FK sees {premise} (the premise): {:?}",
            fk_timeline.entries
        );
    }
    for entry in &fk_timeline.entries {
        assert_ne!(entry.event_type, "BenefitSelfReported", "{entry:?}");
        for text in [&entry.body_json, &entry.rejected_rule] {
            assert!(
                !text.contains("self-reported") && !text.contains("says they have"),
                "{entry:?}"
            );
        }
    }
    stack.stop().await;
    Ok(())
}

/// The re-poll of the second ledger's projector in the test below: far longer than the push
/// may take, so only a notification can bring the decision in time.
const LONG_REPOLL_MS: u64 = 30_000;

/// Issue 14: a decision committed by another ledger process on the same database reaches a
/// watch on this one through PostgreSQL's notifications (the events table's trigger, the
/// projectors' own), not through this ledger's re-poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_committed_by_another_ledger_is_pushed_without_waiting_for_the_re_poll(
) -> anyhow::Result<()> {
    // The stack's ledger applies and commits every write.
    let stack = Stack::start().await?;
    let (participant, training) = waiting_on_fk(&stack, "coach-17").await?;
    // A second ledger on the same database, on a stream nobody publishes to: it commits
    // nothing, and its projector re-polls only every 30 s.
    let quiet_bus = testkit::unique_bus_config();
    let mut config = testkit::ledger_config(&stack.database, &quiet_bus);
    config.projector.repoll_interval_ms = LONG_REPOLL_MS;
    let (shutdown, receiver) = tokio::sync::watch::channel(false);
    let watched_ledger = ledger::start(
        config,
        std::sync::Arc::new(ledger::clock::SystemClock),
        receiver,
    )
    .await?;
    let mut green_light = v1::green_light_service_client::GreenLightServiceClient::new(
        testkit::channel_as(watched_ledger.grpc_address, domain::Agency::Municipality).await?,
    );
    let mut watch = green_light
        .watch_green_light(as_coach(v1::WatchGreenLightRequest {
            participant_id: participant.clone(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    // The board before any decision: the initial message, or (when the proposal was projected
    // only after the watch's first read) the first change.
    next_update(&mut watch, "WAITING", |activity| {
        activity.activity_id == training && activity.light == v1::Light::Waiting as i32
    })
    .await?;

    let decided = std::time::Instant::now();
    fk_decides(&stack, &participant, &training, 0, 90).await?;
    let green = next_update(&mut watch, "GREEN", |activity| {
        activity.light == v1::Light::Green as i32
    })
    .await?;
    let took = decided.elapsed();
    assert!(
        !green.initial,
        "the decision is a change, not the initial board"
    );
    // A bound on correctness, not a speed figure: well inside the 30 s re-poll, so the
    // notification path carried it.
    assert!(
        took < Duration::from_secs(5),
        "the push took {took:?}: the other ledger's commit did not wake this one"
    );
    let _ = shutdown.send(true);
    watched_ledger.wait().await;
    testkit::delete_streams(&quiet_bus).await;
    stack.stop().await;
    Ok(())
}

/// Issue 14: a time-driven change is pushed at the instant it falls due, with no event: the
/// approval turns "expiring" (D-5) the moment the ledger's clock passes Stockholm midnight,
/// and nothing is pushed while the day has not turned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_turns_expiring_when_the_clock_crosses_midnight_into_d_minus_5(
) -> anyhow::Result<()> {
    // Approved through day 10: expiring from day 5.
    let (clock, stack, participant, _training) = approved_through_day_10().await?;
    let mut watch = watch_participant(&stack, &participant).await?;
    let approved = next_update(&mut watch, "APPROVED", |activity| {
        activity
            .gates
            .first()
            .is_some_and(|gate| gate.status == v1::GateStatus::Approved as i32)
    })
    .await?
    .activity
    .unwrap_or_default();
    assert!(!approved.gates[0].expiring);

    // The last second of day 4: still not expiring, so nothing changes and nothing is pushed.
    let day_five_begins =
        ledger::clock::next_business_day_start(today() + chrono::Duration::days(4));
    clock.set(day_five_begins - chrono::Duration::seconds(1));
    let quiet = tokio::time::timeout(Duration::from_millis(500), watch.next()).await;
    assert!(
        quiet.is_err(),
        "nothing changed before midnight, yet the watch pushed {quiet:?}"
    );
    // Two seconds on: day 5, expiring, pushed though nothing was recorded.
    clock.advance(chrono::Duration::seconds(2));
    let expiring = next_update(&mut watch, "EXPIRING", |activity| {
        activity.gates.first().is_some_and(|gate| gate.expiring)
    })
    .await?;
    assert!(!expiring.initial);
    assert_eq!(
        stack.stored_events(Some("ActivityDecision")).await?,
        1,
        "turning expiring records nothing: it is a function of time"
    );
    stack.stop().await;
    Ok(())
}

/// Days from today to the first day of next month.
fn days_to_next_month() -> i64 {
    use chrono::Datelike;
    let first = |day: NaiveDate| day.with_day(1).unwrap_or(day);
    let next_month = first(first(today()) + chrono::Duration::days(32));
    (next_month - today()).num_days()
}

/// Moves the ledger's clock into next month, so this month has ended. Half a day more, so a
/// daylight-saving change on the way cannot leave it on this month's last day.
fn into_next_month(clock: &ledger::clock::ManualClock) {
    clock.advance(chrono::Duration::days(days_to_next_month()) + chrono::Duration::hours(12));
}

/// A stack whose ledger runs on a clock the test moves (the agency services on the system's).
async fn stack_on_manual_clock(
) -> anyhow::Result<(std::sync::Arc<ledger::clock::ManualClock>, Stack)> {
    let clock = std::sync::Arc::new(ledger::clock::ManualClock::new(Utc::now()));
    let stack = Stack::start_with(testkit::StackOptions {
        ledger_clock: clock.clone(),
        ..Default::default()
    })
    .await?;
    Ok((clock, stack))
}

/// `count` participants of coach-17 waiting on FK, proposed 21 days before day `on`, which FK
/// approves on day `on`; returns once the read model has all decisions (nothing waits on FK).
async fn fk_decided_on(stack: &Stack, count: usize, on: i64) -> anyhow::Result<()> {
    for _ in 0..count {
        let (participant, training) = waiting_on_fk_since(stack, "coach-17", on).await?;
        pending_when(stack, |pending| pending.approvals.len() == 1).await?;
        fk_decides_on(stack, &participant, &training, on, (on, on + 90)).await?;
        let pending = pending_when(stack, |pending| pending.approvals.is_empty()).await?;
        anyhow::ensure!(
            pending.approvals.is_empty(),
            "FK's decision was not projected"
        );
    }
    Ok(())
}

async fn lead_times_over(
    stack: &Stack,
    from: &str,
    to: &str,
) -> Result<v1::GateLeadTimesResponse, tonic::Status> {
    let mut green_light = stack
        .green_light()
        .await
        .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    Ok(green_light
        .gate_lead_times(testkit::as_team_leader(v1::GateLeadTimesRequest {
            from: from.into(),
            to: to.into(),
        }))
        .await?
        .into_inner())
}

/// FK's activity-decision cell, if the report shows its figures.
fn fk_figures(report: &v1::GateLeadTimesResponse) -> Option<(u32, f64, f64)> {
    report
        .lead_times
        .iter()
        .find(|time| time.gate == "fk_activity_decision")
        .map(|time| (time.decisions, time.median_days, time.p90_days))
}

fn fk_withheld(report: &v1::GateLeadTimesResponse) -> bool {
    report.suppressed.iter().any(|time| {
        time.gate == "fk_activity_decision"
            && time.deciding_agency == v1::Agency::Forsakringskassan as i32
            && (time.decisions, time.median_days, time.p90_days) == (0, 0.0, 0.0)
    })
}

/// Reads the report until FK's figures show (the read model trails the decisions).
async fn lead_times_when_shown(
    stack: &Stack,
    from: &str,
    to: &str,
) -> anyhow::Result<v1::GateLeadTimesResponse> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let report = lead_times_over(stack, from, to).await?;
        if fk_figures(&report).is_some() || tokio::time::Instant::now() > deadline {
            return Ok(report);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_leader_gets_no_lead_time_for_one_decision_on_a_day_and_figures_for_five(
) -> anyhow::Result<()> {
    let (clock, stack) = stack_on_manual_clock().await?;
    // One participant's FK gate is decided today, 21 days after the proposal.
    fk_decided_on(&stack, 1, 0).await?;
    into_next_month(&clock);

    // Asked for exactly that day: FK's cell is listed as withheld, with no figure at all.
    let report = lead_times_over(&stack, &at(0), &at(0)).await?;
    assert_eq!(fk_figures(&report), None, "{report:?}");
    assert!(report.lead_times.is_empty(), "{report:?}");
    assert!(fk_withheld(&report), "{report:?}");
    assert_eq!(report.cell_count_min, 5);
    // The day is read as its whole month (DOMAIN lead times are monthly figures).
    let first_of_month = format!("{}01", &at(0)[..8]);
    assert_eq!(
        (report.from.as_str(), report.to.as_str()),
        (
            first_of_month.as_str(),
            at(days_to_next_month() - 1).as_str()
        )
    );
    // Every gate is listed, so a gate never decided looks like one decided once.
    assert_eq!(
        report.suppressed.len(),
        domain::gates::GateKind::ALL.len(),
        "{report:?}"
    );

    // Four more the same day (recorded late, after the month ended): five, and they show.
    fk_decided_on(&stack, 4, 0).await?;
    let report = lead_times_when_shown(&stack, &at(0), &at(0)).await?;
    assert_eq!(fk_figures(&report), Some((5, 21.0, 21.0)), "{report:?}");
    assert!(!fk_withheld(&report), "{report:?}");

    // The running month is not reported: read each evening, it would give each day's count.
    let running = lead_times_over(&stack, &at(days_to_next_month()), &at(days_to_next_month()))
        .await
        .err()
        .map(|status| status.code());
    assert_eq!(running, Some(tonic::Code::InvalidArgument));
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_period_does_not_reveal_a_withheld_month_by_subtraction() -> anyhow::Result<()> {
    let (clock, stack) = stack_on_manual_clock().await?;
    // One decision in an earlier month (45 days ago), five this month.
    fk_decided_on(&stack, 1, -45).await?;
    fk_decided_on(&stack, 5, 0).await?;
    into_next_month(&clock);

    // This month alone: five decisions, shown.
    let this_month = lead_times_when_shown(&stack, &at(0), &at(0)).await?;
    assert_eq!(
        fk_figures(&this_month),
        Some((5, 21.0, 21.0)),
        "{this_month:?}"
    );
    // The earlier month alone: one decision, withheld.
    let earlier = lead_times_over(&stack, &at(-45), &at(-45)).await?;
    assert_eq!(fk_figures(&earlier), None, "{earlier:?}");
    assert!(fk_withheld(&earlier), "{earlier:?}");
    // Both months together hold six, but a count of six next to this month's five would
    // give the earlier month's one by subtraction (and the medians would bracket its lead
    // time): the cell is withheld because one of its months is.
    let both = lead_times_over(&stack, &at(-45), &at(0)).await?;
    assert_eq!(fk_figures(&both), None, "{both:?}");
    assert!(fk_withheld(&both), "{both:?}");
    stack.stop().await;
    Ok(())
}

/// Each open watch holds a task that re-reads its board on every projected batch, so how many
/// one officer may hold open is bounded (`watch.watches_per_caller_max`): the next is
/// RESOURCE_EXHAUSTED naming the limit, another officer is not affected, and a closed watch
/// gives its place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_holds_at_most_the_configured_number_of_watches_open() -> anyhow::Result<()> {
    let stack = Stack::start_with(testkit::StackOptions {
        ledger_watch: Some(ledger::config::WatchConfig {
            watches_max: 10,
            watches_per_caller_max: 2,
        }),
        ..testkit::StackOptions::default()
    })
    .await?;
    let by_coach = || v1::WatchGreenLightRequest {
        coach_person_id: "coach-17".into(),
        ..Default::default()
    };
    let open_as = |person: &'static str| {
        let stack = &stack;
        async move {
            stack
                .green_light()
                .await?
                .watch_green_light(testkit::as_caller(
                    by_coach(),
                    person,
                    Role::Coach,
                    "hudiksvall-ips",
                ))
                .await
                .map(tonic::Response::into_inner)
                .map_err(anyhow::Error::from)
        }
    };
    let first = open_as("coach-17").await?;
    let _second = open_as("coach-17").await?;
    let refused = open_as("coach-17")
        .await
        .err()
        .and_then(|error| error.downcast::<tonic::Status>().ok())
        .ok_or_else(|| anyhow::anyhow!("a third watch by the same coach was opened"))?;
    assert_eq!(
        (
            refused.code(),
            refused
                .metadata()
                .get("ips-rule")
                .and_then(|value| value.to_str().ok())
        ),
        (
            tonic::Code::ResourceExhausted,
            Some("watch.watches_per_caller_max")
        ),
        "{refused:?}"
    );
    // Another officer is not affected.
    let _other = open_as("coach-18").await?;
    // A closed watch gives its place back (once the ledger sees the stream close).
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match open_as("coach-17").await {
            Ok(_reopened) => break,
            Err(error) if tokio::time::Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => return Err(error.context("the closed watch's place never came back")),
        }
    }
    stack.stop().await;
    Ok(())
}
