//! Opening a block file and streaming it in chunks: each step is first
//! tried from the kernel's caches on the async worker (see [`nowait`]), and
//! otherwise done on a blocking thread, so a slow disk blocks no worker and
//! a slow client holds no thread and at most one chunk of memory.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use keep_locator::BlockHash;

use super::nowait::{Attempt, Gate};
use super::{SIDECAR_MIN, buffers, xsum};
use crate::{BlockReader, CHUNK_SIZE, ChunkSums, CopyId, VolumeError};

struct State {
    gate: Arc<Gate>,
    file: Arc<File>,
    offset: u64,
    size: u64,
}

/// Blocks up to this size are read whole when opened.
const READ_AT_OPEN: u64 = 64 << 10;

/// An opened block: small ones already read, larger ones to stream.
pub(crate) enum Opened {
    /// The whole content, which copy it came from (`None`: from memory,
    /// see the journal), and its sum if its file keeps one (see `xsum`).
    Whole(Bytes, Option<CopyId>, Option<ChunkSums>),
    /// The open file, its size, its chunk sums if a valid sidecar exists
    /// (below [`SIDECAR_MIN`]: the sum its file keeps, see `xsum`), and
    /// which copy it is.
    File(File, u64, Option<ChunkSums>, CopyId),
}

/// Opens a block file; reads it at once if it is small, and the checksum
/// sidecar of block `hash` (`sidecar`) if it is at least [`SIDECAR_MIN`]
/// (else the sum its file keeps).
/// Blocking.
pub(crate) fn open(path: &Path, sidecar: &Path, hash: &BlockHash) -> Result<Opened, VolumeError> {
    let file = File::open(path).map_err(crate::error::not_found_or_io)?;
    let meta = file.metadata()?;
    let size = meta.len();
    if size <= READ_AT_OPEN {
        let data = read_at(&file, 0, size as usize)?;
        return Ok(Opened::Whole(data, Some(copy_id(&meta)), xsum::get(&file)));
    }
    let sums = if size >= SIDECAR_MIN {
        std::fs::read(sidecar)
            .ok()
            .and_then(|b| ChunkSums::decode(&b, size, CHUNK_SIZE, hash))
    } else {
        xsum::get(&file)
    };
    Ok(Opened::File(file, size, sums, copy_id(&meta)))
}

/// [`open`] done on the async worker, if the kernel can do all of it
/// from its caches (see [`super::nowait`]); `WouldBlock` sends the caller
/// to [`open`] on a blocking thread. `rel` is the block's path relative to
/// the gate's root; its sidecar is `rel` + `.b3`.
pub(crate) fn open_nowait(
    gate: &Gate,
    rel: &str,
    hash: &BlockHash,
) -> Result<Attempt<Opened>, VolumeError> {
    let path = Path::new(rel);
    let file = match gate.open(path).map_err(crate::error::not_found_or_io)? {
        Attempt::Done(f) => f,
        Attempt::WouldBlock => return Ok(Attempt::WouldBlock),
    };
    // fstat of an open file reads the in-memory inode: it does not wait.
    let meta = file.metadata()?;
    let size = meta.len();
    if size <= READ_AT_OPEN {
        return Ok(match gate.read_at(&file, 0, size as usize)? {
            // The sum sits in the in-memory inode (see `xsum`).
            Attempt::Done(data) => {
                Attempt::Done(Opened::Whole(data, Some(copy_id(&meta)), xsum::get(&file)))
            }
            Attempt::WouldBlock => Attempt::WouldBlock,
        });
    }
    let copy = copy_id(&meta);
    if size < SIDECAR_MIN {
        let sums = xsum::get(&file);
        return Ok(Attempt::Done(Opened::File(file, size, sums, copy)));
    }
    let side = match gate.open(Path::new(&format!("{rel}.b3"))) {
        Ok(Attempt::Done(f)) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Attempt::Done(Opened::File(file, size, None, copy)));
        }
        Ok(Attempt::WouldBlock) | Err(_) => return Ok(Attempt::WouldBlock),
    };
    let side_len = side.metadata()?.len();
    if side_len > SIDECAR_MAX {
        return Ok(Attempt::Done(Opened::File(file, size, None, copy)));
    }
    Ok(match gate.read_at(&side, 0, side_len as usize)? {
        Attempt::Done(b) => {
            let sums = ChunkSums::decode(&b, size, CHUNK_SIZE, hash);
            Attempt::Done(Opened::File(file, size, sums, copy))
        }
        Attempt::WouldBlock => Attempt::WouldBlock,
    })
}

/// No valid sidecar is larger (64 chunk hashes and a header); a larger
/// file is not read.
const SIDECAR_MAX: u64 = 16 << 10;

/// Which file a block was read from: its inode number and birth time (an
/// inode number alone can be reused by a later rewrite).
pub(crate) fn copy_id(meta: &std::fs::Metadata) -> CopyId {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    meta.ino().hash(&mut h);
    meta.created().ok().hash(&mut h);
    CopyId(h.finish())
}

/// A reader over an opened block.
pub(crate) fn reader(gate: Arc<Gate>, opened: Opened) -> BlockReader {
    match opened {
        Opened::Whole(data, copy, sums) => {
            let size = data.len() as u64;
            let chunks = if data.is_empty() {
                futures::stream::empty().boxed()
            } else {
                futures::stream::once(async move { Ok(data) }).boxed()
            };
            BlockReader {
                size,
                chunks,
                sums,
                copy,
            }
        }
        Opened::File(file, size, sums, copy) => BlockReader {
            sums,
            copy: Some(copy),
            ..stream(gate, file, size)
        },
    }
}

