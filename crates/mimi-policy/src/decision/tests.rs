//! Unit tests of the authorization decision, one or more per rule ID of `VALIDATION.md`.

use super::*;
use crate::roles::SingleSourceRoleChangeTargets;

const NONE: RoleIndex = RoleIndex::NON_PARTICIPANT;
const BANNED: RoleIndex = RoleIndex::BANNED;
const MEMBER: RoleIndex = RoleIndex::DEFAULT_MEMBER;
const ADMIN: RoleIndex = RoleIndex::DEFAULT_ADMIN;
const OWNER: RoleIndex = RoleIndex::DEFAULT_OWNER;

fn policy() -> RoomPolicy {
    RoomPolicy::default_room()
}

/// Counts with one active participant per listed role.
fn counts(roles: &[RoleIndex]) -> RoleCounts {
    roles.iter().map(|&r| (r, true)).collect()
}

/// A typical room after the change: one owner, one admin, two members.
fn room() -> RoleCounts {
    counts(&[OWNER, ADMIN, MEMBER, MEMBER])
}

fn add(user_role: RoleIndex) -> ParticipantChange {
    ParticipantChange::Add { user_role }
}

fn remove(target_role: RoleIndex) -> ParticipantChange {
    ParticipantChange::Remove {
        target_role,
        is_self: false,
    }
}

fn leave(role: RoleIndex) -> ParticipantChange {
    ParticipantChange::Remove {
        target_role: role,
        is_self: true,
    }
}

fn change(from: RoleIndex, to: RoleIndex) -> ParticipantChange {
    ParticipantChange::ChangeRole {
        from,
        to,
        is_self: false,
    }
}

fn missing(role: RoleIndex, capability: Capability) -> Result<(), PolicyDenied> {
    Err(PolicyDenied::MissingCapability { role, capability })
}

fn not_authorized(role: RoleIndex, from: RoleIndex, to: RoleIndex) -> Result<(), PolicyDenied> {
    Err(PolicyDenied::RoleChangeNotAuthorized { role, from, to })
}

// ---- construction: POL-001 to POL-005

#[test]
fn default_roles_form_a_valid_policy() {
    let policy = RoomPolicy::new(default_roles()).unwrap();
    assert_eq!(policy.roles(), &default_roles());
    assert_eq!(policy.role(BANNED).unwrap().role_name, b"banned");
    assert!(policy.has_capability(OWNER, Capability::CAN_DESTROY_ROOM));
    assert!(!policy.has_capability(RoleIndex(9), Capability::CAN_SEND_MESSAGE));
}

#[test]
fn rejects_duplicate_role_indexes() {
    let mut roles = default_roles();
    roles.roles.push(Role::new(MEMBER, "again"));
    assert_eq!(
        RoomPolicy::new(roles),
        Err(Error::DuplicateRoleIndex(MEMBER))
    );
}

#[test]
fn rejects_can_ban_without_a_role_one_named_banned() {
    let mut roles = default_roles();
    roles.roles[1].role_name = b"blocked".to_vec();
    assert_eq!(
        RoomPolicy::new(roles),
        Err(Error::BannedRoleMissing {
            role: ADMIN,
            capability: Capability::CAN_BAN
        })
    );
}

#[test]
fn accepts_a_policy_without_banned_role_when_nobody_bans() {
    let mut member = Role::new(MEMBER, "member");
    member.role_capabilities = vec![Capability::CAN_SEND_MESSAGE];
    assert!(
        RoomPolicy::new(RoleData {
            roles: vec![member]
        })
        .is_ok()
    );
}

#[test]
fn rejects_can_open_join_on_a_non_zero_role() {
    let mut roles = default_roles();
    roles.roles[2]
        .role_capabilities
        .push(Capability::CAN_OPEN_JOIN);
    assert_eq!(
        RoomPolicy::new(roles),
        Err(Error::OpenJoinOnNonZeroRole(MEMBER))
    );
}

#[test]
fn rejects_role_changes_to_undefined_roles() {
    let mut roles = default_roles();
    roles.roles[2]
        .authorized_role_changes
        .push(SingleSourceRoleChangeTargets::new(MEMBER, [RoleIndex(7)]));
    assert_eq!(
        RoomPolicy::new(roles),
        Err(Error::UnknownRoleReference {
            role: MEMBER,
            referenced: RoleIndex(7)
        })
    );
}

