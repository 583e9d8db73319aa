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
    AbuseReport, ConsentEntry, DIRECTORY_PATH, Directory, GroupInfoRequest, KeyMaterialRequest,
    MimiUri, SubmitMessageRequest, UpdateRequest, Wire,
};

use crate::consent::{self, Endpoint};
use crate::error::ApiError;
use crate::http::PeerDomain;
use crate::hub::Hub;
use crate::state::AppState;
use crate::{follower, key_material};

/// The federation routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(DIRECTORY_PATH, get(directory))
        .route("/v1/keyMaterial/{*target}", post(key_material_handler))
        .route("/v1/update/{*room}", post(update))
        .route("/v1/submitMessage/{*room}", post(submit))
        .route("/v1/notify/{*room}", post(notify))
        .route("/v1/groupInfo/{*room}", post(group_info))
        .route("/v1/knock/{*room}", post(knock))
        .route("/v1/removeClients/{*room}", post(remove_clients))
        .route("/v1/removeUser/{*room}", post(remove_user))
        .route("/v1/roomClients/{*room}", post(room_clients))
        .route("/v1/discoveryPublish/{domain}", post(discovery_publish))
        .route("/v1/discoveryRemove/{domain}", post(discovery_remove))
        .route("/v1/discoveryLookup/{domain}", post(discovery_lookup))
        .route("/v1/ohttpKeys/{domain}", get(ohttp_keys))
        .route("/v1/ohttpGateway/{domain}", post(ohttp_gateway))
        .route("/v1/tokenKey/{domain}", get(token_key))
        .route("/v1/requestConsent/{*target}", post(request_consent))
        .route("/v1/updateConsent/{*requester}", post(update_consent))
        .route("/v1/assets/{id}", get(asset))
        .route("/v1/proxyDownload/{url}", get(proxy_download))
        .route("/v1/ratchetTree/{*path}", get(ratchet_tree))
        .route("/v1/reportAbuse/{*room}", post(report_abuse))
        .route("/v1/identifierQuery/{domain}", post(identifier_query))
        .route(
            crate::cluster::INTERNAL_PATH,
            post(crate::cluster::serve_internal),
        )
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

