//! The business day is the Swedish date (issue 10): every rule that asks for a day (a consent in
//! force today, an approval expired or expiring within five days, the default day a consent
//! withdrawal takes effect) turns at midnight in Stockholm, not at 01:00 or 02:00 Swedish time
//! when the UTC date turns. The services read time only from the clock they were started with,
//! so these tests put a manual clock just before and just after Stockholm midnight.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::{Agency, Role};
use proto::v1;
use testkit::{as_coach, Stack, StackOptions};
use tokio_stream::StreamExt;

fn instant(text: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc))
}

/// A stack whose ledger and agency services all read `clock`.
async fn stack_on(clock: &Arc<ledger::clock::ManualClock>) -> anyhow::Result<Stack> {
    Stack::start_with(StackOptions {
        ledger_clock: clock.clone(),
        agency_clock: clock.clone(),
        ..Default::default()
    })
    .await
}

fn fk_officer<T>(message: T) -> tonic::Request<T> {
    testkit::as_officer(
        message,
        Agency::Forsakringskassan,
        "fk-officer-4",
        Role::CaseOfficer,
        "fk-lfc-gavleborg",
    )
}

fn write(participant_id: &str) -> Option<v1::ParticipantWrite> {
    Some(v1::ParticipantWrite {
        context: None,
        participant_id: participant_id.to_owned(),
    })
}

/// A participant referred and enrolled by coach-17.
async fn enrolled(stack: &Stack) -> anyhow::Result<String> {
    Ok(stack.enrolled_participant("coach-17", None).await?.0)
}

async fn grant(
    stack: &Stack,
    participant_id: &str,
    (discloser, recipient, category): (v1::ConsentParty, v1::ConsentParty, v1::DataCategory),
    valid_from: &str,
    valid_to: &str,
) -> anyhow::Result<()> {
    stack
        .municipality()
        .await?
        .grant_consent(as_coach(v1::GrantConsentRequest {
            participant_id: participant_id.to_owned(),
            discloser: discloser as i32,
            recipient: recipient as i32,
            data_categories: vec![category as i32],
            valid_from: valid_from.into(),
            valid_to: valid_to.into(),
            ..Default::default()
        }))
        .await?;
    Ok(())
}

const FK_TO_IPS_UNIT: (v1::ConsentParty, v1::ConsentParty, v1::DataCategory) = (
    v1::ConsentParty::Forsakringskassan,
    v1::ConsentParty::IpsUnit,
    v1::DataCategory::BenefitDecisions,
);

async fn register_sjukpenning(
    stack: &Stack,
    participant_id: &str,
    from: &str,
    to: &str,
) -> anyhow::Result<u64> {
    Ok(stack
        .forsakringskassan()
        .await?
        .register_benefit(fk_officer(v1::RegisterBenefitRequest {
            write: write(participant_id),
            benefit: v1::BenefitKind::Sjukpenning as i32,
            degree_percent: 100,
            period: Some(v1::Period {
                from: from.into(),
                to: to.into(),
            }),
            employed: false,
        }))
        .await?
        .into_inner()
        .sequence)
}

/// The coach's timeline of the participant (once `min_sequence` is projected).
async fn coach_timeline(
    stack: &Stack,
    participant_id: &str,
    min_sequence: u64,
) -> anyhow::Result<Vec<v1::TimelineEntry>> {
    Ok(stack
        .timeline_as(Agency::Municipality)
        .await?
        .get_timeline(as_coach(v1::GetTimelineRequest {
            participant_id: participant_id.to_owned(),
            min_sequence,
            page_size: 1000,
            ..Default::default()
        }))
        .await?
        .into_inner()
        .entries)
}

