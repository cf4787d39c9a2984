//! Event bodies (past tense), the submission an agency publishes, and the recorded event the
//! ledger stores with its place in the participant's hash chain.
//!
//! The serialised form of [`ParticipantEvent`] *is* the stored payload, so everything here is
//! part of the stored schema: fields are added with defaults, never renamed, and
//! `schema_version` says which shape a stored event has. The hash covers the stored JSON, not
//! these Rust types, so a chain written by an older version still verifies.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::chain;
use crate::envelope::{Agency, DataCategory, Envelope};
use crate::errors::{InputError, RuleViolation};
use crate::ids::{ActivityId, ConsentId, EventId, PersonId, ProgrammeId, UnitId};
use crate::values::{
    self, ActivityKind, Availability, BenefitKind, CounselledBenefit, DecisionOutcome,
    DischargeReason, DisclosurePreference, EducationLevel, FollowUpStatus, JobEndReason,
    OutreachChannel, Period, SocialAssistanceStatus, Subsidy,
};

/// The schema version this build writes.
pub const CURRENT_SCHEMA_VERSION: u32 = 1;

/// Longest consent period accepted, in days. A consent is for a concrete piece of work, and a
/// typo in a year should not create a consent for a century.
pub const CONSENT_PERIOD_DAYS_MAX: i64 = 5 * 366;

/// Most people on a protected participant's allow-list.
pub const ALLOWED_READERS_MAX: usize = 50;

/// Who referred the participant to IPS (aktualisering).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, strum::EnumIter)]
#[serde(rename_all = "snake_case")]
pub enum ReferralSource {
    /// Adult psychiatry (vuxenpsykiatri).
    Vuxenpsykiatri,
    /// Municipal socialpsykiatri.
    Socialpsykiatri,
    /// Social services (IFO).
    Ifo,
    /// Försäkringskassan.
    Forsakringskassan,
    /// Arbetsförmedlingen.
    Arbetsformedlingen,
    /// The person's own initiative.
    OwnInitiative,
}

/// A party to a secrecy-waiving consent: finer than an agency, because secrecy applies even
/// between municipal committees (the IPS unit and IFO are different parties).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ConsentParty {
    /// The municipality's IPS unit.
    IpsUnit,
    /// The municipality's social services (IFO, försörjningsstöd, socialpsykiatri).
    SocialServices,
    /// Försäkringskassan.
    Forsakringskassan,
    /// Arbetsförmedlingen.
    Arbetsformedlingen,
    /// The region's psychiatry.
    Psychiatry,
}

impl ConsentParty {
    /// The stable token (as serialised), used in guidance and on the wire.
    pub fn token(self) -> &'static str {
        self.into()
    }

    /// The inverse of [`ConsentParty::token`].
    pub fn from_token(token: &str) -> Option<ConsentParty> {
        token.parse().ok()
    }
}

