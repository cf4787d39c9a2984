//! The forsakringskassan service binary: configuration, logging, start, and drain on SIGTERM.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging("forsakringskassan");
    let config = telemetry::load_config_with(forsakringskassan::default_config())?;
    let (_trigger, shutdown) = telemetry::shutdown_on_signal();
    let running = forsakringskassan::start(
        config,
        std::sync::Arc::new(rpc::clock::SystemClock),
        shutdown,
    )
    .await
    .context("forsakringskassan service failed to start")?;
    println!("forsakringskassan listening on {}", running.grpc_address);
    running.wait().await;
    tracing::info!("forsakringskassan stopped");
    Ok(())
}
