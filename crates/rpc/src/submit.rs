//! The agency side of a write: publish the submission durably, then wait (bounded) for the
//! ledger's verdict and turn it into the RPC's answer.
//!
//! Order matters: subscribe to the verdict subject, then publish, so the verdict cannot be
//! missed. If JetStream reports a duplicate (a retried or repeated request), nothing new will be
//! applied and no verdict will be announced, so the first outcome is looked up instead. If the
//! ledger does not answer in time the event is still durably queued: the caller gets PENDING
//! and the event id to look up later.

use std::time::Duration;

use bus::{
    verdicts, BusConfig, Subjects, SubmissionPublisher, Verdict, VerdictStatus, VerdictWaiter,
};
use domain::{EventId, Submission};
use proto::v1;
use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::errors;

/// Limits of the submit path (section `submit`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubmitConfig {
    /// How long a write waits for the ledger's verdict before answering PENDING.
    pub verdict_wait_ms: u64,
    /// How long a status look-up waits for the ledger.
    pub status_lookup_wait_ms: u64,
}

impl Default for SubmitConfig {
    fn default() -> Self {
        Self {
            verdict_wait_ms: 5_000,
            status_lookup_wait_ms: 1_000,
        }
    }
}

impl SubmitConfig {
    /// Checks every value at start-up.
    pub fn validate(&self) -> Result<(), String> {
        if !(10..=60_000).contains(&self.verdict_wait_ms) {
            return Err("submit.verdict_wait_ms must be between 10 and 60000".into());
        }
        if !(10..=60_000).contains(&self.status_lookup_wait_ms) {
            return Err("submit.status_lookup_wait_ms must be between 10 and 60000".into());
        }
        Ok(())
    }
}

/// Publishes submissions for one agency service and waits for verdicts.
#[derive(Clone)]
pub struct AgencySubmitter {
    client: async_nats::Client,
    publisher: SubmissionPublisher,
    subjects: Subjects,
    config: SubmitConfig,
}

impl AgencySubmitter {
    /// A submitter on an existing NATS connection.
    pub fn new(client: async_nats::Client, bus_config: &BusConfig, config: SubmitConfig) -> Self {
        Self {
            publisher: SubmissionPublisher::new(client.clone(), bus_config),
            subjects: Subjects::new(&bus_config.subject_prefix),
            client,
            config,
        }
    }

    /// Publishes and answers with the ledger's verdict, or PENDING.
    pub async fn submit(&self, submission: Submission) -> Result<v1::WriteResponse, Status> {
        submission
            .validate()
            .map_err(|error| errors::invalid_input(&error))?;
        let event_id = submission.envelope.event_id;
        let participant_id = submission.envelope.participant_id;
        let agency = submission.envelope.agency;
        let waiter = VerdictWaiter::subscribe(&self.client, &self.subjects, agency, event_id)
            .await
            .map_err(|error| errors::from_bus(&error))?;
        let receipt = self
            .publisher
            .publish(&submission)
            .await
            .map_err(|error| errors::from_bus(&error))?;
        let verdict = if receipt.duplicate {
            drop(waiter);
            self.look_up(agency, event_id).await
        } else {
            match waiter
                .wait(Duration::from_millis(self.config.verdict_wait_ms))
                .await
            {
                Some(verdict) => Some(verdict),
                None => self.look_up(agency, event_id).await,
            }
        };
        let pending = v1::WriteResponse {
            event_id: event_id.to_string(),
            participant_id: participant_id.to_string(),
            status: v1::WriteStatus::Pending as i32,
            sequence: 0,
            hash: String::new(),
            created_id: String::new(),
            event_type: submission.body.event_type().to_owned(),
        };
        let Some(verdict) = verdict else {
            return Ok(pending);
        };
        match verdict.status {
            VerdictStatus::Accepted => Ok(v1::WriteResponse {
                participant_id: verdict
                    .participant_id
                    .map_or(pending.participant_id.clone(), |id| id.to_string()),
                status: v1::WriteStatus::Accepted as i32,
                sequence: verdict.sequence,
                hash: verdict.hash,
                ..pending
            }),
            VerdictStatus::Rejected => Err(errors::rule_broken(
                verdict.rule.as_deref().unwrap_or("unknown_rule"),
                verdict.reason.as_deref().unwrap_or(""),
                &event_id.to_string(),
            )),
            VerdictStatus::Unknown => Ok(pending),
        }
    }

