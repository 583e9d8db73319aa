//! The one place where errors become HTTP responses: the status says who is at fault, the body
//! is one line for humans, and internal causes are logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to a peer or a client.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    /// Seconds after which the request may be repeated, for a 503.
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            retry_after: None,
        }
    }
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: message.into(),
            retry_after: None,
        }
    }
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
            retry_after: None,
        }
    }
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            retry_after: None,
        }
    }
    pub(crate) fn too_large(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: message.into(),
            retry_after: None,
        }
    }
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            message: message.into(),
            retry_after: None,
        }
    }
    pub(crate) fn bad_gateway(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_GATEWAY,
            message: message.into(),
            retry_after: None,
        }
    }
    /// A peer's non-success answer to a request we relayed. A refusal of the request itself
    /// (400, 403, 404, 409, 410, 413, 422, 429) is passed on with its status, so the requester
    /// learns what the peer decided; anything else (401 for our own certificate, 5xx, an
    /// unexpected status) is the peer failing us: 502.
    pub(crate) fn from_peer(domain: &str, status: StatusCode, body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let why: String = text
            .trim()
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(300)
            .collect();
        match status.as_u16() {
            400 | 403 | 404 | 409 | 410 | 413 | 422 | 429 => Self {
                status,
                message: format!("{domain} refused: {why}"),
                retry_after: None,
            },
            _ => Self::bad_gateway(format!("{domain} answered {status}: {why}")),
        }
    }
    /// A limit is reached; the request may be repeated after `retry_after_secs`.
    pub(crate) fn unavailable(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
            retry_after: Some(retry_after_secs),
        }
    }
    /// Our own failure: logged with its cause, answered without it.
    pub(crate) fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error".into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.message)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<mimi_store::StoreError> for ApiError {
    fn from(e: mimi_store::StoreError) -> Self {
        Self::internal(e)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(e)
    }
}

impl From<mimi_protocol::DecodeError> for ApiError {
    fn from(e: mimi_protocol::DecodeError) -> Self {
        Self::bad_request(format!("malformed body: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_refusal_is_passed_on_and_its_failure_is_a_bad_gateway() {
        let refused = ApiError::from_peer("b.example", StatusCode::FORBIDDEN, b"no consent\n");
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(refused.message, "b.example refused: no consent");
        let missing = ApiError::from_peer("b.example", StatusCode::NOT_FOUND, b"");
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        for status in [
            StatusCode::UNAUTHORIZED,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::METHOD_NOT_ALLOWED,
        ] {
            let failed = ApiError::from_peer("b.example", status, b"x");
            assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "{status}");
        }
    }
}
