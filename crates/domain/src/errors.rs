//! The named rules a submission can break, and the input checks shared by services and ledger.
//!
//! Three kinds of "no", kept apart because callers treat them differently:
//! - [`InputError`]: the request itself is malformed (a service answers `INVALID_ARGUMENT`
//!   naming the field, and never publishes it).
//! - [`RuleViolation`]: well-formed, but the participant's recorded situation forbids it (the
//!   ledger records a rejection in the participant's history; the service answers
//!   `FAILED_PRECONDITION` naming the rule).
//! - [`ParticipantError`]: the ledger cannot record anything at all for this submission (it is
//!   parked and reported, never silently dropped).

use serde::{Deserialize, Serialize};

/// A malformed field. `field` is the request's field name, so the caller can fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("field `{field}` {reason}")]
pub struct InputError {
    /// The offending field, as named in the request.
    pub field: String,
    /// What is wrong with it, phrased to follow the field name.
    pub reason: String,
}

impl InputError {
    /// Builds an input error for `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// A cross-agency rule the participant's recorded situation does not allow. Stored inside the
/// recorded rejection, so the variant names are part of the stored schema: add, never rename.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum RuleViolation {
    /// The submission failed the same input checks a service runs (defence in depth: the bus
    /// may carry anything).
    #[error("invalid_input: field `{field}` {reason}")]
    InvalidInput {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// This agency does not record this kind of event.
    #[error("agency_may_not_record: {agency} does not record {event_type}")]
    AgencyMayNotRecord {
        /// The emitting agency's token.
        agency: String,
        /// The event type it tried to record.
        event_type: String,
    },
    /// Every event except a referral needs a participant who has been referred.
    #[error("participant_not_referred: the participant has no referral")]
    ParticipantNotReferred,
    /// A referral for someone already referred or enrolled.
    #[error("participant_already_referred: the participant is already referred")]
    ParticipantAlreadyReferred,
    /// Enrolment needs a referral first.
    #[error("enrolment_needs_referral: a participant must be referred before enrolment")]
    EnrolmentNeedsReferral,
    /// Enrolment of someone already enrolled.
    #[error("participant_already_enrolled: the participant is already enrolled")]
    ParticipantAlreadyEnrolled,
    /// A consent id that is already in use for this participant.
    #[error("consent_id_already_used: the consent id is already used")]
    ConsentIdAlreadyUsed,
    /// Withdrawal of a consent that is not in force for that discloser, recipient and category.
    #[error("consent_not_in_force: no consent in force covers this withdrawal")]
    ConsentNotInForce,
}

impl RuleViolation {
    /// The rule's stable name, as sent to callers (`FAILED_PRECONDITION` details).
    pub fn name(&self) -> &'static str {
        match self {
            RuleViolation::InvalidInput { .. } => "invalid_input",
            RuleViolation::AgencyMayNotRecord { .. } => "agency_may_not_record",
            RuleViolation::ParticipantNotReferred => "participant_not_referred",
            RuleViolation::ParticipantAlreadyReferred => "participant_already_referred",
            RuleViolation::EnrolmentNeedsReferral => "enrolment_needs_referral",
            RuleViolation::ParticipantAlreadyEnrolled => "participant_already_enrolled",
            RuleViolation::ConsentIdAlreadyUsed => "consent_id_already_used",
            RuleViolation::ConsentNotInForce => "consent_not_in_force",
        }
    }
}

impl From<InputError> for RuleViolation {
    fn from(error: InputError) -> Self {
        RuleViolation::InvalidInput { field: error.field, reason: error.reason }
    }
}

/// Nothing can be recorded for this submission; the ledger parks it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParticipantError {
    /// The participant's history reached its length limit (postgres-es stores the sequence as a
    /// 32-bit integer, so a limit well below 2^31 is enforced here).
    #[error("participant_stream_full: the participant already has {events_max} events")]
    ParticipantStreamFull {
        /// The configured maximum.
        events_max: u64,
    },
    /// The submission names another participant than the aggregate it was routed to.
    #[error("participant_mismatch: the submission is for another participant")]
    ParticipantMismatch,
}
