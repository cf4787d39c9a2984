//! The classification is complete (every event type, every field, nested ones included) and the
//! shared view built from it is an allow-list.
//!
//! Completeness does not rest on anyone remembering to extend a list: the event types are read
//! from serde's own list of `EventBody` variants, so a new variant without an example here
//! fails `every_event_type_has_an_example_and_a_classification`, and an example with a field
//! the table does not know fails `every_field_of_every_event_body_is_classified`.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde_json::{json, Value};
use uuid::Uuid;

use super::*;
use crate::envelope::DataCategory;
use crate::events::{AllowedReader, ConsentParty, EventBody, ReferralSource};
use crate::ids::{ActivityId, ConsentId, EventId, PersonId, ProgrammeId, UnitId};
use crate::values::{
    ActivityKind, Availability, BenefitKind, CounselledBenefit, DecisionOutcome, DischargeReason,
    DisclosurePreference, EducationLevel, FollowUpStatus, JobEndReason, OutreachChannel, Period,
    SocialAssistanceStatus, Subsidy,
};
use crate::visibility::{view_for, Basis, Sight};

fn date(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, day).unwrap_or_default()
}

fn period() -> Period {
    Period {
        from: date(1),
        to: date(31),
    }
}

fn activity() -> ActivityId {
    ActivityId(Uuid::from_u128(1))
}

fn unit() -> UnitId {
    UnitId("hudiksvall-ips".into())
}

fn coach() -> PersonId {
    PersonId("coach-17".into())
}

/// Every event type, as serde knows them: the variants `EventBody`'s derived `Deserialize`
/// lists when it meets a type it does not know. Read from the derive, not from a list kept by
/// hand, so it cannot miss a variant.
fn every_event_type() -> BTreeSet<String> {
    let refused = serde_json::from_value::<EventBody>(json!({ "type": "\u{1}" }))
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    let listed = refused
        .split_once("expected one of ")
        .map(|(_, listed)| listed)
        .unwrap_or_default();
    listed
        .split(", ")
        .filter_map(|quoted| quoted.split('`').nth(1))
        .map(str::to_owned)
        .collect()
}

