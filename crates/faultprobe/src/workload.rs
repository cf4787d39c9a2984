//! The writers: officers of the four agencies working through participants over the public
//! gRPC APIs, each request with its own `request_id`, and every answer kept so the checks can
//! hold the store to it.
//!
//! A writer takes one participant at a time through ten steps (referral, consent, enrolment,
//! Försäkringskassan's benefit and avstämningsmöte, Arbetsförmedlingen's registration,
//! psychiatry's treatment-team meeting, the coach's profile and employer contacts). Each step
//! waits for a definite answer before the next is sent, so the order the writer sent them in is
//! the order the participant's history must have. Several steps depend on earlier ones
//! (nothing can be recorded before the referral, a registration only once), so an event
//! applied out of order would also show as a rule refusal.
//!
//! A definite answer is ACCEPTED, PENDING, or a refusal. UNAVAILABLE means "unknown": the
//! writer asks again with the same `request_id` until the answer is definite. So do the other
//! answers that leave the outcome unknown (a deadline, a cut connection); they are counted
//! apart, since the contract promises only the three answers.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::{Agency, Role};
use proto::v1;
use tonic::transport::Channel;
use tonic::Code;

/// Steps per participant.
pub const STEPS_PER_PARTICIPANT: usize = 10;

/// How long one request may go without a definite answer before the probe calls it wedged.
const DEFINITE_ANSWER_WITHIN: Duration = Duration::from_secs(300);

/// The pause before asking again, doubling up to [`RETRY_BACKOFF_MAX`].
const RETRY_BACKOFF_FIRST: Duration = Duration::from_millis(100);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What the writers and the fault task share.
#[derive(Debug, Default)]
pub struct Progress {
    /// Definite answers so far.
    pub answers: AtomicU64,
    /// UNAVAILABLE answers so far.
    pub unavailable_answers: AtomicU64,
    /// Set when the writers should finish their current participant and stop.
    pub stop: AtomicBool,
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// ACCEPTED: applied and stored.
    Accepted,
    /// PENDING: durably in the stream; the ledger will apply it.
    Pending,
    /// FAILED_PRECONDITION: a rule refused it (recorded as a rejection). Never expected here.
    Rejected {
        /// The rule, from the `ips-rule` metadata.
        rule: String,
    },
    /// Refused before it reached the stream (invalid input, access): never stored.
    Refused {
        /// The gRPC code and message.
        status: String,
    },
    /// No definite answer within [`DEFINITE_ANSWER_WITHIN`].
    Wedged {
        /// The last answer seen.
        last: String,
    },
}

impl Answer {
    /// Whether this answer promises the event is (or will be) stored.
    pub fn promises_storage(&self) -> bool {
        matches!(self, Self::Accepted | Self::Pending | Self::Rejected { .. })
    }
}

/// One request and its outcome.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// The request's idempotency key.
    pub request_id: String,
    /// The RPC, for reports.
    pub rpc: &'static str,
    /// The event id the definite answer named (empty when there was none).
    pub event_id: String,
    /// The definite answer.
    pub answer: Answer,
    /// UNAVAILABLE answers before the definite one.
    pub unavailable_answers: u32,
    /// Other unknown-outcome answers before the definite one, by gRPC code.
    pub other_unknown_answers: BTreeMap<String, u32>,
}

/// One participant as a writer drove it.
#[derive(Clone, Debug)]
pub struct ParticipantRecord {
    /// Its id (minted from the referral's `request_id`); empty if the referral got none.
    pub participant_id: String,
    /// Its requests, in the order they were sent.
    pub requests: Vec<RequestRecord>,
}

/// A writer's clients, one per agency service.
#[derive(Clone)]
pub struct AgencyClients {
    municipality: v1::municipality_service_client::MunicipalityServiceClient<Channel>,
    forsakringskassan:
        v1::forsakringskassan_service_client::ForsakringskassanServiceClient<Channel>,
    arbetsformedlingen:
        v1::arbetsformedlingen_service_client::ArbetsformedlingenServiceClient<Channel>,
    psychiatry: v1::psychiatry_service_client::PsychiatryServiceClient<Channel>,
}

impl AgencyClients {
    /// Connects to the four agency services (in `crate::stack::AGENCY_SERVICES` order), each
    /// over mTLS as its own organisation.
    pub async fn connect(addresses: [std::net::SocketAddr; 4]) -> anyhow::Result<Self> {
        Ok(Self {
            municipality: v1::municipality_service_client::MunicipalityServiceClient::new(
                testkit::channel_as(addresses[0], Agency::Municipality).await?,
            ),
            forsakringskassan:
                v1::forsakringskassan_service_client::ForsakringskassanServiceClient::new(
                    testkit::channel_as(addresses[1], Agency::Forsakringskassan).await?,
                ),
            arbetsformedlingen:
                v1::arbetsformedlingen_service_client::ArbetsformedlingenServiceClient::new(
                    testkit::channel_as(addresses[2], Agency::Arbetsformedlingen).await?,
                ),
            psychiatry: v1::psychiatry_service_client::PsychiatryServiceClient::new(
                testkit::channel_as(addresses[3], Agency::Psychiatry).await?,
            ),
        })
    }
}

