//! The input checks on a submission that need no history: limits, text classes and
//! consistency of each body's fields, and the envelope against the body.
//!
//! Services run them before publishing and the aggregate again before deciding, so what the
//! edge refuses with `INVALID_ARGUMENT` and what the ledger would reject are the same checks.

use chrono::NaiveDate;
use serde::Serialize;

use super::{ConsentParty, EventBody, Submission};
use crate::envelope::DataCategory;
use crate::errors::InputError;
use crate::ids::UnitId;
use crate::values::{self, ActivityKind, Period};

/// Longest consent period accepted, in days. A consent is for a concrete piece of work, and a
/// typo in a year should not create a consent for a century.
pub const CONSENT_PERIOD_DAYS_MAX: i64 = 5 * 366;

/// Most people on a protected participant's allow-list.
pub const ALLOWED_READERS_MAX: usize = 50;

impl EventBody {
    /// Every date the body holds, by field (a period's both ends; not a correction's corrected
    /// body, which `validate` checks on its own).
    fn dates(&self) -> Vec<(&'static str, NaiveDate)> {
        let ends =
            |field: &'static str, period: &Period| [(field, period.from), (field, period.to)];
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
            | EventBody::ProfileRecorded { .. }
            | EventBody::BenefitsCounsellingGiven { .. }
            | EventBody::DisclosurePreferenceRecorded { .. }
            | EventBody::EmployerContactMade { .. }
            | EventBody::FollowUpRecorded { .. }
            | EventBody::OutreachAttempted { .. }
            | EventBody::SocialAssistanceDecided { .. }
            | EventBody::ActivityAcceptedInPlanning { .. }
            | EventBody::EventCorrected { .. } => Vec::new(),
            EventBody::ConsentGranted {
                valid_from,
                valid_to,
                ..
            } => vec![("valid_from", *valid_from), ("valid_to", *valid_to)],
            EventBody::ConsentWithdrawn { effective_from, .. } => {
                vec![("effective_from", *effective_from)]
            }
            EventBody::ActivityProposed {
                planned_start,
                planned_end,
                ..
            } => std::iter::once(("planned_start", *planned_start))
                .chain(planned_end.map(|end| ("planned_end", end)))
                .collect(),
            EventBody::ActivityStarted { started_on, .. }
            | EventBody::JobStarted { started_on, .. }
            | EventBody::StudiesStarted { started_on, .. } => vec![("started_on", *started_on)],
            EventBody::ActivityEnded { ended_on, .. }
            | EventBody::JobEnded { ended_on, .. }
            | EventBody::StudiesEnded { ended_on, .. }
            | EventBody::BenefitEnded { ended_on, .. }
            | EventBody::ProgrammeEnded { ended_on, .. }
            | EventBody::SiusEnded { ended_on } => vec![("ended_on", *ended_on)],
            EventBody::HoursChanged { from, .. } | EventBody::AvailabilityChanged { from, .. } => {
                vec![("from", *from)]
            }
            EventBody::FollowAlongContact { contact_on, .. } => vec![("contact_on", *contact_on)],
            EventBody::SipHeld { held_on }
            | EventBody::AvstamningsmoteHeld { held_on }
            | EventBody::TreatmentTeamMeetingHeld { held_on, .. } => vec![("held_on", *held_on)],
            EventBody::SipEstablished { established_on }
            | EventBody::RehabPlanEstablished { established_on } => {
                vec![("established_on", *established_on)]
            }
            EventBody::RehabPlanRevised { revised_on } => vec![("revised_on", *revised_on)],
            EventBody::JobSeekerRegistered { registered_on }
            | EventBody::DisabilityCodingRegistered { registered_on } => {
                vec![("registered_on", *registered_on)]
            }
            EventBody::JobSeekerDeregistered { deregistered_on } => {
                vec![("deregistered_on", *deregistered_on)]
            }
            EventBody::DisabilityCodingRequested { requested_on } => {
                vec![("requested_on", *requested_on)]
            }
            EventBody::IpsReferralSent { sent_on } => vec![("sent_on", *sent_on)],
            EventBody::BenefitSelfReported { said_on, .. } => vec![("said_on", *said_on)],
            EventBody::InpatientAdmitted { admitted_on, .. } => vec![("admitted_on", *admitted_on)],
            EventBody::InpatientDischarged { discharged_on } => {
                vec![("discharged_on", *discharged_on)]
            }
            EventBody::DischargeReady { ready_on } => vec![("ready_on", *ready_on)],
            EventBody::BenefitRegistered { period, .. }
            | EventBody::MedicalCertificateReceived { period, .. }
            | EventBody::MedicalCertificateIssued { period, .. }
            | EventBody::ProgrammeAssigned { period, .. }
            | EventBody::SiusDecided { period }
            | EventBody::SubsidyDecided { period, .. } => ends("period", period).to_vec(),
            EventBody::ActivityDecision { valid, .. } => valid
                .iter()
                .flat_map(|valid| ends("valid", valid))
                .collect(),
            EventBody::ActivityAgreementMade { valid, .. }
            | EventBody::DormantBenefitDecided { valid, .. } => ends("valid", valid).to_vec(),
        }
    }

    /// The unit and person ids a body names, each as [`UnitId::parse`] / `PersonId::parse`
    /// would accept it (the edge parses them; a correction's JSON and a body from the bus were
    /// not parsed there). A correction's body is checked through its own `validate`.
    fn check_text_ids(&self) -> Result<(), InputError> {
        match self {
            EventBody::ParticipantReferred { referrer, .. } => {
                referrer.as_ref().map_or(Ok(()), UnitId::check)
            }
            EventBody::PlacedOnWaitingList { unit } => unit.check(),
            EventBody::WaitingListPlaceOffered { unit, coach }
            | EventBody::ParticipantEnrolled { unit, coach }
            | EventBody::ParticipantReEnrolled { unit, coach } => {
                unit.check()?;
                coach.check()
            }
            EventBody::CoachAssigned { coach } => coach.check(),
            EventBody::IdentityProtected { allowed_readers } => allowed_readers
                .iter()
                .try_for_each(|allowed| allowed.person_id.check()),
            // No other body names a unit or a person by a text id.
            _ => Ok(()),
        }
    }

    /// Field checks that need no history.
    pub fn validate(&self) -> Result<(), InputError> {
        // The edge parses every date into this range; a body from the bus has not been parsed
        // there, and a date PostgreSQL cannot hold would stall the read models (found by the
        // fuzz program, `crates/fuzz`).
        for (field, date) in self.dates() {
            values::validate_date_range(field, date)?;
        }
        self.check_text_ids()?;
        match self {
            EventBody::ParticipantReferred { .. }
            | EventBody::PlacedOnWaitingList { .. }
            | EventBody::WaitingListPlaceOffered { .. }
            | EventBody::ParticipantEnrolled { .. }
            | EventBody::CoachAssigned { .. }
            | EventBody::ParticipantResumed
            | EventBody::ParticipantDischarged { .. }
            | EventBody::ParticipantReEnrolled { .. }
            | EventBody::DisclosurePreferenceRecorded { .. }
            | EventBody::ActivityStarted { .. }
            | EventBody::ActivityEnded { .. }
            | EventBody::StudiesEnded { .. }
            | EventBody::JobEnded { .. }
            | EventBody::FollowAlongContact { .. }
            | EventBody::OutreachAttempted { .. }
            | EventBody::SipHeld { .. }
            | EventBody::SipEstablished { .. }
            | EventBody::BenefitSelfReported { .. }
            | EventBody::SocialAssistanceDecided { .. }
            | EventBody::ActivityAcceptedInPlanning { .. }
            | EventBody::BenefitEnded { .. }
            | EventBody::AvstamningsmoteHeld { .. }
            | EventBody::RehabPlanEstablished { .. }
            | EventBody::RehabPlanRevised { .. }
            | EventBody::JobSeekerRegistered { .. }
            | EventBody::JobSeekerDeregistered { .. }
            | EventBody::DisabilityCodingRequested { .. }
            | EventBody::DisabilityCodingRegistered { .. }
            | EventBody::ProgrammeEnded { .. }
            | EventBody::SiusEnded { .. }
            | EventBody::IpsReferralSent { .. }
            | EventBody::TreatmentTeamMeetingHeld { .. }
            | EventBody::AvailabilityChanged { .. }
            | EventBody::InpatientAdmitted { .. }
            | EventBody::InpatientDischarged { .. }
            | EventBody::DischargeReady { .. } => Ok(()),
            EventBody::IdentityProtected { allowed_readers } => {
                if allowed_readers.is_empty() {
                    return Err(InputError::new(
                        "allowed_person_ids",
                        "must name at least one person (the coach)",
                    ));
                }
                if allowed_readers.len() > ALLOWED_READERS_MAX {
                    return Err(InputError::new(
                        "allowed_person_ids",
                        format!("names more than {ALLOWED_READERS_MAX} people"),
                    ));
                }
                Ok(())
            }
            EventBody::ReferralDeclined { reason } | EventBody::ParticipantPaused { reason } => {
                values::validate_text("reason", reason)
            }
            EventBody::ConsentGranted {
                discloser,
                recipient,
                data_categories,
                valid_from,
                valid_to,
                ..
            } => {
                validate_consent_parties(*discloser, *recipient, data_categories)?;
                if valid_to <= valid_from {
                    return Err(InputError::new("valid_to", "must be after valid_from"));
                }
                if (*valid_to - *valid_from).num_days() > CONSENT_PERIOD_DAYS_MAX {
                    return Err(InputError::new(
                        "valid_to",
                        "is more than five years after valid_from",
                    ));
                }
                Ok(())
            }
            EventBody::ConsentWithdrawn {
                discloser,
                recipient,
                data_categories,
                ..
            } => validate_consent_parties(*discloser, *recipient, data_categories),
            EventBody::ProfileRecorded {
                preferences,
                hours_per_week_wanted,
                ..
            } => {
                values::validate_optional_text("preferences", preferences)?;
                values::validate_hours("hours_per_week_wanted", *hours_per_week_wanted)
            }
            EventBody::BenefitsCounsellingGiven { benefits_discussed } => {
                if benefits_discussed.is_empty() {
                    return Err(InputError::new(
                        "benefits_discussed",
                        "must name at least one benefit",
                    ));
                }
                // Each benefit once: this bounds the list by the benefits there are, for a
                // body the edge did not build (a correction's JSON, the bus).
                let mut named = std::collections::HashSet::new();
                if !benefits_discussed
                    .iter()
                    .all(|benefit| named.insert(benefit))
                {
                    return Err(InputError::new(
                        "benefits_discussed",
                        "names a benefit more than once",
                    ));
                }
                Ok(())
            }
            EventBody::EmployerContactMade { employer, .. } => {
                values::validate_name("employer", employer)
            }
            EventBody::ActivityProposed {
                kind,
                employer,
                hours_per_week,
                planned_start,
                planned_end,
                subsidy,
                at_own_employer,
                ..
            } => {
                values::validate_hours("hours_per_week", *hours_per_week)?;
                if *at_own_employer {
                    if *kind != ActivityKind::Arbetsprovning {
                        return Err(InputError::new("at_own_employer", "only an arbetsprövning is done at the own employer under the 2026 rule"));
                    }
                    let Some(end) = planned_end else {
                        return Err(InputError::new(
                            "planned_end",
                            "is required for an arbetsprövning at the own employer",
                        ));
                    };
                    if (*end - *planned_start).num_days() + 1 > values::OWN_EMPLOYER_TRIAL_DAYS_MAX
                    {
                        return Err(InputError::new(
                            "planned_end",
                            "an arbetsprövning at the own employer lasts at most 14 days",
                        ));
                    }
                }
                if let Some(employer) = employer {
                    values::validate_optional_name("employer", employer)?;
                }
                if planned_end.is_some_and(|end| end < *planned_start) {
                    return Err(InputError::new(
                        "planned_end",
                        "must not be before planned_start",
                    ));
                }
                if subsidy.is_some() && *kind != ActivityKind::Job {
                    return Err(InputError::new(
                        "subsidy",
                        "only a job can have a wage subsidy",
                    ));
                }
                Ok(())
            }
            EventBody::JobStarted {
                employer,
                occupation,
                hours_per_week,
                ..
            } => {
                values::validate_name("employer", employer)?;
                values::validate_name("occupation", occupation)?;
                values::validate_hours("hours_per_week", *hours_per_week)
            }
            EventBody::HoursChanged { hours_per_week, .. } => {
                values::validate_hours("hours_per_week", *hours_per_week)
            }
            EventBody::StudiesStarted { programme, .. } => {
                values::validate_name("programme", programme)
            }
            EventBody::FollowUpRecorded {
                obstacles,
                helping_factors,
                ..
            } => {
                values::validate_optional_text("obstacles", obstacles)?;
                values::validate_optional_text("helping_factors", helping_factors)
            }
            EventBody::BenefitRegistered {
                degree_percent,
                period,
                ..
            }
            | EventBody::MedicalCertificateReceived {
                degree_percent,
                period,
            }
            | EventBody::MedicalCertificateIssued {
                degree_percent,
                period,
            } => {
                values::validate_degree("degree_percent", *degree_percent)?;
                period.validate("period.to")
            }
            EventBody::ActivityDecision {
                outcome,
                valid,
                reason,
                ..
            } => {
                values::validate_optional_text("reason", reason)?;
                match (outcome.is_approval(), valid) {
                    (true, None) => Err(InputError::new(
                        "valid",
                        "an approval needs a validity period",
                    )),
                    (_, Some(period)) => period.validate("valid.to"),
                    (false, None) => Ok(()),
                }
            }
            EventBody::ActivityAgreementMade { valid, .. }
            | EventBody::DormantBenefitDecided { valid, .. } => valid.validate("valid.to"),
            EventBody::ProgrammeAssigned {
                programme, period, ..
            } => {
                values::validate_name("programme", programme)?;
                period.validate("period.to")
            }
            EventBody::SiusDecided { period } => period.validate("period.to"),
            EventBody::SubsidyDecided {
                employer, period, ..
            } => {
                values::validate_name("employer", employer)?;
                period.validate("period.to")
            }
            EventBody::EventCorrected {
                reason, corrected, ..
            } => {
                values::validate_text("reason", reason)?;
                if matches!(**corrected, EventBody::EventCorrected { .. }) {
                    return Err(InputError::new(
                        "corrected",
                        "correct the original event, not a correction",
                    ));
                }
                corrected.validate()
            }
        }
    }
}

