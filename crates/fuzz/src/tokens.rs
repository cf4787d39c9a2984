//! Officer tokens through the real verifier (`rpc::identity::Authority::authenticate`, as
//! the gatekeeper calls it): random header text, JWT-shaped tokens with chosen headers and
//! random signatures, properly signed tokens with one claim changed (or the certificate of
//! another organisation), and signed tokens with one byte changed. None may panic; each must
//! be refused with the rule its one defect breaks, or accepted when it has none; a changed
//! byte is never accepted; and an accepted caller's actor must be storable in an envelope.

use std::collections::BTreeMap;

use base64::Engine;
use domain::{Agency, PersonId, Role, UnitId};
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use rpc::identity::{
    Authority, IdentityConfig, IdentityError, TokenAudience, TokenClaims, TokenSigner,
    VerifyingJwk, VerifyingKeySet,
};
use serde_json::json;

use crate::check::{self, Broken};
use crate::values;

/// The service clock while tokens are checked (2027-01-15), in Unix seconds.
pub const NOW_S: i64 = 1_800_000_000;

/// Four organisations with one signing key each, and a service's key table for them.
pub struct Federation {
    signers: BTreeMap<Agency, TokenSigner>,
    authority: Authority,
    config: IdentityConfig,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Federation")
            .field("signers", &self.signers)
            .finish_non_exhaustive()
    }
}

impl Federation {
    /// Fresh Ed25519 keys (ring's system random: signatures differ between runs, the cases do
    /// not).
    pub fn new() -> anyhow::Result<Self> {
        let random = ring::rand::SystemRandom::new();
        let config = IdentityConfig::in_directory(std::path::Path::new("/nonexistent"));
        let mut signers = BTreeMap::new();
        let mut key_sets = BTreeMap::new();
        for agency in Agency::ALL {
            let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&random)
                .map_err(|error| anyhow::anyhow!("generate key: {error}"))?;
            let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|error| anyhow::anyhow!("read key: {error}"))?;
            let public = ring::signature::KeyPair::public_key(&pair)
                .as_ref()
                .to_vec();
            let signer =
                TokenSigner::from_pkcs8(agency, pkcs8.as_ref()).map_err(anyhow::Error::msg)?;
            key_sets.insert(
                agency,
                VerifyingKeySet {
                    keys: vec![VerifyingJwk::ed25519(signer.key_id(), &public)],
                },
            );
            signers.insert(agency, signer);
        }
        let authority = Authority::from_key_sets(&config, &key_sets).map_err(anyhow::Error::msg)?;
        Ok(Self {
            signers,
            authority,
            config,
        })
    }

    /// A token longer than `identity.token_length_max_bytes` is refused before anything in it
    /// is read, whatever else is wrong with it.
    fn length_first(&self, token: &str, expected: Expected) -> Expected {
        if token.len() > self.config.token_length_max_bytes {
            Expected::Rule(&["token_malformed"])
        } else {
            expected
        }
    }

    fn signer(&self, agency: Agency) -> Result<&TokenSigner, Broken> {
        self.signers
            .get(&agency)
            .ok_or_else(|| Broken::new_token(format!("no signer for {agency}")))
    }
}

impl Broken {
    fn new_token(detail: String) -> Self {
        Broken {
            property: "token_refused_by_its_rule",
            detail,
        }
    }
}

/// One changed claim (or the certificate), or none.
#[derive(Clone, Debug)]
pub enum ClaimChange {
    /// A well-formed token.
    None,
    /// `sub`.
    Person(String),
    /// `role`.
    Role(String),
    /// `unit`.
    Unit(String),
    /// `organisation`.
    Organisation(String),
    /// `iss`.
    Issuer(String),
    /// `aud`, one or several.
    Audience(Vec<String>),
    /// `iat`, `nbf`, `exp` (Unix seconds).
    Times(i64, Option<i64>, i64),
    /// The client certificate is another organisation's.
    Certificate(Agency),
}

/// One token case.
#[derive(Clone, Debug)]
pub enum TokenCase {
    /// Any text after `Bearer ` (or without it), with or without a certificate.
    Raw {
        /// The `authorization` header's text.
        header: String,
        /// Whether the connection has a client certificate.
        certificate: bool,
    },
    /// A JWT with a chosen header, hostile claims and a random signature.
    Shaped {
        /// `alg`.
        algorithm: Option<String>,
        /// `kid`: `Ok(agency)` names that organisation's real key.
        key_id: Option<Result<Agency, String>>,
        /// Whether `crit` is set.
        critical: bool,
        /// The claims part's JSON.
        claims: String,
        /// The signature part's bytes.
        signature: Vec<u8>,
    },
    /// A token signed by `signer`'s key, with one change.
    Signed {
        /// The signing organisation (also the certificate's, unless changed).
        signer: Agency,
        /// The change.
        change: ClaimChange,
    },
    /// A valid token with the byte at `at` replaced by `byte`.
    Tampered {
        /// The signing organisation.
        signer: Agency,
        /// Where.
        at: proptest::sample::Index,
        /// The new byte (mapped into the token's alphabet half the time).
        byte: u8,
    },
}

