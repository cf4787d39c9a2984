//! Idempotency (issue 10): a client that repeats a write with the same `request_id` (a retry
//! after a lost answer) must get the very answer its first attempt got, and nothing new may be
//! recorded. Every write RPC is found in the descriptors (its request carries a
//! `WriteContext`), so a new one cannot be forgotten: each must have a request built here
//! (the test fails naming any that has none), which is sent twice with one `request_id`, and
//! the two answers must be equal in every field (a refusal: code, message, details and the
//! `ips-*` metadata). Each request is one the ledger accepts, on a participant set up for it
//! first, because an accepted write that mints an id (`created_id`) is where a repeat used to
//! answer with an id that was never recorded. A discharge's offer of the freed place is a
//! write of its own, so a repeated discharge is checked to offer the place once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use domain::{Agency, Role};
use prost::Message;
use proto::v1;
use testkit::{Stack, StackOptions};
use tonic::Code;

/// Who makes a call.
#[derive(Clone, Copy, Debug)]
struct Caller {
    agency: Agency,
    person: &'static str,
    role: Role,
    unit: &'static str,
}

const COACH: Caller = Caller {
    agency: Agency::Municipality,
    person: "coach-17",
    role: Role::Coach,
    unit: "hudiksvall-ips",
};
const SOCIAL_SERVICES: Caller = Caller {
    agency: Agency::Municipality,
    person: "ifo-officer-3",
    role: Role::CaseOfficer,
    unit: "hudiksvall-ifo",
};
const FK: Caller = Caller {
    agency: Agency::Forsakringskassan,
    person: "fk-officer-4",
    role: Role::CaseOfficer,
    unit: "fk-lfc-gavleborg",
};
const AF: Caller = Caller {
    agency: Agency::Arbetsformedlingen,
    person: "af-officer-2",
    role: Role::CaseOfficer,
    unit: "af-hudiksvall",
};
const PSYCHIATRY: Caller = Caller {
    agency: Agency::Psychiatry,
    person: "psychiatrist-5",
    role: Role::CaseOfficer,
    unit: "hudiksvall-vuxenpsykiatri",
};

impl Caller {
    fn request<T>(self, message: T) -> tonic::Request<T> {
        testkit::as_officer(message, self.agency, self.person, self.role, self.unit)
    }
}

/// A request already encoded (built from the generated types, sent on the walked path).
#[derive(Clone, Debug, Default, PartialEq)]
struct RawRequest(Vec<u8>);

impl prost::Message for RawRequest {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// Everything a client sees of an answer.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Written(v1::WriteResponse),
    Refused {
        code: Code,
        message: String,
        details: Vec<u8>,
        /// Every `ips-*` metadata entry (rule, event id).
        metadata: BTreeMap<String, String>,
    },
}

/// Every write RPC: its request message carries a `WriteContext`, directly or nested (the
/// `ParticipantWrite` of the agency writes). Returns `/service/method` and the output type.
fn write_rpcs() -> anyhow::Result<Vec<(String, String)>> {
    let set = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET)?;
    let mut messages = BTreeMap::new();
    for file in &set.file {
        for message in &file.message_type {
            messages.insert(format!(".{}.{}", file.package(), message.name()), message);
        }
    }
    fn carries_context(
        messages: &BTreeMap<String, &prost_types::DescriptorProto>,
        type_name: &str,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        if type_name == ".ips.v1.WriteContext" {
            return true;
        }
        if !seen.insert(type_name.to_owned()) {
            return false;
        }
        messages.get(type_name).is_some_and(|message| {
            message.field.iter().any(|field| {
                !field.type_name().is_empty() && carries_context(messages, field.type_name(), seen)
            })
        })
    }
    let mut rpcs = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                if carries_context(&messages, method.input_type(), &mut BTreeSet::new()) {
                    rpcs.push((
                        format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                        method.output_type().to_owned(),
                    ));
                }
            }
        }
    }
    Ok(rpcs)
}

