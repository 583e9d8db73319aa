//! Room state kept in the GroupContext `app_data_dictionary` (draft-ietf-mimi-protocol-06 §4.4,
//! draft-ietf-mls-extensions AppDataUpdate): the participant list, the room metadata, the
//! policy components of draft-ietf-mimi-room-policy-03 and application components, decoded
//! where we need them, and the interpretation of a commit's AppDataUpdate proposals.
//!
//! Every component changes in one of three ways (IN-ROOMSTATE-1): the participant list and
//! `join_links` by their indexed update forms, every other known component by full replacement
//! with a value that must decode, and application components (private-use IDs) by opaque
//! replacement or removal. What a change needs (capabilities, rules on the resulting state) is
//! checked afterwards, in `validation::check_state_changes`, by the hub and every member alike.

use std::collections::BTreeMap;
use std::sync::Arc;

use mimi_policy::{BaseRoomPolicy, JoinLinksData, JoinLinksUpdate, PolicyComponent, RoleData};
use mimi_policy::{RoleIndex, RoomPolicy};
use mimi_protocol::{
    ComponentId, IdentifierUri, ParticipantListData, ParticipantListUpdate, RoomMetadata,
    UserRolePair, Wire,
};
use openmls::component::ComponentData;
use openmls::group::AppDataDictionaryUpdater;
use openmls::prelude::{AppDataDictionary, AppDataUpdateOperation, AppDataUpdateProposal};

use crate::error::RoomError;

/// Component ID of the participant list, as OpenMLS takes it; the value is the protocol crate's
/// (`mimi_protocol::ComponentId`), the one place code points live.
pub(crate) const PARTICIPANT_LIST: u16 = ComponentId::PARTICIPANT_LIST.0;
/// Component ID of the roles list, as OpenMLS takes it (the protocol crate's value).
pub(crate) const ROLES_LIST: u16 = ComponentId::ROLES_LIST.0;
/// Component ID of the room metadata, as OpenMLS takes it (the protocol crate's value).
pub(crate) const ROOM_METADATA: u16 = ComponentId::ROOM_METADATA.0;
/// Component ID of the base room policy (the protocol crate's value).
pub(crate) const BASE_ROOM_POLICY: u16 = ComponentId::BASE_ROOM_POLICY.0;
/// Component ID of the join links (the protocol crate's value).
pub(crate) const JOIN_LINKS: u16 = ComponentId::JOIN_LINKS.0;
/// Component ID of the franking agent (`franking_signature_key`, the protocol crate's value).
/// Set only when a room is created; `kind_of` leaves it unchangeable (FRK-003, IN-FRANK-1).
pub(crate) const FRANKING_AGENT: u16 = ComponentId::FRANKING_SIGNATURE_KEY.0;

/// Largest value of one application component, in bytes (HUB-096, IN-ROOMSTATE-3). The
/// dictionary travels in every GroupInfo and Welcome, so application state stays small.
pub const MAX_APP_COMPONENT_LEN: usize = 16 * 1024;
/// Most application components one room may hold (HUB-096, IN-ROOMSTATE-3).
pub const MAX_APP_COMPONENTS: usize = 64;

/// One participant: a user URI and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The user's URI, `mimi://domain/u/name`.
    pub user: String,
    /// The user's role index in the room's roles list.
    pub role: u32,
}

/// How a component ID changes (IN-ROOMSTATE-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ComponentKind {
    /// `participant_list`: indexed update (protocol-06 §7.1).
    ParticipantList,
    /// `room_metadata`: full replacement naming this room (protocol-06 §7.2).
    RoomMetadata,
    /// `join_links`: indexed update (room-policy-03 §6.2).
    JoinLinks,
    /// Another room-policy component: full replacement with a value that decodes.
    Policy,
    /// Private-use ID: an application's own state, opaque to the hub.
    Application,
    /// Anything else (mls-extensions components, unassigned IDs): not changeable here.
    Unsupported,
}

