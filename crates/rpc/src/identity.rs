//! Who is calling, proven twice: the connection's client certificate names the organisation
//! (mTLS), and a signed officer token names the person, role and unit within it.
//!
//! The token is `base64url(claims JSON) "." base64url(Ed25519 signature over the first part)`,
//! sent as `authorization: Bearer <token>`. It is checked against the public key of the
//! organisation it claims, and that organisation must be the one the client certificate was
//! issued to: a municipality certificate cannot carry an FK officer's token. There is no "auth
//! off" switch; development uses the keys `deploy/dev-pki.sh` generates.
//!
//! [`crate::access::Authenticated`] runs [`Authority::authenticate`] on every call before any
//! handler, and handlers read the verified [`Caller`] from the request's extensions with
//! [`caller`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use domain::{Actor, Agency, PersonId, Role, UnitId};
use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataMap;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use tonic::Status;

/// The metadata key carrying the officer token.
pub const AUTHORIZATION_HEADER: &str = "authorization";

/// The verified caller of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The organisation the certificate and the token both name.
    pub agency: Agency,
    /// The person, role and unit the token names.
    pub actor: Actor,
}

/// What an officer token asserts. Times are Unix seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenClaims {
    /// The issuing organisation's agency token (`municipality`, `fk`, `af`, `psychiatry`).
    pub organisation: String,
    /// The person's pseudo-id in that organisation's directory.
    pub person_id: String,
    /// The role token (`coach`, `team_leader`, `case_officer`, `auditor`, `system`).
    pub role: String,
    /// The person's unit.
    pub unit: String,
    /// When the token was issued.
    pub issued_at_s: i64,
    /// When it stops being valid.
    pub expires_at_s: i64,
}

/// Why a caller is not authenticated. Each variant names the broken rule; all map to
/// `UNAUTHENTICATED` (see [`crate::errors::unauthenticated`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// No client certificate on the connection.
    #[error("client_certificate_missing: the connection carries no client certificate (mTLS is required)")]
    ClientCertificateMissing,
    /// The client certificate names no known organisation.
    #[error("client_certificate_organisation_unknown: the client certificate names no known organisation ({0})")]
    ClientCertificateOrganisationUnknown(String),
    /// No token.
    #[error("token_missing: metadata `authorization: Bearer <officer token>` is required")]
    TokenMissing,
    /// The token is not `claims.signature` in base64url, or its claims do not parse.
    #[error("token_malformed: {0}")]
    TokenMalformed(String),
    /// The token names an organisation whose key this service does not hold.
    #[error("token_organisation_unknown: no verifying key for organisation `{0}`")]
    TokenOrganisationUnknown(String),
    /// The signature does not verify with the organisation's key.
    #[error("token_signature_invalid: the token is not signed by {0}'s key")]
    TokenSignatureInvalid(String),
    /// The token has expired or is not yet valid.
    #[error("token_expired: the token is valid from {issued_at_s} to {expires_at_s} (Unix seconds), now is {now_s}")]
    TokenExpired {
        /// Issued at.
        issued_at_s: i64,
        /// Expires at.
        expires_at_s: i64,
        /// The service's clock.
        now_s: i64,
    },
    /// The token's validity is longer than the service accepts.
    #[error("token_lifetime_too_long: the token is valid for {lifetime_s} s, at most {lifetime_max_s} s is accepted")]
    TokenLifetimeTooLong {
        /// Its lifetime.
        lifetime_s: i64,
        /// The limit.
        lifetime_max_s: i64,
    },
    /// The token's organisation is not the certificate's.
    #[error("token_organisation_mismatch: the token is from {token} but the client certificate is {certificate}'s")]
    OrganisationMismatch {
        /// The token's organisation.
        token: String,
        /// The certificate's organisation.
        certificate: String,
    },
    /// A claim does not parse (person id, role, unit).
    #[error("token_claim_invalid: {0}")]
    ClaimInvalid(String),
}

impl IdentityError {
    /// The rule's stable name (the text before the colon).
    pub fn rule(&self) -> &'static str {
        match self {
            Self::ClientCertificateMissing => "client_certificate_missing",
            Self::ClientCertificateOrganisationUnknown(_) => {
                "client_certificate_organisation_unknown"
            }
            Self::TokenMissing => "token_missing",
            Self::TokenMalformed(_) => "token_malformed",
            Self::TokenOrganisationUnknown(_) => "token_organisation_unknown",
            Self::TokenSignatureInvalid(_) => "token_signature_invalid",
            Self::TokenExpired { .. } => "token_expired",
            Self::TokenLifetimeTooLong { .. } => "token_lifetime_too_long",
            Self::OrganisationMismatch { .. } => "token_organisation_mismatch",
            Self::ClaimInvalid(_) => "token_claim_invalid",
        }
    }
}

