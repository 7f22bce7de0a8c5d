//! Announcements: what a node says about one service it offers, and the
//! HMAC-SHA256 signature that binds it to the cluster key.
//!
//! A *withdrawal* is an announcement with [`Announcement::withdrawn`] set:
//! the node says it no longer offers that service. It is signed, keyed and
//! ordered by seqnum exactly like an announcement.
//!
//! The signature covers the bytes of [`Announcement::signing_bytes`], never
//! the JSON text, so field order and whitespace on the wire do not matter.
//! A live announcement is signed over the v1 bytes (unchanged since the
//! first version); a withdrawal over the v2 bytes, whose own domain line
//! and extra `withdrawn` line mean the signature of one can never pass for
//! the other.

use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ClusterKey;

/// The service of a node that accepts new blocks.
pub const UPLOAD_STORAGE: &str = "upload_storage";
/// The service of a node that serves the blocks it holds.
pub const DOWNLOAD_STORAGE: &str = "download_storage";

/// The first line of the signed bytes of a live announcement: names the
/// format and its version.
const SIGNING_DOMAIN_V1: &str = "keep-introducer-announcement-v1\n";
/// The first line of the signed bytes of a withdrawal: v1's lines follow,
/// then `withdrawn:4:true`.
const SIGNING_DOMAIN_V2: &str = "keep-introducer-announcement-v2\n";

/// Longest accepted url, nickname or version, in bytes.
const MAX_TEXT: usize = 1024;

type HmacSha256 = Hmac<Sha256>;

/// One service offered by one node, as published.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Announcement {
    /// The service name, for example [`UPLOAD_STORAGE`].
    pub service: String,
    /// The publishing node's uuid (`zzzzz-bi6l4-<15 chars>` for keepstores).
    pub uuid: String,
    /// Where the service answers, for example `http://10.0.0.5:25107`.
    pub url: String,
    /// A name for people; not used for anything else.
    pub nickname: String,
    /// The publisher's software version.
    pub version: String,
    /// Grows with each publication of the node, across its restarts: a
    /// higher seqnum replaces an older announcement, a lower one is a replay.
    pub seqnum: u64,
    /// Random per signing, so two signings never produce equal bytes.
    pub nonce: String,
    /// Whether this withdraws the service: the node no longer offers it.
    /// Absent on the wire when false, so live announcements look exactly
    /// as before withdrawals existed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub withdrawn: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// An announcement and its signature, as it travels and is stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedAnnouncement {
    /// What is announced.
    #[serde(flatten)]
    pub announcement: Announcement,
    /// Lowercase hex HMAC-SHA256 of the signing bytes under the cluster key;
    /// empty when unsigned.
    #[serde(default)]
    pub signature: String,
}

/// Why an announcement is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnouncementError {
    /// A field is missing, too long or holds characters it may not.
    #[error("field `{field}` is invalid: {reason}")]
    Invalid {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No signature at all.
    #[error("announcement is not signed")]
    Unsigned,
    /// A signature that the cluster key did not make.
    #[error("announcement signature does not verify")]
    BadSignature,
}

impl AnnouncementError {
    /// Whether the signature, rather than the content, is what failed.
    pub fn is_signature(&self) -> bool {
        matches!(self, Self::Unsigned | Self::BadSignature)
    }
}

impl Announcement {
    /// The bytes the signature covers: a domain line, then each field as
    /// `name:LEN:value\n` (LEN the value's length in bytes, decimal) in the
    /// order service, uuid, url, nickname, version, seqnum (decimal), nonce.
    /// A live announcement uses the domain `keep-introducer-announcement-v1`;
    /// a withdrawal the domain `keep-introducer-announcement-v2` and one more
    /// line, `withdrawn:4:true`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let seqnum = self.seqnum.to_string();
        let domain = if self.withdrawn {
            SIGNING_DOMAIN_V2
        } else {
            SIGNING_DOMAIN_V1
        };
        let mut out = Vec::with_capacity(domain.len() + 256);
        out.extend_from_slice(domain.as_bytes());
        let withdrawn = self.withdrawn.then_some(("withdrawn", "true"));
        for (name, value) in [
            ("service", self.service.as_str()),
            ("uuid", &self.uuid),
            ("url", &self.url),
            ("nickname", &self.nickname),
            ("version", &self.version),
            ("seqnum", &seqnum),
            ("nonce", &self.nonce),
        ]
        .into_iter()
        .chain(withdrawn)
        {
            out.extend_from_slice(format!("{name}:{}:", value.len()).as_bytes());
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// Checks every field's shape (not the signature).
    pub fn validate(&self) -> Result<(), AnnouncementError> {
        check_token("service", &self.service)?;
        check_token("uuid", &self.uuid)?;
        check_token("nonce", &self.nonce)?;
        check_text("url", &self.url)?;
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(AnnouncementError::Invalid {
                field: "url",
                reason: "must start with http:// or https://",
            });
        }
        check_text("nickname", &self.nickname)?;
        check_text("version", &self.version)
    }

