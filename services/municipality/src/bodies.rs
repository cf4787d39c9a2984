//! The event body of each municipality write, built from its request alone. Pure (no NATS, no
//! tonic status, no clock, no caseload look-up), so each RPC's field rules are tested here
//! directly; the handlers in `service.rs` only hand these to [`rpc::AgencyEdge`]. What a body
//! needs from outside its request is passed in: an id the service minted
//! (`rpc::submit::MintedKind`), the business date of the write, or where the unit's places put
//! an enrolment.

use chrono::NaiveDate;
use domain::values::{validate_text, CounselledBenefit};
use domain::{ActivityId, AllowedReader, ConsentId, EventBody, InputError, PersonId, UnitId};
use proto::v1;
use proto::wire::{WireEnum, WireEnumError};
use rpc::fields::{self, required_activity_id, required_date};

/// Shared by every agency.
pub use rpc::fields::event_correction as correct_event;

/// A required wire enum value: unset is "is required", a number this build does not know is
/// "is not a known value".
fn required<D: WireEnum>(field: &str, value: i32) -> Result<D, InputError> {
    D::from_wire(value).map_err(|error| match error {
        WireEnumError::Unspecified => InputError::new(field, "is required"),
        WireEnumError::Unknown(_) => InputError::new(field, "is not a known value"),
    })
}

fn person(field: &str, text: &str) -> Result<PersonId, InputError> {
    PersonId::parse(text).map_err(|error| InputError::new(field, error.reason))
}

fn trimmed(field: &str, text: &str) -> Result<String, InputError> {
    validate_text(field, text)?;
    Ok(text.trim().to_owned())
}

/// How many benefits a counselling session can name: every wire value but unspecified.
fn counselled_benefits_count() -> usize {
    (1..)
        .take_while(|number| v1::CounselledBenefit::try_from(*number).is_ok())
        .count()
}

/// `ReferParticipant` (the participant id, given or minted, is the envelope's).
pub fn refer_participant(request: &v1::ReferParticipantRequest) -> Result<EventBody, InputError> {
    let referrer = if request.referrer_unit.trim().is_empty() {
        None
    } else {
        Some(
            UnitId::parse(&request.referrer_unit)
                .map_err(|error| InputError::new("referrer_unit", error.reason))?,
        )
    };
    Ok(EventBody::ParticipantReferred {
        source: required("source", request.source)?,
        referrer,
    })
}

/// The unit and coach an `EnrollParticipant` names, checked before the unit's places are
/// weighed.
pub fn enrolment_target(
    request: &v1::EnrollParticipantRequest,
) -> Result<(UnitId, PersonId), InputError> {
    Ok((
        UnitId::parse(&request.unit)?,
        person("coach_person_id", &request.coach_person_id)?,
    ))
}

/// `EnrollParticipant`, once the unit's places are weighed: enrolled with the coach, or on the
/// unit's waiting list when every coach is full (a full coach with colleagues who have room is
/// refused before any body is built).
pub fn enroll_participant(
    request: &v1::EnrollParticipantRequest,
    on_waiting_list: bool,
) -> Result<EventBody, InputError> {
    let (unit, coach) = enrolment_target(request)?;
    Ok(if on_waiting_list {
        EventBody::PlacedOnWaitingList { unit }
    } else {
        EventBody::ParticipantEnrolled { unit, coach }
    })
}

/// `ReEnrollParticipant`.
pub fn re_enroll_participant(
    request: &v1::EnrollParticipantRequest,
) -> Result<EventBody, InputError> {
    let (unit, coach) = enrolment_target(request)?;
    Ok(EventBody::ParticipantReEnrolled { unit, coach })
}

/// The consent id a `GrantConsent` names, or `None` when the service must mint one.
pub fn requested_consent_id(
    request: &v1::GrantConsentRequest,
) -> Result<Option<ConsentId>, InputError> {
    if request.consent_id.trim().is_empty() {
        return Ok(None);
    }
    ConsentId::parse(&request.consent_id).map(Some)
}

/// `GrantConsent`, under `consent_id` (the request's, or the one minted for it).
pub fn grant_consent(
    request: &v1::GrantConsentRequest,
    consent_id: ConsentId,
) -> Result<EventBody, InputError> {
    Ok(EventBody::ConsentGranted {
        consent_id,
        discloser: fields::consent_party("discloser", request.discloser)?,
        recipient: fields::consent_party("recipient", request.recipient)?,
        data_categories: fields::data_categories("data_categories", &request.data_categories)?,
        valid_from: required_date("valid_from", &request.valid_from)?,
        valid_to: required_date("valid_to", &request.valid_to)?,
    })
}

