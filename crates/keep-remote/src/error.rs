//! What can go wrong talking to a peer.

/// Why a request to a peer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// The peer answered 404: it does not hold the block.
    #[error("not found on the peer")]
    NotFound,
    /// No connection could be made (refused, unreachable, connect
    /// timeout), or the url is not one this node can reach
    /// ([`crate::check_url`]).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The peer did not answer in time.
    #[error("the peer did not answer in time")]
    Timeout,
    /// The peer answered with an unexpected status.
    #[error("the peer answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        message: String,
        /// Whether the answer carried `X-Keep-Draining: true`.
        draining: bool,
    },
    /// The peer is not the node the introducer announced, or speaks
    /// another protocol version.
    #[error("peer identity: {0}")]
    Identity(String),
    /// The peer's answer broke the protocol (bad JSON, wrong length, a
    /// locator for another block).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A body failed: the block stream the caller gave to
    /// [`crate::Remote::replicate`] returned an error, or a streamed block
    /// from the peer ended early or broke off.
    #[error("body: {0}")]
    Body(String),
    /// The connection broke after it was made, before the answer was
    /// complete.
    #[error("connection failed: {0}")]
    Transport(String),
    /// The request could not be made as the caller asked (a path, header
    /// or token that HTTP cannot carry, a locator whose size is not the
    /// size given). Nothing was sent; the peer is not to blame.
    #[error("bad request: {0}")]
    Request(String),
}

impl RemoteError {
    /// Whether the peer looks down: no connection, or no answer in time.
    /// The pool marks such a peer down at once
    /// ([`crate::Pool::report_failure`]).
    pub fn is_down(&self) -> bool {
        matches!(self, RemoteError::Connect(_) | RemoteError::Timeout)
    }

    /// Whether the peer said it is shutting down.
    pub fn is_draining(&self) -> bool {
        matches!(self, RemoteError::Status { draining: true, .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_and_draining() {
        assert!(RemoteError::Connect("refused".into()).is_down());
        assert!(RemoteError::Timeout.is_down());
        for e in [
            RemoteError::NotFound,
            RemoteError::Identity("x".into()),
            RemoteError::Protocol("x".into()),
            RemoteError::Body("x".into()),
            RemoteError::Transport("x".into()),
            RemoteError::Request("x".into()),
        ] {
            assert!(!e.is_down(), "{e}");
            assert!(!e.is_draining(), "{e}");
        }
        let e = RemoteError::Status {
            status: 503,
            message: "bye".into(),
            draining: true,
        };
        assert!(e.is_draining() && !e.is_down());
        assert_eq!(e.to_string(), "the peer answered 503: bye");
    }
}
