//! Room presets: the policy a room is created with, chosen by name (`dm`, `private`,
//! `moderated`, `public`), modelled on the example role sets of draft-ietf-mimi-room-policy-03
//! Appendix A (IN-ROOMSTATE-6 says where ours differ).

use std::fmt;
use std::str::FromStr;

use crate::base_policy::BaseRoomPolicy;
use crate::capabilities::Capability as C;
use crate::default_roles::{MEMBER_CAPABILITIES, default_roles};
use crate::error::Error;
use crate::roles::{Role, RoleData, RoleIndex, SingleSourceRoleChangeTargets as Changes};

/// A named room policy a room can be created with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Preset {
    /// A conversation of exactly two users, fixed at creation.
    Dm,
    /// A group whose members add others; owners and admins moderate (the default).
    Private,
    /// Guests read, speakers talk, moderators decide who is which (Appendix A.3).
    Moderated,
    /// Like `private`, and anyone may join by themselves (role 0 holds canOpenJoin).
    Public,
}

impl Preset {
    /// Every preset, in the order they are listed to users.
    pub const ALL: [Preset; 4] = [
        Preset::Dm,
        Preset::Private,
        Preset::Moderated,
        Preset::Public,
    ];

    /// The preset's name as commands and configuration spell it.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Dm => "dm",
            Preset::Private => "private",
            Preset::Moderated => "moderated",
            Preset::Public => "public",
        }
    }

    /// The roles list of a room created with this preset.
    pub fn roles(self) -> RoleData {
        match self {
            Preset::Dm => dm_roles(),
            Preset::Private => default_roles(),
            Preset::Moderated => moderated_roles(),
            Preset::Public => public_roles(),
        }
    }

    /// The base room policy of a room created with this preset.
    pub fn base_policy(self) -> BaseRoomPolicy {
        let mut base = BaseRoomPolicy {
            policy_component_ids: vec![RoleData::COMPONENT_ID, BaseRoomPolicy::COMPONENT_ID],
            ..BaseRoomPolicy::default()
        };
        match self {
            Preset::Dm => {
                base.fixed_membership = true;
                base.max_users = Some(2);
            }
            Preset::Public => base.discoverable = true,
            Preset::Private | Preset::Moderated => {}
        }
        base
    }

    /// The role the room's creator holds.
    pub fn creator_role(self) -> RoleIndex {
        match self {
            Preset::Dm => DM_PARTICIPANT,
            Preset::Private | Preset::Public => RoleIndex::DEFAULT_OWNER,
            Preset::Moderated => SUPER_ADMIN,
        }
    }

    /// The policy components a room of this preset starts with, as (component ID, bytes).
    pub fn components(self) -> Result<Vec<(u16, Vec<u8>)>, Error> {
        Ok(vec![
            (RoleData::COMPONENT_ID, self.roles().encode()?),
            (BaseRoomPolicy::COMPONENT_ID, self.base_policy().encode()?),
        ])
    }

    /// The preset whose roles list is exactly `roles`, if any.
    pub fn with_roles(roles: &RoleData) -> Option<Preset> {
        Self::ALL.into_iter().find(|p| p.roles() == *roles)
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown preset {s:?} (dm, private, moderated or public)"))
    }
}

/// Role 2 of the `dm` preset: both users hold it.
const DM_PARTICIPANT: RoleIndex = RoleIndex(2);
/// Role 6 of the `moderated` preset: the creator.
const SUPER_ADMIN: RoleIndex = RoleIndex(6);

/// Role 0 and role 1 as every preset has them: not listed, and banned; neither has clients.
fn base_roles() -> (Role, Role) {
    let mut no_role = Role::new(RoleIndex::NON_PARTICIPANT, "no_role");
    no_role.role_description = b"not in the participant list".to_vec();
    no_role.maximum_active_participants_constraint = Some(0);
    let mut banned = Role::new(RoleIndex::BANNED, "banned");
    banned.role_description = b"banned; may not rejoin until unbanned".to_vec();
    banned.maximum_active_participants_constraint = Some(0);
    (no_role, banned)
}

