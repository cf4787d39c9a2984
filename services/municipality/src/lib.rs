//! The municipality's agency service: the IPS unit's and social services' process steps as gRPC.
//!
//! Each RPC checks the caller and the input, builds one domain event with a full envelope,
//! publishes it to JetStream and waits (bounded) for the ledger's verdict. It never writes the
//! database. [`start`] wires it from a [`MunicipalityConfig`] for the binary and for tests.

pub mod service;

use std::net::SocketAddr;

use proto::v1::municipality_service_server::MunicipalityServiceServer;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// The municipality service's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MunicipalityConfig {
    /// gRPC server.
    pub server: rpc::ServerConfig,
    /// NATS JetStream.
    pub bus: bus::BusConfig,
    /// Waiting for verdicts.
    pub submit: rpc::SubmitConfig,
}

impl Default for MunicipalityConfig {
    fn default() -> Self {
        let mut server = rpc::ServerConfig::default();
        server.listen_address = "127.0.0.1:50051".into();
        Self { server, bus: bus::BusConfig::default(), submit: rpc::SubmitConfig::default() }
    }
}

impl MunicipalityConfig {
    /// Checks every value; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.server.validate()?;
        self.bus.validate().map_err(|error| error.to_string())?;
        self.submit.validate()
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A configuration value is invalid.
    #[error("{0}")]
    Config(String),
    /// NATS is unreachable.
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    /// The gRPC port could not be bound.
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    /// gRPC reflection could not be built.
    #[error("reflection: {0}")]
    Reflection(#[from] rpc::server::ReflectionError),
}

/// A running municipality service.
pub struct RunningService {
    /// The gRPC address.
    pub grpc_address: SocketAddr,
    server: rpc::ServerHandle,
}

impl RunningService {
    /// Waits until the server has stopped (after shutdown was requested).
    pub async fn wait(self) {
        match self.server.task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "gRPC server failed"),
            Err(error) => tracing::error!(%error, "gRPC server task failed"),
        }
    }
}

/// Connects to NATS and serves until `shutdown` turns true (in-flight calls finish first).
pub async fn start(config: MunicipalityConfig, shutdown: watch::Receiver<bool>) -> Result<RunningService, StartError> {
    config.validate().map_err(StartError::Config)?;
    let client = bus::connect(&config.bus, "municipality").await?;
    let submitter = rpc::AgencySubmitter::new(client, &config.bus, config.submit.clone());
    let (health, reflection) = rpc::server::health_and_reflection(&["ips.v1.MunicipalityService"]).await?;
    let api = service::MunicipalityApi { submitter };
    let router = config
        .server
        .builder()
        .add_service(health)
        .add_service(reflection)
        .add_service(MunicipalityServiceServer::new(api).max_decoding_message_size(config.server.request_size_max_bytes));
    let listener = rpc::server::bind(&config.server).await?;
    let server = rpc::server::serve(router, listener, shutdown)?;
    tracing::info!(grpc_address = %server.local_address, "municipality service started");
    Ok(RunningService { grpc_address: server.local_address, server })
}
