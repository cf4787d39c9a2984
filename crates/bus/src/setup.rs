//! Connecting, and creating the stream and the ledger's consumer with explicit limits.
//!
//! Creation is idempotent: an existing stream or consumer with the same settings is reused. The
//! stream uses file storage and `discard: new`, so a full stream refuses publishes (the agency
//! sees an error) rather than silently dropping old, unapplied events.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use crate::config::BusConfig;
use crate::subjects::Subjects;
use crate::BusError;

/// Connects to NATS as `connection_name` (shown in the server's connection list).
pub async fn connect(
    config: &BusConfig,
    connection_name: &str,
) -> Result<async_nats::Client, BusError> {
    connect_with(config, connection_name, async_nats::ConnectOptions::new()).await
}

/// Connects as `agency`'s service: replies (PubAcks, status answers) come to the agency's own
/// inbox prefix, the only one its NATS user may subscribe to.
pub async fn connect_as_agency(
    config: &BusConfig,
    agency: domain::Agency,
) -> Result<async_nats::Client, BusError> {
    let subjects = crate::Subjects::new(&config.subject_prefix);
    let options =
        async_nats::ConnectOptions::new().custom_inbox_prefix(subjects.inbox_prefix(agency));
    connect_with(config, agency.token(), options).await
}

async fn connect_with(
    config: &BusConfig,
    connection_name: &str,
    options: async_nats::ConnectOptions,
) -> Result<async_nats::Client, BusError> {
    let mut options = options
        .name(connection_name)
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect();
    if let (Some(user), Some(password)) = (&config.nats_user, &config.nats_password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    // retry_on_initial_connect makes connect return at once; wait for the first connection so
    // a wrong URL fails start-up instead of every later request.
    let urls: Vec<&str> = config.nats_urls().collect();
    let client = options
        .connect(urls.as_slice())
        .await
        .map_err(|error| BusError::Unavailable(error.to_string()))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.connection_state() != async_nats::connection::State::Connected {
        if tokio::time::Instant::now() > deadline {
            return Err(BusError::Unavailable(format!(
                "could not reach {} within 10 s",
                config.nats_url
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(client)
}

/// The priority group every ledger pulls each partition's consumer in; the server pins one
/// ledger's pull stream per partition.
pub const LEDGER_PRIORITY_GROUP: &str = "ledger";

/// The stream's configuration, derived from the bus config.
pub fn stream_config(config: &BusConfig) -> stream::Config {
    let (source, destination) =
        Subjects::new(&config.subject_prefix).partition_transform(config.partitions);
    stream::Config {
        subject_transform: Some(stream::SubjectTransform {
            source,
            destination,
        }),
        name: config.stream_name.clone(),
        subjects: Subjects::new(&config.subject_prefix).stream_subjects(),
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        duplicate_window: Duration::from_millis(config.duplicate_window_ms),
        max_age: Duration::from_millis(config.stream_max_age_ms),
        max_bytes: config.stream_max_bytes,
        max_message_size: i32::try_from(config.message_size_max_bytes + 4096).unwrap_or(i32::MAX),
        num_replicas: config.stream_replicas,
        ..Default::default()
    }
}

/// Creates the agency-event stream, or checks that the existing one captures the right subjects.
pub async fn ensure_stream(
    jetstream: &jetstream::Context,
    config: &BusConfig,
) -> Result<stream::Stream, BusError> {
    let wanted = stream_config(config);
    let mut stream = jetstream
        .get_or_create_stream(wanted.clone())
        .await
        .map_err(|error| BusError::Setup(format!("stream {}: {error}", config.stream_name)))?;
    let info = stream
        .info()
        .await
        .map_err(|error| BusError::Setup(error.to_string()))?;
    let mut existing_subjects = info.config.subjects.clone();
    let mut wanted_subjects = wanted.subjects.clone();
    existing_subjects.sort();
    wanted_subjects.sort();
    if existing_subjects != wanted_subjects {
        return Err(BusError::Setup(format!(
            "stream {} exists with subjects {:?}, expected {:?}",
            config.stream_name, existing_subjects, wanted_subjects
        )));
    }
    // Fewer copies than configured would be a durability promise silently not kept; more would
    // be harmless but is still not what the operator asked for. Changing it is an operator's
    // decision (`nats stream edit --replicas`), not something a service start does quietly.
    // Another partition count would move participants between partitions (and so between
    // ledgers) mid-stream; only a migration changes it (BusConfig::partitions).
    if info.config.subject_transform != wanted.subject_transform {
        return Err(BusError::Setup(format!(
            "stream {} exists with subject transform {:?}, expected {:?}: bus.partitions is \
             changed only by a migration",
            config.stream_name, info.config.subject_transform, wanted.subject_transform
        )));
    }
    if info.config.num_replicas != config.stream_replicas {
        return Err(BusError::Setup(format!(
            "stream {} exists with {} replicas, bus.stream_replicas is {}",
            config.stream_name, info.config.num_replicas, config.stream_replicas
        )));
    }
    Ok(stream)
}

/// The durable consumer name of `partition`.
pub fn partition_consumer_name(config: &BusConfig, partition: u32) -> String {
    format!("{}-p{partition}", config.consumer_name)
}

/// The durable pull consumer of one partition: pinned, so at any moment one ledger's pull stream
/// receives its messages.
pub fn consumer_config(config: &BusConfig, partition: u32) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(partition_consumer_name(config, partition)),
        description: Some(format!(
            "ledger ingest of partition {partition}: applies agency events to participant aggregates"
        )),
        filter_subject: Subjects::new(&config.subject_prefix).partition_filter(partition),
        priority_policy: consumer::PriorityPolicy::PinnedClient,
        priority_groups: vec![LEDGER_PRIORITY_GROUP.to_owned()],
        priority_timeout: Duration::from_millis(config.pinned_client_timeout_ms),
        deliver_policy: consumer::DeliverPolicy::All,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_millis(config.ack_wait_ms),
        max_deliver: config.max_deliver,
        max_ack_pending: config.max_ack_pending,
        max_batch: i64::try_from(config.fetch_batch_size_max).unwrap_or(i64::MAX),
        ..Default::default()
    }
}

/// Creates (or reuses) the durable consumer of `partition`.
pub async fn ensure_consumer(
    stream: &stream::Stream,
    config: &BusConfig,
    partition: u32,
) -> Result<consumer::Consumer<consumer::pull::Config>, BusError> {
    let name = partition_consumer_name(config, partition);
    stream
        .get_or_create_consumer(&name, consumer_config(config, partition))
        .await
        .map_err(|error| BusError::Setup(format!("consumer {name}: {error}")))
}
