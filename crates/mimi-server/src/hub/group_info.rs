//! Answering a `GroupInfoRequest` (draft §5.5): a participant allowed to add its own clients
//! gets the room's GroupInfo and ratchet tree, encrypted to its HPKE key and signed by the hub.

use std::sync::Arc;

use mimi_protocol::{
    GroupInfo, GroupInfoCode, GroupInfoRatchetTreeTbe, GroupInfoRequest, GroupInfoResponse,
    GroupInfoResponseTbs, GroupInfoResult, GroupInfoSuccess, HpkeCiphertext, IdentifierUri,
    MlsMessage, PendingProposal, Protocol, RatchetTreeOption, Wire,
};

use super::Hub;
use super::owner::Command;
use crate::error::{ApiError, ErrorKind};
use crate::state::{AppState, now_secs};

/// The answer to `request` from a client of `requester_domain`. Credential checks and the
/// encryption run on the blocking pool; the room's owner decides whether the user may join.
pub(super) async fn answer(
    state: &Arc<AppState>,
    room_uri: &str,
    request: GroupInfoRequest,
    requester_domain: &str,
) -> Result<GroupInfoResponse, ApiError> {
    let request = Arc::new(request);
    let (s, r, uri, domain) = (
        state.clone(),
        request.clone(),
        room_uri.to_owned(),
        requester_domain.to_owned(),
    );
    let (user, hosted) = tokio::task::spawn_blocking(move || {
        let user = check_requester(&s, &r, &domain)?;
        let hosted = s.store.read()?.hosts_room(&uri)?;
        Ok::<_, ApiError>((user, hosted))
    })
    .await??;
    // GI-002: unknown rooms and unauthorized users get the same answer (draft §5.5).
    if !hosted {
        return Ok(refusal(room_uri));
    }
    let link = (!request.joining_code.is_empty()).then(|| request.joining_code.clone());
    let tree = Hub::ask(state, room_uri, |reply| Command::ExternalJoin {
        user: user.clone(),
        link,
        reply,
    })
    .await;
    let (ratchet_tree, pending, group_info) = match tree {
        Ok(answer) => answer,
        Err(e) if e.kind() == ErrorKind::Forbidden => {
            tracing::info!(requester = %user, error = %e, "group info refused");
            return Ok(refusal(room_uri));
        }
        Err(e) => return Err(e),
    };
    let group_info = group_info
        .as_deref()
        .and_then(|gi| MlsMessage::from_bytes(gi).ok())
        .and_then(|m| m.as_group_info().cloned())
        .ok_or_else(|| ApiError::internal("room has no GroupInfo"))?;
    let (s, uri) = (state.clone(), room_uri.to_owned());
    let response = tokio::task::spawn_blocking(move || {
        seal(&s, &uri, &request, group_info, ratchet_tree, pending)
    })
    .await??;
    tracing::info!(requester = %user, "group info sent");
    Ok(response)
}

/// GI-001: the requester's credential is vouched for by the provider that asks for it and its
/// signature over the request verifies. Returns the requester's user URI.
fn check_requester(
    state: &AppState,
    request: &GroupInfoRequest,
    requester_domain: &str,
) -> Result<String, ApiError> {
    let who = mimi_room::verify_credential(
        &state.anchor,
        &request.requesting_credential.encode(),
        &request.requesting_signature_key.0,
        now_secs(),
    )
    .map_err(|e| ApiError::forbidden(format!("requester credential: {e}")))?;
    if who.domain != requester_domain {
        return Err(ApiError::forbidden(format!(
            "{requester_domain} cannot ask for {}",
            who.device_uri
        )));
    }
    mimi_room::verify_with_label(
        &request.requesting_signature_key.0,
        "GroupInfoRequestTBS",
        &request.tbs().encode(),
        &request.signature,
    )
    .map_err(|e| ApiError::forbidden(e.to_string()))?;
    Ok(who.user_uri)
}

/// Encrypts the GroupInfo and tree to the requester's key and signs the answer.
fn seal(
    state: &AppState,
    room_uri: &str,
    request: &GroupInfoRequest,
    group_info: GroupInfo,
    ratchet_tree: Vec<u8>,
    pending: Vec<mimi_room::AcceptedProposal>,
) -> Result<GroupInfoResponse, ApiError> {
    // The joiner includes the pending SelfRemoves in its commit (HUB-074, IN-ROOM-7).
    let pending_proposals = pending
        .into_iter()
        .map(|p| {
            Ok(PendingProposal {
                proposal: MlsMessage::from_bytes(&p.message)
                    .map_err(|e| ApiError::internal(format!("pending proposal: {e}")))?,
                hub_accepted_time: p.accepted_at.saturating_mul(1000),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let tbe = GroupInfoRatchetTreeTbe {
        group_info,
        ratchet_tree_option: RatchetTreeOption::Full { ratchet_tree },
        pending_proposals,
    };
    let (kem_output, ciphertext) = mimi_room::encrypt_with_label(
        &request.group_info_public_key.0,
        "GroupInfo and ratchet_tree encryption",
        room_uri.as_bytes(),
        &tbe.encode(),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let hub_sender = state.hub_sender();
    let tbs = GroupInfoResponseTbs {
        protocol: Protocol::Mls10,
        room_id: IdentifierUri::new(room_uri),
        status: GroupInfoCode::SUCCESS,
        cipher_suite: mimi_room::WIRE_CIPHERSUITE,
        hub_sender: hub_sender.clone(),
        encrypted_groupinfo_and_tree: HpkeCiphertext {
            kem_output,
            ciphertext,
        },
    };
    let content = mimi_room::label_content("GroupInfoResponseTBS", &tbs.encode())
        .map_err(ApiError::internal)?;
    let signature = state.hub_key.sign(&content);
    Ok(GroupInfoResponse {
        protocol: Protocol::Mls10,
        room_id: IdentifierUri::new(room_uri),
        result: GroupInfoResult::Success(GroupInfoSuccess {
            cipher_suite: mimi_room::WIRE_CIPHERSUITE,
            hub_sender,
            encrypted_groupinfo_and_tree: tbs.encrypted_groupinfo_and_tree,
            signature,
        }),
    })
}

/// The one answer for "no such room" and "not allowed" (GI-002).
fn refusal(room_uri: &str) -> GroupInfoResponse {
    GroupInfoResponse {
        protocol: Protocol::Mls10,
        room_id: IdentifierUri::new(room_uri),
        result: GroupInfoResult::Failure(GroupInfoCode::NOT_AUTHORIZED),
    }
}
