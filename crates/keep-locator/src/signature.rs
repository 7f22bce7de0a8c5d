//! Permission signatures, computed exactly as Arvados computes them
//! (`sdk/go/arvados/blob_signature.go`).
//!
//! The signature is HMAC-SHA1, keyed by the blob signing key, over
//! `md5hex "@" token "@" expiry_hex "@" ttl_hex`, where `expiry_hex` is the
//! expiry in unix seconds as 8 zero-padded lowercase hex digits and `ttl_hex`
//! the TTL in whole seconds as unpadded lowercase hex. The hint is
//! `A<40 hex>@<expiry_hex>`. The size and the other hints take no part.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::{BlockHash, Locator};

type HmacSha1 = Hmac<Sha1>;

/// Why a locator's permission signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No hint of the form `A<40 hex>@<8 hex>`.
    #[error("permission signature missing or malformed")]
    Missing,
    /// The signature's expiry time has passed.
    #[error("permission signature expired")]
    Expired,
    /// The signature does not match this key, token and TTL.
    #[error("permission signature invalid")]
    Invalid,
}

/// The blob signing key: signs locators and checks their signatures.
///
/// Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct SigningKey {
    /// HMAC-SHA1 already keyed with the secret; cloned for every signature.
    mac: HmacSha1,
}

impl SigningKey {
    /// A key from the secret bytes (the content of the blob signing key file,
    /// used as is). Any length is accepted, including empty.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        let secret = secret.into();
        let mac = HmacSha1::new_from_slice(&secret).expect("HMAC accepts keys of any length");
        SigningKey { mac }
    }

    /// The HMAC over `md5hex@token@expiry_hex@ttl_hex`, keyed and fed, not yet finalized.
    fn mac_for(&self, hash: &BlockHash, token: &str, expiry_hex: &str, ttl: Duration) -> HmacSha1 {
        let mut mac = self.mac.clone();
        mac.update(hash.to_hex().as_bytes());
        mac.update(b"@");
        mac.update(token.as_bytes());
        mac.update(b"@");
        mac.update(expiry_hex.as_bytes());
        mac.update(b"@");
        mac.update(format!("{:x}", ttl.as_secs()).as_bytes());
        mac
    }

    /// The hint text `A<40 hex>@<8 hex expiry>`, without a leading `+`.
    ///
    /// As in Arvados, an expiry after 2106 (more than 8 hex digits) yields a
    /// longer expiry field, which [`SigningKey::verify`] then treats as
    /// missing.
    pub fn sign_hint(
        &self,
        hash: &BlockHash,
        token: &str,
        expiry_unix: u64,
        ttl: Duration,
    ) -> String {
        let expiry_hex = format!("{expiry_unix:08x}");
        let sig = self
            .mac_for(hash, token, &expiry_hex, ttl)
            .finalize()
            .into_bytes();
        format!("A{}@{expiry_hex}", hex::encode(sig))
    }

    /// `loc` with every old `A` hint removed and a new signature appended
    /// after the size and the other hints.
    pub fn sign(&self, loc: &Locator, token: &str, expiry_unix: u64, ttl: Duration) -> Locator {
        let mut signed = loc.without_signature();
        signed
            .hints
            .push(self.sign_hint(&loc.hash, token, expiry_unix, ttl));
        signed
    }

    /// Checks the locator's signature as Arvados does.
    ///
    /// Uses the first hint of the form `A<40 lowercase hex>@<8 lowercase
    /// hex>`; malformed `A` hints are skipped. The verifier's own `ttl` goes
    /// into the HMAC, so changing the TTL invalidates earlier signatures. An
    /// expiry equal to `now_unix` is still valid.
    ///
    /// # Errors
    ///
    /// In the order they are checked:
    /// - [`SignatureError::Missing`]: no well-formed signature hint;
    /// - [`SignatureError::Expired`]: its expiry is before `now_unix`;
    /// - [`SignatureError::Invalid`]: the HMAC differs (compared in constant
    ///   time) for this key, block hash, token, expiry and `ttl`.
    pub fn verify(
        &self,
        loc: &Locator,
        token: &str,
        ttl: Duration,
        now_unix: u64,
    ) -> Result<(), SignatureError> {
        let (sig, expiry_hex) = loc
            .hints
            .iter()
            .find_map(|h| parse_signature_hint(h))
            .ok_or(SignatureError::Missing)?;
        let expiry = u64::from_str_radix(expiry_hex, 16).map_err(|_| SignatureError::Missing)?;
        if expiry < now_unix {
            return Err(SignatureError::Expired);
        }
        self.mac_for(&loc.hash, token, expiry_hex, ttl)
            .verify_slice(&sig)
            .map_err(|_| SignatureError::Invalid)
    }
}

