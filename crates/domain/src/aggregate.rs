//! The participant aggregate: one participant's history, and the rules that decide what may be
//! added to it.
//!
//! `handle` decides and `apply` only assigns. A submission that breaks a rule is not thrown
//! away: it is recorded as a rejection (outcome `rejected`, with the rule), so the verdict is as
//! durable as an acceptance, an auditor sees every attempt, and a redelivery of the same event id
//! is a no-op either way. Only when nothing at all can be recorded does `handle` return an error.

use chrono::{DateTime, Datelike, NaiveDate, SubsecRound, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::chain::GENESIS_HASH;
use crate::commands::ParticipantCommand;
use crate::envelope::{Agency, DataCategory, Role};
use crate::errors::{ParticipantError, RuleViolation};
use crate::events::{ConsentParty, EventBody, Outcome, ParticipantEvent, Submission};
use crate::gates::{self, DecidedGate, GateDecision, GateDecisions, GateKind};
use crate::ids::{ActivityId, ConsentId, EventId, ParticipantId, PersonId, ProgrammeId, UnitId};
use crate::values;
use crate::values::{
    ActivityKind, Availability, BenefitKind, DecisionOutcome, Period, SocialAssistanceStatus,
    Subsidy,
};

/// Most entries one participant's history may hold. postgres-es 0.5 binds the sequence as a
/// 32-bit integer; a real participant has hundreds of entries, so this leaves room for decades
/// while keeping every history loadable in one read.
pub const PARTICIPANT_EVENTS_MAX: u64 = 1_000_000;

/// How far after the previous entry's `recorded_at` the next one is stamped when the ledger
/// clock does not read later than it (see [`Participant::next_recorded_at`]).
pub const RECORDED_AT_STEP: chrono::Duration = chrono::Duration::microseconds(1);

/// Where the participant is on the IPS path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// No referral accepted yet.
    #[default]
    Unknown,
    /// Referred, not yet enrolled.
    Referred,
    /// The referral was declined (a new referral may come).
    Declined,
    /// Waiting for a place at a full unit.
    WaitingList,
    /// Enrolled, with active support.
    Enrolled,
    /// Enrolled, support paused.
    Paused,
    /// Discharged; only re-enrolment is possible.
    Discharged,
}

/// Where a proposed activity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ActivityStatus {
    /// Proposed, not started.
    Proposed,
    /// Started on a day.
    Started {
        /// First day.
        started_on: NaiveDate,
    },
    /// Ended on a day.
    Ended {
        /// First day.
        started_on: NaiveDate,
        /// Last day.
        ended_on: NaiveDate,
    },
}

/// A proposed activity or job and where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRecord {
    /// What kind.
    pub kind: ActivityKind,
    /// Hours per week (the latest).
    pub hours_per_week: u8,
    /// Planned first day.
    pub planned_start: NaiveDate,
    /// Subsidy the job needs, if any.
    pub subsidy: Option<Subsidy>,
    /// The employer named at the proposal, if any: a job's start must be at that employer.
    #[serde(default)]
    pub employer: Option<String>,
    /// Where it is.
    pub status: ActivityStatus,
    /// The latest decision on each green-light gate.
    #[serde(default)]
    pub gate_decisions: GateDecisions,
    /// An arbetsprövning at the own employer under the 2026 rule.
    #[serde(default)]
    pub at_own_employer: bool,
    /// The business day it was proposed: its green-light request's waiting time counts from here.
    pub proposed_on: NaiveDate,
}

/// The participant's situation as the agencies recorded it: what green-light gates are computed
/// from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Situation {
    /// Registered, not ended Försäkringskassan benefits, with their degree and period.
    pub benefits: BTreeMap<BenefitKind, (u8, Period)>,
    /// A rehabilitation plan exists.
    pub rehabilitation_plan: bool,
    /// Registered as a job seeker at Arbetsförmedlingen.
    pub job_seeker: bool,
    /// Has an employment (as FK recorded with the latest benefit).
    pub employed: bool,
    /// Running programmes and whether they carry aktivitetsstöd.
    pub programmes: BTreeMap<ProgrammeId, (Period, bool)>,
    /// SIUS running.
    pub sius: Option<Period>,
    /// Latest social assistance status.
    pub social_assistance: Option<SocialAssistanceStatus>,
    /// Latest availability reported by psychiatry, and from when.
    pub availability: Option<(Availability, NaiveDate)>,
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
    /// The categories of this consent in force on `on` (within its validity, not withdrawn).
    pub fn categories_in_force(&self, on: NaiveDate) -> Vec<DataCategory> {
        self.data_categories
            .iter()
            .copied()
            .filter(|category| self.covers(self.discloser, self.recipient, *category, on))
            .collect()
    }

    fn covers(
        &self,
        discloser: ConsentParty,
        recipient: ConsentParty,
        category: DataCategory,
        on: NaiveDate,
    ) -> bool {
        self.discloser == discloser
            && self.recipient == recipient
            && self.data_categories.contains(&category)
            && self.valid_from <= on
            && on <= self.valid_to
            && self
                .withdrawn_from
                .get(&category)
                .is_none_or(|withdrawn| on < *withdrawn)
    }
}