/// The kind of component `id` is.
pub(crate) fn kind_of(id: u16) -> ComponentKind {
    match id {
        PARTICIPANT_LIST => ComponentKind::ParticipantList,
        ROOM_METADATA => ComponentKind::RoomMetadata,
        JOIN_LINKS => ComponentKind::JoinLinks,
        _ if ComponentId(id).is_private_use() => ComponentKind::Application,
        _ if is_policy_component(id) => ComponentKind::Policy,
        _ => ComponentKind::Unsupported,
    }
}

/// Whether `id` is one of room-policy-03's components (other than `join_links`).
fn is_policy_component(id: u16) -> bool {
    matches!(
        ComponentId(id),
        ComponentId::MLS_OPERATIONAL_POLICY
            | ComponentId::ROLES_LIST
            | ComponentId::PREAUTH_LIST
            | ComponentId::BASE_ROOM_POLICY
            | ComponentId::STATUS_NOTIFICATION_POLICY
            | ComponentId::JOIN_LINK_POLICY
            | ComponentId::LINK_PREVIEW_POLICY
            | ComponentId::ASSET_POLICY
            | ComponentId::LOGGING_POLICY
            | ComponentId::CHAT_HISTORY_POLICY
            | ComponentId::BOT_POLICY
            | ComponentId::MESSAGE_EXPIRATION_POLICY
    )
}

/// Components a room must always hold; they can be replaced but not removed.
fn is_required(id: u16) -> bool {
    matches!(id, PARTICIPANT_LIST | ROLES_LIST)
}

/// The room components of one epoch, decoded where the checks need them.
///
/// Cloning is cheap: the large parts are shared.
#[derive(Debug, Clone)]
pub(crate) struct RoomComponents {
    pub(crate) participants: Arc<ParticipantListData>,
    /// The roles list with the base policy's size limits.
    pub(crate) policy: RoomPolicy,
    /// The base room policy; a room without the component has the default one.
    pub(crate) base: BaseRoomPolicy,
    /// The room's name, descriptions and so on, if set (`room_metadata`, draft §7.2).
    pub(crate) metadata: Option<RoomMetadata>,
    /// Every component except the participant list, as bytes, by ID.
    pub(crate) raw: BTreeMap<u16, Arc<Vec<u8>>>,
    /// Role by user URI, so checks over every member of a large room stay linear.
    roles: Arc<RoleLookup>,
}

impl RoomComponents {
    /// Reads the components from a GroupContext dictionary; the participant and roles lists
    /// must be present, and every known component must decode.
    pub(crate) fn from_dictionary(dict: Option<&AppDataDictionary>) -> Result<Self, RoomError> {
        let dict =
            dict.ok_or_else(|| RoomError::not_allowed("group has no app_data_dictionary"))?;
        let participants = dict
            .get(&PARTICIPANT_LIST)
            .ok_or_else(|| RoomError::not_allowed("group has no participant_list component"))?;
        let participants = ParticipantListData::decode(participants)
            .map_err(|e| RoomError::malformed("participant_list", e))?;
        let raw = dict
            .entries()
            .filter(|c| c.id() != PARTICIPANT_LIST)
            .map(|c| (c.id(), Arc::new(c.data().to_vec())))
            .collect();
        Self::assemble(Arc::new(participants), raw)
    }

    /// Decodes the components the checks use from `raw`.
    fn assemble(
        participants: Arc<ParticipantListData>,
        raw: BTreeMap<u16, Arc<Vec<u8>>>,
    ) -> Result<Self, RoomError> {
        let (policy, base) = policy_of(
            raw.get(&ROLES_LIST).map(|r| r.as_slice()),
            raw.get(&BASE_ROOM_POLICY).map(|b| b.as_slice()),
        )?;
        let metadata = raw
            .get(&ROOM_METADATA)
            .map(|m| RoomMetadata::decode(m))
            .transpose()
            .map_err(|e| RoomError::malformed("room_metadata", e))?;
        Ok(Self {
            roles: Arc::new(RoleLookup::of(&participants)),
            participants,
            policy,
            base,
            metadata,
            raw,
        })
    }

    /// The participants as URI strings with roles.
    pub(crate) fn participants(&self) -> Vec<Participant> {
        participants_of(&self.participants)
    }

