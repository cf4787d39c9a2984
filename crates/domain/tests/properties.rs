//! Property test: random sequences of submissions from random agencies never panic the
//! aggregate, and after every step the invariants hold: sequences are contiguous, the hash chain
//! verifies, a redelivery is a no-op, each agency records only its own kinds of event, and a
//! discharged participant accepts nothing but re-enrolment (and consent withdrawal, corrections).
//! A second property: no accepted start ever lacks an approval that its own recorded facts
//! require (the green-light gates cannot be bypassed by changing a fact at the start).

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use domain::chain::ChainVerifier;
use domain::values::{
    ActivityKind, Availability, BenefitKind, DecisionOutcome, DischargeReason, JobEndReason,
    Period, SocialAssistanceStatus, Subsidy,
};
use domain::{
    ActivityId, Actor, Agency, AllowedReader, ConsentId, ConsentParty, DataCategory, Envelope,
    EventBody, EventId, Lifecycle, Outcome, Participant, ParticipantCommand, ParticipantEvent,
    ParticipantId, PersonId, ProgrammeId, ReferralSource, RetentionClass, Role, Submission, UnitId,
};
use proptest::prelude::*;
use uuid::Uuid;

fn day(offset: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default() + Duration::days(offset)
}

fn activity(index: u8) -> ActivityId {
    ActivityId(Uuid::from_u128(0xa000 + u128::from(index)))
}

