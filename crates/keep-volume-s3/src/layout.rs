//! Arvados's key layout inside the bucket, under the volume's prefix `P`:
//!
//! - data: `P<key>`, where `<key>` is the hash, or with `prefix_length = n`
//!   `<first n hex>/<hash>`;
//! - mtime marker: `P recent/<key>` (empty; its LastModified is the mtime);
//! - trashed copy: `P trash/<key>`;
//! - quarantined copy: `P quarantine/<key>.<unix ns>`.
//!
//! Every data key sorts before `P g`, while `recent/`, `trash/` and
//! `quarantine/` sort after it, so listing the data of the whole volume
//! can stop there.

use keep_locator::BlockHash;

/// Key names for one volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `""` or the volume prefix with a trailing `/`.
    root: String,
    prefix_length: usize,
}

impl Layout {
    /// The layout under `prefix` (no trailing `/`; empty for the bucket
    /// root), sharded by `prefix_length` hex digits.
    pub fn new(prefix: &str, prefix_length: usize) -> Layout {
        let root = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        Layout {
            root,
            prefix_length: prefix_length.min(32),
        }
    }

    /// The block's key relative to the volume root: `hash` or `shard/hash`.
    pub fn key(&self, hash: &BlockHash) -> String {
        let hex = hash.to_hex();
        match self.prefix_length {
            0 => hex,
            n => format!("{}/{hex}", &hex[..n]),
        }
    }

    /// The data object.
    pub fn data(&self, hash: &BlockHash) -> String {
        format!("{}{}", self.root, self.key(hash))
    }

    /// The mtime marker.
    pub fn recent(&self, hash: &BlockHash) -> String {
        format!("{}recent/{}", self.root, self.key(hash))
    }

    /// The trashed copy.
    pub fn trash(&self, hash: &BlockHash) -> String {
        format!("{}trash/{}", self.root, self.key(hash))
    }

    /// A quarantined copy, named by when it was set aside.
    pub fn quarantine(&self, hash: &BlockHash, unix_nanos: i64) -> String {
        format!("{}quarantine/{}.{unix_nanos}", self.root, self.key(hash))
    }

    /// The listing prefix of data objects whose hash starts with `hex`
    /// (0 to 32 lowercase hex digits).
    pub fn data_listing(&self, hex: &str) -> String {
        format!("{}{}", self.root, self.key_prefix(hex))
    }

    /// The listing prefix of markers whose hash starts with `hex`.
    pub fn recent_listing(&self, hex: &str) -> String {
        format!("{}recent/{}", self.root, self.key_prefix(hex))
    }

    /// The listing prefix of every trashed copy.
    pub fn trash_listing(&self) -> String {
        format!("{}trash/", self.root)
    }

    /// The first key after every data key of this volume.
    pub fn data_end(&self) -> String {
        format!("{}g", self.root)
    }

    /// The hash of a data object's full key, if it is one.
    pub fn parse_data(&self, full: &str) -> Option<BlockHash> {
        self.parse_key(full.strip_prefix(&self.root)?)
    }

    /// The hash of a marker's full key, if it is one.
    pub fn parse_recent(&self, full: &str) -> Option<BlockHash> {
        self.parse_key(full.strip_prefix(&self.root)?.strip_prefix("recent/")?)
    }

    /// The hash of a trashed copy's full key, if it is one.
    pub fn parse_trash(&self, full: &str) -> Option<BlockHash> {
        self.parse_key(full.strip_prefix(&self.root)?.strip_prefix("trash/")?)
    }

    /// The hash of a relative key in this layout (`hash` or `shard/hash`
    /// with the shard matching the hash).
    fn parse_key(&self, key: &str) -> Option<BlockHash> {
        let hex = match self.prefix_length {
            0 => key,
            n => {
                let (shard, hex) = key.split_once('/')?;
                if shard.len() != n || !hex.starts_with(shard) {
                    return None;
                }
                hex
            }
        };
        BlockHash::from_hex(hex).ok()
    }