/// `WithdrawConsent`; without an `effective_from` it takes effect on `occurred_on`, the
/// business date of the write.
pub fn withdraw_consent(
    request: &v1::WithdrawConsentRequest,
    occurred_on: NaiveDate,
) -> Result<EventBody, InputError> {
    Ok(EventBody::ConsentWithdrawn {
        discloser: fields::consent_party("discloser", request.discloser)?,
        recipient: fields::consent_party("recipient", request.recipient)?,
        data_categories: fields::data_categories("data_categories", &request.data_categories)?,
        effective_from: fields::optional_date("effective_from", &request.effective_from)?
            .unwrap_or(occurred_on),
    })
}

/// `ProtectIdentity`: `allowed_person_ids` are the municipality's own people (all the field
/// ever meant), `allowed_readers` name their organisation, since a person id is unique only
/// within the organisation that issued it.
pub fn protect_identity(request: &v1::ProtectIdentityRequest) -> Result<EventBody, InputError> {
    let municipal = request
        .allowed_person_ids
        .iter()
        .map(|person_id| person("allowed_person_ids", person_id).map(AllowedReader::municipal));
    let named = request.allowed_readers.iter().map(|reader| {
        Ok(AllowedReader {
            agency: required("allowed_readers.agency", reader.agency)?,
            person_id: person("allowed_readers.person_id", &reader.person_id)?,
        })
    });
    let allowed_readers = municipal.chain(named).collect::<Result<Vec<_>, _>>()?;
    Ok(EventBody::IdentityProtected { allowed_readers })
}

/// `DeclineReferral`.
pub fn decline_referral(request: &v1::DeclineReferralRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::ReferralDeclined {
        reason: trimmed("reason", &request.reason)?,
    })
}

/// `AssignCoach`.
pub fn assign_coach(request: &v1::AssignCoachRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::CoachAssigned {
        coach: person("coach_person_id", &request.coach_person_id)?,
    })
}

/// `PauseParticipant`.
pub fn pause_participant(request: &v1::PauseParticipantRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::ParticipantPaused {
        reason: trimmed("reason", &request.reason)?,
    })
}

/// `ResumeParticipant`: the request names only the participant.
pub fn resume_participant(_request: &v1::ParticipantWrite) -> Result<EventBody, InputError> {
    Ok(EventBody::ParticipantResumed)
}

/// `DischargeParticipant`.
pub fn discharge_participant(
    request: &v1::DischargeParticipantRequest,
) -> Result<EventBody, InputError> {
    Ok(EventBody::ParticipantDischarged {
        reason: required("reason", request.reason)?,
    })
}

/// `RecordProfile`.
pub fn record_profile(request: &v1::RecordProfileRequest) -> Result<EventBody, InputError> {
    let education_level = required("education_level", request.education_level)?;
    Ok(EventBody::ProfileRecorded {
        preferences: request.preferences.trim().to_owned(),
        hours_per_week_wanted: fields::hours_per_week(
            "hours_per_week_wanted",
            request.hours_per_week_wanted,
        )?,
        education_level,
    })
}

/// `RecordBenefitsCounselling`.
pub fn record_benefits_counselling(
    request: &v1::RecordBenefitsCounsellingRequest,
) -> Result<EventBody, InputError> {
    if request.benefits_discussed.len() > counselled_benefits_count() {
        return Err(InputError::new(
            "benefits_discussed",
            "names more benefits than exist",
        ));
    }
    let benefits_discussed = request
        .benefits_discussed
        .iter()
        .map(|value| required::<CounselledBenefit>("benefits_discussed", *value))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EventBody::BenefitsCounsellingGiven { benefits_discussed })
}

/// `RecordDisclosurePreference`.
pub fn record_disclosure_preference(
    request: &v1::RecordDisclosurePreferenceRequest,
) -> Result<EventBody, InputError> {
    Ok(EventBody::DisclosurePreferenceRecorded {
        preference: required("preference", request.preference)?,
    })
}

/// `RecordEmployerContact`.
pub fn record_employer_contact(
    request: &v1::RecordEmployerContactRequest,
) -> Result<EventBody, InputError> {
    Ok(EventBody::EmployerContactMade {
        employer: trimmed("employer", &request.employer)?,
        face_to_face: request.face_to_face,
        with_participant: request.with_participant,
    })
}

/// `ProposeActivity`, under `activity_id` (the request's, or the one minted for it).
pub fn propose_activity(
    request: &v1::ProposeActivityRequest,
    activity_id: ActivityId,
) -> Result<EventBody, InputError> {
    let employer = request.employer.trim();
    Ok(EventBody::ActivityProposed {
        activity_id,
        kind: fields::activity_kind("kind", request.kind)?,
        employer: (!employer.is_empty()).then(|| employer.to_owned()),
        hours_per_week: fields::hours_per_week("hours_per_week", request.hours_per_week)?,
        planned_start: required_date("planned_start", &request.planned_start)?,
        planned_end: fields::optional_date("planned_end", &request.planned_end)?,
        subsidy: fields::optional_subsidy("subsidy", request.subsidy)?,
        at_own_employer: request.at_own_employer,
    })
}

