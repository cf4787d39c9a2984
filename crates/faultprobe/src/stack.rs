//! The probe's own system: a PostgreSQL (`testkit::PrivatePostgres`, so the machine's server is
//! never restarted), a three-node NATS cluster (`testkit::NatsCluster`, an R3 stream), the
//! ledgers and the four agency services as processes, all on the test PKI.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::processes::{wait_listening, ServiceProcess};
use testkit::free_ports;

/// The agency services, in the order [`ProbeStack::agencies`] holds them.
pub const AGENCY_SERVICES: [&str; 4] = [
    "municipality",
    "forsakringskassan",
    "arbetsformedlingen",
    "psychiatry",
];

/// How long a write waits for the ledger's verdict before answering PENDING: short, so writes
/// go on (as PENDING) while the ledgers cannot apply.
const VERDICT_WAIT_MS: u64 = 2_000;

/// Everything the probe runs.
pub struct ProbeStack {
    /// The private PostgreSQL.
    pub postgres: testkit::PrivatePostgres,
    /// The probe's database on it.
    pub database: testkit::TestDatabase,
    /// The NATS cluster.
    pub cluster: testkit::NatsCluster,
    /// The bus settings every process shares.
    pub bus_config: bus::BusConfig,
    /// The ledgers.
    pub ledgers: Vec<Mutex<ServiceProcess>>,
    /// The agency services ([`AGENCY_SERVICES`] order).
    pub agencies: Vec<Mutex<ServiceProcess>>,
    /// Where the services' logs go.
    pub log_directory: PathBuf,
}

