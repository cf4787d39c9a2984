//! Who may see which recorded event (DOMAIN.md §6; DESIGN.md §7, invariant 7).
//!
//! Secrecy applies between agencies and between municipal committees, so visibility is decided
//! per consent party, not per agency: the IPS unit and social services are both the
//! municipality but need consent to share. A reader always sees their own party's events; another
//! party's only under a secrecy-waiving consent in force on the day of reading for that
//! discloser → recipient and data category; auditors see everything (and are logged like anyone).
//!
//! Everything that crosses a party boundary is the *shared view*, an allow-list built from the
//! field classification ([`crate::classification`]): free text (reasons, notes, preferences,
//! occupations, programmes), the people named and sensitive codes never cross, so psychiatry,
//! FK and försörjningsstöd share only their coarse facts; for a participant with protected
//! identity, location fields (employer, unit, referrer) are left out too; and a field nobody
//! classified is never shown. The read paths in the ledger apply these rules; the rules live
//! here so they are pure and tested like the aggregate.

use chrono::NaiveDate;
use serde_json::Value;

use crate::aggregate::{Participant, SipDeadline};
use crate::envelope::{Actor, Agency, DataCategory, Role};
use crate::errors::RuleViolation;
use crate::events::{ConsentParty, EventBody};
use crate::gates::GateKind;
use crate::ids::{ConsentId, PersonId};
use crate::values::{Availability, CareForm};

/// Someone reading participant data: their organisation and who they are in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reader {
    /// The organisation (from the client certificate and token).
    pub agency: Agency,
    /// Person, role, unit.
    pub actor: Actor,
}

impl Reader {
    /// The consent party the reader acts for; `None` for auditors, who act for no party.
    ///
    /// In the municipality, coaches and team leaders are the IPS unit and case officers are
    /// social services (IFO, försörjningsstöd). A municipal system actor reads as the IPS unit
    /// (the access table lets it read no participant data anyway). Every agency and role is
    /// named, so a new one must be decided here.
    pub fn party(&self) -> Option<ConsentParty> {
        party_of(self.agency, self.actor.role)
    }
}

/// The consent party an officer of `agency` in `role` acts for; `None` for an auditor, who acts
/// for no party. Within the municipality a case officer acts for social services, everyone
/// else for the IPS unit.
pub fn party_of(agency: Agency, role: Role) -> Option<ConsentParty> {
    match (agency, role) {
        (
            Agency::Municipality
            | Agency::Forsakringskassan
            | Agency::Arbetsformedlingen
            | Agency::Psychiatry,
            Role::Auditor,
        ) => None,
        (Agency::Municipality, Role::CaseOfficer) => Some(ConsentParty::SocialServices),
        (Agency::Municipality, Role::Coach | Role::TeamLeader | Role::System) => {
            Some(ConsentParty::IpsUnit)
        }
        (
            Agency::Forsakringskassan,
            Role::Coach | Role::TeamLeader | Role::CaseOfficer | Role::System,
        ) => Some(ConsentParty::Forsakringskassan),
        (
            Agency::Arbetsformedlingen,
            Role::Coach | Role::TeamLeader | Role::CaseOfficer | Role::System,
        ) => Some(ConsentParty::Arbetsformedlingen),
        (Agency::Psychiatry, Role::Coach | Role::TeamLeader | Role::CaseOfficer | Role::System) => {
            Some(ConsentParty::Psychiatry)
        }
    }
}

/// The party that discloses an event recorded by `agency`.
pub fn discloser_of(agency: Agency, body: &EventBody) -> ConsentParty {
    match agency {
        Agency::Forsakringskassan => ConsentParty::Forsakringskassan,
        Agency::Arbetsformedlingen => ConsentParty::Arbetsformedlingen,
        Agency::Psychiatry => ConsentParty::Psychiatry,
        Agency::Municipality => municipal_discloser_of(body),
    }
}