#[test]
fn accepts_role_zero_references_without_a_role_zero_definition() {
    let mut roles = default_roles();
    roles.roles.remove(0);
    assert!(RoomPolicy::new(roles).is_ok());
}

#[test]
fn rejects_over_long_vectors_built_in_code() {
    let mut roles = default_roles();
    roles.roles[2].role_name = vec![b'x'; 10_000];
    assert!(matches!(
        RoomPolicy::new(roles),
        Err(Error::VectorTooLong { .. })
    ));
}

// ---- adds: POL-006, POL-010 to POL-012

#[test]
fn member_can_add_another_user_as_member() {
    let after = counts(&[OWNER, MEMBER, MEMBER]);
    assert_eq!(
        policy().authorize_changes(MEMBER, &[add(MEMBER)], &after),
        Ok(())
    );
}

#[test]
fn member_cannot_add_a_user_as_admin() {
    assert_eq!(
        policy().authorize_changes(MEMBER, &[add(ADMIN)], &room()),
        not_authorized(MEMBER, NONE, ADMIN)
    );
}

#[test]
fn admin_can_add_a_user_as_admin() {
    assert_eq!(
        policy().authorize_changes(ADMIN, &[add(ADMIN)], &room()),
        Ok(())
    );
}

#[test]
fn banned_user_cannot_add_anyone() {
    assert_eq!(
        policy().authorize_changes(BANNED, &[add(MEMBER)], &room()),
        missing(BANNED, Capability::CAN_ADD_PARTICIPANT)
    );
}

#[test]
fn non_participant_cannot_add_anyone() {
    assert_eq!(
        policy().authorize_changes(NONE, &[add(MEMBER)], &room()),
        missing(NONE, Capability::CAN_ADD_PARTICIPANT)
    );
}

#[test]
fn unknown_actor_role_has_no_capabilities() {
    assert_eq!(
        policy().authorize_changes(RoleIndex(42), &[add(MEMBER)], &room()),
        missing(RoleIndex(42), Capability::CAN_ADD_PARTICIPANT)
    );
}

#[test]
fn adding_a_user_as_role_zero_is_invalid() {
    assert_eq!(
        policy().authorize_changes(OWNER, &[add(NONE)], &room()),
        Err(PolicyDenied::InvalidChange {
            from: NONE,
            to: NONE
        })
    );
}

#[test]
fn adding_a_user_with_an_undefined_role_is_denied() {
    assert_eq!(
        policy().authorize_changes(OWNER, &[add(RoleIndex(9))], &room()),
        Err(PolicyDenied::UnknownRole(RoleIndex(9)))
    );
}

#[test]
fn admin_can_pre_emptively_ban_a_user_by_adding_as_banned() {
    let mut after = room();
    after.add_participant(BANNED, false);
    assert_eq!(
        policy().authorize_changes(ADMIN, &[add(BANNED)], &after),
        Ok(())
    );
}

#[test]
fn member_cannot_add_a_user_as_banned() {
    assert_eq!(
        policy().authorize_changes(MEMBER, &[add(BANNED)], &room()),
        not_authorized(MEMBER, NONE, BANNED)
    );
}

#[test]
fn can_ban_alone_authorizes_adding_as_banned() {
    let mut roles = default_roles();
    let mut enforcer = Role::new(RoleIndex(5), "policy_enforcer");
    enforcer.role_capabilities = vec![Capability::CAN_BAN];
    enforcer.authorized_role_changes = vec![SingleSourceRoleChangeTargets::new(NONE, [BANNED])];
    roles.roles.push(enforcer);
    let policy = RoomPolicy::new(roles).unwrap();
    let mut after = room();
    after.add_participant(BANNED, false);
    assert_eq!(
        policy.authorize_changes(RoleIndex(5), &[add(BANNED)], &after),
        Ok(())
    );
    assert_eq!(
        policy.authorize_changes(RoleIndex(5), &[add(MEMBER)], &after),
        missing(RoleIndex(5), Capability::CAN_ADD_PARTICIPANT)
    );
}

// ---- removals: POL-020 to POL-022

#[test]
fn member_can_leave() {
    let after = counts(&[OWNER, ADMIN, MEMBER]);
    assert_eq!(
        policy().authorize_changes(MEMBER, &[leave(MEMBER)], &after),
        Ok(())
    );
}

