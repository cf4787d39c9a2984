//! Consent-scoped reads, the access log and the database role, through the public gRPC API
//! (issue 5; DOMAIN.md §6; DESIGN.md §7, invariants 3, 6 and 7).
//!
//! - The consent matrix: for each discloser × recipient, one event of the discloser's is
//!   invisible to the recipient without consent, invisible under a consent for another data
//!   category, visible under consent for its category, and invisible again after withdrawal;
//!   an auditor sees it throughout, and each auditor read leaves an access-log entry.
//! - The participant's self-reported benefit (issue 12), recorded by the coach, is the IPS
//!   unit's vocational profile: it crosses exactly where the matrix's ProfileRecorded does
//!   (consent IPS unit → recipient for the vocational profile), never under another category.
//! - The inpatient events (issue 12) across the same matrix: the IPS unit sees a stay only as
//!   availability and only under consent, social services a compulsory admission by the LPT
//!   necessary-care rule, FK and AF never.
//! - Every read RPC leaves exactly one access-log entry per participant it returned.
//! - The services' database role cannot UPDATE the events table.

use chrono::Utc;
use domain::{Agency, Role};
use proto::v1;
use testkit::{as_officer, Stack};

/// The IPS unit's second event in the matrix: the participant's own statement of a benefit,
/// of the same data category as its ProfileRecorded (the vocational profile).
const SELF_REPORT: &str = "BenefitSelfReported";

/// One reader, acting for one consent party.
#[derive(Clone, Copy, Debug)]
struct Party {
    name: &'static str,
    consent_party: v1::ConsentParty,
    agency: Agency,
    person: &'static str,
    role: Role,
    unit: &'static str,
    /// The event type this party discloses in the matrix, and its data category.
    event_type: &'static str,
    category: v1::DataCategory,
}

const PARTIES: [Party; 5] = [
    Party {
        name: "ips_unit",
        consent_party: v1::ConsentParty::IpsUnit,
        agency: Agency::Municipality,
        person: "coach-17",
        role: Role::Coach,
        unit: "hudiksvall-ips",
        event_type: "ProfileRecorded",
        category: v1::DataCategory::VocationalProfile,
    },
    Party {
        name: "social_services",
        consent_party: v1::ConsentParty::SocialServices,
        agency: Agency::Municipality,
        person: "ifo-officer-3",
        role: Role::CaseOfficer,
        unit: "hudiksvall-ifo",
        event_type: "SocialAssistanceDecided",
        category: v1::DataCategory::SocialAssistanceStatus,
    },
    Party {
        name: "forsakringskassan",
        consent_party: v1::ConsentParty::Forsakringskassan,
        agency: Agency::Forsakringskassan,
        person: "fk-officer-4",
        role: Role::CaseOfficer,
        unit: "fk-lfc-gavleborg",
        event_type: "BenefitRegistered",
        category: v1::DataCategory::BenefitDecisions,
    },
    Party {
        name: "arbetsformedlingen",
        consent_party: v1::ConsentParty::Arbetsformedlingen,
        agency: Agency::Arbetsformedlingen,
        person: "af-officer-9",
        role: Role::CaseOfficer,
        unit: "af-hudiksvall",
        event_type: "JobSeekerRegistered",
        category: v1::DataCategory::LabourMarket,
    },
    Party {
        name: "psychiatry",
        consent_party: v1::ConsentParty::Psychiatry,
        agency: Agency::Psychiatry,
        person: "rehab-coordinator-2",
        role: Role::CaseOfficer,
        unit: "hudiksvall-vuxenpsykiatri",
        event_type: "AvailabilityChanged",
        category: v1::DataCategory::HealthCoarse,
    },
];

impl Party {
    fn ask<T>(&self, message: T) -> tonic::Request<T> {
        as_officer(message, self.agency, self.person, self.role, self.unit)
    }
}

fn auditor<T>(message: T) -> tonic::Request<T> {
    testkit::as_auditor(message)
}

fn today() -> String {
    domain::business_date(Utc::now()).to_string()
}

fn days_from_today(days: i64) -> String {
    (domain::business_date(Utc::now()) + chrono::Duration::days(days)).to_string()
}

fn write(participant_id: &str) -> Option<v1::ParticipantWrite> {
    Some(v1::ParticipantWrite {
        context: None,
        participant_id: participant_id.to_owned(),
    })
}