/// Which municipal committee discloses a body the municipality recorded: social services for
/// försörjningsstöd, the IPS unit for everything else. Every event type is named, so a new one
/// must be decided here.
fn municipal_discloser_of(body: &EventBody) -> ConsentParty {
    match body {
        EventBody::SocialAssistanceDecided { .. }
        | EventBody::ActivityAcceptedInPlanning { .. } => ConsentParty::SocialServices,
        EventBody::EventCorrected { corrected, .. } => municipal_discloser_of(corrected),
        // The IPS path: referral, lifecycle, profile, activities, jobs, follow-ups, SIP.
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
        | EventBody::BenefitSelfReported { .. } => ConsentParty::IpsUnit,
        // A consent the municipality records is kept with the IPS unit, where consents are
        // collected; its parties see it through `Basis::PartyToConsent` whichever they are.
        EventBody::ConsentGranted { .. } | EventBody::ConsentWithdrawn { .. } => {
            ConsentParty::IpsUnit
        }
        // Other agencies' event types: the municipality may not record them, and the aggregate
        // rejects them (`agency_may_not_record`). The rejected submission stays in the history,
        // with the IPS unit, as it always has.
        EventBody::BenefitRegistered { .. }
        | EventBody::BenefitEnded { .. }
        | EventBody::MedicalCertificateReceived { .. }
        | EventBody::AvstamningsmoteHeld { .. }
        | EventBody::RehabPlanEstablished { .. }
        | EventBody::RehabPlanRevised { .. }
        | EventBody::ActivityDecision { .. }
        | EventBody::ActivityAgreementMade { .. }
        | EventBody::DormantBenefitDecided { .. }
        | EventBody::JobSeekerRegistered { .. }
        | EventBody::JobSeekerDeregistered { .. }
        | EventBody::DisabilityCodingRequested { .. }
        | EventBody::DisabilityCodingRegistered { .. }
        | EventBody::ProgrammeAssigned { .. }
        | EventBody::ProgrammeEnded { .. }
        | EventBody::SiusDecided { .. }
        | EventBody::SiusEnded { .. }
        | EventBody::SubsidyDecided { .. }
        | EventBody::IpsReferralSent { .. }
        | EventBody::TreatmentTeamMeetingHeld { .. }
        | EventBody::MedicalCertificateIssued { .. }
        | EventBody::AvailabilityChanged { .. }
        | EventBody::InpatientAdmitted { .. }
        | EventBody::InpatientDischarged { .. }
        | EventBody::DischargeReady { .. } => ConsentParty::IpsUnit,
    }
}

/// The inpatient fact a body records, looking through corrections: the admission or the
/// discharge whose visibility is decided apart from the consent rule alone.
pub fn inpatient_fact(body: &EventBody) -> Option<&EventBody> {
    match body {
        EventBody::InpatientAdmitted { .. } | EventBody::InpatientDischarged { .. } => Some(body),
        EventBody::EventCorrected { corrected, .. } => inpatient_fact(corrected),
        _ => None,
    }
}

/// Whether a body is psychiatry's discharge-ready notice (utskrivningsklar), looking through
/// corrections: only an inpatient stay ends in one, so it tells of the stay.
fn is_discharge_notice(body: &EventBody) -> bool {
    match body {
        EventBody::DischargeReady { .. } => true,
        EventBody::EventCorrected { corrected, .. } => is_discharge_notice(corrected),
        _ => false,
    }
}

/// The stored event types a reader may be shown as `event_type` (an inpatient stay is shown to
/// the IPS unit as `AvailabilityChanged`): a read filtering on a type must fetch these too and
/// then keep what is shown as the type asked for, so a filter cannot tell the two apart.
pub fn stored_types_shown_as(event_type: &str) -> &'static [&'static str] {
    match event_type {
        "AvailabilityChanged" => &["InpatientAdmitted", "InpatientDischarged"],
        _ => &[],
    }
}