/// Identity settings (section `identity`). Paths default to what `deploy/dev-pki.sh` writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// The CA that issues every organisation's client certificates, PEM.
    pub ca_certificate_path: String,
    /// This service's server certificate, PEM.
    pub certificate_path: String,
    /// Its private key, PEM. Never logged.
    pub private_key_path: String,
    /// Directory holding `<agency>.token-verifying.pub` for each organisation.
    pub token_verifying_keys_directory: String,
    /// Longest token validity accepted.
    pub token_lifetime_max_s: i64,
    /// Clock difference tolerated between issuer and service.
    pub token_clock_skew_s: i64,
}

/// Where the development PKI lives, relative to the repository root.
pub const DEVELOPMENT_PKI_DIRECTORY: &str = "deploy/.local/pki";

/// File names inside a PKI directory, as `deploy/dev-pki.sh` (devpki) writes them and the
/// services' default configuration and clients read them.
pub mod pki_files {
    /// The CA certificate.
    pub const CA_CERTIFICATE: &str = "ca.pem";
    /// The server certificate.
    pub const SERVER_CERTIFICATE: &str = "server.pem";
    /// The server's private key.
    pub const SERVER_PRIVATE_KEY: &str = "server.key.pem";

    /// An organisation's client certificate.
    pub fn client_certificate(agency: &str) -> String {
        format!("{agency}.client.pem")
    }
    /// An organisation's client private key.
    pub fn client_private_key(agency: &str) -> String {
        format!("{agency}.client.key.pem")
    }
    /// An organisation's token-signing key (base64 of PKCS#8 DER).
    pub fn token_signing_key(agency: &str) -> String {
        format!("{agency}.token-signing.key")
    }
    /// An organisation's token-verifying key (base64 of the 32-byte Ed25519 public key).
    pub fn token_verifying_key(agency: &str) -> String {
        format!("{agency}.token-verifying.pub")
    }
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self::in_directory(Path::new(DEVELOPMENT_PKI_DIRECTORY))
    }
}

impl IdentityConfig {
    /// The configuration for a PKI directory laid out as `deploy/dev-pki.sh` writes it.
    pub fn in_directory(directory: &Path) -> Self {
        let path = |name: &str| directory.join(name).to_string_lossy().into_owned();
        Self {
            ca_certificate_path: path(pki_files::CA_CERTIFICATE),
            certificate_path: path(pki_files::SERVER_CERTIFICATE),
            private_key_path: path(pki_files::SERVER_PRIVATE_KEY),
            token_verifying_keys_directory: directory.to_string_lossy().into_owned(),
            token_lifetime_max_s: 12 * 60 * 60,
            token_clock_skew_s: 60,
        }
    }

    /// Checks the limits; the message names the key. The files are read (and a missing one
    /// named with its key) when the service starts.
    pub fn validate(&self) -> Result<(), String> {
        if !(60..=7 * 24 * 60 * 60).contains(&self.token_lifetime_max_s) {
            return Err("identity.token_lifetime_max_s must be between 60 and 604800".into());
        }
        if !(0..=600).contains(&self.token_clock_skew_s) {
            return Err("identity.token_clock_skew_s must be between 0 and 600".into());
        }
        Ok(())
    }

    /// The server's TLS settings: its certificate, and client certificates required and
    /// checked against the CA.
    pub fn server_tls(&self) -> Result<ServerTlsConfig, String> {
        let certificate = read_text(
            "identity.certificate_path",
            Path::new(&self.certificate_path),
        )?;
        let private_key = read_text(
            "identity.private_key_path",
            Path::new(&self.private_key_path),
        )?;
        let ca = read_text(
            "identity.ca_certificate_path",
            Path::new(&self.ca_certificate_path),
        )?;
        Ok(ServerTlsConfig::new()
            .identity(Identity::from_pem(certificate, private_key))
            .client_ca_root(Certificate::from_pem(ca)))
    }
}

fn read_text(key: &str, path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| {
        format!(
            "{key}: cannot read {}: {error} (run deploy/dev-pki.sh to create a development PKI)",
            path.display()
        )
    })
}

