//! Turning what the aggregate recorded into the verdict the bus carries back to agencies.

use bus::{Verdict, VerdictStatus};
use domain::aggregate::RecordedVerdict;
use domain::{EventId, Outcome, ParticipantEvent, ParticipantId};

/// The verdict on a freshly recorded (or looked-up) event.
pub fn verdict_of_event(event: &ParticipantEvent) -> Verdict {
    verdict_from(
        event.envelope.event_id,
        event.envelope.participant_id,
        event.sequence,
        &event.hash,
        &event.outcome,
    )
}

/// The verdict remembered by the aggregate for a redelivered event id.
pub fn verdict_of_recorded(
    event_id: EventId,
    participant_id: ParticipantId,
    recorded: &RecordedVerdict,
) -> Verdict {
    verdict_from(
        event_id,
        participant_id,
        recorded.sequence,
        &recorded.hash,
        &recorded.outcome,
    )
}

fn verdict_from(
    event_id: EventId,
    participant_id: ParticipantId,
    sequence: u64,
    hash: &str,
    outcome: &Outcome,
) -> Verdict {
    let (status, rule, reason) = match outcome {
        Outcome::Accepted => (VerdictStatus::Accepted, None, None),
        Outcome::Rejected { rule } => (
            VerdictStatus::Rejected,
            Some(rule.name().to_owned()),
            Some(rule.to_string()),
        ),
    };
    Verdict {
        event_id,
        status,
        participant_id: Some(participant_id),
        sequence,
        hash: hash.to_owned(),
        rule,
        reason,
    }
}