/// Splits a hint `A<40 hex>@<8 hex>` into the 20 signature bytes and the
/// expiry hex; `None` unless it matches exactly (lowercase hex only).
fn parse_signature_hint(hint: &str) -> Option<([u8; 20], &str)> {
    let (sig_hex, expiry_hex) = hint.strip_prefix('A')?.split_once('@')?;
    let lower_hex = |s: &str| s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if sig_hex.len() != 40 || expiry_hex.len() != 8 || !lower_hex(sig_hex) || !lower_hex(expiry_hex)
    {
        return None;
    }
    let mut sig = [0u8; 20];
    hex::decode_to_slice(sig_hex, &mut sig).ok()?;
    Some((sig, expiry_hex))
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(1_209_600);

    fn foo() -> Locator {
        Locator::new(BlockHash::of(b"foo"), 3)
    }

    #[test]
    fn debug_hides_the_secret() {
        let key = SigningKey::new("hunter2");
        assert_eq!(format!("{key:?}"), "SigningKey(..)");
    }

    #[test]
    fn sign_then_verify() {
        let key = SigningKey::new("secret");
        let signed = key.sign(&foo(), "tok", 2000, TTL);
        assert_eq!(signed.size, Some(3));
        assert_eq!(signed.hints.len(), 1);
        let hint = signed.signature_hint().expect("signed");
        assert_eq!(hint.len(), 1 + 40 + 1 + 8);
        assert!(hint.ends_with("@000007d0"), "{hint}");
        assert_eq!(key.verify(&signed, "tok", TTL, 1999), Ok(()));
        assert_eq!(key.verify(&signed, "tok", TTL, 2000), Ok(()));
        assert_eq!(
            key.verify(&signed, "tok", TTL, 2001),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            key.verify(&signed, "other", TTL, 0),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            key.verify(&signed, "tok", TTL + Duration::from_secs(1), 0),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            SigningKey::new("other").verify(&signed, "tok", TTL, 0),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            key.verify(&foo(), "tok", TTL, 0),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn sign_replaces_old_signatures_and_keeps_other_hints() {
        let key = SigningKey::new("secret");
        let mut loc = foo();
        loc.hints = vec!["Aold@1".into(), "K@xyzzy".into(), "Aolder".into()];
        let signed = key.sign(&loc, "tok", 2000, TTL);
        assert_eq!(signed.hints.len(), 2);
        assert_eq!(signed.hints[0], "K@xyzzy");
        assert_eq!(signed.hints[1], key.sign_hint(&loc.hash, "tok", 2000, TTL));
    }

    #[test]
    fn size_and_other_hints_take_no_part() {
        let key = SigningKey::new("secret");
        let mut signed = key.sign(&foo(), "tok", 2000, TTL);
        signed.size = None;
        signed.hints.insert(0, "Zfoo".into());
        assert_eq!(key.verify(&signed, "tok", TTL, 0), Ok(()));
    }

    #[test]
    fn ttl_is_whole_seconds() {
        let key = SigningKey::new("secret");
        let h = BlockHash::EMPTY;
        assert_eq!(
            key.sign_hint(&h, "t", 5, Duration::from_millis(60_999)),
            key.sign_hint(&h, "t", 5, Duration::from_secs(60))
        );
    }

    #[test]
    fn malformed_hints_are_missing() {
        let sig = "89118b78732c33104a4d6231e8b5a5fa1e4301e3";
        for bad in [
            format!("A{sig}"),
            format!("A{sig}@7ffffff"),
            format!("A{sig}@7fffffff0"),
            format!("A{sig}@7FFFFFFF"),
            format!("A{}@7fffffff", sig.to_uppercase()),
            format!("A{sig}0@7fffffff"),
            format!("A{}@7fffffff", &sig[1..]),
            format!("A{sig}@7fffffff@1"),
            format!("B{sig}@7fffffff"),
        ] {
            assert_eq!(parse_signature_hint(&bad), None, "{bad}");
        }
        assert!(parse_signature_hint(&format!("A{sig}@7fffffff")).is_some());
    }

    #[test]
    fn first_well_formed_signature_counts() {
        let key = SigningKey::new("secret");
        let mut signed = key.sign(&foo(), "tok", 2000, TTL);
        signed.hints.insert(0, "Agarbage".into());
        assert_eq!(key.verify(&signed, "tok", TTL, 0), Ok(()));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn verifies_only_with_same_key_token_ttl_and_time(
                key in proptest::collection::vec(any::<u8>(), 0..80),
                other_key in proptest::collection::vec(any::<u8>(), 0..80),
                token in "[ -~]{0,40}",
                other_token in "[ -~]{0,40}",
                hash in any::<[u8; 16]>(),
                size in any::<u64>(),
                expiry in 0u64..=0xffff_ffff,
                ttl in 0u64..=u64::from(u32::MAX),
                other_ttl in 0u64..=u64::from(u32::MAX),
                before in any::<u64>(),
                after in 1u64..=u64::MAX,
            ) {
                let signer = SigningKey::new(key.clone());
                let loc = Locator::new(BlockHash::from_bytes(hash), size);
                let ttl_d = Duration::from_secs(ttl);
                let signed = signer.sign(&loc, &token, expiry, ttl_d);
                // A round trip through text changes nothing.
                let signed: Locator = signed.to_string().parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
                let now = expiry - before % (expiry + 1);

                prop_assert_eq!(signer.verify(&signed, &token, ttl_d, now), Ok(()));
                if let Some(late) = expiry.checked_add(after) {
                    prop_assert_eq!(signer.verify(&signed, &token, ttl_d, late), Err(SignatureError::Expired));
                }
                if other_key != key {
                    prop_assert_eq!(
                        SigningKey::new(other_key).verify(&signed, &token, ttl_d, now),
                        Err(SignatureError::Invalid)
                    );
                }
                if other_token != token {
                    prop_assert_eq!(signer.verify(&signed, &other_token, ttl_d, now), Err(SignatureError::Invalid));
                }
                if other_ttl != ttl {
                    prop_assert_eq!(
                        signer.verify(&signed, &token, Duration::from_secs(other_ttl), now),
                        Err(SignatureError::Invalid)
                    );
                }
            }

            #[test]
            fn another_block_or_expiry_is_invalid(
                hash in any::<[u8; 16]>(),
                other_hash in any::<[u8; 16]>(),
                expiry in 0u64..=0xffff_fffe,
                bump in 1u64..=0xffff,
            ) {
                let key = SigningKey::new("k");
                let ttl = Duration::from_secs(60);
                let mut signed = key.sign(&Locator::new(BlockHash::from_bytes(hash), 1), "t", expiry, ttl);
                if other_hash != hash {
                    let mut moved = signed.clone();
                    moved.hash = BlockHash::from_bytes(other_hash);
                    prop_assert_eq!(key.verify(&moved, "t", ttl, 0), Err(SignatureError::Invalid));
                }
                // Pushing the expiry later without re-signing is caught.
                let later = (expiry + bump).min(0xffff_ffff);
                let hint = signed.hints.pop().unwrap_or_default();
                let sig = hint.split('@').next().unwrap_or_default();
                signed.hints.push(format!("{sig}@{later:08x}"));
                prop_assert_eq!(key.verify(&signed, "t", ttl, 0), Err(SignatureError::Invalid));
            }
        }
    }
}
