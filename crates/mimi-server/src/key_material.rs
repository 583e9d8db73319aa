//! `keyMaterial` (draft-ietf-mimi-protocol-06 §5.1): answering for local users, and the hub's
//! relaying for its rooms, recording which provider supplied each KeyPackage so the Welcome can
//! be routed back.

use std::sync::Arc;

use mimi_protocol::{
    ClientKeyMaterial, IdentifierUri, KeyMaterialRequest, KeyMaterialResponse, KeyMaterialUserCode,
    MimiUri, Protocol, Wire,
};
use mimi_store::{ClaimOutcome, ConsentDecision, ConsentMode};

use crate::discovery::Endpoint;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::state::{AppState, now_secs};
use crate::upstream::Target;
use crate::upstream::{self, Route};

/// Routes a request from a local client or a peer: answer it, relay it to the target's
/// provider (we are the room's hub), or send it to the room's hub (we are a follower). Every
/// hop checks the requester (KM-001..003) before it answers or passes the request on, so a
/// request no provider would answer never leaves the first one.
pub(crate) async fn route(
    state: &Arc<AppState>,
    request: KeyMaterialRequest,
    from_peer: Option<&str>,
) -> Result<KeyMaterialResponse, ApiError> {
    let target = uri(&request.target_user)?;
    let room = uri(&request.room_id)?;
    let we_are_hub = upstream::route(state.domain(), &room) == Route::Local;
    let answer_here =
        target.domain() == state.domain() && (we_are_hub || from_peer == Some(room.domain()));
    if !answer_here && !we_are_hub && from_peer.is_some() {
        return Err(ApiError::forbidden(
            "key material for a room must be requested from its hub",
        ));
    }
    // Certificate-chain and signature checks are blocking work.
    let request = Arc::new(request);
    let (s, r) = (state.clone(), request.clone());
    tokio::task::spawn_blocking(move || check_requester(&s, &r)).await??;
    if answer_here {
        return answer(state, &request).await;
    }
    // IN-CONSENT-8: KeyPackages a grant to our user carried are used before asking anyone.
    if from_peer.is_none()
        && target.domain() != state.domain()
        && let Some(response) = granted(state, &request).await?
    {
        return if we_are_hub {
            record_routes(state, target.domain().to_owned(), response).await
        } else {
            Ok(response)
        };
    }
    let hosted = we_are_hub && Hub::hosts(state, request.room_id.as_str()).await?;
    if !we_are_hub {
        return forward(state, room.domain(), &target, &request).await;
    }
    if !hosted {
        return Err(ApiError::not_found(format!(
            "unknown room {}",
            request.room_id.as_str()
        )));
    }
    let domain = target.domain().to_owned();
    let response = forward(state, &domain, &target, &request).await?;
    record_routes(state, domain, response).await
}

async fn forward(
    state: &AppState,
    domain: &str,
    target: &MimiUri,
    request: &KeyMaterialRequest,
) -> Result<KeyMaterialResponse, ApiError> {
    let at = Target::about(Endpoint::KeyMaterial, target);
    let (response, _) = state
        .peers
        .relay_post_checked(domain, &at, request.encode())
        .await?;
    Ok(response)
}

/// HUB-060: each returned KeyPackage is vouched for by the target's own provider (checked on
/// the blocking pool); remember where each came from, then pass the answer on.
async fn record_routes(
    state: &Arc<AppState>,
    domain: String,
    response: KeyMaterialResponse,
) -> Result<KeyMaterialResponse, ApiError> {
    let (s, d) = (state.clone(), domain.clone());
    let (response, refs) = tokio::task::spawn_blocking(move || {
        let mut refs = Vec::new();
        for client in &response.clients {
            if let ClientKeyMaterial::Success { key_package, .. } = client {
                let (who, kp_ref) =
                    mimi_room::check_key_package(&s.anchor, key_package.as_bytes(), now_secs())
                        .map_err(|e| {
                            ApiError::bad_gateway(format!("{d} returned a bad key package: {e}"))
                        })?;
                if who.domain != d {
                    return Err(ApiError::bad_gateway(format!(
                        "{d} returned a key package of {}",
                        who.domain
                    )));
                }
                refs.push(kp_ref);
            }
        }
        Ok((response, refs))
    })
    .await??;
    state
        .write(move |tx| {
            for kp_ref in &refs {
                tx.add_welcome_route(kp_ref, &domain, now_secs())?;
            }
            Ok(())
        })
        .await?;
    Ok(response)
}

