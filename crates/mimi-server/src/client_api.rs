//! The API between this provider and its own clients (provider-internal, not specified by the
//! drafts; our design is in docs/client-api.md). Clients authenticate with a bearer token from
//! registration; MLS and MIMI bodies travel as their TLS-PL bytes, the rest as JSON.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use mimi_identity::Validity;
use mimi_protocol::{
    GroupInfoRequest, GroupInfoResponse, IdentifierUri, KeyMaterialRequest, MimiUri, MlsMessage,
    Protocol, Sender, SubmitMessageRequest, SubmitMessageResponse, UpdateOutcome, UpdateRequest,
    UpdateRoomResponse, Wire,
};
use mimi_store::Client;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::error::ApiError;
use crate::state::{AppState, now_secs};
use crate::{hub, key_material};

/// The client routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/client/v1/info", get(info))
        .route("/client/v1/register", post(register))
        .route("/client/v1/key-packages", post(upload_key_packages))
        .route("/client/v1/rooms", post(create_room))
        .route("/client/v1/key-material", post(key_material_handler))
        .route("/client/v1/update/{*room}", post(update))
        .route("/client/v1/group-info/{*room}", post(group_info))
        .route("/client/v1/submit/{*room}", post(submit))
        .route("/client/v1/assets", post(upload_asset))
        .route("/client/v1/download", get(download))
        .route("/client/v1/ratchet-tree", get(ratchet_tree))
        .route("/client/v1/inbox", get(inbox))
        .route("/client/v1/inbox/ack", post(ack))
        .route("/client/v1/unsubscribe", post(unsubscribe))
}

#[derive(Serialize)]
struct Info {
    domain: String,
    provider_uri: String,
    hub_signature_key: String,
}

async fn info(State(state): State<Arc<AppState>>) -> Json<Info> {
    Json(Info {
        domain: state.domain().to_owned(),
        provider_uri: format!("mimi://{}", state.domain()),
        hub_signature_key: hex::encode(&state.hub_public_key),
    })
}

#[derive(Deserialize)]
struct RegisterRequest {
    user: String,
    device: String,
    signature_key: String,
}

#[derive(Serialize)]
struct Registered {
    device_uri: String,
    user_uri: String,
    token: String,
    chain: Vec<String>,
}

/// Registration is open in this development setup: anyone reaching the client API may create
/// a user name that is still free (docs/client-api.md).
async fn register(
    State(state): State<Arc<AppState>>,
    Json(request): Json<RegisterRequest>,
) -> Result<Json<Registered>, ApiError> {
    let device = MimiUri::device(state.domain(), &request.user, &request.device)
        .map_err(|e| ApiError::bad_request(format!("bad user or device name: {e}")))?;
    let user = MimiUri::user(state.domain(), &request.user)
        .map_err(|e| ApiError::bad_request(format!("bad user name: {e}")))?;
    let key = hex::decode(&request.signature_key)
        .map_err(|_| ApiError::bad_request("signature_key is not hex"))?;
    let chain = state
        .identity
        .issue_client(
            &device.to_string(),
            &key,
            Validity::one_year_from(now_secs().saturating_sub(300)),
        )
        .map_err(|e| ApiError::bad_request(format!("cannot issue credential: {e}")))?;
    let token: [u8; 32] = rand::random();
    let chain_hex: Vec<String> = chain.iter().map(hex::encode).collect();
    let stored = Client {
        device_uri: device.to_string(),
        user_name: request.user.clone(),
        chain: serde_json::to_vec(&chain_hex).map_err(ApiError::internal)?,
    };
    state
        .write(move |tx| {
            tx.ensure_user(&stored.user_name, now_secs())?;
            tx.add_client(&stored, &token, now_secs())
                .map_err(|e| match e {
                    mimi_store::StoreError::Exists(what) => {
                        ApiError::conflict(format!("{what} is already registered"))
                    }
                    other => ApiError::internal(other),
                })?;
            Ok(())
        })
        .await?;
    tracing::info!(device = %device, "client registered");
    Ok(Json(Registered {
        device_uri: device.to_string(),
        user_uri: user.to_string(),
        token: hex::encode(token),
        chain: chain_hex,
    }))
}

async fn authenticate(state: &Arc<AppState>, headers: &HeaderMap) -> Result<Client, ApiError> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| hex::decode(t.trim()).ok())
        .ok_or_else(|| ApiError::unauthorized("missing or malformed bearer token"))?;
    let key: [u8; 32] = sha2::Sha256::digest(&token).into();
    if let Some(client) = lock_known(state).get(&key) {
        return Ok(client.clone());
    }
    let s = state.clone();
    let client = tokio::task::spawn_blocking(move || s.store.read()?.client_by_token(&token))
        .await?
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::unauthorized("unknown token"))?;
    let mut known = lock_known(state);
    // Bounded: beyond this many active clients, start over rather than grow without limit.
    if known.len() >= KNOWN_CLIENTS {
        known.clear();
    }
    known.insert(key, client.clone());
    Ok(client)
}

