//! What each event body is to the rest of the system: its stored name, which agency records it,
//! and its data category (secrecy class and consent scope).
//!
//! These are the per-body tables the rules, the visibility decisions and the services look up.
//! Each is an exhaustive match, so a new body does not compile until it has a row in every one.

use super::EventBody;
use crate::envelope::{Agency, DataCategory};

impl EventBody {
    /// The stored event type (the serde tag).
    pub fn event_type(&self) -> &'static str {
        self.into()
    }

    /// Which agency records this kind of event. Consents and corrections: any agency.
    pub fn recorded_by(&self, agency: Agency) -> bool {
        match self {
            EventBody::ConsentGranted { .. }
            | EventBody::ConsentWithdrawn { .. }
            | EventBody::EventCorrected { .. } => true,
            // Both FK and AF give green lights on activities.
            EventBody::ActivityDecision { .. } => match agency {
                Agency::Forsakringskassan | Agency::Arbetsformedlingen => true,
                Agency::Municipality | Agency::Psychiatry => false,
            },
            other => other.owning_agency() == Some(agency),
        }
    }

    /// The one agency that records this kind of event, where there is one.
    pub fn owning_agency(&self) -> Option<Agency> {
        match self {
            EventBody::ConsentGranted { .. }
            | EventBody::ConsentWithdrawn { .. }
            | EventBody::EventCorrected { .. }
            | EventBody::ActivityDecision { .. } => None,
            EventBody::BenefitRegistered { .. }
            | EventBody::BenefitEnded { .. }
            | EventBody::MedicalCertificateReceived { .. }
            | EventBody::AvstamningsmoteHeld { .. }
            | EventBody::RehabPlanEstablished { .. }
            | EventBody::RehabPlanRevised { .. }
            | EventBody::ActivityAgreementMade { .. }
            | EventBody::DormantBenefitDecided { .. } => Some(Agency::Forsakringskassan),
            EventBody::JobSeekerRegistered { .. }
            | EventBody::JobSeekerDeregistered { .. }
            | EventBody::DisabilityCodingRequested { .. }
            | EventBody::DisabilityCodingRegistered { .. }
            | EventBody::ProgrammeAssigned { .. }
            | EventBody::ProgrammeEnded { .. }
            | EventBody::SiusDecided { .. }
            | EventBody::SiusEnded { .. }
            | EventBody::SubsidyDecided { .. } => Some(Agency::Arbetsformedlingen),
            EventBody::IpsReferralSent { .. }
            | EventBody::TreatmentTeamMeetingHeld { .. }
            | EventBody::MedicalCertificateIssued { .. }
            | EventBody::AvailabilityChanged { .. }
            | EventBody::InpatientAdmitted { .. }
            | EventBody::InpatientDischarged { .. }
            | EventBody::DischargeReady { .. } => Some(Agency::Psychiatry),
            EventBody::ParticipantReferred { .. }
            | EventBody::ReferralDeclined { .. }
            | EventBody::PlacedOnWaitingList { .. }
            | EventBody::WaitingListPlaceOffered { .. }
            | EventBody::ParticipantEnrolled { .. }
            | EventBody::CoachAssigned { .. }
            | EventBody::ParticipantPaused { .. }
            | EventBody::ParticipantResumed
            | EventBody::ParticipantDischarged { .. }
            | EventBody::ParticipantReEnrolled { .. }
            | EventBody::IdentityProtected { .. }
            | EventBody::ProfileRecorded { .. }
            | EventBody::BenefitsCounsellingGiven { .. }
            | EventBody::DisclosurePreferenceRecorded { .. }
            | EventBody::EmployerContactMade { .. }
            | EventBody::ActivityProposed { .. }
            | EventBody::ActivityStarted { .. }
            | EventBody::ActivityEnded { .. }
            | EventBody::JobStarted { .. }
            | EventBody::HoursChanged { .. }
            | EventBody::JobEnded { .. }
            | EventBody::StudiesStarted { .. }
            | EventBody::StudiesEnded { .. }
            | EventBody::FollowAlongContact { .. }
            | EventBody::FollowUpRecorded { .. }
            | EventBody::OutreachAttempted { .. }
            | EventBody::SipHeld { .. }
            | EventBody::SipEstablished { .. }
            | EventBody::BenefitSelfReported { .. }
            | EventBody::SocialAssistanceDecided { .. }
            | EventBody::ActivityAcceptedInPlanning { .. } => Some(Agency::Municipality),
        }
    }

    /// The data category (secrecy class, consent scope) of this event when `agency` records it.
    pub fn data_category(&self, agency: Agency) -> DataCategory {
        match self {
            EventBody::ParticipantReferred { .. }
            | EventBody::ReferralDeclined { .. }
            | EventBody::PlacedOnWaitingList { .. }
            | EventBody::WaitingListPlaceOffered { .. }
            | EventBody::ParticipantEnrolled { .. }
            | EventBody::CoachAssigned { .. }
            | EventBody::ParticipantPaused { .. }
            | EventBody::ParticipantResumed
            | EventBody::IdentityProtected { .. }
            | EventBody::ParticipantDischarged { .. }
            | EventBody::ParticipantReEnrolled { .. }
            | EventBody::OutreachAttempted { .. }
            | EventBody::SipHeld { .. }
            | EventBody::SipEstablished { .. } => DataCategory::Participation,
            EventBody::ConsentGranted { .. } | EventBody::ConsentWithdrawn { .. } => {
                DataCategory::Consent
            }
            EventBody::ProfileRecorded { .. }
            | EventBody::DisclosurePreferenceRecorded { .. }
            | EventBody::BenefitsCounsellingGiven { .. }
            // The participant's own statement, gathered like the profile (kartläggning; SUS's
            // income source at enrolment), not an agency's decision.
            | EventBody::BenefitSelfReported { .. } => DataCategory::VocationalProfile,
            EventBody::EmployerContactMade { .. }
            | EventBody::ActivityProposed { .. }
            | EventBody::ActivityStarted { .. }
            | EventBody::ActivityEnded { .. }
            | EventBody::JobStarted { .. }
            | EventBody::HoursChanged { .. }
            | EventBody::JobEnded { .. }
            | EventBody::StudiesStarted { .. }
            | EventBody::StudiesEnded { .. }
            | EventBody::FollowAlongContact { .. } => DataCategory::ActivitiesAndWork,
            EventBody::FollowUpRecorded { .. } => DataCategory::FollowUpNotes,
            EventBody::SocialAssistanceDecided { .. }
            | EventBody::ActivityAcceptedInPlanning { .. } => DataCategory::SocialAssistanceStatus,
            EventBody::BenefitRegistered { .. }
            | EventBody::BenefitEnded { .. }
            | EventBody::MedicalCertificateReceived { .. }
            | EventBody::AvstamningsmoteHeld { .. }
            | EventBody::RehabPlanEstablished { .. }
            | EventBody::RehabPlanRevised { .. }
            | EventBody::ActivityAgreementMade { .. }
            | EventBody::DormantBenefitDecided { .. } => DataCategory::BenefitDecisions,
            EventBody::ActivityDecision { .. } if agency == Agency::Arbetsformedlingen => {
                DataCategory::LabourMarket
            }
            EventBody::ActivityDecision { .. } => DataCategory::BenefitDecisions,
            EventBody::JobSeekerRegistered { .. }
            | EventBody::JobSeekerDeregistered { .. }
            | EventBody::DisabilityCodingRequested { .. }
            | EventBody::DisabilityCodingRegistered { .. }
            | EventBody::ProgrammeAssigned { .. }
            | EventBody::ProgrammeEnded { .. }
            | EventBody::SiusDecided { .. }
            | EventBody::SiusEnded { .. }
            | EventBody::SubsidyDecided { .. } => DataCategory::LabourMarket,
            EventBody::IpsReferralSent { .. }
            | EventBody::TreatmentTeamMeetingHeld { .. }
            | EventBody::MedicalCertificateIssued { .. }
            | EventBody::AvailabilityChanged { .. }
            | EventBody::InpatientAdmitted { .. }
            | EventBody::InpatientDischarged { .. }
            | EventBody::DischargeReady { .. } => DataCategory::HealthCoarse,
            EventBody::EventCorrected { corrected, .. } => corrected.data_category(agency),
        }
    }
}
