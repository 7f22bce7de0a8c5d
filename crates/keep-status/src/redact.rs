//! Cleaning what a page shows: error messages and other text from
//! outside can carry a signed locator, a token or a secret the node
//! knows; a status page shows none of them.

/// Replaces secrets in text before a page shows it:
///
/// - the signature of a permission hint (`+A<hex>@<hex>` becomes
///   `+A…@<hex>`);
/// - the secret of an Arvados v2 token (`v2/<uuid>/<secret>` becomes
///   `v2/<uuid>/…`);
/// - whatever follows `Bearer `, `OAuth2 `, `api_token=` or `token=`;
/// - any of the exact secrets the redactor was given (the node's root
///   token, cluster key, signing key), wherever they appear.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

/// What replaces a secret.
pub const MASK: &str = "…";

/// Secrets shorter than this are not searched for: they would match by
/// chance (and are not secrets worth the name).
const MIN_SECRET: usize = 8;

const PREFIXES: [&str; 4] = ["Bearer ", "OAuth2 ", "api_token=", "token="];

impl Redactor {
    /// A redactor that also removes each of `secrets` wherever it appears.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        Redactor {
            secrets: secrets
                .into_iter()
                .filter(|s| s.len() >= MIN_SECRET)
                .collect(),
        }
    }

    /// `text` without its secrets.
    pub fn clean(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        let out = mask_signatures(&out);
        let out = mask_v2_tokens(&out);
        mask_after_prefixes(&out)
    }

    /// [`Redactor::clean`] of an optional text.
    pub fn clean_opt(&self, text: Option<&str>) -> Option<String> {
        text.map(|t| self.clean(t))
    }
}

/// `+A<hex signature>@...`: the signature goes, the expiry stays.
fn mask_signatures(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("+A") {
        out.push_str(&rest[..i + 2]);
        rest = &rest[i + 2..];
        let hex = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex >= 16 {
            out.push_str(MASK);
            rest = &rest[hex..];
        }
    }
    out.push_str(rest);
    out
}

/// `v2/<uuid>/<secret>`: the secret goes.
fn mask_v2_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("v2/") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let uuid = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-')
            .count();
        if uuid > 0 && rest.as_bytes().get(uuid) == Some(&b'/') {
            out.push_str(&rest[..=uuid]);
            rest = &rest[uuid + 1..];
            let secret = secret_len(rest);
            if secret > 0 {
                out.push_str(MASK);
                rest = &rest[secret..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// After `Bearer `, `token=` and the like, the token goes.
fn mask_after_prefixes(text: &str) -> String {
    let mut out = text.to_owned();
    for prefix in PREFIXES {
        let mut done = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(i) = rest.find(prefix) {
            done.push_str(&rest[..i + prefix.len()]);
            rest = &rest[i + prefix.len()..];
            let secret = secret_len(rest);
            if secret > 0 && !rest.starts_with(MASK) {
                done.push_str(MASK);
                rest = &rest[secret..];
            }
        }
        done.push_str(rest);
        out = done;
    }
    out
}

/// How many bytes of `s` a token can span: up to whitespace, a quote, or
/// a separator of URLs and lists.
fn secret_len(s: &str) -> usize {
    s.find(|c: char| c.is_whitespace() || "\"'&,;)>]".contains(c))
        .unwrap_or(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SIG: &str =
        "acbd18db4cc2f85cedef654fccc4a4d8+3+Ae0c9f1b2a3d4e5f60718293a4b5c6d7e8f901234@65f0a1b2";

    #[test]
    fn signatures_tokens_and_known_secrets_go() {
        let r = Redactor::new(["cluster-key-0123456789".to_owned(), "short".to_owned()]);
        let clean = r.clean(&format!("fetch {SIG} failed"));
        assert_eq!(
            clean,
            "fetch acbd18db4cc2f85cedef654fccc4a4d8+3+A…@65f0a1b2 failed"
        );
        assert_eq!(
            r.clean("Authorization: Bearer abc.def-123 refused"),
            "Authorization: Bearer … refused"
        );
        assert_eq!(
            r.clean("GET /x?api_token=v2/zzzzz-gj3su-000000000000000/s3cr3t&a=1"),
            "GET /x?api_token=…&a=1"
        );
        assert_eq!(
            r.clean("token v2/zzzzz-gj3su-000000000000000/s3cr3t refused"),
            "token v2/zzzzz-gj3su-000000000000000/… refused"
        );
        assert_eq!(r.clean("bad key cluster-key-0123456789!"), "bad key …!");
        assert_eq!(
            r.clean("short stays"),
            "short stays",
            "too short to be searched for"
        );
        assert_eq!(r.clean("a +Abc plain text"), "a +Abc plain text");
    }

    proptest! {
        #[test]
        fn no_signature_survives(prefix in ".{0,20}", sig in "[0-9a-f]{40}", suffix in ".{0,20}") {
            let text = format!("{prefix}+A{sig}@12345678{suffix}");
            let clean = Redactor::default().clean(&text);
            prop_assert!(!clean.contains(&sig), "{clean}");
        }

        #[test]
        fn a_known_secret_never_shows(
            secret in "[a-zA-Z0-9]{8,40}", before in ".{0,30}", after in ".{0,30}"
        ) {
            let r = Redactor::new([secret.clone()]);
            let clean = r.clean(&format!("{before}{secret}{after}"));
            prop_assert!(!clean.contains(&secret), "{clean}");
        }
    }
}
