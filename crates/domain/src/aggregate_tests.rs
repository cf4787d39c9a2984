//! Given/when/then tests of the participant aggregate's rules, asserting typed outcomes.
//!
//! Each test states the history (`given`), the submission (`when`) and the expected recorded
//! entries (`then`). [`History`] builds correctly chained entries, so the expectations also pin
//! down sequence numbers and hashes.

use super::*;
use crate::chain::ChainVerifier;
use crate::chain::GENESIS_HASH;
use crate::envelope::DataCategory;
use crate::envelope::{Actor, Agency, Envelope, RetentionClass, Role};
use crate::errors::RuleViolation;
use crate::events::{
    AllowedReader, ConsentParty, ReferralSource, Submission, CURRENT_SCHEMA_VERSION,
};
use crate::ids::{ConsentId, EventId, ParticipantId, PersonId, UnitId};
use chrono::{DateTime, NaiveDate, SubsecRound, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

type ParticipantTest = TestFramework<Participant>;

const PARTICIPANT: ParticipantId =
    ParticipantId(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001));

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
        + chrono::Duration::days(i64::from(day))
}

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or_default()
}

fn event_id(number: u128) -> EventId {
    EventId(Uuid::from_u128(
        0x0193_0000_0000_7000_9000_0000_0000_0000 + number,
    ))
}

fn submission(number: u128, agency: Agency, body: EventBody) -> Submission {
    Submission {
        envelope: Envelope {
            event_id: event_id(number),
            participant_id: PARTICIPANT,
            agency,
            actor: Actor {
                person_id: PersonId("coach-17".into()),
                role: Role::Coach,
                unit: UnitId("hudiksvall-ips".into()),
            },
            occurred_at: at(number as u32),
            correlation_id: None,
            causation_id: None,
            schema_version: CURRENT_SCHEMA_VERSION,
            data_category: body.data_category(agency),
            retention_class: RetentionClass::SocialServicesFile,
        },
        body,
    }
}

fn referred() -> EventBody {
    EventBody::ParticipantReferred {
        source: ReferralSource::Vuxenpsykiatri,
        referrer: None,
    }
}

fn enrolled() -> EventBody {
    EventBody::ParticipantEnrolled {
        unit: UnitId("hudiksvall-ips".into()),
        coach: PersonId("coach-17".into()),
    }
}

fn consent(consent_number: u128, valid_from: NaiveDate, valid_to: NaiveDate) -> EventBody {
    EventBody::ConsentGranted {
        consent_id: ConsentId(Uuid::from_u128(consent_number)),
        discloser: ConsentParty::Forsakringskassan,
        recipient: ConsentParty::IpsUnit,
        data_categories: vec![DataCategory::BenefitDecisions],
        valid_from,
        valid_to,
    }
}

fn withdrawal(effective_from: NaiveDate) -> EventBody {
    EventBody::ConsentWithdrawn {
        discloser: ConsentParty::Forsakringskassan,
        recipient: ConsentParty::IpsUnit,
        data_categories: vec![DataCategory::BenefitDecisions],
        effective_from,
    }
}

fn record(submission: Submission) -> ParticipantCommand {
    let recorded_at = submission.envelope.occurred_at + chrono::Duration::minutes(1);
    ParticipantCommand::Record {
        submission,
        recorded_at,
    }
}

/// Builds a correctly chained history, entry by entry.
#[derive(Default)]
struct History {
    entries: Vec<ParticipantEvent>,
}

impl History {
    fn next(&mut self, submission: Submission, outcome: Outcome) -> ParticipantEvent {
        let prev_hash = self
            .entries
            .last()
            .map_or(GENESIS_HASH.to_owned(), |entry| entry.hash.clone());
        // `record` has the ledger clock read a minute after the event occurred; the aggregate
        // keeps the stamps strictly increasing along the chain.
        let reading = submission.envelope.occurred_at + chrono::Duration::minutes(1);
        let recorded_at = match self.entries.last().map(|entry| entry.recorded_at) {
            Some(previous) if reading <= previous => previous + chrono::Duration::microseconds(1),
            _ => reading,
        };
        let entry = ParticipantEvent::link(
            submission,
            recorded_at,
            outcome,
            self.entries.len() as u64 + 1,
            &prev_hash,
        );
        self.entries.push(entry.clone());
        entry
    }

    /// The next entry as the aggregate stamps it when the ledger clock reads `clock_reading`.
    fn next_read_at(
        &mut self,
        submission: Submission,
        clock_reading: DateTime<Utc>,
    ) -> ParticipantEvent {
        let previous = self.entries.last().map(|entry| entry.recorded_at);
        let reading = clock_reading.trunc_subsecs(6);
        let recorded_at = match previous {
            Some(previous) if reading <= previous => previous + chrono::Duration::microseconds(1),
            _ => reading,
        };
        let prev_hash = self
            .entries
            .last()
            .map_or(GENESIS_HASH.to_owned(), |entry| entry.hash.clone());
        let entry = ParticipantEvent::link(
            submission,
            recorded_at,
            Outcome::Accepted,
            self.entries.len() as u64 + 1,
            &prev_hash,
        );
        self.entries.push(entry.clone());
        entry
    }

    fn accepted(mut self, submission: Submission) -> Self {
        self.next(submission, Outcome::Accepted);
        self
    }

    fn given(&self) -> Vec<ParticipantEvent> {
        self.entries.clone()
    }
}

fn referred_history() -> History {
    History::default().accepted(submission(1, Agency::Municipality, referred()))
}

fn rejected(rule: RuleViolation) -> Outcome {
    Outcome::Rejected { rule }
}

/// The one check helper of this layer: given a history, when a submission is recorded, then
/// exactly one entry with `expected` outcome is appended to the chain.
fn check(mut history: History, when: Submission, expected: Outcome) {
    let given = history.given();
    let then = history.next(when.clone(), expected);
    ParticipantTest::with(())
        .given(given)
        .when(record(when))
        .then_expect_events(vec![then]);
}

/// Records `when` with the ledger clock reading `clock_reading`, after `history`; returns the
/// entry and checks it is exactly the expected link (stamp included).
fn record_read_at(
    mut history: History,
    when: Submission,
    clock_reading: DateTime<Utc>,
) -> ParticipantEvent {
    let given = history.given();
    let then = history.next_read_at(when.clone(), clock_reading);
    ParticipantTest::with(())
        .given(given)
        .when(ParticipantCommand::Record {
            submission: when,
            recorded_at: clock_reading,
        })
        .then_expect_events(vec![then.clone()]);
    then
}

#[test]
fn recorded_at_increases_strictly_along_the_chain_whatever_the_clock_reads() {
    let history = referred_history();
    let previous = history.entries[0].recorded_at;
    let enrolment = || submission(2, Agency::Municipality, enrolled());
    // A ledger host whose clock is an hour behind the one that stamped the previous entry.
    let behind = record_read_at(
        referred_history(),
        enrolment(),
        previous - chrono::Duration::hours(1),
    );
    assert_eq!(
        behind.recorded_at,
        previous + chrono::Duration::microseconds(1)
    );
    // The same reading as the previous entry's.
    let same = record_read_at(referred_history(), enrolment(), previous);
    assert!(same.recorded_at > previous, "{same:?}");
    // A later reading is taken as it is, to the microsecond.
    let later = previous + chrono::Duration::nanoseconds(2_500_999);
    let taken = record_read_at(referred_history(), enrolment(), later);
    assert_eq!(
        taken.recorded_at,
        previous + chrono::Duration::microseconds(2_500)
    );
    // Each stamp is part of the hashed link: the chain still verifies end to end.
    let mut verifier = ChainVerifier::default();
    for (sequence, entry) in [history.entries[0].clone(), behind].iter().enumerate() {
        let stored = serde_json::to_value(entry).unwrap_or_default();
        verifier.push(sequence as u64 + 1, &stored);
    }
    assert!(verifier.finish().is_intact());
}

#[test]
fn a_referral_starts_the_history_at_the_genesis_hash() {
    let when = submission(1, Agency::Municipality, referred());
    let result = ParticipantTest::with(())
        .given_no_previous_events()
        .when(record(when))
        .inspect_result();
    let events = result.unwrap_or_default();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].sequence, 1);
    assert_eq!(events[0].prev_hash, GENESIS_HASH);
    assert!(events[0].is_accepted());
}

#[test]
fn enrolment_without_referral_is_rejected_and_recorded() {
    check(
        History::default(),
        submission(2, Agency::Municipality, enrolled()),
        rejected(RuleViolation::EnrolmentNeedsReferral),
    );
}

#[test]
fn enrolment_after_referral_is_accepted() {
    check(
        referred_history(),
        submission(2, Agency::Municipality, enrolled()),
        Outcome::Accepted,
    );
}

#[test]
fn a_second_enrolment_is_rejected() {
    let history = referred_history().accepted(submission(2, Agency::Municipality, enrolled()));
    check(
        history,
        submission(3, Agency::Municipality, enrolled()),
        rejected(RuleViolation::ParticipantAlreadyEnrolled),
    );
}

#[test]
fn a_second_referral_is_rejected() {
    check(
        referred_history(),
        submission(2, Agency::Municipality, referred()),
        rejected(RuleViolation::ParticipantAlreadyReferred),
    );
}

#[test]
fn only_the_municipality_records_enrolment() {
    check(
        referred_history(),
        submission(2, Agency::Forsakringskassan, enrolled()),
        rejected(RuleViolation::AgencyMayNotRecord {
            agency: "fk".into(),
            event_type: "ParticipantEnrolled".into(),
        }),
    );
}

#[test]
fn consent_needs_a_referred_participant() {
    check(
        History::default(),
        submission(
            2,
            Agency::Municipality,
            consent(1, date(2026, 1, 1), date(2026, 12, 31)),
        ),
        rejected(RuleViolation::ParticipantNotReferred),
    );
}

#[test]
fn consent_validity_must_be_a_real_period() {
    for (valid_from, valid_to) in [
        (date(2026, 5, 1), date(2026, 5, 1)),
        (date(2026, 5, 1), date(2026, 4, 1)),
    ] {
        check(
            referred_history(),
            submission(2, Agency::Municipality, consent(1, valid_from, valid_to)),
            rejected(RuleViolation::InvalidInput {
                field: "valid_to".into(),
                reason: "must be after valid_from".into(),
            }),
        );
    }
}

#[test]
fn consent_between_a_party_and_itself_is_invalid_input() {
    let body = EventBody::ConsentGranted {
        consent_id: ConsentId(Uuid::from_u128(1)),
        discloser: ConsentParty::IpsUnit,
        recipient: ConsentParty::IpsUnit,
        data_categories: vec![DataCategory::Participation],
        valid_from: date(2026, 1, 1),
        valid_to: date(2026, 2, 1),
    };
    check(
        referred_history(),
        submission(2, Agency::Municipality, body),
        rejected(RuleViolation::InvalidInput {
            field: "recipient".into(),
            reason: "must differ from discloser".into(),
        }),
    );
}

#[test]
fn a_consent_id_is_used_once() {
    let history = referred_history().accepted(submission(
        2,
        Agency::Municipality,
        consent(7, date(2026, 1, 1), date(2026, 6, 1)),
    ));
    check(
        history,
        submission(
            3,
            Agency::Municipality,
            consent(7, date(2026, 1, 1), date(2026, 9, 1)),
        ),
        rejected(RuleViolation::ConsentIdAlreadyUsed),
    );
}

#[test]
fn granted_consent_is_in_force_within_its_period_only() {
    let history = referred_history().accepted(submission(
        2,
        Agency::Municipality,
        consent(1, date(2026, 2, 1), date(2026, 6, 30)),
    ));
    let mut participant = Participant::default();
    for entry in history.given() {
        participant.apply(entry);
    }
    let in_force = |on| {
        participant.consent_in_force(
            ConsentParty::Forsakringskassan,
            ConsentParty::IpsUnit,
            DataCategory::BenefitDecisions,
            on,
        )
    };
    assert!(!in_force(date(2026, 1, 31)));
    assert!(in_force(date(2026, 2, 1)));
    assert!(in_force(date(2026, 6, 30)));
    assert!(!in_force(date(2026, 7, 1)));
    assert!(!participant.consent_in_force(
        ConsentParty::IpsUnit,
        ConsentParty::Forsakringskassan,
        DataCategory::BenefitDecisions,
        date(2026, 3, 1)
    ));
}

#[test]
fn withdrawal_without_consent_in_force_is_rejected() {
    check(
        referred_history(),
        submission(2, Agency::Municipality, withdrawal(date(2026, 3, 1))),
        rejected(RuleViolation::ConsentNotInForce),
    );
}

#[test]
fn withdrawal_of_an_already_withdrawn_consent_is_rejected() {
    let history = referred_history()
        .accepted(submission(
            2,
            Agency::Municipality,
            consent(1, date(2026, 1, 1), date(2026, 12, 31)),
        ))
        .accepted(submission(
            3,
            Agency::Municipality,
            withdrawal(date(2026, 3, 1)),
        ));
    check(
        history,
        submission(4, Agency::Municipality, withdrawal(date(2026, 4, 1))),
        rejected(RuleViolation::ConsentNotInForce),
    );
}