#[test]
fn banned_user_cannot_remove_itself() {
    assert_eq!(
        policy().authorize_changes(BANNED, &[leave(BANNED)], &room()),
        missing(BANNED, Capability::CAN_REMOVE_SELF)
    );
}

#[test]
fn leaving_must_start_from_the_actors_own_role() {
    assert_eq!(
        policy().authorize_changes(MEMBER, &[leave(OWNER)], &room()),
        Err(PolicyDenied::InvalidChange {
            from: OWNER,
            to: NONE
        })
    );
}

#[test]
fn can_remove_self_needs_an_entry_to_role_zero() {
    let mut roles = default_roles();
    roles.roles[2].authorized_role_changes.pop();
    let policy = RoomPolicy::new(roles).unwrap();
    assert_eq!(
        policy.authorize_changes(MEMBER, &[leave(MEMBER)], &room()),
        not_authorized(MEMBER, MEMBER, NONE)
    );
}

#[test]
fn member_cannot_remove_another_member() {
    let after = counts(&[OWNER, MEMBER]);
    assert_eq!(
        policy().authorize_changes(MEMBER, &[remove(MEMBER)], &after),
        missing(MEMBER, Capability::CAN_REMOVE_PARTICIPANT)
    );
}

#[test]
fn admin_can_remove_a_member() {
    let after = counts(&[OWNER, ADMIN, MEMBER]);
    assert_eq!(
        policy().authorize_changes(ADMIN, &[remove(MEMBER)], &after),
        Ok(())
    );
}

#[test]
fn admin_cannot_remove_an_owner() {
    let after = counts(&[OWNER, ADMIN]);
    assert_eq!(
        policy().authorize_changes(ADMIN, &[remove(OWNER)], &after),
        not_authorized(ADMIN, OWNER, NONE)
    );
}

#[test]
fn admin_can_remove_another_admin() {
    // IN-POLICY-2: the 3 -> 0 entry that lets admins leave also lets them remove admins.
    let after = counts(&[OWNER, ADMIN]);
    assert_eq!(
        policy().authorize_changes(ADMIN, &[remove(ADMIN)], &after),
        Ok(())
    );
}

#[test]
fn removing_a_user_with_an_undefined_role_is_denied() {
    assert_eq!(
        policy().authorize_changes(OWNER, &[remove(RoleIndex(8))], &room()),
        Err(PolicyDenied::UnknownRole(RoleIndex(8)))
    );
}

#[test]
fn admin_can_drop_a_banned_entry() {
    assert_eq!(
        policy().authorize_changes(ADMIN, &[remove(BANNED)], &room()),
        Ok(())
    );
}

// ---- role changes: POL-030 to POL-035

#[test]
fn admin_can_ban_a_member() {
    let mut after = counts(&[OWNER, ADMIN, MEMBER]);
    after.add_participant(BANNED, false);
    assert_eq!(
        policy().authorize_changes(ADMIN, &[change(MEMBER, BANNED)], &after),
        Ok(())
    );
}

#[test]
fn admin_cannot_ban_another_admin() {
    let mut after = counts(&[OWNER, ADMIN]);
    after.add_participant(BANNED, false);
    assert_eq!(
        policy().authorize_changes(ADMIN, &[change(ADMIN, BANNED)], &after),
        not_authorized(ADMIN, ADMIN, BANNED)
    );
}

#[test]
fn member_cannot_ban() {
    assert_eq!(
        policy().authorize_changes(MEMBER, &[change(MEMBER, BANNED)], &room()),
        missing(MEMBER, Capability::CAN_BAN)
    );
}

#[test]
fn ban_fails_while_the_banned_user_keeps_clients() {
    let mut after = counts(&[OWNER, ADMIN, MEMBER]);
    after.add_participant(BANNED, true);
    assert_eq!(
        policy().authorize_changes(ADMIN, &[change(MEMBER, BANNED)], &after),
        Err(PolicyDenied::AboveMaximumActiveParticipants {
            role: BANNED,
            count: 1,
            max: 0
        })
    );
}

#[test]
fn admin_can_unban_to_member() {
    assert_eq!(
        policy().authorize_changes(ADMIN, &[change(BANNED, MEMBER)], &room()),
        Ok(())
    );
}

#[test]
fn admin_cannot_unban_straight_to_admin() {
    assert_eq!(
        policy().authorize_changes(ADMIN, &[change(BANNED, ADMIN)], &room()),
        not_authorized(ADMIN, BANNED, ADMIN)
    );
}

