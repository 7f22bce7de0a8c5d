//! Request routing and the handlers of each route.

use std::sync::Arc;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use keep_http::Body;
use keep_http::body::{json, text};

use super::{State, status};
use crate::SignedAnnouncement;
use crate::store::{Outcome, StoreError};
use crate::wire::{
    ANNOUNCE_PATH, ANNOUNCEMENTS_PATH, AnnounceReply, ListQuery, MAX_ANNOUNCE_BODY, VERSION_HEADER,
};

pub(crate) async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::POST | &Method::PUT, ANNOUNCE_PATH) => announce(state, req).await,
        (&Method::GET, ANNOUNCEMENTS_PATH) => announcements(state, req).await,
        (&Method::GET, "/metrics") => {
            let mut resp = text(StatusCode::OK, state.metrics.encode().trim_end());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            resp
        }
        (&Method::GET, "/_health/ping") => json(StatusCode::OK, r#"{"health":"OK"}"#),
        (&Method::GET, "/") if state.status_pages && keep_status::wants_html(req.headers()) => {
            status::page(&state)
        }
        (&Method::GET, "/_status.json") if state.status_pages => status::json(&state),
        (_, ANNOUNCE_PATH | ANNOUNCEMENTS_PATH | "/metrics" | "/_health/ping") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

fn reply(
    status: StatusCode,
    outcome: &str,
    stored_seqnum: Option<u64>,
    error: Option<String>,
) -> Response<Body> {
    let body = AnnounceReply {
        outcome: outcome.to_owned(),
        stored_seqnum,
        error,
    };
    json(status, serde_json::to_vec(&body).expect("reply serializes"))
}

async fn announce(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let ann = match read_announcement(&state, req).await {
        Ok(ann) => ann,
        Err(refused) => return refused.reply(),
    };
    let offer = Offer::of(&ann);
    if let Err(refused) = check_signature(&state, &ann, &offer) {
        return refused.reply();
    }
    let offered = offer_to_table(state.clone(), ann).await;
    answer(&state, &offer, offered)
}

/// The announcement offered, as the counters and log lines name it.
struct Offer {
    service: String,
    uuid: String,
    seqnum: u64,
    /// Withdrawals are counted apart from announcements.
    withdrawal: bool,
    /// `"withdrawal"` or `"announcement"`, for the log.
    kind: &'static str,
}

impl Offer {
    fn of(ann: &SignedAnnouncement) -> Self {
        let withdrawal = ann.is_withdrawal();
        Offer {
            service: ann.announcement.service.clone(),
            uuid: ann.announcement.uuid.clone(),
            seqnum: ann.announcement.seqnum,
            withdrawal,
            kind: if withdrawal {
                "withdrawal"
            } else {
                "announcement"
            },
        }
    }
}

/// An announcement refused before it reaches the table (already counted).
struct Refusal {
    status: StatusCode,
    outcome: &'static str,
    error: String,
}

impl Refusal {
    fn reply(self) -> Response<Body> {
        reply(self.status, self.outcome, None, Some(self.error))
    }
}

/// The request's body, parsed; a body too large, cut short or not an
/// announcement is refused as malformed.
async fn read_announcement(
    state: &State,
    req: Request<Incoming>,
) -> Result<SignedAnnouncement, Refusal> {
    let malformed = |status, error: String| {
        state.metrics.count(false, "malformed");
        Refusal {
            status,
            outcome: "malformed",
            error,
        }
    };
    let bytes = match Limited::new(req.into_body(), MAX_ANNOUNCE_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let status = if e.is::<http_body_util::LengthLimitError>() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return Err(malformed(status, e.to_string()));
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| malformed(StatusCode::BAD_REQUEST, e.to_string()))
}

/// Refuses an announcement not signed by the cluster key, or not valid.
fn check_signature(state: &State, ann: &SignedAnnouncement, offer: &Offer) -> Result<(), Refusal> {
    let Err(e) = ann
        .verify(&state.key)
        .and_then(|()| ann.announcement.check_new())
    else {
        return Ok(());
    };
    let (uuid, kind) = (&ann.announcement.uuid, offer.kind);
    if e.is_signature() {
        state.metrics.count(offer.withdrawal, "bad_signature");
        tracing::warn!(?uuid, error = %e, kind, "refused announcement");
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            outcome: "bad_signature",
            error: e.to_string(),
        });
    }
    state.metrics.count(offer.withdrawal, "invalid");
    Err(Refusal {
        status: StatusCode::BAD_REQUEST,
        outcome: "invalid",
        error: e.to_string(),
    })
}

