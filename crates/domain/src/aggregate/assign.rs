//! The assignments: the state change each accepted body makes, which `apply` calls.
//!
//! Only assignment: every check was made in `decide` before the entry was recorded, so nothing
//! here refuses anything, and folding an accepted history always gives the same state.

use chrono::NaiveDate;
use std::collections::BTreeMap;

use super::{
    ActivityRecord, ActivityStatus, ConsentRecord, InpatientStay, Lifecycle, Participant,
    SipDeadline,
};
use crate::envelope::Agency;
use crate::events::EventBody;
use crate::gates::{DecidedGate, GateDecision, GateDecisions, GateKind};
use crate::ids::ActivityId;
use crate::values::{Availability, DecisionOutcome, Period};

impl Participant {
    /// The state change an accepted body makes. Only assignment: every check was in `decide`.
    pub(super) fn assign(&mut self, body: EventBody, agency: Agency, occurred_on: NaiveDate) {
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
                self.situation.benefits_on_record.insert(benefit);
                self.situation.employed = employed;
            }
            EventBody::BenefitEnded { benefit, .. } => {
                self.situation.benefits.remove(&benefit);
                self.situation.benefits_on_record.insert(benefit);
            }
            // The latest statement of a benefit is the one that counts.
            EventBody::BenefitSelfReported { benefit, said_on } => {
                self.situation
                    .self_reported_benefits
                    .insert(benefit, said_on);
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
            // An admission is unavailability through the one availability gate, whatever the
            // care form: nothing outside psychiatry and social services may tell the forms
            // apart, so no state but the stay itself depends on it. A running job is left alone.
            EventBody::InpatientAdmitted {
                admitted_on,
                care_form,
            } => {
                self.situation.availability =
                    Some((Availability::TemporarilyUnavailable, admitted_on));
                let discharge_ready_on = self
                    .inpatient_stay
                    .as_ref()
                    .and_then(|stay| stay.discharge_ready_on);
                let admitted_on = self
                    .inpatient_stay
                    .as_ref()
                    .map_or(admitted_on, |stay| stay.admitted_on.min(admitted_on));
                self.inpatient_stay = Some(InpatientStay {
                    admitted_on,
                    care_form,
                    discharge_ready_on,
                });
            }
            EventBody::InpatientDischarged { discharged_on } => {
                self.situation.availability = Some((Availability::Available, discharged_on));
                self.inpatient_stay = None;
            }
            EventBody::DischargeReady { ready_on } => {
                if let Some(stay) = self.inpatient_stay.as_mut() {
                    stay.discharge_ready_on = Some(ready_on);
                }
                self.sip_deadline = Some(SipDeadline::after_notice(ready_on));
            }
            // A SIP held on or after the notice is the one it asked for.
            EventBody::SipHeld { held_on } => {
                if self
                    .sip_deadline
                    .is_some_and(|deadline| deadline.ready_on <= held_on)
                {
                    self.sip_deadline = None;
                }
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
            | EventBody::SipEstablished { .. }
            | EventBody::WaitingListPlaceOffered { .. }
            | EventBody::MedicalCertificateReceived { .. }
            | EventBody::AvstamningsmoteHeld { .. }
            | EventBody::RehabPlanRevised { .. }
            | EventBody::DisabilityCodingRequested { .. }
            | EventBody::DisabilityCodingRegistered { .. }
            | EventBody::IpsReferralSent { .. }
            | EventBody::TreatmentTeamMeetingHeld { .. }
            | EventBody::MedicalCertificateIssued { .. } => {}
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
            | EventBody::AvailabilityChanged { .. }
            | EventBody::InpatientAdmitted { .. }
            | EventBody::DischargeReady { .. }
            // A corrected statement is stated again (the one it corrects is not withdrawn).
            | EventBody::BenefitSelfReported { .. }) => self.assign(body, agency, occurred_on),

            _ => {}
        }
    }
}
