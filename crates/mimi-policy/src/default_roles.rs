//! The default role set for a normal group room (modelled on draft-ietf-mimi-room-policy-03
//! Appendix A.1, with member removal reserved for admins; IN-POLICY-1).

use crate::capabilities::Capability;
use crate::roles::{Role, RoleData, RoleIndex, SingleSourceRoleChangeTargets};

impl RoleIndex {
    /// Role 2 of [`default_roles`]: ordinary member.
    pub const DEFAULT_MEMBER: RoleIndex = RoleIndex(2);
    /// Role 3 of [`default_roles`]: admin.
    pub const DEFAULT_ADMIN: RoleIndex = RoleIndex(3);
    /// Role 4 of [`default_roles`]: owner; the room creator gets this role.
    pub const DEFAULT_OWNER: RoleIndex = RoleIndex(4);
}

/// What every member may do: send and read, add users as members, manage its own clients, leave.
pub(crate) const MEMBER_CAPABILITIES: &[Capability] = &[
    Capability::CAN_ADD_PARTICIPANT,
    Capability::CAN_ADD_OWN_CLIENT,
    Capability::CAN_JOIN_IF_PREAUTHORIZED,
    Capability::CAN_REMOVE_OWN_CLIENT,
    Capability::CAN_REMOVE_SELF,
    Capability::CAN_SEND_MESSAGE,
    Capability::CAN_RECEIVE_MESSAGE,
    Capability::CAN_COPY_MESSAGE,
    Capability::CAN_REPORT_ABUSE,
    Capability::CAN_REPLY_TO_MESSAGE,
    Capability::CAN_REACT_TO_MESSAGE,
    Capability::CAN_EDIT_REACTION,
    Capability::CAN_DELETE_OWN_REACTION,
    Capability::CAN_EDIT_OWN_MESSAGE,
    Capability::CAN_DELETE_OWN_MESSAGE,
    Capability::CAN_START_TOPIC,
    Capability::CAN_REPLY_IN_TOPIC,
    Capability::CAN_EDIT_OWN_TOPIC,
    Capability::CAN_UPLOAD_IMAGE,
    Capability::CAN_UPLOAD_AUDIO,
    Capability::CAN_UPLOAD_VIDEO,
    Capability::CAN_UPLOAD_ATTACHMENT,
    Capability::CAN_DOWNLOAD_IMAGE,
    Capability::CAN_DOWNLOAD_AUDIO,
    Capability::CAN_DOWNLOAD_VIDEO,
    Capability::CAN_DOWNLOAD_ATTACHMENT,
    Capability::CAN_SEND_LINK,
    Capability::CAN_SEND_LINK_PREVIEW,
    Capability::CAN_FOLLOW_LINK,
    Capability::CAN_COPY_LINK,
    Capability::CAN_CHANGE_ROOM_NAME,
    Capability::CAN_CHANGE_ROOM_AVATAR,
    Capability::CAN_CHANGE_ROOM_SUBJECT,
    Capability::CAN_CHANGE_ROOM_MOOD,
    Capability::CAN_CHANGE_APP_COMPONENTS,
    Capability::CAN_START_CALL,
    Capability::CAN_JOIN_CALL,
    Capability::CAN_SEND_AUDIO,
    Capability::CAN_RECEIVE_AUDIO,
    Capability::CAN_SEND_VIDEO,
    Capability::CAN_RECEIVE_VIDEO,
    Capability::CAN_SHARE_SCREEN,
    Capability::CAN_VIEW_SHARED_SCREEN,
];

/// What admins may do on top of [`MEMBER_CAPABILITIES`]: moderate users and content.
const ADMIN_EXTRA_CAPABILITIES: &[Capability] = &[
    Capability::CAN_REMOVE_PARTICIPANT,
    Capability::CAN_BAN,
    Capability::CAN_UNBAN,
    Capability::CAN_KICK,
    Capability::CAN_CHANGE_USER_ROLE,
    Capability::CAN_DELETE_OTHER_MESSAGE,
    Capability::CAN_DELETE_OTHER_REACTION,
    Capability::CAN_EDIT_OTHER_TOPIC,
    Capability::CAN_CHANGE_ROOM_DESCRIPTION,
    Capability::CAN_CREATE_JOIN_CODE,
    Capability::CAN_DELETE_JOIN_CODE,
];