/// What happened. Tagged by `type`, which is also the stored `event_type`: the variant's name,
/// derived once for serde and [`EventBody::event_type`] (pinned by `tests/stored_names.rs`).
///
/// Grouped by the agency that records it (see [`EventBody::recorded_by`]). Free-text fields are
/// bounded; personal free text (obstacles, helping factors, preferences) is what crypto-shredding
/// will encrypt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(tag = "type")]
pub enum EventBody {
    // ---- Municipality: intake and lifecycle ----
    /// A referral to IPS was received (aktualisering).
    ParticipantReferred {
        /// Where the referral came from.
        source: ReferralSource,
        /// The referring unit, when known.
        referrer: Option<UnitId>,
    },
    /// The referral was declined.
    ReferralDeclined {
        /// Why.
        reason: String,
    },
    /// Every coach of the unit is full; the participant waits for a place.
    PlacedOnWaitingList {
        /// The IPS unit.
        unit: UnitId,
    },
    /// A place freed up and is offered to this waiting participant.
    WaitingListPlaceOffered {
        /// The IPS unit.
        unit: UnitId,
        /// The coach with room.
        coach: PersonId,
    },
    /// The participant was enrolled at an IPS unit with a coach.
    ParticipantEnrolled {
        /// The IPS unit.
        unit: UnitId,
        /// The coach (arbetsspecialist).
        coach: PersonId,
    },
    /// Another coach takes over.
    CoachAssigned {
        /// The new coach.
        coach: PersonId,
    },
    /// Support is paused.
    ParticipantPaused {
        /// Why.
        reason: String,
    },
    /// Support resumes after a pause.
    ParticipantResumed,
    /// The participant left IPS.
    ParticipantDischarged {
        /// Why.
        reason: DischargeReason,
    },
    /// A discharged participant came back; the history is kept.
    ParticipantReEnrolled {
        /// The IPS unit.
        unit: UnitId,
        /// The coach.
        coach: PersonId,
    },
    /// Protected identity (skyddade personuppgifter): only these people, and auditors, may read
    /// the participant from now on; location fields leave every cross-agency view. A later
    /// one replaces the list.
    IdentityProtected {
        /// The coach, the team leader and named officers.
        allowed_readers: Vec<PersonId>,
    },
    // ---- Consent (any agency may take it down) ----
    /// The participant waived secrecy from `discloser` to `recipient` for some data categories.
    ConsentGranted {
        /// Names this consent, so it can be referred to.
        consent_id: ConsentId,
        /// Who may disclose.
        discloser: ConsentParty,
        /// Who may receive.
        recipient: ConsentParty,
        /// Which kinds of data.
        data_categories: Vec<DataCategory>,
        /// First day in force.
        valid_from: NaiveDate,
        /// Last day in force.
        valid_to: NaiveDate,
    },
    /// The participant withdrew consent; it stops future disclosure from `effective_from` on.
    ConsentWithdrawn {
        /// Who may no longer disclose.
        discloser: ConsentParty,
        /// Who may no longer receive.
        recipient: ConsentParty,
        /// Which kinds of data.
        data_categories: Vec<DataCategory>,
        /// First day the withdrawal applies.
        effective_from: NaiveDate,
    },
    // ---- Municipality: the IPS path ----
    /// The vocational profile (kartläggning).
    ProfileRecorded {
        /// Wishes, interests, strengths (free text).
        preferences: String,
        /// Hours per week the participant wants to work.
        hours_per_week_wanted: u8,
        /// Highest education.
        education_level: EducationLevel,
    },
    /// Benefits counselling was given.
    BenefitsCounsellingGiven {
        /// Which benefits were discussed.
        benefits_discussed: Vec<CounselledBenefit>,
    },
    /// What the participant wants employers told.
    DisclosurePreferenceRecorded {
        /// The preference.
        preference: DisclosurePreference,
    },
    /// A contact with an employer.
    EmployerContactMade {
        /// The employer.
        employer: String,
        /// Met face to face.
        face_to_face: bool,
        /// The participant took part.
        with_participant: bool,
    },
    /// The coach proposes an activity or job start; this opens its green-light request.
    ActivityProposed {
        /// Names the activity from now on.
        activity_id: ActivityId,
        /// What kind.
        kind: ActivityKind,
        /// At which employer, if any.
        employer: Option<String>,
        /// Hours per week.
        hours_per_week: u8,
        /// Planned first day.
        planned_start: NaiveDate,
        /// Planned last day, if known.
        planned_end: Option<NaiveDate>,
        /// For a job: the subsidy it needs, if any.
        subsidy: Option<Subsidy>,
        /// An arbetsprövning at the participant's own employer, agreed with the employer: the
        /// 2026 rule for employed people on sjukpenning (a notice to FK, not an approval).
        #[serde(default)]
        at_own_employer: bool,
    },
    /// A proposed activity (not a job, not studies) started.
    ActivityStarted {
        /// Which.
        activity_id: ActivityId,
        /// First day.
        started_on: NaiveDate,
    },
    /// A started activity ended.
    ActivityEnded {
        /// Which.
        activity_id: ActivityId,
        /// Last day.
        ended_on: NaiveDate,
    },
    /// A proposed job started.
    JobStarted {
        /// The job's proposal.
        activity_id: ActivityId,
        /// Employer.
        employer: String,
        /// Occupation.
        occupation: String,
        /// A competitive job (ordinary terms).
        competitive: bool,
        /// Subsidy, if any.
        subsidy: Option<Subsidy>,
        /// Hours per week.
        hours_per_week: u8,
        /// First day.
        started_on: NaiveDate,
    },
    /// A job's hours changed.
    HoursChanged {
        /// Which job.
        activity_id: ActivityId,
        /// New hours per week.
        hours_per_week: u8,
        /// From which day.
        from: NaiveDate,
    },
    /// A job ended.
    JobEnded {
        /// Which job.
        activity_id: ActivityId,
        /// Last day.
        ended_on: NaiveDate,
        /// Why.
        reason: JobEndReason,
    },
    /// Proposed studies started.
    StudiesStarted {
        /// The studies' proposal.
        activity_id: ActivityId,
        /// Programme or course.
        programme: String,
        /// First day.
        started_on: NaiveDate,
    },
    /// Studies ended.
    StudiesEnded {
        /// Which.
        activity_id: ActivityId,
        /// Last day.
        ended_on: NaiveDate,
    },
    /// A follow-along contact after employment.
    FollowAlongContact {
        /// The job it follows, if any.
        activity_id: Option<ActivityId>,
        /// When.
        contact_on: NaiveDate,
    },
    /// The two-monthly follow-up.
    FollowUpRecorded {
        /// Status.
        status: FollowUpStatus,
        /// Obstacles (sensitive free text).
        obstacles: String,
        /// Helping factors (sensitive free text).
        helping_factors: String,
    },
    /// An attempt to reach a participant who lost contact.
    OutreachAttempted {
        /// How.
        channel: OutreachChannel,
    },
    /// A SIP meeting was held.
    SipHeld {
        /// When.
        held_on: NaiveDate,
    },
    /// A SIP was established.
    SipEstablished {
        /// When.
        established_on: NaiveDate,
    },
    /// Social assistance status (never amounts).
    SocialAssistanceDecided {
        /// Granted, denied or ended.
        status: SocialAssistanceStatus,
    },
    /// The försörjningsstöd officer accepts an activity in the participant's planning.
    ActivityAcceptedInPlanning {
        /// Which activity.
        activity_id: ActivityId,
    },
    // ---- Försäkringskassan ----
    /// A benefit was registered.
    BenefitRegistered {
        /// Which benefit.
        benefit: BenefitKind,
        /// Degree (25/50/75/100 %).
        degree_percent: u8,
        /// Period.
        period: Period,
        /// The participant has an employment (sjukpenning from an employment, not as unemployed).
        #[serde(default)]
        employed: bool,
    },
    /// A benefit ended.
    BenefitEnded {
        /// Which benefit.
        benefit: BenefitKind,
        /// Last day.
        ended_on: NaiveDate,
    },
    /// A medical certificate was received (period and degree; never a diagnosis).
    MedicalCertificateReceived {
        /// Period.
        period: Period,
        /// Degree.
        degree_percent: u8,
    },
    /// An avstämningsmöte was held.
    AvstamningsmoteHeld {
        /// When.
        held_on: NaiveDate,
    },
    /// A rehabilitation plan was established.
    RehabPlanEstablished {
        /// When.
        established_on: NaiveDate,
    },
    /// The rehabilitation plan was revised.
    RehabPlanRevised {
        /// When.
        revised_on: NaiveDate,
    },
    /// An agency's decision on a proposed activity: FK's or AF's green light (or not).
    ActivityDecision {
        /// Which activity.
        activity_id: ActivityId,
        /// The decision.
        outcome: DecisionOutcome,
        /// Validity, required for an approval.
        valid: Option<Period>,
        /// Reason (free text).
        reason: String,
    },
    /// An activity agreement under aktivitetsersättning.
    ActivityAgreementMade {
        /// Which activity.
        activity_id: ActivityId,
        /// Validity.
        valid: Period,
    },
    /// Dormant benefit (vilande ersättning) decided for a job.
    DormantBenefitDecided {
        /// Which job.
        activity_id: ActivityId,
        /// Validity.
        valid: Period,
    },
    // ---- Arbetsförmedlingen ----
    /// Registered as a job seeker.
    JobSeekerRegistered {
        /// When.
        registered_on: NaiveDate,
    },
    /// Deregistered as a job seeker.
    JobSeekerDeregistered {
        /// When.
        deregistered_on: NaiveDate,
    },
    /// Disability coding requested.
    DisabilityCodingRequested {
        /// When.
        requested_on: NaiveDate,
    },
    /// Disability coding registered.
    DisabilityCodingRegistered {
        /// When.
        registered_on: NaiveDate,
    },
    /// A programme was assigned.
    ProgrammeAssigned {
        /// Names the assignment.
        programme_id: ProgrammeId,
        /// The programme.
        programme: String,
        /// With aktivitetsstöd.
        with_activity_allowance: bool,
        /// Period.
        period: Period,
    },
    /// A programme ended.
    ProgrammeEnded {
        /// Which.
        programme_id: ProgrammeId,
        /// Last day.
        ended_on: NaiveDate,
    },
    /// SIUS decided.
    SiusDecided {
        /// Period.
        period: Period,
    },
    /// SIUS ended.
    SiusEnded {
        /// Last day.
        ended_on: NaiveDate,
    },
    /// A wage subsidy, nystartsjobb or introduktionsjobb decided.
    SubsidyDecided {
        /// Which subsidy.
        subsidy: Subsidy,
        /// The job it is for, when proposed.
        activity_id: Option<ActivityId>,
        /// Employer.
        employer: String,
        /// Period.
        period: Period,
    },
    // ---- Psychiatry (coarse facts only) ----
    /// Psychiatry sent a referral to IPS.
    IpsReferralSent {
        /// When.
        sent_on: NaiveDate,
    },
    /// A treatment-team meeting was held.
    TreatmentTeamMeetingHeld {
        /// When.
        held_on: NaiveDate,
        /// The IPS coach took part.
        coach_present: bool,
    },
    /// A medical certificate was issued.
    MedicalCertificateIssued {
        /// Period.
        period: Period,
        /// Degree.
        degree_percent: u8,
    },
    /// Availability changed: all an inpatient admission shows outside psychiatry.
    AvailabilityChanged {
        /// Available or temporarily unavailable.
        availability: Availability,
        /// From which day.
        from: NaiveDate,
    },
    /// Ready for discharge from inpatient care: a SIP is due within 3 days.
    DischargeReady {
        /// When.
        ready_on: NaiveDate,
    },
    // ---- Corrections ----
    /// Corrects an earlier event of the same agency and type; nothing is edited or deleted.
    EventCorrected {
        /// The corrected event.
        supersedes: EventId,
        /// Why.
        reason: String,
        /// What it should have said.
        corrected: Box<EventBody>,
    },
}

