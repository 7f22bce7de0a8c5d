//! The layout every status page shares, and the headers of every status
//! answer.

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use keep_http::Body;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The pages' one stylesheet. Inline, so a page needs nothing else; the
/// policy allows exactly this text by its hash.
pub const STYLE: &str = include_str!("style.css");

/// How often a page reloads itself, unless the page says otherwise.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(5);

/// The `Content-Security-Policy` of every status answer: nothing loads
/// from anywhere (`default-src 'none'`) but scripts from the page's own
/// origin (none are served), the one stylesheet by its hash and images
/// from the page itself; no base URL, no form, no framing.
pub static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
    format!(
        "default-src 'none'; script-src 'self'; style-src 'sha256-{hash}'; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
});

/// One status page.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    /// The title, also its heading.
    pub title: &'a str,
    /// A line under the heading.
    pub subtitle: Markup,
    /// How often the page reloads itself.
    pub refresh: Duration,
    /// The sections.
    pub body: Markup,
}

impl<'a> Page<'a> {
    /// A page with `body`, no subtitle and the default refresh.
    pub fn new(title: &'a str, body: Markup) -> Self {
        Page {
            title,
            subtitle: html! {},
            refresh: DEFAULT_REFRESH,
            body,
        }
    }

    /// The whole HTML document.
    pub fn render(&self) -> String {
        let refresh = self.refresh.as_secs().max(1);
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta http-equiv="refresh" content=(refresh);
                    meta name="referrer" content="no-referrer";
                    title { (self.title) }
                    style { (PreEscaped(STYLE)) }
                }
                body {
                    header {
                        h1 { (self.title) }
                        p.sub { (self.subtitle) }
                    }
                    main { (self.body) }
                    footer {
                        "Reloads every " (refresh) " s. The same data for scripts: "
                        a href="/_status.json" { "/_status.json" } "."
                    }
                }
            }
        }
        .into_string()
    }
}

/// Headers every status answer carries.
fn secure(resp: &mut Response<Body>) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// `page` as a `200 text/html` answer with the status headers.
pub fn html_response(page: &Page<'_>) -> Response<Body> {
    let mut resp = Response::new(keep_http::body::full(page.render()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(&mut resp);
    resp
}

/// `value` as a `200 application/json` answer with the status headers.
pub fn json_response<T: Serialize>(value: &T) -> Response<Body> {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut resp = keep_http::body::json(StatusCode::OK, body);
    secure(&mut resp);
    resp
}

/// Whether a request asks for HTML: its `Accept` header names
/// `text/html` (as every browser's does for a page), with a quality
/// above zero.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let kind = parts.next().unwrap_or_default();
            let q_zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            kind.eq_ignore_ascii_case("text/html") && !q_zero
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn browsers_want_html_and_scripts_do_not() {
        let chromium = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
                        image/webp,image/apng,*/*;q=0.8";
        assert!(wants_html(&accept(chromium)));
        assert!(wants_html(&accept("TEXT/HTML")));
        assert!(!wants_html(&accept("*/*")));
        assert!(!wants_html(&accept("application/json")));
        assert!(!wants_html(&accept("text/html;q=0")));
        assert!(!wants_html(&HeaderMap::new()));
    }

    #[test]
    fn the_policy_allows_the_stylesheet_by_its_hash_and_no_outside_script() {
        let page = Page::new("t", html! { p { "x" } });
        let resp = html_response(&page);
        let csp = resp.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            csp.starts_with("default-src 'none'; script-src 'self';"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
        assert!(csp.contains(&format!("'sha256-{hash}'")));
        let html = page.render();
        assert!(
            html.contains(&format!("<style>{STYLE}</style>")),
            "the hashed text, verbatim"
        );
        assert!(!html.contains("<script"), "no script");
        assert!(!html.contains("src=\"http"), "no outside asset");
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
    }

    #[test]
    fn interpolated_text_is_escaped() {
        let evil = "<script>alert('x')</script>\"&";
        let html = Page::new(evil, html! { td title=(evil) { (evil) } }).render();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert('x')&lt;/script&gt;&quot;&amp;"));
    }
}