/// Checks certificates and tokens for one service.
#[derive(Debug)]
pub struct Authority {
    verifying_keys: BTreeMap<Agency, Vec<u8>>,
    token_lifetime_max_s: i64,
    token_clock_skew_s: i64,
}

impl Authority {
    /// Loads every organisation's verifying key. A missing key is a configuration error: each
    /// of the four organisations must be able to call.
    pub fn from_config(config: &IdentityConfig) -> Result<Self, String> {
        let engine = base64::engine::general_purpose::STANDARD;
        let mut verifying_keys = BTreeMap::new();
        for agency in Agency::ALL {
            let path = PathBuf::from(&config.token_verifying_keys_directory)
                .join(pki_files::token_verifying_key(agency.token()));
            let text = read_text("identity.token_verifying_keys_directory", &path)?;
            let key = engine
                .decode(text.trim())
                .map_err(|error| format!("{}: not base64: {error}", path.display()))?;
            if key.len() != 32 {
                return Err(format!(
                    "{}: an Ed25519 public key is 32 bytes, this is {}",
                    path.display(),
                    key.len()
                ));
            }
            verifying_keys.insert(agency, key);
        }
        Ok(Self {
            verifying_keys,
            token_lifetime_max_s: config.token_lifetime_max_s,
            token_clock_skew_s: config.token_clock_skew_s,
        })
    }

    /// Verifies the `authorization` header's token (signature, validity, claims) and that its
    /// organisation is `certificate_organisation`.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        certificate_organisation: Option<Agency>,
        now_s: i64,
    ) -> Result<Caller, IdentityError> {
        let certificate_organisation =
            certificate_organisation.ok_or(IdentityError::ClientCertificateMissing)?;
        let header = authorization.ok_or(IdentityError::TokenMissing)?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(|| IdentityError::TokenMalformed("expected `Bearer <token>`".into()))?
            .trim();
        let (agency, claims) = self.verify(token)?;
        if agency != certificate_organisation {
            return Err(IdentityError::OrganisationMismatch {
                token: agency.token().into(),
                certificate: certificate_organisation.token().into(),
            });
        }
        let lifetime_s = claims.expires_at_s - claims.issued_at_s;
        if lifetime_s > self.token_lifetime_max_s {
            return Err(IdentityError::TokenLifetimeTooLong {
                lifetime_s,
                lifetime_max_s: self.token_lifetime_max_s,
            });
        }
        if now_s + self.token_clock_skew_s < claims.issued_at_s
            || now_s - self.token_clock_skew_s >= claims.expires_at_s
        {
            return Err(IdentityError::TokenExpired {
                issued_at_s: claims.issued_at_s,
                expires_at_s: claims.expires_at_s,
                now_s,
            });
        }
        let person_id = PersonId::parse(&claims.person_id)
            .map_err(|error| IdentityError::ClaimInvalid(format!("person_id: {error}")))?;
        let role = Role::from_token(&claims.role).ok_or_else(|| {
            IdentityError::ClaimInvalid(format!("unknown role `{}`", claims.role))
        })?;
        let unit = UnitId::parse(&claims.unit)
            .map_err(|error| IdentityError::ClaimInvalid(format!("unit: {error}")))?;
        Ok(Caller {
            agency,
            actor: Actor {
                person_id,
                role,
                unit,
            },
        })
    }

    /// Checks the signature against the claimed organisation's key; returns that organisation
    /// and the claims.
    fn verify(&self, token: &str) -> Result<(Agency, TokenClaims), IdentityError> {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (claims_part, signature_part) = token
            .split_once('.')
            .ok_or_else(|| IdentityError::TokenMalformed("expected `claims.signature`".into()))?;
        let claims_json = engine
            .decode(claims_part)
            .map_err(|error| IdentityError::TokenMalformed(format!("claims: {error}")))?;
        let signature = engine
            .decode(signature_part)
            .map_err(|error| IdentityError::TokenMalformed(format!("signature: {error}")))?;
        let claims: TokenClaims = serde_json::from_slice(&claims_json)
            .map_err(|error| IdentityError::TokenMalformed(format!("claims: {error}")))?;
        let agency = Agency::from_token(&claims.organisation)
            .ok_or_else(|| IdentityError::TokenOrganisationUnknown(claims.organisation.clone()))?;
        let key = self
            .verifying_keys
            .get(&agency)
            .ok_or_else(|| IdentityError::TokenOrganisationUnknown(claims.organisation.clone()))?;
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
            .verify(claims_part.as_bytes(), &signature)
            .map_err(|_| IdentityError::TokenSignatureInvalid(claims.organisation.clone()))?;
        Ok((agency, claims))
    }
}

