//! Försäkringskassan's agency service: benefits, certificates, rehabilitation and FK's green light
//! on activities. Only decisions and periods are recorded: never medical details.
//!
//! Each RPC checks the caller and the input, builds one domain event with a full envelope,
//! publishes it to JetStream and waits (bounded) for the ledger's verdict. [`start`] wires it
//! for the binary and for tests.

pub mod bodies;
pub mod service;

use proto::v1::forsakringskassan_service_server::ForsakringskassanServiceServer;
use tokio::sync::watch;

pub use rpc::agency::{AgencyServiceConfig, RunningService, StartError};

/// The default gRPC address.
pub const DEFAULT_LISTEN_ADDRESS: &str = "127.0.0.1:7402";

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
        domain::Agency::Forsakringskassan,
        |edge, server| {
            ForsakringskassanServiceServer::new(service::ForsakringskassanApi { edge })
                .max_decoding_message_size(server.request_size_max_bytes)
        },
        clock,
        shutdown,
    )
    .await
}
