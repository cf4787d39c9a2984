//! Raw bytes as a message on the bus, through the ledger's own decode
//! (`ledger::ingest::decode_submission`) and, when it reads a submission, the aggregate: what
//! an agency service with a bug (or a stolen NATS credential for its own subjects) could put
//! on the stream. Whatever the decode accepts and the aggregate records must be storable;
//! everything else is parked, which the ledger does without retrying.

use domain::{Actor, Agency, EventBody, PersonId, Role, Submission, UnitId};
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde_json::Value;

use crate::check::{self, Broken};
use crate::json;

/// One message: its payload and how its subject is chosen.
#[derive(Clone, Debug)]
pub struct BusCase {
    /// The payload.
    pub payload: Vec<u8>,
    /// `None`: the subject the payload's own envelope names (as an agency service would
    /// publish it); `Some`: this subject.
    pub subject: Option<String>,
}

/// Real submissions, one per sample body, each from its owning agency.
pub fn sample_submissions() -> Vec<Value> {
    let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default();
    json::sample_bodies()
        .into_iter()
        .filter_map(|body| serde_json::from_value::<EventBody>(body).ok())
        .enumerate()
        .map(|(index, body)| {
            let agency = body.owning_agency().unwrap_or(Agency::Municipality);
            let actor = Actor {
                person_id: PersonId("officer-7".into()),
                role: if agency == Agency::Municipality {
                    Role::Coach
                } else {
                    Role::CaseOfficer
                },
                unit: UnitId("hudiksvall-ips".into()),
            };
            let participant_id =
                domain::ParticipantId(uuid::Uuid::from_u128(0x1000 + index as u128));
            let context = rpc::fields::ParsedWriteContext {
                request_id: Some(format!("sample-{index}")),
                occurred_at: now,
                correlation_id: None,
                causation_id: None,
            };
            let envelope = rpc::submit::envelope(agency, actor, participant_id, &context, &body);
            serde_json::to_value(Submission { envelope, body }).unwrap_or(Value::Null)
        })
        .collect()
}

/// Messages: hostile JSON around real submissions, their text with bytes flipped, random
/// bytes; under their own subject, or sometimes another.
pub fn bus_case() -> BoxedStrategy<BusCase> {
    let samples = sample_submissions();
    let hostile = json::hostile_json(samples.clone()).prop_map(String::into_bytes);
    let flipped = (
        proptest::sample::select(samples),
        proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
    )
        .prop_map(|(sample, flips)| {
            let mut bytes = sample.to_string().into_bytes();
            for (at, byte) in flips {
                let index = at.index(bytes.len());
                bytes[index] = byte;
            }
            bytes
        });
    let payload = prop_oneof![
        12 => hostile,
        3 => flipped,
        1 => proptest::collection::vec(any::<u8>(), 0..300),
    ];
    let subject = prop_oneof![
        10 => Just(None),
        1 => crate::values::text(crate::values::Shape::Any).prop_map(Some),
        1 => "ips\\.v1\\.[0-9]{1,3}\\.(municipality|fk|af|psychiatry|ledger)\\.[0-9a-f-]{36}".prop_map(Some),
    ];
    (payload, subject)
        .prop_map(|(payload, subject)| BusCase { payload, subject })
        .boxed()
}

/// What became of a message.
#[derive(Debug)]
pub enum BusOutcome {
    /// The decode refused it: parked as this message.
    Undecodable(Box<store::ParkedMessage>),
    /// Decoded, but the aggregate records nothing: parked as this message.
    Unrecordable(Box<store::ParkedMessage>),
    /// Recorded (accepted or as a rejection) and storable.
    Recorded(Box<Submission>),
}

/// The row the ledger parks `payload` as.
fn parked(subject: &str, payload: &[u8], reason: String) -> Box<store::ParkedMessage> {
    Box::new(store::ParkedMessage {
        stream_name: "AGENCY_EVENTS".into(),
        stream_sequence: 1,
        subject: subject.to_owned(),
        payload: payload.to_vec(),
        reason,
        delivered_count: 1,
    })
}

/// The subject an agency service would publish `payload` under: the stored subject its own
/// envelope names (the raw strings, whatever they are).
fn own_subject(prefix: &str, payload: &[u8]) -> String {
    let envelope = serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|value| value.get("envelope").cloned());
    let field = |name: &str| {
        envelope
            .as_ref()
            .and_then(|envelope| envelope.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    format!("{prefix}.0.{}.{}", field("agency"), field("participant_id"))
}

/// Runs one message through the ledger's decode and the aggregate.
pub fn check_bus(
    case: &BusCase,
    subjects: &bus::Subjects,
    prefix: &str,
    recorded_at: chrono::DateTime<chrono::Utc>,
) -> Result<BusOutcome, Broken> {
    let subject = case
        .subject
        .clone()
        .unwrap_or_else(|| own_subject(prefix, &case.payload));
    let submission = match ledger::ingest::decode_submission(subjects, &subject, &case.payload) {
        Ok(submission) => submission,
        Err(reason) => {
            return Ok(BusOutcome::Undecodable(parked(
                &subject,
                &case.payload,
                reason,
            )))
        }
    };
    let event = match check::record_first(&submission, recorded_at) {
        Ok(event) => event,
        Err(reason) => {
            return Ok(BusOutcome::Unrecordable(parked(
                &subject,
                &case.payload,
                reason,
            )))
        }
    };
    check::storable(&event).map_err(|broken| Broken {
        property: broken.property,
        detail: format!(
            "{} (bus payload {:?})",
            broken.detail,
            String::from_utf8_lossy(&case.payload)
        ),
    })?;
    Ok(BusOutcome::Recorded(Box::new(submission)))
}
