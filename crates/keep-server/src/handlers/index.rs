//! Index listings: `GET /index[/{prefix}]` over every volume, and
//! `GET /mounts/{uuid}/blocks?prefix=` over one.
//!
//! The listing streams in bounded memory: volumes send entries through a
//! bounded channel, lines go out in batches, and the final empty line,
//! which tells the client the listing is complete, is sent only if every
//! volume finished without error. A failure mid-way aborts the body.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::{Response, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use keep_http::Body;
use keep_volume::{IndexEntry, Volume};

use crate::error::ApiError;

/// Entries buffered between the volumes and the response.
const QUEUE: usize = 1024;
/// Bytes gathered into one body frame.
const BATCH: usize = 64 << 10;

/// Checks a prefix: 0 to 32 lowercase hex digits.
pub fn check_prefix(prefix: &str) -> Result<(), ApiError> {
    if prefix.len() <= 32
        && prefix
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "prefix must be 0 to 32 lowercase hex digits",
        ))
    }
}

/// A streamed index of `volumes` for `prefix`.
pub fn listing(volumes: Vec<Arc<dyn Volume>>, prefix: String) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<IndexEntry>(QUEUE);
    let producer = tokio::spawn(async move {
        for vol in volumes {
            if let Err(e) = vol.index(&prefix, tx.clone()).await {
                tracing::warn!(volume = %vol.params().uuid, error = %e, "index failed");
                return Err(e.to_string());
            }
        }
        Ok(())
    });
    let stream = futures::stream::unfold(Some((rx, producer)), |state| async move {
        let (mut rx, producer) = state?;
        let mut buf = BytesMut::with_capacity(BATCH);
        while buf.len() < BATCH - 128 {
            let entry = if buf.is_empty() {
                match rx.recv().await {
                    Some(e) => e,
                    None => break,
                }
            } else {
                match rx.try_recv() {
                    Ok(e) => e,
                    Err(_) => break,
                }
            };
            buf.put_slice(format!("{}+{} {}\n", entry.hash, entry.size, entry.mtime).as_bytes());
        }
        if !buf.is_empty() {
            return Some((Ok(Frame::data(buf.freeze())), Some((rx, producer))));
        }
        // The channel is closed: every volume is done. Finish honestly.
        let outcome: Result<(), keep_http::BoxError> = match producer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(e.to_string().into()),
        };
        match outcome {
            Ok(()) => Some((Ok(Frame::data(Bytes::from_static(b"\n"))), None)),
            Err(e) => Some((Err(e), None)),
        }
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