async fn directory(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    // Behind a balancer (or as one node of a cluster), the port peers reach us at.
    let port = state
        .config
        .public_port
        .unwrap_or_else(|| state.config.listen.port());
    let base = format!("https://{}:{port}", state.domain());
    // Only endpoints this server has a route for (issue 14). Consent keeps the directory's
    // parameter names (IN-PROTO-18); we fill them with a domain (IN-CONSENT-1).
    let mut directory = Directory::for_base_url(&base);
    directory.request_consent = Some(Directory::template(
        &base,
        "requestConsent",
        &["targetUser"],
    ));
    directory.update_consent = Some(Directory::template(
        &base,
        "updateConsent",
        &["requesterUser"],
    ));
    directory.identifier_query = Some(Directory::template(&base, "identifierQuery", &["domain"]));
    directory.report_abuse = Some(Directory::template(&base, "reportAbuse", &["roomId"]));
    directory.ratchet_tree = Some(Directory::template(
        &base,
        "ratchetTree",
        &["roomId", "epoch"],
    ));
    // Ours, under their own names (IN-DISC-2).
    for (_, name, param) in crate::discovery::Endpoint::OURS {
        directory
            .extensions
            .insert(name.to_owned(), Directory::template(&base, name, &[param]));
    }
    // Peers keep it this long before asking again (IN-DISC-2).
    (
        [(axum::http::header::CACHE_CONTROL, "max-age=3600")],
        axum::Json(directory),
    )
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

/// `POST /reportAbuse/{roomId}` from a peer: no body in the answer, 201 when stored (RPT-005).
async fn report_abuse(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    let room = super::room_in_path(&room)?.to_string();
    let report = AbuseReport::decode(&body)?;
    // RPT-006: a provider reports only for its own users, or anonymously (IN-FRANK-5).
    if !report.reporting_user.as_str().is_empty() {
        let reporter = report
            .reporting_user
            .to_mimi()
            .map_err(|e| ApiError::bad_request(format!("bad reportingUser: {e}")))?;
        if reporter.domain() != peer {
            return Err(ApiError::forbidden(format!(
                "{peer} cannot report for {reporter}"
            )));
        }
    }
    crate::hub::abuse::accept(&state, &room, report, &peer).await?;
    Ok(StatusCode::CREATED)
}

async fn update(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    let room = super::room_in_path(&room)?.to_string();
    let request = UpdateRequest::decode(&body)?;
    // FED-015: the hub checks that the handshake is one of the peer's own clients'.
    let response = Hub::update(&state, &room, request.bundle, Some(peer)).await?;
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
    let room = super::room_in_path(&room)?.to_string();
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
    let response = Hub::submit(&state, &room, request).await?;
    Ok(response.encode())
}

/// `POST /v1/knock/{roomId}` (ours, IN-LIFECYCLE-5): a peer knocks, lists or denies for one of
/// its own users.
async fn knock(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    let room = super::room_in_path(&room)?.to_string();
    let request = mimi_protocol::KnockRequest::decode(&body)?;
    // FED-011: a peer speaks only for its own users.
    let actor = request
        .actor
        .to_mimi()
        .map_err(|e| ApiError::bad_request(format!("bad actor: {e}")))?;
    if actor.domain() != peer {
        return Err(ApiError::forbidden(format!(
            "{peer} cannot knock for {actor}"
        )));
    }
    Ok(crate::knock::handle(&state, &room, request).await?.encode())
}

/// `POST /v1/removeClients/{roomId}` (ours, IN-LIFECYCLE-6): a peer has the hub propose the
/// removal of its own clients.
async fn remove_clients(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    let room = super::room_in_path(&room)?.to_string();
    let request = mimi_protocol::RemoveClientsRequest::decode(&body)?;
    crate::devices::remove_peer_clients(&state, &peer, &room, request).await?;
    Ok(StatusCode::OK)
}

/// `POST /v1/removeUser/{roomId}` (ours, IN-LIFECYCLE-6): a peer that deleted one of its users
/// has the hub take it out of the room.
async fn remove_user(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    let room = super::room_in_path(&room)?.to_string();
    let request = mimi_protocol::RemoveUserRequest::decode(&body)?;
    crate::devices::remove_peer_user(&state, &peer, &room, request).await?;
    Ok(StatusCode::OK)
}

/// `POST /v1/roomClients/{roomId}` (ours, IN-LIFECYCLE-7): which of a peer's own clients the
/// room holds now.
async fn room_clients(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    let room = super::room_in_path(&room)?.to_string();
    let request = mimi_protocol::RemoveClientsRequest::decode(&body)?;
    Ok(
        crate::devices::peer_room_clients(&state, &peer, &room, request)
            .await?
            .encode(),
    )
}

/// `POST /v1/discoveryPublish/{domain}` (ours, IN-DISC-5): records a peer attested.
async fn discovery_publish(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    crate::user_discovery::check_addressed_to_us(&state, &domain)?;
    crate::user_discovery::accept_publication(&state, &peer, &body).await?;
    Ok(StatusCode::OK)
}

/// `POST /v1/discoveryRemove/{domain}` (ours, IN-DISC-5): a peer withdraws its record.
async fn discovery_remove(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    crate::user_discovery::check_addressed_to_us(&state, &domain)?;
    crate::user_discovery::accept_removal(&state, &peer, &body).await?;
    Ok(StatusCode::OK)
}

/// `POST /v1/discoveryLookup/{domain}` (ours, IN-DISC-5): the records we keep for an
/// identifier.
async fn discovery_lookup(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    authenticate(&state, &peer, &headers)?;
    crate::user_discovery::check_addressed_to_us(&state, &domain)?;
    Ok(crate::user_discovery::answer_lookup(&state, &body)
        .await?
        .encode())
}

/// `GET /v1/ohttpKeys/{domain}` (ours, IN-DISC-6): our gateway's keys, signed.
async fn ohttp_keys(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(domain): Path<String>,
) -> Result<Vec<u8>, ApiError> {
    authenticate(&state, &peer, &headers)?;
    crate::user_discovery::check_addressed_to_us(&state, &domain)?;
    Ok(state.gateway.keys().encode())
}

/// `GET /v1/tokenKey/{domain}` (ours, IN-DISC-7): our token issuer keys a gateway may redeem
/// tokens of, signed.
async fn token_key(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(domain): Path<String>,
) -> Result<Vec<u8>, ApiError> {
    authenticate(&state, &peer, &headers)?;
    crate::user_discovery::check_addressed_to_us(&state, &domain)?;
    Ok(crate::user_discovery::own_issuer_keys(&state)
        .await?
        .encode())
}

/// `POST /v1/ohttpGateway/{domain}` (ours, IN-DISC-6): a sealed lookup from a relay.
async fn ohttp_gateway(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    authenticate(&state, &peer, &headers)?;
    crate::user_discovery::check_addressed_to_us(&state, &domain)?;
    crate::user_discovery::answer_oblivious(&state, body.to_vec()).await
}

async fn notify(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(room): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    let room = super::room_in_path(&room)?;
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
    let room = super::room_in_path(&room)?.to_string();
    let request = GroupInfoRequest::decode(&body)?;
    let response = Hub::group_info(&state, &room, request, &peer).await?;
    Ok(response.encode())
}

/// `POST /v1/requestConsent/{targetDomain}` (draft §5.7): a request or cancel for one of our
/// users. 201 whether or not the user exists (CON-006).
async fn request_consent(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(target): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    let entry = ConsentEntry::decode(&body)?;
    consent::receive(&state, &peer, Endpoint::Request, &target, entry).await?;
    Ok(StatusCode::CREATED)
}

/// `POST /v1/updateConsent/{requesterDomain}` (draft §5.7): a grant or revoke for one of our
/// users as requester. 201 whether or not the user exists (CON-006).
async fn update_consent(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(requester): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    let entry = ConsentEntry::decode(&body)?;
    consent::receive(&state, &peer, Endpoint::Update, &requester, entry).await?;
    Ok(StatusCode::CREATED)
}

/// `POST /v1/identifierQuery/{domain}` (draft §5.8): which of our users match a peer's query,
/// among the fields they made searchable.
async fn identifier_query(
    State(state): State<Arc<AppState>>,
    Extension(peer): Extension<PeerDomain>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let peer = authenticate(&state, &peer, &headers)?;
    crate::identifier_query::from_peer(&state, &peer, &domain, &body).await
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request};
    use tower::ServiceExt as _;

    use super::*;
    use crate::state::tests::test_state;

    /// Issue 14: every template in the directory reaches a handler (which, without a client
    /// certificate, answers 401 with a reason), and nothing that has no handler is listed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_directory_advertises_only_endpoints_that_exist() {
        let (_dir, state) = test_state();
        let app = routes()
            .layer(axum::Extension(PeerDomain(None)))
            .with_state(state);
        let response = app
            .clone()
            .oneshot(Request::get(DIRECTORY_PATH).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let directory: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&body).unwrap();
        let mut seen = Vec::new();
        for (name, template) in &directory {
            let method = match name.as_str() {
                "keyMaterial" | "update" | "notify" | "submitMessage" | "groupInfo"
                | "requestConsent" | "updateConsent" | "reportAbuse" | "knock"
                | "removeClients" | "removeUser" | "roomClients" | "discoveryPublish"
                | "discoveryRemove" | "discoveryLookup" | "identifierQuery" | "ohttpGateway" => {
                    Method::POST
                }
                "proxyDownload" | "ratchetTree" | "ohttpKeys" | "tokenKey" => Method::GET,
                other => panic!("the directory lists {other}, which this server does not serve"),
            };
            let url = template.as_str().unwrap();
            let path_start = url.find("/v1/").unwrap();
            let path = url[path_start..]
                .replace("{targetUser}", "a.example/u/alice")
                .replace("{requesterUser}", "a.example")
                .replace("{domain}", "a.example")
                .replace("{roomId}", "a.example/r/x")
                .replace("{epoch}", "1")
                .replace("{domain}", "a.example")
                .replace("{downloadUrl}", "https%3A%2F%2Fa.example%2Fv1%2Fassets%2Fx");
            let request = Request::builder()
                .method(method)
                .uri(&path)
                .body(Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{name} ({path}) has no handler"
            );
            seen.push(name.as_str());
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            [
                "discoveryLookup",
                "discoveryPublish",
                "discoveryRemove",
                "groupInfo",
                "identifierQuery",
                "keyMaterial",
                "knock",
                "notify",
                "ohttpGateway",
                "ohttpKeys",
                "proxyDownload",
                "ratchetTree",
                "removeClients",
                "removeUser",
                "reportAbuse",
                "requestConsent",
                "roomClients",
                "submitMessage",
                "tokenKey",
                "update",
                "updateConsent"
            ]
        );
    }
}