    async fn look_up(&self, agency: domain::Agency, event_id: EventId) -> Option<Verdict> {
        verdicts::look_up(
            &self.client,
            &self.subjects,
            agency,
            event_id,
            Duration::from_millis(self.config.status_lookup_wait_ms),
        )
        .await
    }
}

/// Namespace for event ids derived from a client's `request_id` (UUID v5). Fixed forever: the
/// same request must map to the same event id across releases.
const REQUEST_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c1f_5d2e_8a47_4b0e_9d31_7f0a_2c64_e5b9);

/// The event id for a write: derived from the client's `request_id` when given (so a repeat is
/// recognised by JetStream and the aggregate, and answered with the first outcome), otherwise a
/// fresh time-ordered UUID v7. The caller's agency and person and the participant scope the key,
/// so two officers' request ids, or one officer's for two participants, never collide.
pub fn event_id_for(
    agency: domain::Agency,
    actor: &domain::Actor,
    participant_id: domain::ParticipantId,
    request_id: Option<&str>,
) -> EventId {
    match request_id {
        Some(request_id) => {
            let name = format!(
                "event/{}/{}/{}/{}",
                agency.token(),
                actor.person_id,
                participant_id,
                request_id
            );
            EventId(uuid::Uuid::new_v5(&REQUEST_ID_NAMESPACE, name.as_bytes()))
        }
        None => EventId(uuid::Uuid::now_v7()),
    }
}

/// The id of a participant minted by a referral: derived from the client's `request_id` when
/// given, so a retried referral lands on the same participant (and so the same event id), and
/// random otherwise. Either way it carries nothing about the person.
pub fn new_participant_id(
    agency: domain::Agency,
    actor: &domain::Actor,
    request_id: Option<&str>,
) -> domain::ParticipantId {
    match request_id {
        Some(request_id) => {
            let name = format!(
                "participant/{}/{}/{}",
                agency.token(),
                actor.person_id,
                request_id
            );
            domain::ParticipantId(uuid::Uuid::new_v5(&REQUEST_ID_NAMESPACE, name.as_bytes()))
        }
        None => domain::ParticipantId(uuid::Uuid::new_v4()),
    }
}

/// The kinds of thing a write may create and name with a minted id. Each kind hashes its own
/// name into the derived id, so one request id never yields the same UUID for two kinds (nor
/// for an event id or a participant id). The tokens are fixed forever: changing one would give
/// a retried request a different id than its first attempt got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MintedKind {
    /// A proposed activity (`ProposeActivity` without an `activity_id`).
    Activity,
    /// A granted consent (`GrantConsent` without a `consent_id`).
    Consent,
    /// An Arbetsförmedlingen programme (`AssignProgramme` without a `programme_id`).
    Programme,
    /// The event id of the waiting-list offer a discharge makes, keyed by the discharge's event
    /// id: the offer is a write of its own, about another participant, that a repeated
    /// discharge must not make twice.
    WaitingListOffer,
}

impl MintedKind {
    /// The kind's name in the derived id.
    pub fn token(self) -> &'static str {
        match self {
            Self::Activity => "activity",
            Self::Consent => "consent",
            Self::Programme => "programme",
            Self::WaitingListOffer => "waiting-list-offer",
        }
    }
}

/// The id a write mints for a new thing of `kind`: derived from the client's `request_id`
/// when given, so a retried request names the same thing as its first attempt (the first
/// attempt's event is the one recorded, and its id is the one the client must learn), and
/// random otherwise. Scoped like [`event_id_for`]: agency, person and participant. Person ids
/// and the agency token contain no `/`, so the name cannot be read two ways.
pub fn minted_id(
    kind: MintedKind,
    agency: domain::Agency,
    actor: &domain::Actor,
    participant_id: domain::ParticipantId,
    request_id: Option<&str>,
) -> uuid::Uuid {
    match request_id {
        Some(request_id) => {
            let name = format!(
                "{}/{}/{}/{}/{}",
                kind.token(),
                agency.token(),
                actor.person_id,
                participant_id,
                request_id
            );
            uuid::Uuid::new_v5(&REQUEST_ID_NAMESPACE, name.as_bytes())
        }
        None => uuid::Uuid::new_v4(),
    }
}