/// One example of every event type, every optional field filled so that nested structs are
/// walked too.
fn examples() -> Vec<EventBody> {
    vec![
        EventBody::ParticipantReferred {
            source: ReferralSource::Vuxenpsykiatri,
            referrer: Some(UnitId("hudiksvall-vuxenpsykiatri".into())),
        },
        EventBody::ReferralDeclined {
            reason: "wants to wait".into(),
        },
        EventBody::PlacedOnWaitingList { unit: unit() },
        EventBody::WaitingListPlaceOffered {
            unit: unit(),
            coach: coach(),
        },
        EventBody::ParticipantEnrolled {
            unit: unit(),
            coach: coach(),
        },
        EventBody::CoachAssigned { coach: coach() },
        EventBody::ParticipantPaused {
            reason: "inpatient care".into(),
        },
        EventBody::ParticipantResumed,
        EventBody::ParticipantDischarged {
            reason: DischargeReason::PoorHealth,
        },
        EventBody::ParticipantReEnrolled {
            unit: unit(),
            coach: coach(),
        },
        // Both stored forms of an entry: a bare municipal id and another organisation's object.
        EventBody::IdentityProtected {
            allowed_readers: vec![
                AllowedReader::municipal(coach()),
                AllowedReader {
                    agency: Agency::Forsakringskassan,
                    person_id: PersonId("fk-officer-4".into()),
                },
            ],
        },
        EventBody::ConsentGranted {
            consent_id: ConsentId(Uuid::from_u128(2)),
            discloser: ConsentParty::Forsakringskassan,
            recipient: ConsentParty::IpsUnit,
            data_categories: vec![DataCategory::BenefitDecisions],
            valid_from: date(1),
            valid_to: date(31),
        },
        EventBody::ConsentWithdrawn {
            discloser: ConsentParty::Forsakringskassan,
            recipient: ConsentParty::IpsUnit,
            data_categories: vec![DataCategory::BenefitDecisions],
            effective_from: date(15),
        },
        EventBody::ProfileRecorded {
            preferences: "outdoor work".into(),
            hours_per_week_wanted: 20,
            education_level: EducationLevel::UpperSecondary,
        },
        EventBody::BenefitsCounsellingGiven {
            benefits_discussed: vec![
                CounselledBenefit::Forsakringskassan(BenefitKind::Sjukpenning),
                CounselledBenefit::Akassa,
            ],
        },
        EventBody::DisclosurePreferenceRecorded {
            preference: DisclosurePreference::NeedsOnly,
        },
        EventBody::EmployerContactMade {
            employer: "Hudiksvalls bageri".into(),
            face_to_face: true,
            with_participant: false,
        },
        EventBody::ActivityProposed {
            activity_id: activity(),
            kind: ActivityKind::Job,
            employer: Some("Hudiksvalls bageri".into()),
            hours_per_week: 20,
            planned_start: date(10),
            planned_end: Some(date(20)),
            subsidy: Some(Subsidy::Lonebidrag),
            at_own_employer: false,
        },
        EventBody::ActivityStarted {
            activity_id: activity(),
            started_on: date(10),
        },
        EventBody::ActivityEnded {
            activity_id: activity(),
            ended_on: date(20),
        },
        EventBody::JobStarted {
            activity_id: activity(),
            employer: "Hudiksvalls bageri".into(),
            occupation: "bagare".into(),
            competitive: true,
            subsidy: Some(Subsidy::Lonebidrag),
            hours_per_week: 20,
            started_on: date(10),
        },
        EventBody::HoursChanged {
            activity_id: activity(),
            hours_per_week: 25,
            from: date(15),
        },
        EventBody::JobEnded {
            activity_id: activity(),
            ended_on: date(20),
            reason: JobEndReason::Health,
        },
        EventBody::StudiesStarted {
            activity_id: activity(),
            programme: "Komvux svenska".into(),
            started_on: date(10),
        },
        EventBody::StudiesEnded {
            activity_id: activity(),
            ended_on: date(20),
        },
        EventBody::FollowAlongContact {
            activity_id: Some(activity()),
            contact_on: date(12),
        },
        EventBody::FollowUpRecorded {
            status: FollowUpStatus::Working,
            obstacles: "sleeps badly".into(),
            helping_factors: "a calm workplace".into(),
        },
        EventBody::OutreachAttempted {
            channel: OutreachChannel::HomeVisit,
        },
        EventBody::SipHeld { held_on: date(3) },
        EventBody::SipEstablished {
            established_on: date(3),
        },
        EventBody::BenefitSelfReported {
            benefit: BenefitKind::Sjukpenning,
            said_on: date(3),
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
            employed: true,
        },
        EventBody::BenefitEnded {
            benefit: BenefitKind::Sjukpenning,
            ended_on: date(31),
        },
        EventBody::MedicalCertificateReceived {
            period: period(),
            degree_percent: 50,
        },
        EventBody::AvstamningsmoteHeld { held_on: date(4) },
        EventBody::RehabPlanEstablished {
            established_on: date(4),
        },
        EventBody::RehabPlanRevised {
            revised_on: date(5),
        },
        EventBody::ActivityDecision {
            activity_id: activity(),
            outcome: DecisionOutcome::Approved,
            valid: Some(period()),
            reason: "fits the rehabilitation plan".into(),
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
            registered_on: date(2),
        },
        EventBody::JobSeekerDeregistered {
            deregistered_on: date(30),
        },
        EventBody::DisabilityCodingRequested {
            requested_on: date(2),
        },
        EventBody::DisabilityCodingRegistered {
            registered_on: date(6),
        },
        EventBody::ProgrammeAssigned {
            programme_id: ProgrammeId(Uuid::from_u128(3)),
            programme: "Förberedande insatser".into(),
            with_activity_allowance: true,
            period: period(),
        },
        EventBody::ProgrammeEnded {
            programme_id: ProgrammeId(Uuid::from_u128(3)),
            ended_on: date(31),
        },
        EventBody::SiusDecided { period: period() },
        EventBody::SiusEnded { ended_on: date(31) },
        EventBody::SubsidyDecided {
            subsidy: Subsidy::Lonebidrag,
            activity_id: Some(activity()),
            employer: "Hudiksvalls bageri".into(),
            period: period(),
        },
        EventBody::IpsReferralSent { sent_on: date(1) },
        EventBody::TreatmentTeamMeetingHeld {
            held_on: date(7),
            coach_present: true,
        },
        EventBody::MedicalCertificateIssued {
            period: period(),
            degree_percent: 100,
        },
        EventBody::AvailabilityChanged {
            availability: Availability::TemporarilyUnavailable,
            from: date(8),
        },
        EventBody::InpatientAdmitted {
            admitted_on: date(8),
            care_form: crate::values::CareForm::Compulsory,
        },
        EventBody::InpatientDischarged {
            discharged_on: date(10),
        },
        EventBody::DischargeReady { ready_on: date(9) },
        EventBody::EventCorrected {
            supersedes: EventId(Uuid::from_u128(4)),
            reason: "wrong employer".into(),
            corrected: Box::new(EventBody::EmployerContactMade {
                employer: "Hälsinge Trä".into(),
                face_to_face: true,
                with_participant: true,
            }),
        },
    ]
}

