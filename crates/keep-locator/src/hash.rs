//! The MD5 hash that names a block.

use std::fmt;
use std::str::FromStr;

use crate::LocatorError;

/// The MD5 digest of a block's content: the name of the block in Keep.
///
/// Its text form is exactly 32 lowercase hex digits. Ordering compares the raw
/// bytes, which is the same as comparing the lowercase hex strings.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockHash([u8; 16]);

impl BlockHash {
    /// The hash of the empty block, `d41d8cd98f00b204e9800998ecf8427e`.
    pub const EMPTY: BlockHash = BlockHash([
        0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04, 0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42,
        0x7e,
    ]);

    /// Wraps a raw 16-byte digest.
    pub fn from_bytes(b: [u8; 16]) -> Self {
        BlockHash(b)
    }

    /// The raw 16-byte digest.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses exactly 32 lowercase hex digits.
    ///
    /// # Errors
    ///
    /// [`LocatorError::BadHash`] for uppercase digits, any other length or any
    /// other character, as Arvados refuses them.
    pub fn from_hex(s: &str) -> Result<Self, LocatorError> {
        let bytes = s.as_bytes();
        if bytes.len() != 32 {
            return Err(LocatorError::bad_hash(s));
        }
        let mut out = [0u8; 16];
        for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            match (nibble(pair[0]), nibble(pair[1])) {
                (Some(hi), Some(lo)) => *o = (hi << 4) | lo,
                _ => return Err(LocatorError::bad_hash(s)),
            }
        }
        Ok(BlockHash(out))
    }

    /// The 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The MD5 digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        let mut h = crate::Md5Hasher::new();
        h.update(data);
        h.finish()
    }

    /// Whether the hex form of this hash starts with `hex_prefix`.
    ///
    /// The prefix must be 0 to 32 lowercase hex digits; anything else (an
    /// uppercase digit, a longer string) matches nothing. The empty prefix
    /// matches every hash.
    pub fn prefix_matches(&self, hex_prefix: &str) -> bool {
        let p = hex_prefix.as_bytes();
        if p.len() > 32 {
            return false;
        }
        p.iter().enumerate().all(|(i, &c)| {
            let byte = self.0[i / 2];
            let want = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
            nibble(c) == Some(want)
        })
    }
}

/// The value of one lowercase hex digit.
fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockHash({self})")
    }
}

impl FromStr for BlockHash {
    type Err = LocatorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BlockHash::from_hex(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_md5_of_nothing() {
        assert_eq!(BlockHash::of(b""), BlockHash::EMPTY);
        assert_eq!(
            BlockHash::EMPTY.to_hex(),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
    }

    #[test]
    fn md5_of_foo() {
        assert_eq!(
            BlockHash::of(b"foo").to_hex(),
            "acbd18db4cc2f85cedef654fccc4a4d8"
        );
    }

    #[test]
    fn hex_round_trip_and_display() {
        let h = BlockHash::of(b"hello world");
        let s = h.to_hex();
        assert_eq!(s, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(BlockHash::from_hex(&s).ok(), Some(h));
        assert_eq!(s.parse::<BlockHash>().ok(), Some(h));
        assert_eq!(h.to_string(), s);
        assert_eq!(format!("{h:?}"), format!("BlockHash({s})"));
        assert_eq!(BlockHash::from_bytes(*h.as_bytes()), h);
    }

    #[test]
    fn from_hex_refuses_bad_input() {
        for bad in [
            "",
            "d41d8cd98f00b204e9800998ecf8427",
            "d41d8cd98f00b204e9800998ecf8427e0",
            "D41D8CD98F00B204E9800998ECF8427E",
            "d41d8cd98f00b204e9800998ecf8427E",
            "g41d8cd98f00b204e9800998ecf8427e",
            "d41d8cd98f00b204e9800998ecf8427é",
            "+41d8cd98f00b204e9800998ecf8427e",
        ] {
            assert!(
                matches!(BlockHash::from_hex(bad), Err(LocatorError::BadHash(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn prefixes() {
        let h = BlockHash::EMPTY;
        assert!(h.prefix_matches(""));
        assert!(h.prefix_matches("d"));
        assert!(h.prefix_matches("d41"));
        assert!(h.prefix_matches("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(!h.prefix_matches("d41d8cd98f00b204e9800998ecf8427e0"));
        assert!(!h.prefix_matches("D"));
        assert!(!h.prefix_matches("d42"));
        assert!(!h.prefix_matches("x"));
        assert!(!h.prefix_matches("é"));
    }

    #[test]
    fn ordering_matches_hex_ordering() {
        let a = BlockHash::of(b"a");
        let b = BlockHash::of(b"b");
        assert_eq!(a.cmp(&b), a.to_hex().cmp(&b.to_hex()));
    }
}