fn as_af_officer<T>(message: T) -> tonic::Request<T> {
    testkit::as_officer(
        message,
        Agency::Arbetsformedlingen,
        "af-officer-9",
        Role::CaseOfficer,
        "af-hudiksvall",
    )
}

fn as_psychiatry_officer<T>(message: T) -> tonic::Request<T> {
    testkit::as_officer(
        message,
        Agency::Psychiatry,
        "rehab-coordinator-2",
        Role::CaseOfficer,
        "hudiksvall-vuxenpsykiatri",
    )
}

/// Whether an error answer leaves the outcome unknown (so asking again is the client's move).
fn outcome_unknown(code: Code) -> bool {
    match code {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::Unknown
        | Code::Internal
        | Code::Aborted
        | Code::ResourceExhausted => true,
        Code::Ok
        | Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::DataLoss
        | Code::Unauthenticated => false,
    }
}

/// Sends a request until its answer is definite; `send` makes one attempt.
async fn until_definite<F, Fut>(
    progress: &Progress,
    request_id: String,
    rpc: &'static str,
    mut send: F,
) -> (RequestRecord, String)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<v1::WriteResponse>, tonic::Status>>,
{
    let deadline = tokio::time::Instant::now() + DEFINITE_ANSWER_WITHIN;
    let mut record = RequestRecord {
        request_id,
        rpc,
        event_id: String::new(),
        answer: Answer::Wedged {
            last: String::new(),
        },
        unavailable_answers: 0,
        other_unknown_answers: BTreeMap::new(),
    };
    let mut backoff = RETRY_BACKOFF_FIRST;
    let mut participant_id = String::new();
    loop {
        match send().await {
            Ok(response) => {
                let response = response.into_inner();
                record.event_id = response.event_id;
                participant_id = response.participant_id;
                record.answer = if response.status == v1::WriteStatus::Accepted as i32 {
                    Answer::Accepted
                } else if response.status == v1::WriteStatus::Pending as i32 {
                    Answer::Pending
                } else {
                    Answer::Refused {
                        status: format!("write status {}", response.status),
                    }
                };
                break;
            }
            Err(status) if status.code() == Code::FailedPrecondition => {
                let metadata = |key: &str| {
                    status
                        .metadata()
                        .get(key)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                record.event_id = metadata("ips-event-id");
                record.answer = Answer::Rejected {
                    rule: metadata("ips-rule"),
                };
                break;
            }
            Err(status) if outcome_unknown(status.code()) => {
                if status.code() == Code::Unavailable {
                    record.unavailable_answers += 1;
                    progress.unavailable_answers.fetch_add(1, Ordering::Relaxed);
                } else {
                    *record
                        .other_unknown_answers
                        .entry(format!("{:?}", status.code()))
                        .or_default() += 1;
                }
                if tokio::time::Instant::now() >= deadline {
                    record.answer = Answer::Wedged {
                        last: format!("{:?}: {}", status.code(), status.message()),
                    };
                    return (record, participant_id);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
            }
            Err(status) => {
                record.answer = Answer::Refused {
                    status: format!("{:?}: {}", status.code(), status.message()),
                };
                break;
            }
        }
    }
    progress.answers.fetch_add(1, Ordering::Relaxed);
    (record, participant_id)
}

fn context(request_id: &str) -> Option<v1::WriteContext> {
    Some(v1::WriteContext {
        request_id: request_id.to_owned(),
        ..Default::default()
    })
}

fn write(request_id: &str, participant_id: &str) -> Option<v1::ParticipantWrite> {
    Some(v1::ParticipantWrite {
        context: context(request_id),
        participant_id: participant_id.to_owned(),
    })
}

/// One writer: participants one after another until `progress.stop`.
pub async fn writer(
    clients: AgencyClients,
    progress: Arc<Progress>,
    run_tag: String,
    writer: usize,
) -> Vec<ParticipantRecord> {
    let mut participants = Vec::new();
    let mut index = 0usize;
    while !progress.stop.load(Ordering::Relaxed) {
        participants.push(
            participant(
                &clients,
                &progress,
                &format!("{run_tag}-w{writer}-p{index}"),
                &format!("probe-coach-{writer}-{index}"),
            )
            .await,
        );
        index += 1;
    }
    participants
}

/// One participant's ten steps. `key` prefixes every request id.
async fn participant(
    clients: &AgencyClients,
    progress: &Progress,
    key: &str,
    coach: &str,
) -> ParticipantRecord {
    let today = domain::business_date(chrono::Utc::now());
    let day = |offset: i64| (today + chrono::Duration::days(offset)).to_string();
    let request_id = |step: usize| format!("{key}-s{step}");

    let referral_id = request_id(0);
    let (referral, participant_id) =
        until_definite(progress, referral_id.clone(), "ReferParticipant", || {
            let mut client = clients.municipality.clone();
            let request = v1::ReferParticipantRequest {
                context: context(&referral_id),
                source: v1::ReferralSource::Ifo as i32,
                referrer_unit: "hudiksvall-ifo".into(),
                ..Default::default()
            };
            async move { client.refer_participant(testkit::as_coach(request)).await }
        })
        .await;
    let mut record = ParticipantRecord {
        participant_id: participant_id.clone(),
        requests: vec![referral],
    };
    if participant_id.is_empty() {
        return record;
    }
    let id = participant_id.as_str();

    for step in 1..STEPS_PER_PARTICIPANT {
        let request_id = request_id(step);
        let rid = request_id.as_str();
        let (request, _) = match step {
            1 => {
                until_definite(progress, request_id.clone(), "GrantConsent", || {
                    let mut client = clients.municipality.clone();
                    let request = v1::GrantConsentRequest {
                        context: context(rid),
                        participant_id: id.to_owned(),
                        discloser: v1::ConsentParty::Forsakringskassan as i32,
                        recipient: v1::ConsentParty::IpsUnit as i32,
                        data_categories: vec![v1::DataCategory::BenefitDecisions as i32],
                        valid_from: day(-1),
                        valid_to: day(365),
                        ..Default::default()
                    };
                    async move { client.grant_consent(testkit::as_coach(request)).await }
                })
                .await
            }
            2 => {
                until_definite(progress, request_id.clone(), "EnrollParticipant", || {
                    let mut client = clients.municipality.clone();
                    let request = v1::EnrollParticipantRequest {
                        context: context(rid),
                        participant_id: id.to_owned(),
                        unit: "hudiksvall-ips".into(),
                        coach_person_id: coach.to_owned(),
                    };
                    async move { client.enroll_participant(testkit::as_coach(request)).await }
                })
                .await
            }
            3 => {
                until_definite(progress, request_id.clone(), "RegisterBenefit", || {
                    let mut client = clients.forsakringskassan.clone();
                    let request = v1::RegisterBenefitRequest {
                        write: write(rid, id),
                        benefit: v1::BenefitKind::Sjukpenning as i32,
                        degree_percent: 100,
                        employed: false,
                        period: Some(v1::Period {
                            from: day(-30),
                            to: day(300),
                        }),
                    };
                    async move {
                        client
                            .register_benefit(testkit::as_fk_officer(request))
                            .await
                    }
                })
                .await
            }
            4 => {
                until_definite(progress, request_id.clone(), "RegisterJobSeeker", || {
                    let mut client = clients.arbetsformedlingen.clone();
                    let request = v1::DateRequest {
                        write: write(rid, id),
                        date: day(-1),
                    };
                    async move { client.register_job_seeker(as_af_officer(request)).await }
                })
                .await
            }
            5 => {
                until_definite(
                    progress,
                    request_id.clone(),
                    "RecordTreatmentTeamMeeting",
                    || {
                        let mut client = clients.psychiatry.clone();
                        let request = v1::TreatmentTeamMeetingRequest {
                            write: write(rid, id),
                            held_on: day(-1),
                            coach_present: true,
                        };
                        async move {
                            client
                                .record_treatment_team_meeting(as_psychiatry_officer(request))
                                .await
                        }
                    },
                )
                .await
            }
            6 => {
                until_definite(progress, request_id.clone(), "RecordProfile", || {
                    let mut client = clients.municipality.clone();
                    let request = v1::RecordProfileRequest {
                        write: write(rid, id),
                        preferences: "wants regular work with people".into(),
                        hours_per_week_wanted: 20,
                        education_level: v1::EducationLevel::UpperSecondary as i32,
                    };
                    async move { client.record_profile(testkit::as_coach(request)).await }
                })
                .await
            }
            8 => {
                until_definite(
                    progress,
                    request_id.clone(),
                    "RecordAvstamningsmote",
                    || {
                        let mut client = clients.forsakringskassan.clone();
                        let request = v1::DateRequest {
                            write: write(rid, id),
                            date: day(-1),
                        };
                        async move {
                            client
                                .record_avstamningsmote(testkit::as_fk_officer(request))
                                .await
                        }
                    },
                )
                .await
            }
            _ => {
                until_definite(
                    progress,
                    request_id.clone(),
                    "RecordEmployerContact",
                    || {
                        let mut client = clients.municipality.clone();
                        let request = v1::RecordEmployerContactRequest {
                            write: write(rid, id),
                            employer: format!("Employer {step}"),
                            face_to_face: true,
                            with_participant: step % 2 == 0,
                        };
                        async move {
                            client
                                .record_employer_contact(testkit::as_coach(request))
                                .await
                        }
                    },
                )
                .await
            }
        };
        record.requests.push(request);
    }
    record
}
