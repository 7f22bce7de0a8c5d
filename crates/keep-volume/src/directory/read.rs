//! Streaming a block file in chunks, each read on a blocking thread, so a
//! slow client holds no thread and at most one chunk of memory.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use std::path::Path;

use crate::{BlockReader, CHUNK_SIZE, ChunkSums, VolumeError};

struct State {
    file: Arc<File>,
    offset: u64,
    size: u64,
}

/// Blocks up to this size are read whole when opened.
const READ_AT_OPEN: u64 = 64 << 10;

/// An opened block: small ones already read, larger ones to stream.
pub(crate) enum Opened {
    /// The whole content.
    Whole(Bytes),
    /// The open file, its size, and its chunk sums if a valid sidecar exists.
    File(File, u64, Option<ChunkSums>),
}

/// Opens a block file; reads it at once if it is small, and its checksum
/// sidecar (`sidecar`) if it is larger than a chunk. Blocking.
pub(crate) fn open(path: &Path, sidecar: &Path) -> Result<Opened, VolumeError> {
    let file = File::open(path).map_err(crate::error::not_found_or_io)?;
    let size = file.metadata()?.len();
    if size <= READ_AT_OPEN {
        let data = read_at(&file, 0, size as usize)?;
        return Ok(Opened::Whole(data));
    }
    let sums = if size > CHUNK_SIZE as u64 {
        std::fs::read(sidecar)
            .ok()
            .and_then(|b| ChunkSums::decode(&b, size, CHUNK_SIZE))
    } else {
        None
    };
    Ok(Opened::File(file, size, sums))
}

/// A reader over an opened block.
pub(crate) fn reader(opened: Opened) -> BlockReader {
    match opened {
        Opened::Whole(data) => {
            let size = data.len() as u64;
            let chunks = if data.is_empty() {
                futures::stream::empty().boxed()
            } else {
                futures::stream::once(async move { Ok(data) }).boxed()
            };
            BlockReader {
                size,
                chunks,
                sums: None,
            }
        }
        Opened::File(file, size, sums) => BlockReader {
            sums,
            ..stream(file, size)
        },
    }
}

/// A reader over an open block file of `size` bytes.
fn stream(file: File, size: u64) -> BlockReader {
    let state = State {
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
        let (file, offset) = (st.file.clone(), st.offset);
        let read = tokio::task::spawn_blocking(move || read_at(&file, offset, want)).await;
        match read {
            Ok(Ok(chunk)) if chunk.is_empty() => Some((
                Err(VolumeError::Corrupt(format!(
                    "file ends at {} of {} bytes",
                    st.offset, st.size
                ))),
                None,
            )),
            Ok(Ok(chunk)) => {
                st.offset += chunk.len() as u64;
                Some((Ok(chunk), Some(st)))
            }
            Ok(Err(e)) => Some((Err(VolumeError::Io(e)), None)),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    });
    BlockReader {
        size,
        chunks: chunks.boxed(),
        sums: None,
    }
}

/// Reads up to `want` bytes at `offset`; fewer only at end of file.
fn read_at(file: &File, offset: u64, want: usize) -> std::io::Result<Bytes> {
    let mut buf = BytesMut::zeroed(want);
    let mut filled = 0;
    while filled < want {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf.freeze())
}