/// A body from a small vocabulary, so that random sequences often hit the interesting paths
/// (the same three activities, the same programme, nearby dates).
fn body_strategy() -> impl Strategy<Value = EventBody> {
    let unit = || UnitId("hudiksvall-ips".into());
    let coach = || PersonId("coach-17".into());
    prop_oneof![
        Just(EventBody::ParticipantReferred {
            source: ReferralSource::Ifo,
            referrer: None
        }),
        Just(EventBody::ReferralDeclined {
            reason: "no wish to work now".into()
        }),
        Just(EventBody::PlacedOnWaitingList { unit: unit() }),
        Just(EventBody::ParticipantEnrolled {
            unit: unit(),
            coach: coach()
        }),
        Just(EventBody::CoachAssigned {
            coach: PersonId("coach-18".into())
        }),
        Just(EventBody::ParticipantPaused {
            reason: "inpatient".into()
        }),
        Just(EventBody::ParticipantResumed),
        Just(EventBody::ParticipantDischarged {
            reason: DischargeReason::EmployedAndStable
        }),
        Just(EventBody::ParticipantReEnrolled {
            unit: unit(),
            coach: coach()
        }),
        (
            0..3u8,
            0..70u8,
            prop_oneof![
                Just(ActivityKind::Job),
                Just(ActivityKind::Arbetstraning),
                Just(ActivityKind::Studies)
            ]
        )
            .prop_map(
                |(index, hours_per_week, kind)| EventBody::ActivityProposed {
                    activity_id: activity(index),
                    kind,
                    employer: None,
                    hours_per_week,
                    planned_start: day(10),
                    planned_end: None,
                    subsidy: None,
                    at_own_employer: false,
                }
            ),
        (0..3u8, 0..40i64).prop_map(|(index, offset)| EventBody::ActivityStarted {
            activity_id: activity(index),
            started_on: day(offset)
        }),
        (0..3u8, 0..40i64).prop_map(|(index, offset)| EventBody::ActivityEnded {
            activity_id: activity(index),
            ended_on: day(offset)
        }),
        (0..3u8, 0..40i64).prop_map(|(index, offset)| EventBody::JobStarted {
            activity_id: activity(index),
            employer: "bageriet".into(),
            occupation: "bagare".into(),
            competitive: true,
            subsidy: None,
            hours_per_week: 30,
            started_on: day(offset),
        }),
        (0..3u8, 0..40i64).prop_map(|(index, offset)| EventBody::JobEnded {
            activity_id: activity(index),
            ended_on: day(offset),
            reason: JobEndReason::Other
        }),
        (0..3u8, 0..70u8, 0..40i64).prop_map(|(index, hours_per_week, offset)| {
            EventBody::HoursChanged {
                activity_id: activity(index),
                hours_per_week,
                from: day(offset),
            }
        }),
        (0..3u8, 0..40i64).prop_map(|(index, offset)| EventBody::StudiesStarted {
            activity_id: activity(index),
            programme: "Komvux".into(),
            started_on: day(offset)
        }),
        (0..3u8).prop_map(|index| EventBody::ActivityDecision {
            activity_id: activity(index),
            outcome: DecisionOutcome::Approved,
            valid: Some(Period {
                from: day(0),
                to: day(60)
            }),
            reason: String::new(),
        }),
        (0..3u8).prop_map(|index| EventBody::ActivityAcceptedInPlanning {
            activity_id: activity(index)
        }),
        Just(EventBody::SocialAssistanceDecided {
            status: SocialAssistanceStatus::Granted
        }),
        Just(EventBody::BenefitRegistered {
            benefit: BenefitKind::Sjukpenning,
            degree_percent: 100,
            period: Period {
                from: day(0),
                to: day(90)
            },
            employed: false,
        }),
        (0..40i64).prop_map(|offset| EventBody::BenefitEnded {
            benefit: BenefitKind::Sjukpenning,
            ended_on: day(offset - 5)
        }),
        Just(EventBody::JobSeekerRegistered {
            registered_on: day(1)
        }),
        Just(EventBody::ProgrammeAssigned {
            programme_id: ProgrammeId(Uuid::from_u128(7)),
            programme: "Förberedande insatser".into(),
            with_activity_allowance: true,
            period: Period {
                from: day(0),
                to: day(90)
            },
        }),
        Just(EventBody::SubsidyDecided {
            subsidy: Subsidy::Nystartsjobb,
            activity_id: Some(activity(0)),
            employer: "bageriet".into(),
            period: Period {
                from: day(0),
                to: day(90)
            }
        }),
        Just(EventBody::AvailabilityChanged {
            availability: Availability::TemporarilyUnavailable,
            from: day(3)
        }),
        Just(EventBody::IpsReferralSent { sent_on: day(0) }),
        (0..2u128).prop_map(|number| EventBody::ConsentGranted {
            consent_id: ConsentId(Uuid::from_u128(number)),
            discloser: ConsentParty::Forsakringskassan,
            recipient: ConsentParty::IpsUnit,
            data_categories: vec![DataCategory::BenefitDecisions],
            valid_from: day(0),
            valid_to: day(100),
        }),
        Just(EventBody::ConsentWithdrawn {
            discloser: ConsentParty::Forsakringskassan,
            recipient: ConsentParty::IpsUnit,
            data_categories: vec![DataCategory::BenefitDecisions],
            effective_from: day(20),
        }),
        // Both stored forms of an allow-list entry (a bare municipal id, another
        // organisation's object), so the canonical writer is held to them too.
        Just(EventBody::IdentityProtected {
            allowed_readers: vec![
                AllowedReader::municipal(coach()),
                AllowedReader {
                    agency: Agency::Forsakringskassan,
                    person_id: coach(),
                },
            ],
        }),
    ]
}

fn subsidy_strategy() -> impl Strategy<Value = Option<Subsidy>> {
    prop_oneof![
        Just(None),
        Just(Some(Subsidy::Nystartsjobb)),
        Just(Some(Subsidy::Lonebidrag))
    ]
}

fn employer_strategy() -> impl Strategy<Value = String> {
    prop_oneof![Just("bageriet".to_owned()), Just("bruket".to_owned())]
}