/// Refers and enrols a participant, then has each party record its event. Returns the
/// participant and the newest sequence.
async fn participant_with_every_party(stack: &Stack) -> anyhow::Result<(String, u64)> {
    let coach = PARTIES[0];
    let mut municipality = stack.municipality().await?;
    let participant_id = municipality
        .refer_participant(coach.ask(v1::ReferParticipantRequest {
            source: v1::ReferralSource::Vuxenpsykiatri as i32,
            ..Default::default()
        }))
        .await?
        .into_inner()
        .participant_id;
    municipality
        .enroll_participant(coach.ask(v1::EnrollParticipantRequest {
            participant_id: participant_id.clone(),
            unit: "hudiksvall-ips".into(),
            coach_person_id: "coach-17".into(),
            ..Default::default()
        }))
        .await?;
    municipality
        .record_profile(coach.ask(v1::RecordProfileRequest {
            write: write(&participant_id),
            preferences: "outdoor work, mornings".into(),
            hours_per_week_wanted: 20,
            education_level: v1::EducationLevel::UpperSecondary as i32,
        }))
        .await?;
    municipality
        .record_benefit_self_report(coach.ask(v1::RecordBenefitSelfReportRequest {
            write: write(&participant_id),
            benefit: v1::BenefitKind::Sjukpenning as i32,
            said_on: today(),
        }))
        .await?;
    municipality
        .record_social_assistance(PARTIES[1].ask(v1::RecordSocialAssistanceRequest {
            write: write(&participant_id),
            status: v1::SocialAssistanceStatus::Granted as i32,
        }))
        .await?;
    stack
        .forsakringskassan()
        .await?
        .register_benefit(PARTIES[2].ask(v1::RegisterBenefitRequest {
            write: write(&participant_id),
            benefit: v1::BenefitKind::Sjukpenning as i32,
            degree_percent: 100,
            period: Some(v1::Period {
                from: days_from_today(-30),
                to: days_from_today(300),
            }),
            employed: false,
        }))
        .await?;
    stack
        .arbetsformedlingen()
        .await?
        .register_job_seeker(PARTIES[3].ask(v1::DateRequest {
            write: write(&participant_id),
            date: today(),
        }))
        .await?;
    let last = stack
        .psychiatry()
        .await?
        .change_availability(PARTIES[4].ask(v1::ChangeAvailabilityRequest {
            write: write(&participant_id),
            availability: v1::Availability::Available as i32,
            from: today(),
        }))
        .await?
        .into_inner();
    Ok((participant_id, last.sequence))
}

/// The event types `request` (a reader's GetTimeline) returns, once `min_sequence` is
/// projected.
/// The types `request` is shown. Hashes commit to all that was stored, shown or not (a guess
/// at a hidden field could be tested against them), so only an auditor (`as_auditor`) is shown
/// any `hash` or `prev_hash`.
async fn visible_types(
    stack: &Stack,
    request: tonic::Request<v1::GetTimelineRequest>,
    agency: Agency,
    as_auditor: bool,
) -> anyhow::Result<Vec<String>> {
    let entries = stack
        .timeline_as(agency)
        .await?
        .get_timeline(request)
        .await?
        .into_inner()
        .entries;
    for entry in &entries {
        assert_eq!(
            (!entry.hash.is_empty(), !entry.prev_hash.is_empty()),
            (as_auditor, as_auditor),
            "hashes of entry {} ({}) shown to an auditor only",
            entry.sequence,
            entry.event_type
        );
    }
    Ok(entries.into_iter().map(|entry| entry.event_type).collect())
}

fn timeline_request(participant_id: &str, min_sequence: u64) -> v1::GetTimelineRequest {
    v1::GetTimelineRequest {
        participant_id: participant_id.to_owned(),
        min_sequence,
        page_size: 1000,
        ..Default::default()
    }
}

