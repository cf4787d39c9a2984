//! The ledger: the only writer of the event store.
//!
//! It pulls agency events from JetStream ([`ingest`]), applies each to its participant aggregate
//! and commits it to PostgreSQL, acks, and announces the verdict; it runs the timeline projector;
//! it answers status look-ups over NATS ([`status_responder`]); and it serves the read API
//! ([`timeline_service`]). [`start`] wires all of that from a [`LedgerConfig`] so that the binary
//! and the tests start the ledger the same way.

pub mod audit_service;
pub mod caseload_service;
pub mod clock;
pub mod config;
pub mod green_light_service;
pub mod green_light_view;
pub mod ingest;
pub mod read_folds;
pub mod reading;
pub mod reconstruct;
pub mod replay;
pub mod status_responder;
pub mod store_errors;
pub mod timeline_service;
pub mod verdict;

use std::net::SocketAddr;
use std::sync::Arc;

use bus::{IngestConsumer, StreamReader, Subjects};
use prometheus_client::registry::Registry;
use proto::v1::caseload_service_server::CaseloadServiceServer;
use proto::v1::green_light_service_server::GreenLightServiceServer;
use proto::v1::timeline_service_server::TimelineServiceServer;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use config::LedgerConfig;
pub use ingest::IngestCounters;

/// Why the ledger could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A configuration value is invalid.
    #[error("{0}")]
    Config(String),
    /// PostgreSQL is unreachable or migrations failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// NATS is unreachable or the stream could not be set up.
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    /// The gRPC port could not be bound.
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    /// gRPC reflection could not be built.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection_error::Error),
}

mod tonic_reflection_error {
    //! Re-export so `StartError` can name the reflection builder's error type.
    pub use rpc::server::ReflectionError as Error;
}

/// A running ledger.
pub struct RunningLedger {
    /// The gRPC address (the real port when 0 was configured).
    pub grpc_address: SocketAddr,
    /// Where metrics are served, if they are.
    pub metrics_address: Option<SocketAddr>,
    /// Ingest counters (this ledger's own handles, also in [`RunningLedger::metrics`]).
    pub counters: Arc<IngestCounters>,
    /// This ledger's metrics registry: what its endpoint serves.
    pub metrics: Arc<Registry>,
    tasks: JoinSet<()>,
    server: rpc::ServerHandle,
    shutdown: watch::Receiver<bool>,
    drain_timeout: std::time::Duration,
}

impl RunningLedger {
    /// This ledger's metrics as OpenMetrics text (what its endpoint serves).
    pub fn render_metrics(&self) -> String {
        telemetry::metrics::render(&self.metrics)
    }

    /// Waits until every part has stopped (after shutdown was requested), but no longer than
    /// `ingest.drain_timeout_ms` plus [`ingest::DRAIN_GRACE`] after it was requested: ingest
    /// hands back what it has not finished by then, and whatever else still runs (a projector
    /// batch waiting on an unavailable store, an open watch stream) is abandoned, so a wedged
    /// part cannot keep the process from exiting.
    pub async fn wait(mut self) {
        let deadline = ingest::drain_deadline(
            self.shutdown.clone(),
            self.drain_timeout + ingest::DRAIN_GRACE,
        );
        tokio::pin!(deadline);
        let mut expired = false;
        while !expired {
            tokio::select! {
                joined = self.tasks.join_next() => if joined.is_none() { break },
                () = &mut deadline => expired = true,
            }
        }
        if !expired {
            tokio::select! {
                result = &mut self.server.task => match result {
                    Ok(Ok(())) => return,
                    Ok(Err(error)) => return tracing::error!(%error, "gRPC server failed"),
                    Err(error) => return tracing::error!(%error, "gRPC server task failed"),
                },
                () = &mut deadline => {}
            }
        }
        tracing::error!(
            unfinished_tasks = self.tasks.len(),
            "the ledger did not stop within the drain limit; abandoning what still runs"
        );
        self.tasks.abort_all();
        self.server.task.abort();
    }
}