/// `dm`: two equal participants who talk and manage their own devices; nobody can be added,
/// removed, banned or leave (fixed membership, room-policy-03 §5).
fn dm_roles() -> RoleData {
    let (no_role, banned) = base_roles();
    let mut participant = Role::new(DM_PARTICIPANT, "participant");
    participant.role_description = b"one of the two people in the conversation".to_vec();
    participant.role_capabilities = MEMBER_CAPABILITIES
        .iter()
        .copied()
        .filter(|c| *c != C::CAN_ADD_PARTICIPANT && *c != C::CAN_REMOVE_SELF)
        .collect();
    RoleData {
        roles: vec![no_role, banned, participant],
    }
}

/// `public`: the `private` roles, and role 0 may join as a member by itself (canOpenJoin).
fn public_roles() -> RoleData {
    let mut roles = default_roles();
    if let Some(no_role) = roles
        .roles
        .iter_mut()
        .find(|r| r.role_index == RoleIndex::NON_PARTICIPANT)
    {
        no_role.role_capabilities = vec![C::CAN_OPEN_JOIN, C::CAN_USE_JOIN_CODE];
        no_role.authorized_role_changes = vec![Changes::new(
            RoleIndex::NON_PARTICIPANT,
            [RoleIndex::DEFAULT_MEMBER],
        )];
    }
    roles
}

