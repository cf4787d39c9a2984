//! Test harness: real PostgreSQL and real NATS, isolated per test.
//!
//! Every test gets its own database (`ips_t_<time>_<random>`) and its own stream, subject prefix
//! and consumer, so tests run in parallel and survive a dirty machine: leftovers from crashed
//! runs never collide with a new run, and ones older than a few hours are swept at start.
//! Services start on port 0 through the same `start` functions the binaries use.
//!
//! Connection defaults match the dev machines and CI; override with `IPS_TEST_DATABASE_URL`
//! (an admin connection, used to create databases) and `IPS_TEST_NATS_URL` (default: the
//! project's own nats-server that `deploy/setup.sh` starts on 4250, with
//! `sync_interval: always`). Tests that need a server or a cluster of their own start one from
//! the pinned binary (`nats.rs`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::{Agency, Role};
use proto::v1::arbetsformedlingen_service_client::ArbetsformedlingenServiceClient;
use proto::v1::forsakringskassan_service_client::ForsakringskassanServiceClient;
use proto::v1::municipality_service_client::MunicipalityServiceClient;
use proto::v1::psychiatry_service_client::PsychiatryServiceClient;
use proto::v1::timeline_service_client::TimelineServiceClient;
use sqlx::Connection;
use tokio::sync::watch;
use tonic::transport::Channel;

mod nats;
mod postgres;
pub use nats::{
    nats_server_binary, repository_root, FsyncPolicy, NatsCluster, NatsServer, NatsWithUsers,
    NATS_CLUSTER_NODES, NATS_USERS, PINNED_NATS_SERVER_VERSION,
};
pub use postgres::PrivatePostgres;

/// How old a leftover test database or stream must be before a new run sweeps it.
const LEFTOVER_AGE_SWEEP_SECONDS: i64 = 6 * 60 * 60;

/// The admin database URL for tests.
pub fn admin_database_url() -> String {
    std::env::var("IPS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The NATS URL for tests.
pub fn nats_url() -> String {
    std::env::var("IPS_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4250".into())
}

fn unique_suffix() -> String {
    let seconds = chrono::Utc::now().timestamp();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{seconds}_{}", &random[..12])
}

/// A fresh database, created for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// A URL connecting to it.
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database (migrations are the service's job, as in production).
    pub async fn create() -> anyhow::Result<Self> {
        Self::create_on(&admin_database_url()).await
    }

    /// Creates an empty database on the server of `admin_url` (a [`PrivatePostgres`]'s).
    pub async fn create_on(admin_url: &str) -> anyhow::Result<Self> {
        let admin_url = admin_url.to_owned();
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("cannot reach PostgreSQL at {admin_url}"))?;
        sweep_leftover_databases(&mut admin).await;
        let name = format!("ips_t_{}", unique_suffix());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base)
            .to_owned();
        Ok(Self {
            url: format!("{base}/{name}"),
            name,
        })
    }

    /// A URL connecting to it as the services' role (`ips_service`, created by the migrations).
    pub fn service_url(&self) -> String {
        let (scheme, rest) = self
            .url
            .split_once("://")
            .unwrap_or(("postgres", &self.url));
        let host_and_database = rest.split_once('@').map_or(rest, |(_, after)| after);
        format!("{scheme}://ips_service@{host_and_database}")
    }

    /// A pool on this database, for assertions.
    pub async fn pool(&self) -> anyhow::Result<sqlx::PgPool> {
        Ok(sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&self.url)
            .await?)
    }

    /// Drops the database (best effort; leftovers are swept by later runs).
    pub async fn drop_database(&self) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_database_url()).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .await;
        }
    }
}

async fn sweep_leftover_databases(admin: &mut sqlx::PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'ips\\_t\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    for name in names {
        let created = name
            .split('_')
            .nth(2)
            .and_then(|seconds| seconds.parse::<i64>().ok());
        if created.is_some_and(|created| now - created > LEFTOVER_AGE_SWEEP_SECONDS) {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut *admin)
                .await;
        }
    }
}

