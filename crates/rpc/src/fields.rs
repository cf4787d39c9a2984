//! Parsing request fields into domain types, each failure naming its field.
//!
//! Protobuf decodes an absent string as `""` and an absent enum as 0 (`*_UNSPECIFIED`), so
//! "required" means "not empty / not unspecified" here.

use chrono::{DateTime, NaiveDate, Utc};
use domain::values::{ActivityKind, BenefitKind, DecisionOutcome, Period, Subsidy};
use domain::{
    ActivityId, ConsentParty, CorrelationId, DataCategory, EventId, InputError, ParticipantId,
};
use proto::v1;
use proto::wire::{WireEnum, WireEnumError};

/// Longest accepted `request_id`, in bytes.
pub const REQUEST_ID_LENGTH_MAX_BYTES: usize = 128;

/// A required UUID-shaped id.
pub fn required_participant_id(text: &str) -> Result<ParticipantId, InputError> {
    if text.trim().is_empty() {
        return Err(InputError::new("participant_id", "is required"));
    }
    ParticipantId::parse(text)
}

/// An RFC 3339 timestamp; empty means `default`.
pub fn timestamp_or(
    field: &str,
    text: &str,
    default: DateTime<Utc>,
) -> Result<DateTime<Utc>, InputError> {
    Ok(optional_timestamp(field, text)?.unwrap_or(default))
}

/// An optional RFC 3339 timestamp (empty means none) whose UTC date and business day both lie
/// in [`domain::values::DATE_EARLIEST`]..=`DATE_LATEST` (the day a rule takes from it is the
/// business day, which may be the next UTC date).
pub fn optional_timestamp(field: &str, text: &str) -> Result<Option<DateTime<Utc>>, InputError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let time = DateTime::parse_from_rfc3339(text.trim())
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| {
            InputError::new(
                field,
                "must be an RFC 3339 timestamp, e.g. 2026-03-01T09:00:00Z",
            )
        })?;
    domain::values::validate_date_range(field, time.date_naive())?;
    domain::values::validate_date_range(field, domain::business_date(time))?;
    Ok(Some(time))
}

/// A required `YYYY-MM-DD` date, in [`domain::values::DATE_EARLIEST`]..=`DATE_LATEST` (chrono's
/// `%Y` also reads a signed year of any length, e.g. `+10000-01-01`).
pub fn required_date(field: &str, text: &str) -> Result<NaiveDate, InputError> {
    if text.trim().is_empty() {
        return Err(InputError::new(field, "is required"));
    }
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| InputError::new(field, "must be a date written YYYY-MM-DD"))?;
    domain::values::validate_date_range(field, date)?;
    Ok(date)
}

/// The write context's parts, ready for an envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedWriteContext {
    /// The client's idempotency key, if given.
    pub request_id: Option<String>,
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Correlation id.
    pub correlation_id: Option<CorrelationId>,
    /// Causation id.
    pub causation_id: Option<EventId>,
}

/// Parses the common write context; `now` fills a missing `occurred_at`.
pub fn write_context(
    context: Option<&v1::WriteContext>,
    now: DateTime<Utc>,
) -> Result<ParsedWriteContext, InputError> {
    let default = v1::WriteContext::default();
    let context = context.unwrap_or(&default);
    let request_id = context.request_id.trim();
    if request_id.len() > REQUEST_ID_LENGTH_MAX_BYTES {
        return Err(InputError::new(
            "context.request_id",
            "is longer than 128 bytes",
        ));
    }
    // Only hashed into ids today, but it is a key a client may see echoed in logs: one line.
    domain::values::TextClass::Name.validate("context.request_id", request_id)?;
    let occurred_at = timestamp_or("context.occurred_at", &context.occurred_at, now)?;
    if occurred_at > now + chrono::Duration::days(1) {
        return Err(InputError::new(
            "context.occurred_at",
            "is more than a day in the future",
        ));
    }
    let optional_uuid = |field: &str, text: &str| -> Result<Option<uuid::Uuid>, InputError> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        uuid::Uuid::parse_str(text.trim())
            .map(Some)
            .map_err(|_| InputError::new(field, "must be a UUID"))
    };
    Ok(ParsedWriteContext {
        request_id: (!request_id.is_empty()).then(|| request_id.to_owned()),
        occurred_at,
        correlation_id: optional_uuid("context.correlation_id", &context.correlation_id)?
            .map(CorrelationId),
        causation_id: optional_uuid("context.causation_id", &context.causation_id)?.map(EventId),
    })
}