/// An answer made of the KeyPackages a consent grant to the requester carried for the room (or
/// any room), if any still fit and are valid; they are used up. `None` sends the request on.
async fn granted(
    state: &Arc<AppState>,
    request: &KeyMaterialRequest,
) -> Result<Option<KeyMaterialResponse>, ApiError> {
    let (target, requester, room) = (
        request.target_user.as_str().to_owned(),
        request.requesting_user.as_str().to_owned(),
        request.room_id.as_str().to_owned(),
    );
    let suites = request.acceptable_ciphersuites.clone();
    let required = request.required_capabilities.clone();
    let taken = state
        .write(move |tx| {
            let fits = |bytes: &[u8]| {
                mimi_protocol::KeyPackage::from_bytes(bytes)
                    .is_ok_and(|kp| kp.fits(&suites, &required))
            };
            Ok(tx.take_granted_key_packages(&target, &requester, &room, &fits)?)
        })
        .await?;
    if taken.is_empty() {
        return Ok(None);
    }
    let (s, target) = (state.clone(), request.target_user.clone());
    tokio::task::spawn_blocking(move || {
        let mut clients = Vec::new();
        for bytes in taken {
            // Checked when the grant arrived (CON-005); one may have expired since.
            let Ok((who, _)) = mimi_room::check_key_package(&s.anchor, &bytes, now_secs()) else {
                continue;
            };
            if who.user_uri != target.as_str()
                || clients.iter().any(|c: &ClientKeyMaterial| {
                    matches!(c, ClientKeyMaterial::Success { client_uri, .. }
                        if client_uri.as_str() == who.device_uri)
                })
            {
                continue;
            }
            clients.push(ClientKeyMaterial::Success {
                client_uri: IdentifierUri::new(who.device_uri),
                key_package: mimi_protocol::KeyPackage::from_bytes(&bytes)
                    .map_err(ApiError::internal)?,
            });
        }
        if clients.is_empty() {
            return Ok(None);
        }
        Ok(Some(KeyMaterialResponse {
            protocol: Protocol::Mls10,
            user_status: KeyMaterialUserCode::SUCCESS,
            user_uri: target,
            clients,
        }))
    })
    .await?
}

/// KM-001..KM-003: the requester's credential is vouched for by its provider, names the
/// `requestingUser`, and its key signed the request.
fn check_requester(state: &AppState, request: &KeyMaterialRequest) -> Result<(), ApiError> {
    let who = mimi_room::verify_credential(
        &state.anchor,
        &request.requester_credential.encode(),
        &request.requester_signature_key.0,
        now_secs(),
    )
    .map_err(|e| ApiError::forbidden(format!("requester credential: {e}")))?;
    if who.user_uri != request.requesting_user.as_str() {
        return Err(ApiError::forbidden(
            "requester credential does not match requestingUser",
        ));
    }
    mimi_room::verify_with_label(
        &request.requester_signature_key.0,
        "KeyMaterialRequestTBS",
        &request.tbs().encode(),
        &request.key_material_request_signature,
    )
    .map_err(|e| ApiError::forbidden(e.to_string()))
}

/// The window of the per-requester claim limit, seconds.
const CLAIM_WINDOW_SECS: u64 = 3600;

/// What the store said about a request for a local user's KeyPackages.
enum Claim {
    /// No consent, or no such user: the same answer either way (KM-005).
    Refused,
    /// The requester reached its limit for this user (KM-007).
    Limited,
    /// One outcome per client.
    Claimed(Vec<mimi_store::ClaimedKeyPackage>),
}

