//! The whole system in one test process: the ledger and the four agency services started on
//! port 0 through the binaries' own `start` functions, on the test's database and stream, with
//! clients for each service.

use std::sync::Arc;

use domain::Agency;
use proto::v1::arbetsformedlingen_service_client::ArbetsformedlingenServiceClient;
use proto::v1::forsakringskassan_service_client::ForsakringskassanServiceClient;
use proto::v1::municipality_service_client::MunicipalityServiceClient;
use proto::v1::psychiatry_service_client::PsychiatryServiceClient;
use proto::v1::timeline_service_client::TimelineServiceClient;
use tokio::sync::watch;
use tonic::transport::Channel;

use crate::{
    channel, channel_as, delete_streams, identity_config, test_pki, unique_bus_config,
    NatsWithUsers, TestDatabase,
};

/// Ledger config for a test: port 0, the test's database and bus.
pub fn ledger_config(database: &TestDatabase, bus_config: &bus::BusConfig) -> ledger::LedgerConfig {
    let mut config = ledger::LedgerConfig::with_defaults();
    config.server.listen_address = "127.0.0.1:0".into();
    config.metrics_listen_address = "127.0.0.1:0".into();
    config.bus = bus_config.clone();
    config.store.database_url = database.service_url();
    config.store.migration_database_url = database.url.clone();
    config.store.pool_connections_max = 8;
    config.projector.repoll_interval_ms = 50;
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
    /// The stream's replicas (`bus.stream_replicas`): 3 on a [`crate::NatsCluster`].
    pub stream_replicas: usize,
    /// The ledger's ingest settings, when not the test defaults (a probe comparing group
    /// commit on and off, say).
    pub ledger_ingest: Option<ledger::config::IngestConfig>,
    /// The ledger's watch limits, when not the defaults.
    pub ledger_watch: Option<ledger::config::WatchConfig>,
    /// Ledger addresses the municipality asks about places before the stack's own ledger (an
    /// address nothing listens on stands for a ledger that is down).
    pub places_ledgers_asked_first: Vec<String>,
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
            ledger_ingest: None,
            ledger_watch: None,
            places_ledgers_asked_first: Vec::new(),
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
        let mut config = ledger_config(&database, &as_user("ledger"));
        if let Some(ingest) = &options.ledger_ingest {
            config.ingest = ingest.clone();
        }
        if let Some(watch) = &options.ledger_watch {
            config.watch = watch.clone();
        }
        let ledger = ledger::start(config, options.ledger_clock.clone(), ledger_receiver).await?;
        // The ones a test asks first, then the stack's own ledger.
        let mut places_ledgers = options.places_ledgers_asked_first.clone();
        places_ledgers.push(format!("https://{}", ledger.grpc_address));
        let municipality_config = municipality::MunicipalityConfig {
            server: rpc::ServerConfig {
                listen_address: "127.0.0.1:0".into(),
                ..rpc::ServerConfig::default()
            },
            bus: as_user("municipality"),
            places: municipality::places::PlacesConfig {
                ledger_address: places_ledgers[0].clone(),
                ledger_fallback_addresses: places_ledgers[1..].to_vec(),
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

    /// A participant referred by coach-17 (from adult psychiatry) and enrolled in
    /// hudiksvall-ips with `coach`, both written with `context` (`None`: now, as the service
    /// stamps it): the opening most tests need. Returns the participant id and the enrolment's
    /// sequence.
    pub async fn enrolled_participant(
        &self,
        coach: &str,
        context: Option<proto::v1::WriteContext>,
    ) -> anyhow::Result<(String, u64)> {
        let mut municipality = self.municipality().await?;
        let participant_id = municipality
            .refer_participant(crate::as_coach(proto::v1::ReferParticipantRequest {
                context: context.clone(),
                source: proto::v1::ReferralSource::Vuxenpsykiatri as i32,
                ..Default::default()
            }))
            .await?
            .into_inner()
            .participant_id;
        let enrolment = municipality
            .enroll_participant(crate::as_coach(proto::v1::EnrollParticipantRequest {
                context,
                participant_id: participant_id.clone(),
                unit: "hudiksvall-ips".into(),
                coach_person_id: coach.into(),
            }))
            .await?
            .into_inner();
        Ok((participant_id, enrolment.sequence))
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