#[test]
fn withdrawal_stops_future_disclosure_only() {
    let history = referred_history().accepted(submission(
        2,
        Agency::Municipality,
        consent(1, date(2026, 1, 1), date(2026, 12, 31)),
    ));
    check(
        referred_history().accepted(submission(
            2,
            Agency::Municipality,
            consent(1, date(2026, 1, 1), date(2026, 12, 31)),
        )),
        submission(3, Agency::Municipality, withdrawal(date(2026, 3, 1))),
        Outcome::Accepted,
    );
    let history = history.accepted(submission(
        3,
        Agency::Municipality,
        withdrawal(date(2026, 3, 1)),
    ));
    let mut participant = Participant::default();
    for entry in history.given() {
        participant.apply(entry);
    }
    let in_force = |on| {
        participant.consent_in_force(
            ConsentParty::Forsakringskassan,
            ConsentParty::IpsUnit,
            DataCategory::BenefitDecisions,
            on,
        )
    };
    assert!(in_force(date(2026, 2, 28)));
    assert!(!in_force(date(2026, 3, 1)));
}

#[test]
fn a_recorded_event_id_is_a_no_op_whether_accepted_or_rejected() {
    let referral = submission(1, Agency::Municipality, referred());
    ParticipantTest::with(())
        .given(referred_history().given())
        .when(record(referral))
        .then_expect_events(vec![]);

    let mut history = History::default();
    let early_enrolment = submission(2, Agency::Municipality, enrolled());
    history.next(
        early_enrolment.clone(),
        rejected(RuleViolation::EnrolmentNeedsReferral),
    );
    let history = history.accepted(submission(3, Agency::Municipality, referred()));
    // The same event id again, now that a referral exists: still the first verdict, nothing new.
    ParticipantTest::with(())
        .given(history.given())
        .when(record(early_enrolment))
        .then_expect_events(vec![]);
}

#[test]
fn an_event_id_another_agency_recorded_is_refused_not_answered() {
    // FK reuses the id of the municipality's referral: not a redelivery of FK's own event, so
    // the municipality's verdict must not be handed to FK.
    let mut reused = submission(
        1,
        Agency::Forsakringskassan,
        EventBody::MedicalCertificateReceived {
            period: period(date(2026, 3, 1), date(2026, 4, 1)),
            degree_percent: 100,
        },
    );
    reused.envelope.actor.role = Role::CaseOfficer;
    ParticipantTest::with(())
        .given(referred_history().given())
        .when(record(reused))
        .then_expect_error(ParticipantError::EventIdRecordedByAnotherAgency);
}

#[test]
fn a_submission_for_another_participant_is_an_error() {
    let mut other = submission(2, Agency::Municipality, enrolled());
    other.envelope.participant_id = ParticipantId(Uuid::from_u128(42));
    ParticipantTest::with(())
        .given(referred_history().given())
        .when(record(other))
        .then_expect_error(ParticipantError::ParticipantMismatch);
}

#[test]
fn a_full_history_accepts_nothing_more() {
    let mut participant = Participant::default();
    for entry in referred_history().given() {
        participant.apply(entry);
    }
    participant.last_sequence = PARTICIPANT_EVENTS_MAX;
    let runtime = tokio::runtime::Builder::new_current_thread().build();
    let Ok(runtime) = runtime else {
        panic!("a current-thread runtime must build")
    };
    let sink = EventSink::default();
    let result = runtime.block_on(participant.handle(
        record(submission(2, Agency::Municipality, enrolled())),
        &(),
        &sink,
    ));
    assert_eq!(
        result,
        Err(ParticipantError::ParticipantStreamFull {
            events_max: PARTICIPANT_EVENTS_MAX
        })
    );
}

#[test]
fn recorded_entries_form_a_verifiable_chain_and_remember_their_verdicts() {
    let mut participant = Participant::default();
    let runtime = tokio::runtime::Builder::new_current_thread().build();
    let Ok(runtime) = runtime else {
        panic!("a current-thread runtime must build")
    };
    let submissions = [
        submission(1, Agency::Municipality, enrolled()),
        submission(2, Agency::Municipality, referred()),
        submission(3, Agency::Municipality, enrolled()),
        submission(
            4,
            Agency::Municipality,
            consent(1, date(2026, 1, 1), date(2026, 12, 31)),
        ),
    ];
    let mut verifier = ChainVerifier::default();
    for submission in submissions {
        let sink = EventSink::default();
        let handled = runtime.block_on(participant.handle(record(submission), &(), &sink));
        assert_eq!(handled, Ok(()));
        for entry in runtime.block_on(sink.collect()) {
            let stored = serde_json::to_value(&entry).unwrap_or_default();
            verifier.push(entry.sequence, &stored);
        }
    }
    let report = verifier.finish();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified_entries, 4);
    assert_eq!(participant.chain_head(), (4, report.head_hash.as_str()));
    assert_eq!(
        participant
            .verdict(event_id(1))
            .map(|verdict| verdict.outcome.clone()),
        Some(rejected(RuleViolation::EnrolmentNeedsReferral))
    );
    assert_eq!(
        participant
            .verdict(event_id(3))
            .map(|verdict| verdict.outcome.clone()),
        Some(Outcome::Accepted)
    );
    assert_eq!(participant.lifecycle(), Lifecycle::Enrolled);
}

// ---- The IPS path, the four agencies, lifecycle and corrections ----

use crate::ids::{ActivityId, ProgrammeId};
use crate::values::{
    ActivityKind, Availability, BenefitKind, DecisionOutcome, DischargeReason, JobEndReason,
    Period, Subsidy,
};

fn activity(number: u128) -> ActivityId {
    ActivityId(Uuid::from_u128(0xacc0_0000 + number))
}

fn proposed(number: u128, kind: ActivityKind, hours_per_week: u8) -> EventBody {
    EventBody::ActivityProposed {
        activity_id: activity(number),
        kind,
        employer: Some("Hudiksvalls bageri".into()),
        hours_per_week,
        planned_start: date(2026, 3, 1),
        planned_end: None,
        subsidy: None,
        at_own_employer: false,
    }
}

fn job_started(number: u128, started_on: NaiveDate) -> EventBody {
    EventBody::JobStarted {
        activity_id: activity(number),
        employer: "Hudiksvalls bageri".into(),
        occupation: "bagare".into(),
        competitive: true,
        subsidy: None,
        hours_per_week: 30,
        started_on,
    }
}

fn enrolled_history() -> History {
    referred_history().accepted(submission(2, Agency::Municipality, enrolled()))
}

fn period(from: NaiveDate, to: NaiveDate) -> Period {
    Period { from, to }
}

#[test]
fn a_discharged_participant_accepts_only_re_enrolment() {
    let discharged = || {
        enrolled_history().accepted(submission(
            3,
            Agency::Municipality,
            EventBody::ParticipantDischarged {
                reason: DischargeReason::Moved,
            },
        ))
    };
    check(
        discharged(),
        submission(
            4,
            Agency::Municipality,
            proposed(1, ActivityKind::Praktik, 20),
        ),
        rejected(RuleViolation::ParticipantDischarged),
    );
    check(
        discharged(),
        submission(
            4,
            Agency::Forsakringskassan,
            EventBody::AvstamningsmoteHeld {
                held_on: date(2026, 4, 1),
            },
        ),
        rejected(RuleViolation::ParticipantDischarged),
    );
    let re_enrolled = EventBody::ParticipantReEnrolled {
        unit: UnitId("hudiksvall-ips".into()),
        coach: PersonId("coach-18".into()),
    };
    check(
        discharged(),
        submission(4, Agency::Municipality, re_enrolled.clone()),
        Outcome::Accepted,
    );
    // After re-enrolment the path continues, and the history before it stays.
    let history = discharged().accepted(submission(4, Agency::Municipality, re_enrolled));
    assert_eq!(history.entries.len(), 4);
    check(
        history,
        submission(
            5,
            Agency::Municipality,
            proposed(1, ActivityKind::Praktik, 20),
        ),
        Outcome::Accepted,
    );
}

#[test]
fn only_a_discharged_participant_is_re_enrolled() {
    let re_enrolled = EventBody::ParticipantReEnrolled {
        unit: UnitId("hudiksvall-ips".into()),
        coach: PersonId("coach-18".into()),
    };
    check(
        enrolled_history(),
        submission(3, Agency::Municipality, re_enrolled),
        rejected(RuleViolation::ParticipantNotDischarged),
    );
}

#[test]
fn the_waiting_list_leads_to_enrolment() {
    let waiting = referred_history().accepted(submission(
        2,
        Agency::Municipality,
        EventBody::PlacedOnWaitingList {
            unit: UnitId("hudiksvall-ips".into()),
        },
    ));
    check(
        waiting.clone_history(),
        submission(
            3,
            Agency::Municipality,
            EventBody::PlacedOnWaitingList {
                unit: UnitId("hudiksvall-ips".into()),
            },
        ),
        rejected(RuleViolation::AlreadyOnWaitingList),
    );
    check(
        waiting,
        submission(3, Agency::Municipality, enrolled()),
        Outcome::Accepted,
    );
}

#[test]
fn pause_and_resume() {
    let paused = || {
        enrolled_history().accepted(submission(
            3,
            Agency::Municipality,
            EventBody::ParticipantPaused {
                reason: "inpatient care".into(),
            },
        ))
    };
    check(
        paused(),
        submission(
            4,
            Agency::Municipality,
            EventBody::ParticipantPaused {
                reason: "again".into(),
            },
        ),
        rejected(RuleViolation::ParticipantAlreadyPaused),
    );
    check(
        paused(),
        submission(
            4,
            Agency::Municipality,
            proposed(1, ActivityKind::Praktik, 20),
        ),
        rejected(RuleViolation::ParticipantPaused),
    );
    check(
        enrolled_history(),
        submission(3, Agency::Municipality, EventBody::ParticipantResumed),
        rejected(RuleViolation::ParticipantNotPaused),
    );
    let resumed = paused().accepted(submission(
        4,
        Agency::Municipality,
        EventBody::ParticipantResumed,
    ));
    check(
        resumed,
        submission(
            5,
            Agency::Municipality,
            proposed(1, ActivityKind::Praktik, 20),
        ),
        Outcome::Accepted,
    );
}

#[test]
fn path_steps_need_an_enrolled_participant() {
    check(
        referred_history(),
        submission(
            2,
            Agency::Municipality,
            proposed(1, ActivityKind::Praktik, 20),
        ),
        rejected(RuleViolation::ParticipantNotEnrolled),
    );
}

#[test]
fn hours_per_week_are_between_1_and_60() {
    for (hours, expected) in [
        (
            0,
            rejected(RuleViolation::InvalidInput {
                field: "hours_per_week".into(),
                reason: "must be between 1 and 60 hours per week".into(),
            }),
        ),
        (1, Outcome::Accepted),
        (60, Outcome::Accepted),
        (
            61,
            rejected(RuleViolation::InvalidInput {
                field: "hours_per_week".into(),
                reason: "must be between 1 and 60 hours per week".into(),
            }),
        ),
    ] {
        check(
            enrolled_history(),
            submission(
                3,
                Agency::Municipality,
                proposed(1, ActivityKind::Arbetstraning, hours),
            ),
            expected,
        );
    }
}

#[test]
fn an_end_is_never_before_its_start() {
    let working = enrolled_history()
        .accepted(submission(
            3,
            Agency::Municipality,
            proposed(1, ActivityKind::Job, 30),
        ))
        .accepted(submission(
            4,
            Agency::Municipality,
            job_started(1, date(2026, 5, 1)),
        ));
    let ended = |ended_on| EventBody::JobEnded {
        activity_id: activity(1),
        ended_on,
        reason: JobEndReason::Resigned,
    };
    check(
        working.clone_history(),
        submission(5, Agency::Municipality, ended(date(2026, 4, 30))),
        rejected(RuleViolation::EndBeforeStart),
    );
    check(
        working.clone_history(),
        submission(5, Agency::Municipality, ended(date(2026, 5, 1))),
        Outcome::Accepted,
    );
    let hours = EventBody::HoursChanged {
        activity_id: activity(1),
        hours_per_week: 20,
        from: date(2026, 4, 1),
    };
    check(
        working,
        submission(5, Agency::Municipality, hours),
        rejected(RuleViolation::EndBeforeStart),
    );
}

#[test]
fn activities_start_once_and_end_after_starting() {
    let proposed_trial = || {
        enrolled_history().accepted(submission(
            3,
            Agency::Municipality,
            proposed(1, ActivityKind::Arbetsprovning, 20),
        ))
    };
    let ended = EventBody::ActivityEnded {
        activity_id: activity(1),
        ended_on: date(2026, 4, 1),
    };
    check(
        proposed_trial(),
        submission(4, Agency::Municipality, ended.clone()),
        rejected(RuleViolation::ActivityNotStarted),
    );
    let started = proposed_trial().accepted(submission(
        4,
        Agency::Municipality,
        EventBody::ActivityStarted {
            activity_id: activity(1),
            started_on: date(2026, 3, 2),
        },
    ));
    check(
        started.clone_history(),
        submission(
            5,
            Agency::Municipality,
            EventBody::ActivityStarted {
                activity_id: activity(1),
                started_on: date(2026, 3, 3),
            },
        ),
        rejected(RuleViolation::ActivityAlreadyStarted),
    );
    check(
        started,
        submission(5, Agency::Municipality, ended),
        Outcome::Accepted,
    );
}