/// Answers for a local target user, for a requester [`check_requester`] accepted: KM-005
/// consent (an unknown user looks exactly like one who did not consent), KM-007 the claim
/// limit, then KM-004 / KM-006 one compatible KeyPackage per client, claimed for good unless it
/// is the client's last-resort one.
async fn answer(
    state: &Arc<AppState>,
    request: &KeyMaterialRequest,
) -> Result<KeyMaterialResponse, ApiError> {
    let now = now_secs();
    let target = uri(&request.target_user)?;
    let user_name = target.id().unwrap_or_default().to_owned();
    let room = request.room_id.as_str().to_owned();
    let target_uri = request.target_user.as_str().to_owned();
    let requester_uri = request.requesting_user.as_str().to_owned();
    let suites = request.acceptable_ciphersuites.clone();
    let required = request.required_capabilities.clone();
    let limit = state.config.limits.key_packages_per_requester_per_hour;
    // Through the group-commit writer: the consent check, the limit and the claim are one
    // transaction, and the claim is durable before the packages leave.
    let claim = state
        .write(move |tx| {
            if !tx.user_exists(&user_name)? {
                return Ok(Claim::Refused);
            }
            // A user fetching its own KeyPackages (a new device of its own) needs no consent.
            if requester_uri != target_uri {
                let allowed = match tx.consent_decision(&target_uri, &requester_uri, &room)? {
                    ConsentDecision::Granted => true,
                    ConsentDecision::Denied => false,
                    ConsentDecision::Unknown => tx.consent_mode(&user_name)? == ConsentMode::Anyone,
                };
                if !allowed {
                    return Ok(Claim::Refused);
                }
            }
            let since = now.saturating_sub(CLAIM_WINDOW_SECS);
            if tx.key_packages_handed_out_since(&requester_uri, &target_uri, since)? >= limit {
                return Ok(Claim::Limited);
            }
            let fits = |bytes: &[u8]| {
                mimi_protocol::KeyPackage::from_bytes(bytes)
                    .is_ok_and(|kp| kp.fits(&suites, &required))
            };
            let claimed = tx.claim_key_packages(&user_name, &room, now, &fits)?;
            let handed = claimed
                .iter()
                .filter(|c| c.outcome.key_package().is_some())
                .count() as u64;
            tx.log_key_packages_handed_out(&requester_uri, &target_uri, handed, now, since)?;
            Ok(Claim::Claimed(claimed))
        })
        .await?;
    let claimed = match claim {
        Claim::Claimed(claimed) => claimed,
        Claim::Refused => {
            tracing::info!(
                target = request.target_user.as_str(),
                requester = request.requesting_user.as_str(),
                "key material refused: no consent"
            );
            return Ok(KeyMaterialResponse {
                protocol: Protocol::Mls10,
                user_status: KeyMaterialUserCode::NO_CONSENT,
                user_uri: request.target_user.clone(),
                clients: Vec::new(),
            });
        }
        Claim::Limited => {
            return Err(ApiError::too_many_requests(
                format!(
                    "{} already claimed {limit} key packages of {} this hour",
                    request.requesting_user.as_str(),
                    request.target_user.as_str()
                ),
                CLAIM_WINDOW_SECS,
            ));
        }
    };
    let mut clients = Vec::new();
    let mut found = 0;
    for claim in claimed {
        let client_uri = IdentifierUri::new(claim.device_uri);
        clients.push(match claim.outcome {
            ClaimOutcome::Fresh(bytes) | ClaimOutcome::LastResort(bytes) => {
                found += 1;
                ClientKeyMaterial::Success {
                    client_uri,
                    key_package: mimi_protocol::KeyPackage::from_bytes(&bytes)
                        .map_err(ApiError::internal)?,
                }
            }
            ClaimOutcome::Exhausted => ClientKeyMaterial::KeyMaterialExhausted { client_uri },
            // IN-CONSENT-5: the client's capabilities are not disclosed.
            ClaimOutcome::NothingCompatible => ClientKeyMaterial::NothingCompatible {
                client_uri,
                client_capabilities: None,
            },
        });
    }
    let user_status = if found == clients.len() && found > 0 {
        KeyMaterialUserCode::SUCCESS
    } else if found > 0 {
        KeyMaterialUserCode::PARTIAL_SUCCESS
    } else {
        KeyMaterialUserCode::NO_COMPATIBLE_MATERIAL
    };
    tracing::info!(
        target = request.target_user.as_str(),
        room = request.room_id.as_str(),
        found,
        "key material claimed"
    );
    Ok(KeyMaterialResponse {
        protocol: Protocol::Mls10,
        user_status,
        user_uri: request.target_user.clone(),
        clients,
    })
}

fn uri(id: &IdentifierUri) -> Result<MimiUri, ApiError> {
    id.to_mimi()
        .map_err(|e| ApiError::bad_request(format!("bad URI {}: {e}", id.as_str())))
}