/// Builds the envelope of a write from the caller, the parsed write context and the body (which
/// decides the data category; the agency decides the record series).
pub fn envelope(
    agency: domain::Agency,
    actor: domain::Actor,
    participant_id: domain::ParticipantId,
    context: &crate::fields::ParsedWriteContext,
    body: &domain::EventBody,
) -> domain::Envelope {
    domain::Envelope {
        event_id: event_id_for(
            agency,
            &actor,
            participant_id,
            context.request_id.as_deref(),
        ),
        participant_id,
        agency,
        actor,
        occurred_at: context.occurred_at,
        correlation_id: context.correlation_id,
        causation_id: context.causation_id,
        schema_version: domain::CURRENT_SCHEMA_VERSION,
        data_category: body.data_category(agency),
        retention_class: domain::RetentionClass::for_agency(agency),
    }
}

/// Everything a write checks before it publishes, without I/O: the write context (`now` fills
/// a missing `occurred_at`), the body `build` makes, the envelope (under `event_id` when given,
/// else the one the context gives) and `Submission::validate`. What this returns is what the
/// edge publishes; the fuzz program (`crates/fuzz`) holds that all of it can be stored.
pub fn prepare(
    agency: domain::Agency,
    actor: domain::Actor,
    participant_id: domain::ParticipantId,
    context: Option<&v1::WriteContext>,
    now: chrono::DateTime<chrono::Utc>,
    event_id: Option<EventId>,
    build: impl FnOnce(
        &crate::fields::ParsedWriteContext,
    ) -> Result<domain::EventBody, domain::InputError>,
) -> Result<Submission, domain::InputError> {
    let context = crate::fields::write_context(context, now)?;
    let body = build(&context)?;
    let mut envelope = envelope(agency, actor, participant_id, &context, &body);
    if let Some(event_id) = event_id {
        envelope.event_id = event_id;
    }
    let submission = Submission { envelope, body };
    submission.validate()?;
    Ok(submission)
}

/// One agency's write path: caller, context, participant, body, submit. Every agency service's
/// handler hands a pure body function (its crate's `bodies`) to [`AgencyEdge::write`] or
/// [`AgencyEdge::record`].
#[derive(Clone)]
pub struct AgencyEdge {
    /// The agency this service speaks for.
    pub agency: domain::Agency,
    /// Publishes and waits for verdicts.
    pub submitter: AgencySubmitter,
    /// Fills a missing `occurred_at` and bounds one in the future.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
}

impl AgencyEdge {
    /// Records one event about an existing participant named in `write`.
    pub async fn record(
        &self,
        extensions: &tonic::Extensions,
        write: Option<&v1::ParticipantWrite>,
        build: impl FnOnce(
            &crate::fields::ParsedWriteContext,
        ) -> Result<domain::EventBody, domain::InputError>,
    ) -> Result<tonic::Response<v1::WriteResponse>, Status> {
        let default = v1::ParticipantWrite::default();
        let write = write.unwrap_or(&default);
        let participant_id = crate::fields::required_participant_id(&write.participant_id)
            .map_err(|error| errors::invalid_input(&error))?;
        self.record_for(extensions, write.context.as_ref(), participant_id, build)
            .await
    }

    /// Records one event about `participant_id`.
    pub async fn record_for(
        &self,
        extensions: &tonic::Extensions,
        context: Option<&v1::WriteContext>,
        participant_id: domain::ParticipantId,
        build: impl FnOnce(
            &crate::fields::ParsedWriteContext,
        ) -> Result<domain::EventBody, domain::InputError>,
    ) -> Result<tonic::Response<v1::WriteResponse>, Status> {
        self.record_under(extensions, context, participant_id, None, build)
            .await
    }

    /// Records one event about `participant_id` under `event_id`, not the id its context would
    /// give: for a write the service makes on its own after another (a discharge's offer of
    /// the freed place), whose idempotency key is the write that caused it.
    pub async fn record_derived(
        &self,
        extensions: &tonic::Extensions,
        context: Option<&v1::WriteContext>,
        participant_id: domain::ParticipantId,
        event_id: EventId,
        build: impl FnOnce(
            &crate::fields::ParsedWriteContext,
        ) -> Result<domain::EventBody, domain::InputError>,
    ) -> Result<tonic::Response<v1::WriteResponse>, Status> {
        self.record_under(extensions, context, participant_id, Some(event_id), build)
            .await
    }