/// The party that decides a gate of `deciding_agency` (FK and AF decide; social services
/// accept activities into the plan).
pub fn deciding_party(deciding_agency: Agency) -> ConsentParty {
    match deciding_agency {
        Agency::Forsakringskassan => ConsentParty::Forsakringskassan,
        Agency::Arbetsformedlingen => ConsentParty::Arbetsformedlingen,
        Agency::Psychiatry => ConsentParty::Psychiatry,
        Agency::Municipality => ConsentParty::SocialServices,
    }
}

/// Why a reader may see something; recorded in the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// The reader's own party recorded it.
    OwnRecords,
    /// A secrecy-waiving consent in force.
    Consent(ConsentId),
    /// The reader is a party to this consent event.
    PartyToConsent,
    /// An auditor's read.
    Audit,
    /// Social services reading a compulsory admission without consent: the LPT necessary-care
    /// rule lets psychiatry disclose compulsory care to social services.
    NecessaryCare,
}

impl Basis {
    /// The access log's text for this basis.
    pub fn log_text(&self) -> String {
        match self {
            Basis::OwnRecords => "own_records".into(),
            Basis::Consent(consent_id) => format!("consent:{}", consent_id.0),
            Basis::PartyToConsent => "party_to_consent".into(),
            Basis::Audit => "audit".into(),
            Basis::NecessaryCare => "lpt_necessary_care".into(),
        }
    }
}

/// What a reader gets of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sight {
    /// Everything: the reader's own records, or an auditor.
    Full(Basis),
    /// The shared view (see [`shared_view`]): another party's event under consent.
    Shared(Basis),
    /// Nothing: the entry is left out.
    Hidden,
}

/// Why a participant may not be opened at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenRefused {
    /// Protected identity and the reader is not on the allow-list.
    #[error(
        "protected_identity: participant's identity is protected; {person} of {organisation} is not on the allow-list"
    )]
    NotOnAllowList {
        /// The reader.
        person: String,
        /// The reader's organisation (agency token): a person id is one only within it.
        organisation: &'static str,
    },
    /// A municipal officer of another unit than the participant's (see
    /// [`Participant::unit_boundary`]).
    #[error("other_unit: the participant belongs to another unit than {unit}")]
    OtherUnit {
        /// The reader's unit.
        unit: String,
    },
}

impl OpenRefused {
    /// The rule's stable name.
    pub fn rule(&self) -> &'static str {
        match self {
            OpenRefused::NotOnAllowList { .. } => "protected_identity",
            OpenRefused::OtherUnit { .. } => "other_unit",
        }
    }
}

/// Whether a write names only the actor's own unit: a municipal coach or team leader places,
/// offers a place to, enrols and re-enrols participants in their own IPS unit only, and a
/// correction may not move one elsewhere. Without it, the unit boundary could be stepped over
/// by naming another unit while the participant is in none (or, through a correction, in one).
pub fn names_own_unit(agency: Agency, actor: &Actor, body: &EventBody) -> bool {
    match (agency, actor.role) {
        (Agency::Municipality, Role::Coach | Role::TeamLeader) => body_names_unit(body, actor),
        // Only the IPS unit places and enrols; case officers, auditors, the system and the
        // other agencies name no IPS unit of their own (the aggregate refuses what they may
        // not record).
        (Agency::Municipality, Role::CaseOfficer | Role::Auditor | Role::System)
        | (
            Agency::Forsakringskassan | Agency::Arbetsformedlingen | Agency::Psychiatry,
            Role::Coach | Role::TeamLeader | Role::CaseOfficer | Role::Auditor | Role::System,
        ) => true,
    }
}

