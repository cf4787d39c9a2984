//! Every agency RPC once, end to end through gRPC, JetStream and the ledger, in an order the
//! rules accept: the steps the scenarios and the demo do not take (decline, coach change, pause
//! and resume, re-enrolment, studies, hours, follow-along, outreach, SIP, benefit end,
//! certificates, rehabilitation plan revision, agreements, dormant benefit, programmes, SIUS,
//! deregistration, discharge readiness, corrections). Each must be accepted, and the timeline
//! must hold them in order.

use domain::{Agency, Role};
use proto::v1;
use testkit::{as_caller, as_officer, Stack};

fn day(offset: i64) -> String {
    (chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or_default()
        + chrono::Duration::days(offset))
    .to_string()
}

fn period(from: i64, to: i64) -> Option<v1::Period> {
    Some(v1::Period {
        from: day(from),
        to: day(to),
    })
}

struct Run {
    participant_id: String,
    types: Vec<&'static str>,
}

impl Run {
    fn write(&self, offset: i64) -> Option<v1::ParticipantWrite> {
        Some(v1::ParticipantWrite {
            context: Some(v1::WriteContext {
                occurred_at: format!("{}T10:00:00Z", day(offset)),
                ..Default::default()
            }),
            participant_id: self.participant_id.clone(),
        })
    }

    fn accepted(
        &mut self,
        event_type: &'static str,
        reply: Result<tonic::Response<v1::WriteResponse>, tonic::Status>,
    ) -> anyhow::Result<v1::WriteResponse> {
        let response = reply
            .map_err(|status| anyhow::anyhow!("{event_type}: {status:?}"))?
            .into_inner();
        anyhow::ensure!(
            response.status == v1::WriteStatus::Accepted as i32,
            "{event_type}: {response:?}"
        );
        anyhow::ensure!(
            response.event_type == event_type,
            "{event_type}: recorded {}",
            response.event_type
        );
        self.types.push(event_type);
        Ok(response)
    }
}

fn coach<T>(message: T) -> tonic::Request<T> {
    as_caller(message, "coach-17", Role::Coach, "hudiksvall-ips")
}

fn fk_officer<T>(message: T) -> tonic::Request<T> {
    as_officer(
        message,
        Agency::Forsakringskassan,
        "officer-1",
        Role::CaseOfficer,
        "agency-unit",
    )
}

fn af_officer<T>(message: T) -> tonic::Request<T> {
    as_officer(
        message,
        Agency::Arbetsformedlingen,
        "officer-1",
        Role::CaseOfficer,
        "agency-unit",
    )
}

