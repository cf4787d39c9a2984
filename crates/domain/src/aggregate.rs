//! The participant aggregate: one participant's history, and the rules that decide what may be
//! added to it.
//!
//! `handle` decides and `apply` only assigns. A submission that breaks a rule is not thrown
//! away: it is recorded as a rejection (outcome `rejected`, with the rule), so the verdict is as
//! durable as an acceptance, an auditor sees every attempt, and a redelivery of the same event id
//! is a no-op either way. Only when nothing at all can be recorded does `handle` return an error.

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::chain::GENESIS_HASH;
use crate::commands::ParticipantCommand;
use crate::envelope::DataCategory;
use crate::errors::{ParticipantError, RuleViolation};
use crate::events::{ConsentParty, EventBody, Outcome, ParticipantEvent, Submission};
use crate::ids::{ConsentId, EventId, ParticipantId, PersonId, UnitId};

/// Most entries one participant's history may hold. postgres-es 0.5 binds the sequence as a
/// 32-bit integer; a real participant has hundreds of entries, so this leaves room for decades
/// while keeping every history loadable in one read.
pub const PARTICIPANT_EVENTS_MAX: u64 = 1_000_000;

/// Where the participant is on the IPS path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Nothing accepted yet.
    #[default]
    Unknown,
    /// Referred, not yet enrolled.
    Referred,
    /// Enrolled at an IPS unit.
    Enrolled,
}

/// One granted consent and what has been withdrawn from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// The consent's id.
    pub consent_id: ConsentId,
    /// Who may disclose.
    pub discloser: ConsentParty,
    /// Who may receive.
    pub recipient: ConsentParty,
    /// Granted categories.
    pub data_categories: Vec<DataCategory>,
    /// First day in force.
    pub valid_from: NaiveDate,
    /// Last day in force.
    pub valid_to: NaiveDate,
    /// Category → first day it no longer applies.
    pub withdrawn_from: BTreeMap<DataCategory, NaiveDate>,
}

impl ConsentRecord {
    fn covers(&self, discloser: ConsentParty, recipient: ConsentParty, category: DataCategory, on: NaiveDate) -> bool {
        self.discloser == discloser
            && self.recipient == recipient
            && self.data_categories.contains(&category)
            && self.valid_from <= on
            && on <= self.valid_to
            && self.withdrawn_from.get(&category).is_none_or(|withdrawn| on < *withdrawn)
    }
}

/// What the aggregate remembers of a recorded event id: enough to answer a redelivery or a
/// status lookup with the first verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedVerdict {
    /// The entry's sequence.
    pub sequence: u64,
    /// The entry's hash.
    pub hash: String,
    /// Accepted or rejected.
    pub outcome: Outcome,
}

/// The participant aggregate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    participant_id: Option<ParticipantId>,
    lifecycle: Lifecycle,
    unit: Option<UnitId>,
    coach: Option<PersonId>,
    consents: Vec<ConsentRecord>,
    /// Every event id ever recorded. JetStream's dedupe window is time-bounded; this is not.
    recorded: BTreeMap<EventId, RecordedVerdict>,
    last_sequence: u64,
    last_hash: String,
}

impl Default for Participant {
    fn default() -> Self {
        Self {
            participant_id: None,
            lifecycle: Lifecycle::Unknown,
            unit: None,
            coach: None,
            consents: Vec::new(),
            recorded: BTreeMap::new(),
            last_sequence: 0,
            last_hash: GENESIS_HASH.to_owned(),
        }
    }
}

impl Participant {
    /// Where the participant is on the IPS path.
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    /// The enrolling unit and coach, once enrolled.
    pub fn unit_and_coach(&self) -> Option<(&UnitId, &PersonId)> {
        self.unit.as_ref().zip(self.coach.as_ref())
    }

    /// The verdict recorded for `event_id`, if it was ever recorded.
    pub fn verdict(&self, event_id: EventId) -> Option<&RecordedVerdict> {
        self.recorded.get(&event_id)
    }

    /// Sequence and hash of the newest entry (0 and the genesis hash when empty).
    pub fn chain_head(&self) -> (u64, &str) {
        (self.last_sequence, &self.last_hash)
    }

    /// Whether consent is in force on `on` for `discloser` → `recipient` and `category`.
    pub fn consent_in_force(
        &self,
        discloser: ConsentParty,
        recipient: ConsentParty,
        category: DataCategory,
        on: NaiveDate,
    ) -> bool {
        self.consents.iter().any(|consent| consent.covers(discloser, recipient, category, on))
    }

