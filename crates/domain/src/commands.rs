//! What the ledger asks the participant aggregate to do.
//!
//! Agency services own the imperative RPCs (ReferParticipant, EnrollParticipant, ...); each turns
//! into a [`Submission`] on the bus. The ledger then has one thing to ask of the aggregate:
//! record this submission, with the ledger clock's reading when it decides. Keeping the clock
//! out here is what keeps the domain pure and replayable.

use chrono::{DateTime, Utc};

use crate::events::Submission;

/// A command to the participant aggregate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParticipantCommand {
    /// Decide on a submitted event and record it, accepted or rejected. A submission whose event
    /// id was already recorded is a no-op.
    Record {
        /// The agency's submission, as received from the bus.
        submission: Submission,
        /// The ledger clock's reading, taken for this attempt (never reused for a retry). The
        /// entry is stamped with it, or just after the previous entry when it is not later
        /// ([`crate::Participant::next_recorded_at`]).
        recorded_at: DateTime<Utc>,
    },
}