impl EventBody {
    /// The stored event type (the serde tag).
    pub fn event_type(&self) -> &'static str {
        self.into()
    }

    /// Which agency records this kind of event. Consents and corrections: any agency.
    pub fn recorded_by(&self, agency: Agency) -> bool {
        match self {
            EventBody::ConsentGranted { .. }
            | EventBody::ConsentWithdrawn { .. }
            | EventBody::EventCorrected { .. } => true,
            // Both FK and AF give green lights on activities.
            EventBody::ActivityDecision { .. } => match agency {
                Agency::Forsakringskassan | Agency::Arbetsformedlingen => true,
                Agency::Municipality | Agency::Psychiatry => false,
            },
            other => other.owning_agency() == Some(agency),
        }
    }

    /// The one agency that records this kind of event, where there is one.
    pub fn owning_agency(&self) -> Option<Agency> {
        match self {
            EventBody::ConsentGranted { .. }
            | EventBody::ConsentWithdrawn { .. }
            | EventBody::EventCorrected { .. }
            | EventBody::ActivityDecision { .. } => None,
            EventBody::BenefitRegistered { .. }
            | EventBody::BenefitEnded { .. }
            | EventBody::MedicalCertificateReceived { .. }
            | EventBody::AvstamningsmoteHeld { .. }
            | EventBody::RehabPlanEstablished { .. }
            | EventBody::RehabPlanRevised { .. }
            | EventBody::ActivityAgreementMade { .. }
            | EventBody::DormantBenefitDecided { .. } => Some(Agency::Forsakringskassan),
            EventBody::JobSeekerRegistered { .. }
            | EventBody::JobSeekerDeregistered { .. }
            | EventBody::DisabilityCodingRequested { .. }
            | EventBody::DisabilityCodingRegistered { .. }
            | EventBody::ProgrammeAssigned { .. }
            | EventBody::ProgrammeEnded { .. }
            | EventBody::SiusDecided { .. }
            | EventBody::SiusEnded { .. }
            | EventBody::SubsidyDecided { .. } => Some(Agency::Arbetsformedlingen),
            EventBody::IpsReferralSent { .. }
            | EventBody::TreatmentTeamMeetingHeld { .. }
            | EventBody::MedicalCertificateIssued { .. }
            | EventBody::AvailabilityChanged { .. }
            | EventBody::DischargeReady { .. } => Some(Agency::Psychiatry),
            EventBody::ParticipantReferred { .. }
            | EventBody::ReferralDeclined { .. }
            | EventBody::PlacedOnWaitingList { .. }
            | EventBody::WaitingListPlaceOffered { .. }
            | EventBody::ParticipantEnrolled { .. }
            | EventBody::CoachAssigned { .. }
            | EventBody::ParticipantPaused { .. }
            | EventBody::ParticipantResumed
            | EventBody::ParticipantDischarged { .. }
            | EventBody::ParticipantReEnrolled { .. }
            | EventBody::IdentityProtected { .. }
            | EventBody::ProfileRecorded { .. }
            | EventBody::BenefitsCounsellingGiven { .. }
            | EventBody::DisclosurePreferenceRecorded { .. }
            | EventBody::EmployerContactMade { .. }
            | EventBody::ActivityProposed { .. }
            | EventBody::ActivityStarted { .. }
            | EventBody::ActivityEnded { .. }
            | EventBody::JobStarted { .. }
            | EventBody::HoursChanged { .. }
            | EventBody::JobEnded { .. }
            | EventBody::StudiesStarted { .. }
            | EventBody::StudiesEnded { .. }
            | EventBody::FollowAlongContact { .. }
            | EventBody::FollowUpRecorded { .. }
            | EventBody::OutreachAttempted { .. }
            | EventBody::SipHeld { .. }
            | EventBody::SipEstablished { .. }
            | EventBody::SocialAssistanceDecided { .. }
            | EventBody::ActivityAcceptedInPlanning { .. } => Some(Agency::Municipality),
        }
    }

    /// The data category (secrecy class, consent scope) of this event when `agency` records it.
    pub fn data_category(&self, agency: Agency) -> DataCategory {
        match self {
            EventBody::ParticipantReferred { .. }
            | EventBody::ReferralDeclined { .. }
            | EventBody::PlacedOnWaitingList { .. }
            | EventBody::WaitingListPlaceOffered { .. }
            | EventBody::ParticipantEnrolled { .. }
            | EventBody::CoachAssigned { .. }
            | EventBody::ParticipantPaused { .. }
            | EventBody::ParticipantResumed
            | EventBody::IdentityProtected { .. }
            | EventBody::ParticipantDischarged { .. }
            | EventBody::ParticipantReEnrolled { .. }
            | EventBody::OutreachAttempted { .. }
            | EventBody::SipHeld { .. }
            | EventBody::SipEstablished { .. } => DataCategory::Participation,
            EventBody::ConsentGranted { .. } | EventBody::ConsentWithdrawn { .. } => {
                DataCategory::Consent
            }
            EventBody::ProfileRecorded { .. }
            | EventBody::DisclosurePreferenceRecorded { .. }
            | EventBody::BenefitsCounsellingGiven { .. } => DataCategory::VocationalProfile,
            EventBody::EmployerContactMade { .. }
            | EventBody::ActivityProposed { .. }
            | EventBody::ActivityStarted { .. }
            | EventBody::ActivityEnded { .. }
            | EventBody::JobStarted { .. }
            | EventBody::HoursChanged { .. }
            | EventBody::JobEnded { .. }
            | EventBody::StudiesStarted { .. }
            | EventBody::StudiesEnded { .. }
            | EventBody::FollowAlongContact { .. } => DataCategory::ActivitiesAndWork,
            EventBody::FollowUpRecorded { .. } => DataCategory::FollowUpNotes,
            EventBody::SocialAssistanceDecided { .. }
            | EventBody::ActivityAcceptedInPlanning { .. } => DataCategory::SocialAssistanceStatus,
            EventBody::BenefitRegistered { .. }
            | EventBody::BenefitEnded { .. }
            | EventBody::MedicalCertificateReceived { .. }
            | EventBody::AvstamningsmoteHeld { .. }
            | EventBody::RehabPlanEstablished { .. }
            | EventBody::RehabPlanRevised { .. }
            | EventBody::ActivityAgreementMade { .. }
            | EventBody::DormantBenefitDecided { .. } => DataCategory::BenefitDecisions,
            EventBody::ActivityDecision { .. } if agency == Agency::Arbetsformedlingen => {
                DataCategory::LabourMarket
            }
            EventBody::ActivityDecision { .. } => DataCategory::BenefitDecisions,
            EventBody::JobSeekerRegistered { .. }
            | EventBody::JobSeekerDeregistered { .. }
            | EventBody::DisabilityCodingRequested { .. }
            | EventBody::DisabilityCodingRegistered { .. }
            | EventBody::ProgrammeAssigned { .. }
            | EventBody::ProgrammeEnded { .. }
            | EventBody::SiusDecided { .. }
            | EventBody::SiusEnded { .. }
            | EventBody::SubsidyDecided { .. } => DataCategory::LabourMarket,
            EventBody::IpsReferralSent { .. }
            | EventBody::TreatmentTeamMeetingHeld { .. }
            | EventBody::MedicalCertificateIssued { .. }
            | EventBody::AvailabilityChanged { .. }
            | EventBody::DischargeReady { .. } => DataCategory::HealthCoarse,
            EventBody::EventCorrected { corrected, .. } => corrected.data_category(agency),
        }
    }

    /// Field checks that need no history.
    pub fn validate(&self) -> Result<(), InputError> {
        match self {
            EventBody::ParticipantReferred { .. }
            | EventBody::PlacedOnWaitingList { .. }
            | EventBody::WaitingListPlaceOffered { .. }
            | EventBody::ParticipantEnrolled { .. }
            | EventBody::CoachAssigned { .. }
            | EventBody::ParticipantResumed
            | EventBody::ParticipantDischarged { .. }
            | EventBody::ParticipantReEnrolled { .. }
            | EventBody::DisclosurePreferenceRecorded { .. }
            | EventBody::ActivityStarted { .. }
            | EventBody::ActivityEnded { .. }
            | EventBody::StudiesEnded { .. }
            | EventBody::JobEnded { .. }
            | EventBody::FollowAlongContact { .. }
            | EventBody::OutreachAttempted { .. }
            | EventBody::SipHeld { .. }
            | EventBody::SipEstablished { .. }
            | EventBody::SocialAssistanceDecided { .. }
            | EventBody::ActivityAcceptedInPlanning { .. }
            | EventBody::BenefitEnded { .. }
            | EventBody::AvstamningsmoteHeld { .. }
            | EventBody::RehabPlanEstablished { .. }
            | EventBody::RehabPlanRevised { .. }
            | EventBody::JobSeekerRegistered { .. }
            | EventBody::JobSeekerDeregistered { .. }
            | EventBody::DisabilityCodingRequested { .. }
            | EventBody::DisabilityCodingRegistered { .. }
            | EventBody::ProgrammeEnded { .. }
            | EventBody::SiusEnded { .. }
            | EventBody::IpsReferralSent { .. }
            | EventBody::TreatmentTeamMeetingHeld { .. }
            | EventBody::AvailabilityChanged { .. }
            | EventBody::DischargeReady { .. } => Ok(()),
            EventBody::IdentityProtected { allowed_readers } => {
                if allowed_readers.is_empty() {
                    return Err(InputError::new(
                        "allowed_person_ids",
                        "must name at least one person (the coach)",
                    ));
                }
                if allowed_readers.len() > ALLOWED_READERS_MAX {
                    return Err(InputError::new(
                        "allowed_person_ids",
                        format!("names more than {ALLOWED_READERS_MAX} people"),
                    ));
                }
                Ok(())
            }
            EventBody::ReferralDeclined { reason } | EventBody::ParticipantPaused { reason } => {
                values::validate_text("reason", reason)
            }
            EventBody::ConsentGranted {
                discloser,
                recipient,
                data_categories,
                valid_from,
                valid_to,
                ..
            } => {
                validate_consent_parties(*discloser, *recipient, data_categories)?;
                if valid_to <= valid_from {
                    return Err(InputError::new("valid_to", "must be after valid_from"));
                }
                if (*valid_to - *valid_from).num_days() > CONSENT_PERIOD_DAYS_MAX {
                    return Err(InputError::new(
                        "valid_to",
                        "is more than five years after valid_from",
                    ));
                }
                Ok(())
            }
            EventBody::ConsentWithdrawn {
                discloser,
                recipient,
                data_categories,
                ..
            } => validate_consent_parties(*discloser, *recipient, data_categories),
            EventBody::ProfileRecorded {
                preferences,
                hours_per_week_wanted,
                ..
            } => {
                values::validate_optional_text("preferences", preferences)?;
                values::validate_hours("hours_per_week_wanted", *hours_per_week_wanted)
            }
            EventBody::BenefitsCounsellingGiven { benefits_discussed } => {
                if benefits_discussed.is_empty() {
                    return Err(InputError::new(
                        "benefits_discussed",
                        "must name at least one benefit",
                    ));
                }
                Ok(())
            }
            EventBody::EmployerContactMade { employer, .. } => {
                values::validate_name("employer", employer)
            }
            EventBody::ActivityProposed {
                kind,
                employer,
                hours_per_week,
                planned_start,
                planned_end,
                subsidy,
                at_own_employer,
                ..
            } => {
                values::validate_hours("hours_per_week", *hours_per_week)?;
                if *at_own_employer {
                    if *kind != ActivityKind::Arbetsprovning {
                        return Err(InputError::new("at_own_employer", "only an arbetsprövning is done at the own employer under the 2026 rule"));
                    }
                    let Some(end) = planned_end else {
                        return Err(InputError::new(
                            "planned_end",
                            "is required for an arbetsprövning at the own employer",
                        ));
                    };
                    if (*end - *planned_start).num_days() + 1 > values::OWN_EMPLOYER_TRIAL_DAYS_MAX
                    {
                        return Err(InputError::new(
                            "planned_end",
                            "an arbetsprövning at the own employer lasts at most 14 days",
                        ));
                    }
                }
                if let Some(employer) = employer {
                    values::validate_optional_name("employer", employer)?;
                }
                if planned_end.is_some_and(|end| end < *planned_start) {
                    return Err(InputError::new(
                        "planned_end",
                        "must not be before planned_start",
                    ));
                }
                if subsidy.is_some() && *kind != ActivityKind::Job {
                    return Err(InputError::new(
                        "subsidy",
                        "only a job can have a wage subsidy",
                    ));
                }
                Ok(())
            }
            EventBody::JobStarted {
                employer,
                occupation,
                hours_per_week,
                ..
            } => {
                values::validate_name("employer", employer)?;
                values::validate_name("occupation", occupation)?;
                values::validate_hours("hours_per_week", *hours_per_week)
            }
            EventBody::HoursChanged { hours_per_week, .. } => {
                values::validate_hours("hours_per_week", *hours_per_week)
            }
            EventBody::StudiesStarted { programme, .. } => {
                values::validate_name("programme", programme)
            }
            EventBody::FollowUpRecorded {
                obstacles,
                helping_factors,
                ..
            } => {
                values::validate_optional_text("obstacles", obstacles)?;
                values::validate_optional_text("helping_factors", helping_factors)
            }
            EventBody::BenefitRegistered {
                degree_percent,
                period,
                ..
            }
            | EventBody::MedicalCertificateReceived {
                degree_percent,
                period,
            }
            | EventBody::MedicalCertificateIssued {
                degree_percent,
                period,
            } => {
                values::validate_degree("degree_percent", *degree_percent)?;
                period.validate("period.to")
            }
            EventBody::ActivityDecision {
                outcome,
                valid,
                reason,
                ..
            } => {
                values::validate_optional_text("reason", reason)?;
                match (outcome.is_approval(), valid) {
                    (true, None) => Err(InputError::new(
                        "valid",
                        "an approval needs a validity period",
                    )),
                    (_, Some(period)) => period.validate("valid.to"),
                    (false, None) => Ok(()),
                }
            }
            EventBody::ActivityAgreementMade { valid, .. }
            | EventBody::DormantBenefitDecided { valid, .. } => valid.validate("valid.to"),
            EventBody::ProgrammeAssigned {
                programme, period, ..
            } => {
                values::validate_name("programme", programme)?;
                period.validate("period.to")
            }
            EventBody::SiusDecided { period } => period.validate("period.to"),
            EventBody::SubsidyDecided {
                employer, period, ..
            } => {
                values::validate_name("employer", employer)?;
                period.validate("period.to")
            }
            EventBody::EventCorrected {
                reason, corrected, ..
            } => {
                values::validate_text("reason", reason)?;
                if matches!(**corrected, EventBody::EventCorrected { .. }) {
                    return Err(InputError::new(
                        "corrected",
                        "correct the original event, not a correction",
                    ));
                }
                corrected.validate()
            }
        }
    }
}

