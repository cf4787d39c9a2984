//! Pins every name the domain writes to the database, the bus or the wire: event types, rule
//! names, the agency, role, category, consent-party and gate tokens, and the serde names of the
//! value enums stored inside event bodies. A stored or sent name never changes (old rows and
//! old clients must still read), so each is spelt out here as it was when the tables were
//! moved to derives, and a derive that would spell one differently fails this test.
//!
//! Each table is an exhaustive `match` (written by [`pin!`]), so a new variant does not compile
//! until its name is pinned here too.

use chrono::NaiveDate;
use domain::gates::GateKind;
use domain::values::{
    ActivityKind, Availability, BenefitKind, CareForm, CounselledBenefit, DecisionOutcome,
    DischargeReason, DisclosurePreference, EducationLevel, FollowUpStatus, JobEndReason,
    OutreachChannel, Period, SocialAssistanceStatus, Subsidy,
};
use domain::{
    ActivityId, Agency, AllowedReader, ConsentId, ConsentParty, DataCategory, EventBody, EventId,
    PersonId, ProgrammeId, ReferralSource, RetentionClass, Role, RuleViolation, UnitId,
};
use serde_json::Value;
use strum::IntoEnumIterator;

/// `(variant, pinned name)` for every variant of a fieldless enum, from one exhaustive match.
macro_rules! pin {
    ($type:ident { $($variant:ident => $name:literal),+ $(,)? }) => {{
        fn pinned(value: $type) -> &'static str {
            match value {
                $($type::$variant => $name),+
            }
        }
        [$($type::$variant),+].map(|value| (value, pinned(value)))
    }};
}

fn serde_name<T: serde::Serialize>(value: T) -> Option<Value> {
    serde_json::to_value(value).ok()
}

#[test]
fn agency_tokens_are_pinned() {
    let pinned = pin!(Agency {
        Municipality => "municipality",
        Forsakringskassan => "fk",
        Arbetsformedlingen => "af",
        Psychiatry => "psychiatry",
    });
    assert_eq!(pinned.map(|(agency, _)| agency), Agency::ALL);
    assert_eq!(Agency::iter().collect::<Vec<_>>(), Agency::ALL);
    for (agency, token) in pinned {
        assert_eq!(agency.token(), token);
        assert_eq!(agency.to_string(), token);
        assert_eq!(Agency::from_token(token), Some(agency));
    }
    // The serde name (inside stored envelopes) is not the token.
    let serde_names = pin!(Agency {
        Municipality => "municipality",
        Forsakringskassan => "forsakringskassan",
        Arbetsformedlingen => "arbetsformedlingen",
        Psychiatry => "psychiatry",
    });
    for (agency, name) in serde_names {
        assert_eq!(serde_name(agency), Some(Value::from(name)));
    }
    for not_a_token in ["forsakringskassan", "arbetsformedlingen", "FK", "", " fk"] {
        assert_eq!(Agency::from_token(not_a_token), None, "{not_a_token:?}");
    }
}

#[test]
fn role_tokens_are_pinned() {
    let pinned = pin!(Role {
        Coach => "coach",
        TeamLeader => "team_leader",
        CaseOfficer => "case_officer",
        Auditor => "auditor",
        System => "system",
    });
    for (role, token) in pinned {
        assert_eq!(role.token(), token);
        assert_eq!(Role::from_token(token), Some(role));
        assert_eq!(serde_name(role), Some(Value::from(token)));
    }
    for not_a_token in ["Coach", "team-leader", "teamleader", ""] {
        assert_eq!(Role::from_token(not_a_token), None, "{not_a_token:?}");
    }
}

#[test]
fn data_category_tokens_are_pinned() {
    let pinned = pin!(DataCategory {
        Participation => "participation",
        Consent => "consent",
        VocationalProfile => "vocational_profile",
        ActivitiesAndWork => "activities_and_work",
        BenefitDecisions => "benefit_decisions",
        LabourMarket => "labour_market",
        HealthCoarse => "health_coarse",
        SocialAssistanceStatus => "social_assistance_status",
        FollowUpNotes => "follow_up_notes",
    });
    assert_eq!(pinned.map(|(category, _)| category), DataCategory::ALL);
    assert_eq!(DataCategory::iter().collect::<Vec<_>>(), DataCategory::ALL);
    for (category, token) in pinned {
        assert_eq!(category.token(), token);
        assert_eq!(DataCategory::from_token(token), Some(category));
        assert_eq!(serde_name(category), Some(Value::from(token)));
    }
    assert_eq!(DataCategory::from_token("Consent"), None);
}

