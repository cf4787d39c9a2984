//! The participant aggregate: one participant's history, and the rules that decide what may be
//! added to it.
//!
//! `handle` decides and `apply` only assigns. A submission that breaks a rule is not thrown
//! away: it is recorded as a rejection (outcome `rejected`, with the rule), so the verdict is as
//! durable as an acceptance, an auditor sees every attempt, and a redelivery of the same event id
//! is a no-op either way. Only when nothing at all can be recorded does `handle` return an error.
//!
//! The aggregate is cut along its seams: the folded state and its accessors in `state`, the
//! rules `decide` applies in `rules`, the assignments `apply` makes in `assign`. This file holds
//! the cqrs-es [`Aggregate`] implementation that joins them, and re-exports the state types so
//! `domain::aggregate::Participant` and its companions keep their paths.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;

use crate::commands::ParticipantCommand;
use crate::envelope::{Agency, Role};
use crate::errors::ParticipantError;
use crate::events::{EventBody, Outcome, ParticipantEvent};

/// Most entries one participant's history may hold. postgres-es 0.5 binds the sequence as a
/// 32-bit integer; a real participant has hundreds of entries, so this leaves room for decades
/// while keeping every history loadable in one read.
pub const PARTICIPANT_EVENTS_MAX: u64 = 1_000_000;

mod assign;
mod rules;
mod state;

pub use state::{
    ActivityRecord, ActivityStatus, ConsentRecord, InpatientStay, Lifecycle, Participant,
    RecordedVerdict, SipDeadline, SipDeadlineStatus, Situation, RECORDED_AT_STEP,
    SIP_DUE_WITHIN_DAYS,
};

impl Aggregate for Participant {
    const TYPE: &'static str = "Participant";
    type Command = ParticipantCommand;
    type Event = ParticipantEvent;
    type Error = ParticipantError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let ParticipantCommand::Record {
            submission,
            recorded_at,
        } = command;
        if let Some(recorded) = self.recorded.get(&submission.envelope.event_id) {
            // A redelivery is answered with its first verdict; the same id from another agency
            // is no redelivery, and answering it would hand that agency the other's verdict.
            if recorded.agency != submission.envelope.agency {
                return Err(ParticipantError::EventIdRecordedByAnotherAgency);
            }
            return Ok(());
        }
        if self
            .participant_id
            .is_some_and(|id| id != submission.envelope.participant_id)
        {
            return Err(ParticipantError::ParticipantMismatch);
        }
        if self.last_sequence >= PARTICIPANT_EVENTS_MAX {
            return Err(ParticipantError::ParticipantStreamFull {
                events_max: PARTICIPANT_EVENTS_MAX,
            });
        }
        let outcome = match self.decide(&submission) {
            Ok(()) => Outcome::Accepted,
            Err(rule) => Outcome::Rejected { rule },
        };
        let event = ParticipantEvent::link(
            submission,
            self.next_recorded_at(recorded_at),
            outcome,
            self.last_sequence + 1,
            &self.last_hash,
        );
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        if let Some((agency, occurred_on)) = self.record_link(&event) {
            self.assign(event.body, agency, occurred_on);
        }
    }
}

impl Participant {
    /// [`Aggregate::apply`] of an entry the caller keeps (a replay keeps every entry it folds):
    /// only the body is cloned, for [`Participant::assign`], not the whole entry.
    pub fn apply_kept(&mut self, event: &ParticipantEvent) {
        if let Some((agency, occurred_on)) = self.record_link(event) {
            self.assign(event.body.clone(), agency, occurred_on);
        }
    }

    /// Assigns what every entry changes (the chain head, the recorded verdict) and, for an
    /// accepted one, the units its author's role names; returns the agency and business day
    /// its body is then assigned with, or `None` for a rejected entry (its body changes nothing).
    fn record_link(&mut self, event: &ParticipantEvent) -> Option<(Agency, chrono::NaiveDate)> {
        self.participant_id = Some(event.envelope.participant_id);
        self.last_sequence = event.sequence;
        self.last_hash.clone_from(&event.hash);
        self.last_recorded_at = Some(
            self.last_recorded_at
                .map_or(event.recorded_at, |latest| latest.max(event.recorded_at)),
        );
        self.recorded.insert(
            event.envelope.event_id,
            RecordedVerdict {
                sequence: event.sequence,
                hash: event.hash.clone(),
                outcome: event.outcome.clone(),
                agency: event.envelope.agency,
                event_type: event.body.event_type().to_owned(),
                author_party: crate::visibility::party_of(
                    event.envelope.agency,
                    event.envelope.actor.role,
                ),
            },
        );
        if !event.is_accepted() {
            return None;
        }
        if event.envelope.agency == Agency::Municipality
            && event.envelope.actor.role == Role::CaseOfficer
            && self.social_services_unit.is_none()
        {
            self.social_services_unit = Some(event.envelope.actor.unit.clone());
        }
        // A referral by a coach or team leader puts the participant in their IPS unit
        // (DOMAIN.md §6: "referred … in their own unit"); one by a case officer or another
        // agency names no IPS unit, and the unit that places or enrols names it.
        if event.envelope.agency == Agency::Municipality
            && matches!(event.envelope.actor.role, Role::Coach | Role::TeamLeader)
            && matches!(event.body, EventBody::ParticipantReferred { .. })
        {
            self.unit = Some(event.envelope.actor.unit.clone());
        }
        // The business day it happened on (Stockholm's date), as every rule counts days.
        Some((
            event.envelope.agency,
            crate::clock::business_date(event.envelope.occurred_at),
        ))
    }
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
