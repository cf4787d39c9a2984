//! NATS JetStream for IPS Samverkan: the only crate that knows subjects, streams and consumers.
//!
//! Agency services publish [`domain::Submission`]s here and wait for the stream's ack; the ledger
//! pulls them with explicit acks; verdicts travel back on core NATS. Everything the broker does
//! is bounded by a named, configurable limit ([`BusConfig`]). Every server is the pinned
//! nats-server 2.15.1 (`deploy/setup.sh`), fsyncing each write before it acknowledges it, alone or
//! as a three-node cluster holding the stream on every node (`stream_replicas`); async-nats is
//! built with the server features up to that version (`server_2_14`), and no newer ones.
//!
//! Map: [`config`] (limits and names), [`subjects`] (the subject scheme), [`setup`] (stream and
//! consumer), [`publisher`] (publish with dedupe and retry), [`ingest`] (pull, ack, progress),
//! [`verdicts`] (the ledger's answers, pushed and looked up).

pub mod config;
pub mod ingest;
pub mod publisher;
pub mod setup;
pub mod subjects;
pub mod verdicts;

pub use config::{BusConfig, ConfigError};
pub use ingest::{
    ConsumerState, Deliveries, Delivery, IngestConsumer, Pull, StoredMessage, StreamReader,
};
pub use publisher::{encode_submission, PublishReceipt, SubmissionPublisher};
pub use setup::{connect, connect_as_agency};
pub use subjects::Subjects;
pub use verdicts::{Verdict, VerdictStatus, VerdictWaiter};

/// Everything that can go wrong talking to NATS, by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Could not connect, or the connection broke.
    #[error("nats_unavailable: {0}")]
    Unavailable(String),
    /// The stream did not acknowledge within the bound after every retry.
    #[error("publish_not_acknowledged: no ack from the stream after {attempts} attempts")]
    PublishNotAcknowledged {
        /// How many publishes were tried with the same message id.
        attempts: u32,
    },
    /// The encoded message is larger than the configured maximum.
    #[error("message_too_large: {size_bytes} bytes is over the {size_max_bytes}-byte limit")]
    MessageTooLarge {
        /// Encoded size.
        size_bytes: usize,
        /// Configured limit.
        size_max_bytes: usize,
    },
    /// Stream or consumer set-up failed (e.g. an existing stream with other subjects).
    #[error("stream_setup_failed: {0}")]
    Setup(String),
    /// A message could not be encoded or decoded.
    #[error("codec: {0}")]
    Codec(String),
    /// A delivery lacks the server's delivery information (stream and consumer position,
    /// delivery count), or holds impossible values: it can be neither ordered, parked nor acked.
    #[error("delivery_unreadable: {0}")]
    DeliveryUnreadable(String),
}
