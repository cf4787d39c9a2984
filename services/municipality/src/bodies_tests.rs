//! The municipality's bodies, called directly: a valid request gives the expected body, and a
//! missing or invalid field is refused naming that field.

use super::*;
use domain::values::{
    ActivityKind, BenefitKind, DischargeReason, DisclosurePreference, EducationLevel,
    FollowUpStatus, JobEndReason, OutreachChannel, SocialAssistanceStatus, Subsidy,
};
use domain::{ConsentParty, DataCategory, ReferralSource};

const ACTIVITY: &str = "0193a1b2-0000-4000-8000-000000000031";
const CONSENT: &str = "0193a1b2-0000-4000-8000-000000000032";

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a test date")
}

fn activity() -> ActivityId {
    ActivityId::parse(ACTIVITY).expect("a test id")
}

fn failed(body: Result<EventBody, InputError>) -> (String, String) {
    let error = body.expect_err("the request is invalid");
    (error.field, error.reason)
}

fn failed_field(body: Result<EventBody, InputError>) -> String {
    failed(body).0
}

#[test]
fn a_referral_names_its_source_and_optionally_the_referrer() {
    let request = v1::ReferParticipantRequest {
        source: v1::ReferralSource::Vuxenpsykiatri as i32,
        referrer_unit: " hudiksvall-vuxenpsykiatri ".into(),
        ..Default::default()
    };
    assert_eq!(
        refer_participant(&request),
        Ok(EventBody::ParticipantReferred {
            source: ReferralSource::Vuxenpsykiatri,
            referrer: Some(UnitId("hudiksvall-vuxenpsykiatri".into())),
        })
    );
    assert_eq!(
        refer_participant(&v1::ReferParticipantRequest {
            referrer_unit: String::new(),
            ..request.clone()
        }),
        Ok(EventBody::ParticipantReferred {
            source: ReferralSource::Vuxenpsykiatri,
            referrer: None,
        })
    );
    assert_eq!(
        failed(refer_participant(&v1::ReferParticipantRequest {
            source: 0,
            ..request.clone()
        })),
        ("source".into(), "is required".into())
    );
    assert_eq!(
        failed(refer_participant(&v1::ReferParticipantRequest {
            source: 99,
            ..request.clone()
        })),
        ("source".into(), "is not a known value".into())
    );
    assert_eq!(
        failed_field(refer_participant(&v1::ReferParticipantRequest {
            referrer_unit: "unit with spaces".into(),
            ..request
        })),
        "referrer_unit"
    );
}

#[test]
fn an_enrolment_is_placed_as_the_units_places_decide() {
    let request = v1::EnrollParticipantRequest {
        unit: "hudiksvall-ips".into(),
        coach_person_id: "coach-17".into(),
        ..Default::default()
    };
    let unit = UnitId("hudiksvall-ips".into());
    let coach = PersonId("coach-17".into());
    assert_eq!(
        enrolment_target(&request),
        Ok((unit.clone(), coach.clone()))
    );
    assert_eq!(
        enroll_participant(&request, false),
        Ok(EventBody::ParticipantEnrolled {
            unit: unit.clone(),
            coach: coach.clone(),
        })
    );
    assert_eq!(
        enroll_participant(&request, true),
        Ok(EventBody::PlacedOnWaitingList { unit: unit.clone() })
    );
    assert_eq!(
        re_enroll_participant(&request),
        Ok(EventBody::ParticipantReEnrolled { unit, coach })
    );
    let without_unit = v1::EnrollParticipantRequest {
        unit: String::new(),
        ..request.clone()
    };
    let without_coach = v1::EnrollParticipantRequest {
        coach_person_id: "coach/17".into(),
        ..request
    };
    for build in [
        |request: &v1::EnrollParticipantRequest| enroll_participant(request, false),
        re_enroll_participant,
    ] {
        assert_eq!(failed_field(build(&without_unit)), "unit");
        assert_eq!(failed_field(build(&without_coach)), "coach_person_id");
    }
}