/// Every example, and every example as what a correction says.
fn stored_examples() -> Vec<(String, Value)> {
    let mut stored = Vec::new();
    for example in examples() {
        let correction = EventBody::EventCorrected {
            supersedes: EventId(Uuid::from_u128(5)),
            reason: "typo".into(),
            corrected: Box::new(example.clone()),
        };
        for body in [example, correction] {
            let label = match &body {
                EventBody::EventCorrected { corrected, .. } => {
                    format!("EventCorrected of {}", corrected.event_type())
                }
                other => other.event_type().to_owned(),
            };
            stored.push((label, serde_json::to_value(&body).unwrap_or(Value::Null)));
        }
    }
    stored
}

#[test]
fn every_event_type_has_an_example_and_a_classification() {
    let event_types = every_event_type();
    // Guards the reading of serde's message: a change in its wording must fail here, not
    // leave an empty list that everything passes against.
    assert!(
        event_types.len() > 50 && event_types.contains("EventCorrected"),
        "serde's list of variants could not be read: {event_types:?}"
    );
    let exemplified: BTreeSet<String> = examples()
        .iter()
        .map(|example| example.event_type().to_owned())
        .collect();
    assert_eq!(
        exemplified, event_types,
        "every event type needs an example here (and each example is of a type serde knows)"
    );
    let classified: Vec<&str> = BODY_CLASSES.iter().map(|class| class.event_type).collect();
    let classified_set: BTreeSet<String> = classified.iter().map(|name| name.to_string()).collect();
    assert_eq!(
        classified.len(),
        classified_set.len(),
        "an event type is classified twice"
    );
    assert_eq!(
        classified_set, event_types,
        "every event type, and only those, is classified in BODY_CLASSES"
    );
}

#[test]
fn every_field_of_every_event_body_is_classified() {
    for (label, stored) in stored_examples() {
        let unclassified: Vec<String> = classified_leaves(&stored)
            .into_iter()
            .filter(|leaf| leaf.class.is_none())
            .map(|leaf| leaf.path)
            .collect();
        assert!(
            unclassified.is_empty(),
            "{label}: no classification for {unclassified:?}; add them to BODY_CLASSES"
        );
    }
}

/// The names of `fields`, nested records spelt `period.from`.
fn classified_paths(fields: &[Field], prefix: &str, paths: &mut BTreeSet<String>) {
    for field in fields {
        let path = joined(prefix, field.name);
        match field.kind {
            FieldKind::Record(nested) => classified_paths(nested, &path, paths),
            FieldKind::Value(_) | FieldKind::Body => {
                paths.insert(path);
            }
        }
    }
}

#[test]
fn every_classified_field_exists_in_its_event_body() {
    for example in examples() {
        let stored = serde_json::to_value(&example).unwrap_or(Value::Null);
        let Some(class) = body_class(example.event_type()) else {
            panic!("{} is not classified", example.event_type());
        };
        let mut expected = BTreeSet::new();
        classified_paths(class.fields, "", &mut expected);
        let present: BTreeSet<String> = classified_leaves(&stored)
            .into_iter()
            .filter(|leaf| leaf.path != TYPE_TAG)
            .map(|leaf| {
                // A corrected body's fields are its own type's: stop at the field.
                match leaf.path.split_once("corrected.") {
                    Some(_) => "corrected".to_owned(),
                    None => leaf.path,
                }
            })
            .collect();
        assert_eq!(
            present,
            expected,
            "{}: the classification names fields the body does not have, or the reverse",
            example.event_type()
        );
    }
}

