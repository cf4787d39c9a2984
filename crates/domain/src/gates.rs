//! The green-light gates (DOMAIN.md §5): which agency decisions an activity or job start needs,
//! given the participant's recorded situation, and which of them are missing on a day.
//!
//! Pure functions over the aggregate's state, so the start rule in `decide`, the read models
//! (pending approvals, the coach's live board) and an auditor's replay all compute the same
//! answer. Gates stack: each row of the table that applies adds its gate.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::aggregate::{ActivityRecord, ActivityStatus, Situation};
use crate::envelope::Agency;
use crate::ids::ActivityId;
use crate::values::{ActivityKind, Availability, BenefitKind, Period, SocialAssistanceStatus};

/// One agency decision a start may need.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum GateKind {
    /// Försäkringskassan's decision that the activity is compatible with sjukpenning /
    /// rehabiliteringspenning (with the rehabilitation plan).
    FkActivityDecision,
    /// Försäkringskassan's agreement (överenskommelse) under aktivitetsersättning.
    FkActivityAgreement,
    /// Försäkringskassan's decision on dormant benefit before paid work.
    FkDormantBenefit,
    /// The försörjningsstöd officer accepts the activity in the planning.
    SocialServicesPlanning,
    /// Arbetsförmedlingen's decision on another activity in programme hours.
    AfActivityDecision,
    /// Arbetsförmedlingen's decision on the job's wage subsidy.
    AfSubsidyDecision,
    /// Psychiatry reports the participant available again.
    PsychiatryAvailability,
}

impl GateKind {
    /// Every gate, in table order.
    pub const ALL: [GateKind; 7] = [
        GateKind::FkActivityDecision,
        GateKind::FkActivityAgreement,
        GateKind::FkDormantBenefit,
        GateKind::SocialServicesPlanning,
        GateKind::AfActivityDecision,
        GateKind::AfSubsidyDecision,
        GateKind::PsychiatryAvailability,
    ];

    /// The stable token used in errors and read models.
    pub fn token(self) -> &'static str {
        self.into()
    }

    /// The gate named by `token`, if any.
    pub fn from_token(token: &str) -> Option<GateKind> {
        token.parse().ok()
    }

    /// The agency whose decision resolves the gate.
    pub fn deciding_agency(self) -> Agency {
        match self {
            GateKind::FkActivityDecision
            | GateKind::FkActivityAgreement
            | GateKind::FkDormantBenefit => Agency::Forsakringskassan,
            GateKind::SocialServicesPlanning => Agency::Municipality,
            GateKind::AfActivityDecision | GateKind::AfSubsidyDecision => {
                Agency::Arbetsformedlingen
            }
            GateKind::PsychiatryAvailability => Agency::Psychiatry,
        }
    }
}

/// The latest decision recorded on one gate of one activity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum GateDecision {
    /// Approved for a period.
    Approved {
        /// Validity.
        valid: Period,
    },
    /// Rejected.
    Rejected,
    /// More information needed.
    InformationNeeded,
}

/// A gate's latest decision and the business day it was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecidedGate {
    /// The decision.
    pub decision: GateDecision,
    /// When it was made (the decision event's business day).
    pub decided_on: NaiveDate,
}

/// Decisions per gate, kept on each activity.
pub type GateDecisions = BTreeMap<GateKind, DecidedGate>;

/// Which benefit facts a gate is computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BenefitFacts {
    /// Försäkringskassan's records only.
    Recorded,
    /// FK's records, and the participant's own statement of a benefit FK has no record of.
    RecordedAndStated,
}

fn benefit_on(
    situation: &Situation,
    benefits: &[BenefitKind],
    on: NaiveDate,
    facts: BenefitFacts,
) -> bool {
    benefits.iter().any(|benefit| {
        let recorded = situation
            .benefits
            .get(benefit)
            .is_some_and(|(_, period)| period.contains(on));
        // FK's record of a kind wins over the statement, whichever came first.
        let stated = match facts {
            BenefitFacts::Recorded => false,
            BenefitFacts::RecordedAndStated => {
                !situation.benefits_on_record.contains(benefit)
                    && situation
                        .self_reported_benefits
                        .get(benefit)
                        .is_some_and(|said_on| *said_on <= on)
            }
        };
        recorded || stated
    })
}

/// The gates a start of `activity` on `on` needs, from the situation as recorded and from the
/// participant's own statements of benefits FK has no record of (see [`stated_only_gates`]).
pub fn required_gates(
    situation: &Situation,
    activity: &ActivityRecord,
    on: NaiveDate,
) -> Vec<GateKind> {
    gates_from(situation, activity, on, BenefitFacts::RecordedAndStated)
}

