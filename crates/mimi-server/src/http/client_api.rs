//! The API between this provider and its own clients (provider-internal, not specified by the
//! drafts; our design is in docs/client-api.md). Clients authenticate with a bearer token from
//! registration; MLS and MIMI bodies travel as their TLS-PL bytes, the rest as JSON.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse as _;
use axum::routing::{get, post};
use mimi_identity::Validity;
use mimi_protocol::client_api::{
    AckRequest, AssetStored, ConsentActionRequest, ConsentList, ConsentModeRequest,
    CreateRoomRequest, DiscoveryClaimRequest, DiscoveryClaims, DiscoveryPublishRequest,
    DiscoveryVerifyRequest, INBOX_BINARY, InboxEntry, InboxEntryJson, InboxPage, KeyPackageUpload,
    KeyPackagesStored, ProfileChange, ProfileView, ProviderInfo, RegisterRequest, Registered,
    RoomCreated, UnsubscribeRequest,
};
use mimi_protocol::{
    GroupInfoRequest, GroupInfoResponse, IdentifierUri, KeyMaterialRequest, MimiUri, MlsMessage,
    Protocol, Sender, SubmitMessageRequest, SubmitMessageResponse, UpdateOutcome, UpdateRequest,
    UpdateRoomResponse, Wire,
};
use mimi_store::Client;
use serde::Deserialize;
use sha2::Digest as _;

use crate::discovery::Endpoint;
use crate::error::ApiError;
use crate::http::serve::ClientAddress;
use crate::hub::Hub;
use crate::key_material;
use crate::state::{AppState, now_secs};
use crate::upstream::{self, Route, Target};

/// The client routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/client/v1/info", get(info))
        .route("/client/v1/register", post(register))
        .route("/client/v1/key-packages", post(upload_key_packages))
        .route("/client/v1/rooms", post(create_room))
        .route("/client/v1/key-material", post(key_material_handler))
        .route("/client/v1/consent", get(consent_list).post(consent_action))
        .route("/client/v1/consent/mode", post(consent_mode))
        .route("/client/v1/profile", get(profile_view).post(profile_change))
        .route(
            "/client/v1/identifier-query/{domain}",
            post(identifier_query),
        )
        .route("/client/v1/update/{*room}", post(update))
        .route("/client/v1/group-info/{*room}", post(group_info))
        .route("/client/v1/submit/{*room}", post(submit))
        .route("/client/v1/knock/{*room}", post(knock))
        .route("/client/v1/devices/remove", post(remove_device))
        .route("/client/v1/account/delete", post(delete_account))
        .route("/client/v1/report/{*room}", post(report_abuse))
        .route("/client/v1/assets", post(upload_asset))
        .route("/client/v1/download", get(download))
        .route("/client/v1/ratchet-tree", get(ratchet_tree))
        .route("/client/v1/inbox", get(inbox))
        .route("/client/v1/inbox/ack", post(ack))
        .route("/client/v1/unsubscribe", post(unsubscribe))
        .route("/client/v1/discovery", get(discovery_claims))
        .route("/client/v1/discovery/claim", post(discovery_claim))
        .route("/client/v1/discovery/verify", post(discovery_verify))
        .route("/client/v1/discovery/publish", post(discovery_publish))
        .route("/client/v1/discovery/remove", post(discovery_remove))
        .route("/client/v1/discovery/providers", get(discovery_providers))
        .route("/client/v1/ohttp/keys/{domain}", get(ohttp_keys))
        .route("/client/v1/ohttp/relay/{domain}", post(ohttp_relay))
        .route("/client/v1/tokens/key", get(token_key))
        .route("/client/v1/tokens", post(tokens))
}

async fn info(State(state): State<Arc<AppState>>) -> Json<ProviderInfo> {
    Json(ProviderInfo {
        domain: state.domain().to_owned(),
        provider_uri: format!("mimi://{}", state.domain()),
        hub_signature_key: hex::encode(&state.hub_public_key),
    })
}

/// The replay window: how far, in seconds, a registration's signed timestamp may be from our
/// clock, either way. It bounds how long a captured registration that never reached us could
/// be played back (one that did reach us meets the 409 of an existing device), and five
/// minutes still lets through the clock skew of ordinary devices.
const REGISTRATION_WINDOW_SECS: u64 = 300;

/// Longest user or device name, bytes (IN-SERVER-13): enough for any handle people type, short
/// enough to keep URIs, certificates and error messages small.
const MAX_NAME_LEN: usize = 64;

