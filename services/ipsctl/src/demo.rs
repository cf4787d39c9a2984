//! The README's demo: twenty synthetic participants (Anna, Carina, Eva and Greta of DOMAIN.md §9,
//! and sixteen more) go through all four agencies' real gRPC APIs: referral, consent,
//! enrolment, profile, benefits counselling, employer contacts, FK benefits and decisions, AF
//! registration, psychiatry's team meetings, activities, jobs, a pause and a discharge. One step
//! breaks a rule on purpose, to show how a refusal is answered and recorded. Then it prints
//! Anna's timeline, a one-line summary of every participant with their chain verified, the
//! unit's caseload board, and the green-light board: five planned starts, one approved by
//! Försäkringskassan, one waiting for more information, three not yet decided, as the coaches'
//! live watch shows them and as FK's list of what waits on it shows them.

use std::fmt::Write as _;

use chrono::{Duration, NaiveDate, Utc};
use domain::{Agency, Role};
use proto::v1;

use crate::{print, Clients};

/// The demo's IPS unit.
pub const UNIT: &str = "hudiksvall-ips";
const COACHES: [&str; 3] = ["coach-17", "coach-18", "coach-19"];
const PARTICIPANTS: usize = 20;
const NAMES: [&str; 4] = ["Anna, 34", "Carina, 41", "Eva, 29", "Greta, 45"];
/// The participants (by index) given a planned start that waits on its green light.
pub const PLANNED_STARTS: [usize; 5] = [1, 3, 5, 6, 9];
/// How long the demo waits for a watch to show a planned start's recorded state.
const WATCH_WAIT_MS: u64 = 10_000;

fn label(index: usize) -> String {
    NAMES
        .get(index)
        .map_or(format!("Participant {}", index + 1), |name| {
            (*name).to_owned()
        })
}

/// Försäkringskassan's officer in the demo.
const FK_OFFICER: Who = Who {
    agency: Agency::Forsakringskassan,
    person: "fk-officer-4",
    role: Role::CaseOfficer,
    unit: "fk-lfc-gavleborg",
};

fn caller<T>(message: T, person: &str, role: Role, unit: &str) -> tonic::Request<T> {
    crate::as_officer(message, Agency::Municipality, person, role, unit)
}

/// The unit's team leader, who reads the timelines, chains and board at the end.
pub const TEAM_LEADER: &str = "team-leader-1";

fn team_leader<T>(message: T) -> tonic::Request<T> {
    caller(message, TEAM_LEADER, Role::TeamLeader, UNIT)
}

/// Who makes a request.
struct Who {
    agency: Agency,
    person: &'static str,
    role: Role,
    unit: &'static str,
}

impl Who {
    fn ask<T>(&self, message: T) -> tonic::Request<T> {
        crate::as_officer(message, self.agency, self.person, self.role, self.unit)
    }
}

struct Demo<'a> {
    clients: &'a mut Clients,
    today: NaiveDate,
}