#[test]
fn a_consent_is_granted_under_the_given_or_minted_id_and_withdrawn_from_a_day() {
    let consent_id = ConsentId::parse(CONSENT).expect("a test id");
    let request = v1::GrantConsentRequest {
        discloser: v1::ConsentParty::Forsakringskassan as i32,
        recipient: v1::ConsentParty::IpsUnit as i32,
        data_categories: vec![v1::DataCategory::BenefitDecisions as i32],
        valid_from: "2026-03-01".into(),
        valid_to: "2027-02-28".into(),
        ..Default::default()
    };
    assert_eq!(requested_consent_id(&request), Ok(None));
    assert_eq!(
        requested_consent_id(&v1::GrantConsentRequest {
            consent_id: CONSENT.into(),
            ..request.clone()
        }),
        Ok(Some(consent_id))
    );
    assert_eq!(
        grant_consent(&request, consent_id),
        Ok(EventBody::ConsentGranted {
            consent_id,
            discloser: ConsentParty::Forsakringskassan,
            recipient: ConsentParty::IpsUnit,
            data_categories: vec![DataCategory::BenefitDecisions],
            valid_from: date("2026-03-01"),
            valid_to: date("2027-02-28"),
        })
    );
    for (bad, field) in [
        (
            v1::GrantConsentRequest {
                discloser: 0,
                ..request.clone()
            },
            "discloser",
        ),
        (
            v1::GrantConsentRequest {
                data_categories: Vec::new(),
                ..request.clone()
            },
            "data_categories",
        ),
        (
            v1::GrantConsentRequest {
                valid_to: String::new(),
                ..request.clone()
            },
            "valid_to",
        ),
    ] {
        assert_eq!(failed_field(grant_consent(&bad, consent_id)), field);
    }

    let withdrawal = v1::WithdrawConsentRequest {
        discloser: v1::ConsentParty::Forsakringskassan as i32,
        recipient: v1::ConsentParty::IpsUnit as i32,
        data_categories: vec![v1::DataCategory::BenefitDecisions as i32],
        ..Default::default()
    };
    let withdrawn_from = |effective_from: Option<NaiveDate>| {
        Ok(EventBody::ConsentWithdrawn {
            discloser: ConsentParty::Forsakringskassan,
            recipient: ConsentParty::IpsUnit,
            data_categories: vec![DataCategory::BenefitDecisions],
            effective_from: effective_from.expect("a day"),
        })
    };
    // Without a day of its own, the withdrawal takes effect on the write's business date.
    assert_eq!(
        withdraw_consent(&withdrawal, date("2026-04-01")),
        withdrawn_from(Some(date("2026-04-01")))
    );
    assert_eq!(
        withdraw_consent(
            &v1::WithdrawConsentRequest {
                effective_from: "2026-05-01".into(),
                ..withdrawal.clone()
            },
            date("2026-04-01")
        ),
        withdrawn_from(Some(date("2026-05-01")))
    );
    assert_eq!(
        failed_field(withdraw_consent(
            &v1::WithdrawConsentRequest {
                recipient: 42,
                ..withdrawal
            },
            date("2026-04-01")
        )),
        "recipient"
    );
}

