//! Who is calling, proven twice: the connection's client certificate names the organisation
//! (mTLS), and a signed officer token names the person, role and unit within it.
//!
//! The officer token is a JWT (RFC 7519) signed with EdDSA (Ed25519), sent as
//! `authorization: Bearer <token>`, as an organisation's identity provider (OIDC) issues it.
//! Nothing in a token is believed before its signature checks out: only the header's key id
//! (`kid`) is read first, to pick the verifying key from this service's key table. The table,
//! loaded from each organisation's published key set, fixes per key the organisation and the
//! algorithm; the token's `alg` header is never used to choose how to verify (a token saying
//! `none`, `HS256` or anything but the key's algorithm is refused). An organisation may publish
//! several keys at once (rotation); a key removed from its set is refused. The verified token
//! must name its key's organisation, this federation as audience and the organisation's issuer,
//! and that organisation must be the one the client certificate was issued to: a municipality
//! certificate cannot carry an FK officer's token. There is no "auth off" switch; development
//! uses the keys `deploy/dev-pki.sh` generates.
//!
//! [`crate::access::Authenticated`] runs [`Authority::authenticate`] on every call before any
//! handler, and handlers read the verified [`Caller`] from the request's extensions with
//! [`caller`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use domain::{Actor, Agency, PersonId, Role, UnitId};
use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataMap;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use tonic::Status;

/// The metadata key carrying the officer token.
pub const AUTHORIZATION_HEADER: &str = "authorization";

/// The audience (`aud`) tokens carry unless configured otherwise: this federation, as it is
/// registered with the organisations' identity providers.
pub const DEFAULT_TOKEN_AUDIENCE: &str = "ips-samverkan";

/// How much of an unverified header value (key id, algorithm) a refusal repeats.
const UNVERIFIED_TEXT_SHOWN_MAX_CHARS: usize = 64;

/// The verified caller of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The organisation the certificate, the token and its signing key all name.
    pub agency: Agency,
    /// The person, role and unit the token names.
    pub actor: Actor,
}

/// The `aud` claim: one audience or several (RFC 7519 allows both).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenAudience {
    /// A single audience.
    One(String),
    /// Several audiences; the token is for each of them.
    Several(Vec<String>),
}

