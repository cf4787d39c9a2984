//! What every binary does before and after its real work: logs, layered configuration, and the
//! shutdown signal. Kept out of the binaries so that tests start services the same way.
//!
//! - [`init_logging`]: `tracing` to stderr, human or JSON (`IPS_LOG_FORMAT=json`), filtered by
//!   `IPS_LOG` (default `info`).
//! - [`load_config`]: defaults → optional TOML file (`IPS_CONFIG_FILE`) → `IPS_` environment
//!   variables (`IPS_BUS__ACK_WAIT_MS=5000` sets `bus.ack_wait_ms`). Unknown keys are errors,
//!   except `IPS_TEST_*`, `IPS_SETUP_*` and `IPS_DEMO_*`, which belong to the scripts.
//! - [`shutdown_on_signal`]: a `watch` that turns true on SIGTERM or Ctrl-C.
//! - [`metrics`]: a service's own `prometheus-client` registry served as OpenMetrics text
//!   ([`serve_metrics`]), and a strict reader of a scrape ([`parse_exposition`]).

pub mod metrics;

pub use metrics::{parse_exposition, serve_metrics, Exposition, MetricsEndpointLimits};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;

/// Installs the global `tracing` subscriber; a second call is a no-op (tests start many services).
pub fn init_logging(service_name: &str) {
    init_logging_with_default(service_name, "info");
}

/// Like [`init_logging`] with another default level (tests use `warn`: silent unless asked).
pub fn init_logging_with_default(service_name: &str, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IPS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let json = std::env::var("IPS_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let installed = if json {
        builder.json().try_init().is_ok()
    } else {
        builder.try_init().is_ok()
    };
    if installed {
        tracing::info!(service = service_name, "logging started");
    }
}

/// Lower-case prefixes (after `IPS_`) of environment variables that are not service settings.
pub const RESERVED_ENVIRONMENT_PREFIXES: [&str; 3] = ["test_", "setup_", "demo_"];

/// Configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigLoadError(String);

/// Loads `T` from its defaults, then `IPS_CONFIG_FILE` (TOML) if set, then `IPS_*` variables
/// (nested keys separated by `__`).
pub fn load_config<T: DeserializeOwned + Serialize + Default>() -> Result<T, ConfigLoadError> {
    load_config_with(T::default())
}

/// Like [`load_config`], starting from the given defaults instead of `T::default()`.
pub fn load_config_with<T: DeserializeOwned + Serialize>(
    defaults: T,
) -> Result<T, ConfigLoadError> {
    use figment::providers::{Env, Format, Serialized, Toml};
    let mut figment = figment::Figment::from(Serialized::defaults(defaults));
    if let Ok(path) = std::env::var("IPS_CONFIG_FILE") {
        if !std::path::Path::new(&path).exists() {
            return Err(ConfigLoadError(format!(
                "IPS_CONFIG_FILE={path} does not exist"
            )));
        }
        figment = figment.merge(Toml::file(path));
    }
    // IPS_TEST_*, IPS_SETUP_* and IPS_DEMO_* belong to the test, set-up and demo scripts, and
    // IPS_LOG* and IPS_CONFIG_FILE are read above: none of them is a service setting.
    let environment = Env::prefixed("IPS_").split("__").filter(|key| {
        let key = key.as_str().to_ascii_lowercase();
        !RESERVED_ENVIRONMENT_PREFIXES
            .iter()
            .any(|prefix| key.starts_with(prefix))
            && !["log", "log_format", "config_file"].contains(&key.as_str())
    });
    figment
        .merge(environment)
        .extract()
        .map_err(|error| ConfigLoadError(error.to_string()))
}

/// A receiver that turns `true` on SIGTERM or Ctrl-C, and a sender tests can use instead.
pub fn shutdown_on_signal() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    let (sender, receiver) = watch::channel(false);
    let signal_sender = sender.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; draining");
        let _ = signal_sender.send(true);
    });
    (sender, receiver)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Settings {
        bus: BusSettings,
    }

    #[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct BusSettings {
        ack_wait_ms: u64,
    }

    #[test]
    // figment::Jail fixes the closure's error type; it is not ours to shrink.
    #[allow(clippy::result_large_err)]
    fn environment_sets_nested_keys_refuses_unknown_ones_and_ignores_the_scripts_variables() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("IPS_BUS__ACK_WAIT_MS", "5000");
            jail.set_env("IPS_TEST_DATABASE_URL", "postgres://x");
            jail.set_env("IPS_SETUP_PG_PORT", "5432");
            let settings: Settings = load_config().map_err(|error| error.to_string())?;
            assert_eq!(settings.bus.ack_wait_ms, 5000);
            jail.set_env("IPS_BUSS__ACK_WAIT_MS", "5000");
            assert!(
                load_config::<Settings>().is_err(),
                "a misspelt section is refused"
            );
            Ok(())
        });
    }
}
