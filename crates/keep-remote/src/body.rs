//! Streamed block bodies in both directions, with the checks and stall
//! detection a block transfer needs.
//!
//! - [`upload`]: the caller's chunks as a request body that must add up to
//!   the declared size, plus a [`Progress`] that tells a stalled peer (it
//!   stopped taking bytes) from a slow source (the caller has none yet).
//! - [`download`]: a response body as a chunk stream that must add up to
//!   the expected size, with a deadline for the first chunk and one for
//!   each gap after it.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use futures::stream::BoxStream;
use http_body::{Body as _, Frame};
use http_body_util::{BodyExt, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::RemoteError;
use crate::remote::error_chain;

/// The error type of request bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body type every request of a [`crate::Remote`] uses.
pub(crate) type RequestBody = UnsyncBoxBody<Bytes, BoxError>;

/// An empty request body.
pub(crate) fn empty() -> RequestBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Shared between an upload body and the task waiting for the answer.
#[derive(Debug)]
pub(crate) struct Progress {
    state: Mutex<ProgressState>,
}

#[derive(Debug)]
struct ProgressState {
    /// Since when the peer has had everything we could give it and we are
    /// waiting for it (to connect, to take the next chunk, or to answer);
    /// `None` while we are waiting for the caller's stream instead.
    peer_since: Option<Instant>,
    /// Why the body failed on our side, if it did.
    failure: Option<String>,
}

impl Progress {
    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn waiting_for_peer(&self, yes: bool) {
        self.lock().peer_since = yes.then(Instant::now);
    }

    fn fail(&self, why: String) -> BoxError {
        self.lock().failure = Some(why.clone());
        why.into()
    }

    /// Why the body failed on our side, if it did.
    pub(crate) fn failure(&self) -> Option<String> {
        self.lock().failure.clone()
    }

    /// Resolves once the peer has kept us waiting for `limit` in one go.
    pub(crate) async fn stalled(&self, limit: Duration) {
        loop {
            let since = self.lock().peer_since;
            match since {
                Some(t) if t.elapsed() >= limit => return,
                Some(t) => tokio::time::sleep_until(t + limit).await,
                None => tokio::time::sleep(limit).await,
            }
        }
    }
}

/// The caller's stream for a replicate request: exactly `size` bytes.
struct Upload {
    chunks: BoxStream<'static, Result<Bytes, std::io::Error>>,
    size: u64,
    sent: u64,
    done: bool,
    progress: Arc<Progress>,
}

impl Stream for Upload {
    type Item = Result<Frame<Bytes>, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        this.progress.waiting_for_peer(false);
        let item = match this.chunks.as_mut().poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        let result = match item {
            Some(Ok(chunk)) => {
                this.sent += chunk.len() as u64;
                if this.sent > this.size {
                    Err(format!(
                        "the block stream holds more than the declared {} bytes",
                        this.size
                    ))
                } else {
                    Ok(Some(chunk))
                }
            }
            Some(Err(e)) => Err(format!("reading the block to replicate: {e}")),
            None if this.sent < this.size => Err(format!(
                "the block stream ended after {} of {} bytes",
                this.sent, this.size
            )),
            None => Ok(None),
        };
        match result {
            Ok(Some(chunk)) => {
                this.progress.waiting_for_peer(true);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Ok(None) => {
                this.done = true;
                this.progress.waiting_for_peer(true);
                Poll::Ready(None)
            }
            Err(why) => {
                this.done = true;
                Poll::Ready(Some(Err(this.progress.fail(why))))
            }
        }
    }
}

/// `chunks` as a request body of exactly `size` bytes, and its progress.
/// The progress starts out waiting for the peer (to connect).
pub(crate) fn upload(
    chunks: BoxStream<'static, Result<Bytes, std::io::Error>>,
    size: u64,
) -> (RequestBody, Arc<Progress>) {
    let progress = Arc::new(Progress {
        state: Mutex::new(ProgressState {
            peer_since: Some(Instant::now()),
            failure: None,
        }),
    });
    let body = Upload {
        chunks,
        size,
        sent: 0,
        done: false,
        progress: progress.clone(),
    };
    (StreamBody::new(body).boxed_unsync(), progress)
}

/// Reading a block the peer sends.
struct Download {
    body: Incoming,
    size: u64,
    received: u64,
    /// When the first chunk must have come.
    first_deadline: Option<Instant>,
    /// The longest gap allowed between later chunks.
    idle: Duration,
}

impl Download {
    /// The next chunk; `Ok(None)` at the end of exactly `size` bytes.
    async fn next(&mut self) -> Result<Option<Bytes>, RemoteError> {
        loop {
            if self.received == self.size && self.body.is_end_stream() {
                return Ok(None);
            }
            let deadline = self
                .first_deadline
                .unwrap_or_else(|| Instant::now() + self.idle);
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .map_err(|_| RemoteError::Timeout)?;
            let data = match frame {
                None if self.received == self.size => return Ok(None),
                None => {
                    return Err(RemoteError::Body(format!(
                        "the block ended after {} of {} bytes",
                        self.received, self.size
                    )));
                }
                Some(Err(e)) => return Err(RemoteError::Body(error_chain(&e))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => data,
                    _ => continue,
                },
            };
            self.first_deadline = None;
            self.received += data.len() as u64;
            if self.received > self.size {
                return Err(RemoteError::Body(format!(
                    "the block is longer than {} bytes",
                    self.size
                )));
            }
            return Ok(Some(data));
        }
    }
}

/// `body` as a stream of exactly `size` bytes: the first chunk must come
/// by `first_deadline`, each later one within `idle` of the previous. The
/// stream ends after its first error.
pub(crate) fn download(
    body: Incoming,
    size: u64,
    first_deadline: Instant,
    idle: Duration,
) -> BoxStream<'static, Result<Bytes, RemoteError>> {
    let state = Download {
        body,
        size,
        received: 0,
        first_deadline: Some(first_deadline),
        idle,
    };
    Box::pin(futures::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        match state.next().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(state))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    }))
}
