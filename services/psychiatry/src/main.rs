//! The psychiatry service binary: configuration, logging, start, and drain on SIGTERM.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging("psychiatry");
    let config = telemetry::load_config_with(psychiatry::default_config())?;
    let (_trigger, shutdown) = telemetry::shutdown_on_signal();
    let running = psychiatry::start(
        config,
        std::sync::Arc::new(rpc::clock::SystemClock),
        shutdown,
    )
    .await
    .context("psychiatry service failed to start")?;
    println!("psychiatry listening on {}", running.grpc_address);
    running.wait().await;
    tracing::info!("psychiatry stopped");
    Ok(())
}