#[test]
fn a_step_must_fit_the_kind_of_activity() {
    let trial = enrolled_history().accepted(submission(
        3,
        Agency::Municipality,
        proposed(1, ActivityKind::Arbetsprovning, 20),
    ));
    check(
        trial,
        submission(4, Agency::Municipality, job_started(1, date(2026, 3, 1))),
        rejected(RuleViolation::WrongActivityKind {
            expected: "job".into(),
            actual: "arbetsprovning".into(),
        }),
    );
    check(
        enrolled_history(),
        submission(
            3,
            Agency::Municipality,
            EventBody::ActivityProposed {
                activity_id: activity(1),
                kind: ActivityKind::Praktik,
                employer: None,
                hours_per_week: 10,
                planned_start: date(2026, 3, 1),
                planned_end: None,
                subsidy: Some(Subsidy::Lonebidrag),
                at_own_employer: false,
            },
        ),
        rejected(RuleViolation::InvalidInput {
            field: "subsidy".into(),
            reason: "only a job can have a wage subsidy".into(),
        }),
    );
}

#[test]
fn decisions_refer_to_activities_that_exist() {
    let decision = EventBody::ActivityDecision {
        activity_id: activity(9),
        outcome: DecisionOutcome::Approved,
        valid: Some(period(date(2026, 3, 1), date(2026, 6, 1))),
        reason: String::new(),
    };
    check(
        enrolled_history(),
        submission(3, Agency::Forsakringskassan, decision.clone()),
        rejected(RuleViolation::UnknownActivity),
    );
    let with_activity = enrolled_history().accepted(submission(
        3,
        Agency::Municipality,
        proposed(9, ActivityKind::Arbetstraning, 20),
    ));
    check(
        with_activity.clone_history(),
        submission(4, Agency::Forsakringskassan, decision.clone()),
        Outcome::Accepted,
    );
    check(
        with_activity.clone_history(),
        submission(4, Agency::Arbetsformedlingen, decision.clone()),
        Outcome::Accepted,
    );
    check(
        with_activity,
        submission(4, Agency::Municipality, decision),
        rejected(RuleViolation::AgencyMayNotRecord {
            agency: "municipality".into(),
            event_type: "ActivityDecision".into(),
        }),
    );
}

#[test]
fn an_approval_needs_a_validity_period() {
    let with_activity = enrolled_history().accepted(submission(
        3,
        Agency::Municipality,
        proposed(9, ActivityKind::Arbetstraning, 20),
    ));
    let approval = EventBody::ActivityDecision {
        activity_id: activity(9),
        outcome: DecisionOutcome::Approved,
        valid: None,
        reason: String::new(),
    };
    check(
        with_activity,
        submission(4, Agency::Forsakringskassan, approval),
        rejected(RuleViolation::InvalidInput {
            field: "valid".into(),
            reason: "an approval needs a validity period".into(),
        }),
    );
}

#[test]
fn each_agency_records_only_its_own_steps() {
    check(
        enrolled_history(),
        submission(
            3,
            Agency::Forsakringskassan,
            proposed(1, ActivityKind::Praktik, 20),
        ),
        rejected(RuleViolation::AgencyMayNotRecord {
            agency: "fk".into(),
            event_type: "ActivityProposed".into(),
        }),
    );
    check(
        enrolled_history(),
        submission(
            3,
            Agency::Psychiatry,
            EventBody::JobSeekerRegistered {
                registered_on: date(2026, 3, 1),
            },
        ),
        rejected(RuleViolation::AgencyMayNotRecord {
            agency: "psychiatry".into(),
            event_type: "JobSeekerRegistered".into(),
        }),
    );
}

#[test]
fn benefits_and_rehabilitation_plans_must_exist_before_they_end_or_are_revised() {
    check(
        enrolled_history(),
        submission(
            3,
            Agency::Forsakringskassan,
            EventBody::BenefitEnded {
                benefit: BenefitKind::Sjukpenning,
                ended_on: date(2026, 5, 1),
            },
        ),
        rejected(RuleViolation::UnknownBenefit),
    );
    check(
        enrolled_history(),
        submission(
            3,
            Agency::Forsakringskassan,
            EventBody::RehabPlanRevised {
                revised_on: date(2026, 5, 1),
            },
        ),
        rejected(RuleViolation::NoRehabilitationPlan),
    );
    let on_benefit = enrolled_history().accepted(submission(
        3,
        Agency::Forsakringskassan,
        EventBody::BenefitRegistered {
            benefit: BenefitKind::Sjukpenning,
            degree_percent: 100,
            period: period(date(2026, 1, 1), date(2026, 12, 31)),
            employed: false,
        },
    ));
    check(
        on_benefit,
        submission(
            4,
            Agency::Forsakringskassan,
            EventBody::BenefitEnded {
                benefit: BenefitKind::Sjukpenning,
                ended_on: date(2025, 12, 1),
            },
        ),
        rejected(RuleViolation::EndBeforeStart),
    );
}

#[test]
fn arbetsformedlingen_steps_need_a_registered_job_seeker_and_existing_programmes() {
    let programme = EventBody::ProgrammeAssigned {
        programme_id: ProgrammeId(Uuid::from_u128(5)),
        programme: "Förberedande insatser".into(),
        with_activity_allowance: true,
        period: period(date(2026, 3, 1), date(2026, 8, 31)),
    };
    check(
        enrolled_history(),
        submission(3, Agency::Arbetsformedlingen, programme.clone()),
        rejected(RuleViolation::JobSeekerNotRegistered),
    );
    let registered = enrolled_history().accepted(submission(
        3,
        Agency::Arbetsformedlingen,
        EventBody::JobSeekerRegistered {
            registered_on: date(2026, 2, 1),
        },
    ));
    check(
        registered.clone_history(),
        submission(4, Agency::Arbetsformedlingen, programme),
        Outcome::Accepted,
    );
    check(
        registered.clone_history(),
        submission(
            4,
            Agency::Arbetsformedlingen,
            EventBody::ProgrammeEnded {
                programme_id: ProgrammeId(Uuid::from_u128(5)),
                ended_on: date(2026, 4, 1),
            },
        ),
        rejected(RuleViolation::UnknownProgramme),
    );
    check(
        registered,
        submission(
            4,
            Agency::Arbetsformedlingen,
            EventBody::SiusEnded {
                ended_on: date(2026, 4, 1),
            },
        ),
        rejected(RuleViolation::SiusNotActive),
    );
}

#[test]
fn psychiatry_may_refer_before_the_municipality_records_intake_but_nothing_else() {
    check(
        History::default(),
        submission(
            1,
            Agency::Psychiatry,
            EventBody::IpsReferralSent {
                sent_on: date(2026, 1, 5),
            },
        ),
        Outcome::Accepted,
    );
    check(
        History::default(),
        submission(
            1,
            Agency::Psychiatry,
            EventBody::AvailabilityChanged {
                availability: Availability::TemporarilyUnavailable,
                from: date(2026, 1, 5),
            },
        ),
        rejected(RuleViolation::ParticipantNotReferred),
    );
}

#[test]
fn ids_and_lists_a_body_did_not_get_from_the_edge_are_held_to_its_rules() {
    // Kilobytes of hard-to-compress text as a unit would be refused by the read models'
    // indexes and stall their projector: a correction's JSON is not parsed at the edge.
    let long_unit: String = (0..4_000u32)
        .map(|number| char::from(b'a' + (number.wrapping_mul(7919) % 26) as u8))
        .collect();
    let corrected = |body| EventBody::EventCorrected {
        supersedes: event_id(2),
        reason: "corrected".into(),
        corrected: Box::new(body),
    };
    check(
        enrolled_history(),
        submission(
            3,
            Agency::Municipality,
            corrected(EventBody::ParticipantEnrolled {
                unit: UnitId(long_unit.clone()),
                coach: PersonId("coach-17".into()),
            }),
        ),
        rejected(RuleViolation::InvalidInput {
            field: "unit".into(),
            reason: "is longer than 64 bytes".into(),
        }),
    );
    check(
        enrolled_history(),
        submission(
            3,
            Agency::Municipality,
            corrected(EventBody::ParticipantEnrolled {
                unit: UnitId("hudiksvall-ips".into()),
                coach: PersonId(" coach-17".into()),
            }),
        ),
        rejected(RuleViolation::InvalidInput {
            field: "person_id".into(),
            reason: "may not begin or end with spaces".into(),
        }),
    );
    // An envelope from the bus: its actor is held to the token's rules too.
    let mut from_the_bus = submission(3, Agency::Municipality, paused());
    from_the_bus.envelope.actor.unit = UnitId(long_unit);
    check(
        enrolled_history(),
        from_the_bus,
        rejected(RuleViolation::InvalidInput {
            field: "actor.unit".into(),
            reason: "is longer than 64 bytes".into(),
        }),
    );
    // Each benefit once, so the list is bounded by the benefits there are.
    check(
        enrolled_history(),
        submission(
            3,
            Agency::Municipality,
            EventBody::BenefitsCounsellingGiven {
                benefits_discussed: vec![crate::values::CounselledBenefit::Akassa; 2],
            },
        ),
        rejected(RuleViolation::InvalidInput {
            field: "benefits_discussed".into(),
            reason: "names a benefit more than once".into(),
        }),
    );
}

#[test]
fn corrections_supersede_an_accepted_event_of_the_same_agency_and_type() {
    let with_activity = enrolled_history().accepted(submission(
        3,
        Agency::Municipality,
        proposed(1, ActivityKind::Arbetstraning, 20),
    ));
    let correction = |supersedes: u128, corrected: EventBody| EventBody::EventCorrected {
        supersedes: event_id(supersedes),
        reason: "typo in hours".into(),
        corrected: Box::new(corrected),
    };
    check(
        with_activity.clone_history(),
        submission(
            4,
            Agency::Municipality,
            correction(99, proposed(1, ActivityKind::Arbetstraning, 25)),
        ),
        rejected(RuleViolation::UnknownCorrectedEvent),
    );
    check(
        with_activity.clone_history(),
        submission(
            4,
            Agency::Forsakringskassan,
            correction(3, proposed(1, ActivityKind::Arbetstraning, 25)),
        ),
        rejected(RuleViolation::CorrectionByAnotherAgency),
    );
    check(
        with_activity.clone_history(),
        submission(4, Agency::Municipality, correction(3, enrolled())),
        rejected(RuleViolation::CorrectionChangesType),
    );
    check(
        with_activity.clone_history(),
        submission(
            4,
            Agency::Municipality,
            correction(3, proposed(1, ActivityKind::Arbetstraning, 25)),
        ),
        Outcome::Accepted,
    );

    let corrected = with_activity.accepted(submission(
        4,
        Agency::Municipality,
        correction(3, proposed(1, ActivityKind::Arbetstraning, 25)),
    ));
    let mut participant = Participant::default();
    for entry in corrected.given() {
        participant.apply(entry);
    }
    assert_eq!(
        participant
            .activities()
            .get(&activity(1))
            .map(|record| record.hours_per_week),
        Some(25)
    );
}

impl History {
    fn clone_history(&self) -> History {
        History {
            entries: self.entries.clone(),
        }
    }
}

// ---- Green-light gates (DOMAIN.md §5): a start before every required gate is approved ----

use crate::values::SocialAssistanceStatus;

fn benefit(number: u128, kind: BenefitKind) -> Submission {
    submission(
        number,
        Agency::Forsakringskassan,
        EventBody::BenefitRegistered {
            benefit: kind,
            degree_percent: 100,
            period: period(date(2026, 1, 1), date(2026, 12, 31)),
            employed: false,
        },
    )
}

fn started(number: u128, activity_number: u128, on: NaiveDate) -> Submission {
    submission(
        number,
        Agency::Municipality,
        EventBody::ActivityStarted {
            activity_id: activity(activity_number),
            started_on: on,
        },
    )
}

fn fk_decision(
    number: u128,
    activity_number: u128,
    outcome: DecisionOutcome,
    valid: Option<Period>,
) -> Submission {
    submission(
        number,
        Agency::Forsakringskassan,
        EventBody::ActivityDecision {
            activity_id: activity(activity_number),
            outcome,
            valid,
            reason: String::new(),
        },
    )
}

fn not_green(gates: &[&str]) -> Outcome {
    rejected(RuleViolation::GateNotGreen {
        missing_gates: gates.iter().map(|gate| (*gate).to_owned()).collect(),
    })
}

/// Enrolled, on `kind` of benefit, with an arbetsträning (activity 1) proposed.
fn training_on(kind: BenefitKind) -> History {
    enrolled_history()
        .accepted(benefit(3, kind))
        .accepted(submission(
            4,
            Agency::Municipality,
            proposed(1, ActivityKind::Arbetstraning, 20),
        ))
}