#[test]
fn the_controller_is_the_agency_that_records_the_type() {
    for example in examples() {
        let Some(class) = body_class(example.event_type()) else {
            panic!("{} is not classified", example.event_type());
        };
        let expected = match example.owning_agency() {
            Some(agency) => Controller::Agency(agency),
            None => Controller::RecordingAgency,
        };
        assert_eq!(class.controller, expected, "{}", example.event_type());
        for agency in Agency::ALL {
            let controller = class.controller_for(agency);
            assert!(
                example.owning_agency().is_some() || controller == agency,
                "{}: recorded by {agency}, controlled by {controller}",
                example.event_type()
            );
            assert_eq!(
                class.record_series(agency),
                RetentionClass::for_agency(controller)
            );
        }
    }
}

#[test]
fn classify_answers_by_event_type_and_field_path() {
    let class = |sharing, disposal| Some(FieldClass { sharing, disposal });
    assert_eq!(
        classify("JobStarted", "occupation"),
        class(Sharing::FreeText, Disposal::Shredded)
    );
    assert_eq!(
        classify("ProgrammeAssigned", "programme"),
        class(Sharing::FreeText, Disposal::Shredded)
    );
    assert_eq!(
        classify("EmployerContactMade", "employer"),
        class(Sharing::Location, Disposal::Shredded)
    );
    assert_eq!(
        classify("ParticipantEnrolled", "coach"),
        class(Sharing::Identifying, Disposal::Shredded)
    );
    assert_eq!(
        classify("ParticipantDischarged", "reason"),
        class(Sharing::Sensitive, Disposal::Shredded)
    );
    assert_eq!(
        classify("ActivityDecision", "valid.to"),
        class(Sharing::Shared, Disposal::Survives)
    );
    assert_eq!(
        classify("JobStarted", "type"),
        class(Sharing::Shared, Disposal::Survives)
    );
    // A nested struct as a whole, a nested body, unknown fields and types: no single class.
    assert_eq!(classify("ActivityDecision", "valid"), None);
    assert_eq!(classify("EventCorrected", "corrected.employer"), None);
    assert_eq!(classify("JobStarted", "note"), None);
    assert_eq!(classify("JobStarted", "occupation.name"), None);
    assert_eq!(classify("NoSuchEvent", "type"), None);
}

fn shared(body: &Value, protected_identity: bool) -> Value {
    view_for(
        Sight::Shared(Basis::PartyToConsent),
        body.clone(),
        protected_identity,
    )
    .unwrap_or(Value::Null)
}

#[test]
fn every_shared_view_holds_exactly_what_crosses() {
    for (label, stored) in stored_examples() {
        for protected_identity in [false, true] {
            let view = shared(&stored, protected_identity);
            let kept: BTreeSet<String> = classified_leaves(&view)
                .into_iter()
                .map(|leaf| {
                    let crosses = leaf
                        .class
                        .is_some_and(|class| class.sharing.crosses(protected_identity));
                    assert!(crosses, "{label}: {} must not cross", leaf.path);
                    leaf.path
                })
                .collect();
            let crossing: BTreeSet<String> = classified_leaves(&stored)
                .into_iter()
                .filter(|leaf| {
                    leaf.class
                        .is_some_and(|class| class.sharing.crosses(protected_identity))
                })
                .map(|leaf| leaf.path)
                .collect();
            assert_eq!(kept, crossing, "{label}, protected: {protected_identity}");
        }
    }
}

