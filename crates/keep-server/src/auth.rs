//! Who is asking: the token of a request, and the admin check.
//!
//! Tokens are accepted as Arvados does: `Authorization: Bearer T`,
//! `Authorization: OAuth2 T`, HTTP Basic (the password is the token), and
//! the `api_token` query parameter.

use base64::Engine;
use hmac::Mac as _;
use http::{HeaderMap, StatusCode, Uri, header};

use crate::config::Secret;
use crate::error::ApiError;

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
    uri.query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, v)| *k == "api_token" && !v.is_empty())
        .map(|(_, v)| v.to_owned())
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

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, auth.parse().unwrap());
        h
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
        assert_eq!(token(&headers("Bearer"), &uri), None);
        assert_eq!(token(&HeaderMap::new(), &uri), None);
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
