//! The ledger's verdicts travelling back to the agency service that is waiting for them.
//!
//! After each commit the ledger publishes a [`Verdict`] on the event's verdict subject (core
//! NATS: fire-and-forget, nothing stored, because the durable copy is the event store). The
//! agency service subscribes *before* it publishes the event, so it cannot miss a verdict that
//! follows; when the wait bound passes, or JetStream reports a duplicate (nothing new will be
//! applied), it asks the ledger's status responder, which reads the event store.

use std::time::Duration;

use domain::{Agency, EventId, ParticipantId};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::subjects::Subjects;
use crate::BusError;

/// What became of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictStatus {
    /// Recorded and accepted.
    Accepted,
    /// Recorded as a rejection.
    Rejected,
    /// Not recorded (yet).
    Unknown,
}

/// The ledger's answer about one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The event.
    pub event_id: EventId,
    /// Accepted, rejected or unknown.
    pub status: VerdictStatus,
    /// The participant, when recorded.
    pub participant_id: Option<ParticipantId>,
    /// Its sequence, when recorded.
    pub sequence: u64,
    /// Its chain hash, when recorded.
    pub hash: String,
    /// The broken rule's stable name, when rejected.
    pub rule: Option<String>,
    /// The rule's explanation, when rejected.
    pub reason: Option<String>,
}

impl Verdict {
    /// The answer for an event the ledger has no record of.
    pub fn unknown(event_id: EventId) -> Self {
        Self {
            event_id,
            status: VerdictStatus::Unknown,
            participant_id: None,
            sequence: 0,
            hash: String::new(),
            rule: None,
            reason: None,
        }
    }
}

/// Announces a verdict. Failure is logged, not returned: the event is committed either way, and
/// a waiting service falls back to a status look-up.
pub async fn announce(
    client: &async_nats::Client,
    subjects: &Subjects,
    publisher: Agency,
    verdict: &Verdict,
) {
    match serde_json::to_vec(verdict) {
        Ok(payload) => {
            if let Err(error) = client
                .publish(
                    subjects.verdict(publisher, verdict.event_id),
                    payload.into(),
                )
                .await
            {
                tracing::warn!(event_id = %verdict.event_id, %error, "could not announce verdict");
            }
        }
        Err(error) => tracing::warn!(%error, "could not encode verdict"),
    }
}

/// A subscription to one event's verdict, opened before the event is published.
pub struct VerdictWaiter {
    subscriber: async_nats::Subscriber,
}

impl VerdictWaiter {
    /// Subscribes to `event_id`'s verdict. The subscription is registered with the server before
    /// any later publish on the same connection, so the verdict cannot slip past it.
    pub async fn subscribe(
        client: &async_nats::Client,
        subjects: &Subjects,
        publisher: Agency,
        event_id: EventId,
    ) -> Result<Self, BusError> {
        let subscriber = client
            .subscribe(subjects.verdict(publisher, event_id))
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))?;
        Ok(Self { subscriber })
    }

    /// Waits at most `wait` for the verdict.
    pub async fn wait(mut self, wait: Duration) -> Option<Verdict> {
        let received = tokio::time::timeout(wait, self.subscriber.next())
            .await
            .ok()
            .flatten();
        let _ = self.subscriber.unsubscribe().await;
        received.and_then(|message| serde_json::from_slice(&message.payload).ok())
    }
}

/// Asks the ledger's status responder about an event `asker` published; `None` when no ledger
/// answers within `wait`. About another agency's event the answer is "unknown".
pub async fn look_up(
    client: &async_nats::Client,
    subjects: &Subjects,
    asker: Agency,
    event_id: EventId,
    wait: Duration,
) -> Option<Verdict> {
    let payload = serde_json::to_vec(&event_id).ok()?;
    let request = client.request(subjects.status_requests(asker), payload.into());
    let response = tokio::time::timeout(wait, request).await.ok()?.ok()?;
    serde_json::from_slice(&response.payload).ok()
}

/// Decodes a status request's payload.
pub fn decode_status_request(payload: &[u8]) -> Option<EventId> {
    serde_json::from_slice(payload).ok()
}

/// Encodes a verdict for a status reply.
pub fn encode(verdict: &Verdict) -> Result<bytes::Bytes, BusError> {
    serde_json::to_vec(verdict)
        .map(Into::into)
        .map_err(|error| BusError::Codec(error.to_string()))
}
