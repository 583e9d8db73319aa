//! Room state kept in the GroupContext `app_data_dictionary` (draft-ietf-mimi-protocol-06 §4.4,
//! draft-ietf-mls-extensions AppDataUpdate): the participant list (0x0022) and the roles list
//! (0x0025), decoded into our own types, and the interpretation of AppDataUpdate proposals.

use mimi_policy::{RoleData, RoleIndex, RoomPolicy};
use mimi_protocol::{
    IdentifierUri, ParticipantListData, ParticipantListUpdate, RoomMetadata, UserRolePair, Wire,
};
use openmls::component::ComponentData;
use openmls::group::AppDataDictionaryUpdater;
use openmls::prelude::{AppDataDictionary, AppDataUpdateOperation, AppDataUpdateProposal};

use crate::error::RoomError;

/// Component ID of the participant list, as OpenMLS takes it; the value is the protocol crate's
/// (`mimi_protocol::ComponentId`), the one place code points live.
pub(crate) const PARTICIPANT_LIST: u16 = mimi_protocol::ComponentId::PARTICIPANT_LIST.0;
/// Component ID of the roles list, as OpenMLS takes it (the protocol crate's value).
pub(crate) const ROLES_LIST: u16 = mimi_protocol::ComponentId::ROLES_LIST.0;
/// Component ID of the room metadata, as OpenMLS takes it (the protocol crate's value).
pub(crate) const ROOM_METADATA: u16 = mimi_protocol::ComponentId::ROOM_METADATA.0;

/// One participant: a user URI and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The user's URI, `mimi://domain/u/name`.
    pub user: String,
    /// The user's role index in the room's roles list.
    pub role: u32,
}

/// The room components this crate understands, decoded.
#[derive(Debug, Clone)]
pub(crate) struct RoomComponents {
    pub(crate) participants: ParticipantListData,
    pub(crate) policy: RoomPolicy,
    /// The room's name, descriptions and so on, if set (`room_metadata`, draft §7.2).
    pub(crate) metadata: Option<RoomMetadata>,
    /// Role by user URI, so checks over every member of a large room stay linear.
    roles: RoleLookup,
}