/// A submission as coach-17 of the Hudiksvall IPS unit would send it, for tests that publish
/// straight onto the stream or into the store (the category follows the event).
pub fn coach_submission(
    participant_id: domain::ParticipantId,
    body: domain::EventBody,
) -> domain::Submission {
    domain::Submission {
        envelope: domain::Envelope {
            event_id: domain::EventId(uuid::Uuid::now_v7()),
            participant_id,
            agency: Agency::Municipality,
            actor: domain::Actor {
                person_id: domain::PersonId("coach-17".into()),
                role: Role::Coach,
                unit: domain::UnitId("hudiksvall-ips".into()),
            },
            occurred_at: chrono::Utc::now(),
            correlation_id: None,
            causation_id: None,
            schema_version: domain::CURRENT_SCHEMA_VERSION,
            data_category: body.data_category(Agency::Municipality),
            retention_class: domain::RetentionClass::SocialServicesFile,
        },
        body,
    }
}

/// Bus settings unique to one test: stream, subject prefix, short timings.
pub fn unique_bus_config() -> bus::BusConfig {
    let suffix = unique_suffix();
    bus::BusConfig {
        nats_url: nats_url(),
        stream_name: format!("IPS_T_{suffix}"),
        subject_prefix: format!("t{suffix}.ips.v1"),
        // Leftover test streams hold little and age out.
        stream_max_age_ms: 6 * 60 * 60 * 1000,
        duplicate_window_ms: 60 * 60 * 1000,
        stream_max_bytes: 256 * 1024 * 1024,
        ack_wait_ms: 3_000,
        fetch_wait_ms: 200,
        ..bus::BusConfig::default()
    }
}

/// Deletes a test's stream, and any leftover test streams older than a few hours.
pub async fn delete_streams(bus_config: &bus::BusConfig) {
    let urls: Vec<&str> = bus_config.nats_urls().collect();
    let Ok(client) = async_nats::connect(urls.as_slice()).await else {
        return;
    };
    let jetstream = async_nats::jetstream::new(client);
    let _ = jetstream.delete_stream(&bus_config.stream_name).await;
    let mut names = jetstream.stream_names();
    let now = chrono::Utc::now().timestamp();
    let mut stale = Vec::new();
    while let Some(Ok(name)) = futures::StreamExt::next(&mut names).await {
        let created = name
            .strip_prefix("IPS_T_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|seconds| seconds.parse::<i64>().ok());
        if created.is_some_and(|created| now - created > LEFTOVER_AGE_SWEEP_SECONDS) {
            stale.push(name);
        }
    }
    for name in stale {
        let _ = jetstream.delete_stream(&name).await;
    }
}

/// Ledger config for a test: port 0, the test's database and bus.
pub fn ledger_config(database: &TestDatabase, bus_config: &bus::BusConfig) -> ledger::LedgerConfig {
    let mut config = ledger::LedgerConfig::with_defaults();
    config.server.listen_address = "127.0.0.1:0".into();
    config.metrics_listen_address = "127.0.0.1:0".into();
    config.bus = bus_config.clone();
    config.store.database_url = database.service_url();
    config.store.migration_database_url = database.url.clone();
    config.store.pool_connections_max = 8;
    config.projector.idle_poll_ms = 50;
    config.ingest.store_retry_backoff_max_ms = 1_000;
    config.identity = identity_config();
    config
}

/// An agency service's config for a test: port 0, the test's bus.
pub fn agency_config(bus_config: &bus::BusConfig) -> rpc::agency::AgencyServiceConfig {
    let mut config = rpc::agency::AgencyServiceConfig::listening_on("127.0.0.1:0");
    config.bus = bus_config.clone();
    config.identity = identity_config();
    config
}

/// What a test may change about its stack.
#[derive(Clone)]
pub struct StackOptions {
    /// The coach caseload limit (the product default is 20).
    pub coach_active_participants_max: u32,
    /// The ledger's clock (the system clock unless a test needs to move time).
    pub ledger_clock: Arc<dyn ledger::clock::Clock>,
    /// The four agency services' clock: fills a write's missing `occurred_at` (the system
    /// clock unless a test needs to move time).
    pub agency_clock: Arc<dyn rpc::clock::Clock>,
    /// Run on this nats-server with per-agency users (`deploy/nats/agency-users.conf`)
    /// instead of the shared open one.
    pub nats_with_users: Option<Arc<NatsWithUsers>>,
    /// Run on these servers (one URL, or a cluster's comma-separated list) instead of the
    /// shared one, with a stream of `stream_replicas` copies.
    pub nats_url: Option<String>,
    /// The stream's replicas (`bus.stream_replicas`): 3 on a [`NatsCluster`].
    pub stream_replicas: usize,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            coach_active_participants_max: 20,
            ledger_clock: Arc::new(ledger::clock::SystemClock),
            agency_clock: Arc::new(rpc::clock::SystemClock),
            nats_with_users: None,
            nats_url: None,
            stream_replicas: 1,
        }
    }
}

