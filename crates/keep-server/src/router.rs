//! Routing: which handler answers a request ([`Route`]), who may call it
//! ([`Access`]), and the bookkeeping every request gets (request id, span,
//! metrics, log line).

use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use keep_http::{Body, request_id};
use keep_status::Op;
use tracing::Instrument;

use crate::auth;
use crate::error::ApiError;
use crate::handlers::{admin, get, index, node, put, status, sync, worklists};
use crate::keepstore::Keepstore;
use crate::metrics::RequestLabels;
use crate::work;

/// Handles one request.
pub async fn handle(node: Arc<Keepstore>, req: Request<Incoming>) -> Response<Body> {
    let id = request_id::pick(req.headers().get(request_id::HEADER));
    let method = req.method().clone();
    let span = tracing::info_span!("request", id = %id, method = %method, path = %req.uri().path());
    async move {
        let start = Instant::now();
        let request_length = content_length(req.headers());
        node.metrics().in_flight.inc();
        let (route, result) = dispatch(&node, req).await;
        node.metrics().in_flight.dec();
        let mut resp = result.unwrap_or_else(|e| {
            tracing::info!(status = e.status.as_u16(), error = %e.message, "refused");
            e.into_response()
        });
        if let Ok(v) = id.parse() {
            resp.headers_mut().insert(request_id::HEADER, v);
        }
        if node.is_draining() {
            resp.headers_mut().insert(
                keep_remote::DRAINING_HEADER,
                http::HeaderValue::from_static("true"),
            );
        }
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            match route {
                "put_block" => node
                    .traffic()
                    .record(Op::Put, request_length, start.elapsed()),
                "get_block" if method == Method::GET => {
                    let sent = content_length(resp.headers());
                    node.traffic().record(Op::Get, sent, start.elapsed());
                }
                _ => {}
            }
        }
        node.metrics()
            .requests
            .get_or_create(&RequestLabels {
                method: method_label(&method).to_owned(),
                route: route.into(),
                status,
            })
            .inc();
        let elapsed_ms = start.elapsed().as_millis() as u64;
        if matches!(
            route,
            "node_status" | "health" | "metrics" | "status_page" | "status_json"
        ) {
            // Heartbeats, scrapes and pages reloading: frequent and routine.
            tracing::debug!(route, status, elapsed_ms, "handled");
        } else {
            tracing::info!(route, status, elapsed_ms, "handled");
        }
        resp
    }
    .instrument(span)
    .await
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: the status page, for a browser.
    Root,
    /// `GET /_status.json`.
    StatusJson,
    /// `GET /_health/ping`.
    Health,
    /// `GET /metrics`.
    Metrics,
    /// `GET /_keep/node`.
    NodeStatus,
    /// `GET /_keep/workers`.
    Workers,
    /// `GET /mounts`.
    Mounts,
    /// `GET /mounts/{uuid}/blocks`.
    MountBlocks(String),
    /// `GET /index[/{prefix}]`.
    Index(String),
    /// `PUT /pull`.
    Pull,
    /// `PUT /trash`.
    Trash,
    /// `PUT /untrash/{locator}`.
    Untrash(String),
    /// `GET /_keep/sync/cursors`.
    SyncCursors,
    /// `POST /_keep/sync/offer`.
    SyncOffer,
    /// `POST /_keep/sync/want`.
    SyncWant,
    /// `POST /_keep/sync/cancel`.
    SyncCancel,
    /// `GET /{locator}`.
    GetBlock,
    /// `HEAD /{locator}`.
    HeadBlock,
    /// `PUT /{md5}`.
    PutBlock,
    /// `DELETE /{locator}`.
    DeleteBlock,
    /// `TOUCH /{locator}`.
    TouchBlock,
    /// A block path with a method no block route has.
    OtherBlockMethod,
    /// Nothing here.
    Unknown,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (block reads check their signatures themselves).
    Anyone,
    /// Holders of the system root token.
    Admin,
    /// Other nodes of the cluster (their node credential).
    Peer,
}

