//! The checks a hub and every member run on a commit or proposal before accepting it, so that
//! both sides agree on what is valid (draft-ietf-mimi-protocol-06 §5.2, room-policy-03 §4).
//! Each check has an ID listed in docs/validation.md.

use std::collections::{BTreeMap, BTreeSet};

use mimi_policy::{Capability, ParticipantChange, RoleCounts, RoleIndex, RoomPolicy};
use mimi_protocol::{ComponentId, ParticipantListData, RoomMetadata};
use openmls::prelude::{LeafNodeIndex, Member, Proposal, Sender, StagedCommit};

use crate::components::{
    Applied, ComponentChange, ComponentKind, MAX_APP_COMPONENTS, ROOM_METADATA, RoleLookup,
    RoomComponents, kind_of, participants_of,
};
use crate::credentials::{TrustAnchor, VerifiedMember, identify_member, verify_member};
use crate::error::RoomError;
use crate::proposals::is_real_role;

/// What one commit does, in MIMI terms.
#[derive(Debug)]
pub(crate) struct CommitFacts {
    /// The committer's verified identity.
    pub(crate) committer: VerifiedMember,
    /// Clients added by the commit.
    pub(crate) added: Vec<VerifiedMember>,
    /// Clients removed by the commit, except those that proposed their own removal or whose
    /// user did (already authorized when the proposal was accepted).
    pub(crate) removed_by_others: Vec<VerifiedMember>,
    /// Every client in the group after the commit.
    pub(crate) members_after: Vec<VerifiedMember>,
    /// Users of added clients who already had a client in the group before the commit.
    pub(crate) already_active: BTreeSet<String>,
}

/// The members of a group, identified, by leaf index. Their credentials were checked when they
/// were admitted; `_now` is not used for them (IN-ID-10).
pub(crate) fn verified_members(
    anchor: &TrustAnchor,
    members: impl Iterator<Item = Member>,
    _now: u64,
) -> Result<BTreeMap<u32, VerifiedMember>, RoomError> {
    let members: Vec<Member> = members.collect();
    identify_all(anchor, &members, |m| {
        (m.index.u32(), &m.credential, m.signature_key.as_slice())
    })
}

/// Below this many members one thread identifies them all; above, every core takes a share
/// (each certificate costs a signature check, which dominates joining a large room).
const PARALLEL_FROM: usize = 256;

/// Identifies `items` (leaf index, credential, signature key), in parallel for large rooms.
pub(crate) fn identify_all<'a, T: Sync + 'a>(
    anchor: &TrustAnchor,
    items: &'a [T],
    parts: impl Fn(&'a T) -> (u32, &'a openmls::prelude::Credential, &'a [u8]) + Sync,
) -> Result<BTreeMap<u32, VerifiedMember>, RoomError> {
    let one = |item: &'a T| {
        let (index, credential, key) = parts(item);
        identify_member(anchor, credential, key).map(|v| (index, v))
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if items.len() < PARALLEL_FROM || threads < 2 {
        return items.iter().map(one).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(one).collect::<Result<Vec<_>, _>>()))
            .collect();
        let mut out = BTreeMap::new();
        for handle in handles {
            let part = handle
                .join()
                .map_err(|_| RoomError::Internal("member check panicked"))??;
            out.extend(part);
        }
        Ok(out)
    })
}

