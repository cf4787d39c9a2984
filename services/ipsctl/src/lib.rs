//! `ipsctl`, the command-line client for coaches, officers and auditors, as a library so the
//! README's demo is tested the same way it runs.
//!
//! - [`demo`]: drives synthetic participants (DOMAIN.md §9) through the real gRPC APIs and
//!   prints their timelines and chain checks.
//! - [`print`]: renders timelines and verification results as text.

pub mod demo;
pub mod print;

use proto::v1::municipality_service_client::MunicipalityServiceClient;
use proto::v1::timeline_service_client::TimelineServiceClient;
use tonic::transport::Channel;

/// Clients of the running services.
pub struct Clients {
    /// The municipality service.
    pub municipality: MunicipalityServiceClient<Channel>,
    /// The ledger's timeline service.
    pub timeline: TimelineServiceClient<Channel>,
}

impl Clients {
    /// Connects to both services (`http://host:port`).
    pub async fn connect(municipality_address: &str, ledger_address: &str) -> anyhow::Result<Self> {
        let channel = |address: &str| -> anyhow::Result<tonic::transport::Endpoint> {
            Ok(Channel::from_shared(address.to_owned())?
                .connect_timeout(std::time::Duration::from_secs(5))
                .timeout(std::time::Duration::from_secs(30)))
        };
        Ok(Self {
            municipality: MunicipalityServiceClient::new(
                channel(municipality_address)?.connect().await?,
            ),
            timeline: TimelineServiceClient::new(channel(ledger_address)?.connect().await?),
        })
    }
}