/// Sends `request` to `path` as `caller`.
async fn call(
    stack: &Stack,
    path: &str,
    caller: Caller,
    request: &RawRequest,
) -> anyhow::Result<Answer> {
    let address = match path.split('/').nth(1).unwrap_or_default() {
        "ips.v1.MunicipalityService" => stack.municipality_address,
        "ips.v1.ForsakringskassanService" => stack.forsakringskassan_address,
        "ips.v1.ArbetsformedlingenService" => stack.arbetsformedlingen_address,
        "ips.v1.PsychiatryService" => stack.psychiatry_address,
        other => anyhow::bail!("no agency service answers {other}"),
    };
    let mut grpc = tonic::client::Grpc::new(testkit::channel_as(address, caller.agency).await?);
    grpc.ready().await?;
    let codec = tonic_prost::ProstCodec::<RawRequest, v1::WriteResponse>::default();
    let answer = grpc
        .unary(caller.request(request.clone()), path.parse()?, codec)
        .await;
    Ok(match answer {
        Ok(response) => Answer::Written(response.into_inner()),
        Err(status) => Answer::Refused {
            code: status.code(),
            message: status.message().to_owned(),
            details: status.details().to_vec(),
            metadata: status
                .metadata()
                .iter()
                .filter_map(|entry| match entry {
                    tonic::metadata::KeyAndValueRef::Ascii(key, value) => {
                        Some((key.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                    }
                    tonic::metadata::KeyAndValueRef::Binary(..) => None,
                })
                .filter(|(key, _)| key.starts_with("ips-"))
                .collect(),
        },
    })
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

fn in_days(days: i64) -> String {
    (today() + chrono::Duration::days(days)).to_string()
}

fn period(from_days: i64, to_days: i64) -> Option<v1::Period> {
    Some(v1::Period {
        from: in_days(from_days),
        to: in_days(to_days),
    })
}

fn write(participant_id: &str, context: Option<v1::WriteContext>) -> Option<v1::ParticipantWrite> {
    Some(v1::ParticipantWrite {
        context,
        participant_id: participant_id.to_owned(),
    })
}

/// A setup step's answer, which must be an acceptance.
fn accepted(
    step: &str,
    reply: Result<tonic::Response<v1::WriteResponse>, tonic::Status>,
) -> anyhow::Result<v1::WriteResponse> {
    let response = reply
        .map_err(|status| anyhow::anyhow!("setup {step}: {status:?}"))?
        .into_inner();
    anyhow::ensure!(
        response.status == v1::WriteStatus::Accepted as i32,
        "setup {step}: {response:?}"
    );
    Ok(response)
}

/// Builds the participants each write needs, through the public API.
struct Setup<'a> {
    stack: &'a Stack,
}

impl Setup<'_> {
    async fn referred(&self) -> anyhow::Result<String> {
        let reply = self
            .stack
            .municipality()
            .await?
            .refer_participant(COACH.request(v1::ReferParticipantRequest {
                source: v1::ReferralSource::Vuxenpsykiatri as i32,
                ..Default::default()
            }))
            .await;
        Ok(accepted("refer", reply)?.participant_id)
    }

    async fn enrolled(&self) -> anyhow::Result<String> {
        let participant_id = self.referred().await?;
        let reply = self
            .stack
            .municipality()
            .await?
            .enroll_participant(COACH.request(enrolment(&participant_id, None)))
            .await;
        accepted("enrol", reply)?;
        Ok(participant_id)
    }

    /// An enrolled participant with a proposed activity of `kind` starting today.
    async fn with_activity(&self, kind: v1::ActivityKind) -> anyhow::Result<(String, String)> {
        let participant_id = self.enrolled().await?;
        let reply = self
            .stack
            .municipality()
            .await?
            .propose_activity(COACH.request(proposal(&participant_id, None, kind)))
            .await;
        let activity_id = accepted("propose", reply)?.created_id;
        Ok((participant_id, activity_id))
    }

    /// An enrolled participant with a started activity of `kind`.
    async fn with_running(&self, kind: v1::ActivityKind) -> anyhow::Result<(String, String)> {
        let (participant_id, activity_id) = self.with_activity(kind).await?;
        let mut municipality = self.stack.municipality().await?;
        let reply = match kind {
            v1::ActivityKind::Job => {
                municipality
                    .start_job(COACH.request(job_start(&participant_id, &activity_id)))
                    .await
            }
            v1::ActivityKind::Studies => {
                municipality
                    .start_studies(COACH.request(v1::StartStudiesRequest {
                        write: write(&participant_id, None),
                        activity_id: activity_id.clone(),
                        programme: "Komvux svenska".into(),
                        started_on: in_days(0),
                    }))
                    .await
            }
            _ => {
                municipality
                    .start_activity(COACH.request(v1::ActivityDateRequest {
                        write: write(&participant_id, None),
                        activity_id: activity_id.clone(),
                        date: in_days(0),
                    }))
                    .await
            }
        };
        accepted("start", reply)?;
        Ok((participant_id, activity_id))
    }

    /// A referred participant registered as a job seeker.
    async fn job_seeker(&self) -> anyhow::Result<String> {
        let participant_id = self.referred().await?;
        let reply = self
            .stack
            .arbetsformedlingen()
            .await?
            .register_job_seeker(AF.request(v1::DateRequest {
                write: write(&participant_id, None),
                date: in_days(0),
            }))
            .await;
        accepted("register job seeker", reply)?;
        Ok(participant_id)
    }

    /// The body of an accepted event at `sequence`, as canonical JSON.
    async fn body_of(
        &self,
        participant_id: &str,
        event_id: &str,
        sequence: u64,
    ) -> anyhow::Result<String> {
        let entries = self
            .stack
            .timeline()
            .await?
            .get_timeline(testkit::as_auditor(v1::GetTimelineRequest {
                participant_id: participant_id.to_owned(),
                min_sequence: sequence,
                page_size: 1000,
                ..Default::default()
            }))
            .await?
            .into_inner()
            .entries;
        entries
            .into_iter()
            .find(|entry| entry.event_id == event_id)
            .map(|entry| entry.body_json)
            .ok_or_else(|| anyhow::anyhow!("event {event_id} not on the timeline"))
    }

    /// A correction of the accepted write `original`, restating its body (it changes nothing,
    /// so the ledger accepts it).
    async fn correction(
        &self,
        original: &v1::WriteResponse,
        context: v1::WriteContext,
    ) -> anyhow::Result<v1::CorrectEventRequest> {
        Ok(v1::CorrectEventRequest {
            write: write(&original.participant_id, Some(context)),
            supersedes_event_id: original.event_id.clone(),
            reason: "restated".into(),
            corrected_body_json: self
                .body_of(
                    &original.participant_id,
                    &original.event_id,
                    original.sequence,
                )
                .await?,
        })
    }
}

fn enrolment(
    participant_id: &str,
    context: Option<v1::WriteContext>,
) -> v1::EnrollParticipantRequest {
    v1::EnrollParticipantRequest {
        context,
        participant_id: participant_id.to_owned(),
        unit: "hudiksvall-ips".into(),
        coach_person_id: "coach-17".into(),
    }
}

/// A proposal starting today, with no activity id: the service mints one.
fn proposal(
    participant_id: &str,
    context: Option<v1::WriteContext>,
    kind: v1::ActivityKind,
) -> v1::ProposeActivityRequest {
    v1::ProposeActivityRequest {
        write: write(participant_id, context),
        activity_id: String::new(),
        kind: kind as i32,
        employer: "Hudiksvalls bageri".into(),
        hours_per_week: 20,
        planned_start: in_days(0),
        ..Default::default()
    }
}

fn job_start(participant_id: &str, activity_id: &str) -> v1::StartJobRequest {
    v1::StartJobRequest {
        write: write(participant_id, None),
        activity_id: activity_id.to_owned(),
        employer: "Hudiksvalls bageri".into(),
        occupation: "bagare".into(),
        competitive: true,
        hours_per_week: 20,
        started_on: in_days(0),
        ..Default::default()
    }
}

fn consent(participant_id: &str, context: Option<v1::WriteContext>) -> v1::GrantConsentRequest {
    v1::GrantConsentRequest {
        context,
        participant_id: participant_id.to_owned(),
        consent_id: String::new(),
        discloser: v1::ConsentParty::IpsUnit as i32,
        recipient: v1::ConsentParty::Forsakringskassan as i32,
        data_categories: vec![v1::DataCategory::Participation as i32],
        valid_from: in_days(0),
        valid_to: in_days(365),
    }
}

fn decision(participant_id: &str, activity_id: &str, context: v1::WriteContext) -> RawRequest {
    encoded(v1::ActivityDecisionRequest {
        write: write(participant_id, Some(context)),
        activity_id: activity_id.to_owned(),
        outcome: v1::DecisionOutcome::Approved as i32,
        valid: period(0, 90),
        reason: String::new(),
    })
}

/// A step that is only a date: today.
fn date(participant_id: &str, context: Option<v1::WriteContext>) -> RawRequest {
    encoded(v1::DateRequest {
        write: write(participant_id, context),
        date: in_days(0),
    })
}

fn encoded(message: impl Message) -> RawRequest {
    RawRequest(message.encode_to_vec())
}

/// The request of the write RPC at `path`, carrying `context`, on a participant set up so the
/// ledger accepts it; `None` when this test has no request for it yet.
async fn request_for(
    setup: &Setup<'_>,
    path: &str,
    context: v1::WriteContext,
) -> anyhow::Result<Option<(Caller, RawRequest)>> {
    let ctx = Some(context.clone());
    let stack = setup.stack;
    let (service, method) = path
        .trim_start_matches("/ips.v1.")
        .split_once('/')
        .unwrap_or_default();
    Ok(Some(match (service, method) {
        // ---- Municipality ----
        ("MunicipalityService", "ReferParticipant") => (
            COACH,
            encoded(v1::ReferParticipantRequest {
                context: ctx,
                source: v1::ReferralSource::Vuxenpsykiatri as i32,
                ..Default::default()
            }),
        ),
        ("MunicipalityService", "EnrollParticipant") => {
            let participant_id = setup.referred().await?;
            (COACH, encoded(enrolment(&participant_id, ctx)))
        }
        ("MunicipalityService", "GrantConsent") => {
            let participant_id = setup.referred().await?;
            (COACH, encoded(consent(&participant_id, ctx)))
        }
        ("MunicipalityService", "WithdrawConsent") => {
            let participant_id = setup.referred().await?;
            let reply = stack
                .municipality()
                .await?
                .grant_consent(COACH.request(consent(&participant_id, None)))
                .await;
            accepted("grant consent", reply)?;
            (
                COACH,
                encoded(v1::WithdrawConsentRequest {
                    context: ctx,
                    participant_id,
                    discloser: v1::ConsentParty::IpsUnit as i32,
                    recipient: v1::ConsentParty::Forsakringskassan as i32,
                    data_categories: vec![v1::DataCategory::Participation as i32],
                    effective_from: in_days(0),
                }),
            )
        }
        ("MunicipalityService", "DeclineReferral") => {
            let participant_id = setup.referred().await?;
            (
                COACH,
                encoded(v1::DeclineReferralRequest {
                    write: write(&participant_id, ctx),
                    reason: "no wish to work now".into(),
                }),
            )
        }
        ("MunicipalityService", "AssignCoach") => {
            let participant_id = setup.enrolled().await?;
            (
                COACH,
                encoded(v1::AssignCoachRequest {
                    write: write(&participant_id, ctx),
                    coach_person_id: "coach-18".into(),
                }),
            )
        }
        ("MunicipalityService", "PauseParticipant") => {
            let participant_id = setup.enrolled().await?;
            (
                COACH,
                encoded(v1::PauseParticipantRequest {
                    write: write(&participant_id, ctx),
                    reason: "inpatient care".into(),
                }),
            )
        }
        ("MunicipalityService", "ResumeParticipant") => {
            let participant_id = setup.enrolled().await?;
            let reply = stack
                .municipality()
                .await?
                .pause_participant(COACH.request(v1::PauseParticipantRequest {
                    write: write(&participant_id, None),
                    reason: "inpatient care".into(),
                }))
                .await;
            accepted("pause", reply)?;
            (
                COACH,
                encoded(v1::ParticipantWrite {
                    context: ctx,
                    participant_id,
                }),
            )
        }
        ("MunicipalityService", "DischargeParticipant") => {
            let participant_id = setup.enrolled().await?;
            (
                COACH,
                encoded(v1::DischargeParticipantRequest {
                    write: write(&participant_id, ctx),
                    reason: v1::DischargeReason::EmployedAndStable as i32,
                }),
            )
        }
        ("MunicipalityService", "ReEnrollParticipant") => {
            let participant_id = setup.enrolled().await?;
            let reply = stack
                .municipality()
                .await?
                .discharge_participant(COACH.request(v1::DischargeParticipantRequest {
                    write: write(&participant_id, None),
                    reason: v1::DischargeReason::Moved as i32,
                }))
                .await;
            accepted("discharge", reply)?;
            (COACH, encoded(enrolment(&participant_id, ctx)))
        }
        ("MunicipalityService", "RecordProfile") => {
            let participant_id = setup.enrolled().await?;
            (
                COACH,
                encoded(v1::RecordProfileRequest {
                    write: write(&participant_id, ctx),
                    preferences: "outdoor work".into(),
                    hours_per_week_wanted: 20,
                    education_level: v1::EducationLevel::UpperSecondary as i32,
                }),
            )
        }
        ("MunicipalityService", "RecordBenefitsCounselling") => {
            let participant_id = setup.enrolled().await?;
            (
                COACH,
                encoded(v1::RecordBenefitsCounsellingRequest {
                    write: write(&participant_id, ctx),
                    benefits_discussed: vec![v1::CounselledBenefit::Sjukpenning as i32],
                }),
            )
        }
        ("MunicipalityService", "RecordDisclosurePreference") => {
            let participant_id = setup.enrolled().await?;
            (
                COACH,
                encoded(v1::RecordDisclosurePreferenceRequest {
                    write: write(&participant_id, ctx),
                    preference: v1::DisclosurePreference::NeedsOnly as i32,
                }),
            )
        }
        ("MunicipalityService", "RecordEmployerContact") => {
            let participant_id = setup.enrolled().await?;
            (
                COACH,
                encoded(v1::RecordEmployerContactRequest {
                    write: write(&participant_id, ctx),
                    employer: "Hudiksvalls bageri".into(),
                    face_to_face: true,
                    with_participant: false,
                }),
            )
        }
        ("MunicipalityService", "ProposeActivity") => {
            let participant_id = setup.enrolled().await?;
            (
                COACH,
                encoded(proposal(
                    &participant_id,
                    ctx,
                    v1::ActivityKind::Arbetstraning,
                )),
            )
        }
        ("MunicipalityService", "StartActivity") => {
            let (participant_id, activity_id) =
                setup.with_activity(v1::ActivityKind::Arbetstraning).await?;
            (
                COACH,
                encoded(v1::ActivityDateRequest {
                    write: write(&participant_id, ctx),
                    activity_id,
                    date: in_days(0),
                }),
            )
        }
        ("MunicipalityService", "EndActivity") => {
            let (participant_id, activity_id) =
                setup.with_running(v1::ActivityKind::Arbetstraning).await?;
            (
                COACH,
                encoded(v1::ActivityDateRequest {
                    write: write(&participant_id, ctx),
                    activity_id,
                    date: in_days(0),
                }),
            )
        }
        ("MunicipalityService", "StartJob") => {
            let (participant_id, activity_id) = setup.with_activity(v1::ActivityKind::Job).await?;
            (
                COACH,
                encoded(v1::StartJobRequest {
                    write: write(&participant_id, ctx),
                    ..job_start(&participant_id, &activity_id)
                }),
            )
        }
        ("MunicipalityService", "ChangeHours") => {
            let (participant_id, activity_id) = setup.with_running(v1::ActivityKind::Job).await?;
            (
                COACH,
                encoded(v1::ChangeHoursRequest {
                    write: write(&participant_id, ctx),
                    activity_id,
                    hours_per_week: 30,
                    from: in_days(0),
                }),
            )
        }
        ("MunicipalityService", "EndJob") => {
            let (participant_id, activity_id) = setup.with_running(v1::ActivityKind::Job).await?;
            (
                COACH,
                encoded(v1::EndJobRequest {
                    write: write(&participant_id, ctx),
                    activity_id,
                    ended_on: in_days(0),
                    reason: v1::JobEndReason::FixedTermEnded as i32,
                }),
            )
        }
        ("MunicipalityService", "StartStudies") => {
            let (participant_id, activity_id) =
                setup.with_activity(v1::ActivityKind::Studies).await?;
            (
                COACH,
                encoded(v1::StartStudiesRequest {
                    write: write(&participant_id, ctx),
                    activity_id,
                    programme: "Komvux svenska".into(),
                    started_on: in_days(0),
                }),
            )
        }
        ("MunicipalityService", "EndStudies") => {
            let (participant_id, activity_id) =
                setup.with_running(v1::ActivityKind::Studies).await?;
            (
                COACH,
                encoded(v1::ActivityDateRequest {
                    write: write(&participant_id, ctx),
                    activity_id,
                    date: in_days(0),
                }),
            )
        }
        ("MunicipalityService", "RecordFollowAlongContact") => {
            let (participant_id, activity_id) = setup.with_running(v1::ActivityKind::Job).await?;
            (
                COACH,
                encoded(v1::RecordFollowAlongContactRequest {
                    write: write(&participant_id, ctx),
                    activity_id,
                    contact_on: in_days(0),
                }),
            )
        }
        ("MunicipalityService", "RecordFollowUp") => {
            let participant_id = setup.enrolled().await?;
            (
                COACH,
                encoded(v1::RecordFollowUpRequest {
                    write: write(&participant_id, ctx),
                    status: v1::FollowUpStatus::Searching as i32,
                    obstacles: "sleeps badly".into(),
                    helping_factors: "mornings".into(),
                }),
            )
        }
        ("MunicipalityService", "RecordOutreachAttempt") => {
            let participant_id = setup.enrolled().await?;
            (
                COACH,
                encoded(v1::RecordOutreachAttemptRequest {
                    write: write(&participant_id, ctx),
                    channel: v1::OutreachChannel::Phone as i32,
                }),
            )
        }
        ("MunicipalityService", "RecordSipHeld" | "RecordSipEstablished") => {
            let participant_id = setup.enrolled().await?;
            (COACH, date(&participant_id, ctx))
        }
        ("MunicipalityService", "RecordBenefitSelfReport") => {
            let participant_id = setup.enrolled().await?;
            (
                COACH,
                encoded(v1::RecordBenefitSelfReportRequest {
                    write: write(&participant_id, ctx),
                    benefit: v1::BenefitKind::Sjukpenning as i32,
                    said_on: in_days(0),
                }),
            )
        }
        ("MunicipalityService", "ProtectIdentity") => {
            let participant_id = setup.enrolled().await?;
            (
                COACH,
                encoded(v1::ProtectIdentityRequest {
                    write: write(&participant_id, ctx),
                    allowed_person_ids: vec!["coach-17".into(), "team-leader-1".into()],
                    allowed_readers: Vec::new(),
                }),
            )
        }
        ("MunicipalityService", "RecordSocialAssistance") => {
            let participant_id = setup.enrolled().await?;
            (
                SOCIAL_SERVICES,
                encoded(v1::RecordSocialAssistanceRequest {
                    write: write(&participant_id, ctx),
                    status: v1::SocialAssistanceStatus::Granted as i32,
                }),
            )
        }
        ("MunicipalityService", "AcceptActivityInPlanning") => {
            let (participant_id, activity_id) =
                setup.with_activity(v1::ActivityKind::Arbetstraning).await?;
            (
                SOCIAL_SERVICES,
                encoded(v1::ActivityRequest {
                    write: write(&participant_id, ctx),
                    activity_id,
                }),
            )
        }
        ("MunicipalityService", "CorrectEvent") => {
            let participant_id = setup.enrolled().await?;
            let reply = stack
                .municipality()
                .await?
                .record_follow_up(COACH.request(v1::RecordFollowUpRequest {
                    write: write(&participant_id, None),
                    status: v1::FollowUpStatus::Searching as i32,
                    obstacles: "sleeps badly".into(),
                    helping_factors: "mornings".into(),
                }))
                .await;
            let original = accepted("follow-up", reply)?;
            let correction = setup.correction(&original, context).await?;
            (COACH, encoded(correction))
        }

        // ---- Försäkringskassan ----
        ("ForsakringskassanService", "RegisterBenefit") => {
            let participant_id = setup.referred().await?;
            (FK, encoded(benefit(&participant_id, ctx)))
        }
        ("ForsakringskassanService", "EndBenefit") => {
            let participant_id = setup.referred().await?;
            let reply = stack
                .forsakringskassan()
                .await?
                .register_benefit(FK.request(benefit(&participant_id, None)))
                .await;
            accepted("register benefit", reply)?;
            (
                FK,
                encoded(v1::EndBenefitRequest {
                    write: write(&participant_id, ctx),
                    benefit: v1::BenefitKind::Sjukpenning as i32,
                    ended_on: in_days(0),
                }),
            )
        }
        ("ForsakringskassanService", "ReceiveMedicalCertificate") => {
            let participant_id = setup.referred().await?;
            (
                FK,
                encoded(v1::MedicalCertificateRequest {
                    write: write(&participant_id, ctx),
                    period: period(0, 90),
                    degree_percent: 50,
                }),
            )
        }
        ("ForsakringskassanService", "RecordAvstamningsmote" | "EstablishRehabPlan") => {
            let participant_id = setup.referred().await?;
            (FK, date(&participant_id, ctx))
        }
        ("ForsakringskassanService", "ReviseRehabPlan") => {
            let participant_id = setup.referred().await?;
            let reply = stack
                .forsakringskassan()
                .await?
                .establish_rehab_plan(FK.request(v1::DateRequest {
                    write: write(&participant_id, None),
                    date: in_days(0),
                }))
                .await;
            accepted("establish rehab plan", reply)?;
            (FK, date(&participant_id, ctx))
        }
        ("ForsakringskassanService", "DecideActivity") => {
            let (participant_id, activity_id) =
                setup.with_activity(v1::ActivityKind::Arbetstraning).await?;
            (FK, decision(&participant_id, &activity_id, context))
        }
        ("ForsakringskassanService", "MakeActivityAgreement") => {
            let (participant_id, activity_id) =
                setup.with_activity(v1::ActivityKind::Arbetstraning).await?;
            (
                FK,
                encoded(v1::ActivityPeriodRequest {
                    write: write(&participant_id, ctx),
                    activity_id,
                    valid: period(0, 90),
                }),
            )
        }
        ("ForsakringskassanService", "DecideDormantBenefit") => {
            let (participant_id, activity_id) = setup.with_activity(v1::ActivityKind::Job).await?;
            (
                FK,
                encoded(v1::ActivityPeriodRequest {
                    write: write(&participant_id, ctx),
                    activity_id,
                    valid: period(0, 180),
                }),
            )
        }
        ("ForsakringskassanService", "CorrectEvent") => {
            let participant_id = setup.referred().await?;
            let reply = stack
                .forsakringskassan()
                .await?
                .record_avstamningsmote(FK.request(v1::DateRequest {
                    write: write(&participant_id, None),
                    date: in_days(0),
                }))
                .await;
            let original = accepted("avstämningsmöte", reply)?;
            let correction = setup.correction(&original, context).await?;
            (FK, encoded(correction))
        }

        // ---- Arbetsförmedlingen ----
        ("ArbetsformedlingenService", "RegisterJobSeeker") => {
            let participant_id = setup.referred().await?;
            (AF, date(&participant_id, ctx))
        }
        (
            "ArbetsformedlingenService",
            "DeregisterJobSeeker" | "RequestDisabilityCoding" | "RegisterDisabilityCoding",
        ) => {
            let participant_id = setup.job_seeker().await?;
            (AF, date(&participant_id, ctx))
        }
        ("ArbetsformedlingenService", "AssignProgramme") => {
            let participant_id = setup.job_seeker().await?;
            (AF, encoded(programme(&participant_id, ctx)))
        }
        ("ArbetsformedlingenService", "EndProgramme") => {
            let participant_id = setup.job_seeker().await?;
            let reply = stack
                .arbetsformedlingen()
                .await?
                .assign_programme(AF.request(programme(&participant_id, None)))
                .await;
            let programme_id = accepted("assign programme", reply)?.created_id;
            (
                AF,
                encoded(v1::EndProgrammeRequest {
                    write: write(&participant_id, ctx),
                    programme_id,
                    ended_on: in_days(0),
                }),
            )
        }
        ("ArbetsformedlingenService", "DecideSius") => {
            let participant_id = setup.job_seeker().await?;
            (AF, encoded(sius(&participant_id, ctx)))
        }
        ("ArbetsformedlingenService", "EndSius") => {
            let participant_id = setup.job_seeker().await?;
            let reply = stack
                .arbetsformedlingen()
                .await?
                .decide_sius(AF.request(sius(&participant_id, None)))
                .await;
            accepted("decide SIUS", reply)?;
            (AF, date(&participant_id, ctx))
        }
        ("ArbetsformedlingenService", "DecideSubsidy") => {
            let (participant_id, activity_id) = setup.with_activity(v1::ActivityKind::Job).await?;
            (
                AF,
                encoded(v1::DecideSubsidyRequest {
                    write: write(&participant_id, ctx),
                    subsidy: v1::Subsidy::Lonebidrag as i32,
                    activity_id,
                    employer: "Hudiksvalls bageri".into(),
                    period: period(0, 365),
                }),
            )
        }
        ("ArbetsformedlingenService", "DecideActivity") => {
            let (participant_id, activity_id) =
                setup.with_activity(v1::ActivityKind::Arbetstraning).await?;
            (AF, decision(&participant_id, &activity_id, context))
        }
        ("ArbetsformedlingenService", "CorrectEvent") => {
            let participant_id = setup.job_seeker().await?;
            let reply = stack
                .arbetsformedlingen()
                .await?
                .request_disability_coding(AF.request(v1::DateRequest {
                    write: write(&participant_id, None),
                    date: in_days(0),
                }))
                .await;
            let original = accepted("request disability coding", reply)?;
            let correction = setup.correction(&original, context).await?;
            (AF, encoded(correction))
        }

        // ---- Psychiatry ----
        ("PsychiatryService", "SendIpsReferral" | "ReportDischargeReady") => {
            let participant_id = setup.referred().await?;
            (PSYCHIATRY, date(&participant_id, ctx))
        }
        ("PsychiatryService", "RecordTreatmentTeamMeeting") => {
            let participant_id = setup.referred().await?;
            (
                PSYCHIATRY,
                encoded(v1::TreatmentTeamMeetingRequest {
                    write: write(&participant_id, ctx),
                    held_on: in_days(0),
                    coach_present: true,
                }),
            )
        }
        ("PsychiatryService", "IssueMedicalCertificate") => {
            let participant_id = setup.referred().await?;
            (
                PSYCHIATRY,
                encoded(v1::IssueMedicalCertificateRequest {
                    write: write(&participant_id, ctx),
                    period: period(0, 90),
                    degree_percent: 50,
                }),
            )
        }
        ("PsychiatryService", "RecordInpatientAdmission") => {
            let participant_id = setup.referred().await?;
            (
                PSYCHIATRY,
                encoded(v1::InpatientAdmissionRequest {
                    write: write(&participant_id, ctx),
                    admitted_on: in_days(0),
                    care_form: v1::CareForm::Compulsory as i32,
                }),
            )
        }
        ("PsychiatryService", "RecordInpatientDischarge") => {
            let participant_id = setup.referred().await?;
            let reply = stack
                .psychiatry()
                .await?
                .record_inpatient_admission(PSYCHIATRY.request(v1::InpatientAdmissionRequest {
                    write: write(&participant_id, None),
                    admitted_on: in_days(0),
                    care_form: v1::CareForm::Voluntary as i32,
                }))
                .await;
            accepted("inpatient admission", reply)?;
            (PSYCHIATRY, date(&participant_id, ctx))
        }
        ("PsychiatryService", "ChangeAvailability") => {
            let participant_id = setup.referred().await?;
            (
                PSYCHIATRY,
                encoded(v1::ChangeAvailabilityRequest {
                    write: write(&participant_id, ctx),
                    availability: v1::Availability::TemporarilyUnavailable as i32,
                    from: in_days(0),
                }),
            )
        }
        ("PsychiatryService", "CorrectEvent") => {
            let participant_id = setup.referred().await?;
            let reply = stack
                .psychiatry()
                .await?
                .report_discharge_ready(PSYCHIATRY.request(v1::DateRequest {
                    write: write(&participant_id, None),
                    date: in_days(0),
                }))
                .await;
            let original = accepted("discharge ready", reply)?;
            let correction = setup.correction(&original, context).await?;
            (PSYCHIATRY, encoded(correction))
        }
        _ => return Ok(None),
    }))
}

fn benefit(participant_id: &str, context: Option<v1::WriteContext>) -> v1::RegisterBenefitRequest {
    v1::RegisterBenefitRequest {
        write: write(participant_id, context),
        benefit: v1::BenefitKind::Sjukpenning as i32,
        degree_percent: 50,
        period: period(0, 180),
        employed: false,
    }
}

fn programme(
    participant_id: &str,
    context: Option<v1::WriteContext>,
) -> v1::AssignProgrammeRequest {
    v1::AssignProgrammeRequest {
        write: write(participant_id, context),
        programme_id: String::new(),
        programme: "Förberedande insatser".into(),
        with_activity_allowance: true,
        period: period(0, 120),
    }
}

fn sius(participant_id: &str, context: Option<v1::WriteContext>) -> v1::PeriodRequest {
    v1::PeriodRequest {
        write: write(participant_id, context),
        period: period(0, 90),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_repeated_with_its_request_id_gets_the_first_answer() -> anyhow::Result<()> {
    // One coach takes every participant this test enrols.
    let stack = Stack::start_with(StackOptions {
        coach_active_participants_max: 200,
        ..Default::default()
    })
    .await?;
    let setup = Setup { stack: &stack };
    let rpcs = write_rpcs()?;
    for expected in [
        "/ips.v1.MunicipalityService/ProposeActivity",
        "/ips.v1.MunicipalityService/GrantConsent",
        "/ips.v1.MunicipalityService/ReferParticipant",
        "/ips.v1.ArbetsformedlingenService/AssignProgramme",
        "/ips.v1.PsychiatryService/CorrectEvent",
    ] {
        assert!(
            rpcs.iter().any(|(path, _)| path == expected),
            "{expected} not walked: {rpcs:?}"
        );
    }
    assert!(
        rpcs.len() > 50,
        "expected every write RPC, found {}",
        rpcs.len()
    );
    let mut without_request = Vec::new();
    let mut mismatches = Vec::new();
    let mut minted = 0;
    for (path, output_type) in &rpcs {
        // Answers are compared as WriteResponse; another answer type needs its own decoding.
        if output_type != ".ips.v1.WriteResponse" {
            mismatches.push(format!("{path}: answers {output_type}, not WriteResponse"));
            continue;
        }
        let context = v1::WriteContext {
            request_id: format!("retry-of-{}", path.trim_start_matches('/')),
            ..Default::default()
        };
        let Some((caller, request)) = request_for(&setup, path, context).await? else {
            without_request.push(path.clone());
            continue;
        };
        let first = call(&stack, path, caller, &request).await?;
        let stored_before_repeat = stack.stored_events(None).await?;
        let second = call(&stack, path, caller, &request).await?;
        let stored_after_repeat = stack.stored_events(None).await?;
        if stored_after_repeat != stored_before_repeat {
            mismatches.push(format!(
                "{path}: the repeat recorded {} event(s)",
                stored_after_repeat - stored_before_repeat
            ));
        }
        let Answer::Written(written) = &first else {
            mismatches.push(format!(
                "{path}: the first call was not accepted: {first:?}"
            ));
            continue;
        };
        if written.status != v1::WriteStatus::Accepted as i32 {
            mismatches.push(format!(
                "{path}: the first call was not accepted: {first:?}"
            ));
            continue;
        }
        if second != first {
            mismatches.push(format!(
                "{path}: the repeat answered differently\n  first:  {first:?}\n  repeat: {second:?}"
            ));
            continue;
        }
        // A minted id must name what was recorded.
        if !written.created_id.is_empty() {
            minted += 1;
            let body = setup
                .body_of(&written.participant_id, &written.event_id, written.sequence)
                .await?;
            if !body.contains(&written.created_id) {
                mismatches.push(format!(
                    "{path}: created_id {} is not in the recorded body {body}",
                    written.created_id
                ));
            }
        }
    }
    assert!(
        without_request.is_empty(),
        "write RPCs without a request in this test (add one to `request_for`): {without_request:?}"
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // ProposeActivity, GrantConsent and AssignProgramme mint ids.
    assert!(minted >= 3, "only {minted} writes answered a created_id");
    stack.stop().await;
    Ok(())
}

/// Waits until the caseload board satisfies `ready` (the read model trails the event store).
async fn board_when(
    stack: &Stack,
    ready: impl Fn(&v1::GetCaseloadResponse) -> bool,
) -> anyhow::Result<v1::GetCaseloadResponse> {
    let mut caseload = stack.caseload().await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let board = caseload
            .get_caseload(testkit::as_team_leader(v1::GetCaseloadRequest {
                unit: "hudiksvall-ips".into(),
                ..Default::default()
            }))
            .await?
            .into_inner();
        if ready(&board) {
            return Ok(board);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the board never got there: {board:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_discharge_offers_the_freed_place_once() -> anyhow::Result<()> {
    let stack = Stack::start_with(StackOptions {
        coach_active_participants_max: 1,
        ..Default::default()
    })
    .await?;
    let setup = Setup { stack: &stack };
    let mut municipality = stack.municipality().await?;
    // The coach is full with one participant; two more wait for a place.
    let active = setup.enrolled().await?;
    board_when(&stack, |board| {
        board
            .coaches
            .iter()
            .any(|coach| coach.active_participants == 1)
    })
    .await?;
    let mut waiting = Vec::new();
    for count in 1..=2 {
        let participant_id = setup.referred().await?;
        let placed = accepted(
            "enrol on the waiting list",
            municipality
                .enroll_participant(COACH.request(enrolment(&participant_id, None)))
                .await,
        )?;
        assert_eq!(placed.event_type, "PlacedOnWaitingList");
        board_when(&stack, |board| board.waiting_list.len() == count).await?;
        waiting.push(participant_id);
    }

    let discharge = v1::DischargeParticipantRequest {
        write: write(
            &active,
            Some(v1::WriteContext {
                request_id: "discharge-once".into(),
                ..Default::default()
            }),
        ),
        reason: v1::DischargeReason::EmployedAndStable as i32,
    };
    let first = accepted(
        "discharge",
        municipality
            .discharge_participant(COACH.request(discharge.clone()))
            .await,
    )?;
    // The offer is on the board before the client retries (its answer was lost, say).
    board_when(&stack, |board| {
        board
            .waiting_list
            .iter()
            .any(|entry| !entry.offered_coach_person_id.is_empty())
    })
    .await?;
    let stored_before_repeat = stack.stored_events(None).await?;
    let repeat = municipality
        .discharge_participant(COACH.request(discharge))
        .await?
        .into_inner();
    assert_eq!(repeat, first);
    assert_eq!(
        stack.stored_events(None).await?,
        stored_before_repeat,
        "a repeated discharge records nothing new"
    );
    // The discharge answers only after its offer has been decided, so every offer made is in
    // the store by now.
    assert_eq!(
        stack.stored_events(Some("WaitingListPlaceOffered")).await?,
        1,
        "one freed place, one offer"
    );
    let board = board_when(&stack, |_| true).await?;
    let offered: Vec<&str> = board
        .waiting_list
        .iter()
        .filter(|entry| !entry.offered_coach_person_id.is_empty())
        .map(|entry| entry.participant_id.as_str())
        .collect();
    assert_eq!(
        offered,
        [waiting[0].as_str()],
        "the longest-waiting is offered the place"
    );
    stack.stop().await;
    Ok(())
}