/// The steps around a start, with every fact that could change which gates apply drawn at
/// random on both the proposal and the start: kind, subsidy, employer, hours and days.
fn start_step_strategy() -> impl Strategy<Value = (Agency, EventBody)> {
    let municipality = |body| (Agency::Municipality, body);
    prop_oneof![
        (
            0..3u8,
            prop_oneof![
                Just(ActivityKind::Job),
                Just(ActivityKind::Praktik),
                Just(ActivityKind::Arbetstraning)
            ],
            prop::option::of(employer_strategy()),
            1..60u8,
            0..20i64,
            subsidy_strategy()
        )
            .prop_map(
                move |(index, kind, employer, hours_per_week, offset, subsidy)| {
                    municipality(EventBody::ActivityProposed {
                        activity_id: activity(index),
                        kind,
                        employer,
                        hours_per_week,
                        planned_start: day(offset),
                        planned_end: None,
                        subsidy: subsidy.filter(|_| kind == ActivityKind::Job),
                        at_own_employer: false,
                    })
                }
            ),
        (
            0..3u8,
            employer_strategy(),
            subsidy_strategy(),
            1..60u8,
            0..40i64
        )
            .prop_map(move |(index, employer, subsidy, hours_per_week, offset)| {
                municipality(EventBody::JobStarted {
                    activity_id: activity(index),
                    employer,
                    occupation: "bagare".into(),
                    competitive: subsidy.is_none(),
                    subsidy,
                    hours_per_week,
                    started_on: day(offset),
                })
            }),
        (0..3u8, 0..40i64).prop_map(move |(index, offset)| municipality(
            EventBody::ActivityStarted {
                activity_id: activity(index),
                started_on: day(offset)
            }
        )),
        (0..3u8, subsidy_strategy(), employer_strategy(), 0..30i64).prop_map(
            |(index, subsidy, employer, offset)| (
                Agency::Arbetsformedlingen,
                EventBody::SubsidyDecided {
                    subsidy: subsidy.unwrap_or(Subsidy::Lonebidrag),
                    activity_id: Some(activity(index)),
                    employer,
                    period: Period {
                        from: day(offset),
                        to: day(offset + 20)
                    }
                }
            )
        ),
        (0..3u8, 0..30i64).prop_map(|(index, offset)| (
            Agency::Forsakringskassan,
            EventBody::ActivityDecision {
                activity_id: activity(index),
                outcome: DecisionOutcome::Approved,
                valid: Some(Period {
                    from: day(offset),
                    to: day(offset + 20)
                }),
                reason: String::new(),
            }
        )),
        Just((
            Agency::Forsakringskassan,
            EventBody::BenefitRegistered {
                benefit: BenefitKind::Sjukpenning,
                degree_percent: 100,
                period: Period {
                    from: day(0),
                    to: day(90)
                },
                employed: false,
            }
        )),
        Just((
            Agency::Arbetsformedlingen,
            EventBody::JobSeekerRegistered {
                registered_on: day(1)
            }
        )),
    ]
}

fn agency_strategy() -> impl Strategy<Value = Agency> {
    prop_oneof![
        Just(Agency::Municipality),
        Just(Agency::Forsakringskassan),
        Just(Agency::Arbetsformedlingen),
        Just(Agency::Psychiatry)
    ]
}

fn submission(index: usize, agency: Agency, body: EventBody) -> Submission {
    Submission {
        envelope: Envelope {
            event_id: EventId(Uuid::from_u128(0xe000_0000 + index as u128)),
            participant_id: ParticipantId(Uuid::from_u128(1)),
            agency,
            actor: Actor {
                person_id: PersonId("someone".into()),
                role: Role::CaseOfficer,
                unit: UnitId("unit".into()),
            },
            occurred_at: Utc
                .with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
                .single()
                .unwrap_or_default(),
            correlation_id: None,
            causation_id: None,
            schema_version: domain::CURRENT_SCHEMA_VERSION,
            data_category: body.data_category(agency),
            retention_class: RetentionClass::for_agency(agency),
        },
        body,
    }
}