#[test]
fn member_cannot_unban() {
    assert_eq!(
        policy().authorize_changes(MEMBER, &[change(BANNED, MEMBER)], &room()),
        missing(MEMBER, Capability::CAN_UNBAN)
    );
}

#[test]
fn can_change_user_role_alone_authorizes_a_ban() {
    // IN-POLICY-4: §8.1.3 notes canChangeUserRole "would allow the same action".
    let mut roles = default_roles();
    let mut mover = Role::new(RoleIndex(5), "mover");
    mover.role_capabilities = vec![Capability::CAN_CHANGE_USER_ROLE];
    mover.authorized_role_changes = vec![
        SingleSourceRoleChangeTargets::new(MEMBER, [BANNED]),
        SingleSourceRoleChangeTargets::new(BANNED, [MEMBER]),
    ];
    roles.roles.push(mover);
    let policy = RoomPolicy::new(roles).unwrap();
    let mut after = room();
    after.add_participant(BANNED, false);
    let mover = RoleIndex(5);
    assert_eq!(
        policy.authorize_changes(mover, &[change(MEMBER, BANNED)], &after),
        Ok(())
    );
    assert_eq!(
        policy.authorize_changes(mover, &[change(BANNED, MEMBER)], &after),
        Ok(())
    );
}

#[test]
fn role_one_not_named_banned_is_an_ordinary_role() {
    let mut roles = default_roles();
    for role in &mut roles.roles {
        role.role_capabilities
            .retain(|&c| c != Capability::CAN_BAN && c != Capability::CAN_UNBAN);
    }
    roles.roles[1].role_name = b"guest".to_vec();
    roles.roles[1].maximum_active_participants_constraint = None;
    let policy = RoomPolicy::new(roles).unwrap();
    // With canBan gone, the admin's 2 -> 1 entry is an ordinary canChangeUserRole move.
    assert_eq!(
        policy.authorize_changes(ADMIN, &[change(MEMBER, BANNED)], &room()),
        Ok(())
    );
    // And role-1 holders count towards max_users.
    let policy = policy.with_max_users(Some(4));
    let mut after = room();
    after.add_participant(BANNED, true);
    assert_eq!(
        policy.authorize_changes(ADMIN, &[add(BANNED)], &after),
        Err(PolicyDenied::TooManyUsers { count: 5, max: 4 })
    );
}

#[test]
fn admin_can_promote_a_member_to_admin() {
    assert_eq!(
        policy().authorize_changes(ADMIN, &[change(MEMBER, ADMIN)], &room()),
        Ok(())
    );
}

#[test]
fn admin_can_demote_another_admin() {
    let after = counts(&[OWNER, MEMBER, MEMBER]);
    assert_eq!(
        policy().authorize_changes(ADMIN, &[change(ADMIN, MEMBER)], &after),
        Ok(())
    );
}

#[test]
fn admin_cannot_promote_to_owner() {
    assert_eq!(
        policy().authorize_changes(ADMIN, &[change(MEMBER, OWNER)], &room()),
        not_authorized(ADMIN, MEMBER, OWNER)
    );
}

#[test]
fn member_cannot_change_roles() {
    assert_eq!(
        policy().authorize_changes(MEMBER, &[change(MEMBER, ADMIN)], &room()),
        missing(MEMBER, Capability::CAN_CHANGE_USER_ROLE)
    );
}

#[test]
fn owner_can_promote_an_admin_to_owner() {
    let after = counts(&[OWNER, OWNER, MEMBER]);
    assert_eq!(
        policy().authorize_changes(OWNER, &[change(ADMIN, OWNER)], &after),
        Ok(())
    );
}

#[test]
fn role_change_to_or_from_role_zero_is_invalid() {
    for (from, to) in [(MEMBER, NONE), (NONE, MEMBER)] {
        assert_eq!(
            policy().authorize_changes(OWNER, &[change(from, to)], &room()),
            Err(PolicyDenied::InvalidChange { from, to })
        );
    }
}

#[test]
fn role_change_to_an_undefined_role_is_denied() {
    assert_eq!(
        policy().authorize_changes(OWNER, &[change(MEMBER, RoleIndex(6))], &room()),
        Err(PolicyDenied::UnknownRole(RoleIndex(6)))
    );
}