#[test]
fn lifecycle_steps_name_their_bad_field() {
    assert_eq!(
        protect_identity(&v1::ProtectIdentityRequest {
            allowed_person_ids: vec!["coach-17".into()],
            ..Default::default()
        }),
        Ok(EventBody::IdentityProtected {
            allowed_readers: vec![AllowedReader::municipal(PersonId("coach-17".into()))],
        })
    );
    assert_eq!(
        failed_field(protect_identity(&v1::ProtectIdentityRequest {
            allowed_person_ids: vec!["coach-17".into(), String::new()],
            ..Default::default()
        })),
        "allowed_person_ids"
    );
    // Another organisation's officer is named with the organisation; the bare ids stay
    // municipal.
    let named = |agency: v1::Agency, person_id: &str| v1::AllowedReader {
        agency: agency as i32,
        person_id: person_id.into(),
    };
    assert_eq!(
        protect_identity(&v1::ProtectIdentityRequest {
            allowed_person_ids: vec!["coach-17".into()],
            allowed_readers: vec![named(v1::Agency::Forsakringskassan, "fk-officer-4")],
            ..Default::default()
        }),
        Ok(EventBody::IdentityProtected {
            allowed_readers: vec![
                AllowedReader::municipal(PersonId("coach-17".into())),
                AllowedReader {
                    agency: domain::Agency::Forsakringskassan,
                    person_id: PersonId("fk-officer-4".into()),
                },
            ],
        })
    );
    assert_eq!(
        failed_field(protect_identity(&v1::ProtectIdentityRequest {
            allowed_readers: vec![named(v1::Agency::Unspecified, "fk-officer-4")],
            ..Default::default()
        })),
        "allowed_readers.agency"
    );
    assert_eq!(
        failed_field(protect_identity(&v1::ProtectIdentityRequest {
            allowed_readers: vec![named(v1::Agency::Psychiatry, "")],
            ..Default::default()
        })),
        "allowed_readers.person_id"
    );
    assert_eq!(
        decline_referral(&v1::DeclineReferralRequest {
            reason: " wants to wait ".into(),
            ..Default::default()
        }),
        Ok(EventBody::ReferralDeclined {
            reason: "wants to wait".into(),
        })
    );
    assert_eq!(
        failed_field(pause_participant(&v1::PauseParticipantRequest {
            reason: "x".repeat(2_001),
            ..Default::default()
        })),
        "reason"
    );
    assert_eq!(
        failed_field(assign_coach(&v1::AssignCoachRequest::default())),
        "coach_person_id"
    );
    assert_eq!(
        resume_participant(&v1::ParticipantWrite::default()),
        Ok(EventBody::ParticipantResumed)
    );
    assert_eq!(
        discharge_participant(&v1::DischargeParticipantRequest {
            reason: v1::DischargeReason::Moved as i32,
            ..Default::default()
        }),
        Ok(EventBody::ParticipantDischarged {
            reason: DischargeReason::Moved,
        })
    );
    assert_eq!(
        failed(discharge_participant(
            &v1::DischargeParticipantRequest::default()
        )),
        ("reason".into(), "is required".into())
    );
}

