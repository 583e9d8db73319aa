//! Consent (draft-ietf-mimi-protocol-06 §5.7, §8): what peers tell us through `requestConsent`
//! and `updateConsent`, and what our own users do (set their mode, request, cancel, grant,
//! deny, revoke). `/keyMaterial` reads the result (`key_material`, KM-005).

use std::sync::Arc;

use mimi_protocol::client_api::{ConsentActionRequest, ConsentList, ConsentListEntry};
use mimi_protocol::{
    ConsentChange, ConsentEntry, ConsentScope, IdentifierUri, KeyPackage, MimiUri, MimiUriKind,
    Wire,
};
use mimi_store::{ClaimOutcome, ConsentMode, ConsentState};

use crate::error::ApiError;
use crate::state::{AppState, now_secs};
use crate::upstream::Target;

/// Which consent endpoint a peer called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `requestConsent`: request or cancel, for one of our users as target.
    Request,
    /// `updateConsent`: grant or revoke, for one of our users as requester.
    Update,
}

/// Most KeyPackages one grant may carry: one per client, and no user has this many clients.
const MAX_GRANT_KEY_PACKAGES: usize = 64;

/// Takes a consent entry from `peer` (already authenticated, FED-001..003). Every check
/// passes before anything is stored; an entry naming a user we do not have is accepted and
/// dropped, so the answer (201) is the same for every user (CON-006).
pub(crate) async fn receive(
    state: &Arc<AppState>,
    peer: &str,
    endpoint: Endpoint,
    path_param: &str,
    entry: ConsentEntry,
) -> Result<(), ApiError> {
    // CON-001: the path names us (a domain, or a user URI of ours: IN-CONSENT-1).
    let named = MimiUri::from_path_segment(path_param)
        .map_err(|e| ApiError::bad_request(format!("bad domain in path: {e}")))?;
    if named.domain() != state.domain() {
        return Err(ApiError::bad_request(format!(
            "path names {}, not us",
            named.domain()
        )));
    }
    // CON-002: each endpoint carries its own operations.
    let op = entry.change.operation();
    let fits_endpoint = match endpoint {
        Endpoint::Request => {
            matches!(op, mimi_protocol::ConsentOperation::Request)
                || matches!(op, mimi_protocol::ConsentOperation::Cancel)
        }
        Endpoint::Update => {
            matches!(op, mimi_protocol::ConsentOperation::Grant)
                || matches!(op, mimi_protocol::ConsentOperation::Revoke)
        }
    };
    if !fits_endpoint {
        return Err(ApiError::bad_request(format!(
            "{} does not belong on this endpoint",
            op.name()
        )));
    }
    let scope = Scope::parse(&entry.scope)?;
    // CON-003: requestConsent: the target is ours and the requester the sender's; updateConsent
    // the other way round.
    let (ours, theirs) = match endpoint {
        Endpoint::Request => (&scope.target, &scope.requester),
        Endpoint::Update => (&scope.requester, &scope.target),
    };
    if ours.domain() != state.domain() {
        return Err(ApiError::bad_request(format!(
            "{ours} is not one of our users"
        )));
    }
    if theirs.domain() != peer {
        return Err(ApiError::forbidden(format!(
            "{peer} cannot speak for {theirs}"
        )));
    }
    // CON-005: a grant's KeyPackages are the target's, vouched for by the sender.
    let key_packages = match &entry.change {
        ConsentChange::Grant {
            client_key_packages,
        } => check_granted_key_packages(state, peer, &scope.target, client_key_packages).await?,
        _ => Vec::new(),
    };
    let local_name = ours.id().unwrap_or_default().to_owned();
    let (target, requester) = (scope.target.to_string(), scope.requester.to_string());
    let room = scope.room.as_ref().map(ToString::to_string);
    let change = entry.change;
    let now = now_secs();
    state
        .write(move |tx| {
            // CON-006: nothing is kept for a user we do not have; the answer is the same.
            if !tx.user_exists(&local_name)? {
                return Ok(());
            }
            let room = room.as_deref();
            match change {
                ConsentChange::Request => {
                    tx.record_consent_request(&target, &requester, room, now)?;
                }
                ConsentChange::Cancel => {
                    tx.cancel_consent_request(&target, &requester, room)?;
                }
                ConsentChange::Grant { .. } => {
                    tx.set_consent(&target, &requester, room, ConsentState::Granted, now)?;
                    tx.add_granted_key_packages(&target, &requester, room, &key_packages, now)?;
                }
                ConsentChange::Revoke => {
                    tx.set_consent(&target, &requester, room, ConsentState::Revoked, now)?;
                }
            }
            Ok(())
        })
        .await?;
    tracing::info!(peer, operation = op.name(), "consent entry received");
    Ok(())
}

