//! Knocks on hosted rooms (IN-LIFECYCLE-5): a user not in the room asks to be let in; members
//! whose role may add participants list the knocks and deny them, or admit a knocker by adding
//! it as usual. The room's policy decides at every step (KN-001..KN-003).

use std::sync::Arc;

use mimi_policy::{Capability, RoleIndex};
use mimi_protocol::{IdentifierUri, Knock, KnockList, KnockOperation, KnockRequest, MAX_KNOCKS};

use crate::error::ApiError;
use crate::hub::Hub;
use crate::state::{AppState, now_secs};

/// Handles one knock request for a room this provider hosts; `request.actor` is the user the
/// caller (our client API, or a peer for its own users) vouches for.
pub(crate) async fn handle(
    state: &Arc<AppState>,
    room_uri: &str,
    request: KnockRequest,
) -> Result<KnockList, ApiError> {
    if !Hub::hosts(state, room_uri).await? {
        return Err(ApiError::not_found(format!("no room {room_uri} here")));
    }
    let actor = request.actor.as_str().to_owned();
    let rules = Hub::rules(state, room_uri, &actor).await?;
    match request.operation {
        KnockOperation::Knock => {
            // KN-001: only a user not in the room knocks, where role 0 may (canKnock); a banned
            // user may not.
            if rules.role == RoleIndex::BANNED {
                return Err(ApiError::forbidden(format!(
                    "{actor} is banned from {room_uri} and cannot knock"
                )));
            }
            if rules.role != RoleIndex::NON_PARTICIPANT {
                return Err(ApiError::conflict(format!(
                    "{actor} is already a participant of {room_uri}"
                )));
            }
            if !rules
                .policy
                .has_capability(RoleIndex::NON_PARTICIPANT, Capability::CAN_KNOCK)
            {
                return Err(ApiError::forbidden(format!(
                    "{room_uri} does not take knocks (role 0 lacks canKnock)"
                )));
            }
            let uri = room_uri.to_owned();
            state
                .write(move |tx| Ok(tx.add_knock(&uri, &actor, now_secs())?))
                .await?;
            Ok(KnockList::default())
        }
        KnockOperation::List | KnockOperation::Deny => {
            // KN-002: knocks are seen and answered by members who may add participants.
            if !rules.can(Capability::CAN_ADD_PARTICIPANT) {
                return Err(ApiError::forbidden(format!(
                    "role {} lacks canAddParticipant to answer knocks",
                    rules.role
                )));
            }
            if request.operation == KnockOperation::Deny {
                let (uri, subject) = (room_uri.to_owned(), request.subject.as_str().to_owned());
                let existed = state
                    .write(move |tx| Ok(tx.delete_knock(&uri, &subject)?))
                    .await?;
                if !existed {
                    return Err(ApiError::not_found(format!(
                        "{} has not knocked on {room_uri}",
                        request.subject.as_str()
                    )));
                }
                return Ok(KnockList::default());
            }
            pending(state, room_uri).await
        }
    }
}

/// KN-003: the knocks of users still outside the room (an admitted or banned knocker is
/// listed in the room and no longer knocking).
async fn pending(state: &Arc<AppState>, room_uri: &str) -> Result<KnockList, ApiError> {
    let (s, uri) = (state.clone(), room_uri.to_owned());
    let stored = tokio::task::spawn_blocking(move || {
        Ok::<_, ApiError>(s.store.read()?.knocks(&uri, MAX_KNOCKS)?)
    })
    .await??;
    let mut knocks = Vec::with_capacity(stored.len());
    for (user, knocked_at) in stored {
        if Hub::rules(state, room_uri, &user).await?.role == RoleIndex::NON_PARTICIPANT {
            knocks.push(Knock {
                user: IdentifierUri::new(user),
                knocked_at,
            });
        }
    }
    Ok(KnockList { knocks })
}