/// What an officer token asserts: the JWT claims. Times are Unix seconds.
///
/// Unknown claims are ignored: identity providers add their own (`jti`, `auth_time`, ...).
/// These are only ever read from a token whose signature has been verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// The identity provider that issued the token (`iss`).
    #[serde(rename = "iss")]
    pub issuer: String,
    /// Who the token is for (`aud`).
    #[serde(rename = "aud")]
    pub audience: TokenAudience,
    /// The person's pseudo-id in the organisation's directory (`sub`).
    #[serde(rename = "sub")]
    pub person_id: String,
    /// The issuing organisation's agency token (`municipality`, `fk`, `af`, `psychiatry`).
    pub organisation: String,
    /// The role token (`coach`, `team_leader`, `case_officer`, `auditor`, `system`).
    pub role: String,
    /// The person's unit.
    pub unit: String,
    /// When the token was issued (`iat`).
    #[serde(rename = "iat")]
    pub issued_at_s: i64,
    /// When it becomes valid (`nbf`), if the issuer says.
    #[serde(rename = "nbf", default, skip_serializing_if = "Option::is_none")]
    pub not_before_s: Option<i64>,
    /// When it stops being valid (`exp`).
    #[serde(rename = "exp")]
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
    /// The token is not a JWT (`header.claims.signature` in base64url, JSON inside), or too long.
    #[error("token_malformed: {0}")]
    TokenMalformed(String),
    /// The token's header names no key.
    #[error("token_key_id_missing: the token's header names no key id (`kid`)")]
    TokenKeyIdMissing,
    /// The token's key id is not in this service's key table.
    #[error(
        "token_key_unknown: no verifying key has id `{0}` (never configured here, or rotated out)"
    )]
    TokenKeyUnknown(String),
    /// The token's `alg` header is not the algorithm its key is fixed to.
    #[error("token_algorithm_refused: key `{key_id}` verifies {expected} only; the token's header says `{algorithm}`")]
    TokenAlgorithmRefused {
        /// The key the token named.
        key_id: String,
        /// What the token's header says.
        algorithm: String,
        /// The key's algorithm.
        expected: &'static str,
    },
    /// The signature does not verify with the named key.
    #[error(
        "token_signature_invalid: the token is not signed by key `{key_id}` ({organisation}'s)"
    )]
    TokenSignatureInvalid {
        /// The key the token named.
        key_id: String,
        /// That key's organisation.
        organisation: String,
    },
    /// The token's `iss` is not its organisation's identity provider.
    #[error("token_issuer_invalid: {organisation}'s tokens must be issued by `{expected}`")]
    TokenIssuerInvalid {
        /// The key's organisation.
        organisation: String,
        /// The issuer configured for it.
        expected: String,
    },
    /// The token's `aud` does not name this federation.
    #[error("token_audience_invalid: the token is not for audience `{expected}`")]
    TokenAudienceInvalid {
        /// The audience this service accepts.
        expected: String,
    },
    /// The token's `organisation` claim names no known organisation.
    #[error("token_organisation_unknown: the token names organisation `{0}`, which is none of municipality, fk, af, psychiatry")]
    TokenOrganisationUnknown(String),
    /// The token's `organisation` claim is not its signing key's organisation.
    #[error("token_organisation_not_the_signers: the token names {claimed} but is signed by {signer}'s key `{key_id}`")]
    TokenOrganisationNotTheSigners {
        /// The organisation the claims name.
        claimed: String,
        /// The signing key's organisation.
        signer: String,
        /// The signing key.
        key_id: String,
    },
    /// The token has expired or is not yet valid.
    #[error("token_expired: the token is valid from {valid_from_s} to {expires_at_s} (Unix seconds), now is {now_s}")]
    TokenExpired {
        /// The later of issued-at and not-before.
        valid_from_s: i64,
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
    /// A claim is missing or does not parse (person id, role, unit, times).
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
            Self::TokenKeyIdMissing => "token_key_id_missing",
            Self::TokenKeyUnknown(_) => "token_key_unknown",
            Self::TokenAlgorithmRefused { .. } => "token_algorithm_refused",
            Self::TokenSignatureInvalid { .. } => "token_signature_invalid",
            Self::TokenIssuerInvalid { .. } => "token_issuer_invalid",
            Self::TokenAudienceInvalid { .. } => "token_audience_invalid",
            Self::TokenOrganisationUnknown(_) => "token_organisation_unknown",
            Self::TokenOrganisationNotTheSigners { .. } => "token_organisation_not_the_signers",
            Self::TokenExpired { .. } => "token_expired",
            Self::TokenLifetimeTooLong { .. } => "token_lifetime_too_long",
            Self::OrganisationMismatch { .. } => "token_organisation_mismatch",
            Self::ClaimInvalid(_) => "token_claim_invalid",
        }
    }
}

/// Identity settings (section `identity`). Paths and issuers default to what
/// `deploy/dev-pki.sh` writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// The CA that issues every organisation's client certificates, PEM.
    pub ca_certificate_path: String,
    /// This service's server certificate, PEM.
    pub certificate_path: String,
    /// Its private key, PEM. Never logged.
    pub private_key_path: String,
    /// Directory holding `<agency>.token-verifying.jwks.json` for each organisation: the JSON
    /// Web Key Set its identity provider publishes. Two keys in a set = a rotation under way.
    pub token_verifying_keys_directory: String,
    /// The issuer (`iss`) each organisation's tokens must carry, by agency token
    /// (`municipality`, `fk`, `af`, `psychiatry`): its identity provider's issuer identifier.
    pub token_issuers: BTreeMap<String, String>,
    /// The audience (`aud`) every token must carry.
    pub token_audience: String,
    /// Most verifying keys one organisation's set may hold (old and new during a rotation).
    pub token_verifying_keys_per_organisation_max: usize,
    /// Longest token accepted, in bytes (checked before anything in it is decoded).
    pub token_length_max_bytes: usize,
    /// Longest token validity accepted.
    pub token_lifetime_max_s: i64,
    /// Clock difference tolerated between issuer and service.
    pub token_clock_skew_s: i64,
    /// Most tokens whose signature, issuer, audience and claims were verified that are kept,
    /// so an officer's next call with the same token skips the Ed25519 check (5 % of an agency
    /// service's CPU under load, by perf); least recently used out; 0 keeps none. Only what
    /// does not change with time is kept: validity, lifetime and organisation are checked on
    /// every call.
    pub verified_tokens_kept_max: usize,
    /// How often the key sets in `token_verifying_keys_directory` are read again, so an
    /// organisation's key rotation (a new key added, an old one removed) takes effect without a
    /// restart; 0 reads them only at start. A set that does not load is reported and the keys
    /// loaded before are kept.
    pub token_verifying_keys_reload_interval_ms: u64,
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
    /// An organisation's token-verifying keys: a JSON Web Key Set (RFC 7517) of Ed25519 keys.
    pub fn token_verifying_key_set(agency: &str) -> String {
        format!("{agency}.token-verifying.jwks.json")
    }
}