/// Registration is open in this development setup: anyone reaching the client API may create
/// a user name that is still free (docs/client-api.md). The client must prove that it holds
/// the signature key it asks us to vouch for, names must be canonical (IN-SERVER-13), and a
/// refused registration creates nothing.
async fn register(
    State(state): State<Arc<AppState>>,
    address: Option<Extension<ClientAddress>>,
    Json(request): Json<RegisterRequest>,
) -> Result<Json<Registered>, ApiError> {
    // REG-007: every attempt counts against its source address, before any work.
    if let Some(Extension(ClientAddress(Some(key)))) = address {
        state
            .registrations
            .take(&format!("{key:?}"), std::time::Instant::now())
            .map_err(|wait| {
                ApiError::too_many_requests(
                    "too many registrations from this address; try again later",
                    wait.as_secs(),
                )
            })?;
    }
    // REG-001: one canonical form per name, so no two accounts differ only by case.
    check_canonical_name("user", &request.user)?;
    check_canonical_name("device", &request.device)?;
    let device = MimiUri::device(state.domain(), &request.user, &request.device)
        .map_err(|e| ApiError::bad_request(format!("bad user or device name: {e}")))?;
    let user = MimiUri::user(state.domain(), &request.user)
        .map_err(|e| ApiError::bad_request(format!("bad user name: {e}")))?;
    let key = hex::decode(&request.signature_key)
        .map_err(|_| ApiError::bad_request("signature_key is not hex"))?;
    let proof = request.proof.as_deref().ok_or_else(|| {
        ApiError::bad_request("proof is missing: sign the registration with signature_key")
    })?;
    let proof = hex::decode(proof).map_err(|_| ApiError::bad_request("proof is not hex"))?;
    let timestamp = request
        .timestamp
        .ok_or_else(|| ApiError::bad_request("timestamp is missing"))?;
    // REG-003: the replay window.
    let now = now_secs();
    if timestamp.abs_diff(now) > REGISTRATION_WINDOW_SECS {
        return Err(ApiError::bad_request(format!(
            "timestamp {timestamp} is more than {REGISTRATION_WINDOW_SECS} s from the \
             provider's clock ({now})"
        )));
    }
    let s = state.clone();
    let (user_name, device_name, device_uri) = (
        request.user.clone(),
        request.device.clone(),
        device.to_string(),
    );
    // Point decoding, signature verification and certificate signing are CPU work.
    let chain = tokio::task::spawn_blocking(move || {
        // REG-004 (IDN-006) before the proof: a small-order key can make a forged proof verify.
        mimi_identity::check_signature_key(&key)
            .map_err(|e| ApiError::bad_request(format!("signature_key refused: {e}")))?;
        // REG-002: proof of possession, bound to this provider, the names, key and time.
        mimi_room::Registration {
            domain: s.domain(),
            user: &user_name,
            device: &device_name,
            signature_key: &key,
            timestamp,
        }
        .verify(&proof)
        .map_err(|_| {
            ApiError::bad_request(
                "proof does not verify: it must sign this registration with signature_key",
            )
        })?;
        s.identity
            .issue_client(
                &device_uri,
                &key,
                Validity::one_year_from(now.saturating_sub(300)),
            )
            .map_err(|e| ApiError::bad_request(format!("cannot issue credential: {e}")))
    })
    .await??;
    let token: [u8; 32] = rand::random();
    let chain_hex: Vec<String> = chain.iter().map(hex::encode).collect();
    let stored = Client {
        device_uri: device.to_string(),
        user_name: request.user.clone(),
        chain: serde_json::to_vec(&chain_hex).map_err(ApiError::internal)?,
    };
    state
        .write(move |tx| {
            // REG-005: a name stored by an earlier build in another case blocks this one.
            if let Some(existing) = tx.user_case_variant(&stored.user_name)? {
                return Err(ApiError::conflict(format!(
                    "user name {} is taken: {existing} differs only by case",
                    stored.user_name
                )));
            }
            if let Some(existing) = tx.client_case_variant(&stored.device_uri)? {
                return Err(ApiError::conflict(format!(
                    "{} is taken: {existing} differs only by case",
                    stored.device_uri
                )));
            }
            tx.ensure_user(&stored.user_name, now_secs())?;
            tx.add_client(&stored, &token, now_secs())?;
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

/// Refuses a user or device name that is not in canonical form (IN-SERVER-13): 1 to
/// [`MAX_NAME_LEN`] bytes of `a-z`, `0-9`, `.`, `_` and `-`, starting and ending with a letter
/// or digit. Nothing is folded: a name in another form is refused, with the canonical
/// spelling when only its case is wrong.
fn check_canonical_name(kind: &str, name: &str) -> Result<(), ApiError> {
    if is_canonical_name(name) {
        return Ok(());
    }
    if name.is_empty() {
        return Err(ApiError::bad_request(format!("{kind} name is empty")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ApiError::bad_request(format!(
            "{kind} name is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    let lower = name.to_ascii_lowercase();
    if is_canonical_name(&lower) {
        return Err(ApiError::bad_request(format!(
            "{kind} names are lowercase: try {lower}"
        )));
    }
    Err(ApiError::bad_request(format!(
        "{kind} name {name:?} is not canonical: use a-z, 0-9, '.', '_' and '-', starting and \
         ending with a letter or digit"
    )))
}

fn is_canonical_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (1..=MAX_NAME_LEN).contains(&bytes.len())
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes
            .iter()
            .all(|b| edge(b) || matches!(b, b'.' | b'_' | b'-'))
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

async fn upload_key_packages(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(upload): Json<KeyPackageUpload>,
) -> Result<Json<KeyPackagesStored>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let issued: Vec<String> = serde_json::from_slice(&client.chain).map_err(ApiError::internal)?;
    let issued = issued
        .iter()
        .map(hex::decode)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    let s = state.clone();
    let device_uri = client.device_uri.clone();
    // Signature and certificate checks are CPU work; all of them pass before anything is stored.
    let checked = tokio::task::spawn_blocking(move || {
        let mut checked = Vec::new();
        for hex_kp in &upload.key_packages {
            let bytes =
                hex::decode(hex_kp).map_err(|_| ApiError::bad_request("key package is not hex"))?;
            let (who, kp_ref) = mimi_room::check_key_package(&s.anchor, &bytes, now_secs())
                .map_err(|e| ApiError::bad_request(format!("key package refused: {e}")))?;
            if who.device_uri != device_uri {
                return Err(ApiError::forbidden("key package belongs to another client"));
            }
            let package = mimi_protocol::KeyPackage::from_bytes(&bytes)
                .map_err(|e| ApiError::bad_request(format!("key package: {e}")))?;
            // REG-006: the credential is the one issued at registration. Its certificate binds
            // the registered key, and `check_key_package` checked that the leaf's signature key
            // is the certificate's, so the leaf signs with the registered key too.
            let own = matches!(
                package.credential(),
                mimi_protocol::Credential::X509 { certificates } if *certificates == issued
            );
            if !own {
                return Err(ApiError::bad_request(
                    "key package refused: its credential and signature key are not the ones \
                     registered for this client",
                ));
            }
            let last_resort = package.is_last_resort();
            checked.push((bytes, kp_ref, package.lifetime().not_after, last_resort));
        }
        Ok::<_, ApiError>(checked)
    })
    .await??;
    let count = checked.len();
    state
        .write(move |tx| {
            for (bytes, kp_ref, not_after, last_resort) in &checked {
                tx.add_key_package(
                    &client.device_uri,
                    &client.user_name,
                    bytes,
                    kp_ref,
                    *not_after,
                    *last_resort,
                )?;
            }
            Ok(())
        })
        .await?;
    Ok(Json(KeyPackagesStored { stored: count }))
}

async fn create_room(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(request): Json<CreateRoomRequest>,
) -> Result<Json<RoomCreated>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let room = MimiUri::room(state.domain(), &request.name)
        .map_err(|e| ApiError::bad_request(format!("bad room name: {e}")))?
        .to_string();
    let group_info = hex::decode(&request.group_info)
        .map_err(|_| ApiError::bad_request("group_info is not hex"))?;
    let tree = hex::decode(&request.ratchet_tree)
        .map_err(|_| ApiError::bad_request("ratchet_tree is not hex"))?;
    let user = user_uri(&state, &client);
    Hub::create_room(&state, &client.device_uri, &user, &room, group_info, tree).await?;
    Ok(Json(RoomCreated { room }))
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

/// `GET /client/v1/consent`: our consent mode and every scope we are part of.
async fn consent_list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<ConsentList>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    Ok(Json(crate::consent::list(&state, client.user_name).await?))
}

/// `POST /client/v1/consent`: request, cancel, grant, deny or revoke; answers the new list.
async fn consent_action(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(action): Json<ConsentActionRequest>,
) -> Result<Json<ConsentList>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    crate::consent::act(&state, client.user_name.clone(), action).await?;
    Ok(Json(crate::consent::list(&state, client.user_name).await?))
}

/// `POST /client/v1/consent/mode`: who may fetch our KeyPackages without a grant; answers
/// the new list.
async fn consent_mode(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(request): Json<ConsentModeRequest>,
) -> Result<Json<ConsentList>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    crate::consent::set_mode(&state, client.user_name.clone(), &request.mode).await?;
    Ok(Json(crate::consent::list(&state, client.user_name).await?))
}

/// `GET /client/v1/profile`: our profile fields and which of them are searchable.
async fn profile_view(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<ProfileView>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    Ok(Json(crate::profile::view(&state, client.user_name).await?))
}

/// `POST /client/v1/profile`: set or clear a field, or make it searchable or not; answers the
/// new profile.
async fn profile_change(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(change): Json<ProfileChange>,
) -> Result<Json<ProfileView>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    crate::profile::change(&state, client.user_name.clone(), change).await?;
    Ok(Json(crate::profile::view(&state, client.user_name).await?))
}

/// `POST /client/v1/identifier-query/{domain}`: an `IdentifierRequest` for the users of
/// `domain`, answered here or by that provider; answers its `IdentifierResponse`.
async fn identifier_query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    crate::identifier_query::from_client(&state, &client.user_name, &domain, &body).await
}

async fn update(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let room = super::room_in_path(&room)?;
    let request = UpdateRequest::decode(&body)?;
    let room_uri = room.to_string();
    let external_join =
        request.bundle.proposal_or_commit().sender() == Some(Sender::NewMemberCommit);
    let response = match upstream::route(state.domain(), &room) {
        // A local joiner is subscribed by the hub, in the transaction that fans its commit out.
        Route::Local => Hub::update(&state, &room_uri, request.bundle, None).await?,
        Route::Hub(hub) => {
            // A joiner is subscribed before its commit goes to the hub, whose fan-out of it
            // (with any proposals stapled to it) may come back before the answer does; a
            // refusal withdraws the subscription.
            let device = client.device_uri.clone();
            let (uri, dev) = (room_uri.clone(), device.clone());
            let subscribed = if external_join {
                state
                    .write(move |tx| Ok(tx.subscribe_if_new(&uri, &dev)?))
                    .await?
            } else {
                false
            };
            let target = Target::about(Endpoint::Update, &room);
            // Not a member yet: the follower must not take it for a removed client meanwhile.
            let key = (room_uri.clone(), device.clone());
            if external_join && let Ok(mut joining) = state.joining.lock() {
                joining.insert(key.clone());
            }
            let relayed: Result<(UpdateRoomResponse, _), ApiError> = state
                .peers
                .relay_post_checked(hub, &target, body.to_vec())
                .await;
            if external_join && let Ok(mut joining) = state.joining.lock() {
                joining.remove(&key);
            }
            // Only a definite refusal: after a lost answer the hub may have accepted the join.
            let refused = matches!(
                &relayed,
                Ok((r, _)) if !matches!(r.outcome, UpdateOutcome::Success { .. })
            );
            if subscribed && refused {
                state
                    .write(move |tx| Ok(tx.withdraw_subscription(&room_uri, &device)?))
                    .await?;
            }
            relayed?.0
        }
    };
    Ok(response.encode())
}

async fn group_info(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let room = super::room_in_path(&room)?;
    let request = GroupInfoRequest::decode(&body)?;
    let (s, credential, key) = (
        state.clone(),
        request.requesting_credential.encode(),
        request.requesting_signature_key.0.clone(),
    );
    // The chain check is CPU work.
    let who = tokio::task::spawn_blocking(move || {
        mimi_room::verify_credential(&s.anchor, &credential, &key, now_secs())
            .map_err(|e| ApiError::forbidden(format!("credential: {e}")))
    })
    .await??;
    if who.device_uri != client.device_uri {
        return Err(ApiError::forbidden("the request names another client"));
    }
    match upstream::route(state.domain(), &room) {
        Route::Local => {
            let domain = state.domain().to_owned();
            let response = Hub::group_info(&state, &room.to_string(), request, &domain).await?;
            Ok(response.encode())
        }
        Route::Hub(hub) => {
            let target = Target::about(Endpoint::GroupInfo, &room);
            let (_, answer): (GroupInfoResponse, _) = state
                .peers
                .relay_post_checked(hub, &target, body.to_vec())
                .await?;
            Ok(answer)
        }
    }
}

async fn submit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let room = super::room_in_path(&room)?;
    let request = SubmitMessageRequest {
        protocol: Protocol::Mls10,
        app_message: MlsMessage::from_bytes(&body)?,
        sending_uri: IdentifierUri::new(user_uri(&state, &client)),
    };
    match upstream::route(state.domain(), &room) {
        Route::Local => {
            let response = Hub::submit(&state, &room.to_string(), request).await?;
            Ok(response.encode())
        }
        Route::Hub(hub) => {
            let target = Target::about(Endpoint::SubmitMessage, &room);
            let (_, answer): (SubmitMessageResponse, _) = state
                .peers
                .relay_post_checked(hub, &target, request.encode())
                .await?;
            Ok(answer)
        }
    }
}

/// A local user's abuse report (`AbuseReport` body): to our hub, or relayed to the room's hub
/// (`/reportAbuse`, draft §5.9). 201 with no body when the hub stored it.
async fn report_abuse(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<axum::http::StatusCode, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let room = super::room_in_path(&room)?;
    let report = mimi_protocol::AbuseReport::decode(&body)?;
    // RPT-006: a client reports as itself or anonymously (IN-FRANK-5).
    let me = user_uri(&state, &client);
    if !report.reporting_user.as_str().is_empty() && report.reporting_user.as_str() != me {
        return Err(ApiError::forbidden(format!(
            "{me} cannot report as {}",
            report.reporting_user
        )));
    }
    match upstream::route(state.domain(), &room) {
        Route::Local => {
            let domain = state.domain().to_owned();
            crate::hub::abuse::accept(&state, &room.to_string(), report, &domain).await?;
        }
        Route::Hub(hub) => {
            let target = Target::about(Endpoint::ReportAbuse, &room);
            state.peers.relay_post(hub, &target, body.to_vec()).await?;
        }
    }
    Ok(axum::http::StatusCode::CREATED)
}

#[derive(Deserialize)]
struct RemoveDevice {
    device: String,
}

/// Removes one of the caller's user's devices from every room it is in, and from us
/// (IN-LIFECYCLE-6); answers the rooms it was in.
async fn remove_device(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(request): Json<RemoveDevice>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let user = user_uri(&state, &client);
    let rooms = crate::devices::remove_device(&state, &user, &request.device).await?;
    Ok(Json(serde_json::json!({ "rooms": rooms })))
}

/// Deletes the caller's account: every device of its user leaves every room (their hubs propose
/// the removals) and the user goes (IN-LIFECYCLE-6); answers the rooms it was in.
async fn delete_account(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let user = user_uri(&state, &client);
    let rooms = crate::devices::delete_account(&state, &client.user_name, &user).await?;
    Ok(Json(serde_json::json!({ "rooms": rooms })))
}

/// Knocks on a room, or lists or denies its knocks, for the authenticated user (IN-LIFECYCLE-5):
/// the body is a `KnockRequest` whose `actor` is replaced by our user.
async fn knock(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let room = super::room_in_path(&room)?;
    let mut request = mimi_protocol::KnockRequest::decode(&body)?;
    request.actor = IdentifierUri::new(user_uri(&state, &client));
    match upstream::route(state.domain(), &room) {
        Route::Local => Ok(crate::knock::handle(&state, &room.to_string(), request)
            .await?
            .encode()),
        Route::Hub(hub) => {
            let target = Target::about(Endpoint::Knock, &room);
            let (_, answer): (mimi_protocol::KnockList, _) = state
                .peers
                .relay_post_checked(hub, &target, request.encode())
                .await?;
            Ok(answer)
        }
    }
}

/// `GET /client/v1/discovery`: the identifiers our user claimed.
async fn discovery_claims(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<DiscoveryClaims>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    Ok(Json(
        crate::user_discovery::claims(&state, client.user_name).await?,
    ))
}

/// `POST /client/v1/discovery/claim`: a code goes to the identifier.
async fn discovery_claim(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(request): Json<DiscoveryClaimRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    crate::user_discovery::claim(&state, client.user_name, &request.identifier).await?;
    Ok(Json(serde_json::json!({ "claimed": request.identifier })))
}

/// `POST /client/v1/discovery/verify`: the code proves the identifier.
async fn discovery_verify(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(request): Json<DiscoveryVerifyRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    crate::user_discovery::check_code(&state, client.user_name, &request.identifier, request.code)
        .await?;
    Ok(Json(serde_json::json!({ "verified": request.identifier })))
}

/// `POST /client/v1/discovery/publish`: attest, keep and pass on a record our client signed.
async fn discovery_publish(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(request): Json<DiscoveryPublishRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let record =
        hex::decode(&request.record).map_err(|_| ApiError::bad_request("record is not hex"))?;
    let tbs = mimi_protocol::MappingTbs::decode(&record)?;
    let user_signature = hex::decode(&request.user_signature)
        .map_err(|_| ApiError::bad_request("user_signature is not hex"))?;
    let issued: Vec<String> = serde_json::from_slice(&client.chain).map_err(ApiError::internal)?;
    let chain = issued
        .iter()
        .map(hex::decode)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    let user = user_uri(&state, &client);
    let published = crate::user_discovery::publish(
        &state,
        client.user_name,
        user,
        chain,
        tbs,
        user_signature,
        request.to,
    )
    .await?;
    Ok(Json(serde_json::json!({ "published_to": published })))
}

/// `POST /client/v1/discovery/remove`: withdraw a record here and where it was published.
async fn discovery_remove(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(request): Json<DiscoveryClaimRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    crate::user_discovery::remove(&state, client.user_name, &request.identifier, request.from)
        .await?;
    Ok(Json(serde_json::json!({ "removed": request.identifier })))
}

/// `GET /client/v1/discovery/providers`: the discovery providers we use.
async fn discovery_providers(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authenticate(&state, &headers).await?;
    Ok(Json(
        serde_json::json!({ "providers": state.config.discovery.providers }),
    ))
}

/// `GET /client/v1/ohttp/keys/{domain}`: a discovery provider's signed gateway keys.
async fn ohttp_keys(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(domain): Path<String>,
) -> Result<Vec<u8>, ApiError> {
    authenticate(&state, &headers).await?;
    crate::user_discovery::gateway_keys(&state, &domain).await
}

/// `GET /client/v1/tokens/key`: our token issuer key, signed.
async fn token_key(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Vec<u8>, ApiError> {
    authenticate(&state, &headers).await?;
    Ok(crate::user_discovery::own_issuer_key(&state)
        .await?
        .encode())
}

/// `POST /client/v1/tokens`: `{day, blinded: [hex]}` token requests made under our key of
/// `day`, signed blind within the caller's daily allowance; answers `{signatures: [hex]}`, as
/// many as the allowance still covers.
async fn tokens(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(request): Json<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    let blinded = request["blinded"]
        .as_array()
        .ok_or_else(|| ApiError::bad_request("blinded must be a list of hex strings"))?
        .iter()
        .map(|b| {
            b.as_str()
                .and_then(|h| hex::decode(h).ok())
                .ok_or_else(|| ApiError::bad_request("blinded must be a list of hex strings"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let day = request["day"]
        .as_u64()
        .ok_or_else(|| ApiError::bad_request("day must be the token key's day"))?;
    let signatures =
        crate::user_discovery::issue_tokens(&state, client.user_name, day, blinded).await?;
    let hexed: Vec<String> = signatures.iter().map(hex::encode).collect();
    Ok(Json(serde_json::json!({ "signatures": hexed })))
}

/// `POST /client/v1/ohttp/relay/{domain}`: a sealed lookup for `domain`'s gateway.
async fn ohttp_relay(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    authenticate(&state, &headers).await?;
    crate::user_discovery::relay_oblivious(&state, &domain, body.to_vec()).await
}

#[derive(Deserialize)]
struct InboxQuery {
    #[serde(default)]
    after: i64,
    /// Long poll: how long to wait for an entry when there is none yet, milliseconds.
    #[serde(default)]
    wait_ms: u64,
}

/// Most entries returned by one inbox read; clients page with `after`.
const INBOX_PAGE: usize = mimi_protocol::client_api::INBOX_PAGE_ENTRIES;
/// When a client refused a long poll should come back, seconds.
const LONG_POLL_RETRY_AFTER_SECS: u64 = 5;
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
) -> Result<axum::response::Response, ApiError> {
    let client = authenticate(&state, &headers).await?;
    // A waiting poll holds a connection that does nothing; past `max_long_polls` the client is
    // asked to come back later instead (docs/architecture.md, "Connections").
    let _waiting = if query.wait_ms > 0 {
        match state.long_polls.try_wait(&client.device_uri) {
            Some(place) => Some(place),
            None => {
                state
                    .connection_stats
                    .count(crate::http::Closed::LongPollRefused);
                return Err(ApiError::unavailable(
                    "too many clients waiting for messages",
                    LONG_POLL_RETRY_AFTER_SECS,
                ));
            }
        }
    } else {
        None
    };
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
    // A client that asks for binary gets an InboxPage: no hex, nothing to parse but lengths.
    let binary = headers
        .get(axum::http::header::ACCEPT)
        .is_some_and(|accept| accept.as_bytes() == INBOX_BINARY.as_bytes());
    if binary {
        let page = InboxPage {
            entries: items
                .into_iter()
                .map(|i| InboxEntry {
                    id: u64::try_from(i.id).unwrap_or(0),
                    room: i.room_uri,
                    body: i.body,
                })
                .collect(),
        };
        let headers = [(axum::http::header::CONTENT_TYPE, INBOX_BINARY)];
        return Ok((headers, page.encode()).into_response());
    }
    let entries: Vec<InboxEntryJson> = items
        .into_iter()
        .map(|i| InboxEntryJson {
            id: i.id,
            room: i.room_uri,
            body: to_hex(&i.body),
        })
        .collect();
    Ok(Json(entries).into_response())
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

async fn ack(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(ack): Json<AckRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    state
        .write(move |tx| Ok(tx.ack_inbox(&client.device_uri, ack.up_to)?))
        .await?;
    Ok(Json(serde_json::json!({})))
}

async fn unsubscribe(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(request): Json<UnsubscribeRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    state
        .write(move |tx| Ok(tx.unsubscribe(&request.room, &client.device_uri)?))
        .await?;
    Ok(Json(serde_json::json!({})))
}

/// What an upload says it is for (all optional, for older clients): the room, the asset's
/// media type and its plaintext size.
#[derive(Deserialize)]
struct UploadQuery {
    room: Option<String>,
    media_type: Option<String>,
    size: Option<u64>,
}

async fn upload_asset(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<UploadQuery>,
    body: Bytes,
) -> Result<Json<AssetStored>, ApiError> {
    let client = authenticate(&state, &headers).await?;
    if let Some(room) = &query.room {
        crate::assets::check_upload(
            &state,
            room,
            &user_uri(&state, &client),
            query.media_type.as_deref(),
            query.size,
            body.len(),
        )
        .await?;
    }
    let url =
        crate::assets::upload(&state, client.device_uri, client.user_name, body.to_vec()).await?;
    Ok(Json(AssetStored { url }))
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
    match upstream::route(state.domain(), &room) {
        Route::Local => {
            crate::assets::check_proxy(&state, &query.room).await?;
            crate::assets::proxy(&state, &query.url).await
        }
        Route::Hub(hub) => {
            let target = Target::with(
                Endpoint::ProxyDownload,
                mimi_protocol::percent_encode(&query.url),
            );
            state.peers.relay_get(hub, &target).await
        }
    }
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

    /// A client's MLS state holding one fresh signature key, and that key.
    fn new_key() -> (mimi_room::MemberState, Vec<u8>) {
        let state = mimi_room::MemberState::new();
        let key = state.generate_signature_key().unwrap();
        (state, key)
    }

    /// A registration body for `user`/`device` at a.example, signed by `signer` over `key`
    /// at `timestamp`.
    fn registration(
        signer: &mimi_room::MemberState,
        key: &[u8],
        user: &str,
        device: &str,
        timestamp: u64,
    ) -> serde_json::Value {
        let proof = mimi_room::Registration {
            domain: "a.example",
            user,
            device,
            signature_key: key,
            timestamp,
        }
        .sign(signer)
        .unwrap();
        serde_json::json!({
            "user": user,
            "device": device,
            "signature_key": hex::encode(key),
            "proof": hex::encode(proof),
            "timestamp": timestamp,
        })
    }

    async fn register_raw(state: &Arc<AppState>, body: &serde_json::Value) -> (StatusCode, String) {
        let request = Request::post("/client/v1/register")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let (status, body) = call(state, request).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Registers `user`/`device` with a valid proof; returns the answer.
    async fn register(state: &Arc<AppState>, user: &str, device: &str) -> serde_json::Value {
        let (signer, key) = new_key();
        let body = registration(&signer, &key, user, device, now_secs());
        let (status, body) = register_raw(state, &body).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Asserts that the store holds no user `user` and no client of it.
    fn assert_no_account(state: &Arc<AppState>, user: &str) {
        let store = state.store.read().unwrap();
        assert!(!store.user_exists(user).unwrap(), "user {user} was created");
        assert!(
            store.devices_of(user).unwrap().is_empty(),
            "{user} has clients"
        );
    }

    /// Registers alice's device and subscribes it to `ROOM`; returns its bearer token.
    async fn alice(state: &Arc<AppState>) -> String {
        let registered = register(state, "alice", "1").await;
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
    async fn the_inbox_answers_in_binary_to_a_client_that_asks_and_in_json_otherwise() {
        let (_dir, state) = test_state();
        let token = alice(&state).await;
        for body in [&b"hello"[..], &[0u8, 0xff][..]] {
            let body = body.to_vec();
            state
                .write(move |tx| Ok(tx.append_room_log(ROOM, &body, 0)?))
                .await
                .unwrap();
        }
        let json = inbox(&state, &token, "after=0").await;
        let request = Request::get("/client/v1/inbox?after=0")
            .header("authorization", format!("Bearer {token}"))
            .header("accept", INBOX_BINARY)
            .body(Body::empty())
            .unwrap();
        let (status, bytes) = call(&state, request).await;
        assert_eq!(status, StatusCode::OK);
        let page = InboxPage::decode(&bytes).unwrap();
        assert_eq!(page.entries.len(), 2);
        for (entry, json) in page.entries.iter().zip(&json) {
            assert_eq!(entry.id, json["id"].as_u64().unwrap());
            assert_eq!(entry.room, ROOM);
            assert_eq!(hex::encode(&entry.body), json["body"].as_str().unwrap());
        }
        assert_eq!(page.entries[0].body, b"hello");
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
    async fn a_users_attachments_stay_within_its_quota() {
        let (_dir, state) =
            crate::state::tests::test_state_with(|c| c.limits.asset_bytes_per_user = 10);
        let token = alice(&state).await;
        let upload = |len: usize| {
            let request = Request::post("/client/v1/assets")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::from(vec![7u8; len]))
                .unwrap();
            call(&state, request)
        };
        assert_eq!(upload(6).await.0, StatusCode::OK);
        let (status, body) = upload(6).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("6 bytes of your 10"), "{text}");
        assert_eq!(upload(4).await.0, StatusCode::OK, "exactly the quota");
        assert_eq!(upload(1).await.0, StatusCode::PAYLOAD_TOO_LARGE);
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn registrations_are_limited_per_source_address() {
        let (_dir, state) = crate::state::tests::test_state_with(|c| {
            c.limits.registrations_per_address_per_hour = 2
        });
        let from = |ip: &str, user: &str| {
            let (signer, key) = new_key();
            let body = registration(&signer, &key, user, "phone", now_secs());
            let mut request = Request::post("/client/v1/register")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            let key = ip.parse().ok().map(crate::http::admission::AddressKey::of);
            request.extensions_mut().insert(ClientAddress(key));
            request
        };
        for user in ["al", "bo"] {
            let (status, _) = call(&state, from("192.0.2.7", user)).await;
            assert_eq!(status, StatusCode::OK);
        }
        let response = routes()
            .with_state(state.clone())
            .oneshot(from("192.0.2.7", "cy"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=1800).contains(&retry), "{retry}");
        // Nothing was created for the refused attempt.
        assert_no_account(&state, "cy");
        // Another address, an address in another /64 of IPv6, and an exempt one still pass.
        assert_eq!(
            call(&state, from("192.0.2.8", "cy")).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(&state, from("2001:db8:0:1::1", "di")).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(&state, from("2001:db8:0:1::2", "ed")).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(&state, from("2001:db8:0:1::3", "fa")).await.0,
            StatusCode::TOO_MANY_REQUESTS,
            "the same /64"
        );
        assert_eq!(call(&state, from("exempt", "gu")).await.0, StatusCode::OK);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_registration_with_a_valid_proof_gets_a_credential_for_its_key() {
        let (_dir, state) = test_state();
        let (signer, key) = new_key();
        let body = registration(&signer, &key, "bob", "phone", now_secs());
        let (status, answer) = register_raw(&state, &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["device_uri"], "mimi://a.example/d/bob/phone");
        let chain: Vec<Vec<u8>> = answer["chain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| hex::decode(c.as_str().unwrap()).unwrap())
            .collect();
        // The credential verifies with the registered key, and with no other.
        let me = mimi_room::ClientIdentity {
            device_uri: "mimi://a.example/d/bob/phone".to_owned(),
            chain,
            signature_public_key: key.clone(),
        };
        let credential = mimi_room::credential_bytes(&me).unwrap();
        mimi_room::verify_credential(&state.anchor, &credential, &key, now_secs()).unwrap();
        let (_, other_key) = new_key();
        assert!(
            mimi_room::verify_credential(&state.anchor, &credential, &other_key, now_secs())
                .is_err()
        );
        // A second device of the same user is another registration, with its own proof.
        register(&state, "bob", "laptop").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_registration_without_proof_or_timestamp_is_refused_and_creates_nothing() {
        let (_dir, state) = test_state();
        let (signer, key) = new_key();
        let signed = registration(&signer, &key, "bob", "phone", now_secs());
        for missing in ["proof", "timestamp"] {
            let mut body = signed.clone();
            body.as_object_mut().unwrap().remove(missing);
            let (status, answer) = register_raw(&state, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            assert!(
                answer.contains(&format!("{missing} is missing")),
                "{answer}"
            );
        }
        assert_no_account(&state, "bob");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_registration_with_a_proof_that_does_not_verify_is_refused_and_creates_nothing() {
        let (_dir, state) = test_state();
        let (signer, key) = new_key();
        let (other_signer, other_key) = new_key();
        let now = now_secs();
        // Signed by another key; signed for other names; signed at another time; not hex.
        let by_other_key = {
            let mut body = registration(&other_signer, &other_key, "bob", "phone", now);
            body["signature_key"] = hex::encode(&key).into();
            body
        };
        let for_other_user = {
            let mut body = registration(&signer, &key, "carol", "phone", now);
            body["user"] = "bob".into();
            body
        };
        let at_other_time = {
            let mut body = registration(&signer, &key, "bob", "phone", now);
            body["timestamp"] = (now - 1).into();
            body
        };
        let not_hex = {
            let mut body = registration(&signer, &key, "bob", "phone", now);
            body["proof"] = "zz".into();
            body
        };
        for body in [by_other_key, for_other_user, at_other_time, not_hex] {
            let (status, answer) = register_raw(&state, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
            assert!(answer.contains("proof"), "{answer}");
        }
        assert_no_account(&state, "bob");
        // The good one still goes through afterwards.
        let (status, answer) =
            register_raw(&state, &registration(&signer, &key, "bob", "phone", now)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_registration_outside_the_replay_window_is_refused_and_creates_nothing() {
        let (_dir, state) = test_state();
        let (signer, key) = new_key();
        let now = now_secs();
        for timestamp in [
            now - REGISTRATION_WINDOW_SECS - 5,
            now + REGISTRATION_WINDOW_SECS + 5,
            0,
        ] {
            let body = registration(&signer, &key, "bob", "phone", timestamp);
            let (status, answer) = register_raw(&state, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            assert!(answer.contains("from the provider's clock"), "{answer}");
        }
        assert_no_account(&state, "bob");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_registration_of_a_small_order_or_invalid_key_is_refused_and_creates_nothing() {
        let (_dir, state) = test_state();
        let mut identity = [0u8; 32];
        identity[0] = 1;
        // R = the identity point and S = 0: under the identity key this verifies for every
        // message (and under the all-zero key for a quarter of them), which is why the key is
        // checked before the proof.
        let mut forgery = [0u8; 64];
        forgery[0] = 1;
        for key in [[0u8; 32], identity, [7u8; 32]] {
            let body = serde_json::json!({
                "user": "bob",
                "device": "phone",
                "signature_key": hex::encode(key),
                "proof": hex::encode(forgery),
                "timestamp": now_secs(),
            });
            let (status, answer) = register_raw(&state, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            assert!(answer.contains("signature_key refused"), "{answer}");
        }
        assert_no_account(&state, "bob");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_name_in_another_case_than_an_existing_one_is_refused_and_creates_nothing() {
        let (_dir, state) = test_state();
        register(&state, "alice", "phone").await;
        let (signer, key) = new_key();
        let body = registration(&signer, &key, "ALICE", "phone", now_secs());
        let (status, answer) = register_raw(&state, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer.trim(), "user names are lowercase: try alice");
        assert_no_account(&state, "ALICE");
        let devices = state.store.read().unwrap().devices_of("alice").unwrap();
        assert_eq!(devices, ["mimi://a.example/d/alice/phone"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_name_stored_by_an_earlier_build_blocks_its_case_variants() {
        let (_dir, state) = test_state();
        // What a build before canonical names could have stored.
        state
            .write(|tx| {
                tx.ensure_user("ALICE", 0)?;
                tx.add_client(
                    &Client {
                        device_uri: "mimi://a.example/d/ALICE/Phone".to_owned(),
                        user_name: "ALICE".to_owned(),
                        chain: b"[]".to_vec(),
                    },
                    b"old token",
                    0,
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let (signer, key) = new_key();
        let body = registration(&signer, &key, "alice", "phone", now_secs());
        let (status, answer) = register_raw(&state, &body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{answer}");
        assert!(answer.contains("differs only by case"), "{answer}");
        assert_no_account(&state, "alice");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn names_outside_the_canonical_form_are_refused_and_create_nothing() {
        let (_dir, state) = test_state();
        let (signer, key) = new_key();
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for (user, device) in [
            ("", "phone"),
            ("-bob", "phone"),
            ("bob.", "phone"),
            ("b~ob", "phone"),
            ("b%C3%B6b", "phone"),
            ("böb", "phone"),
            ("bob", "Phone"),
            ("bob", ".."),
            (long.as_str(), "phone"),
        ] {
            let body = registration(&signer, &key, user, device, now_secs());
            let (status, answer) = register_raw(&state, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{user}/{device}: {answer}");
            assert!(answer.contains("name"), "{answer}");
        }
        assert_no_account(&state, "bob");
        let longest = "a".repeat(MAX_NAME_LEN);
        for name in ["bob", "b0b.smith_2-x", "7", longest.as_str()] {
            register(&state, name, "phone").await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn key_packages_must_carry_the_credential_and_key_registered_for_the_client() {
        let (_dir, state) = test_state();
        let (signer, key) = new_key();
        let body = registration(&signer, &key, "bob", "phone", now_secs());
        let (status, answer) = register_raw(&state, &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        let token = answer["token"].as_str().unwrap().to_owned();
        let device_uri = answer["device_uri"].as_str().unwrap().to_owned();
        let chain: Vec<Vec<u8>> = answer["chain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| hex::decode(c.as_str().unwrap()).unwrap())
            .collect();
        // Another key, vouched for by this same provider under bob's device URI (as a build
        // that issued before storing could have done): valid, but not what was registered.
        let (other, other_key) = new_key();
        let other_chain = state
            .identity
            .issue_client(
                &device_uri,
                &other_key,
                Validity::one_year_from(now_secs() - 60),
            )
            .unwrap();
        let upload = |packages: Vec<Vec<u8>>| {
            Request::post("/client/v1/key-packages")
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::from(
                    serde_json::json!({
                        "key_packages": packages.iter().map(hex::encode).collect::<Vec<_>>()
                    })
                    .to_string(),
                ))
                .unwrap()
        };
        let own = signer
            .key_packages(
                &mimi_room::ClientIdentity {
                    device_uri: device_uri.clone(),
                    chain,
                    signature_public_key: key,
                },
                1,
            )
            .unwrap();
        let foreign = other
            .key_packages(
                &mimi_room::ClientIdentity {
                    device_uri: device_uri.clone(),
                    chain: other_chain,
                    signature_public_key: other_key,
                },
                1,
            )
            .unwrap();
        // One good and one bad in the same upload: nothing is stored.
        let mixed = [own.clone(), foreign].concat();
        let (status, body) = call(&state, upload(mixed)).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let stock = |state: &Arc<AppState>| {
            state
                .store
                .read()
                .unwrap()
                .unclaimed_key_packages(&device_uri)
                .unwrap()
        };
        assert_eq!(stock(&state), 0);
        let (status, body) = call(&state, upload(own)).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(stock(&state), 1);
    }

    async fn profile_post(
        state: &Arc<AppState>,
        token: &str,
        change: serde_json::Value,
    ) -> (StatusCode, String) {
        let request = Request::post("/client/v1/profile")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(change.to_string()))
            .unwrap();
        let (status, body) = call(state, request).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn profile_get(state: &Arc<AppState>, token: &str) -> ProfileView {
        let request = Request::get("/client/v1/profile")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let (status, body) = call(state, request).await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_slice(&body).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn profile_fields_are_set_checked_cleared_and_made_searchable() {
        let (_dir, state) = test_state();
        let token = alice(&state).await;
        let empty = profile_get(&state, &token).await;
        assert_eq!(empty.user, "mimi://a.example/u/alice");
        let names: Vec<&str> = empty.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["handle", "email", "phone", "name", "nick"]);
        assert!(
            empty
                .fields
                .iter()
                .all(|f| f.value.is_none() && !f.searchable)
        );

        let (status, body) = profile_post(
            &state,
            &token,
            serde_json::json!({"action": "set", "field": "email", "value": "Al@A.Example"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let view: ProfileView = serde_json::from_str(&body).unwrap();
        assert_eq!(view.fields[1].value.as_deref(), Some("Al@a.example"));
        assert!(
            !view.fields[1].searchable,
            "searchable is off until turned on"
        );

        // Refusals change nothing.
        for change in [
            serde_json::json!({"action": "set", "field": "email", "value": "two@@ats"}),
            serde_json::json!({"action": "set", "field": "phone", "value": "555-1234"}),
            serde_json::json!({"action": "set", "field": "handle", "value": "alice"}),
            serde_json::json!({"action": "set", "field": "nick", "value": "mallory"}),
            serde_json::json!({"action": "clear", "field": "age"}),
            serde_json::json!({"action": "searchable", "field": "age", "on": true}),
        ] {
            let (status, body) = profile_post(&state, &token, change.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{change}: {body}");
            assert_eq!(body.lines().count(), 1, "{body}");
        }
        assert_eq!(profile_get(&state, &token).await, view);

        for change in [
            serde_json::json!({"action": "searchable", "field": "nick", "on": true}),
            serde_json::json!({"action": "searchable", "field": "email", "on": true}),
            serde_json::json!({"action": "clear", "field": "email"}),
        ] {
            assert_eq!(profile_post(&state, &token, change).await.0, StatusCode::OK);
        }
        let view = profile_get(&state, &token).await;
        assert_eq!(
            (view.fields[1].value.as_deref(), view.fields[1].searchable),
            (None, true)
        );
        assert_eq!(
            (view.fields[4].value.as_deref(), view.fields[4].searchable),
            (Some("alice"), true)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_query_for_our_own_domain_is_answered_here_within_the_users_quota() {
        let (_dir, state) = crate::state::tests::test_state_with(|c| {
            c.limits.identifier_queries_per_user_per_minute = 2;
        });
        let token = alice(&state).await;
        profile_post(
            &state,
            &token,
            serde_json::json!({"action": "searchable", "field": "nick", "on": true}),
        )
        .await;
        let query = |domain: &str, body: Vec<u8>| {
            Request::post(format!("/client/v1/identifier-query/{domain}"))
                .header("authorization", format!("Bearer {token}"))
                .body(Body::from(body))
                .unwrap()
        };
        let body = mimi_protocol::IdentifierRequest::new(vec![mimi_protocol::QueryElement::new(
            mimi_protocol::SearchField::Nick,
            "alice",
        )])
        .encode();
        // Malformed input is refused before the quota is touched.
        for (domain, bad) in [("a.example", vec![9]), ("not_a%20domain", body.clone())] {
            let (status, _) = call(&state, query(domain, bad)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{domain}");
        }
        let (status, answer) = call(&state, query("a.example", body.clone())).await;
        assert_eq!(status, StatusCode::OK);
        let answer = mimi_protocol::IdentifierResponse::decode(&answer).unwrap();
        assert_eq!(answer.uri[0].as_str(), "mimi://a.example/u/alice");
        assert_eq!(
            call(&state, query("a.example", body.clone())).await.0,
            StatusCode::OK
        );
        let response = routes()
            .with_state(state.clone())
            .oneshot(query("a.example", body))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(response.headers().contains_key("retry-after"));
    }
}