#[test]
fn sjukpenning_needs_an_fk_decision_valid_on_the_start_day() {
    check(
        training_on(BenefitKind::Sjukpenning),
        started(5, 1, date(2026, 3, 20)),
        not_green(&["fk_activity_decision"]),
    );
    let approved = training_on(BenefitKind::Sjukpenning).accepted(fk_decision(
        5,
        1,
        DecisionOutcome::Approved,
        Some(period(date(2026, 4, 5), date(2026, 7, 3))),
    ));
    // Before the validity starts, and after it ends (expired), the gate is not approved.
    check(
        approved.clone_history(),
        started(6, 1, date(2026, 4, 4)),
        not_green(&["fk_activity_decision"]),
    );
    check(
        approved.clone_history(),
        started(6, 1, date(2026, 7, 4)),
        not_green(&["fk_activity_decision"]),
    );
    check(approved, started(6, 1, date(2026, 4, 5)), Outcome::Accepted);
}

#[test]
fn a_rejection_or_a_request_for_information_keeps_the_gate_closed() {
    for outcome in [
        DecisionOutcome::Rejected,
        DecisionOutcome::MoreInformationNeeded,
    ] {
        let history = training_on(BenefitKind::Rehabiliteringspenning)
            .accepted(fk_decision(5, 1, outcome, None));
        check(
            history,
            started(6, 1, date(2026, 4, 5)),
            not_green(&["fk_activity_decision"]),
        );
    }
}

#[test]
fn aktivitetsersattning_needs_an_fk_agreement_for_any_activity_and_a_dormant_benefit_for_paid_work()
{
    check(
        training_on(BenefitKind::Aktivitetsersattning),
        started(5, 1, date(2026, 4, 1)),
        not_green(&["fk_activity_agreement"]),
    );
    let agreed = training_on(BenefitKind::Aktivitetsersattning).accepted(submission(
        5,
        Agency::Forsakringskassan,
        EventBody::ActivityAgreementMade {
            activity_id: activity(1),
            valid: period(date(2026, 3, 1), date(2026, 9, 1)),
        },
    ));
    check(agreed, started(6, 1, date(2026, 4, 1)), Outcome::Accepted);

    for kind in [
        BenefitKind::Aktivitetsersattning,
        BenefitKind::Sjukersattning,
    ] {
        let job = enrolled_history()
            .accepted(benefit(3, kind))
            .accepted(submission(
                4,
                Agency::Municipality,
                proposed(2, ActivityKind::Job, 30),
            ));
        check(
            job.clone_history(),
            submission(5, Agency::Municipality, job_started(2, date(2026, 5, 1))),
            not_green(&["fk_dormant_benefit"]),
        );
        let dormant = job.accepted(submission(
            5,
            Agency::Forsakringskassan,
            EventBody::DormantBenefitDecided {
                activity_id: activity(2),
                valid: period(date(2026, 5, 1), date(2026, 12, 31)),
            },
        ));
        check(
            dormant,
            submission(6, Agency::Municipality, job_started(2, date(2026, 5, 1))),
            Outcome::Accepted,
        );
    }
}

#[test]
fn forsorjningsstod_needs_acceptance_in_the_planning() {
    let history = enrolled_history()
        .accepted(submission(
            3,
            Agency::Municipality,
            EventBody::SocialAssistanceDecided {
                status: SocialAssistanceStatus::Granted,
            },
        ))
        .accepted(submission(
            4,
            Agency::Municipality,
            proposed(1, ActivityKind::OtherOccupation, 10),
        ));
    check(
        history.clone_history(),
        started(5, 1, date(2026, 3, 2)),
        not_green(&["social_services_planning"]),
    );
    let accepted = history.accepted(submission(
        5,
        Agency::Municipality,
        EventBody::ActivityAcceptedInPlanning {
            activity_id: activity(1),
        },
    ));
    check(accepted, started(6, 1, date(2026, 3, 2)), Outcome::Accepted);
}

#[test]
fn an_af_programme_with_aktivitetsstod_needs_an_af_decision_for_another_activity() {
    let history = enrolled_history()
        .accepted(submission(
            3,
            Agency::Arbetsformedlingen,
            EventBody::JobSeekerRegistered {
                registered_on: date(2026, 2, 1),
            },
        ))
        .accepted(submission(
            4,
            Agency::Arbetsformedlingen,
            EventBody::ProgrammeAssigned {
                programme_id: ProgrammeId(Uuid::from_u128(5)),
                programme: "Förberedande insatser".into(),
                with_activity_allowance: true,
                period: period(date(2026, 2, 1), date(2026, 8, 31)),
            },
        ))
        .accepted(submission(
            5,
            Agency::Municipality,
            proposed(1, ActivityKind::Praktik, 15),
        ));
    check(
        history.clone_history(),
        started(6, 1, date(2026, 3, 2)),
        not_green(&["af_activity_decision"]),
    );
    let decided = history.accepted(submission(
        6,
        Agency::Arbetsformedlingen,
        EventBody::ActivityDecision {
            activity_id: activity(1),
            outcome: DecisionOutcome::ApprovedWithConditions,
            valid: Some(period(date(2026, 3, 1), date(2026, 5, 31))),
            reason: "max 15 h".into(),
        },
    ));
    check(decided, started(7, 1, date(2026, 3, 2)), Outcome::Accepted);
}

/// A job start with other gate-deciding facts than its proposal: the gates were computed
/// without them, so the start is refused and the job must be proposed again.
fn job_started_with(
    number: u128,
    employer: &str,
    subsidy: Option<Subsidy>,
    started_on: NaiveDate,
) -> EventBody {
    EventBody::JobStarted {
        activity_id: activity(number),
        employer: employer.into(),
        occupation: "bagare".into(),
        competitive: false,
        subsidy,
        hours_per_week: 30,
        started_on,
    }
}

#[test]
fn a_corrected_subsidy_re_opens_af_s_gate() {
    let proposal = |subsidy| EventBody::ActivityProposed {
        activity_id: activity(4),
        kind: ActivityKind::Job,
        employer: Some("Hudiksvalls bageri".into()),
        hours_per_week: 30,
        planned_start: date(2026, 3, 2),
        planned_end: None,
        subsidy: Some(subsidy),
        at_own_employer: false,
    };
    // Given a nystartsjobb approved by AF, then the proposal corrected to lönebidrag.
    let corrected = enrolled_history()
        .accepted(submission(
            3,
            Agency::Municipality,
            proposal(Subsidy::Nystartsjobb),
        ))
        .accepted(submission(
            4,
            Agency::Arbetsformedlingen,
            EventBody::SubsidyDecided {
                subsidy: Subsidy::Nystartsjobb,
                activity_id: Some(activity(4)),
                employer: "Hudiksvalls bageri".into(),
                period: period(date(2026, 3, 1), date(2027, 2, 28)),
            },
        ))
        .accepted(submission(
            5,
            Agency::Municipality,
            EventBody::EventCorrected {
                supersedes: event_id(3),
                reason: "the employer applies for lönebidrag instead".into(),
                corrected: Box::new(proposal(Subsidy::Lonebidrag)),
            },
        ));
    // When it starts with lönebidrag: AF's decision was on another subsidy, so it waits.
    check(
        corrected,
        submission(
            6,
            Agency::Municipality,
            job_started_with(
                4,
                "Hudiksvalls bageri",
                Some(Subsidy::Lonebidrag),
                date(2026, 3, 2),
            ),
        ),
        not_green(&["af_subsidy_decision"]),
    );
}

#[test]
fn a_job_starts_on_the_subsidy_and_employer_its_gates_were_computed_from() {
    // Given a job proposed without a subsidy, at a named employer: no AF gate, so it is green.
    let proposed_without_subsidy = || {
        enrolled_history().accepted(submission(
            3,
            Agency::Municipality,
            proposed(2, ActivityKind::Job, 30),
        ))
    };
    // When it starts with lönebidrag: the AF subsidy gate was never opened, so it is refused.
    check(
        proposed_without_subsidy(),
        submission(
            4,
            Agency::Municipality,
            job_started_with(
                2,
                "Hudiksvalls bageri",
                Some(Subsidy::Lonebidrag),
                date(2026, 3, 2),
            ),
        ),
        rejected(RuleViolation::StartDiffersFromProposal {
            field: "subsidy".into(),
        }),
    );
    // When it starts at another employer than the proposal named: refused as well.
    check(
        proposed_without_subsidy(),
        submission(
            4,
            Agency::Municipality,
            job_started_with(2, "Iggesunds bruk", None, date(2026, 3, 2)),
        ),
        rejected(RuleViolation::StartDiffersFromProposal {
            field: "employer".into(),
        }),
    );
    // When it starts as proposed (other hours and another day are fine: no gate depends on
    // hours, and the gates are checked for the actual start day): accepted.
    check(
        proposed_without_subsidy(),
        submission(
            4,
            Agency::Municipality,
            job_started_with(2, "Hudiksvalls bageri", None, date(2026, 3, 9)),
        ),
        Outcome::Accepted,
    );
    // Given the job proposed again with lönebidrag, the AF gate is open and the start waits
    // for AF's decision on that subsidy.
    let proposed_with_subsidy = enrolled_history().accepted(submission(
        3,
        Agency::Municipality,
        EventBody::ActivityProposed {
            activity_id: activity(3),
            kind: ActivityKind::Job,
            employer: Some("Hudiksvalls bageri".into()),
            hours_per_week: 30,
            planned_start: date(2026, 3, 2),
            planned_end: None,
            subsidy: Some(Subsidy::Lonebidrag),
            at_own_employer: false,
        },
    ));
    check(
        proposed_with_subsidy,
        submission(
            4,
            Agency::Municipality,
            job_started_with(
                3,
                "Hudiksvalls bageri",
                Some(Subsidy::Lonebidrag),
                date(2026, 3, 2),
            ),
        ),
        not_green(&["af_subsidy_decision"]),
    );
}

#[test]
fn a_subsidised_job_needs_af_s_decision_on_that_subsidy_before_it_starts() {
    let proposed_job = || {
        enrolled_history().accepted(submission(
            3,
            Agency::Municipality,
            EventBody::ActivityProposed {
                activity_id: activity(2),
                kind: ActivityKind::Job,
                employer: Some("Hudiksvalls bageri".into()),
                hours_per_week: 30,
                planned_start: date(2026, 5, 1),
                planned_end: None,
                subsidy: Some(Subsidy::Nystartsjobb),
                at_own_employer: false,
            },
        ))
    };
    let nystartsjobb_started = |number, started_on| match job_started(number, started_on) {
        EventBody::JobStarted {
            activity_id,
            employer,
            occupation,
            competitive,
            hours_per_week,
            started_on,
            ..
        } => EventBody::JobStarted {
            activity_id,
            employer,
            occupation,
            competitive,
            subsidy: Some(Subsidy::Nystartsjobb),
            hours_per_week,
            started_on,
        },
        other => other,
    };
    let subsidy = |kind| EventBody::SubsidyDecided {
        subsidy: kind,
        activity_id: Some(activity(2)),
        employer: "Hudiksvalls bageri".into(),
        period: period(date(2026, 5, 1), date(2027, 4, 30)),
    };
    check(
        proposed_job(),
        submission(
            4,
            Agency::Municipality,
            nystartsjobb_started(2, date(2026, 5, 1)),
        ),
        not_green(&["af_subsidy_decision"]),
    );
    let wrong_subsidy = proposed_job().accepted(submission(
        4,
        Agency::Arbetsformedlingen,
        subsidy(Subsidy::Lonebidrag),
    ));
    check(
        wrong_subsidy,
        submission(
            5,
            Agency::Municipality,
            nystartsjobb_started(2, date(2026, 5, 1)),
        ),
        not_green(&["af_subsidy_decision"]),
    );
    let decided = proposed_job().accepted(submission(
        4,
        Agency::Arbetsformedlingen,
        subsidy(Subsidy::Nystartsjobb),
    ));
    check(
        decided,
        submission(
            5,
            Agency::Municipality,
            nystartsjobb_started(2, date(2026, 5, 1)),
        ),
        Outcome::Accepted,
    );
}

#[test]
fn temporarily_unavailable_blocks_every_start_until_psychiatry_reports_available() {
    let unavailable = enrolled_history()
        .accepted(submission(
            3,
            Agency::Municipality,
            proposed(1, ActivityKind::OtherOccupation, 10),
        ))
        .accepted(submission(
            4,
            Agency::Psychiatry,
            EventBody::AvailabilityChanged {
                availability: Availability::TemporarilyUnavailable,
                from: date(2026, 3, 1),
            },
        ));
    check(
        unavailable.clone_history(),
        started(5, 1, date(2026, 3, 10)),
        not_green(&["psychiatry_availability"]),
    );
    let available = unavailable.accepted(submission(
        5,
        Agency::Psychiatry,
        EventBody::AvailabilityChanged {
            availability: Availability::Available,
            from: date(2026, 3, 9),
        },
    ));
    check(
        available,
        started(6, 1, date(2026, 3, 10)),
        Outcome::Accepted,
    );
}

#[test]
fn gates_stack_and_the_refusal_names_every_missing_gate() {
    let history = training_on(BenefitKind::Sjukpenning).accepted(submission(
        5,
        Agency::Municipality,
        EventBody::SocialAssistanceDecided {
            status: SocialAssistanceStatus::Granted,
        },
    ));
    check(
        history.clone_history(),
        started(6, 1, date(2026, 4, 1)),
        not_green(&["fk_activity_decision", "social_services_planning"]),
    );
    let one_approved = history.accepted(fk_decision(
        6,
        1,
        DecisionOutcome::Approved,
        Some(period(date(2026, 3, 1), date(2026, 9, 1))),
    ));
    check(
        one_approved.clone_history(),
        started(7, 1, date(2026, 4, 1)),
        not_green(&["social_services_planning"]),
    );
    let both = one_approved.accepted(submission(
        7,
        Agency::Municipality,
        EventBody::ActivityAcceptedInPlanning {
            activity_id: activity(1),
        },
    ));
    check(both, started(8, 1, date(2026, 4, 1)), Outcome::Accepted);
}

