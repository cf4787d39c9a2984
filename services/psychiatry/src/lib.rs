//! Psychiatry's agency service: only coarse facts leave psychiatry (referral to IPS, team
//! meetings, certificate periods, availability, discharge readiness), never diagnoses or causes.
//!
//! Each RPC checks the caller and the input, builds one domain event with a full envelope,
//! publishes it to JetStream and waits (bounded) for the ledger's verdict. [`start`] wires it
//! for the binary and for tests.

pub mod bodies;
pub mod service;

use proto::v1::psychiatry_service_server::PsychiatryServiceServer;
use tokio::sync::watch;

pub use rpc::agency::{AgencyServiceConfig, RunningService, StartError};

/// The default gRPC address.
pub const DEFAULT_LISTEN_ADDRESS: &str = "127.0.0.1:7404";

/// The service's default configuration.
pub fn default_config() -> AgencyServiceConfig {
    AgencyServiceConfig::listening_on(DEFAULT_LISTEN_ADDRESS)
}

/// Connects to NATS and serves until `shutdown` turns true, reading "now" from `clock` (the
/// system clock in production).
pub async fn start(
    config: AgencyServiceConfig,
    clock: std::sync::Arc<dyn rpc::clock::Clock>,
    shutdown: watch::Receiver<bool>,
) -> Result<RunningService, StartError> {
    rpc::agency::start(
        config,
        domain::Agency::Psychiatry,
        |edge, server| {
            PsychiatryServiceServer::new(service::PsychiatryApi { edge })
                .max_decoding_message_size(server.request_size_max_bytes)
        },
        clock,
        shutdown,
    )
    .await
}