#[test]
fn consent_party_tokens_are_pinned() {
    let pinned = pin!(ConsentParty {
        IpsUnit => "ips_unit",
        SocialServices => "social_services",
        Forsakringskassan => "forsakringskassan",
        Arbetsformedlingen => "arbetsformedlingen",
        Psychiatry => "psychiatry",
    });
    for (party, token) in pinned {
        assert_eq!(party.token(), token);
        assert_eq!(ConsentParty::from_token(token), Some(party));
        assert_eq!(serde_name(party), Some(Value::from(token)));
    }
}

#[test]
fn gate_tokens_are_pinned() {
    let pinned = pin!(GateKind {
        FkActivityDecision => "fk_activity_decision",
        FkActivityAgreement => "fk_activity_agreement",
        FkDormantBenefit => "fk_dormant_benefit",
        SocialServicesPlanning => "social_services_planning",
        AfActivityDecision => "af_activity_decision",
        AfSubsidyDecision => "af_subsidy_decision",
        PsychiatryAvailability => "psychiatry_availability",
    });
    assert_eq!(pinned.map(|(gate, _)| gate), GateKind::ALL);
    assert_eq!(GateKind::iter().collect::<Vec<_>>(), GateKind::ALL);
    for (gate, token) in pinned {
        assert_eq!(gate.token(), token);
        assert_eq!(GateKind::from_token(token), Some(gate));
        assert_eq!(serde_name(gate), Some(Value::from(token)));
    }
    assert_eq!(GateKind::from_token("no_gate"), None);
}

/// The value enums are stored inside event bodies by their serde names.
#[test]
fn stored_value_names_are_pinned() {
    fn check<T: serde::Serialize + Copy + std::fmt::Debug>(pinned: &[(T, &str)]) {
        for (value, name) in pinned {
            assert_eq!(serde_name(*value), Some(Value::from(*name)), "{value:?}");
        }
    }
    let activity_kinds = pin!(ActivityKind {
        Arbetsprovning => "arbetsprovning",
        Arbetstraning => "arbetstraning",
        Praktik => "praktik",
        Studies => "studies",
        SocialTraining => "social_training",
        OtherOccupation => "other_occupation",
        Job => "job",
    });
    check(&activity_kinds);
    // The token (in `wrong_activity_kind` reasons) is the serde name.
    for (kind, name) in activity_kinds {
        assert_eq!(kind.token(), name);
    }
    check(&pin!(Subsidy {
        Lonebidrag => "lonebidrag",
        Nystartsjobb => "nystartsjobb",
        Introduktionsjobb => "introduktionsjobb",
    }));
    check(&pin!(BenefitKind {
        Sjukpenning => "sjukpenning",
        Rehabiliteringspenning => "rehabiliteringspenning",
        Aktivitetsersattning => "aktivitetsersattning",
        Sjukersattning => "sjukersattning",
    }));
    check(&pin!(DisclosurePreference {
        None => "none",
        NeedsOnly => "needs_only",
        Diagnosis => "diagnosis",
    }));
    check(&pin!(EducationLevel {
        PrimaryIncomplete => "primary_incomplete",
        Primary => "primary",
        UpperSecondary => "upper_secondary",
        PostSecondary => "post_secondary",
    }));
    check(&pin!(DecisionOutcome {
        Approved => "approved",
        ApprovedWithConditions => "approved_with_conditions",
        Rejected => "rejected",
        MoreInformationNeeded => "more_information_needed",
    }));
    check(&pin!(SocialAssistanceStatus {
        Granted => "granted",
        Denied => "denied",
        Ended => "ended",
    }));
    check(&pin!(Availability {
        Available => "available",
        TemporarilyUnavailable => "temporarily_unavailable",
    }));
    check(&pin!(CareForm {
        Voluntary => "voluntary",
        Compulsory => "compulsory",
    }));
    check(&pin!(DischargeReason {
        EmployedAndStable => "employed_and_stable",
        Studies => "studies",
        Moved => "moved",
        PoorHealth => "poor_health",
        LostContact => "lost_contact",
        Declined => "declined",
        Other => "other",
    }));
    check(&pin!(JobEndReason {
        Resigned => "resigned",
        Dismissed => "dismissed",
        FixedTermEnded => "fixed_term_ended",
        Health => "health",
        Other => "other",
    }));
    check(&pin!(OutreachChannel {
        Phone => "phone",
        TextMessage => "text_message",
        Letter => "letter",
        HomeVisit => "home_visit",
        ThroughTreatmentTeam => "through_treatment_team",
    }));
    check(&pin!(FollowUpStatus {
        Searching => "searching",
        InActivity => "in_activity",
        Working => "working",
        Studying => "studying",
        Paused => "paused",
    }));
    check(&pin!(ReferralSource {
        Vuxenpsykiatri => "vuxenpsykiatri",
        Socialpsykiatri => "socialpsykiatri",
        Ifo => "ifo",
        Forsakringskassan => "forsakringskassan",
        Arbetsformedlingen => "arbetsformedlingen",
        OwnInitiative => "own_initiative",
    }));
    check(&pin!(RetentionClass {
        SocialServicesFile => "social_services_file",
        AgencyCaseFile => "agency_case_file",
        HealthCareRecord => "health_care_record",
    }));
    let counselled = [
        (
            CounselledBenefit::Forsakringskassan(BenefitKind::Sjukpenning),
            serde_json::json!({"forsakringskassan": "sjukpenning"}),
        ),
        (
            CounselledBenefit::Forsorjningsstod,
            Value::from("forsorjningsstod"),
        ),
        (
            CounselledBenefit::Aktivitetsstod,
            Value::from("aktivitetsstod"),
        ),
        (CounselledBenefit::Akassa, Value::from("akassa")),
        (CounselledBenefit::Studiestod, Value::from("studiestod")),
    ];
    for (benefit, name) in counselled {
        assert_eq!(serde_name(benefit), Some(name));
    }
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default()
}

