//! Which blocks this node should hold: those for which it is among the
//! first R nodes of the block's rendezvous order (Arvados's, from
//! `keep-locator`) over the nodes that take uploads. Read-only and
//! draining nodes take none, so they are never responsible: they are
//! sources only. Each node decides from its own view of the membership.

use std::sync::Arc;

use keep_locator::{BlockHash, permuted_order};
use keep_remote::Pool;

/// Whether this node takes uploads now (not read-only, not draining).
pub type TakesUploads = Arc<dyn Fn() -> bool + Send + Sync>;

/// How to work out responsibility: this node, R, and the membership.
#[derive(Clone)]
pub struct Responsibility {
    self_uuid: String,
    replication: usize,
    pool: Pool,
    takes_uploads: TakesUploads,
}

impl std::fmt::Debug for Responsibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responsibility")
            .field("self_uuid", &self.self_uuid)
            .field("replication", &self.replication)
            .finish_non_exhaustive()
    }
}

impl Responsibility {
    /// Responsibility of node `self_uuid` for `replication` copies, over
    /// the upload nodes of `pool` and this node while `takes_uploads`.
    pub fn new(
        self_uuid: impl Into<String>,
        replication: usize,
        pool: Pool,
        takes_uploads: TakesUploads,
    ) -> Self {
        Responsibility {
            self_uuid: self_uuid.into(),
            replication,
            pool,
            takes_uploads,
        }
    }

    /// The membership now, to decide many blocks with.
    pub fn holders(&self) -> Holders {
        let mut uuids = self.pool.upload_uuids();
        let takes = (self.takes_uploads)();
        if takes {
            uuids.push(self.self_uuid.clone());
        }
        Holders {
            self_uuid: takes.then(|| self.self_uuid.clone()),
            uuids,
            replication: self.replication,
        }
    }

    /// Whether this node takes uploads now.
    pub fn takes_uploads(&self) -> bool {
        (self.takes_uploads)()
    }
}

/// One view of the upload nodes.
#[derive(Debug, Clone)]
pub struct Holders {
    self_uuid: Option<String>,
    uuids: Vec<String>,
    replication: usize,
}

impl Holders {
    /// A view over `uuids` (this node among them when `self_uuid` is
    /// set) for `replication` copies.
    pub fn new(self_uuid: Option<String>, uuids: Vec<String>, replication: usize) -> Self {
        Holders {
            self_uuid,
            uuids,
            replication,
        }
    }

    /// Whether this node is among the first R of `hash`'s order.
    pub fn responsible(&self, hash: &BlockHash) -> bool {
        let Some(me) = &self.self_uuid else {
            return false;
        };
        permuted_order(hash, &self.uuids)
            .into_iter()
            .take(self.replication)
            .any(|i| &self.uuids[i] == me)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("zzzzz-bi6l4-{i:015}")).collect()
    }

    #[test]
    fn exactly_r_nodes_are_responsible_for_each_block() {
        let all = uuids(5);
        for i in 0..200u32 {
            let h = BlockHash::of(&i.to_le_bytes());
            let responsible = all
                .iter()
                .filter(|me| Holders::new(Some((*me).clone()), all.clone(), 2).responsible(&h))
                .count();
            assert_eq!(responsible, 2, "block {h}");
        }
    }

    #[test]
    fn a_node_that_takes_no_uploads_is_never_responsible() {
        let h = BlockHash::of(b"foo");
        assert!(!Holders::new(None, uuids(3), 3).responsible(&h));
        // With R at least the node count, every upload node is.
        let all = uuids(3);
        assert!(Holders::new(Some(all[1].clone()), all, 3).responsible(&h));
    }
}
