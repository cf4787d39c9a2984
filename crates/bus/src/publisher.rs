//! Publishing submissions with dedupe, awaiting the stream's ack, retrying with the same id.
//!
//! The `Nats-Msg-Id` is the event id, so a retry after a lost ack is deduplicated by JetStream
//! within its window, and by the aggregate after it. The ack future is always awaited: a dropped
//! ack future would hide a failed publish.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use domain::Submission;

use crate::config::BusConfig;
use crate::subjects::Subjects;
use crate::BusError;

/// The stream's acknowledgement of a submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishReceipt {
    /// Position in the stream.
    pub stream_sequence: u64,
    /// JetStream had already stored a message with this id (a retry or a repeated request).
    pub duplicate: bool,
}

/// Publishes submissions for one agency service.
#[derive(Clone)]
pub struct SubmissionPublisher {
    jetstream: jetstream::Context,
    subjects: Subjects,
    ack_timeout: Duration,
    attempts_max: u32,
    message_size_max_bytes: usize,
}

impl SubmissionPublisher {
    /// A publisher on an existing connection.
    pub fn new(client: async_nats::Client, config: &BusConfig) -> Self {
        Self {
            jetstream: jetstream::new(client),
            subjects: Subjects::new(&config.subject_prefix),
            ack_timeout: Duration::from_millis(config.publish_ack_timeout_ms),
            attempts_max: config.publish_attempts_max,
            message_size_max_bytes: config.message_size_max_bytes,
        }
    }

    /// The subject scheme this publisher uses.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// Publishes and waits for the stream's ack, retrying on timeout with the same message id.
    pub async fn publish(&self, submission: &Submission) -> Result<PublishReceipt, BusError> {
        let payload =
            bytes::Bytes::from(encode_submission(submission, self.message_size_max_bytes)?);
        let subject = self.subjects.event(
            submission.envelope.agency,
            submission.envelope.participant_id,
        );
        let message_id = submission.envelope.event_id.to_string();
        for attempt in 1..=self.attempts_max {
            let message = PublishMessage::build()
                .payload(payload.clone())
                .message_id(&message_id);
            let outcome = async {
                let ack_future = self
                    .jetstream
                    .send_publish(subject.clone(), message)
                    .await?;
                ack_future.await
            };
            match tokio::time::timeout(self.ack_timeout, outcome).await {
                Ok(Ok(ack)) => {
                    return Ok(PublishReceipt {
                        stream_sequence: ack.sequence,
                        duplicate: ack.duplicate,
                    })
                }
                Ok(Err(error)) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    return Err(BusError::MessageTooLarge {
                        size_bytes: payload.len(),
                        size_max_bytes: self.message_size_max_bytes,
                    });
                }
                Ok(Err(error)) => {
                    tracing::warn!(%message_id, attempt, %error, "publish failed; retrying with the same message id");
                }
                Err(_elapsed) => {
                    tracing::warn!(%message_id, attempt, "no ack within the bound; retrying with the same message id");
                }
            }
            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
        }
        Err(BusError::PublishNotAcknowledged {
            attempts: self.attempts_max,
        })
    }
}

/// A submission as it is published: its JSON, refused when longer than
/// `message_size_max_bytes` (`bus.message_size_max_bytes`). Public so the fuzz program encodes
/// exactly what the agency services publish.
pub fn encode_submission(
    submission: &Submission,
    message_size_max_bytes: usize,
) -> Result<Vec<u8>, BusError> {
    let payload =
        serde_json::to_vec(submission).map_err(|error| BusError::Codec(error.to_string()))?;
    if payload.len() > message_size_max_bytes {
        return Err(BusError::MessageTooLarge {
            size_bytes: payload.len(),
            size_max_bytes: message_size_max_bytes,
        });
    }
    Ok(payload)
}