/// What the aggregate remembers of a recorded event id: enough to answer a redelivery or a
/// status lookup with the first verdict, and to check a correction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedVerdict {
    /// The entry's sequence.
    pub sequence: u64,
    /// The entry's hash.
    pub hash: String,
    /// Accepted or rejected.
    pub outcome: Outcome,
    /// The recording agency.
    pub agency: Agency,
    /// The body's event type.
    pub event_type: String,
}

/// The participant aggregate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    participant_id: Option<ParticipantId>,
    lifecycle: Lifecycle,
    unit: Option<UnitId>,
    coach: Option<PersonId>,
    consents: Vec<ConsentRecord>,
    /// The allow-list, once the identity is protected.
    #[serde(default)]
    protected_identity: Option<Vec<PersonId>>,
    /// The social-services unit: set by the first accepted case-officer event (DOMAIN.md §6).
    #[serde(default)]
    social_services_unit: Option<UnitId>,
    activities: BTreeMap<ActivityId, ActivityRecord>,
    situation: Situation,
    /// Every event id ever recorded. JetStream's dedupe window is time-bounded; this is not.
    recorded: BTreeMap<EventId, RecordedVerdict>,
    last_sequence: u64,
    last_hash: String,
    /// The latest system time stamped on any entry so far: the next entry is stamped after it.
    #[serde(default)]
    last_recorded_at: Option<DateTime<Utc>>,
}

