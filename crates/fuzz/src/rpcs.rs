//! Every write method of the four agency services, as its handler runs it up to the publish:
//! decode the request (prost, as tonic does), then the handler's own steps (participant id,
//! minted ids) and the shared edge (`rpc::submit::prepare`: write context, the agency's pure
//! `bodies` function, envelope, `Submission::validate`). Each entry repeats only the few lines
//! of its handler that pick which of those functions to call; `tests/short.rs` checks that the
//! table names every method of the wire contract.

use domain::{
    ActivityId, Actor, Agency, ConsentId, EventBody, InputError, ParticipantId, ProgrammeId,
    Submission,
};
use prost::Message;
use proto::v1;
use rpc::fields::{self, ParsedWriteContext};
use rpc::submit::{self, MintedKind, ParticipantWriteRequest};

use arbetsformedlingen::bodies as af;
use forsakringskassan::bodies as fk;
use municipality::bodies as municipality;
use psychiatry::bodies as psychiatry;

/// Why the edge refused a request, before anything was published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The bytes are not the request message (tonic answers `INTERNAL`... or the stack
    /// refuses them before the handler); the text is prost's.
    Undecodable(String),
    /// A field breaks a rule: `INVALID_ARGUMENT` naming the field.
    Invalid(InputError),
}

impl From<InputError> for Refusal {
    fn from(error: InputError) -> Self {
        Refusal::Invalid(error)
    }
}

/// What the handler knows besides the request: who calls (from the verified token), the
/// service clock, and what the unit's places said (enrolment only).
#[derive(Clone, Debug)]
pub struct Call {
    /// The verified caller's person, role and unit.
    pub actor: Actor,
    /// The service clock's "now".
    pub now: chrono::DateTime<chrono::Utc>,
    /// Whether every coach of the unit is full (`EnrollParticipant` puts the participant on
    /// the waiting list).
    pub on_waiting_list: bool,
}

/// One agency service method.
#[derive(Clone, Copy)]
pub struct Rpc {
    /// The agency the service speaks for.
    pub agency: Agency,
    /// The gRPC service name (`MunicipalityService`).
    pub service: &'static str,
    /// The method name (`ReferParticipant`).
    pub method: &'static str,
    /// The input message's full name (`.ips.v1.ReferParticipantRequest`).
    pub input: &'static str,
    /// The handler up to the publish: the submission it would publish, or its refusal.
    pub edge: fn(&[u8], Agency, &Call) -> Result<Submission, Refusal>,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}/{}", self.service, self.method)
    }
}

impl Call {
    /// `AgencyEdge::record_for` up to the publish.
    fn record_for(
        &self,
        agency: Agency,
        context: Option<&v1::WriteContext>,
        participant_id: ParticipantId,
        build: impl FnOnce(&ParsedWriteContext) -> Result<EventBody, InputError>,
    ) -> Result<Submission, Refusal> {
        Ok(submit::prepare(
            agency,
            self.actor.clone(),
            participant_id,
            context,
            self.now,
            None,
            build,
        )?)
    }

    /// `AgencyEdge::record` up to the publish.
    fn record(
        &self,
        agency: Agency,
        write: Option<&v1::ParticipantWrite>,
        build: impl FnOnce(&ParsedWriteContext) -> Result<EventBody, InputError>,
    ) -> Result<Submission, Refusal> {
        let default = v1::ParticipantWrite::default();
        let write = write.unwrap_or(&default);
        let participant_id = fields::required_participant_id(&write.participant_id)?;
        self.record_for(agency, write.context.as_ref(), participant_id, build)
    }

    /// `AgencyEdge::write` up to the publish.
    fn write<R: ParticipantWriteRequest>(
        &self,
        agency: Agency,
        request: &R,
        body: impl FnOnce(&R) -> Result<EventBody, InputError>,
    ) -> Result<Submission, Refusal> {
        self.record(agency, request.participant_write(), |_| body(request))
    }

    /// `AgencyEdge::mint_for`.
    fn mint_for(
        &self,
        kind: MintedKind,
        agency: Agency,
        context: Option<&v1::WriteContext>,
        participant_id: ParticipantId,
    ) -> Result<uuid::Uuid, Refusal> {
        let context = fields::write_context(context, self.now)?;
        Ok(submit::minted_id(
            kind,
            agency,
            &self.actor,
            participant_id,
            context.request_id.as_deref(),
        ))
    }

