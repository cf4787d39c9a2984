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
use crate::ids::{ConsentId, PersonId, UnitId};

/// The schema version this build writes.
pub const CURRENT_SCHEMA_VERSION: u32 = 1;

/// Longest consent period accepted, in days. A consent is for a concrete piece of work, and a
/// typo in a year should not create a consent for a century.
pub const CONSENT_PERIOD_DAYS_MAX: i64 = 5 * 366;

/// Who referred the participant to IPS (aktualisering).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// What happened. Tagged by `type`, which is also the stored `event_type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventBody {
    /// A referral to IPS was received (aktualisering).
    ParticipantReferred {
        /// Where the referral came from.
        source: ReferralSource,
        /// The referring unit, when known.
        referrer: Option<UnitId>,
    },
    /// The participant was enrolled at an IPS unit with a coach.
    ParticipantEnrolled {
        /// The IPS unit.
        unit: UnitId,
        /// The coach (arbetsspecialist).
        coach: PersonId,
    },
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
}

impl EventBody {
    /// The stored event type (the serde tag).
    pub fn event_type(&self) -> &'static str {
        match self {
            EventBody::ParticipantReferred { .. } => "ParticipantReferred",
            EventBody::ParticipantEnrolled { .. } => "ParticipantEnrolled",
            EventBody::ConsentGranted { .. } => "ConsentGranted",
            EventBody::ConsentWithdrawn { .. } => "ConsentWithdrawn",
        }
    }

    /// Which agencies record this kind of event.
    pub fn recorded_by(&self, agency: Agency) -> bool {
        match self {
            EventBody::ParticipantReferred { .. } | EventBody::ParticipantEnrolled { .. } => {
                agency == Agency::Municipality
            }
            // Any agency may take down a participant's consent to share from it or with it.
            EventBody::ConsentGranted { .. } | EventBody::ConsentWithdrawn { .. } => true,
        }
    }

    /// Field checks that need no history.
    pub fn validate(&self) -> Result<(), InputError> {
        match self {
            EventBody::ParticipantReferred { .. } | EventBody::ParticipantEnrolled { .. } => Ok(()),
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
                    return Err(InputError::new("valid_to", "is more than five years after valid_from"));
                }
                Ok(())
            }
            EventBody::ConsentWithdrawn { discloser, recipient, data_categories, .. } => {
                validate_consent_parties(*discloser, *recipient, data_categories)
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
        return Err(InputError::new("data_categories", "must name at least one category"));
    }
    let mut sorted = data_categories.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != data_categories.len() {
        return Err(InputError::new("data_categories", "must not repeat a category"));
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
        self.body.validate()
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
