//! The arbetsformedlingen service binary: configuration, logging, start, and drain on SIGTERM.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging("arbetsformedlingen");
    let config = telemetry::load_config_with(arbetsformedlingen::default_config())?;
    let (_trigger, shutdown) = telemetry::shutdown_on_signal();
    let running = arbetsformedlingen::start(
        config,
        std::sync::Arc::new(rpc::clock::SystemClock),
        shutdown,
    )
    .await
    .context("arbetsformedlingen service failed to start")?;
    println!("arbetsformedlingen listening on {}", running.grpc_address);
    running.wait().await;
    tracing::info!("arbetsformedlingen stopped");
    Ok(())
}