/// Collects the [`CommitFacts`] of a staged commit.
///
/// HUB-020: only Add, Remove, SelfRemove, Update and AppDataUpdate proposals are accepted.
/// HUB-021: every added client's credential is vouched for by its domain (ID-001, ID-002).
/// HUB-022: a leaf that changes keeps the same device identity.
pub(crate) fn commit_facts(
    anchor: &TrustAnchor,
    members_before: &BTreeMap<u32, VerifiedMember>,
    committer: LeafNodeIndex,
    staged: &StagedCommit,
    now: u64,
) -> Result<CommitFacts, RoomError> {
    let committer_identity = members_before
        .get(&committer.u32())
        .cloned()
        .ok_or_else(|| RoomError::not_allowed("the committer is not a member"))?;
    let mut removed_leaves = BTreeSet::new();
    let mut self_initiated = BTreeSet::new();
    let mut added = Vec::new();
    for queued in staged.queued_proposals() {
        match queued.proposal() {
            Proposal::Add(add) => {
                let leaf = add.key_package().leaf_node();
                added.push(verify_member(
                    anchor,
                    leaf.credential(),
                    leaf.signature_key().as_slice(),
                    now,
                )?);
            }
            Proposal::Remove(remove) => {
                let target = remove.removed().u32();
                removed_leaves.insert(target);
                // HUB-081: the hub's own Removes were authorized when it issued them.
                if matches!(queued.sender(), Sender::External(_)) {
                    self_initiated.insert(target);
                }
                // A Remove proposed (not committed) by a client of the same user.
                if let Sender::Member(sender) = queued.sender()
                    && *sender != committer
                    && same_user(members_before, sender.u32(), target)
                {
                    self_initiated.insert(target);
                }
            }
            Proposal::SelfRemove => match queued.sender() {
                Sender::Member(leaf) => {
                    removed_leaves.insert(leaf.u32());
                    self_initiated.insert(leaf.u32());
                }
                _ => return Err(RoomError::invalid("self-remove from a non-member")),
            },
            Proposal::Update(update) => {
                let leaf = update.leaf_node();
                let Sender::Member(index) = queued.sender() else {
                    return Err(RoomError::invalid("update from a non-member"));
                };
                check_same_device(anchor, members_before, index.u32(), leaf, now)?;
            }
            Proposal::AppDataUpdate(_) => {}
            other => {
                return Err(RoomError::not_allowed(format!(
                    "{:?} proposals are not accepted in MIMI rooms yet",
                    other.proposal_type()
                )));
            }
        }
    }
    if let Some(leaf) = staged.update_path_leaf_node() {
        check_same_device(anchor, members_before, committer.u32(), leaf, now)?;
    }
    if let Some(leaf) = removed_leaves
        .iter()
        .find(|l| !members_before.contains_key(l))
    {
        return Err(RoomError::invalid(format!("remove of empty leaf {leaf}")));
    }
    let removed_by_others = removed_leaves
        .iter()
        .filter(|leaf| !self_initiated.contains(leaf))
        .filter_map(|leaf| members_before.get(leaf).cloned())
        .collect();
    let members_after: Vec<VerifiedMember> = members_before
        .iter()
        .filter(|(leaf, _)| !removed_leaves.contains(leaf))
        .map(|(_, m)| m.clone())
        .chain(added.iter().cloned())
        .collect();
    Ok(CommitFacts {
        committer: committer_identity,
        removed_by_others,
        members_after,
        already_active: added
            .iter()
            .filter(|a| members_before.values().any(|m| m.user_uri == a.user_uri))
            .map(|a| a.user_uri.clone())
            .collect(),
        added,
    })
}

/// Runs the MIMI checks on a commit's facts, shared by the hub and every member.
///
/// `before` holds the room's components before the commit and `applied` what its
/// AppDataUpdate proposals leave. Every action is authorized by the policy in force before the
/// commit; the state after it must satisfy the policy after it (IN-ROOMSTATE-4). `creation`
/// says the commit leaves epoch 0: the room's first commit, made by its creator.
pub(crate) fn check_commit(
    before: &RoomComponents,
    applied: &Applied,
    facts: &CommitFacts,
    departing: &BTreeSet<String>,
    creation: bool,
) -> Result<(), RoomError> {
    let policy = &before.policy;
    let after = &applied.after;
    let actor = before.role_of(&facts.committer.user_uri);
    // HUB-001: only a participant with a real role may commit.
    if actor == RoleIndex::NON_PARTICIPANT || actor == RoleIndex::BANNED {
        return Err(RoomError::not_allowed(format!(
            "{} is not an active participant",
            facts.committer.user_uri
        )));
    }
    let membership_changes =
        applied.list_changed || !facts.added.is_empty() || !facts.removed_by_others.is_empty();
    if membership_changes {
        check_membership(before, applied, facts, departing, creation, actor)?;
    }
    // HUB-008: each room-metadata field the commit changes needs its capability (draft §7.2,
    // room-policy canChangeRoom*), compared field by field with the metadata before.
    if applied.changed.contains_key(&ROOM_METADATA)
        && let Some(new) = &after.metadata
    {
        check_metadata_change(policy, actor, before.metadata.as_ref(), new)?;
    }
    // HUB-090..HUB-096: the policy and application components the commit changes.
    check_state_changes(before, applied, facts, actor)?;
    // HUB-097: the room after the commit keeps its base policy.
    if membership_changes || !applied.changed.is_empty() {
        check_base_policy(after, facts)?;
    }
    Ok(())
}

