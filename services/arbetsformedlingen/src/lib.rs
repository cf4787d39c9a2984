//! Arbetsförmedlingen's agency service: job-seeker registration, disability coding, programmes,
//! SIUS, subsidies and AF's green light on activities.
//!
//! Each RPC checks the caller and the input, builds one domain event with a full envelope,
//! publishes it to JetStream and waits (bounded) for the ledger's verdict. [`start`] wires it
//! for the binary and for tests.

pub mod bodies;
pub mod service;

use proto::v1::arbetsformedlingen_service_server::ArbetsformedlingenServiceServer;
use tokio::sync::watch;

pub use rpc::agency::{AgencyServiceConfig, RunningService, StartError};

/// The default gRPC address.
pub const DEFAULT_LISTEN_ADDRESS: &str = "127.0.0.1:7403";

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
        domain::Agency::Arbetsformedlingen,
        |edge, server| {
            ArbetsformedlingenServiceServer::new(service::ArbetsformedlingenApi { edge })
                .max_decoding_message_size(server.request_size_max_bytes)
        },
        clock,
        shutdown,
    )
    .await
}
