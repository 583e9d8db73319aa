//! The authorization decision: may this actor make these changes (draft-ietf-mimi-room-policy-03
//! §3 and §8.1, digest §3.8)?
//!
//! Pure functions over abstract inputs: the caller (the hub in `mimi-room`) classifies a commit
//! into [`ParticipantChange`]s, looks up the actor's role, and counts participants per role in
//! the state the commit would produce. Each check cites its ID from `VALIDATION.md`.

use std::collections::{BTreeMap, BTreeSet};

use crate::base_policy::BaseRoomPolicy;
use crate::capabilities::Capability;
use crate::default_roles::default_roles;
use crate::error::{Error, PolicyDenied};
use crate::roles::{Role, RoleData, RoleIndex};

/// One participant-list change, as the hub classified it from a commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParticipantChange {
    /// The actor adds another user, not yet listed, with role `user_role`.
    Add {
        /// The role the new user gets.
        user_role: RoleIndex,
    },
    /// A user leaves the list (`is_self`: the actor leaves) with all its clients.
    Remove {
        /// The removed user's role before the change (the actor's role when `is_self`).
        target_role: RoleIndex,
        /// Whether the actor removes itself.
        is_self: bool,
    },
    /// A listed user moves from role `from` to role `to` (ban, unban, promotion, ...).
    ChangeRole {
        /// The role before the change (the actor's role when `is_self`).
        from: RoleIndex,
        /// The role after the change.
        to: RoleIndex,
        /// Whether the actor changes its own role.
        is_self: bool,
    },
}

/// Participants and active participants per role, in the state a commit would produce.
///
/// An active participant has at least one client in the MLS group. `clients` is the total
/// number of clients in the MLS group; leave it unset when the change adds no clients.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleCounts {
    participants: BTreeMap<RoleIndex, u32>,
    active: BTreeMap<RoleIndex, u32>,
    clients: Option<u32>,
}

impl RoleCounts {
    /// Empty counts: every role has zero participants.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one participant of `role`, active if it has a client in the group.
    pub fn add_participant(&mut self, role: RoleIndex, active: bool) {
        *self.participants.entry(role).or_default() += 1;
        if active {
            *self.active.entry(role).or_default() += 1;
        }
    }

    /// Sets both counts for `role`.
    pub fn set(&mut self, role: RoleIndex, participants: u32, active: u32) {
        self.participants.insert(role, participants);
        self.active.insert(role, active);
    }

    /// Sets the total number of clients in the MLS group.
    pub fn set_clients(&mut self, clients: u32) {
        self.clients = Some(clients);
    }

    /// Participants holding `role`.
    pub fn participants(&self, role: RoleIndex) -> u32 {
        self.participants.get(&role).copied().unwrap_or(0)
    }

    /// Participants holding `role` with at least one client in the group.
    pub fn active(&self, role: RoleIndex) -> u32 {
        self.active.get(&role).copied().unwrap_or(0)
    }

    /// Total clients in the MLS group, if the caller set it.
    pub fn clients(&self) -> Option<u32> {
        self.clients
    }
}

impl FromIterator<(RoleIndex, bool)> for RoleCounts {
    /// Counts `(role, is_active)` pairs, one per participant.
    fn from_iter<I: IntoIterator<Item = (RoleIndex, bool)>>(iter: I) -> Self {
        let mut counts = Self::new();
        for (role, active) in iter {
            counts.add_participant(role, active);
        }
        counts
    }
}

/// A validated room policy: the roles list plus the size limits of the base room policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomPolicy {
    roles: RoleData,
    /// Whether role 1 is the special "banned" role (index 1, name `banned`).
    has_banned_role: bool,
    max_users: Option<u32>,
    max_clients: Option<u32>,
}

