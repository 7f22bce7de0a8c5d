//! Numbers and times as people read them, and the small pieces of markup
//! the pages repeat.

use std::time::{Duration, SystemTime};

use maud::{Markup, html};

/// `n` bytes in binary units: `0 B`, `512 B`, `1.5 KiB`, `64.0 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration in its two largest units: `42 s`, `3 min 5 s`, `2 h 10 min`,
/// `4 d 3 h`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

/// How long ago `t` was, as of `now`: `just now`, `12 s ago`, `in the
/// future` for a clock that jumped.
pub fn ago(t: SystemTime, now: SystemTime) -> String {
    match now.duration_since(t) {
        Ok(d) if d < Duration::from_secs(1) => "just now".into(),
        Ok(d) => format!("{} ago", duration(d)),
        Err(_) => "in the future".into(),
    }
}

/// Unix seconds of `t` (0 before 1970).
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The tone of a badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// All is well.
    Ok,
    /// Worth a look.
    Warn,
    /// Broken.
    Bad,
    /// Neither.
    Muted,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Ok => "badge ok",
            Tone::Warn => "badge warn",
            Tone::Bad => "badge bad",
            Tone::Muted => "badge muted",
        }
    }
}

/// A small labelled badge: `up`, `down`, `draining`.
pub fn badge(tone: Tone, text: &str) -> Markup {
    html! { span class=(tone.class()) { (text) } }
}

/// Used space out of `used + available` as a meter and its figures; just
/// the used bytes when the volume cannot tell its free space.
pub fn space(used: u64, available: u64) -> Markup {
    let total = used.saturating_add(available);
    if total == 0 {
        return html! { span.muted { "unknown" } };
    }
    let pct = used as f64 * 100.0 / total as f64;
    html! {
        meter min="0" max=(total) value=(used) title=(format!("{pct:.1}% used")) {}
        " " (bytes(used)) " used, " (bytes(available)) " free"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn durations_and_ages() {
        assert_eq!(duration(Duration::from_secs(42)), "42 s");
        assert_eq!(duration(Duration::from_secs(185)), "3 min 5 s");
        assert_eq!(duration(Duration::from_secs(7800)), "2 h 10 min");
        assert_eq!(duration(Duration::from_secs(356_400)), "4 d 3 h");
        let now = SystemTime::now();
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now - Duration::from_secs(12), now), "12 s ago");
        assert_eq!(ago(now + Duration::from_secs(5), now), "in the future");
    }

    #[test]
    fn space_is_a_meter_or_unknown() {
        let m = space(1 << 30, 3 << 30).into_string();
        assert!(m.contains("<meter") && m.contains("25.0% used"), "{m}");
        assert!(space(0, 0).into_string().contains("unknown"));
    }
}