/// HUB-002..HUB-007, HUB-097 (fixed membership): the participant-list and client changes.
fn check_membership(
    before: &RoomComponents,
    applied: &Applied,
    facts: &CommitFacts,
    departing: &BTreeSet<String>,
    creation: bool,
    actor: RoleIndex,
) -> Result<(), RoomError> {
    let policy = &before.policy;
    let after_list = &applied.after.participants;
    // HUB-002: the committer's own clients are not removed by a commit of its own user's
    // departure; leaving goes through proposals (draft §6.5, three steps).
    // Removals of departing users were authorized when their proposals were accepted.
    let mut changes: Vec<ParticipantChange> =
        participant_changes(&before.participants, after_list, &facts.committer.user_uri)
            .into_iter()
            .filter(|(user, change)| {
                !(departing.contains(user) && matches!(change, ParticipantChange::Remove { .. }))
            })
            .map(|(_, change)| change)
            .collect();
    // HUB-097: a fixed-membership room gets its participants in its creation commit and
    // never loses or gains one afterwards (room-policy-03 §5, IN-ROOMSTATE-5). The creator's
    // choice of participants is the room's creation, not an addition needing canAddParticipant.
    if before.base.fixed_membership {
        let adds = changes
            .iter()
            .any(|c| matches!(c, ParticipantChange::Add { .. }));
        let removes = changes
            .iter()
            .any(|c| matches!(c, ParticipantChange::Remove { .. }))
            || !departing.is_empty();
        if removes || (adds && !creation) {
            return Err(RoomError::not_allowed(
                "the room has fixed membership: participants are set when it is created",
            ));
        }
        for change in &changes {
            if let ParticipantChange::Add { user_role } = change
                && (!is_real_role(*user_role) || policy.role(*user_role).is_none())
            {
                return Err(RoomError::not_allowed(format!(
                    "a participant cannot be created with role {user_role}"
                )));
            }
        }
        changes.retain(|c| !matches!(c, ParticipantChange::Add { .. }));
    }
    let counts = role_counts(after_list, &facts.members_after);
    // HUB-003: room policy authorizes every participant-list change.
    if !changes.is_empty() {
        policy
            .authorize_changes(RoleIndex(actor.0), &changes, &counts)
            .map_err(|denied| RoomError::not_allowed(denied.to_string()))?;
    }
    let mut counts = counts;
    counts.set_clients(u32::try_from(facts.members_after.len()).unwrap_or(u32::MAX));
    // HUB-006: removing clients of a user who stays a participant is a kick, or the removal
    // of the committer's own other clients; each needs its capability.
    let roles_after = RoleLookup::of(after_list);
    for removed in &facts.removed_by_others {
        if roles_after.role_of(&removed.user_uri) == RoleIndex::NON_PARTICIPANT {
            continue;
        }
        let decision = if removed.user_uri == facts.committer.user_uri {
            policy.authorize_remove_own_client(actor, &counts)
        } else {
            policy.authorize_kick(actor, roles_after.role_of(&removed.user_uri), &counts)
        };
        decision.map_err(|denied| {
            RoomError::not_allowed(format!("removing {}: {denied}", removed.device_uri))
        })?;
    }
    // HUB-007: a new client of a user who already was a participant may be added by that user
    // (canAddOwnClient); others' new devices join by external commit. HUB-076: an inactive
    // participant (listed, no client in the group) is activated by a member who may add
    // participants, as adding it with its clients would have been (IN-LIFECYCLE-1).
    for added in &facts.added {
        if before.role_of(&added.user_uri) == RoleIndex::NON_PARTICIPANT {
            continue;
        }
        if added.user_uri == facts.committer.user_uri {
            policy
                .authorize_add_own_client(actor, &counts)
                .map_err(|denied| RoomError::not_allowed(denied.to_string()))?;
        } else if facts.already_active.contains(&added.user_uri) {
            return Err(RoomError::not_allowed(format!(
                "{} may only be added by its own user",
                added.device_uri
            )));
        } else if !policy.has_capability(actor, Capability::CAN_ADD_PARTICIPANT) {
            return Err(RoomError::not_allowed(format!(
                "role {actor} lacks canAddParticipant to bring {} in",
                added.user_uri
            )));
        }
    }
    // HUB-004: every client in the group belongs to a participant that is not banned.
    for member in &facts.members_after {
        let role = roles_after.role_of(&member.user_uri);
        if role == RoleIndex::NON_PARTICIPANT {
            return Err(RoomError::not_allowed(format!(
                "client {} would be a member but {} is not a participant",
                member.device_uri, member.user_uri
            )));
        }
        if role == RoleIndex::BANNED {
            return Err(RoomError::not_allowed(format!(
                "client {} would stay a member but {} is banned",
                member.device_uri, member.user_uri
            )));
        }
    }
    // HUB-005: a user removed from the list loses all its clients in the same commit (covered by
    // HUB-004); an added client of a user that was not a participant needs the participant-list
    // add in the same commit (also HUB-004). Here: no duplicate device in the group.
    let mut devices = BTreeSet::new();
    for member in &facts.members_after {
        if !devices.insert(member.device_uri.as_str()) {
            return Err(RoomError::not_allowed(format!(
                "device {} would be in the group twice",
                member.device_uri
            )));
        }
    }
    Ok(())
}