#[test]
fn no_situation_means_no_gates() {
    check(
        enrolled_history().accepted(submission(
            3,
            Agency::Municipality,
            proposed(1, ActivityKind::Praktik, 20),
        )),
        started(4, 1, date(2026, 3, 2)),
        Outcome::Accepted,
    );
}

// ---- The 2026 rule: arbetsprövning at the own employer on sjukpenning ----

fn own_employer_trial(number: u128, start: NaiveDate, days: i64) -> EventBody {
    EventBody::ActivityProposed {
        activity_id: activity(number),
        kind: ActivityKind::Arbetsprovning,
        employer: Some("Greta's employer".into()),
        hours_per_week: 20,
        planned_start: start,
        planned_end: Some(start + chrono::Duration::days(days - 1)),
        subsidy: None,
        at_own_employer: true,
    }
}

fn on_sjukpenning(employed: bool, degree_percent: u8) -> History {
    enrolled_history().accepted(submission(
        3,
        Agency::Forsakringskassan,
        EventBody::BenefitRegistered {
            benefit: BenefitKind::Sjukpenning,
            degree_percent,
            period: period(date(2025, 1, 1), date(2027, 12, 31)),
            employed,
        },
    ))
}

#[test]
fn an_employed_person_on_full_sjukpenning_may_do_two_own_employer_trials_a_year_without_an_fk_approval(
) {
    let first = on_sjukpenning(true, 100).accepted(submission(
        4,
        Agency::Municipality,
        own_employer_trial(1, date(2026, 3, 10), 14),
    ));
    // A notice, not an approval: the start needs no FK decision.
    check(
        first.clone_history(),
        started(5, 1, date(2026, 3, 10)),
        Outcome::Accepted,
    );
    let second = first.accepted(submission(
        5,
        Agency::Municipality,
        own_employer_trial(2, date(2026, 9, 1), 14),
    ));
    check(
        second.clone_history(),
        submission(
            6,
            Agency::Municipality,
            own_employer_trial(3, date(2026, 11, 2), 10),
        ),
        rejected(RuleViolation::OwnEmployerTrialLimitReached),
    );
    check(
        second,
        submission(
            6,
            Agency::Municipality,
            own_employer_trial(3, date(2027, 1, 11), 14),
        ),
        Outcome::Accepted,
    );
}

#[test]
fn an_own_employer_trial_before_the_rule_is_in_force_is_refused() {
    check(
        on_sjukpenning(true, 100),
        submission(
            4,
            Agency::Municipality,
            own_employer_trial(1, date(2026, 2, 27), 14),
        ),
        rejected(RuleViolation::OwnEmployerTrialRuleNotInForce),
    );
}

#[test]
fn an_own_employer_trial_needs_an_employed_person_on_full_sjukpenning() {
    for (employed, degree_percent) in [(false, 100), (true, 75)] {
        check(
            on_sjukpenning(employed, degree_percent),
            submission(
                4,
                Agency::Municipality,
                own_employer_trial(1, date(2026, 3, 10), 14),
            ),
            rejected(RuleViolation::OwnEmployerTrialNeedsEmploymentAndFullSjukpenning),
        );
    }
}

#[test]
fn an_own_employer_trial_is_an_arbetsprovning_of_at_most_14_days() {
    check(
        on_sjukpenning(true, 100),
        submission(
            4,
            Agency::Municipality,
            own_employer_trial(1, date(2026, 3, 10), 15),
        ),
        rejected(RuleViolation::InvalidInput {
            field: "planned_end".into(),
            reason: "an arbetsprövning at the own employer lasts at most 14 days".into(),
        }),
    );
    let EventBody::ActivityProposed {
        activity_id,
        employer,
        hours_per_week,
        planned_start,
        planned_end,
        subsidy,
        at_own_employer,
        ..
    } = own_employer_trial(1, date(2026, 3, 10), 14)
    else {
        panic!("an activity proposal")
    };
    let praktik = EventBody::ActivityProposed {
        activity_id,
        kind: ActivityKind::Praktik,
        employer,
        hours_per_week,
        planned_start,
        planned_end,
        subsidy,
        at_own_employer,
    };
    check(
        on_sjukpenning(true, 100),
        submission(4, Agency::Municipality, praktik),
        rejected(RuleViolation::InvalidInput {
            field: "at_own_employer".into(),
            reason: "only an arbetsprövning is done at the own employer under the 2026 rule".into(),
        }),
    );
}

// ---- Visibility (issue 5): given a history, when a reader reads on a day, then they see ----

fn folded(history: &History) -> Participant {
    let mut participant = Participant::default();
    for entry in history.given() {
        cqrs_es::Aggregate::apply(&mut participant, entry);
    }
    participant
}

/// A reader in the unit the histories' coach works in (`submission`), so only the rule a test
/// is about decides.
fn reader(agency: Agency, person: &str, role: Role) -> crate::visibility::Reader {
    crate::visibility::Reader {
        agency,
        actor: Actor {
            person_id: PersonId(person.into()),
            role,
            unit: UnitId("hudiksvall-ips".into()),
        },
    }
}

/// What `reader` sees on `on` of an FK benefit decision, given `history`.
fn check_sight(
    history: &History,
    reader: &crate::visibility::Reader,
    on: NaiveDate,
    expected: &str,
) {
    let participant = folded(history);
    let body = EventBody::RehabPlanEstablished {
        established_on: date(2026, 3, 1),
    };
    let sight = participant.sight(
        reader,
        Agency::Forsakringskassan,
        &body,
        DataCategory::BenefitDecisions,
        on,
    );
    let got = match sight {
        crate::visibility::Sight::Full(_) => "full",
        crate::visibility::Sight::Shared(_) => "shared",
        crate::visibility::Sight::Hidden => "hidden",
    };
    assert_eq!(got, expected, "{reader:?} on {on}");
}

#[test]
fn another_partys_event_is_seen_only_under_consent_in_force_on_the_day_of_reading() {
    let coach = reader(Agency::Municipality, "coach-17", Role::Coach);
    let fk_officer = reader(Agency::Forsakringskassan, "fk-1", Role::CaseOfficer);
    let ifo_officer = reader(Agency::Municipality, "ifo-1", Role::CaseOfficer);
    let auditor = reader(Agency::Municipality, "auditor-1", Role::Auditor);
    let without = referred_history();
    check_sight(&without, &coach, date(2026, 4, 1), "hidden");
    check_sight(&without, &fk_officer, date(2026, 4, 1), "full");
    check_sight(&without, &auditor, date(2026, 4, 1), "full");
    let with = referred_history().accepted(submission(
        2,
        Agency::Municipality,
        consent(7, date(2026, 3, 1), date(2026, 6, 30)),
    ));
    check_sight(&with, &coach, date(2026, 2, 28), "hidden");
    check_sight(&with, &coach, date(2026, 4, 1), "shared");
    check_sight(&with, &coach, date(2026, 7, 1), "hidden");
    // The municipality's social services are another committee: no sight through the IPS
    // unit's consent.
    check_sight(&with, &ifo_officer, date(2026, 4, 1), "hidden");
    let withdrawn = with.accepted(submission(
        3,
        Agency::Municipality,
        withdrawal(date(2026, 5, 1)),
    ));
    check_sight(&withdrawn, &coach, date(2026, 4, 30), "shared");
    check_sight(&withdrawn, &coach, date(2026, 5, 1), "hidden");
    check_sight(&withdrawn, &auditor, date(2026, 5, 1), "full");
}

/// One reader and one disclosed event per consent party, for the full consent matrix.
fn party_reader_and_event(party: ConsentParty) -> (crate::visibility::Reader, Agency, EventBody) {
    let (agency, person, role) = match party {
        ConsentParty::IpsUnit => (Agency::Municipality, "coach-17", Role::Coach),
        ConsentParty::SocialServices => (Agency::Municipality, "ifo-1", Role::CaseOfficer),
        ConsentParty::Forsakringskassan => (Agency::Forsakringskassan, "fk-1", Role::CaseOfficer),
        ConsentParty::Arbetsformedlingen => (Agency::Arbetsformedlingen, "af-1", Role::CaseOfficer),
        ConsentParty::Psychiatry => (Agency::Psychiatry, "psy-1", Role::CaseOfficer),
    };
    // Within the municipality the event decides the party: social services' own decision.
    let body = if party == ConsentParty::SocialServices {
        EventBody::SocialAssistanceDecided {
            status: SocialAssistanceStatus::Granted,
        }
    } else {
        EventBody::RehabPlanEstablished {
            established_on: date(2026, 3, 1),
        }
    };
    (reader(agency, person, role), agency, body)
}