/// What owners may do on top of admins: change the policy itself and destroy the room.
const OWNER_EXTRA_CAPABILITIES: &[Capability] = &[
    Capability::CAN_DESTROY_ROOM,
    Capability::CAN_CHANGE_ROOM_MEMBERSHIP_STYLE,
    Capability::CAN_CHANGE_ROLE_DEFINITIONS,
    Capability::CAN_CHANGE_PREAUTHORIZED_USER_LIST,
    Capability::CAN_CHANGE_OTHER_POLICY_ATTRIBUTE,
    Capability::CAN_CHANGE_MLS_OPERATIONAL_POLICIES,
    Capability::CAN_SEND_MLS_REINIT_PROPOSAL,
];

/// The default role set: 0 no_role, 1 banned, 2 member, 3 admin, 4 owner (see the README).
pub fn default_roles() -> RoleData {
    let (none, banned, member, admin, owner) = (
        RoleIndex::NON_PARTICIPANT,
        RoleIndex::BANNED,
        RoleIndex::DEFAULT_MEMBER,
        RoleIndex::DEFAULT_ADMIN,
        RoleIndex::DEFAULT_OWNER,
    );

    let mut no_role = Role::new(none, "no_role");
    no_role.role_description = b"not in the participant list".to_vec();
    no_role.maximum_active_participants_constraint = Some(0);
    // Someone holding one of the room's join links may join as a member; anyone may knock.
    no_role.role_capabilities = vec![Capability::CAN_USE_JOIN_CODE, Capability::CAN_KNOCK];
    no_role.authorized_role_changes = vec![SingleSourceRoleChangeTargets::new(none, [member])];

    let mut banned_role = Role::new(banned, "banned");
    banned_role.role_description = b"banned; may not rejoin until unbanned".to_vec();
    banned_role.maximum_active_participants_constraint = Some(0);

    let mut member_role = Role::new(member, "member");
    member_role.role_description = b"ordinary participant".to_vec();
    member_role.role_capabilities = MEMBER_CAPABILITIES.to_vec();
    member_role.authorized_role_changes = vec![
        // Add other users as members (canAddParticipant).
        SingleSourceRoleChangeTargets::new(none, [member]),
        // Leave (canRemoveSelf); without canRemoveParticipant this cannot remove others.
        SingleSourceRoleChangeTargets::new(member, [none]),
    ];

    let mut admin_role = Role::new(admin, "admin");
    admin_role.role_description = b"moderates users and content".to_vec();
    admin_role.role_capabilities = [MEMBER_CAPABILITIES, ADMIN_EXTRA_CAPABILITIES].concat();
    admin_role.authorized_role_changes = vec![
        // Add as banned (pre-emptive ban), member or admin.
        SingleSourceRoleChangeTargets::new(none, [banned, member, admin]),
        // Unban to member, or drop a banned entry.
        SingleSourceRoleChangeTargets::new(banned, [none, member]),
        // Remove, ban or promote members.
        SingleSourceRoleChangeTargets::new(member, [none, banned, admin]),
        // Leave or demote; `3 -> 0` also lets admins remove other admins (IN-POLICY-2).
        SingleSourceRoleChangeTargets::new(admin, [none, member]),
    ];

    let mut owner_role = Role::new(owner, "owner");
    owner_role.role_description = b"owns the room and its policy".to_vec();
    owner_role.role_capabilities = [
        MEMBER_CAPABILITIES,
        ADMIN_EXTRA_CAPABILITIES,
        OWNER_EXTRA_CAPABILITIES,
    ]
    .concat();
    // The room always keeps an owner: the last one cannot leave or be demoted.
    owner_role.minimum_participants_constraint = 1;
    owner_role.authorized_role_changes = vec![
        SingleSourceRoleChangeTargets::new(none, [banned, member, admin, owner]),
        SingleSourceRoleChangeTargets::new(banned, [none, member, admin, owner]),
        SingleSourceRoleChangeTargets::new(member, [none, banned, admin, owner]),
        SingleSourceRoleChangeTargets::new(admin, [none, banned, member, owner]),
        SingleSourceRoleChangeTargets::new(owner, [none, banned, member, admin]),
    ];

    RoleData {
        roles: vec![no_role, banned_role, member_role, admin_role, owner_role],
    }
}