/// Most clients remembered by token (see `AppState::known_clients`).
const KNOWN_CLIENTS: usize = 65_536;

fn lock_known(
    state: &AppState,
) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; 32], Client>> {
    // A map of facts that never change; a panic elsewhere cannot leave it half-updated.
    state
        .known_clients
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn user_uri(state: &AppState, client: &Client) -> String {
    format!("mimi://{}/u/{}", state.domain(), client.user_name)
}

#[derive(Deserialize)]
struct KeyPackageUpload {
    key_packages: Vec<String>,
}

async fn upload_key_packages(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(upload): Json<KeyPackageUpload>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let mut checked = Vec::new();
    for hex_kp in &upload.key_packages {
        let bytes =
            hex::decode(hex_kp).map_err(|_| ApiError::bad_request("key package is not hex"))?;
        let (who, kp_ref) = mimi_room::check_key_package(&state.anchor, &bytes, now_secs())
            .map_err(|e| ApiError::bad_request(format!("key package refused: {e}")))?;
        if who.device_uri != client.device_uri {
            return Err(ApiError::forbidden("key package belongs to another client"));
        }
        let not_after = mimi_protocol::KeyPackage::from_bytes(&bytes)
            .map(|kp| kp.lifetime().not_after)
            .map_err(|e| ApiError::bad_request(format!("key package: {e}")))?;
        checked.push((bytes, kp_ref, not_after));
    }
    let count = checked.len();
    state
        .write(move |tx| {
            for (bytes, kp_ref, not_after) in &checked {
                tx.add_key_package(
                    &client.device_uri,
                    &client.user_name,
                    bytes,
                    kp_ref,
                    *not_after,
                )?;
            }
            Ok(())
        })
        .await?;
    Ok(Json(serde_json::json!({ "stored": count })))
}

#[derive(Deserialize)]
struct CreateRoom {
    name: String,
    group_info: String,
    ratchet_tree: String,
}

async fn create_room(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(request): Json<CreateRoom>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let room = MimiUri::room(state.domain(), &request.name)
        .map_err(|e| ApiError::bad_request(format!("bad room name: {e}")))?
        .to_string();
    let group_info = hex::decode(&request.group_info)
        .map_err(|_| ApiError::bad_request("group_info is not hex"))?;
    let tree = hex::decode(&request.ratchet_tree)
        .map_err(|_| ApiError::bad_request("ratchet_tree is not hex"))?;
    let user = user_uri(&state, &client);
    let s = state.clone();
    let r = room.clone();
    tokio::task::spawn_blocking(move || {
        hub::create_room(&s, &client.device_uri, &user, &r, &group_info, &tree)
    })
    .await??;
    Ok(Json(serde_json::json!({ "room": room })))
}

async fn key_material_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let request = KeyMaterialRequest::decode(&body)?;
    if request.requesting_user.as_str() != user_uri(&state, &client) {
        return Err(ApiError::forbidden("requestingUser is not you"));
    }
    Ok(key_material::route(&state, request, None).await?.encode())
}

async fn update(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let room =
        MimiUri::from_path_segment(&room).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let request = UpdateRequest::decode(&body)?;
    let room_uri = room.to_string();
    let external_join =
        request.bundle.proposal_or_commit().sender() == Some(Sender::NewMemberCommit);
    let response = if room.domain() == state.domain() {
        let s = state.clone();
        let r = room_uri.clone();
        tokio::task::spawn_blocking(move || hub::update(&s, &r, request.bundle)).await??
    } else {
        let path = format!("/v1/update/{}", room.to_path_segment());
        let answer = state
            .peers
            .relay_post(room.domain(), &path, body.to_vec())
            .await?;
        UpdateRoomResponse::decode(&answer)
            .map_err(|e| ApiError::bad_gateway(format!("hub sent a malformed answer: {e}")))?
    };
    // A client that joined by external commit receives the room's fan-out from now on.
    if external_join && matches!(response.outcome, UpdateOutcome::Success { .. }) {
        state
            .write(move |tx| Ok(tx.subscribe(&room_uri, &client.device_uri)?))
            .await?;
    }
    Ok(response.encode())
}