/// How offering an announcement to the table went: its outcome, a failure
/// to save it, or the blocking task failing.
type Offered = Result<Result<Outcome, StoreError>, tokio::task::JoinError>;

/// Offers `ann` to the table on a blocking thread, publishing the new
/// snapshot when it is accepted.
async fn offer_to_table(state: Arc<State>, ann: SignedAnnouncement) -> Offered {
    tokio::task::spawn_blocking(move || {
        let mut store = state.store.lock().unwrap_or_else(|e| e.into_inner());
        let outcome = store.offer(ann)?;
        if outcome == Outcome::Accepted {
            let snap = Arc::new(store.snapshot().clone());
            state.update_table_gauge(&snap);
            state.snapshot.send_replace(snap);
        }
        Ok(outcome)
    })
    .await
}

/// The answer to an offer, counted and logged.
fn answer(state: &State, offer: &Offer, offered: Offered) -> Response<Body> {
    let Offer {
        ref service,
        ref uuid,
        seqnum,
        withdrawal,
        kind,
    } = *offer;
    match offered {
        Ok(Ok(Outcome::Accepted)) => {
            state.metrics.count(withdrawal, "accepted");
            tracing::info!(%service, %uuid, seqnum, kind, "accepted");
            reply(StatusCode::OK, "accepted", None, None)
        }
        Ok(Ok(Outcome::Duplicate)) => {
            state.metrics.count(withdrawal, "duplicate");
            reply(StatusCode::OK, "duplicate", None, None)
        }
        Ok(Ok(Outcome::Replay { stored_seqnum })) => {
            state.metrics.count(withdrawal, "replay");
            tracing::info!(%service, %uuid, seqnum, stored_seqnum, kind, "replay refused");
            let msg = format!("seqnum {seqnum} is not above the stored {stored_seqnum}");
            reply(
                StatusCode::CONFLICT,
                "replay",
                Some(stored_seqnum),
                Some(msg),
            )
        }
        Ok(Err(e)) => {
            state.metrics.count(withdrawal, "error");
            tracing::error!(error = %e, "cannot save announcement");
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "error",
                None,
                Some("cannot save".into()),
            )
        }
        Err(e) => {
            state.metrics.count(withdrawal, "error");
            tracing::error!(error = %e, "announcement task failed");
            reply(StatusCode::INTERNAL_SERVER_ERROR, "error", None, None)
        }
    }
}

/// Decrements the subscriber gauge however the wait ends, including when
/// hyper drops the handler because the client went away.
struct Waiting<'a>(&'a State);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.metrics.subscribers.dec();
    }
}

async fn announcements(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let query = match ListQuery::parse(req.uri().query()) {
        Ok(q) => q,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    state.metrics.subscribe_requests.inc();
    let mut rx = state.snapshot.subscribe();
    let wait = query.wait.min(state.max_wait);
    let deadline = tokio::time::Instant::now() + wait;
    let mut waiting = None;
    let snap = loop {
        let snap = rx.borrow_and_update().clone();
        let unchanged = query.since.as_deref() == Some(snap.version(&query.services).as_str());
        if !unchanged || wait.is_zero() || state.stopping.is_cancelled() {
            break snap;
        }
        if waiting.is_none() {
            state.metrics.subscribers.inc();
            waiting = Some(Waiting(&state));
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { break snap },
            () = tokio::time::sleep_until(deadline) => break snap,
            () = state.stopping.cancelled() => break snap,
        }
    };
    drop(waiting);
    let list = if query.withdrawn {
        snap.entries(&query.services)
    } else {
        snap.announcements(&query.services)
    };
    let mut resp = json(
        StatusCode::OK,
        serde_json::to_vec(&list).expect("announcements serialize"),
    );
    if let Ok(v) = HeaderValue::from_str(&snap.version(&query.services)) {
        resp.headers_mut().insert(VERSION_HEADER, v);
    }
    resp
}