/// The issuer the development PKI's tokens name for `agency` (the default of
/// `identity.token_issuers`). A URN, so it cannot be mistaken for a real identity provider.
pub fn development_token_issuer(agency: Agency) -> String {
    format!("urn:ips-samverkan:development-idp:{}", agency.token())
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
            token_issuers: Agency::ALL
                .into_iter()
                .map(|agency| (agency.token().to_owned(), development_token_issuer(agency)))
                .collect(),
            token_audience: DEFAULT_TOKEN_AUDIENCE.to_owned(),
            token_verifying_keys_per_organisation_max: 4,
            token_length_max_bytes: 8 * 1024,
            token_lifetime_max_s: 12 * 60 * 60,
            token_clock_skew_s: 60,
            verified_tokens_kept_max: 4_096,
            token_verifying_keys_reload_interval_ms: 60_000,
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
        if !(1..=16).contains(&self.token_verifying_keys_per_organisation_max) {
            return Err(
                "identity.token_verifying_keys_per_organisation_max must be between 1 and 16"
                    .into(),
            );
        }
        if !(512..=64 * 1024).contains(&self.token_length_max_bytes) {
            return Err("identity.token_length_max_bytes must be between 512 and 65536".into());
        }
        if self.token_verifying_keys_reload_interval_ms > 24 * 60 * 60 * 1000 {
            return Err(
                "identity.token_verifying_keys_reload_interval_ms must be at most 86400000 (a day)"
                    .into(),
            );
        }
        if self.verified_tokens_kept_max > 1_000_000 {
            return Err("identity.verified_tokens_kept_max must be at most 1000000".into());
        }
        if self.token_audience.trim().is_empty() {
            return Err("identity.token_audience must not be empty".into());
        }
        for organisation in self.token_issuers.keys() {
            if Agency::from_token(organisation).is_none() {
                return Err(format!(
                    "identity.token_issuers.{organisation}: not an organisation (municipality, fk, af, psychiatry)"
                ));
            }
        }
        for agency in Agency::ALL {
            match self.token_issuers.get(agency.token()) {
                Some(issuer) if !issuer.trim().is_empty() => {}
                Some(_) | None => {
                    return Err(format!(
                        "identity.token_issuers.{} is required (the issuer its tokens name)",
                        agency.token()
                    ))
                }
            }
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

/// One public key as a JWK (RFC 7517, RFC 8037 for Ed25519). Every member is optional here so
/// that a key this service cannot use is refused by name rather than by a parse error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyingJwk {
    /// Key type (`kty`): `OKP` for Ed25519.
    #[serde(rename = "kty", default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    /// Curve (`crv`): `Ed25519`.
    #[serde(rename = "crv", default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
    /// The public key (`x`), base64url without padding.
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub public_key_base64url: Option<String>,
    /// Key id (`kid`): what a token's header names.
    #[serde(rename = "kid", default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Algorithm (`alg`): `EdDSA` when present.
    #[serde(rename = "alg", default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// Use (`use`): `sig` when present.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
}

impl VerifyingJwk {
    /// An Ed25519 verifying key with its key id.
    pub fn ed25519(key_id: &str, public_key: &[u8]) -> Self {
        Self {
            key_type: Some("OKP".into()),
            curve: Some("Ed25519".into()),
            public_key_base64url: Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public_key),
            ),
            key_id: Some(key_id.to_owned()),
            algorithm: Some(TokenAlgorithm::EdDsa.jwt_name().into()),
            key_use: Some("sig".into()),
        }
    }
}

/// One organisation's verifying keys, as its identity provider publishes them (`jwks_uri`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyingKeySet {
    /// The keys; more than one while a rotation is under way.
    pub keys: Vec<VerifyingJwk>,
}

/// The signature algorithms a verifying key can be fixed to. One today; a key's algorithm comes
/// from the key table, never from a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAlgorithm {
    /// EdDSA over Ed25519 (RFC 8037).
    EdDsa,
}

impl TokenAlgorithm {
    /// The JWS `alg` name.
    pub fn jwt_name(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
        }
    }

    fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// The development key id for an Ed25519 public key: the organisation, then the key's RFC 7638
