//! Keep locators: `<md5>[+<size>][+<hint>]...`.

use std::fmt;
use std::str::FromStr;

use crate::BlockHash;

/// Longest piece of user input an error message repeats.
const MAX_ECHO: usize = 64;

/// The largest block a locator names, in bytes: 64 MiB (2^26), Keep's
/// limit. Volumes refuse larger blocks and peers never send them.
///
/// Parsing does not enforce it: a locator with a larger size hint still
/// parses, and the services that store or fetch blocks refuse it.
pub const MAX_BLOCK_SIZE: u64 = 1 << 26;

/// Why a locator or block hash could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocatorError {
    /// The input was the empty string.
    #[error("empty locator")]
    Empty,
    /// The hash part was not exactly 32 lowercase hex digits.
    #[error("bad block hash {0:?}: want exactly 32 lowercase hex digits")]
    BadHash(String),
    /// The size part was not a canonical decimal number that fits in a `u64`.
    #[error("bad size {0:?}: want decimal digits without leading zeros, at most 2^64-1")]
    BadSize(String),
    /// A hint was empty or did not match `[A-Z][-A-Za-z0-9@_]*`.
    #[error("bad hint {0:?}: want an uppercase letter, then letters, digits, '-', '@' or '_'")]
    BadHint(String),
}

impl LocatorError {
    pub(crate) fn bad_hash(s: &str) -> Self {
        LocatorError::BadHash(echo(s))
    }
}

/// The start of `s`, short enough to put in an error message.
fn echo(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_owned(),
    }
}

/// A parsed Keep locator.
///
/// The grammar is Arvados's:
/// `^[0-9a-f]{32}(\+[0-9]+)?(\+[A-Z][-A-Za-z0-9@_]*)*$`, with one stricter
/// rule: the size has no leading zeros (`+0` is fine, `+03` is not), so that
/// formatting a parsed locator gives back exactly the text it came from.
///
/// ```
/// use keep_locator::Locator;
///
/// let text = "acbd18db4cc2f85cedef654fccc4a4d8+3+K@xyzzy";
/// let loc: Locator = text.parse()?;
/// assert_eq!(loc.size, Some(3));
/// assert_eq!(loc.hints, ["K@xyzzy"]);
/// assert_eq!(loc.to_string(), text);
/// # Ok::<(), keep_locator::LocatorError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Locator {
    /// The MD5 of the block's content.
    pub hash: BlockHash,
    /// The block's size in bytes, when the locator carries one.
    pub size: Option<u64>,
    /// The hints after the size, without their leading `+`, in their
    /// original order (for example `A<sig>@<expiry>` or `K@xyzzy`).
    pub hints: Vec<String>,
}

impl Locator {
    /// A locator `hash+size` without hints.
    pub fn new(hash: BlockHash, size: u64) -> Self {
        Locator {
            hash,
            size: Some(size),
            hints: Vec::new(),
        }
    }

    /// The first hint that starts with `A` (the permission signature), if any.
    ///
    /// The hint is returned as written; it is not checked to be well formed.
    pub fn signature_hint(&self) -> Option<&str> {
        self.hints
            .iter()
            .map(String::as_str)
            .find(|h| h.starts_with('A'))
    }

    /// This locator with every `A` hint removed.
    pub fn without_signature(&self) -> Locator {
        Locator {
            hash: self.hash,
            size: self.size,
            hints: self
                .hints
                .iter()
                .filter(|h| !h.starts_with('A'))
                .cloned()
                .collect(),
        }
    }

    /// `md5+size`, or just `md5` when the locator carries no size.
    pub fn bare(&self) -> String {
        match self.size {
            Some(size) => format!("{}+{size}", self.hash),
            None => self.hash.to_hex(),
        }
    }
}

/// Whether `h` matches `[A-Z][-A-Za-z0-9@_]*`.
fn is_hint(h: &str) -> bool {
    let mut bytes = h.bytes();
    bytes.next().is_some_and(|c| c.is_ascii_uppercase())
        && bytes.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'@' | b'_'))
}

/// Parses a size: decimal digits, no leading zeros, fits in a `u64`.
fn parse_size(s: &str) -> Result<u64, LocatorError> {
    let canonical = s.bytes().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return Err(LocatorError::BadSize(echo(s)));
    }
    s.parse().map_err(|_| LocatorError::BadSize(echo(s)))
}