/// Whether every unit `body` names is `actor`'s. Every event type is named, so a new one that
/// names a unit must be decided here.
fn body_names_unit(body: &EventBody, actor: &Actor) -> bool {
    match body {
        EventBody::PlacedOnWaitingList { unit }
        | EventBody::WaitingListPlaceOffered { unit, .. }
        | EventBody::ParticipantEnrolled { unit, .. }
        | EventBody::ParticipantReEnrolled { unit, .. } => *unit == actor.unit,
        EventBody::EventCorrected { corrected, .. } => body_names_unit(corrected, actor),
        // Names no IPS unit (a referrer is the referring unit, not where the participant goes;
        // the referral itself puts a coach's referral in the coach's unit).
        EventBody::ParticipantReferred { .. }
        | EventBody::ReferralDeclined { .. }
        | EventBody::CoachAssigned { .. }
        | EventBody::ParticipantPaused { .. }
        | EventBody::ParticipantResumed
        | EventBody::ParticipantDischarged { .. }
        | EventBody::IdentityProtected { .. }
        | EventBody::ConsentGranted { .. }
        | EventBody::ConsentWithdrawn { .. }
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
        | EventBody::BenefitSelfReported { .. }
        | EventBody::SocialAssistanceDecided { .. }
        | EventBody::ActivityAcceptedInPlanning { .. }
        | EventBody::BenefitRegistered { .. }
        | EventBody::BenefitEnded { .. }
        | EventBody::MedicalCertificateReceived { .. }
        | EventBody::AvstamningsmoteHeld { .. }
        | EventBody::RehabPlanEstablished { .. }
        | EventBody::RehabPlanRevised { .. }
        | EventBody::ActivityDecision { .. }
        | EventBody::ActivityAgreementMade { .. }
        | EventBody::DormantBenefitDecided { .. }
        | EventBody::JobSeekerRegistered { .. }
        | EventBody::JobSeekerDeregistered { .. }
        | EventBody::DisabilityCodingRequested { .. }
        | EventBody::DisabilityCodingRegistered { .. }
        | EventBody::ProgrammeAssigned { .. }
        | EventBody::ProgrammeEnded { .. }
        | EventBody::SiusDecided { .. }
        | EventBody::SiusEnded { .. }
        | EventBody::SubsidyDecided { .. }
        | EventBody::IpsReferralSent { .. }
        | EventBody::TreatmentTeamMeetingHeld { .. }
        | EventBody::MedicalCertificateIssued { .. }
        | EventBody::AvailabilityChanged { .. }
        | EventBody::InpatientAdmitted { .. }
        | EventBody::InpatientDischarged { .. }
        | EventBody::DischargeReady { .. } => true,
    }
}

impl Participant {
    /// Whether an officer of `agency` acting as `actor` is inside this participant's unit
    /// boundary, for reads and writes alike (DOMAIN.md §6). Only the municipality has units:
    /// coaches and team leaders belong to the participant's IPS unit (named by the waiting
    /// list or enrolment), case officers to its social-services unit (set by the first
    /// accepted case-officer event). While no unit is named yet, any unit may act (a referral
    /// or intake creates the participant; enrolment names the unit). The protected identity's
    /// allow-list admits a municipal person it names across units. FK, AF, psychiatry, auditors and the
    /// system have no municipal unit and are never refused here.
    pub fn unit_boundary(&self, agency: Agency, actor: &Actor) -> Result<(), OpenRefused> {
        let participant_unit = match (agency, actor.role) {
            (Agency::Municipality, Role::Coach | Role::TeamLeader) => self.ips_unit(),
            (Agency::Municipality, Role::CaseOfficer) => self.social_services_unit(),
            (Agency::Municipality, Role::Auditor | Role::System)
            | (
                Agency::Forsakringskassan | Agency::Arbetsformedlingen | Agency::Psychiatry,
                Role::Coach | Role::TeamLeader | Role::CaseOfficer | Role::Auditor | Role::System,
            ) => None,
        };
        let Some(unit) = participant_unit else {
            // No unit named yet, or an actor outside the municipality's units: no boundary.
            return Ok(());
        };
        if *unit == actor.unit {
            return Ok(());
        }
        if self.on_allow_list(agency, &actor.person_id) {
            Ok(())
        } else {
            Err(OpenRefused::OtherUnit {
                unit: actor.unit.0.clone(),
            })
        }
    }

