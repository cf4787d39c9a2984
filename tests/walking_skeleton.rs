//! The walking skeleton end to end: an agency event goes over gRPC to the municipality service,
//! through JetStream to the ledger, into PostgreSQL and the timeline, exactly once, with a
//! verifiable chain; and bad input gets the right code naming the field or rule.

use domain::Role;
use proto::v1;
use testkit::{as_caller, as_coach, Stack};
use tonic::Code;
use tonic_types::StatusExt;

fn refer(request_id: &str) -> v1::ReferParticipantRequest {
    v1::ReferParticipantRequest {
        context: Some(v1::WriteContext {
            request_id: request_id.into(),
            ..Default::default()
        }),
        participant_id: String::new(),
        source: v1::ReferralSource::Vuxenpsykiatri as i32,
        referrer_unit: "hudiksvall-vuxenpsykiatri".into(),
    }
}

fn enrol(participant_id: &str) -> v1::EnrollParticipantRequest {
    v1::EnrollParticipantRequest {
        context: None,
        participant_id: participant_id.into(),
        unit: "hudiksvall-ips".into(),
        coach_person_id: "coach-17".into(),
    }
}

fn consent(participant_id: &str, valid_from: &str, valid_to: &str) -> v1::GrantConsentRequest {
    v1::GrantConsentRequest {
        context: None,
        participant_id: participant_id.into(),
        consent_id: String::new(),
        discloser: v1::ConsentParty::Forsakringskassan as i32,
        recipient: v1::ConsentParty::IpsUnit as i32,
        data_categories: vec![v1::DataCategory::BenefitDecisions as i32],
        valid_from: valid_from.into(),
        valid_to: valid_to.into(),
    }
}

/// The field a status's BadRequest detail names.
fn violated_field(status: &tonic::Status) -> Option<String> {
    status.get_details_bad_request().and_then(|bad_request| {
        bad_request
            .field_violations
            .first()
            .map(|violation| violation.field.clone())
    })
}

