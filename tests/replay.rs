//! The auditor's replay and the rebuilt read (issue 11), through the public gRPC API.
//!
//! - A replay as recorded at T holds exactly the entries recorded by T, and ends with the
//!   participant as folded then: gates with the status they had on the replay's business day,
//!   not today's; a business-time cut leaves out what occurred later.
//! - Through a party's eyes, a replay at T shows exactly what that party's live `GetTimeline`
//!   returned at T, field by field, before a consent, under it and after its withdrawal (free
//!   text left out across parties as live); another unit's coach could not open it at all.
//! - Every replay is a read: logged for the auditor with the basis `audit`, and listed in the
//!   participant's access-log extract.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use domain::{Agency, Role};
use proto::v1;
use testkit::{as_auditor, as_coach, Stack};

fn today() -> NaiveDate {
    domain::business_date(Utc::now())
}

/// The last second of the business day `date` (Stockholm), in RFC 3339.
fn end_of_business_day(date: &str) -> String {
    use chrono::TimeZone as _;
    let local = date
        .parse::<NaiveDate>()
        .expect("a date")
        .and_hms_opt(23, 59, 59)
        .expect("23:59:59 is a time of day");
    domain::clock::BUSINESS_TIME_ZONE
        .from_local_datetime(&local)
        .earliest()
        .expect("23:59:59 exists on every day in Stockholm")
        .with_timezone(&Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
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

fn write(participant_id: &str, days_from_today: i64) -> Option<v1::ParticipantWrite> {
    Some(v1::ParticipantWrite {
        context: context(days_from_today),
        participant_id: participant_id.to_owned(),
    })
}

fn stamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn fk_officer<T>(message: T) -> tonic::Request<T> {
    testkit::as_fk_officer(message)
}

/// A replay of `participant_id` as recorded at `recorded_at`.
fn as_recorded_at(
    participant_id: &str,
    recorded_at: DateTime<Utc>,
) -> v1::ReplayParticipantRequest {
    v1::ReplayParticipantRequest {
        participant_id: participant_id.to_owned(),
        recorded_at: stamp(recorded_at),
        ..Default::default()
    }
}

/// The coach of the Hudiksvall IPS unit, as a replay's reader.
fn coach_reader() -> v1::ReplayReader {
    v1::ReplayReader {
        party: v1::ConsentParty::IpsUnit as i32,
        role: "coach".into(),
        unit: "hudiksvall-ips".into(),
        person_id: "coach-17".into(),
    }
}

/// Försäkringskassan's case officer, as a replay's reader.
fn fk_reader() -> v1::ReplayReader {
    v1::ReplayReader {
        party: v1::ConsentParty::Forsakringskassan as i32,
        role: "case_officer".into(),
        unit: "fk-lfc-gavleborg".into(),
        person_id: "fk-officer-4".into(),
    }
}

/// Runs a replay as the auditor and collects its stream: every entry, and the final state.
async fn replay(
    stack: &Stack,
    request: v1::ReplayParticipantRequest,
) -> anyhow::Result<(Vec<v1::ReplayEntry>, v1::ReplayState)> {
    let mut stream = stack
        .audit_as(Agency::Municipality)
        .await?
        .replay_participant(as_auditor(request))
        .await?
        .into_inner();
    let mut entries = Vec::new();
    let mut state = None;
    while let Some(message) = stream.message().await? {
        anyhow::ensure!(state.is_none(), "the state comes last");
        entries.extend(message.entries);
        state = message.state;
    }
    Ok((entries, state.ok_or_else(|| anyhow::anyhow!("no state"))?))
}

/// The timeline entries of a replay, as a live read would carry them.
fn timeline_entries(entries: &[v1::ReplayEntry]) -> Vec<v1::TimelineEntry> {
    entries
        .iter()
        .filter_map(|entry| entry.entry.clone())
        .collect()
}

/// A live `GetTimeline` by `ask`'s reader, waiting for `min_sequence` to be projected.
async fn live_timeline(
    stack: &Stack,
    agency: Agency,
    ask: fn(v1::GetTimelineRequest) -> tonic::Request<v1::GetTimelineRequest>,
    participant_id: &str,
    min_sequence: u64,
) -> anyhow::Result<v1::GetTimelineResponse> {
    Ok(stack
        .timeline_as(agency)
        .await?
        .get_timeline(ask(v1::GetTimelineRequest {
            participant_id: participant_id.to_owned(),
            min_sequence,
            ..Default::default()
        }))
        .await?
        .into_inner())
}

/// A referred and enrolled participant of the coach's unit. Returns it and the newest sequence.
async fn enrolled(stack: &Stack) -> anyhow::Result<(String, u64)> {
    stack.enrolled_participant("coach-17", context(-30)).await
}

async fn grant(
    stack: &Stack,
    participant_id: &str,
    discloser: v1::ConsentParty,
    recipient: v1::ConsentParty,
    category: v1::DataCategory,
) -> anyhow::Result<u64> {
    Ok(stack
        .municipality()
        .await?
        .grant_consent(as_coach(v1::GrantConsentRequest {
            context: context(-30),
            participant_id: participant_id.to_owned(),
            discloser: discloser as i32,
            recipient: recipient as i32,
            data_categories: vec![category as i32],
            valid_from: at(-30),
            valid_to: at(300),
            ..Default::default()
        }))
        .await?
        .into_inner()
        .sequence)
}

/// A participant on sjukpenning with an arbetsträning proposed 21 days ago for a start in a
/// week, every consent in place: FK's gate is open. Returns (participant, activity, sequence).
async fn waiting_on_fk(stack: &Stack) -> anyhow::Result<(String, String, u64)> {
    waiting_on_fk_with(stack, true).await
}

/// [`waiting_on_fk`], with or without the consent IPS unit → FK that shows FK the request.
async fn waiting_on_fk_with(
    stack: &Stack,
    request_shown_to_fk: bool,
) -> anyhow::Result<(String, String, u64)> {
    let (participant_id, _) = enrolled(stack).await?;
    if request_shown_to_fk {
        grant(
            stack,
            &participant_id,
            v1::ConsentParty::IpsUnit,
            v1::ConsentParty::Forsakringskassan,
            v1::DataCategory::ActivitiesAndWork,
        )
        .await?;
    }
    for (discloser, recipient, category) in testkit::CONSENTS_FOR_THE_COACH_S_GREEN_LIGHT {
        grant(stack, &participant_id, discloser, recipient, category).await?;
    }
    stack
        .forsakringskassan()
        .await?
        .register_benefit(fk_officer(v1::RegisterBenefitRequest {
            write: write(&participant_id, -30),
            benefit: v1::BenefitKind::Sjukpenning as i32,
            degree_percent: 100,
            period: Some(v1::Period {
                from: at(-60),
                to: at(300),
            }),
            employed: false,
        }))
        .await?;
    let proposal = stack
        .municipality()
        .await?
        .propose_activity(as_coach(v1::ProposeActivityRequest {
            write: write(&participant_id, -21),
            kind: v1::ActivityKind::Arbetstraning as i32,
            employer: "Hudiksvalls bageri".into(),
            hours_per_week: 20,
            planned_start: at(7),
            ..Default::default()
        }))
        .await?
        .into_inner();
    Ok((participant_id, proposal.created_id, proposal.sequence))
}

async fn fk_approves(
    stack: &Stack,
    participant_id: &str,
    activity_id: &str,
    valid_from: i64,
    valid_to: i64,
) -> anyhow::Result<u64> {
    Ok(stack
        .forsakringskassan()
        .await?
        .decide_activity(fk_officer(v1::ActivityDecisionRequest {
            write: write(participant_id, 0),
            activity_id: activity_id.into(),
            outcome: v1::DecisionOutcome::Approved as i32,
            valid: Some(v1::Period {
                from: at(valid_from),
                to: at(valid_to),
            }),
            reason: "rehabilitation plan".into(),
        }))
        .await?
        .into_inner()
        .sequence)
}

/// The one gate of the replayed state's one activity: (status, waiting days), and the light.
fn only_gate(state: &v1::ReplayState) -> anyhow::Result<(v1::GateStatus, u32, v1::Light)> {
    let [activity] = state.activities.as_slice() else {
        anyhow::bail!("one activity expected: {:?}", state.activities);
    };
    let light = activity
        .light
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no light"))?;
    let [gate] = light.gates.as_slice() else {
        anyhow::bail!("one gate expected: {:?}", light.gates);
    };
    Ok((gate.status(), gate.waiting_days, light.light()))
}

/// A moment strictly after everything recorded so far (the ledger stamps at commit, to the
/// microsecond, from the same clock the test reads).
async fn now_after_recording() -> DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    let now = Utc::now();
    tokio::time::sleep(Duration::from_millis(2)).await;
    now
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_as_recorded_at_t_holds_what_was_recorded_by_t_and_the_gates_of_its_day(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant_id, activity_id, proposed) = waiting_on_fk(&stack).await?;
    let before_decision = now_after_recording().await;
    let decided = fk_approves(&stack, &participant_id, &activity_id, -5, 10).await?;
    let after_decision = now_after_recording().await;

    // As recorded before FK's decision: the request waits, 21 days after the proposal.
    let (entries, state) = replay(&stack, as_recorded_at(&participant_id, before_decision)).await?;
    assert_eq!(entries.len() as u64, proposed);
    assert_eq!(state.entries_recorded, proposed);
    assert_eq!(state.head_sequence, proposed);
    assert!(state.opened);
    assert_eq!(
        only_gate(&state)?,
        (v1::GateStatus::Requested, 21, v1::Light::Waiting)
    );
    assert_eq!(state.lifecycle, "enrolled");
    assert_eq!(state.unit, "hudiksvall-ips");
    assert_eq!(state.coach_person_id, "coach-17");
    assert_eq!(state.consents_in_force.len(), 5);
    assert_eq!(state.business_date, today().to_string());
    assert!(entries
        .iter()
        .all(|entry| entry.basis == "audit" && entry.entry.is_some()));

    // As recorded after it: approved, and the light is green for the planned start.
    let (entries, state) = replay(&stack, as_recorded_at(&participant_id, after_decision)).await?;
    assert_eq!(entries.len() as u64, decided);
    assert_eq!(
        entries
            .last()
            .map(|entry| entry.entry.clone().unwrap_or_default().event_type),
        Some("ActivityDecision".to_owned())
    );
    assert_eq!(
        only_gate(&state)?,
        (v1::GateStatus::Approved, 0, v1::Light::Green)
    );

    // On a business day after the approval's end, the same facts make the gate EXPIRED (not
    // today's APPROVED); before the proposal occurred, there is no activity at all.
    let (_, state) = replay(
        &stack,
        v1::ReplayParticipantRequest {
            occurred_at: end_of_business_day(&at(11)),
            ..as_recorded_at(&participant_id, after_decision)
        },
    )
    .await?;
    assert_eq!(state.business_date, at(11));
    assert_eq!(only_gate(&state)?.0, v1::GateStatus::Expired);
    let (entries, state) = replay(
        &stack,
        v1::ReplayParticipantRequest {
            occurred_at: end_of_business_day(&at(-22)),
            ..as_recorded_at(&participant_id, after_decision)
        },
    )
    .await?;
    assert!(state.activities.is_empty(), "{:?}", state.activities);
    assert_eq!(state.entries_in_cut, entries.len() as u64);
    assert!(state.entries_in_cut < state.entries_recorded);

    // A replay as recorded at a moment that has not come is refused: what is recorded later
    // would still join it.
    let future = stack
        .audit_as(Agency::Municipality)
        .await?
        .replay_participant(as_auditor(as_recorded_at(
            &participant_id,
            Utc::now() + chrono::Duration::hours(1),
        )))
        .await;
    assert_eq!(
        future.err().map(|status| status.code()),
        Some(tonic::Code::InvalidArgument)
    );

    // Every replay is the auditor's read of the participant, listed in their extract.
    let extract = stack
        .audit_as(Agency::Municipality)
        .await?
        .get_access_log_extract(as_auditor(v1::GetAccessLogExtractRequest {
            participant_id: participant_id.clone(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let replays: Vec<&v1::AccessLogEntry> = extract
        .entries
        .iter()
        .filter(|entry| entry.action == "ips.v1.AuditService/ReplayParticipant")
        .collect();
    assert_eq!(replays.len(), 4, "{:?}", extract.entries);
    assert!(replays.iter().all(|entry| entry.basis == "audit"
        && entry
            .reader
            .as_ref()
            .map(|reader| reader.person_id.as_str())
            == Some("auditor-1")));
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_through_a_party_s_eyes_shows_exactly_what_its_live_read_showed(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant_id, _) = enrolled(&stack).await?;
    // The profile's preferences are free text: FK is shown the profile without them.
    grant(
        &stack,
        &participant_id,
        v1::ConsentParty::IpsUnit,
        v1::ConsentParty::Forsakringskassan,
        v1::DataCategory::VocationalProfile,
    )
    .await?;
    stack
        .municipality()
        .await?
        .record_profile(as_coach(v1::RecordProfileRequest {
            write: write(&participant_id, -29),
            preferences: "outdoor work, mornings".into(),
            hours_per_week_wanted: 20,
            education_level: v1::EducationLevel::UpperSecondary as i32,
        }))
        .await?;
    // FK's benefit is recorded before any consent to show it to the IPS unit.
    let benefit = stack
        .forsakringskassan()
        .await?
        .register_benefit(fk_officer(v1::RegisterBenefitRequest {
            write: write(&participant_id, -28),
            benefit: v1::BenefitKind::Sjukpenning as i32,
            degree_percent: 100,
            period: Some(v1::Period {
                from: at(-60),
                to: at(300),
            }),
            employed: false,
        }))
        .await?
        .into_inner();

    let mut live = Vec::new();
    let coach_before = live_timeline(
        &stack,
        Agency::Municipality,
        as_coach,
        &participant_id,
        benefit.sequence,
    )
    .await?;
    let fk_before = live_timeline(
        &stack,
        Agency::Forsakringskassan,
        fk_officer,
        &participant_id,
        benefit.sequence,
    )
    .await?;
    live.push((
        "before the grant",
        now_after_recording().await,
        coach_before,
        Some(fk_before),
    ));

    let granted = grant(
        &stack,
        &participant_id,
        v1::ConsentParty::Forsakringskassan,
        v1::ConsentParty::IpsUnit,
        v1::DataCategory::BenefitDecisions,
    )
    .await?;
    let coach_under = live_timeline(
        &stack,
        Agency::Municipality,
        as_coach,
        &participant_id,
        granted,
    )
    .await?;
    live.push((
        "under the consent",
        now_after_recording().await,
        coach_under,
        None,
    ));

    let withdrawn = stack
        .municipality()
        .await?
        .withdraw_consent(as_coach(v1::WithdrawConsentRequest {
            context: context(0),
            participant_id: participant_id.clone(),
            discloser: v1::ConsentParty::Forsakringskassan as i32,
            recipient: v1::ConsentParty::IpsUnit as i32,
            data_categories: vec![v1::DataCategory::BenefitDecisions as i32],
            effective_from: at(0),
        }))
        .await?
        .into_inner()
        .sequence;
    let coach_after = live_timeline(
        &stack,
        Agency::Municipality,
        as_coach,
        &participant_id,
        withdrawn,
    )
    .await?;
    live.push((
        "after the withdrawal",
        now_after_recording().await,
        coach_after,
        None,
    ));

    let benefit_shown = |entries: &[v1::TimelineEntry]| {
        entries
            .iter()
            .any(|entry| entry.event_type == "BenefitRegistered")
    };
    // The live reads themselves: hidden before the grant, shown under it, hidden after.
    assert_eq!(
        live.iter()
            .map(|(_, _, coach, _)| benefit_shown(&coach.entries))
            .collect::<Vec<_>>(),
        [false, true, false]
    );
    for (moment, read_at, coach, fk) in &live {
        let (entries, state) = replay(
            &stack,
            v1::ReplayParticipantRequest {
                as_reader: Some(coach_reader()),
                ..as_recorded_at(&participant_id, *read_at)
            },
        )
        .await?;
        assert!(state.opened, "{moment}");
        assert_eq!(
            timeline_entries(&entries),
            coach.entries,
            "the coach's replay {moment} is their live read, field by field"
        );
        if let Some(fk) = fk {
            let (entries, _) = replay(
                &stack,
                v1::ReplayParticipantRequest {
                    as_reader: Some(fk_reader()),
                    ..as_recorded_at(&participant_id, *read_at)
                },
            )
            .await?;
            assert_eq!(timeline_entries(&entries), fk.entries, "FK {moment}");
            let profile = entries
                .iter()
                .filter_map(|entry| entry.entry.as_ref())
                .find(|entry| entry.event_type == "ProfileRecorded")
                .ok_or_else(|| anyhow::anyhow!("FK is shown the profile under consent"))?;
            assert!(
                !profile.body_json.contains("preferences"),
                "{}",
                profile.body_json
            );
        }
    }
    // The auditor's replay at the same moment shows the benefit the coach no longer sees.
    let (entries, _) = replay(&stack, as_recorded_at(&participant_id, live[2].1)).await?;
    assert!(benefit_shown(&timeline_entries(&entries)));

    // Another unit's coach could not open the participant at all.
    let (entries, state) = replay(
        &stack,
        v1::ReplayParticipantRequest {
            as_reader: Some(v1::ReplayReader {
                unit: "bollnas-ips".into(),
                person_id: "coach-99".into(),
                ..coach_reader()
            }),
            ..as_recorded_at(&participant_id, live[2].1)
        },
    )
    .await?;
    assert!(!state.opened);
    assert_eq!(state.refused_rule, "other_unit");
    assert!(entries.is_empty());
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_auditors_replay_and_a_reader_s_role_must_fit_their_party() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant_id, _) = enrolled(&stack).await?;
    let request = as_recorded_at(&participant_id, now_after_recording().await);
    let as_team_leader = stack
        .audit_as(Agency::Municipality)
        .await?
        .replay_participant(testkit::as_caller(
            request.clone(),
            "team-leader-1",
            Role::TeamLeader,
            "hudiksvall-ips",
        ))
        .await;
    assert_eq!(
        as_team_leader.err().map(|status| status.code()),
        Some(tonic::Code::PermissionDenied)
    );
    let case_officer_as_ips_unit = stack
        .audit_as(Agency::Municipality)
        .await?
        .replay_participant(as_auditor(v1::ReplayParticipantRequest {
            as_reader: Some(v1::ReplayReader {
                role: "case_officer".into(),
                ..coach_reader()
            }),
            ..request
        }))
        .await;
    assert_eq!(
        case_officer_as_ips_unit.err().map(|status| status.code()),
        Some(tonic::Code::InvalidArgument)
    );
    stack.stop().await;
    Ok(())
}

/// Corrects the activity proposal `supersedes` to `hours_per_week`, by the coach.
async fn correct_hours(
    stack: &Stack,
    participant_id: &str,
    supersedes: &v1::TimelineEntry,
    hours_per_week: u32,
) -> anyhow::Result<v1::WriteResponse> {
    let mut corrected: serde_json::Value = serde_json::from_str(&supersedes.body_json)?;
    corrected["hours_per_week"] = serde_json::json!(hours_per_week);
    Ok(stack
        .municipality()
        .await?
        .correct_event(as_coach(v1::CorrectEventRequest {
            write: write(participant_id, -20),
            supersedes_event_id: supersedes.event_id.clone(),
            reason: format!("the hours were {hours_per_week}"),
            corrected_body_json: corrected.to_string(),
        }))
        .await?
        .into_inner())
}

fn hours_in(entry: &v1::ReplayEntry) -> Option<u64> {
    let body: serde_json::Value = serde_json::from_str(&entry.entry.as_ref()?.body_json).ok()?;
    body.get("hours_per_week")?.as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_replay_as_recorded_and_as_corrected() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant_id, _, _) = waiting_on_fk(&stack).await?;
    let (entries, _) = replay(
        &stack,
        as_recorded_at(&participant_id, now_after_recording().await),
    )
    .await?;
    let proposal = timeline_entries(&entries)
        .into_iter()
        .find(|entry| entry.event_type == "ActivityProposed")
        .ok_or_else(|| anyhow::anyhow!("the proposal"))?;
    let first = correct_hours(&stack, &participant_id, &proposal, 25).await?;
    let between = now_after_recording().await;
    let second = correct_hours(&stack, &participant_id, &proposal, 30).await?;
    let after = now_after_recording().await;
    let as_corrected = |recorded_at, as_reader| v1::ReplayParticipantRequest {
        corrections: v1::CorrectionView::AsCorrected as i32,
        as_reader,
        ..as_recorded_at(&participant_id, recorded_at)
    };
    let proposal_in = |entries: &[v1::ReplayEntry]| {
        entries
            .iter()
            .find(|entry| {
                entry.entry.as_ref().map(|entry| entry.event_id.as_str())
                    == Some(proposal.event_id.as_str())
            })
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the proposal is replayed"))
    };

    // As recorded: the original, then each correction as an entry of its own; the original
    // names the latest correction that supersedes it.
    let (recorded, state) = replay(&stack, as_recorded_at(&participant_id, after)).await?;
    assert_eq!(recorded.len() as u64, second.sequence);
    let original = proposal_in(&recorded)?;
    assert_eq!(hours_in(&original), Some(20));
    assert_eq!(original.superseded_by_event_id, second.event_id);
    assert!(original.correction.is_none());
    let corrections: Vec<&str> = recorded
        .iter()
        .filter_map(|entry| entry.entry.as_ref())
        .filter(|entry| entry.event_type == "EventCorrected")
        .map(|entry| entry.event_id.as_str())
        .collect();
    assert_eq!(
        corrections,
        [first.event_id.as_str(), second.event_id.as_str()]
    );
    assert_eq!(
        state
            .activities
            .first()
            .map(|activity| activity.hours_per_week),
        Some(30)
    );

    // As corrected: the current version in the original's place, with the correction's author,
    // time and reason; the corrections are not listed again.
    let (corrected, _) = replay(&stack, as_corrected(after, None)).await?;
    assert_eq!(corrected.len(), recorded.len() - 2);
    let current = proposal_in(&corrected)?;
    assert_eq!(hours_in(&current), Some(30));
    let correction = current
        .correction
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the correction is named"))?;
    assert_eq!(correction.event_id, second.event_id);
    assert_eq!(correction.sequence, second.sequence);
    assert_eq!(
        correction.author.map(|author| author.person_id),
        Some("coach-17".to_owned())
    );
    assert_eq!(correction.reason, "the hours were 30");
    let correction_entry = recorded
        .iter()
        .filter_map(|entry| entry.entry.as_ref())
        .find(|entry| entry.event_id == second.event_id)
        .ok_or_else(|| anyhow::anyhow!("the second correction"))?;
    assert_eq!(correction.recorded_at, correction_entry.recorded_at);
    assert_eq!(
        current.entry.as_ref().map(|entry| entry.hash.as_str()),
        Some(proposal.hash.as_str())
    );

    // As corrected at a moment between the two corrections: the first one's values.
    let (corrected, _) = replay(&stack, as_corrected(between, None)).await?;
    let current = proposal_in(&corrected)?;
    assert_eq!(hours_in(&current), Some(25));
    assert_eq!(
        current.correction.map(|correction| correction.event_id),
        Some(first.event_id.clone())
    );

    // Through FK's eyes (consent IPS unit → FK for activities): the corrected values, but not
    // the correction's reason, which is free text.
    let (corrected, _) = replay(&stack, as_corrected(after, Some(fk_reader()))).await?;
    let current = proposal_in(&corrected)?;
    assert_eq!(hours_in(&current), Some(30));
    assert_eq!(
        current.correction.map(|correction| correction.reason),
        Some(String::new())
    );
    stack.stop().await;
    Ok(())
}

const GET_TIMELINE: &str = "ips.v1.TimelineService/GetTimeline";
const PENDING_APPROVALS: &str = "ips.v1.GreenLightService/PendingApprovals";
const WATCH_GREEN_LIGHT: &str = "ips.v1.GreenLightService/WatchGreenLight";

/// The newest access-log position of `reader`'s reads through `action` (0 when none).
async fn newest_position(stack: &Stack, reader: &str, action: &str) -> anyhow::Result<i64> {
    let pool = stack.database.pool().await?;
    let position: Option<i64> = sqlx::query_scalar(
        "SELECT max(position) FROM access_log WHERE reader_person_id = $1 AND action = $2",
    )
    .bind(reader)
    .bind(action)
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    Ok(position.unwrap_or(0))
}

/// The access-log position of the read `read` just made (it must have logged one).
async fn logged<T>(
    stack: &Stack,
    reader: &str,
    action: &str,
    read: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, i64)> {
    let before = newest_position(stack, reader, action).await?;
    let response = read.await?;
    let position = newest_position(stack, reader, action).await?;
    anyhow::ensure!(position > before, "{action} by {reader} logged nothing");
    Ok((response, position))
}

async fn reconstruct(
    stack: &Stack,
    position: i64,
) -> Result<v1::ReconstructReadResponse, tonic::Status> {
    stack
        .audit_as(Agency::Municipality)
        .await
        .map_err(|error| tonic::Status::internal(error.to_string()))?
        .reconstruct_read(as_auditor(v1::ReconstructReadRequest {
            access_log_position: u64::try_from(position).unwrap_or(0),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn pending_page(
    stack: &Stack,
    page_size: u32,
    page_token: String,
) -> anyhow::Result<v1::PendingApprovalsResponse> {
    Ok(stack
        .green_light_as(Agency::Forsakringskassan)
        .await?
        .pending_approvals(fk_officer(v1::PendingApprovalsRequest {
            agency: v1::Agency::Forsakringskassan as i32,
            unit: "hudiksvall-ips".into(),
            page_size,
            page_token,
        }))
        .await?
        .into_inner())
}

/// Every update the watch pushes until it has been quiet for `quiet`.
async fn updates_until_quiet(
    watch: &mut tonic::Streaming<v1::GreenLightUpdate>,
    quiet: Duration,
) -> anyhow::Result<Vec<v1::GreenLightUpdate>> {
    let mut updates = Vec::new();
    while let Ok(update) = tokio::time::timeout(quiet, watch.message()).await {
        match update? {
            Some(update) => updates.push(update),
            None => break,
        }
    }
    Ok(updates)
}

/// Reads pending approvals until the read model shows `count` of them.
async fn pending_count(stack: &Stack, count: usize) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while pending_page(stack, 1000, String::new())
        .await?
        .approvals
        .len()
        != count
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{count} pending approvals never showed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_logged_read_is_rebuilt_exactly_after_the_history_moved_on() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    // Two participants whose FK gate FK sees, and one whose request FK may not see (no consent
    // IPS unit → FK): its row is scanned by FK's pages but not shown.
    let (first, first_activity, first_sequence) = waiting_on_fk(&stack).await?;
    let (second, _, _) = waiting_on_fk(&stack).await?;
    let (hidden, _, _) = waiting_on_fk_with(&stack, false).await?;
    pending_count(&stack, 2).await?;

    let mut watch = stack
        .green_light()
        .await?
        .watch_green_light(as_coach(v1::WatchGreenLightRequest {
            coach_person_id: "coach-17".into(),
            participant_id: String::new(),
        }))
        .await?
        .into_inner();
    // The third participant's gate may reach the green-light read model after FK's pending list
    // showed the other two (a loaded machine), so it can arrive as a push after the first ones:
    // gather until all three are there (every push is rebuilt below, whenever it came).
    let mut pushed = Vec::new();
    let board_deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while pushed.len() < 3 && tokio::time::Instant::now() < board_deadline {
        pushed.extend(updates_until_quiet(&mut watch, Duration::from_millis(1_500)).await?);
    }
    assert_eq!(pushed.len(), 3, "the board of three gates: {pushed:?}");

    // Live reads, each with its access-log position.
    let mut timelines = Vec::new();
    let timeline_read = |page_token: String, agencies: Vec<i32>| v1::GetTimelineRequest {
        participant_id: first.clone(),
        min_sequence: first_sequence,
        page_size: 4,
        page_token,
        agencies,
        ..Default::default()
    };
    let mut coach_timeline = stack.timeline().await?;
    let (page, position) = logged(&stack, "coach-17", GET_TIMELINE, async {
        Ok(coach_timeline
            .get_timeline(as_coach(timeline_read(String::new(), Vec::new())))
            .await?
            .into_inner())
    })
    .await?;
    let next = page.next_page_token.clone();
    assert!(!next.is_empty());
    timelines.push((page, position));
    let (page, position) = logged(&stack, "coach-17", GET_TIMELINE, async {
        Ok(coach_timeline
            .get_timeline(as_coach(timeline_read(next.clone(), Vec::new())))
            .await?
            .into_inner())
    })
    .await?;
    timelines.push((page, position));
    let mut fk_timeline = stack.timeline_as(Agency::Forsakringskassan).await?;
    let (page, position) = logged(&stack, "fk-officer-4", GET_TIMELINE, async {
        Ok(fk_timeline
            .get_timeline(fk_officer(v1::GetTimelineRequest {
                page_size: 100,
                ..timeline_read(
                    String::new(),
                    vec![
                        v1::Agency::Forsakringskassan as i32,
                        v1::Agency::Municipality as i32,
                    ],
                )
            }))
            .await?
            .into_inner())
    })
    .await?;
    timelines.push((page, position));

    let mut pages = Vec::new();
    for page_size in [2, 1000] {
        let (page, position) = logged(&stack, "fk-officer-4", PENDING_APPROVALS, async {
            pending_page(&stack, page_size, String::new()).await
        })
        .await?;
        if !page.next_page_token.is_empty() {
            let token = page.next_page_token.clone();
            let before = newest_position(&stack, "fk-officer-4", PENDING_APPROVALS).await?;
            let rest = pending_page(&stack, page_size, token).await?;
            let after = newest_position(&stack, "fk-officer-4", PENDING_APPROVALS).await?;
            if after > before {
                pages.push((rest, after));
            }
        }
        pages.push((page, position));
    }
    assert!(pages.iter().any(|(page, _)| page.approvals.len() == 2));

    // The history moves on: FK approves the first request, the first participant withdraws
    // consent FK → IPS unit, the hidden participant's request is shown to FK, the second gets
    // another proposal.
    fk_approves(&stack, &first, &first_activity, -5, 10).await?;
    stack
        .municipality()
        .await?
        .withdraw_consent(as_coach(v1::WithdrawConsentRequest {
            context: context(0),
            participant_id: first.clone(),
            discloser: v1::ConsentParty::Forsakringskassan as i32,
            recipient: v1::ConsentParty::IpsUnit as i32,
            data_categories: vec![v1::DataCategory::BenefitDecisions as i32],
            effective_from: at(0),
        }))
        .await?;
    grant(
        &stack,
        &hidden,
        v1::ConsentParty::IpsUnit,
        v1::ConsentParty::Forsakringskassan,
        v1::DataCategory::ActivitiesAndWork,
    )
    .await?;
    stack
        .municipality()
        .await?
        .propose_activity(as_coach(v1::ProposeActivityRequest {
            write: write(&second, -1),
            kind: v1::ActivityKind::Praktik as i32,
            employer: "Hudiksvalls bibliotek".into(),
            hours_per_week: 10,
            planned_start: at(14),
            ..Default::default()
        }))
        .await?;
    pending_count(&stack, 3).await?;
    pushed.extend(updates_until_quiet(&mut watch, Duration::from_millis(2_500)).await?);
    drop(watch);
    assert!(pushed.len() > 3, "the watch pushed the changes: {pushed:?}");
    // What a fresh read shows now differs from what was recorded (so the rebuild cannot just
    // re-read today's state).
    let now = pending_page(&stack, 1000, String::new()).await?;
    assert_ne!(Some(&now), pages.last().map(|(page, _)| page));

    for (recorded, position) in &timelines {
        let rebuilt = reconstruct(&stack, *position).await?;
        assert_eq!(
            rebuilt.read,
            Some(v1::reconstruct_read_response::Read::Timeline(
                recorded.clone()
            )),
            "GetTimeline at {position}"
        );
        assert_eq!(rebuilt.business_date, today().to_string());
        assert_eq!(rebuilt.participant_ids, std::slice::from_ref(&first));
    }
    for (recorded, position) in &pages {
        let rebuilt = reconstruct(&stack, *position).await?;
        assert_eq!(
            rebuilt.read,
            Some(v1::reconstruct_read_response::Read::PendingApprovals(
                recorded.clone()
            )),
            "PendingApprovals at {position}"
        );
    }
    // Every push of the watch, evaluation by evaluation, in the order it was pushed.
    let pool = stack.database.pool().await?;
    let evaluations: Vec<i64> = sqlx::query_scalar(
        "SELECT min(position) FROM access_log WHERE reader_person_id = 'coach-17' AND action = $1
         GROUP BY read_id ORDER BY min(position)",
    )
    .bind(WATCH_GREEN_LIGHT)
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    let mut rebuilt_pushes = Vec::new();
    for position in evaluations {
        match reconstruct(&stack, position).await?.read {
            Some(v1::reconstruct_read_response::Read::GreenLightPush(push)) => {
                rebuilt_pushes.extend(push.updates)
            }
            other => anyhow::bail!("a watch push rebuilt as {other:?}"),
        }
    }
    assert_eq!(rebuilt_pushes, pushed, "every push, field by field");

    // A read whose path keeps no context says so; the rebuilds are audits of each participant.
    stack
        .caseload()
        .await?
        .get_caseload(as_coach(v1::GetCaseloadRequest {
            unit: "hudiksvall-ips".into(),
            ..Default::default()
        }))
        .await?;
    let caseload =
        newest_position(&stack, "coach-17", "ips.v1.CaseloadService/GetCaseload").await?;
    let refused = reconstruct(&stack, caseload).await.err();
    assert_eq!(
        refused.as_ref().map(tonic::Status::code),
        Some(tonic::Code::FailedPrecondition)
    );
    assert_eq!(
        refused
            .as_ref()
            .and_then(|status| status.metadata().get("ips-rule"))
            .and_then(|value| value.to_str().ok()),
        Some("read_not_reconstructible")
    );
    let audits = tests::reads_by(
        &stack,
        &first,
        "auditor-1",
        "ips.v1.AuditService/ReconstructRead",
    )
    .await?;
    assert!(audits >= 3, "{audits}");
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipsctl_replays_and_rebuilds_a_read() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant_id, _, sequence) = waiting_on_fk(&stack).await?;
    let (_, position) = logged(&stack, "coach-17", GET_TIMELINE, async {
        live_timeline(
            &stack,
            Agency::Municipality,
            as_coach,
            &participant_id,
            sequence,
        )
        .await
    })
    .await?;
    let recorded_at = stamp(now_after_recording().await);
    let addresses = ipsctl::Addresses {
        ledger: format!("https://{}", stack.ledger_address),
        municipality: format!("https://{}", stack.municipality_address),
        forsakringskassan: format!("https://{}", stack.forsakringskassan_address),
        arbetsformedlingen: format!("https://{}", stack.arbetsformedlingen_address),
        psychiatry: format!("https://{}", stack.psychiatry_address),
    };
    let mut clients = ipsctl::Clients::connect(&addresses, &testkit::test_pki().directory).await?;

    let arguments =
        ipsctl::audit::ReplayArguments::parse(&[&participant_id, "--recorded-at", &recorded_at])?;
    let text = ipsctl::audit::replay(&mut clients, &arguments).await?;
    assert!(
        text.contains(&format!("{sequence} entries recorded by then")),
        "{text}"
    );
    assert!(
        text.contains("fk_activity_decision (fk): REQUESTED"),
        "{text}"
    );
    assert!(
        text.contains("lifecycle enrolled, IPS unit hudiksvall-ips"),
        "{text}"
    );

    let arguments = ipsctl::audit::ReplayArguments::parse(&[
        &participant_id,
        "--recorded-at",
        &recorded_at,
        "--as",
        "ips_unit:coach:bollnas-ips:coach-99",
        "--json",
    ])?;
    let json: serde_json::Value =
        serde_json::from_str(&ipsctl::audit::replay(&mut clients, &arguments).await?)?;
    assert_eq!(json["state"]["opened"], serde_json::json!(false));
    assert_eq!(
        json["state"]["refused_rule"],
        serde_json::json!("other_unit")
    );

    let text = ipsctl::audit::read(&mut clients, u64::try_from(position)?, false).await?;
    assert!(
        text.contains("ips.v1.TimelineService/GetTimeline"),
        "{text}"
    );
    assert!(text.contains("What the read returned"), "{text}");
    let json: serde_json::Value = serde_json::from_str(
        &ipsctl::audit::read(&mut clients, u64::try_from(position)?, true).await?,
    )?;
    assert_eq!(
        json["read"]["timeline"]["entries"].as_array().map(Vec::len),
        Some(usize::try_from(sequence)?)
    );
    // The CLI's audits are logged under its auditor.
    assert_eq!(
        tests::reads_by(
            &stack,
            &participant_id,
            ipsctl::audit::AUDITOR,
            "ips.v1.AuditService/ReplayParticipant"
        )
        .await?,
        2
    );
    stack.stop().await;
    Ok(())
}
