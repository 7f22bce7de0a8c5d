//! The introducer's status page (`GET /` from a browser) and the same
//! data as JSON (`GET /_status.json`): each service with its
//! announcements, and the subscribers waiting for a change. Everything an
//! announcement carries came from outside: the page escapes it (maud),
//! and the cluster key never shows.

use std::time::{Duration, SystemTime};

use http::Response;
use keep_http::Body;
use keep_status::format::{Tone, ago, badge, duration, unix_seconds};
use keep_status::{Page, Redactor};
use maud::{Markup, html};
use serde::Serialize;

use super::State;
use crate::{DOWNLOAD_STORAGE, UPLOAD_STORAGE};

/// Everything the introducer's page shows.
#[derive(Debug, Serialize)]
pub struct IntroducerReport {
    /// When this report was made, in unix seconds.
    pub generated_at: u64,
    /// The software version.
    pub version: String,
    /// When the introducer started, in unix seconds.
    pub started_at: u64,
    /// Seconds since then.
    pub uptime_seconds: u64,
    /// The table's epoch (subscribers' version tokens start with it).
    pub epoch: String,
    /// Subscribers whose long poll is waiting for a change.
    pub subscribers_waiting: i64,
    /// Each service, `upload_storage` and `download_storage` first.
    pub services: Vec<ServiceReport>,
}

/// One service and its announcements.
#[derive(Debug, Serialize)]
pub struct ServiceReport {
    /// Its name.
    pub service: String,
    /// Live announcements.
    pub live: usize,
    /// Withdrawn ones (kept as tombstones).
    pub withdrawn: usize,
    /// Every entry, by uuid.
    pub announcements: Vec<AnnouncementReport>,
}

/// One announcement, without its signature and nonce.
#[derive(Debug, Serialize)]
pub struct AnnouncementReport {
    /// The node's uuid.
    pub uuid: String,
    /// Its name for people.
    pub nickname: String,
    /// Where it answers.
    pub url: String,
    /// Its software version.
    pub version: String,
    /// Its seqnum.
    pub seqnum: u64,
    /// When the introducer accepted it, in unix seconds (unknown for
    /// entries kept from before this was recorded).
    pub announced_at: Option<u64>,
    /// Whether it withdraws the service.
    pub withdrawn: bool,
}

pub(crate) fn collect(state: &State) -> IntroducerReport {
    let now = SystemTime::now();
    let snap = state.snapshot.borrow().clone();
    let redact = &state.redactor;
    let mut names: Vec<String> = vec![UPLOAD_STORAGE.into(), DOWNLOAD_STORAGE.into()];
    for service in snap.counts().into_keys() {
        if !names.contains(&service) {
            names.push(service);
        }
    }
    let services = names
        .into_iter()
        .map(|service| {
            let entries = snap.entries(std::slice::from_ref(&service));
            let announcements: Vec<AnnouncementReport> = entries
                .iter()
                .map(|e| {
                    let a = &e.announcement;
                    AnnouncementReport {
                        uuid: redact.clean(&a.uuid),
                        nickname: redact.clean(&a.nickname),
                        url: redact.clean(&a.url),
                        version: redact.clean(&a.version),
                        seqnum: a.seqnum,
                        announced_at: snap.accepted_at(&a.service, &a.uuid),
                        withdrawn: a.withdrawn,
                    }
                })
                .collect();
            let withdrawn = announcements.iter().filter(|a| a.withdrawn).count();
            ServiceReport {
                live: announcements.len() - withdrawn,
                withdrawn,
                service: redact.clean(&service),
                announcements,
            }
        })
        .collect();
    IntroducerReport {
        generated_at: unix_seconds(now),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: unix_seconds(state.started_at),
        uptime_seconds: now
            .duration_since(state.started_at)
            .map_or(0, |d| d.as_secs()),
        epoch: snap.epoch().to_owned(),
        subscribers_waiting: state.metrics.subscribers.get(),
        services,
    }
}

/// A redactor that knows the cluster key.
pub(crate) fn redactor(key: &crate::ClusterKey) -> Redactor {
    Redactor::new([String::from_utf8_lossy(key.as_bytes()).into_owned()])
}

pub(crate) fn page(state: &State) -> Response<Body> {
    let r = collect(state);
    let mut page = Page::new("Keep introducer", body(&r));
    page.subtitle = html! {
        "epoch " span.mono { (r.epoch) } " · version " (r.version)
        " · up " (duration(Duration::from_secs(r.uptime_seconds)))
    };
    keep_status::html_response(&page)
}

pub(crate) fn json(state: &State) -> Response<Body> {
    keep_status::json_response(&collect(state))
}

fn body(r: &IntroducerReport) -> Markup {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(r.generated_at);
    html! {
        section #subscribers {
            h2 { "Subscribers" }
            p { b { (r.subscribers_waiting) } " waiting for a change (long polls open)" }
        }
        @for s in &r.services {
            section id=(format!("service-{}", s.service)) {
                h2 { (s.service) }
                p { (s.live) " announced, " (s.withdrawn) " withdrawn" }
                @if s.announcements.is_empty() {
                    p.muted { "No announcement." }
                } @else {
                    table {
                        thead { tr {
                            th { "node" } th { "nickname" } th { "URL" } th { "version" }
                            th.num { "seqnum" } th { "announced" } th { "state" }
                        } }
                        tbody { @for a in &s.announcements {
                            tr id=(format!("{}-{}", s.service, a.uuid))
                                data-state=(if a.withdrawn { "withdrawn" } else { "announced" }) {
                                td.mono { (a.uuid) }
                                td { (a.nickname) }
                                td.mono { (a.url) }
                                td { (a.version) }
                                td.num { (a.seqnum) }
                                td { @match a.announced_at {
                                    Some(t) => (ago(SystemTime::UNIX_EPOCH + Duration::from_secs(t), now)),
                                    None => span.muted { "before a restart" },
                                } }
                                td { @if a.withdrawn { (badge(Tone::Warn, "withdrawn")) }
                                     @else { (badge(Tone::Ok, "announced")) } }
                            }
                        } }
                    }
                }
            }
        }
    }
}
