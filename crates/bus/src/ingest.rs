//! The ledger's side of the stream: bounded pulls, and explicit acks after the commit.
//!
//! Pulls are bounded in count (`fetch_batch_size_max`) and time (`fetch_wait_ms`). Messages are
//! handed out as they arrive within a pull, so latency does not wait for a full batch, and at
//! shutdown the ledger simply stops starting new pulls: at most one short pull is still open,
//! and nothing sits prefetched in a client buffer until `ack_wait` expires.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use futures::StreamExt;

use crate::config::BusConfig;
use crate::setup;
use crate::BusError;

/// One delivered message and its acknowledgement handles.
pub struct Delivery {
    message: jetstream::Message,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Delivery")
            .field("subject", &self.subject())
            .field("stream_sequence", &self.stream_sequence())
            .field("delivered_count", &self.delivered_count())
            .finish()
    }
}

impl Delivery {
    /// The subject it was published to.
    pub fn subject(&self) -> &str {
        self.message.subject.as_str()
    }

    /// The raw payload.
    pub fn payload(&self) -> &[u8] {
        &self.message.payload
    }

    /// The message's position in the stream (stable across redeliveries).
    pub fn stream_sequence(&self) -> u64 {
        self.message
            .info()
            .map(|info| info.stream_sequence)
            .unwrap_or(0)
    }

    /// How many times the server has delivered it, this time included.
    pub fn delivered_count(&self) -> i64 {
        self.message.info().map(|info| info.delivered).unwrap_or(1)
    }

    /// Acknowledges after the commit. Plain (fire-and-forget) ack: apply is idempotent by event
    /// id, so a lost ack costs one harmless redelivery.
    pub async fn ack(&self) -> Result<(), BusError> {
        self.message
            .ack()
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))
    }

    /// Tells the server work is still going on (resets `ack_wait`), e.g. while Postgres is down.
    pub async fn progress(&self) -> Result<(), BusError> {
        self.message
            .ack_with(AckKind::Progress)
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))
    }

    /// Asks for redelivery after `delay` (used when shutting down mid-retry).
    pub async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))
    }
}

/// How long after a pull's expiry the ledger stops waiting for the server's end-of-pull notice.
///
/// async-nats waits `expires + 5 s` when the server's timeout status does not come, which was
/// seen to stall ingest for five seconds under load; the server delivers nothing to a pull after
/// its expiry, so a short margin is enough.
pub const PULL_EXPIRY_MARGIN: Duration = Duration::from_millis(250);

/// One open pull.
pub struct Pull {
    batch: async_nats::jetstream::consumer::pull::Batch,
    deadline: tokio::time::Instant,
    past_deadline: bool,
}

impl Pull {
    /// The next delivery, or `None` when the pull has ended. Past the deadline it hands out only
    /// what is already buffered, so no delivered message is left behind unprocessed.
    pub async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        let item = if self.past_deadline {
            futures::FutureExt::now_or_never(self.batch.next()).flatten()
        } else {
            match tokio::time::timeout_at(self.deadline, self.batch.next()).await {
                Ok(item) => item,
                Err(_elapsed) => {
                    self.past_deadline = true;
                    futures::FutureExt::now_or_never(self.batch.next()).flatten()
                }
            }
        };
        item.map(|item| {
            item.map(|message| Delivery { message })
                .map_err(|error| BusError::Unavailable(error.to_string()))
        })
    }
}

/// The ledger's durable pull consumer.
pub struct IngestConsumer {
    consumer: consumer::Consumer<consumer::pull::Config>,
    fetch_batch_size_max: usize,
    fetch_wait: Duration,
}

impl IngestConsumer {
    /// Ensures the stream and the durable consumer exist, and opens it.
    pub async fn open(client: async_nats::Client, config: &BusConfig) -> Result<Self, BusError> {
        let jetstream = jetstream::new(client);
        let stream = setup::ensure_stream(&jetstream, config).await?;
        let consumer = setup::ensure_consumer(&stream, config).await?;
        Ok(Self {
            consumer,
            fetch_batch_size_max: config.fetch_batch_size_max,
            fetch_wait: Duration::from_millis(config.fetch_wait_ms),
        })
    }

    /// Starts one bounded pull; its messages arrive from [`Pull::next`] until the batch is full
    /// or the wait has passed.
    pub async fn pull(&self) -> Result<Pull, BusError> {
        let batch = self
            .consumer
            .batch()
            .max_messages(self.fetch_batch_size_max)
            .expires(self.fetch_wait)
            .messages()
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))?;
        Ok(Pull {
            batch,
            deadline: tokio::time::Instant::now() + self.fetch_wait + PULL_EXPIRY_MARGIN,
            past_deadline: false,
        })
    }

    /// Messages in the stream not yet delivered to the ledger, plus those delivered but unacked:
    /// the ingest lag, for metrics.
    pub async fn lag(&mut self) -> Result<(u64, usize), BusError> {
        let info = self
            .consumer
            .info()
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))?;
        Ok((info.num_pending, info.num_ack_pending))
    }

    /// How long one pull waits for messages.
    pub fn fetch_wait(&self) -> Duration {
        self.fetch_wait
    }

    /// Pull requests the server still holds open for this consumer (e.g. a crashed ledger's,
    /// until they expire or the server sees its connection close).
    pub async fn waiting_pulls(&mut self) -> Result<usize, BusError> {
        let info = self
            .consumer
            .info()
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))?;
        Ok(info.num_waiting)
    }
}