    /// The role of `user`, or the non-participant role 0.
    pub(crate) fn role_of(&self, user: &str) -> RoleIndex {
        self.roles.role_of(user)
    }

    /// The number of application components.
    pub(crate) fn app_component_count(&self) -> usize {
        self.raw
            .keys()
            .filter(|id| kind_of(**id) == ComponentKind::Application)
            .count()
    }

    /// Every component as (ID, bytes), the participant list included, in ID order.
    pub(crate) fn entries(&self) -> Vec<(u16, Vec<u8>)> {
        let mut out: Vec<(u16, Vec<u8>)> = self
            .raw
            .iter()
            .map(|(id, data)| (*id, data.as_ref().clone()))
            .collect();
        out.push((PARTICIPANT_LIST, self.participants.encode()));
        out.sort_by_key(|(id, _)| *id);
        out
    }
}

/// Roles of a participant list by user URI (the first entry wins).
#[derive(Debug, Clone, Default)]
pub(crate) struct RoleLookup(std::collections::HashMap<String, u32>);

impl RoleLookup {
    /// Indexes `list`.
    pub(crate) fn of(list: &ParticipantListData) -> Self {
        let mut map = std::collections::HashMap::with_capacity(list.participants.len());
        for p in &list.participants {
            map.entry(p.user.as_str().to_owned())
                .or_insert(p.role_index);
        }
        Self(map)
    }

    /// The role of `user`, or the non-participant role 0.
    pub(crate) fn role_of(&self, user: &str) -> RoleIndex {
        self.0
            .get(user)
            .map_or(RoleIndex::NON_PARTICIPANT, |r| RoleIndex(*r))
    }
}

/// The policy a room's roles list and base room policy components make (a room without the
/// latter has the default one), and that base policy.
pub(crate) fn policy_of(
    roles: Option<&[u8]>,
    base: Option<&[u8]>,
) -> Result<(RoomPolicy, BaseRoomPolicy), RoomError> {
    let roles = roles.ok_or_else(|| RoomError::not_allowed("group has no roles_list component"))?;
    let roles = RoleData::decode(roles).map_err(|e| RoomError::malformed("roles_list", e))?;
    let base = base
        .map(BaseRoomPolicy::decode)
        .transpose()
        .map_err(|e| RoomError::malformed("base_room_policy", e))?
        .unwrap_or_default();
    let policy = RoomPolicy::new(roles)
        .map_err(|e| RoomError::not_allowed(e.to_string()))?
        .with_base_policy(&base);
    Ok((policy, base))
}

/// The initial dictionary of a new room: the creator as the only participant, and the policy
/// components the room starts with (at least `roles_list`).
pub(crate) fn initial_dictionary(
    creator_user: &str,
    creator_role: u32,
    policy: &[(u16, Vec<u8>)],
) -> Result<AppDataDictionary, RoomError> {
    let participants = ParticipantListData {
        participants: vec![pair(creator_user, creator_role)],
    };
    let mut dict = AppDataDictionary::new();
    dict.insert(PARTICIPANT_LIST, participants.encode());
    for (id, data) in policy {
        if kind_of(*id) != ComponentKind::Policy {
            return Err(RoomError::Misuse(format!(
                "component {id:#06x} is not a policy component"
            )));
        }
        validate_policy_value(*id, data)?;
        dict.insert(*id, data.clone());
    }
    if !dict.contains(&ROLES_LIST) {
        return Err(RoomError::Misuse("a new room needs a roles_list".into()));
    }
    Ok(dict)
}

/// What one commit does to a component other than the participant list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ComponentChange {
    /// Replaced (or first set) with a new value.
    Set,
    /// Removed from the dictionary.
    Removed,
    /// `join_links` changed by indexed updates: how many links were added and removed.
    JoinLinks {
        /// Links added.
        added: usize,
        /// Links removed.
        removed: usize,
    },
}

/// What a commit's AppDataUpdate proposals leave.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    /// The room components after the commit.
    pub(crate) after: RoomComponents,
    /// Whether the participant list changed.
    pub(crate) list_changed: bool,
    /// The other components the commit changed, by ID.
    pub(crate) changed: BTreeMap<u16, ComponentChange>,
}