#[test]
fn own_role_change_needs_can_change_own_role() {
    let self_promote = ParticipantChange::ChangeRole {
        from: ADMIN,
        to: OWNER,
        is_self: true,
    };
    assert_eq!(
        policy().authorize_changes(ADMIN, &[self_promote], &room()),
        missing(ADMIN, Capability::CAN_CHANGE_OWN_ROLE)
    );
}

#[test]
fn own_role_change_with_can_change_own_role_follows_the_entries() {
    let mut roles = default_roles();
    roles.roles[2]
        .role_capabilities
        .push(Capability::CAN_CHANGE_OWN_ROLE);
    roles.roles[2]
        .authorized_role_changes
        .push(SingleSourceRoleChangeTargets::new(MEMBER, [ADMIN]));
    let policy = RoomPolicy::new(roles).unwrap();
    let to = |to| ParticipantChange::ChangeRole {
        from: MEMBER,
        to,
        is_self: true,
    };
    assert_eq!(
        policy.authorize_changes(MEMBER, &[to(ADMIN)], &room()),
        Ok(())
    );
    assert_eq!(
        policy.authorize_changes(MEMBER, &[to(OWNER)], &room()),
        not_authorized(MEMBER, MEMBER, OWNER)
    );
}

#[test]
fn own_role_change_must_start_from_the_actors_role() {
    let change = ParticipantChange::ChangeRole {
        from: MEMBER,
        to: ADMIN,
        is_self: true,
    };
    assert_eq!(
        policy().authorize_changes(OWNER, &[change], &room()),
        Err(PolicyDenied::InvalidChange {
            from: MEMBER,
            to: ADMIN
        })
    );
}

#[test]
fn every_change_of_a_commit_must_pass() {
    let after = counts(&[OWNER, MEMBER, MEMBER]);
    assert_eq!(
        policy().authorize_changes(MEMBER, &[add(MEMBER), remove(MEMBER)], &after),
        missing(MEMBER, Capability::CAN_REMOVE_PARTICIPANT)
    );
    assert_eq!(
        policy().authorize_changes(OWNER, &[add(MEMBER), remove(MEMBER)], &after),
        Ok(())
    );
}

#[test]
fn an_empty_change_set_is_allowed() {
    assert_eq!(policy().authorize_changes(BANNED, &[], &room()), Ok(()));
}

// ---- constraints: POL-040 to POL-045

#[test]
fn last_owner_cannot_leave() {
    let after = counts(&[ADMIN, MEMBER]);
    assert_eq!(
        policy().authorize_changes(OWNER, &[leave(OWNER)], &after),
        Err(PolicyDenied::BelowMinimumParticipants {
            role: OWNER,
            count: 0,
            min: 1
        })
    );
}

#[test]
fn owner_can_leave_when_another_owner_remains() {
    let after = counts(&[OWNER, MEMBER]);
    assert_eq!(
        policy().authorize_changes(OWNER, &[leave(OWNER)], &after),
        Ok(())
    );
}

#[test]
fn last_owner_cannot_be_demoted() {
    let after = counts(&[ADMIN, ADMIN]);
    assert_eq!(
        policy().authorize_changes(OWNER, &[change(OWNER, ADMIN)], &after),
        Err(PolicyDenied::BelowMinimumParticipants {
            role: OWNER,
            count: 0,
            min: 1
        })
    );
}

fn constrained_policy() -> RoomPolicy {
    let mut roles = default_roles();
    let member = &mut roles.roles[2];
    member.minimum_active_participants_constraint = 1;
    member.maximum_participants_constraint = Some(2);
    member.maximum_active_participants_constraint = Some(1);
    RoomPolicy::new(roles).unwrap()
}

#[test]
fn removal_fails_below_minimum_active_participants() {
    let mut after = counts(&[OWNER]);
    after.add_participant(MEMBER, false);
    assert_eq!(
        constrained_policy().authorize_changes(OWNER, &[remove(MEMBER)], &after),
        Err(PolicyDenied::BelowMinimumActiveParticipants {
            role: MEMBER,
            count: 0,
            min: 1
        })
    );
}

#[test]
fn add_fails_above_maximum_participants() {
    let mut after = counts(&[OWNER, MEMBER]);
    after.add_participant(MEMBER, false);
    after.add_participant(MEMBER, false);
    assert_eq!(
        constrained_policy().authorize_changes(OWNER, &[add(MEMBER)], &after),
        Err(PolicyDenied::AboveMaximumParticipants {
            role: MEMBER,
            count: 3,
            max: 2
        })
    );
}

