//! The ledger's verdicts travelling back to the agency service that is waiting for them.
//!
//! After each commit the ledger publishes a [`Verdict`] on the event's verdict subject (core
//! NATS: fire-and-forget, nothing stored, because the durable copy is the event store). The
//! agency service subscribes *before* it publishes the event, so it cannot miss a verdict that
//! follows; when the wait bound passes, or JetStream reports a duplicate (nothing new will be
//! applied), it asks the ledger's status responder, which reads the event store.
//!
//! A verdict is taken only for the event it names: whatever arrives on the subject or as the
//! status answer, a verdict whose `event_id` is not the awaited one is never reported as the
//! awaited event's (an agency's officer must never be told another event's sequence and hash).

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
    event_id: EventId,
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
        Ok(Self {
            subscriber,
            event_id,
        })
    }

    /// Waits at most `wait` for the verdict on the awaited event.
    pub async fn wait(mut self, wait: Duration) -> Option<Verdict> {
        let received = awaited_verdict(&mut self.subscriber, self.event_id, wait).await;
        let _ = self.subscriber.unsubscribe().await;
        received
    }
}

/// The first of `messages` within `wait` that is a verdict on `event_id`. Anything else on the
/// subject (unreadable, or a verdict on another event) is logged and skipped, and the wait goes
/// on until the same deadline: one stray message must not cost the real verdict.
async fn awaited_verdict(
    messages: &mut (impl futures::Stream<Item = async_nats::Message> + Unpin),
    event_id: EventId,
    wait: Duration,
) -> Option<Verdict> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let message = tokio::time::timeout_at(deadline, messages.next())
            .await
            .ok()
            .flatten()?;
        match verdict_on(event_id, &message.payload) {
            Ok(verdict) => return Some(verdict),
            Err(refused) => tracing::warn!(
                subject = %message.subject,
                %event_id,
                %refused,
                "a message on a verdict subject was ignored"
            ),
        }
    }
}

/// Why a message was not taken as the awaited event's verdict.
#[derive(Debug, thiserror::Error)]
enum VerdictRefused {
    /// The payload is not a verdict.
    #[error("verdict_unreadable: {0}")]
    Unreadable(serde_json::Error),
    /// A verdict, but on another event than the one awaited.
    #[error("verdict_for_another_event: the verdict is on event {announced}")]
    AnotherEvent {
        /// The event the verdict names.
        announced: EventId,
    },
}

/// `payload` as the verdict on `event_id`, refused when it is not one or names another event.
fn verdict_on(event_id: EventId, payload: &[u8]) -> Result<Verdict, VerdictRefused> {
    let verdict: Verdict = serde_json::from_slice(payload).map_err(VerdictRefused::Unreadable)?;
    if verdict.event_id != event_id {
        return Err(VerdictRefused::AnotherEvent {
            announced: verdict.event_id,
        });
    }
    Ok(verdict)
}

/// Asks the ledger's status responder about an event `asker` published; `None` when no ledger
/// answers within `wait`, or the answer is not about that event. About another agency's event
/// the answer is "unknown".
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
    match verdict_on(event_id, &response.payload) {
        Ok(verdict) => Some(verdict),
        Err(refused) => {
            tracing::warn!(%event_id, %refused, "a status answer was ignored");
            None
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event_id(n: u8) -> EventId {
        let Ok(id) = EventId::parse(&format!("0193a1b2-0000-4000-8000-0000000000{n:02x}")) else {
            panic!("a valid id")
        };
        id
    }

    fn on_subject(payload: Vec<u8>) -> async_nats::Message {
        async_nats::Message {
            subject: "t1.ips.v1.verdict.fk.any".into(),
            reply: None,
            length: payload.len(),
            payload: payload.into(),
            headers: None,
            status: None,
            description: None,
        }
    }

    fn accepted(event_id: EventId, sequence: u64) -> Verdict {
        Verdict {
            status: VerdictStatus::Accepted,
            sequence,
            hash: format!("hash-{sequence}"),
            ..Verdict::unknown(event_id)
        }
    }

    #[tokio::test]
    async fn the_waiter_skips_a_verdict_on_another_event_and_takes_the_awaited_one() {
        let (awaited, other) = (event_id(1), event_id(2));
        let Ok(foreign) = serde_json::to_vec(&accepted(other, 7)) else {
            panic!("a verdict encodes")
        };
        let Ok(own) = serde_json::to_vec(&accepted(awaited, 3)) else {
            panic!("a verdict encodes")
        };
        let mut messages = futures::stream::iter([
            on_subject(foreign),
            on_subject(b"not a verdict".to_vec()),
            on_subject(own),
        ]);
        let taken = awaited_verdict(&mut messages, awaited, Duration::from_secs(5)).await;
        assert_eq!(taken, Some(accepted(awaited, 3)));
    }

    #[tokio::test]
    async fn the_waiter_reports_nothing_when_only_another_events_verdict_came() {
        let (awaited, other) = (event_id(1), event_id(2));
        let Ok(foreign) = serde_json::to_vec(&accepted(other, 7)) else {
            panic!("a verdict encodes")
        };
        // The foreign verdict, then silence until the wait bound.
        let mut messages =
            futures::stream::iter([on_subject(foreign)]).chain(futures::stream::pending());
        let taken = awaited_verdict(&mut messages, awaited, Duration::from_millis(50)).await;
        assert_eq!(taken, None);
    }
}
