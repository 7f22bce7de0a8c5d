//! Peers as subscribers see them, and the rendezvous order over them.

use keep_locator::{BlockHash, permuted_order};

use crate::SignedAnnouncement;

/// One node offering a service, as learned from the introducers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The node's uuid.
    pub uuid: String,
    /// Where the service answers.
    pub url: String,
    /// A name for people.
    pub nickname: String,
    /// The node's software version.
    pub version: String,
    /// The seqnum of the announcement this comes from.
    pub seqnum: u64,
}

impl From<&SignedAnnouncement> for Peer {
    fn from(ann: &SignedAnnouncement) -> Self {
        let a = &ann.announcement;
        Peer {
            uuid: a.uuid.clone(),
            url: a.url.clone(),
            nickname: a.nickname.clone(),
            version: a.version.clone(),
            seqnum: a.seqnum,
        }
    }
}

/// `peers` in the order Arvados clients probe them for `block`: by
/// `md5(block_md5_hex + uuid[-15:])`, descending (see `keep_locator::placement`).
pub fn permute(peers: Vec<Peer>, block: &BlockHash) -> Vec<Peer> {
    let order = permuted_order(
        block,
        &peers.iter().map(|p| p.uuid.as_str()).collect::<Vec<_>>(),
    );
    let mut slots: Vec<Option<Peer>> = peers.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn peer(uuid: &str) -> Peer {
        Peer {
            uuid: uuid.to_owned(),
            url: format!("http://{uuid}"),
            nickname: String::new(),
            version: String::new(),
            seqnum: 1,
        }
    }

    fn uuids(peers: &[Peer]) -> Vec<String> {
        peers.iter().map(|p| p.uuid.clone()).collect()
    }

    /// Arvados's own probe order for block `md5("%064x" % 0)` over 16
    /// services `zzzzz-bi6l4-%015x` (Go `keepclient/root_sorter_test.go`).
    #[test]
    fn matches_arvados_reference_order() {
        let peers: Vec<Peer> = (0..16)
            .map(|j| peer(&format!("zzzzz-bi6l4-{j:015x}")))
            .collect();
        let block = BlockHash::of(format!("{:064x}", 0).as_bytes());
        let got: String = permute(peers, &block)
            .iter()
            .map(|p| p.uuid.chars().last().unwrap())
            .collect();
        assert_eq!(got, "3eab2d5fc9681074");
    }

    fn uuid_set() -> impl Strategy<Value = Vec<String>> {
        prop::collection::btree_set("[0-9a-z]{15}", 1..12).prop_map(|set| {
            set.into_iter()
                .map(|s| format!("zzzzz-bi6l4-{s}"))
                .collect()
        })
    }

    proptest! {
        /// The order depends only on the set of peers and the block, never
        /// on the order the peers were learned in.
        #[test]
        fn order_ignores_input_order(set in uuid_set(), block in any::<[u8; 16]>(), seed in any::<u64>()) {
            let block = BlockHash::from_bytes(block);
            let peers: Vec<Peer> = set.iter().map(|u| peer(u)).collect();
            let mut shuffled = peers.clone();
            let n = shuffled.len();
            for i in 0..n {
                let j = (seed.rotate_left(i as u32) as usize) % n;
                shuffled.swap(i, j);
            }
            prop_assert_eq!(uuids(&permute(peers, &block)), uuids(&permute(shuffled, &block)));
        }

        /// Adding a node moves nothing but that node: the others keep
        /// their relative order. Removing it is the same statement read
        /// backwards.
        #[test]
        fn adding_one_node_moves_only_that_node(
            set in uuid_set(),
            extra in "[0-9a-z]{15}",
            block in any::<[u8; 16]>(),
        ) {
            let extra = format!("zzzzz-bi6l4-{extra}");
            prop_assume!(!set.contains(&extra));
            let block = BlockHash::from_bytes(block);
            let before = uuids(&permute(set.iter().map(|u| peer(u)).collect(), &block));
            let mut grown: Vec<Peer> = set.iter().map(|u| peer(u)).collect();
            grown.push(peer(&extra));
            let after = uuids(&permute(grown, &block));
            prop_assert_eq!(after.len(), before.len() + 1);
            let without: Vec<String> = after.iter().filter(|u| **u != extra).cloned().collect();
            prop_assert_eq!(without, before);
        }
    }
}
