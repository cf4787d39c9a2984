//! `ipsctl`, the command-line client for coaches, officers and auditors, as a library so the
//! README's demo is tested the same way it runs.
//!
//! - [`demo`]: drives synthetic participants (DOMAIN.md §9 and twenty more) through the four
//!   agencies' real gRPC APIs and prints timelines, chain checks and the caseload board.
//! - [`print`]: renders timelines, verification results and boards as text.
//! - [`audit`]: the auditor's replay and rebuilt reads (`ipsctl audit replay | read`).
//! - [`cli`]: the command line (clap) and the read commands, as text or `--json`.
//! - [`json`]: what `--json` prints, with stable field names.

pub mod audit;
pub mod cli;
pub mod demo;
pub mod json;
pub mod print;

use proto::v1::arbetsformedlingen_service_client::ArbetsformedlingenServiceClient;
use proto::v1::caseload_service_client::CaseloadServiceClient;
use proto::v1::forsakringskassan_service_client::ForsakringskassanServiceClient;
use proto::v1::municipality_service_client::MunicipalityServiceClient;
use proto::v1::psychiatry_service_client::PsychiatryServiceClient;
use proto::v1::timeline_service_client::TimelineServiceClient;
use rpc::identity::pki_files;
use tonic::transport::Channel;

/// The token signers of the four organisations, loaded by [`Clients::connect`] from the PKI
/// directory (in production each organisation's identity provider issues the tokens).
static SIGNERS: std::sync::OnceLock<
    std::collections::BTreeMap<domain::Agency, rpc::identity::TokenSigner>,
> = std::sync::OnceLock::new();

/// How long the tokens `ipsctl` signs are valid.
pub const TOKEN_LIFETIME_S: i64 = 60 * 60;

/// Wraps `message` in a request carrying a token for one officer of `agency`.
pub fn as_officer<T>(
    message: T,
    agency: domain::Agency,
    person_id: &str,
    role: domain::Role,
    unit: &str,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    // Without a signer, or should signing fail, the request goes without a token and the
    // service refuses it as `token_missing`, which names the problem.
    if let Some(signer) = SIGNERS.get().and_then(|signers| signers.get(&agency)) {
        if let Ok(token) = signer.officer_token(person_id, role, unit, TOKEN_LIFETIME_S) {
            rpc::identity::attach_token(request.metadata_mut(), &token);
        }
    }
    request
}

/// The PKI directory: `IPS_PKI_DIRECTORY`, default `deploy/.local/pki`.
pub fn pki_directory() -> std::path::PathBuf {
    std::env::var("IPS_PKI_DIRECTORY")
        .unwrap_or_else(|_| rpc::identity::DEVELOPMENT_PKI_DIRECTORY.to_owned())
        .into()
}

/// Where the services listen (`https://host:port`).
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
            std::env::var(name).unwrap_or_else(|_| format!("https://127.0.0.1:{port}"))
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
    /// The ledger's audit service.
    pub audit: proto::v1::audit_service_client::AuditServiceClient<Channel>,
    /// The ledger's green-light service, for the municipality's officers.
    pub green_light: proto::v1::green_light_service_client::GreenLightServiceClient<Channel>,
    /// The ledger's green-light service over Försäkringskassan's certificate, for its officers'
    /// list of what waits on them (a token must come from the certificate's organisation).
    pub forsakringskassan_green_light:
        proto::v1::green_light_service_client::GreenLightServiceClient<Channel>,
}

impl Clients {
    /// Connects to every service over mTLS, each agency's service with that organisation's
    /// client certificate and the ledger with the municipality's, using the PKI in `pki`.
    pub async fn connect(addresses: &Addresses, pki: &std::path::Path) -> anyhow::Result<Self> {
        use domain::Agency;
        let mut signers = std::collections::BTreeMap::new();
        for agency in Agency::ALL {
            let path = pki.join(pki_files::token_signing_key(agency.token()));
            let signer = rpc::identity::TokenSigner::from_file(agency, &path)
                .map_err(|error| anyhow::anyhow!(error))?;
            signers.insert(agency, signer);
        }
        let _ = SIGNERS.set(signers);
        let channel =
            |address: &str, agency: Agency| -> anyhow::Result<tonic::transport::Endpoint> {
                let tls = rpc::identity::client_tls_from_files(
                    ("CA certificate", &pki.join(pki_files::CA_CERTIFICATE)),
                    (
                        "client certificate",
                        &pki.join(pki_files::client_certificate(agency.token())),
                    ),
                    (
                        "client private key",
                        &pki.join(pki_files::client_private_key(agency.token())),
                    ),
                )
                .map_err(|error| anyhow::anyhow!(error))?;
                Ok(Channel::from_shared(address.to_owned())?
                    .tls_config(tls)?
                    .connect_timeout(std::time::Duration::from_secs(5))
                    .timeout(std::time::Duration::from_secs(30)))
            };
        let ledger = channel(&addresses.ledger, Agency::Municipality)?
            .connect()
            .await?;
        let ledger_for_forsakringskassan = channel(&addresses.ledger, Agency::Forsakringskassan)?
            .connect()
            .await?;
        Ok(Self {
            municipality: MunicipalityServiceClient::new(
                channel(&addresses.municipality, Agency::Municipality)?
                    .connect()
                    .await?,
            ),
            forsakringskassan: ForsakringskassanServiceClient::new(
                channel(&addresses.forsakringskassan, Agency::Forsakringskassan)?
                    .connect()
                    .await?,
            ),
            arbetsformedlingen: ArbetsformedlingenServiceClient::new(
                channel(&addresses.arbetsformedlingen, Agency::Arbetsformedlingen)?
                    .connect()
                    .await?,
            ),
            psychiatry: PsychiatryServiceClient::new(
                channel(&addresses.psychiatry, Agency::Psychiatry)?
                    .connect()
                    .await?,
            ),
            timeline: TimelineServiceClient::new(ledger.clone()),
            caseload: CaseloadServiceClient::new(ledger.clone()),
            audit: proto::v1::audit_service_client::AuditServiceClient::new(ledger.clone()),
            green_light: proto::v1::green_light_service_client::GreenLightServiceClient::new(
                ledger,
            ),
            forsakringskassan_green_light:
                proto::v1::green_light_service_client::GreenLightServiceClient::new(
                    ledger_for_forsakringskassan,
                ),
        })
    }
}