async fn group_info(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let room =
        MimiUri::from_path_segment(&room).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let request = GroupInfoRequest::decode(&body)?;
    let who = mimi_room::verify_credential(
        &state.anchor,
        &request.requesting_credential.encode(),
        &request.requesting_signature_key.0,
        now_secs(),
    )
    .map_err(|e| ApiError::forbidden(format!("credential: {e}")))?;
    if who.device_uri != client.device_uri {
        return Err(ApiError::forbidden("the request names another client"));
    }
    if room.domain() == state.domain() {
        let room_uri = room.to_string();
        let response = tokio::task::spawn_blocking(move || {
            let domain = state.domain().to_owned();
            hub::group_info(&state, &room_uri, &request, &domain)
        })
        .await??;
        return Ok(response.encode());
    }
    let path = format!("/v1/groupInfo/{}", room.to_path_segment());
    let answer = state
        .peers
        .relay_post(room.domain(), &path, body.to_vec())
        .await?;
    GroupInfoResponse::decode(&answer)
        .map_err(|e| ApiError::bad_gateway(format!("hub sent a malformed answer: {e}")))?;
    Ok(answer)
}

async fn submit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let room =
        MimiUri::from_path_segment(&room).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let request = SubmitMessageRequest {
        protocol: Protocol::Mls10,
        app_message: MlsMessage::from_bytes(&body)?,
        sending_uri: IdentifierUri::new(user_uri(&state, &client)),
    };
    let room_uri = room.to_string();
    if room.domain() == state.domain() {
        let response = hub::submit(&state, &room_uri, request).await?;
        return Ok(response.encode());
    }
    let path = format!("/v1/submitMessage/{}", room.to_path_segment());
    let answer = state
        .peers
        .relay_post(room.domain(), &path, request.encode())
        .await?;
    SubmitMessageResponse::decode(&answer)
        .map_err(|e| ApiError::bad_gateway(format!("hub sent a malformed answer: {e}")))?;
    Ok(answer)
}

#[derive(Deserialize)]
struct InboxQuery {
    #[serde(default)]
    after: i64,
    /// Long poll: how long to wait for an entry when there is none yet, milliseconds.
    #[serde(default)]
    wait_ms: u64,
}

#[derive(Serialize)]
struct InboxEntry {
    id: i64,
    room: String,
    body: String,
}

/// Most entries returned by one inbox read; clients page with `after`.
const INBOX_PAGE: usize = 256;
/// Longest long poll, milliseconds: short enough that proxies and client timeouts in between
/// keep the request alive, long enough that an idle client asks only twice a minute.
const MAX_INBOX_WAIT_MS: u64 = 30_000;

/// Answers at once if anything is pending. Otherwise, with `wait_ms`, waits until a commit that
/// added inbox entries (anywhere on this provider) brings one for this client, or the time is
/// up, and answers what there is then (possibly nothing).
async fn inbox(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<InboxQuery>,
) -> Result<Json<Vec<InboxEntry>>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(query.wait_ms.min(MAX_INBOX_WAIT_MS));
    let mut wake = state.inbox_wake.subscribe();
    let items = loop {
        // Mark the current commit count seen before reading: a commit after this point
        // wakes us, and one before it is visible to the read.
        wake.borrow_and_update();
        let s = state.clone();
        let device = client.device_uri.clone();
        let items = tokio::task::spawn_blocking(move || {
            s.store.read()?.inbox(&device, query.after, INBOX_PAGE)
        })
        .await??;
        if !items.is_empty() {
            break items;
        }
        match tokio::time::timeout_at(deadline, wake.changed()).await {
            Ok(Ok(())) => continue,
            // Time is up, or the state is going away: answer that there is nothing.
            Ok(Err(_)) | Err(_) => break items,
        }
    };
    Ok(Json(
        items
            .into_iter()
            .map(|i| InboxEntry {
                id: i.id,
                room: i.room_uri,
                body: to_hex(&i.body),
            })
            .collect(),
    ))
}

/// Lowercase hex, written a byte at a time. `hex::encode` builds its string from `char`s, which
/// costs several times more, and the inbox answer hex-encodes every message it carries.
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
    // Only ASCII digits were written.
    String::from_utf8(out).unwrap_or_default()
}

#[derive(Deserialize)]
struct Ack {
    up_to: i64,
}

async fn ack(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(ack): Json<Ack>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    state
        .write(move |tx| Ok(tx.ack_inbox(&client.device_uri, ack.up_to)?))
        .await?;
    Ok(Json(serde_json::json!({})))
}

#[derive(Deserialize)]
struct Unsubscribe {
    room: String,
}

async fn unsubscribe(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(request): Json<Unsubscribe>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    state
        .write(move |tx| Ok(tx.unsubscribe(&request.room, &client.device_uri)?))
        .await?;
    Ok(Json(serde_json::json!({})))
}

async fn upload_asset(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let url = crate::assets::upload(&state, client.device_uri, body.to_vec()).await?;
    Ok(Json(serde_json::json!({ "url": url })))
}