/// A whole stack for one test: database, stream, ledger and the four agency services, in-process.
pub struct Stack {
    /// The test's database.
    pub database: TestDatabase,
    /// The test's bus settings.
    pub bus_config: bus::BusConfig,
    /// The ledger's gRPC address.
    pub ledger_address: std::net::SocketAddr,
    /// The municipality service's gRPC address.
    pub municipality_address: std::net::SocketAddr,
    /// Försäkringskassan's gRPC address.
    pub forsakringskassan_address: std::net::SocketAddr,
    /// Arbetsförmedlingen's gRPC address.
    pub arbetsformedlingen_address: std::net::SocketAddr,
    /// Psychiatry's gRPC address.
    pub psychiatry_address: std::net::SocketAddr,
    /// Ledger ingest counters.
    pub ledger_counters: Arc<ledger::IngestCounters>,
    /// The ledger's metrics address.
    pub ledger_metrics_address: Option<std::net::SocketAddr>,
    shutdown: watch::Sender<bool>,
    ledger_shutdown: watch::Sender<bool>,
    ledger_clock: Arc<dyn ledger::clock::Clock>,
    ledger: Option<ledger::RunningLedger>,
    agencies: Vec<rpc::agency::RunningService>,
}

impl Stack {
    /// Starts everything on fresh resources.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(StackOptions::default()).await
    }

    /// Starts everything on fresh resources, with `options`.
    pub async fn start_with(options: StackOptions) -> anyhow::Result<Self> {
        telemetry::init_logging_with_default("test", "warn");
        let database = TestDatabase::create().await?;
        let mut bus_config = unique_bus_config();
        if let Some(url) = &options.nats_url {
            bus_config.nats_url = url.clone();
        }
        bus_config.stream_replicas = options.stream_replicas;
        if let Some(nats) = &options.nats_with_users {
            // The users' permissions name the production prefix; this server is the test's own.
            bus_config.nats_url = nats.url.clone();
            bus_config.subject_prefix = "ips.v1".into();
        }
        let as_user = |user: &str| {
            let mut config = bus_config.clone();
            if let Some(nats) = &options.nats_with_users {
                config.nats_user = Some(user.to_owned());
                config.nats_password = Some(nats.password(user));
            }
            config
        };
        let (shutdown, receiver) = watch::channel(false);
        let (ledger_shutdown, ledger_receiver) = watch::channel(false);
        let ledger = ledger::start(
            ledger_config(&database, &as_user("ledger")),
            options.ledger_clock.clone(),
            ledger_receiver,
        )
        .await?;
        let municipality_config = municipality::MunicipalityConfig {
            server: rpc::ServerConfig {
                listen_address: "127.0.0.1:0".into(),
                ..rpc::ServerConfig::default()
            },
            bus: as_user("municipality"),
            places: municipality::places::PlacesConfig {
                ledger_address: format!("https://{}", ledger.grpc_address),
                coach_active_participants_max: options.coach_active_participants_max,
                client_certificate_path: test_pki()
                    .directory
                    .join(rpc::identity::pki_files::client_certificate(
                        Agency::Municipality.token(),
                    ))
                    .to_string_lossy()
                    .into_owned(),
                client_private_key_path: test_pki()
                    .directory
                    .join(rpc::identity::pki_files::client_private_key(
                        Agency::Municipality.token(),
                    ))
                    .to_string_lossy()
                    .into_owned(),
                ..Default::default()
            },
            identity: identity_config(),
            ..Default::default()
        };
        let clock = &options.agency_clock;
        let municipality =
            municipality::start(municipality_config, clock.clone(), receiver.clone()).await?;
        let forsakringskassan = forsakringskassan::start(
            agency_config(&as_user("fk")),
            clock.clone(),
            receiver.clone(),
        )
        .await?;
        let arbetsformedlingen = arbetsformedlingen::start(
            agency_config(&as_user("af")),
            clock.clone(),
            receiver.clone(),
        )
        .await?;
        let psychiatry = psychiatry::start(
            agency_config(&as_user("psychiatry")),
            clock.clone(),
            receiver,
        )
        .await?;
        Ok(Self {
            database,
            bus_config,
            ledger_address: ledger.grpc_address,
            municipality_address: municipality.grpc_address,
            forsakringskassan_address: forsakringskassan.grpc_address,
            arbetsformedlingen_address: arbetsformedlingen.grpc_address,
            psychiatry_address: psychiatry.grpc_address,
            ledger_counters: ledger.counters.clone(),
            ledger_metrics_address: ledger.metrics_address,
            shutdown,
            ledger_shutdown,
            ledger_clock: options.ledger_clock.clone(),
            ledger: Some(ledger),
            agencies: vec![
                municipality,
                forsakringskassan,
                arbetsformedlingen,
                psychiatry,
            ],
        })
    }

    /// A client of the municipality service.
    pub async fn municipality(&self) -> anyhow::Result<MunicipalityServiceClient<Channel>> {
        Ok(MunicipalityServiceClient::new(
            channel(self.municipality_address).await?,
        ))
    }

    /// A client of Försäkringskassan's service.
    pub async fn forsakringskassan(
        &self,
    ) -> anyhow::Result<ForsakringskassanServiceClient<Channel>> {
        Ok(ForsakringskassanServiceClient::new(
            channel_as(self.forsakringskassan_address, Agency::Forsakringskassan).await?,
        ))
    }

    /// A client of Arbetsförmedlingen's service.
    pub async fn arbetsformedlingen(
        &self,
    ) -> anyhow::Result<ArbetsformedlingenServiceClient<Channel>> {
        Ok(ArbetsformedlingenServiceClient::new(
            channel_as(self.arbetsformedlingen_address, Agency::Arbetsformedlingen).await?,
        ))
    }

    /// A client of psychiatry's service.
    pub async fn psychiatry(&self) -> anyhow::Result<PsychiatryServiceClient<Channel>> {
        Ok(PsychiatryServiceClient::new(
            channel_as(self.psychiatry_address, Agency::Psychiatry).await?,
        ))
    }

    /// A client of the ledger's caseload service.
    pub async fn caseload(
        &self,
    ) -> anyhow::Result<proto::v1::caseload_service_client::CaseloadServiceClient<Channel>> {
        Ok(
            proto::v1::caseload_service_client::CaseloadServiceClient::new(
                channel(self.ledger_address).await?,
            ),
        )
    }

    /// A client of the ledger's green-light service, as the municipality.
    pub async fn green_light(
        &self,
    ) -> anyhow::Result<proto::v1::green_light_service_client::GreenLightServiceClient<Channel>>
    {
        self.green_light_as(Agency::Municipality).await
    }

    /// A client of the ledger's green-light service, as `agency`.
    pub async fn green_light_as(
        &self,
        agency: Agency,
    ) -> anyhow::Result<proto::v1::green_light_service_client::GreenLightServiceClient<Channel>>
    {
        Ok(
            proto::v1::green_light_service_client::GreenLightServiceClient::new(
                channel_as(self.ledger_address, agency).await?,
            ),
        )
    }

    /// A client of the ledger's timeline service, as the municipality.
    pub async fn timeline(&self) -> anyhow::Result<TimelineServiceClient<Channel>> {
        self.timeline_as(Agency::Municipality).await
    }

    /// A client of the ledger's timeline service, as `agency`.
    pub async fn timeline_as(
        &self,
        agency: Agency,
    ) -> anyhow::Result<TimelineServiceClient<Channel>> {
        Ok(TimelineServiceClient::new(
            channel_as(self.ledger_address, agency).await?,
        ))
    }

    /// A client of the ledger's audit service, as `agency`.
    pub async fn audit_as(
        &self,
        agency: Agency,
    ) -> anyhow::Result<proto::v1::audit_service_client::AuditServiceClient<Channel>> {
        Ok(proto::v1::audit_service_client::AuditServiceClient::new(
            channel_as(self.ledger_address, agency).await?,
        ))
    }

    /// How many entries the event store holds, of one event type or of all.
    pub async fn stored_events(&self, event_type: Option<&str>) -> anyhow::Result<i64> {
        let pool = self.database.pool().await?;
        let count = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE $1::text IS NULL OR event_type = $1",
        )
        .bind(event_type)
        .fetch_one(&pool)
        .await?;
        pool.close().await;
        Ok(count)
    }

    /// Stops the ledger gracefully and starts it again on the same port, database and stream,
    /// as an operator's restart would.
    pub async fn restart_ledger(&mut self) -> anyhow::Result<()> {
        let _ = self.ledger_shutdown.send(true);
        if let Some(ledger) = self.ledger.take() {
            ledger.wait().await;
        }
        let (ledger_shutdown, ledger_receiver) = watch::channel(false);
        let mut config = ledger_config(&self.database, &self.bus_config);
        config.server.listen_address = self.ledger_address.to_string();
        let ledger = ledger::start(config, self.ledger_clock.clone(), ledger_receiver).await?;
        self.ledger_counters = ledger.counters.clone();
        self.ledger_metrics_address = ledger.metrics_address;
        self.ledger = Some(ledger);
        self.ledger_shutdown = ledger_shutdown;
        Ok(())
    }

    /// Stops the services gracefully and removes the test's database and stream.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        let _ = self.ledger_shutdown.send(true);
        for agency in self.agencies.drain(..) {
            agency.wait().await;
        }
        if let Some(ledger) = self.ledger.take() {
            ledger.wait().await;
        }
        self.database.drop_database().await;
        delete_streams(&self.bus_config).await;
    }
}

