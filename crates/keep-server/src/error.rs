//! API errors: one type, mapped to a status and a short plain message.
//! The storage core's errors become statuses here and nowhere else.

use http::{Response, StatusCode};
use keep_http::Body;
use keep_locator::SignatureError;
use keep_store::StoreError;
use keep_volume::BodyError;

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
            BodyError::Stalled(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::LengthMismatch { .. }
            | BodyError::HashMismatch { .. }
            | BodyError::Source(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::NotFound => return ApiError::not_found(),
            StoreError::Invalid(b) => return b.clone().into(),
            StoreError::NoSuchMount(_) => StatusCode::BAD_REQUEST,
            StoreError::Full => StatusCode::INSUFFICIENT_STORAGE,
            StoreError::ReadOnly
            | StoreError::Busy(_)
            | StoreError::Unavailable(_)
            | StoreError::NoTarget(_) => StatusCode::SERVICE_UNAVAILABLE,
            StoreError::Corrupt => StatusCode::BAD_GATEWAY,
            StoreError::MtimeMismatch { .. } => StatusCode::CONFLICT,
            StoreError::Volume(_) | StoreError::Read(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
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
        let stalled = BodyError::Stalled(std::time::Duration::from_secs(1));
        assert_eq!(s(stalled.into()), 408);
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
        assert_eq!(s(StoreError::Full.into()), 507);
        assert_eq!(s(StoreError::ReadOnly.into()), 503);
        assert_eq!(s(StoreError::Busy("x").into()), 503);
        assert_eq!(s(StoreError::Unavailable("x".into()).into()), 503);
        assert_eq!(s(StoreError::NoTarget("x".into()).into()), 503);
        assert_eq!(s(StoreError::NotFound.into()), 404);
        assert_eq!(s(StoreError::NoSuchMount("m".into()).into()), 400);
        assert_eq!(s(StoreError::Corrupt.into()), 502);
        assert_eq!(s(StoreError::Volume("eio".into()).into()), 500);
        assert_eq!(s(StoreError::Invalid(BodyError::TooLarge).into()), 413);
        assert_eq!(
            s(StoreError::MtimeMismatch {
                expected: 1,
                actual: 2
            }
            .into()),
            409
        );
    }
}