#[test]
fn profile_counselling_and_disclosure_are_parsed() {
    assert_eq!(
        record_profile(&v1::RecordProfileRequest {
            preferences: " outdoors ".into(),
            hours_per_week_wanted: 20,
            education_level: v1::EducationLevel::UpperSecondary as i32,
            ..Default::default()
        }),
        Ok(EventBody::ProfileRecorded {
            preferences: "outdoors".into(),
            hours_per_week_wanted: 20,
            education_level: EducationLevel::UpperSecondary,
        })
    );
    assert_eq!(
        failed_field(record_profile(&v1::RecordProfileRequest {
            hours_per_week_wanted: 61,
            education_level: v1::EducationLevel::Primary as i32,
            ..Default::default()
        })),
        "hours_per_week_wanted"
    );
    let counselling = v1::RecordBenefitsCounsellingRequest {
        benefits_discussed: vec![
            v1::CounselledBenefit::Sjukpenning as i32,
            v1::CounselledBenefit::Forsorjningsstod as i32,
        ],
        ..Default::default()
    };
    assert_eq!(
        record_benefits_counselling(&counselling),
        Ok(EventBody::BenefitsCounsellingGiven {
            benefits_discussed: vec![
                CounselledBenefit::Forsakringskassan(BenefitKind::Sjukpenning),
                CounselledBenefit::Forsorjningsstod,
            ],
        })
    );
    // Every benefit once is allowed; one more than exist is refused before any is read.
    let every_benefit: Vec<i32> = (1..)
        .take_while(|number| v1::CounselledBenefit::try_from(*number).is_ok())
        .collect();
    assert!(
        record_benefits_counselling(&v1::RecordBenefitsCounsellingRequest {
            benefits_discussed: every_benefit.clone(),
            ..Default::default()
        })
        .is_ok()
    );
    let one_too_many = [every_benefit, vec![1]].concat();
    assert_eq!(
        failed(record_benefits_counselling(
            &v1::RecordBenefitsCounsellingRequest {
                benefits_discussed: one_too_many,
                ..Default::default()
            }
        )),
        (
            "benefits_discussed".into(),
            "names more benefits than exist".into()
        )
    );
    assert_eq!(
        record_disclosure_preference(&v1::RecordDisclosurePreferenceRequest {
            preference: v1::DisclosurePreference::NeedsOnly as i32,
            ..Default::default()
        }),
        Ok(EventBody::DisclosurePreferenceRecorded {
            preference: DisclosurePreference::NeedsOnly,
        })
    );
    assert_eq!(
        failed_field(record_disclosure_preference(
            &v1::RecordDisclosurePreferenceRequest::default()
        )),
        "preference"
    );
    assert_eq!(
        failed_field(record_employer_contact(
            &v1::RecordEmployerContactRequest::default()
        )),
        "employer"
    );
}

