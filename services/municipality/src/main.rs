//! The municipality service binary: configuration, logging, start, and drain on SIGTERM.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging("municipality");
    let config: municipality::MunicipalityConfig = telemetry::load_config()?;
    let (_trigger, shutdown) = telemetry::shutdown_on_signal();
    let running = municipality::start(
        config,
        std::sync::Arc::new(rpc::clock::SystemClock),
        shutdown,
    )
    .await
    .context("municipality service failed to start")?;
    println!("municipality listening on {}", running.grpc_address);
    running.wait().await;
    tracing::info!("municipality stopped");
    Ok(())
}
