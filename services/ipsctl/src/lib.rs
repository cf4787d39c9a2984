//! `ipsctl`, the command-line client for coaches, officers and auditors, as a library so the
//! README's demo is tested the same way it runs.
//!
//! - [`demo`]: drives synthetic participants (DOMAIN.md §9 and twenty more) through the four
//!   agencies' real gRPC APIs and prints timelines, chain checks and the caseload board.
//! - [`print`]: renders timelines, verification results and boards as text.

pub mod demo;
pub mod print;

use proto::v1::arbetsformedlingen_service_client::ArbetsformedlingenServiceClient;
use proto::v1::caseload_service_client::CaseloadServiceClient;
use proto::v1::forsakringskassan_service_client::ForsakringskassanServiceClient;
use proto::v1::municipality_service_client::MunicipalityServiceClient;
use proto::v1::psychiatry_service_client::PsychiatryServiceClient;
use proto::v1::timeline_service_client::TimelineServiceClient;
use tonic::transport::Channel;

/// Where the services listen (`http://host:port`).
#[derive(Clone, Debug)]
pub struct Addresses {
    /// The ledger (timeline and caseload).
    pub ledger: String,
    /// The municipality service.
    pub municipality: String,
    /// Försäkringskassan's service.
    pub forsakringskassan: String,
    /// Arbetsförmedlingen's service.
    pub arbetsformedlingen: String,
    /// Psychiatry's service.
    pub psychiatry: String,
}

impl Addresses {
    /// From `IPS_LEDGER_ADDRESS`, `IPS_MUNICIPALITY_ADDRESS`, `IPS_FK_ADDRESS`, `IPS_AF_ADDRESS`
    /// and `IPS_PSYCHIATRY_ADDRESS`, defaulting to the services' default ports.
    pub fn from_environment() -> Self {
        let read = |name: &str, port: u16| {
            std::env::var(name).unwrap_or_else(|_| format!("http://127.0.0.1:{port}"))
        };
        Self {
            ledger: read("IPS_LEDGER_ADDRESS", 7400),
            municipality: read("IPS_MUNICIPALITY_ADDRESS", 7401),
            forsakringskassan: read("IPS_FK_ADDRESS", 7402),
            arbetsformedlingen: read("IPS_AF_ADDRESS", 7403),
            psychiatry: read("IPS_PSYCHIATRY_ADDRESS", 7404),
        }
    }
}

/// Clients of the running services.
pub struct Clients {
    /// The municipality service.
    pub municipality: MunicipalityServiceClient<Channel>,
    /// Försäkringskassan's service.
    pub forsakringskassan: ForsakringskassanServiceClient<Channel>,
    /// Arbetsförmedlingen's service.
    pub arbetsformedlingen: ArbetsformedlingenServiceClient<Channel>,
    /// Psychiatry's service.
    pub psychiatry: PsychiatryServiceClient<Channel>,
    /// The ledger's timeline service.
    pub timeline: TimelineServiceClient<Channel>,
    /// The ledger's caseload service.
    pub caseload: CaseloadServiceClient<Channel>,
}

impl Clients {
    /// Connects to every service.
    pub async fn connect(addresses: &Addresses) -> anyhow::Result<Self> {
        let channel = |address: &str| -> anyhow::Result<tonic::transport::Endpoint> {
            Ok(Channel::from_shared(address.to_owned())?
                .connect_timeout(std::time::Duration::from_secs(5))
                .timeout(std::time::Duration::from_secs(30)))
        };
        let ledger = channel(&addresses.ledger)?.connect().await?;
        Ok(Self {
            municipality: MunicipalityServiceClient::new(
                channel(&addresses.municipality)?.connect().await?,
            ),
            forsakringskassan: ForsakringskassanServiceClient::new(
                channel(&addresses.forsakringskassan)?.connect().await?,
            ),
            arbetsformedlingen: ArbetsformedlingenServiceClient::new(
                channel(&addresses.arbetsformedlingen)?.connect().await?,
            ),
            psychiatry: PsychiatryServiceClient::new(
                channel(&addresses.psychiatry)?.connect().await?,
            ),
            timeline: TimelineServiceClient::new(ledger.clone()),
            caseload: CaseloadServiceClient::new(ledger),
        })
    }
}