/// HUB-090..HUB-096: who may change each policy or application component, and the rules the
/// new values must keep (room-policy-03 §3, §4, §8.6; IN-ROOMSTATE-2, -3).
fn check_state_changes(
    before: &RoomComponents,
    applied: &Applied,
    facts: &CommitFacts,
    actor: RoleIndex,
) -> Result<(), RoomError> {
    let policy = &before.policy;
    let after = &applied.after;
    let need = |capability: Capability, what: &str| -> Result<(), RoomError> {
        if policy.has_capability(actor, capability) {
            Ok(())
        } else {
            Err(RoomError::not_allowed(format!(
                "role {actor} lacks {} to change {what}",
                capability.known_name().unwrap_or("a private capability")
            )))
        }
    };
    for (&id, change) in &applied.changed {
        let name = component_name(id);
        match (kind_of(id), change) {
            (ComponentKind::RoomMetadata, _) => {}
            (ComponentKind::JoinLinks, ComponentChange::JoinLinks { added, removed }) => {
                // HUB-095: creating and deleting join codes (reserved capabilities we use,
                // IN-ROOMSTATE-2).
                if *added > 0 {
                    need(Capability::CAN_CREATE_JOIN_CODE, &name)?;
                }
                if *removed > 0 {
                    need(Capability::CAN_DELETE_JOIN_CODE, &name)?;
                }
            }
            (ComponentKind::Application, _) => {
                // HUB-096: our private capability; generic limits only.
                need(Capability::CAN_CHANGE_APP_COMPONENTS, &name)?;
            }
            (ComponentKind::Policy, _) => match ComponentId(id) {
                ComponentId::ROLES_LIST => {
                    // HUB-090: canChangeRoleDefinitions, never with a participant-list change
                    // (room-policy-03 §3), and the current participants fit the new roles.
                    need(Capability::CAN_CHANGE_ROLE_DEFINITIONS, &name)?;
                    if applied.list_changed {
                        return Err(RoomError::not_allowed(
                            "roles_list cannot change in a commit that changes the participant list",
                        ));
                    }
                    check_roles_fit(after, facts)?;
                }
                ComponentId::PREAUTH_LIST => {
                    // HUB-091: canChangePreauthorizedUserList; only removals may accompany it
                    // in the participant list (room-policy-03 §4).
                    need(Capability::CAN_CHANGE_PREAUTHORIZED_USER_LIST, &name)?;
                    if applied.list_changed && !only_removals(before, after) {
                        return Err(RoomError::not_allowed(
                            "preauth_list can change only with participant removals",
                        ));
                    }
                }
                ComponentId::BASE_ROOM_POLICY => {
                    // HUB-092: canChangeRoomMembershipStyle (room-policy-03 §8.6).
                    need(Capability::CAN_CHANGE_ROOM_MEMBERSHIP_STYLE, &name)?;
                }
                ComponentId::MLS_OPERATIONAL_POLICY => {
                    // HUB-094: canChangeMlsOperationalPolicies (reserved; IN-ROOMSTATE-2).
                    need(Capability::CAN_CHANGE_MLS_OPERATIONAL_POLICIES, &name)?;
                }
                _ => {
                    // HUB-093: canChangeOtherPolicyAttribute (reserved; IN-ROOMSTATE-2).
                    need(Capability::CAN_CHANGE_OTHER_POLICY_ATTRIBUTE, &name)?;
                }
            },
            _ => {
                return Err(RoomError::not_allowed(format!(
                    "changing {name} is not supported"
                )));
            }
        }
    }
    // HUB-096: a room holds a bounded number of application components.
    if applied
        .changed
        .keys()
        .any(|id| kind_of(*id) == ComponentKind::Application)
        && after.app_component_count() > MAX_APP_COMPONENTS
    {
        return Err(RoomError::not_allowed(format!(
            "a room may hold at most {MAX_APP_COMPONENTS} application components"
        )));
    }
    Ok(())
}

/// HUB-090: after a roles change every participant's role exists and every role's participant
/// constraints hold for the room as it is.
fn check_roles_fit(after: &RoomComponents, facts: &CommitFacts) -> Result<(), RoomError> {
    let counts = role_counts(&after.participants, &facts.members_after);
    for p in &after.participants.participants {
        let role = RoleIndex(p.role_index);
        if after.policy.role(role).is_none() {
            return Err(RoomError::not_allowed(format!(
                "{} holds role {role}, which the new roles_list does not define",
                p.user.as_str()
            )));
        }
    }
    for role in &after.policy.roles().roles {
        let index = role.role_index;
        if index == RoleIndex::NON_PARTICIPANT {
            continue;
        }
        let (count, active) = (counts.participants(index), counts.active(index));
        let too_few = count < role.minimum_participants_constraint
            || active < role.minimum_active_participants_constraint;
        let too_many = role
            .maximum_participants_constraint
            .is_some_and(|m| count > m)
            || role
                .maximum_active_participants_constraint
                .is_some_and(|m| active > m);
        if too_few || too_many {
            return Err(RoomError::not_allowed(format!(
                "role {index} would hold {count} participants ({active} active), outside its constraints"
            )));
        }
    }
    Ok(())
}

/// HUB-097: the base room policy after the commit holds for the room after it
/// (room-policy-03 §5): `max_users`, `max_clients`, `multi_device`, no role able to add users
/// in a fixed-membership room, and no parent-dependent room (not supported, IN-ROOMSTATE-5).
fn check_base_policy(after: &RoomComponents, facts: &CommitFacts) -> Result<(), RoomError> {
    let base = &after.base;
    check_policy_consistency(base, after.policy.roles())?;
    if let Some(max) = base.max_users {
        let users = after
            .participants
            .participants
            .iter()
            .filter(|p| RoleIndex(p.role_index) != RoleIndex::BANNED)
            .count();
        if users > max as usize {
            return Err(RoomError::not_allowed(format!(
                "the room would have {users} users, more than max_users {max}"
            )));
        }
    }
    if let Some(max) = base.max_clients
        && facts.members_after.len() > max as usize
    {
        return Err(RoomError::not_allowed(format!(
            "the room would have {} clients, more than max_clients {max}",
            facts.members_after.len()
        )));
    }
    if !base.multi_device {
        let mut users = BTreeSet::new();
        for member in &facts.members_after {
            if !users.insert(member.user_uri.as_str()) {
                return Err(RoomError::not_allowed(format!(
                    "the room allows one client per user (multi_device is false): {} has more",
                    member.user_uri
                )));
            }
        }
    }
    Ok(())
}

