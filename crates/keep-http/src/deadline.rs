//! A write deadline on a connection: a peer that reads nothing for a
//! while (a client that asked for a large block and never reads it) ends
//! its connection, so it cannot hold a connection slot, or the buffers of
//! the answer it left unread, for as long as it likes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

pin_project! {
    /// `inner`, whose writes (and flushes and shutdown) fail with
    /// [`io::ErrorKind::TimedOut`] once one of them has waited `timeout`
    /// without the peer taking a byte. Reads are passed through.
    #[derive(Debug)]
    pub struct WriteDeadline<S> {
        #[pin]
        inner: S,
        timeout: Duration,
        stalled: Option<Pin<Box<Sleep>>>,
    }
}

impl<S> WriteDeadline<S> {
    /// `inner` with writes bounded by `timeout`.
    pub fn new(inner: S, timeout: Duration) -> Self {
        WriteDeadline {
            inner,
            timeout,
            stalled: None,
        }
    }
}

/// What a write that returned `poll` means: done (the deadline is off), or
/// waiting (the deadline runs, and may have passed).
fn watch<T>(
    poll: Poll<io::Result<T>>,
    stalled: &mut Option<Pin<Box<Sleep>>>,
    timeout: Duration,
    cx: &mut Context<'_>,
) -> Poll<io::Result<T>> {
    match poll {
        Poll::Ready(r) => {
            *stalled = None;
            Poll::Ready(r)
        }
        Poll::Pending => {
            let sleep = stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
            match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the peer read nothing for {timeout:?}"),
                ))),
                Poll::Pending => Poll::Pending,
            }
        }
    }
}

use std::future::Future as _;

impl<S: AsyncRead> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().inner.poll_read(cx, buf)
    }
}

impl<S: AsyncWrite> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.inner.poll_write(cx, buf);
        watch(poll, this.stalled, *this.timeout, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.inner.poll_write_vectored(cx, bufs);
        watch(poll, this.stalled, *this.timeout, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let poll = this.inner.poll_flush(cx);
        watch(poll, this.stalled, *this.timeout, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let poll = this.inner.poll_shutdown(cx);
        watch(poll, this.stalled, *this.timeout, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_write_the_peer_never_takes_times_out_and_one_it_takes_does_not() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut a = WriteDeadline::new(a, Duration::from_millis(100));
        // Taken as it goes: no deadline passes.
        let reader = tokio::spawn(async move {
            let mut got = vec![0; 4096];
            b.read_exact(&mut got).await.unwrap();
            b
        });
        a.write_all(&[7; 4096]).await.unwrap();
        let _b = reader.await.unwrap();
        // Not taken: the write fails once the deadline has passed.
        let started = std::time::Instant::now();
        let err = a.write_all(&[7; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