/// The organisation a DER client certificate was issued to (its subject's O), when it is one
/// of the four agencies.
pub fn certificate_organisation(certificate_der: &[u8]) -> Result<Agency, IdentityError> {
    let (_, certificate) =
        x509_parser::parse_x509_certificate(certificate_der).map_err(|error| {
            IdentityError::ClientCertificateOrganisationUnknown(format!("unparseable: {error}"))
        })?;
    let organisation = certificate
        .subject()
        .iter_organization()
        .next()
        .and_then(|attribute| attribute.as_str().ok())
        .ok_or_else(|| {
            IdentityError::ClientCertificateOrganisationUnknown("no subject organisation".into())
        })?;
    Agency::from_token(organisation)
        .ok_or_else(|| IdentityError::ClientCertificateOrganisationUnknown(organisation.into()))
}

/// The verified caller of a request, placed there by [`crate::access::Authenticated`].
pub fn caller(extensions: &tonic::Extensions) -> Result<Caller, Status> {
    extensions
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| crate::errors::unauthenticated(&IdentityError::TokenMissing))
}

/// Signs officer tokens for one organisation (clients, the demo, tests; in production the
/// organisation's identity provider).
pub struct TokenSigner {
    organisation: Agency,
    key_pair: ring::signature::Ed25519KeyPair,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenSigner")
            .field("organisation", &self.organisation)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// From a PKCS#8 DER Ed25519 key.
    pub fn from_pkcs8(organisation: Agency, pkcs8: &[u8]) -> Result<Self, String> {
        let key_pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|error| format!("not an Ed25519 PKCS#8 key: {error}"))?;
        Ok(Self {
            organisation,
            key_pair,
        })
    }

    /// From a file holding base64 of a PKCS#8 DER key (`<agency>.token-signing.key`).
    pub fn from_file(organisation: Agency, path: &Path) -> Result<Self, String> {
        let text = read_text("token signing key", path)?;
        let pkcs8 = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|error| format!("{}: not base64: {error}", path.display()))?;
        Self::from_pkcs8(organisation, &pkcs8)
    }

    /// The organisation this signer speaks for.
    pub fn organisation(&self) -> Agency {
        self.organisation
    }

    /// Signs any claims, valid or not (tests use it to forge bad ones).
    pub fn sign(&self, claims: &TokenClaims) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims_part = engine.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signature = self.key_pair.sign(claims_part.as_bytes());
        format!("{claims_part}.{}", engine.encode(signature.as_ref()))
    }

    /// A token for one officer, valid from now for `lifetime_s`.
    pub fn officer_token(
        &self,
        person_id: &str,
        role: Role,
        unit: &str,
        lifetime_s: i64,
    ) -> String {
        let now_s = chrono::Utc::now().timestamp();
        self.sign(&TokenClaims {
            organisation: self.organisation.token().into(),
            person_id: person_id.into(),
            role: role.token().into(),
            unit: unit.into(),
            issued_at_s: now_s,
            expires_at_s: now_s + lifetime_s,
        })
    }
}

/// Adds a token to outgoing request metadata.
pub fn attach_token(metadata: &mut MetadataMap, token: &str) {
    if let Ok(value) = format!("Bearer {token}").parse() {
        metadata.insert(AUTHORIZATION_HEADER, value);
    }
}

/// A client's TLS settings: trust the CA, present the organisation's certificate.
pub fn client_tls(ca_pem: &str, certificate_pem: &str, private_key_pem: &str) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(Identity::from_pem(certificate_pem, private_key_pem))
        .domain_name("localhost")
}

/// [`client_tls`] from PEM files, each given with the configuration key that names it, so a
/// missing file is reported by its key.
pub fn client_tls_from_files(
    ca_certificate: (&str, &Path),
    certificate: (&str, &Path),
    private_key: (&str, &Path),
) -> Result<ClientTlsConfig, String> {
    Ok(client_tls(
        &read_text(ca_certificate.0, ca_certificate.1)?,
        &read_text(certificate.0, certificate.1)?,
        &read_text(private_key.0, private_key.1)?,
    ))
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
