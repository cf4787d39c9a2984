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
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A cross-agency rule the participant's recorded situation does not allow. Stored inside the
/// recorded rejection, so the variant names are part of the stored schema: add, never rename.
#[derive(
    Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize, strum::IntoStaticStr,
)]
#[serde(tag = "rule", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
    /// A discharged participant accepts nothing but re-enrolment (and consent withdrawals).
    #[error("participant_discharged: only re-enrolment is possible for a discharged participant")]
    ParticipantDischarged,
    /// Declining a referral that is not pending.
    #[error("referral_not_pending: there is no pending referral to decline")]
    ReferralNotPending,
    /// Offering a place to someone who is not waiting.
    #[error("not_on_waiting_list: the participant is not on the waiting list")]
    NotOnWaitingList,
    /// Already waiting for a place.
    #[error("already_on_waiting_list: the participant is already on the waiting list")]
    AlreadyOnWaitingList,
    /// The step needs an enrolled participant.
    #[error("participant_not_enrolled: the participant is not enrolled")]
    ParticipantNotEnrolled,
    /// The step needs active support, and support is paused.
    #[error("participant_paused: support is paused; resume it first")]
    ParticipantPaused,
    /// Pausing paused support.
    #[error("participant_already_paused: support is already paused")]
    ParticipantAlreadyPaused,
    /// Resuming support that is not paused.
    #[error("participant_not_paused: support is not paused")]
    ParticipantNotPaused,
    /// Re-enrolling someone who was not discharged.
    #[error("participant_not_discharged: only a discharged participant can be re-enrolled")]
    ParticipantNotDischarged,
    /// Assigning the coach the participant already has.
    #[error("coach_already_assigned: this coach is already assigned")]
    CoachAlreadyAssigned,
    /// An activity id that is already used for this participant.
    #[error("activity_id_already_used: the activity id is already used")]
    ActivityIdAlreadyUsed,
    /// A step that refers to an activity that was never proposed.
    #[error("unknown_activity: no such activity was proposed")]
    UnknownActivity,
    /// A step for another kind of activity (e.g. JobStarted for a work trial).
    #[error("wrong_activity_kind: the activity is a {actual}, not a {expected}")]
    WrongActivityKind {
        /// What the step needs.
        expected: String,
        /// What the activity is.
        actual: String,
    },
    /// Ending, or changing, an activity that has not started.
    #[error("activity_not_started: the activity has not started")]
    ActivityNotStarted,
    /// Starting an activity twice.
    #[error("activity_already_started: the activity has already started")]
    ActivityAlreadyStarted,
    /// A step on an activity that has ended.
    #[error("activity_already_ended: the activity has already ended")]
    ActivityAlreadyEnded,
    /// An end (or change) dated before the start.
    #[error("end_before_start: the date is before the start")]
    EndBeforeStart,
    /// Ending a benefit that is not registered.
    #[error("unknown_benefit: no such benefit is registered")]
    UnknownBenefit,
    /// Revising a rehabilitation plan that does not exist.
    #[error("no_rehabilitation_plan: no rehabilitation plan has been established")]
    NoRehabilitationPlan,
    /// An AF step that needs a registered job seeker.
    #[error("job_seeker_not_registered: the participant is not registered as a job seeker")]
    JobSeekerNotRegistered,
    /// A programme id that is already used.
    #[error("programme_id_already_used: the programme id is already used")]
    ProgrammeIdAlreadyUsed,
    /// Ending a programme that was never assigned, or has ended.
    #[error("unknown_programme: no such running programme")]
    UnknownProgramme,
    /// Ending SIUS that is not running.
    #[error("sius_not_active: SIUS is not running")]
    SiusNotActive,
    /// Correcting an event that is not in this participant's accepted history.
    #[error(
        "unknown_corrected_event: the corrected event is not an accepted event of this participant"
    )]
    UnknownCorrectedEvent,
    /// Correcting another agency's event.
    #[error("correction_by_another_agency: only the agency that recorded an event may correct it")]
    CorrectionByAnotherAgency,
    /// Correcting an event another party of the same agency recorded: within the municipality
    /// the IPS unit and social services are separate parties, and a coach may not rewrite a
    /// social-services decision (nor a case officer an enrolment) through a correction.
    #[error(
        "correction_by_another_party: only the party that recorded an event (the IPS unit or social services) may correct it"
    )]
    CorrectionByAnotherParty,
    /// An arbetsprövning at the own employer planned before the 2026 rule is in force.
    #[error("own_employer_trial_rule_not_in_force: the rule applies from 2026-03-01")]
    OwnEmployerTrialRuleNotInForce,
    /// The 2026 rule is for employed people on full sjukpenning.
    #[error("own_employer_trial_needs_employment_and_full_sjukpenning: the participant must be employed and on full sjukpenning")]
    OwnEmployerTrialNeedsEmploymentAndFullSjukpenning,
    /// At most two such trials per calendar year.
    #[error("own_employer_trial_limit_reached: two arbetsprövningar at the own employer already this calendar year")]
    OwnEmployerTrialLimitReached,
    /// A start before every required green-light gate is approved for the start day.
    #[error("gate_not_green: waiting for {}", missing_gates.join(", "))]
    GateNotGreen {
        /// The gates not approved for the start day, by token.
        missing_gates: Vec<String>,
    },
    /// A start whose facts differ from the proposal in a way that changes which gates apply
    /// (a job's subsidy, or its employer when the proposal named one).
    #[error("start_differs_from_proposal: the start's {field} differs from the proposal's; propose the activity again so that the gates that now apply are opened")]
    StartDiffersFromProposal {
        /// Which fact.
        field: String,
    },
    /// A correction that changes the event's type.
    #[error("correction_changes_type: a correction must keep the corrected event's type")]
    CorrectionChangesType,
    /// A municipal officer writing on a participant of another unit (DOMAIN.md §6): coaches
    /// and team leaders by the participant's IPS unit, case officers by its social-services
    /// unit; the protected identity's allow-list admits across units.
    #[error("other_unit: the participant belongs to another unit than the actor's")]
    OtherUnit,
    /// A discharge from inpatient care needs an open stay (psychiatry's own rule: only
    /// psychiatry records discharges, so only psychiatry reads this text).
    #[error("no_inpatient_stay: the participant has no open inpatient stay")]
    NoInpatientStay,
}

impl RuleViolation {
    /// The rule's stable name, as sent to callers (`FAILED_PRECONDITION` details).
    pub fn name(&self) -> &'static str {
        self.into()
    }
}

impl From<InputError> for RuleViolation {
    fn from(error: InputError) -> Self {
        RuleViolation::InvalidInput {
            field: error.field,
            reason: error.reason,
        }
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
    /// The submission's event id is already recorded for this participant by another agency:
    /// not a redelivery (whose first verdict would be answered) but a reuse, which would hand
    /// one agency the verdict of another's event.
    #[error("event_id_reused: the event id is recorded for this participant by another agency")]
    EventIdRecordedByAnotherAgency,
}