/// Sets the consent mode of local user `user_name`.
pub(crate) async fn set_mode(
    state: &Arc<AppState>,
    user_name: String,
    mode: &str,
) -> Result<(), ApiError> {
    let mode = ConsentMode::parse(mode).ok_or_else(|| {
        ApiError::bad_request(format!("unknown consent mode {mode:?}: anyone or contacts"))
    })?;
    state
        .write(move |tx| Ok(tx.set_consent_mode(&user_name, mode)?))
        .await
}

/// Our mode and every scope local user `user_name` is part of.
pub(crate) async fn list(
    state: &Arc<AppState>,
    user_name: String,
) -> Result<ConsentList, ApiError> {
    let me = format!("mimi://{}/u/{user_name}", state.domain());
    let s = state.clone();
    let (mode, records) = tokio::task::spawn_blocking(move || {
        let reader = s.store.read()?;
        Ok::<_, mimi_store::StoreError>((
            reader.consent_mode(&user_name)?,
            reader.consents_of(&me)?,
        ))
    })
    .await??;
    Ok(ConsentList {
        mode: mode.as_str().to_owned(),
        entries: records
            .into_iter()
            .map(|r| ConsentListEntry {
                target: r.target_uri,
                requester: r.requester_uri,
                room: r.room_uri,
                state: r.state.as_str().to_owned(),
                key_packages: r.key_packages,
                updated_at: r.updated_at,
            })
            .collect(),
    })
}

/// Carries out a consent action of local user `user_name` about another user: stored here,
/// and sent to the other user's provider when it is a peer (a denial is not sent,
/// IN-CONSENT-4). Bad input is refused before anything is stored or sent.
pub(crate) async fn act(
    state: &Arc<AppState>,
    user_name: String,
    action: ConsentActionRequest,
) -> Result<(), ApiError> {
    let me = MimiUri::user(state.domain(), &user_name).map_err(ApiError::internal)?;
    let other: MimiUri = action
        .user
        .parse()
        .map_err(|e| ApiError::bad_request(format!("bad user {}: {e}", action.user)))?;
    if other.kind() != MimiUriKind::User {
        return Err(ApiError::bad_request(format!("{other} is not a user")));
    }
    if other == me {
        return Err(ApiError::bad_request("consent is about another user"));
    }
    let room = match &action.room {
        None => None,
        Some(r) => Some(room_uri(r)?),
    };
    let remote = other.domain() != state.domain();
    if remote && !state.peers.reachable(other.domain()).await {
        return Err(ApiError::bad_request(format!(
            "{} is not a provider we peer with",
            other.domain()
        )));
    }
    let (target, requester, change) = match action.action.as_str() {
        "request" => (other.clone(), me.clone(), Action::Request),
        "cancel" => (other.clone(), me.clone(), Action::Cancel),
        "grant" => (me.clone(), other.clone(), Action::Grant),
        "deny" => (me.clone(), other.clone(), Action::Deny),
        "revoke" => (me.clone(), other.clone(), Action::Revoke),
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown consent action {other:?}: request, cancel, grant, deny or revoke"
            )));
        }
    };
    if action.with_key_packages && change != Action::Grant {
        return Err(ApiError::bad_request("only a grant carries key packages"));
    }
    let scope = ConsentScope {
        requester_uri: IdentifierUri::new(requester.to_string()),
        target_uri: IdentifierUri::new(target.to_string()),
        room_id: room.as_ref().map(|r| IdentifierUri::new(r.to_string())),
    };
    // A request or cancel to a peer goes out first: our record of it is only kept once the
    // peer took it.
    if remote && matches!(change, Action::Request | Action::Cancel) {
        let wire = if change == Action::Request {
            ConsentChange::Request
        } else {
            ConsentChange::Cancel
        };
        send(
            state,
            Endpoint::Request,
            &other,
            ConsentEntry::new(wire, scope.clone()),
        )
        .await?;
    }
    let (t, rq) = (target.to_string(), requester.to_string());
    let room_s = room.as_ref().map(ToString::to_string);
    let local_other = (!remote).then(|| other.id().unwrap_or_default().to_owned());
    let with_kps = action.with_key_packages;
    let me_name = user_name.clone();
    let now = now_secs();
    let granted = state
        .write(move |tx| {
            let room = room_s.as_deref();
            // A local user we do not have: nothing to keep (the same answer, as for peers).
            if let Some(name) = &local_other
                && !tx.user_exists(name)?
            {
                return Ok(Vec::new());
            }
            let mut granted = Vec::new();
            match change {
                Action::Request => {
                    tx.record_consent_request(&t, &rq, room, now)?;
                }
                Action::Cancel => {
                    tx.cancel_consent_request(&t, &rq, room)?;
                }
                Action::Grant => {
                    tx.set_consent(&t, &rq, room, ConsentState::Granted, now)?;
                    if with_kps {
                        // Handed over for good, as a keyMaterial claim would; any room.
                        let claimed =
                            tx.claim_key_packages(&me_name, room.unwrap_or(""), now, &|_| true)?;
                        granted = claimed
                            .into_iter()
                            .filter_map(|c| match c.outcome {
                                ClaimOutcome::Fresh(kp) | ClaimOutcome::LastResort(kp) => Some(kp),
                                _ => None,
                            })
                            .collect();
                        if local_other.is_some() {
                            tx.add_granted_key_packages(&t, &rq, room, &granted, now)?;
                        }
                    }
                }
                Action::Deny => tx.set_consent(&t, &rq, room, ConsentState::Denied, now)?,
                Action::Revoke => tx.set_consent(&t, &rq, room, ConsentState::Revoked, now)?,
            }
            Ok(granted)
        })
        .await?;
    if remote && matches!(change, Action::Grant | Action::Revoke) {
        let wire = if change == Action::Grant {
            let client_key_packages = granted
                .iter()
                .map(|kp| KeyPackage::from_bytes(kp).map_err(ApiError::internal))
                .collect::<Result<_, _>>()?;
            ConsentChange::Grant {
                client_key_packages,
            }
        } else {
            ConsentChange::Revoke
        };
        send(
            state,
            Endpoint::Update,
            &other,
            ConsentEntry::new(wire, scope),
        )
        .await
        .map_err(|e| {
            ApiError::new(
                e.kind(),
                format!("recorded here, but {} was not told: {e}", other.domain()),
            )
        })?;
    }
    tracing::info!(user = user_name, action = action.action, "consent action");
    Ok(())
}

