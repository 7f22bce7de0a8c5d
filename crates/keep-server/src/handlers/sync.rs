//! The pullsync routes (`/_keep/sync/...`, node credential only) over
//! keep-pullsync's serving side. Bodies are its wire messages.

use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use http::{Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Incoming;
use keep_http::Body;
use keep_pullsync::Pullsync;
use keep_pullsync::serve::ServeError;
use keep_pullsync::wire::{self, Cancel, MAX_MESSAGE_LEN, OfferRequest, Want, WireMessage};

use crate::error::ApiError;

/// The longest a live offer request may wait, whatever it asks.
pub const MAX_LIVE_WAIT: Duration = Duration::from_secs(60);

/// `GET /_keep/sync/cursors`.
pub fn cursors(sync: &Pullsync) -> Result<Response<Body>, ApiError> {
    message(&sync.offerer().cursors())
}

/// `POST /_keep/sync/offer?wait_ms=N`.
pub async fn offer(sync: &Pullsync, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let wait = wait_param(req.uri())?;
    let request: OfferRequest = read_message(req).await?;
    let offer = sync
        .offerer()
        .offer(request, wait)
        .await
        .map_err(serve_error)?;
    message(&offer)
}

/// `POST /_keep/sync/want`: the answer's body is the delivery.
pub async fn want(sync: &Pullsync, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let want: Want = read_message(req).await?;
    let delivery = sync
        .deliverer()
        .deliver(want.ruid, &want.bits)
        .map_err(serve_error)?;
    let frames = delivery
        .map_ok(Frame::data)
        .map_err(|e| -> keep_http::BoxError {
            tracing::warn!(error = %e, "pullsync delivery broke off");
            Box::new(e)
        });
    let mut resp = Response::new(StreamBody::new(frames).boxed_unsync());
    set_content_type(&mut resp);
    Ok(resp)
}

/// `POST /_keep/sync/cancel`.
pub async fn cancel(sync: &Pullsync, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let cancel: Cancel = read_message(req).await?;
    if sync.deliverer().cancel(cancel.ruid) {
        Ok(keep_http::body::text(StatusCode::OK, "cancelled"))
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown ruid {}", cancel.ruid),
        ))
    }
}

/// 404 when the node runs no pullsync (not in a cluster, or turned off).
pub fn off() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "pullsync is off on this node")
}

fn wait_param(uri: &http::Uri) -> Result<Duration, ApiError> {
    let Some(text) = crate::router::query_param(uri, keep_pullsync::routes::WAIT_PARAM) else {
        return Ok(Duration::ZERO);
    };
    let ms: u64 = text
        .parse()
        .map_err(|_| ApiError::bad_request(format!("bad wait_ms {text:?}")))?;
    Ok(Duration::from_millis(ms).min(MAX_LIVE_WAIT))
}

async fn read_message<M: WireMessage>(req: Request<Incoming>) -> Result<M, ApiError> {
    let body: Bytes = http_body_util::Limited::new(req.into_body(), MAX_MESSAGE_LEN)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("message too large or unreadable: {e}")))?
        .to_bytes();
    wire::decode(&body).map_err(|e| ApiError::bad_request(format!("bad message: {e}")))
}

fn message<M: WireMessage>(msg: &M) -> Result<Response<Body>, ApiError> {
    let bytes = wire::encode(msg).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut resp = Response::new(keep_http::body::full(bytes));
    set_content_type(&mut resp);
    Ok(resp)
}

fn set_content_type(resp: &mut Response<Body>) {
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(keep_pullsync::routes::CONTENT_TYPE),
    );
}

fn serve_error(e: ServeError) -> ApiError {
    match e {
        ServeError::NoSuchBin(_) | ServeError::BadRequest(_) | ServeError::BadWant { .. } => {
            ApiError::bad_request(e.to_string())
        }
        ServeError::UnknownRuid(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
        e => ApiError::internal(e.to_string()),
    }
}