impl RoomPolicy {
    /// Validates a roles list (POL-001 to POL-005, IN-POLICY-9) and builds a policy without
    /// size limits.
    pub fn new(roles: RoleData) -> Result<Self, Error> {
        // POL-005: the same vector bounds as the decoder, for policies built in code.
        roles.check_bounds()?;
        let mut seen = BTreeSet::new();
        for role in &roles.roles {
            // POL-001: role indexes are unique, or lookups by index would be ambiguous.
            if !seen.insert(role.role_index) {
                return Err(Error::DuplicateRoleIndex(role.role_index));
            }
        }
        let has_banned_role = roles
            .role(RoleIndex::BANNED)
            .is_some_and(Role::is_banned_role);
        for role in &roles.roles {
            // POL-002 (§8.1.3): canBan/canUnban are usable only with role 1 named "banned".
            for capability in [Capability::CAN_BAN, Capability::CAN_UNBAN] {
                if role.has_capability(capability) && !has_banned_role {
                    return Err(Error::BannedRoleMissing {
                        role: role.role_index,
                        capability,
                    });
                }
            }
            // POL-003 (§8.1.1): "canOpenJoin MUST NOT appear in any non-zero role."
            if role.role_index != RoleIndex::NON_PARTICIPANT
                && role.has_capability(Capability::CAN_OPEN_JOIN)
            {
                return Err(Error::OpenJoinOnNonZeroRole(role.role_index));
            }
            // POL-004: role changes refer to defined roles; role 0 needs no definition.
            for entry in &role.authorized_role_changes {
                let referenced = std::iter::once(&entry.from_role_index)
                    .chain(&entry.target_role_indexes)
                    .find(|&&r| r != RoleIndex::NON_PARTICIPANT && !seen.contains(&r));
                if let Some(&referenced) = referenced {
                    return Err(Error::UnknownRoleReference {
                        role: role.role_index,
                        referenced,
                    });
                }
            }
        }
        Ok(Self {
            roles,
            has_banned_role,
            max_users: None,
            max_clients: None,
        })
    }

    /// The policy of [`default_roles`] with no size limits.
    pub fn default_room() -> Self {
        // The default role set is a constant; the test
        // `default_roles_form_a_valid_policy` proves it passes validation.
        Self::new(default_roles()).expect("default roles are valid")
    }

    /// Takes `max_users` and `max_clients` from a base room policy.
    pub fn with_base_policy(self, base: &BaseRoomPolicy) -> Self {
        self.with_max_users(base.max_users)
            .with_max_clients(base.max_clients)
    }

    /// Sets the cap on non-banned participant-list entries.
    pub fn with_max_users(mut self, max_users: Option<u32>) -> Self {
        self.max_users = max_users;
        self
    }

    /// Sets the cap on clients in the MLS group.
    pub fn with_max_clients(mut self, max_clients: Option<u32>) -> Self {
        self.max_clients = max_clients;
        self
    }

    /// The roles list.
    pub fn roles(&self) -> &RoleData {
        &self.roles
    }

    /// The role with index `index`, if defined.
    pub fn role(&self, index: RoleIndex) -> Option<&Role> {
        self.roles.role(index)
    }

    /// Whether `role` is defined and lists `capability`.
    pub fn has_capability(&self, role: RoleIndex, capability: Capability) -> bool {
        self.role(role)
            .is_some_and(|r| r.has_capability(capability))
    }

    /// The cap on non-banned participants, if any.
    pub fn max_users(&self) -> Option<u32> {
        self.max_users
    }

    /// The cap on clients in the MLS group, if any.
    pub fn max_clients(&self) -> Option<u32> {
        self.max_clients
    }

