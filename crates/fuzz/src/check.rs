//! What must hold for a submission once something accepted it (the gRPC edge, or the ledger's
//! decode of a message on the bus), checked in memory on every case: it encodes as the
//! agency services publish it, the ledger decodes it back unchanged, the aggregate records it
//! (accepted or as a rejection, never an error that would park an accepted write), and the
//! entry it records is storable as PostgreSQL will be asked to store it: no U+0000 in any
//! string of the `jsonb` payload or a `text` column, no timestamp or date PostgreSQL cannot
//! hold, a hash that verifies over the stored JSON, and a payload that reads back into the
//! same entry. The storage phase (`storage.rs`) then stores a sample for real.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use domain::chain::{stored_payload_hash, ChainVerifier};
use domain::{Participant, ParticipantCommand, ParticipantEvent, Submission};
use serde_json::Value;

/// The earliest instant PostgreSQL's `timestamptz` and `date` hold (4714-11-24 BC, Julian day
/// 0, in the proleptic Gregorian calendar chrono uses); chrono reaches back to 262,143 BC.
/// (The latest, 294,276 AD, is past chrono's own end.)
pub fn postgres_earliest_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(-4713, 11, 24).unwrap_or(NaiveDate::MIN)
}

/// A property that did not hold, and on what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    /// The property's name (`accepted_is_storable`, ...).
    pub property: &'static str,
    /// What was wrong, with the value.
    pub detail: String,
}

impl Broken {
    fn new(property: &'static str, detail: impl Into<String>) -> Self {
        Self {
            property,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Broken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}: {}", self.property, self.detail)
    }
}

/// The subject a message about `submission` is stored under in the stream (partition 0).
pub fn stored_subject(subjects_prefix: &str, submission: &Submission) -> String {
    format!(
        "{subjects_prefix}.0.{}.{}",
        submission.envelope.agency.token(),
        submission.envelope.participant_id
    )
}

/// What happened to a submission the edge accepted, up to the bus.
#[derive(Debug)]
pub enum Published {
    /// Too large for one message: the edge answers with an error, nothing is published.
    TooLarge,
    /// Published as these bytes under this subject.
    Bytes(String, Vec<u8>),
}

/// Encodes an accepted submission as the agency service publishes it; the ledger must
/// decode exactly it back.
pub fn publish(
    submission: &Submission,
    config: &bus::BusConfig,
    subjects: &bus::Subjects,
) -> Result<Published, Broken> {
    let payload = match bus::encode_submission(submission, config.message_size_max_bytes) {
        Ok(payload) => payload,
        Err(bus::BusError::MessageTooLarge { .. }) => return Ok(Published::TooLarge),
        Err(error) => {
            return Err(Broken::new(
                "accepted_is_encodable",
                format!("{error}: {submission:?}"),
            ))
        }
    };
    let subject = stored_subject(&config.subject_prefix, submission);
    match ledger::ingest::decode_submission(subjects, &subject, &payload) {
        Ok(decoded) if decoded == *submission => Ok(Published::Bytes(subject, payload)),
        Ok(decoded) => Err(Broken::new(
            "accepted_decodes_unchanged",
            format!("published {submission:?}, the ledger read {decoded:?}"),
        )),
        Err(reason) => Err(Broken::new(
            "accepted_decodes_unchanged",
            format!("the ledger parks what the edge published ({reason}): {submission:?}"),
        )),
    }
}

/// What the ledger records for `submission` as the first entry of a new participant, at
/// `recorded_at`: the aggregate's decision (accept or record a rejection) and the linked,
/// hashed entry; `Err` with the aggregate's error when it records nothing (the ledger parks
/// the message).
pub fn record_first(
    submission: &Submission,
    recorded_at: DateTime<Utc>,
) -> Result<ParticipantEvent, String> {
    let mut participant = Participant::default();
    record_next(&mut participant, submission, recorded_at)
}

/// What the ledger records for `submission` after `participant`'s history, applied to it.
pub fn record_next(
    participant: &mut Participant,
    submission: &Submission,
    recorded_at: DateTime<Utc>,
) -> Result<ParticipantEvent, String> {
    let sink = EventSink::default();
    let command = ParticipantCommand::Record {
        submission: submission.clone(),
        recorded_at,
    };
    futures::executor::block_on(participant.handle(command, &(), &sink))
        .map_err(|error| error.to_string())?;
    let mut events = futures::executor::block_on(sink.collect());
    if events.len() != 1 {
        return Err(format!("recorded {} entries, not one", events.len()));
    }
    // `handle` applied it already (through the sink): applying it again would fold it twice.
    Ok(events.remove(0))
}

/// Every check on an entry that PostgreSQL and a later load would make, in memory.
pub fn storable(event: &ParticipantEvent) -> Result<(), Broken> {
    let payload = serde_json::to_value(event).map_err(|error| {
        Broken::new(
            "recorded_is_storable",
            format!("payload: {error}: {event:?}"),
        )
    })?;
    if let Some(path) = string_with_nul(&payload, "") {
        return Err(Broken::new(
            "recorded_is_storable",
            format!("jsonb refuses U+0000 (at {path}): {event:?}"),
        ));
    }
    if stored_payload_hash(&payload) != event.hash {
        return Err(Broken::new(
            "recorded_hash_verifies",
            format!("the stored JSON hashes differently: {event:?}"),
        ));
    }
    let mut verifier = ChainVerifier::default();
    verifier.push(event.sequence, &payload);
    if let Some(link) = verifier.report().first_broken_link.clone() {
        return Err(Broken::new(
            "recorded_hash_verifies",
            format!("{link:?}: {event:?}"),
        ));
    }
    match serde_json::from_value::<ParticipantEvent>(payload) {
        Ok(read_back) if read_back == *event => {}
        Ok(read_back) => {
            return Err(Broken::new(
                "recorded_reads_back",
                format!("stored {event:?}, read back {read_back:?}"),
            ))
        }
        Err(error) => {
            return Err(Broken::new(
                "recorded_reads_back",
                format!("{error}: {event:?}"),
            ))
        }
    }
    let row = store::timeline::TimelineRow::from_event(event)
        .map_err(|error| Broken::new("recorded_is_projectable", format!("{error}: {event:?}")))?;
    for (column, instant) in [
        ("occurred_at", row.occurred_at),
        ("recorded_at", row.recorded_at),
    ] {
        if instant.date_naive() < postgres_earliest_date() {
            return Err(Broken::new(
                "recorded_is_projectable",
                format!("timeline_entries.{column} {instant} is before PostgreSQL's earliest timestamptz: {event:?}"),
            ));
        }
    }
    Ok(())
}

/// The path of the first string (or object key) holding U+0000.
fn string_with_nul(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then(|| path.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| string_with_nul(item, &format!("{path}[{index}]"))),
        Value::Object(entries) => entries.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                return Some(format!("{path}.<key>"));
            }
            string_with_nul(item, &format!("{path}.{key}"))
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}
