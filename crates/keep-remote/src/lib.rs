//! The client side of node-to-node traffic: the node credential, and the
//! protocol's routes, headers and bodies ([`protocol`]), shared with the
//! server side.

#![warn(missing_docs)]

mod credential;
mod error;
pub mod protocol;

pub use credential::{CREDENTIAL_CONTEXT, CREDENTIAL_PREFIX, NodeCredential, node_credential};
pub use error::RemoteError;
pub use protocol::{
    DRAINING_HEADER, DeleteReply, LOCAL_ONLY_HEADER, NODE_ROUTE, NodeStatus, PROTOCOL_VERSION,
};
