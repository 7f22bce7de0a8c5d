//! Byte counts as people write them (`4096`, `4k`, `64MiB`, `1 GiB`) and
//! as they are shown (`64 MiB`), for config files and command lines.
//!
//! Every unit is a binary multiple: `K`, `KB` and `KiB` all mean 1024
//! bytes, `M`, `MB`, `MiB` 1024², and so on up to `T`, `TB`, `TiB`. Units
//! are case-insensitive and may follow the number after spaces.

/// The units [`format_byte_size`] writes, largest first, with their shifts.
const NAMES: [(u32, &str); 4] = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];

/// Parses a byte count: decimal digits, then optionally a unit (`B`, `K`,
/// `KB`, `KiB`, `M`, `MB`, `MiB`, `G`, `GB`, `GiB`, `T`, `TB`, `TiB`, in any
/// case; every one a binary multiple), with spaces allowed around both.
///
/// # Errors
///
/// A text that is not a number with one of these units, or a count that
/// does not fit in a `u64`, is an error saying why.
///
/// ```
/// use keep_locator::parse_byte_size;
///
/// assert_eq!(parse_byte_size("4096"), Ok(4096));
/// assert_eq!(parse_byte_size("4k"), Ok(4096));
/// assert_eq!(parse_byte_size(" 64 MiB "), Ok(64 << 20));
/// assert_eq!(parse_byte_size("1G"), Ok(1 << 30));
/// assert!(parse_byte_size("12 parsecs").is_err());
/// assert!(parse_byte_size("99999999999TiB").is_err());
/// ```
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(format!("{text:?} is not a size like 4096, 64KiB or 1GiB"));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is too large"))?;
    let power = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 1,
        "m" | "mb" | "mib" => 2,
        "g" | "gb" | "gib" => 3,
        "t" | "tb" | "tib" => 4,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use B, KiB, MiB, GiB or TiB)"
            ));
        }
    };
    n.checked_mul(1 << (10 * power))
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// A byte count for people: in the largest of `TiB`, `GiB`, `MiB`, `KiB`
/// that it is an exact multiple of, else in bytes (`4 KiB`, `64 MiB`,
/// `1536 B`). [`parse_byte_size`] reads every result back to the same count.
///
/// ```
/// use keep_locator::format_byte_size;
///
/// assert_eq!(format_byte_size(4096), "4 KiB");
/// assert_eq!(format_byte_size(64 << 20), "64 MiB");
/// assert_eq!(format_byte_size(1536), "1536 B");
/// ```
pub fn format_byte_size(bytes: u64) -> String {
    for (shift, name) in NAMES {
        if bytes >= 1 << shift && bytes.trailing_zeros() >= shift {
            return format!("{} {name}", bytes >> shift);
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_spelling() {
        for (text, want) in [
            ("4096", 4096),
            ("0", 0),
            ("007", 7),
            ("4k", 4096),
            ("4K", 4096),
            ("4kb", 4096),
            ("4KB", 4096),
            ("4KiB", 4096),
            ("4kib", 4096),
            ("512K", 512 << 10),
            ("1m", 1 << 20),
            ("64MiB", 64 << 20),
            ("64 MB", 64 << 20),
            ("64 mib", 64 << 20),
            ("1G", 1 << 30),
            ("2G", 2 << 30),
            ("1gb", 1 << 30),
            ("1GiB", 1 << 30),
            ("2T", 2 << 40),
            ("2tb", 2 << 40),
            ("2TiB", 2 << 40),
            ("100B", 100),
            ("100 b", 100),
            ("  4k  ", 4096),
            ("\t64MiB\n", 64 << 20),
            ("16777215TiB", 16_777_215 << 40),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(parse_byte_size(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_size() {
        for text in [
            "",
            "   ",
            "k",
            "MiB",
            "-1",
            "+1",
            "1.5G",
            "4x",
            "12 parsecs",
            "4 k b",
            "4ib",
            "4bb",
            "4kk",
            "4 PiB",
            "4iB",
            "1,024",
            "0x10",
        ] {
            assert!(parse_byte_size(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn overflow_is_an_error() {
        for text in [
            "99999999999TiB",
            "16777216TiB",
            "99999999999999999g",
            "18446744073709551616",
            "99999999999999999999999999",
        ] {
            let err = parse_byte_size(text).unwrap_err();
            assert!(err.contains("too large"), "{text:?}: {err}");
        }
    }

    #[test]
    fn errors_quote_the_input() {
        let err = parse_byte_size("12 parsecs").unwrap_err();
        assert!(err.contains("\"12 parsecs\""), "{err}");
        assert!(err.contains("parsecs"), "{err}");
    }

    #[test]
    fn formats_exact_multiples_only() {
        assert_eq!(format_byte_size(0), "0 B");
        assert_eq!(format_byte_size(1000), "1000 B");
        assert_eq!(format_byte_size(1536), "1536 B");
        assert_eq!(format_byte_size(4096), "4 KiB");
        assert_eq!(format_byte_size(64 << 20), "64 MiB");
        assert_eq!(format_byte_size(1 << 30), "1 GiB");
        assert_eq!(format_byte_size(3 << 40), "3 TiB");
        assert_eq!(format_byte_size((1 << 40) + (1 << 30)), "1025 GiB");
    }

    proptest! {
        #[test]
        fn formatting_reads_back(n in any::<u64>()) {
            prop_assert_eq!(parse_byte_size(&format_byte_size(n)), Ok(n));
        }

        #[test]
        fn every_unit_multiplies(n in 0u64..(1 << 20), unit in 0usize..5, case in any::<bool>(), spelling in 0usize..3, spaces in "[ \t]{0,2}") {
            let names = [["B", "B", "B"], ["K", "KB", "KiB"], ["M", "MB", "MiB"], ["G", "GB", "GiB"], ["T", "TB", "TiB"]];
            let name = names[unit][spelling];
            let name = if case { name.to_ascii_lowercase() } else { name.to_owned() };
            let text = format!("{spaces}{n}{spaces}{name}{spaces}");
            prop_assert_eq!(parse_byte_size(&text), Ok(n << (10 * unit)));
        }

        #[test]
        fn plain_numbers_are_bytes(n in any::<u64>()) {
            prop_assert_eq!(parse_byte_size(&n.to_string()), Ok(n));
        }

        #[test]
        fn never_panics(text in "\\PC{0,24}") {
            let _ = parse_byte_size(&text);
        }

        #[test]
        fn overflow_is_refused_not_wrapped(n in 1u64..=u64::MAX, unit in 1usize..5) {
            let text = format!("{n}{}", ["B", "K", "M", "G", "T"][unit]);
            let want = n.checked_mul(1 << (10 * unit)).ok_or(());
            prop_assert_eq!(parse_byte_size(&text).map_err(|_| ()), want);
        }
    }
}
