//! The puller's side of the routes ([`crate::routes`]), over a peer's
//! [`Remote`].

use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http::{Method, StatusCode};
use http_body_util::{BodyDataStream, BodyExt, Limited};
use hyper::body::Incoming;
use keep_remote::{Remote, RemoteError, RequestOptions};

use crate::routes;
use crate::wire::{
    self, Cancel, CursorsReply, MAX_MESSAGE_LEN, Offer, OfferRequest, WireError, WireMessage,
};

/// Why an exchange with a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request failed or the peer answered with an error status.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The answer's body broke off or was too long.
    #[error("answer body: {0}")]
    Body(String),
    /// The answer was not a message of this protocol version.
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// The timeouts of the exchanges.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// How long a short request (cursors, a historical offer, cancel, the
    /// head of a delivery) may take.
    pub request: Duration,
}

/// The peer's epoch and cursors.
pub async fn cursors(remote: &Remote, t: Timeouts) -> Result<CursorsReply, ClientError> {
    let resp = call(
        remote,
        Method::GET,
        routes::CURSORS,
        Bytes::new(),
        t.request,
    )
    .await?;
    decode_body(resp).await
}

/// An offer; a live request (`req.to` = [`OfferRequest::LIVE`]) may wait
/// up to `wait` for entries.
pub async fn offer(
    remote: &Remote,
    req: &OfferRequest,
    wait: Duration,
    t: Timeouts,
) -> Result<Offer, ClientError> {
    let path = format!(
        "{}?{}={}",
        routes::OFFER,
        routes::WAIT_PARAM,
        wait.as_millis()
    );
    let body = Bytes::from(wire::encode(req)?);
    let resp = call(remote, Method::POST, &path, body, wait + t.request).await?;
    decode_body(resp).await
}

/// Asks for the wanted blocks of an offer; the answer's body is the
/// delivery.
pub async fn want(
    remote: &Remote,
    want: &wire::Want,
    t: Timeouts,
) -> Result<impl Stream<Item = Result<Bytes, hyper::Error>> + Unpin + use<>, ClientError> {
    let body = Bytes::from(wire::encode(want)?);
    let resp = call(remote, Method::POST, routes::WANT, body, t.request).await?;
    Ok(BodyDataStream::new(resp.into_body()))
}

/// Gives up an offer (best effort: an offer also expires by itself).
pub async fn cancel(remote: &Remote, ruid: u32, t: Timeouts) -> Result<(), ClientError> {
    let body = Bytes::from(wire::encode(&Cancel { ruid })?);
    call(remote, Method::POST, routes::CANCEL, body, t.request)
        .await
        .map(drop)
}

async fn call(
    remote: &Remote,
    method: Method,
    path: &str,
    body: Bytes,
    first_byte: Duration,
) -> Result<http::Response<Incoming>, ClientError> {
    let mut options = RequestOptions {
        first_byte_timeout: Some(first_byte),
        ..RequestOptions::default()
    };
    options.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(routes::CONTENT_TYPE),
    );
    let resp = remote.call(method, path, body, &options).await?;
    if resp.status() == StatusCode::OK {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let text = read_limited(resp, 512).await.unwrap_or_default();
    Err(RemoteError::Status {
        status,
        message: String::from_utf8_lossy(&text).into_owned(),
        draining: false,
    }
    .into())
}

async fn read_limited(resp: http::Response<Incoming>, limit: usize) -> Result<Bytes, ClientError> {
    Limited::new(resp.into_body(), limit)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|e| ClientError::Body(e.to_string()))
}

async fn decode_body<M: WireMessage>(resp: http::Response<Incoming>) -> Result<M, ClientError> {
    let bytes = read_limited(resp, MAX_MESSAGE_LEN).await?;
    Ok(wire::decode(&bytes)?)
}