/// A reader over an open block file of `size` bytes. Each chunk is read
/// in place if the page cache has it (see [`nowait`]), else (its rest) on
/// a blocking thread, into a reused buffer (see [`buffers`]).
fn stream(gate: Arc<Gate>, file: File, size: u64) -> BlockReader {
    let state = State {
        gate,
        file: Arc::new(file),
        offset: 0,
        size,
    };
    let chunks = futures::stream::unfold(Some(state), |state| async move {
        let mut st = state?;
        if st.offset >= st.size {
            return None;
        }
        let want = (st.size - st.offset).min(CHUNK_SIZE as u64) as usize;
        match read_chunk(&st.gate, &st.file, st.offset, want).await {
            Ok(chunk) if chunk.is_empty() => Some((
                Err(VolumeError::Corrupt(format!(
                    "file ends at {} of {} bytes",
                    st.offset, st.size
                ))),
                None,
            )),
            Ok(chunk) => {
                st.offset += chunk.len() as u64;
                Some((Ok(chunk), Some(st)))
            }
            Err(e) => Some((Err(VolumeError::Io(e)), None)),
        }
    });
    BlockReader {
        size,
        chunks: chunks.boxed(),
        sums: None,
        copy: None,
    }
}

/// Reads up to `want` (at most [`CHUNK_SIZE`]) bytes at `offset`; fewer
/// only at the end of the file.
async fn read_chunk(
    gate: &Gate,
    file: &Arc<File>,
    offset: u64,
    want: usize,
) -> std::io::Result<Bytes> {
    let mut buf = buffers::take(want);
    let (filled, blocked) = gate.fill(file, offset, &mut buf)?;
    if !blocked {
        return Ok(buffers::freeze(buf, filled));
    }
    let file = file.clone();
    let done = tokio::task::spawn_blocking(move || {
        let n = fill(&file, offset + filled as u64, &mut buf[filled..])?;
        Ok::<_, std::io::Error>(buffers::freeze(buf, filled + n))
    });
    match done.await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Fills `buf` from `offset`, waiting for the disk; fewer bytes only at the
/// end of the file. Blocking.
fn fill(file: &File, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads up to `want` bytes (a small block: at most [`READ_AT_OPEN`]) at
/// `offset` into a new buffer; fewer only at end of file. Blocking.
fn read_at(file: &File, offset: u64, want: usize) -> std::io::Result<Bytes> {
    let mut buf = vec![0; want];
    let n = fill(file, offset, &mut buf)?;
    buf.truncate(n);
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChunkSummer;

    /// What an opened block holds, to compare the two ways of opening.
    fn describe(opened: Opened) -> (Option<Vec<u8>>, u64, Option<ChunkSums>) {
        match opened {
            Opened::Whole(b, _, sums) => (Some(b.to_vec()), b.len() as u64, sums),
            Opened::File(_, size, sums, _) => (None, size, sums),
        }
    }

    /// The fast path answers exactly as the blocking path does, for every
    /// size class, with and without a sidecar, and for a missing block.
    #[test]
    fn nowait_open_agrees_with_blocking_open() {
        let dir = tempfile::tempdir().unwrap();
        // Relative to the gate's root, as the volume opens blocks.
        let gate = Gate::new(dir.path()).unwrap();
        let sizes = [
            0usize,
            1,
            4096,
            65536,
            65537,
            200_000,
            CHUNK_SIZE,
            3 * CHUNK_SIZE + 5,
        ];
        for (i, size) in sizes.into_iter().enumerate() {
            let data: Vec<u8> = (0..size).map(|b| (b * 31 + i) as u8).collect();
            let path = dir.path().join(format!("b{i}"));
            let side = dir.path().join(format!("b{i}.b3"));
            std::fs::write(&path, &data).unwrap();
            let hash = BlockHash::of(&data);
            let with_sidecar = size as u64 >= SIDECAR_MIN && size != 3 * CHUNK_SIZE + 5;
            if with_sidecar {
                let mut s = ChunkSummer::new(CHUNK_SIZE);
                s.update(&data);
                std::fs::write(&side, s.finish().encode(&hash)).unwrap();
            }
            let slow = describe(open(&path, &side, &hash).unwrap());
            assert_eq!(slow.2.is_some(), with_sidecar, "size {size}");
            match open_nowait(&gate, &format!("b{i}"), &hash).unwrap() {
                Attempt::Done(fast) => assert_eq!(describe(fast), slow, "size {size}"),
                Attempt::WouldBlock => assert!(!gate.enabled(), "all of it is cached"),
            }
            if let (Some(whole), _, _) = &slow {
                assert_eq!(whole, &data);
            }
        }
        let missing = dir.path().join("missing");
        assert!(matches!(
            open(&missing, &missing, &BlockHash::of(b"")),
            Err(VolumeError::NotFound)
        ));
        assert!(matches!(
            open_nowait(&gate, "missing", &BlockHash::of(b"")),
            Err(VolumeError::NotFound) | Ok(Attempt::WouldBlock)
        ));
    }

    #[test]
    fn blocking_reads_fill_whole_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..300_000u32).map(|b| b as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(&read_at(&file, 0, 100_000).unwrap()[..], &data[..100_000]);
        assert_eq!(
            &read_at(&file, 250_000, 100_000).unwrap()[..],
            &data[250_000..]
        );
        assert!(read_at(&file, 400_000, 10).unwrap().is_empty());
    }
}