async fn coach_sees_fk_benefit(
    stack: &Stack,
    participant_id: &str,
    min_sequence: u64,
) -> anyhow::Result<bool> {
    Ok(coach_timeline(stack, participant_id, min_sequence)
        .await?
        .iter()
        .any(|entry| entry.event_type == "BenefitRegistered"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_through_the_last_day_ends_at_stockholm_midnight_in_summer_and_winter(
) -> anyhow::Result<()> {
    // (consent valid_from, valid_to, the last minute of valid_to in Stockholm as UTC, the
    // first minute after it): summer time is UTC+2, winter time UTC+1.
    let cases = [
        (
            "2026-03-01",
            "2026-03-30",
            "2026-03-30T21:30:00Z",
            "2026-03-30T22:30:00Z",
        ),
        (
            "2026-01-01",
            "2026-01-15",
            "2026-01-15T22:30:00Z",
            "2026-01-15T23:30:00Z",
        ),
    ];
    let clock = Arc::new(ledger::clock::ManualClock::new(instant(cases[0].2)?));
    let stack = stack_on(&clock).await?;
    for (valid_from, valid_to, last_evening, after_midnight) in cases {
        clock.set(instant(last_evening)?);
        let participant_id = enrolled(&stack).await?;
        grant(
            &stack,
            &participant_id,
            FK_TO_IPS_UNIT,
            valid_from,
            valid_to,
        )
        .await?;
        let sequence =
            register_sjukpenning(&stack, &participant_id, valid_from, "2026-12-31").await?;
        // 23:30 in Stockholm on the consent's last day: in force, the coach sees FK's decision.
        assert!(
            coach_sees_fk_benefit(&stack, &participant_id, sequence).await?,
            "at {last_evening} the consent through {valid_to} is in force"
        );
        // 00:30 the next day in Stockholm (the UTC date is still {valid_to}): no longer.
        clock.set(instant(after_midnight)?);
        assert!(
            !coach_sees_fk_benefit(&stack, &participant_id, sequence).await?,
            "at {after_midnight} the consent through {valid_to} has ended"
        );
    }
    stack.stop().await;
    Ok(())
}

/// The coach's green light for the participant's one activity, as a fresh watch sends it
/// first, once the gate's decision is projected.
async fn coach_light(stack: &Stack, participant_id: &str) -> anyhow::Result<v1::ActivityLight> {
    let request = v1::WatchGreenLightRequest {
        participant_id: participant_id.to_owned(),
        ..Default::default()
    };
    let mut watch = stack
        .green_light()
        .await?
        .watch_green_light(as_coach(request))
        .await?
        .into_inner();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(update) = watch.next().await {
            let activity = update?.activity.unwrap_or_default();
            if activity
                .gates
                .iter()
                .any(|gate| !gate.decided_on.is_empty())
            {
                return anyhow::Ok(activity);
            }
        }
        anyhow::bail!("the watch ended before the decision was projected")
    })
    .await?
}

/// (gate status, expiring, light) of the activity's only gate.
fn fk_gate(light: &v1::ActivityLight) -> (i32, bool, i32) {
    let gate = light.gates.first().cloned().unwrap_or_default();
    (gate.status, gate.expiring, light.light)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_through_the_30th_expires_and_starts_expiring_at_stockholm_midnight(
) -> anyhow::Result<()> {
    let clock = Arc::new(ledger::clock::ManualClock::new(instant(
        "2026-03-10T09:00:00Z",
    )?));
    let stack = stack_on(&clock).await?;
    let participant_id = enrolled(&stack).await?;
    // The coach sees every deciding agency's gates, and FK sees the request, all year.
    for consent in testkit::CONSENTS_FOR_THE_COACH_S_GREEN_LIGHT
        .into_iter()
        .chain([testkit::CONSENT_FOR_FK_TO_SEE_REQUESTS])
    {
        grant(&stack, &participant_id, consent, "2026-01-01", "2026-12-31").await?;
    }
    // On sjukpenning, an arbetsträning needs FK's approval; FK approves it through 30 March.
    register_sjukpenning(&stack, &participant_id, "2026-01-01", "2026-12-31").await?;
    let activity_id = stack
        .municipality()
        .await?
        .propose_activity(as_coach(v1::ProposeActivityRequest {
            write: write(&participant_id),
            kind: v1::ActivityKind::Arbetstraning as i32,
            employer: "Hudiksvalls bageri".into(),
            hours_per_week: 20,
            planned_start: "2026-03-20".into(),
            ..Default::default()
        }))
        .await?
        .into_inner()
        .created_id;
    stack
        .forsakringskassan()
        .await?
        .decide_activity(fk_officer(v1::ActivityDecisionRequest {
            write: write(&participant_id),
            activity_id,
            outcome: v1::DecisionOutcome::Approved as i32,
            valid: Some(v1::Period {
                from: "2026-03-01".into(),
                to: "2026-03-30".into(),
            }),
            reason: "rehabilitation plan".into(),
        }))
        .await?;
    let approved = v1::GateStatus::Approved as i32;
    let expired = v1::GateStatus::Expired as i32;
    let (green, waiting) = (v1::Light::Green as i32, v1::Light::Waiting as i32);
    // Expiring from five days before the end (25 March): 23:30 on the 24th in Stockholm is
    // not yet, 00:30 on the 25th is, though the UTC date is still the 24th (winter time,
    // UTC+1, until the clocks change on the 29th).
    clock.set(instant("2026-03-24T22:30:00Z")?);
    assert_eq!(
        fk_gate(&coach_light(&stack, &participant_id).await?),
        (approved, false, green)
    );
    clock.set(instant("2026-03-24T23:30:00Z")?);
    assert_eq!(
        fk_gate(&coach_light(&stack, &participant_id).await?),
        (approved, true, green)
    );
    // The last day, 23:30 in Stockholm (summer time, UTC+2): still approved; 00:30 on the
    // 31st: expired.
    clock.set(instant("2026-03-30T21:30:00Z")?);
    assert_eq!(
        fk_gate(&coach_light(&stack, &participant_id).await?),
        (approved, true, green)
    );
    clock.set(instant("2026-03-30T22:30:00Z")?);
    assert_eq!(
        fk_gate(&coach_light(&stack, &participant_id).await?),
        (expired, false, waiting)
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_without_a_day_takes_effect_on_the_agency_clock_s_swedish_date(
) -> anyhow::Result<()> {
    // 00:30 on 31 March in Stockholm; the UTC date is the 30th.
    let clock = Arc::new(ledger::clock::ManualClock::new(instant(
        "2026-03-30T22:30:00Z",
    )?));
    let stack = stack_on(&clock).await?;
    let participant_id = enrolled(&stack).await?;
    grant(
        &stack,
        &participant_id,
        FK_TO_IPS_UNIT,
        "2026-03-01",
        "2026-12-31",
    )
    .await?;
    // No occurred_at and no effective_from: both come from the municipality's clock.
    let withdrawn = stack
        .municipality()
        .await?
        .withdraw_consent(as_coach(v1::WithdrawConsentRequest {
            participant_id: participant_id.clone(),
            discloser: v1::ConsentParty::Forsakringskassan as i32,
            recipient: v1::ConsentParty::IpsUnit as i32,
            data_categories: vec![v1::DataCategory::BenefitDecisions as i32],
            ..Default::default()
        }))
        .await?
        .into_inner();
    let entries = coach_timeline(&stack, &participant_id, withdrawn.sequence).await?;
    let entry = entries
        .iter()
        .find(|entry| entry.event_type == "ConsentWithdrawn")
        .ok_or_else(|| anyhow::anyhow!("the withdrawal is not on the timeline: {entries:?}"))?;
    assert_eq!(
        instant(&entry.occurred_at)?,
        instant("2026-03-30T22:30:00Z")?
    );
    let body: serde_json::Value = serde_json::from_str(&entry.body_json)?;
    assert_eq!(body["effective_from"], "2026-03-31", "{body}");
    stack.stop().await;
    Ok(())
}

/// The scenario participant's SIP on the coach's board, and on social services' list.
async fn sip_overdue_on_board_and_list(
    stack: &Stack,
    participant_id: &str,
) -> anyhow::Result<(Option<bool>, Option<bool>)> {
    let board = stack
        .caseload()
        .await?
        .get_caseload(as_coach(v1::GetCaseloadRequest {
            unit: "hudiksvall-ips".into(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let list = stack
        .green_light_as(Agency::Municipality)
        .await?
        .pending_approvals(testkit::as_officer(
            v1::PendingApprovalsRequest::default(),
            Agency::Municipality,
            "ifo-officer-3",
            Role::CaseOfficer,
            "hudiksvall-ifo",
        ))
        .await?
        .into_inner();
    let overdue = |sips: &[v1::SipDue]| {
        sips.iter()
            .find(|sip| sip.participant_id == participant_id)
            .map(|sip| sip.overdue)
    };
    Ok((overdue(&board.sips_due), overdue(&list.sips_due)))
}

/// Reads the watch until it has pushed the participant's SIP with `overdue` (bounded).
async fn watch_pushes_sip(
    watch: &mut tonic::Streaming<v1::GreenLightUpdate>,
    overdue: bool,
) -> anyhow::Result<v1::SipDue> {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(update) = watch.next().await {
            if let Some(sip) = update?.sip {
                if sip.overdue == overdue {
                    return anyhow::Ok(sip);
                }
            }
        }
        anyhow::bail!("the watch ended before the SIP was pushed")
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sip_turns_overdue_at_stockholm_midnight_after_its_last_day_on_the_board_the_list_and_the_watch(
) -> anyhow::Result<()> {
    let clock = Arc::new(ledger::clock::ManualClock::new(instant(
        "2026-03-10T09:00:00Z",
    )?));
    let stack = stack_on(&clock).await?;
    let participant_id = enrolled(&stack).await?;
    for recipient in [v1::ConsentParty::IpsUnit, v1::ConsentParty::SocialServices] {
        let consent = (
            v1::ConsentParty::Psychiatry,
            recipient,
            v1::DataCategory::HealthCoarse,
        );
        grant(&stack, &participant_id, consent, "2026-01-01", "2026-12-31").await?;
    }
    let mut watch = stack
        .green_light()
        .await?
        .watch_green_light(as_coach(v1::WatchGreenLightRequest {
            participant_id: participant_id.clone(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    // Discharge-ready on 10 March: the SIP is due through the 13th.
    stack
        .psychiatry()
        .await?
        .report_discharge_ready(testkit::as_officer(
            v1::DateRequest {
                write: write(&participant_id),
                date: "2026-03-10".into(),
            },
            Agency::Psychiatry,
            "rehab-coordinator-2",
            Role::CaseOfficer,
            "hudiksvall-vuxenpsykiatri",
        ))
        .await?;
    let due = watch_pushes_sip(&mut watch, false).await?;
    assert_eq!(
        (due.ready_on.as_str(), due.due_by.as_str()),
        ("2026-03-10", "2026-03-13")
    );
    // 23:59 on the 13th in Stockholm (winter time, UTC+1): still due everywhere.
    clock.set(instant("2026-03-13T22:59:00Z")?);
    assert_eq!(
        sip_overdue_on_board_and_list(&stack, &participant_id).await?,
        (Some(false), Some(false))
    );
    // 00:00 on the 14th in Stockholm, while the UTC date is still the 13th: overdue on the
    // board and the list, and the watch pushes it with no event recorded.
    clock.set(instant("2026-03-13T23:00:00Z")?);
    assert_eq!(
        sip_overdue_on_board_and_list(&stack, &participant_id).await?,
        (Some(true), Some(true))
    );
    let overdue = watch_pushes_sip(&mut watch, true).await?;
    assert_eq!(overdue.due_by, "2026-03-13");
    stack.stop().await;
    Ok(())
}