#[test]
fn add_fails_above_maximum_active_participants() {
    let after = counts(&[OWNER, MEMBER, MEMBER]);
    assert_eq!(
        constrained_policy().authorize_changes(OWNER, &[add(MEMBER)], &after),
        Err(PolicyDenied::AboveMaximumActiveParticipants {
            role: MEMBER,
            count: 2,
            max: 1
        })
    );
}

#[test]
fn add_within_maximums_is_allowed() {
    let mut after = counts(&[OWNER, MEMBER]);
    after.add_participant(MEMBER, false);
    assert_eq!(
        constrained_policy().authorize_changes(OWNER, &[add(MEMBER)], &after),
        Ok(())
    );
}

#[test]
fn constraints_of_untouched_roles_are_not_checked() {
    // The member role is over its maximum already; changes to other roles still pass.
    let mut after = counts(&[OWNER, ADMIN, MEMBER, MEMBER, MEMBER]);
    after.add_participant(ADMIN, true);
    assert_eq!(
        constrained_policy().authorize_changes(OWNER, &[add(ADMIN)], &after),
        Ok(())
    );
}

#[test]
fn add_fails_above_max_users() {
    let policy = policy().with_max_users(Some(3));
    let after = room();
    assert_eq!(
        policy.authorize_changes(MEMBER, &[add(MEMBER)], &after),
        Err(PolicyDenied::TooManyUsers { count: 4, max: 3 })
    );
    assert_eq!(
        policy.authorize_changes(MEMBER, &[add(MEMBER)], &counts(&[OWNER, MEMBER, MEMBER])),
        Ok(())
    );
}

#[test]
fn banned_entries_do_not_count_towards_max_users() {
    let policy = policy().with_max_users(Some(4));
    let mut after = room();
    after.add_participant(BANNED, false);
    after.add_participant(BANNED, false);
    assert_eq!(
        policy.authorize_changes(ADMIN, &[add(BANNED)], &after),
        Ok(())
    );
    assert_eq!(
        policy.authorize_changes(ADMIN, &[add(MEMBER)], &after),
        Ok(())
    );
}

#[test]
fn unban_fails_above_max_users() {
    let policy = policy().with_max_users(Some(3));
    assert_eq!(
        policy.authorize_changes(ADMIN, &[change(BANNED, MEMBER)], &room()),
        Err(PolicyDenied::TooManyUsers { count: 4, max: 3 })
    );
}

#[test]
fn add_fails_above_max_clients() {
    let base = BaseRoomPolicy {
        max_clients: Some(4),
        ..BaseRoomPolicy::default()
    };
    let policy = policy().with_base_policy(&base);
    assert_eq!(policy.max_clients(), Some(4));
    let mut after = room();
    after.set_clients(5);
    assert_eq!(
        policy.authorize_changes(MEMBER, &[add(MEMBER)], &after),
        Err(PolicyDenied::TooManyClients { count: 5, max: 4 })
    );
    after.set_clients(4);
    assert_eq!(
        policy.authorize_changes(MEMBER, &[add(MEMBER)], &after),
        Ok(())
    );
}

// ---- other actions: POL-050 to POL-054

#[test]
fn member_can_send_messages() {
    assert_eq!(policy().authorize_send(MEMBER), Ok(()));
    assert_eq!(policy().authorize_send(OWNER), Ok(()));
}

#[test]
fn banned_user_cannot_send_messages() {
    assert_eq!(
        policy().authorize_send(BANNED),
        missing(BANNED, Capability::CAN_SEND_MESSAGE)
    );
    assert_eq!(
        policy().authorize_send(NONE),
        missing(NONE, Capability::CAN_SEND_MESSAGE)
    );
}

#[test]
fn member_can_add_its_own_client() {
    assert_eq!(policy().authorize_add_own_client(MEMBER, &room()), Ok(()));
}

#[test]
fn non_participant_cannot_add_its_own_client() {
    assert_eq!(
        policy().authorize_add_own_client(NONE, &room()),
        Err(PolicyDenied::NotAParticipant(NONE))
    );
}

#[test]
fn banned_user_cannot_add_its_own_client() {
    assert_eq!(
        policy().authorize_add_own_client(BANNED, &room()),
        missing(BANNED, Capability::CAN_ADD_OWN_CLIENT)
    );
}