/// Rules between the base policy and the roles that hold whatever the members do: a
/// fixed-membership room has no role that may add users (room-policy-03 §5), and parent rooms
/// are not supported (IN-ROOMSTATE-5).
pub(crate) fn check_policy_consistency(
    base: &mimi_policy::BaseRoomPolicy,
    roles: &mimi_policy::RoleData,
) -> Result<(), RoomError> {
    if base.parent_dependant {
        return Err(RoomError::not_allowed(
            "parent-dependent rooms are not supported",
        ));
    }
    if base.fixed_membership
        && let Some(role) = roles.roles.iter().find(|r| {
            is_real_role(r.role_index) && r.has_capability(Capability::CAN_ADD_PARTICIPANT)
        })
    {
        return Err(RoomError::not_allowed(format!(
            "a fixed-membership room cannot have role {} with canAddParticipant",
            role.role_index
        )));
    }
    Ok(())
}

/// Whether the participant list only lost entries between `before` and `after`.
fn only_removals(before: &RoomComponents, after: &RoomComponents) -> bool {
    after
        .participants
        .participants
        .iter()
        .all(|p| before.role_of(p.user.as_str()) == RoleIndex(p.role_index))
}

/// The draft's name of a component, or its ID in hex.
pub(crate) fn component_name(id: u16) -> String {
    ComponentId(id)
        .name()
        .map_or_else(|| format!("component {id:#06x}"), str::to_owned)
}

/// The participant-list changes between two lists, as the policy crate wants them.
pub(crate) fn participant_changes(
    before: &ParticipantListData,
    after: &ParticipantListData,
    actor_user: &str,
) -> Vec<(String, ParticipantChange)> {
    let old: BTreeMap<String, u32> = participants_of(before)
        .into_iter()
        .map(|p| (p.user, p.role))
        .collect();
    let new: BTreeMap<String, u32> = participants_of(after)
        .into_iter()
        .map(|p| (p.user, p.role))
        .collect();
    let mut changes = Vec::new();
    for (user, &role) in &old {
        let is_self = user == actor_user;
        match new.get(user) {
            None => changes.push((
                user.clone(),
                ParticipantChange::Remove {
                    target_role: RoleIndex(role),
                    is_self,
                },
            )),
            Some(&to) if to != role => changes.push((
                user.clone(),
                ParticipantChange::ChangeRole {
                    from: RoleIndex(role),
                    to: RoleIndex(to),
                    is_self,
                },
            )),
            Some(_) => {}
        }
    }
    for (user, &role) in &new {
        if !old.contains_key(user) {
            changes.push((
                user.clone(),
                ParticipantChange::Add {
                    user_role: RoleIndex(role),
                },
            ));
        }
    }
    changes
}

/// Participants and active participants per role after a change.
pub(crate) fn role_counts(list: &ParticipantListData, members: &[VerifiedMember]) -> RoleCounts {
    let active: BTreeSet<&str> = members.iter().map(|m| m.user_uri.as_str()).collect();
    let mut counts = RoleCounts::new();
    for p in participants_of(list) {
        counts.add_participant(RoleIndex(p.role), active.contains(p.user.as_str()));
    }
    counts
}

fn check_same_device(
    anchor: &TrustAnchor,
    members_before: &BTreeMap<u32, VerifiedMember>,
    leaf_index: u32,
    leaf: &openmls::prelude::LeafNode,
    now: u64,
) -> Result<(), RoomError> {
    let old = members_before
        .get(&leaf_index)
        .ok_or_else(|| RoomError::invalid(format!("update of empty leaf {leaf_index}")))?;
    let new = verify_member(
        anchor,
        leaf.credential(),
        leaf.signature_key().as_slice(),
        now,
    )?;
    if new.device_uri != old.device_uri {
        return Err(RoomError::not_allowed(format!(
            "leaf of {} tried to become {}",
            old.device_uri, new.device_uri
        )));
    }
    Ok(())
}

/// HUB-070: a user may add a client of its own: a participant with a real role and
/// `canAddOwnClient` (room-policy-03 §4).
pub(crate) fn may_add_own_client(components: &RoomComponents, user: &str) -> Result<(), RoomError> {
    let role = components.role_of(user);
    if !is_real_role(role) {
        return Err(RoomError::not_allowed(format!(
            "{user} is not a participant"
        )));
    }
    if !components
        .policy
        .has_capability(role, Capability::CAN_ADD_OWN_CLIENT)
    {
        return Err(RoomError::not_allowed(format!(
            "{user} may not add clients"
        )));
    }
    Ok(())
}

