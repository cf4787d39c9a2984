//! Serving a tonic router with what every service needs: health, reflection, a deadline on
//! every call, a request-size limit, a concurrency bound, and a graceful stop.
//!
//! Binding happens before serving so a test can ask for port 0 and read the real address.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Server limits (section `server`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen_address: String,
    /// The longest any call may run; a shorter client deadline wins.
    pub rpc_timeout_ms: u64,
    /// Largest accepted request message.
    pub request_size_max_bytes: usize,
    /// Concurrent calls per connection.
    pub concurrent_calls_per_connection_max: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen_address: "127.0.0.1:7401".into(),
            rpc_timeout_ms: 15_000,
            request_size_max_bytes: 64 * 1024,
            concurrent_calls_per_connection_max: 256,
        }
    }
}

impl ServerConfig {
    /// Checks every value at start-up.
    pub fn validate(&self) -> Result<(), String> {
        if self.listen_address.parse::<SocketAddr>().is_err() {
            return Err(format!(
                "server.listen_address `{}` is not an address like 127.0.0.1:7401",
                self.listen_address
            ));
        }
        if !(100..=600_000).contains(&self.rpc_timeout_ms) {
            return Err("server.rpc_timeout_ms must be between 100 and 600000".into());
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.request_size_max_bytes) {
            return Err("server.request_size_max_bytes must be between 1 KiB and 16 MiB".into());
        }
        if !(1..=10_000).contains(&self.concurrent_calls_per_connection_max) {
            return Err(
                "server.concurrent_calls_per_connection_max must be between 1 and 10000".into(),
            );
        }
        Ok(())
    }

    /// A tonic server builder with this config's deadline and concurrency bound, serving TLS
    /// with client certificates required (there is no plain-text mode).
    pub fn builder(
        &self,
        identity: &crate::identity::IdentityConfig,
    ) -> Result<tonic::transport::Server, String> {
        tonic::transport::Server::builder()
            .timeout(Duration::from_millis(self.rpc_timeout_ms))
            .concurrency_limit_per_connection(self.concurrent_calls_per_connection_max)
            .tls_config(identity.server_tls()?)
            .map_err(|error| format!("identity: TLS configuration refused: {error}"))
    }
}

/// The reflection builder's error.
pub use tonic_reflection::server::Error as ReflectionError;

/// A running server.
pub struct ServerHandle {
    /// The bound address (the real port when 0 was asked for).
    pub local_address: SocketAddr,
    /// Ends when the server has stopped.
    pub task: JoinHandle<Result<(), tonic::transport::Error>>,
}

/// Binds `config.listen_address`.
pub async fn bind(config: &ServerConfig) -> std::io::Result<TcpListener> {
    TcpListener::bind(&config.listen_address).await
}

/// The health and reflection services, with `service_names` reported as serving.
pub async fn health_and_reflection(
    service_names: &[&str],
) -> Result<
    (
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
    ),
    tonic_reflection::server::Error,
> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in service_names {
        reporter
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    Ok((health, reflection))
}

/// Serves `router` on `listener` until `shutdown` turns true; in-flight calls finish first.
pub fn serve(
    router: tonic::transport::server::Router,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<ServerHandle> {
    let local_address = listener.local_addr()?;
    // Serving from our own listener, tonic ignores its tcp_nodelay setting; without it, Nagle's
    // algorithm and delayed acks add ~40 ms to small responses, so set it on every connection.
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |connection| {
            if let Ok(stream) = &connection {
                let _ = stream.set_nodelay(true);
            }
            connection
        },
    );
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(ServerHandle {
        local_address,
        task,
    })
}
