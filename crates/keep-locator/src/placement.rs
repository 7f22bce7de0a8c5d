//! Rendezvous placement: the order in which Arvados clients probe services
//! for a block.
//!
//! Each service gets the weight `md5(block_md5_hex + uuid[-15:])`; services
//! are probed heaviest first. Comparing the raw digests is the same as
//! comparing their lowercase hex strings, which is what Arvados compares.

use md5::{Digest, Md5};

use crate::BlockHash;

/// The rendezvous weight of service `uuid` for the block `hash`:
/// md5 of the block's md5 hex followed by the last 15 characters of `uuid`
/// (the whole `uuid` if it is shorter), as raw 16 bytes.
pub fn rendezvous_weight(hash: &BlockHash, uuid: &str) -> [u8; 16] {
    weight(&hash.to_hex(), uuid)
}

/// [`rendezvous_weight`] with the block hash already in hex.
fn weight(hash_hex: &str, uuid: &str) -> [u8; 16] {
    let tail = match uuid.char_indices().rev().nth(14) {
        Some((start, _)) => &uuid[start..],
        None => uuid,
    };
    let mut md5 = Md5::new();
    md5.update(hash_hex.as_bytes());
    md5.update(tail.as_bytes());
    md5.finalize().into()
}

/// The indices of `uuids` in descending weight order: the order in which
/// Arvados clients probe services for `hash`. Equal weights (only possible
/// when two uuids share their last 15 characters) are ordered by uuid,
/// ascending, then by index.
///
/// ```
/// use keep_locator::{permuted_order, BlockHash};
///
/// let uuids = ["zzzzz-bi6l4-000000000000000", "zzzzz-bi6l4-000000000000001"];
/// let order = permuted_order(&BlockHash::of(b"foo"), &uuids);
/// assert_eq!(order.len(), 2);
/// ```
pub fn permuted_order<S: AsRef<str>>(hash: &BlockHash, uuids: &[S]) -> Vec<usize> {
    let hash_hex = hash.to_hex();
    let mut weighted: Vec<([u8; 16], &str, usize)> = uuids
        .iter()
        .enumerate()
        .map(|(i, u)| (weight(&hash_hex, u.as_ref()), u.as_ref(), i))
        .collect();
    weighted.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)).then(a.2.cmp(&b.2)));
    weighted.into_iter().map(|(_, _, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arvados's reference probe orders (Python SDK `test_keep_client.py`,
    /// Go `keepclient/root_sorter_test.go`): block `i` is `md5("%064x" % i)`,
    /// service `j` is `zzzzz-bi6l4-%015x`, and each string lists the
    /// services' `j` in probe order.
    #[test]
    fn arvados_reference_orders() {
        let uuids: Vec<String> = (0..16).map(|j| format!("zzzzz-bi6l4-{j:015x}")).collect();
        for (i, want) in [
            "3eab2d5fc9681074",
            "097dba52e648f1c3",
            "c5b4e023f8a7d691",
            "9d81c02e76a3bf54",
        ]
        .into_iter()
        .enumerate()
        {
            let hash = BlockHash::of(format!("{i:064x}").as_bytes());
            let got: String = permuted_order(&hash, &uuids)
                .into_iter()
                .map(|j| format!("{j:x}"))
                .collect();
            assert_eq!(got, want, "block {i}");
        }
    }

    #[test]
    fn weight_uses_last_15_characters() {
        let h = BlockHash::EMPTY;
        assert_eq!(
            rendezvous_weight(&h, "zzzzz-bi6l4-0123456789abcde"),
            rendezvous_weight(&h, "0123456789abcde")
        );
        assert_eq!(
            rendezvous_weight(&h, "zzzzz-bi6l4-0123456789abcde"),
            *BlockHash::of(b"d41d8cd98f00b204e9800998ecf8427e0123456789abcde").as_bytes()
        );
        // Shorter than 15: the whole uuid.
        assert_eq!(
            rendezvous_weight(&h, "short"),
            *BlockHash::of(b"d41d8cd98f00b204e9800998ecf8427eshort").as_bytes()
        );
        // Characters, not bytes.
        let uuid = "ééééé-bi6l4-0123456789abcdé";
        assert_eq!(
            rendezvous_weight(&h, uuid),
            rendezvous_weight(&h, "0123456789abcdé")
        );
    }

    #[test]
    fn ties_go_to_the_smaller_uuid() {
        let h = BlockHash::EMPTY;
        let uuids = [
            "b-0123456789abcde",
            "a-0123456789abcde",
            "a-0123456789abcde",
        ];
        assert_eq!(permuted_order(&h, &uuids), [1, 2, 0]);
    }

    #[test]
    fn empty_input() {
        assert!(permuted_order::<&str>(&BlockHash::EMPTY, &[]).is_empty());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn uuids() -> impl Strategy<Value = Vec<String>> {
            proptest::collection::vec(
                prop_oneof![
                    4 => "zzzzz-bi6l4-[0-9a-z]{15}",
                    1 => "[ -~é]{0,20}",
                ],
                0..24,
            )
        }

        /// The uuids in the order `permuted_order` gives.
        fn probe_sequence(hash: &BlockHash, uuids: &[String]) -> Vec<String> {
            permuted_order(hash, uuids)
                .into_iter()
                .map(|i| uuids[i].clone())
                .collect()
        }

        proptest! {
            #[test]
            fn is_a_permutation(hash in any::<[u8; 16]>(), uuids in uuids()) {
                let mut order = permuted_order(&BlockHash::from_bytes(hash), &uuids);
                order.sort_unstable();
                prop_assert_eq!(order, (0..uuids.len()).collect::<Vec<_>>());
            }

            #[test]
            fn is_heaviest_first(hash in any::<[u8; 16]>(), uuids in uuids()) {
                let hash = BlockHash::from_bytes(hash);
                let weights: Vec<_> = permuted_order(&hash, &uuids)
                    .into_iter()
                    .map(|i| rendezvous_weight(&hash, &uuids[i]))
                    .collect();
                prop_assert!(weights.windows(2).all(|w| w[0] >= w[1]));
            }

            #[test]
            fn depends_only_on_the_set(
                hash in any::<[u8; 16]>(),
                (uuids, shuffled) in uuids().prop_flat_map(|u| (Just(u.clone()), Just(u).prop_shuffle())),
            ) {
                let hash = BlockHash::from_bytes(hash);
                prop_assert_eq!(probe_sequence(&hash, &uuids), probe_sequence(&hash, &shuffled));
            }

            #[test]
            fn removing_one_keeps_the_others_in_order(
                hash in any::<[u8; 16]>(),
                uuids in uuids(),
                pick in any::<prop::sample::Index>(),
            ) {
                prop_assume!(!uuids.is_empty());
                let hash = BlockHash::from_bytes(hash);
                let gone = pick.index(uuids.len());
                let mut fewer = uuids.clone();
                let removed = fewer.remove(gone);

                let mut want = probe_sequence(&hash, &uuids);
                let at = want.iter().position(|u| *u == removed).unwrap_or(want.len());
                want.remove(at);
                prop_assert_eq!(probe_sequence(&hash, &fewer), want);
            }
        }
    }
}