/// HUB-077: the role an unlisted user joins an open room with (room-policy-03 §8.1.1
/// canOpenJoin): the lowest real role that role 0 may move users into, if role 0 holds
/// canOpenJoin.
pub(crate) fn open_join_role(components: &RoomComponents) -> Option<RoleIndex> {
    let none = RoleIndex::NON_PARTICIPANT;
    let role = components.policy.role(none)?;
    if !role.has_capability(Capability::CAN_OPEN_JOIN) {
        return None;
    }
    role.authorized_role_changes
        .iter()
        .filter(|c| c.from_role_index == none)
        .flat_map(|c| c.target_role_indexes.iter().copied())
        .filter(|r| is_real_role(*r))
        .min()
}

/// DER of the subjectAltName OID (2.5.29.17): the X.509 claim our preauthorizations name
/// (IN-LIFECYCLE-3).
pub const SAN_CLAIM_OID: [u8; 5] = [0x06, 0x03, 0x55, 0x1d, 0x11];
/// MLS credential type `x509` (RFC 9420 §17.4), as preauthorization claims name it.
const X509_CREDENTIAL: u16 = 2;

/// HUB-078: the role `user` is preauthorized for: the target role of the first entry of the
/// room's `preauth_list` whose every claim matches (room-policy-03 §4), if that role holds
/// canJoinIfPreauthorized. A claim matches when it names the subjectAltName of an x509
/// credential with the user's URI, or with its provider's URI `mimi://DOMAIN` (IN-LIFECYCLE-3).
pub(crate) fn preauth_role(components: &RoomComponents, user: &str) -> Option<RoleIndex> {
    let bytes = components.raw.get(&ComponentId::PREAUTH_LIST.0)?;
    let preauth = mimi_policy::PreAuthData::decode(bytes).ok()?;
    let domain = user
        .strip_prefix("mimi://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    let provider = format!("mimi://{domain}");
    let matches = |claim: &mimi_policy::Claim| {
        claim.claim_id.credential_type == X509_CREDENTIAL
            && claim.claim_id.id == SAN_CLAIM_OID
            && (claim.claim_value == user.as_bytes() || claim.claim_value == provider.as_bytes())
    };
    let entry = preauth
        .preauthorized_entries
        .iter()
        .find(|e| !e.claimset.is_empty() && e.claimset.iter().all(matches))?;
    let role = entry.target_role.role_index;
    (is_real_role(role)
        && components
            .policy
            .has_capability(role, Capability::CAN_JOIN_IF_PREAUTHORIZED))
    .then_some(role)
}

/// HUB-079: the role a join link gives: `link` is one of the room's `join_links` and role 0
/// holds canUseJoinCode; the role is the lowest real one role 0 may move users into
/// (IN-LIFECYCLE-4). Expiry is the hub's to check, at the time it accepts.
pub(crate) fn join_link_role(components: &RoomComponents, link: &[u8]) -> Option<RoleIndex> {
    let none = RoleIndex::NON_PARTICIPANT;
    let role = components.policy.role(none)?;
    if !role.has_capability(Capability::CAN_USE_JOIN_CODE) || !room_has_link(components, link) {
        return None;
    }
    role.authorized_role_changes
        .iter()
        .filter(|c| c.from_role_index == none)
        .flat_map(|c| c.target_role_indexes.iter().copied())
        .filter(|r| is_real_role(*r))
        .min()
}

/// Whether `link` is in the room's `join_links`.
fn room_has_link(components: &RoomComponents, link: &[u8]) -> bool {
    join_links_of(components)
        .iter()
        .any(|l| l.join_link == link)
}

/// The room's join links (none if it has no `join_links` or it does not decode).
fn join_links_of(components: &RoomComponents) -> Vec<mimi_policy::JoinLink> {
    components
        .raw
        .get(&ComponentId::JOIN_LINKS.0)
        .and_then(|b| mimi_policy::JoinLinksData::decode(b).ok())
        .map(|d| d.links)
        .unwrap_or_default()
}

/// How an unlisted user joins by itself, and with which role: preauthorized (HUB-078), by
/// open join (HUB-077), or with a join link (HUB-079), in that order.
pub(crate) fn self_join_role(
    components: &RoomComponents,
    user: &str,
    link: Option<&[u8]>,
) -> Option<(RoleIndex, SelfJoin)> {
    preauth_role(components, user)
        .map(|r| (r, SelfJoin::Preauthorized))
        .or_else(|| open_join_role(components).map(|r| (r, SelfJoin::Open)))
        .or_else(|| {
            let link = link?;
            join_link_role(components, link).map(|r| (r, SelfJoin::Link(link.to_vec())))
        })
}

/// Why an unlisted user may join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SelfJoin {
    /// A `preauth_list` entry matches it.
    Preauthorized,
    /// The room is open.
    Open,
    /// It holds this join link.
    Link(Vec<u8>),
}

