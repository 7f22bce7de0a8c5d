//! Which base urls this node can reach.

use http::Uri;

/// Checks that `url` is a base url this node can send requests to:
/// `http://HOST[:PORT]` (port 80 when none is given), optionally followed
/// by a path (`http://HOST:PORT/keep`).
///
/// Refused, each with a message saying why: `https://` (this node has no
/// TLS client yet), any other scheme or none, a url without a host, a port
/// that is given but not from 1 to 65535, user names and passwords,
/// queries and fragments, and anything that does not parse as a url.
///
/// Check urls where they are given (a pull list, a flag, an
/// announcement), so a bad one is refused there rather than failing every
/// request later.
///
/// ```
/// use keep_remote::check_url;
///
/// assert_eq!(check_url("http://10.0.0.7:25107"), Ok(()));
/// assert_eq!(check_url("http://keep0.example:25107/"), Ok(()));
/// assert!(check_url("https://keep0.example:25107")
///     .unwrap_err()
///     .contains("https is not supported until TLS lands; use http://"));
/// assert!(check_url("keep0.example:25107").is_err());
/// ```
///
/// # Errors
///
/// The reason the url is refused, quoting it.
pub fn check_url(url: &str) -> Result<(), String> {
    match url.split_once("://") {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("http") => {}
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
            return Err(format!(
                "{url:?}: https is not supported until TLS lands; use http://"
            ));
        }
        _ => {
            return Err(format!(
                "{url:?} is not an http:// url (want http://HOST:PORT)"
            ));
        }
    }
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a valid url: {e}"))?;
    let Some(authority) = uri.authority() else {
        return Err(format!("{url:?} has no host (want http://HOST:PORT)"));
    };
    if authority.as_str().contains('@') {
        return Err(format!(
            "{url:?}: user names and passwords in urls are not supported"
        ));
    }
    if authority.host().is_empty() {
        return Err(format!("{url:?} has no host (want http://HOST:PORT)"));
    }
    // No port is port 80; a port given must be one.
    let port = authority
        .as_str()
        .strip_prefix(authority.host())
        .unwrap_or_default();
    if !port.is_empty() && authority.port_u16().is_none_or(|p| p == 0) {
        return Err(format!(
            "{url:?} has no valid port (want http://HOST[:PORT], PORT from 1 to 65535)"
        ));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(format!(
            "{url:?}: a base url has no query or fragment (want http://HOST:PORT[/PATH])"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_host_port_and_a_path() {
        for url in [
            "http://127.0.0.1:25107",
            "http://127.0.0.1:25107/",
            "http://keep0.zzzzz.example.com:25107",
            "http://keep0:1/keep",
            "http://keep0:65535/keep/",
            "http://[::1]:25107",
            "HTTP://localhost:8080",
            "http://keep0.example",
            "http://keep0/keep",
            "http://[::1]/",
        ] {
            assert_eq!(check_url(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn refuses_https_with_the_reason() {
        for url in ["https://127.0.0.1:25107", "HTTPS://keep0:443/"] {
            let err = check_url(url).unwrap_err();
            assert!(
                err.contains("https is not supported until TLS lands; use http://"),
                "{err}"
            );
            assert!(err.contains(url), "{err}");
        }
    }

    #[test]
    fn refuses_everything_else_with_a_message() {
        for (url, why) in [
            ("", "not an http:// url"),
            ("127.0.0.1:25107", "not an http:// url"),
            ("keep0", "not an http:// url"),
            ("ftp://keep0:21", "not an http:// url"),
            ("unix:///run/keep.sock", "not an http:// url"),
            ("//keep0:25107", "not an http:// url"),
            ("http://keep0:", "no valid port"),
            ("http://[::1]:", "no valid port"),
            ("http://keep0:0", "no valid port"),
            ("http://keep0:99999", "no valid port"),
            ("http://keep0:-1", "no valid port"),
            ("http://:25107", "host"),
            ("http://", "url"),
            ("http://user:pw@keep0:25107", "passwords"),
            ("http://keep0:25107/?x=1", "no query or fragment"),
            ("http://keep0:25107/#top", "no query or fragment"),
            ("http://keep0:25107/a b", "not a valid url"),
            (" http://keep0:25107", "not an http:// url"),
            ("http://keep0:25107 ", "not a valid url"),
        ] {
            let err = check_url(url).expect_err(url);
            assert!(err.contains(why), "{url:?}: {err}");
            assert!(err.contains(&format!("{url:?}")), "{url:?}: {err}");
        }
    }
}
