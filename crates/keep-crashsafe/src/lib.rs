//! Crash-safe file writes, in one place, for every crate that keeps state
//! on disk (volumes, the introducer's table, the node's uuid).
//!
//! The recipe: write a uniquely named temporary file in the destination
//! folder, `fdatasync` it, rename it over the destination, `fsync` the
//! folder. A crash at any instant leaves either the old state or the new,
//! never a partial file under the final name. [`TempFile`] removes the
//! temporary file on every path that does not reach the rename.
//! [`TempFile::commit_unsynced`] skips the flushes, for callers that repair
//! or detect what a crash leaves.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("state.json");
//! keep_crashsafe::write_file(&path, br#"{"generation": 1}"#)?;
//! keep_crashsafe::write_file(&path, br#"{"generation": 2}"#)?;
//! assert_eq!(
//!     keep_crashsafe::read_optional(&path)?.as_deref(),
//!     Some(&br#"{"generation": 2}"#[..])
//! );
//! // The temporary file went into place: nothing else is left beside it.
//! assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
//! assert_eq!(keep_crashsafe::read_optional(&dir.path().join("absent"))?, None);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A temporary file that is removed when dropped, unless it was renamed
/// into place with [`TempFile::commit`].
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    file: File,
    armed: bool,
}

impl TempFile {
    /// Creates `dir/name`, failing if it exists.
    pub fn create(dir: &Path, name: &str) -> io::Result<TempFile> {
        let path = dir.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(TempFile {
            path,
            file,
            armed: true,
        })
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Flushes the data to disk, renames the file to `dest` (in the same
    /// folder) and flushes the folder. After an error the temporary file
    /// is removed and `dest` is as it was.
    pub fn commit(mut self, dest: &Path) -> io::Result<()> {
        self.file.sync_data()?;
        std::fs::rename(&self.path, dest)?;
        self.armed = false;
        sync_dir(dest.parent().unwrap_or(Path::new(".")))
    }

    /// Renames the file to `dest` without flushing anything: for a caller
    /// whose durability comes from elsewhere (a journal that can rewrite the
    /// file after a crash, and a later `syncfs`), or whose readers detect a
    /// damaged file (a sealed checksum sidecar). After a crash, `dest` may
    /// exist with missing or stale data; that caller must repair or detect
    /// it.
    pub fn commit_unsynced(mut self, dest: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, dest)?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Flushes a folder's entries (renames, creations, removals) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates a folder if it is missing and makes its creation durable.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => sync_dir(dir.parent().unwrap_or(Path::new("."))),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Replaces `dest` with `data`, crash-safely.
pub fn write_file(dest: &Path, data: &[u8]) -> io::Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = TempFile::create(dir, &format!(".{name}.tmp{:016x}", rand::random::<u64>()))?;
    tmp.file().write_all(data)?;
    tmp.commit(dest)
}

/// Renames a file whose content cannot be used to `NAME.corrupt-SECS` so
/// that it is kept for a person to look at and not read again.
pub fn move_aside(path: &Path) -> io::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{secs}"));
    let aside = PathBuf::from(aside);
    std::fs::rename(path, &aside)?;
    Ok(aside)
}

/// Reads `path`, or `None` when it does not exist.
pub fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_temp_files_vanish_and_commits_stay() {
        let dir = tempfile::tempdir().unwrap();
        {
            let tmp = TempFile::create(dir.path(), "t1").unwrap();
            tmp.file().write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_file(&dir.path().join("x"), b"whole").unwrap();
        assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), b"whole");
        write_file(&dir.path().join("x"), b"again").unwrap();
        assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), b"again");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(TempFile::create(dir.path(), "x").is_err(), "never clobbers");
    }

    #[test]
    fn replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_file(&path, b"one").unwrap();
        write_file(&path, b"two").unwrap();
        assert_eq!(read_optional(&path).unwrap().unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn failed_write_removes_its_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a non-empty directory, so the rename fails.
        let path = dir.path().join("occupied");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("x"), b"x").unwrap();
        assert!(write_file(&path, b"data").is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the directory remains");
    }

    #[test]
    fn move_aside_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        assert!(read_optional(&path).unwrap().is_none());
        std::fs::write(&path, b"{").unwrap();
        let aside = move_aside(&path).unwrap();
        assert!(!path.exists());
        assert!(aside.to_string_lossy().contains("bad.json.corrupt-"));
    }
}