fn psychiatry_officer<T>(message: T) -> tonic::Request<T> {
    as_officer(
        message,
        Agency::Psychiatry,
        "officer-1",
        Role::CaseOfficer,
        "agency-unit",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_agency_rpc_is_accepted_in_a_valid_order() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut municipality = stack.municipality().await?;
    let mut fk = stack.forsakringskassan().await?;
    let mut af = stack.arbetsformedlingen().await?;
    let mut psychiatry = stack.psychiatry().await?;
    let mut run = Run {
        participant_id: uuid::Uuid::new_v4().to_string(),
        types: Vec::new(),
    };

    // Intake: referred, declined, referred again, enrolled, coach changed.
    let refer = |offset: i64, participant_id: &str| v1::ReferParticipantRequest {
        context: Some(v1::WriteContext {
            occurred_at: format!("{}T10:00:00Z", day(offset)),
            ..Default::default()
        }),
        participant_id: participant_id.into(),
        source: v1::ReferralSource::Socialpsykiatri as i32,
        referrer_unit: String::new(),
    };
    let reply = municipality
        .refer_participant(coach(refer(0, &run.participant_id)))
        .await;
    run.accepted("ParticipantReferred", reply)?;
    let reply = municipality
        .decline_referral(coach(v1::DeclineReferralRequest {
            write: run.write(1),
            reason: "no wish to work now".into(),
        }))
        .await;
    run.accepted("ReferralDeclined", reply)?;
    let reply = municipality
        .refer_participant(coach(refer(30, &run.participant_id)))
        .await;
    run.accepted("ParticipantReferred", reply)?;
    let enrolment = v1::EnrollParticipantRequest {
        context: run.write(31).and_then(|write| write.context),
        participant_id: run.participant_id.clone(),
        unit: "hudiksvall-ips".into(),
        coach_person_id: "coach-17".into(),
    };
    let reply = municipality
        .enroll_participant(coach(enrolment.clone()))
        .await;
    run.accepted("ParticipantEnrolled", reply)?;
    let reply = municipality
        .assign_coach(coach(v1::AssignCoachRequest {
            write: run.write(32),
            coach_person_id: "coach-18".into(),
        }))
        .await;
    run.accepted("CoachAssigned", reply)?;
    let reply = municipality
        .record_disclosure_preference(coach(v1::RecordDisclosurePreferenceRequest {
            write: run.write(32),
            preference: v1::DisclosurePreference::NeedsOnly as i32,
        }))
        .await;
    run.accepted("DisclosurePreferenceRecorded", reply)?;

    // Studies, a job with changed hours, follow-along, follow-up, outreach, SIP.
    let studies = v1::ProposeActivityRequest {
        write: run.write(33),
        kind: v1::ActivityKind::Studies as i32,
        hours_per_week: 20,
        planned_start: day(40),
        ..Default::default()
    };
    let studies = run
        .accepted(
            "ActivityProposed",
            municipality.propose_activity(coach(studies)).await,
        )?
        .created_id;
    let reply = municipality
        .start_studies(coach(v1::StartStudiesRequest {
            write: run.write(40),
            activity_id: studies.clone(),
            programme: "Komvux svenska".into(),
            started_on: day(40),
        }))
        .await;
    run.accepted("StudiesStarted", reply)?;
    let reply = municipality
        .end_studies(coach(v1::ActivityDateRequest {
            write: run.write(90),
            activity_id: studies,
            date: day(90),
        }))
        .await;
    run.accepted("StudiesEnded", reply)?;
    let job = v1::ProposeActivityRequest {
        write: run.write(91),
        kind: v1::ActivityKind::Job as i32,
        employer: "Hälsinge Trä".into(),
        hours_per_week: 20,
        planned_start: day(100),
        ..Default::default()
    };
    let job_response = run.accepted(
        "ActivityProposed",
        municipality.propose_activity(coach(job)).await,
    )?;
    let job = job_response.created_id.clone();
    let reply = fk
        .decide_dormant_benefit(fk_officer(v1::ActivityPeriodRequest {
            write: run.write(95),
            activity_id: job.clone(),
            valid: period(100, 280),
        }))
        .await;
    run.accepted("DormantBenefitDecided", reply)?;
    let reply = fk
        .make_activity_agreement(fk_officer(v1::ActivityPeriodRequest {
            write: run.write(95),
            activity_id: job.clone(),
            valid: period(100, 200),
        }))
        .await;
    run.accepted("ActivityAgreementMade", reply)?;
    let start = v1::StartJobRequest {
        write: run.write(100),
        activity_id: job.clone(),
        employer: "Hälsinge Trä".into(),
        occupation: "snickare".into(),
        competitive: true,
        hours_per_week: 20,
        started_on: day(100),
        ..Default::default()
    };
    run.accepted("JobStarted", municipality.start_job(coach(start)).await)?;
    let reply = municipality
        .change_hours(coach(v1::ChangeHoursRequest {
            write: run.write(120),
            activity_id: job.clone(),
            hours_per_week: 30,
            from: day(120),
        }))
        .await;
    run.accepted("HoursChanged", reply)?;
    let reply = municipality
        .record_follow_along_contact(coach(v1::RecordFollowAlongContactRequest {
            write: run.write(121),
            activity_id: job.clone(),
            contact_on: day(121),
        }))
        .await;
    run.accepted("FollowAlongContact", reply)?;
    let follow_up = v1::RecordFollowUpRequest {
        write: run.write(122),
        status: v1::FollowUpStatus::Working as i32,
        obstacles: "mornings".into(),
        helping_factors: "colleagues".into(),
    };
    run.accepted(
        "FollowUpRecorded",
        municipality.record_follow_up(coach(follow_up)).await,
    )?;
    let reply = municipality
        .record_outreach_attempt(coach(v1::RecordOutreachAttemptRequest {
            write: run.write(123),
            channel: v1::OutreachChannel::TextMessage as i32,
        }))
        .await;
    run.accepted("OutreachAttempted", reply)?;
    run.accepted(
        "SipHeld",
        municipality
            .record_sip_held(coach(v1::DateRequest {
                write: run.write(124),
                date: day(124),
            }))
            .await,
    )?;
    run.accepted(
        "SipEstablished",
        municipality
            .record_sip_established(coach(v1::DateRequest {
                write: run.write(124),
                date: day(124),
            }))
            .await,
    )?;
    run.accepted(
        "BenefitSelfReported",
        municipality
            .record_benefit_self_report(coach(v1::RecordBenefitSelfReportRequest {
                write: run.write(124),
                benefit: v1::BenefitKind::Sjukpenning as i32,
                said_on: day(124),
            }))
            .await,
    )?;
    let reply = municipality
        .end_job(coach(v1::EndJobRequest {
            write: run.write(150),
            activity_id: job.clone(),
            ended_on: day(150),
            reason: v1::JobEndReason::FixedTermEnded as i32,
        }))
        .await;
    run.accepted("JobEnded", reply)?;

    // Försäkringskassan.
    let benefit = v1::RegisterBenefitRequest {
        write: run.write(31),
        benefit: v1::BenefitKind::Aktivitetsersattning as i32,
        degree_percent: 50,
        employed: false,
        period: period(31, 400),
    };
    run.accepted(
        "BenefitRegistered",
        fk.register_benefit(fk_officer(benefit)).await,
    )?;
    let certificate = v1::MedicalCertificateRequest {
        write: run.write(32),
        period: period(32, 90),
        degree_percent: 50,
    };
    run.accepted(
        "MedicalCertificateReceived",
        fk.receive_medical_certificate(fk_officer(certificate))
            .await,
    )?;
    run.accepted(
        "RehabPlanEstablished",
        fk.establish_rehab_plan(fk_officer(v1::DateRequest {
            write: run.write(33),
            date: day(33),
        }))
        .await,
    )?;
    run.accepted(
        "RehabPlanRevised",
        fk.revise_rehab_plan(fk_officer(v1::DateRequest {
            write: run.write(60),
            date: day(60),
        }))
        .await,
    )?;
    let reply = fk
        .end_benefit(fk_officer(v1::EndBenefitRequest {
            write: run.write(160),
            benefit: v1::BenefitKind::Aktivitetsersattning as i32,
            ended_on: day(160),
        }))
        .await;
    run.accepted("BenefitEnded", reply)?;

    // Arbetsförmedlingen.
    run.accepted(
        "JobSeekerRegistered",
        af.register_job_seeker(af_officer(v1::DateRequest {
            write: run.write(34),
            date: day(34),
        }))
        .await,
    )?;
    let programme = v1::AssignProgrammeRequest {
        write: run.write(35),
        programme: "Förberedande insatser".into(),
        with_activity_allowance: true,
        period: period(35, 120),
        ..Default::default()
    };
    let programme = run
        .accepted(
            "ProgrammeAssigned",
            af.assign_programme(af_officer(programme)).await,
        )?
        .created_id;
    run.accepted(
        "SiusDecided",
        af.decide_sius(af_officer(v1::PeriodRequest {
            write: run.write(100),
            period: period(100, 190),
        }))
        .await,
    )?;
    run.accepted(
        "SiusEnded",
        af.end_sius(af_officer(v1::DateRequest {
            write: run.write(150),
            date: day(150),
        }))
        .await,
    )?;
    let reply = af
        .end_programme(af_officer(v1::EndProgrammeRequest {
            write: run.write(90),
            programme_id: programme,
            ended_on: day(90),
        }))
        .await;
    run.accepted("ProgrammeEnded", reply)?;
    run.accepted(
        "JobSeekerDeregistered",
        af.deregister_job_seeker(af_officer(v1::DateRequest {
            write: run.write(151),
            date: day(151),
        }))
        .await,
    )?;

    // Psychiatry.
    let certificate = v1::IssueMedicalCertificateRequest {
        write: run.write(32),
        period: period(32, 90),
        degree_percent: 50,
    };
    run.accepted(
        "MedicalCertificateIssued",
        psychiatry
            .issue_medical_certificate(psychiatry_officer(certificate))
            .await,
    )?;
    let reply = psychiatry
        .change_availability(psychiatry_officer(v1::ChangeAvailabilityRequest {
            write: run.write(130),
            availability: v1::Availability::TemporarilyUnavailable as i32,
            from: day(130),
        }))
        .await;
    run.accepted("AvailabilityChanged", reply)?;
    run.accepted(
        "InpatientAdmitted",
        psychiatry
            .record_inpatient_admission(psychiatry_officer(v1::InpatientAdmissionRequest {
                write: run.write(135),
                admitted_on: day(135),
                care_form: v1::CareForm::Compulsory as i32,
            }))
            .await,
    )?;
    run.accepted(
        "DischargeReady",
        psychiatry
            .report_discharge_ready(psychiatry_officer(v1::DateRequest {
                write: run.write(140),
                date: day(140),
            }))
            .await,
    )?;
    run.accepted(
        "InpatientDischarged",
        psychiatry
            .record_inpatient_discharge(psychiatry_officer(v1::DateRequest {
                write: run.write(141),
                date: day(141),
            }))
            .await,
    )?;

    // Lifecycle: pause, resume, discharge, re-enrolment.
    run.accepted(
        "ParticipantPaused",
        municipality
            .pause_participant(coach(v1::PauseParticipantRequest {
                write: run.write(131),
                reason: "inpatient care".into(),
            }))
            .await,
    )?;
    run.accepted(
        "ParticipantResumed",
        municipality
            .resume_participant(coach(v1::ParticipantWrite {
                context: run.write(141).and_then(|write| write.context),
                participant_id: run.participant_id.clone(),
            }))
            .await,
    )?;
    let discharge = v1::DischargeParticipantRequest {
        write: run.write(170),
        reason: v1::DischargeReason::EmployedAndStable as i32,
    };
    run.accepted(
        "ParticipantDischarged",
        municipality.discharge_participant(coach(discharge)).await,
    )?;
    let re_enrolment = v1::EnrollParticipantRequest {
        context: run.write(300).and_then(|write| write.context),
        ..enrolment
    };
    run.accepted(
        "ParticipantReEnrolled",
        municipality
            .re_enroll_participant(coach(re_enrolment))
            .await,
    )?;

    // A correction of the job proposal's hours, by the municipality that recorded it.
    let corrected = serde_json::json!({
        "type": "ActivityProposed", "activity_id": job, "kind": "job", "employer": "Hälsinge Trä",
        "hours_per_week": 25, "planned_start": day(100), "planned_end": null, "subsidy": null
    });
    let correction = v1::CorrectEventRequest {
        write: run.write(301),
        supersedes_event_id: job_response.event_id.clone(),
        reason: "hours were 25".into(),
        corrected_body_json: corrected.to_string(),
    };
    run.accepted(
        "EventCorrected",
        municipality.correct_event(coach(correction.clone())).await,
    )?;
    // Another agency may not correct it.
    let refused = fk
        .correct_event(fk_officer(correction))
        .await
        .err()
        .map(|status| {
            status
                .metadata()
                .get("ips-rule")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        });
    assert_eq!(
        refused,
        Some(Some("correction_by_another_agency".to_owned()))
    );
    run.types.push("SubmissionRejected");

    let mut timeline = stack.timeline().await?;
    let request = v1::GetTimelineRequest {
        participant_id: run.participant_id.clone(),
        min_sequence: run.types.len() as u64,
        page_size: 1000,
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
    assert_eq!(types, run.types);
    let verified = timeline
        .verify_chain(testkit::as_auditor(v1::VerifyChainRequest {
            participant_id: run.participant_id.clone(),
        }))
        .await?
        .into_inner();
    assert!(verified.intact);
    stack.stop().await;
    Ok(())
}
