//! `GET` and `HEAD /{locator}`: find the block on a volume and stream it,
//! verified.
//!
//! Architecture invariant: corrupt content is never delivered as a success.
//! A block that fits in one chunk is verified before the answer starts, so a
//! corrupt copy is moved aside and the next volume tried. A larger block is
//! verified as it streams; if its hash fails at the end, the connection is
//! aborted before the body completes (the client sees a short read), and the
//! copy is moved aside.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::request::Parts;
use http::{Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use keep_http::Body;
use keep_locator::{BlockHash, Locator};
use keep_volume::{BlockReader, CHUNK_SIZE, ContentCheck, Volume, VolumeError};

use crate::budget::Reservation;
use crate::error::ApiError;
use crate::metrics::VolumeLabels;
use crate::node::Node;
use crate::{auth, handlers::parse_locator};

/// Why serving from one volume did not work out.
enum Failed {
    /// The copy was corrupt and has been moved aside: try another volume.
    Corrupt,
    /// Any other error.
    Api(ApiError),
}

/// Answers `GET` (or `HEAD` when `head`) for the locator in the path.
pub async fn get_block(
    node: &Arc<Node>,
    parts: &Parts,
    head: bool,
) -> Result<Response<Body>, ApiError> {
    let loc = parse_locator(parts.uri.path())?;
    if loc.size.is_none() && loc.hash != BlockHash::EMPTY {
        return Err(ApiError::method_not_allowed());
    }
    check_permission(node, &loc, parts)?;
    let mut fault: Option<VolumeError> = None;
    for vol in node.volumes_for(&loc.hash) {
        let reader = match vol.open(&loc.hash).await {
            Ok(r) => r,
            Err(VolumeError::NotFound) => continue,
            Err(e) => {
                node.metrics().volume_error(&vol.params().uuid);
                tracing::warn!(volume = %vol.params().uuid, error = %e, "open failed");
                fault = Some(e);
                continue;
            }
        };
        if head {
            return Ok(block_response(reader.size, keep_http::body::empty()));
        }
        match serve(node, vol, loc.hash, reader).await {
            Ok(resp) => return Ok(resp),
            Err(Failed::Corrupt) => continue,
            Err(Failed::Api(e)) => return Err(e),
        }
    }
    if loc.hash == BlockHash::EMPTY {
        // The empty block needs no storage to exist.
        return Ok(block_response(0, keep_http::body::empty()));
    }
    match fault {
        Some(e) => Err(e.into()),
        None => Err(ApiError::not_found()),
    }
}

/// With signing on, a GET needs a token and a valid signature for it.
fn check_permission(node: &Node, loc: &Locator, parts: &Parts) -> Result<(), ApiError> {
    let Some(key) = &node.config().signing_key else {
        return Ok(());
    };
    let token = auth::token(&parts.headers, &parts.uri)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "token required"))?;
    key.verify(loc, &token, node.config().signing_ttl, crate::unix_now())?;
    Ok(())
}

fn block_response(size: u64, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, size.into());
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    resp
}

async fn serve(
    node: &Arc<Node>,
    vol: &Arc<dyn Volume>,
    hash: BlockHash,
    mut reader: BlockReader,
) -> Result<Response<Body>, Failed> {
    let reservation = node
        .budget()
        .reserve(reader.size)
        .await
        .map_err(Failed::Api)?;
    let mut check = ContentCheck::new();
    if reader.size <= CHUNK_SIZE as u64 {
        // Small: read it all and verify before answering.
        let mut whole: Vec<Bytes> = Vec::with_capacity(1);
        while let Some(chunk) = reader.chunks.next().await {
            let chunk = chunk.map_err(|e| Failed::Api(read_error(node, vol, e)))?;
            check.update(&chunk).await;
            whole.push(chunk);
        }
        if check.len() != reader.size || check.finish() != hash {
            corrupt(node, vol, hash).await;
            return Err(Failed::Corrupt);
        }
        let data: Bytes = match whole.len() {
            0 => Bytes::new(),
            1 => whole.swap_remove(0),
            _ => whole.concat().into(),
        };
        node.metrics().bytes_out.inc_by(data.len() as u64);
        return Ok(block_response(reader.size, keep_http::body::full(data)));
    }
    let size = reader.size;
    let stream = Verifying {
        node: node.clone(),
        vol: vol.clone(),
        hash,
        size,
        reader,
        check,
        _reservation: reservation,
    }
    .into_stream();
    Ok(block_response(size, StreamBody::new(stream).boxed_unsync()))
}

fn read_error(node: &Node, vol: &Arc<dyn Volume>, e: VolumeError) -> ApiError {
    node.metrics().volume_error(&vol.params().uuid);
    tracing::warn!(volume = %vol.params().uuid, error = %e, "read failed");
    e.into()
}

/// Moves a corrupt copy aside and counts it.
async fn corrupt(node: &Node, vol: &Arc<dyn Volume>, hash: BlockHash) {
    let uuid = &vol.params().uuid;
    tracing::error!(volume = %uuid, block = %hash, "stored block failed its checksum; moving it aside");
    node.metrics()
        .corrupt_blocks
        .get_or_create(&VolumeLabels {
            volume: uuid.clone(),
        })
        .inc();
    if let Err(e) = vol.quarantine(&hash).await {
        tracing::error!(volume = %uuid, block = %hash, error = %e, "could not move the corrupt block aside");
    }
}

/// A large block on its way out, hashed as it goes.
struct Verifying {
    node: Arc<Node>,
    vol: Arc<dyn Volume>,
    hash: BlockHash,
    size: u64,
    reader: BlockReader,
    check: ContentCheck,
    _reservation: Reservation,
}

type Item = Result<Frame<Bytes>, keep_http::BoxError>;

impl Verifying {
    fn into_stream(self) -> impl futures::Stream<Item = Item> + Send + 'static {
        futures::stream::unfold(Some(self), |state| async move {
            let mut st = state?;
            match st.reader.chunks.next().await {
                Some(Ok(chunk)) => {
                    st.check.update(&chunk).await;
                    if st.check.len() > st.size {
                        return Some((Err(st.fail().await), None));
                    }
                    st.node.metrics().bytes_out.inc_by(chunk.len() as u64);
                    Some((Ok(Frame::data(chunk)), Some(st)))
                }
                Some(Err(e)) => {
                    let err = read_error(&st.node, &st.vol, e);
                    Some((Err(err.message.into()), None))
                }
                None => {
                    let whole = st.check.len() == st.size;
                    if whole && std::mem::take(&mut st.check).finish() == st.hash {
                        None
                    } else {
                        Some((Err(st.fail().await), None))
                    }
                }
            }
        })
    }

    async fn fail(self) -> keep_http::BoxError {
        corrupt(&self.node, &self.vol, self.hash).await;
        format!("block {} failed its checksum while being sent", self.hash).into()
    }
}
