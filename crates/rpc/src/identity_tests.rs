//! Officer-token verification against forged, altered, mis-addressed and rotated tokens, at
//! the [`Authority`] with an injected clock. Issue 10: the old `claims.signature` format read
//! (and trusted, to pick a key) the claims before the signature; these show nothing is read but
//! the key id until the signature checks out.

use base64::Engine;

use super::*;

const NOW_S: i64 = 1_800_000_000;

/// A fresh Ed25519 key: its PKCS#8 document and its public key.
fn ed25519_key() -> (Vec<u8>, Vec<u8>) {
    let random = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&random).expect("generate key");
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("parse key");
    let public = ring::signature::KeyPair::public_key(&pair)
        .as_ref()
        .to_vec();
    (pkcs8.as_ref().to_vec(), public)
}

/// Four organisations with one key each; their signers; what a service's key table holds.
struct Federation {
    signers: BTreeMap<Agency, TokenSigner>,
    public_keys: BTreeMap<Agency, Vec<u8>>,
}

impl Federation {
    fn new() -> Self {
        let mut signers = BTreeMap::new();
        let mut public_keys = BTreeMap::new();
        for agency in Agency::ALL {
            let (pkcs8, public) = ed25519_key();
            signers.insert(
                agency,
                TokenSigner::from_pkcs8(agency, &pkcs8).expect("signer"),
            );
            public_keys.insert(agency, public);
        }
        Self {
            signers,
            public_keys,
        }
    }

    fn signer(&self, agency: Agency) -> &TokenSigner {
        &self.signers[&agency]
    }

    fn key_sets(&self) -> BTreeMap<Agency, VerifyingKeySet> {
        self.signers
            .iter()
            .map(|(agency, signer)| {
                let jwk = VerifyingJwk::ed25519(signer.key_id(), &self.public_keys[agency]);
                (*agency, VerifyingKeySet { keys: vec![jwk] })
            })
            .collect()
    }

    fn authority(&self) -> Authority {
        authority_of(&self.key_sets())
    }
}

fn config() -> IdentityConfig {
    IdentityConfig::in_directory(Path::new("/nonexistent"))
}

fn authority_of(key_sets: &BTreeMap<Agency, VerifyingKeySet>) -> Authority {
    Authority::from_key_sets(&config(), key_sets).expect("key table")
}

/// A coach's claims, issued now, valid ten minutes.
fn coach_claims(signer: &TokenSigner) -> TokenClaims {
    signer.claims("coach-17", Role::Coach, "hudiksvall-ips", NOW_S, 600)
}

fn signed(signer: &TokenSigner, claims: &TokenClaims) -> String {
    signer.sign(claims).expect("sign")
}

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token assembled by hand from a header and claims JSON and a signature.
fn assembled(header: &serde_json::Value, claims: &[u8], signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(claims),
        base64url(signature)
    )
}

/// `token` with the first byte of its signature flipped.
fn signature_flipped(token: &str) -> String {
    let (message, signature) = token.rsplit_once('.').expect("three parts");
    let mut signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url");
    signature[0] ^= 1;
    format!("{message}.{}", base64url(&signature))
}

/// `token` (a coach's, signed by `signer`) with its claims swapped for an auditor's, header and
/// signature kept.
fn promoted_to_auditor(token: &str, signer: &TokenSigner) -> String {
    let mut parts = token.split('.');
    let (header, _, signature) = (
        parts.next().expect("header"),
        parts.next().expect("claims"),
        parts.next().expect("signature"),
    );
    let mut promoted = coach_claims(signer);
    promoted.role = Role::Auditor.token().into();
    let promoted = base64url(&serde_json::to_vec(&promoted).expect("json"));
    format!("{header}.{promoted}.{signature}")
}

/// The rule `authority` refuses `token` under, over the municipality's certificate.
fn refusal(authority: &Authority, token: &str) -> String {
    refusal_over(authority, token, Agency::Municipality)
}

