//! The one place where errors become HTTP responses: the status says who is at fault, the body
//! is one line for humans, and internal causes are logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What went wrong, from the requester's point of view; each kind has one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// The request cannot be parsed or breaks the protocol's rules: 400.
    Malformed,
    /// No valid credentials came with the request: 401.
    Unauthenticated,
    /// The requester is known but not allowed to do this: 403.
    Forbidden,
    /// What the request names does not exist here: 404.
    NotFound,
    /// The request clashes with what exists (a room or client already there): 409.
    Conflict,
    /// The body is over a limit: 413.
    TooLarge,
    /// A limit is reached for now; the request may be repeated later: 503.
    Unavailable,
    /// This requester used up its allowance for now (a per-requester quota): 429.
    TooManyRequests,
    /// The peer we relayed to refused the request; its status is passed on.
    UpstreamRefused(StatusCode),
    /// The peer we relayed to failed or could not be reached: 502.
    UpstreamFailed,
    /// Our own failure; the cause is logged, not sent: 500.
    Internal,
}

impl ErrorKind {
    /// The kind whose status this is (for answers of another node of our cluster, which
    /// mapped its error the same way); a status no kind has is a refusal passed on.
    pub(crate) fn from_status(status: StatusCode) -> Self {
        [
            Self::Malformed,
            Self::Unauthenticated,
            Self::Forbidden,
            Self::NotFound,
            Self::Conflict,
            Self::TooLarge,
            Self::Unavailable,
            Self::TooManyRequests,
            Self::UpstreamFailed,
            Self::Internal,
        ]
        .into_iter()
        .find(|kind| kind.status() == status)
        .unwrap_or(Self::UpstreamRefused(status))
    }

    /// The HTTP status for this kind: the one mapping from error to status.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Self::Malformed => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::UpstreamRefused(status) => status,
            Self::UpstreamFailed => StatusCode::BAD_GATEWAY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answered to a peer or a client: a kind, which decides the status, and one line
/// for humans.
#[derive(Debug)]
pub(crate) struct ApiError {
    kind: ErrorKind,
    message: String,
    /// Seconds after which the request may be repeated, for [`ErrorKind::Unavailable`] and
    /// [`ErrorKind::TooManyRequests`].
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error of `kind` with `message` for the requester.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, message)
    }
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, message)
    }
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub(crate) fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, message)
    }
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub(crate) fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::UpstreamFailed, message)
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
            400 | 403 | 404 | 409 | 410 | 413 | 422 | 429 => Self::new(
                ErrorKind::UpstreamRefused(status),
                format!("{domain} refused: {why}"),
            ),
            _ => Self::bad_gateway(format!("{domain} answered {status}: {why}")),
        }
    }
    /// A limit is reached; the request may be repeated after `retry_after_secs`.
    pub(crate) fn unavailable(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(ErrorKind::Unavailable, message)
        }
    }
    /// The requester's quota is used up; it may ask again after `retry_after_secs`.
    pub(crate) fn too_many_requests(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(ErrorKind::TooManyRequests, message)
        }
    }
    /// Our own failure: logged with its cause (inside the request's span, which names the
    /// request, peer and room), answered without it.
    pub(crate) fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(ErrorKind::Internal, "internal error")
    }
    /// What kind of error this is.
    pub(crate) fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.kind.status())
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.kind.status(), format!("{}\n", self.message)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<mimi_store::StoreError> for ApiError {
    /// A uniqueness clash is the requester's conflict; anything else is ours.
    fn from(e: mimi_store::StoreError) -> Self {
        match e {
            mimi_store::StoreError::Exists(what) => {
                Self::conflict(format!("{what} already exists"))
            }
            other => Self::internal(other),
        }
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
        assert_eq!(refused.kind.status(), StatusCode::FORBIDDEN);
        assert_eq!(refused.message, "b.example refused: no consent");
        let missing = ApiError::from_peer("b.example", StatusCode::NOT_FOUND, b"");
        assert_eq!(missing.kind.status(), StatusCode::NOT_FOUND);
        for status in [
            StatusCode::UNAUTHORIZED,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::METHOD_NOT_ALLOWED,
        ] {
            let failed = ApiError::from_peer("b.example", status, b"x");
            assert_eq!(failed.kind(), ErrorKind::UpstreamFailed, "{status}");
        }
    }

    #[test]
    fn a_store_conflict_is_a_conflict_and_other_store_errors_are_ours() {
        let clash = ApiError::from(mimi_store::StoreError::Exists("room r".into()));
        assert_eq!(clash.kind(), ErrorKind::Conflict);
        assert_eq!(clash.message, "room r already exists");
        let broken = ApiError::from(mimi_store::StoreError::Poisoned);
        assert_eq!(broken.kind(), ErrorKind::Internal);
        assert_eq!(
            broken.message, "internal error",
            "the cause stays in the log"
        );
    }
}