fn validate_consent_parties(
    discloser: ConsentParty,
    recipient: ConsentParty,
    data_categories: &[DataCategory],
) -> Result<(), InputError> {
    if discloser == recipient {
        return Err(InputError::new("recipient", "must differ from discloser"));
    }
    if data_categories.is_empty() {
        return Err(InputError::new(
            "data_categories",
            "must name at least one category",
        ));
    }
    let mut sorted = data_categories.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != data_categories.len() {
        return Err(InputError::new(
            "data_categories",
            "must not repeat a category",
        ));
    }
    Ok(())
}

impl Submission {
    /// All checks that need no history; services run it before publishing, the aggregate again
    /// before deciding.
    pub fn validate(&self) -> Result<(), InputError> {
        self.envelope.validate()?;
        let expected = self.body.data_category(self.envelope.agency);
        if self.envelope.data_category != expected {
            return Err(InputError::new(
                "data_category",
                format!(
                    "must be {} for {}",
                    expected.token(),
                    self.body.event_type()
                ),
            ));
        }
        self.body.validate()?;
        self.check_storable()
    }

    /// Whether this submission can be stored at all, even as a rejection (which keeps the
    /// whole submission): every string holds to [`values::TextClass::FreeText`], so no U+0000
    /// reaches PostgreSQL. The ledger's decode parks a message that fails this at once
    /// (`payload_unstorable`): recording its rejection would store the same text, which
    /// PostgreSQL refuses on every retry.
    pub fn check_storable(&self) -> Result<(), InputError> {
        every_string_storable(&self.envelope, "")?;
        every_string_storable(&self.body, "")?;
        // Business time in the edge's range, UTC date first (a business date far outside it
        // is not computed): a rejection keeps it too, in a `timestamptz` column PostgreSQL
        // refuses before 4714 BC (found by the fuzz program, `crates/fuzz`).
        let occurred_at = self.envelope.occurred_at;
        values::validate_date_range("occurred_at", occurred_at.date_naive())?;
        values::validate_date_range("occurred_at", crate::business_date(occurred_at))
    }
}

