//! Status pages for people, as a node and an introducer serve them at
//! `GET /` to a browser, with the same data as JSON at `/_status.json`.
//!
//! This crate holds what both pages share, not what they show:
//!
//! - [`page`]: the layout (one self-contained HTML document: no script,
//!   no outside asset, its one stylesheet allowed by its hash), the
//!   headers every status answer carries (a `Content-Security-Policy`
//!   that forbids scripts from anywhere but the page's own origin, no
//!   caching, no sniffing, no framing), and whether a request asks for
//!   HTML at all;
//! - [`chart`]: small charts drawn by the server as inline SVG;
//! - [`mod@format`]: sizes, ages and badges as people read them;
//! - [`traffic`]: a bounded recorder of requests, bytes and latencies
//!   over the last ten minutes, in ten-second slots;
//! - [`redact`]: what comes from outside (error messages, above all) is
//!   cleaned of signatures and tokens before a page shows it.
//!
//! Markup is written with [`maud`], which escapes every interpolated
//! string unless told otherwise: a nickname of `<script>` shows as text.
//!
//! ```
//! use keep_status::page::{Page, html_response};
//! use maud::html;
//!
//! let nickname = "<script>alert(1)</script>";
//! let page = Page::new("node", html! { p { (nickname) } });
//! let resp = html_response(&page);
//! assert!(resp.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
//! assert!(page.render().contains("&lt;script&gt;"));
//! ```

pub mod chart;
pub mod format;
pub mod page;
pub mod redact;
pub mod traffic;

pub use maud::{Markup, html};
pub use page::{Page, html_response, json_response, wants_html};
pub use redact::Redactor;
pub use traffic::{Op, Traffic, TrafficReport};
