//! The MD5 of block content, the hash that names every block.
//!
//! Every byte a node stores or serves unverified by a sum of its own goes
//! through MD5, and it is the largest share of a large PUT's CPU. OpenSSL's
//! MD5 (its hand-scheduled x86-64 assembly) ran 0.73-0.76 GB/s per core on
//! the development VM, against 0.60 for the `md-5` crate with its `asm`
//! feature and 0.61-0.63 for `md-5` 0.11; a 4 KiB block 5.8 µs against 7.0.
//! Where OpenSSL will not compute MD5 (a FIPS-only configuration), the
//! `md-5` crate does.

use std::sync::OnceLock;

use md5::Digest;
use openssl::hash::{Hasher, MessageDigest};

use crate::BlockHash;

/// A running MD5.
#[derive(Clone)]
pub struct Md5Hasher(Inner);

#[derive(Clone)]
enum Inner {
    OpenSsl(Hasher),
    Soft(md5::Md5),
}

/// Whether OpenSSL computes MD5 here (probed once).
fn openssl_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        openssl::hash::hash(MessageDigest::md5(), b"abc")
            .is_ok_and(|d| d[..] == md5::Md5::digest(b"abc")[..])
    })
}

impl Md5Hasher {
    /// An MD5 over no bytes yet.
    pub fn new() -> Self {
        if openssl_works()
            && let Ok(h) = Hasher::new(MessageDigest::md5())
        {
            return Md5Hasher(Inner::OpenSsl(h));
        }
        Md5Hasher(Inner::Soft(md5::Md5::new()))
    }

    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            // Updating a digest OpenSSL created cannot fail short of its
            // memory running out.
            Inner::OpenSsl(h) => h.update(data).expect("OpenSSL MD5 update"),
            Inner::Soft(h) => h.update(data),
        }
    }

    /// The hash of everything added.
    pub fn finish(self) -> BlockHash {
        let bytes: [u8; 16] = match self.0 {
            Inner::OpenSsl(mut h) => {
                let d = h.finish().expect("OpenSSL MD5 finish");
                d[..].try_into().expect("an MD5 digest is 16 bytes")
            }
            Inner::Soft(h) => h.finalize().into(),
        };
        BlockHash::from_bytes(bytes)
    }
}

impl Default for Md5Hasher {
    fn default() -> Self {
        Md5Hasher::new()
    }
}

impl std::fmt::Debug for Md5Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.0 {
            Inner::OpenSsl(_) => "openssl",
            Inner::Soft(_) => "md-5",
        };
        f.debug_tuple("Md5Hasher").field(&kind).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_digests() {
        assert!(openssl_works(), "OpenSSL's MD5 is used where it works");
        assert_eq!(
            BlockHash::of(b"").to_hex(),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            BlockHash::of(b"foo").to_hex(),
            "acbd18db4cc2f85cedef654fccc4a4d8"
        );
    }

    proptest! {
        #[test]
        fn both_implementations_agree_in_any_pieces(
            data in proptest::collection::vec(any::<u8>(), 0..5000),
            cut in any::<prop::sample::Index>(),
        ) {
            let at = cut.index(data.len() + 1);
            let mut ssl = Md5Hasher::new();
            ssl.update(&data[..at]);
            let copy = ssl.clone();
            ssl.update(&data[at..]);
            let mut soft = Md5Hasher(Inner::Soft(md5::Md5::new()));
            soft.update(&data);
            let want: [u8; 16] = md5::Md5::digest(&data).into();
            prop_assert_eq!(ssl.finish(), BlockHash::from_bytes(want));
            prop_assert_eq!(soft.finish(), BlockHash::from_bytes(want));
            let mut copy = copy;
            copy.update(&data[at..]);
            prop_assert_eq!(copy.finish(), BlockHash::from_bytes(want));
        }
    }
}