/// The backstop behind the per-field text classes of [`EventBody::validate`]: every string of
/// `stored` as it will be stored (ids, units, tokens, and any text field a later change forgets
/// to classify) holds at least to [`values::TextClass::FreeText`], so nothing the edge accepts
/// can carry a NUL into PostgreSQL. The error names the JSON path, e.g. `actor.person_id`.
fn every_string_storable(stored: &impl Serialize, prefix: &str) -> Result<(), InputError> {
    let value = serde_json::to_value(stored)
        .map_err(|error| InputError::new("request", format!("cannot be encoded: {error}")))?;
    every_string_storable_in(&value, prefix)
}

fn every_string_storable_in(value: &serde_json::Value, path: &str) -> Result<(), InputError> {
    let field = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        serde_json::Value::String(text) => values::TextClass::FreeText.validate(path, text),
        serde_json::Value::Array(items) => items
            .iter()
            .try_for_each(|item| every_string_storable_in(item, path)),
        serde_json::Value::Object(entries) => entries.iter().try_for_each(|(key, item)| {
            values::TextClass::FreeText.validate(path, key)?;
            every_string_storable_in(item, &field(key))
        }),
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Actor, Agency, Envelope, RetentionClass, Role};
    use crate::events::CURRENT_SCHEMA_VERSION;
    use crate::ids::{EventId, PersonId, UnitId};
    use chrono::{DateTime, Utc};

    fn submission(person_id: &str, body: EventBody) -> Submission {
        Submission {
            envelope: Envelope {
                event_id: EventId(uuid::Uuid::from_u128(7)),
                participant_id: crate::ParticipantId(uuid::Uuid::from_u128(8)),
                agency: Agency::Municipality,
                actor: Actor {
                    person_id: PersonId(person_id.into()),
                    role: Role::Coach,
                    unit: UnitId("hudiksvall-ips".into()),
                },
                occurred_at: DateTime::<Utc>::default(),
                correlation_id: None,
                causation_id: None,
                schema_version: CURRENT_SCHEMA_VERSION,
                data_category: DataCategory::ActivitiesAndWork,
                retention_class: RetentionClass::SocialServicesFile,
            },
            body,
        }
    }

    fn field_refused(submission: &Submission) -> Option<String> {
        submission.validate().err().map(|error| error.field)
    }

    #[test]
    fn dates_from_the_bus_are_held_to_the_edges_range() {
        let far_past = chrono::NaiveDate::from_ymd_opt(-262_143, 1, 1).unwrap_or_default();
        let started = |started_on| EventBody::ActivityStarted {
            activity_id: crate::ids::ActivityId(uuid::Uuid::from_u128(9)),
            started_on,
        };
        assert_eq!(
            field_refused(&submission("coach-17", started(far_past))),
            Some("started_on".into())
        );
        let in_range = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default();
        assert_eq!(
            field_refused(&submission("coach-17", started(in_range))),
            None
        );
        let mut far_past_business_time = submission("coach-17", started(in_range));
        far_past_business_time.envelope.occurred_at =
            far_past.and_time(chrono::NaiveTime::MIN).and_utc();
        assert_eq!(
            far_past_business_time
                .check_storable()
                .err()
                .map(|error| error.field),
            Some("occurred_at".into())
        );
    }

    #[test]
    fn employer_names_are_names_and_every_stored_string_is_checked() {
        let contact = |employer: &str| EventBody::EmployerContactMade {
            employer: employer.into(),
            face_to_face: true,
            with_participant: true,
        };
        assert_eq!(
            field_refused(&submission("coach-17", contact("Acme"))),
            None
        );
        assert_eq!(
            field_refused(&submission("coach-17", contact("Acme\u{202E}proC"))),
            Some("employer".into())
        );
        // Deserialised from the bus, an id has not been through `PersonId::parse`.
        assert_eq!(
            field_refused(&submission("coach\u{0}17", contact("Acme"))),
            Some("actor.person_id".into())
        );
        let corrected = EventBody::EventCorrected {
            supersedes: EventId(uuid::Uuid::from_u128(9)),
            reason: "stavfel".into(),
            corrected: Box::new(contact("Acme\u{0}")),
        };
        assert_eq!(
            field_refused(&submission("coach-17", corrected)),
            Some("employer".into())
        );
    }
}