/// Every bus setting as `IPS_BUS__*` variables, so all processes agree on the stream.
fn bus_environment(config: &bus::BusConfig) -> Vec<(String, String)> {
    [
        ("NATS_URL", config.nats_url.clone()),
        ("STREAM_NAME", config.stream_name.clone()),
        ("SUBJECT_PREFIX", config.subject_prefix.clone()),
        (
            "DUPLICATE_WINDOW_MS",
            config.duplicate_window_ms.to_string(),
        ),
        ("STREAM_MAX_AGE_MS", config.stream_max_age_ms.to_string()),
        ("STREAM_MAX_BYTES", config.stream_max_bytes.to_string()),
        ("STREAM_REPLICAS", config.stream_replicas.to_string()),
        (
            "PUBLISH_ACK_TIMEOUT_MS",
            config.publish_ack_timeout_ms.to_string(),
        ),
        (
            "PUBLISH_ATTEMPTS_MAX",
            config.publish_attempts_max.to_string(),
        ),
        ("PARTITIONS", config.partitions.to_string()),
        ("CONSUMER_NAME", config.consumer_name.clone()),
        (
            "PINNED_CLIENT_TIMEOUT_MS",
            config.pinned_client_timeout_ms.to_string(),
        ),
        ("ACK_WAIT_MS", config.ack_wait_ms.to_string()),
        ("MAX_DELIVER", config.max_deliver.to_string()),
        (
            "PARK_AFTER_DELIVERIES",
            config.park_after_deliveries.to_string(),
        ),
        ("FETCH_WAIT_MS", config.fetch_wait_ms.to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (format!("IPS_BUS__{key}"), value))
    .collect()
}

fn log_level() -> (String, String) {
    (
        "IPS_LOG".into(),
        std::env::var("IPS_LOG").unwrap_or_else(|_| "warn".into()),
    )
}

impl ProbeStack {
    /// Starts PostgreSQL, the cluster, `ledgers` ledgers and the four agency services from the
    /// binaries in `binaries`, with `pinned_client_timeout_ms` as the partitions' failover time.
    pub async fn start(
        binaries: &std::path::Path,
        ledgers: usize,
        pinned_client_timeout_ms: u64,
        log_directory: PathBuf,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&log_directory)?;
        let postgres = testkit::PrivatePostgres::start().await?;
        let database = testkit::TestDatabase::create_on(&postgres.admin_url()).await?;
        let cluster = testkit::NatsCluster::start().await?;
        let bus_config = bus::BusConfig {
            nats_url: cluster.url(),
            stream_replicas: testkit::NATS_CLUSTER_NODES,
            pinned_client_timeout_ms,
            ack_wait_ms: 3_000,
            // Waiting out an outage or a pause is not a poison message.
            park_after_deliveries: 20,
            max_deliver: 100,
            ..testkit::unique_bus_config()
        };
        // The schema and the stream once, before the ledgers race to pull.
        let pool = database.pool().await?;
        store::migrate(&pool).await?;
        pool.close().await;
        let client = bus::connect(&bus_config, "fault-probe-setup").await?;
        bus::IngestConsumer::open_all(client, &bus_config).await?;

        let ports = free_ports(ledgers + AGENCY_SERVICES.len())?;
        let common = |port: u16| {
            let mut environment = bus_environment(&bus_config);
            environment.extend(
                testkit::identity_environment()
                    .into_iter()
                    .map(|(key, value)| (key.to_owned(), value)),
            );
            environment.push(log_level());
            environment.push((
                "IPS_SERVER__LISTEN_ADDRESS".into(),
                format!("127.0.0.1:{port}"),
            ));
            environment
        };
        let mut ledger_processes = Vec::with_capacity(ledgers);
        for (index, port) in ports[..ledgers].iter().enumerate() {
            let mut environment = common(*port);
            environment.extend(
                [
                    ("IPS_STORE__DATABASE_URL", database.service_url()),
                    ("IPS_STORE__MIGRATION_DATABASE_URL", database.url.clone()),
                    ("IPS_STORE__POOL_CONNECTIONS_MAX", "8".into()),
                    ("IPS_STORE__POOL_ACQUIRE_TIMEOUT_MS", "1000".into()),
                    ("IPS_INGEST__STORE_RETRY_BACKOFF_MS", "50".into()),
                    ("IPS_INGEST__STORE_RETRY_BACKOFF_MAX_MS", "1000".into()),
                    ("IPS_PROJECTOR__REPOLL_INTERVAL_MS", "50".into()),
                    ("IPS_METRICS_LISTEN_ADDRESS", "127.0.0.1:0".into()),
                ]
                .map(|(key, value)| (key.to_owned(), value)),
            );
            ledger_processes.push(ServiceProcess::new(
                &format!("ledger-{index}"),
                binaries.join("probe-ledger"),
                environment,
                &log_directory,
                *port,
            ));
        }
        let pki = &testkit::test_pki().directory;
        let municipality = domain::Agency::Municipality.token();
        let mut agency_processes = Vec::with_capacity(AGENCY_SERVICES.len());
        for (service, port) in AGENCY_SERVICES.iter().zip(&ports[ledgers..]) {
            let mut environment = common(*port);
            environment.push((
                "IPS_SUBMIT__VERDICT_WAIT_MS".into(),
                VERDICT_WAIT_MS.to_string(),
            ));
            if *service == "municipality" {
                environment.extend([
                    (
                        "IPS_PLACES__LEDGER_ADDRESS".into(),
                        format!("https://127.0.0.1:{}", ports[0]),
                    ),
                    // The others, asked in order while ledger 0 is down or paused.
                    (
                        "IPS_PLACES__LEDGER_FALLBACK_ADDRESSES".into(),
                        format!(
                            "[{}]",
                            ports[1..ledgers]
                                .iter()
                                .map(|port| format!("\"https://127.0.0.1:{port}\""))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                    (
                        "IPS_PLACES__CLIENT_CERTIFICATE_PATH".into(),
                        pki.join(rpc::identity::pki_files::client_certificate(municipality))
                            .to_string_lossy()
                            .into_owned(),
                    ),
                    (
                        "IPS_PLACES__CLIENT_PRIVATE_KEY_PATH".into(),
                        pki.join(rpc::identity::pki_files::client_private_key(municipality))
                            .to_string_lossy()
                            .into_owned(),
                    ),
                ]);
            }
            agency_processes.push(ServiceProcess::new(
                service,
                binaries.join(format!("probe-{service}")),
                environment,
                &log_directory,
                *port,
            ));
        }
        let stack = Self {
            postgres,
            database,
            cluster,
            bus_config,
            ledgers: ledger_processes.into_iter().map(Mutex::new).collect(),
            agencies: agency_processes.into_iter().map(Mutex::new).collect(),
            log_directory,
        };
        for process in stack.ledgers.iter().chain(&stack.agencies) {
            lock(process).spawn()?;
        }
        for process in stack.ledgers.iter().chain(&stack.agencies) {
            Self::wait_started(process).await?;
        }
        Ok(stack)
    }

    /// Waits until `process` listens (failing with its log if it died).
    pub async fn wait_started(process: &Mutex<ServiceProcess>) -> anyhow::Result<()> {
        let (name, port) = {
            let process = lock(process);
            (process.name.clone(), process.port)
        };
        wait_listening(&name, port, || {
            let mut process = lock(process);
            process
                .exited()
                .map(|status| (status, process.log_tail(40)))
        })
        .await
    }

    /// The address of ledger `index`.
    pub fn ledger_address(&self, index: usize) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], lock(&self.ledgers[index]).port))
    }

    /// The address of agency service `index` ([`AGENCY_SERVICES`] order).
    pub fn agency_address(&self, index: usize) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], lock(&self.agencies[index]).port))
    }

    /// Any service that exited by itself (a crash the probe did not cause), with its log.
    pub fn crashed_services(&self) -> Vec<String> {
        self.ledgers
            .iter()
            .chain(&self.agencies)
            .filter_map(|process| {
                let mut process = lock(process);
                process.exited().map(|status| {
                    format!(
                        "{} exited by itself ({status}); its log ends:\n{}",
                        process.name,
                        process.log_tail(20)
                    )
                })
            })
            .collect()
    }

    /// Whether the stream has a leader and every replica is current and online, asked of the
    /// cluster with a short bound.
    pub async fn stream_settled(&self) -> bool {
        let ask = async {
            let urls: Vec<String> = self.bus_config.nats_urls().map(str::to_owned).collect();
            let client = async_nats::connect(urls).await?;
            let jetstream = async_nats::jetstream::new(client);
            let mut stream = jetstream.get_stream(&self.bus_config.stream_name).await?;
            let info = stream.info().await?;
            let settled = info.cluster.as_ref().is_some_and(|cluster| {
                cluster.leader.is_some()
                    && cluster.replicas.len() == testkit::NATS_CLUSTER_NODES - 1
                    && cluster
                        .replicas
                        .iter()
                        .all(|replica| replica.current && !replica.offline)
            });
            anyhow::Ok(settled)
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(3), ask).await,
            Ok(Ok(true))
        )
    }

    /// What the partition consumers still hold: messages not yet delivered plus delivered but
    /// not acknowledged, summed over partitions (`None` if the cluster did not answer).
    pub async fn consumers_outstanding(&self) -> Option<u64> {
        let ask = async {
            let urls: Vec<String> = self.bus_config.nats_urls().map(str::to_owned).collect();
            let client = async_nats::connect(urls).await?;
            let jetstream = async_nats::jetstream::new(client);
            let stream = jetstream.get_stream(&self.bus_config.stream_name).await?;
            let mut outstanding = 0u64;
            for partition in 0..self.bus_config.partitions {
                let name = bus::setup::partition_consumer_name(&self.bus_config, partition);
                let mut consumer: async_nats::jetstream::consumer::PullConsumer = stream
                    .get_consumer(&name)
                    .await
                    .map_err(|error| anyhow::anyhow!("{error}"))?;
                let info = consumer.info().await?;
                outstanding += info.num_pending + info.num_ack_pending as u64;
            }
            anyhow::Ok(outstanding)
        };
        tokio::time::timeout(Duration::from_secs(5), ask)
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// Locks a process, whatever a panicking holder left (a process handle stays usable).
pub fn lock(process: &Mutex<ServiceProcess>) -> std::sync::MutexGuard<'_, ServiceProcess> {
    process
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Moves the process out of its slot (to stop it without holding the lock across the wait).
pub fn take(process: &Mutex<ServiceProcess>) -> ServiceProcess {
    let mut slot = lock(process);
    let name = slot.name.clone();
    std::mem::replace(&mut *slot, ServiceProcess::stopped(&name))
}