fn validate_consent_parties(
    discloser: ConsentParty,
    recipient: ConsentParty,
    data_categories: &[DataCategory],
) -> Result<(), InputError> {
    if discloser == recipient {
        return Err(InputError::new("recipient", "must differ from discloser"));
    }
    if data_categories.is_empty() {
        return Err(InputError::new(
            "data_categories",
            "must name at least one category",
        ));
    }
    let mut sorted = data_categories.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != data_categories.len() {
        return Err(InputError::new(
            "data_categories",
            "must not repeat a category",
        ));
    }
    Ok(())
}

/// What an agency service publishes on the bus: the envelope and the body, not yet recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// The common envelope.
    pub envelope: Envelope,
    /// What happened.
    pub body: EventBody,
}

impl Submission {
    /// All checks that need no history; services run it before publishing, the aggregate again
    /// before deciding.
    pub fn validate(&self) -> Result<(), InputError> {
        self.envelope.validate()?;
        let expected = self.body.data_category(self.envelope.agency);
        if self.envelope.data_category != expected {
            return Err(InputError::new(
                "data_category",
                format!(
                    "must be {} for {}",
                    expected.token(),
                    self.body.event_type()
                ),
            ));
        }
        self.body.validate()?;
        every_string_storable(&self.envelope, "")?;
        every_string_storable(&self.body, "")
    }
}

