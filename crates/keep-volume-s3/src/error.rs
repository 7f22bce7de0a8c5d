//! What a request to the store can fail with, whether trying again may
//! help, and how it maps onto [`VolumeError`].

use keep_volume::{BodyError, VolumeError};

/// A failed S3 request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum S3Error {
    /// The key does not exist (404 with `NoSuchKey`, or a 404 to a HEAD).
    #[error("no such key")]
    NotFound,
    /// The store answered with an error status.
    #[error("S3 answered {status} {code}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// S3's error code (`SlowDown`, `NoSuchBucket`, …), empty when the
        /// answer had no body.
        code: String,
        /// S3's message, or the start of the body.
        message: String,
    },
    /// No answer: the connection failed, broke or timed out.
    #[error("S3 request failed: {0}")]
    Transport(String),
    /// An answer that is not what S3 sends (bad XML, missing header).
    #[error("unexpected answer from S3: {0}")]
    Protocol(String),
    /// The block's body was refused before the store had all of it.
    #[error(transparent)]
    Body(BodyError),
}

/// Error codes that mean "slow down" or "try again", whatever the status.
const RETRYABLE_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
];

impl S3Error {
    /// The error for a non-2xx answer with this status and body.
    pub(crate) fn from_answer(status: u16, body: &str) -> S3Error {
        let code = xml_field(body, "Code").unwrap_or_default();
        if status == 404 && matches!(code.as_str(), "" | "NoSuchKey" | "NotFound") {
            return S3Error::NotFound;
        }
        let message = xml_field(body, "Message")
            .unwrap_or_else(|| body.chars().take(200).collect::<String>().trim().to_owned());
        // A HEAD answer has no body: say what the status means.
        let message = match reqwest::StatusCode::from_u16(status) {
            Ok(s) if message.is_empty() => s.canonical_reason().unwrap_or_default().to_owned(),
            _ => message,
        };
        S3Error::Status {
            status,
            code,
            message,
        }
    }

    /// Whether sending the same request again may succeed: connection
    /// failures, 5xx answers and throttling.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            S3Error::Transport(_) => true,
            S3Error::Status { status, code, .. } => {
                *status >= 500 || *status == 429 || RETRYABLE_CODES.contains(&code.as_str())
            }
            S3Error::NotFound | S3Error::Protocol(_) | S3Error::Body(_) => false,
        }
    }
}

impl From<reqwest::Error> for S3Error {
    fn from(e: reqwest::Error) -> S3Error {
        // The whole source chain: reqwest's own message is often just
        // "error sending request".
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        S3Error::Transport(msg)
    }
}

impl From<S3Error> for VolumeError {
    fn from(e: S3Error) -> VolumeError {
        match e {
            S3Error::NotFound => VolumeError::NotFound,
            S3Error::Body(b) => VolumeError::Body(b),
            other => VolumeError::Unavailable(other.to_string()),
        }
    }
}

/// The text of the first `<name>` element of an S3 XML answer.
pub(crate) fn xml_field(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let len = body[start..].find(&close)?;
    Some(body[start..start + len].trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOW: &str = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code>\
        <Message>Please reduce your request rate.</Message></Error>";

    #[test]
    fn classifies_answers() {
        assert_eq!(S3Error::from_answer(404, ""), S3Error::NotFound);
        let no_key = "<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>";
        assert_eq!(S3Error::from_answer(404, no_key), S3Error::NotFound);
        let no_bucket = S3Error::from_answer(
            404,
            "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>",
        );
        assert!(matches!(&no_bucket, S3Error::Status { code, .. } if code == "NoSuchBucket"));
        assert!(!no_bucket.is_retryable());
        assert!(matches!(
            VolumeError::from(no_bucket),
            VolumeError::Unavailable(m) if m.contains("NoSuchBucket") && m.contains("does not exist")
        ));
        let slow = S3Error::from_answer(503, SLOW);
        assert!(slow.is_retryable());
        assert!(S3Error::from_answer(400, SLOW).is_retryable(), "by code");
        assert!(S3Error::from_answer(429, "").is_retryable());
        assert_eq!(
            S3Error::from_answer(503, "").to_string(),
            "S3 answered 503 : Service Unavailable"
        );
        assert!(S3Error::from_answer(500, "oops").is_retryable());
        assert!(
            !S3Error::from_answer(403, "<Error><Code>AccessDenied</Code></Error>").is_retryable()
        );
        assert!(S3Error::Transport("refused".into()).is_retryable());
        assert!(!S3Error::Body(BodyError::TooLarge).is_retryable());
    }

    #[test]
    fn maps_to_volume_errors() {
        assert!(VolumeError::from(S3Error::NotFound).is_not_found());
        assert!(matches!(
            VolumeError::from(S3Error::Body(BodyError::TooLarge)),
            VolumeError::Body(BodyError::TooLarge)
        ));
        let down = VolumeError::from(S3Error::Transport("connection refused".into()));
        assert!(matches!(&down, VolumeError::Unavailable(m) if m.contains("refused")));
        assert!(down.is_volume_fault());
        let text = S3Error::from_answer(503, SLOW).to_string();
        assert_eq!(
            text,
            "S3 answered 503 SlowDown: Please reduce your request rate."
        );
    }
}