fn rule_of(status: &tonic::Status) -> Option<String> {
    status
        .metadata()
        .get("ips-rule")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_enrol_consent_reach_the_timeline_in_order_with_a_chain() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let mut timeline = stack.timeline().await?;

    let referred = municipality
        .refer_participant(as_coach(refer("")))
        .await?
        .into_inner();
    assert_eq!(
        referred.status,
        v1::WriteStatus::Accepted as i32,
        "{referred:?}"
    );
    let participant_id = referred.participant_id.clone();
    let enrolled = municipality
        .enroll_participant(as_coach(enrol(&participant_id)))
        .await?
        .into_inner();
    let consented = municipality
        .grant_consent(as_coach(consent(
            &participant_id,
            "2026-01-01",
            "2026-12-31",
        )))
        .await?
        .into_inner();
    assert_eq!(
        (referred.sequence, enrolled.sequence, consented.sequence),
        (1, 2, 3)
    );

    let request = v1::GetTimelineRequest {
        participant_id: participant_id.clone(),
        min_sequence: 3,
        ..Default::default()
    };
    let entries = timeline
        .get_timeline(testkit::as_auditor(request))
        .await?
        .into_inner()
        .entries;
    let types: Vec<&str> = entries
        .iter()
        .map(|entry| entry.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "ParticipantReferred",
            "ParticipantEnrolled",
            "ConsentGranted"
        ]
    );
    assert_eq!(
        entries
            .iter()
            .map(|entry| entry.sequence)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(entries[0].prev_hash, domain::chain::GENESIS_HASH);
    for pair in entries.windows(2) {
        assert_eq!(
            pair[1].prev_hash, pair[0].hash,
            "each prev_hash is the previous hash"
        );
    }
    assert_eq!(entries[2].hash, consented.hash);
    assert_eq!(entries[0].event_id, referred.event_id);
    assert_eq!(
        entries[1].actor.as_ref().map(|actor| actor.role.as_str()),
        Some("coach")
    );

    let verified = timeline
        .verify_chain(testkit::as_auditor(v1::VerifyChainRequest {
            participant_id: participant_id.clone(),
        }))
        .await?
        .into_inner();
    assert!(verified.intact, "{verified:?}");
    assert_eq!(verified.verified_entries, 3);
    assert_eq!(verified.head_hash, consented.hash);

    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_request_id_returns_the_first_outcome_and_records_once() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let first = municipality
        .refer_participant(as_coach(refer("intake-2026-0042")))
        .await?
        .into_inner();
    // The retry carries no participant id either (the client never learnt it): the same request
    // id must still land on the same participant and event.
    let second = municipality
        .refer_participant(as_coach(refer("intake-2026-0042")))
        .await?
        .into_inner();
    assert_eq!(second.event_id, first.event_id);
    assert_eq!(second.participant_id, first.participant_id);
    assert_eq!(
        (second.status, second.sequence, second.hash.as_str()),
        (first.status, first.sequence, first.hash.as_str())
    );

    assert_eq!(stack.stored_events(None).await?, 1);
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_rules_come_back_as_failed_precondition_and_are_recorded() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let mut timeline = stack.timeline().await?;
    let stranger = uuid::Uuid::new_v4().to_string();

    let refused = municipality
        .enroll_participant(as_coach(enrol(&stranger)))
        .await
        .err();
    let refused =
        refused.ok_or_else(|| anyhow::anyhow!("enrolment without referral must be refused"))?;
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(
        rule_of(&refused).as_deref(),
        Some("enrolment_needs_referral")
    );
    let event_id = refused
        .metadata()
        .get("ips-event-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_default();
    let status = timeline
        .get_event_status(testkit::as_coach(v1::GetEventStatusRequest { event_id }))
        .await?
        .into_inner();
    assert_eq!(status.status, v1::EventStatus::Rejected as i32);
    assert_eq!(status.rejected_rule, "enrolment_needs_referral");

    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_the_field_and_unknown_participants_are_not_found() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let mut timeline = stack.timeline().await?;
    let participant_id = municipality
        .refer_participant(as_coach(refer("")))
        .await?
        .into_inner()
        .participant_id;

    struct Case {
        result: Result<tonic::Response<v1::WriteResponse>, tonic::Status>,
        expected_code: Code,
        expected_field: Option<&'static str>,
    }
    let mut no_source = refer("");
    no_source.source = 0;
    let mut cases = vec![
        Case {
            result: municipality.refer_participant(as_coach(no_source)).await,
            expected_code: Code::InvalidArgument,
            expected_field: Some("source"),
        },
        Case {
            result: municipality
                .enroll_participant(as_coach(enrol("not-a-uuid")))
                .await,
            expected_code: Code::InvalidArgument,
            expected_field: Some("participant_id"),
        },
        Case {
            result: municipality.enroll_participant(as_coach(enrol(""))).await,
            expected_code: Code::InvalidArgument,
            expected_field: Some("participant_id"),
        },
        Case {
            result: municipality
                .grant_consent(as_coach(consent(
                    &participant_id,
                    "2026-05-01",
                    "2026-04-01",
                )))
                .await,
            expected_code: Code::InvalidArgument,
            expected_field: Some("valid_to"),
        },
        Case {
            result: municipality
                .grant_consent(as_coach(consent(
                    &participant_id,
                    "2026-13-01",
                    "2026-14-01",
                )))
                .await,
            expected_code: Code::InvalidArgument,
            expected_field: Some("valid_from"),
        },
        Case {
            result: municipality
                .enroll_participant(tonic::Request::new(enrol(&participant_id)))
                .await,
            expected_code: Code::Unauthenticated,
            expected_field: None,
        },
    ];
    let mut bad_unit = enrol(&participant_id);
    bad_unit.unit = "a unit with spaces".into();
    cases.push(Case {
        result: municipality.enroll_participant(as_coach(bad_unit)).await,
        expected_code: Code::InvalidArgument,
        expected_field: Some("unit"),
    });
    let mut bad_role = enrol(&participant_id);
    bad_role.coach_person_id = String::new();
    cases.push(Case {
        result: municipality
            .enroll_participant(as_caller(
                bad_role,
                "coach-17",
                Role::Coach,
                "hudiksvall-ips",
            ))
            .await,
        expected_code: Code::InvalidArgument,
        expected_field: Some("coach_person_id"),
    });
    for (index, case) in cases.into_iter().enumerate() {
        let Err(status) = case.result else {
            panic!("case {index} must be refused")
        };
        assert_eq!(
            status.code(),
            case.expected_code,
            "case {index}: {status:?}"
        );
        if let Some(field) = case.expected_field {
            assert_eq!(
                violated_field(&status).as_deref(),
                Some(field),
                "case {index}: {status:?}"
            );
        }
    }

    let unknown = timeline
        .get_timeline(testkit::as_auditor(v1::GetTimelineRequest {
            participant_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        }))
        .await;
    assert_eq!(
        unknown.err().map(|status| status.code()),
        Some(Code::NotFound)
    );
    let malformed = timeline
        .get_timeline(testkit::as_auditor(v1::GetTimelineRequest {
            participant_id: "x".into(),
            ..Default::default()
        }))
        .await;
    assert_eq!(
        malformed.err().map(|status| status.code()),
        Some(Code::InvalidArgument)
    );
    let too_big_page = timeline
        .get_timeline(testkit::as_auditor(v1::GetTimelineRequest {
            participant_id: participant_id.clone(),
            page_size: 100_000,
            ..Default::default()
        }))
        .await;
    assert_eq!(
        too_big_page
            .err()
            .as_ref()
            .and_then(violated_field)
            .as_deref(),
        Some("page_size")
    );

    // Nothing invalid reached the ledger: only the referral is stored.
    assert_eq!(stack.stored_events(None).await?, 1);
    stack.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_pages_in_order() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let mut timeline = stack.timeline().await?;
    let participant_id = municipality
        .refer_participant(as_coach(refer("")))
        .await?
        .into_inner()
        .participant_id;
    municipality
        .enroll_participant(as_coach(enrol(&participant_id)))
        .await?;
    for month in 1..=5 {
        let from = format!("2026-{month:02}-01");
        let to = format!("2026-{month:02}-20");
        municipality
            .grant_consent(as_coach(consent(&participant_id, &from, &to)))
            .await?;
    }
    let mut sequences = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let request = v1::GetTimelineRequest {
            participant_id: participant_id.clone(),
            min_sequence: 7,
            page_size: 3,
            page_token,
            ..Default::default()
        };
        let page = timeline
            .get_timeline(testkit::as_auditor(request))
            .await?
            .into_inner();
        pages += 1;
        sequences.extend(page.entries.iter().map(|entry| entry.sequence));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(sequences, (1..=7).collect::<Vec<u64>>());
    assert_eq!(pages, 3);

    // Filters: by event type across pages, by agency, and by business-time period.
    let consents = read_all(
        &mut timeline,
        v1::GetTimelineRequest {
            participant_id: participant_id.clone(),
            page_size: 2,
            event_types: vec!["ConsentGranted".into()],
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(consents, (3..=7).collect::<Vec<u64>>());
    let from_fk = read_all(
        &mut timeline,
        v1::GetTimelineRequest {
            participant_id: participant_id.clone(),
            agencies: vec![v1::Agency::Forsakringskassan as i32],
            ..Default::default()
        },
    )
    .await?;
    assert!(from_fk.is_empty());
    let future = read_all(
        &mut timeline,
        v1::GetTimelineRequest {
            participant_id: participant_id.clone(),
            occurred_from: "2099-01-01T00:00:00Z".into(),
            ..Default::default()
        },
    )
    .await?;
    assert!(future.is_empty());
    let bad_filter = timeline
        .get_timeline(testkit::as_auditor(v1::GetTimelineRequest {
            participant_id: participant_id.clone(),
            occurred_to: "soon".into(),
            ..Default::default()
        }))
        .await;
    assert_eq!(
        bad_filter
            .err()
            .as_ref()
            .and_then(violated_field)
            .as_deref(),
        Some("occurred_to")
    );
    stack.stop().await;
    Ok(())
}

/// Every sequence a (filtered) timeline read returns, following page tokens.
async fn read_all(
    timeline: &mut proto::v1::timeline_service_client::TimelineServiceClient<
        tonic::transport::Channel,
    >,
    mut request: v1::GetTimelineRequest,
) -> anyhow::Result<Vec<u64>> {
    let mut sequences = Vec::new();
    loop {
        let page = timeline
            .get_timeline(testkit::as_auditor(request.clone()))
            .await?
            .into_inner();
        sequences.extend(page.entries.iter().map(|entry| entry.sequence));
        if page.next_page_token.is_empty() {
            return Ok(sequences);
        }
        request.page_token = page.next_page_token;
    }
}