    /// The relative key prefix shared by the blocks whose hash starts with
    /// `hex`.
    fn key_prefix(&self, hex: &str) -> String {
        let n = self.prefix_length;
        if n == 0 || hex.len() < n {
            hex.to_owned()
        } else {
            format!("{}/{hex}", &hex[..n])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FOO: &str = "acbd18db4cc2f85cedef654fccc4a4d8";

    #[test]
    fn flat_layout_at_bucket_root() {
        let l = Layout::new("", 0);
        let h = BlockHash::of(b"foo");
        assert_eq!(l.data(&h), FOO);
        assert_eq!(l.recent(&h), format!("recent/{FOO}"));
        assert_eq!(l.trash(&h), format!("trash/{FOO}"));
        assert_eq!(l.quarantine(&h, 7), format!("quarantine/{FOO}.7"));
        assert_eq!(l.data_listing("ac"), "ac");
        assert_eq!(l.recent_listing(""), "recent/");
        assert_eq!(l.trash_listing(), "trash/");
        assert_eq!(l.data_end(), "g");
        assert_eq!(l.parse_data(FOO), Some(h));
        assert_eq!(l.parse_recent(&l.recent(&h)), Some(h));
        assert_eq!(l.parse_trash(&l.trash(&h)), Some(h));
    }

    #[test]
    fn sharded_layout_under_prefix() {
        let l = Layout::new("vol/one", 3);
        let h = BlockHash::of(b"foo");
        assert_eq!(l.data(&h), format!("vol/one/acb/{FOO}"));
        assert_eq!(l.recent(&h), format!("vol/one/recent/acb/{FOO}"));
        assert_eq!(l.trash(&h), format!("vol/one/trash/acb/{FOO}"));
        assert_eq!(l.data_listing(""), "vol/one/");
        assert_eq!(l.data_listing("ac"), "vol/one/ac");
        assert_eq!(l.data_listing("acb"), "vol/one/acb/acb");
        assert_eq!(l.data_listing("acbd1"), "vol/one/acb/acbd1");
        assert_eq!(l.recent_listing("acbd1"), "vol/one/recent/acb/acbd1");
        assert_eq!(l.data_end(), "vol/one/g");
        assert_eq!(l.parse_data(&l.data(&h)), Some(h));
        assert_eq!(l.parse_recent(&l.recent(&h)), Some(h));
    }

    #[test]
    fn rejects_foreign_keys() {
        let flat = Layout::new("p", 0);
        let sharded = Layout::new("p", 3);
        let h = BlockHash::of(b"foo");
        assert_eq!(flat.parse_data(FOO), None, "outside the prefix");
        assert_eq!(flat.parse_data(&format!("p/{}", FOO.to_uppercase())), None);
        assert_eq!(flat.parse_data(&flat.recent(&h)), None);
        assert_eq!(flat.parse_data(&flat.trash(&h)), None);
        assert_eq!(flat.parse_data(&flat.quarantine(&h, 1)), None);
        assert_eq!(flat.parse_trash(&flat.quarantine(&h, 1)), None);
        assert_eq!(
            sharded.parse_data(&format!("p/{FOO}")),
            None,
            "missing shard"
        );
        assert_eq!(
            sharded.parse_data(&format!("p/abc/{FOO}")),
            None,
            "wrong shard"
        );
        assert_eq!(
            flat.parse_data(&format!("p/acb/{FOO}")),
            None,
            "unexpected shard"
        );
    }

    proptest! {
        #[test]
        fn every_key_round_trips_and_sorts(bytes in any::<[u8; 16]>(), n in 0usize..6, cut in 0usize..33) {
            let h = BlockHash::from_bytes(bytes);
            let l = Layout::new("v", n);
            let hex = h.to_hex();
            prop_assert_eq!(l.parse_data(&l.data(&h)), Some(h));
            prop_assert_eq!(l.parse_recent(&l.recent(&h)), Some(h));
            prop_assert_eq!(l.parse_trash(&l.trash(&h)), Some(h));
            prop_assert!(l.data(&h).starts_with(&l.data_listing(&hex[..cut])));
            prop_assert!(l.recent(&h).starts_with(&l.recent_listing(&hex[..cut])));
            prop_assert!(l.data(&h) < l.data_end());
            prop_assert!(l.recent(&h) > l.data_end() && l.trash(&h) > l.data_end());
            prop_assert!(l.quarantine(&h, 0) > l.data_end());
        }
    }
}