fn agency() -> BoxedStrategy<Agency> {
    proptest::sample::select(Agency::ALL.to_vec()).boxed()
}

fn claim_change() -> BoxedStrategy<ClaimChange> {
    let text = || values::text(values::Shape::Token);
    let instant = prop_oneof![
        4 => (NOW_S - 20_000)..(NOW_S + 20_000),
        1 => proptest::sample::select(vec![i64::MIN, i64::MAX, 0, -1, NOW_S - 43_200, NOW_S + 43_200]),
        1 => any::<i64>(),
    ];
    prop_oneof![
        3 => Just(ClaimChange::None),
        2 => text().prop_map(ClaimChange::Person),
        1 => prop_oneof![
            proptest::sample::select(vec!["coach", "team_leader", "case_officer", "auditor", "system", "Coach", "admin", ""]).prop_map(str::to_owned),
            values::hostile_text(),
        ].prop_map(ClaimChange::Role),
        2 => text().prop_map(ClaimChange::Unit),
        1 => prop_oneof![
            proptest::sample::select(vec!["municipality", "fk", "af", "psychiatry", "FK", "ledger", ""]).prop_map(str::to_owned),
            values::hostile_text(),
        ].prop_map(ClaimChange::Organisation),
        1 => values::hostile_text().prop_map(ClaimChange::Issuer),
        1 => proptest::collection::vec(
            prop_oneof![Just(rpc::identity::DEFAULT_TOKEN_AUDIENCE.to_owned()), values::hostile_text()],
            0..3,
        ).prop_map(ClaimChange::Audience),
        2 => (instant.clone(), proptest::option::of(instant.clone()), instant)
            .prop_map(|(issued, not_before, expires)| ClaimChange::Times(issued, not_before, expires)),
        1 => agency().prop_map(ClaimChange::Certificate),
    ]
    .boxed()
}

/// Every kind of token case.
pub fn token_case() -> BoxedStrategy<TokenCase> {
    let raw = (
        prop_oneof![
            values::hostile_text(),
            values::hostile_text().prop_map(|text| format!("Bearer {text}")),
            "Bearer [A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}",
        ],
        prop_oneof![9 => Just(true), 1 => Just(false)],
    )
        .prop_map(|(header, certificate)| TokenCase::Raw {
            header,
            certificate,
        });
    let claims_base = json!({
        "iss": "https://idp.municipality.example", "aud": rpc::identity::DEFAULT_TOKEN_AUDIENCE,
        "sub": "coach-17", "organisation": "municipality", "role": "coach",
        "unit": "hudiksvall-ips", "iat": NOW_S - 60, "nbf": NOW_S - 60, "exp": NOW_S + 600,
    });
    let shaped = (
        proptest::option::weighted(
            0.9,
            prop_oneof![
                4 => Just("EdDSA".to_owned()),
                1 => proptest::sample::select(vec!["none", "HS256", "RS256", "ES256", "eddsa", ""]).prop_map(str::to_owned),
            ],
        ),
        proptest::option::weighted(
            0.9,
            prop_oneof![
                4 => agency().prop_map(Ok),
                1 => values::text(values::Shape::Token).prop_map(Err),
            ],
        ),
        prop_oneof![9 => Just(false), 1 => Just(true)],
        crate::json::hostile_json(vec![claims_base]),
        proptest::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(algorithm, key_id, critical, claims, signature)| TokenCase::Shaped {
            algorithm,
            key_id,
            critical,
            claims,
            signature,
        });
    let signed = (agency(), claim_change())
        .prop_map(|(signer, change)| TokenCase::Signed { signer, change });
    let tampered = (agency(), any::<proptest::sample::Index>(), any::<u8>())
        .prop_map(|(signer, at, byte)| TokenCase::Tampered { signer, at, byte });
    prop_oneof![
        3 => raw,
        3 => shaped,
        4 => signed,
        2 => tampered,
    ]
    .boxed()
}