/// HUB-070/HUB-077..079: may `user` join the room by external commit, at `now`: as a
/// participant adding a client of its own, or, unlisted, preauthorized, by open join or with a
/// join link that has not expired.
pub(crate) fn may_join(
    components: &RoomComponents,
    user: &str,
    link: Option<&[u8]>,
    now: u64,
) -> Result<(), RoomError> {
    if components.role_of(user) == RoleIndex::NON_PARTICIPANT {
        return match self_join_role(components, user, link) {
            Some((_, SelfJoin::Link(link))) => check_link_fresh(&link, now),
            Some(_) => Ok(()),
            None => Err(RoomError::not_allowed(format!(
                "{user} is not a participant and the room does not let anyone join"
            ))),
        };
    }
    may_add_own_client(components, user)
}

/// HUB-079: a join link works until it expires (checked by the hub alone, IN-LIFECYCLE-4).
pub(crate) fn check_link_fresh(link: &[u8], now: u64) -> Result<(), RoomError> {
    match crate::join_links::JoinLinkTerms::of(link) {
        Some(terms) if terms.expired_at(now) => {
            Err(RoomError::not_allowed("the join link has expired"))
        }
        Some(_) => Ok(()),
        None => Err(RoomError::not_allowed("not a join link of this room")),
    }
}

/// HUB-071: an external commit adds one client vouched for by its provider, of a user that may
/// add its own clients; HUB-072: besides ExternalInit it may only remove an older leaf of the
/// same device; HUB-073: a device already in the group must replace its old leaf. Returns the
/// joiner.
pub(crate) fn check_external_commit(
    anchor: &TrustAnchor,
    members: &BTreeMap<u32, VerifiedMember>,
    components: &RoomComponents,
    applied: &Applied,
    staged: &StagedCommit,
    link: Option<&[u8]>,
    now: u64,
) -> Result<VerifiedMember, RoomError> {
    let leaf = staged
        .update_path_leaf_node()
        .ok_or_else(|| RoomError::invalid("external commit without a path"))?;
    let joiner = verify_member(
        anchor,
        leaf.credential(),
        leaf.signature_key().as_slice(),
        now,
    )?;
    check_joiner_listing(components, applied, &joiner, members, link)?;
    let mut replaces_old_leaf = false;
    // Leaves a stapled SelfRemove takes out (HUB-074): they no longer count below.
    let mut leaving: BTreeSet<u32> = BTreeSet::new();
    for queued in staged.queued_proposals() {
        match queued.proposal() {
            Proposal::ExternalInit(_) | Proposal::AppDataUpdate(_) => {}
            // A member's own pending departure, carried by reference (OpenMLS accepts it only
            // so, from a member, SelfRemove rules of the MLS extensions).
            Proposal::SelfRemove => match queued.sender() {
                Sender::Member(leaf) => {
                    leaving.insert(leaf.u32());
                }
                _ => return Err(RoomError::invalid("a SelfRemove not from a member")),
            },
            Proposal::Remove(remove) => {
                let same_device = members
                    .get(&remove.removed().u32())
                    .is_some_and(|m| m.device_uri == joiner.device_uri);
                if !same_device {
                    return Err(RoomError::not_allowed(
                        "an external commit may only replace the joiner's own old leaf",
                    ));
                }
                replaces_old_leaf = true;
            }
            other => {
                return Err(RoomError::not_allowed(format!(
                    "{:?} proposals are not accepted in external commits",
                    other.proposal_type()
                )));
            }
        }
    }
    let already_in = members.values().any(|m| m.device_uri == joiner.device_uri);
    if already_in && !replaces_old_leaf {
        return Err(RoomError::not_allowed(format!(
            "{} is already in the group",
            joiner.device_uri
        )));
    }
    // HUB-075: the new client keeps the room within its base policy (room-policy-03 §5).
    let base = &components.base;
    let other_device = members.iter().any(|(leaf, m)| {
        m.user_uri == joiner.user_uri
            && m.device_uri != joiner.device_uri
            && !leaving.contains(leaf)
    });
    if !base.multi_device && other_device {
        return Err(RoomError::not_allowed(format!(
            "the room allows one client per user (multi_device is false): {} has one",
            joiner.user_uri
        )));
    }
    let clients_after = members.len() + usize::from(!replaces_old_leaf) - leaving.len();
    if let Some(max) = base.max_clients
        && clients_after > max as usize
    {
        return Err(RoomError::not_allowed(format!(
            "the room would have {clients_after} clients, more than max_clients {max}"
        )));
    }
    Ok(joiner)
}

