//! Known-answer permission signature vectors (`tests/data/signatures.json`,
//! a copy of the project's shared vectors; the first comes from Arvados's
//! own tests).

use std::time::Duration;

use hmac::{Hmac, Mac};
use keep_locator::{Locator, SignatureError, SigningKey};
use serde::Deserialize;
use sha1::Sha1;

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
    verify_with_first_vector: VerifyCases,
}

#[derive(Deserialize)]
struct Vector {
    blob_signing_key: String,
    locator: String,
    api_token: String,
    expiry_unix: u64,
    ttl_seconds: u64,
    hmac_input: String,
    signed_locator: String,
}

#[derive(Deserialize)]
struct VerifyCases {
    valid: Vec<String>,
    missing_or_malformed_signature: Vec<String>,
    invalid_with_token_00000000: Vec<String>,
}

impl Vector {
    fn key(&self) -> SigningKey {
        SigningKey::new(self.blob_signing_key.as_bytes())
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_seconds)
    }
}

fn load() -> File {
    let text = include_str!("data/signatures.json");
    serde_json::from_str(text).expect("signatures.json parses")
}

fn parse(s: &str) -> Locator {
    s.parse()
        .unwrap_or_else(|e| panic!("locator {s:?} should parse: {e}"))
}

#[test]
fn hmac_input_is_documented_layout() {
    for v in load().vectors {
        let loc = parse(&v.locator);
        let want = format!(
            "{}@{}@{:08x}@{:x}",
            loc.hash, v.api_token, v.expiry_unix, v.ttl_seconds
        );
        assert_eq!(v.hmac_input, want);

        // The signature in the signed locator is HMAC-SHA1 over exactly that input.
        let mut mac = Hmac::<Sha1>::new_from_slice(v.blob_signing_key.as_bytes()).expect("any key");
        mac.update(v.hmac_input.as_bytes());
        let sig = hex::encode(mac.finalize().into_bytes());
        let hint = format!("A{sig}@{:08x}", v.expiry_unix);
        assert_eq!(
            parse(&v.signed_locator).signature_hint(),
            Some(hint.as_str())
        );
    }
}

#[test]
fn signing_gives_the_known_locator() {
    for v in load().vectors {
        let loc = parse(&v.locator);
        let signed = v.key().sign(&loc, &v.api_token, v.expiry_unix, v.ttl());
        assert_eq!(
            signed.to_string(),
            v.signed_locator,
            "key {:?}",
            v.blob_signing_key
        );

        let hint = v
            .key()
            .sign_hint(&loc.hash, &v.api_token, v.expiry_unix, v.ttl());
        assert_eq!(format!("{}+{hint}", loc), v.signed_locator);
    }
}

#[test]
fn known_locators_verify() {
    for v in load().vectors {
        let signed = parse(&v.signed_locator);
        let key = v.key();
        assert_eq!(
            key.verify(&signed, &v.api_token, v.ttl(), v.expiry_unix - 1),
            Ok(())
        );
        assert_eq!(
            key.verify(&signed, &v.api_token, v.ttl(), v.expiry_unix),
            Ok(())
        );
        assert_eq!(
            key.verify(&signed, &v.api_token, v.ttl(), v.expiry_unix + 1),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            key.verify(&signed, "00000000", v.ttl(), 0),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            key.verify(&signed, &v.api_token, v.ttl() + Duration::from_secs(1), 0),
            Err(SignatureError::Invalid)
        );
    }
}

#[test]
fn verify_cases_with_the_first_vector() {
    let file = load();
    let v = &file.vectors[0];
    let cases = &file.verify_with_first_vector;
    let key = v.key();
    let now = v.expiry_unix - 3600;

    assert!(!cases.valid.is_empty());
    for s in &cases.valid {
        assert_eq!(
            key.verify(&parse(s), &v.api_token, v.ttl(), now),
            Ok(()),
            "{s}"
        );
        // The same locator is expired once its expiry has passed.
        assert_eq!(
            key.verify(&parse(s), &v.api_token, v.ttl(), v.expiry_unix + 1),
            Err(SignatureError::Expired),
            "{s}"
        );
    }

    assert!(!cases.missing_or_malformed_signature.is_empty());
    for s in &cases.missing_or_malformed_signature {
        assert_eq!(
            key.verify(&parse(s), &v.api_token, v.ttl(), now),
            Err(SignatureError::Missing),
            "{s}"
        );
    }

    assert!(!cases.invalid_with_token_00000000.is_empty());
    for s in &cases.invalid_with_token_00000000 {
        assert_eq!(
            key.verify(&parse(s), "00000000", v.ttl(), now),
            Err(SignatureError::Invalid),
            "{s}"
        );
    }
}

#[test]
fn unsigned_locator_is_missing() {
    let file = load();
    let v = &file.vectors[0];
    assert_eq!(
        v.key().verify(&parse(&v.locator), &v.api_token, v.ttl(), 0),
        Err(SignatureError::Missing)
    );
}
