//! The development PKI: a local certificate authority, one server certificate, and per
//! organisation (agency) a client certificate for mTLS and an Ed25519 key pair for signing
//! officer tokens (JWTs), the public half published as the organisation's JSON Web Key Set
//! under its key id, as an identity provider would.
//!
//! There is no "auth off" switch, so development, the demo and the tests need real keys; they
//! are generated locally, never committed, and never used outside a developer's machine. In
//! production each organisation's own CA and identity provider take these roles; the services
//! only ever read the files named in their `identity` configuration.
//!
//! Not used by the services themselves, only by `ipsctl dev-pki` (what `deploy/dev-pki.sh`
//! runs) and by the test kit, so rcgen never ships in a service binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use domain::Agency;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Why the PKI could not be made or stored.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Certificate(#[from] rcgen::Error),
    /// Key generation failed.
    #[error("Ed25519 key generation failed")]
    SigningKey,
    /// A key set could not be written as JSON.
    #[error("key set: {0}")]
    KeySet(serde_json::Error),
    /// Writing or reading a file failed.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// A certificate and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct KeyedCertificate {
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub private_key_pem: String,
}

/// What one organisation holds: its client certificate and its token-signing key pair.
#[derive(Clone, Debug)]
pub struct OrganisationMaterial {
    /// The client certificate (subject organisation = the agency's token).
    pub client: KeyedCertificate,
    /// The Ed25519 token-signing key, PKCS#8 DER.
    pub token_signing_key_pkcs8: Vec<u8>,
    /// The matching public key, 32 raw bytes.
    pub token_verifying_key: Vec<u8>,
    /// The key id tokens signed with it name (`rpc::identity::development_key_id`).
    pub token_key_id: String,
}

impl OrganisationMaterial {
    /// The organisation's published key set: its one verifying key under its key id.
    pub fn token_verifying_key_set(&self) -> rpc::identity::VerifyingKeySet {
        rpc::identity::VerifyingKeySet {
            keys: vec![rpc::identity::VerifyingJwk::ed25519(
                &self.token_key_id,
                &self.token_verifying_key,
            )],
        }
    }
}

/// A whole development PKI.
#[derive(Clone, Debug)]
pub struct DevelopmentPki {
    /// The CA certificate every party trusts, PEM.
    pub ca_certificate_pem: String,
    /// The services' server certificate (localhost, 127.0.0.1).
    pub server: KeyedCertificate,
    /// Per organisation.
    pub organisations: BTreeMap<Agency, OrganisationMaterial>,
}

/// File names inside a PKI directory: the services' (`rpc::identity`) names, written here.
pub use rpc::identity::pki_files as file_names;

fn client_certificate(
    agency: Agency,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<KeyedCertificate, PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{} officers", agency.token()));
    params
        .distinguished_name
        .push(DnType::OrganizationName, agency.token());
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let certificate = params.signed_by(&key, issuer)?;
    Ok(KeyedCertificate {
        certificate_pem: certificate.pem(),
        private_key_pem: key.serialize_pem(),
    })
}

/// Generates a fresh PKI: CA, server certificate, and material for all four organisations.
pub fn generate() -> Result<DevelopmentPki, PkiError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "IPS Samverkan development CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_certificate = ca_params.self_signed(&ca_key)?;
    let ca_certificate_pem = ca_certificate.pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate()?;
    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()])?;
    server_params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    server_params
        .distinguished_name
        .push(DnType::CommonName, "IPS Samverkan services");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_certificate = server_params.signed_by(&server_key, &issuer)?;

    let mut organisations = BTreeMap::new();
    let random = ring::rand::SystemRandom::new();
    for agency in Agency::ALL {
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&random)
            .map_err(|_| PkiError::SigningKey)?;
        let key_pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| PkiError::SigningKey)?;
        let verifying = ring::signature::KeyPair::public_key(&key_pair)
            .as_ref()
            .to_vec();
        organisations.insert(
            agency,
            OrganisationMaterial {
                client: client_certificate(agency, &issuer)?,
                token_signing_key_pkcs8: pkcs8.as_ref().to_vec(),
                token_key_id: rpc::identity::development_key_id(agency, &verifying),
                token_verifying_key: verifying,
            },
        );
    }
    Ok(DevelopmentPki {
        ca_certificate_pem,
        server: KeyedCertificate {
            certificate_pem: server_certificate.pem(),
            private_key_pem: server_key.serialize_pem(),
        },
        organisations,
    })
}

fn write(directory: &Path, name: &str, contents: &[u8], secret: bool) -> Result<(), PkiError> {
    let path = directory.join(name);
    std::fs::write(&path, contents).map_err(|source| PkiError::File {
        path: path.clone(),
        source,
    })?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|source| PkiError::File { path, source })?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    Ok(())
}

fn key_set_json(key_set: &rpc::identity::VerifyingKeySet) -> Result<Vec<u8>, PkiError> {
    let mut json = serde_json::to_vec_pretty(key_set).map_err(PkiError::KeySet)?;
    json.push(b'\n');
    Ok(json)
}

impl DevelopmentPki {
    /// Writes every file into `directory` (created if missing), private keys readable by the
    /// owner only.
    pub fn write_to(&self, directory: &Path) -> Result<(), PkiError> {
        std::fs::create_dir_all(directory).map_err(|source| PkiError::File {
            path: directory.to_owned(),
            source,
        })?;
        let engine = base64::engine::general_purpose::STANDARD;
        write(
            directory,
            file_names::CA_CERTIFICATE,
            self.ca_certificate_pem.as_bytes(),
            false,
        )?;
        write(
            directory,
            file_names::SERVER_CERTIFICATE,
            self.server.certificate_pem.as_bytes(),
            false,
        )?;
        write(
            directory,
            file_names::SERVER_PRIVATE_KEY,
            self.server.private_key_pem.as_bytes(),
            true,
        )?;
        for (agency, material) in &self.organisations {
            let token = agency.token();
            write(
                directory,
                &file_names::client_certificate(token),
                material.client.certificate_pem.as_bytes(),
                false,
            )?;
            write(
                directory,
                &file_names::client_private_key(token),
                material.client.private_key_pem.as_bytes(),
                true,
            )?;
            write(
                directory,
                &file_names::token_signing_key(token),
                engine.encode(&material.token_signing_key_pkcs8).as_bytes(),
                true,
            )?;
            write(
                directory,
                &file_names::token_verifying_key_set(token),
                &key_set_json(&material.token_verifying_key_set())?,
                false,
            )?;
        }
        Ok(())
    }
}
