//! About one chunk of a body's bytes, kept in the frames they arrived in.
//!
//! Gathering a body into contiguous chunks cost the node a copy of every
//! byte it received (about 6% of its CPU on a 64 MiB PUT, measured). The
//! MD5, the chunk sums and `writev` all take bytes in pieces, so the disk
//! path keeps the frames as they came. Runs of small frames (a client that
//! sends tiny HTTP chunks) are still copied together, so a batch holds a
//! bounded number of pieces whatever the client does; a small frame alone
//! (a small block's whole body, usually) is kept as it is.

use std::io::{IoSlice, Write};

use bytes::{Bytes, BytesMut};

/// Frames shorter than this are copied into a shared buffer instead of
/// being kept as pieces of their own.
const SMALL_FRAME: usize = 16 << 10;

/// The buffer small frames are copied into.
const SMALL_BUF: usize = 64 << 10;

/// Body bytes in arrival order, as a few large pieces.
///
/// A batch of `n` bytes has at most `2n / SMALL_FRAME + n / (SMALL_BUF -
/// SMALL_FRAME) + 2` pieces (a large frame has at least `SMALL_FRAME`
/// bytes; a lone small frame or a copied run ends at a large frame, or at
/// the end, or, for a run, once it holds more than `SMALL_BUF -
/// SMALL_FRAME`): about 150 for a chunk, well under the kernel's limit of
/// 1024 pieces for one `writev`.
#[derive(Debug, Default, Clone)]
pub struct Frames {
    parts: Vec<Bytes>,
    /// The copied run of small frames being built.
    small: BytesMut,
    len: usize,
    /// Whether any piece is a copied run (its buffer may be larger than it).
    copied: bool,
}

impl Frames {
    /// No bytes yet.
    pub fn new() -> Self {
        Frames::default()
    }

    /// Appends a frame: kept as it is when it is large, copied when small.
    pub fn push(&mut self, frame: Bytes) {
        if frame.is_empty() {
            return;
        }
        self.len += frame.len();
        if frame.len() >= SMALL_FRAME {
            self.seal();
            self.parts.push(frame);
            return;
        }
        if self.small.is_empty() {
            // A small frame alone is kept as it is; the second in a row
            // starts a copied run with the first.
            let Some(lone) = self.parts.pop_if(|p| p.len() < SMALL_FRAME) else {
                self.parts.push(frame);
                return;
            };
            self.small.reserve(SMALL_BUF);
            self.small.extend_from_slice(&lone);
        } else if self.small.capacity() - self.small.len() < frame.len() {
            self.seal();
            self.small.reserve(SMALL_BUF);
        }
        self.small.extend_from_slice(&frame);
    }

    /// Ends the copied run of small frames, if any, as a piece.
    fn seal(&mut self) {
        if !self.small.is_empty() {
            self.parts.push(self.small.split().freeze());
            self.copied = true;
        }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no bytes are held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces, in order.
    pub fn parts(&mut self) -> &[Bytes] {
        self.seal();
        &self.parts
    }

    /// The bytes as one buffer: a frame that came alone as it is, anything
    /// else copied once into a buffer of exactly its size (so that a copied
    /// run does not hold on to a larger buffer).
    pub fn into_bytes(mut self) -> Bytes {
        self.seal();
        match self.parts.len() {
            0 => Bytes::new(),
            1 if !self.copied => self.parts.swap_remove(0),
            _ => {
                let mut out = BytesMut::with_capacity(self.len);
                for p in &self.parts {
                    out.extend_from_slice(p);
                }
                out.freeze()
            }
        }
    }

    /// Writes every byte to `out` with as few `writev` calls as it takes.
    pub fn write_to(&mut self, mut out: impl Write) -> std::io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> = self.parts().iter().map(|p| IoSlice::new(p)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match out.write_vectored(rest) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A writer that takes at most `most` bytes per call, and sometimes
    /// fails with `Interrupted` first.
    struct Trickle {
        out: Vec<u8>,
        most: usize,
        interrupt: bool,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if std::mem::take(&mut self.interrupt) {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(self.most);
            self.out.extend_from_slice(&buf[..n]);
            self.interrupt = n.is_multiple_of(3);
            Ok(n)
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
            self.write(first)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_writer_that_takes_nothing_fails() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Ok(0)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut f = Frames::new();
        f.push(Bytes::from_static(b"abc"));
        let e = f.write_to(Full).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WriteZero);
    }

    /// A small frame that comes alone, as a small block's body does, is
    /// neither copied nor held in a larger buffer; two in a row are joined.
    #[test]
    fn a_lone_small_frame_is_kept_as_it_is() {
        let body = Bytes::from(vec![5u8; 4096]);
        let mut one = Frames::new();
        one.push(body.clone());
        assert_eq!(one.parts().len(), 1);
        assert_eq!(one.into_bytes().as_ptr(), body.as_ptr(), "not copied");
        let mut two = Frames::new();
        two.push(body.slice(..100));
        two.push(body.slice(100..));
        assert_eq!(two.parts().len(), 1, "joined");
        let joined = two.into_bytes();
        assert!(joined == body && joined.as_ptr() != body.as_ptr());
        let mut around = Frames::new();
        around.push(body.slice(..10));
        around.push(Bytes::from(vec![6u8; SMALL_FRAME]));
        around.push(body.slice(10..20));
        assert_eq!(around.parts().len(), 3, "lone small frames on either side");
    }

    proptest! {
        /// Whatever the frames, the bytes come out whole and in order, as
        /// one buffer and through `writev`, in a bounded number of pieces.
        #[test]
        fn frames_keep_bytes_in_order(sizes in proptest::collection::vec(
                                          prop_oneof![0usize..64, 16_380usize..16_390, 0usize..40_000], 0..80),
                                      most in 1usize..100_000) {
            let mut frames = Frames::new();
            let mut want = Vec::new();
            for (i, n) in sizes.iter().enumerate() {
                let frame: Vec<u8> = (0..*n).map(|j| (i * 31 + j) as u8).collect();
                want.extend_from_slice(&frame);
                frames.push(Bytes::from(frame));
            }
            prop_assert_eq!(frames.len(), want.len());
            let pieces = frames.parts().len();
            let n = want.len();
            prop_assert!(pieces <= 2 * n / SMALL_FRAME + n / (SMALL_BUF - SMALL_FRAME) + 2);
            prop_assert!(frames.parts().iter().all(|p| !p.is_empty()));
            let mut sink = Trickle { out: Vec::new(), most, interrupt: true };
            frames.clone().write_to(&mut sink).unwrap();
            prop_assert_eq!(&sink.out, &want);
            prop_assert_eq!(&frames.into_bytes()[..], &want[..]);
        }
    }
}
