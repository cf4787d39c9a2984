//! The common envelope every agency event carries (DESIGN.md §3, DOMAIN.md §7).
//!
//! The envelope is what makes later features possible without a rewrite: `occurred_at` and the
//! ledger's `recorded_at` give replay on both time axes; `data_category` decides consent-scoped
//! visibility; `retention_class` (the record series) decides gallring and which key a
//! crypto-shredded field is encrypted under; `correlation_id` ties a green-light request to its
//! decisions. `recorded_at` is not here: the agency does not know it, the ledger stamps it on the
//! recorded event (see [`crate::events::ParticipantEvent`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::errors::InputError;
use crate::events::CURRENT_SCHEMA_VERSION;
use crate::ids::{CorrelationId, EventId, ParticipantId, PersonId, UnitId};

/// The four controllers (personuppgiftsansvariga) that emit events.
///
/// Two names: the serde name (inside stored envelopes: `forsakringskassan`) and the shorter
/// token (bus subjects, configuration, token claims, read-model columns: `fk`), both derived.
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
pub enum Agency {
    /// The municipality: IPS unit, socialpsykiatri, IFO / försörjningsstöd, AME.
    Municipality,
    /// Försäkringskassan.
    #[strum(serialize = "fk")]
    Forsakringskassan,
    /// Arbetsförmedlingen.
    #[strum(serialize = "af")]
    Arbetsformedlingen,
    /// The region's psychiatry.
    Psychiatry,
}

impl Agency {
    /// Every agency, in a fixed order (for matrices and configuration checks).
    pub const ALL: [Agency; 4] = [
        Agency::Municipality,
        Agency::Forsakringskassan,
        Agency::Arbetsformedlingen,
        Agency::Psychiatry,
    ];

    /// The short, stable token used in bus subjects and configuration.
    pub fn token(self) -> &'static str {
        self.into()
    }

    /// The inverse of [`Agency::token`].
    pub fn from_token(token: &str) -> Option<Agency> {
        token.parse().ok()
    }
}

impl fmt::Display for Agency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.token())
    }
}

/// What the acting person does; decides which commands they may give (issue 5).
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
pub enum Role {
    /// IPS coach (arbetsspecialist).
    Coach,
    /// Team leader or unit manager of an IPS unit.
    TeamLeader,
    /// An agency case officer (handläggare), including the försörjningsstöd officer.
    CaseOfficer,
    /// Internal control, IVO, JO, data protection officer.
    Auditor,
    /// A machine actor (the ledger's own time-driven events, imports).
    System,
}

impl Role {
    /// The stable token used in configuration and request metadata.
    pub fn token(self) -> &'static str {
        self.into()
    }

    /// The inverse of [`Role::token`].
    pub fn from_token(token: &str) -> Option<Role> {
        token.parse().ok()
    }
}

/// Who acted: a pseudonymous person, their role and their unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The person's pseudo-id in their organisation's directory.
    pub person_id: PersonId,
    /// The role they acted in.
    pub role: Role,
    /// The unit they acted for.
    pub unit: UnitId,
}

/// The data category (and so the secrecy class) of an event. Consent is granted per category,
/// so this is what consent-scoped reads filter on.
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
pub enum DataCategory {
    /// Referral, enrolment, waiting list, coach, pause and discharge.
    Participation,
    /// Consents granted and withdrawn.
    Consent,
    /// The vocational profile (kartläggning) and disclosure preference.
    VocationalProfile,
    /// Employer contacts, activities, jobs and studies.
    ActivitiesAndWork,
    /// Försäkringskassan's benefit decisions and periods (never medical details).
    BenefitDecisions,
    /// Arbetsförmedlingen's registrations, programmes and subsidies.
    LabourMarket,
    /// Psychiatry's coarse facts: referral, availability, certificate period, team meetings.
    HealthCoarse,
    /// Försörjningsstöd status (never amounts).
    SocialAssistanceStatus,
    /// Follow-ups with obstacles and helping factors: sensitive free text.
    FollowUpNotes,
}

impl DataCategory {
    /// The stable token used in configuration and on the wire.
    pub fn token(self) -> &'static str {
        self.into()
    }

    /// Every category, in a fixed order.
    pub const ALL: [DataCategory; 9] = [
        DataCategory::Participation,
        DataCategory::Consent,
        DataCategory::VocationalProfile,
        DataCategory::ActivitiesAndWork,
        DataCategory::BenefitDecisions,
        DataCategory::LabourMarket,
        DataCategory::HealthCoarse,
        DataCategory::SocialAssistanceStatus,
        DataCategory::FollowUpNotes,
    ];

    /// The inverse of [`DataCategory::token`].
    pub fn from_token(token: &str) -> Option<DataCategory> {
        token.parse().ok()
    }
}

/// The record series an event belongs to: decides its disposal (gallring) rule and, once
/// crypto-shredding lands, which per participant × agency × series key encrypts its personal
/// fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionClass {
    /// A social-services file: disposed of 5 years after the last entry (with the day-5/15/25
    /// research exception).
    SocialServicesFile,
    /// A state agency case file (FK, AF): kept under that agency's archive rules.
    AgencyCaseFile,
    /// A health-care record (psychiatry's coarse facts).
    HealthCareRecord,
}

impl RetentionClass {
    /// The record series an agency's events belong to.
    pub fn for_agency(agency: Agency) -> RetentionClass {
        match agency {
            Agency::Municipality => RetentionClass::SocialServicesFile,
            Agency::Forsakringskassan | Agency::Arbetsformedlingen => {
                RetentionClass::AgencyCaseFile
            }
            Agency::Psychiatry => RetentionClass::HealthCareRecord,
        }
    }
}

/// The envelope of one event, as the agency submits it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique id of the event; the bus dedupe key and the aggregate's idempotency key.
    pub event_id: EventId,
    /// The participant the event is about (the aggregate id).
    pub participant_id: ParticipantId,
    /// The controller that emitted the event.
    pub agency: Agency,
    /// Who acted.
    pub actor: Actor,
    /// Business time: when it happened in the world. Late entries are normal.
    pub occurred_at: DateTime<Utc>,
    /// The piece of work this belongs to (e.g. a green-light request).
    pub correlation_id: Option<CorrelationId>,
    /// The event that caused this one, if any.
    pub causation_id: Option<EventId>,
    /// Version of the body's schema; old versions stay readable.
    pub schema_version: u32,
    /// Secrecy class and consent scope of the body.
    pub data_category: DataCategory,
    /// Record series: disposal rule and shredding key.
    pub retention_class: RetentionClass,
}

impl Envelope {
    /// Checks what the type system cannot.
    pub fn validate(&self) -> Result<(), InputError> {
        if self.schema_version == 0 || self.schema_version > CURRENT_SCHEMA_VERSION {
            return Err(InputError::new(
                "schema_version",
                "is not a schema version this ledger can read",
            ));
        }
        // The actor comes from a verified token at the edge; an envelope from the bus is held to
        // the same id rules (see `PersonId::check`).
        let in_actor = |error: InputError| InputError {
            field: format!("actor.{}", error.field),
            reason: error.reason,
        };
        self.actor.person_id.check().map_err(in_actor)?;
        self.actor.unit.check().map_err(in_actor)?;
        if self.causation_id == Some(self.event_id) {
            return Err(InputError::new(
                "causation_id",
                "an event cannot cause itself",
            ));
        }
        Ok(())
    }
}
