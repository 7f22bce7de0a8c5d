//! Arvados's directory layout: `<root>/<first 3 hex>/<md5>`, trashed blocks
//! as `<md5>.trash.<unix deadline>`, temporary files as `tmp<md5><random>`.
//! An existing Arvados volume directory is served as it is.

use std::path::{Path, PathBuf};

use keep_locator::BlockHash;

/// The folder holding a block: `<root>/<first 3 hex>`.
pub(crate) fn block_dir(root: &Path, hash: &BlockHash) -> PathBuf {
    root.join(&hash.to_hex()[..3])
}

/// The path of a stored block.
pub(crate) fn block_path(root: &Path, hash: &BlockHash) -> PathBuf {
    let hex = hash.to_hex();
    root.join(&hex[..3]).join(hex)
}

/// A stored block's path relative to the root: `<first 3 hex>/<md5>`.
pub(crate) fn block_rel(hash: &BlockHash) -> String {
    let hex = hash.to_hex();
    format!("{}/{hex}", &hex[..3])
}

/// The path of a block's checksum sidecar (`<md5>.b3`).
pub(crate) fn sidecar_path(root: &Path, hash: &BlockHash) -> PathBuf {
    let hex = hash.to_hex();
    root.join(&hex[..3]).join(format!("{hex}.b3"))
}

/// The hash of a checksum sidecar's file name, if it is one.
pub(crate) fn parse_sidecar_name(name: &str) -> Option<BlockHash> {
    name.strip_suffix(".b3").and_then(parse_block_name)
}

/// The name of a trashed copy that may be deleted after `deadline`.
pub(crate) fn trash_name(hash: &BlockHash, deadline_unix: u64) -> String {
    format!("{hash}.trash.{deadline_unix}")
}

/// The name of a quarantined (corrupt) copy.
pub(crate) fn quarantine_name(hash: &BlockHash, unix_nanos: i64) -> String {
    format!("{hash}.corrupt.{unix_nanos}")
}

/// A fresh temporary file name for writing `hash` (Arvados's `tmp<md5>`
/// prefix, so leftovers of either implementation are recognised).
pub(crate) fn temp_name(hash: &BlockHash) -> String {
    format!("tmp{hash}{:016x}", rand::random::<u64>())
}

/// A new temporary file for writing `hash`, in the block's folder, which
/// is made if missing (it usually exists: one `open`, no `mkdir`) and then
/// flushed into the root at once.
pub(crate) fn create_temp(
    root: &Path,
    hash: &BlockHash,
) -> std::io::Result<crate::crashsafe::TempFile> {
    use crate::crashsafe::{self, TempFile};
    let dir = block_dir(root, hash);
    match TempFile::create(&dir, &temp_name(hash)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match std::fs::create_dir(&dir) {
                Ok(()) => crashsafe::sync_dir(root)?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            TempFile::create(&dir, &temp_name(hash))
        }
        other => other,
    }
}

/// The hash of a stored block's file name, if it is one.
pub(crate) fn parse_block_name(name: &str) -> Option<BlockHash> {
    if name.len() == 32 {
        BlockHash::from_hex(name).ok()
    } else {
        None
    }
}

/// The hash and deadline of a trashed copy's file name
/// (`^([0-9a-f]{32})\.trash\.(\d+)$`).
pub(crate) fn parse_trash_name(name: &str) -> Option<(BlockHash, u64)> {
    let (hex, deadline) = name.split_once(".trash.")?;
    let hash = parse_block_name(hex)?;
    if deadline.is_empty() || !deadline.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((hash, deadline.parse().ok()?))
}

/// Whether a file name is a temporary file left by a write.
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.strip_prefix("tmp")
        .and_then(|rest| rest.get(..32))
        .is_some_and(|hex| BlockHash::from_hex(hex).is_ok())
}

/// Whether a folder name is one of the 4096 block folders.
pub(crate) fn is_block_dir_name(name: &str) -> bool {
    name.len() == 3 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_round_trip() {
        let h = BlockHash::of(b"foo");
        assert_eq!(parse_block_name(&h.to_hex()), Some(h));
        assert_eq!(parse_trash_name(&trash_name(&h, 1234)), Some((h, 1234)));
        assert!(is_temp_name(&temp_name(&h)));
        assert_eq!(
            block_path(Path::new("/v"), &h),
            Path::new("/v/acb/acbd18db4cc2f85cedef654fccc4a4d8")
        );
    }

    #[test]
    fn rejects_lookalikes() {
        let h = BlockHash::of(b"foo").to_hex();
        assert_eq!(parse_block_name(&h.to_uppercase()), None);
        assert_eq!(parse_block_name(&format!("{h}x")), None);
        assert_eq!(parse_trash_name(&format!("{h}.trash.")), None);
        assert_eq!(parse_trash_name(&format!("{h}.trash.12a")), None);
        assert_eq!(parse_trash_name(&format!("{h}.corrupt.12")), None);
        assert!(!is_temp_name("tmp"));
        assert!(!is_temp_name(&h));
        assert!(is_block_dir_name("0af") && !is_block_dir_name("0AF") && !is_block_dir_name("tmp"));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".*") {
            let _ = parse_block_name(&s);
            let _ = parse_trash_name(&s);
            let _ = is_temp_name(&s);
        }

        #[test]
        fn every_name_kind_is_distinct(bytes in any::<[u8; 16]>(), n in any::<u64>()) {
            let h = BlockHash::from_bytes(bytes);
            let t = trash_name(&h, n);
            let q = quarantine_name(&h, n as i64);
            let tmp = temp_name(&h);
            prop_assert!(parse_block_name(&t).is_none() && parse_block_name(&q).is_none() && parse_block_name(&tmp).is_none());
            prop_assert!(parse_trash_name(&q).is_none() && parse_trash_name(&tmp).is_none());
            prop_assert!(!is_temp_name(&t) && !is_temp_name(&q));
        }
    }
}