#[test]
fn activities_and_jobs_are_parsed() {
    let proposal = v1::ProposeActivityRequest {
        kind: v1::ActivityKind::Praktik as i32,
        employer: " Hälsinge Trä ".into(),
        hours_per_week: 15,
        planned_start: "2026-04-01".into(),
        ..Default::default()
    };
    assert_eq!(
        propose_activity(&proposal, activity()),
        Ok(EventBody::ActivityProposed {
            activity_id: activity(),
            kind: ActivityKind::Praktik,
            employer: Some("Hälsinge Trä".into()),
            hours_per_week: 15,
            planned_start: date("2026-04-01"),
            planned_end: None,
            subsidy: None,
            at_own_employer: false,
        })
    );
    for (bad, field) in [
        (
            v1::ProposeActivityRequest {
                kind: 0,
                ..proposal.clone()
            },
            "kind",
        ),
        (
            v1::ProposeActivityRequest {
                hours_per_week: 0,
                ..proposal.clone()
            },
            "hours_per_week",
        ),
        (
            v1::ProposeActivityRequest {
                subsidy: 99,
                ..proposal.clone()
            },
            "subsidy",
        ),
        (
            v1::ProposeActivityRequest {
                planned_start: String::new(),
                ..proposal
            },
            "planned_start",
        ),
    ] {
        assert_eq!(failed_field(propose_activity(&bad, activity())), field);
    }

    let dated = v1::ActivityDateRequest {
        activity_id: ACTIVITY.into(),
        date: "2026-04-02".into(),
        ..Default::default()
    };
    assert_eq!(
        start_activity(&dated),
        Ok(EventBody::ActivityStarted {
            activity_id: activity(),
            started_on: date("2026-04-02"),
        })
    );
    assert_eq!(
        end_activity(&dated),
        Ok(EventBody::ActivityEnded {
            activity_id: activity(),
            ended_on: date("2026-04-02"),
        })
    );
    assert_eq!(
        end_studies(&dated),
        Ok(EventBody::StudiesEnded {
            activity_id: activity(),
            ended_on: date("2026-04-02"),
        })
    );
    for build in [start_activity, end_activity, end_studies] {
        assert_eq!(
            failed_field(build(&v1::ActivityDateRequest {
                activity_id: String::new(),
                ..dated.clone()
            })),
            "activity_id"
        );
        assert_eq!(
            failed_field(build(&v1::ActivityDateRequest {
                date: String::new(),
                ..dated.clone()
            })),
            "date"
        );
    }

    let job = v1::StartJobRequest {
        activity_id: ACTIVITY.into(),
        employer: "Hälsinge Trä".into(),
        occupation: "snickare".into(),
        competitive: true,
        subsidy: v1::Subsidy::Lonebidrag as i32,
        hours_per_week: 30,
        started_on: "2026-05-04".into(),
        ..Default::default()
    };
    assert_eq!(
        start_job(&job),
        Ok(EventBody::JobStarted {
            activity_id: activity(),
            employer: "Hälsinge Trä".into(),
            occupation: "snickare".into(),
            competitive: true,
            subsidy: Some(Subsidy::Lonebidrag),
            hours_per_week: 30,
            started_on: date("2026-05-04"),
        })
    );
    assert_eq!(
        failed_field(start_job(&v1::StartJobRequest {
            occupation: "x".repeat(2_001),
            ..job
        })),
        "occupation"
    );
    assert_eq!(
        change_hours(&v1::ChangeHoursRequest {
            activity_id: ACTIVITY.into(),
            hours_per_week: 20,
            from: "2026-06-01".into(),
            ..Default::default()
        }),
        Ok(EventBody::HoursChanged {
            activity_id: activity(),
            hours_per_week: 20,
            from: date("2026-06-01"),
        })
    );
    let ended = v1::EndJobRequest {
        activity_id: ACTIVITY.into(),
        ended_on: "2026-09-30".into(),
        reason: v1::JobEndReason::FixedTermEnded as i32,
        ..Default::default()
    };
    assert_eq!(
        end_job(&ended),
        Ok(EventBody::JobEnded {
            activity_id: activity(),
            ended_on: date("2026-09-30"),
            reason: JobEndReason::FixedTermEnded,
        })
    );
    assert_eq!(
        failed(end_job(&v1::EndJobRequest {
            reason: 77,
            ..ended
        })),
        ("reason".into(), "is not a known value".into())
    );
    assert_eq!(
        start_studies(&v1::StartStudiesRequest {
            activity_id: ACTIVITY.into(),
            programme: "Vård och omsorg".into(),
            started_on: "2026-08-17".into(),
            ..Default::default()
        }),
        Ok(EventBody::StudiesStarted {
            activity_id: activity(),
            programme: "Vård och omsorg".into(),
            started_on: date("2026-08-17"),
        })
    );
    assert_eq!(
        accept_activity_in_planning(&v1::ActivityRequest {
            activity_id: ACTIVITY.into(),
            ..Default::default()
        }),
        Ok(EventBody::ActivityAcceptedInPlanning {
            activity_id: activity(),
        })
    );
    assert_eq!(
        failed_field(accept_activity_in_planning(&v1::ActivityRequest::default())),
        "activity_id"
    );
}