#[test]
fn free_text_such_as_an_occupation_or_a_programme_is_withheld_and_a_shared_field_shown() {
    let job = serde_json::to_value(EventBody::JobStarted {
        activity_id: activity(),
        employer: "Hudiksvalls bageri".into(),
        occupation: "bagare".into(),
        competitive: true,
        subsidy: None,
        hours_per_week: 20,
        started_on: date(10),
    })
    .unwrap_or(Value::Null);
    let view = shared(&job, false);
    assert_eq!(view.get("occupation"), None, "{view}");
    assert_eq!(view.get("hours_per_week"), Some(&json!(20)), "{view}");
    assert_eq!(view.get("competitive"), Some(&json!(true)), "{view}");
    assert_eq!(view.get("type"), Some(&json!("JobStarted")), "{view}");
    // Location crosses, unless the identity is protected.
    assert_eq!(
        view.get("employer"),
        Some(&json!("Hudiksvalls bageri")),
        "{view}"
    );
    assert_eq!(shared(&job, true).get("employer"), None);
    // The reader's own records are shown whole.
    assert_eq!(
        view_for(Sight::Full(Basis::OwnRecords), job.clone(), true),
        Some(job)
    );
    let programme = serde_json::to_value(EventBody::ProgrammeAssigned {
        programme_id: ProgrammeId(Uuid::from_u128(3)),
        programme: "Förberedande insatser".into(),
        with_activity_allowance: true,
        period: period(),
    })
    .unwrap_or(Value::Null);
    let view = shared(&programme, false);
    assert_eq!(view.get("programme"), None, "{view}");
    assert_eq!(view.get("with_activity_allowance"), Some(&json!(true)));
    assert_eq!(
        view.get("period"),
        Some(&json!({ "from": "2026-03-01", "to": "2026-03-31" }))
    );
}

#[test]
fn an_unclassified_key_or_event_type_is_withheld() {
    let with_note = json!({
        "type": "JobStarted",
        "hours_per_week": 20,
        "note": "told us about the diagnosis",
    });
    assert_eq!(
        shared(&with_note, false),
        json!({ "type": "JobStarted", "hours_per_week": 20 })
    );
    let nested_note = json!({
        "type": "SiusDecided",
        "period": { "from": "2026-03-01", "to": "2026-03-31", "note": "clinic" },
    });
    assert_eq!(
        shared(&nested_note, false),
        json!({ "type": "SiusDecided", "period": { "from": "2026-03-01", "to": "2026-03-31" } })
    );
    let unknown_type = json!({ "type": "DiagnosisRecorded", "diagnosis": "F20" });
    assert_eq!(
        shared(&unknown_type, false),
        json!({ "type": "DiagnosisRecorded" })
    );
    let corrected_unknown = json!({
        "type": "EventCorrected",
        "supersedes": "00000000-0000-0000-0000-000000000004",
        "corrected": { "type": "JobStarted", "occupation": "bagare", "note": "x" },
    });
    assert_eq!(
        shared(&corrected_unknown, false),
        json!({
            "type": "EventCorrected",
            "supersedes": "00000000-0000-0000-0000-000000000004",
            "corrected": { "type": "JobStarted" },
        })
    );
    // Not a tagged object at all: nothing of it.
    assert_eq!(shared(&json!(["reason"]), false), json!({}));
    assert_eq!(shared(&json!({ "reason": "x" }), false), json!({}));
}

#[test]
fn people_named_and_sensitive_codes_never_cross() {
    let enrolled = serde_json::to_value(EventBody::ParticipantEnrolled {
        unit: unit(),
        coach: coach(),
    })
    .unwrap_or(Value::Null);
    assert_eq!(
        shared(&enrolled, false),
        json!({ "type": "ParticipantEnrolled", "unit": "hudiksvall-ips" })
    );
    assert_eq!(
        shared(&enrolled, true),
        json!({ "type": "ParticipantEnrolled" })
    );
    let discharged = serde_json::to_value(EventBody::ParticipantDischarged {
        reason: DischargeReason::PoorHealth,
    })
    .unwrap_or(Value::Null);
    assert_eq!(
        shared(&discharged, false),
        json!({ "type": "ParticipantDischarged" })
    );
}

/// The canonical writer (`canonical::to_canonical_json`, which prints each replayed body and
/// hashes each link) prints every event type's body as the `Value` route does, nested records
/// and filled options included: a difference would change stored hashes.
#[test]
fn every_event_body_prints_in_canonical_form_as_through_value() {
    for example in examples() {
        let through_value =
            crate::chain::canonical_json(&serde_json::to_value(&example).unwrap_or(Value::Null));
        assert_eq!(
            crate::canonical::to_canonical_json(&example).ok(),
            Some(through_value),
            "{}",
            example.event_type()
        );
    }
}