    async fn record_under(
        &self,
        extensions: &tonic::Extensions,
        context: Option<&v1::WriteContext>,
        participant_id: domain::ParticipantId,
        event_id: Option<EventId>,
        build: impl FnOnce(
            &crate::fields::ParsedWriteContext,
        ) -> Result<domain::EventBody, domain::InputError>,
    ) -> Result<tonic::Response<v1::WriteResponse>, Status> {
        // The gatekeeper admitted only this agency's officers (`access::authorise`).
        let actor = crate::identity::caller(extensions)?.actor;
        let submission = prepare(
            self.agency,
            actor,
            participant_id,
            context,
            self.clock.now(),
            event_id,
            build,
        )
        .map_err(|error| errors::invalid_input(&error))?;
        self.submitter
            .submit(submission)
            .await
            .map(tonic::Response::new)
    }

    /// The id this write about the participant named in `write` mints for a new thing of
    /// `kind` ([`minted_id`]): the same for a retried request as for its first attempt.
    pub fn mint(
        &self,
        kind: MintedKind,
        extensions: &tonic::Extensions,
        write: Option<&v1::ParticipantWrite>,
    ) -> Result<uuid::Uuid, Status> {
        let default = v1::ParticipantWrite::default();
        let write = write.unwrap_or(&default);
        let participant_id = crate::fields::required_participant_id(&write.participant_id)
            .map_err(|error| errors::invalid_input(&error))?;
        self.mint_for(kind, extensions, write.context.as_ref(), participant_id)
    }

    /// The id this write about `participant_id` mints for a new thing of `kind`.
    pub fn mint_for(
        &self,
        kind: MintedKind,
        extensions: &tonic::Extensions,
        context: Option<&v1::WriteContext>,
        participant_id: domain::ParticipantId,
    ) -> Result<uuid::Uuid, Status> {
        let actor = crate::identity::caller(extensions)?.actor;
        let context = crate::fields::write_context(context, self.clock.now())
            .map_err(|error| errors::invalid_input(&error))?;
        Ok(minted_id(
            kind,
            self.agency,
            &actor,
            participant_id,
            context.request_id.as_deref(),
        ))
    }

    /// A handler's whole work for a request about an existing participant: records the event
    /// `body` builds from the request alone (an agency's pure `bodies` function).
    pub async fn write<R: ParticipantWriteRequest>(
        &self,
        request: tonic::Request<R>,
        body: impl FnOnce(&R) -> Result<domain::EventBody, domain::InputError>,
    ) -> Result<tonic::Response<v1::WriteResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        self.record(&extensions, request.participant_write(), |_| body(&request))
            .await
    }
}

/// A write request about an existing participant, named with its write context in a
/// `ParticipantWrite` (the requests that create a participant or name one directly are
/// recorded with [`AgencyEdge::record_for`]).
pub trait ParticipantWriteRequest {
    /// The participant and write context, if the client sent them.
    fn participant_write(&self) -> Option<&v1::ParticipantWrite>;
}

impl ParticipantWriteRequest for v1::ParticipantWrite {
    fn participant_write(&self) -> Option<&v1::ParticipantWrite> {
        Some(self)
    }
}

/// Every request message with a `write: ParticipantWrite` field.
macro_rules! participant_write_requests {
    ($($request:ident),+ $(,)?) => {
        $(impl ParticipantWriteRequest for v1::$request {
            fn participant_write(&self) -> Option<&v1::ParticipantWrite> {
                self.write.as_ref()
            }
        })+
    };
}

