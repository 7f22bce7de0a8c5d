//! Plain-text tables and the figures they show.

/// Lays out rows under headers: the first `left` columns aligned left, the
/// rest (numbers) right, two spaces between columns, a rule under the
/// headers.
pub fn format_table(headers: &[&str], rows: &[Vec<String>], left: usize) -> String {
    let cols = headers.len();
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let mut out = String::new();
        for (i, cell) in cells.enumerate().take(cols) {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = width[i].saturating_sub(cell.chars().count());
            if i < left {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&mut headers.iter().copied());
    let total: usize = width.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
    out.push_str(&"-".repeat(total));
    out.push('\n');
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// A rate with one decimal, `-` when absent.
pub fn rate(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

/// Milliseconds with two decimals (three below 1 ms), `-` when absent.
pub fn millis(v: Option<f64>) -> String {
    match v {
        None => "-".to_owned(),
        Some(v) if v < 1.0 => format!("{v:.3}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// A byte count in MiB, one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// node/baseline, when both are there and the baseline moved anything.
pub fn ratio(node: f64, baseline: Option<f64>) -> Option<f64> {
    baseline.filter(|b| *b > 0.0).map(|b| node / b)
}

/// A ratio with two decimals, or cut (not rounded) to three where two would
/// round it onto a target it misses (0.4958 against 0.50 reads `0.495`,
/// not `0.50`).
pub fn ratio_text(ratio: f64, target: Option<f64>) -> String {
    let two = format!("{ratio:.2}");
    match target {
        Some(t) if ratio < t && two == format!("{t:.2}") => {
            format!("{:.3}", (ratio * 1000.0).floor() / 1000.0)
        }
        _ => two,
    }
}

/// The target for node/nginx at this size and operation.
pub fn target_ratio(size: u64, op: &str) -> Option<f64> {
    match (size, op) {
        (s, "get") if s == 64 << 20 => Some(0.75),
        (s, "put") if s == 64 << 20 => Some(0.5),
        (4096, "get") => Some(0.6),
        (4096, "put") => Some(0.5),
        _ => None,
    }
}

/// `>=0.75 met`, `>=0.75 MISSED`, `>=0.75 ?` (no ratio), or empty.
pub fn verdict(target: Option<f64>, ratio: Option<f64>) -> String {
    match (target, ratio) {
        (None, _) => String::new(),
        (Some(t), None) => format!(">={t:.2} ?"),
        (Some(t), Some(r)) if r >= t => format!(">={t:.2} met"),
        (Some(t), Some(_)) => format!(">={t:.2} MISSED"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missed_target_never_reads_as_met() {
        assert_eq!(ratio_text(0.4958, Some(0.5)), "0.495");
        assert_eq!(ratio_text(0.5, Some(0.5)), "0.50");
        assert_eq!(ratio_text(0.4958, None), "0.50");
        assert_eq!(ratio_text(0.614, Some(0.6)), "0.61");
        assert_eq!(ratio_text(0.59999, Some(0.6)), "0.599");
    }

    #[test]
    fn table_aligns_text_left_and_numbers_right() {
        let rows = vec![
            vec!["4 KiB".to_owned(), "put".to_owned(), "12.5".to_owned()],
            vec!["64 MiB".to_owned(), "get".to_owned(), "1234.0".to_owned()],
        ];
        let t = format_table(&["size", "op", "MB/s"], &rows, 2);
        assert_eq!(
            t,
            "size    op     MB/s\n\
             -------------------\n\
             4 KiB   put    12.5\n\
             64 MiB  get  1234.0\n"
        );
    }

    #[test]
    fn table_tolerates_short_rows_and_no_rows() {
        let t = format_table(&["a", "b"], &[vec!["x".to_owned()]], 1);
        assert_eq!(t, "a  b\n----\nx\n");
        assert_eq!(format_table(&["a"], &[], 1), "a\n-\n");
    }

    #[test]
    fn figures() {
        assert_eq!(rate(Some(12.345)), "12.3");
        assert_eq!(rate(None), "-");
        assert_eq!(millis(Some(0.1234)), "0.123");
        assert_eq!(millis(Some(12.345)), "12.35");
        assert_eq!(mib(300 << 20), "300.0 MiB");
        assert_eq!(ratio(50.0, Some(100.0)), Some(0.5));
        assert_eq!(ratio(50.0, Some(0.0)), None);
        assert_eq!(ratio(50.0, None), None);
    }

    #[test]
    fn targets_and_verdicts() {
        assert_eq!(target_ratio(64 << 20, "get"), Some(0.75));
        assert_eq!(target_ratio(64 << 20, "put"), Some(0.5));
        assert_eq!(target_ratio(4096, "get"), Some(0.6));
        assert_eq!(target_ratio(4096, "put"), Some(0.5));
        assert_eq!(target_ratio(1 << 20, "get"), None);
        assert_eq!(verdict(Some(0.75), Some(0.8)), ">=0.75 met");
        assert_eq!(verdict(Some(0.75), Some(0.7)), ">=0.75 MISSED");
        assert_eq!(verdict(Some(0.5), None), ">=0.50 ?");
        assert_eq!(verdict(None, Some(1.0)), "");
    }
}
