//! Turning what the aggregate recorded into the verdict the bus carries back to agencies.
//!
//! A rejection's explanation goes to the submitting officer, so it is written for them: it
//! names only what their party may see (`Participant::refusal_explained_to`). A gate of an
//! agency they have no consent from would otherwise reveal, say, that psychiatry reports the
//! participant unavailable.

use bus::{Verdict, VerdictStatus};
use chrono::NaiveDate;
use domain::aggregate::RecordedVerdict;
use domain::{EventId, Outcome, Participant, ParticipantEvent, ParticipantId, Reader};

/// The reader a verdict is written for: the officer who submitted the event.
fn submitter(event_envelope: &domain::Envelope) -> Reader {
    Reader {
        agency: event_envelope.agency,
        actor: event_envelope.actor.clone(),
    }
}

/// The verdict on a freshly recorded (or looked-up) event, explained to its submitter as they
/// may read it on `on`, with the participant as it stood when the verdict is given.
pub fn verdict_of_event(
    event: &ParticipantEvent,
    participant: &Participant,
    on: NaiveDate,
) -> Verdict {
    verdict_from(
        event.envelope.event_id,
        event.envelope.participant_id,
        event.sequence,
        &event.hash,
        &event.outcome,
        |rule| participant.refusal_explained_to(rule, &submitter(&event.envelope), on),
    )
}

/// The verdict remembered by the aggregate for a redelivered event id.
pub fn verdict_of_recorded(
    submission_envelope: &domain::Envelope,
    recorded: &RecordedVerdict,
    participant: &Participant,
    on: NaiveDate,
) -> Verdict {
    verdict_from(
        submission_envelope.event_id,
        submission_envelope.participant_id,
        recorded.sequence,
        &recorded.hash,
        &recorded.outcome,
        |rule| participant.refusal_explained_to(rule, &submitter(submission_envelope), on),
    )
}

fn verdict_from(
    event_id: EventId,
    participant_id: ParticipantId,
    sequence: u64,
    hash: &str,
    outcome: &Outcome,
    explain: impl Fn(&domain::RuleViolation) -> String,
) -> Verdict {
    let (status, rule, reason) = match outcome {
        Outcome::Accepted => (VerdictStatus::Accepted, None, None),
        Outcome::Rejected { rule } => (
            VerdictStatus::Rejected,
            Some(rule.name().to_owned()),
            Some(explain(rule)),
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