fn period() -> Period {
    Period {
        from: day(),
        to: day(),
    }
}

fn activity() -> ActivityId {
    ActivityId(uuid::Uuid::from_u128(0xa1))
}

fn person() -> PersonId {
    PersonId("coach-1".into())
}

fn unit() -> UnitId {
    UnitId("ips-north".into())
}

/// The stored `event_type` of every body, spelt out.
fn pinned_event_type(body: &EventBody) -> &'static str {
    match body {
        EventBody::ParticipantReferred { .. } => "ParticipantReferred",
        EventBody::ReferralDeclined { .. } => "ReferralDeclined",
        EventBody::PlacedOnWaitingList { .. } => "PlacedOnWaitingList",
        EventBody::WaitingListPlaceOffered { .. } => "WaitingListPlaceOffered",
        EventBody::ParticipantEnrolled { .. } => "ParticipantEnrolled",
        EventBody::CoachAssigned { .. } => "CoachAssigned",
        EventBody::ParticipantPaused { .. } => "ParticipantPaused",
        EventBody::ParticipantResumed => "ParticipantResumed",
        EventBody::IdentityProtected { .. } => "IdentityProtected",
        EventBody::ParticipantDischarged { .. } => "ParticipantDischarged",
        EventBody::ParticipantReEnrolled { .. } => "ParticipantReEnrolled",
        EventBody::ConsentGranted { .. } => "ConsentGranted",
        EventBody::ConsentWithdrawn { .. } => "ConsentWithdrawn",
        EventBody::ProfileRecorded { .. } => "ProfileRecorded",
        EventBody::BenefitsCounsellingGiven { .. } => "BenefitsCounsellingGiven",
        EventBody::DisclosurePreferenceRecorded { .. } => "DisclosurePreferenceRecorded",
        EventBody::EmployerContactMade { .. } => "EmployerContactMade",
        EventBody::ActivityProposed { .. } => "ActivityProposed",
        EventBody::ActivityStarted { .. } => "ActivityStarted",
        EventBody::ActivityEnded { .. } => "ActivityEnded",
        EventBody::JobStarted { .. } => "JobStarted",
        EventBody::HoursChanged { .. } => "HoursChanged",
        EventBody::JobEnded { .. } => "JobEnded",
        EventBody::StudiesStarted { .. } => "StudiesStarted",
        EventBody::StudiesEnded { .. } => "StudiesEnded",
        EventBody::FollowAlongContact { .. } => "FollowAlongContact",
        EventBody::FollowUpRecorded { .. } => "FollowUpRecorded",
        EventBody::OutreachAttempted { .. } => "OutreachAttempted",
        EventBody::SipHeld { .. } => "SipHeld",
        EventBody::SipEstablished { .. } => "SipEstablished",
        EventBody::BenefitSelfReported { .. } => "BenefitSelfReported",
        EventBody::SocialAssistanceDecided { .. } => "SocialAssistanceDecided",
        EventBody::ActivityAcceptedInPlanning { .. } => "ActivityAcceptedInPlanning",
        EventBody::BenefitRegistered { .. } => "BenefitRegistered",
        EventBody::BenefitEnded { .. } => "BenefitEnded",
        EventBody::MedicalCertificateReceived { .. } => "MedicalCertificateReceived",
        EventBody::AvstamningsmoteHeld { .. } => "AvstamningsmoteHeld",
        EventBody::RehabPlanEstablished { .. } => "RehabPlanEstablished",
        EventBody::RehabPlanRevised { .. } => "RehabPlanRevised",
        EventBody::ActivityDecision { .. } => "ActivityDecision",
        EventBody::ActivityAgreementMade { .. } => "ActivityAgreementMade",
        EventBody::DormantBenefitDecided { .. } => "DormantBenefitDecided",
        EventBody::JobSeekerRegistered { .. } => "JobSeekerRegistered",
        EventBody::JobSeekerDeregistered { .. } => "JobSeekerDeregistered",
        EventBody::DisabilityCodingRequested { .. } => "DisabilityCodingRequested",
        EventBody::DisabilityCodingRegistered { .. } => "DisabilityCodingRegistered",
        EventBody::ProgrammeAssigned { .. } => "ProgrammeAssigned",
        EventBody::ProgrammeEnded { .. } => "ProgrammeEnded",
        EventBody::SiusDecided { .. } => "SiusDecided",
        EventBody::SiusEnded { .. } => "SiusEnded",
        EventBody::SubsidyDecided { .. } => "SubsidyDecided",
        EventBody::IpsReferralSent { .. } => "IpsReferralSent",
        EventBody::TreatmentTeamMeetingHeld { .. } => "TreatmentTeamMeetingHeld",
        EventBody::MedicalCertificateIssued { .. } => "MedicalCertificateIssued",
        EventBody::AvailabilityChanged { .. } => "AvailabilityChanged",
        EventBody::InpatientAdmitted { .. } => "InpatientAdmitted",
        EventBody::InpatientDischarged { .. } => "InpatientDischarged",
        EventBody::DischargeReady { .. } => "DischargeReady",
        EventBody::EventCorrected { .. } => "EventCorrected",
    }
}

