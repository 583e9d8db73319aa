//! Standalone proposals the hub and members accept: a user leaving (draft-ietf-mimi-protocol-06
//! §6.5: SelfRemove or Remove of its own clients, plus a participant-list AppDataUpdate
//! removing itself). Anything else is refused until later issues add it.

use std::collections::{BTreeMap, BTreeSet};

use mimi_policy::{ParticipantChange, RoleIndex};
use mimi_protocol::{ParticipantListUpdate, Wire};
use openmls::prelude::{AppDataUpdateOperation, LeafNodeIndex, Proposal, QueuedProposal, Sender};

use crate::components::{PARTICIPANT_LIST, RoomComponents, index_of};
use crate::credentials::VerifiedMember;
use crate::error::RoomError;
use crate::validation::role_counts;

/// HUB-050..HUB-053: checks one standalone proposal from member `sender`.
///
/// `queued` are the proposals already accepted in this epoch: HUB-054 allows only one
/// participant-list update among them, because each carries indices into the list as it stood
/// at the start of the epoch and a second one would point at the wrong user once the first is
/// applied (IN-ROOM-8).
pub(crate) fn check_standalone_proposal<'a>(
    proposal: &QueuedProposal,
    sender: LeafNodeIndex,
    members: &BTreeMap<u32, VerifiedMember>,
    components: &RoomComponents,
    queued: impl Iterator<Item = &'a QueuedProposal>,
) -> Result<(), RoomError> {
    let list_update_pending = queued
        .into_iter()
        .any(|q| matches!(q.proposal(), Proposal::AppDataUpdate(_)));
    let me = members
        .get(&sender.u32())
        .ok_or_else(|| RoomError::not_allowed("proposal from an empty leaf"))?;
    match proposal.proposal() {
        // HUB-050: a client may always remove itself.
        Proposal::SelfRemove => Ok(()),
        // HUB-051: a client may remove other clients of its own user.
        Proposal::Remove(remove) => {
            let target = members
                .get(&remove.removed().u32())
                .ok_or_else(|| RoomError::invalid("remove of an empty leaf"))?;
            if target.user_uri == me.user_uri {
                Ok(())
            } else {
                Err(RoomError::not_allowed(
                    "removing another user's clients needs a commit with the participant change",
                ))
            }
        }
        // HUB-052: a participant-list update that only removes the sender's own user, which
        // the sender's role allows (canRemoveSelf).
        Proposal::AppDataUpdate(update) => {
            if update.component_id() != PARTICIPANT_LIST {
                return Err(RoomError::not_allowed(format!(
                    "standalone change of component {:#06x} is not supported",
                    update.component_id()
                )));
            }
            let AppDataUpdateOperation::Update(payload) = update.operation() else {
                return Err(RoomError::not_allowed(
                    "the participant list cannot be removed",
                ));
            };
            let update = ParticipantListUpdate::decode(payload.as_ref())
                .map_err(|e| RoomError::invalid(format!("participant list update: {e}")))?;
            let my_index = index_of(&components.participants, &me.user_uri)
                .ok_or_else(|| RoomError::not_allowed("the sender is not a participant"))?;
            let only_removes_me = update.changed_role_participants.is_empty()
                && update.added_participants.is_empty()
                && update.removed_indices == [my_index];
            if !only_removes_me {
                return Err(RoomError::not_allowed(
                    "a standalone participant-list update may only remove its sender",
                ));
            }
            if list_update_pending {
                return Err(RoomError::not_allowed(
                    "another participant-list change is pending; retry after the next commit",
                ));
            }
            let role = components.role_of(&me.user_uri);
            let after = components
                .participants
                .apply(&update)
                .map_err(|e| RoomError::invalid(format!("participant list update: {e}")))?;
            let members_after: Vec<VerifiedMember> = members
                .values()
                .filter(|m| m.user_uri != me.user_uri)
                .cloned()
                .collect();
            components
                .policy
                .authorize_changes(
                    role,
                    &[ParticipantChange::Remove {
                        target_role: role,
                        is_self: true,
                    }],
                    &role_counts(&after, &members_after),
                )
                .map_err(|denied| RoomError::not_allowed(denied.to_string()))
        }
        // HUB-053: nothing else yet.
        other => Err(RoomError::not_allowed(format!(
            "standalone {:?} proposals are not accepted",
            other.proposal_type()
        ))),
    }
}

/// HUB-081: checks a proposal from the room's external sender (the hub, whose signature OpenMLS
/// checked against `external_senders`): a Remove of any client, or a participant-list update
/// that only removes users (an account its provider deleted), one per epoch as for members
/// (HUB-054, IN-ROOM-8). AppDataUpdate from an external sender is allowed by the MLS extensions
/// draft; OpenMLS takes it through our patch (vendor/openmls/PATCHED.md).
pub(crate) fn check_external_proposal<'a>(
    proposal: &QueuedProposal,
    components: &RoomComponents,
    queued: impl Iterator<Item = &'a QueuedProposal>,
) -> Result<(), RoomError> {
    match proposal.proposal() {
        Proposal::Remove(_) => Ok(()),
        Proposal::AppDataUpdate(update) if update.component_id() == PARTICIPANT_LIST => {
            let AppDataUpdateOperation::Update(payload) = update.operation() else {
                return Err(RoomError::not_allowed(
                    "the participant list cannot be removed",
                ));
            };
            let update = ParticipantListUpdate::decode(payload.as_ref())
                .map_err(|e| RoomError::invalid(format!("participant list update: {e}")))?;
            let listed = components.participants.participants.len();
            if !update.added_participants.is_empty()
                || !update.changed_role_participants.is_empty()
                || update.removed_indices.is_empty()
                || update.removed_indices.iter().any(|&i| i as usize >= listed)
            {
                return Err(RoomError::not_allowed(
                    "the hub may only remove listed participants",
                ));
            }
            if queued
                .into_iter()
                .any(|q| matches!(q.proposal(), Proposal::AppDataUpdate(_)))
            {
                return Err(RoomError::not_allowed(
                    "another participant-list change is pending; retry after the next commit",
                ));
            }
            Ok(())
        }
        _ => Err(RoomError::not_allowed(
            "external senders may only propose removals",
        )),
    }
}

/// Users whose departure is pending: senders of queued participant-list updates (which, by
/// HUB-052, only remove their sender), and users the hub's own list update removes (HUB-081).
/// Their removal was authorized when the proposal was accepted.
pub(crate) fn departing_users<'a>(
    queued: impl Iterator<Item = &'a QueuedProposal>,
    members: &BTreeMap<u32, VerifiedMember>,
    components: &RoomComponents,
) -> BTreeSet<String> {
    let mut users = BTreeSet::new();
    for q in queued {
        let Proposal::AppDataUpdate(update) = q.proposal() else {
            continue;
        };
        match q.sender() {
            Sender::Member(leaf) => {
                if let Some(m) = members.get(&leaf.u32()) {
                    users.insert(m.user_uri.clone());
                }
            }
            Sender::External(_) => {
                let AppDataUpdateOperation::Update(payload) = update.operation() else {
                    continue;
                };
                let Ok(update) = ParticipantListUpdate::decode(payload.as_ref()) else {
                    continue;
                };
                for index in update.removed_indices {
                    if let Some(p) = components.participants.participants.get(index as usize) {
                        users.insert(p.user.as_str().to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    users
}

/// Role index helper for callers outside this module.
pub(crate) fn is_real_role(role: RoleIndex) -> bool {
    role != RoleIndex::NON_PARTICIPANT && role != RoleIndex::BANNED
}