    /// What a new announcement must be beyond [`Self::validate`]: one whose
    /// url the nodes can reach. Nodes cannot talk TLS to each other yet, so
    /// an `https://` url is refused where it is given (by the introducer
    /// that is sent it, by the client asked to publish it); withdrawals,
    /// and rows already stored or heard, are not checked again.
    pub fn check_new(&self) -> Result<(), AnnouncementError> {
        self.validate()?;
        if !self.withdrawn && self.url.starts_with("https://") {
            return Err(AnnouncementError::Invalid {
                field: "url",
                reason: "https is not supported until TLS lands; use http://",
            });
        }
        Ok(())
    }

    /// Signs the announcement with `key`.
    pub fn sign(self, key: &ClusterKey) -> SignedAnnouncement {
        let signature = hex::encode(mac(key, &self).finalize().into_bytes());
        SignedAnnouncement {
            announcement: self,
            signature,
        }
    }
}

impl SignedAnnouncement {
    /// Checks the fields and the signature. The comparison of the MAC runs
    /// in constant time.
    pub fn verify(&self, key: &ClusterKey) -> Result<(), AnnouncementError> {
        if self.signature.is_empty() {
            return Err(AnnouncementError::Unsigned);
        }
        self.announcement.validate()?;
        let sig = hex::decode(&self.signature).map_err(|_| AnnouncementError::BadSignature)?;
        mac(key, &self.announcement)
            .verify_slice(&sig)
            .map_err(|_| AnnouncementError::BadSignature)
    }

    /// Whether this is a withdrawal rather than a live announcement.
    pub fn is_withdrawal(&self) -> bool {
        self.announcement.withdrawn
    }

    /// Whether `self` takes the place of `other`, an entry for the same
    /// (service, uuid), when merging what several sources say: a higher
    /// seqnum wins; at equal seqnums a withdrawal beats a live announcement
    /// (an honest publisher never signs both with one seqnum), so the
    /// result does not depend on the order the sources are read in.
    pub fn supersedes(&self, other: &SignedAnnouncement) -> bool {
        let (mine, theirs) = (self.announcement.seqnum, other.announcement.seqnum);
        mine > theirs || (mine == theirs && self.is_withdrawal() && !other.is_withdrawal())
    }

    /// The table key: (service, uuid).
    pub fn key(&self) -> (String, String) {
        (
            self.announcement.service.clone(),
            self.announcement.uuid.clone(),
        )
    }
}

/// A fresh nonce: 16 random bytes, lowercase hex.
pub fn new_nonce() -> String {
    hex::encode(rand::rng().random::<[u8; 16]>())
}

fn mac(key: &ClusterKey, ann: &Announcement) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(&ann.signing_bytes());
    mac
}

/// Whether `s` may name a service: 1 to 64 of `[A-Za-z0-9_.-]`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn check_token(field: &'static str, s: &str) -> Result<(), AnnouncementError> {
    if is_token(s) {
        Ok(())
    } else {
        Err(AnnouncementError::Invalid {
            field,
            reason: "must be 1 to 64 of A-Z a-z 0-9 _ . -",
        })
    }
}