    /// `AgencyEdge::mint`.
    fn mint(
        &self,
        kind: MintedKind,
        agency: Agency,
        write: Option<&v1::ParticipantWrite>,
    ) -> Result<uuid::Uuid, Refusal> {
        let default = v1::ParticipantWrite::default();
        let write = write.unwrap_or(&default);
        let participant_id = fields::required_participant_id(&write.participant_id)?;
        self.mint_for(kind, agency, write.context.as_ref(), participant_id)
    }
}

/// One row: decode `$request`, then run `$handler` with the request, the agency and the call.
macro_rules! rpc {
    ($agency:ident, $service:literal, $method:literal, $request:ident,
     |$r:ident, $a:ident, $c:ident| $handler:expr) => {
        Rpc {
            agency: Agency::$agency,
            service: $service,
            method: $method,
            input: concat!(".ips.v1.", stringify!($request)),
            edge: |bytes: &[u8], $a: Agency, $c: &Call| -> Result<Submission, Refusal> {
                let $r = v1::$request::decode(bytes)
                    .map_err(|error| Refusal::Undecodable(error.to_string()))?;
                $handler
            },
        }
    };
    // The common handler: `edge.write(request, bodies::x)`.
    ($agency:ident, $service:literal, $method:literal, $request:ident, $body:path) => {
        rpc!(
            $agency,
            $service,
            $method,
            $request,
            |request, agency, call| call.write(agency, &request, $body)
        )
    };
}