/// How many variants [`pinned_event_type`] names.
const EVENT_TYPES: usize = 59;

/// One body of every type.
fn one_body_of_each_type() -> Vec<EventBody> {
    let text = || "text".to_owned();
    vec![
        EventBody::ParticipantReferred {
            source: ReferralSource::Ifo,
            referrer: None,
        },
        EventBody::ReferralDeclined { reason: text() },
        EventBody::PlacedOnWaitingList { unit: unit() },
        EventBody::WaitingListPlaceOffered {
            unit: unit(),
            coach: person(),
        },
        EventBody::ParticipantEnrolled {
            unit: unit(),
            coach: person(),
        },
        EventBody::CoachAssigned { coach: person() },
        EventBody::ParticipantPaused { reason: text() },
        EventBody::ParticipantResumed,
        EventBody::IdentityProtected {
            allowed_readers: vec![AllowedReader::municipal(person())],
        },
        EventBody::ParticipantDischarged {
            reason: DischargeReason::Moved,
        },
        EventBody::ParticipantReEnrolled {
            unit: unit(),
            coach: person(),
        },
        EventBody::ConsentGranted {
            consent_id: ConsentId(uuid::Uuid::from_u128(0xc1)),
            discloser: ConsentParty::Forsakringskassan,
            recipient: ConsentParty::IpsUnit,
            data_categories: vec![DataCategory::BenefitDecisions],
            valid_from: day(),
            valid_to: day(),
        },
        EventBody::ConsentWithdrawn {
            discloser: ConsentParty::Forsakringskassan,
            recipient: ConsentParty::IpsUnit,
            data_categories: vec![DataCategory::BenefitDecisions],
            effective_from: day(),
        },
        EventBody::ProfileRecorded {
            preferences: text(),
            hours_per_week_wanted: 20,
            education_level: EducationLevel::Primary,
        },
        EventBody::BenefitsCounsellingGiven {
            benefits_discussed: vec![CounselledBenefit::Akassa],
        },
        EventBody::DisclosurePreferenceRecorded {
            preference: DisclosurePreference::NeedsOnly,
        },
        EventBody::EmployerContactMade {
            employer: text(),
            face_to_face: true,
            with_participant: false,
        },
        EventBody::ActivityProposed {
            activity_id: activity(),
            kind: ActivityKind::Praktik,
            employer: None,
            hours_per_week: 20,
            planned_start: day(),
            planned_end: None,
            subsidy: None,
            at_own_employer: false,
        },
        EventBody::ActivityStarted {
            activity_id: activity(),
            started_on: day(),
        },
        EventBody::ActivityEnded {
            activity_id: activity(),
            ended_on: day(),
        },
        EventBody::JobStarted {
            activity_id: activity(),
            employer: text(),
            occupation: text(),
            competitive: true,
            subsidy: None,
            hours_per_week: 20,
            started_on: day(),
        },
        EventBody::HoursChanged {
            activity_id: activity(),
            hours_per_week: 30,
            from: day(),
        },
        EventBody::JobEnded {
            activity_id: activity(),
            ended_on: day(),
            reason: JobEndReason::Resigned,
        },
        EventBody::StudiesStarted {
            activity_id: activity(),
            programme: text(),
            started_on: day(),
        },
        EventBody::StudiesEnded {
            activity_id: activity(),
            ended_on: day(),
        },
        EventBody::FollowAlongContact {
            activity_id: None,
            contact_on: day(),
        },
        EventBody::FollowUpRecorded {
            status: FollowUpStatus::Working,
            obstacles: text(),
            helping_factors: text(),
        },
        EventBody::OutreachAttempted {
            channel: OutreachChannel::Letter,
        },
        EventBody::SipHeld { held_on: day() },
        EventBody::SipEstablished {
            established_on: day(),
        },
        EventBody::BenefitSelfReported {
            benefit: BenefitKind::Sjukpenning,
            said_on: day(),
        },
        EventBody::SocialAssistanceDecided {
            status: SocialAssistanceStatus::Granted,
        },
        EventBody::ActivityAcceptedInPlanning {
            activity_id: activity(),
        },
        EventBody::BenefitRegistered {
            benefit: BenefitKind::Sjukpenning,
            degree_percent: 100,
            period: period(),
            employed: false,
        },
        EventBody::BenefitEnded {
            benefit: BenefitKind::Sjukpenning,
            ended_on: day(),
        },
        EventBody::MedicalCertificateReceived {
            period: period(),
            degree_percent: 50,
        },
        EventBody::AvstamningsmoteHeld { held_on: day() },
        EventBody::RehabPlanEstablished {
            established_on: day(),
        },
        EventBody::RehabPlanRevised { revised_on: day() },
        EventBody::ActivityDecision {
            activity_id: activity(),
            outcome: DecisionOutcome::Approved,
            valid: Some(period()),
            reason: text(),
        },
        EventBody::ActivityAgreementMade {
            activity_id: activity(),
            valid: period(),
        },
        EventBody::DormantBenefitDecided {
            activity_id: activity(),
            valid: period(),
        },
        EventBody::JobSeekerRegistered {
            registered_on: day(),
        },
        EventBody::JobSeekerDeregistered {
            deregistered_on: day(),
        },
        EventBody::DisabilityCodingRequested {
            requested_on: day(),
        },
        EventBody::DisabilityCodingRegistered {
            registered_on: day(),
        },
        EventBody::ProgrammeAssigned {
            programme_id: ProgrammeId(uuid::Uuid::from_u128(0xb1)),
            programme: text(),
            with_activity_allowance: true,
            period: period(),
        },
        EventBody::ProgrammeEnded {
            programme_id: ProgrammeId(uuid::Uuid::from_u128(0xb1)),
            ended_on: day(),
        },
        EventBody::SiusDecided { period: period() },
        EventBody::SiusEnded { ended_on: day() },
        EventBody::SubsidyDecided {
            subsidy: Subsidy::Lonebidrag,
            activity_id: None,
            employer: text(),
            period: period(),
        },
        EventBody::IpsReferralSent { sent_on: day() },
        EventBody::TreatmentTeamMeetingHeld {
            held_on: day(),
            coach_present: true,
        },
        EventBody::MedicalCertificateIssued {
            period: period(),
            degree_percent: 25,
        },
        EventBody::AvailabilityChanged {
            availability: Availability::Available,
            from: day(),
        },
        EventBody::InpatientAdmitted {
            admitted_on: day(),
            care_form: CareForm::Compulsory,
        },
        EventBody::InpatientDischarged {
            discharged_on: day(),
        },
        EventBody::DischargeReady { ready_on: day() },
        EventBody::EventCorrected {
            supersedes: EventId(uuid::Uuid::from_u128(0xe1)),
            reason: text(),
            corrected: Box::new(EventBody::SipHeld { held_on: day() }),
        },
    ]
}

