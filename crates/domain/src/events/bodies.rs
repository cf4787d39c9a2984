//! The event bodies (past tense): what an agency can record about a participant, and the small
//! types only bodies carry (who referred, who is party to a consent).
//!
//! Every body is stored inside a [`ParticipantEvent`](super::ParticipantEvent), so this file is
//! stored schema: fields are added with defaults, never renamed, and the variant name is the
//! stored `event_type`. What each body means to the rest of the system (its recording agency
//! and data category) is in `catalogue.rs`; its input checks in `validation.rs`.

use chrono::NaiveDate;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::envelope::{Agency, DataCategory};
use crate::ids::{ActivityId, ConsentId, EventId, PersonId, ProgrammeId, UnitId};
use crate::values::{
    ActivityKind, Availability, BenefitKind, CareForm, CounselledBenefit, DecisionOutcome,
    DischargeReason, DisclosurePreference, EducationLevel, FollowUpStatus, JobEndReason,
    OutreachChannel, Period, SocialAssistanceStatus, Subsidy,
};

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

/// One entry of a protected identity's allow-list: a person *of an organisation*. Person ids
/// come from each organisation's own identity provider (the token's `sub`), so they are unique
/// only within it: a bare id would let an FK, AF or psychiatry officer whose `sub` happens to
/// equal a listed municipal id open the participant. Every comparison goes through
/// [`AllowedReader::is`], which matches the organisation too.
///
/// Stored form. Before organisations were named, entries were bare person ids (JSON strings),
/// and only the municipality's own officers were meant: the list was written by the IPS unit
/// from its own directory, and every reader it named was a coach, team leader or IFO officer.
/// So a bare string reads as a municipal person, and a municipal entry is written back as the
/// same bare string; any other organisation's entry is an object
/// `{"agency": <serde name>, "person_id": ...}`. An entry has exactly one stored form (an object
/// naming the municipality is refused), so a stored body re-serialises byte for byte and the
/// hash chain over it is unchanged. A second field alongside the old one would also have kept
/// old rows as they are, but would have left bare, organisation-less ids in the domain type for
/// the next comparison to trip over; one list of pairs lets the compiler find every use.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "StoredAllowedReader")]
pub struct AllowedReader {
    /// The organisation whose directory issued `person_id`.
    pub agency: Agency,
    /// The person's id in that directory.
    pub person_id: PersonId,
}

impl AllowedReader {
    /// A person of the municipality (what every entry stored before organisations were named
    /// is).
    pub fn municipal(person_id: PersonId) -> Self {
        AllowedReader {
            agency: Agency::Municipality,
            person_id,
        }
    }

    /// Whether this entry names `person_id` of `agency`: the same id in another organisation's
    /// directory is another person.
    pub fn is(&self, agency: Agency, person_id: &PersonId) -> bool {
        self.agency == agency && self.person_id == *person_id
    }
}

impl Serialize for AllowedReader {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.agency {
            // The form every entry had before organisations were named (see the type's doc).
            Agency::Municipality => self.person_id.serialize(serializer),
            Agency::Forsakringskassan | Agency::Arbetsformedlingen | Agency::Psychiatry => {
                let mut entry = serializer.serialize_struct("AllowedReader", 2)?;
                entry.serialize_field("agency", &self.agency)?;
                entry.serialize_field("person_id", &self.person_id)?;
                entry.end()
            }
        }
    }
}

/// The two stored forms of an [`AllowedReader`], as read.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredAllowedReader {
    /// A bare person id: a municipal person.
    Municipal(PersonId),
    /// A person of a named organisation.
    Named { agency: Agency, person_id: PersonId },
}

/// Why a stored allow-list entry is not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllowedReaderError {
    /// A municipal person stored as an object: no build writes that, and it would be written
    /// back as a bare id, changing the stored bytes.
    #[error("municipal_reader_as_object: a municipal person on the allow-list is stored as a bare person id")]
    MunicipalReaderAsObject,
}

impl TryFrom<StoredAllowedReader> for AllowedReader {
    type Error = AllowedReaderError;

    fn try_from(stored: StoredAllowedReader) -> Result<Self, Self::Error> {
        match stored {
            StoredAllowedReader::Municipal(person_id) => Ok(AllowedReader::municipal(person_id)),
            StoredAllowedReader::Named {
                agency: Agency::Municipality,
                ..
            } => Err(AllowedReaderError::MunicipalReaderAsObject),
            StoredAllowedReader::Named {
                agency:
                    agency @ (Agency::Forsakringskassan
                    | Agency::Arbetsformedlingen
                    | Agency::Psychiatry),
                person_id,
            } => Ok(AllowedReader { agency, person_id }),
        }
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
        /// The coach, the team leader and named officers, each with their organisation
        /// (stored entries without one are municipal: see [`AllowedReader`]).
        allowed_readers: Vec<AllowedReader>,
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
    /// The participant's own statement of a benefit they have, recorded by the coach (issue
    /// 12). Not the agency's record: a gate it makes apply opens as unknown ("confirm with
    /// FK") until Försäkringskassan's own record of that benefit exists, which then wins.
    BenefitSelfReported {
        /// The benefit the participant says they have.
        benefit: BenefitKind,
        /// The day they said it.
        said_on: NaiveDate,
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
    /// Admitted to psychiatric inpatient care. Outside psychiatry only its outward sign crosses
    /// (temporarily unavailable, see `domain::entry_view`); the care form only to social
    /// services.
    InpatientAdmitted {
        /// First day of the stay.
        admitted_on: NaiveDate,
        /// Voluntary or compulsory (LPT) care.
        care_form: CareForm,
    },
    /// Discharged from inpatient care: the stay is over and the participant available again.
    InpatientDischarged {
        /// Last day of the stay.
        discharged_on: NaiveDate,
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
