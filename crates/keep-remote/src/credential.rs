//! The node credential: what one node of a cluster shows another.
//!
//! It is derived from the cluster key, so every node of a cluster computes
//! the same one and nothing else needs distributing. It is neither a client
//! token nor the system root token: a node answers node-to-node requests
//! only for it, and it opens nothing else.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What the cluster key is MACed over to derive the credential.
pub const CREDENTIAL_CONTEXT: &[u8] = b"keep node credential v1";

/// The prefix of every node credential, naming its version.
pub const CREDENTIAL_PREFIX: &str = "kn1-";

/// The node credential for `cluster_key`: `"kn1-"` followed by the
/// lowercase hex of HMAC-SHA256(cluster key, `b"keep node credential v1"`).
///
/// Node-to-node requests carry it as `Authorization: Bearer <credential>`.
///
/// ```
/// let c = keep_remote::node_credential(b"secret");
/// assert!(c.starts_with("kn1-"));
/// assert_eq!(c.len(), 4 + 64);
/// ```
pub fn node_credential(cluster_key: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(cluster_key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(CREDENTIAL_CONTEXT);
    format!(
        "{CREDENTIAL_PREFIX}{}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// A node credential. Its text never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeCredential(String);

impl NodeCredential {
    /// The credential of the cluster whose key is `cluster_key`
    /// (see [`node_credential`]).
    pub fn from_cluster_key(cluster_key: &[u8]) -> Self {
        NodeCredential(node_credential(cluster_key))
    }

    /// Wraps a credential already computed, for example read from config.
    pub fn from_string(credential: impl Into<String>) -> Self {
        NodeCredential(credential.into())
    }

    /// The credential's text, to put in a header. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The `Authorization` header value: `Bearer <credential>`.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Whether `given` (a bearer token taken from a request) is this
    /// credential. The comparison takes the same time wherever the two
    /// differ, so the server side can use it to check callers.
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for NodeCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeCredential(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_value() {
        // Computed independently: `printf 'keep node credential v1' |
        // openssl dgst -sha256 -hmac secret`.
        assert_eq!(
            node_credential(b"secret"),
            "kn1-20ed90b2b4778055e4198e36a2d24b855f39d52a26e490e8d5b5ef06ec4eaffd"
        );
    }

    #[test]
    fn depends_on_the_key_and_is_lowercase_hex() {
        let a = node_credential(b"one key");
        let b = node_credential(b"another key");
        assert_ne!(a, b);
        for c in [&a, &b] {
            let hex = c.strip_prefix(CREDENTIAL_PREFIX).unwrap();
            assert_eq!(hex.len(), 64);
            assert!(hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
        }
        assert_eq!(a, node_credential(b"one key"));
    }

    #[test]
    fn matches_only_itself() {
        let c = NodeCredential::from_cluster_key(b"k");
        assert!(c.matches(&node_credential(b"k")));
        assert!(!c.matches(&node_credential(b"j")));
        assert!(!c.matches(""));
        assert!(!c.matches(&c.expose()[1..]));
        assert_eq!(c.authorization(), format!("Bearer {}", c.expose()));
    }

    #[test]
    fn debug_hides_it() {
        let c = NodeCredential::from_cluster_key(b"k");
        let shown = format!("{c:?}");
        assert!(!shown.contains(&c.expose()[4..]), "{shown}");
    }
}