    /// Whether the protected identity's allow-list names `person_id` *of `agency`*: a person
    /// id comes from its organisation's own identity provider, so the same id in another
    /// organisation is another person and is not on the list.
    fn on_allow_list(&self, agency: Agency, person_id: &PersonId) -> bool {
        self.allow_list()
            .is_some_and(|allowed| allowed.iter().any(|entry| entry.is(agency, person_id)))
    }

    /// Whether `reader` may open this participant at all: protected identity admits only its
    /// allow-list (and auditors); a municipal officer only within the unit boundary.
    pub fn may_open(&self, reader: &Reader) -> Result<(), OpenRefused> {
        self.unit_boundary(reader.agency, &reader.actor)?;
        if self.allow_list().is_none() {
            return Ok(());
        }
        match reader.actor.role {
            Role::Auditor => Ok(()),
            Role::Coach | Role::TeamLeader | Role::CaseOfficer | Role::System => {
                if self.on_allow_list(reader.agency, &reader.actor.person_id) {
                    Ok(())
                } else {
                    Err(OpenRefused::NotOnAllowList {
                        person: reader.actor.person_id.0.clone(),
                        organisation: reader.agency.token(),
                    })
                }
            }
        }
    }

    /// What `reader` sees, on `on`, of an event `agency` recorded with this body and category.
    pub fn sight(
        &self,
        reader: &Reader,
        agency: Agency,
        body: &EventBody,
        category: DataCategory,
        on: NaiveDate,
    ) -> Sight {
        let Some(reader_party) = reader.party() else {
            return Sight::Full(Basis::Audit);
        };
        let discloser = discloser_of(agency, body);
        if discloser == reader_party {
            return Sight::Full(Basis::OwnRecords);
        }
        // A discharge-ready notice means an inpatient stay: never to FK or AF, consent or not
        // (issue 12), like the stay itself. The IPS unit and social services see it under
        // consent (the SIP it owes is theirs to hold).
        if is_discharge_notice(body) {
            match reader_party {
                ConsentParty::Forsakringskassan | ConsentParty::Arbetsformedlingen => {
                    return Sight::Hidden
                }
                ConsentParty::IpsUnit | ConsentParty::SocialServices | ConsentParty::Psychiatry => {
                }
            }
        }
        if let Some(stay_fact) = inpatient_fact(body) {
            match (reader_party, stay_fact) {
                // Never to FK or AF, consent or not: the stay (and with it the care form) is
                // not theirs to know; what they may learn is the availability gate's neutral
                // line, the same for every care form.
                (ConsentParty::Forsakringskassan | ConsentParty::Arbetsformedlingen, _) => {
                    return Sight::Hidden
                }
                (
                    ConsentParty::SocialServices,
                    EventBody::InpatientAdmitted {
                        care_form: CareForm::Compulsory,
                        ..
                    },
                ) => {
                    return match self.consent_in_force_id(discloser, reader_party, category, on) {
                        Some(consent_id) => Sight::Shared(Basis::Consent(consent_id)),
                        None => Sight::Shared(Basis::NecessaryCare),
                    }
                }
                // The IPS unit under consent (shown only as availability, see
                // `entry_view`), social services under consent for a voluntary stay.
                (
                    ConsentParty::SocialServices | ConsentParty::IpsUnit | ConsentParty::Psychiatry,
                    _,
                ) => {}
            }
        }
        if let EventBody::ConsentGranted {
            discloser,
            recipient,
            ..
        }
        | EventBody::ConsentWithdrawn {
            discloser,
            recipient,
            ..
        } = body
        {
            if *discloser == reader_party || *recipient == reader_party {
                return Sight::Shared(Basis::PartyToConsent);
            }
        }
        match self.consent_in_force_id(discloser, reader_party, category, on) {
            Some(consent_id) => Sight::Shared(Basis::Consent(consent_id)),
            None => Sight::Hidden,
        }
    }

