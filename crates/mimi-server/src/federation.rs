//! The provider-to-provider API (draft-ietf-mimi-protocol-06 §5): every request comes over
//! mutual TLS from a peer identified by its certificate's domain, which must match `From`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use mimi_protocol::{
    DIRECTORY_PATH, Directory, GroupInfoRequest, KeyMaterialRequest, MimiUri, SubmitMessageRequest,
    UpdateRequest, Wire,
};

use crate::error::ApiError;
use crate::http::PeerDomain;
use crate::state::AppState;
use crate::{follower, hub, key_material};

/// The federation routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(DIRECTORY_PATH, get(directory))
        .route("/v1/keyMaterial/{*target}", post(key_material_handler))
        .route("/v1/update/{*room}", post(update))
        .route("/v1/submitMessage/{*room}", post(submit))
        .route("/v1/notify/{*room}", post(notify))
        .route("/v1/groupInfo/{*room}", post(group_info))
        .route("/v1/assets/{id}", get(asset))
        .route("/v1/proxyDownload/{url}", get(proxy_download))
        .route("/v1/ratchetTree/{*path}", get(ratchet_tree))
}

/// FED-001: a client certificate chained to the trust anchor; FED-002: `From: mimi@<that
/// domain>`; FED-003: `Host` names us.
fn authenticate(
    state: &AppState,
    peer: &PeerDomain,
    headers: &HeaderMap,
) -> Result<String, ApiError> {
    let domain = peer
        .0
        .clone()
        .ok_or_else(|| ApiError::unauthorized("a provider client certificate is required"))?;
    let from = headers
        .get("from")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if from != format!("mimi@{domain}") {
        return Err(ApiError::forbidden(format!(
            "From header {from:?} does not match certificate of {domain}"
        )));
    }
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    if host != state.domain() {
        return Err(ApiError::forbidden(format!(
            "Host {host:?} is not {}",
            state.domain()
        )));
    }
    Ok(domain)
}

fn room_param(param: &str) -> Result<MimiUri, ApiError> {
    MimiUri::from_path_segment(param)
        .map_err(|e| ApiError::bad_request(format!("bad room in path: {e}")))
}

async fn directory(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let base = format!("https://{}:{}", state.domain(), state.config.listen.port());
    axum::Json(Directory::for_base_url(&base))
}

async fn key_material_handler(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(target): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    let request = KeyMaterialRequest::decode(&body)?;
    let target = MimiUri::from_path_segment(&target)
        .map_err(|e| ApiError::bad_request(format!("bad target in path: {e}")))?;
    if target.to_string() != request.target_user.as_str() {
        return Err(ApiError::bad_request("path and body name different users"));
    }
    Ok(key_material::route(&state, request, Some(&peer))
        .await?
        .encode())
}

async fn update(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    authenticate(&state, &peer, &headers)?;
    let room = room_param(&room)?.to_string();
    let request = UpdateRequest::decode(&body)?;
    let response =
        tokio::task::spawn_blocking(move || hub::update(&state, &room, request.bundle)).await??;
    Ok(response.encode())
}

async fn submit(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    let room = room_param(&room)?.to_string();
    let request = SubmitMessageRequest::decode(&body)?;
    // FED-010: a follower submits only for its own users.
    let sender = request
        .sending_uri
        .to_mimi()
        .map_err(|e| ApiError::bad_request(format!("bad sendingUri: {e}")))?;
    if sender.domain() != peer {
        return Err(ApiError::forbidden(format!(
            "{peer} cannot submit for {sender}"
        )));
    }
    let response = hub::submit(&state, &room, request).await?;
    Ok(response.encode())
}

async fn notify(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    let room = room_param(&room)?;
    let room_domain = room.domain().to_owned();
    let room = room.to_string();
    follower::notify(&state, &peer, &room, &room_domain, &body).await?;
    Ok(StatusCode::CREATED)
}

/// `POST /groupInfo` (draft §5.5): for a new client of a participant.
async fn group_info(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    let room = room_param(&room)?.to_string();
    let request = GroupInfoRequest::decode(&body)?;
    let response =
        tokio::task::spawn_blocking(move || hub::group_info(&state, &room, &request, &peer))
            .await??;
    Ok(response.encode())
}

/// `GET /v1/assets/{id}`: a peer (typically a hub proxying for its followers) fetches one of our
/// assets; they are ciphertext, readable by any authenticated provider.
async fn asset(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Vec<u8>, ApiError> {
    authenticate(&state, &peer, &headers)?;
    crate::assets::local(&state, &id).await
}

/// `GET /v1/proxyDownload/{downloadUrl}` (draft §5.9): the hub fetches an asset for a peer.
async fn proxy_download(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(url): Path<String>,
) -> Result<Vec<u8>, ApiError> {
    authenticate(&state, &peer, &headers)?;
    crate::assets::proxy(&state, &url).await
}

/// `GET /v1/ratchetTree/{room}/{epoch}` (IN-SERVER-11): a tree this hub published in place of
/// copying it into a Welcome, for a peer with a member in the room.
async fn ratchet_tree(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(path): Path<String>,
) -> Result<Vec<u8>, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    crate::ratchet_tree::serve_peer(&state, &peer, &path).await
}
