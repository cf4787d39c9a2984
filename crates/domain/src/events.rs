//! Event bodies (past tense), the submission an agency publishes, and the recorded event the
//! ledger stores with its place in the participant's hash chain.
//!
//! The serialised form of [`ParticipantEvent`] *is* the stored payload, so everything here is
//! part of the stored schema: fields are added with defaults, never renamed, and
//! `schema_version` says which shape a stored event has. The hash covers the stored JSON, not
//! these Rust types, so a chain written by an older version still verifies.
//!
//! This file keeps what the ledger stores and the bus carries (the submission, the outcome and
//! the recorded event); the bodies themselves are in `bodies`, what each body is to the rest of
//! the system (type name, recording agency, data category) in `catalogue`, and the input checks
//! in `validation`. They are re-exported here, so `domain::events::EventBody` keeps its path.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::chain;
use crate::envelope::Envelope;
use crate::errors::RuleViolation;

mod bodies;
mod catalogue;
mod validation;

pub use bodies::{AllowedReader, AllowedReaderError, ConsentParty, EventBody, ReferralSource};
pub use validation::{ALLOWED_READERS_MAX, CONSENT_PERIOD_DAYS_MAX};

/// The schema version this build writes.
pub const CURRENT_SCHEMA_VERSION: u32 = 1;

/// What an agency service publishes on the bus: the envelope and the body, not yet recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// The common envelope.
    pub envelope: Envelope,
    /// What happened.
    pub body: EventBody,
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
        if let Ok(content) = crate::canonical::to_canonical_json_without(&event, Some("hash")) {
            event.hash = chain::link_hash(&event.prev_hash, &content);
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
            Outcome::Rejected { .. } => REJECTED_EVENT_TYPE,
        }
    }
}

/// The stored `event_type` of a recorded rejection.
pub const REJECTED_EVENT_TYPE: &str = "SubmissionRejected";

impl DomainEvent for ParticipantEvent {
    fn event_type(&self) -> String {
        self.stored_event_type().to_owned()
    }

    fn event_version(&self) -> String {
        self.envelope.schema_version.to_string()
    }
}