impl Applied {
    /// A commit without AppDataUpdate proposals: `before` unchanged.
    pub(crate) fn unchanged(before: &RoomComponents) -> Self {
        Self {
            after: before.clone(),
            list_changed: false,
            changed: BTreeMap::new(),
        }
    }
}

/// Applies the AppDataUpdate proposals of one commit of room `room_uri`, in order, to
/// `before`'s components and records the results in `updater` (IN-ROOMSTATE-1).
///
/// HUB-098: the participant list and `join_links` take their indexed updates, applied in turn;
/// any other component takes at most one full replacement per commit (protocol-06 §7.2 says so
/// for the metadata; IN-ROOMSTATE-2 for the rest), whose value must decode; the participant
/// list, the roles list and the metadata cannot be removed; mls-extensions components and
/// unassigned IDs cannot be changed. Who may change what is checked afterwards.
pub(crate) fn apply_app_data_updates<'a>(
    before: &RoomComponents,
    room_uri: &str,
    proposals: impl Iterator<Item = &'a AppDataUpdateProposal>,
    updater: &mut AppDataDictionaryUpdater<'_>,
) -> Result<Applied, RoomError> {
    let mut list: Option<ParticipantListData> = None;
    let mut raw = before.raw.clone();
    let mut changed: BTreeMap<u16, ComponentChange> = BTreeMap::new();
    let mut links: Option<(JoinLinksData, usize, usize)> = None;
    for proposal in proposals {
        let id = proposal.component_id();
        let kind = kind_of(id);
        match (kind, proposal.operation()) {
            (ComponentKind::ParticipantList, AppDataUpdateOperation::Update(payload)) => {
                let update = ParticipantListUpdate::decode(payload.as_ref())
                    .map_err(|e| RoomError::invalid(format!("participant list update: {e}")))?;
                let current = list.as_ref().unwrap_or(&before.participants);
                list =
                    Some(current.apply(&update).map_err(|e| {
                        RoomError::invalid(format!("participant list update: {e}"))
                    })?);
            }
            (ComponentKind::JoinLinks, AppDataUpdateOperation::Update(payload)) => {
                let update = JoinLinksUpdate::decode(payload.as_ref())
                    .map_err(|e| RoomError::invalid(format!("join links update: {e}")))?;
                let (current, added, removed) = match links.take() {
                    Some(state) => state,
                    None => (current_join_links(before)?, 0, 0),
                };
                let next = current
                    .apply(&update)
                    .map_err(|e| RoomError::invalid(format!("join links update: {e}")))?;
                links = Some((
                    next,
                    added + update.added_links.len(),
                    removed + update.removed_indices.len(),
                ));
            }
            (ComponentKind::ParticipantList | ComponentKind::JoinLinks, _) => {
                return Err(RoomError::invalid(format!(
                    "component {id:#06x} changes by indexed updates, not removal"
                )));
            }
            (ComponentKind::Unsupported, _) => {
                return Err(RoomError::not_allowed(format!(
                    "changing component {id:#06x} is not supported in MIMI rooms"
                )));
            }
            (_, operation) => {
                if changed.contains_key(&id) {
                    return Err(RoomError::invalid(format!(
                        "component {id:#06x} is replaced more than once in one commit"
                    )));
                }
                match operation {
                    AppDataUpdateOperation::Update(payload) => {
                        let value = payload.as_ref();
                        match kind {
                            ComponentKind::RoomMetadata => check_metadata_value(value, room_uri)?,
                            ComponentKind::Policy => validate_policy_value(id, value)
                                .map_err(|e| RoomError::invalid(e.to_string()))?,
                            _ => check_app_value(id, value)?,
                        }
                        raw.insert(id, Arc::new(value.to_vec()));
                        changed.insert(id, ComponentChange::Set);
                    }
                    AppDataUpdateOperation::Remove => {
                        if is_required(id) || kind == ComponentKind::RoomMetadata {
                            return Err(RoomError::not_allowed(format!(
                                "component {id:#06x} cannot be removed"
                            )));
                        }
                        if raw.remove(&id).is_none() {
                            return Err(RoomError::invalid(format!(
                                "component {id:#06x} is not in the room"
                            )));
                        }
                        changed.insert(id, ComponentChange::Removed);
                    }
                }
            }
        }
    }
    if let Some((data, added, removed)) = links {
        let bytes = data
            .encode()
            .map_err(|e| RoomError::invalid(format!("join links: {e}")))?;
        raw.insert(JOIN_LINKS, Arc::new(bytes));
        changed.insert(JOIN_LINKS, ComponentChange::JoinLinks { added, removed });
    }
    let list_changed = list.is_some();
    if let Some(list) = &list {
        updater.set(ComponentData::from_parts(
            PARTICIPANT_LIST,
            list.encode().into(),
        ));
    }
    for (id, change) in &changed {
        match (change, raw.get(id)) {
            (ComponentChange::Removed, _) => updater.remove(id),
            (_, Some(value)) => updater.set(ComponentData::from_parts(
                *id,
                value.as_ref().clone().into(),
            )),
            (_, None) => return Err(RoomError::Internal("changed component has no value")),
        }
    }
    let participants = list.map_or_else(|| before.participants.clone(), Arc::new);
    let after = if changed.is_empty() && list_changed {
        // Only the list changed: keep the decoded policy, index the new list.
        RoomComponents {
            roles: Arc::new(RoleLookup::of(&participants)),
            participants,
            ..before.clone()
        }
    } else if changed.is_empty() {
        before.clone()
    } else {
        RoomComponents::assemble(participants, raw)?
    };
    Ok(Applied {
        after,
        list_changed,
        changed,
    })
}