fn refusal_over(authority: &Authority, token: &str, certificate: Agency) -> String {
    match authority.authenticate(Some(&format!("Bearer {token}")), Some(certificate), NOW_S) {
        Ok(caller) => format!("admitted as {caller:?}"),
        Err(error) => error.rule().to_owned(),
    }
}

#[test]
fn a_token_signed_by_the_organisations_key_names_the_caller() {
    let federation = Federation::new();
    let municipality = federation.signer(Agency::Municipality);
    let token = signed(municipality, &coach_claims(municipality));
    let caller = federation
        .authority()
        .authenticate(
            Some(&format!("Bearer {token}")),
            Some(Agency::Municipality),
            NOW_S,
        )
        .expect("admitted");
    assert_eq!(caller.agency, Agency::Municipality);
    assert_eq!(caller.actor.role, Role::Coach);
    assert_eq!(caller.actor.person_id.0.as_str(), "coach-17");
    assert_eq!(caller.actor.unit.0.as_str(), "hudiksvall-ips");
    // It is a JWT whose header names the algorithm and the key, and nothing else decides.
    let header = jsonwebtoken::decode_header(&token).expect("a JWT header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(municipality.key_id()));
}

#[test]
fn claims_are_not_read_before_the_signature_checks_out() {
    let federation = Federation::new();
    let authority = federation.authority();
    let municipality = federation.signer(Agency::Municipality);
    let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": municipality.key_id()});
    let garbage_signature = [7u8; 64];
    let cases: [(&str, Vec<u8>); 3] = [
        ("claims that are not JSON", b"not json".to_vec()),
        (
            "claims naming an organisation no key belongs to",
            br#"{"organisation":"region-x","sub":"p","role":"coach","unit":"u","iat":0,"exp":1}"#
                .to_vec(),
        ),
        (
            "claims missing every required member",
            br#"{"role":"mayor"}"#.to_vec(),
        ),
    ];
    let mut wrong = Vec::new();
    for (name, claims) in cases {
        let token = assembled(&header, &claims, &garbage_signature);
        let rule = refusal(&authority, &token);
        if rule != "token_signature_invalid" {
            wrong.push(format!("{name}: refused as {rule}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn a_forged_signature_is_refused() {
    let federation = Federation::new();
    let authority = federation.authority();
    let municipality = federation.signer(Agency::Municipality);
    // FK's key, claiming to be the municipality's: the header names the municipality's key.
    let forger = TokenSigner::from_pkcs8(Agency::Forsakringskassan, &ed25519_key().0)
        .expect("signer")
        .with_key_id(municipality.key_id());
    let token = signed(&forger, &coach_claims(municipality));
    assert_eq!(refusal(&authority, &token), "token_signature_invalid");
    // A well-formed token with its signature bytes flipped.
    let genuine = signed(municipality, &coach_claims(municipality));
    let flipped = signature_flipped(&genuine);
    assert_eq!(refusal(&authority, &flipped), "token_signature_invalid");
}

#[test]
fn claims_altered_after_signing_are_refused() {
    let federation = Federation::new();
    let authority = federation.authority();
    let municipality = federation.signer(Agency::Municipality);
    let genuine = signed(municipality, &coach_claims(municipality));
    let altered = promoted_to_auditor(&genuine, municipality);
    assert_eq!(refusal(&authority, &altered), "token_signature_invalid");
}

#[test]
fn a_token_whose_header_says_none_is_refused() {
    let federation = Federation::new();
    let authority = federation.authority();
    let municipality = federation.signer(Agency::Municipality);
    let claims = serde_json::to_vec(&coach_claims(municipality)).expect("json");
    for alg in ["none", "None", "NONE"] {
        let header = serde_json::json!({"alg": alg, "typ": "JWT", "kid": municipality.key_id()});
        let unsigned = format!(
            "{}.{}.",
            base64url(header.to_string().as_bytes()),
            base64url(&claims)
        );
        assert_eq!(
            refusal(&authority, &unsigned),
            "token_algorithm_refused",
            "{alg}"
        );
    }
}

#[test]
fn an_hs256_token_keyed_with_the_public_key_is_refused() {
    // The classic confusion: a verifier that takes `alg` from the token would check an HMAC
    // keyed with the (public) verifying key, which anyone can compute.
    let federation = Federation::new();
    let authority = federation.authority();
    let municipality = federation.signer(Agency::Municipality);
    let public_key = &federation.public_keys[&Agency::Municipality];
    let claims = coach_claims(municipality);
    let secrets = [
        public_key.clone(),
        base64url(public_key).into_bytes(),
        serde_json::to_vec(&VerifyingJwk::ed25519(municipality.key_id(), public_key))
            .expect("json"),
    ];
    for secret in secrets {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(municipality.key_id().to_owned());
        let forged = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .expect("hmac");
        assert_eq!(refusal(&authority, &forged), "token_algorithm_refused");
        // Were the header check ever lost, the JWT library still will not verify an HS256
        // token with this key: the key is fixed to EdDSA.
        let key = &authority.verifying_keys[municipality.key_id()];
        let error =
            jsonwebtoken::decode::<serde_json::Value>(&forged, &key.decoding_key, &key.validation)
                .expect_err("the library refuses too");
        assert!(
            matches!(
                error.kind(),
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
            ),
            "{error:?}"
        );
    }
}

#[test]
fn a_token_naming_no_key_or_an_unknown_key_is_refused() {
    let federation = Federation::new();
    let authority = federation.authority();
    let municipality = federation.signer(Agency::Municipality);
    let claims = coach_claims(municipality);
    let unknown = TokenSigner::from_pkcs8(Agency::Municipality, &ed25519_key().0)
        .expect("signer")
        .with_key_id("municipality-a-key-nobody-configured");
    assert_eq!(
        refusal(&authority, &signed(&unknown, &claims)),
        "token_key_unknown"
    );
    let no_kid = serde_json::json!({"alg": "EdDSA", "typ": "JWT"});
    let token = assembled(
        &no_kid,
        &serde_json::to_vec(&claims).expect("json"),
        &[0u8; 64],
    );
    assert_eq!(refusal(&authority, &token), "token_key_id_missing");
}

#[test]
fn during_a_rotation_old_and_new_keys_verify_and_a_removed_key_does_not() {
    let federation = Federation::new();
    let old = federation.signer(Agency::Municipality);
    let (new_pkcs8, new_public) = ed25519_key();
    let new = TokenSigner::from_pkcs8(Agency::Municipality, &new_pkcs8).expect("signer");
    assert_ne!(old.key_id(), new.key_id(), "key ids follow the key");

    let mut rotating = federation.key_sets();
    rotating
        .get_mut(&Agency::Municipality)
        .expect("municipality")
        .keys
        .push(VerifyingJwk::ed25519(new.key_id(), &new_public));
    let during = authority_of(&rotating);
    for (name, signer) in [("old key", old), ("new key", &new)] {
        let token = signed(signer, &coach_claims(signer));
        let caller = during
            .authenticate(
                Some(&format!("Bearer {token}")),
                Some(Agency::Municipality),
                NOW_S,
            )
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(caller.agency, Agency::Municipality, "{name}");
    }

    let mut rotated = federation.key_sets();
    rotated.insert(
        Agency::Municipality,
        VerifyingKeySet {
            keys: vec![VerifyingJwk::ed25519(new.key_id(), &new_public)],
        },
    );
    let after = authority_of(&rotated);
    assert_eq!(
        refusal(&after, &signed(old, &coach_claims(old))),
        "token_key_unknown"
    );
    assert!(refusal(&after, &signed(&new, &coach_claims(&new))).starts_with("admitted"));
    // A key of its own under another organisation's key id does not get past the signature.
    let fk_key_id = federation.signer(Agency::Forsakringskassan).key_id();
    let stand_in = TokenSigner::from_pkcs8(Agency::Municipality, &ed25519_key().0)
        .expect("signer")
        .with_key_id(fk_key_id);
    assert_eq!(
        refusal(&after, &signed(&stand_in, &coach_claims(old))),
        "token_signature_invalid"
    );
}

#[test]
fn a_token_from_another_issuer_or_for_another_audience_is_refused() {
    let federation = Federation::new();
    let authority = federation.authority();
    let municipality = federation.signer(Agency::Municipality);
    let mut claims = coach_claims(municipality);
    claims.issuer = "https://idp.example.invalid".into();
    assert_eq!(
        refusal(&authority, &signed(municipality, &claims)),
        "token_issuer_invalid"
    );
    // Another organisation's issuer does not do either: the issuer is fixed per organisation.
    claims.issuer = development_token_issuer(Agency::Forsakringskassan);
    assert_eq!(
        refusal(&authority, &signed(municipality, &claims)),
        "token_issuer_invalid"
    );

    let mut claims = coach_claims(municipality);
    claims.audience = TokenAudience::One("another-service".into());
    assert_eq!(
        refusal(&authority, &signed(municipality, &claims)),
        "token_audience_invalid"
    );
    claims.audience = TokenAudience::Several(vec!["another-service".into(), "a-third".into()]);
    assert_eq!(
        refusal(&authority, &signed(municipality, &claims)),
        "token_audience_invalid"
    );
    // Several audiences, this federation among them, are fine.
    claims.audience = TokenAudience::Several(vec![
        "another-service".into(),
        DEFAULT_TOKEN_AUDIENCE.into(),
    ]);
    assert!(refusal(&authority, &signed(municipality, &claims)).starts_with("admitted"));
}

#[test]
fn a_token_outside_its_validity_or_valid_for_too_long_is_refused() {
    let federation = Federation::new();
    let authority = federation.authority();
    let municipality = federation.signer(Agency::Municipality);
    let skew_s = config().token_clock_skew_s;
    let lifetime_max_s = config().token_lifetime_max_s;
    let at = |issued_at_s: i64, lifetime_s: i64| {
        signed(
            municipality,
            &municipality.claims(
                "coach-17",
                Role::Coach,
                "hudiksvall-ips",
                issued_at_s,
                lifetime_s,
            ),
        )
    };
    assert_eq!(
        refusal(&authority, &at(NOW_S - 7200, 3600)),
        "token_expired"
    );
    // Expired by less than the tolerated clock skew: still valid; by more: not.
    assert!(refusal(&authority, &at(NOW_S - 600, 600 - skew_s + 1)).starts_with("admitted"));
    assert_eq!(
        refusal(&authority, &at(NOW_S - 600, 600 - skew_s)),
        "token_expired"
    );
    assert_eq!(refusal(&authority, &at(NOW_S + 3600, 400)), "token_expired");
    assert_eq!(
        refusal(&authority, &at(NOW_S, lifetime_max_s + 1)),
        "token_lifetime_too_long"
    );
    assert!(refusal(&authority, &at(NOW_S, lifetime_max_s)).starts_with("admitted"));
    // A not-before in the future holds even when issued-at is now.
    let mut claims = coach_claims(municipality);
    claims.not_before_s = Some(NOW_S + 3600);
    claims.expires_at_s = NOW_S + 4000;
    assert_eq!(
        refusal(&authority, &signed(municipality, &claims)),
        "token_expired"
    );
}

#[test]
fn a_token_naming_another_organisation_is_refused() {
    let federation = Federation::new();
    let authority = federation.authority();
    let fk = federation.signer(Agency::Forsakringskassan);
    let fk_token = signed(
        fk,
        &fk.claims("fk-officer-4", Role::CaseOfficer, "fk-lfc", NOW_S, 600),
    );
    // FK's genuine token over the municipality's certificate.
    assert_eq!(
        refusal_over(&authority, &fk_token, Agency::Municipality),
        "token_organisation_mismatch"
    );
    assert!(refusal_over(&authority, &fk_token, Agency::Forsakringskassan).starts_with("admitted"));
    // FK's key vouching for a municipality officer.
    let mut claims = coach_claims(fk);
    claims.organisation = Agency::Municipality.token().into();
    for certificate in [Agency::Municipality, Agency::Forsakringskassan] {
        assert_eq!(
            refusal_over(&authority, &signed(fk, &claims), certificate),
            "token_organisation_not_the_signers"
        );
    }
    claims.organisation = "region-x".into();
    assert_eq!(
        refusal_over(&authority, &signed(fk, &claims), Agency::Forsakringskassan),
        "token_organisation_unknown"
    );
}

#[test]
fn claims_of_the_wrong_type_or_missing_are_refused_after_verification() {
    let federation = Federation::new();
    let authority = federation.authority();
    let municipality = federation.signer(Agency::Municipality);
    let mut claims = serde_json::to_value(coach_claims(municipality)).expect("json");
    // The jsonwebtoken 10.3 advisory class: an `exp` of the wrong JSON type must not be skipped.
    claims["exp"] = serde_json::json!("never");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(municipality.key_id().to_owned());
    let sign_value = |claims: &serde_json::Value| {
        jsonwebtoken::encode(&header, claims, &municipality.encoding_key).expect("sign")
    };
    assert_eq!(
        refusal(&authority, &sign_value(&claims)),
        "token_claim_invalid"
    );
    claims["exp"] = serde_json::json!(NOW_S + 600);
    claims["nbf"] = serde_json::json!("later");
    assert_eq!(
        refusal(&authority, &sign_value(&claims)),
        "token_claim_invalid"
    );
    let mut claims = serde_json::to_value(coach_claims(municipality)).expect("json");
    for required in [
        "exp",
        "iat",
        "iss",
        "aud",
        "sub",
        "organisation",
        "role",
        "unit",
    ] {
        let mut without = claims.clone();
        without.as_object_mut().expect("object").remove(required);
        let rule = refusal(&authority, &sign_value(&without));
        // Without `iss` or `aud` the library reports the claim missing; either way refused.
        assert_eq!(rule, "token_claim_invalid", "without {required}");
    }
    // A negative `exp` is a time long past, not a missing claim (found by the fuzz program).
    let mut expired = claims.clone();
    expired["exp"] = serde_json::json!(-1);
    assert_eq!(refusal(&authority, &sign_value(&expired)), "token_expired");
    claims["role"] = serde_json::json!("mayor");
    assert_eq!(
        refusal(&authority, &sign_value(&claims)),
        "token_claim_invalid"
    );
}

#[test]
fn malformed_and_oversized_tokens_are_refused_before_any_key_is_used() {
    let federation = Federation::new();
    let authority = federation.authority();
    let municipality = federation.signer(Agency::Municipality);
    for token in ["abc", "a.b", "a.b.c.d", "!!.e30.e30", ""] {
        assert_eq!(refusal(&authority, token), "token_malformed", "{token}");
    }
    let mut claims = coach_claims(municipality);
    claims.unit = "u".repeat(config().token_length_max_bytes);
    assert_eq!(
        refusal(&authority, &signed(municipality, &claims)),
        "token_malformed"
    );
    // A header naming a critical extension this service does not implement, correctly signed.
    let critical = serde_json::json!({
        "alg": "EdDSA", "kid": municipality.key_id(), "crit": ["x-must-understand"],
        "x-must-understand": "yes"
    });
    let message = format!(
        "{}.{}",
        base64url(critical.to_string().as_bytes()),
        base64url(&serde_json::to_vec(&coach_claims(municipality)).expect("json"))
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &municipality.encoding_key,
        jsonwebtoken::Algorithm::EdDSA,
    )
    .expect("sign");
    let token = format!("{message}.{signature}");
    assert_eq!(refusal(&authority, &token), "token_malformed");
    // Long unverified header values are cut short in the refusal.
    let long_kid = serde_json::json!({"alg": "EdDSA", "kid": "k".repeat(1000)});
    let token = assembled(&long_kid, b"{}", &[0u8; 64]);
    let error = authority
        .authenticate(
            Some(&format!("Bearer {token}")),
            Some(Agency::Municipality),
            NOW_S,
        )
        .expect_err("unknown key");
    assert!(error.to_string().len() < 200, "{error}");
}

#[test]
fn a_key_table_holds_only_ed25519_keys_with_unique_ids_within_the_limit() {
    let federation = Federation::new();
    let refused = |key_sets: &BTreeMap<Agency, VerifyingKeySet>| {
        Authority::from_key_sets(&config(), key_sets).expect_err("refused")
    };
    let with_municipality_keys = |keys: Vec<VerifyingJwk>| {
        let mut key_sets = federation.key_sets();
        key_sets.insert(Agency::Municipality, VerifyingKeySet { keys });
        key_sets
    };
    let good = VerifyingJwk::ed25519(
        "municipality-1",
        &federation.public_keys[&Agency::Municipality],
    );

    let rsa = VerifyingJwk {
        key_type: Some("RSA".into()),
        curve: None,
        key_id: Some("rsa-1".into()),
        algorithm: Some("RS256".into()),
        ..VerifyingJwk::default()
    };
    assert!(refused(&with_municipality_keys(vec![good.clone(), rsa])).contains("rsa-1"));
    let hmac_named = VerifyingJwk {
        algorithm: Some("HS256".into()),
        ..good.clone()
    };
    assert!(refused(&with_municipality_keys(vec![hmac_named])).contains("HS256"));
    let short = VerifyingJwk::ed25519("municipality-short", &[1u8; 31]);
    assert!(refused(&with_municipality_keys(vec![short])).contains("32 bytes"));
    let no_kid = VerifyingJwk {
        key_id: None,
        ..good.clone()
    };
    assert!(refused(&with_municipality_keys(vec![no_kid])).contains("kid"));
    assert!(refused(&with_municipality_keys(Vec::new())).contains("no key"));
    let too_many = (0..=config().token_verifying_keys_per_organisation_max)
        .map(|index| {
            VerifyingJwk::ed25519(
                &format!("municipality-{index}"),
                &federation.public_keys[&Agency::Municipality],
            )
        })
        .collect();
    assert!(refused(&with_municipality_keys(too_many)).contains("at most"));
    // One key id for two organisations' keys would let one vouch as the other.
    let fk_key_id = federation.signer(Agency::Forsakringskassan).key_id();
    let duplicate =
        VerifyingJwk::ed25519(fk_key_id, &federation.public_keys[&Agency::Municipality]);
    assert!(refused(&with_municipality_keys(vec![duplicate])).contains("twice"));
    // An issuer is required for every organisation.
    let mut without_issuer = config();
    without_issuer
        .token_issuers
        .remove(Agency::Psychiatry.token());
    assert!(
        Authority::from_key_sets(&without_issuer, &federation.key_sets())
            .expect_err("refused")
            .contains("psychiatry")
    );
}

/// A fresh directory for key set files.
fn key_set_directory() -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("ips-identity-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&directory).expect("directory");
    directory
}

/// Writes each organisation's key set file into `directory`, as its identity provider would.
fn write_key_sets(directory: &Path, key_sets: &BTreeMap<Agency, VerifyingKeySet>) {
    for (agency, key_set) in key_sets {
        std::fs::write(
            directory.join(pki_files::token_verifying_key_set(agency.token())),
            serde_json::to_vec_pretty(key_set).expect("json"),
        )
        .expect("write");
    }
}

#[test]
fn the_key_table_is_read_from_each_organisations_key_set_file() {
    let federation = Federation::new();
    let directory = key_set_directory();
    let write = |key_sets: &BTreeMap<Agency, VerifyingKeySet>| write_key_sets(&directory, key_sets);
    let identity = IdentityConfig::in_directory(&directory);
    let municipality = federation.signer(Agency::Municipality);
    let token = signed(municipality, &coach_claims(municipality));

    write(&federation.key_sets());
    let loaded = Authority::from_config(&identity).expect("loads");
    assert!(refusal(&loaded, &token).starts_with("admitted"));
    assert_eq!(
        loaded.key_ids()[&Agency::Municipality],
        vec![municipality.key_id().to_owned()]
    );

    // The municipality's identity provider rotated: the old key is gone from its set.
    let mut rotated = federation.key_sets();
    let (_, new_public) = ed25519_key();
    rotated.insert(
        Agency::Municipality,
        VerifyingKeySet {
            keys: vec![VerifyingJwk::ed25519("municipality-next", &new_public)],
        },
    );
    write(&rotated);
    let reloaded = Authority::from_config(&identity).expect("loads");
    assert_eq!(refusal(&reloaded, &token), "token_key_unknown");

    std::fs::remove_file(directory.join(pki_files::token_verifying_key_set("psychiatry")))
        .expect("remove");
    let missing = Authority::from_config(&identity).expect_err("a set is missing");
    assert!(
        missing.contains("identity.token_verifying_keys_directory")
            && missing.contains("psychiatry"),
        "{missing}"
    );
    let _ = std::fs::remove_dir_all(&directory);
}

/// A running service picks up an organisation's key rotation from disk (`Guard::reload_keys`,
/// which `keep_keys_current` calls every `token_verifying_keys_reload_interval_ms`): a token of
/// the new key is admitted, one of the removed key is refused even though it was verified and
/// kept before, and a set that does not load leaves the keys in force as they were.
#[test]
fn a_rotated_key_set_is_reloaded_and_a_kept_token_of_a_removed_key_is_refused() {
    let federation = Federation::new();
    let directory = key_set_directory();
    let write = |key_sets: &BTreeMap<Agency, VerifyingKeySet>| write_key_sets(&directory, key_sets);
    let identity = IdentityConfig::in_directory(&directory);
    write(&federation.key_sets());
    let guard = crate::access::Guard::from_config(&identity, None).expect("loads");
    let admitted = |token: &str| refusal(&guard.0.authority(), token);
    let old = federation.signer(Agency::Municipality);
    let old_token = signed(old, &coach_claims(old));
    assert!(admitted(&old_token).starts_with("admitted"));
    assert!(admitted(&old_token).starts_with("admitted"), "kept");
    assert_eq!(guard.reload_keys(&identity), Ok(false), "nothing changed");

    // The municipality's identity provider rotated: the new key in, the old one out.
    let (pkcs8, public) = ed25519_key();
    let new = TokenSigner::from_pkcs8(Agency::Municipality, &pkcs8).expect("signer");
    let new_token = signed(&new, &coach_claims(&new));
    assert_eq!(admitted(&new_token), "token_key_unknown", "not yet loaded");
    let mut rotated = federation.key_sets();
    rotated.insert(
        Agency::Municipality,
        VerifyingKeySet {
            keys: vec![VerifyingJwk::ed25519(new.key_id(), &public)],
        },
    );
    write(&rotated);
    assert_eq!(guard.reload_keys(&identity), Ok(true));
    assert!(admitted(&new_token).starts_with("admitted"));
    assert_eq!(admitted(&old_token), "token_key_unknown");

    // Half-written mid-rotation: reported, and the keys in force stay as they were.
    std::fs::write(
        directory.join(pki_files::token_verifying_key_set("psychiatry")),
        b"{\"keys\": [",
    )
    .expect("write");
    let error = guard.reload_keys(&identity).expect_err("does not load");
    assert!(error.contains("psychiatry"), "{error}");
    assert!(admitted(&new_token).starts_with("admitted"));
    assert_eq!(admitted(&old_token), "token_key_unknown");

    assert!(IdentityConfig {
        token_verifying_keys_reload_interval_ms: 24 * 60 * 60 * 1000 + 1,
        ..config()
    }
    .validate()
    .expect_err("over a day")
    .contains("token_verifying_keys_reload_interval_ms"));
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn the_development_key_id_is_the_organisation_and_the_rfc7638_thumbprint() {
    // RFC 8037 Appendix A.3: the thumbprint of its example Ed25519 key.
    let public_key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
        .expect("base64url");
    assert_eq!(
        development_key_id(Agency::Forsakringskassan, &public_key),
        "fk-kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
}

#[test]
fn an_authorization_header_that_is_not_visible_ascii_is_a_malformed_token_not_a_missing_one() {
    let federation = Federation::new();
    let authority = federation.authority();
    let municipality = federation.signer(Agency::Municipality);
    let token = signed(municipality, &coach_claims(municipality));
    let header =
        |bytes: &[u8]| tonic::codegen::http::HeaderValue::from_bytes(bytes).expect("header");
    let rule = |value: Option<&tonic::codegen::http::HeaderValue>, certificate| match authority
        .authenticate_header(value, certificate, NOW_S)
    {
        Ok(_) => "admitted".to_owned(),
        Err(error) => error.rule().to_owned(),
    };
    let mut tampered = format!("Bearer {token}").into_bytes();
    tampered[7] = 0x80;
    assert_eq!(
        rule(Some(&header(&tampered)), Some(Agency::Municipality)),
        "token_malformed"
    );
    assert_eq!(
        rule(Some(&header(&tampered)), None),
        "client_certificate_missing"
    );
    assert_eq!(rule(None, Some(Agency::Municipality)), "token_missing");
    assert_eq!(
        rule(
            Some(&header(format!("Bearer {token}").as_bytes())),
            Some(Agency::Municipality)
        ),
        "admitted"
    );
}

/// Kept verified tokens (`identity.verified_tokens_kept_max`) skip only the signature check:
/// what changes with time or with the connection is checked on every call, and nothing that
/// was refused, or differs by one byte from what was verified, is ever taken as verified.
#[test]
fn a_kept_token_is_still_checked_for_time_and_organisation_and_only_matches_itself() {
    let federation = Federation::new();
    let municipality = federation.signer(Agency::Municipality);
    let authority = Authority::from_key_sets(
        &IdentityConfig {
            verified_tokens_kept_max: 2,
            ..config()
        },
        &federation.key_sets(),
    )
    .expect("key table");
    let token = signed(municipality, &coach_claims(municipality));
    let authenticate = |token: &str, certificate: Agency, now_s: i64| match authority.authenticate(
        Some(&format!("Bearer {token}")),
        Some(certificate),
        now_s,
    ) {
        Ok(caller) => format!("admitted as {}", caller.actor.person_id),
        Err(error) => error.rule().to_owned(),
    };
    assert_eq!(
        authenticate(&token, Agency::Municipality, NOW_S),
        "admitted as coach-17"
    );
    // Kept now; the second call is admitted the same way.
    assert_eq!(
        authenticate(&token, Agency::Municipality, NOW_S + 1),
        "admitted as coach-17"
    );
    // Its expiry still holds (valid ten minutes, plus the clock skew).
    let skew_s = config().token_clock_skew_s;
    assert_eq!(
        authenticate(&token, Agency::Municipality, NOW_S + 600 + skew_s),
        "token_expired"
    );
    // And its organisation must still be the connection's certificate's.
    assert_eq!(
        authenticate(&token, Agency::Forsakringskassan, NOW_S),
        "token_organisation_mismatch"
    );
    // The kept token with its signature or claims changed is verified afresh, and refused.
    let flipped = signature_flipped(&token);
    assert_eq!(
        authenticate(&flipped, Agency::Municipality, NOW_S),
        "token_signature_invalid"
    );
    let altered = promoted_to_auditor(&token, municipality);
    assert_eq!(
        authenticate(&altered, Agency::Municipality, NOW_S),
        "token_signature_invalid"
    );
    // A refused token is not kept: refused the second time as the first.
    assert_eq!(
        authenticate(&flipped, Agency::Municipality, NOW_S),
        "token_signature_invalid"
    );
    // More tokens than are kept: each still verifies (the least recently used is dropped).
    let tokens: Vec<String> = ["coach-1", "coach-2", "coach-3"]
        .into_iter()
        .map(|person| {
            signed(
                municipality,
                &municipality.claims(person, Role::Coach, "hudiksvall-ips", NOW_S, 600),
            )
        })
        .collect();
    for _ in 0..2 {
        for (token, person) in tokens.iter().zip(["coach-1", "coach-2", "coach-3"]) {
            assert_eq!(
                authenticate(token, Agency::Municipality, NOW_S),
                format!("admitted as {person}")
            );
        }
    }
    assert!(IdentityConfig {
        verified_tokens_kept_max: 1_000_001,
        ..config()
    }
    .validate()
    .is_err());
}
