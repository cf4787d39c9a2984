//! The test process's PKI (CA, server and client certificates, token keys), generated once, and
//! what a test needs to speak as an organisation's officer: mTLS channels and signed tokens.

use std::time::Duration;

use domain::{Agency, Role};
use tonic::transport::Channel;

use crate::unique_suffix;

/// The test process's PKI: generated once, written to a directory of its own.
pub struct TestPki {
    /// Where the files are (laid out as `deploy/dev-pki.sh` writes them).
    pub directory: std::path::PathBuf,
    /// The material itself.
    pub material: devpki::DevelopmentPki,
    signers: std::collections::BTreeMap<Agency, rpc::identity::TokenSigner>,
}

/// The PKI every service and client of this test process uses.
pub fn test_pki() -> &'static TestPki {
    static PKI: std::sync::OnceLock<TestPki> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        sweep_leftover_pki_directories();
        let material = devpki::generate().expect("generate the test PKI");
        let directory = std::env::temp_dir().join(format!(
            "ips-test-pki-{}-{}",
            std::process::id(),
            unique_suffix()
        ));
        material.write_to(&directory).expect("write the test PKI");
        let signers = material
            .organisations
            .iter()
            .map(|(agency, organisation)| {
                let signer = rpc::identity::TokenSigner::from_pkcs8(
                    *agency,
                    &organisation.token_signing_key_pkcs8,
                )
                .expect("test signing key");
                (*agency, signer)
            })
            .collect();
        TestPki {
            directory,
            material,
            signers,
        }
    })
}

/// Removes test PKI directories of earlier runs (each test process writes its own).
fn sweep_leftover_pki_directories() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let now = chrono::Utc::now().timestamp();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let created = name
            .strip_prefix("ips-test-pki-")
            .and_then(|rest| rest.split('-').nth(1))
            .and_then(|rest| rest.split('_').next())
            .and_then(|seconds| seconds.parse::<i64>().ok());
        if created.is_some_and(|created| now - created > PKI_LEFTOVER_AGE_SWEEP_SECONDS) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// How old a test PKI directory must be before a new test process removes it.
const PKI_LEFTOVER_AGE_SWEEP_SECONDS: i64 = 10 * 60;

/// The services' identity configuration for the test PKI.
pub fn identity_config() -> rpc::identity::IdentityConfig {
    rpc::identity::IdentityConfig::in_directory(&test_pki().directory)
}

/// A token signed by `agency`'s key, valid for ten minutes.
pub fn token(agency: Agency, person_id: &str, role: Role, unit: &str) -> String {
    test_pki().signers[&agency]
        .officer_token(person_id, role, unit, 600)
        .expect("sign a test token")
}

/// A signer for `agency` (tests that forge claims).
pub fn signer(agency: Agency) -> &'static rpc::identity::TokenSigner {
    &test_pki().signers[&agency]
}

/// An mTLS channel to `address` presenting `agency`'s client certificate.
pub async fn channel_as(address: std::net::SocketAddr, agency: Agency) -> anyhow::Result<Channel> {
    let pki = test_pki();
    let organisation = &pki.material.organisations[&agency];
    let tls = rpc::identity::client_tls(
        &pki.material.ca_certificate_pem,
        &organisation.client.certificate_pem,
        &organisation.client.private_key_pem,
    );
    Ok(Channel::from_shared(format!("https://{address}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .connect()
        .await?)
}

/// An mTLS channel to `address` as the municipality.
pub async fn channel(address: std::net::SocketAddr) -> anyhow::Result<Channel> {
    channel_as(address, Agency::Municipality).await
}

/// Wraps a message in a request carrying `agency`'s signed token for one officer.
pub fn as_officer<T>(
    message: T,
    agency: Agency,
    person_id: &str,
    role: Role,
    unit: &str,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    rpc::identity::attach_token(
        request.metadata_mut(),
        &token(agency, person_id, role, unit),
    );
    request
}

/// Wraps a message in a request from a municipal officer (coach, team leader, IFO officer).
pub fn as_caller<T>(message: T, person_id: &str, role: Role, unit: &str) -> tonic::Request<T> {
    as_officer(message, Agency::Municipality, person_id, role, unit)
}

/// Wraps a message in a request from the demo coach of the Hudiksvall IPS unit.
pub fn as_coach<T>(message: T) -> tonic::Request<T> {
    as_caller(message, "coach-17", Role::Coach, "hudiksvall-ips")
}

/// Wraps a message in a request from the Hudiksvall IPS unit's team leader.
pub fn as_team_leader<T>(message: T) -> tonic::Request<T> {
    as_caller(message, "team-leader-1", Role::TeamLeader, "hudiksvall-ips")
}

/// Wraps a message in a request from a municipal auditor (internal control), who sees
/// everything and is logged like anyone.
pub fn as_auditor<T>(message: T) -> tonic::Request<T> {
    as_caller(message, "auditor-1", Role::Auditor, "internal-control")
}

/// Wraps a message in a request from Försäkringskassan's case officer.
pub fn as_fk_officer<T>(message: T) -> tonic::Request<T> {
    as_officer(
        message,
        Agency::Forsakringskassan,
        "fk-officer-4",
        Role::CaseOfficer,
        "fk-lfc-gavleborg",
    )
}
