//! Request handlers, one file per group of routes. They alone turn the
//! storage core's errors into statuses (through [`crate::error`]).

pub mod admin;
pub mod get;
pub mod index;
pub mod node;
pub mod put;
pub mod status;
pub mod sync;
pub mod worklists;

use keep_locator::Locator;

use crate::error::ApiError;

/// The locator in a path `/{locator}` (400 when malformed).
pub fn parse_locator(path: &str) -> Result<Locator, ApiError> {
    let text = path.trim_start_matches('/');
    text.parse::<Locator>()
        .map_err(|e| ApiError::bad_request(format!("bad locator: {e}")))
}