#[test]
fn event_types_are_pinned() {
    let bodies = one_body_of_each_type();
    let names: std::collections::BTreeSet<&str> = bodies.iter().map(pinned_event_type).collect();
    assert_eq!(names.len(), EVENT_TYPES, "one body of each type");
    assert_eq!(bodies.len(), EVENT_TYPES);
    for body in &bodies {
        let pinned = pinned_event_type(body);
        assert_eq!(body.event_type(), pinned);
        // The stored payload's tag is the same name.
        assert_eq!(
            serde_json::to_value(body)
                .ok()
                .and_then(|value| value.get("type").cloned()),
            Some(Value::from(pinned))
        );
    }
}

/// The name of every rule, spelt out.
fn pinned_rule_name(rule: &RuleViolation) -> &'static str {
    match rule {
        RuleViolation::InvalidInput { .. } => "invalid_input",
        RuleViolation::AgencyMayNotRecord { .. } => "agency_may_not_record",
        RuleViolation::ParticipantNotReferred => "participant_not_referred",
        RuleViolation::ParticipantAlreadyReferred => "participant_already_referred",
        RuleViolation::EnrolmentNeedsReferral => "enrolment_needs_referral",
        RuleViolation::ParticipantAlreadyEnrolled => "participant_already_enrolled",
        RuleViolation::ConsentIdAlreadyUsed => "consent_id_already_used",
        RuleViolation::ConsentNotInForce => "consent_not_in_force",
        RuleViolation::ParticipantDischarged => "participant_discharged",
        RuleViolation::ReferralNotPending => "referral_not_pending",
        RuleViolation::NotOnWaitingList => "not_on_waiting_list",
        RuleViolation::AlreadyOnWaitingList => "already_on_waiting_list",
        RuleViolation::ParticipantNotEnrolled => "participant_not_enrolled",
        RuleViolation::ParticipantPaused => "participant_paused",
        RuleViolation::ParticipantAlreadyPaused => "participant_already_paused",
        RuleViolation::ParticipantNotPaused => "participant_not_paused",
        RuleViolation::ParticipantNotDischarged => "participant_not_discharged",
        RuleViolation::CoachAlreadyAssigned => "coach_already_assigned",
        RuleViolation::ActivityIdAlreadyUsed => "activity_id_already_used",
        RuleViolation::UnknownActivity => "unknown_activity",
        RuleViolation::WrongActivityKind { .. } => "wrong_activity_kind",
        RuleViolation::ActivityNotStarted => "activity_not_started",
        RuleViolation::ActivityAlreadyStarted => "activity_already_started",
        RuleViolation::ActivityAlreadyEnded => "activity_already_ended",
        RuleViolation::EndBeforeStart => "end_before_start",
        RuleViolation::UnknownBenefit => "unknown_benefit",
        RuleViolation::NoRehabilitationPlan => "no_rehabilitation_plan",
        RuleViolation::JobSeekerNotRegistered => "job_seeker_not_registered",
        RuleViolation::ProgrammeIdAlreadyUsed => "programme_id_already_used",
        RuleViolation::UnknownProgramme => "unknown_programme",
        RuleViolation::SiusNotActive => "sius_not_active",
        RuleViolation::UnknownCorrectedEvent => "unknown_corrected_event",
        RuleViolation::CorrectionByAnotherAgency => "correction_by_another_agency",
        RuleViolation::CorrectionByAnotherParty => "correction_by_another_party",
        RuleViolation::OwnEmployerTrialRuleNotInForce => "own_employer_trial_rule_not_in_force",
        RuleViolation::OwnEmployerTrialNeedsEmploymentAndFullSjukpenning => {
            "own_employer_trial_needs_employment_and_full_sjukpenning"
        }
        RuleViolation::OwnEmployerTrialLimitReached => "own_employer_trial_limit_reached",
        RuleViolation::GateNotGreen { .. } => "gate_not_green",
        RuleViolation::StartDiffersFromProposal { .. } => "start_differs_from_proposal",
        RuleViolation::CorrectionChangesType => "correction_changes_type",
        RuleViolation::OtherUnit => "other_unit",
        RuleViolation::NoInpatientStay => "no_inpatient_stay",
    }
}

