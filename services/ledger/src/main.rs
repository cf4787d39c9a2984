//! The ledger binary: configuration, logging, start, and drain on SIGTERM. Nothing else lives
//! here; see the library for what the ledger does.

use std::sync::Arc;

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging("ledger");
    let config = telemetry::load_config_with(ledger::LedgerConfig::with_defaults())?;
    let (_trigger, shutdown) = telemetry::shutdown_on_signal();
    let running = ledger::start(config, Arc::new(ledger::clock::SystemClock), shutdown)
        .await
        .context("ledger failed to start")?;
    println!("ledger listening on {}", running.grpc_address);
    running.wait().await;
    tracing::info!("ledger stopped");
    Ok(())
}