/// The backstop behind the per-field text classes of [`EventBody::validate`]: every string of
/// `stored` as it will be stored (ids, units, tokens, and any text field a later change forgets
/// to classify) holds at least to [`values::TextClass::FreeText`], so nothing the edge accepts
/// can carry a NUL into PostgreSQL. The error names the JSON path, e.g. `actor.person_id`.
fn every_string_storable(stored: &impl Serialize, prefix: &str) -> Result<(), InputError> {
    let value = serde_json::to_value(stored)
        .map_err(|error| InputError::new("request", format!("cannot be encoded: {error}")))?;
    every_string_storable_in(&value, prefix)
}

fn every_string_storable_in(value: &serde_json::Value, path: &str) -> Result<(), InputError> {
    let field = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        serde_json::Value::String(text) => values::TextClass::FreeText.validate(path, text),
        serde_json::Value::Array(items) => items
            .iter()
            .try_for_each(|item| every_string_storable_in(item, path)),
        serde_json::Value::Object(entries) => entries.iter().try_for_each(|(key, item)| {
            values::TextClass::FreeText.validate(path, key)?;
            every_string_storable_in(item, &field(key))
        }),
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
            Ok(())
        }
    }
}

/// The ledger's verdict on a submission, stored with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The event is part of the participant's history.
    Accepted,
    /// The submission broke a rule; it is kept (auditors expect nothing to be missing) but has no
    /// effect on the participant's state.
    Rejected {
        /// The broken rule.
        #[serde(flatten)]
        rule: RuleViolation,
    },
}