    /// The rules. `Ok` means accept; `Err` names the first rule broken.
    fn decide(&self, submission: &Submission) -> Result<(), RuleViolation> {
        submission.validate()?;
        let agency = submission.envelope.agency;
        if !submission.body.recorded_by(agency) {
            return Err(RuleViolation::AgencyMayNotRecord {
                agency: agency.token().to_owned(),
                event_type: submission.body.event_type().to_owned(),
            });
        }
        match &submission.body {
            EventBody::ParticipantReferred { .. } => match self.lifecycle {
                Lifecycle::Unknown => Ok(()),
                Lifecycle::Referred | Lifecycle::Enrolled => Err(RuleViolation::ParticipantAlreadyReferred),
            },
            EventBody::ParticipantEnrolled { .. } => match self.lifecycle {
                Lifecycle::Unknown => Err(RuleViolation::EnrolmentNeedsReferral),
                Lifecycle::Referred => Ok(()),
                Lifecycle::Enrolled => Err(RuleViolation::ParticipantAlreadyEnrolled),
            },
            EventBody::ConsentGranted { consent_id, .. } => {
                self.require_referred()?;
                if self.consents.iter().any(|consent| consent.consent_id == *consent_id) {
                    return Err(RuleViolation::ConsentIdAlreadyUsed);
                }
                Ok(())
            }
            EventBody::ConsentWithdrawn { discloser, recipient, data_categories, effective_from } => {
                self.require_referred()?;
                let every_category_in_force = data_categories.iter().all(|category| {
                    self.consents.iter().any(|consent| {
                        consent.discloser == *discloser
                            && consent.recipient == *recipient
                            && consent.data_categories.contains(category)
                            && *effective_from <= consent.valid_to
                            && !consent.withdrawn_from.contains_key(category)
                    })
                });
                if every_category_in_force {
                    Ok(())
                } else {
                    Err(RuleViolation::ConsentNotInForce)
                }
            }
        }
    }

    fn require_referred(&self) -> Result<(), RuleViolation> {
        match self.lifecycle {
            Lifecycle::Unknown => Err(RuleViolation::ParticipantNotReferred),
            Lifecycle::Referred | Lifecycle::Enrolled => Ok(()),
        }
    }
}

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
        let ParticipantCommand::Record { submission, recorded_at } = command;
        if self.recorded.contains_key(&submission.envelope.event_id) {
            return Ok(());
        }
        if self.participant_id.is_some_and(|id| id != submission.envelope.participant_id) {
            return Err(ParticipantError::ParticipantMismatch);
        }
        if self.last_sequence >= PARTICIPANT_EVENTS_MAX {
            return Err(ParticipantError::ParticipantStreamFull { events_max: PARTICIPANT_EVENTS_MAX });
        }
        let outcome = match self.decide(&submission) {
            Ok(()) => Outcome::Accepted,
            Err(rule) => Outcome::Rejected { rule },
        };
        let event = ParticipantEvent::link(submission, recorded_at, outcome, self.last_sequence + 1, &self.last_hash);
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.participant_id = Some(event.envelope.participant_id);
        self.last_sequence = event.sequence;
        self.last_hash.clone_from(&event.hash);
        self.recorded.insert(
            event.envelope.event_id,
            RecordedVerdict { sequence: event.sequence, hash: event.hash.clone(), outcome: event.outcome.clone() },
        );
        if !event.is_accepted() {
            return;
        }
        match event.body {
            EventBody::ParticipantReferred { .. } => self.lifecycle = Lifecycle::Referred,
            EventBody::ParticipantEnrolled { unit, coach } => {
                self.lifecycle = Lifecycle::Enrolled;
                self.unit = Some(unit);
                self.coach = Some(coach);
            }
            EventBody::ConsentGranted { consent_id, discloser, recipient, data_categories, valid_from, valid_to } => {
                self.consents.push(ConsentRecord {
                    consent_id,
                    discloser,
                    recipient,
                    data_categories,
                    valid_from,
                    valid_to,
                    withdrawn_from: BTreeMap::new(),
                });
            }
            EventBody::ConsentWithdrawn { discloser, recipient, data_categories, effective_from } => {
                for consent in &mut self.consents {
                    if consent.discloser == discloser && consent.recipient == recipient {
                        for category in &data_categories {
                            if consent.data_categories.contains(category) {
                                consent.withdrawn_from.entry(*category).or_insert(effective_from);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
