//! The rules: `decide` and its checks, which say whether a submission is accepted or which
//! rule it breaks.
//!
//! Only reads the state; every change is made by `apply` (see `assign.rs`), so the rules can be
//! read and extended without reasoning about mutation.

use chrono::{Datelike, NaiveDate};

use super::{ActivityRecord, ActivityStatus, Lifecycle, Participant};
use crate::errors::RuleViolation;
use crate::events::{EventBody, Outcome, Submission};
use crate::gates;
use crate::ids::ActivityId;
use crate::values;
use crate::values::{ActivityKind, BenefitKind, Subsidy};

impl Participant {
    /// The rules. `Ok` means accept; `Err` names the first rule broken.
    pub(super) fn decide(&self, submission: &Submission) -> Result<(), RuleViolation> {
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
            | EventBody::SipEstablished { .. }
            | EventBody::BenefitSelfReported { .. } => self.require_enrolled(true),
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
            | EventBody::InpatientAdmitted { .. }
            | EventBody::DischargeReady { .. } => self.require_referred(),
            EventBody::InpatientDischarged { discharged_on } => {
                self.require_referred()?;
                let stay = self
                    .inpatient_stay
                    .as_ref()
                    .ok_or(RuleViolation::NoInpatientStay)?;
                require_not_before(*discharged_on, stay.admitted_on)
            }
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
                // The access table lets both municipal parties call CorrectEvent, and the
                // corrected body is any body of the original's type: without this a coach
                // could rewrite social services' decision (and so lift its gate), or a case
                // officer an enrolment (and so move the participant to another unit).
                let corrector = crate::visibility::party_of(agency, submission.envelope.actor.role);
                if corrector.is_none() || corrector != original.author_party {
                    return Err(RuleViolation::CorrectionByAnotherParty);
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