/// HUB-070/HUB-077: what an external commit may do to the room's state. A listed joiner
/// (a new device of a participant, canAddOwnClient) changes nothing; an unlisted one joins an
/// open room by adding itself, and nothing else, to the participant list, with the role
/// [`open_join_role`] gives, within the room's constraints (canOpenJoin, room-policy-03
/// §8.1.1; protocol-06 §5.5).
fn check_joiner_listing(
    components: &RoomComponents,
    applied: &Applied,
    joiner: &VerifiedMember,
    members: &BTreeMap<u32, VerifiedMember>,
    link: Option<&[u8]>,
) -> Result<(), RoomError> {
    if components.role_of(&joiner.user_uri) != RoleIndex::NON_PARTICIPANT {
        if applied.list_changed || !applied.changed.is_empty() {
            return Err(RoomError::not_allowed(
                "an external commit of a participant may not change room components",
            ));
        }
        return may_add_own_client(components, &joiner.user_uri);
    }
    let (role, how) = self_join_role(components, &joiner.user_uri, link).ok_or_else(|| {
        RoomError::not_allowed(format!(
            "{} is not a participant and the room does not let anyone join",
            joiner.user_uri
        ))
    })?;
    let preauthorized = (how == SelfJoin::Preauthorized).then_some(role);
    // HUB-079: a single-use link is removed by the commit that uses it, and nothing else
    // changes besides the participant list.
    let state_as_expected = match &how {
        SelfJoin::Link(link)
            if crate::join_links::JoinLinkTerms::of(link).is_some_and(|t| !t.multi) =>
        {
            let mut expected = join_links_of(components);
            expected.retain(|l| &l.join_link != link);
            applied.changed.len() == 1
                && matches!(
                    applied.changed.get(&ComponentId::JOIN_LINKS.0),
                    Some(ComponentChange::JoinLinks {
                        added: 0,
                        removed: 1
                    })
                )
                && join_links_of(&applied.after) == expected
        }
        _ => applied.changed.is_empty(),
    };
    if !state_as_expected {
        return Err(RoomError::not_allowed(
            "a self-join changes nothing but the participant list (and removes a single-use link)",
        ));
    }
    let before = &components.participants.participants;
    let after = &applied.after.participants.participants;
    let adds_only_the_joiner = after.len() == before.len() + 1
        && after[..before.len()] == before[..]
        && after[before.len()].user.as_str() == joiner.user_uri
        && after[before.len()].role_index == role.0;
    if !adds_only_the_joiner {
        return Err(RoomError::not_allowed(format!(
            "a self-join adds only the joiner, as role {role}"
        )));
    }
    let members_after: Vec<VerifiedMember> = members
        .values()
        .cloned()
        .chain(std::iter::once(joiner.clone()))
        .collect();
    if preauthorized.is_some() || matches!(how, SelfJoin::Link(_)) {
        // The preauthorized role's own limits and the room's (authorized_role_changes are not
        // consulted, room-policy-03 §8.1.1).
        let facts = CommitFacts {
            committer: joiner.clone(),
            added: vec![joiner.clone()],
            removed_by_others: Vec::new(),
            members_after,
            already_active: BTreeSet::new(),
        };
        check_base_policy(&applied.after, &facts)?;
        let counts = role_counts(&applied.after.participants, &facts.members_after);
        return match applied.after.policy.role(role) {
            Some(r)
                if r.maximum_participants_constraint
                    .is_some_and(|m| counts.participants(role) > m) =>
            {
                Err(RoomError::not_allowed(format!("role {role} is full")))
            }
            _ => Ok(()),
        };
    }
    let mut counts = role_counts(&applied.after.participants, &members_after);
    counts.set_clients(u32::try_from(members_after.len()).unwrap_or(u32::MAX));
    components
        .policy
        .authorize_open_join(role, &counts)
        .map_err(|denied| RoomError::not_allowed(denied.to_string()))
}

fn same_user(members: &BTreeMap<u32, VerifiedMember>, a: u32, b: u32) -> bool {
    match (members.get(&a), members.get(&b)) {
        (Some(x), Some(y)) => x.user_uri == y.user_uri,
        _ => false,
    }
}

/// Which `canChangeRoom*` capability each changed metadata field needs; a room without
/// metadata counts as one with every field empty.
fn check_metadata_change(
    policy: &RoomPolicy,
    actor: RoleIndex,
    before: Option<&RoomMetadata>,
    after: &RoomMetadata,
) -> Result<(), RoomError> {
    let empty = RoomMetadata::empty(after.room_uri.as_str());
    let before = before.unwrap_or(&empty);
    let changes = [
        (
            before.name != after.name,
            Capability::CAN_CHANGE_ROOM_NAME,
            "name",
        ),
        (
            before.descriptions != after.descriptions,
            Capability::CAN_CHANGE_ROOM_DESCRIPTION,
            "description",
        ),
        (
            before.avatar != after.avatar,
            Capability::CAN_CHANGE_ROOM_AVATAR,
            "avatar",
        ),
        (
            before.subject != after.subject,
            Capability::CAN_CHANGE_ROOM_SUBJECT,
            "subject",
        ),
        (
            before.mood != after.mood,
            Capability::CAN_CHANGE_ROOM_MOOD,
            "mood",
        ),
    ];
    for (changed, capability, field) in changes {
        if changed && !policy.has_capability(actor, capability) {
            return Err(RoomError::not_allowed(format!(
                "role {} lacks {capability} to change the room's {field}",
                actor.0
            )));
        }
    }
    Ok(())
}
