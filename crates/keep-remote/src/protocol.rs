//! The node-to-node protocol: routes, headers and JSON bodies, shared by
//! this client and the server side in keepstore so both use the same names.
//!
//! Every request carries `Authorization: Bearer <node credential>` (see
//! [`crate::node_credential`]).
//!
//! | Request | Answer |
//! |---|---|
//! | `GET /_keep/node` | 200, [`NodeStatus`] as JSON |
//! | `PUT /{md5}`, [`LOCAL_ONLY_HEADER`], `Content-Length` | 200, the locator line: stored on the node's own volumes |
//! | `GET /{md5}+{size}`, [`LOCAL_ONLY_HEADER`] | 200 and the block, or 404; never forwarded again |
//! | `HEAD /{md5}+{size}`, [`LOCAL_ONLY_HEADER`] | 200 or 404 |
//!
//! Any answer may carry [`DRAINING_HEADER`]` : true`: the node is shutting
//! down and should get no new blocks (Blobby's `Shutting-Down`).

use keep_locator::BlockHash;
use serde::{Deserialize, Serialize};

/// Marks a request from another node: the receiver serves it from its own
/// volumes and never forwards or replicates it further. Value `true`.
pub const LOCAL_ONLY_HEADER: &str = "x-keep-local-only";

/// On any answer, value `true`: the answering node is shutting down.
pub const DRAINING_HEADER: &str = "x-keep-draining";

/// The route that answers [`NodeStatus`].
pub const NODE_ROUTE: &str = "/_keep/node";

/// The protocol version this crate speaks, as [`NodeStatus::protocol`]
/// reports it.
pub const PROTOCOL_VERSION: u32 = 1;

/// The answer of `GET /_keep/node`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's uuid; must match what it announced.
    pub uuid: String,
    /// The protocol version it speaks, [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// Its software version.
    pub version: String,
    /// Whether it is shutting down: it still serves reads, takes no new blocks.
    pub draining: bool,
    /// Whether it serves reads only.
    pub read_only: bool,
}

/// The path of a replicate request: `/{md5}`.
pub fn replicate_path(hash: &BlockHash) -> String {
    format!("/{hash}")
}

/// The path of a read or existence request: `/{md5}+{size}`.
pub fn block_path(hash: &BlockHash, size: u64) -> String {
    format!("/{hash}+{size}")
}

/// Whether `headers` carry `name: true` (case-insensitive, surrounding
/// space ignored), as [`LOCAL_ONLY_HEADER`] and [`DRAINING_HEADER`] do.
pub fn flag(headers: &http::HeaderMap, name: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_status_json() {
        let s = NodeStatus {
            uuid: "zzzzz-bi6l4-000000000000001".into(),
            protocol: PROTOCOL_VERSION,
            version: "0.1.0".into(),
            draining: false,
            read_only: true,
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "uuid": "zzzzz-bi6l4-000000000000001",
                "protocol": 1,
                "version": "0.1.0",
                "draining": false,
                "read_only": true,
            })
        );
        assert_eq!(serde_json::from_value::<NodeStatus>(json).unwrap(), s);
    }

    #[test]
    fn paths_and_flags() {
        let h = BlockHash::of(b"foo");
        assert_eq!(replicate_path(&h), "/acbd18db4cc2f85cedef654fccc4a4d8");
        assert_eq!(block_path(&h, 3), "/acbd18db4cc2f85cedef654fccc4a4d8+3");
        let mut headers = http::HeaderMap::new();
        assert!(!flag(&headers, DRAINING_HEADER));
        headers.insert(DRAINING_HEADER, "false".parse().unwrap());
        assert!(!flag(&headers, DRAINING_HEADER));
        headers.insert(DRAINING_HEADER, " True".parse().unwrap());
        assert!(flag(&headers, DRAINING_HEADER));
    }
}