impl Default for Participant {
    fn default() -> Self {
        Self {
            participant_id: None,
            lifecycle: Lifecycle::Unknown,
            unit: None,
            coach: None,
            consents: Vec::new(),
            protected_identity: None,
            social_services_unit: None,
            activities: BTreeMap::new(),
            situation: Situation::default(),
            recorded: BTreeMap::new(),
            last_sequence: 0,
            last_hash: GENESIS_HASH.to_owned(),
            last_recorded_at: None,
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

    /// The proposed activities and jobs.
    pub fn activities(&self) -> &BTreeMap<ActivityId, ActivityRecord> {
        &self.activities
    }

    /// The participant's recorded situation (benefits, programmes, availability...).
    pub fn situation(&self) -> &Situation {
        &self.situation
    }

    /// The verdict recorded for `event_id`, if it was ever recorded.
    pub fn verdict(&self, event_id: EventId) -> Option<&RecordedVerdict> {
        self.recorded.get(&event_id)
    }

    /// Sequence and hash of the newest entry (0 and the genesis hash when empty).
    pub fn chain_head(&self) -> (u64, &str) {
        (self.last_sequence, &self.last_hash)
    }

    /// The latest system time stamped on an entry (`None` when empty).
    pub fn last_recorded_at(&self) -> Option<DateTime<Utc>> {
        self.last_recorded_at
    }

    /// The system time the next entry is stamped with, given the ledger clock's reading taken
    /// when it is decided: the reading (to the microsecond, PostgreSQL's and the wire's
    /// precision), unless that is not after the latest entry's stamp, in which case that stamp
    /// plus [`RECORDED_AT_STEP`]. So `recorded_at` increases strictly along a participant's
    /// chain even when the ledger hosts' clocks disagree or one steps back, and "as recorded
    /// at T" cuts every history at one clean point.
    pub fn next_recorded_at(&self, clock_reading: DateTime<Utc>) -> DateTime<Utc> {
        let reading = clock_reading.trunc_subsecs(6);
        match self.last_recorded_at {
            Some(latest) if reading <= latest => latest + RECORDED_AT_STEP,
            _ => reading,
        }
    }

    /// The IPS unit (waiting list or enrolment), if any yet.
    pub fn ips_unit(&self) -> Option<&UnitId> {
        self.unit.as_ref()
    }

    /// The social-services unit: the unit of the first case officer whose event was accepted.
    pub fn social_services_unit(&self) -> Option<&UnitId> {
        self.social_services_unit.as_ref()
    }

    /// Every consent granted, with what has been withdrawn from it (for an auditor's replay;
    /// decisions ask [`Participant::consent_in_force_id`]).
    pub fn consents(&self) -> &[ConsentRecord] {
        &self.consents
    }

    /// The allow-list when the participant's identity is protected.
    pub fn protected_identity(&self) -> Option<&[PersonId]> {
        self.protected_identity.as_deref()
    }

    /// The consent in force on `on` for `discloser` → `recipient` and `category`, if any.
    pub fn consent_in_force_id(
        &self,
        discloser: ConsentParty,
        recipient: ConsentParty,
        category: DataCategory,
        on: NaiveDate,
    ) -> Option<ConsentId> {
        self.consents
            .iter()
            .find(|consent| consent.covers(discloser, recipient, category, on))
            .map(|consent| consent.consent_id)
    }

    /// Whether consent is in force on `on` for `discloser` → `recipient` and `category`.
    pub fn consent_in_force(
        &self,
        discloser: ConsentParty,
        recipient: ConsentParty,
        category: DataCategory,
        on: NaiveDate,
    ) -> bool {
        self.consents
            .iter()
            .any(|consent| consent.covers(discloser, recipient, category, on))
    }

    /// The rules. `Ok` means accept; `Err` names the first rule broken.
    fn decide(&self, submission: &Submission) -> Result<(), RuleViolation> {
        submission.validate()?;
        let agency = submission.envelope.agency;
        let body = &submission.body;
        if !body.recorded_by(agency) {
            return Err(RuleViolation::AgencyMayNotRecord {
                agency: agency.token().to_owned(),
                event_type: body.event_type().to_owned(),
            });
        }
        if self
            .unit_boundary(agency, &submission.envelope.actor)
            .is_err()
            || !crate::visibility::names_own_unit(agency, &submission.envelope.actor, body)
        {
            return Err(RuleViolation::OtherUnit);
        }
        if self.lifecycle == Lifecycle::Discharged
            && !matches!(
                body,
                EventBody::ParticipantReEnrolled { .. }
                    | EventBody::ConsentWithdrawn { .. }
                    | EventBody::EventCorrected { .. }
            )
        {
            return Err(RuleViolation::ParticipantDischarged);
        }
        match body {
            EventBody::ParticipantReferred { .. } => match self.lifecycle {
                Lifecycle::Unknown | Lifecycle::Declined => Ok(()),
                _ => Err(RuleViolation::ParticipantAlreadyReferred),
            },
            // Psychiatry's referral may come before the municipality records its intake.
            EventBody::IpsReferralSent { .. } => Ok(()),
            EventBody::ReferralDeclined { .. } => match self.lifecycle {
                Lifecycle::Referred | Lifecycle::WaitingList => Ok(()),
                _ => Err(RuleViolation::ReferralNotPending),
            },
            EventBody::PlacedOnWaitingList { .. } => match self.lifecycle {
                Lifecycle::Referred => Ok(()),
                Lifecycle::WaitingList => Err(RuleViolation::AlreadyOnWaitingList),
                Lifecycle::Unknown | Lifecycle::Declined => {
                    Err(RuleViolation::ParticipantNotReferred)
                }
                _ => Err(RuleViolation::ParticipantAlreadyEnrolled),
            },
            EventBody::WaitingListPlaceOffered { .. } => match self.lifecycle {
                Lifecycle::WaitingList => Ok(()),
                _ => Err(RuleViolation::NotOnWaitingList),
            },
            EventBody::ParticipantEnrolled { .. } => match self.lifecycle {
                Lifecycle::Referred | Lifecycle::WaitingList => Ok(()),
                Lifecycle::Unknown | Lifecycle::Declined => {
                    Err(RuleViolation::EnrolmentNeedsReferral)
                }
                _ => Err(RuleViolation::ParticipantAlreadyEnrolled),
            },
            EventBody::CoachAssigned { coach } => {
                self.require_enrolled(true)?;
                if self.coach.as_ref() == Some(coach) {
                    return Err(RuleViolation::CoachAlreadyAssigned);
                }
                Ok(())
            }
            EventBody::ParticipantPaused { .. } => match self.lifecycle {
                Lifecycle::Enrolled => Ok(()),
                Lifecycle::Paused => Err(RuleViolation::ParticipantAlreadyPaused),
                _ => Err(RuleViolation::ParticipantNotEnrolled),
            },
            EventBody::IdentityProtected { .. } => match self.lifecycle {
                Lifecycle::Unknown => Err(RuleViolation::ParticipantNotReferred),
                _ => Ok(()),
            },
            EventBody::ParticipantResumed => match self.lifecycle {
                Lifecycle::Paused => Ok(()),
                _ => Err(RuleViolation::ParticipantNotPaused),
            },
            EventBody::ParticipantDischarged { .. } => self.require_enrolled(true),
            EventBody::ParticipantReEnrolled { .. } => match self.lifecycle {
                Lifecycle::Discharged => Ok(()),
                _ => Err(RuleViolation::ParticipantNotDischarged),
            },
            EventBody::ConsentGranted { consent_id, .. } => {
                self.require_referred()?;
                if self
                    .consents
                    .iter()
                    .any(|consent| consent.consent_id == *consent_id)
                {
                    return Err(RuleViolation::ConsentIdAlreadyUsed);
                }
                Ok(())
            }
            EventBody::ConsentWithdrawn {
                discloser,
                recipient,
                data_categories,
                effective_from,
            } => {
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
            EventBody::ProfileRecorded { .. }
            | EventBody::BenefitsCounsellingGiven { .. }
            | EventBody::DisclosurePreferenceRecorded { .. }
            | EventBody::EmployerContactMade { .. }
            | EventBody::FollowUpRecorded { .. }
            | EventBody::OutreachAttempted { .. }
            | EventBody::SipHeld { .. }
            | EventBody::SipEstablished { .. } => self.require_enrolled(true),
            EventBody::ActivityProposed {
                activity_id,
                planned_start,
                at_own_employer,
                ..
            } => {
                self.require_enrolled(false)?;
                if self.activities.contains_key(activity_id) {
                    return Err(RuleViolation::ActivityIdAlreadyUsed);
                }
                if *at_own_employer {
                    self.require_own_employer_trial_allowed(*planned_start)?;
                }
                Ok(())
            }
            EventBody::ActivityStarted {
                activity_id,
                started_on,
            } => self.require_start(*activity_id, None, *started_on),
            EventBody::JobStarted {
                activity_id,
                employer,
                subsidy,
                started_on,
                ..
            } => {
                self.require_enrolled(false)?;
                let activity = self.activity_for_step(*activity_id, Some(ActivityKind::Job))?;
                require_proposed(activity)?;
                require_job_as_proposed(activity, employer, *subsidy)?;
                self.require_green(activity, *started_on)
            }
            EventBody::StudiesStarted {
                activity_id,
                started_on,
                ..
            } => self.require_start(*activity_id, Some(ActivityKind::Studies), *started_on),
            EventBody::ActivityEnded {
                activity_id,
                ended_on,
            } => {
                self.require_enrolled(true)?;
                let activity = self.activity_for_step(*activity_id, None)?;
                require_running_since(activity, *ended_on)
            }
            EventBody::JobEnded {
                activity_id,
                ended_on,
                ..
            } => {
                self.require_enrolled(true)?;
                require_running_since(
                    self.activity_of_kind(*activity_id, ActivityKind::Job)?,
                    *ended_on,
                )
            }
            EventBody::HoursChanged {
                activity_id, from, ..
            } => {
                self.require_enrolled(true)?;
                require_running_since(
                    self.activity_of_kind(*activity_id, ActivityKind::Job)?,
                    *from,
                )
            }
            EventBody::StudiesEnded {
                activity_id,
                ended_on,
            } => {
                self.require_enrolled(true)?;
                require_running_since(
                    self.activity_of_kind(*activity_id, ActivityKind::Studies)?,
                    *ended_on,
                )
            }
            EventBody::FollowAlongContact {
                activity_id,
                contact_on,
            } => {
                self.require_enrolled(true)?;
                match activity_id {
                    Some(activity_id) => require_running_since(
                        self.activity_of_kind(*activity_id, ActivityKind::Job)?,
                        *contact_on,
                    ),
                    None => Ok(()),
                }
            }
            EventBody::ActivityAcceptedInPlanning { activity_id }
            | EventBody::ActivityDecision { activity_id, .. }
            | EventBody::ActivityAgreementMade { activity_id, .. } => {
                self.require_referred()?;
                require_not_ended(self.activity(*activity_id)?)
            }
            EventBody::DormantBenefitDecided { activity_id, .. } => {
                self.require_referred()?;
                require_not_ended(self.activity_of_kind(*activity_id, ActivityKind::Job)?)
            }
            EventBody::SubsidyDecided { activity_id, .. } => {
                self.require_referred()?;
                match activity_id {
                    Some(activity_id) => {
                        require_not_ended(self.activity_of_kind(*activity_id, ActivityKind::Job)?)
                    }
                    None => Ok(()),
                }
            }
            EventBody::SocialAssistanceDecided { .. }
            | EventBody::BenefitRegistered { .. }
            | EventBody::MedicalCertificateReceived { .. }
            | EventBody::AvstamningsmoteHeld { .. }
            | EventBody::RehabPlanEstablished { .. }
            | EventBody::JobSeekerRegistered { .. }
            | EventBody::TreatmentTeamMeetingHeld { .. }
            | EventBody::MedicalCertificateIssued { .. }
            | EventBody::AvailabilityChanged { .. }
            | EventBody::DischargeReady { .. } => self.require_referred(),
            EventBody::BenefitEnded { benefit, ended_on } => {
                self.require_referred()?;
                let (_, period) = self
                    .situation
                    .benefits
                    .get(benefit)
                    .ok_or(RuleViolation::UnknownBenefit)?;
                require_not_before(*ended_on, period.from)
            }
            EventBody::RehabPlanRevised { .. } => {
                self.require_referred()?;
                if !self.situation.rehabilitation_plan {
                    return Err(RuleViolation::NoRehabilitationPlan);
                }
                Ok(())
            }
            EventBody::JobSeekerDeregistered { .. }
            | EventBody::DisabilityCodingRequested { .. }
            | EventBody::DisabilityCodingRegistered { .. } => {
                self.require_referred()?;
                self.require_job_seeker()
            }
            EventBody::ProgrammeAssigned { programme_id, .. } => {
                self.require_referred()?;
                self.require_job_seeker()?;
                if self.situation.programmes.contains_key(programme_id) {
                    return Err(RuleViolation::ProgrammeIdAlreadyUsed);
                }
                Ok(())
            }
            EventBody::ProgrammeEnded {
                programme_id,
                ended_on,
            } => {
                self.require_referred()?;
                let (period, _) = self
                    .situation
                    .programmes
                    .get(programme_id)
                    .ok_or(RuleViolation::UnknownProgramme)?;
                require_not_before(*ended_on, period.from)
            }
            EventBody::SiusDecided { .. } => {
                self.require_referred()?;
                self.require_job_seeker()
            }
            EventBody::SiusEnded { ended_on } => {
                self.require_referred()?;
                let period = self.situation.sius.ok_or(RuleViolation::SiusNotActive)?;
                require_not_before(*ended_on, period.from)
            }
            EventBody::EventCorrected {
                supersedes,
                corrected,
                ..
            } => {
                let original = self
                    .recorded
                    .get(supersedes)
                    .filter(|recorded| recorded.outcome == Outcome::Accepted)
                    .ok_or(RuleViolation::UnknownCorrectedEvent)?;
                if original.agency != agency {
                    return Err(RuleViolation::CorrectionByAnotherAgency);
                }
                if original.event_type != corrected.event_type() {
                    return Err(RuleViolation::CorrectionChangesType);
                }
                Ok(())
            }
        }
    }

    fn require_referred(&self) -> Result<(), RuleViolation> {
        match self.lifecycle {
            Lifecycle::Unknown | Lifecycle::Declined => Err(RuleViolation::ParticipantNotReferred),
            _ => Ok(()),
        }
    }

    /// Enrolled; `or_paused` also accepts paused support (recording facts, ending things).
    fn require_enrolled(&self, or_paused: bool) -> Result<(), RuleViolation> {
        match self.lifecycle {
            Lifecycle::Enrolled => Ok(()),
            Lifecycle::Paused if or_paused => Ok(()),
            Lifecycle::Paused => Err(RuleViolation::ParticipantPaused),
            _ => Err(RuleViolation::ParticipantNotEnrolled),
        }
    }

    /// The 2026 rule: in force from 2026-03-01, for employed people on full sjukpenning, at
    /// most twice per calendar year (counted by planned start).
    fn require_own_employer_trial_allowed(
        &self,
        planned_start: NaiveDate,
    ) -> Result<(), RuleViolation> {
        if planned_start < values::own_employer_trial_rule_from() {
            return Err(RuleViolation::OwnEmployerTrialRuleNotInForce);
        }
        let on_full_sjukpenning = self
            .situation
            .benefits
            .get(&BenefitKind::Sjukpenning)
            .is_some_and(|(degree_percent, period)| {
                *degree_percent == 100 && period.contains(planned_start)
            });
        if !(self.situation.employed && on_full_sjukpenning) {
            return Err(RuleViolation::OwnEmployerTrialNeedsEmploymentAndFullSjukpenning);
        }
        let same_year = self
            .activities
            .values()
            .filter(|activity| {
                activity.at_own_employer && activity.planned_start.year() == planned_start.year()
            })
            .count();
        if same_year >= values::OWN_EMPLOYER_TRIALS_PER_YEAR_MAX {
            return Err(RuleViolation::OwnEmployerTrialLimitReached);
        }
        Ok(())
    }

    /// The activity a step names, if the step fits its kind: `Some(kind)` for the job and studies
    /// steps, `None` for the general activity steps (jobs and studies have their own).
    fn activity_for_step(
        &self,
        activity_id: ActivityId,
        kind: Option<ActivityKind>,
    ) -> Result<&ActivityRecord, RuleViolation> {
        match kind {
            Some(kind) => self.activity_of_kind(activity_id, kind),
            None => {
                let activity = self.activity(activity_id)?;
                if matches!(activity.kind, ActivityKind::Job | ActivityKind::Studies) {
                    return Err(wrong_kind(
                        "activity other than a job or studies",
                        activity.kind,
                    ));
                }
                Ok(activity)
            }
        }
    }

    /// A start: enrolled with active support, the activity proposed and not started, and GREEN
    /// on the start day.
    fn require_start(
        &self,
        activity_id: ActivityId,
        kind: Option<ActivityKind>,
        started_on: NaiveDate,
    ) -> Result<(), RuleViolation> {
        self.require_enrolled(false)?;
        let activity = self.activity_for_step(activity_id, kind)?;
        require_proposed(activity)?;
        self.require_green(activity, started_on)
    }

    /// Every required gate approved for the start day, or the rule naming each missing gate.
    fn require_green(
        &self,
        activity: &ActivityRecord,
        start_on: NaiveDate,
    ) -> Result<(), RuleViolation> {
        let missing = gates::missing_gates(&self.situation, activity, start_on);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(RuleViolation::GateNotGreen {
                missing_gates: missing.iter().map(|gate| gate.token().to_owned()).collect(),
            })
        }
    }

    fn require_job_seeker(&self) -> Result<(), RuleViolation> {
        if self.situation.job_seeker {
            Ok(())
        } else {
            Err(RuleViolation::JobSeekerNotRegistered)
        }
    }

    fn activity(&self, activity_id: ActivityId) -> Result<&ActivityRecord, RuleViolation> {
        self.activities
            .get(&activity_id)
            .ok_or(RuleViolation::UnknownActivity)
    }

    fn activity_of_kind(
        &self,
        activity_id: ActivityId,
        kind: ActivityKind,
    ) -> Result<&ActivityRecord, RuleViolation> {
        let activity = self.activity(activity_id)?;
        if activity.kind != kind {
            return Err(wrong_kind(kind.token(), activity.kind));
        }
        Ok(activity)
    }
}

/// A job starts on the facts its gates were computed from: the subsidy (which decides
/// whether Arbetsförmedlingen's subsidy gate applies, and which subsidy its decision is
/// for) and the employer, when the proposal named one. Hours decide no gate, and the start
/// day is checked by `Participant::require_green` itself, so both may differ from the plan. A
/// job that changed is proposed again, which opens the gates that now apply.
fn require_job_as_proposed(
    activity: &ActivityRecord,
    employer: &str,
    subsidy: Option<Subsidy>,
) -> Result<(), RuleViolation> {
    if activity.subsidy != subsidy {
        return Err(RuleViolation::StartDiffersFromProposal {
            field: "subsidy".into(),
        });
    }
    if activity
        .employer
        .as_deref()
        .is_some_and(|proposed| proposed.trim() != employer.trim())
    {
        return Err(RuleViolation::StartDiffersFromProposal {
            field: "employer".into(),
        });
    }
    Ok(())
}

fn wrong_kind(expected: &str, actual: ActivityKind) -> RuleViolation {
    RuleViolation::WrongActivityKind {
        expected: expected.to_owned(),
        actual: actual.token().to_owned(),
    }
}

fn require_proposed(activity: &ActivityRecord) -> Result<(), RuleViolation> {
    match activity.status {
        ActivityStatus::Proposed => Ok(()),
        ActivityStatus::Started { .. } => Err(RuleViolation::ActivityAlreadyStarted),
        ActivityStatus::Ended { .. } => Err(RuleViolation::ActivityAlreadyEnded),
    }
}

/// Started, not ended, and `day` not before the start.
fn require_running_since(activity: &ActivityRecord, day: NaiveDate) -> Result<(), RuleViolation> {
    match activity.status {
        ActivityStatus::Proposed => Err(RuleViolation::ActivityNotStarted),
        ActivityStatus::Ended { .. } => Err(RuleViolation::ActivityAlreadyEnded),
        ActivityStatus::Started { started_on } => require_not_before(day, started_on),
    }
}

/// An end (or change) on `day` of something that started on `start`.
fn require_not_before(day: NaiveDate, start: NaiveDate) -> Result<(), RuleViolation> {
    if day < start {
        Err(RuleViolation::EndBeforeStart)
    } else {
        Ok(())
    }
}

fn require_not_ended(activity: &ActivityRecord) -> Result<(), RuleViolation> {
    match activity.status {
        ActivityStatus::Ended { .. } => Err(RuleViolation::ActivityAlreadyEnded),
        _ => Ok(()),
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
        let ParticipantCommand::Record {
            submission,
            recorded_at,
        } = command;
        if self.recorded.contains_key(&submission.envelope.event_id) {
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
            },
        );
        if event.is_accepted() {
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
            let (agency, occurred_on) = (
                event.envelope.agency,
                crate::clock::business_date(event.envelope.occurred_at),
            );
            self.assign(event.body, agency, occurred_on);
        }
    }
}

impl Participant {
    /// The state change an accepted body makes. Only assignment: every check was in `decide`.
    fn assign(&mut self, body: EventBody, agency: Agency, occurred_on: NaiveDate) {
        match body {
            EventBody::ParticipantReferred { .. } => self.lifecycle = Lifecycle::Referred,
            EventBody::ReferralDeclined { .. } => self.lifecycle = Lifecycle::Declined,
            EventBody::PlacedOnWaitingList { unit } => {
                self.lifecycle = Lifecycle::WaitingList;
                self.unit = Some(unit);
            }
            EventBody::ParticipantEnrolled { unit, coach }
            | EventBody::ParticipantReEnrolled { unit, coach } => {
                self.lifecycle = Lifecycle::Enrolled;
                self.unit = Some(unit);
                self.coach = Some(coach);
            }
            EventBody::CoachAssigned { coach } => self.coach = Some(coach),
            EventBody::ParticipantPaused { .. } => self.lifecycle = Lifecycle::Paused,
            EventBody::ParticipantResumed => self.lifecycle = Lifecycle::Enrolled,
            EventBody::IdentityProtected { allowed_readers } => {
                self.protected_identity = Some(allowed_readers);
            }
            EventBody::ParticipantDischarged { .. } => self.lifecycle = Lifecycle::Discharged,
            EventBody::ConsentGranted {
                consent_id,
                discloser,
                recipient,
                data_categories,
                valid_from,
                valid_to,
            } => {
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
            EventBody::ConsentWithdrawn {
                discloser,
                recipient,
                data_categories,
                effective_from,
            } => {
                for consent in &mut self.consents {
                    if consent.discloser == discloser && consent.recipient == recipient {
                        for category in &data_categories {
                            if consent.data_categories.contains(category) {
                                consent
                                    .withdrawn_from
                                    .entry(*category)
                                    .or_insert(effective_from);
                            }
                        }
                    }
                }
            }
            EventBody::ActivityProposed {
                activity_id,
                kind,
                employer,
                hours_per_week,
                planned_start,
                subsidy,
                at_own_employer,
                ..
            } => {
                self.activities.insert(
                    activity_id,
                    ActivityRecord {
                        kind,
                        hours_per_week,
                        planned_start,
                        subsidy,
                        employer,
                        status: ActivityStatus::Proposed,
                        gate_decisions: GateDecisions::new(),
                        at_own_employer,
                        proposed_on: occurred_on,
                    },
                );
            }
            EventBody::ActivityStarted {
                activity_id,
                started_on,
            }
            | EventBody::StudiesStarted {
                activity_id,
                started_on,
                ..
            } => {
                if let Some(activity) = self.activities.get_mut(&activity_id) {
                    activity.status = ActivityStatus::Started { started_on };
                }
            }
            EventBody::JobStarted {
                activity_id,
                subsidy,
                hours_per_week,
                started_on,
                ..
            } => {
                if let Some(activity) = self.activities.get_mut(&activity_id) {
                    activity.status = ActivityStatus::Started { started_on };
                    activity.hours_per_week = hours_per_week;
                    activity.subsidy = subsidy;
                }
            }
            EventBody::HoursChanged {
                activity_id,
                hours_per_week,
                ..
            } => {
                if let Some(activity) = self.activities.get_mut(&activity_id) {
                    activity.hours_per_week = hours_per_week;
                }
            }
            EventBody::ActivityEnded {
                activity_id,
                ended_on,
            }
            | EventBody::JobEnded {
                activity_id,
                ended_on,
                ..
            }
            | EventBody::StudiesEnded {
                activity_id,
                ended_on,
            } => {
                if let Some(activity) = self.activities.get_mut(&activity_id) {
                    if let ActivityStatus::Started { started_on } = activity.status {
                        activity.status = ActivityStatus::Ended {
                            started_on,
                            ended_on,
                        };
                    }
                }
            }
            EventBody::ActivityDecision {
                activity_id,
                outcome,
                valid,
                ..
            } => {
                let gate = if agency == Agency::Arbetsformedlingen {
                    GateKind::AfActivityDecision
                } else {
                    GateKind::FkActivityDecision
                };
                let decision = match (outcome, valid) {
                    (outcome, Some(valid)) if outcome.is_approval() => {
                        GateDecision::Approved { valid }
                    }
                    (DecisionOutcome::MoreInformationNeeded, _) => GateDecision::InformationNeeded,
                    _ => GateDecision::Rejected,
                };
                self.decide_gate(activity_id, gate, decision, occurred_on);
            }
            EventBody::ActivityAgreementMade { activity_id, valid } => self.decide_gate(
                activity_id,
                GateKind::FkActivityAgreement,
                GateDecision::Approved { valid },
                occurred_on,
            ),
            EventBody::DormantBenefitDecided { activity_id, valid } => self.decide_gate(
                activity_id,
                GateKind::FkDormantBenefit,
                GateDecision::Approved { valid },
                occurred_on,
            ),
            EventBody::ActivityAcceptedInPlanning { activity_id } => {
                // Accepted in the planning from that day on, until the planning changes.
                let valid = Period {
                    from: occurred_on,
                    to: NaiveDate::MAX,
                };
                self.decide_gate(
                    activity_id,
                    GateKind::SocialServicesPlanning,
                    GateDecision::Approved { valid },
                    occurred_on,
                );
            }
            EventBody::SubsidyDecided {
                subsidy,
                activity_id: Some(activity_id),
                period,
                ..
            } => {
                // A decision on another subsidy than the job needs does not open its gate.
                if self
                    .activities
                    .get(&activity_id)
                    .is_some_and(|activity| activity.subsidy == Some(subsidy))
                {
                    self.decide_gate(
                        activity_id,
                        GateKind::AfSubsidyDecision,
                        GateDecision::Approved { valid: period },
                        occurred_on,
                    );
                }
            }
            EventBody::SubsidyDecided {
                activity_id: None, ..
            } => {}
            EventBody::SocialAssistanceDecided { status } => {
                self.situation.social_assistance = Some(status)
            }
            EventBody::BenefitRegistered {
                benefit,
                degree_percent,
                period,
                employed,
            } => {
                self.situation
                    .benefits
                    .insert(benefit, (degree_percent, period));
                self.situation.employed = employed;
            }
            EventBody::BenefitEnded { benefit, .. } => {
                self.situation.benefits.remove(&benefit);
            }
            EventBody::RehabPlanEstablished { .. } => self.situation.rehabilitation_plan = true,
            EventBody::JobSeekerRegistered { .. } => self.situation.job_seeker = true,
            EventBody::JobSeekerDeregistered { .. } => self.situation.job_seeker = false,
            EventBody::ProgrammeAssigned {
                programme_id,
                with_activity_allowance,
                period,
                ..
            } => {
                self.situation
                    .programmes
                    .insert(programme_id, (period, with_activity_allowance));
            }
            EventBody::ProgrammeEnded { programme_id, .. } => {
                self.situation.programmes.remove(&programme_id);
            }
            EventBody::SiusDecided { period } => self.situation.sius = Some(period),
            EventBody::SiusEnded { .. } => self.situation.sius = None,
            EventBody::AvailabilityChanged { availability, from } => {
                self.situation.availability = Some((availability, from))
            }
            // A correction re-states an earlier fact; where that fact is state, the corrected
            // values replace it (the activity, job hours, benefit, programme or status).
            EventBody::EventCorrected { corrected, .. } => {
                self.assign_correction(*corrected, agency, occurred_on)
            }
            EventBody::ProfileRecorded { .. }
            | EventBody::BenefitsCounsellingGiven { .. }
            | EventBody::DisclosurePreferenceRecorded { .. }
            | EventBody::EmployerContactMade { .. }
            | EventBody::FollowAlongContact { .. }
            | EventBody::FollowUpRecorded { .. }
            | EventBody::OutreachAttempted { .. }
            | EventBody::SipHeld { .. }
            | EventBody::SipEstablished { .. }
            | EventBody::WaitingListPlaceOffered { .. }
            | EventBody::MedicalCertificateReceived { .. }
            | EventBody::AvstamningsmoteHeld { .. }
            | EventBody::RehabPlanRevised { .. }
            | EventBody::DisabilityCodingRequested { .. }
            | EventBody::DisabilityCodingRegistered { .. }
            | EventBody::IpsReferralSent { .. }
            | EventBody::TreatmentTeamMeetingHeld { .. }
            | EventBody::MedicalCertificateIssued { .. }
            | EventBody::DischargeReady { .. } => {}
        }
    }

    fn decide_gate(
        &mut self,
        activity_id: ActivityId,
        gate: GateKind,
        decision: GateDecision,
        decided_on: NaiveDate,
    ) {
        if let Some(activity) = self.activities.get_mut(&activity_id) {
            activity.gate_decisions.insert(
                gate,
                DecidedGate {
                    decision,
                    decided_on,
                },
            );
        }
    }

    /// Corrections replace values, never lifecycle transitions: a corrected enrolment changes
    /// unit and coach, not whether the participant is enrolled.
    fn assign_correction(&mut self, corrected: EventBody, agency: Agency, occurred_on: NaiveDate) {
        match corrected {
            EventBody::ActivityProposed {
                activity_id,
                kind,
                employer,
                hours_per_week,
                planned_start,
                subsidy,
                ..
            } => {
                if let Some(activity) = self.activities.get_mut(&activity_id) {
                    // AF decided on the subsidy proposed then: another subsidy re-opens its gate.
                    if activity.subsidy != subsidy {
                        activity.gate_decisions.remove(&GateKind::AfSubsidyDecision);
                    }
                    activity.kind = kind;
                    activity.employer = employer;
                    activity.hours_per_week = hours_per_week;
                    activity.planned_start = planned_start;
                    activity.subsidy = subsidy;
                }
            }
            EventBody::ParticipantEnrolled { unit, coach }
            | EventBody::ParticipantReEnrolled { unit, coach } => {
                self.unit = Some(unit);
                self.coach = Some(coach);
            }
            body @ (EventBody::HoursChanged { .. }
            | EventBody::CoachAssigned { .. }
            | EventBody::SocialAssistanceDecided { .. }
            | EventBody::BenefitRegistered { .. }
            | EventBody::ProgrammeAssigned { .. }
            | EventBody::SiusDecided { .. }
            | EventBody::AvailabilityChanged { .. }) => self.assign(body, agency, occurred_on),
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