#[test]
fn follow_ups_outreach_sip_and_social_assistance_are_parsed() {
    assert_eq!(
        record_follow_along_contact(&v1::RecordFollowAlongContactRequest {
            contact_on: "2026-06-10".into(),
            ..Default::default()
        }),
        Ok(EventBody::FollowAlongContact {
            activity_id: None,
            contact_on: date("2026-06-10"),
        })
    );
    assert_eq!(
        failed_field(record_follow_along_contact(
            &v1::RecordFollowAlongContactRequest {
                activity_id: "not-a-uuid".into(),
                contact_on: "2026-06-10".into(),
                ..Default::default()
            }
        )),
        "activity_id"
    );
    assert_eq!(
        record_follow_up(&v1::RecordFollowUpRequest {
            status: v1::FollowUpStatus::InActivity as i32,
            obstacles: " transport ".into(),
            helping_factors: " family ".into(),
            ..Default::default()
        }),
        Ok(EventBody::FollowUpRecorded {
            status: FollowUpStatus::InActivity,
            obstacles: "transport".into(),
            helping_factors: "family".into(),
        })
    );
    assert_eq!(
        failed_field(record_follow_up(&v1::RecordFollowUpRequest::default())),
        "status"
    );
    assert_eq!(
        record_outreach_attempt(&v1::RecordOutreachAttemptRequest {
            channel: v1::OutreachChannel::HomeVisit as i32,
            ..Default::default()
        }),
        Ok(EventBody::OutreachAttempted {
            channel: OutreachChannel::HomeVisit,
        })
    );
    assert_eq!(
        failed_field(record_outreach_attempt(
            &v1::RecordOutreachAttemptRequest::default()
        )),
        "channel"
    );
    let dated = v1::DateRequest {
        write: None,
        date: "2026-02-20".into(),
    };
    assert_eq!(
        record_sip_held(&dated),
        Ok(EventBody::SipHeld {
            held_on: date("2026-02-20"),
        })
    );
    assert_eq!(
        record_sip_established(&dated),
        Ok(EventBody::SipEstablished {
            established_on: date("2026-02-20"),
        })
    );
    for build in [record_sip_held, record_sip_established] {
        assert_eq!(failed_field(build(&v1::DateRequest::default())), "date");
    }
    assert_eq!(
        record_social_assistance(&v1::RecordSocialAssistanceRequest {
            status: v1::SocialAssistanceStatus::Granted as i32,
            ..Default::default()
        }),
        Ok(EventBody::SocialAssistanceDecided {
            status: SocialAssistanceStatus::Granted,
        })
    );
    assert_eq!(
        failed_field(record_social_assistance(
            &v1::RecordSocialAssistanceRequest::default()
        )),
        "status"
    );
}

#[test]
fn a_correction_names_the_event_it_supersedes_and_carries_a_body() {
    let request = v1::CorrectEventRequest {
        supersedes_event_id: "0193a1b2-0000-4000-8000-000000000041".into(),
        reason: " wrong day ".into(),
        corrected_body_json: r#"{"type":"SipHeld","held_on":"2026-02-21"}"#.into(),
        ..Default::default()
    };
    assert_eq!(
        correct_event(&request),
        Ok(EventBody::EventCorrected {
            supersedes: domain::EventId::parse("0193a1b2-0000-4000-8000-000000000041")
                .expect("a test id"),
            reason: "wrong day".into(),
            corrected: Box::new(EventBody::SipHeld {
                held_on: date("2026-02-21"),
            }),
        })
    );
    assert_eq!(
        failed_field(correct_event(&v1::CorrectEventRequest {
            supersedes_event_id: String::new(),
            ..request.clone()
        })),
        "supersedes_event_id"
    );
    assert_eq!(
        failed_field(correct_event(&v1::CorrectEventRequest {
            corrected_body_json: "{}".into(),
            ..request
        })),
        "corrected_body_json"
    );
}

#[test]
fn a_self_reported_benefit_names_the_benefit_and_the_day_it_was_said() {
    assert_eq!(
        record_benefit_self_report(&v1::RecordBenefitSelfReportRequest {
            write: None,
            benefit: v1::BenefitKind::Sjukpenning as i32,
            said_on: "2026-02-20".into(),
        }),
        Ok(EventBody::BenefitSelfReported {
            benefit: BenefitKind::Sjukpenning,
            said_on: date("2026-02-20"),
        })
    );
    assert_eq!(
        failed_field(record_benefit_self_report(
            &v1::RecordBenefitSelfReportRequest {
                said_on: "2026-02-20".into(),
                ..Default::default()
            }
        )),
        "benefit"
    );
    assert_eq!(
        failed_field(record_benefit_self_report(
            &v1::RecordBenefitSelfReportRequest {
                benefit: v1::BenefitKind::Sjukpenning as i32,
                ..Default::default()
            }
        )),
        "said_on"
    );
}
