//! The HTTPS front: accepting connections, admitting them by source address and by pool,
//! enforcing a deadline on every phase of a connection, TLS with optional client certificates,
//! and graceful shutdown (`serve`, `admission`, `deadlines`, `proxy_protocol`, `stats`). What
//! the server does at each limit is in docs/architecture.md ("Connections").
//!
//! Then the handlers, which authenticate, decode, call the role that does the work (`hub`,
//! `follower`, `key_material`, `upstream` for what goes to another provider) and encode:
//! `federation` for peers (draft-ietf-mimi-protocol-06 §5), `client_api` for our own clients.

mod admission;
mod client_api;
mod deadlines;
mod federation;
mod proxy_protocol;
mod serve;
mod stats;

pub(crate) use admission::LongPolls;
pub(crate) use serve::{PeerDomain, serve};
pub(crate) use stats::{Closed, ConnectionStats};

use std::sync::Arc;

use crate::state::AppState;

/// The room a path segment names (scheme-stripped, IN-SERVER-4), or a 400.
fn room_in_path(segment: &str) -> Result<mimi_protocol::MimiUri, crate::error::ApiError> {
    mimi_protocol::MimiUri::from_path_segment(segment)
        .map_err(|e| crate::error::ApiError::bad_request(format!("bad room in path: {e}")))
}

/// Middleware: a peer provider (known by its certificate) over its request quota gets 429 with
/// `Retry-After`; local clients are not counted here.
pub(crate) async fn limit_peers(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let peer = request
        .extensions()
        .get::<PeerDomain>()
        .and_then(|p| p.0.clone());
    // Our own domain's certificate is a node of our cluster forwarding a room's command: its
    // requests were counted where they came in.
    if let Some(peer) = peer
        && peer != state.domain()
        && let Err(wait) = state.peer_requests.take(&peer, std::time::Instant::now())
    {
        tracing::info!(%peer, "peer over its request quota");
        return crate::error::ApiError::too_many_requests(
            format!("{peer} made too many requests; try again later"),
            wait.as_secs(),
        )
        .into_response();
    }
    next.run(request).await
}

/// Every endpoint: the federation API and the client API.
pub(crate) fn routes() -> axum::Router<Arc<AppState>> {
    federation::routes().merge(client_api::routes())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_over_its_request_quota_gets_429_and_others_do_not() {
        let (_dir, state) = crate::state::tests::test_state_with(|c| {
            c.limits.requests_per_peer_per_minute = 2;
        });
        let router = axum::Router::new()
            .route("/v1/x", axum::routing::get(|| async { "ok" }))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                limit_peers,
            ))
            .with_state(state.clone());
        let call = |peer: Option<&str>| {
            let mut request = Request::get("/v1/x").body(Body::empty()).unwrap();
            request
                .extensions_mut()
                .insert(PeerDomain(peer.map(str::to_owned)));
            router.clone().oneshot(request)
        };
        for _ in 0..2 {
            assert_eq!(
                call(Some("b.example")).await.unwrap().status(),
                StatusCode::OK
            );
        }
        let refused = call(Some("b.example")).await.unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()["retry-after"], "30");
        assert_eq!(
            call(Some("c.example")).await.unwrap().status(),
            StatusCode::OK
        );
        for _ in 0..5 {
            assert_eq!(
                call(None).await.unwrap().status(),
                StatusCode::OK,
                "a local client"
            );
        }
    }
}