/// One recorded entry of a participant's history, exactly as stored: the submission, the
/// ledger's time and verdict, and its link in the hash chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantEvent {
    /// The submitted envelope.
    pub envelope: Envelope,
    /// System time: when the ledger recorded it.
    pub recorded_at: DateTime<Utc>,
    /// What happened (or what was attempted, for a rejection).
    pub body: EventBody,
    /// Accepted, or rejected with the rule.
    pub outcome: Outcome,
    /// Position in the participant's history, from 1, contiguous.
    pub sequence: u64,
    /// The previous entry's hash (the genesis hash for the first).
    pub prev_hash: String,
    /// SHA-256 over `prev_hash` and the canonical encoding of everything else stored here.
    pub hash: String,
}

impl ParticipantEvent {
    /// Builds the next link of a chain whose head is (`sequence - 1`, `prev_hash`).
    pub fn link(
        submission: Submission,
        recorded_at: DateTime<Utc>,
        outcome: Outcome,
        sequence: u64,
        prev_hash: &str,
    ) -> Self {
        let mut event = ParticipantEvent {
            envelope: submission.envelope,
            recorded_at,
            body: submission.body,
            outcome,
            sequence,
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        // Serialising our own plain data types cannot fail (no maps with non-string keys, no
        // floats); should a future field break that, the empty hash fails verification loudly.
        if let Ok(stored) = serde_json::to_value(&event) {
            event.hash = chain::stored_payload_hash(&stored);
        }
        event
    }

    /// Whether the ledger accepted it.
    pub fn is_accepted(&self) -> bool {
        self.outcome == Outcome::Accepted
    }

    /// The stored `event_type`: the body's type, or `SubmissionRejected`.
    pub fn stored_event_type(&self) -> &'static str {
        match self.outcome {
            Outcome::Accepted => self.body.event_type(),
            Outcome::Rejected { .. } => "SubmissionRejected",
        }
    }
}