impl Route {
    /// The route of `method` on `path`.
    pub fn of(method: &Method, path: &str) -> Route {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            [""] => Route::Root,
            ["_status.json"] => Route::StatusJson,
            ["_health", "ping"] => Route::Health,
            ["metrics"] => Route::Metrics,
            ["_keep", "node"] => Route::NodeStatus,
            ["_keep", "workers"] => Route::Workers,
            ["_keep", "sync", "cursors"] => Route::SyncCursors,
            ["_keep", "sync", "offer"] => Route::SyncOffer,
            ["_keep", "sync", "want"] => Route::SyncWant,
            ["_keep", "sync", "cancel"] => Route::SyncCancel,
            ["mounts"] => Route::Mounts,
            ["mounts", uuid, "blocks"] => Route::MountBlocks((*uuid).to_owned()),
            ["index"] => Route::Index(String::new()),
            ["index", prefix] => Route::Index((*prefix).to_owned()),
            ["pull"] => Route::Pull,
            ["trash"] => Route::Trash,
            ["untrash", locator] => Route::Untrash((*locator).to_owned()),
            [first] if looks_like_block(first) => match method.as_str() {
                "GET" => Route::GetBlock,
                "HEAD" => Route::HeadBlock,
                "PUT" => Route::PutBlock,
                "DELETE" => Route::DeleteBlock,
                "TOUCH" => Route::TouchBlock,
                _ => Route::OtherBlockMethod,
            },
            _ => Route::Unknown,
        }
    }

    /// The route's name in metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Route::Root => "status_page",
            Route::StatusJson => "status_json",
            Route::Health => "health",
            Route::Metrics => "metrics",
            Route::NodeStatus => "node_status",
            Route::Workers => "workers",
            Route::Mounts => "mounts",
            Route::MountBlocks(_) => "mount_blocks",
            Route::Index(_) => "index",
            Route::Pull => "pull",
            Route::Trash => "trash",
            Route::Untrash(_) => "untrash",
            Route::SyncCursors => "sync_cursors",
            Route::SyncOffer => "sync_offer",
            Route::SyncWant => "sync_want",
            Route::SyncCancel => "sync_cancel",
            Route::GetBlock => "get_block",
            Route::HeadBlock => "head_block",
            Route::PutBlock => "put_block",
            Route::DeleteBlock => "delete_block",
            Route::TouchBlock => "touch_block",
            Route::OtherBlockMethod => "block",
            Route::Unknown => "unknown",
        }
    }

    /// The methods the route answers (block routes are named by theirs).
    fn methods(&self) -> Option<Method> {
        match self {
            Route::Health
            | Route::StatusJson
            | Route::Metrics
            | Route::NodeStatus
            | Route::Workers
            | Route::Mounts
            | Route::MountBlocks(_)
            | Route::Index(_)
            | Route::SyncCursors => Some(Method::GET),
            Route::SyncOffer | Route::SyncWant | Route::SyncCancel => Some(Method::POST),
            Route::Pull | Route::Trash | Route::Untrash(_) => Some(Method::PUT),
            _ => None,
        }
    }

    /// Who may call it.
    pub fn access(&self) -> Access {
        match self {
            Route::NodeStatus
            | Route::SyncCursors
            | Route::SyncOffer
            | Route::SyncWant
            | Route::SyncCancel => Access::Peer,
            Route::Workers
            | Route::DeleteBlock
            | Route::MountBlocks(_)
            | Route::Index(_)
            | Route::Pull
            | Route::Trash
            | Route::Untrash(_)
            | Route::TouchBlock => Access::Admin,
            _ => Access::Anyone,
        }
    }
}