impl FromStr for Locator {
    type Err = LocatorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(LocatorError::Empty);
        }
        let mut parts = s.split('+').peekable();
        let hash = BlockHash::from_hex(parts.next().unwrap_or_default())?;
        let size = match parts.next_if(|p| p.starts_with(|c: char| c.is_ascii_digit())) {
            Some(p) => Some(parse_size(p)?),
            None => None,
        };
        let hints = parts
            .map(|h| {
                if is_hint(h) {
                    Ok(h.to_owned())
                } else {
                    Err(LocatorError::BadHint(echo(h)))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Locator { hash, size, hints })
    }
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.hash)?;
        if let Some(size) = self.size {
            write!(f, "+{size}")?;
        }
        for h in &self.hints {
            write!(f, "+{h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOO: &str = "acbd18db4cc2f85cedef654fccc4a4d8";

    fn parse(s: &str) -> Result<Locator, LocatorError> {
        s.parse()
    }

    #[test]
    fn round_trips() {
        for s in [
            FOO.to_owned(),
            format!("{FOO}+0"),
            format!("{FOO}+3"),
            format!("{FOO}+18446744073709551615"),
            format!("{FOO}+3+K@xyzzy"),
            format!("{FOO}+Zfoo"),
            format!("{FOO}+3+A89118b78732c33104a4d6231e8b5a5fa1e4301e3@7fffffff+Zfoo"),
            format!("{FOO}+3+A+B+C-x_y@z"),
        ] {
            let loc = parse(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(loc.to_string(), s);
        }
    }

    #[test]
    fn fields() {
        let loc = parse(&format!("{FOO}+3+K@xyzzy+Afoo@1+Abar")).expect("valid");
        assert_eq!(loc.hash, BlockHash::of(b"foo"));
        assert_eq!(loc.size, Some(3));
        assert_eq!(loc.hints, ["K@xyzzy", "Afoo@1", "Abar"]);
        assert_eq!(loc.signature_hint(), Some("Afoo@1"));
        assert_eq!(loc.bare(), format!("{FOO}+3"));
        let plain = loc.without_signature();
        assert_eq!(plain.hints, ["K@xyzzy"]);
        assert_eq!(plain.signature_hint(), None);
        assert_eq!(plain.to_string(), format!("{FOO}+3+K@xyzzy"));

        let no_size = parse(&format!("{FOO}+Zx")).expect("valid");
        assert_eq!(no_size.size, None);
        assert_eq!(no_size.bare(), FOO);
        assert_eq!(
            Locator::new(BlockHash::EMPTY, 0).to_string(),
            format!("{}+0", BlockHash::EMPTY)
        );
    }

    #[test]
    fn errors() {
        assert_eq!(parse(""), Err(LocatorError::Empty));
        for (s, want) in [
            ("+3".to_owned(), LocatorError::BadHash(String::new())),
            ("xyz".to_owned(), LocatorError::BadHash("xyz".into())),
            (
                FOO.to_uppercase(),
                LocatorError::BadHash(FOO.to_uppercase()),
            ),
            (format!("{FOO}+"), LocatorError::BadHint(String::new())),
            (format!("{FOO}++3"), LocatorError::BadHint(String::new())),
            (format!("{FOO}+3+"), LocatorError::BadHint(String::new())),
            (format!("{FOO}+3+4"), LocatorError::BadHint("4".into())),
            (format!("{FOO}+3+k"), LocatorError::BadHint("k".into())),
            (format!("{FOO}+3+K x"), LocatorError::BadHint("K x".into())),
            (format!("{FOO}+3+Ké"), LocatorError::BadHint("Ké".into())),
            (format!("{FOO}+03"), LocatorError::BadSize("03".into())),
            (format!("{FOO}+3a"), LocatorError::BadSize("3a".into())),
            (
                format!("{FOO}+18446744073709551616"),
                LocatorError::BadSize("18446744073709551616".into()),
            ),
        ] {
            assert_eq!(parse(&s), Err(want), "{s:?}");
        }
    }

    #[test]
    fn long_input_is_cut_in_messages() {
        let s = format!("{FOO}+K{}!", "x".repeat(10_000));
        let msg = parse(&s).expect_err("bad hint").to_string();
        assert!(msg.len() < 200, "{msg}");
        assert!(msg.contains("..."), "{msg}");
    }

    #[test]
    fn messages_name_the_part() {
        let e = parse(&format!("{FOO}+3+k")).expect_err("bad");
        assert_eq!(
            e.to_string(),
            "bad hint \"k\": want an uppercase letter, then letters, digits, '-', '@' or '_'"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Valid locator text and the fields it should parse to.
        fn valid_locator() -> impl Strategy<Value = (String, [u8; 16], Option<u64>, Vec<String>)> {
            (
                any::<[u8; 16]>(),
                proptest::option::of(prop_oneof![
                    Just(0u64),
                    Just(u64::MAX),
                    any::<u64>(),
                    0u64..1 << 26
                ]),
                proptest::collection::vec("[A-Z][-A-Za-z0-9@_]{0,24}", 0..5),
            )
                .prop_map(|(hash, size, hints)| {
                    let mut s = hex::encode(hash);
                    if let Some(size) = size {
                        s.push_str(&format!("+{size}"));
                    }
                    for h in &hints {
                        s.push('+');
                        s.push_str(h);
                    }
                    (s, hash, size, hints)
                })
        }

        proptest! {
            #[test]
            fn format_of_parse_is_identity((text, hash, size, hints) in valid_locator()) {
                let loc: Locator = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
                prop_assert_eq!(loc.hash, BlockHash::from_bytes(hash));
                prop_assert_eq!(loc.size, size);
                prop_assert_eq!(&loc.hints, &hints);
                prop_assert_eq!(loc.to_string(), text);
            }

            #[test]
            fn random_strings_never_panic(s in any::<String>()) {
                if let Ok(loc) = s.parse::<Locator>() {
                    prop_assert_eq!(loc.to_string(), s);
                }
            }

            #[test]
            fn near_locators_never_panic(
                head in "[0-9a-fA-F]{30,34}",
                tail in "[-+0-9a-zA-Z@_é ]{0,40}",
            ) {
                let s = format!("{head}{tail}");
                if let Ok(loc) = s.parse::<Locator>() {
                    prop_assert_eq!(loc.to_string(), s);
                }
            }
        }
    }
}