/// JWK thumbprint. Devpki writes it into the key set and [`TokenSigner`] derives the same from
/// its key, so both agree without a file saying so.
pub fn development_key_id(agency: Agency, public_key: &[u8]) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // RFC 7638 §3.2: the required members in lexicographic order, no whitespace.
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        engine.encode(public_key)
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    format!("{}-{}", agency.token(), engine.encode(digest.as_ref()))
}

/// A key in the table: what it verifies and how, all fixed by configuration.
struct VerifyingKey {
    organisation: Agency,
    algorithm: TokenAlgorithm,
    decoding_key: jsonwebtoken::DecodingKey,
    /// Signature algorithm, issuer, audience and required claims for this key's tokens.
    validation: jsonwebtoken::Validation,
    /// The issuer named in refusals.
    issuer: String,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("VerifyingKey")
            .field("organisation", &self.organisation)
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// The only part of a token read before its signature is checked.
#[derive(Deserialize)]
struct UnverifiedHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// RFC 7515 §4.1.11: extensions a verifier must understand; this one understands none.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Checks certificates and tokens for one service.
#[derive(Debug)]
pub struct Authority {
    /// By key id.
    verifying_keys: BTreeMap<String, VerifyingKey>,
    token_audience: String,
    token_length_max_bytes: usize,
    token_lifetime_max_s: i64,
    token_clock_skew_s: i64,
    /// Tokens verified before, by the SHA-256 of the whole token (so a kept token costs 32
    /// bytes whatever its length): the key id that verified each and its claims
    /// (`identity.verified_tokens_kept_max`). A refused token is never kept, and a kept one
    /// only matches the exact same bytes, so nothing unverified is ever taken from here.
    verified_tokens: Option<VerifiedTokens>,
    /// The key set files' text as loaded by [`Authority::from_config`] (empty when built from
    /// key sets in memory): a reload builds a new authority only when the files changed.
    loaded_key_set_texts: Vec<String>,
}

impl Authority {
    /// Loads every organisation's key set from `identity.token_verifying_keys_directory`. A
    /// missing set is a configuration error: each of the four organisations must be able to
    /// call.
    pub fn from_config(config: &IdentityConfig) -> Result<Self, String> {
        Self::from_key_set_texts(config, Self::read_key_set_texts(config)?)
    }

    /// Where `agency`'s key set file is.
    fn key_set_path(config: &IdentityConfig, agency: Agency) -> PathBuf {
        PathBuf::from(&config.token_verifying_keys_directory)
            .join(pki_files::token_verifying_key_set(agency.token()))
    }

    /// Each organisation's key set file as text, in [`Agency::ALL`] order.
    fn read_key_set_texts(config: &IdentityConfig) -> Result<Vec<String>, String> {
        Agency::ALL
            .into_iter()
            .map(|agency| {
                read_text(
                    "identity.token_verifying_keys_directory",
                    &Self::key_set_path(config, agency),
                )
            })
            .collect()
    }

    fn from_key_set_texts(config: &IdentityConfig, texts: Vec<String>) -> Result<Self, String> {
        let mut key_sets = BTreeMap::new();
        for (agency, text) in Agency::ALL.into_iter().zip(&texts) {
            let key_set: VerifyingKeySet = serde_json::from_str(text).map_err(|error| {
                format!(
                    "{}: not a JSON Web Key Set: {error}",
                    Self::key_set_path(config, agency).display()
                )
            })?;
            key_sets.insert(agency, key_set);
        }
        let mut authority = Self::from_key_sets(config, &key_sets)
            .map_err(|error| format!("identity.token_verifying_keys_directory: {error}"))?;
        authority.loaded_key_set_texts = texts;
        tracing::info!(key_ids = ?authority.key_ids(), "officer token verifying keys loaded");
        Ok(authority)
    }

    /// The key sets as they are on disk now, when they differ from what this authority was
    /// loaded from: `Ok(None)` when unchanged, else the new authority (with nothing kept from
    /// this one, so a token verified under a removed key is verified again, and refused).
    pub fn reloaded(&self, config: &IdentityConfig) -> Result<Option<Self>, String> {
        let texts = Self::read_key_set_texts(config)?;
        if texts == self.loaded_key_set_texts {
            return Ok(None);
        }
        Self::from_key_set_texts(config, texts).map(Some)
    }

