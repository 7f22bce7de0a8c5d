//! Routing: which handler answers a request, who may call it, and the
//! bookkeeping every request gets (request id, span, metrics, log line).

use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use keep_http::{Body, request_id};
use tracing::Instrument;

use crate::auth;
use crate::error::ApiError;
use crate::handlers::{admin, get, index, put};
use crate::metrics::RequestLabels;
use crate::node::Node;
use crate::work;

/// Handles one request.
pub async fn handle(node: Arc<Node>, req: Request<Incoming>) -> Response<Body> {
    let id = request_id::pick(req.headers().get(request_id::HEADER));
    let method = req.method().clone();
    let span = tracing::info_span!("request", id = %id, method = %method, path = %req.uri().path());
    async move {
        let start = Instant::now();
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
        node.metrics()
            .requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.into(),
                status,
            })
            .inc();
        let elapsed_ms = start.elapsed().as_millis() as u64;
        if matches!(route, "node_status" | "health" | "metrics") {
            // Heartbeats and scrapes: frequent and routine.
            tracing::debug!(route, status, elapsed_ms, "handled");
        } else {
            tracing::info!(route, status, elapsed_ms, "handled");
        }
        resp
    }
    .instrument(span)
    .await
}

type Outcome = (&'static str, Result<Response<Body>, ApiError>);

async fn dispatch(node: &Arc<Node>, req: Request<Incoming>) -> Outcome {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let admin = |req: &Request<Incoming>| {
        auth::require_admin(
            node.config().system_root_token.as_ref(),
            req.headers(),
            req.uri(),
        )
    };
    let from_peer = |req: &Request<Incoming>| {
        node.cluster()
            .is_some_and(|c| c.is_peer(req.headers(), req.uri()))
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["_health", "ping"] => (
            "health",
            only(&method, &[Method::GET], || {
                Ok(keep_http::body::json(StatusCode::OK, r#"{"health":"OK"}"#))
            }),
        ),
        ["metrics"] => (
            "metrics",
            only(&method, &[Method::GET], || {
                let mut resp = keep_http::body::text(StatusCode::OK, node.metrics().encode());
                if let Ok(v) = "text/plain; version=0.0.4; charset=utf-8".parse() {
                    resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
                }
                Ok(resp)
            }),
        ),
        ["_keep", "node"] => (
            "node_status",
            async {
                check_method(&method, &[Method::GET])?;
                if auth::token(req.headers(), req.uri()).is_none() {
                    return Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "node credential required",
                    ));
                }
                if !from_peer(&req) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "not a node of this cluster",
                    ));
                }
                Ok(node_status(node))
            }
            .await,
        ),
        ["mounts"] => (
            "mounts",
            only(&method, &[Method::GET], || Ok(admin::mounts(node))),
        ),
        ["mounts", uuid, "blocks"] => (
            "mount_blocks",
            async {
                check_method(&method, &[Method::GET])?;
                admin(&req)?;
                let vol = node
                    .volume(uuid)
                    .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such mount"))?;
                let prefix = query_param(req.uri(), "prefix").unwrap_or_default();
                index::check_prefix(&prefix)?;
                Ok(index::listing(vec![vol.clone()], prefix))
            }
            .await,
        ),
        ["index"] | ["index", _] => (
            "index",
            async {
                check_method(&method, &[Method::GET])?;
                admin(&req)?;
                let prefix = segments.get(1).copied().unwrap_or("").to_owned();
                index::check_prefix(&prefix)?;
                Ok(index::listing(node.volumes().to_vec(), prefix))
            }
            .await,
        ),
        ["pull"] => (
            "pull",
            async {
                check_method(&method, &[Method::PUT])?;
                admin(&req)?;
                work::put_pull(node, req).await
            }
            .await,
        ),
        ["trash"] => (
            "trash",
            async {
                check_method(&method, &[Method::PUT])?;
                admin(&req)?;
                work::put_trash(node, req).await
            }
            .await,
        ),
        ["untrash", locator] => (
            "untrash",
            async {
                check_method(&method, &[Method::PUT])?;
                admin(&req)?;
                admin::untrash(node, locator).await
            }
            .await,
        ),
        [first] if looks_like_block(first) => match method.as_str() {
            "GET" => (
                "get_block",
                async {
                    let (parts, _) = req.into_parts();
                    get::get_block(node, &parts, false).await
                }
                .await,
            ),
            "HEAD" => (
                "head_block",
                async {
                    let (parts, _) = req.into_parts();
                    get::get_block(node, &parts, true).await
                }
                .await,
            ),
            "PUT" => ("put_block", put::put_block(node, req).await),
            "DELETE" => (
                "delete_block",
                async {
                    if !from_peer(&req) {
                        admin(&req)?;
                    }
                    admin::delete(node, &path).await
                }
                .await,
            ),
            "TOUCH" => (
                "touch_block",
                async {
                    admin(&req)?;
                    admin::touch(node, &path).await
                }
                .await,
            ),
            _ => ("block", Err(ApiError::method_not_allowed())),
        },
        _ => (
            "unknown",
            Err(ApiError::bad_request(format!("unknown route {path}"))),
        ),
    }
}

/// `GET /_keep/node`: identity, protocol and state, for peers.
fn node_status(node: &Node) -> Response<Body> {
    let writable = node.volumes().iter().any(|v| v.params().allow_write);
    let status = keep_remote::NodeStatus {
        uuid: node.uuid().to_owned(),
        protocol: keep_remote::PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        draining: node.is_draining(),
        read_only: node.config().read_only || !writable,
    };
    keep_http::body::json(
        StatusCode::OK,
        serde_json::to_vec(&status).unwrap_or_default(),
    )
}

fn looks_like_block(segment: &str) -> bool {
    segment.len() >= 32 && segment.as_bytes()[..32].iter().all(u8::is_ascii_hexdigit)
}

fn check_method(method: &Method, allowed: &[Method]) -> Result<(), ApiError> {
    if allowed.contains(method) {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed())
    }
}

fn only(
    method: &Method,
    allowed: &[Method],
    f: impl FnOnce() -> Result<Response<Body>, ApiError>,
) -> Result<Response<Body>, ApiError> {
    check_method(method, allowed)?;
    f()
}

/// A query parameter's value (no percent-decoding needed for our hex values).
fn query_param(uri: &http::Uri, name: &str) -> Option<String> {
    uri.query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}
