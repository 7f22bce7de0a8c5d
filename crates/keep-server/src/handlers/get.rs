//! `GET` and `HEAD /{locator}`: find the block on a volume (or, failing
//! that, on a peer) and stream it, verified.
//!
//! Architecture invariant: corrupt content is never delivered as a success.
//! A block that fits in one chunk is verified before the answer starts (by
//! its BLAKE3 chunk sum if it has one, else by MD5), so a corrupt copy is
//! moved aside and the next volume (or peer) tried. A larger block is
//! verified as it streams: chunk by chunk against its sums, or by MD5 with
//! its last chunk held back until the hash is checked. If that fails, the
//! connection is aborted before the body completes (the client sees a short
//! read), and a local copy is moved aside. A local copy verified by MD5
//! (it had no sums, or wrong ones) has its chunk sums offered to its volume
//! afterwards, so its next read checks those instead.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use http::request::Parts;
use http::{Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use keep_http::Body;
use keep_locator::{BlockHash, Locator};
use keep_remote::{LOCAL_ONLY_HEADER, protocol};
use keep_volume::{CHUNK_SIZE, ChunkSummer, ChunkSums, ContentCheck, CopyId, Volume, VolumeError};

use crate::budget::Reservation;
use crate::cluster::forward;
use crate::error::ApiError;
use crate::metrics::VolumeLabels;
use crate::node::Node;
use crate::{auth, handlers::parse_locator};

/// Why serving one copy did not work out.
#[derive(Debug)]
pub enum Failed {
    /// The copy was corrupt (a local one has been moved aside): try another.
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
    let local_only = protocol::flag(&parts.headers, LOCAL_ONLY_HEADER);
    let from_peer = node
        .cluster()
        .is_some_and(|c| c.is_peer(&parts.headers, &parts.uri));
    if !from_peer {
        check_permission(node, &loc, parts)?;
    }
    let mut tried = Tried::default();
    // A volume that just failed is asked last, after the peers: a block
    // held elsewhere does not wait for its timeouts and retries.
    let (suspect, healthy): (Vec<_>, Vec<_>) = node
        .volumes_for(&loc.hash)
        .into_iter()
        .partition(|v| node.health().is_suspect(&v.params().uuid));
    if let Some(resp) = from_volumes(node, &healthy, loc.hash, head, &mut tried).await? {
        return Ok(resp);
    }
    if loc.hash == BlockHash::EMPTY {
        // The empty block needs no storage to exist.
        return Ok(block_response(0, keep_http::body::empty()));
    }
    if !local_only && let Some(cluster) = node.cluster() {
        let size = loc.size.unwrap_or(0);
        if let Some(resp) = forward::read(node, cluster, loc.hash, size, head).await? {
            return Ok(resp);
        }
    }
    if let Some(resp) = from_volumes(node, &suspect, loc.hash, head, &mut tried).await? {
        return Ok(resp);
    }
    match (tried.fault, tried.corrupt) {
        (Some(e), _) => Err(e.into()),
        (None, true) => Err(VolumeError::Corrupt(String::new()).into()),
        (None, false) => Err(ApiError::not_found()),
    }
}

/// What asking the volumes found short of the block.
#[derive(Default)]
struct Tried {
    /// The last volume failure.
    fault: Option<VolumeError>,
    /// A copy failed its checksum.
    corrupt: bool,
}

/// Serves `hash` from the first of `volumes` that has a sound copy, if
/// any; notes failures and corrupt copies in `tried`.
async fn from_volumes(
    node: &Arc<Node>,
    volumes: &[&Arc<dyn Volume>],
    hash: BlockHash,
    head: bool,
    tried: &mut Tried,
) -> Result<Option<Response<Body>>, ApiError> {
    for vol in volumes {
        let uuid = &vol.params().uuid;
        let reader = match vol.open(&hash).await {
            Ok(r) => {
                node.health().answered(uuid);
                r
            }
            Err(VolumeError::NotFound) => {
                node.health().answered(uuid);
                continue;
            }
            Err(e) => {
                if e.is_volume_fault() {
                    node.health().suspect(uuid);
                }
                node.metrics().volume_error(uuid);
                tracing::warn!(volume = %uuid, error = %e, "open failed");
                tried.fault = Some(e);
                continue;
            }
        };
        if head {
            return Ok(Some(block_response(reader.size, keep_http::body::empty())));
        }
        let (node2, vol2) = (node.clone(), (*vol).clone());
        let chunks = reader
            .chunks
            .map(move |c| {
                c.map_err(|e| {
                    if e.is_volume_fault() {
                        node2.health().suspect(&vol2.params().uuid);
                    }
                    node2.metrics().volume_error(&vol2.params().uuid);
                    tracing::warn!(volume = %vol2.params().uuid, error = %e, "read failed");
                    e.to_string()
                })
            })
            .boxed();
        let src = Source {
            chunks,
            size: reader.size,
            local: Some(((*vol).clone(), reader.copy)),
            sums: reader.sums,
        };
        match serve(node, src, hash).await {
            Ok(resp) => return Ok(Some(resp)),
            Err(Failed::Corrupt) => tried.corrupt = true,
            Err(Failed::Api(e)) => return Err(e),
        }
    }
    Ok(None)
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

/// A `200` answer for a block of `size` bytes.
pub fn block_response(size: u64, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, size.into());
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    resp
}

/// Where a block's bytes come from.
pub struct Source {
    /// The bytes; an error is described for the log.
    pub chunks: BoxStream<'static, Result<Bytes, String>>,
    /// The size the source announced.
    pub size: u64,
    /// The local volume holding it and which copy this is, to quarantine
    /// a corrupt copy (and not one that replaced it meanwhile).
    pub local: Option<(Arc<dyn Volume>, Option<CopyId>)>,
    /// Per-chunk checksums kept with the block: then each chunk is checked
    /// (BLAKE3, fast) instead of the MD5 of the whole block.
    pub sums: Option<ChunkSums>,
}

/// Serves a block from `src`, verified against `hash`.
pub async fn serve(
    node: &Arc<Node>,
    mut src: Source,
    hash: BlockHash,
) -> Result<Response<Body>, Failed> {
    let reservation = node.budget().reserve(src.size).await.map_err(Failed::Api)?;
    let mut check = ContentCheck::new();
    if src.size <= CHUNK_SIZE as u64 {
        // Small: read it all and verify before answering, by its one chunk
        // sum if it has one (BLAKE3), else by MD5.
        let sums = src.sums.take();
        let mut whole: Vec<Bytes> = Vec::with_capacity(1);
        let mut read = 0;
        while let Some(chunk) = src.chunks.next().await {
            let chunk =
                chunk.map_err(|e| Failed::Api(ApiError::internal(format!("read failed: {e}"))))?;
            read += chunk.len() as u64;
            if read > src.size {
                break;
            }
            whole.push(chunk);
        }
        let data: Bytes = match whole.len() {
            0 => Bytes::new(),
            1 => whole.swap_remove(0),
            _ => whole.concat().into(),
        };
        let by_sum = matches!(&sums, Some(s) if s.hashes.len() == 1 && s.check(0, &data));
        // The block's name is its MD5: a copy that has it is sound
        // whatever its sidecar says.
        let sound = read == src.size
            && (by_sum || {
                check.update(&data).await;
                check.finish() == hash
            });
        if !sound {
            corrupt(node, src.local.as_ref(), hash).await;
            return Err(Failed::Corrupt);
        }
        if !by_sum {
            if sums.is_some() {
                tracing::warn!(block = %hash, "checksum sidecar disagrees with a sound block");
            }
            offer_sums(src.local.as_ref(), hash, src.size, || {
                let mut summer = ChunkSummer::new(CHUNK_SIZE);
                summer.update(&data);
                summer.finish()
            });
        }
        node.metrics().bytes_out.inc_by(data.len() as u64);
        return Ok(block_response(src.size, keep_http::body::full(data)));
    }
    let size = src.size;
    if let Some(sums) = src.sums.take() {
        let stream = by_chunk_sums(node.clone(), src, sums, hash, reservation);
        return Ok(block_response(size, StreamBody::new(stream).boxed_unsync()));
    }
    let summer = src
        .local
        .as_ref()
        .filter(|(vol, _)| vol.wants_sums(size))
        .map(|_| ChunkSummer::new(CHUNK_SIZE));
    let stream = Verifying {
        node: node.clone(),
        src,
        hash,
        check,
        summer,
        _reservation: reservation,
    }
    .into_stream();
    Ok(block_response(size, StreamBody::new(stream).boxed_unsync()))
}

/// Offers the chunk sums of a local copy just verified by its MD5 to its
/// volume, so that its next read checks them instead (see
/// [`Volume::keep_sums`]); `sums` is only taken if the volume wants them.
/// Runs on its own: the answer does not wait for it.
fn offer_sums(
    local: Option<&(Arc<dyn Volume>, Option<CopyId>)>,
    hash: BlockHash,
    size: u64,
    sums: impl FnOnce() -> ChunkSums,
) {
    let Some((vol, _)) = local.filter(|(vol, _)| vol.wants_sums(size)) else {
        return;
    };
    let (vol, sums) = (vol.clone(), sums());
    tokio::spawn(async move {
        if let Err(e) = vol.keep_sums(&hash, size, sums).await {
            tracing::debug!(volume = %vol.params().uuid, block = %hash, error = %e, "could not keep chunk sums");
        }
    });
}

/// Counts a corrupt copy and moves a local one aside.
async fn corrupt(node: &Node, local: Option<&(Arc<dyn Volume>, Option<CopyId>)>, hash: BlockHash) {
    let Some((vol, copy)) = local else {
        tracing::error!(block = %hash, "a peer sent a block that failed its checksum");
        return;
    };
    let uuid = &vol.params().uuid;
    tracing::error!(volume = %uuid, block = %hash, "stored block failed its checksum; moving it aside");
    node.metrics()
        .corrupt_blocks
        .get_or_create(&VolumeLabels {
            volume: uuid.clone(),
        })
        .inc();
    if let Err(e) = vol.quarantine(&hash, *copy).await {
        tracing::error!(volume = %uuid, block = %hash, error = %e, "could not move the corrupt block aside");
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A large block with chunk sums on its way out: each chunk is sent once
/// its BLAKE3 matches; a mismatch, or a wrong length, cuts the connection
/// and moves the copy aside.
fn by_chunk_sums(
    node: Arc<Node>,
    src: Source,
    sums: ChunkSums,
    hash: BlockHash,
    reservation: Reservation,
) -> impl futures::Stream<Item = Item> + Send + 'static {
    struct St {
        node: Arc<Node>,
        src: Source,
        sums: Arc<ChunkSums>,
        hash: BlockHash,
        index: usize,
        sent: u64,
        _reservation: Reservation,
    }
    let st = St {
        node,
        src,
        sums: Arc::new(sums),
        hash,
        index: 0,
        sent: 0,
        _reservation: reservation,
    };
    futures::stream::unfold(Some(st), |state| async move {
        let mut st = state?;
        let failed = |st: St| async move {
            corrupt(&st.node, st.src.local.as_ref(), st.hash).await;
            let e: keep_http::BoxError =
                format!("block {} failed its checksum while being sent", st.hash).into();
            Some((Err(e), None))
        };
        match st.src.chunks.next().await {
            Some(Ok(chunk)) => {
                // BLAKE3 of a chunk takes a fraction of a millisecond: done
                // here, it saves a trip to a blocking thread per chunk.
                let ok = st.sums.check(st.index, &chunk);
                st.sent += chunk.len() as u64;
                if !ok || st.sent > st.src.size {
                    return failed(st).await;
                }
                st.index += 1;
                st.node.metrics().bytes_out.inc_by(chunk.len() as u64);
                Some((Ok(Frame::data(chunk)), Some(st)))
            }
            Some(Err(e)) => Some((Err(e.into()), None)),
            None if st.sent == st.src.size && st.index == st.sums.hashes.len() => None,
            None => failed(st).await,
        }
    })
}

/// A large block on its way out, hashed as it goes.
struct Verifying {
    node: Arc<Node>,
    src: Source,
    hash: BlockHash,
    check: ContentCheck,
    /// Sums taken on the way, for a volume that wants them.
    summer: Option<ChunkSummer>,
    _reservation: Reservation,
}

type Item = Result<Frame<Bytes>, keep_http::BoxError>;

impl Verifying {
    /// The block's chunks, each sent only once the next one has been read,
    /// and the last one only once the whole block has verified: so a block
    /// whose hash fails never completes, and the client sees a short read.
    fn into_stream(self) -> impl futures::Stream<Item = Item> + Send + 'static {
        futures::stream::unfold(Some((self, None::<Bytes>)), |state| async move {
            let (mut st, mut held) = state?;
            loop {
                match st.src.chunks.next().await {
                    Some(Ok(chunk)) => {
                        st.check.update(&chunk).await;
                        if let Some(summer) = &mut st.summer {
                            summer.update(&chunk);
                        }
                        if st.check.len() > st.src.size {
                            return Some((Err(st.fail().await), None));
                        }
                        if let Some(out) = held.replace(chunk) {
                            st.node.metrics().bytes_out.inc_by(out.len() as u64);
                            return Some((Ok(Frame::data(out)), Some((st, held))));
                        }
                    }
                    Some(Err(e)) => return Some((Err(e.into()), None)),
                    None => {
                        let whole = st.check.len() == st.src.size;
                        if !(whole && std::mem::take(&mut st.check).finish() == st.hash) {
                            return Some((Err(st.fail().await), None));
                        }
                        if let Some(summer) = st.summer.take() {
                            offer_sums(st.src.local.as_ref(), st.hash, st.src.size, || {
                                summer.finish()
                            });
                        }
                        let out = held.take()?;
                        st.node.metrics().bytes_out.inc_by(out.len() as u64);
                        return Some((Ok(Frame::data(out)), None));
                    }
                }
            }
        })
    }

    async fn fail(self) -> keep_http::BoxError {
        corrupt(&self.node, self.src.local.as_ref(), self.hash).await;
        format!("block {} failed its checksum while being sent", self.hash).into()
    }
}