    /// Builds the key table from each organisation's key set. Every key must be Ed25519 with a
    /// key id unique across organisations; anything else stops the service rather than being
    /// skipped, so an operator sees at once that a key will not verify.
    pub fn from_key_sets(
        config: &IdentityConfig,
        key_sets: &BTreeMap<Agency, VerifyingKeySet>,
    ) -> Result<Self, String> {
        config.validate()?;
        let mut verifying_keys: BTreeMap<String, VerifyingKey> = BTreeMap::new();
        for agency in Agency::ALL {
            let organisation = agency.token();
            let key_set = key_sets
                .get(&agency)
                .ok_or_else(|| format!("no key set for {organisation}"))?;
            if key_set.keys.is_empty() {
                return Err(format!("{organisation}'s key set holds no key"));
            }
            if key_set.keys.len() > config.token_verifying_keys_per_organisation_max {
                return Err(format!(
                    "{organisation}'s key set holds {} keys, at most {} (identity.token_verifying_keys_per_organisation_max)",
                    key_set.keys.len(),
                    config.token_verifying_keys_per_organisation_max
                ));
            }
            let issuer = config
                .token_issuers
                .get(organisation)
                .ok_or_else(|| format!("identity.token_issuers.{organisation} is required"))?;
            for jwk in &key_set.keys {
                let (key_id, key) = Self::verifying_key(agency, issuer, config, jwk)?;
                if let Some(earlier) = verifying_keys.get(&key_id) {
                    return Err(format!(
                        "key id `{key_id}` appears twice ({} and {organisation}); a key id must name one key",
                        earlier.organisation.token()
                    ));
                }
                verifying_keys.insert(key_id, key);
            }
        }
        Ok(Self {
            verifying_keys,
            token_audience: config.token_audience.clone(),
            token_length_max_bytes: config.token_length_max_bytes,
            token_lifetime_max_s: config.token_lifetime_max_s,
            token_clock_skew_s: config.token_clock_skew_s,
            verified_tokens: (config.verified_tokens_kept_max > 0).then(|| {
                VerifiedTokens(Mutex::new(hashlink::LruCache::new(
                    config.verified_tokens_kept_max,
                )))
            }),
            loaded_key_set_texts: Vec::new(),
        })
    }