impl DomainEvent for ParticipantEvent {
    fn event_type(&self) -> String {
        self.stored_event_type().to_owned()
    }

    fn event_version(&self) -> String {
        self.envelope.schema_version.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Actor, RetentionClass, Role};

    fn submission(person_id: &str, body: EventBody) -> Submission {
        Submission {
            envelope: Envelope {
                event_id: EventId(uuid::Uuid::from_u128(7)),
                participant_id: crate::ParticipantId(uuid::Uuid::from_u128(8)),
                agency: Agency::Municipality,
                actor: Actor {
                    person_id: PersonId(person_id.into()),
                    role: Role::Coach,
                    unit: UnitId("hudiksvall-ips".into()),
                },
                occurred_at: DateTime::<Utc>::default(),
                correlation_id: None,
                causation_id: None,
                schema_version: CURRENT_SCHEMA_VERSION,
                data_category: DataCategory::ActivitiesAndWork,
                retention_class: RetentionClass::SocialServicesFile,
            },
            body,
        }
    }

    fn field_refused(submission: &Submission) -> Option<String> {
        submission.validate().err().map(|error| error.field)
    }

    #[test]
    fn employer_names_are_names_and_every_stored_string_is_checked() {
        let contact = |employer: &str| EventBody::EmployerContactMade {
            employer: employer.into(),
            face_to_face: true,
            with_participant: true,
        };
        assert_eq!(
            field_refused(&submission("coach-17", contact("Acme"))),
            None
        );
        assert_eq!(
            field_refused(&submission("coach-17", contact("Acme\u{202E}proC"))),
            Some("employer".into())
        );
        // Deserialised from the bus, an id has not been through `PersonId::parse`.
        assert_eq!(
            field_refused(&submission("coach\u{0}17", contact("Acme"))),
            Some("actor.person_id".into())
        );
        let corrected = EventBody::EventCorrected {
            supersedes: EventId(uuid::Uuid::from_u128(9)),
            reason: "stavfel".into(),
            corrected: Box::new(contact("Acme\u{0}")),
        };
        assert_eq!(
            field_refused(&submission("coach-17", corrected)),
            Some("employer".into())
        );
    }
}