/// What a token case came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenOutcome {
    /// No HTTP/2 header can carry the text: refused before the service sees it.
    NotAHeader,
    /// Refused with this rule.
    Refused(&'static str),
    /// Accepted.
    Accepted,
}

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The header as HTTP/2 carries it (`None`: no header can hold the text), then the
/// gatekeeper's verification of it.
fn authenticate(
    federation: &Federation,
    header: &str,
    certificate: Option<Agency>,
) -> Option<Result<rpc::identity::Caller, IdentityError>> {
    let value = tonic::codegen::http::HeaderValue::from_str(header).ok()?;
    Some(
        federation
            .authority
            .authenticate_header(Some(&value), certificate, NOW_S),
    )
}

/// Runs one case and checks its outcome.
pub fn check_token(federation: &Federation, case: &TokenCase) -> Result<TokenOutcome, Broken> {
    let (outcome, expected): (
        Option<Result<rpc::identity::Caller, IdentityError>>,
        Expected,
    ) = match case {
        TokenCase::Raw {
            header,
            certificate,
        } => {
            let certificate = certificate.then_some(Agency::Municipality);
            let expected = if certificate.is_none() {
                Expected::Rule(&["client_certificate_missing"])
            } else {
                Expected::Rule(&[
                    "token_malformed",
                    "token_key_id_missing",
                    "token_key_unknown",
                    "token_algorithm_refused",
                    "token_signature_invalid",
                ])
            };
            (authenticate(federation, header, certificate), expected)
        }
        TokenCase::Shaped {
            algorithm,
            key_id,
            critical,
            claims,
            signature,
        } => {
            let mut header = serde_json::Map::new();
            if let Some(algorithm) = algorithm {
                header.insert("alg".into(), json!(algorithm));
            }
            match key_id {
                Some(Ok(agency)) => {
                    header.insert("kid".into(), json!(federation.signer(*agency)?.key_id()));
                }
                Some(Err(text)) => {
                    header.insert("kid".into(), json!(text));
                }
                None => {}
            }
            if *critical {
                header.insert("crit".into(), json!(["exp"]));
            }
            let token = format!(
                "{}.{}.{}",
                base64url(serde_json::Value::Object(header).to_string().as_bytes()),
                base64url(claims.as_bytes()),
                base64url(signature)
            );
            let expected = match (algorithm, key_id) {
                (None, _) => Expected::Rule(&["token_malformed"]),
                (_, None) => Expected::Rule(&["token_key_id_missing"]),
                (_, Some(Err(_))) => Expected::Rule(&["token_key_unknown"]),
                (Some(algorithm), _) if algorithm != "EdDSA" => {
                    Expected::Rule(&["token_algorithm_refused"])
                }
                _ if *critical => Expected::Rule(&["token_malformed"]),
                _ => Expected::Rule(&["token_signature_invalid", "token_malformed"]),
            };
            let expected = federation.length_first(&token, expected);
            let certificate = match key_id {
                Some(Ok(agency)) => *agency,
                _ => Agency::Municipality,
            };
            (
                authenticate(federation, &format!("Bearer {token}"), Some(certificate)),
                expected,
            )
        }
        TokenCase::Signed { signer, change } => {
            let signing = federation.signer(*signer)?;
            let mut claims =
                signing.claims("coach-17", Role::Coach, "hudiksvall-ips", NOW_S - 60, 600);
            let mut certificate = *signer;
            let expected =
                expected_after(federation, *signer, change, &mut claims, &mut certificate);
            let token = signing
                .sign(&claims)
                .map_err(|error| Broken::new_token(format!("signing {claims:?}: {error}")))?;
            let expected = federation.length_first(&token, expected);
            (
                authenticate(federation, &format!("Bearer {token}"), Some(certificate)),
                expected,
            )
        }
        TokenCase::Tampered { signer, at, byte } => {
            let signing = federation.signer(*signer)?;
            let claims = signing.claims("coach-17", Role::Coach, "hudiksvall-ips", NOW_S - 60, 600);
            let token = signing
                .sign(&claims)
                .map_err(|error| Broken::new_token(format!("signing: {error}")))?;
            let mut bytes = token.clone().into_bytes();
            let index = at.index(bytes.len());
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
            bytes[index] = if *byte < 128 {
                ALPHABET[usize::from(*byte) % ALPHABET.len()]
            } else {
                *byte
            };
            let tampered = String::from_utf8_lossy(&bytes).into_owned();
            let expected = if tampered == token {
                Expected::Accepted
            } else {
                Expected::Rule(&[
                    "token_malformed",
                    "token_signature_invalid",
                    "token_key_id_missing",
                    "token_key_unknown",
                    "token_algorithm_refused",
                ])
            };
            (
                authenticate(federation, &format!("Bearer {tampered}"), Some(*signer)),
                expected,
            )
        }
    };
    let Some(result) = outcome else {
        return Ok(TokenOutcome::NotAHeader);
    };
    match (result, expected) {
        (Ok(caller), Expected::Accepted) => {
            actor_storable(&caller)?;
            Ok(TokenOutcome::Accepted)
        }
        (Err(error), Expected::Rule(rules)) if rules.contains(&error.rule()) => {
            Ok(TokenOutcome::Refused(error.rule()))
        }
        (result, expected) => Err(Broken::new_token(format!(
            "expected {expected:?}, got {result:?} for {case:?}"
        ))),
    }
}