    fn verifying_key(
        agency: Agency,
        issuer: &str,
        config: &IdentityConfig,
        jwk: &VerifyingJwk,
    ) -> Result<(String, VerifyingKey), String> {
        let organisation = agency.token();
        let key_id = jwk
            .key_id
            .clone()
            .filter(|key_id| !key_id.is_empty())
            .ok_or_else(|| format!("{organisation}'s key set has a key without `kid`"))?;
        let named = |problem: String| format!("{organisation}'s key `{key_id}`: {problem}");
        match (jwk.key_type.as_deref(), jwk.curve.as_deref()) {
            (Some("OKP"), Some("Ed25519")) => {}
            (key_type, curve) => {
                return Err(named(format!(
                    "kty {key_type:?}, crv {curve:?}: only Ed25519 keys (kty OKP, crv Ed25519) are accepted"
                )))
            }
        }
        let algorithm = TokenAlgorithm::EdDsa;
        match jwk.algorithm.as_deref() {
            None => {}
            Some(named_algorithm) if named_algorithm == algorithm.jwt_name() => {}
            Some(other) => {
                return Err(named(format!(
                    "alg `{other}` on an Ed25519 key; only {} is accepted",
                    algorithm.jwt_name()
                )))
            }
        }
        match jwk.key_use.as_deref() {
            None | Some("sig") => {}
            Some(other) => return Err(named(format!("use `{other}`; a token key is for `sig`"))),
        }
        let public_key = jwk
            .public_key_base64url
            .as_deref()
            .ok_or_else(|| named("no `x`".into()))
            .and_then(|x| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(x)
                    .map_err(|error| named(format!("`x` is not base64url: {error}")))
            })?;
        if public_key.len() != 32 {
            return Err(named(format!(
                "an Ed25519 public key is 32 bytes, this is {}",
                public_key.len()
            )));
        }
        let mut validation = jsonwebtoken::Validation::new(algorithm.jsonwebtoken());
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[&config.token_audience]);
        // `exp` is required by the typed claims, not here: jsonwebtoken reads it as an unsigned
        // number, so a negative `exp` would be refused as missing (`token_claim_invalid`)
        // rather than expired (found by the fuzz program, `crates/fuzz`).
        validation.set_required_spec_claims(&["iss", "aud", "sub"]);
        // Expiry and not-before are checked in `authenticate` against the caller's clock, on
        // the typed claims (i64: an `exp` of the wrong JSON type fails to parse rather than
        // being skipped), so that a refusal can name the times.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Ok((
            key_id,
            VerifyingKey {
                organisation: agency,
                algorithm,
                decoding_key: jsonwebtoken::DecodingKey::from_ed_der(&public_key),
                validation,
                issuer: issuer.to_owned(),
            },
        ))
    }

    /// The key ids this authority accepts, by organisation (for start-up logs).
    pub fn key_ids(&self) -> BTreeMap<Agency, Vec<String>> {
        let mut key_ids: BTreeMap<Agency, Vec<String>> = BTreeMap::new();
        for (key_id, key) in &self.verifying_keys {
            key_ids
                .entry(key.organisation)
                .or_default()
                .push(key_id.clone());
        }
        key_ids
    }

    /// [`Authority::authenticate`] on the `authorization` header as it arrived. A header whose
    /// bytes are not all visible ASCII holds no readable token: that is a malformed token, not
    /// a missing one (found by the fuzz program, `crates/fuzz`).
    pub fn authenticate_header(
        &self,
        header: Option<&tonic::codegen::http::HeaderValue>,
        certificate_organisation: Option<Agency>,
        now_s: i64,
    ) -> Result<Caller, IdentityError> {
        let authorization = match header.map(|value| value.to_str()) {
            None => None,
            Some(Ok(text)) => Some(text),
            Some(Err(_)) if certificate_organisation.is_none() => {
                return Err(IdentityError::ClientCertificateMissing)
            }
            Some(Err(_)) => {
                return Err(IdentityError::TokenMalformed(
                    "the authorization header holds bytes other than visible ASCII".into(),
                ))
            }
        };
        self.authenticate(authorization, certificate_organisation, now_s)
    }

    /// Verifies the `authorization` header's token (signature, issuer, audience, validity,
    /// claims) and that its organisation is `certificate_organisation`.
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
        let (key_id, key, claims) = self.verify(token)?;
        let claimed = Agency::from_token(&claims.organisation)
            .ok_or_else(|| IdentityError::TokenOrganisationUnknown(shown(&claims.organisation)))?;
        if claimed != key.organisation {
            return Err(IdentityError::TokenOrganisationNotTheSigners {
                claimed: claimed.token().into(),
                signer: key.organisation.token().into(),
                key_id: key_id.to_owned(),
            });
        }
        let agency = key.organisation;
        if agency != certificate_organisation {
            return Err(IdentityError::OrganisationMismatch {
                token: agency.token().into(),
                certificate: certificate_organisation.token().into(),
            });
        }
        let lifetime_s = claims.expires_at_s.saturating_sub(claims.issued_at_s);
        if lifetime_s > self.token_lifetime_max_s {
            return Err(IdentityError::TokenLifetimeTooLong {
                lifetime_s,
                lifetime_max_s: self.token_lifetime_max_s,
            });
        }
        let valid_from_s = claims
            .not_before_s
            .map_or(claims.issued_at_s, |not_before_s| {
                not_before_s.max(claims.issued_at_s)
            });
        if now_s.saturating_add(self.token_clock_skew_s) < valid_from_s
            || now_s.saturating_sub(self.token_clock_skew_s) >= claims.expires_at_s
        {
            return Err(IdentityError::TokenExpired {
                valid_from_s,
                expires_at_s: claims.expires_at_s,
                now_s,
            });
        }
        let person_id = PersonId::parse(&claims.person_id)
            .map_err(|error| IdentityError::ClaimInvalid(format!("sub (person id): {error}")))?;
        let role = Role::from_token(&claims.role).ok_or_else(|| {
            IdentityError::ClaimInvalid(format!("unknown role `{}`", shown(&claims.role)))
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

    /// Picks the key by the header's `kid` (the one thing read before verification), checks
    /// the header's `alg` is that key's algorithm, verifies the signature, issuer and audience,
    /// and only then reads the claims.
    fn verify(&self, token: &str) -> Result<(&str, &VerifyingKey, TokenClaims), IdentityError> {
        if token.len() > self.token_length_max_bytes {
            return Err(IdentityError::TokenMalformed(format!(
                "the token is {} bytes, at most {} are accepted",
                token.len(),
                self.token_length_max_bytes
            )));
        }
        let digest = token_digest(token);
        let kept = self
            .verified_tokens
            .as_ref()
            .and_then(|verified_tokens| verified_tokens.get(&digest));
        if let Some((key_id, claims)) = kept {
            if let Some((key_id, key)) = self.verifying_keys.get_key_value(&key_id) {
                return Ok((key_id, key, claims));
            }
        }
        let (key_id, key, claims) = self.verify_signature(token)?;
        if let Some(verified_tokens) = &self.verified_tokens {
            verified_tokens.keep(digest, key_id, &claims);
        }
        Ok((key_id, key, claims))
    }

    /// [`Authority::verify`] without the kept tokens: the signature, issuer, audience and
    /// claims checked from scratch.
    fn verify_signature(
        &self,
        token: &str,
    ) -> Result<(&str, &VerifyingKey, TokenClaims), IdentityError> {
        let mut parts = token.split('.');
        let (Some(header_part), Some(_claims), Some(_signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(IdentityError::TokenMalformed(
                "expected a JWT: `header.claims.signature`".into(),
            ));
        };
        let header_json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header_part)
            .map_err(|error| IdentityError::TokenMalformed(format!("header: {error}")))?;
        let header: UnverifiedHeader = serde_json::from_slice(&header_json)
            .map_err(|error| IdentityError::TokenMalformed(format!("header: {error}")))?;
        let key_id = header.kid.ok_or(IdentityError::TokenKeyIdMissing)?;
        let (key_id, key) = self
            .verifying_keys
            .get_key_value(&key_id)
            .ok_or_else(|| IdentityError::TokenKeyUnknown(shown(&key_id)))?;
        if header.alg != key.algorithm.jwt_name() {
            return Err(IdentityError::TokenAlgorithmRefused {
                key_id: key_id.clone(),
                algorithm: shown(&header.alg),
                expected: key.algorithm.jwt_name(),
            });
        }
        if header.crit.is_some() {
            return Err(IdentityError::TokenMalformed(
                "header: `crit` names extensions this service does not understand".into(),
            ));
        }
        let verified =
            jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding_key, &key.validation)
                .map_err(|error| self.refusal(key_id, key, error))?;
        let claims: TokenClaims = serde_json::from_value(verified.claims)
            .map_err(|error| IdentityError::ClaimInvalid(error.to_string()))?;
        Ok((key_id, key, claims))
    }

    /// Names the rule a `jsonwebtoken` refusal broke.
    fn refusal(
        &self,
        key_id: &str,
        key: &VerifyingKey,
        error: jsonwebtoken::errors::Error,
    ) -> IdentityError {
        use jsonwebtoken::errors::ErrorKind;
        match error.kind() {
            ErrorKind::InvalidSignature => IdentityError::TokenSignatureInvalid {
                key_id: key_id.to_owned(),
                organisation: key.organisation.token().into(),
            },
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
                IdentityError::TokenAlgorithmRefused {
                    key_id: key_id.to_owned(),
                    algorithm: "(refused by the verifier)".into(),
                    expected: key.algorithm.jwt_name(),
                }
            }
            ErrorKind::InvalidIssuer => IdentityError::TokenIssuerInvalid {
                organisation: key.organisation.token().into(),
                expected: key.issuer.clone(),
            },
            ErrorKind::InvalidAudience => IdentityError::TokenAudienceInvalid {
                expected: self.token_audience.clone(),
            },
            ErrorKind::MissingRequiredClaim(claim) => {
                IdentityError::ClaimInvalid(format!("`{claim}` is required"))
            }
            ErrorKind::InvalidClaimFormat(claim) => {
                IdentityError::ClaimInvalid(format!("`{claim}` has the wrong type"))
            }
            // Every other kind (not a JWT, bad base64 or JSON, and kinds added later) refuses
            // the token; none admits it.
            _ => IdentityError::TokenMalformed(error.to_string()),
        }
    }
}