/// What `recipient` sees of `discloser`'s event, and whether every other non-auditor party's
/// view is as expected (own events always, others never).
async fn check_sight(
    stack: &Stack,
    participant_id: &str,
    min_sequence: u64,
    discloser: Party,
    recipient: Party,
    expected_visible: bool,
    phase: &str,
) -> anyhow::Result<()> {
    let seen = visible_types(
        stack,
        recipient.ask(timeline_request(participant_id, min_sequence)),
        recipient.agency,
        false,
    )
    .await?;
    assert_eq!(
        seen.iter()
            .any(|event_type| event_type == discloser.event_type),
        expected_visible,
        "{phase}: {} → {}: {} visible to the recipient? saw {seen:?}",
        discloser.name,
        recipient.name,
        discloser.event_type
    );
    assert!(
        seen.iter()
            .any(|event_type| event_type == recipient.event_type),
        "{phase}: {} must always see its own {}: saw {seen:?}",
        recipient.name,
        recipient.event_type
    );
    // The self-report goes where the IPS unit's vocational profile goes, and nowhere else.
    let self_report_visible =
        recipient.name == "ips_unit" || (discloser.name == "ips_unit" && expected_visible);
    assert_eq!(
        seen.iter().any(|event_type| event_type == SELF_REPORT),
        self_report_visible,
        "{phase}: {} → {}: {SELF_REPORT} visible to the recipient? saw {seen:?}",
        discloser.name,
        recipient.name,
    );
    // The auditor sees everything, always, and the read is logged.
    let before = tests::access_log(stack, participant_id).await?.len();
    let audited = visible_types(
        stack,
        auditor(timeline_request(participant_id, min_sequence)),
        Agency::Municipality,
        true,
    )
    .await?;
    for event_type in PARTIES
        .iter()
        .map(|party| party.event_type)
        .chain([SELF_REPORT])
    {
        assert!(
            audited
                .iter()
                .any(|audited_type| audited_type == event_type),
            "{phase}: the auditor must see {event_type}: saw {audited:?}"
        );
    }
    let after = tests::access_log(stack, participant_id).await?;
    assert_eq!(
        after.len(),
        before + 1,
        "{phase}: one entry per auditor read"
    );
    assert_eq!(
        after.last().map(|(person, action, basis)| (
            person.as_str(),
            action.as_str(),
            basis.as_str()
        )),
        Some(("auditor-1", "ips.v1.TimelineService/GetTimeline", "audit")),
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_discloser_is_visible_to_each_recipient_only_under_consent_in_force(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant_id, mut sequence) = participant_with_every_party(&stack).await?;
    let mut municipality = stack.municipality().await?;
    let coach = PARTIES[0];
    for discloser in PARTIES {
        for recipient in PARTIES {
            if discloser.name == recipient.name {
                continue;
            }
            check_sight(
                &stack,
                &participant_id,
                sequence,
                discloser,
                recipient,
                false,
                "no consent",
            )
            .await?;
            // A consent for another category does not disclose this one.
            let other_category = PARTIES
                .iter()
                .map(|party| party.category)
                .find(|category| *category != discloser.category)
                .unwrap_or(v1::DataCategory::Participation);
            let grant = |category: v1::DataCategory| v1::GrantConsentRequest {
                participant_id: participant_id.clone(),
                discloser: discloser.consent_party as i32,
                recipient: recipient.consent_party as i32,
                data_categories: vec![category as i32],
                valid_from: days_from_today(-1),
                valid_to: days_from_today(365),
                ..Default::default()
            };
            sequence = municipality
                .grant_consent(coach.ask(grant(other_category)))
                .await?
                .into_inner()
                .sequence;
            check_sight(
                &stack,
                &participant_id,
                sequence,
                discloser,
                recipient,
                false,
                "other category",
            )
            .await?;
            sequence = municipality
                .grant_consent(coach.ask(grant(discloser.category)))
                .await?
                .into_inner()
                .sequence;
            check_sight(
                &stack,
                &participant_id,
                sequence,
                discloser,
                recipient,
                true,
                "consent",
            )
            .await?;
            // Consent is per direction and recipient: nobody else gains sight.
            for bystander in PARTIES {
                if bystander.name != discloser.name && bystander.name != recipient.name {
                    let seen = visible_types(
                        &stack,
                        bystander.ask(timeline_request(&participant_id, sequence)),
                        bystander.agency,
                        false,
                    )
                    .await?;
                    assert!(
                        !seen
                            .iter()
                            .any(|event_type| event_type == discloser.event_type),
                        "{} → {} must not disclose to {}: {seen:?}",
                        discloser.name,
                        recipient.name,
                        bystander.name
                    );
                    assert_eq!(
                        seen.iter().any(|event_type| event_type == SELF_REPORT),
                        bystander.name == "ips_unit",
                        "{} → {}: {SELF_REPORT} to {}: {seen:?}",
                        discloser.name,
                        recipient.name,
                        bystander.name
                    );
                }
            }
            sequence = municipality
                .withdraw_consent(coach.ask(v1::WithdrawConsentRequest {
                    participant_id: participant_id.clone(),
                    discloser: discloser.consent_party as i32,
                    recipient: recipient.consent_party as i32,
                    data_categories: vec![discloser.category as i32, other_category as i32],
                    effective_from: today(),
                    ..Default::default()
                }))
                .await?
                .into_inner()
                .sequence;
            check_sight(
                &stack,
                &participant_id,
                sequence,
                discloser,
                recipient,
                false,
                "withdrawn",
            )
            .await?;
        }
    }
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_text_never_crosses_a_party_boundary() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant_id, _) = participant_with_every_party(&stack).await?;
    let coach = PARTIES[0];
    let fk = PARTIES[2];
    let sequence = stack
        .municipality()
        .await?
        .grant_consent(coach.ask(v1::GrantConsentRequest {
            participant_id: participant_id.clone(),
            discloser: v1::ConsentParty::IpsUnit as i32,
            recipient: v1::ConsentParty::Forsakringskassan as i32,
            data_categories: vec![v1::DataCategory::VocationalProfile as i32],
            valid_from: days_from_today(-1),
            valid_to: days_from_today(365),
            ..Default::default()
        }))
        .await?
        .into_inner()
        .sequence;
    let profile_as_seen_by = |entries: Vec<v1::TimelineEntry>| {
        entries
            .into_iter()
            .find(|entry| entry.event_type == "ProfileRecorded")
            .map(|entry| entry.body_json)
    };
    let own = stack
        .timeline()
        .await?
        .get_timeline(coach.ask(timeline_request(&participant_id, sequence)))
        .await?
        .into_inner()
        .entries;
    let shared = stack
        .timeline_as(Agency::Forsakringskassan)
        .await?
        .get_timeline(fk.ask(timeline_request(&participant_id, sequence)))
        .await?
        .into_inner()
        .entries;
    let own = profile_as_seen_by(own).unwrap_or_default();
    let shared = profile_as_seen_by(shared).unwrap_or_default();
    assert!(
        own.contains("outdoor work"),
        "the IPS unit sees its own notes: {own}"
    );
    assert!(
        shared.contains("hours_per_week_wanted"),
        "FK sees the coarse facts: {shared}"
    );
    assert!(
        !shared.contains("outdoor work") && !shared.contains("preferences"),
        "free text must not reach FK: {shared}"
    );
    stack.stop().await;
    Ok(())
}

