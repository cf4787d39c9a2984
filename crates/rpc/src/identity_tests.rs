//! Officer-token verification, probed against the old `claims.signature` format: shows the
//! claims were read (and trusted to pick the key) before the signature was checked.

use base64::Engine;

use super::*;

fn authority() -> Authority {
    let random = ring::rand::SystemRandom::new();
    let mut verifying_keys = BTreeMap::new();
    for agency in Agency::ALL {
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&random).expect("key");
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
        let public = ring::signature::KeyPair::public_key(&pair).as_ref().to_vec();
        verifying_keys.insert(agency, public);
    }
    Authority {
        verifying_keys,
        token_lifetime_max_s: 3600,
        token_clock_skew_s: 60,
    }
}

#[test]
fn claims_are_not_read_before_the_signature_checks_out() {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let garbage_signature = engine.encode([7u8; 64]);
    let cases = [
        ("claims that are not JSON", engine.encode(b"not json")),
        (
            "claims naming an organisation with no key",
            engine.encode(br#"{"organisation":"region-x","person_id":"p","role":"coach","unit":"u","issued_at_s":0,"expires_at_s":1}"#),
        ),
    ];
    let mut wrong = Vec::new();
    for (name, claims) in cases {
        let token = format!("Bearer {claims}.{garbage_signature}");
        let refused = authority()
            .authenticate(Some(&token), Some(Agency::Municipality), 0)
            .expect_err(name);
        if refused.rule() != "token_signature_invalid" {
            wrong.push(format!("{name}: refused as {refused}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