/// Verified tokens by their SHA-256, least recently used out: the key id that verified each,
/// and its claims.
#[derive(Debug)]
struct VerifiedTokens(Mutex<hashlink::LruCache<[u8; 32], (String, TokenClaims)>>);

impl VerifiedTokens {
    // A poisoned lock only means another call panicked mid-update: the token is verified
    // afresh, and not kept.
    fn get(&self, digest: &[u8; 32]) -> Option<(String, TokenClaims)> {
        self.0.lock().ok()?.get(digest).cloned()
    }

    fn keep(&self, digest: [u8; 32], key_id: &str, claims: &TokenClaims) {
        if let Ok(mut kept) = self.0.lock() {
            kept.insert(digest, (key_id.to_owned(), claims.clone()));
        }
    }
}

/// What a verified token is kept under: its SHA-256.
fn token_digest(token: &str) -> [u8; 32] {
    let mut digest = [0; 32];
    digest.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
    digest
}

/// An unverified value as a refusal repeats it: cut short, so a caller cannot make the
/// service echo a large payload.
fn shown(text: &str) -> String {
    match text.char_indices().nth(UNVERIFIED_TEXT_SHOWN_MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
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

/// Why a token could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token_signing_failed: {0}")]
pub struct TokenSigningError(String);

/// Signs officer tokens for one organisation (clients, the demo, tests; in production the
/// organisation's identity provider).
pub struct TokenSigner {
    organisation: Agency,
    key_id: String,
    issuer: String,
    audience: String,
    encoding_key: jsonwebtoken::EncodingKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenSigner")
            .field("organisation", &self.organisation)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// From a PKCS#8 DER Ed25519 key. The key id is [`development_key_id`] of its public key,
    /// the issuer [`development_token_issuer`], the audience [`DEFAULT_TOKEN_AUDIENCE`]: what
    /// the development PKI's key sets and the default configuration expect.
    pub fn from_pkcs8(organisation: Agency, pkcs8: &[u8]) -> Result<Self, String> {
        let key_pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|error| format!("not an Ed25519 PKCS#8 key: {error}"))?;
        let public_key = ring::signature::KeyPair::public_key(&key_pair);
        let signer = Self {
            organisation,
            key_id: development_key_id(organisation, public_key.as_ref()),
            issuer: development_token_issuer(organisation),
            audience: DEFAULT_TOKEN_AUDIENCE.to_owned(),
            encoding_key: jsonwebtoken::EncodingKey::from_ed_der(pkcs8),
        };
        // The JWT library reads the key itself; find out now, not at the first token.
        jsonwebtoken::crypto::sign(
            b"probe",
            &signer.encoding_key,
            TokenAlgorithm::EdDsa.jsonwebtoken(),
        )
        .map_err(|error| format!("the JWT signer refuses this Ed25519 key: {error}"))?;
        Ok(signer)
    }

    /// From a file holding base64 of a PKCS#8 DER key (`<agency>.token-signing.key`).
    pub fn from_file(organisation: Agency, path: &Path) -> Result<Self, String> {
        let text = read_text("token signing key", path)?;
        let pkcs8 = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|error| format!("{}: not base64: {error}", path.display()))?;
        Self::from_pkcs8(organisation, &pkcs8)
    }

    /// The same key under another key id (tests forge unknown and rotated-out ids with it).
    pub fn with_key_id(mut self, key_id: &str) -> Self {
        key_id.clone_into(&mut self.key_id);
        self
    }

    /// The same key naming another issuer.
    pub fn with_issuer(mut self, issuer: &str) -> Self {
        issuer.clone_into(&mut self.issuer);
        self
    }

    /// The same key naming another audience.
    pub fn with_audience(mut self, audience: &str) -> Self {
        audience.clone_into(&mut self.audience);
        self
    }

    /// The organisation this signer speaks for.
    pub fn organisation(&self) -> Agency {
        self.organisation
    }

    /// The key id its tokens' headers name.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The claims of a token for one officer, valid from `issued_at_s` for `lifetime_s`
    /// (tests alter them before [`TokenSigner::sign`]).
    pub fn claims(
        &self,
        person_id: &str,
        role: Role,
        unit: &str,
        issued_at_s: i64,
        lifetime_s: i64,
    ) -> TokenClaims {
        TokenClaims {
            issuer: self.issuer.clone(),
            audience: TokenAudience::One(self.audience.clone()),
            person_id: person_id.into(),
            organisation: self.organisation.token().into(),
            role: role.token().into(),
            unit: unit.into(),
            issued_at_s,
            not_before_s: Some(issued_at_s),
            expires_at_s: issued_at_s.saturating_add(lifetime_s),
        }
    }

    /// Signs any claims, valid or not (tests use it to forge bad ones), as an EdDSA JWT whose
    /// header names this signer's key id.
    pub fn sign(&self, claims: &TokenClaims) -> Result<String, TokenSigningError> {
        let mut header = jsonwebtoken::Header::new(TokenAlgorithm::EdDsa.jsonwebtoken());
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding_key)
            .map_err(|error| TokenSigningError(error.to_string()))
    }

    /// A token for one officer, valid from now for `lifetime_s`.
    pub fn officer_token(
        &self,
        person_id: &str,
        role: Role,
        unit: &str,
        lifetime_s: i64,
    ) -> Result<String, TokenSigningError> {
        let now_s = chrono::Utc::now().timestamp();
        self.sign(&self.claims(person_id, role, unit, now_s, lifetime_s))
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
