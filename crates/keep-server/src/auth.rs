//! Who is asking: the token of a request, and the admin check.
//!
//! Tokens are accepted as Arvados does, and looked for in its order:
//! `Authorization: Bearer T` or `OAuth2 T`, HTTP Basic (the password is
//! the token), the `api_token` query parameter (form-decoded), and the
//! `arvados_api_token` cookie (URL-safe base64 of the token).

use base64::Engine;
use hmac::Mac as _;
use http::{HeaderMap, StatusCode, Uri, header};

use crate::config::Secret;
use crate::error::ApiError;

/// The token of an `Authorization: Bearer T` header, and no other
/// place: how nodes present their credential. A credential in a query
/// string or a cookie (where logs, proxies and browsers keep it) is not
/// one.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split_once(' '))
        .find(|(scheme, rest)| scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty())
        .map(|(_, rest)| rest.trim().to_owned())
}

/// The token a request carries, if any.
pub fn token(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    for value in headers.get_all(header::AUTHORIZATION) {
        let Ok(value) = value.to_str() else { continue };
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if rest.is_empty() {
            continue;
        }
        if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth2") {
            return Some(rest.to_owned());
        }
        if scheme.eq_ignore_ascii_case("basic")
            && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest)
            && let Ok(pair) = String::from_utf8(raw)
            && let Some((_, password)) = pair.split_once(':')
            && !password.is_empty()
        {
            return Some(password.to_owned());
        }
    }
    let from_query = uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, v)| k == "api_token" && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
    });
    from_query.or_else(|| cookie_token(headers))
}

/// The token in the `arvados_api_token` cookie: Arvados's web clients
/// store it there as URL-safe base64 (padded; unpadded is taken too).
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, value)| *name == "arvados_api_token" && !value.is_empty())
        .filter_map(|(_, value)| {
            let raw = URL_SAFE
                .decode(value)
                .or_else(|_| URL_SAFE_NO_PAD.decode(value))
                .ok()?;
            let token = String::from_utf8(raw).ok()?;
            let token = token.trim();
            (!token.is_empty()).then(|| token.to_owned())
        })
        .next()
}

/// Checks that the request carries the system root token: none is 401, a
/// wrong one (or none configured) is 403.
pub fn require_admin(
    root: Option<&Secret>,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(), ApiError> {
    let Some(given) = token(headers, uri) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "admin token required",
        ));
    };
    match root {
        Some(root) if constant_time_eq(given.as_bytes(), root.expose().as_bytes()) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "token is not the admin token",
        )),
    }
}

/// Compares two secrets without leaking where they differ: both are
/// condensed with the same keyed MAC first.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let key: [u8; 32] = rand::random();
    let mac = |x: &[u8]| {
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("any key length"));
        m.update(x);
        m
    };
    let tag = mac(a).finalize().into_bytes();
    mac(b).verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Headers holding one header, `name: value`.
    fn one(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    fn headers(auth: &str) -> HeaderMap {
        one(header::AUTHORIZATION, auth)
    }

    #[test]
    fn token_forms() {
        let uri: Uri = "/x".parse().unwrap();
        assert_eq!(token(&headers("Bearer abc"), &uri).as_deref(), Some("abc"));
        assert_eq!(token(&headers("OAuth2 abc"), &uri).as_deref(), Some("abc"));
        let basic = base64::engine::general_purpose::STANDARD.encode("user:abc");
        assert_eq!(
            token(&headers(&format!("Basic {basic}")), &uri).as_deref(),
            Some("abc")
        );
        let q: Uri = "/x?a=1&api_token=qqq".parse().unwrap();
        assert_eq!(token(&HeaderMap::new(), &q).as_deref(), Some("qqq"));
        // An Arvados v2 token, its slashes encoded, as clients send it.
        let v2 = "v2/zzzzz-gj3su-0123456789abcde/s3cr3t";
        let q: Uri = "/x?api_token=v2%2Fzzzzz-gj3su-0123456789abcde%2Fs3cr3t"
            .parse()
            .unwrap();
        assert_eq!(token(&HeaderMap::new(), &q).as_deref(), Some(v2));
        assert_eq!(token(&headers("Bearer"), &uri), None);
        assert_eq!(token(&HeaderMap::new(), &uri), None);
    }

    fn cookies(value: &str) -> HeaderMap {
        one(header::COOKIE, value)
    }

    #[test]
    fn the_arvados_cookie_carries_a_token() {
        use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
        let uri: Uri = "/x".parse().unwrap();
        // Its `?>>` makes URL-safe base64 differ from the standard one.
        let v2 = "v2/zzzzz-gj3su-0123456789abcde/s3cr3t?>>";
        for encoded in [URL_SAFE.encode(v2), URL_SAFE_NO_PAD.encode(v2)] {
            let h = cookies(&format!("other=1; arvados_api_token={encoded}; x=y"));
            assert_eq!(token(&h, &uri).as_deref(), Some(v2), "{encoded}");
        }
        for bad in [
            "arvados_api_token=",
            "arvados_api_token=%%%",
            "api_token=YWJj",
        ] {
            assert_eq!(token(&cookies(bad), &uri), None, "{bad}");
        }
        // The header comes first, then the query, then the cookie.
        let mut h = cookies(&format!("arvados_api_token={}", URL_SAFE.encode("c")));
        let q: Uri = "/x?api_token=q".parse().unwrap();
        assert_eq!(token(&h, &q).as_deref(), Some("q"));
        h.insert(header::AUTHORIZATION, "Bearer b".parse().unwrap());
        assert_eq!(token(&h, &q).as_deref(), Some("b"));
    }

    #[test]
    fn admin_statuses() {
        let uri: Uri = "/index".parse().unwrap();
        let root = Secret::new("root");
        let code = |r: Result<(), ApiError>| r.map(|_| 200).unwrap_or_else(|e| e.status.as_u16());
        assert_eq!(
            code(require_admin(Some(&root), &HeaderMap::new(), &uri)),
            401
        );
        assert_eq!(
            code(require_admin(Some(&root), &headers("Bearer nope"), &uri)),
            403
        );
        assert_eq!(
            code(require_admin(Some(&root), &headers("Bearer root"), &uri)),
            200
        );
        assert_eq!(
            code(require_admin(None, &headers("Bearer root"), &uri)),
            403
        );
    }
}