impl Demo<'_> {
    fn date(&self, days_ago: i64) -> String {
        (self.today - Duration::days(days_ago)).to_string()
    }

    fn context(&self, days_ago: i64) -> Option<v1::WriteContext> {
        Some(v1::WriteContext {
            occurred_at: format!("{}T09:00:00Z", self.date(days_ago)),
            ..Default::default()
        })
    }

    fn write(&self, participant_id: &str, days_ago: i64) -> Option<v1::ParticipantWrite> {
        Some(v1::ParticipantWrite {
            context: self.context(days_ago),
            participant_id: participant_id.to_owned(),
        })
    }

    fn period(&self, from_days_ago: i64, to_days_ago: i64) -> Option<v1::Period> {
        Some(v1::Period {
            from: self.date(from_days_ago),
            to: self.date(to_days_ago),
        })
    }

    /// Proposes a praktik starting in a week or two for each of [`PLANNED_STARTS`]; FK approves
    /// the first and asks for more information on the second. Returns (index, activity id, the
    /// gate status recorded).
    async fn plan_starts(
        &mut self,
        participants: &[String],
    ) -> anyhow::Result<Vec<(usize, String, v1::GateStatus)>> {
        let mut planned = Vec::with_capacity(PLANNED_STARTS.len());
        for (position, &index) in PLANNED_STARTS.iter().enumerate() {
            let Some(participant_id) = participants.get(index) else {
                continue;
            };
            let as_coach = Who {
                agency: Agency::Municipality,
                person: COACHES[index % COACHES.len()],
                role: Role::Coach,
                unit: UNIT,
            };
            let requested_days_ago = 2 + 3 * position as i64;
            let planned_start_days_ago = -(7 + position as i64 * 2);
            // The coach sees a light only with consent from every agency that could hold a
            // gate: without AF's and social services', whether they decide one is theirs to say.
            for (discloser, category) in [
                (
                    v1::ConsentParty::Arbetsformedlingen,
                    v1::DataCategory::LabourMarket,
                ),
                (
                    v1::ConsentParty::SocialServices,
                    v1::DataCategory::SocialAssistanceStatus,
                ),
            ] {
                let consent = v1::GrantConsentRequest {
                    context: self.context(requested_days_ago),
                    participant_id: participant_id.clone(),
                    discloser: discloser as i32,
                    recipient: v1::ConsentParty::IpsUnit as i32,
                    data_categories: vec![category as i32],
                    valid_from: self.date(requested_days_ago),
                    valid_to: self.date(requested_days_ago - 365),
                    ..Default::default()
                };
                self.clients
                    .municipality
                    .grant_consent(as_coach.ask(consent))
                    .await?;
            }
            let proposal = v1::ProposeActivityRequest {
                write: self.write(participant_id, requested_days_ago),
                kind: v1::ActivityKind::Praktik as i32,
                employer: "Hälsinge Trä".into(),
                hours_per_week: 15,
                planned_start: self.date(planned_start_days_ago),
                ..Default::default()
            };
            let activity_id = self
                .clients
                .municipality
                .propose_activity(as_coach.ask(proposal))
                .await?
                .into_inner()
                .created_id;
            let outcome = match position {
                0 => Some((v1::DecisionOutcome::Approved, "work ability plan agreed")),
                1 => Some((
                    v1::DecisionOutcome::MoreInformationNeeded,
                    "need the employer's supervision plan",
                )),
                _ => None,
            };
            if let Some((outcome, reason)) = outcome {
                let decision = v1::ActivityDecisionRequest {
                    write: self.write(participant_id, 1),
                    activity_id: activity_id.clone(),
                    outcome: outcome as i32,
                    valid: self.period(planned_start_days_ago, planned_start_days_ago - 90),
                    reason: reason.into(),
                };
                self.clients
                    .forsakringskassan
                    .decide_activity(FK_OFFICER.ask(decision))
                    .await?;
            }
            let recorded = match position {
                0 => v1::GateStatus::Approved,
                1 => v1::GateStatus::InfoNeeded,
                _ => v1::GateStatus::Requested,
            };
            planned.push((index, activity_id, recorded));
        }
        Ok(planned)
    }

    /// One planned start's light as the team leader's live watch on its participant pushes it.
    /// The watch starts with the current state and then pushes changes, so the demo listens
    /// until the gate shows what was recorded (the read model follows the ledger by a few
    /// milliseconds), or for at most [`WATCH_WAIT_MS`], and shows the last state pushed.
    async fn current_light(
        &mut self,
        participant_id: &str,
        activity_id: &str,
        recorded: v1::GateStatus,
    ) -> anyhow::Result<Option<v1::ActivityLight>> {
        let mut watch = self
            .clients
            .green_light
            .watch_green_light(team_leader(v1::WatchGreenLightRequest {
                participant_id: participant_id.to_owned(),
                ..Default::default()
            }))
            .await?
            .into_inner();
        let deadline =
            tokio::time::Instant::now() + std::time::Duration::from_millis(WATCH_WAIT_MS);
        let mut last = None;
        while let Ok(message) = tokio::time::timeout_at(deadline, watch.message()).await {
            let Some(update) = message? else { break };
            let Some(light) = update
                .activity
                .filter(|light| light.activity_id == activity_id)
            else {
                continue;
            };
            let shows_recorded = light
                .gates
                .iter()
                .any(|gate| gate.status == recorded as i32);
            last = Some(light);
            if shows_recorded {
                break;
            }
        }
        Ok(last)
    }

    /// Plans the starts, then prints each one's light and FK's pending list.
    async fn green_light_board(&mut self, participants: &[String]) -> anyhow::Result<String> {
        let planned = self.plan_starts(participants).await?;
        let mut rows = Vec::with_capacity(planned.len());
        for (index, activity_id, recorded) in &planned {
            if let Some(light) = self
                .current_light(&participants[*index], activity_id, *recorded)
                .await?
            {
                rows.push((label(*index), light));
            }
        }
        let pending = self
            .clients
            .forsakringskassan_green_light
            .pending_approvals(FK_OFFICER.ask(v1::PendingApprovalsRequest {
                unit: UNIT.into(),
                ..Default::default()
            }))
            .await?
            .into_inner();
        let labels: std::collections::BTreeMap<&str, String> = participants
            .iter()
            .enumerate()
            .map(|(index, participant_id)| (participant_id.as_str(), label(index)))
            .collect();
        Ok(print::green_light_board(&rows, &pending, &labels))
    }

    /// One participant's path; `index` varies it so the board and timelines differ.
    async fn drive(&mut self, index: usize) -> anyhow::Result<String> {
        let coach = COACHES[index % COACHES.len()];
        let start = 160 - 6 * index as i64;
        let as_coach = Who {
            agency: Agency::Municipality,
            person: coach,
            role: Role::Coach,
            unit: UNIT,
        };
        let fk = FK_OFFICER;
        let af = Who {
            agency: Agency::Arbetsformedlingen,
            person: "af-officer-9",
            role: Role::CaseOfficer,
            unit: "af-hudiksvall",
        };
        let psychiatry = Who {
            agency: Agency::Psychiatry,
            person: "rehab-coordinator-2",
            role: Role::CaseOfficer,
            unit: "hudiksvall-vuxenpsykiatri",
        };
        let from_psychiatry = index.is_multiple_of(2);
        let source = if from_psychiatry {
            v1::ReferralSource::Vuxenpsykiatri
        } else {
            v1::ReferralSource::Ifo
        };

        let referral = v1::ReferParticipantRequest {
            context: self.context(start),
            source: source as i32,
            ..Default::default()
        };
        let participant_id = self
            .clients
            .municipality
            .refer_participant(as_coach.ask(referral))
            .await?
            .into_inner()
            .participant_id;
        if from_psychiatry {
            let sent = v1::DateRequest {
                write: self.write(&participant_id, start),
                date: self.date(start),
            };
            self.clients
                .psychiatry
                .send_ips_referral(psychiatry.ask(sent))
                .await?;
        }
        for (discloser, recipient, category) in [
            (
                v1::ConsentParty::Forsakringskassan,
                v1::ConsentParty::IpsUnit,
                v1::DataCategory::BenefitDecisions,
            ),
            (
                v1::ConsentParty::Psychiatry,
                v1::ConsentParty::IpsUnit,
                v1::DataCategory::HealthCoarse,
            ),
            (
                v1::ConsentParty::IpsUnit,
                v1::ConsentParty::Forsakringskassan,
                v1::DataCategory::ActivitiesAndWork,
            ),
        ] {
            let consent = v1::GrantConsentRequest {
                context: self.context(start),
                participant_id: participant_id.clone(),
                discloser: discloser as i32,
                recipient: recipient as i32,
                data_categories: vec![category as i32],
                valid_from: self.date(start),
                valid_to: self.date(start - 365),
                ..Default::default()
            };
            self.clients
                .municipality
                .grant_consent(as_coach.ask(consent))
                .await?;
        }
        let enrolment = v1::EnrollParticipantRequest {
            context: self.context(start),
            participant_id: participant_id.clone(),
            unit: UNIT.into(),
            coach_person_id: coach.into(),
        };
        self.clients
            .municipality
            .enroll_participant(as_coach.ask(enrolment))
            .await?;
        if index == 2 {
            // Eva has protected identity: only her coach and the team leader may open her.
            self.clients
                .municipality
                .protect_identity(as_coach.ask(v1::ProtectIdentityRequest {
                    write: self.write(&participant_id, start),
                    allowed_person_ids: vec![coach.into(), TEAM_LEADER.into()],
                    allowed_readers: Vec::new(),
                }))
                .await?;
        }
        let profile = v1::RecordProfileRequest {
            write: self.write(&participant_id, start - 3),
            preferences: "wants regular work with people".into(),
            hours_per_week_wanted: 20 + (index as u32 % 3) * 10,
            education_level: v1::EducationLevel::UpperSecondary as i32,
        };
        self.clients
            .municipality
            .record_profile(as_coach.ask(profile))
            .await?;
        let counselling = v1::RecordBenefitsCounsellingRequest {
            write: self.write(&participant_id, start - 3),
            benefits_discussed: vec![
                v1::CounselledBenefit::Sjukpenning as i32,
                v1::CounselledBenefit::Forsorjningsstod as i32,
            ],
        };
        self.clients
            .municipality
            .record_benefits_counselling(as_coach.ask(counselling))
            .await?;
        let contact = v1::RecordEmployerContactRequest {
            write: self.write(&participant_id, start - 9),
            employer: [
                "Hudiksvalls bageri",
                "ICA Kvantum",
                "Glada Hudikteatern",
                "Hälsinge Trä",
            ][index % 4]
                .into(),
            face_to_face: true,
            with_participant: index.is_multiple_of(2),
        };
        self.clients
            .municipality
            .record_employer_contact(as_coach.ask(contact))
            .await?;

        // Försäkringskassan: benefit, avstämningsmöte; Arbetsförmedlingen: registration.
        let benefit = v1::RegisterBenefitRequest {
            write: self.write(&participant_id, start),
            benefit: v1::BenefitKind::Sjukpenning as i32,
            degree_percent: [100, 75, 50][index % 3],
            employed: false,
            period: self.period(start, start - 364),
        };
        self.clients
            .forsakringskassan
            .register_benefit(fk.ask(benefit))
            .await?;
        self.clients
            .forsakringskassan
            .record_avstamningsmote(fk.ask(v1::DateRequest {
                write: self.write(&participant_id, start - 14),
                date: self.date(start - 14),
            }))
            .await?;
        self.clients
            .arbetsformedlingen
            .register_job_seeker(af.ask(v1::DateRequest {
                write: self.write(&participant_id, start - 10),
                date: self.date(start - 10),
            }))
            .await?;
        if index.is_multiple_of(3) {
            let coding = v1::DateRequest {
                write: self.write(&participant_id, start - 10),
                date: self.date(start - 10),
            };
            self.clients
                .arbetsformedlingen
                .request_disability_coding(af.ask(coding))
                .await?;
        }
        let meeting = v1::TreatmentTeamMeetingRequest {
            write: self.write(&participant_id, start - 7),
            held_on: self.date(start - 7),
            coach_present: index % 4 != 3,
        };
        self.clients
            .psychiatry
            .record_treatment_team_meeting(psychiatry.ask(meeting))
            .await?;

        // An arbetsträning: proposed, approved by FK, started.
        let proposal = v1::ProposeActivityRequest {
            write: self.write(&participant_id, start - 12),
            kind: v1::ActivityKind::Arbetstraning as i32,
            employer: "Hudiksvalls bageri".into(),
            hours_per_week: 20,
            planned_start: self.date(start - 19),
            ..Default::default()
        };
        let training = self
            .clients
            .municipality
            .propose_activity(as_coach.ask(proposal))
            .await?
            .into_inner()
            .created_id;
        let decision = v1::ActivityDecisionRequest {
            write: self.write(&participant_id, start - 33),
            activity_id: training.clone(),
            outcome: v1::DecisionOutcome::Approved as i32,
            valid: self.period(start - 35, start - 125),
            reason: "rehabilitation plan".into(),
        };
        self.clients
            .forsakringskassan
            .decide_activity(fk.ask(decision))
            .await?;
        let started = v1::ActivityDateRequest {
            write: self.write(&participant_id, start - 35),
            activity_id: training.clone(),
            date: self.date(start - 35),
        };
        self.clients
            .municipality
            .start_activity(as_coach.ask(started))
            .await?;

        // The two-monthly follow-ups that have fallen due so far.
        let mut follow_up_day = start - 60;
        while follow_up_day > 0 {
            let follow_up = v1::RecordFollowUpRequest {
                write: self.write(&participant_id, follow_up_day),
                status: v1::FollowUpStatus::InActivity as i32,
                obstacles: "energy varies".into(),
                helping_factors: "supportive employer".into(),
            };
            self.clients
                .municipality
                .record_follow_up(as_coach.ask(follow_up))
                .await?;
            follow_up_day -= 60;
        }

        // Every fourth finds a job; one pauses, one is discharged.
        if index.is_multiple_of(4) && start > 60 {
            let job = v1::ProposeActivityRequest {
                write: self.write(&participant_id, start - 50),
                kind: v1::ActivityKind::Job as i32,
                employer: "ICA Kvantum".into(),
                hours_per_week: 30,
                planned_start: self.date(start - 60),
                ..Default::default()
            };
            let job = self
                .clients
                .municipality
                .propose_activity(as_coach.ask(job))
                .await?
                .into_inner()
                .created_id;
            let ended = v1::ActivityDateRequest {
                write: self.write(&participant_id, start - 59),
                activity_id: training,
                date: self.date(start - 59),
            };
            self.clients
                .municipality
                .end_activity(as_coach.ask(ended))
                .await?;
            let job_started = v1::StartJobRequest {
                write: self.write(&participant_id, start - 60),
                activity_id: job,
                employer: "ICA Kvantum".into(),
                occupation: "butiksbiträde".into(),
                competitive: true,
                hours_per_week: 30,
                started_on: self.date(start - 60),
                ..Default::default()
            };
            self.clients
                .municipality
                .start_job(as_coach.ask(job_started))
                .await?;
        }
        if index == PARTICIPANTS - 2 {
            let pause = v1::PauseParticipantRequest {
                write: self.write(&participant_id, 1),
                reason: "inpatient care".into(),
            };
            self.clients
                .municipality
                .pause_participant(as_coach.ask(pause))
                .await?;
        }
        if index == PARTICIPANTS - 1 {
            let discharge = v1::DischargeParticipantRequest {
                write: self.write(&participant_id, 0),
                reason: v1::DischargeReason::Moved as i32,
            };
            self.clients
                .municipality
                .discharge_participant(as_coach.ask(discharge))
                .await?;
        }
        Ok(participant_id)
    }
}