/// Issue 10: the shared view is an allow-list, so free text the old deny-list did not name (a
/// programme's name, an occupation) stays with its party too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_programme_name_never_crosses_a_party_boundary() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant_id, _) = participant_with_every_party(&stack).await?;
    let coach = PARTIES[0];
    let af = PARTIES[3];
    let mut arbetsformedlingen = stack.arbetsformedlingen().await?;
    arbetsformedlingen
        .assign_programme(af.ask(v1::AssignProgrammeRequest {
            write: write(&participant_id),
            programme: "Förberedande insatser".into(),
            with_activity_allowance: true,
            period: Some(v1::Period {
                from: today(),
                to: days_from_today(90),
            }),
            ..Default::default()
        }))
        .await?;
    let sequence = stack
        .municipality()
        .await?
        .grant_consent(coach.ask(v1::GrantConsentRequest {
            participant_id: participant_id.clone(),
            discloser: v1::ConsentParty::Arbetsformedlingen as i32,
            recipient: v1::ConsentParty::IpsUnit as i32,
            data_categories: vec![v1::DataCategory::LabourMarket as i32],
            valid_from: days_from_today(-1),
            valid_to: days_from_today(365),
            ..Default::default()
        }))
        .await?
        .into_inner()
        .sequence;
    let programme_as_seen_by = |entries: Vec<v1::TimelineEntry>| {
        entries
            .into_iter()
            .find(|entry| entry.event_type == "ProgrammeAssigned")
            .map(|entry| entry.body_json)
    };
    let own = stack
        .timeline_as(Agency::Arbetsformedlingen)
        .await?
        .get_timeline(af.ask(timeline_request(&participant_id, sequence)))
        .await?
        .into_inner()
        .entries;
    let shared = stack
        .timeline()
        .await?
        .get_timeline(coach.ask(timeline_request(&participant_id, sequence)))
        .await?
        .into_inner()
        .entries;
    let own = programme_as_seen_by(own).unwrap_or_default();
    let shared = programme_as_seen_by(shared).unwrap_or_default();
    assert!(
        own.contains("Förberedande insatser"),
        "AF sees its own programme: {own}"
    );
    assert!(
        shared.contains("with_activity_allowance") && shared.contains("period"),
        "the IPS unit sees the coarse facts under consent: {shared}"
    );
    assert!(
        !shared.contains("Förberedande insatser") && !shared.contains("\"programme\""),
        "the programme's name must not reach the IPS unit: {shared}"
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_rpc_logs_exactly_one_entry_per_participant_read() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (first, _) = participant_with_every_party(&stack).await?;
    let (second, _) = participant_with_every_party(&stack).await?;
    let count = |rows: &[(String, String, String)], action: &str| {
        rows.iter()
            .filter(|(_, logged, _)| logged == action)
            .count()
    };
    let (stack_ref, first_ref, second_ref) = (&stack, &first, &second);
    let both = |action: &'static str| async move {
        let first_rows = tests::access_log(stack_ref, first_ref).await?;
        let second_rows = tests::access_log(stack_ref, second_ref).await?;
        anyhow::Ok((count(&first_rows, action), count(&second_rows, action)))
    };

    // GetTimeline: one participant.
    stack
        .timeline()
        .await?
        .get_timeline(testkit::as_team_leader(timeline_request(&first, 0)))
        .await?;
    assert_eq!(both("ips.v1.TimelineService/GetTimeline").await?, (1, 0));

    // VerifyChain: one participant.
    stack
        .timeline()
        .await?
        .verify_chain(auditor(v1::VerifyChainRequest {
            participant_id: second.clone(),
        }))
        .await?;
    assert_eq!(both("ips.v1.TimelineService/VerifyChain").await?, (0, 1));

    // GetPlacement: one participant.
    stack
        .caseload()
        .await?
        .get_placement(testkit::as_team_leader(v1::GetPlacementRequest {
            participant_id: first.clone(),
        }))
        .await?;
    assert_eq!(both("ips.v1.CaseloadService/GetPlacement").await?, (1, 0));

    // GetUnitLoad (the enrolments' capacity check) returns counts only: no participant read.
    let load = stack
        .caseload()
        .await?
        .get_unit_load(testkit::as_team_leader(v1::GetUnitLoadRequest {
            unit: "hudiksvall-ips".into(),
            include_next_waiting: true,
        }))
        .await?
        .into_inner();
    assert_eq!(
        load.coaches
            .iter()
            .map(|coach| coach.active_participants)
            .sum::<u32>(),
        2
    );
    assert!(load.next_waiting_participant_id.is_empty(), "nobody waits");
    let everything = |rows: &[(String, String, String)]| rows.len();
    assert_eq!(
        (
            everything(&tests::access_log(&stack, &first).await?),
            everything(&tests::access_log(&stack, &second).await?)
        ),
        (2, 1),
        "only the GetTimeline, VerifyChain and GetPlacement reads so far"
    );

    // GetCaseload: both participants are on the board, one entry each.
    let (first_before, second_before) = both("ips.v1.CaseloadService/GetCaseload").await?;
    let board = stack
        .caseload()
        .await?
        .get_caseload(testkit::as_team_leader(v1::GetCaseloadRequest {
            unit: "hudiksvall-ips".into(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    assert_eq!(board.active.len(), 2);
    assert_eq!(
        both("ips.v1.CaseloadService/GetCaseload").await?,
        (first_before + 1, second_before + 1)
    );

    // Another unit's coach may not read this unit's board.
    let refused = stack
        .caseload()
        .await?
        .get_caseload(testkit::as_caller(
            v1::GetCaseloadRequest {
                unit: "hudiksvall-ips".into(),
                ..Default::default()
            },
            "coach-3",
            Role::Coach,
            "bollnas-ips",
        ))
        .await
        .expect_err("another unit's board");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        refused
            .metadata()
            .get("ips-rule")
            .and_then(|value| value.to_str().ok()),
        Some("other_unit")
    );

    // GetEventStatus: the participant of the event.
    let referred = stack
        .municipality()
        .await?
        .refer_participant(testkit::as_coach(v1::ReferParticipantRequest {
            source: v1::ReferralSource::Ifo as i32,
            ..Default::default()
        }))
        .await?
        .into_inner();
    stack
        .timeline()
        .await?
        .get_event_status(testkit::as_coach(v1::GetEventStatusRequest {
            event_id: referred.event_id.clone(),
        }))
        .await?;
    let third_rows = tests::access_log(&stack, &referred.participant_id).await?;
    assert_eq!(
        count(&third_rows, "ips.v1.TimelineService/GetEventStatus"),
        1
    );

    // GetAccessLogExtract: the extract is a read too, logged before it is returned, so the
    // extract shows every earlier read and the next extract shows this one.
    let mut audit = stack.audit_as(Agency::Municipality).await?;
    let extract = audit
        .get_access_log_extract(auditor(v1::GetAccessLogExtractRequest {
            participant_id: first.clone(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let actions: Vec<&str> = extract
        .entries
        .iter()
        .map(|entry| entry.action.as_str())
        .collect();
    assert!(
        actions.contains(&"ips.v1.TimelineService/GetTimeline"),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"ips.v1.CaseloadService/GetCaseload"),
        "{actions:?}"
    );
    assert_eq!(
        both("ips.v1.AuditService/GetAccessLogExtract").await?,
        (1, 0)
    );
    let reader = extract
        .entries
        .iter()
        .find(|entry| entry.action == "ips.v1.TimelineService/GetTimeline")
        .and_then(|entry| entry.reader.clone())
        .unwrap_or_default();
    assert_eq!(
        (reader.person_id.as_str(), reader.role.as_str()),
        ("team-leader-1", "team_leader")
    );

    // WatchGreenLight and PendingApprovals log per participant as well; the green-light tests
    // and the scenario harness drive them, and this checks the entries they leave.
    let mut watch = stack
        .green_light()
        .await?
        .watch_green_light(testkit::as_coach(v1::WatchGreenLightRequest {
            participant_id: first.clone(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    // No open gate: nothing is pushed within a watch's re-evaluation cycles, so nothing is read.
    let pushed = tokio::time::timeout(std::time::Duration::from_secs(3), watch.message()).await;
    assert!(pushed.is_err(), "nothing to push: {pushed:?}");
    assert_eq!(
        both("ips.v1.GreenLightService/WatchGreenLight").await?,
        (0, 0)
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_role_cannot_update_or_delete_events_or_the_access_log() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant_id, _) = participant_with_every_party(&stack).await?;
    stack
        .timeline()
        .await?
        .get_timeline(testkit::as_coach(timeline_request(&participant_id, 0)))
        .await?;
    let service = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&stack.database.service_url())
        .await?;
    for statement in [
        "UPDATE events SET payload = payload",
        "DELETE FROM events",
        "UPDATE access_log SET basis = 'forged'",
        "DELETE FROM access_log",
        "TRUNCATE events",
    ] {
        let error = sqlx::query(statement)
            .execute(&service)
            .await
            .expect_err(statement);
        let code = error
            .as_database_error()
            .and_then(|database| database.code())
            .map(|code| code.into_owned());
        // 42501: insufficient_privilege, refused by the grants before any trigger runs.
        assert_eq!(code.as_deref(), Some("42501"), "{statement}: {error}");
    }
    // The role can still do its job: read and append.
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&service)
        .await?;
    assert!(count > 0);
    service.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_participant_is_left_off_the_board_of_anyone_not_on_the_allow_list(
) -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (open, _) = participant_with_every_party(&stack).await?;
    let (protected, _) = participant_with_every_party(&stack).await?;
    let written = stack
        .municipality()
        .await?
        .protect_identity(testkit::as_coach(v1::ProtectIdentityRequest {
            write: write(&protected),
            allowed_person_ids: vec!["coach-17".into(), "team-leader-1".into()],
            allowed_readers: Vec::new(),
        }))
        .await?
        .into_inner();
    // Read-your-write: the timeline read waits until the protection is projected.
    stack
        .timeline()
        .await?
        .get_timeline(testkit::as_coach(timeline_request(
            &protected,
            written.sequence,
        )))
        .await?;
    let board_as = |person: &'static str, role: Role| {
        let stack = &stack;
        async move {
            let board = stack
                .caseload()
                .await?
                .get_caseload(testkit::as_caller(
                    v1::GetCaseloadRequest {
                        unit: "hudiksvall-ips".into(),
                        ..Default::default()
                    },
                    person,
                    role,
                    "hudiksvall-ips",
                ))
                .await?
                .into_inner();
            let listed: Vec<String> = board
                .active
                .iter()
                .map(|participant| participant.participant_id.clone())
                .collect();
            let counted: u32 = board
                .coaches
                .iter()
                .map(|coach| coach.active_participants)
                .sum();
            anyhow::Ok((listed, counted))
        }
    };
    let (listed, counted) = board_as("team-leader-1", Role::TeamLeader).await?;
    assert!(
        listed.contains(&open) && listed.contains(&protected),
        "{listed:?}"
    );
    assert_eq!(counted, 2);
    let (listed, counted) = board_as("coach-18", Role::Coach).await?;
    assert_eq!(
        listed,
        vec![open.clone()],
        "the protected participant is left off"
    );
    assert_eq!(
        counted, 2,
        "counts identify no one and still include everyone"
    );
    // Nor does an event id open it: the protection's own entry is unknown to a coach of the
    // unit who is not on the list, and to social services (another party), while the team
    // leader on the list learns its status.
    let status_as = |person: &'static str, role: Role, unit: &'static str| {
        let stack = &stack;
        let event_id = written.event_id.clone();
        async move {
            let status = stack
                .timeline()
                .await?
                .get_event_status(testkit::as_caller(
                    v1::GetEventStatusRequest { event_id },
                    person,
                    role,
                    unit,
                ))
                .await?
                .into_inner();
            anyhow::Ok((status.status(), status.participant_id))
        }
    };
    for (person, role, unit) in [
        ("coach-18", Role::Coach, "hudiksvall-ips"),
        ("ifo-officer-3", Role::CaseOfficer, "hudiksvall-ifo"),
    ] {
        assert_eq!(
            status_as(person, role, unit).await?,
            (v1::EventStatus::Unknown, String::new()),
            "GetEventStatus as {person}"
        );
    }
    assert_eq!(
        status_as("team-leader-1", Role::TeamLeader, "hudiksvall-ips")
            .await?
            .0,
        v1::EventStatus::Accepted
    );
    stack.stop().await;
    Ok(())
}

/// A protected identity's allow-list names people of organisations: person ids come from each
/// organisation's own directory, so FK's `coach-17` is not the municipality's, and an FK officer
/// the IPS unit names (with FK) opens the participant while a municipal namesake does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allow_list_names_each_person_with_their_organisation() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant_id, _) = participant_with_every_party(&stack).await?;
    let fk = PARTIES[2];
    let written = stack
        .municipality()
        .await?
        .protect_identity(testkit::as_coach(v1::ProtectIdentityRequest {
            write: write(&participant_id),
            allowed_person_ids: vec!["coach-17".into()],
            allowed_readers: vec![v1::AllowedReader {
                agency: v1::Agency::Forsakringskassan as i32,
                person_id: fk.person.into(),
            }],
        }))
        .await?
        .into_inner();
    let read_as = |agency: Agency, person: &'static str, role: Role, unit: &'static str| {
        let stack = &stack;
        let participant_id = &participant_id;
        async move {
            let read = stack
                .timeline_as(agency)
                .await?
                .get_timeline(as_officer(
                    timeline_request(participant_id, written.sequence),
                    agency,
                    person,
                    role,
                    unit,
                ))
                .await;
            anyhow::Ok(refusal(read))
        }
    };
    let opened = (tonic::Code::Ok, String::new());
    let denied = (
        tonic::Code::PermissionDenied,
        "protected_identity".to_owned(),
    );
    // The FK officer named with FK opens it; the municipal coach-17 still does.
    assert_eq!(
        read_as(fk.agency, fk.person, fk.role, fk.unit).await?,
        opened
    );
    assert_eq!(
        read_as(
            Agency::Municipality,
            "coach-17",
            Role::Coach,
            "hudiksvall-ips"
        )
        .await?,
        opened
    );
    // A municipal officer whose id is the FK officer's, and an FK officer whose id is the
    // municipal coach's, are other people.
    assert_eq!(
        read_as(
            Agency::Municipality,
            fk.person,
            Role::Coach,
            "hudiksvall-ips"
        )
        .await?,
        denied
    );
    assert_eq!(
        read_as(fk.agency, "coach-17", fk.role, fk.unit).await?,
        denied
    );
    stack.stop().await;
    Ok(())
}

/// The `ips-rule` of a refusal, or "" for an answer.
fn refusal<T>(outcome: Result<tonic::Response<T>, tonic::Status>) -> (tonic::Code, String) {
    match outcome {
        Ok(_) => (tonic::Code::Ok, String::new()),
        Err(status) => (
            status.code(),
            status
                .metadata()
                .get("ips-rule")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_of_another_unit_may_neither_read_nor_write_a_participant() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let (participant_id, sequence) = participant_with_every_party(&stack).await?;
    let denied = (tonic::Code::PermissionDenied, "other_unit".to_owned());
    let mut timeline = stack.timeline().await?;
    for (person, role, unit) in [
        ("coach-99", Role::Coach, "bollnas-ips"),
        ("team-leader-9", Role::TeamLeader, "bollnas-ips"),
        ("ifo-officer-9", Role::CaseOfficer, "bollnas-ifo"),
    ] {
        let read = timeline
            .get_timeline(testkit::as_caller(
                timeline_request(&participant_id, sequence),
                person,
                role,
                unit,
            ))
            .await;
        assert_eq!(refusal(read), denied, "GetTimeline as {person} of {unit}");
    }
    let own = timeline
        .get_timeline(testkit::as_coach(timeline_request(
            &participant_id,
            sequence,
        )))
        .await;
    assert_eq!(refusal(own).0, tonic::Code::Ok);
    let mut municipality = stack.municipality().await?;
    for (person, role) in [
        ("coach-99", Role::Coach),
        ("team-leader-9", Role::TeamLeader),
    ] {
        let paused = municipality
            .pause_participant(testkit::as_caller(
                v1::PauseParticipantRequest {
                    write: write(&participant_id),
                    reason: "semester".into(),
                },
                person,
                role,
                "bollnas-ips",
            ))
            .await;
        assert_eq!(refusal(paused), denied, "PauseParticipant as {person}");
        let followed_up = municipality
            .record_follow_up(testkit::as_caller(
                v1::RecordFollowUpRequest {
                    write: write(&participant_id),
                    status: v1::FollowUpStatus::Searching as i32,
                    obstacles: "none".into(),
                    helping_factors: "none".into(),
                },
                person,
                role,
                "bollnas-ips",
            ))
            .await;
        assert_eq!(refusal(followed_up), denied, "RecordFollowUp as {person}");
        let placement = stack
            .caseload()
            .await?
            .get_placement(testkit::as_caller(
                v1::GetPlacementRequest {
                    participant_id: participant_id.clone(),
                },
                person,
                role,
                "bollnas-ips",
            ))
            .await;
        assert_eq!(refusal(placement), denied, "GetPlacement as {person}");
        let watched = stack
            .green_light()
            .await?
            .watch_green_light(testkit::as_caller(
                v1::WatchGreenLightRequest {
                    participant_id: participant_id.clone(),
                    ..Default::default()
                },
                person,
                role,
                "bollnas-ips",
            ))
            .await;
        assert_eq!(
            refusal(watched),
            denied,
            "WatchGreenLight by participant as {person}"
        );
    }
    stack.stop().await;
    Ok(())
}

/// What `party` is shown of a participant's inpatient stays: the stay types and the
/// availability they may be shown as, in order, with `care_form` where the body holds it.
async fn stay_types_seen(
    stack: &Stack,
    participant_id: &str,
    min_sequence: u64,
    party: Party,
) -> anyhow::Result<Vec<String>> {
    let entries = stack
        .timeline_as(party.agency)
        .await?
        .get_timeline(party.ask(timeline_request(participant_id, min_sequence)))
        .await?
        .into_inner()
        .entries;
    Ok(entries
        .into_iter()
        .filter(|entry| {
            matches!(
                entry.event_type.as_str(),
                "InpatientAdmitted" | "InpatientDischarged" | "AvailabilityChanged"
            )
        })
        .map(|entry| match entry.body_json.contains("care_form") {
            true => format!("{} with care_form", entry.event_type),
            false => entry.event_type,
        })
        .collect())
}

/// Asserts that `party`, shown no stay, cannot learn of one by filtering on the stay types or
/// on psychiatry's records, a page at a time: no entry, and no page token (a token would say
/// that something it may not see matched, and where).
async fn filters_leave_no_trace_of_a_stay(
    stack: &Stack,
    participant_id: &str,
    min_sequence: u64,
    party: Party,
    context: &str,
) -> anyhow::Result<()> {
    let probes = [
        v1::GetTimelineRequest {
            event_types: vec!["InpatientAdmitted".into(), "InpatientDischarged".into()],
            ..timeline_request(participant_id, min_sequence)
        },
        v1::GetTimelineRequest {
            agencies: vec![v1::Agency::Psychiatry as i32],
            ..timeline_request(participant_id, min_sequence)
        },
    ];
    for probe in probes {
        let page = stack
            .timeline_as(party.agency)
            .await?
            .get_timeline(party.ask(v1::GetTimelineRequest {
                page_size: 1,
                ..probe.clone()
            }))
            .await?
            .into_inner();
        assert_eq!(
            (page.entries.len(), page.next_page_token.as_str()),
            (0, ""),
            "{context}: {} probing with {:?} / {:?}",
            party.name,
            probe.event_types,
            probe.agencies
        );
    }
    Ok(())
}

/// The consent matrix for the inpatient events (issue 12), for each care form and each party
/// outside psychiatry: without consent, under psychiatry → party consent for coarse health
/// data, and after its withdrawal. The IPS unit sees a stay only as availability and only under
/// consent; social services sees a compulsory admission by the LPT necessary-care rule, and the
/// care form; FK and AF never see a stay, consent or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inpatient_stays_follow_the_consent_matrix_and_the_lpt_rule() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let coach = PARTIES[0];
    let psychiatry = PARTIES[4];
    let availability = || vec!["AvailabilityChanged".to_owned(); 2];
    let none = Vec::<String>::new;
    for care_form in [v1::CareForm::Voluntary, v1::CareForm::Compulsory] {
        let mut municipality = stack.municipality().await?;
        let participant_id = municipality
            .refer_participant(coach.ask(v1::ReferParticipantRequest {
                source: v1::ReferralSource::Vuxenpsykiatri as i32,
                ..Default::default()
            }))
            .await?
            .into_inner()
            .participant_id;
        let mut psychiatry_service = stack.psychiatry().await?;
        psychiatry_service
            .record_inpatient_admission(psychiatry.ask(v1::InpatientAdmissionRequest {
                write: write(&participant_id),
                admitted_on: days_from_today(-10),
                care_form: care_form as i32,
            }))
            .await?;
        let mut sequence = psychiatry_service
            .record_inpatient_discharge(psychiatry.ask(v1::DateRequest {
                write: write(&participant_id),
                date: days_from_today(-2),
            }))
            .await?
            .into_inner()
            .sequence;
        let compulsory = care_form == v1::CareForm::Compulsory;
        for recipient in &PARTIES[..4] {
            let (without, with) = match recipient.name {
                "ips_unit" => (none(), availability()),
                "social_services" => (
                    if compulsory {
                        vec!["InpatientAdmitted with care_form".to_owned()]
                    } else {
                        none()
                    },
                    vec![
                        "InpatientAdmitted with care_form".to_owned(),
                        "InpatientDischarged".to_owned(),
                    ],
                ),
                _ => (none(), none()),
            };
            let context = format!("{care_form:?} care, {}", recipient.name);
            assert_eq!(
                stay_types_seen(&stack, &participant_id, sequence, *recipient).await?,
                without,
                "{context}: without consent"
            );
            if without.is_empty() {
                filters_leave_no_trace_of_a_stay(
                    &stack,
                    &participant_id,
                    sequence,
                    *recipient,
                    &format!("{context}: without consent"),
                )
                .await?;
            }
            sequence = municipality
                .grant_consent(coach.ask(v1::GrantConsentRequest {
                    participant_id: participant_id.clone(),
                    discloser: v1::ConsentParty::Psychiatry as i32,
                    recipient: recipient.consent_party as i32,
                    data_categories: vec![v1::DataCategory::HealthCoarse as i32],
                    valid_from: days_from_today(-1),
                    valid_to: days_from_today(365),
                    ..Default::default()
                }))
                .await?
                .into_inner()
                .sequence;
            assert_eq!(
                stay_types_seen(&stack, &participant_id, sequence, *recipient).await?,
                with,
                "{context}: under consent"
            );
            if with.is_empty() {
                filters_leave_no_trace_of_a_stay(
                    &stack,
                    &participant_id,
                    sequence,
                    *recipient,
                    &format!("{context}: under consent"),
                )
                .await?;
            }
            sequence = municipality
                .withdraw_consent(coach.ask(v1::WithdrawConsentRequest {
                    participant_id: participant_id.clone(),
                    discloser: v1::ConsentParty::Psychiatry as i32,
                    recipient: recipient.consent_party as i32,
                    data_categories: vec![v1::DataCategory::HealthCoarse as i32],
                    effective_from: today(),
                    ..Default::default()
                }))
                .await?
                .into_inner()
                .sequence;
            assert_eq!(
                stay_types_seen(&stack, &participant_id, sequence, *recipient).await?,
                without,
                "{context}: after withdrawal"
            );
            if without.is_empty() {
                filters_leave_no_trace_of_a_stay(
                    &stack,
                    &participant_id,
                    sequence,
                    *recipient,
                    &format!("{context}: after withdrawal"),
                )
                .await?;
            }
        }
        // Psychiatry sees its own entries whole.
        assert_eq!(
            stay_types_seen(&stack, &participant_id, sequence, psychiatry).await?,
            vec![
                "InpatientAdmitted with care_form".to_owned(),
                "InpatientDischarged".to_owned()
            ]
        );
    }
    stack.stop().await;
    Ok(())
}