/// How many variants [`pinned_rule_name`] names.
const RULES: usize = 42;

fn one_of_each_rule() -> Vec<RuleViolation> {
    vec![
        RuleViolation::InvalidInput {
            field: "field".into(),
            reason: "reason".into(),
        },
        RuleViolation::AgencyMayNotRecord {
            agency: "fk".into(),
            event_type: "SipHeld".into(),
        },
        RuleViolation::ParticipantNotReferred,
        RuleViolation::ParticipantAlreadyReferred,
        RuleViolation::EnrolmentNeedsReferral,
        RuleViolation::ParticipantAlreadyEnrolled,
        RuleViolation::ConsentIdAlreadyUsed,
        RuleViolation::ConsentNotInForce,
        RuleViolation::ParticipantDischarged,
        RuleViolation::ReferralNotPending,
        RuleViolation::NotOnWaitingList,
        RuleViolation::AlreadyOnWaitingList,
        RuleViolation::ParticipantNotEnrolled,
        RuleViolation::ParticipantPaused,
        RuleViolation::ParticipantAlreadyPaused,
        RuleViolation::ParticipantNotPaused,
        RuleViolation::ParticipantNotDischarged,
        RuleViolation::CoachAlreadyAssigned,
        RuleViolation::ActivityIdAlreadyUsed,
        RuleViolation::UnknownActivity,
        RuleViolation::WrongActivityKind {
            expected: "job".into(),
            actual: "praktik".into(),
        },
        RuleViolation::ActivityNotStarted,
        RuleViolation::ActivityAlreadyStarted,
        RuleViolation::ActivityAlreadyEnded,
        RuleViolation::EndBeforeStart,
        RuleViolation::UnknownBenefit,
        RuleViolation::NoRehabilitationPlan,
        RuleViolation::JobSeekerNotRegistered,
        RuleViolation::ProgrammeIdAlreadyUsed,
        RuleViolation::UnknownProgramme,
        RuleViolation::SiusNotActive,
        RuleViolation::UnknownCorrectedEvent,
        RuleViolation::CorrectionByAnotherAgency,
        RuleViolation::CorrectionByAnotherParty,
        RuleViolation::OwnEmployerTrialRuleNotInForce,
        RuleViolation::OwnEmployerTrialNeedsEmploymentAndFullSjukpenning,
        RuleViolation::OwnEmployerTrialLimitReached,
        RuleViolation::GateNotGreen {
            missing_gates: vec!["fk_activity_decision".into()],
        },
        RuleViolation::StartDiffersFromProposal {
            field: "subsidy".into(),
        },
        RuleViolation::CorrectionChangesType,
        RuleViolation::OtherUnit,
        RuleViolation::NoInpatientStay,
    ]
}

