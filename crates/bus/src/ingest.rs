//! The ledger's side of the stream: one pinned pull stream per partition, and explicit acks after
//! the commit.
//!
//! Each partition's consumer is pinned (priority group, `PinnedClient`): the server delivers to
//! one ledger's pull stream and keeps the others on standby until that one stops pulling for
//! `pinned_client_timeout_ms`. async-nats refuses one-shot pulls (`fetch`, `batch`) on such a
//! consumer, because a pull that is never renewed would hold the pin, so the ledger keeps a pull
//! stream (`messages()`) open: pulls of at most `fetch_batch_size_max` messages expiring after
//! `fetch_wait_ms`, renewed by the client. At shutdown the stream is dropped; what it had
//! buffered and not handed out comes back after `ack_wait` (at most one pull's worth).

use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use futures::StreamExt;

use domain::ParticipantId;

use crate::config::BusConfig;
use crate::setup;
use crate::subjects::Subjects;
use crate::BusError;

/// One delivered message and its acknowledgement handles.
///
/// Its stream position, consumer position and delivery count come from the server (the reply
/// subject) and are verified once, when the delivery is handed out: a delivery without them
/// could be neither ordered, parked nor acked, so it is reported
/// ([`BusError::DeliveryUnreadable`]) rather than given a position of 0.
pub struct Delivery {
    message: jetstream::Message,
    stream_sequence: u64,
    consumer_sequence: u64,
    delivered_count: i64,
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
    /// Reads the server's delivery information, naming what is missing or out of range.
    fn verified(message: jetstream::Message) -> Result<Self, BusError> {
        let unreadable = |what: String| {
            BusError::DeliveryUnreadable(format!("a delivery on `{}`: {what}", message.subject))
        };
        let info = message
            .info()
            .map_err(|error| unreadable(format!("no JetStream delivery information ({error})")))?;
        // JetStream counts positions and deliveries from 1.
        if info.stream_sequence == 0 {
            return Err(unreadable("stream sequence 0".into()));
        }
        if info.consumer_sequence == 0 {
            return Err(unreadable("consumer sequence 0".into()));
        }
        if info.delivered < 1 {
            return Err(unreadable(format!("delivered {} times", info.delivered)));
        }
        let (stream_sequence, consumer_sequence, delivered_count) =
            (info.stream_sequence, info.consumer_sequence, info.delivered);
        Ok(Self {
            message,
            stream_sequence,
            consumer_sequence,
            delivered_count,
        })
    }

    /// The subject it was published to.
    pub fn subject(&self) -> &str {
        self.message.subject.as_str()
    }

    /// The raw payload.
    pub fn payload(&self) -> &[u8] {
        &self.message.payload
    }

    /// The message's position in the stream (stable across redeliveries); at least 1.
    pub fn stream_sequence(&self) -> u64 {
        self.stream_sequence
    }

    /// The consumer's delivery counter: one more for every delivery (redeliveries included) to
    /// any client of the consumer, so a gap means another client was handed something. At
    /// least 1.
    pub fn consumer_sequence(&self) -> u64 {
        self.consumer_sequence
    }

    /// The pin this delivery came under (`Nats-Pin-Id`): the server's id of the pull stream
    /// that holds the partition, which that ledger names when it releases the pin.
    pub fn pin_id(&self) -> Option<&str> {
        self.message
            .headers
            .as_ref()
            .and_then(|headers| headers.get_last(async_nats::header::NATS_PIN_ID))
            .map(|value| value.as_str())
    }

    /// How many times the server has delivered it, this time included; at least 1.
    pub fn delivered_count(&self) -> i64 {
        self.delivered_count
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

/// One partition's pinned pull stream: deliveries arrive only while this stream holds the pin.
pub struct Deliveries {
    stream: consumer::pull::Stream,
}

impl Deliveries {
    /// The next delivery; `None` when the stream has ended (open a new one).
    pub async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        self.stream.next().await.map(|item| {
            item.map_err(|error| BusError::Unavailable(error.to_string()))
                .and_then(Delivery::verified)
        })
    }
}

/// A pull stream read for a bounded time (a test's stand-in for a ledger that takes deliveries
/// and then dies).
pub struct Pull {
    batch: Deliveries,
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
        item
    }
}

/// The consumer's progress: its lag, and how far everything is settled (within its partition).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsumerState {
    /// Messages in the stream not yet delivered.
    pub pending: u64,
    /// Messages delivered and not yet acked.
    pub ack_pending: u64,
    /// Every message at or below this stream sequence has been acked.
    pub ack_floor_stream_sequence: u64,
}

/// One partition's durable pull consumer.
pub struct IngestConsumer {
    consumer: consumer::Consumer<consumer::pull::Config>,
    stream: jetstream::stream::Stream,
    consumer_name: String,
    partition: u32,
    fetch_batch_size_max: usize,
    fetch_wait: Duration,
}

impl IngestConsumer {
    /// Ensures the stream and `partition`'s durable consumer exist, and opens it.
    pub async fn open(
        client: async_nats::Client,
        config: &BusConfig,
        partition: u32,
    ) -> Result<Self, BusError> {
        let jetstream = jetstream::new(client);
        let stream = setup::ensure_stream(&jetstream, config).await?;
        let consumer = setup::ensure_consumer(&stream, config, partition).await?;
        Ok(Self {
            consumer,
            stream,
            consumer_name: setup::partition_consumer_name(config, partition),
            partition,
            fetch_batch_size_max: config.fetch_batch_size_max,
            fetch_wait: Duration::from_millis(config.fetch_wait_ms),
        })
    }