participant_write_requests!(
    ActivityDateRequest,
    ActivityDecisionRequest,
    ActivityPeriodRequest,
    ActivityRequest,
    AssignCoachRequest,
    AssignProgrammeRequest,
    ChangeAvailabilityRequest,
    InpatientAdmissionRequest,
    ChangeHoursRequest,
    CorrectEventRequest,
    DateRequest,
    DecideSubsidyRequest,
    DeclineReferralRequest,
    DischargeParticipantRequest,
    EndBenefitRequest,
    EndJobRequest,
    EndProgrammeRequest,
    IssueMedicalCertificateRequest,
    MedicalCertificateRequest,
    PauseParticipantRequest,
    PeriodRequest,
    ProposeActivityRequest,
    ProtectIdentityRequest,
    RecordBenefitSelfReportRequest,
    RecordBenefitsCounsellingRequest,
    RecordDisclosurePreferenceRequest,
    RecordEmployerContactRequest,
    RecordFollowAlongContactRequest,
    RecordFollowUpRequest,
    RecordOutreachAttemptRequest,
    RecordProfileRequest,
    RecordSocialAssistanceRequest,
    RegisterBenefitRequest,
    StartJobRequest,
    StartStudiesRequest,
    TreatmentTeamMeetingRequest,
);

/// Adds the id a write minted (activity, consent, programme) to its response.
pub fn with_created_id(
    response: Result<tonic::Response<v1::WriteResponse>, Status>,
    created_id: impl ToString,
) -> Result<tonic::Response<v1::WriteResponse>, Status> {
    response.map(|mut response| {
        response.get_mut().created_id = created_id.to_string();
        response
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Actor, Agency, ParticipantId, PersonId, Role, UnitId};

    fn actor(person: &str) -> Actor {
        Actor {
            person_id: PersonId(person.into()),
            role: Role::Coach,
            unit: UnitId("hudiksvall-ips".into()),
        }
    }

    const KINDS: [MintedKind; 4] = [
        MintedKind::Activity,
        MintedKind::Consent,
        MintedKind::Programme,
        MintedKind::WaitingListOffer,
    ];

    #[test]
    fn a_minted_id_is_the_same_for_the_same_request_and_differs_by_every_part_of_its_key() {
        let participant = ParticipantId(uuid::Uuid::from_u128(7));
        let other_participant = ParticipantId(uuid::Uuid::from_u128(8));
        let coach = actor("coach-17");
        let mint = |kind, agency, actor: &Actor, participant, request: &str| {
            minted_id(kind, agency, actor, participant, Some(request))
        };
        let mut seen = std::collections::BTreeSet::new();
        for kind in KINDS {
            let id = mint(kind, Agency::Municipality, &coach, participant, "r-1");
            assert_eq!(
                id,
                mint(kind, Agency::Municipality, &coach, participant, "r-1"),
                "{kind:?}: a repeat mints the same id"
            );
            for other in [
                mint(kind, Agency::Arbetsformedlingen, &coach, participant, "r-1"),
                mint(
                    kind,
                    Agency::Municipality,
                    &actor("coach-18"),
                    participant,
                    "r-1",
                ),
                mint(kind, Agency::Municipality, &coach, other_participant, "r-1"),
                mint(kind, Agency::Municipality, &coach, participant, "r-2"),
            ] {
                assert_ne!(id, other, "{kind:?}");
            }
            assert!(seen.insert(id), "{kind:?} shares its id with another kind");
        }
        // Nor does a minted id coincide with the event id or participant id of the same request.
        let event_id = event_id_for(Agency::Municipality, &coach, participant, Some("r-1"));
        let participant_id = new_participant_id(Agency::Municipality, &coach, Some("r-1"));
        assert!(!seen.contains(&event_id.0) && !seen.contains(&participant_id.0));
    }

    #[test]
    fn a_minted_id_is_stable_across_releases_and_random_without_a_request_id() {
        let participant = ParticipantId(uuid::Uuid::from_u128(7));
        let coach = actor("coach-17");
        // The documented name, hashed in the fixed namespace: a retry after an upgrade must
        // still name what its first attempt created.
        let name = format!("activity/municipality/coach-17/{participant}/r-1");
        assert_eq!(
            minted_id(
                MintedKind::Activity,
                Agency::Municipality,
                &coach,
                participant,
                Some("r-1")
            ),
            uuid::Uuid::new_v5(&REQUEST_ID_NAMESPACE, name.as_bytes())
        );
        let random = || {
            minted_id(
                MintedKind::Consent,
                Agency::Municipality,
                &coach,
                participant,
                None,
            )
        };
        assert_ne!(random(), random());
    }
}