#[test]
fn rule_names_are_pinned() {
    let rules = one_of_each_rule();
    let names: std::collections::BTreeSet<&str> = rules.iter().map(pinned_rule_name).collect();
    assert_eq!(names.len(), RULES, "one of each rule");
    assert_eq!(rules.len(), RULES);
    for rule in &rules {
        let pinned = pinned_rule_name(rule);
        assert_eq!(rule.name(), pinned);
        // Stored inside a rejection, tagged by the same name; the message starts with it.
        assert_eq!(
            serde_json::to_value(rule)
                .ok()
                .and_then(|value| value.get("rule").cloned()),
            Some(Value::from(pinned))
        );
        assert!(
            rule.to_string().starts_with(&format!("{pinned}: ")),
            "{rule}"
        );
    }
}

/// An `IdentityProtected` entry as stored before allow-list entries named their organisation
/// (bare person ids), printed in canonical form by that build, with the hash it chained.
const IDENTITY_PROTECTED_STORED_BEFORE_ORGANISATIONS: &str = r#"{"body":{"allowed_readers":["coach-17","team-leader-1"],"type":"IdentityProtected"},"envelope":{"actor":{"person_id":"coach-17","role":"coach","unit":"hudiksvall-ips"},"agency":"municipality","causation_id":null,"correlation_id":null,"data_category":"participation","event_id":"01930000-0000-7000-9000-000000000002","occurred_at":"2026-01-03T09:00:00Z","participant_id":"01930000-0000-7000-8000-000000000001","retention_class":"social_services_file","schema_version":1},"hash":"3ced7b0953963f6f8ecd0b7f4faa815d7ca1774a9ed8f5c4294c0d82b0c54535","outcome":{"status":"accepted"},"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","recorded_at":"2026-01-03T09:01:00Z","sequence":2}"#;