fn check_text(field: &'static str, s: &str) -> Result<(), AnnouncementError> {
    if s.len() > MAX_TEXT {
        return Err(AnnouncementError::Invalid {
            field,
            reason: "longer than 1024 bytes",
        });
    }
    if s.chars().any(char::is_control) {
        return Err(AnnouncementError::Invalid {
            field,
            reason: "holds control characters",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Announcement {
        Announcement {
            service: UPLOAD_STORAGE.into(),
            uuid: "zzzzz-bi6l4-000000000000001".into(),
            url: "http://127.0.0.1:25107".into(),
            nickname: "node one".into(),
            version: "0.1.0".into(),
            seqnum: 7,
            nonce: "00ff".into(),
            withdrawn: false,
        }
    }

    fn key() -> ClusterKey {
        ClusterKey::new("cluster secret").unwrap()
    }

    #[test]
    fn signing_bytes_are_length_prefixed_and_stable() {
        let bytes = String::from_utf8(sample().signing_bytes()).unwrap();
        assert_eq!(
            bytes,
            "keep-introducer-announcement-v1\n\
             service:14:upload_storage\n\
             uuid:27:zzzzz-bi6l4-000000000000001\n\
             url:22:http://127.0.0.1:25107\n\
             nickname:8:node one\n\
             version:5:0.1.0\n\
             seqnum:1:7\n\
             nonce:4:00ff\n"
        );
    }

    #[test]
    fn withdrawals_sign_v2_bytes() {
        let mut w = sample();
        w.withdrawn = true;
        let bytes = String::from_utf8(w.signing_bytes()).unwrap();
        assert_eq!(
            bytes,
            "keep-introducer-announcement-v2\n\
             service:14:upload_storage\n\
             uuid:27:zzzzz-bi6l4-000000000000001\n\
             url:22:http://127.0.0.1:25107\n\
             nickname:8:node one\n\
             version:5:0.1.0\n\
             seqnum:1:7\n\
             nonce:4:00ff\n\
             withdrawn:4:true\n"
        );
        let signed = w.sign(&key());
        assert_eq!(signed.verify(&key()), Ok(()));
        assert!(signed.is_withdrawal());

        // The flag is signed: a withdrawal cannot be made from an
        // announcement's signature, nor the other way round.
        let mut flipped = signed.clone();
        flipped.announcement.withdrawn = false;
        assert_eq!(flipped.verify(&key()), Err(AnnouncementError::BadSignature));
        let mut forged = sample().sign(&key());
        forged.announcement.withdrawn = true;
        assert_eq!(forged.verify(&key()), Err(AnnouncementError::BadSignature));
    }

    #[test]
    fn supersedes_by_seqnum_then_withdrawal() {
        let live = |seqnum| {
            let mut a = sample();
            a.seqnum = seqnum;
            a.sign(&key())
        };
        let gone = |seqnum| {
            let mut a = sample();
            a.seqnum = seqnum;
            a.withdrawn = true;
            a.sign(&key())
        };
        assert!(live(8).supersedes(&gone(7)));
        assert!(!live(7).supersedes(&gone(7)));
        assert!(gone(7).supersedes(&live(7)));
        assert!(!gone(6).supersedes(&live(7)));
        assert!(!gone(7).supersedes(&gone(7)));
        assert!(!live(7).supersedes(&live(7)));
    }

    #[test]
    fn sign_then_verify_and_tamper() {
        let signed = sample().sign(&key());
        assert_eq!(signed.signature.len(), 64);
        assert_eq!(signed.verify(&key()), Ok(()));

        let other = ClusterKey::new("other").unwrap();
        assert_eq!(signed.verify(&other), Err(AnnouncementError::BadSignature));

        let mut tampered = signed.clone();
        tampered.announcement.url = "http://evil:1".into();
        assert_eq!(
            tampered.verify(&key()),
            Err(AnnouncementError::BadSignature)
        );

        let mut bumped = signed.clone();
        bumped.announcement.seqnum += 1;
        assert_eq!(bumped.verify(&key()), Err(AnnouncementError::BadSignature));

        let mut garbage = signed.clone();
        garbage.signature = "not hex".into();
        assert_eq!(garbage.verify(&key()), Err(AnnouncementError::BadSignature));

        let mut unsigned = signed;
        unsigned.signature.clear();
        assert_eq!(unsigned.verify(&key()), Err(AnnouncementError::Unsigned));
    }

    #[test]
    fn json_wire_form_is_flat() {
        let signed = sample().sign(&key());
        let json: serde_json::Value = serde_json::to_value(&signed).unwrap();
        for field in [
            "service",
            "uuid",
            "url",
            "nickname",
            "version",
            "nonce",
            "signature",
        ] {
            assert!(json[field].is_string(), "{field} in {json}");
        }
        assert_eq!(json["seqnum"], 7);
        assert!(json.get("withdrawn").is_none(), "v1 shape: {json}");
        let back: SignedAnnouncement = serde_json::from_value(json).unwrap();
        assert_eq!(back, signed);

        let mut w = sample();
        w.withdrawn = true;
        let signed = w.sign(&key());
        let json: serde_json::Value = serde_json::to_value(&signed).unwrap();
        assert_eq!(json["withdrawn"], true);
        let back: SignedAnnouncement = serde_json::from_value(json).unwrap();
        assert_eq!(back, signed);
        assert_eq!(back.verify(&key()), Ok(()));

        let unsigned: SignedAnnouncement = serde_json::from_str(
            r#"{"service":"s","uuid":"u","url":"http://x","nickname":"",
                "version":"","seqnum":1,"nonce":"n"}"#,
        )
        .unwrap();
        assert_eq!(unsigned.verify(&key()), Err(AnnouncementError::Unsigned));
    }

    #[test]
    fn validate_refuses_bad_fields() {
        let mut a = sample();
        a.service = "bad service".into();
        assert!(matches!(
            a.validate(),
            Err(AnnouncementError::Invalid {
                field: "service",
                ..
            })
        ));
        let mut a = sample();
        a.url = "ftp://x".into();
        assert!(matches!(
            a.validate(),
            Err(AnnouncementError::Invalid { field: "url", .. })
        ));
        // https is a valid row (stored or heard) but not a new announcement.
        a.url = "https://x:1".into();
        assert!(a.validate().is_ok());
        assert!(matches!(
            a.check_new(),
            Err(AnnouncementError::Invalid { field: "url", .. })
        ));
        a.withdrawn = true;
        assert!(a.check_new().is_ok(), "a withdrawal is not refused");
        let mut a = sample();
        a.nickname = "a\nb".into();
        assert!(matches!(
            a.validate(),
            Err(AnnouncementError::Invalid {
                field: "nickname",
                ..
            })
        ));
        let mut a = sample();
        a.uuid = String::new();
        assert!(matches!(
            a.validate(),
            Err(AnnouncementError::Invalid { field: "uuid", .. })
        ));
        assert_ne!(new_nonce(), new_nonce());
    }
}