/// The room's join links, or none.
fn current_join_links(components: &RoomComponents) -> Result<JoinLinksData, RoomError> {
    components
        .raw
        .get(&JOIN_LINKS)
        .map(|b| JoinLinksData::decode(b))
        .transpose()
        .map_err(|e| RoomError::malformed("join_links", e))
        .map(Option::unwrap_or_default)
}

/// A room-metadata value decodes and names this room.
fn check_metadata_value(value: &[u8], room_uri: &str) -> Result<(), RoomError> {
    let new = RoomMetadata::decode(value)
        .map_err(|e| RoomError::invalid(format!("room metadata: {e}")))?;
    if new.room_uri.as_str() != room_uri {
        return Err(RoomError::invalid(format!(
            "room metadata names {}, not this room",
            new.room_uri.as_str()
        )));
    }
    Ok(())
}

/// HUB-096: an application component's value is opaque, only its size is checked.
fn check_app_value(id: u16, value: &[u8]) -> Result<(), RoomError> {
    if value.len() > MAX_APP_COMPONENT_LEN {
        return Err(RoomError::not_allowed(format!(
            "application component {id:#06x} holds {} bytes, more than {MAX_APP_COMPONENT_LEN}",
            value.len()
        )));
    }
    Ok(())
}

/// A policy component's value decodes strictly and, for the roles list, forms a valid policy.
pub(crate) fn validate_policy_value(id: u16, value: &[u8]) -> Result<(), RoomError> {
    let decoded = PolicyComponent::decode(id, value)
        .map_err(|e| RoomError::invalid(format!("component {id:#06x}: {e}")))?;
    if let Some(PolicyComponent::RolesList(roles)) = decoded {
        RoomPolicy::new(roles).map_err(|e| RoomError::invalid(format!("roles_list: {e}")))?;
    }
    Ok(())
}

pub(crate) fn pair(user: &str, role: u32) -> UserRolePair {
    UserRolePair {
        user: IdentifierUri::new(user),
        role_index: role,
    }
}

pub(crate) fn participants_of(list: &ParticipantListData) -> Vec<Participant> {
    list.participants
        .iter()
        .map(|p| Participant {
            user: p.user.as_str().to_owned(),
            role: p.role_index,
        })
        .collect()
}

