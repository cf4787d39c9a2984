//! The municipality's agency service: the IPS unit's and social services' process steps as gRPC.
//!
//! Each RPC checks the caller and the input, builds one domain event with a full envelope,
//! publishes it to JetStream and waits (bounded) for the ledger's verdict. It never writes the
//! database. Enrolment also weighs the unit's places ([`places`]): a full unit puts the
//! participant on the waiting list, and a discharge offers the freed place to the
//! longest-waiting. [`start`] wires it for the binary and for tests.

pub mod bodies;
pub mod places;
pub mod service;

use proto::v1::municipality_service_server::MunicipalityServiceServer;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use rpc::agency::{AgencyServiceConfig, RunningService, StartError};

/// The default gRPC address.
pub const DEFAULT_LISTEN_ADDRESS: &str = "127.0.0.1:7401";

/// The municipality service's configuration: an agency service's, plus the waiting list's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MunicipalityConfig {
    /// gRPC server.
    pub server: rpc::ServerConfig,
    /// NATS JetStream.
    pub bus: bus::BusConfig,
    /// Waiting for verdicts.
    pub submit: rpc::SubmitConfig,
    /// Places and the waiting list.
    pub places: places::PlacesConfig,
    /// mTLS certificates and token keys.
    pub identity: rpc::identity::IdentityConfig,
}

impl Default for MunicipalityConfig {
    fn default() -> Self {
        let agency = AgencyServiceConfig::listening_on(DEFAULT_LISTEN_ADDRESS);
        Self {
            server: agency.server,
            bus: agency.bus,
            submit: agency.submit,
            places: places::PlacesConfig::default(),
            identity: agency.identity,
        }
    }
}

/// Connects to NATS and serves until `shutdown` turns true, reading "now" from `clock` (the
/// system clock in production).
pub async fn start(
    config: MunicipalityConfig,
    clock: std::sync::Arc<dyn rpc::clock::Clock>,
    shutdown: watch::Receiver<bool>,
) -> Result<RunningService, StartError> {
    config.places.validate().map_err(StartError::Config)?;
    let places =
        places::Places::new(config.places.clone(), &config.identity).map_err(StartError::Config)?;
    let agency = AgencyServiceConfig {
        server: config.server,
        bus: config.bus,
        submit: config.submit,
        identity: config.identity,
    };
    rpc::agency::start(
        agency,
        domain::Agency::Municipality,
        |edge, server| {
            MunicipalityServiceServer::new(service::MunicipalityApi { edge, places })
                .max_decoding_message_size(server.request_size_max_bytes)
        },
        clock,
        shutdown,
    )
    .await
}