#[test]
fn an_allow_list_stored_as_bare_ids_reads_as_municipal_people_and_is_written_back_unchanged(
) -> Result<(), serde_json::Error> {
    let entry: domain::ParticipantEvent =
        serde_json::from_str(IDENTITY_PROTECTED_STORED_BEFORE_ORGANISATIONS)?;
    let municipal = |person: &str| AllowedReader::municipal(PersonId(person.into()));
    assert_eq!(
        entry.body,
        EventBody::IdentityProtected {
            allowed_readers: vec![municipal("coach-17"), municipal("team-leader-1")],
        }
    );
    // Written back byte for byte, so the hash it chained still covers it.
    assert_eq!(
        domain::canonical::to_canonical_json(&entry)?,
        IDENTITY_PROTECTED_STORED_BEFORE_ORGANISATIONS
    );
    let rewritten = serde_json::to_value(&entry)?;
    assert_eq!(domain::chain::stored_payload_hash(&rewritten), entry.hash);
    Ok(())
}

#[test]
fn another_organisations_allow_list_entry_is_an_object_and_a_municipal_one_a_bare_id(
) -> Result<(), serde_json::Error> {
    let body = EventBody::IdentityProtected {
        allowed_readers: vec![
            AllowedReader::municipal(PersonId("coach-17".into())),
            AllowedReader {
                agency: Agency::Forsakringskassan,
                person_id: PersonId("coach-17".into()),
            },
        ],
    };
    let stored = r#"{"allowed_readers":["coach-17",{"agency":"forsakringskassan","person_id":"coach-17"}],"type":"IdentityProtected"}"#;
    assert_eq!(domain::canonical::to_canonical_json(&body)?, stored);
    assert_eq!(serde_json::from_str::<EventBody>(stored)?, body);
    // One stored form per entry: the municipality named in an object would be written back as
    // a bare id, so it is not read.
    let municipal_object = r#"{"allowed_readers":[{"agency":"municipality","person_id":"coach-17"}],"type":"IdentityProtected"}"#;
    assert!(serde_json::from_str::<EventBody>(municipal_object).is_err());
    Ok(())
}
