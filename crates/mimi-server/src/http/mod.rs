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

/// Every endpoint: the federation API and the client API.
pub(crate) fn routes() -> axum::Router<Arc<AppState>> {
    federation::routes().merge(client_api::routes())
}
