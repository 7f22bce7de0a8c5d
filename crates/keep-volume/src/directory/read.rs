//! Streaming a block file in chunks, each read on a blocking thread, so a
//! slow client holds no thread and at most one chunk of memory.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::{BlockReader, CHUNK_SIZE, VolumeError};

struct State {
    file: Arc<File>,
    offset: u64,
    size: u64,
}

/// A reader over an open block file of `size` bytes.
pub(crate) fn reader(file: File, size: u64) -> BlockReader {
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