    /// Authorizes every change of one commit separately, then the participant constraints of
    /// the roles they touch against `counts_after` (IN-POLICY-7).
    ///
    /// `counts_after` describes the participant list and MLS group as the whole commit would
    /// leave them. `max_users` is checked when the commit adds non-banned users or unbans;
    /// `max_clients` when it adds users and the caller set `RoleCounts::set_clients`.
    pub fn authorize_changes(
        &self,
        actor: RoleIndex,
        changes: &[ParticipantChange],
        counts_after: &RoleCounts,
    ) -> Result<(), PolicyDenied> {
        let mut losing = BTreeSet::new();
        let mut gaining = BTreeSet::new();
        let mut grows_users = false;
        for change in changes {
            self.authorize_change(actor, change)?;
            match *change {
                ParticipantChange::Add { user_role } => {
                    gaining.insert(user_role);
                    grows_users |= !self.is_banned(user_role);
                }
                ParticipantChange::Remove { target_role, .. } => {
                    losing.insert(target_role);
                }
                ParticipantChange::ChangeRole { from, to, .. } => {
                    losing.insert(from);
                    gaining.insert(to);
                    grows_users |= self.is_banned(from) && !self.is_banned(to);
                }
            }
        }
        self.check_constraints(&losing, &gaining, counts_after)?;
        if grows_users {
            self.check_max_users(counts_after)?;
        }
        if changes_add_users(changes) {
            self.check_max_clients(counts_after)?;
        }
        Ok(())
    }

    /// Authorizes an application message from a participant of role `sender` (POL-050).
    pub fn authorize_send(&self, sender: RoleIndex) -> Result<(), PolicyDenied> {
        self.require(sender, Capability::CAN_SEND_MESSAGE)
    }

    /// Authorizes a participant adding one of its own clients (POL-051, §8.1.1).
    pub fn authorize_add_own_client(
        &self,
        actor: RoleIndex,
        counts_after: &RoleCounts,
    ) -> Result<(), PolicyDenied> {
        // POL-051: "a holder of this capability that is in the participant list".
        if actor == RoleIndex::NON_PARTICIPANT {
            return Err(PolicyDenied::NotAParticipant(actor));
        }
        self.require(actor, Capability::CAN_ADD_OWN_CLIENT)?;
        self.check_constraints(&BTreeSet::new(), &BTreeSet::from([actor]), counts_after)?;
        self.check_max_clients(counts_after)
    }

    /// Authorizes a participant removing one of its own clients, keeping its entry (POL-052).
    pub fn authorize_remove_own_client(
        &self,
        actor: RoleIndex,
        counts_after: &RoleCounts,
    ) -> Result<(), PolicyDenied> {
        self.require(actor, Capability::CAN_REMOVE_OWN_CLIENT)?;
        self.check_active_minimum(actor, counts_after)
    }

    /// Authorizes removing another participant's clients without listing changes (POL-053).
    pub fn authorize_kick(
        &self,
        actor: RoleIndex,
        target_role: RoleIndex,
        counts_after: &RoleCounts,
    ) -> Result<(), PolicyDenied> {
        self.require(actor, Capability::CAN_KICK)?;
        self.check_active_minimum(target_role, counts_after)
    }

    /// Authorizes an unlisted user adding itself with role `user_role` (POL-054, canOpenJoin).
    pub fn authorize_open_join(
        &self,
        user_role: RoleIndex,
        counts_after: &RoleCounts,
    ) -> Result<(), PolicyDenied> {
        let none = RoleIndex::NON_PARTICIPANT;
        if user_role == none {
            return Err(PolicyDenied::InvalidChange {
                from: none,
                to: user_role,
            });
        }
        self.require_known(user_role)?;
        self.require(none, Capability::CAN_OPEN_JOIN)?;
        self.require_change(none, none, user_role)?;
        self.check_constraints(&BTreeSet::new(), &BTreeSet::from([user_role]), counts_after)?;
        if !self.is_banned(user_role) {
            self.check_max_users(counts_after)?;
        }
        self.check_max_clients(counts_after)
    }