    /// The SIP owed after psychiatry's discharge-ready notice as `reader` may see it on `on`,
    /// with the basis it is shown under; `None` when nothing is owed or the reader may not see
    /// it. The SIP is held by the municipality and the region, so only the IPS unit's and
    /// social services' lists carry it, each under the same decision as the notice itself
    /// (`sight`, psychiatry → reader's party for coarse health data). FK, AF and psychiatry's
    /// own officers never get it from a list, consent or not: a discharge-ready notice means an
    /// inpatient stay, which FK and AF may not learn even as a count. Every party is named, so
    /// a new one must be decided here.
    pub fn sip_shown_to(&self, reader: &Reader, on: NaiveDate) -> Option<(SipDeadline, Basis)> {
        let deadline = self.sip_deadline()?;
        match reader.party() {
            Some(ConsentParty::IpsUnit | ConsentParty::SocialServices) | None => {}
            Some(
                ConsentParty::Forsakringskassan
                | ConsentParty::Arbetsformedlingen
                | ConsentParty::Psychiatry,
            ) => return None,
        }
        let notice = EventBody::DischargeReady {
            ready_on: deadline.ready_on,
        };
        match self.sight(
            reader,
            Agency::Psychiatry,
            &notice,
            notice.data_category(Agency::Psychiatry),
            on,
        ) {
            Sight::Full(basis) | Sight::Shared(basis) => Some((deadline, basis)),
            Sight::Hidden => None,
        }
    }

    /// Whether `party` may see, on `on`, the IPS unit's activity requests (the gate requests
    /// addressed to it): they are the IPS unit's activities, so another party needs consent
    /// IPS unit → party for activities and work. `Err` is guidance naming the missing consent.
    pub fn requests_visible_to(&self, party: ConsentParty, on: NaiveDate) -> Result<Basis, String> {
        if party == ConsentParty::IpsUnit {
            return Ok(Basis::OwnRecords);
        }
        self.consent_in_force_id(
            ConsentParty::IpsUnit,
            party,
            DataCategory::ActivitiesAndWork,
            on,
        )
        .map(Basis::Consent)
        .ok_or_else(|| {
            format!(
                "{} cannot see this request: no consent in force for ips_unit → {} (activities_and_work); ask the participant for it",
                party.token(),
                party.token()
            )
        })
    }

    /// What `reader` sees, on `on`, of the gates `deciding_agency` decides: `Ok(basis)` or
    /// `Err(guidance)` naming the consent that is missing.
    pub fn gate_sight(
        &self,
        reader: &Reader,
        deciding_agency: Agency,
        on: NaiveDate,
    ) -> Result<Basis, String> {
        let Some(reader_party) = reader.party() else {
            return Ok(Basis::Audit);
        };
        let decider = deciding_party(deciding_agency);
        if decider == reader_party {
            return Ok(Basis::OwnRecords);
        }
        let category = gate_category(deciding_agency);
        self.consent_in_force_id(decider, reader_party, category, on)
            .map(Basis::Consent)
            .ok_or_else(|| {
                format!(
                    "no consent in force for {} → {} ({}); ask the participant for a secrecy-waiving consent, or ask {} directly",
                    decider.token(),
                    reader_party.token(),
                    category.token(),
                    deciding_agency.token()
                )
            })
    }
}

/// The agencies that decide green-light gates, in the order their hidden lines are shown.
pub const GATE_DECIDING_AGENCIES: [Agency; 4] = [
    Agency::Forsakringskassan,
    Agency::Arbetsformedlingen,
    Agency::Psychiatry,
    Agency::Municipality,
];

