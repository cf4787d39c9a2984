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
use crate::events::{ConsentParty, EventBody};
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