    /// Authorizes one change on its own: capability and `authorized_role_changes` entry.
    fn authorize_change(
        &self,
        actor: RoleIndex,
        change: &ParticipantChange,
    ) -> Result<(), PolicyDenied> {
        let none = RoleIndex::NON_PARTICIPANT;
        match *change {
            ParticipantChange::Add { user_role } => {
                // POL-010: an add gives the new user a real role.
                if user_role == none {
                    return Err(PolicyDenied::InvalidChange {
                        from: none,
                        to: user_role,
                    });
                }
                self.require_known(user_role)?;
                // POL-011 (§8.1.1, IN-POLICY-4): canAddParticipant; adding straight into the
                // banned role is a pre-emptive ban, which canBan also authorizes.
                if self.is_banned(user_role) {
                    self.require_any(actor, Capability::CAN_BAN, Capability::CAN_ADD_PARTICIPANT)?;
                } else {
                    self.require(actor, Capability::CAN_ADD_PARTICIPANT)?;
                }
                // POL-012: an entry from 0 that lists the new role.
                self.require_change(actor, none, user_role)
            }
            ParticipantChange::Remove {
                target_role,
                is_self: true,
            } => {
                // POL-020: leaving starts from the actor's own role.
                if target_role != actor {
                    return Err(PolicyDenied::InvalidChange {
                        from: target_role,
                        to: none,
                    });
                }
                // POL-021 (§8.1.2): canRemoveSelf plus an entry own role -> 0.
                self.require(actor, Capability::CAN_REMOVE_SELF)?;
                self.require_change(actor, actor, none)
            }
            ParticipantChange::Remove {
                target_role,
                is_self: false,
            } => {
                self.require_known(target_role)?;
                // POL-022 (§8.1.2): canRemoveParticipant plus an entry target role -> 0.
                self.require(actor, Capability::CAN_REMOVE_PARTICIPANT)?;
                self.require_change(actor, target_role, none)
            }
            ParticipantChange::ChangeRole { from, to, is_self } => {
                // POL-030: a role change moves between listed roles; removals and adds have
                // their own change kinds, and a self-change starts from the actor's role.
                if from == none || to == none || (is_self && from != actor) {
                    return Err(PolicyDenied::InvalidChange { from, to });
                }
                self.require_known(from)?;
                self.require_known(to)?;
                if is_self {
                    // POL-034 (§8.1.3, IN-POLICY-3): canChangeOwnRole; until preauthorization
                    // matching exists, the target must be an authorized_role_changes entry.
                    self.require(actor, Capability::CAN_CHANGE_OWN_ROLE)?;
                } else if self.is_banned(to) {
                    // POL-031 (§8.1.3, IN-POLICY-4): a ban needs canBan (or canChangeUserRole).
                    self.require_any(actor, Capability::CAN_BAN, Capability::CAN_CHANGE_USER_ROLE)?;
                } else if self.is_banned(from) {
                    // POL-032: an unban needs canUnban (or canChangeUserRole).
                    self.require_any(
                        actor,
                        Capability::CAN_UNBAN,
                        Capability::CAN_CHANGE_USER_ROLE,
                    )?;
                } else {
                    // POL-033: any other change needs canChangeUserRole.
                    self.require(actor, Capability::CAN_CHANGE_USER_ROLE)?;
                }
                // POL-035: and in every case an entry from -> to.
                self.require_change(actor, from, to)
            }
        }
    }

    /// Checks the min constraints of roles losing participants and the max constraints of
    /// roles gaining them (POL-040 to POL-043, IN-POLICY-7); role 0 has no meaningful counts.
    fn check_constraints(
        &self,
        losing: &BTreeSet<RoleIndex>,
        gaining: &BTreeSet<RoleIndex>,
        counts: &RoleCounts,
    ) -> Result<(), PolicyDenied> {
        for &role_index in losing {
            let Some(role) = self.role_for_counts(role_index) else {
                continue;
            };
            // POL-040: minimum_participants_constraint of a role that loses participants.
            let count = counts.participants(role_index);
            let min = role.minimum_participants_constraint;
            if count < min {
                return Err(PolicyDenied::BelowMinimumParticipants {
                    role: role_index,
                    count,
                    min,
                });
            }
            // POL-041: minimum_active_participants_constraint likewise.
            self.check_active_minimum(role_index, counts)?;
        }
        for &role_index in gaining {
            let Some(role) = self.role_for_counts(role_index) else {
                continue;
            };
            // POL-042: maximum_participants_constraint of a role that gains participants.
            let count = counts.participants(role_index);
            if let Some(max) = role.maximum_participants_constraint
                && count > max
            {
                return Err(PolicyDenied::AboveMaximumParticipants {
                    role: role_index,
                    count,
                    max,
                });
            }
            // POL-043: maximum_active_participants_constraint likewise (the banned role's 0
            // enforces that a ban removes every client).
            let count = counts.active(role_index);
            if let Some(max) = role.maximum_active_participants_constraint
                && count > max
            {
                return Err(PolicyDenied::AboveMaximumActiveParticipants {
                    role: role_index,
                    count,
                    max,
                });
            }
        }
        Ok(())
    }