/// `StartActivity`.
pub fn start_activity(request: &v1::ActivityDateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::ActivityStarted {
        activity_id: required_activity_id(&request.activity_id)?,
        started_on: required_date("date", &request.date)?,
    })
}

/// `EndActivity`.
pub fn end_activity(request: &v1::ActivityDateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::ActivityEnded {
        activity_id: required_activity_id(&request.activity_id)?,
        ended_on: required_date("date", &request.date)?,
    })
}

/// `StartJob`.
pub fn start_job(request: &v1::StartJobRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::JobStarted {
        activity_id: required_activity_id(&request.activity_id)?,
        employer: trimmed("employer", &request.employer)?,
        occupation: trimmed("occupation", &request.occupation)?,
        competitive: request.competitive,
        subsidy: fields::optional_subsidy("subsidy", request.subsidy)?,
        hours_per_week: fields::hours_per_week("hours_per_week", request.hours_per_week)?,
        started_on: required_date("started_on", &request.started_on)?,
    })
}

/// `ChangeHours`.
pub fn change_hours(request: &v1::ChangeHoursRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::HoursChanged {
        activity_id: required_activity_id(&request.activity_id)?,
        hours_per_week: fields::hours_per_week("hours_per_week", request.hours_per_week)?,
        from: required_date("from", &request.from)?,
    })
}

/// `EndJob`.
pub fn end_job(request: &v1::EndJobRequest) -> Result<EventBody, InputError> {
    let reason = required("reason", request.reason)?;
    Ok(EventBody::JobEnded {
        activity_id: required_activity_id(&request.activity_id)?,
        ended_on: required_date("ended_on", &request.ended_on)?,
        reason,
    })
}

/// `StartStudies`.
pub fn start_studies(request: &v1::StartStudiesRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::StudiesStarted {
        activity_id: required_activity_id(&request.activity_id)?,
        programme: trimmed("programme", &request.programme)?,
        started_on: required_date("started_on", &request.started_on)?,
    })
}

/// `EndStudies`.
pub fn end_studies(request: &v1::ActivityDateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::StudiesEnded {
        activity_id: required_activity_id(&request.activity_id)?,
        ended_on: required_date("date", &request.date)?,
    })
}

/// `RecordFollowAlongContact`.
pub fn record_follow_along_contact(
    request: &v1::RecordFollowAlongContactRequest,
) -> Result<EventBody, InputError> {
    Ok(EventBody::FollowAlongContact {
        activity_id: fields::optional_activity_id(&request.activity_id)?,
        contact_on: required_date("contact_on", &request.contact_on)?,
    })
}

/// `RecordFollowUp`.
pub fn record_follow_up(request: &v1::RecordFollowUpRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::FollowUpRecorded {
        status: required("status", request.status)?,
        obstacles: request.obstacles.trim().to_owned(),
        helping_factors: request.helping_factors.trim().to_owned(),
    })
}

/// `RecordOutreachAttempt`.
pub fn record_outreach_attempt(
    request: &v1::RecordOutreachAttemptRequest,
) -> Result<EventBody, InputError> {
    Ok(EventBody::OutreachAttempted {
        channel: required("channel", request.channel)?,
    })
}

/// `RecordSipHeld`.
pub fn record_sip_held(request: &v1::DateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::SipHeld {
        held_on: required_date("date", &request.date)?,
    })
}

/// `RecordSipEstablished`.
pub fn record_sip_established(request: &v1::DateRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::SipEstablished {
        established_on: required_date("date", &request.date)?,
    })
}

/// `RecordBenefitSelfReport`: the participant's statement, as the coach recorded it.
pub fn record_benefit_self_report(
    request: &v1::RecordBenefitSelfReportRequest,
) -> Result<EventBody, InputError> {
    Ok(EventBody::BenefitSelfReported {
        benefit: fields::benefit_kind("benefit", request.benefit)?,
        said_on: required_date("said_on", &request.said_on)?,
    })
}

/// `RecordSocialAssistance`.
pub fn record_social_assistance(
    request: &v1::RecordSocialAssistanceRequest,
) -> Result<EventBody, InputError> {
    Ok(EventBody::SocialAssistanceDecided {
        status: required("status", request.status)?,
    })
}

/// `AcceptActivityInPlanning`.
pub fn accept_activity_in_planning(request: &v1::ActivityRequest) -> Result<EventBody, InputError> {
    Ok(EventBody::ActivityAcceptedInPlanning {
        activity_id: required_activity_id(&request.activity_id)?,
    })
}

#[cfg(test)]
#[path = "bodies_tests.rs"]
mod tests;
