//! The client side of node-to-node traffic: the node credential, the
//! protocol's routes, headers and bodies ([`protocol`]), shared with the
//! server side, and [`Remote`], one peer and its requests.

#![warn(missing_docs)]

mod body;
mod credential;
mod error;
pub mod protocol;
mod remote;

pub use credential::{CREDENTIAL_CONTEXT, CREDENTIAL_PREFIX, NodeCredential, node_credential};
pub use error::RemoteError;
pub use protocol::{
    DRAINING_HEADER, DeleteReply, LOCAL_ONLY_HEADER, NODE_ROUTE, NodeStatus, PROTOCOL_VERSION,
};
pub use remote::{Remote, RemoteBlock, RemoteConfig, Replicated};
