//! API errors: one type, mapped to a status and a short plain message.

use http::{Response, StatusCode};
use keep_http::Body;
use keep_locator::SignatureError;
use keep_volume::{BodyError, VolumeError};

/// An error answer: the status and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the client.
    pub message: String,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "block not found")
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    }

    /// 500, for a volume that failed.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The response carrying this error.
    pub fn into_response(self) -> Response<Body> {
        keep_http::body::text(self.status, self.message)
    }
}

impl From<SignatureError> for ApiError {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::Missing => {
                ApiError::new(StatusCode::UNAUTHORIZED, "permission signature missing")
            }
            SignatureError::Expired => {
                ApiError::new(StatusCode::UNAUTHORIZED, "permission signature expired")
            }
            SignatureError::Invalid => ApiError::bad_request("invalid permission signature"),
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        let status = match e {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::LengthMismatch { .. }
            | BodyError::HashMismatch { .. }
            | BodyError::Source(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<VolumeError> for ApiError {
    fn from(e: VolumeError) -> Self {
        match e {
            VolumeError::NotFound => ApiError::not_found(),
            VolumeError::Body(b) => b.into(),
            VolumeError::Full => {
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "all volumes are full")
            }
            VolumeError::ReadOnly => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no writable volume")
            }
            VolumeError::Unavailable(m) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("volume unavailable: {m}"),
            ),
            VolumeError::Corrupt(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "stored data failed its checksum")
            }
            VolumeError::MtimeMismatch { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            VolumeError::Io(e) => ApiError::internal(format!("volume error: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keep_locator::BlockHash;

    #[test]
    fn statuses_follow_arvados() {
        let s = |e: ApiError| e.status.as_u16();
        assert_eq!(s(SignatureError::Missing.into()), 401);
        assert_eq!(s(SignatureError::Expired.into()), 401);
        assert_eq!(s(SignatureError::Invalid.into()), 400);
        assert_eq!(s(BodyError::TooLarge.into()), 413);
        let h = BlockHash::EMPTY;
        assert_eq!(
            s(BodyError::HashMismatch {
                expected: h,
                actual: h
            }
            .into()),
            400
        );
        assert_eq!(
            s(BodyError::LengthMismatch {
                declared: 1,
                received: 2
            }
            .into()),
            400
        );
        assert_eq!(s(VolumeError::Full.into()), 507);
        assert_eq!(s(VolumeError::ReadOnly.into()), 503);
        assert_eq!(s(VolumeError::NotFound.into()), 404);
    }
}