#[test]
fn adding_own_client_respects_max_active_and_max_clients() {
    let after = counts(&[OWNER, MEMBER, MEMBER]);
    assert_eq!(
        constrained_policy().authorize_add_own_client(MEMBER, &after),
        Err(PolicyDenied::AboveMaximumActiveParticipants {
            role: MEMBER,
            count: 2,
            max: 1
        })
    );
    let policy = policy().with_max_clients(Some(2));
    let mut after = room();
    after.set_clients(3);
    assert_eq!(
        policy.authorize_add_own_client(MEMBER, &after),
        Err(PolicyDenied::TooManyClients { count: 3, max: 2 })
    );
}

#[test]
fn member_can_remove_its_own_client() {
    assert_eq!(
        policy().authorize_remove_own_client(MEMBER, &room()),
        Ok(())
    );
    assert_eq!(
        policy().authorize_remove_own_client(BANNED, &room()),
        missing(BANNED, Capability::CAN_REMOVE_OWN_CLIENT)
    );
}

#[test]
fn removing_own_last_client_respects_minimum_active() {
    let mut after = counts(&[OWNER]);
    after.add_participant(MEMBER, false);
    assert_eq!(
        constrained_policy().authorize_remove_own_client(MEMBER, &after),
        Err(PolicyDenied::BelowMinimumActiveParticipants {
            role: MEMBER,
            count: 0,
            min: 1
        })
    );
}

#[test]
fn admin_can_kick_a_member() {
    assert_eq!(policy().authorize_kick(ADMIN, MEMBER, &room()), Ok(()));
}

#[test]
fn member_cannot_kick() {
    assert_eq!(
        policy().authorize_kick(MEMBER, MEMBER, &room()),
        missing(MEMBER, Capability::CAN_KICK)
    );
}

#[test]
fn kick_respects_minimum_active() {
    let mut after = counts(&[OWNER]);
    after.add_participant(MEMBER, false);
    assert_eq!(
        constrained_policy().authorize_kick(OWNER, MEMBER, &after),
        Err(PolicyDenied::BelowMinimumActiveParticipants {
            role: MEMBER,
            count: 0,
            min: 1
        })
    );
}

fn open_policy() -> RoomPolicy {
    let mut roles = default_roles();
    roles.roles[0].role_capabilities = vec![Capability::CAN_OPEN_JOIN];
    roles.roles[0].authorized_role_changes =
        vec![SingleSourceRoleChangeTargets::new(NONE, [MEMBER])];
    RoomPolicy::new(roles).unwrap()
}

#[test]
fn default_room_is_not_open_to_join() {
    assert_eq!(
        policy().authorize_open_join(MEMBER, &room()),
        missing(NONE, Capability::CAN_OPEN_JOIN)
    );
}

#[test]
fn open_room_lets_anyone_join_as_member_only() {
    let policy = open_policy();
    assert_eq!(policy.authorize_open_join(MEMBER, &room()), Ok(()));
    assert_eq!(
        policy.authorize_open_join(ADMIN, &room()),
        not_authorized(NONE, NONE, ADMIN)
    );
    assert_eq!(
        policy.authorize_open_join(NONE, &room()),
        Err(PolicyDenied::InvalidChange {
            from: NONE,
            to: NONE
        })
    );
    assert_eq!(
        policy
            .with_max_users(Some(3))
            .authorize_open_join(MEMBER, &room()),
        Err(PolicyDenied::TooManyUsers { count: 4, max: 3 })
    );
}

// ---- messages

#[test]
fn denials_display_short_lower_case_messages() {
    let cases: [(PolicyDenied, &str); 4] = [
        (
            PolicyDenied::MissingCapability {
                role: MEMBER,
                capability: Capability::CAN_BAN,
            },
            "role 2 lacks canBan",
        ),
        (
            PolicyDenied::RoleChangeNotAuthorized {
                role: ADMIN,
                from: ADMIN,
                to: BANNED,
            },
            "role 3 may not move a user from role 3 to role 1",
        ),
        (
            PolicyDenied::BelowMinimumParticipants {
                role: OWNER,
                count: 0,
                min: 1,
            },
            "role 4 would have 0 participants, fewer than 1",
        ),
        (
            PolicyDenied::TooManyUsers { count: 4, max: 3 },
            "room would have 4 users, more than 3",
        ),
    ];
    for (denied, text) in cases {
        assert_eq!(denied.to_string(), text);
    }
}