/// Connects, migrates, and starts ingest, projector, status responder and gRPC server. Everything
/// stops when `shutdown` turns true: ingest stops pulling and finishes (and acks) what it holds.
pub async fn start(
    config: LedgerConfig,
    clock: Arc<dyn clock::Clock>,
    shutdown: watch::Receiver<bool>,
) -> Result<RunningLedger, StartError> {
    config.validate().map_err(StartError::Config)?;
    let guard =
        rpc::access::Guard::from_config(&config.identity, None).map_err(StartError::Config)?;
    guard.keep_keys_current(config.identity.clone(), shutdown.clone());
    store::migrate_with(&config.store).await?;
    let pool = store::connect(&config.store).await?;
    let client = bus::connect(&config.bus, "ledger").await?;
    let consumers = IngestConsumer::open_all(client.clone(), &config.bus).await?;
    let stream_reader = StreamReader::open(client.clone(), &config.bus).await?;
    let subjects = Subjects::new(&config.bus.subject_prefix);

    let projector = store::TimelineProjector::new(pool.clone(), config.projector.clone());
    // This ledger's own registry and handles; nothing is counted in a process global, so two
    // ledgers in one process (the tests run whole stacks in one) count apart.
    let mut registry = Registry::default();
    let counters = Arc::new(IngestCounters::default());
    counters.register(&mut registry);
    let access_log = reading::AccessLog::registered(pool.clone(), &mut registry);
    let read_folds = Arc::new(reading::ReadFolds::registered(
        pool.clone(),
        config.timeline.read_fold_cache_bytes_max,
        &mut registry,
    ));
    guard.0.register_metrics(&mut registry);
    let registry = Arc::new(registry);
    let mut tasks = JoinSet::new();
    let committer = if config.ingest.commit_batch_size_max > 1 {
        let (committer, committing) = ingest::Committer::start(
            pool.clone(),
            config.ingest.commit_batch_size_max,
            std::time::Duration::from_millis(config.ingest.commit_linger_ms),
            config.ingest.lanes,
            counters.clone(),
        );
        // Ends once ingest has stopped and dropped the last handle.
        tasks.spawn(committing);
        Some(committer)
    } else {
        None
    };
    let applier = Arc::new(ingest::Applier {
        event_store: store::participant_event_store(pool.clone()),
        stream_reader,
        partition_orders: ingest::PartitionOrders::new(config.bus.partitions),
        pool: pool.clone(),
        client: client.clone(),
        subjects: subjects.clone(),
        stream_name: config.bus.stream_name.clone(),
        park_after_deliveries: config.bus.park_after_deliveries,
        config: config.ingest.clone(),
        clock: clock.clone(),
        projector_waker: projector.waker(),
        counters: counters.clone(),
        aggregate_cache: Arc::new(ingest::AggregateCache::new(
            config.ingest.aggregate_cache_bytes_max,
        )),
        committer,
    });

    let (share, share_receiver) =
        watch::channel(ingest::sharing::Share::everything(config.bus.partitions));
    tasks.spawn(ingest::sharing::run(
        client.clone(),
        subjects.ledger_presence(&config.bus.consumer_name),
        uuid::Uuid::new_v4(),
        config.bus.partitions,
        ingest::sharing::SharingTimings::of(&config.bus),
        counters.clone(),
        share,
        shutdown.clone(),
    ));
    tasks.spawn(ingest::run(
        consumers,
        applier,
        share_receiver,
        shutdown.clone(),
    ));
    tasks.spawn(status_responder::run(
        client.clone(),
        subjects,
        pool.clone(),
        clock.clone(),
        shutdown.clone(),
    ));
    let timeline = timeline_service::TimelineApi {
        pool: pool.clone(),
        folds: read_folds.clone(),
        access_log: access_log.clone(),
        config: config.timeline.clone(),
        projector_progress: projector.subscribe_progress(),
        clock: clock.clone(),
    };
    let audit = audit_service::AuditApi {
        pool: pool.clone(),
        folds: read_folds.clone(),
        access_log: access_log.clone(),
        config: config.audit.clone(),
        clock: clock.clone(),
    };
    let projected_changes = projector.subscribe_changes();
    let caseload_progress = projector.subscribe_progress();
    tasks.spawn(projector.run(shutdown.clone()));
    let green_light = green_light_service::GreenLightApi {
        pool: pool.clone(),
        folds: read_folds.clone(),
        access_log: access_log.clone(),
        clock: clock.clone(),
        projected_changes,
        lead_time_cell_count_min: config.reports.lead_time_cell_count_min,
        watches: green_light_service::WatchSlots::new(config.watch.clone()),
    };
    let caseload = caseload_service::CaseloadApi {
        pool: pool.clone(),
        folds: read_folds,
        access_log,
        clock,
        projector_progress: caseload_progress,
        read_your_writes_wait_max_ms: config.timeline.read_your_writes_wait_max_ms,
    };

    let (health, reflection) = rpc::server::health_and_reflection(&[
        "ips.v1.TimelineService",
        "ips.v1.CaseloadService",
        "ips.v1.GreenLightService",
        "ips.v1.AuditService",
    ])
    .await?;
    let router = config
        .server
        .builder(&config.identity)
        .map_err(StartError::Config)?
        .add_service(health)
        .add_service(reflection)
        .add_service(
            guard.wrap(
                TimelineServiceServer::new(timeline)
                    .max_decoding_message_size(config.server.request_size_max_bytes),
            ),
        )
        .add_service(
            guard.wrap(
                proto::v1::audit_service_server::AuditServiceServer::new(audit)
                    .max_decoding_message_size(config.server.request_size_max_bytes),
            ),
        )
        .add_service(
            guard.wrap(
                CaseloadServiceServer::new(caseload)
                    .max_decoding_message_size(config.server.request_size_max_bytes),
            ),
        )
        .add_service(
            guard.wrap(
                GreenLightServiceServer::new(green_light)
                    .max_decoding_message_size(config.server.request_size_max_bytes),
            ),
        );
    let mut metrics_address = None;
    if !config.metrics_listen_address.is_empty() {
        let metrics_listener =
            tokio::net::TcpListener::bind(&config.metrics_listen_address).await?;
        metrics_address = Some(metrics_listener.local_addr()?);
        tasks.spawn(telemetry::serve_metrics(
            metrics_listener,
            registry.clone(),
            telemetry::MetricsEndpointLimits::default(),
            shutdown.clone(),
        ));
    }
    let shutdown_for_wait = shutdown.clone();
    let listener = rpc::server::bind(&config.server).await?;
    let server = rpc::server::serve(router, listener, shutdown)?;
    tracing::info!(grpc_address = %server.local_address, ?metrics_address, "ledger started");
    Ok(RunningLedger {
        grpc_address: server.local_address,
        metrics_address,
        counters,
        metrics: registry,
        tasks,
        server,
        shutdown: shutdown_for_wait,
        drain_timeout: std::time::Duration::from_millis(config.ingest.drain_timeout_ms),
    })
}
