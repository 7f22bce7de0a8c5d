//! The node's status page (`GET /` from a browser) and the same data as
//! JSON (`GET /_status.json`): [`report`] gathers it, [`page`] draws it.
//! Neither shows a token, a key or a signature: every string that came
//! from outside goes through the node's [`keep_status::Redactor`], and
//! `keep_status` escapes whatever the page interpolates.

pub mod page;
pub mod report;

pub use report::{NodeReport, collect};