/// The test process's PKI: generated once, written to a directory of its own.
pub struct TestPki {
    /// Where the files are (laid out as `deploy/dev-pki.sh` writes them).
    pub directory: std::path::PathBuf,
    /// The material itself.
    pub material: devpki::DevelopmentPki,
    signers: std::collections::BTreeMap<Agency, rpc::identity::TokenSigner>,
}

/// The PKI every service and client of this test process uses.
pub fn test_pki() -> &'static TestPki {
    static PKI: std::sync::OnceLock<TestPki> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        sweep_leftover_pki_directories();
        let material = devpki::generate().expect("generate the test PKI");
        let directory = std::env::temp_dir().join(format!(
            "ips-test-pki-{}-{}",
            std::process::id(),
            unique_suffix()
        ));
        material.write_to(&directory).expect("write the test PKI");
        let signers = material
            .organisations
            .iter()
            .map(|(agency, organisation)| {
                let signer = rpc::identity::TokenSigner::from_pkcs8(
                    *agency,
                    &organisation.token_signing_key_pkcs8,
                )
                .expect("test signing key");
                (*agency, signer)
            })
            .collect();
        TestPki {
            directory,
            material,
            signers,
        }
    })
}

/// Removes test PKI directories of earlier runs (each test process writes its own).
fn sweep_leftover_pki_directories() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let now = chrono::Utc::now().timestamp();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let created = name
            .strip_prefix("ips-test-pki-")
            .and_then(|rest| rest.split('-').nth(1))
            .and_then(|rest| rest.split('_').next())
            .and_then(|seconds| seconds.parse::<i64>().ok());
        if created.is_some_and(|created| now - created > PKI_LEFTOVER_AGE_SWEEP_SECONDS) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// How old a test PKI directory must be before a new test process removes it.
