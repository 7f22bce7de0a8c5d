//! S3's two timestamp formats, read at the one-second resolution S3
//! guarantees, so a HEAD and a listing of the same object always agree.

/// Unix seconds of an HTTP date (`Last-Modified: Sat, 21 Nov 2026 21:32:03 GMT`).
pub(crate) fn http_date_secs(s: &str) -> Option<i64> {
    let zoned = jiff::fmt::rfc2822::parse(s.trim()).ok()?;
    Some(zoned.timestamp().as_second())
}

/// Unix seconds of an ISO 8601 time (`2026-11-21T21:31:55.000Z` in
/// listings); the fraction is dropped.
pub(crate) fn iso_secs(s: &str) -> Option<i64> {
    let ts: jiff::Timestamp = s.trim().parse().ok()?;
    Some(ts.as_second())
}

/// Unix seconds as the unix nanoseconds the volume trait speaks.
pub(crate) fn secs_to_nanos(secs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000)
}

/// Now, in unix seconds (rounded down).
pub(crate) fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_agree() {
        let head = http_date_secs("Sat, 21 Nov 2026 21:32:03 GMT").unwrap();
        let list = iso_secs("2026-11-21T21:32:03.000Z").unwrap();
        assert_eq!(head, list);
        assert_eq!(head, 1_795_296_723);
        assert_eq!(
            iso_secs("2026-11-21T21:32:03.999Z"),
            Some(head),
            "fraction dropped"
        );
        assert_eq!(iso_secs("2026-11-21T21:32:03Z"), Some(head));
        assert_eq!(secs_to_nanos(head), 1_795_296_723_000_000_000);
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(http_date_secs("yesterday"), None);
        assert_eq!(iso_secs(""), None);
    }
}
