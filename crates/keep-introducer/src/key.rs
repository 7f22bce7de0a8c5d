//! The cluster key: the secret every node of one cluster shares, which keys
//! the HMAC that authenticates announcements.

use std::fmt;
use std::path::{Path, PathBuf};

/// The cluster key. Its bytes never appear in `Debug` output or logs.
#[derive(Clone)]
pub struct ClusterKey(Vec<u8>);

/// Why a cluster key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read cluster key file {}: {error}", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// The I/O error (kept in the message, not as a source, so it is
        /// shown once).
        error: std::io::Error,
    },
    /// The file (or the bytes given) held no key.
    #[error("cluster key {origin} is empty")]
    Empty {
        /// Where the key came from.
        origin: String,
    },
}

impl ClusterKey {
    /// A key from its bytes; an empty key is refused.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Err(KeyError::Empty {
                origin: "given".into(),
            });
        }
        Ok(ClusterKey(bytes))
    }

    /// Reads the key from `path`: the whole file, less one trailing line
    /// ending (`\n` or `\r\n`), so `echo secret > file` works.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let mut bytes = std::fs::read(path).map_err(|error| KeyError::Read {
            path: path.to_owned(),
            error,
        })?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        if bytes.is_empty() {
            return Err(KeyError::Empty {
                origin: format!("in {}", path.display()),
            });
        }
        Ok(ClusterKey(bytes))
    }

    /// Reads the key from `path`, first writing a fresh random one there
    /// (64 hex characters, mode 0600) if the file does not exist. Returns
    /// the key and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let err = |error| KeyError::Read {
            path: path.to_owned(),
            error,
        };
        let created = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut file) => {
                let secret = hex::encode(rand::Rng::random::<[u8; 32]>(&mut rand::rng()));
                file.write_all(format!("{secret}\n").as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(err)?;
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(err(e)),
        };
        Ok((Self::from_file(path)?, created))
    }

    /// The key's bytes, for keying the HMAC.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_exactly_one_line_ending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        for (content, want) in [
            (&b"secret\n"[..], &b"secret"[..]),
            (b"secret\r\n", b"secret"),
            (b"secret\n\n", b"secret\n"),
            (b"secret", b"secret"),
        ] {
            std::fs::write(&path, content).unwrap();
            assert_eq!(ClusterKey::from_file(&path).unwrap().as_bytes(), want);
        }
        std::fs::write(&path, b"\n").unwrap();
        assert!(matches!(
            ClusterKey::from_file(&path),
            Err(KeyError::Empty { .. })
        ));
        assert!(matches!(
            ClusterKey::from_file(&dir.path().join("missing")),
            Err(KeyError::Read { .. })
        ));
    }

    #[test]
    fn load_or_create_keeps_the_first_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster-key");
        let (first, created) = ClusterKey::load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(first.as_bytes().len(), 64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, created) = ClusterKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(again.as_bytes(), first.as_bytes());
    }

    #[test]
    fn debug_hides_the_secret() {
        let key = ClusterKey::new("hunter2").unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
