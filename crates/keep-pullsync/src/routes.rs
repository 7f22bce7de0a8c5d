//! The paths of the pullsync routes on a node's listener. Every route is
//! for the node credential only; bodies are [`wire`](crate::wire)
//! messages (`application/octet-stream`).
//!
//! | Route | Body | Answer |
//! |---|---|---|
//! | `GET /_keep/sync/cursors` | none | [`CursorsReply`](crate::wire::CursorsReply) |
//! | `POST /_keep/sync/offer?wait_ms=N` | [`OfferRequest`](crate::wire::OfferRequest) | [`Offer`](crate::wire::Offer), after up to `N` ms for a live request |
//! | `POST /_keep/sync/want` | [`Want`](crate::wire::Want) | the delivery: [frames](crate::serve::frame) |
//! | `POST /_keep/sync/cancel` | [`Cancel`](crate::wire::Cancel) | 200, or 404 for an unknown ruid |

/// `GET`: the epoch and the cursors.
pub const CURSORS: &str = "/_keep/sync/cursors";
/// `POST`: an offer.
pub const OFFER: &str = "/_keep/sync/offer";
/// `POST`: a want; the answer is the delivery.
pub const WANT: &str = "/_keep/sync/want";
/// `POST`: a cancel.
pub const CANCEL: &str = "/_keep/sync/cancel";
/// The query parameter of [`OFFER`]: how long a live request may wait, in
/// milliseconds.
pub const WAIT_PARAM: &str = "wait_ms";
/// The content type of every body.
pub const CONTENT_TYPE: &str = "application/octet-stream";
