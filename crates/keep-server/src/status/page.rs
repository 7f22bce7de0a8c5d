//! The node's status page: [`NodeReport`] as HTML. Every value goes
//! through maud's escaping; charts are inline SVG drawn here.

use std::time::{Duration, SystemTime};

use keep_status::format::{Tone, ago, badge, bytes, duration, space};
use keep_status::traffic::OpTraffic;
use keep_status::{Page, chart};
use keep_worker::WorkerInfo;
use maud::{Markup, html};

use super::report::{NodeReport, PeerReport, PullsyncReport, VolumeReport};

/// The page of `report`.
pub fn render(report: &NodeReport) -> Page<'static> {
    let n = &report.node;
    let mut page = Page::new("Keep storage node", body(report));
    page.subtitle = html! {
        span.mono { (n.uuid) } " · " (node_badge(n.draining, n.read_only))
        " · version " (n.version) " · up " (duration(Duration::from_secs(n.uptime_seconds)))
    };
    page
}

fn node_badge(draining: bool, read_only: bool) -> Markup {
    if draining {
        badge(Tone::Warn, "draining")
    } else if read_only {
        badge(Tone::Muted, "read-only")
    } else {
        badge(Tone::Ok, "up")
    }
}

fn when(unix: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(unix)
}

fn body(r: &NodeReport) -> Markup {
    html! {
        (node_section(r))
        (traffic_section(r))
        (cluster_section(r))
        @if let Some(sync) = &r.pullsync { (pullsync_section(sync)) }
        (volumes_section(&r.volumes, when(r.generated_at)))
        (work_section(r))
    }
}

fn node_section(r: &NodeReport) -> Markup {
    let n = &r.node;
    html! {
        section #node {
            h2 { "Node" }
            dl.facts {
                dt { "uuid" } dd.mono { (n.uuid) }
                dt { "state" } dd { (node_badge(n.draining, n.read_only)) }
                dt { "public URL" } dd.mono { (n.public_url.as_deref().unwrap_or("none")) }
                dt { "started" } dd { (ago(when(n.started_at), when(r.generated_at))) }
                dt { "version" } dd { (n.version) }
                dt { "cluster" } dd {
                    @if n.in_cluster { (r.peers.len()) " peers, replication " (n.replication) }
                    @else { "none (a single node)" }
                }
            }
        }
    }
}

fn rate(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}/s")
    } else {
        format!("{v:.1}/s")
    }
}

fn latency(ms: Option<f64>) -> String {
    ms.map_or_else(|| "–".into(), |ms| format!("{ms:.1} ms"))
}

fn op_charts(name: &str, t: &OpTraffic) -> Markup {
    let peak_requests = t.requests_per_second.iter().copied().fold(0.0, f64::max);
    let peak_bytes = t.bytes_per_second.iter().copied().fold(0.0, f64::max);
    html! {
        (chart::sparkline(
            html! { (name) " requests: " b { (rate(t.recent_requests_per_second)) }
                " last minute, " (t.requests) " in 10 min · p50 " b { (latency(t.p50_ms)) }
                " · p99 " b { (latency(t.p99_ms)) } },
            &t.requests_per_second,
            &rate(peak_requests),
        ))
        (chart::sparkline(
            html! { (name) " bytes: " b { (bytes(t.recent_bytes_per_second as u64)) "/s" }
                " last minute, " (bytes(t.bytes)) " in 10 min" },
            &t.bytes_per_second,
            &format!("{}/s", bytes(peak_bytes as u64)),
        ))
    }
}

fn traffic_section(r: &NodeReport) -> Markup {
    html! {
        section #traffic {
            h2 { "Traffic, last 10 minutes" }
            div.charts {
                (op_charts("PUT", &r.traffic.put))
                (op_charts("GET", &r.traffic.get))
            }
        }
    }
}

fn peer_tone(state: &str) -> Tone {
    match state {
        "up" => Tone::Ok,
        "down" => Tone::Bad,
        "draining" => Tone::Warn,
        _ => Tone::Muted,
    }
}

fn peer_row(p: &PeerReport, now: SystemTime) -> Markup {
    html! {
        tr id=(format!("peer-{}", p.uuid)) data-state=(p.state) {
            td {
                span.mono { (p.uuid) }
                @if p.nickname != p.uuid { br; span.muted { (p.nickname) } }
            }
            td.mono { (p.url) }
            td { (badge(peer_tone(p.state), p.state))
                @if !p.takes_uploads { " " span.muted { "download only" } } }
            td { @match p.last_heartbeat {
                Some(t) => (ago(when(t), now)),
                None => span.muted { "never" },
            } }
            td.err { (p.last_error.as_deref().unwrap_or("")) }
            td.num { (p.replicas_sent) }
            td.num { (p.reads_forwarded) }
            td { (p.version.as_deref().unwrap_or("")) }
        }
    }
}

fn cluster_section(r: &NodeReport) -> Markup {
    let now = when(r.generated_at);
    let n = &r.node;
    html! {
        section #peers {
            h2 { "Cluster" }
            @if !n.in_cluster {
                p.muted { "This node is in no cluster." }
            } @else {
                table {
                    thead { tr {
                        th { "node" } th { "URL" } th { "state" } th { "last heartbeat" }
                        th { "last error" } th.num { "replicas sent" } th.num { "reads forwarded" }
                        th { "version" }
                    } }
                    tbody {
                        tr id=(format!("peer-{}", n.uuid)) data-state="self" {
                            td { span.mono { (n.uuid) } br; span.muted { "this node" } }
                            td.mono { (n.public_url.as_deref().unwrap_or("")) }
                            td { (node_badge(n.draining, n.read_only)) }
                            td { span.muted { "—" } } td {} td.num {} td.num {}
                            td { (n.version) }
                        }
                        @for p in &r.peers { (peer_row(p, now)) }
                    }
                }
            }
        }
    }
}