impl Participant {
    /// The deciding agencies whose gates `reader` may not see on `on`, each with guidance that
    /// names every consent needed, both directions: decider → reader's party so the reader
    /// sees the gate, and IPS unit → decider so the decider sees the request.
    ///
    /// A read path shows one neutral line per agency returned here, whether or not that agency
    /// holds anything about the participant or decides any gate of the activity: which gates
    /// apply is itself the agency's information (an FK agreement means aktivitetsersättning,
    /// a psychiatry gate means the participant is unavailable), so its absence must not show.
    pub fn hidden_gate_agencies(&self, reader: &Reader, on: NaiveDate) -> Vec<(Agency, String)> {
        GATE_DECIDING_AGENCIES
            .into_iter()
            .filter_map(|agency| {
                let missing_for_reader = self.gate_sight(reader, agency, on).err()?;
                let decider = deciding_party(agency);
                let guidance = match self.requests_visible_to(decider, on) {
                    Ok(_) => format!(
                        "{}: not known without consent; {missing_for_reader}",
                        decider.token()
                    ),
                    Err(missing_for_decider) => format!(
                        "{}: not known without consent; {missing_for_reader}; and {missing_for_decider}",
                        decider.token()
                    ),
                };
                Some((agency, guidance))
            })
            .collect()
    }