impl RoomComponents {
    /// Reads the components from a GroupContext dictionary; both must be present.
    pub(crate) fn from_dictionary(dict: Option<&AppDataDictionary>) -> Result<Self, RoomError> {
        let dict =
            dict.ok_or_else(|| RoomError::not_allowed("group has no app_data_dictionary"))?;
        let participants = dict
            .get(&PARTICIPANT_LIST)
            .ok_or_else(|| RoomError::not_allowed("group has no participant_list component"))?;
        let participants = ParticipantListData::decode(participants)
            .map_err(|e| RoomError::malformed("participant_list", e))?;
        let roles = dict
            .get(&ROLES_LIST)
            .ok_or_else(|| RoomError::not_allowed("group has no roles_list component"))?;
        let roles = RoleData::decode(roles).map_err(|e| RoomError::malformed("roles_list", e))?;
        let policy = RoomPolicy::new(roles).map_err(|e| RoomError::not_allowed(e.to_string()))?;
        let metadata = dict
            .get(&ROOM_METADATA)
            .map(RoomMetadata::decode)
            .transpose()
            .map_err(|e| RoomError::malformed("room_metadata", e))?;
        Ok(Self {
            roles: RoleLookup::of(&participants),
            participants,
            policy,
            metadata,
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
}

/// Roles of a participant list by user URI (the first entry wins, as in [`role_in`]).
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

/// The initial dictionary of a new room: the creator as the only participant, default roles.
pub(crate) fn initial_dictionary(
    creator_user: &str,
    creator_role: u32,
) -> Result<AppDataDictionary, RoomError> {
    let participants = ParticipantListData {
        participants: vec![pair(creator_user, creator_role)],
    };
    let mut dict = AppDataDictionary::new();
    dict.insert(PARTICIPANT_LIST, participants.encode());
    let roles = mimi_policy::default_roles()
        .encode()
        .map_err(|_| RoomError::Internal("default roles do not encode"))?;
    dict.insert(ROLES_LIST, roles);
    Ok(dict)
}

/// What a commit's AppDataUpdate proposals leave.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    /// The participant list after the commit.
    pub(crate) participants: ParticipantListData,
    /// The room metadata the commit sets, if it sets it (a full replacement).
    pub(crate) metadata: Option<RoomMetadata>,
}

impl Applied {
    /// A commit without AppDataUpdate proposals: `before` unchanged.
    pub(crate) fn unchanged(before: &RoomComponents) -> Self {
        Self {
            participants: before.participants.clone(),
            metadata: None,
        }
    }
}

/// Applies the AppDataUpdate proposals of one commit of room `room_uri`, in order, to
/// `before`'s components and records the results in `updater`.
///
/// The participant list (indexed updates, applied in turn) and the room metadata (a full
/// replacement, at most one per commit, naming this room) may change; any other component
/// update is refused, as is removing either.
pub(crate) fn apply_app_data_updates<'a>(
    before: &RoomComponents,
    room_uri: &str,
    proposals: impl Iterator<Item = &'a AppDataUpdateProposal>,
    updater: &mut AppDataDictionaryUpdater<'_>,
) -> Result<Applied, RoomError> {
    let mut list = before.participants.clone();
    let mut touched = false;
    let mut metadata: Option<RoomMetadata> = None;
    for proposal in proposals {
        match (proposal.component_id(), proposal.operation()) {
            (PARTICIPANT_LIST, AppDataUpdateOperation::Update(payload)) => {
                let update = ParticipantListUpdate::decode(payload.as_ref())
                    .map_err(|e| RoomError::invalid(format!("participant list update: {e}")))?;
                list = list
                    .apply(&update)
                    .map_err(|e| RoomError::invalid(format!("participant list update: {e}")))?;
                touched = true;
            }
            (ROOM_METADATA, AppDataUpdateOperation::Update(payload)) => {
                let new = RoomMetadata::decode(payload.as_ref())
                    .map_err(|e| RoomError::invalid(format!("room metadata: {e}")))?;
                if metadata.is_some() {
                    return Err(RoomError::invalid(
                        "only one room_metadata update per commit",
                    ));
                }
                if new.room_uri.as_str() != room_uri {
                    return Err(RoomError::invalid(format!(
                        "room metadata names {}, not this room",
                        new.room_uri.as_str()
                    )));
                }
                metadata = Some(new);
            }
            (PARTICIPANT_LIST | ROOM_METADATA, AppDataUpdateOperation::Remove) => {
                return Err(RoomError::not_allowed(format!(
                    "component {:#06x} cannot be removed",
                    proposal.component_id()
                )));
            }
            (other, _) => {
                return Err(RoomError::not_allowed(format!(
                    "changing component {other:#06x} is not supported"
                )));
            }
        }
    }
    if touched {
        updater.set(ComponentData::from_parts(
            PARTICIPANT_LIST,
            list.encode().into(),
        ));
    }
    if let Some(new) = &metadata {
        updater.set(ComponentData::from_parts(
            ROOM_METADATA,
            new.encode().into(),
        ));
    }
    Ok(Applied {
        participants: list,
        metadata,
    })
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

pub(crate) fn role_in(list: &ParticipantListData, user: &str) -> RoleIndex {
    list.participants
        .iter()
        .find(|p| p.user.as_str() == user)
        .map(|p| RoleIndex(p.role_index))
        .unwrap_or(RoleIndex::NON_PARTICIPANT)
}

pub(crate) fn index_of(list: &ParticipantListData, user: &str) -> Option<u32> {
    list.participants
        .iter()
        .position(|p| p.user.as_str() == user)
        .and_then(|i| u32::try_from(i).ok())
}