type Outcome = (&'static str, Result<Response<Body>, ApiError>);

async fn dispatch(node: &Keepstore, req: Request<Incoming>) -> Outcome {
    let route = Route::of(req.method(), req.uri().path());
    let name = route.name();
    let result = async {
        match route.methods() {
            Some(m) if m != req.method() => return Err(ApiError::method_not_allowed()),
            _ => {}
        }
        match route {
            Route::Unknown => {
                return Err(ApiError::bad_request(format!(
                    "unknown route {}",
                    req.uri().path()
                )));
            }
            Route::OtherBlockMethod => return Err(ApiError::method_not_allowed()),
            _ => {}
        }
        authorize(node, route.access(), &req)?;
        serve(node, route, req).await
    }
    .await;
    (name, result)
}

/// Checks that the caller may use a route with `access`.
fn authorize(node: &Keepstore, access: Access, req: &Request<Incoming>) -> Result<(), ApiError> {
    let admin = || {
        auth::require_admin(
            node.config().system_root_token.as_ref(),
            req.headers(),
            req.uri(),
        )
    };
    let from_peer = || node.cluster().is_some_and(|c| c.is_peer(req.headers()));
    match access {
        Access::Anyone => Ok(()),
        Access::Admin => admin(),
        Access::Peer => {
            if auth::token(req.headers(), req.uri()).is_none() {
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "node credential required",
                ))
            } else if !from_peer() {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "not a node of this cluster",
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// Answers an allowed request.
async fn serve(
    node: &Keepstore,
    route: Route,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let store = node.store();
    match route {
        Route::Root if req.method() == Method::GET => status::root(node, req.headers()).await,
        Route::Root => Err(ApiError::bad_request("unknown route /")),
        Route::StatusJson => status::json(node).await,
        Route::Health => Ok(keep_http::body::json(StatusCode::OK, r#"{"health":"OK"}"#)),
        Route::Metrics => Ok(metrics(node)),
        Route::NodeStatus => Ok(node::status(node)),
        Route::Workers => Ok(node::workers(node)),
        Route::Mounts => Ok(admin::mounts(store)),
        Route::MountBlocks(uuid) => {
            let vol = store
                .volume(&uuid)
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such mount"))?;
            let prefix = query_param(req.uri(), "prefix").unwrap_or_default();
            index::check_prefix(&prefix)?;
            Ok(index::listing(vec![vol.clone()], prefix))
        }
        Route::Index(prefix) => {
            index::check_prefix(&prefix)?;
            Ok(index::listing(store.volumes().to_vec(), prefix))
        }
        Route::Pull => worklists::put_pull(node.work(), req).await,
        Route::Trash => worklists::put_trash(node.work(), req).await,
        Route::Untrash(locator) => admin::untrash(store, &locator).await,
        Route::SyncCursors => sync::cursors(node.pullsync().ok_or_else(sync::off)?),
        Route::SyncOffer => sync::offer(node.pullsync().ok_or_else(sync::off)?, req).await,
        Route::SyncWant => sync::want(node.pullsync().ok_or_else(sync::off)?, req).await,
        Route::SyncCancel => sync::cancel(node.pullsync().ok_or_else(sync::off)?, req).await,
        Route::GetBlock | Route::HeadBlock => {
            let head = route == Route::HeadBlock;
            let (parts, _) = req.into_parts();
            get::get_block(node, &parts, head).await
        }
        Route::PutBlock => put::put_block(node, req).await,
        Route::DeleteBlock => {
            admin::delete(store, node.config().signing_ttl, req.uri().path()).await
        }
        Route::TouchBlock => admin::touch(store, req.uri().path()).await,
        Route::OtherBlockMethod | Route::Unknown => Err(ApiError::method_not_allowed()),
    }
}

/// `GET /metrics`: the Prometheus text, with the gauges that are read
/// rather than kept (work lists, workers) brought up to date first.
fn metrics(node: &Keepstore) -> Response<Body> {
    work::refresh_gauges(node.work(), node.metrics());
    node.metrics().record_workers(&node.workers().list());
    let extra = node.pullsync().map(|s| s.metrics().registry());
    let mut resp = keep_http::body::text(StatusCode::OK, node.metrics().encode(extra.as_ref()));
    if let Ok(v) = "text/plain; version=0.0.4; charset=utf-8".parse() {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}

/// A method as the request metrics label it: the methods some route
/// answers by name, any other as `other`, so a client cannot add series
/// by inventing method names.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "POST" => "POST",
        "DELETE" => "DELETE",
        "TOUCH" => "TOUCH",
        _ => "other",
    }
}

/// A message's `Content-Length` (0 when absent or unreadable).
fn content_length(headers: &http::HeaderMap) -> u64 {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn looks_like_block(segment: &str) -> bool {
    segment.len() >= 32 && segment.as_bytes()[..32].iter().all(u8::is_ascii_hexdigit)
}

/// A query parameter's value (no percent-decoding needed for our hex values).
pub(crate) fn query_param(uri: &http::Uri, name: &str) -> Option<String> {
    uri.query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_who_may_call_them() {
        let r = |m: &str, p: &str| Route::of(&m.parse().unwrap(), p);
        let block = "/acbd18db4cc2f85cedef654fccc4a4d8+3";
        assert_eq!(r("GET", block), Route::GetBlock);
        assert_eq!(
            r("PUT", "/acbd18db4cc2f85cedef654fccc4a4d8"),
            Route::PutBlock
        );
        assert_eq!(
            r("DELETE", block).access(),
            Access::Admin,
            "no node sends one"
        );
        assert_eq!(r("PATCH", block), Route::OtherBlockMethod);
        assert_eq!(r("GET", "/index/ab"), Route::Index("ab".into()));
        assert_eq!(r("GET", "/_keep/workers").access(), Access::Admin);
        assert_eq!(r("GET", "/_keep/node").access(), Access::Peer);
        assert_eq!(r("GET", "/mounts").access(), Access::Anyone);
        assert_eq!(r("GET", "/nope/nope"), Route::Unknown);
        assert_eq!(r("PUT", "/pull").methods(), Some(Method::PUT));
        for path in ["cursors", "offer", "want", "cancel"] {
            let route = r("POST", &format!("/_keep/sync/{path}"));
            assert_eq!(route.access(), Access::Peer, "{path}: node credential only");
        }
        assert_eq!(r("GET", "/_keep/sync/cursors").methods(), Some(Method::GET));
        assert_eq!(r("GET", "/_keep/sync/nope"), Route::Unknown);
    }

    #[test]
    fn metrics_label_invented_methods_as_other() {
        let m = |s: &str| method_label(&s.parse().unwrap());
        assert_eq!(m("TOUCH"), "TOUCH");
        assert_eq!(m("GET"), "GET");
        assert_eq!(m("XYZZY"), "other");
        assert_eq!(m("get"), "other", "methods are case-sensitive");
    }
}