/// A required wire enum value (not unspecified, and known to this build) as its domain value;
/// `message` says what the field must name.
pub fn required_enum<D: WireEnum>(field: &str, value: i32, message: &str) -> Result<D, InputError> {
    D::from_wire(value).map_err(|_| InputError::new(field, message))
}

/// A required consent party.
pub fn consent_party(field: &str, value: i32) -> Result<ConsentParty, InputError> {
    required_enum(field, value, "must name a consent party")
}

/// Data category from its wire enum.
pub fn data_category(field: &str, value: i32) -> Result<DataCategory, InputError> {
    required_enum(field, value, "must name a data category")
}

/// A non-empty list of data categories.
pub fn data_categories(field: &str, values: &[i32]) -> Result<Vec<DataCategory>, InputError> {
    if values.is_empty() {
        return Err(InputError::new(field, "must name at least one category"));
    }
    if values.len() > DataCategory::ALL.len() {
        return Err(InputError::new(field, "names more categories than exist"));
    }
    values
        .iter()
        .map(|value| data_category(field, *value))
        .collect()
}

/// A required closed period.
pub fn required_period(field: &str, period: Option<&v1::Period>) -> Result<Period, InputError> {
    let period = period.ok_or_else(|| InputError::new(field, "is required"))?;
    let parsed = Period {
        from: required_date(&format!("{field}.from"), &period.from)?,
        to: required_date(&format!("{field}.to"), &period.to)?,
    };
    parsed.validate(&format!("{field}.to"))?;
    Ok(parsed)
}

/// An optional period: absent, or both dates given.
pub fn optional_period(
    field: &str,
    period: Option<&v1::Period>,
) -> Result<Option<Period>, InputError> {
    match period {
        None => Ok(None),
        Some(period) if period.from.trim().is_empty() && period.to.trim().is_empty() => Ok(None),
        Some(_) => required_period(field, period).map(Some),
    }
}

/// An optional `YYYY-MM-DD` date.
pub fn optional_date(field: &str, text: &str) -> Result<Option<NaiveDate>, InputError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    required_date(field, text).map(Some)
}

/// A required activity id.
pub fn required_activity_id(text: &str) -> Result<ActivityId, InputError> {
    if text.trim().is_empty() {
        return Err(InputError::new("activity_id", "is required"));
    }
    ActivityId::parse(text)
}

/// An optional activity id.
pub fn optional_activity_id(text: &str) -> Result<Option<ActivityId>, InputError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    ActivityId::parse(text).map(Some)
}

/// Hours per week, 1 to 60.
pub fn hours_per_week(field: &str, hours: u32) -> Result<u8, InputError> {
    let hours = u8::try_from(hours)
        .map_err(|_| InputError::new(field, "must be between 1 and 60 hours per week"))?;
    domain::values::validate_hours(field, hours)?;
    Ok(hours)
}

/// A degree in percent: 25, 50, 75 or 100.
pub fn degree_percent(field: &str, degree: u32) -> Result<u8, InputError> {
    let degree = u8::try_from(degree)
        .map_err(|_| InputError::new(field, "must be 25, 50, 75 or 100 percent"))?;
    domain::values::validate_degree(field, degree)?;
    Ok(degree)
}

/// A required activity kind.
pub fn activity_kind(field: &str, value: i32) -> Result<ActivityKind, InputError> {
    required_enum(field, value, "must name a kind of activity")
}

/// An optional subsidy (unspecified means none).
pub fn optional_subsidy(field: &str, value: i32) -> Result<Option<Subsidy>, InputError> {
    match Subsidy::from_wire(value) {
        Ok(subsidy) => Ok(Some(subsidy)),
        Err(WireEnumError::Unspecified) => Ok(None),
        Err(WireEnumError::Unknown(_)) => Err(InputError::new(field, "is not a known subsidy")),
    }
}

/// A required subsidy.
pub fn required_subsidy(field: &str, value: i32) -> Result<Subsidy, InputError> {
    optional_subsidy(field, value)?.ok_or_else(|| InputError::new(field, "must name a subsidy"))
}