/// `moderated` (Appendix A.3 without the policy_enforcer role, which belongs to the hub's
/// lifecycle work; the moderator role has no minimum, as the creator is the super_admin).
fn moderated_roles() -> RoleData {
    let r = RoleIndex;
    let (mut no_role, banned) = base_roles();
    no_role.role_capabilities = vec![C::CAN_USE_JOIN_CODE, C::CAN_KNOCK];
    no_role.authorized_role_changes = vec![Changes::new(r(0), [r(2), r(3)])];

    let guest_caps = vec![
        C::CAN_REMOVE_SELF,
        C::CAN_RECEIVE_MESSAGE,
        C::CAN_COPY_MESSAGE,
        C::CAN_REACT_TO_MESSAGE,
        C::CAN_DELETE_OWN_REACTION,
        C::CAN_FOLLOW_LINK,
        C::CAN_COPY_LINK,
        C::CAN_DOWNLOAD_IMAGE,
        C::CAN_DOWNLOAD_VIDEO,
        C::CAN_DOWNLOAD_AUDIO,
    ];
    let attendee_caps = [
        guest_caps.clone(),
        vec![
            C::CAN_ADD_OWN_CLIENT,
            C::CAN_JOIN_IF_PREAUTHORIZED,
            C::CAN_REMOVE_OWN_CLIENT,
            C::CAN_CHANGE_OWN_ROLE,
            C::CAN_REPORT_ABUSE,
            C::CAN_REPLY_IN_TOPIC,
            C::CAN_DOWNLOAD_ATTACHMENT,
        ],
    ]
    .concat();
    let speaker_caps = [
        attendee_caps.clone(),
        vec![
            C::CAN_SEND_MESSAGE,
            C::CAN_REPLY_TO_MESSAGE,
            C::CAN_EDIT_OWN_MESSAGE,
            C::CAN_DELETE_OWN_MESSAGE,
            C::CAN_START_TOPIC,
            C::CAN_UPLOAD_IMAGE,
            C::CAN_UPLOAD_VIDEO,
            C::CAN_UPLOAD_AUDIO,
            C::CAN_UPLOAD_ATTACHMENT,
            C::CAN_SEND_LINK,
            C::CAN_SEND_LINK_PREVIEW,
        ],
    ]
    .concat();
    let moderator_caps = [
        speaker_caps.clone(),
        vec![
            C::CAN_ADD_PARTICIPANT,
            C::CAN_REMOVE_PARTICIPANT,
            C::CAN_BAN,
            C::CAN_UNBAN,
            C::CAN_KICK,
            C::CAN_CHANGE_USER_ROLE,
            C::CAN_CREATE_JOIN_CODE,
            C::CAN_DELETE_JOIN_CODE,
            C::CAN_DELETE_OTHER_REACTION,
            C::CAN_DELETE_OTHER_MESSAGE,
            C::CAN_EDIT_OWN_TOPIC,
            C::CAN_EDIT_OTHER_TOPIC,
            C::CAN_CHANGE_ROOM_NAME,
            C::CAN_CHANGE_ROOM_AVATAR,
            C::CAN_CHANGE_ROOM_SUBJECT,
            C::CAN_CHANGE_ROOM_MOOD,
            C::CAN_CHANGE_APP_COMPONENTS,
        ],
    ]
    .concat();
    let super_caps = [
        moderator_caps.clone(),
        vec![
            C::CAN_CHANGE_ROOM_DESCRIPTION,
            C::CAN_CHANGE_ROOM_MEMBERSHIP_STYLE,
            C::CAN_CHANGE_ROLE_DEFINITIONS,
            C::CAN_CHANGE_PREAUTHORIZED_USER_LIST,
            C::CAN_CHANGE_OTHER_POLICY_ATTRIBUTE,
            C::CAN_CHANGE_MLS_OPERATIONAL_POLICIES,
            C::CAN_DESTROY_ROOM,
            C::CAN_SEND_MLS_REINIT_PROPOSAL,
        ],
    ]
    .concat();

    let role = |index: u32, name: &str, about: &[u8], caps: Vec<C>, changes: Vec<Changes>| {
        let mut role = Role::new(r(index), name);
        role.role_description = about.to_vec();
        role.role_capabilities = caps;
        role.authorized_role_changes = changes;
        role
    };
    let all_but =
        |from: u32, top: u32| Changes::new(r(from), (0..=top).filter(|t| *t != from).map(r));
    RoleData {
        roles: vec![
            no_role,
            banned,
            role(
                2,
                "guest",
                b"reads and reacts",
                guest_caps,
                vec![Changes::new(r(0), [r(2)]), Changes::new(r(2), [r(0)])],
            ),
            role(
                3,
                "attendee",
                b"reads, reacts and replies in topics",
                attendee_caps,
                vec![Changes::new(r(0), [r(3)]), Changes::new(r(3), [r(0)])],
            ),
            role(
                4,
                "speaker",
                b"may send messages",
                speaker_caps,
                vec![Changes::new(r(0), [r(4)]), Changes::new(r(4), [r(0)])],
            ),
            role(
                5,
                "moderator",
                b"decides who speaks, removes and bans",
                moderator_caps,
                (0..=5).map(|from| all_but(from, 5)).collect(),
            ),
            role(
                6,
                "super_admin",
                b"owns the room and its policy",
                super_caps,
                (0..=6).map(|from| all_but(from, 6)).collect(),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::RoomPolicy;

    #[test]
    fn every_preset_is_a_valid_policy_that_encodes() {
        for preset in Preset::ALL {
            RoomPolicy::new(preset.roles()).unwrap();
            let components = preset.components().unwrap();
            assert_eq!(components.len(), 2);
            let roles = RoleData::decode(&components[0].1).unwrap();
            assert_eq!(Preset::with_roles(&roles), Some(preset));
            assert!(preset.roles().role(preset.creator_role()).is_some());
            assert_eq!(preset.name().parse::<Preset>(), Ok(preset));
        }
    }

    #[test]
    fn only_the_dm_has_fixed_membership_and_no_role_there_adds_users() {
        for preset in Preset::ALL {
            let fixed = preset.base_policy().fixed_membership;
            assert_eq!(fixed, preset == Preset::Dm);
        }
        let dm = Preset::Dm.roles();
        assert!(
            dm.roles
                .iter()
                .all(|r| !r.has_capability(C::CAN_ADD_PARTICIPANT))
        );
        assert_eq!(Preset::Dm.base_policy().max_users, Some(2));
    }

    #[test]
    fn only_the_public_preset_lets_role_0_join_by_itself() {
        for preset in Preset::ALL {
            let open = preset
                .roles()
                .role(RoleIndex::NON_PARTICIPANT)
                .is_some_and(|r| r.has_capability(C::CAN_OPEN_JOIN));
            assert_eq!(open, preset == Preset::Public);
        }
    }

    #[test]
    fn in_a_moderated_room_guests_cannot_send_and_speakers_can() {
        let policy = RoomPolicy::new(Preset::Moderated.roles()).unwrap();
        assert!(!policy.has_capability(RoleIndex(2), C::CAN_SEND_MESSAGE));
        assert!(!policy.has_capability(RoleIndex(3), C::CAN_SEND_MESSAGE));
        assert!(policy.has_capability(RoleIndex(4), C::CAN_SEND_MESSAGE));
        assert!(policy.has_capability(RoleIndex(5), C::CAN_CHANGE_USER_ROLE));
    }

    #[test]
    fn an_unknown_preset_name_is_refused() {
        assert!("group".parse::<Preset>().is_err());
    }
}