/// What a case must come to.
#[derive(Clone, Copy, Debug)]
enum Expected {
    Accepted,
    Rule(&'static [&'static str]),
}

/// Applies `change` and says what the verifier must answer. Each change breaks at most one
/// rule, so the rule is known: the oracle reads the documented rules, not the verifier's code.
fn expected_after(
    federation: &Federation,
    signer: Agency,
    change: &ClaimChange,
    claims: &mut TokenClaims,
    certificate: &mut Agency,
) -> Expected {
    let issuer = federation
        .config
        .token_issuers
        .get(signer.token())
        .cloned()
        .unwrap_or_default();
    let audience = federation.config.token_audience.clone();
    let lifetime_max_s = federation.config.token_lifetime_max_s;
    let skew_s = federation.config.token_clock_skew_s;
    let rule_if = |broken: bool, rule: &'static [&'static str]| {
        if broken {
            Expected::Rule(rule)
        } else {
            Expected::Accepted
        }
    };
    match change {
        ClaimChange::None => Expected::Accepted,
        ClaimChange::Person(person) => {
            claims.person_id.clone_from(person);
            rule_if(PersonId::parse(person).is_err(), &["token_claim_invalid"])
        }
        ClaimChange::Role(role) => {
            claims.role.clone_from(role);
            rule_if(Role::from_token(role).is_none(), &["token_claim_invalid"])
        }
        ClaimChange::Unit(unit) => {
            claims.unit.clone_from(unit);
            rule_if(UnitId::parse(unit).is_err(), &["token_claim_invalid"])
        }
        ClaimChange::Organisation(organisation) => {
            claims.organisation.clone_from(organisation);
            match Agency::from_token(organisation) {
                None => Expected::Rule(&["token_organisation_unknown"]),
                Some(named) if named != signer => {
                    Expected::Rule(&["token_organisation_not_the_signers"])
                }
                Some(_) => Expected::Accepted,
            }
        }
        ClaimChange::Issuer(text) => {
            claims.issuer.clone_from(text);
            rule_if(*text != issuer, &["token_issuer_invalid"])
        }
        ClaimChange::Audience(audiences) => {
            let named = audiences.contains(&audience);
            claims.audience = match audiences.as_slice() {
                [one] => TokenAudience::One(one.clone()),
                several => TokenAudience::Several(several.to_vec()),
            };
            rule_if(!named, &["token_audience_invalid"])
        }
        ClaimChange::Times(issued, not_before, expires) => {
            claims.issued_at_s = *issued;
            claims.not_before_s = *not_before;
            claims.expires_at_s = *expires;
            let lifetime_s = expires.saturating_sub(*issued);
            let valid_from_s = not_before.map_or(*issued, |not_before| not_before.max(*issued));
            if lifetime_s > lifetime_max_s {
                Expected::Rule(&["token_lifetime_too_long"])
            } else if NOW_S + skew_s < valid_from_s || NOW_S - skew_s >= *expires {
                Expected::Rule(&["token_expired"])
            } else {
                Expected::Accepted
            }
        }
        ClaimChange::Certificate(agency) => {
            *certificate = *agency;
            rule_if(*agency != signer, &["token_organisation_mismatch"])
        }
    }
}

/// An accepted caller's actor goes into every envelope it writes: it must be storable.
fn actor_storable(caller: &rpc::identity::Caller) -> Result<(), Broken> {
    let participant_id = domain::ParticipantId(uuid::Uuid::from_u128(7));
    let submission = rpc::submit::prepare(
        caller.agency,
        caller.actor.clone(),
        participant_id,
        None,
        chrono::DateTime::from_timestamp(NOW_S, 0).unwrap_or_default(),
        None,
        |_| Ok(domain::EventBody::ParticipantResumed),
    )
    .map_err(|error| Broken {
        property: "accepted_caller_is_storable",
        detail: format!("{error}: {caller:?}"),
    })?;
    let event =
        check::record_first(&submission, submission.envelope.occurred_at).map_err(|error| {
            Broken {
                property: "accepted_caller_is_storable",
                detail: format!("{error}: {caller:?}"),
            }
        })?;
    check::storable(&event)
}
