//! Who may see which recorded event (DOMAIN.md §6; DESIGN.md §7, invariant 7).
//!
//! Secrecy applies between agencies and between municipal committees, so visibility is decided
//! per consent party, not per agency: the IPS unit and social services are both the
//! municipality but need consent to share. A reader always sees their own party's events; another
//! party's only under a secrecy-waiving consent in force on the day of reading for that
//! discloser → recipient and data category; auditors see everything (and are logged like anyone).
//!
//! Everything that crosses a party boundary is the *shared view*: free text (reasons, notes,
//! preferences) never crosses, so psychiatry, FK and försörjningsstöd share only their coarse
//! facts; and for a participant with protected identity, location fields (employer, unit,
//! referrer) are left out too. The read paths in the ledger apply these rules; the rules live
//! here so they are pure and tested like the aggregate.

use chrono::NaiveDate;
use serde_json::Value;

use crate::aggregate::Participant;
use crate::envelope::{Actor, Agency, DataCategory, Role};
use crate::errors::RuleViolation;
use crate::events::{ConsentParty, EventBody};
use crate::gates::GateKind;
use crate::ids::ConsentId;

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
    /// social services (IFO, försörjningsstöd).
    pub fn party(&self) -> Option<ConsentParty> {
        if self.actor.role == Role::Auditor {
            return None;
        }
        Some(match self.agency {
            Agency::Municipality => match self.actor.role {
                Role::CaseOfficer => ConsentParty::SocialServices,
                _ => ConsentParty::IpsUnit,
            },
            Agency::Forsakringskassan => ConsentParty::Forsakringskassan,
            Agency::Arbetsformedlingen => ConsentParty::Arbetsformedlingen,
            Agency::Psychiatry => ConsentParty::Psychiatry,
        })
    }
}

/// The party that discloses an event recorded by `agency`.
pub fn discloser_of(agency: Agency, body: &EventBody) -> ConsentParty {
    match agency {
        Agency::Forsakringskassan => ConsentParty::Forsakringskassan,
        Agency::Arbetsformedlingen => ConsentParty::Arbetsformedlingen,
        Agency::Psychiatry => ConsentParty::Psychiatry,
        Agency::Municipality => match body {
            EventBody::SocialAssistanceDecided { .. }
            | EventBody::ActivityAcceptedInPlanning { .. } => ConsentParty::SocialServices,
            EventBody::EventCorrected { corrected, .. } => discloser_of(agency, corrected),
            _ => ConsentParty::IpsUnit,
        },
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
}

impl Basis {
    /// The access log's text for this basis.
    pub fn log_text(&self) -> String {
        match self {
            Basis::OwnRecords => "own_records".into(),
            Basis::Consent(consent_id) => format!("consent:{}", consent_id.0),
            Basis::PartyToConsent => "party_to_consent".into(),
            Basis::Audit => "audit".into(),
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
    #[error("protected_identity: participant's identity is protected; {person} is not on the allow-list")]
    NotOnAllowList {
        /// The reader.
        person: String,
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
    if agency != Agency::Municipality || !matches!(actor.role, Role::Coach | Role::TeamLeader) {
        return true;
    }
    match body {
        EventBody::PlacedOnWaitingList { unit }
        | EventBody::WaitingListPlaceOffered { unit, .. }
        | EventBody::ParticipantEnrolled { unit, .. }
        | EventBody::ParticipantReEnrolled { unit, .. } => *unit == actor.unit,
        EventBody::EventCorrected { corrected, .. } => names_own_unit(agency, actor, corrected),
        _ => true,
    }
}

impl Participant {
    /// Whether an officer of `agency` acting as `actor` is inside this participant's unit
    /// boundary, for reads and writes alike (DOMAIN.md §6). Only the municipality has units:
    /// coaches and team leaders belong to the participant's IPS unit (named by the waiting
    /// list or enrolment), case officers to its social-services unit (set by the first
    /// accepted case-officer event). While no unit is named yet, any unit may act (a referral
    /// or intake creates the participant; enrolment names the unit). The protected identity's
    /// allow-list admits a named person across units. FK, AF, psychiatry, auditors and the
    /// system have no municipal unit and are never refused here.
    pub fn unit_boundary(&self, agency: Agency, actor: &Actor) -> Result<(), OpenRefused> {
        let participant_unit = match (agency, actor.role) {
            (Agency::Municipality, Role::Coach | Role::TeamLeader) => self.ips_unit(),
            (Agency::Municipality, Role::CaseOfficer) => self.social_services_unit(),
            (Agency::Municipality, Role::Auditor | Role::System)
            | (Agency::Forsakringskassan | Agency::Arbetsformedlingen | Agency::Psychiatry, _) => {
                None
            }
        };
        match participant_unit {
            Some(unit) if *unit != actor.unit => {
                let on_allow_list = self
                    .protected_identity()
                    .is_some_and(|allowed| allowed.contains(&actor.person_id));
                if on_allow_list {
                    Ok(())
                } else {
                    Err(OpenRefused::OtherUnit {
                        unit: actor.unit.0.clone(),
                    })
                }
            }
            _ => Ok(()),
        }
    }

    /// Whether `reader` may open this participant at all: protected identity admits only its
    /// allow-list (and auditors); a municipal officer only within the unit boundary.
    pub fn may_open(&self, reader: &Reader) -> Result<(), OpenRefused> {
        self.unit_boundary(reader.agency, &reader.actor)?;
        match self.protected_identity() {
            Some(allowed) if reader.actor.role != Role::Auditor => {
                if allowed.contains(&reader.actor.person_id) {
                    Ok(())
                } else {
                    Err(OpenRefused::NotOnAllowList {
                        person: reader.actor.person_id.0.clone(),
                    })
                }
            }
            _ => Ok(()),
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
            | RuleViolation::OwnEmployerTrialRuleNotInForce
            | RuleViolation::OwnEmployerTrialNeedsEmploymentAndFullSjukpenning
            | RuleViolation::OwnEmployerTrialLimitReached
            | RuleViolation::StartDiffersFromProposal { .. }
            | RuleViolation::OtherUnit
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

/// Free-text fields: they may carry clinical detail, amounts or reasons, so they never cross a
/// party boundary.
pub const FREE_TEXT_FIELDS: &[&str] = &["reason", "obstacles", "helping_factors", "preferences"];

/// Location fields, left out of every cross-agency view of a participant with protected
/// identity.
pub const LOCATION_FIELDS: &[&str] = &["employer", "unit", "referrer"];

/// The shared (cross-party) view of a stored event body: free text removed, and location
/// removed when the identity is protected. Applies to nested bodies (corrections) as well.
pub fn shared_view(body: &mut Value, protected_identity: bool) {
    if let Value::Object(fields) = body {
        fields.retain(|key, _| {
            let free_text = FREE_TEXT_FIELDS.contains(&key.as_str());
            let location = LOCATION_FIELDS.contains(&key.as_str());
            !(free_text || protected_identity && location)
        });
        for value in fields.values_mut() {
            shared_view(value, protected_identity);
        }
    }
}

/// The view of a body the reader is entitled to, or `None` when the entry is hidden. Own
/// records are shown whole, except that a protected participant's location fields are left
/// out of anything another party wrote.
pub fn view_for(sight: Sight, mut body: Value, protected_identity: bool) -> Option<Value> {
    match sight {
        Sight::Full(_) => Some(body),
        Sight::Shared(_) => {
            shared_view(&mut body, protected_identity);
            Some(body)
        }
        Sight::Hidden => None,
    }
}