/// Every write method of the four agency services.
pub fn table() -> Vec<Rpc> {
    vec![
        // ---- MunicipalityService (services/municipality/src/service.rs) ----
        rpc!(
            Municipality,
            "MunicipalityService",
            "ReferParticipant",
            ReferParticipantRequest,
            |request, agency, call| {
                let participant_id = if request.participant_id.trim().is_empty() {
                    let context = fields::write_context(request.context.as_ref(), call.now)?;
                    submit::new_participant_id(agency, &call.actor, context.request_id.as_deref())
                } else {
                    ParticipantId::parse(&request.participant_id)?
                };
                call.record_for(agency, request.context.as_ref(), participant_id, |_| {
                    municipality::refer_participant(&request)
                })
            }
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "EnrollParticipant",
            EnrollParticipantRequest,
            |request, agency, call| {
                let participant_id = fields::required_participant_id(&request.participant_id)?;
                municipality::enrolment_target(&request)?;
                call.record_for(agency, request.context.as_ref(), participant_id, |_| {
                    municipality::enroll_participant(&request, call.on_waiting_list)
                })
            }
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "ReEnrollParticipant",
            EnrollParticipantRequest,
            |request, agency, call| {
                let participant_id = fields::required_participant_id(&request.participant_id)?;
                call.record_for(agency, request.context.as_ref(), participant_id, |_| {
                    municipality::re_enroll_participant(&request)
                })
            }
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "GrantConsent",
            GrantConsentRequest,
            |request, agency, call| {
                let participant_id = fields::required_participant_id(&request.participant_id)?;
                let consent_id = match municipality::requested_consent_id(&request)? {
                    Some(consent_id) => consent_id,
                    None => ConsentId(call.mint_for(
                        MintedKind::Consent,
                        agency,
                        request.context.as_ref(),
                        participant_id,
                    )?),
                };
                call.record_for(agency, request.context.as_ref(), participant_id, |_| {
                    municipality::grant_consent(&request, consent_id)
                })
            }
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "WithdrawConsent",
            WithdrawConsentRequest,
            |request, agency, call| {
                let participant_id = fields::required_participant_id(&request.participant_id)?;
                call.record_for(
                    agency,
                    request.context.as_ref(),
                    participant_id,
                    |context| {
                        municipality::withdraw_consent(
                            &request,
                            domain::business_date(context.occurred_at),
                        )
                    },
                )
            }
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "ProtectIdentity",
            ProtectIdentityRequest,
            municipality::protect_identity
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "DeclineReferral",
            DeclineReferralRequest,
            municipality::decline_referral
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "AssignCoach",
            AssignCoachRequest,
            municipality::assign_coach
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "PauseParticipant",
            PauseParticipantRequest,
            municipality::pause_participant
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "ResumeParticipant",
            ParticipantWrite,
            municipality::resume_participant
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "DischargeParticipant",
            DischargeParticipantRequest,
            |request, agency, call| call.record(agency, request.write.as_ref(), |_| {
                municipality::discharge_participant(&request)
            })
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "RecordProfile",
            RecordProfileRequest,
            municipality::record_profile
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "RecordBenefitsCounselling",
            RecordBenefitsCounsellingRequest,
            municipality::record_benefits_counselling
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "RecordDisclosurePreference",
            RecordDisclosurePreferenceRequest,
            municipality::record_disclosure_preference
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "RecordEmployerContact",
            RecordEmployerContactRequest,
            municipality::record_employer_contact
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "ProposeActivity",
            ProposeActivityRequest,
            |request, agency, call| {
                let activity_id = match fields::optional_activity_id(&request.activity_id)? {
                    Some(activity_id) => activity_id,
                    None => ActivityId(call.mint(
                        MintedKind::Activity,
                        agency,
                        request.write.as_ref(),
                    )?),
                };
                call.record(agency, request.write.as_ref(), |_| {
                    municipality::propose_activity(&request, activity_id)
                })
            }
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "StartActivity",
            ActivityDateRequest,
            municipality::start_activity
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "EndActivity",
            ActivityDateRequest,
            municipality::end_activity
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "StartJob",
            StartJobRequest,
            municipality::start_job
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "ChangeHours",
            ChangeHoursRequest,
            municipality::change_hours
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "EndJob",
            EndJobRequest,
            municipality::end_job
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "StartStudies",
            StartStudiesRequest,
            municipality::start_studies
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "EndStudies",
            ActivityDateRequest,
            municipality::end_studies
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "RecordFollowAlongContact",
            RecordFollowAlongContactRequest,
            municipality::record_follow_along_contact
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "RecordFollowUp",
            RecordFollowUpRequest,
            municipality::record_follow_up
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "RecordOutreachAttempt",
            RecordOutreachAttemptRequest,
            municipality::record_outreach_attempt
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "RecordBenefitSelfReport",
            RecordBenefitSelfReportRequest,
            municipality::record_benefit_self_report
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "RecordSipHeld",
            DateRequest,
            municipality::record_sip_held
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "RecordSipEstablished",
            DateRequest,
            municipality::record_sip_established
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "RecordSocialAssistance",
            RecordSocialAssistanceRequest,
            municipality::record_social_assistance
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "AcceptActivityInPlanning",
            ActivityRequest,
            municipality::accept_activity_in_planning
        ),
        rpc!(
            Municipality,
            "MunicipalityService",
            "CorrectEvent",
            CorrectEventRequest,
            municipality::correct_event
        ),
        // ---- ForsakringskassanService (services/forsakringskassan/src/service.rs) ----
        rpc!(
            Forsakringskassan,
            "ForsakringskassanService",
            "RegisterBenefit",
            RegisterBenefitRequest,
            fk::register_benefit
        ),
        rpc!(
            Forsakringskassan,
            "ForsakringskassanService",
            "EndBenefit",
            EndBenefitRequest,
            fk::end_benefit
        ),
        rpc!(
            Forsakringskassan,
            "ForsakringskassanService",
            "ReceiveMedicalCertificate",
            MedicalCertificateRequest,
            fk::receive_medical_certificate
        ),
        rpc!(
            Forsakringskassan,
            "ForsakringskassanService",
            "RecordAvstamningsmote",
            DateRequest,
            fk::record_avstamningsmote
        ),
        rpc!(
            Forsakringskassan,
            "ForsakringskassanService",
            "EstablishRehabPlan",
            DateRequest,
            fk::establish_rehab_plan
        ),
        rpc!(
            Forsakringskassan,
            "ForsakringskassanService",
            "ReviseRehabPlan",
            DateRequest,
            fk::revise_rehab_plan
        ),
        rpc!(
            Forsakringskassan,
            "ForsakringskassanService",
            "DecideActivity",
            ActivityDecisionRequest,
            fk::decide_activity
        ),
        rpc!(
            Forsakringskassan,
            "ForsakringskassanService",
            "MakeActivityAgreement",
            ActivityPeriodRequest,
            fk::make_activity_agreement
        ),
        rpc!(
            Forsakringskassan,
            "ForsakringskassanService",
            "DecideDormantBenefit",
            ActivityPeriodRequest,
            fk::decide_dormant_benefit
        ),
        rpc!(
            Forsakringskassan,
            "ForsakringskassanService",
            "CorrectEvent",
            CorrectEventRequest,
            fk::correct_event
        ),
        // ---- ArbetsformedlingenService (services/arbetsformedlingen/src/service.rs) ----
        rpc!(
            Arbetsformedlingen,
            "ArbetsformedlingenService",
            "RegisterJobSeeker",
            DateRequest,
            af::register_job_seeker
        ),
        rpc!(
            Arbetsformedlingen,
            "ArbetsformedlingenService",
            "DeregisterJobSeeker",
            DateRequest,
            af::deregister_job_seeker
        ),
        rpc!(
            Arbetsformedlingen,
            "ArbetsformedlingenService",
            "RequestDisabilityCoding",
            DateRequest,
            af::request_disability_coding
        ),
        rpc!(
            Arbetsformedlingen,
            "ArbetsformedlingenService",
            "RegisterDisabilityCoding",
            DateRequest,
            af::register_disability_coding
        ),
        rpc!(
            Arbetsformedlingen,
            "ArbetsformedlingenService",
            "AssignProgramme",
            AssignProgrammeRequest,
            |request, agency, call| {
                let programme_id = match af::requested_programme_id(&request)? {
                    Some(programme_id) => programme_id,
                    None => ProgrammeId(call.mint(
                        MintedKind::Programme,
                        agency,
                        request.write.as_ref(),
                    )?),
                };
                call.record(agency, request.write.as_ref(), |_| {
                    af::assign_programme(&request, programme_id)
                })
            }
        ),
        rpc!(
            Arbetsformedlingen,
            "ArbetsformedlingenService",
            "EndProgramme",
            EndProgrammeRequest,
            af::end_programme
        ),
        rpc!(
            Arbetsformedlingen,
            "ArbetsformedlingenService",
            "DecideSius",
            PeriodRequest,
            af::decide_sius
        ),
        rpc!(
            Arbetsformedlingen,
            "ArbetsformedlingenService",
            "EndSius",
            DateRequest,
            af::end_sius
        ),
        rpc!(
            Arbetsformedlingen,
            "ArbetsformedlingenService",
            "DecideSubsidy",
            DecideSubsidyRequest,
            af::decide_subsidy
        ),
        rpc!(
            Arbetsformedlingen,
            "ArbetsformedlingenService",
            "DecideActivity",
            ActivityDecisionRequest,
            af::decide_activity
        ),
        rpc!(
            Arbetsformedlingen,
            "ArbetsformedlingenService",
            "CorrectEvent",
            CorrectEventRequest,
            af::correct_event
        ),
        // ---- PsychiatryService (services/psychiatry/src/service.rs) ----
        rpc!(
            Psychiatry,
            "PsychiatryService",
            "SendIpsReferral",
            DateRequest,
            psychiatry::send_ips_referral
        ),
        rpc!(
            Psychiatry,
            "PsychiatryService",
            "RecordTreatmentTeamMeeting",
            TreatmentTeamMeetingRequest,
            psychiatry::record_treatment_team_meeting
        ),
        rpc!(
            Psychiatry,
            "PsychiatryService",
            "IssueMedicalCertificate",
            IssueMedicalCertificateRequest,
            psychiatry::issue_medical_certificate
        ),
        rpc!(
            Psychiatry,
            "PsychiatryService",
            "ChangeAvailability",
            ChangeAvailabilityRequest,
            psychiatry::change_availability
        ),
        rpc!(
            Psychiatry,
            "PsychiatryService",
            "ReportDischargeReady",
            DateRequest,
            psychiatry::report_discharge_ready
        ),
        rpc!(
            Psychiatry,
            "PsychiatryService",
            "RecordInpatientAdmission",
            InpatientAdmissionRequest,
            psychiatry::record_inpatient_admission
        ),
        rpc!(
            Psychiatry,
            "PsychiatryService",
            "RecordInpatientDischarge",
            DateRequest,
            psychiatry::record_inpatient_discharge
        ),
        rpc!(
            Psychiatry,
            "PsychiatryService",
            "CorrectEvent",
            CorrectEventRequest,
            psychiatry::correct_event
        ),
    ]
}