#[test]
fn every_discloser_recipient_and_category_is_seen_only_under_its_own_consent() {
    const PARTIES: [ConsentParty; 5] = [
        ConsentParty::IpsUnit,
        ConsentParty::SocialServices,
        ConsentParty::Forsakringskassan,
        ConsentParty::Arbetsformedlingen,
        ConsentParty::Psychiatry,
    ];
    let auditor = reader(Agency::Municipality, "auditor-1", Role::Auditor);
    let reading_day = date(2026, 4, 1);
    let mut cases = 0;
    for discloser in PARTIES {
        let (_, agency, body) = party_reader_and_event(discloser);
        for recipient in PARTIES.into_iter().filter(|party| *party != discloser) {
            for consented in DataCategory::ALL {
                let granted_history = || {
                    referred_history().accepted(submission(
                        2,
                        Agency::Municipality,
                        EventBody::ConsentGranted {
                            consent_id: ConsentId(Uuid::from_u128(7)),
                            discloser,
                            recipient,
                            data_categories: vec![consented],
                            valid_from: date(2026, 3, 1),
                            valid_to: date(2026, 12, 31),
                        },
                    ))
                };
                let granted = granted_history();
                let withdrawn = granted_history().accepted(submission(
                    3,
                    Agency::Municipality,
                    EventBody::ConsentWithdrawn {
                        discloser,
                        recipient,
                        data_categories: vec![consented],
                        effective_from: date(2026, 3, 15),
                    },
                ));
                let (granted, withdrawn) = (folded(&granted), folded(&withdrawn));
                for category in DataCategory::ALL {
                    let sees = |participant: &Participant, party: ConsentParty| {
                        let (party_reader, _, _) = party_reader_and_event(party);
                        !matches!(
                            participant.sight(&party_reader, agency, &body, category, reading_day),
                            crate::visibility::Sight::Hidden
                        )
                    };
                    let context = format!("{discloser:?} → {recipient:?}, consent for {consented:?}, event of {category:?}");
                    assert_eq!(
                        sees(&granted, recipient),
                        category == consented,
                        "{context}"
                    );
                    assert!(!sees(&withdrawn, recipient), "withdrawn: {context}");
                    assert!(sees(&granted, discloser), "own records: {context}");
                    for bystander in PARTIES
                        .into_iter()
                        .filter(|party| *party != discloser && *party != recipient)
                    {
                        assert!(!sees(&granted, bystander), "{bystander:?} by: {context}");
                    }
                    for participant in [&granted, &withdrawn] {
                        assert!(matches!(
                            participant.sight(&auditor, agency, &body, category, reading_day),
                            crate::visibility::Sight::Full(_)
                        ));
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(
        cases,
        5 * 4 * DataCategory::ALL.len() * DataCategory::ALL.len()
    );
}

#[test]
fn a_protected_identity_is_opened_only_by_its_allow_list_and_auditors() {
    let protected = referred_history().accepted(submission(
        2,
        Agency::Municipality,
        EventBody::IdentityProtected {
            allowed_readers: vec![AllowedReader::municipal(PersonId("coach-17".into()))],
        },
    ));
    let participant = folded(&protected);
    assert_eq!(
        participant.may_open(&reader(Agency::Municipality, "coach-17", Role::Coach)),
        Ok(())
    );
    assert_eq!(
        participant.may_open(&reader(Agency::Municipality, "auditor-1", Role::Auditor)),
        Ok(())
    );
    assert!(participant
        .may_open(&reader(Agency::Municipality, "coach-18", Role::Coach))
        .is_err());
    assert!(folded(&referred_history())
        .may_open(&reader(Agency::Municipality, "coach-18", Role::Coach))
        .is_ok());
}

#[test]
fn protecting_an_identity_needs_a_referral_and_someone_on_the_list() {
    check(
        History::default(),
        submission(
            1,
            Agency::Municipality,
            EventBody::IdentityProtected {
                allowed_readers: vec![AllowedReader::municipal(PersonId("coach-17".into()))],
            },
        ),
        rejected(RuleViolation::ParticipantNotReferred),
    );
    let empty = EventBody::IdentityProtected {
        allowed_readers: vec![],
    };
    assert_eq!(
        empty.validate().map_err(|error| error.field),
        Err("allowed_person_ids".to_owned())
    );
}

#[test]
fn the_shared_view_drops_free_text_and_for_a_protected_identity_location() {
    let body = serde_json::json!({
        "type": "EventCorrected",
        "reason": "typo",
        "corrected": { "type": "EmployerContactMade", "employer": "Bageriet", "face_to_face": true }
    });
    let mut shared = body.clone();
    crate::visibility::shared_view(&mut shared, false);
    assert_eq!(
        shared,
        serde_json::json!({
            "type": "EventCorrected",
            "corrected": { "type": "EmployerContactMade", "employer": "Bageriet", "face_to_face": true }
        })
    );
    let mut protected = body;
    crate::visibility::shared_view(&mut protected, true);
    assert_eq!(
        protected,
        serde_json::json!({
            "type": "EventCorrected",
            "corrected": { "type": "EmployerContactMade", "face_to_face": true }
        })
    );
}

#[test]
fn the_shared_view_is_an_allow_list_so_occupations_programmes_and_unknown_fields_stay_home() {
    let cases = [
        (
            serde_json::json!({ "type": "JobStarted", "occupation": "bagare", "hours_per_week": 20 }),
            serde_json::json!({ "type": "JobStarted", "hours_per_week": 20 }),
        ),
        (
            serde_json::json!({ "type": "StudiesStarted", "programme": "Komvux svenska", "started_on": "2026-03-02" }),
            serde_json::json!({ "type": "StudiesStarted", "started_on": "2026-03-02" }),
        ),
        (
            serde_json::json!({ "type": "ProgrammeAssigned", "programme": "Förberedande insatser", "with_activity_allowance": true }),
            serde_json::json!({ "type": "ProgrammeAssigned", "with_activity_allowance": true }),
        ),
        (
            serde_json::json!({ "type": "SipHeld", "held_on": "2026-03-02", "note": "at the clinic" }),
            serde_json::json!({ "type": "SipHeld", "held_on": "2026-03-02" }),
        ),
        (
            serde_json::json!({ "type": "ParticipantDischarged", "reason": "poor_health" }),
            serde_json::json!({ "type": "ParticipantDischarged" }),
        ),
    ];
    for (stored, expected) in cases {
        let mut shared = stored.clone();
        crate::visibility::shared_view(&mut shared, false);
        assert_eq!(shared, expected, "shared view of {stored}");
    }
}

#[test]
fn consent_party_and_category_tokens_are_their_serialised_names() {
    for party in [
        ConsentParty::IpsUnit,
        ConsentParty::SocialServices,
        ConsentParty::Forsakringskassan,
        ConsentParty::Arbetsformedlingen,
        ConsentParty::Psychiatry,
    ] {
        assert_eq!(
            serde_json::to_value(party).ok(),
            Some(serde_json::Value::from(party.token()))
        );
    }
    for category in DataCategory::ALL {
        assert_eq!(
            serde_json::to_value(category).ok(),
            Some(serde_json::Value::from(category.token()))
        );
    }
}

fn by(number: u128, role: Role, person: &str, unit: &str, body: EventBody) -> Submission {
    let mut submission = submission(number, Agency::Municipality, body);
    submission.envelope.actor = Actor {
        person_id: PersonId(person.into()),
        role,
        unit: UnitId(unit.into()),
    };
    submission
}

fn paused() -> EventBody {
    EventBody::ParticipantPaused {
        reason: "semester".into(),
    }
}

#[test]
fn a_coach_or_team_leader_of_another_unit_may_not_write_on_an_enrolled_participant() {
    for role in [Role::Coach, Role::TeamLeader] {
        check(
            enrolled_history(),
            by(3, role, "coach-99", "bollnas-ips", paused()),
            rejected(RuleViolation::OtherUnit),
        );
    }
    check(
        enrolled_history(),
        by(3, Role::TeamLeader, "leader-1", "hudiksvall-ips", paused()),
        Outcome::Accepted,
    );
}

#[test]
fn a_coach_s_referral_names_their_unit_and_a_case_officer_s_leaves_it_to_the_enrolment() {
    // A coach's referral puts the participant in the coach's unit: another unit may not enrol.
    let referred_by_other_unit =
        History::default().accepted(by(1, Role::Coach, "coach-99", "bollnas-ips", referred()));
    check(
        referred_by_other_unit,
        by(2, Role::Coach, "coach-17", "hudiksvall-ips", enrolled()),
        rejected(RuleViolation::OtherUnit),
    );
    // A case officer's referral names no IPS unit: the unit that enrols names it.
    let referred_by_social_services = History::default().accepted(by(
        1,
        Role::CaseOfficer,
        "ifo-officer-1",
        "hudiksvall-ifo",
        referred(),
    ));
    check(
        referred_by_social_services,
        by(2, Role::Coach, "coach-17", "hudiksvall-ips", enrolled()),
        Outcome::Accepted,
    );
    let waiting = referred_history().accepted(submission(
        2,
        Agency::Municipality,
        EventBody::PlacedOnWaitingList {
            unit: UnitId("hudiksvall-ips".into()),
        },
    ));
    check(
        waiting,
        by(3, Role::Coach, "coach-99", "bollnas-ips", enrolled()),
        rejected(RuleViolation::OtherUnit),
    );
}

#[test]
fn the_allow_list_of_a_protected_participant_admits_across_units() {
    let protected = enrolled_history().accepted(submission(
        3,
        Agency::Municipality,
        EventBody::IdentityProtected {
            allowed_readers: vec![
                AllowedReader::municipal(PersonId("coach-17".into())),
                AllowedReader::municipal(PersonId("coach-99".into())),
            ],
        },
    ));
    check(
        protected,
        by(4, Role::Coach, "coach-99", "bollnas-ips", paused()),
        Outcome::Accepted,
    );
}

/// A participant whose allow-list names exactly `allowed`.
fn protected_for(allowed: Vec<AllowedReader>) -> Participant {
    folded(&referred_history().accepted(submission(
        2,
        Agency::Municipality,
        EventBody::IdentityProtected {
            allowed_readers: allowed,
        },
    )))
}

fn of(agency: Agency, person: &str) -> AllowedReader {
    AllowedReader {
        agency,
        person_id: PersonId(person.into()),
    }
}

#[test]
fn the_allow_list_names_a_person_of_an_organisation_not_a_bare_id() {
    // Given: the municipality's coach-17 on the allow-list.
    let participant = protected_for(vec![of(Agency::Municipality, "coach-17")]);
    // When: an officer of another organisation whose own directory also calls them coach-17
    // opens it. Then: refused (person ids are unique only within their organisation).
    for (agency, unit) in [
        (Agency::Forsakringskassan, "fk-lfc-gavleborg"),
        (Agency::Arbetsformedlingen, "af-hudiksvall"),
        (Agency::Psychiatry, "hudiksvall-vuxenpsykiatri"),
    ] {
        assert_eq!(
            participant.may_open(&reader_of(agency, Role::CaseOfficer, "coach-17", unit)),
            Err(crate::visibility::OpenRefused::NotOnAllowList {
                person: "coach-17".into(),
                organisation: agency.token(),
            }),
            "{agency:?}"
        );
    }
    // Then: the municipality's coach-17 still opens it.
    assert_eq!(
        participant.may_open(&reader(Agency::Municipality, "coach-17", Role::Coach)),
        Ok(())
    );
}

#[test]
fn another_organisations_officer_on_the_allow_list_opens_it_and_a_municipal_namesake_does_not() {
    // Given: FK's fk-officer-4 on the allow-list.
    let participant = protected_for(vec![of(Agency::Forsakringskassan, "fk-officer-4")]);
    // When / then: FK's fk-officer-4 opens it.
    assert_eq!(
        participant.may_open(&reader_of(
            Agency::Forsakringskassan,
            Role::CaseOfficer,
            "fk-officer-4",
            "fk-lfc-gavleborg"
        )),
        Ok(())
    );
    // When / then: a municipal coach whose id is also fk-officer-4 is refused.
    assert_eq!(
        participant
            .may_open(&reader(Agency::Municipality, "fk-officer-4", Role::Coach))
            .map_err(|refused| refused.rule()),
        Err("protected_identity")
    );
}

#[test]
fn another_organisations_officer_on_the_allow_list_carries_no_municipal_namesake_across_units() {
    // Given: an enrolled participant whose allow-list names FK's coach-99.
    let protected = enrolled_history().accepted(submission(
        3,
        Agency::Municipality,
        EventBody::IdentityProtected {
            allowed_readers: vec![
                of(Agency::Municipality, "coach-17"),
                of(Agency::Forsakringskassan, "coach-99"),
            ],
        },
    ));
    // When: the municipality's coach-99, of another IPS unit, writes. Then: the unit boundary
    // refuses it (the list names FK's coach-99, not theirs).
    check(
        protected,
        by(4, Role::Coach, "coach-99", "bollnas-ips", paused()),
        rejected(RuleViolation::OtherUnit),
    );
}

#[test]
fn the_first_case_officer_sets_the_social_services_unit_and_others_are_refused() {
    let decided = |number, unit: &str| {
        by(
            number,
            Role::CaseOfficer,
            "officer-1",
            unit,
            EventBody::SocialAssistanceDecided {
                status: SocialAssistanceStatus::Granted,
            },
        )
    };
    let with_social_services = enrolled_history().accepted(decided(3, "hudiksvall-ifo"));
    check(
        with_social_services,
        decided(4, "bollnas-ifo"),
        rejected(RuleViolation::OtherUnit),
    );
    let with_social_services = enrolled_history().accepted(decided(3, "hudiksvall-ifo"));
    check(
        with_social_services,
        decided(4, "hudiksvall-ifo"),
        Outcome::Accepted,
    );
}

#[test]
fn agencies_without_municipal_units_are_outside_the_unit_rule() {
    let mut from_fk = submission(
        3,
        Agency::Forsakringskassan,
        EventBody::AvstamningsmoteHeld {
            held_on: date(2026, 4, 1),
        },
    );
    from_fk.envelope.actor = Actor {
        person_id: PersonId("fk-officer-1".into()),
        role: Role::CaseOfficer,
        unit: UnitId("fk-gavle".into()),
    };
    check(enrolled_history(), from_fk, Outcome::Accepted);
}

fn reader_of(agency: Agency, role: Role, person: &str, unit: &str) -> crate::visibility::Reader {
    crate::visibility::Reader {
        agency,
        actor: Actor {
            person_id: PersonId(person.into()),
            role,
            unit: UnitId(unit.into()),
        },
    }
}

#[test]
fn only_the_participants_own_units_may_open_it() {
    let participant = folded(&enrolled_history().accepted(by(
        3,
        Role::CaseOfficer,
        "officer-1",
        "hudiksvall-ifo",
        EventBody::SocialAssistanceDecided {
            status: SocialAssistanceStatus::Granted,
        },
    )));
    let rule = |reader| {
        participant
            .may_open(&reader)
            .map_err(|refused| refused.rule())
    };
    for role in [Role::Coach, Role::TeamLeader] {
        assert_eq!(
            rule(reader_of(Agency::Municipality, role, "p-9", "bollnas-ips")),
            Err("other_unit")
        );
        assert_eq!(
            rule(reader_of(
                Agency::Municipality,
                role,
                "p-1",
                "hudiksvall-ips"
            )),
            Ok(())
        );
    }
    assert_eq!(
        rule(reader_of(
            Agency::Municipality,
            Role::CaseOfficer,
            "o-9",
            "bollnas-ifo"
        )),
        Err("other_unit")
    );
    assert_eq!(
        rule(reader_of(
            Agency::Municipality,
            Role::CaseOfficer,
            "o-1",
            "hudiksvall-ifo"
        )),
        Ok(())
    );
    assert_eq!(
        rule(reader_of(Agency::Municipality, Role::Auditor, "a-1", "ivo")),
        Ok(())
    );
    assert_eq!(
        rule(reader_of(
            Agency::Forsakringskassan,
            Role::CaseOfficer,
            "fk-1",
            "fk-gavle"
        )),
        Ok(())
    );
}

#[test]
fn a_coach_or_team_leader_places_and_enrols_only_in_their_own_unit() {
    let bollnas = || UnitId("bollnas-ips".into());
    let into_other_unit = [
        EventBody::ParticipantEnrolled {
            unit: bollnas(),
            coach: PersonId("coach-99".into()),
        },
        EventBody::PlacedOnWaitingList { unit: bollnas() },
    ];
    for body in into_other_unit {
        check(
            referred_history(),
            by(2, Role::TeamLeader, "leader-1", "hudiksvall-ips", body),
            rejected(RuleViolation::OtherUnit),
        );
    }
    // A correction may not move the participant to another unit either.
    let corrected_elsewhere = EventBody::EventCorrected {
        supersedes: event_id(2),
        reason: "wrong unit".into(),
        corrected: Box::new(EventBody::ParticipantEnrolled {
            unit: bollnas(),
            coach: PersonId("coach-99".into()),
        }),
    };
    check(
        enrolled_history(),
        by(
            3,
            Role::Coach,
            "coach-17",
            "hudiksvall-ips",
            corrected_elsewhere,
        ),
        rejected(RuleViolation::OtherUnit),
    );
}

#[test]
fn only_the_party_that_recorded_an_event_corrects_it() {
    let officer = |number, body| {
        by(
            number,
            Role::CaseOfficer,
            "ifo-officer-1",
            "hudiksvall-ifo",
            body,
        )
    };
    let corrected = |supersedes, body| EventBody::EventCorrected {
        supersedes: event_id(supersedes),
        reason: "corrected".into(),
        corrected: Box::new(body),
    };
    let granted = enrolled_history().accepted(officer(
        3,
        EventBody::SocialAssistanceDecided {
            status: SocialAssistanceStatus::Granted,
        },
    ));
    let denied = || EventBody::SocialAssistanceDecided {
        status: SocialAssistanceStatus::Denied,
    };
    // A coach may not rewrite social services' decision (it would lift their planning gate).
    check(
        granted.clone_history(),
        by(
            4,
            Role::Coach,
            "coach-17",
            "hudiksvall-ips",
            corrected(3, denied()),
        ),
        rejected(RuleViolation::CorrectionByAnotherParty),
    );
    // Social services may.
    check(
        granted.clone_history(),
        officer(4, corrected(3, denied())),
        Outcome::Accepted,
    );
    // A case officer may not rewrite the IPS unit's enrolment, not even to the same unit.
    check(
        enrolled_history(),
        officer(
            3,
            corrected(
                2,
                EventBody::ParticipantEnrolled {
                    unit: UnitId("bollnas-ips".into()),
                    coach: PersonId("coach-99".into()),
                },
            ),
        ),
        rejected(RuleViolation::CorrectionByAnotherParty),
    );
    check(
        enrolled_history(),
        officer(3, corrected(2, enrolled())),
        rejected(RuleViolation::CorrectionByAnotherParty),
    );
    // Nor may an auditor, who acts for no party.
    check(
        enrolled_history(),
        by(
            3,
            Role::Auditor,
            "auditor-1",
            "internal-control",
            corrected(2, enrolled()),
        ),
        rejected(RuleViolation::CorrectionByAnotherParty),
    );
    // The IPS unit corrects its own.
    check(
        enrolled_history(),
        by(
            3,
            Role::TeamLeader,
            "leader-1",
            "hudiksvall-ips",
            corrected(2, enrolled()),
        ),
        Outcome::Accepted,
    );
}

// ---- The business day: an event's day is its Stockholm date, not its UTC date ----

/// `body` as it happened at `occurred_at` (a submission's own instant, not `at(number)`).
fn submission_at(number: u128, occurred_at: DateTime<Utc>, body: EventBody) -> Submission {
    let mut submission = submission(number, Agency::Municipality, body);
    submission.envelope.occurred_at = occurred_at;
    submission
}

#[test]
fn an_event_recorded_after_stockholm_midnight_counts_on_the_swedish_day() {
    // 22:30 UTC on 30 March 2026 is 00:30 on 31 March in Stockholm (summer time).
    let after_midnight = Utc
        .with_ymd_and_hms(2026, 3, 30, 22, 30, 0)
        .single()
        .unwrap_or_default();
    let history = enrolled_history()
        .accepted(submission(
            3,
            Agency::Municipality,
            EventBody::SocialAssistanceDecided {
                status: SocialAssistanceStatus::Granted,
            },
        ))
        .accepted(submission_at(
            4,
            after_midnight,
            EventBody::ActivityProposed {
                activity_id: activity(1),
                kind: ActivityKind::OtherOccupation,
                employer: None,
                hours_per_week: 10,
                planned_start: date(2026, 3, 30),
                planned_end: None,
                subsidy: None,
                at_own_employer: false,
            },
        ))
        .accepted(submission_at(
            5,
            after_midnight,
            EventBody::ActivityAcceptedInPlanning {
                activity_id: activity(1),
            },
        ));
    let mut participant = Participant::default();
    for entry in history.given() {
        participant.apply(entry);
    }
    // Waiting time counts from the Swedish day it was proposed on.
    assert_eq!(
        participant
            .activities()
            .get(&activity(1))
            .map(|record| record.proposed_on),
        Some(date(2026, 3, 31))
    );
    // Accepted in the planning from 31 March: a start on 30 March was not covered.
    check(
        history.clone_history(),
        started(6, 1, date(2026, 3, 30)),
        not_green(&["social_services_planning"]),
    );
    check(history, started(6, 1, date(2026, 3, 31)), Outcome::Accepted);
}

// ---- Inpatient care (issue 12) ----

fn admitted(number: u128, on: NaiveDate, care_form: crate::values::CareForm) -> Submission {
    submission(
        number,
        Agency::Psychiatry,
        EventBody::InpatientAdmitted {
            admitted_on: on,
            care_form,
        },
    )
}

fn discharged(number: u128, on: NaiveDate) -> Submission {
    submission(
        number,
        Agency::Psychiatry,
        EventBody::InpatientDischarged { discharged_on: on },
    )
}

/// Enrolled, with a job (activity 1) running since 2026-03-01 and an evening course
/// (activity 2) proposed.
fn working_history() -> History {
    enrolled_history()
        .accepted(submission(
            3,
            Agency::Municipality,
            proposed(1, ActivityKind::Job, 30),
        ))
        .accepted(submission(
            4,
            Agency::Municipality,
            job_started(1, date(2026, 3, 1)),
        ))
        .accepted(submission(
            5,
            Agency::Municipality,
            proposed(2, ActivityKind::OtherOccupation, 5),
        ))
}

#[test]
fn an_admission_blocks_starts_but_leaves_a_running_job_running_until_the_discharge() {
    use crate::values::CareForm;
    for care_form in [CareForm::Voluntary, CareForm::Compulsory] {
        let admitted_history = working_history().accepted(admitted(6, date(2026, 4, 1), care_form));
        let participant = folded(&admitted_history);
        assert!(
            matches!(
                participant
                    .activities()
                    .get(&activity(1))
                    .map(|job| job.status),
                Some(ActivityStatus::Started { .. })
            ),
            "{care_form:?}: the admission does not end the job"
        );
        // The job goes on: its hours may change while the participant is admitted.
        check(
            admitted_history.clone_history(),
            submission(
                7,
                Agency::Municipality,
                EventBody::HoursChanged {
                    activity_id: activity(1),
                    hours_per_week: 10,
                    from: date(2026, 4, 2),
                },
            ),
            Outcome::Accepted,
        );
        check(
            admitted_history.clone_history(),
            started(7, 2, date(2026, 4, 3)),
            not_green(&["psychiatry_availability"]),
        );
        let home = admitted_history.accepted(discharged(7, date(2026, 4, 10)));
        assert_eq!(folded(&home).inpatient_stay(), None);
        check(home, started(8, 2, date(2026, 4, 10)), Outcome::Accepted);
    }
}

#[test]
fn a_discharge_needs_an_open_stay_and_cannot_precede_the_admission() {
    check(
        enrolled_history(),
        discharged(3, date(2026, 4, 10)),
        rejected(RuleViolation::NoInpatientStay),
    );
    let stay = enrolled_history().accepted(admitted(
        3,
        date(2026, 4, 10),
        crate::values::CareForm::Voluntary,
    ));
    check(
        stay.clone_history(),
        discharged(4, date(2026, 4, 9)),
        rejected(RuleViolation::EndBeforeStart),
    );
    // A conversion to compulsory care is a new admission within the same stay.
    let converted = stay.accepted(admitted(
        4,
        date(2026, 4, 12),
        crate::values::CareForm::Compulsory,
    ));
    let participant = folded(&converted);
    let stay = participant.inpatient_stay().cloned();
    assert_eq!(
        stay.map(|stay| (stay.admitted_on, stay.care_form)),
        Some((date(2026, 4, 10), crate::values::CareForm::Compulsory))
    );
}

/// Consents from psychiatry for coarse health data to every other party, so nothing but the
/// inpatient rule decides what each sees.
fn psychiatry_consents(history: History, from_number: u128) -> History {
    [
        ConsentParty::IpsUnit,
        ConsentParty::Forsakringskassan,
        ConsentParty::Arbetsformedlingen,
    ]
    .into_iter()
    .zip(from_number..)
    .fold(history, |history, (recipient, number)| {
        history.accepted(submission(
            number,
            Agency::Municipality,
            EventBody::ConsentGranted {
                consent_id: ConsentId(Uuid::from_u128(0xc0_0000 + number)),
                discloser: ConsentParty::Psychiatry,
                recipient,
                data_categories: vec![DataCategory::HealthCoarse],
                valid_from: date(2026, 1, 1),
                valid_to: date(2026, 12, 31),
            },
        ))
    })
}

/// Everything `reader` is shown of `history`'s entries on `on`, the gates of every activity,
/// the hidden agencies and the explanation of a refused start: all a party can learn.
fn everything_shown(
    history: &History,
    reader: &crate::visibility::Reader,
    on: NaiveDate,
) -> Vec<String> {
    let participant = folded(history);
    let mut shown: Vec<String> = history
        .given()
        .iter()
        .map(|entry| {
            let stored = serde_json::to_value(&entry.body).unwrap_or_default();
            match participant.view_of_entry(
                reader,
                entry.envelope.agency,
                entry.envelope.data_category,
                &entry.body,
                stored,
                on,
            ) {
                Some(view) => format!(
                    "{} {:?} {}",
                    view.shown_event_type(entry.stored_event_type()),
                    view.basis,
                    view.body
                ),
                None => "hidden".to_owned(),
            }
        })
        .collect();
    for (activity_id, record) in participant.activities() {
        shown.push(format!(
            "{activity_id:?} {:?}",
            crate::gates::missing_gates(participant.situation(), record, on)
        ));
    }
    shown.push(format!(
        "{:?}",
        participant.hidden_gate_agencies(reader, on)
    ));
    shown.push(participant.refusal_explained_to(
        &RuleViolation::GateNotGreen {
            missing_gates: vec!["psychiatry_availability".into()],
        },
        reader,
        on,
    ));
    shown
}

#[test]
fn the_compulsory_flag_reaches_social_services_only_and_fk_af_cannot_tell_the_care_forms_apart() {
    use crate::values::CareForm;
    let stay = |care_form| {
        psychiatry_consents(working_history(), 6)
            .accepted(admitted(9, date(2026, 4, 1), care_form))
            .accepted(submission(
                10,
                Agency::Psychiatry,
                EventBody::DischargeReady {
                    ready_on: date(2026, 4, 8),
                },
            ))
    };
    let (voluntary, compulsory) = (stay(CareForm::Voluntary), stay(CareForm::Compulsory));
    let on = date(2026, 4, 9);
    let fk = reader(Agency::Forsakringskassan, "fk-1", Role::CaseOfficer);
    let af = reader(Agency::Arbetsformedlingen, "af-1", Role::CaseOfficer);
    let coach = reader(Agency::Municipality, "coach-17", Role::Coach);
    let ifo = reader(Agency::Municipality, "ifo-1", Role::CaseOfficer);
    for outsider in [&fk, &af, &coach] {
        assert_eq!(
            everything_shown(&voluntary, outsider, on),
            everything_shown(&compulsory, outsider, on),
            "{outsider:?} can tell voluntary from compulsory care"
        );
    }
    for agency_reader in [&fk, &af] {
        let shown = everything_shown(&compulsory, agency_reader, on).join("\n");
        assert!(!shown.contains("Inpatient"), "{agency_reader:?}: {shown}");
        assert!(!shown.contains("care_form"), "{agency_reader:?}: {shown}");
        assert!(!shown.contains("compulsory"), "{agency_reader:?}: {shown}");
    }
    // The coach sees the stay only as temporary unavailability.
    let coach_sees = everything_shown(&compulsory, &coach, on);
    assert!(
        coach_sees
            .iter()
            .any(|line| line.starts_with("AvailabilityChanged")
                && line.contains("temporarily_unavailable")),
        "{coach_sees:?}"
    );
    assert!(
        !coach_sees.join("\n").contains("Inpatient"),
        "{coach_sees:?}"
    );
    assert!(
        !coach_sees.join("\n").contains("care_form"),
        "{coach_sees:?}"
    );
    // Social services: the compulsory admission by the LPT necessary-care rule, with its flag;
    // a voluntary one only under consent (none here).
    let participant = folded(&compulsory);
    let admission = compulsory.given()[8].clone();
    let view = participant.view_of_entry(
        &ifo,
        Agency::Psychiatry,
        DataCategory::HealthCoarse,
        &admission.body,
        serde_json::to_value(&admission.body).unwrap_or_default(),
        on,
    );
    assert_eq!(
        view.map(|view| (view.basis, view.body)),
        Some((
            crate::visibility::Basis::NecessaryCare,
            serde_json::json!({"type": "InpatientAdmitted", "admitted_on": "2026-04-01", "care_form": "compulsory"})
        ))
    );
    let voluntary_admission = voluntary.given()[8].clone();
    assert_eq!(
        folded(&voluntary).view_of_entry(
            &ifo,
            Agency::Psychiatry,
            DataCategory::HealthCoarse,
            &voluntary_admission.body,
            serde_json::to_value(&voluntary_admission.body).unwrap_or_default(),
            on,
        ),
        None
    );
    // Without the psychiatry → IPS unit consent the coach sees nothing of the stay.
    let without_consent =
        working_history().accepted(admitted(6, date(2026, 4, 1), CareForm::Compulsory));
    let coach_without = everything_shown(&without_consent, &coach, on);
    assert_eq!(coach_without[5], "hidden", "{coach_without:?}");
}

#[test]
fn a_sip_is_due_three_calendar_days_after_the_discharge_ready_notice_then_overdue_until_held() {
    let ready = enrolled_history().accepted(submission(
        3,
        Agency::Psychiatry,
        EventBody::DischargeReady {
            ready_on: date(2026, 4, 8),
        },
    ));
    let deadline = folded(&ready).sip_deadline();
    assert_eq!(
        deadline.map(|deadline| deadline.due_by),
        Some(date(2026, 4, 11))
    );
    let status = |on| deadline.map(|deadline| deadline.status_on(on));
    assert_eq!(status(date(2026, 4, 8)), Some(SipDeadlineStatus::Due));
    assert_eq!(status(date(2026, 4, 11)), Some(SipDeadlineStatus::Due));
    assert_eq!(status(date(2026, 4, 12)), Some(SipDeadlineStatus::Overdue));
    // A SIP held before the notice is not the one it asks for.
    let earlier = ready.clone_history().accepted(submission(
        4,
        Agency::Municipality,
        EventBody::SipHeld {
            held_on: date(2026, 4, 7),
        },
    ));
    assert_eq!(folded(&earlier).sip_deadline(), deadline);
    let held = ready.accepted(submission(
        4,
        Agency::Municipality,
        EventBody::SipHeld {
            held_on: date(2026, 4, 13),
        },
    ));
    assert_eq!(folded(&held).sip_deadline(), None);
}

#[test]
fn a_sip_owed_is_shown_to_the_ips_unit_and_social_services_under_consent_and_never_to_fk_or_af() {
    let ready = |history: History, number| {
        history.accepted(submission(
            number,
            Agency::Psychiatry,
            EventBody::DischargeReady {
                ready_on: date(2026, 4, 8),
            },
        ))
    };
    let on = date(2026, 4, 9);
    let fk = reader(Agency::Forsakringskassan, "fk-1", Role::CaseOfficer);
    let af = reader(Agency::Arbetsformedlingen, "af-1", Role::CaseOfficer);
    let psychiatry = reader(Agency::Psychiatry, "psy-1", Role::CaseOfficer);
    let coach = reader(Agency::Municipality, "coach-17", Role::Coach);
    let ifo = reader(Agency::Municipality, "ifo-1", Role::CaseOfficer);
    let auditor = reader(Agency::Municipality, "auditor-1", Role::Auditor);
    let shown = |history: &History, reader| {
        folded(history)
            .sip_shown_to(reader, on)
            .map(|(deadline, basis)| (deadline.due_by, basis))
    };
    // Given no consent: only the auditor.
    let without = ready(enrolled_history(), 3);
    for nobody in [&fk, &af, &psychiatry, &coach, &ifo] {
        assert_eq!(shown(&without, nobody), None, "{nobody:?}");
    }
    assert_eq!(
        shown(&without, &auditor),
        Some((date(2026, 4, 11), crate::visibility::Basis::Audit))
    );
    // Given psychiatry → IPS unit, FK and AF consents for coarse health data: the coach sees
    // it under that consent; FK and AF still never do, nor does psychiatry's own list.
    let consented = ready(psychiatry_consents(enrolled_history(), 3), 6);
    assert!(matches!(
        shown(&consented, &coach),
        Some((due_by, crate::visibility::Basis::Consent(_))) if due_by == date(2026, 4, 11)
    ));
    for never in [&fk, &af, &psychiatry] {
        assert_eq!(shown(&consented, never), None, "{never:?}");
    }
    // Nor do FK and AF see the notice itself under their consent: it tells of a stay.
    let notice = EventBody::DischargeReady {
        ready_on: date(2026, 4, 8),
    };
    for agency_reader in [&fk, &af] {
        assert_eq!(
            folded(&consented).sight(
                agency_reader,
                Agency::Psychiatry,
                &notice,
                DataCategory::HealthCoarse,
                on
            ),
            crate::visibility::Sight::Hidden,
            "{agency_reader:?}"
        );
    }
    // Social services need their own consent (a compulsory stay's necessary-care rule does
    // not reach the SIP), then see it under it.
    assert_eq!(shown(&consented, &ifo), None);
    let to_social_services = consented.accepted(submission(
        7,
        Agency::Municipality,
        EventBody::ConsentGranted {
            consent_id: ConsentId(Uuid::from_u128(0xc0_0007)),
            discloser: ConsentParty::Psychiatry,
            recipient: ConsentParty::SocialServices,
            data_categories: vec![DataCategory::HealthCoarse],
            valid_from: date(2026, 1, 1),
            valid_to: date(2026, 12, 31),
        },
    ));
    assert!(matches!(
        shown(&to_social_services, &ifo),
        Some((_, crate::visibility::Basis::Consent(consent_id))) if consent_id == ConsentId(Uuid::from_u128(0xc0_0007))
    ));
    // When the SIP is held, nobody is shown one.
    let held = to_social_services.accepted(submission(
        8,
        Agency::Municipality,
        EventBody::SipHeld {
            held_on: date(2026, 4, 10),
        },
    ));
    for anyone in [&coach, &ifo, &auditor] {
        assert_eq!(shown(&held, anyone), None, "{anyone:?}");
    }
}

fn self_reported(number: u128, kind: BenefitKind, said_on: NaiveDate) -> Submission {
    submission(
        number,
        Agency::Municipality,
        EventBody::BenefitSelfReported {
            benefit: kind,
            said_on,
        },
    )
}

use crate::gates::GateKind;

/// The gates of activity 1 as the read models get them: (gate, stated only, decided).
fn gates_of_activity_1(history: &History) -> Vec<(GateKind, bool, bool)> {
    let participant = folded(history);
    crate::gates::requests(participant.activities(), participant.situation())
        .into_iter()
        .filter(|request| request.activity_id == activity(1))
        .flat_map(|request| request.gates)
        .map(|gate| (gate.kind, gate.stated_only, gate.decided.is_some()))
        .collect()
}

#[test]
fn a_self_reported_benefit_opens_its_gate_as_stated_only_and_never_lets_the_start_through() {
    // Given the participant says they have sjukpenning, and an arbetsträning is proposed.
    let stated = enrolled_history()
        .accepted(self_reported(3, BenefitKind::Sjukpenning, date(2026, 3, 1)))
        .accepted(submission(
            4,
            Agency::Municipality,
            proposed(1, ActivityKind::Arbetstraning, 20),
        ));
    // Then FK's gate applies, from the statement only.
    assert_eq!(
        gates_of_activity_1(&stated),
        [(GateKind::FkActivityDecision, true, false)]
    );
    // When the coach starts it: refused, the gate is not approved by a statement.
    check(
        stated.clone_history(),
        started(5, 1, date(2026, 3, 20)),
        not_green(&["fk_activity_decision"]),
    );
    // A statement dated after the start day does not count for that day.
    let later = enrolled_history()
        .accepted(self_reported(3, BenefitKind::Sjukpenning, date(2026, 4, 1)))
        .accepted(submission(
            4,
            Agency::Municipality,
            proposed(1, ActivityKind::Arbetstraning, 20),
        ));
    check(later, started(5, 1, date(2026, 3, 20)), Outcome::Accepted);
}

#[test]
fn fks_record_of_the_benefit_replaces_the_statement_when_it_comes() {
    let stated = enrolled_history()
        .accepted(self_reported(3, BenefitKind::Sjukpenning, date(2026, 3, 1)))
        .accepted(submission(
            4,
            Agency::Municipality,
            proposed(1, ActivityKind::Arbetstraning, 20),
        ));
    // When FK registers the sjukpenning: an ordinary FK gate, waiting for FK's decision.
    let registered = stated.accepted(benefit(5, BenefitKind::Sjukpenning));
    assert_eq!(
        gates_of_activity_1(&registered),
        [(GateKind::FkActivityDecision, false, false)]
    );
    check(
        registered.clone_history(),
        started(6, 1, date(2026, 3, 20)),
        not_green(&["fk_activity_decision"]),
    );
    // And FK's approval lets the start through.
    let approved = registered.accepted(fk_decision(
        6,
        1,
        DecisionOutcome::Approved,
        Some(period(date(2026, 3, 1), date(2026, 6, 30))),
    ));
    check(
        approved,
        started(7, 1, date(2026, 3, 20)),
        Outcome::Accepted,
    );
    // When FK records that the benefit ended, its record still wins: no gate from the
    // statement (the participant's word does not outlive FK's record).
    let ended = enrolled_history()
        .accepted(self_reported(3, BenefitKind::Sjukpenning, date(2026, 3, 1)))
        .accepted(submission(
            4,
            Agency::Municipality,
            proposed(1, ActivityKind::Arbetstraning, 20),
        ))
        .accepted(benefit(5, BenefitKind::Sjukpenning))
        .accepted(submission(
            6,
            Agency::Forsakringskassan,
            EventBody::BenefitEnded {
                benefit: BenefitKind::Sjukpenning,
                ended_on: date(2026, 3, 10),
            },
        ));
    assert_eq!(gates_of_activity_1(&ended), []);
    check(ended, started(7, 1, date(2026, 3, 20)), Outcome::Accepted);
}

#[test]
fn a_statement_after_fks_record_of_that_benefit_is_ignored() {
    // Given FK's sjukpenning record ended before the participant says they still have it.
    let history = enrolled_history()
        .accepted(benefit(3, BenefitKind::Sjukpenning))
        .accepted(submission(
            4,
            Agency::Forsakringskassan,
            EventBody::BenefitEnded {
                benefit: BenefitKind::Sjukpenning,
                ended_on: date(2026, 2, 1),
            },
        ))
        .accepted(self_reported(5, BenefitKind::Sjukpenning, date(2026, 3, 1)))
        .accepted(submission(
            6,
            Agency::Municipality,
            proposed(1, ActivityKind::Arbetstraning, 20),
        ));
    assert_eq!(gates_of_activity_1(&history), []);
    check(history, started(7, 1, date(2026, 3, 20)), Outcome::Accepted);
    // A statement of another benefit FK has no record of still counts (aktivitetsersättning
    // needs FK's agreement for any activity).
    let other = enrolled_history()
        .accepted(benefit(3, BenefitKind::Sjukpenning))
        .accepted(self_reported(
            4,
            BenefitKind::Aktivitetsersattning,
            date(2026, 3, 1),
        ))
        .accepted(submission(
            5,
            Agency::Municipality,
            proposed(1, ActivityKind::Arbetstraning, 20),
        ));
    assert_eq!(
        gates_of_activity_1(&other),
        [
            (GateKind::FkActivityDecision, false, false),
            (GateKind::FkActivityAgreement, true, false)
        ]
    );
}

#[test]
fn a_self_report_is_the_ips_units_vocational_profile_and_fk_af_see_it_only_under_that_consent() {
    let history =
        enrolled_history().accepted(self_reported(3, BenefitKind::Sjukpenning, date(2026, 3, 1)));
    let body = EventBody::BenefitSelfReported {
        benefit: BenefitKind::Sjukpenning,
        said_on: date(2026, 3, 1),
    };
    assert_eq!(
        body.data_category(Agency::Municipality),
        DataCategory::VocationalProfile
    );
    assert!(!body.recorded_by(Agency::Forsakringskassan));
    let on = date(2026, 3, 2);
    let fk = reader(Agency::Forsakringskassan, "fk-1", Role::CaseOfficer);
    let af = reader(Agency::Arbetsformedlingen, "af-1", Role::CaseOfficer);
    let sight = |history: &History, reader| {
        folded(history).sight(
            reader,
            Agency::Municipality,
            &body,
            DataCategory::VocationalProfile,
            on,
        )
    };
    // Given consent IPS unit → FK and AF for activities and benefit decisions only: hidden.
    let other_categories = [
        ConsentParty::Forsakringskassan,
        ConsentParty::Arbetsformedlingen,
    ]
    .into_iter()
    .zip(4..)
    .fold(history, |history, (recipient, number)| {
        history.accepted(submission(
            number,
            Agency::Municipality,
            EventBody::ConsentGranted {
                consent_id: ConsentId(Uuid::from_u128(0xd0_0000 + number)),
                discloser: ConsentParty::IpsUnit,
                recipient,
                data_categories: vec![
                    DataCategory::ActivitiesAndWork,
                    DataCategory::BenefitDecisions,
                ],
                valid_from: date(2026, 1, 1),
                valid_to: date(2026, 12, 31),
            },
        ))
    });
    for agency_reader in [&fk, &af] {
        assert_eq!(
            sight(&other_categories, agency_reader),
            crate::visibility::Sight::Hidden,
            "{agency_reader:?}"
        );
    }
    // Given consent IPS unit → FK for the vocational profile: FK sees it, AF still not.
    let profile = other_categories.accepted(submission(
        6,
        Agency::Municipality,
        EventBody::ConsentGranted {
            consent_id: ConsentId(Uuid::from_u128(0xd0_0006)),
            discloser: ConsentParty::IpsUnit,
            recipient: ConsentParty::Forsakringskassan,
            data_categories: vec![DataCategory::VocationalProfile],
            valid_from: date(2026, 1, 1),
            valid_to: date(2026, 12, 31),
        },
    ));
    assert!(matches!(
        sight(&profile, &fk),
        crate::visibility::Sight::Shared(crate::visibility::Basis::Consent(_))
    ));
    assert_eq!(sight(&profile, &af), crate::visibility::Sight::Hidden);
}