const PKI_LEFTOVER_AGE_SWEEP_SECONDS: i64 = 10 * 60;

/// The services' identity configuration for the test PKI.
pub fn identity_config() -> rpc::identity::IdentityConfig {
    rpc::identity::IdentityConfig::in_directory(&test_pki().directory)
}

/// A token signed by `agency`'s key, valid for ten minutes.
pub fn token(agency: Agency, person_id: &str, role: Role, unit: &str) -> String {
    test_pki().signers[&agency]
        .officer_token(person_id, role, unit, 600)
        .expect("sign a test token")
}

/// A signer for `agency` (tests that forge claims).
pub fn signer(agency: Agency) -> &'static rpc::identity::TokenSigner {
    &test_pki().signers[&agency]
}

/// An mTLS channel to `address` presenting `agency`'s client certificate.
pub async fn channel_as(address: std::net::SocketAddr, agency: Agency) -> anyhow::Result<Channel> {
    let pki = test_pki();
    let organisation = &pki.material.organisations[&agency];
    let tls = rpc::identity::client_tls(
        &pki.material.ca_certificate_pem,
        &organisation.client.certificate_pem,
        &organisation.client.private_key_pem,
    );
    Ok(Channel::from_shared(format!("https://{address}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect()
        .await?)
}

/// An mTLS channel to `address` as the municipality.
pub async fn channel(address: std::net::SocketAddr) -> anyhow::Result<Channel> {
    channel_as(address, Agency::Municipality).await
}

/// Wraps a message in a request carrying `agency`'s signed token for one officer.
pub fn as_officer<T>(
    message: T,
    agency: Agency,
    person_id: &str,
    role: Role,
    unit: &str,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    rpc::identity::attach_token(
        request.metadata_mut(),
        &token(agency, person_id, role, unit),
    );
    request
}

/// Wraps a message in a request from a municipal officer (coach, team leader, IFO officer).
pub fn as_caller<T>(message: T, person_id: &str, role: Role, unit: &str) -> tonic::Request<T> {
    as_officer(message, Agency::Municipality, person_id, role, unit)
}

/// Wraps a message in a request from the demo coach of the Hudiksvall IPS unit.
pub fn as_coach<T>(message: T) -> tonic::Request<T> {
    as_caller(message, "coach-17", Role::Coach, "hudiksvall-ips")
}

/// Wraps a message in a request from the Hudiksvall IPS unit's team leader.
pub fn as_team_leader<T>(message: T) -> tonic::Request<T> {
    as_caller(message, "team-leader-1", Role::TeamLeader, "hudiksvall-ips")
}

/// Wraps a message in a request from a municipal auditor (internal control), who sees
/// everything and is logged like anyone.
pub fn as_auditor<T>(message: T) -> tonic::Request<T> {
    as_caller(message, "auditor-1", Role::Auditor, "internal-control")
}

/// Wraps a message in a request from Försäkringskassan's case officer.
pub fn as_fk_officer<T>(message: T) -> tonic::Request<T> {
    as_officer(
        message,
        Agency::Forsakringskassan,
        "fk-officer-4",
        Role::CaseOfficer,
        "fk-lfc-gavleborg",
    )
}