    /// A refusal's explanation as `reader` may read it on `on`: a rule whose text names
    /// another party's facts names only what the reader may see of them. Every rule is listed,
    /// so a new one must be decided here.
    pub fn refusal_explained_to(
        &self,
        rule: &RuleViolation,
        reader: &Reader,
        on: NaiveDate,
    ) -> String {
        match rule {
            RuleViolation::GateNotGreen { missing_gates } => {
                let hidden = self.hidden_gate_agencies(reader, on);
                let is_hidden = |token: &str| {
                    GateKind::from_token(token).is_none_or(|gate| {
                        hidden
                            .iter()
                            .any(|(agency, _)| *agency == gate.deciding_agency())
                    })
                };
                let visible: Vec<&str> = missing_gates
                    .iter()
                    .map(String::as_str)
                    .filter(|token| !is_hidden(token))
                    .collect();
                // Said whenever some agency is hidden from the reader, whether or not one of
                // its gates is missing, so the text does not tell which.
                let hidden_clause = (!hidden.is_empty()).then(|| {
                    format!(
                        "gates of {} are not shown without consent and may be missing too",
                        hidden
                            .iter()
                            .map(|(agency, _)| deciding_party(*agency).token())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
                match (visible.is_empty(), hidden_clause) {
                    (false, Some(clause)) => {
                        format!(
                            "gate_not_green: waiting for {}; {clause}",
                            visible.join(", ")
                        )
                    }
                    (false, None) => format!("gate_not_green: waiting for {}", visible.join(", ")),
                    (true, Some(clause)) => {
                        format!("gate_not_green: waiting for a decision; {clause}")
                    }
                    (true, None) => "gate_not_green: waiting for a decision".to_owned(),
                }
            }
            RuleViolation::ParticipantNotReferred
            | RuleViolation::ParticipantAlreadyReferred
            | RuleViolation::EnrolmentNeedsReferral
            | RuleViolation::ParticipantAlreadyEnrolled
            | RuleViolation::ConsentIdAlreadyUsed
            | RuleViolation::ConsentNotInForce
            | RuleViolation::ParticipantDischarged
            | RuleViolation::ReferralNotPending
            | RuleViolation::NotOnWaitingList
            | RuleViolation::AlreadyOnWaitingList
            | RuleViolation::ParticipantNotEnrolled
            | RuleViolation::ParticipantPaused
            | RuleViolation::ParticipantAlreadyPaused
            | RuleViolation::ParticipantNotPaused
            | RuleViolation::ParticipantNotDischarged
            | RuleViolation::CoachAlreadyAssigned
            | RuleViolation::ActivityIdAlreadyUsed
            | RuleViolation::UnknownActivity
            | RuleViolation::WrongActivityKind { .. }
            | RuleViolation::ActivityNotStarted
            | RuleViolation::ActivityAlreadyStarted
            | RuleViolation::ActivityAlreadyEnded
            | RuleViolation::EndBeforeStart
            | RuleViolation::UnknownBenefit
            | RuleViolation::NoRehabilitationPlan
            | RuleViolation::JobSeekerNotRegistered
            | RuleViolation::ProgrammeIdAlreadyUsed
            | RuleViolation::UnknownProgramme
            | RuleViolation::SiusNotActive
            | RuleViolation::UnknownCorrectedEvent
            | RuleViolation::CorrectionByAnotherAgency
            | RuleViolation::CorrectionByAnotherParty
            | RuleViolation::OwnEmployerTrialRuleNotInForce
            | RuleViolation::OwnEmployerTrialNeedsEmploymentAndFullSjukpenning
            | RuleViolation::OwnEmployerTrialLimitReached
            | RuleViolation::StartDiffersFromProposal { .. }
            | RuleViolation::OtherUnit
            | RuleViolation::NoInpatientStay
            | RuleViolation::CorrectionChangesType
            | RuleViolation::InvalidInput { .. }
            | RuleViolation::AgencyMayNotRecord { .. } => rule.to_string(),
        }
    }
}

/// The data category of a gate decision by `deciding_agency`.
pub fn gate_category(deciding_agency: Agency) -> DataCategory {
    match deciding_agency {
        Agency::Forsakringskassan => DataCategory::BenefitDecisions,
        Agency::Arbetsformedlingen => DataCategory::LabourMarket,
        Agency::Psychiatry => DataCategory::HealthCoarse,
        Agency::Municipality => DataCategory::SocialAssistanceStatus,
    }
}

/// The shared (cross-party) view of a stored event body: an allow-list built from
/// [`crate::classification`]. Only the `type` tag and the fields classified as shared cross;
/// location crosses unless the identity is protected; free text, identifying and sensitive
/// fields never do; a field, or an event type, the classification does not know is left out.
/// Applies to nested bodies (corrections) and nested structs (periods) as well.
pub fn shared_view(body: &mut Value, protected_identity: bool) {
    *body = crate::classification::shared_body(body, protected_identity);
}

/// The view of a body the reader is entitled to, or `None` when the entry is hidden. Own
/// records (and an auditor's read) are shown whole; anything another party wrote is the
/// [`shared_view`].
pub fn view_for(sight: Sight, body: Value, protected_identity: bool) -> Option<Value> {
    view_for_party(sight, body, protected_identity, None)
}

/// [`view_for`] for a reader of `recipient`, who may receive a field meant for that party
/// only (the compulsory-care flag, to social services).
pub fn view_for_party(
    sight: Sight,
    body: Value,
    protected_identity: bool,
    recipient: Option<ConsentParty>,
) -> Option<Value> {
    match sight {
        Sight::Full(_) => Some(body),
        Sight::Shared(_) => Some(crate::classification::shared_body_to(
            &body,
            protected_identity,
            recipient,
        )),
        Sight::Hidden => None,
    }
}

/// What an inpatient fact is to a party that may know only the participant's availability
/// (the IPS unit under consent): the `AvailabilityChanged` it amounts to, with nothing that
/// tells an admission from any other unavailability. A correction is shown as a correction of
/// that availability. `None` for a body that records no inpatient fact.
pub fn availability_view(body: &EventBody) -> Option<EventBody> {
    match body {
        EventBody::InpatientAdmitted { admitted_on, .. } => Some(EventBody::AvailabilityChanged {
            availability: Availability::TemporarilyUnavailable,
            from: *admitted_on,
        }),
        EventBody::InpatientDischarged { discharged_on } => Some(EventBody::AvailabilityChanged {
            availability: Availability::Available,
            from: *discharged_on,
        }),
        EventBody::EventCorrected {
            supersedes,
            reason,
            corrected,
        } => Some(EventBody::EventCorrected {
            supersedes: *supersedes,
            reason: reason.clone(),
            corrected: Box::new(availability_view(corrected)?),
        }),
        _ => None,
    }
}