    /// Every partition's consumer, in partition order.
    pub async fn open_all(
        client: async_nats::Client,
        config: &BusConfig,
    ) -> Result<Vec<Self>, BusError> {
        let mut consumers = Vec::with_capacity(config.partitions as usize);
        for partition in 0..config.partitions {
            consumers.push(Self::open(client.clone(), config, partition).await?);
        }
        Ok(consumers)
    }

    /// The partition this consumer reads.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// Opens a pull stream in the ledgers' priority group. It starts on standby while another
    /// ledger's stream holds the pin.
    pub async fn deliveries(&self) -> Result<Deliveries, BusError> {
        let stream = self
            .consumer
            .stream()
            .group(setup::LEDGER_PRIORITY_GROUP)
            .max_messages_per_batch(self.fetch_batch_size_max)
            .expires(self.fetch_wait)
            // The server requires the idle heartbeat to be well inside the pull's expiry.
            .heartbeat(self.fetch_wait / 4)
            .messages()
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))?;
        Ok(Deliveries { stream })
    }

    /// Opens a pull stream and reads it for one `fetch_wait_ms` (see [`Pull`]).
    pub async fn pull(&self) -> Result<Pull, BusError> {
        Ok(Pull {
            batch: self.deliveries().await?,
            deadline: tokio::time::Instant::now() + self.fetch_wait + PULL_EXPIRY_MARGIN,
            past_deadline: false,
        })
    }

    /// The pin id of the pull stream the server has pinned the partition to, if any.
    pub async fn pinned_client_id(&mut self) -> Result<Option<String>, BusError> {
        let info = self
            .consumer
            .info()
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))?;
        Ok(info
            .priority_groups
            .iter()
            .find(|group| group.group == setup::LEDGER_PRIORITY_GROUP)
            .and_then(|group| group.pinned_client_id.clone()))
    }

    /// Releases the partition's pin, whoever holds it: the server pins the next pull request
    /// that names no pin (a waiting ledger's), and answers the old holder's pending pull with
    /// 423, so its pull stream stops receiving.
    pub async fn unpin(&self) -> Result<(), BusError> {
        self.stream
            .unpin_consumer(&self.consumer_name, setup::LEDGER_PRIORITY_GROUP)
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))
    }

    /// Releases the pin if `held_pin_id` still holds it (another ledger may have been pinned
    /// meanwhile, and is left alone). Returns whether it released it.
    pub async fn release_pin(&mut self, held_pin_id: &str) -> Result<bool, BusError> {
        if self.pinned_client_id().await?.as_deref() != Some(held_pin_id) {
            return Ok(false);
        }
        self.unpin().await?;
        Ok(true)
    }

    /// The consumer's progress as the server sees it.
    pub async fn state(&mut self) -> Result<ConsumerState, BusError> {
        let info = self
            .consumer
            .info()
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))?;
        Ok(ConsumerState {
            pending: info.num_pending,
            ack_pending: info.num_ack_pending as u64,
            ack_floor_stream_sequence: info.ack_floor.stream_sequence,
        })
    }
}

/// A message read straight from the stream: not a delivery, so there is nothing to ack.
#[derive(Clone, Debug)]
pub struct StoredMessage {
    /// The subject it was published to.
    pub subject: String,
    /// Its position in the stream.
    pub stream_sequence: u64,
    /// The raw payload.
    pub payload: bytes::Bytes,
}

/// Reads a participant's messages straight from the stream, by position.
///
/// The consumer hands out messages in stream order only once: a delivery that was not acked (a
/// crashed ledger's) comes back after `ack_wait`, behind messages published meanwhile. The
/// ledger uses this reader to apply a participant's earlier messages before a later one, so
/// per-participant order never rests on delivery timing.
#[derive(Clone)]
pub struct StreamReader {
    stream: jetstream::stream::Stream<()>,
    subjects: Subjects,
}

impl StreamReader {
    /// A reader of the configured stream (which [`IngestConsumer::open`] has ensured).
    pub async fn open(client: async_nats::Client, config: &BusConfig) -> Result<Self, BusError> {
        let stream = jetstream::new(client)
            .get_stream_no_info(&config.stream_name)
            .await
            .map_err(|error| BusError::Setup(format!("stream {}: {error}", config.stream_name)))?;
        Ok(Self {
            stream,
            subjects: Subjects::new(&config.subject_prefix),
        })
    }

    /// The first message about `participant_id`, from any agency, at or after
    /// `from_stream_sequence`; `None` when there is none.
    pub async fn first_for_participant_from(
        &self,
        participant_id: ParticipantId,
        from_stream_sequence: u64,
    ) -> Result<Option<StoredMessage>, BusError> {
        match self
            .stream
            .get_first_raw_message_by_subject(
                self.subjects.participant_wildcard(participant_id),
                from_stream_sequence,
            )
            .await
        {
            Ok(message) => Ok(Some(StoredMessage {
                subject: message.subject.to_string(),
                stream_sequence: message.sequence,
                payload: message.payload,
            })),
            Err(error)
                if error.kind() == jetstream::stream::RawMessageErrorKind::NoMessageFound =>
            {
                Ok(None)
            }
            Err(error) => Err(BusError::Unavailable(error.to_string())),
        }
    }
}
