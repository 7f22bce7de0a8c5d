//! Reused read buffers for streaming blocks.
//!
//! A fresh 1 MiB buffer costs the kernel a page fault and a page clearing
//! per 4 KiB before the first byte is read into it; at gigabytes per second
//! that is a visible share of a GET. A chunk read here goes into a buffer
//! taken from a small free list, and the buffer returns to the list when
//! the last [`Bytes`] handle to the chunk drops (after the socket took it).
//! The list keeps at most [`MAX_IDLE`] buffers, so idle memory is bounded.

use std::sync::Mutex;

use bytes::Bytes;

use crate::CHUNK_SIZE;

/// At most this many idle buffers are kept (16 MiB).
const MAX_IDLE: usize = 16;

static FREE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A buffer of `len` initialised bytes. A full chunk's buffer is reused if
/// one is idle; anything else is new (zeroed), so a short block does not
/// hold a whole chunk's memory.
pub(crate) fn take(len: usize) -> Vec<u8> {
    let reused = if len == CHUNK_SIZE {
        FREE.lock().unwrap_or_else(|p| p.into_inner()).pop()
    } else {
        None
    };
    reused.unwrap_or_else(|| vec![0; len])
}

/// The first `len` bytes of `buf` as [`Bytes`]; the buffer goes back to
/// the free list when they are dropped.
pub(crate) fn freeze(buf: Vec<u8>, len: usize) -> Bytes {
    Bytes::from_owner(Pooled { buf, len })
}

struct Pooled {
    buf: Vec<u8>,
    len: usize,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.len() != CHUNK_SIZE {
            return;
        }
        let mut free = FREE.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < MAX_IDLE {
            free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_and_the_list_stays_bounded() {
        let mut held = Vec::new();
        for i in 0..(MAX_IDLE + 4) {
            let mut b = take(CHUNK_SIZE);
            assert_eq!(b.len(), CHUNK_SIZE);
            b[0] = i as u8;
            let bytes = freeze(b, 10);
            assert_eq!(bytes.len(), 10);
            assert_eq!(bytes[0], i as u8);
            held.push(bytes);
        }
        drop(held);
        let idle = FREE.lock().unwrap().len();
        assert!(idle <= MAX_IDLE && idle > 0, "{idle} idle buffers");
        assert_eq!(take(100).len(), 100, "short buffers are their own size");
    }
}