/// A required benefit kind.
pub fn benefit_kind(field: &str, value: i32) -> Result<BenefitKind, InputError> {
    required_enum(field, value, "must name a benefit")
}

/// A required decision outcome.
pub fn decision_outcome(field: &str, value: i32) -> Result<DecisionOutcome, InputError> {
    required_enum(field, value, "must name a decision")
}

/// The body of an activity decision, shared by FK and AF.
pub fn activity_decision(
    request: &v1::ActivityDecisionRequest,
) -> Result<domain::EventBody, InputError> {
    Ok(domain::EventBody::ActivityDecision {
        activity_id: required_activity_id(&request.activity_id)?,
        outcome: decision_outcome("outcome", request.outcome)?,
        valid: optional_period("valid", request.valid.as_ref())?,
        reason: request.reason.trim().to_owned(),
    })
}

/// The body of a correction, shared by every agency: the event it supersedes, why, and the
/// corrected body (whether it may correct that event is the aggregate's rule).
pub fn event_correction(
    request: &v1::CorrectEventRequest,
) -> Result<domain::EventBody, InputError> {
    let supersedes = EventId::parse(&request.supersedes_event_id)
        .map_err(|error| InputError::new("supersedes_event_id", error.reason))?;
    let corrected: domain::EventBody =
        serde_json::from_str(&request.corrected_body_json).map_err(|error| {
            InputError::new(
                "corrected_body_json",
                format!("is not an event body: {error}"),
            )
        })?;
    Ok(domain::EventBody::EventCorrected {
        supersedes,
        reason: request.reason.trim().to_owned(),
        corrected: Box::new(corrected),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: PartialEq + std::fmt::Debug>(
        parsed: Result<T, InputError>,
        expected_field: Option<&str>,
    ) {
        assert_eq!(
            parsed.err().map(|error| error.field),
            expected_field.map(str::to_owned)
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let now = Utc::now();
        check(required_participant_id(""), Some("participant_id"));
        check(
            required_participant_id("00000000-0000-0000-0000-000000000000"),
            Some("participant_id"),
        );
        check(
            required_participant_id("0193a1b2-0000-4000-8000-000000000007"),
            None,
        );
        check(
            required_date("valid_from", "2026-02-30"),
            Some("valid_from"),
        );
        check(required_date("valid_from", "2026-02-28"), None);
        check(
            required_date("valid_from", "+10000-01-01"),
            Some("valid_from"),
        );
        check(
            required_date("valid_from", "1899-12-31"),
            Some("valid_from"),
        );
        check(required_date("valid_from", "1900-01-01"), None);
        check(required_date("valid_from", "2199-12-31"), None);
        check(
            required_date("valid_from", "2200-01-01"),
            Some("valid_from"),
        );
        check(
            timestamp_or("context.occurred_at", "1899-12-31T23:59:59Z", now),
            Some("context.occurred_at"),
        );
        // 23:30 UTC on the last day is already 2200-01-01 in Stockholm.
        check(
            timestamp_or("context.occurred_at", "2199-12-31T22:30:00Z", now),
            None,
        );
        check(
            timestamp_or("context.occurred_at", "2199-12-31T23:30:00Z", now),
            Some("context.occurred_at"),
        );
        let context = v1::WriteContext {
            request_id: "retry\u{0}1".into(),
            ..Default::default()
        };
        check(
            write_context(Some(&context), now),
            Some("context.request_id"),
        );
        check(consent_party("discloser", 0), Some("discloser"));
        check(consent_party("discloser", 99), Some("discloser"));
        check(
            data_categories("data_categories", &[]),
            Some("data_categories"),
        );
        let context = v1::WriteContext {
            occurred_at: "yesterday".into(),
            ..Default::default()
        };
        check(
            write_context(Some(&context), now),
            Some("context.occurred_at"),
        );
        let context = v1::WriteContext {
            request_id: "x".repeat(129),
            ..Default::default()
        };
        check(
            write_context(Some(&context), now),
            Some("context.request_id"),
        );
        let context = v1::WriteContext {
            correlation_id: "nope".into(),
            ..Default::default()
        };
        check(
            write_context(Some(&context), now),
            Some("context.correlation_id"),
        );
    }
}