fn pullsync_section(s: &PullsyncReport) -> Markup {
    html! {
        section #pullsync {
            h2 { "Pullsync" }
            p {
                "Owed by peers: " b { (s.owed_blocks) } " blocks · received "
                (s.received_blocks) " blocks, " (bytes(s.received_bytes))
                " · refused: " (s.unsolicited) " unsolicited, " (s.invalid) " invalid"
            }
            @if s.peers.is_empty() {
                p.muted { "Pulling from no peer." }
            } @else {
                table {
                    thead { tr {
                        th { "peer" } th { "synced" } th.num { "entries" }
                        th.num { "received blocks" } th.num { "received bytes" }
                    } }
                    tbody { @for p in &s.peers {
                        tr id=(format!("sync-{}", p.uuid)) {
                            td.mono { (p.uuid) }
                            td {
                                @if p.caught_up { (badge(Tone::Ok, "live")) " " }
                                @else if p.bins_known < keep_pullsync::BINS {
                                    (badge(Tone::Muted, "starting")) " "
                                } @else { (badge(Tone::Warn, "catching up")) " " }
                                meter min="0" max=(p.entries.max(1)) value=(p.synced) {}
                            }
                            td.num { (p.synced) " / " (p.entries) }
                            td.num { (p.received_blocks) }
                            td.num { (bytes(p.received_bytes)) }
                        }
                    } }
                }
            }
        }
    }
}

fn volume_health(v: &VolumeReport, now: SystemTime) -> Markup {
    html! {
        @if v.health == "suspect" {
            (badge(Tone::Bad, "suspect"))
        } @else if v.consecutive_failures > 0 {
            (badge(Tone::Warn, "recovering"))
        } @else {
            (badge(Tone::Ok, "healthy"))
        }
        @if let Some(since) = v.failing_since {
            br; span.muted { "failing since " (ago(when(since), now)) ", "
                (v.consecutive_failures) " in a row" }
        }
    }
}

fn volumes_section(volumes: &[VolumeReport], now: SystemTime) -> Markup {
    html! {
        section #volumes {
            h2 { "Volumes" }
            table {
                thead { tr {
                    th { "volume" } th { "where" } th { "classes" } th { "mode" } th { "space" }
                    th { "health" } th.num { "errors" } th.num { "corrupt moved aside" }
                    th { "last error" }
                } }
                tbody { @for v in volumes {
                    tr id=(format!("volume-{}", v.uuid)) data-health=(v.health) {
                        td.mono { (v.uuid) }
                        td.mono { (v.location) }
                        td { (v.storage_classes.join(", ")) }
                        td { @if v.read_only { "read-only" } @else if v.full { (badge(Tone::Warn, "full")) } @else { "read-write" } }
                        td { (space(v.used_bytes, v.available_bytes)) }
                        td { (volume_health(v, now)) }
                        td.num { (v.errors_total) }
                        td.num { (v.corrupt_moved_aside) }
                        td.err { (v.last_error.as_deref().unwrap_or("")) }
                    }
                } }
            }
        }
    }
}

/// A pullsync bin puller: many per peer, folded away by default.
fn is_bin_puller(w: &WorkerInfo) -> bool {
    w.name.starts_with("pullsync ") && w.name.contains(" bin ")
}

fn worker_table(workers: &[&WorkerInfo]) -> Markup {
    html! {
        table {
            thead { tr {
                th { "worker" } th { "state" } th { "progress" } th.num { "steps" }
                th.num { "errors" } th { "last error" }
            } }
            tbody { @for w in workers {
                tr data-state=(w.state) {
                    td { (w.name) }
                    td { (badge(match w.state { "busy" => Tone::Ok, "done" => Tone::Bad, _ => Tone::Muted }, w.state)) }
                    td {
                        (w.status.progress.as_deref().unwrap_or(""))
                        @if let Some(q) = w.status.queue_length { " · " (q) " queued" }
                        @for d in &w.status.details { br; span.muted { (d) } }
                    }
                    td.num { (w.iterations) }
                    td.num { (w.errors) }
                    td.err { (w.last_error.as_deref().unwrap_or("")) }
                }
            } }
        }
    }
}

fn work_section(r: &NodeReport) -> Markup {
    let l = &r.work_lists;
    let (bins, others): (Vec<&WorkerInfo>, Vec<&WorkerInfo>) =
        r.workers.iter().partition(|w| is_bin_puller(w));
    html! {
        section #work {
            h2 { "Background work" }
            p {
                "Pull list: " b { (l.pull_queued) } " queued, " (l.pull_in_progress) " in progress · "
                "trash list: " b { (l.trash_queued) } " queued, " (l.trash_in_progress) " in progress"
            }
            (worker_table(&others))
            @if !bins.is_empty() {
                details {
                    summary { (bins.len()) " pullsync bin workers ("
                        (bins.iter().filter(|w| w.consecutive_errors > 0).count()) " failing)" }
                    (worker_table(&bins))
                }
            }
        }
    }
}