    /// POL-041: minimum_active_participants_constraint of `role_index`.
    fn check_active_minimum(
        &self,
        role_index: RoleIndex,
        counts: &RoleCounts,
    ) -> Result<(), PolicyDenied> {
        let Some(role) = self.role_for_counts(role_index) else {
            return Ok(());
        };
        let count = counts.active(role_index);
        let min = role.minimum_active_participants_constraint;
        if count < min {
            return Err(PolicyDenied::BelowMinimumActiveParticipants {
                role: role_index,
                count,
                min,
            });
        }
        Ok(())
    }

    /// POL-044 (§5): at most `max_users` non-banned entries in the participant list.
    fn check_max_users(&self, counts: &RoleCounts) -> Result<(), PolicyDenied> {
        let Some(max) = self.max_users else {
            return Ok(());
        };
        let count = counts
            .participants
            .iter()
            .filter(|&(&role, _)| role != RoleIndex::NON_PARTICIPANT && !self.is_banned(role))
            .fold(0u32, |acc, (_, &n)| acc.saturating_add(n));
        if count > max {
            return Err(PolicyDenied::TooManyUsers { count, max });
        }
        Ok(())
    }

    /// POL-045 (§5): at most `max_clients` clients in the MLS group, when the caller counted.
    fn check_max_clients(&self, counts: &RoleCounts) -> Result<(), PolicyDenied> {
        if let (Some(max), Some(count)) = (self.max_clients, counts.clients)
            && count > max
        {
            return Err(PolicyDenied::TooManyClients { count, max });
        }
        Ok(())
    }

    /// The role whose constraints apply to counts of `index`; none for role 0.
    fn role_for_counts(&self, index: RoleIndex) -> Option<&Role> {
        if index == RoleIndex::NON_PARTICIPANT {
            return None;
        }
        self.role(index)
    }

    /// Whether `role` is the special banned role (POL-002 made it usable).
    fn is_banned(&self, role: RoleIndex) -> bool {
        self.has_banned_role && role == RoleIndex::BANNED
    }

    /// POL-006: a change may only refer to defined roles.
    fn require_known(&self, role: RoleIndex) -> Result<(), PolicyDenied> {
        if self.role(role).is_none() {
            return Err(PolicyDenied::UnknownRole(role));
        }
        Ok(())
    }

    fn require(&self, actor: RoleIndex, capability: Capability) -> Result<(), PolicyDenied> {
        if !self.has_capability(actor, capability) {
            return Err(PolicyDenied::MissingCapability {
                role: actor,
                capability,
            });
        }
        Ok(())
    }

    /// Either capability will do; a refusal names the first, the more specific one.
    fn require_any(
        &self,
        actor: RoleIndex,
        first: Capability,
        second: Capability,
    ) -> Result<(), PolicyDenied> {
        if self.has_capability(actor, second) {
            return Ok(());
        }
        self.require(actor, first)
    }

    fn require_change(
        &self,
        actor: RoleIndex,
        from: RoleIndex,
        to: RoleIndex,
    ) -> Result<(), PolicyDenied> {
        if !self.role(actor).is_some_and(|r| r.allows_change(from, to)) {
            return Err(PolicyDenied::RoleChangeNotAuthorized {
                role: actor,
                from,
                to,
            });
        }
        Ok(())
    }
}

/// Whether the changes add users (and so, typically, their clients).
fn changes_add_users(changes: &[ParticipantChange]) -> bool {
    changes
        .iter()
        .any(|c| matches!(c, ParticipantChange::Add { .. }))
}

#[cfg(test)]
mod tests;
