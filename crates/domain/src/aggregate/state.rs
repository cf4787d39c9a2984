//! The participant's folded state: what the aggregate knows after applying its history, and
//! the read accessors every other module asks it through.
//!
//! Kept apart from the rules (`rules.rs`) and the assignments (`assign.rs`) so the shape of
//! the state, which visibility, the gates and replays read, is in one place. The fields are
//! private to the aggregate module: the rest of the crate reads them only through the
//! accessors here, so only `apply` can change them.

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::chain::GENESIS_HASH;
use crate::envelope::{Agency, DataCategory};
use crate::events::{AllowedReader, ConsentParty, Outcome};
use crate::gates::GateDecisions;
use crate::ids::{ActivityId, ConsentId, EventId, ParticipantId, PersonId, ProgrammeId, UnitId};
use crate::values::{
    ActivityKind, Availability, BenefitKind, CareForm, Period, SocialAssistanceStatus, Subsidy,
};

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
    /// Benefits the participant says they have (the coach's record of their statement), with
    /// the day they said it: a gate it makes apply is unknown until FK's record of that
    /// benefit exists (`gates::stated_only_gates`).
    #[serde(default)]
    pub self_reported_benefits: BTreeMap<BenefitKind, NaiveDate>,
    /// Every benefit kind Försäkringskassan has recorded for the participant (registered, even
    /// if ended since): where FK has a record of a kind, the participant's statement of it is
    /// ignored, whichever came first.
    #[serde(default)]
    pub benefits_on_record: std::collections::BTreeSet<BenefitKind>,
}

/// An open psychiatric inpatient stay, as psychiatry recorded it: from the admission to the
/// discharge, with the discharge-ready notice that belongs to it. Psychiatry's record; who may
/// see what of it is decided in `domain::visibility` and `domain::entry_view`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InpatientStay {
    /// First day of the stay.
    pub admitted_on: NaiveDate,
    /// Voluntary or compulsory (the latest admission of the stay: care can be converted).
    pub care_form: CareForm,
    /// The discharge-ready notice of this stay, once given.
    pub discharge_ready_on: Option<NaiveDate>,
}

/// How many calendar days after a discharge-ready notice the SIP must be held by (DOMAIN.md §4).
pub const SIP_DUE_WITHIN_DAYS: i64 = 3;

/// Where the SIP owed after a discharge-ready notice stands on a business day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SipDeadlineStatus {
    /// Not yet held, and the last day to hold it has not passed.
    Due,
    /// Not held by the last day.
    Overdue,
}

/// The SIP owed after a discharge-ready notice, until `SipHeld` is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipDeadline {
    /// The discharge-ready notice's day.
    pub ready_on: NaiveDate,
    /// The last day the SIP may be held on (ready_on + 3 calendar days).
    pub due_by: NaiveDate,
}

impl SipDeadline {
    /// The deadline set by a notice on `ready_on`.
    pub fn after_notice(ready_on: NaiveDate) -> Self {
        Self {
            ready_on,
            due_by: ready_on + chrono::Duration::days(SIP_DUE_WITHIN_DAYS),
        }
    }

    /// Due or overdue on business day `on`.
    pub fn status_on(&self, on: NaiveDate) -> SipDeadlineStatus {
        if on > self.due_by {
            SipDeadlineStatus::Overdue
        } else {
            SipDeadlineStatus::Due
        }
    }
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
    /// The party its author acted for (`visibility::party_of`): within one agency only that
    /// party may correct it. Defaults to none for a state kept before it was remembered, which
    /// no party may then correct until it is refolded from the history.
    #[serde(default)]
    pub author_party: Option<crate::events::ConsentParty>,
}

/// The participant aggregate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub(super) participant_id: Option<ParticipantId>,
    pub(super) lifecycle: Lifecycle,
    pub(super) unit: Option<UnitId>,
    pub(super) coach: Option<PersonId>,
    pub(super) consents: Vec<ConsentRecord>,
    /// The allow-list, once the identity is protected: persons of named organisations.
    #[serde(default)]
    pub(super) protected_identity: Option<Vec<AllowedReader>>,
    /// The social-services unit: set by the first accepted case-officer event (DOMAIN.md §6).
    #[serde(default)]
    pub(super) social_services_unit: Option<UnitId>,
    pub(super) activities: BTreeMap<ActivityId, ActivityRecord>,
    pub(super) situation: Situation,
    /// Every event id ever recorded. JetStream's dedupe window is time-bounded; this is not.
    pub(super) recorded: BTreeMap<EventId, RecordedVerdict>,
    pub(super) last_sequence: u64,
    pub(super) last_hash: String,
    /// The latest system time stamped on any entry so far: the next entry is stamped after it.
    #[serde(default)]
    pub(super) last_recorded_at: Option<DateTime<Utc>>,
    /// The open inpatient stay, if any.
    #[serde(default)]
    pub(super) inpatient_stay: Option<InpatientStay>,
    /// The SIP owed after the latest discharge-ready notice, until one is held.
    #[serde(default)]
    pub(super) sip_deadline: Option<SipDeadline>,
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
            inpatient_stay: None,
            sip_deadline: None,
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

    /// The open inpatient stay (psychiatry's record: not for other parties as such).
    pub fn inpatient_stay(&self) -> Option<&InpatientStay> {
        self.inpatient_stay.as_ref()
    }

    /// The SIP owed after a discharge-ready notice and not yet held, if any.
    pub fn sip_deadline(&self) -> Option<SipDeadline> {
        self.sip_deadline
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

    /// The allow-list when the participant's identity is protected: who may open it is
    /// [`Participant::may_open`], which matches each entry's organisation as well as its id.
    pub fn allow_list(&self) -> Option<&[AllowedReader]> {
        self.protected_identity.as_deref()
    }

    /// Whether the identity is protected (who may open it: [`Participant::allow_list`]).
    pub fn identity_protected(&self) -> bool {
        self.protected_identity.is_some()
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
}