/// Runs the demo, returning what it prints. Fails on any unexpected answer.
pub async fn run(clients: &mut Clients) -> anyhow::Result<String> {
    let mut output = String::from(
        "IPS Samverkan demo: 20 synthetic participants through the four agencies' gRPC APIs\n",
    );
    let today = domain::business_date(Utc::now());
    let mut demo = Demo { clients, today };
    let mut participants = Vec::with_capacity(PARTICIPANTS);
    for index in 0..PARTICIPANTS {
        participants.push(demo.drive(index).await?);
    }

    // A rule broken on purpose: enrolling Eva a second time.
    let second = v1::EnrollParticipantRequest {
        context: demo.context(0),
        participant_id: participants[2].clone(),
        unit: UNIT.into(),
        coach_person_id: "coach-17".into(),
    };
    match demo
        .clients
        .municipality
        .enroll_participant(caller(second, "coach-17", Role::Coach, UNIT))
        .await
    {
        Err(status) if status.code() == tonic::Code::FailedPrecondition => {
            let _ = writeln!(
                output,
                "\nA second enrolment of Eva was refused as expected: {}",
                status.message()
            );
        }
        other => anyhow::bail!(
            "a second enrolment must be refused with FAILED_PRECONDITION, got {other:?}"
        ),
    }

    let mut summary = String::from("\nEvery participant: lifecycle, entries, chain\n");
    for (index, participant_id) in participants.iter().enumerate() {
        let label = label(index);
        let verified = demo
            .clients
            .timeline
            .verify_chain(team_leader(v1::VerifyChainRequest {
                participant_id: participant_id.clone(),
            }))
            .await?
            .into_inner();
        let request = v1::GetTimelineRequest {
            participant_id: participant_id.clone(),
            min_sequence: verified.verified_entries,
            page_size: 1000,
            ..Default::default()
        };
        let entries = demo
            .clients
            .timeline
            .get_timeline(team_leader(request))
            .await?
            .into_inner()
            .entries;
        if index == 0 {
            output.push_str(&print::timeline(&label, participant_id, &entries));
            output.push_str(&print::verification(&verified));
            output.push('\n');
        }
        let placement = demo
            .clients
            .caseload
            .get_placement(team_leader(v1::GetPlacementRequest {
                participant_id: participant_id.clone(),
            }))
            .await?
            .into_inner();
        let chain = if verified.intact {
            "chain intact".to_owned()
        } else {
            format!("CHAIN BROKEN at {}", verified.first_broken_sequence)
        };
        let _ = writeln!(
            summary,
            "  {label:<16} {:<12} {:<9} {:>3} entries  {chain}",
            placement.lifecycle,
            placement.coach_person_id,
            entries.len()
        );
    }
    output.push_str(&summary);
    let board = demo
        .clients
        .caseload
        .get_caseload(team_leader(v1::GetCaseloadRequest {
            unit: UNIT.into(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    output.push_str(&print::caseload_board(&board));
    output.push_str(&demo.green_light_board(&participants).await?);

    // Protected identity: another coach is refused Eva's timeline, and says so.
    if let Some(eva) = participants.get(2) {
        let refused = demo
            .clients
            .timeline
            .get_timeline(caller(
                v1::GetTimelineRequest {
                    participant_id: eva.clone(),
                    ..Default::default()
                },
                "coach-99",
                Role::Coach,
                UNIT,
            ))
            .await;
        let _ = writeln!(
            output,
            "\nEva's timeline as coach-99 (not on her allow-list): {}",
            match refused {
                Ok(_) => "SHOWN (unexpected)".to_owned(),
                Err(status) => format!("{:?}: {}", status.code(), status.message()),
            }
        );
    }
    // The access log: who read Anna's data, as her extract shows it.
    if let Some(anna) = participants.first() {
        let extract = demo
            .clients
            .audit
            .get_access_log_extract(crate::as_officer(
                v1::GetAccessLogExtractRequest {
                    participant_id: anna.clone(),
                    ..Default::default()
                },
                Agency::Municipality,
                "auditor-1",
                Role::Auditor,
                "internal-control",
            ))
            .await?
            .into_inner();
        output.push_str(&print::access_log(&extract));
    }
    Ok(output)
}