/// The gates of [`required_gates`] that apply only because the participant said they have a
/// benefit Försäkringskassan has no record of: shown as unknown ("confirm with FK"), never as
/// approved or refused, and they keep the start closed like any gate not approved. FK's own
/// record of that benefit, when it comes (or if it came first), decides instead.
pub fn stated_only_gates(
    situation: &Situation,
    activity: &ActivityRecord,
    on: NaiveDate,
) -> Vec<GateKind> {
    let recorded = gates_from(situation, activity, on, BenefitFacts::Recorded);
    gates_from(situation, activity, on, BenefitFacts::RecordedAndStated)
        .into_iter()
        .filter(|gate| !recorded.contains(gate))
        .collect()
}

fn gates_from(
    situation: &Situation,
    activity: &ActivityRecord,
    on: NaiveDate,
    facts: BenefitFacts,
) -> Vec<GateKind> {
    let mut gates = Vec::new();
    let is_job = activity.kind == ActivityKind::Job;
    let work_like = matches!(
        activity.kind,
        ActivityKind::Arbetsprovning | ActivityKind::Arbetstraning | ActivityKind::Praktik
    );
    // An arbetsprövning at the own employer under the 2026 rule needs a notice to FK, not an
    // approval: the proposal itself is that notice (FK sees it under consent).
    if work_like
        && !activity.at_own_employer
        && benefit_on(
            situation,
            &[
                BenefitKind::Sjukpenning,
                BenefitKind::Rehabiliteringspenning,
            ],
            on,
            facts,
        )
    {
        gates.push(GateKind::FkActivityDecision);
    }
    if !is_job && benefit_on(situation, &[BenefitKind::Aktivitetsersattning], on, facts) {
        gates.push(GateKind::FkActivityAgreement);
    }
    if is_job
        && benefit_on(
            situation,
            &[
                BenefitKind::Aktivitetsersattning,
                BenefitKind::Sjukersattning,
            ],
            on,
            facts,
        )
    {
        gates.push(GateKind::FkDormantBenefit);
    }
    if !is_job && situation.social_assistance == Some(SocialAssistanceStatus::Granted) {
        gates.push(GateKind::SocialServicesPlanning);
    }
    if !is_job
        && situation
            .programmes
            .values()
            .any(|(period, with_allowance)| *with_allowance && period.contains(on))
    {
        gates.push(GateKind::AfActivityDecision);
    }
    if is_job && activity.subsidy.is_some() {
        gates.push(GateKind::AfSubsidyDecision);
    }
    if matches!(situation.availability, Some((Availability::TemporarilyUnavailable, from)) if from <= on)
    {
        gates.push(GateKind::PsychiatryAvailability);
    }
    gates
}

/// The required gates not approved for `on`, in table order. Empty means GREEN.
pub fn missing_gates(
    situation: &Situation,
    activity: &ActivityRecord,
    on: NaiveDate,
) -> Vec<GateKind> {
    required_gates(situation, activity, on)
        .into_iter()
        .filter(|gate| !matches!(activity.gate_decisions.get(gate), Some(DecidedGate { decision: GateDecision::Approved { valid }, .. }) if valid.contains(on)))
        .collect()
}

/// One gate of an open activity, as the read models show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateView {
    /// Which gate.
    pub kind: GateKind,
    /// Its latest decision, if any.
    pub decided: Option<DecidedGate>,
    /// It applies only because of the participant's own statement of a benefit (see
    /// [`stated_only_gates`]): unknown until FK's record exists.
    pub stated_only: bool,
}

/// The green-light request of one activity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GreenLightRequest {
    /// The activity.
    pub activity_id: ActivityId,
    /// What kind.
    pub kind: ActivityKind,
    /// Its planned start: the day every gate must be approved for.
    pub planned_start: NaiveDate,
    /// When it was proposed: waiting time counts from here.
    pub proposed_on: NaiveDate,
    /// Proposed and not yet started: still waiting for its light.
    pub open: bool,
    /// Started and not ended: an approval it runs on may still expire.
    pub running: bool,
    /// The gates its start needs (from the situation as recorded), and any gate that was
    /// decided even if no longer needed, so a decision is never lost from the record.
    pub gates: Vec<GateView>,
}

/// Every activity's green-light request, open or not.
pub fn requests(
    activities: &BTreeMap<ActivityId, ActivityRecord>,
    situation: &Situation,
) -> Vec<GreenLightRequest> {
    activities
        .iter()
        .map(|(activity_id, activity)| {
            let mut kinds = required_gates(situation, activity, activity.planned_start);
            let stated_only = stated_only_gates(situation, activity, activity.planned_start);
            for decided in activity.gate_decisions.keys() {
                if !kinds.contains(decided) {
                    kinds.push(*decided);
                }
            }
            GreenLightRequest {
                activity_id: *activity_id,
                kind: activity.kind,
                planned_start: activity.planned_start,
                proposed_on: activity.proposed_on,
                open: activity.status == ActivityStatus::Proposed,
                running: matches!(activity.status, ActivityStatus::Started { .. }),
                gates: kinds
                    .into_iter()
                    .map(|kind| GateView {
                        kind,
                        decided: activity.gate_decisions.get(&kind).cloned(),
                        stated_only: stated_only.contains(&kind),
                    })
                    .collect(),
            }
        })
        .collect()
}