fn record(
    participant: &mut Participant,
    runtime: &tokio::runtime::Runtime,
    submission: Submission,
) -> Vec<ParticipantEvent> {
    let sink = EventSink::default();
    let command = ParticipantCommand::Record {
        submission,
        recorded_at: Utc::now(),
    };
    let handled = runtime.block_on(participant.handle(command, &(), &sink));
    assert!(handled.is_ok(), "handle failed: {handled:?}");
    runtime.block_on(sink.collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_submissions_keep_every_invariant(steps in prop::collection::vec((agency_strategy(), body_strategy()), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(|error| TestCaseError::fail(error.to_string()))?;
        let mut participant = Participant::default();
        // The same history folded from kept entries, as a replay folds it.
        let mut folded_from_kept = Participant::default();
        let mut verifier = ChainVerifier::default();
        for (expected_sequence, (index, (agency, body))) in (1..).zip(steps.into_iter().enumerate()) {
            let lifecycle_before = participant.lifecycle();
            let submission = submission(index, agency, body);
            let events = record(&mut participant, &runtime, submission.clone());
            prop_assert_eq!(events.len(), 1, "every new submission is recorded exactly once");
            let event = &events[0];
            folded_from_kept.apply_kept(event);
            prop_assert_eq!(&folded_from_kept, &participant, "apply_kept folds as apply does");
            prop_assert_eq!(event.sequence, expected_sequence);
            let stored = serde_json::to_value(event).map_err(|error| TestCaseError::fail(error.to_string()))?;
            // The link's hash and a replayed body, written straight from the types, are what
            // the canonical form of their `Value` gives (the form stored hashes were made with).
            let mut without_hash = stored.clone();
            if let serde_json::Value::Object(map) = &mut without_hash {
                map.remove("hash");
            }
            prop_assert_eq!(&event.hash, &domain::chain::link_hash(&event.prev_hash, &domain::chain::canonical_json(&without_hash)));
            prop_assert_eq!(
                domain::canonical::to_canonical_json(&event.body).ok(),
                Some(domain::chain::canonical_json(&serde_json::to_value(&event.body).map_err(|error| TestCaseError::fail(error.to_string()))?))
            );
            verifier.push(event.sequence, &stored);
            prop_assert!(verifier.report().is_intact(), "{:?}", verifier.report());
            if event.outcome == Outcome::Accepted {
                prop_assert!(event.body.recorded_by(agency), "{} accepted from {}", event.body.event_type(), agency);
                if lifecycle_before == Lifecycle::Discharged {
                    prop_assert!(
                        matches!(event.body, EventBody::ParticipantReEnrolled { .. } | EventBody::ConsentWithdrawn { .. } | EventBody::EventCorrected { .. }),
                        "{} accepted for a discharged participant", event.body.event_type()
                    );
                }
            }
            // A redelivery of the same submission is a no-op.
            prop_assert!(record(&mut participant, &runtime, submission).is_empty());
        }
    }

    #[test]
    fn no_accepted_start_lacks_an_approval_its_own_recorded_facts_require(steps in prop::collection::vec(start_step_strategy(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(|error| TestCaseError::fail(error.to_string()))?;
        let mut participant = Participant::default();
        let preamble = [
            (Agency::Municipality, EventBody::ParticipantReferred { source: ReferralSource::Ifo, referrer: None }),
            (Agency::Municipality, EventBody::ParticipantEnrolled { unit: UnitId("hudiksvall-ips".into()), coach: PersonId("coach-17".into()) }),
        ];
        for (index, (agency, body)) in preamble.into_iter().chain(steps).enumerate() {
            let situation_before = participant.situation().clone();
            let events = record(&mut participant, &runtime, submission(index, agency, body));
            let Some(event) = events.first() else { continue };
            let started = match &event.body {
                EventBody::JobStarted { activity_id, started_on, .. }
                | EventBody::ActivityStarted { activity_id, started_on } => Some((*activity_id, *started_on)),
                _ => None,
            };
            if let (Outcome::Accepted, Some((activity_id, started_on))) = (&event.outcome, started) {
                // The activity as recorded after the start holds the start's own facts.
                let activity = participant.activities().get(&activity_id);
                prop_assert!(activity.is_some(), "a started activity is recorded");
                if let Some(activity) = activity {
                    let missing = domain::gates::missing_gates(&situation_before, activity, started_on);
                    prop_assert!(missing.is_empty(), "{} accepted on {} lacking {:?}: {:?}", event.body.event_type(), started_on, missing, activity);
                }
            }
        }
    }
}