pub(crate) fn index_of(list: &ParticipantListData, user: &str) -> Option<u32> {
    list.participants
        .iter()
        .position(|p| p.user.as_str() == user)
        .and_then(|i| u32::try_from(i).ok())
}

/// What a hosting provider lets its rooms' policies be: its policy envelope
/// (room-policy-03 §2). Checked by the hub alone, on creation and on every change of a policy
/// component; members do not know it (IN-ROOMSTATE-6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEnvelope {
    /// The presets rooms may be created with.
    pub presets: Vec<mimi_policy::Preset>,
    /// The most non-banned participants a room may have, and the largest `max_users` it may
    /// set.
    pub max_users: Option<u32>,
    /// The most clients a room's group may have, and the largest `max_clients` it may set.
    pub max_clients: Option<u32>,
    /// Whether rooms may redefine their roles after creation.
    pub custom_roles: bool,
}

impl Default for PolicyEnvelope {
    /// Every preset, no size limits, roles may be redefined.
    fn default() -> Self {
        Self {
            presets: mimi_policy::Preset::ALL.to_vec(),
            max_users: None,
            max_clients: None,
            custom_roles: true,
        }
    }
}

impl PolicyEnvelope {
    /// HUB-042: a new room's policy is one of the offered presets, its membership style as the
    /// preset has it and its size limits within ours. Returns the preset.
    pub(crate) fn check_creation(
        &self,
        room: &RoomComponents,
    ) -> Result<mimi_policy::Preset, RoomError> {
        let offered = || {
            self.presets
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let preset = mimi_policy::Preset::with_roles(room.policy.roles()).ok_or_else(|| {
            RoomError::not_allowed(format!(
                "the room's roles match none of this provider's presets ({})",
                offered()
            ))
        })?;
        if !self.presets.contains(&preset) {
            return Err(RoomError::not_allowed(format!(
                "this provider does not offer the {preset} preset (offered: {})",
                offered()
            )));
        }
        let want = preset.base_policy();
        let base = &room.base;
        if base.fixed_membership != want.fixed_membership
            || base.multi_device != want.multi_device
            || base.parent_dependant != want.parent_dependant
        {
            return Err(RoomError::not_allowed(format!(
                "the room's membership style differs from the {preset} preset"
            )));
        }
        self.check_limits(room)?;
        Ok(preset)
    }

    /// HUB-043: a commit keeps the room within the envelope: roles redefined only where
    /// allowed, the base policy's size limits within ours, and the room itself within our
    /// limits whatever its own say (`users` non-banned participants, `clients` in the group).
    pub(crate) fn check_change(&self, applied: &Applied, clients: usize) -> Result<(), RoomError> {
        if applied.changed.contains_key(&ROLES_LIST) && !self.custom_roles {
            return Err(RoomError::not_allowed(
                "this provider does not let rooms redefine their roles",
            ));
        }
        if applied.changed.contains_key(&BASE_ROOM_POLICY) {
            self.check_limits(&applied.after)?;
        }
        if let Some(max) = self.max_clients
            && clients > max as usize
        {
            return Err(RoomError::not_allowed(format!(
                "this provider allows at most {max} clients in a room"
            )));
        }
        if let Some(max) = self.max_users
            && applied.list_changed
        {
            let users = applied
                .after
                .participants
                .participants
                .iter()
                .filter(|p| p.role_index != RoleIndex::BANNED.0)
                .count();
            if users > max as usize {
                return Err(RoomError::not_allowed(format!(
                    "this provider allows at most {max} users in a room"
                )));
            }
        }
        Ok(())
    }

    /// A room's own limits may be lower than ours, not higher; a room without one defers to
    /// ours.
    fn check_limits(&self, room: &RoomComponents) -> Result<(), RoomError> {
        let limits = [
            ("max_users", self.max_users, room.base.max_users),
            ("max_clients", self.max_clients, room.base.max_clients),
        ];
        for (field, ours, theirs) in limits {
            if let (Some(ours), Some(theirs)) = (ours, theirs)
                && theirs > ours
            {
                return Err(RoomError::not_allowed(format!(
                    "{field} must be at most {ours} on this provider"
                )));
            }
        }
        Ok(())
    }
}
