//! Arvados-style uuids (`zzzzz-<infix>-<15 alphanumerics>`): checked,
//! made, and kept in a file so they survive restarts.

use std::path::Path;

/// Checks an Arvados uuid: `<5 alnum>-<infix>-<15 alnum>`, lowercase.
pub fn check_uuid(uuid: &str, infix: &str) -> Result<(), String> {
    let parts: Vec<&str> = uuid.split('-').collect();
    let alnum = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if parts.len() == 3 && alnum(parts[0], 5) && parts[1] == infix && alnum(parts[2], 15) {
        Ok(())
    } else {
        Err(format!(
            "{uuid:?} is not a uuid of the form zzzzz-{infix}-<15 lowercase letters or digits>"
        ))
    }
}

/// A fresh uuid `zzzzz-<infix>-<15 random lowercase alphanumerics>`.
pub fn new_uuid(infix: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let tail: String = (0..15)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("zzzzz-{infix}-{tail}")
}

/// Reads a uuid kept in `path`, or makes one and keeps it there
/// (crash-safely). A file that holds no valid uuid is an error.
pub fn persistent_uuid(path: &Path, infix: &str) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let uuid = text.trim().to_owned();
            check_uuid(&uuid, infix)
                .map_err(|m| std::io::Error::new(std::io::ErrorKind::InvalidData, m))?;
            Ok(uuid)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let uuid = new_uuid(infix);
            keep_crashsafe::write_file(path, format!("{uuid}\n").as_bytes())?;
            Ok(uuid)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u");
        let first = persistent_uuid(&path, "bi6l4").unwrap();
        assert!(check_uuid(&first, "bi6l4").is_ok(), "{first}");
        assert_eq!(persistent_uuid(&path, "bi6l4").unwrap(), first);
        std::fs::write(&path, "garbage").unwrap();
        assert!(persistent_uuid(&path, "bi6l4").is_err());
    }

    #[test]
    fn uuid_shapes() {
        assert!(check_uuid("zzzzz-nyw5e-000000000000000", "nyw5e").is_ok());
        assert!(check_uuid("zzzzz-nyw5e-000000000000000", "bi6l4").is_err());
        assert!(check_uuid("zzzzz-nyw5e-00000000000000A", "nyw5e").is_err());
        assert!(check_uuid("nope", "nyw5e").is_err());
    }
}
