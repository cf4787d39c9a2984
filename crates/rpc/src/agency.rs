//! Starting an agency service: the same configuration, connections and server set-up for the
//! municipality, Försäkringskassan, Arbetsförmedlingen and psychiatry. Each service crate only
//! adds its own gRPC service to the router.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use tokio::sync::watch;
use tonic::body::Body;
use tonic::codegen::{http, Service};
use tonic::server::NamedService;

use crate::access::Guard;
use crate::clock::Clock;
use crate::server::{ReflectionError, ServerConfig, ServerHandle};
use crate::submit::{AgencyEdge, AgencySubmitter, SubmitConfig};

/// An agency service's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgencyServiceConfig {
    /// gRPC server.
    pub server: ServerConfig,
    /// NATS JetStream.
    pub bus: bus::BusConfig,
    /// Waiting for verdicts.
    pub submit: SubmitConfig,
    /// mTLS certificates and token keys.
    pub identity: crate::identity::IdentityConfig,
}

impl AgencyServiceConfig {
    /// Defaults with the service's own port.
    pub fn listening_on(listen_address: &str) -> Self {
        let mut config = Self::default();
        config.server.listen_address = listen_address.to_owned();
        config
    }

    /// Checks every value; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.server.validate()?;
        self.bus.validate().map_err(|error| error.to_string())?;
        self.submit.validate()?;
        self.identity.validate()
    }
}

/// Why an agency service could not start.
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
    Reflection(#[from] ReflectionError),
}

/// A running agency service.
pub struct RunningService {
    /// The gRPC address (the real port when 0 was configured).
    pub grpc_address: SocketAddr,
    server: ServerHandle,
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

/// Connects to NATS and serves the agency's gRPC service, which `service` builds around the
/// agency's [`AgencyEdge`] (within the server's limits), behind the gatekeeper, plus health and
/// reflection, until `shutdown` turns true; in-flight calls finish first. `clock` is the
/// service's "now" (the system clock in production).
pub async fn start<S>(
    config: AgencyServiceConfig,
    agency: domain::Agency,
    service: impl FnOnce(AgencyEdge, &ServerConfig) -> S,
    clock: Arc<dyn Clock>,
    shutdown: watch::Receiver<bool>,
) -> Result<RunningService, StartError>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    config.validate().map_err(StartError::Config)?;
    let guard = Guard::from_config(&config.identity, Some(agency)).map_err(StartError::Config)?;
    guard.keep_keys_current(config.identity.clone(), shutdown.clone());
    let client = bus::connect_as_agency(&config.bus, agency).await?;
    let submitter = AgencySubmitter::new(client, &config.bus, config.submit.clone());
    let (health, reflection) = crate::server::health_and_reflection(&[S::NAME]).await?;
    let router = config
        .server
        .builder(&config.identity)
        .map_err(StartError::Config)?
        .add_service(health)
        .add_service(reflection);
    let edge = AgencyEdge {
        agency,
        submitter,
        clock,
    };
    let router = router.add_service(guard.wrap(service(edge, &config.server)));
    let listener = crate::server::bind(&config.server).await?;
    let server = crate::server::serve(router, listener, shutdown)?;
    tracing::info!(agency = agency.token(), grpc_address = %server.local_address, "agency service started");
    Ok(RunningService {
        grpc_address: server.local_address,
        server,
    })
}