#[derive(Deserialize)]
struct DownloadQuery {
    room: String,
    url: String,
}

/// Downloads an asset for a local client: ours directly, others through the room's hub
/// (`proxyDownload`), so the asset's host never learns who downloads (draft §5.9).
async fn download(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<DownloadQuery>,
) -> Result<Vec<u8>, ApiError> {
    authenticate(&state, &headers).await?;
    let (domain, id) = crate::assets::parse_url(&query.url)?;
    if domain == state.domain() {
        return crate::assets::local(&state, &id).await;
    }
    let room: MimiUri = query
        .room
        .parse()
        .map_err(|e| ApiError::bad_request(format!("bad room: {e}")))?;
    if room.domain() == state.domain() {
        return crate::assets::proxy(&state, &query.url).await;
    }
    let path = format!(
        "/v1/proxyDownload/{}",
        mimi_protocol::percent_encode(&query.url)
    );
    state.peers.relay_get(room.domain(), &path).await
}

#[derive(Deserialize)]
struct TreeQuery {
    url: String,
}

/// Fetches a ratchet tree a Welcome named by URL (IN-SERVER-11): from our own store when we are
/// the hub, otherwise from that hub over mutual TLS, so the hub sees only this provider.
async fn ratchet_tree(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<TreeQuery>,
) -> Result<Vec<u8>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    crate::ratchet_tree::fetch_for_client(&state, &client.device_uri, &query.url).await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    use super::*;
    use crate::state::tests::test_state;

    const ROOM: &str = "mimi://a.example/r/x";

    #[test]
    fn to_hex_matches_the_hex_crate() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(to_hex(&bytes), hex::encode(&bytes));
        assert_eq!(to_hex(&[]), "");
    }

    async fn call(state: &Arc<AppState>, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        let response = routes()
            .with_state(state.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, body.to_vec())
    }

    /// Registers alice's device and subscribes it to `ROOM`; returns its bearer token.
    async fn alice(state: &Arc<AppState>) -> String {
        let request = Request::post("/client/v1/register")
            .header("content-type", "application/json")
            .body(Body::from(
                serde_json::json!({"user": "alice", "device": "1", "signature_key": hex::encode([7u8; 32])})
                    .to_string(),
            ))
            .unwrap();
        let (status, body) = call(state, request).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let registered: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let device = registered["device_uri"].as_str().unwrap().to_owned();
        state
            .write(move |tx| Ok(tx.subscribe(ROOM, &device)?))
            .await
            .unwrap();
        registered["token"].as_str().unwrap().to_owned()
    }

    async fn inbox(state: &Arc<AppState>, token: &str, query: &str) -> Vec<serde_json::Value> {
        let request = Request::get(format!("/client/v1/inbox?{query}"))
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let (status, body) = call(state, request).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn long_poll_wakes_up_when_a_message_for_the_client_is_committed() {
        let (_dir, state) = test_state();
        let token = alice(&state).await;
        let waiting = tokio::spawn({
            let (state, token) = (state.clone(), token.clone());
            async move { inbox(&state, &token, "after=0&wait_ms=30000").await }
        });
        // Give the request time to start waiting; if it has not yet, it finds the entry at once,
        // and the test still holds.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        state
            .write(|tx| Ok(tx.append_room_log(ROOM, b"hello", 0)?))
            .await
            .unwrap();
        // Had the wake-up failed, the poll would answer empty after 30 s.
        let entries = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("the long poll answered")
            .unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["body"], hex::encode(b"hello"));
        assert_eq!(entries[0]["room"], ROOM);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn long_poll_answers_empty_when_the_wait_is_over_and_at_once_without_wait() {
        let (_dir, state) = test_state();
        let token = alice(&state).await;
        assert!(inbox(&state, &token, "after=0").await.is_empty());
        // Another device's traffic wakes the poll but does not end it.
        let waiting = tokio::spawn({
            let (state, token) = (state.clone(), token.clone());
            async move { inbox(&state, &token, "after=0&wait_ms=300").await }
        });
        state
            .write(|tx| {
                Ok(tx.deliver(
                    "mimi://a.example/d/bob/1",
                    "mimi://a.example/r/y",
                    b"not alice's",
                    0,
                )?)
            })
            .await
            .unwrap();
        assert!(waiting.await.unwrap().is_empty());
        state
            .write(|tx| Ok(tx.append_room_log(ROOM, b"m", 0)?))
            .await
            .unwrap();
        assert_eq!(inbox(&state, &token, "after=0&wait_ms=300").await.len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn malformed_wait_is_refused() {
        let (_dir, state) = test_state();
        let token = alice(&state).await;
        let request = Request::get("/client/v1/inbox?after=0&wait_ms=-5")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&state, request).await.0, StatusCode::BAD_REQUEST);
    }
}