/// What our user does; `Deny` stays with us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Request,
    Cancel,
    Grant,
    Deny,
    Revoke,
}

/// A consent scope whose URIs are checked: two users and maybe a room (CON-004).
struct Scope {
    requester: MimiUri,
    target: MimiUri,
    room: Option<MimiUri>,
}

impl Scope {
    fn parse(scope: &ConsentScope) -> Result<Self, ApiError> {
        let user = |id: &IdentifierUri, what: &str| -> Result<MimiUri, ApiError> {
            let uri = id
                .to_mimi()
                .map_err(|e| ApiError::bad_request(format!("bad {what} {}: {e}", id.as_str())))?;
            if uri.kind() != MimiUriKind::User {
                return Err(ApiError::bad_request(format!("{what} {uri} is not a user")));
            }
            Ok(uri)
        };
        let requester = user(&scope.requester_uri, "requesterUri")?;
        let target = user(&scope.target_uri, "targetUri")?;
        if requester == target {
            return Err(ApiError::bad_request(
                "requesterUri and targetUri are the same user",
            ));
        }
        let room = match &scope.room_id {
            None => None,
            Some(r) => Some(room_uri(r.as_str())?),
        };
        Ok(Self {
            requester,
            target,
            room,
        })
    }
}

fn room_uri(room: &str) -> Result<MimiUri, ApiError> {
    let uri: MimiUri = room
        .parse()
        .map_err(|e| ApiError::bad_request(format!("bad room {room}: {e}")))?;
    if uri.kind() != MimiUriKind::Room {
        return Err(ApiError::bad_request(format!("{uri} is not a room")));
    }
    Ok(uri)
}

/// CON-005, on the blocking pool: each KeyPackage verifies, is unexpired, and belongs to a
/// client of `target` vouched for by `peer`. Returns their bytes.
async fn check_granted_key_packages(
    state: &Arc<AppState>,
    peer: &str,
    target: &MimiUri,
    key_packages: &[KeyPackage],
) -> Result<Vec<Vec<u8>>, ApiError> {
    if key_packages.len() > MAX_GRANT_KEY_PACKAGES {
        return Err(ApiError::bad_request(format!(
            "a grant carries at most {MAX_GRANT_KEY_PACKAGES} key packages"
        )));
    }
    let bytes: Vec<Vec<u8>> = key_packages.iter().map(|k| k.as_bytes().to_vec()).collect();
    let (s, peer, target) = (state.clone(), peer.to_owned(), target.to_string());
    tokio::task::spawn_blocking(move || {
        for kp in &bytes {
            let (who, _) = mimi_room::check_key_package(&s.anchor, kp, now_secs())
                .map_err(|e| ApiError::bad_request(format!("granted key package: {e}")))?;
            if who.domain != peer || who.user_uri != target {
                return Err(ApiError::bad_request(format!(
                    "granted key package of {} is not {target}'s",
                    who.device_uri
                )));
            }
        }
        Ok(bytes)
    })
    .await?
}

/// Sends `entry` to the provider of `other` and expects its acknowledgement.
async fn send(
    state: &Arc<AppState>,
    endpoint: Endpoint,
    other: &MimiUri,
    entry: ConsentEntry,
) -> Result<(), ApiError> {
    let endpoint = match endpoint {
        Endpoint::Request => crate::discovery::Endpoint::RequestConsent,
        Endpoint::Update => crate::discovery::Endpoint::UpdateConsent,
    };
    // IN-CONSENT-1: the path parameter is the receiving provider's domain.
    let target = Target::with(endpoint, other.domain());
    state
        .peers
        .relay_post(other.domain(), &target, entry.encode())
        .await?;
    Ok(())
}
