//! The hub's view of a room: an OpenMLS `PublicGroup` that validates every handshake message
//! against MLS and MIMI rules before it is applied (draft-ietf-mimi-protocol-06 §5.2, §5.3).

use std::collections::{BTreeMap, BTreeSet};

use mimi_policy::{Capability, RoleIndex};
use openmls::group::GroupId;
use openmls::prelude::{
    LeafNode, LeafNodeIndex, MlsMessageIn, ProcessedMessageContent, ProposalStore, ProtocolMessage,
    PublicGroup, QueuedProposal, Sender, StagedCommit,
};
use openmls_traits::OpenMlsProvider as _;
use tls_codec::{Deserialize as _, Serialize as _};

use crate::components::{
    Applied, Participant, PolicyEnvelope, RoomComponents, apply_app_data_updates,
};
use crate::credentials::{TrustAnchor, VerifiedMember, verify_member};
use crate::error::{Refusal, RoomError};
use crate::proposals::{check_external_proposal, check_standalone_proposal, departing_users};
use crate::provider::MlsProvider;
use crate::rules::RoomRules;
use crate::validation::{
    SelfJoin, check_commit, check_external_commit, check_link_fresh, check_policy_consistency,
    commit_facts, identify_all, may_join, self_join_role,
};

/// A room as its hub sees it.
///
/// Everything a per-message check needs is kept decoded next to the group and brought up to
/// date only when a handshake changes it, so checking an application message costs a few map
/// lookups whatever the room's size.
pub struct HubRoom {
    room_uri: String,
    provider: MlsProvider,
    group: PublicGroup,
    /// Who the members are, kept in step with `group`.
    roster: Roster,
    /// The room components of the current epoch.
    components: RoomComponents,
    /// Users whose departure was proposed in this epoch (HUB-030).
    departing: BTreeSet<String>,
    /// What the hosting provider lets the room's policy be.
    envelope: PolicyEnvelope,
    /// Provider domains with a member whose role may receive messages (HUB-032).
    receiving: BTreeSet<String>,
    /// The proposals accepted in this epoch, as received: a joiner's `/groupInfo` answer
    /// lists them (draft §5.5 `pending_proposals`).
    pending: Vec<AcceptedProposal>,
}

/// A proposal the hub accepted in the current epoch, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedProposal {
    /// The proposal's MLSMessage.
    pub message: Vec<u8>,
    /// When the hub accepted it, in seconds since the UNIX epoch.
    pub accepted_at: u64,
}

/// The hub's signing key as the room's external sender.
struct HubKey {
    signer: openmls_basic_credential::SignatureKeyPair,
    index: openmls::extensions::SenderExtensionIndex,
}

/// Verified identity of every member by leaf index, with the counts derived from it.
#[derive(Default)]
struct Roster {
    members: BTreeMap<u32, VerifiedMember>,
    /// The signature key each identity was verified with: a leaf whose key is unchanged keeps
    /// its identity (a changed credential with the same key must keep the device identity,
    /// HUB-022), so only new or re-keyed leaves are verified again.
    keys: BTreeMap<u32, Vec<u8>>,
    /// Member clients per user.
    users: BTreeMap<String, usize>,
    /// Member clients per provider domain.
    domains: BTreeMap<String, usize>,
}

impl Roster {
    /// Verifies every leaf of `group` from scratch.
    fn build(anchor: &TrustAnchor, group: &PublicGroup) -> Result<Self, RoomError> {
        let mut roster = Self::default();
        roster.refresh(anchor, group)?;
        Ok(roster)
    }

    /// Brings the roster in step with `group`; returns the members that left.
    fn refresh(
        &mut self,
        anchor: &TrustAnchor,
        group: &PublicGroup,
    ) -> Result<Vec<VerifiedMember>, RoomError> {
        let gone: Vec<u32> = self
            .members
            .keys()
            .copied()
            .filter(|i| group.leaf(LeafNodeIndex::new(*i)).is_none())
            .collect();
        let mut removed = Vec::with_capacity(gone.len());
        for index in gone {
            if let Some(member) = self.remove(index) {
                removed.push(member);
            }
        }
        let changed: Vec<(u32, &LeafNode)> = group
            .treesync()
            .full_leaves()
            .filter(|(index, leaf)| {
                self.keys.get(&index.u32()).map(Vec::as_slice)
                    != Some(leaf.signature_key().as_slice())
            })
            .map(|(index, leaf)| (index.u32(), leaf))
            .collect();
        let identified = identify_all(anchor, &changed, |(index, leaf)| {
            (*index, leaf.credential(), leaf.signature_key().as_slice())
        })?;
        for (index, leaf) in changed {
            let Some(member) = identified.get(&index).cloned() else {
                return Err(RoomError::Internal("a changed leaf was not identified"));
            };
            if let Some(old) = self.remove(index)
                && old.device_uri != member.device_uri
            {
                removed.push(old);
            }
            self.insert(index, member, leaf.signature_key().as_slice().to_vec());
        }
        Ok(removed)
    }

    fn insert(&mut self, index: u32, member: VerifiedMember, key: Vec<u8>) {
        *self.users.entry(member.user_uri.clone()).or_default() += 1;
        *self.domains.entry(member.domain.clone()).or_default() += 1;
        self.keys.insert(index, key);
        self.members.insert(index, member);
    }

    fn remove(&mut self, index: u32) -> Option<VerifiedMember> {
        self.keys.remove(&index);
        let member = self.members.remove(&index)?;
        decrement(&mut self.users, &member.user_uri);
        decrement(&mut self.domains, &member.domain);
        Some(member)
    }
}

fn decrement(map: &mut BTreeMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// A handshake [`HubRoom::check_handshake`] accepted.
pub enum Checked {
    /// A proposal, already applied.
    Applied(Accepted),
    /// A commit, checked but not yet applied.
    Commit(CheckedCommit),
}

/// A commit that passed every check, waiting for [`HubRoom::apply_checked`].
pub struct CheckedCommit {
    staged: StagedCommit,
    notify_domains: BTreeSet<String>,
    external: bool,
    /// What the hub's own pending proposals removed, which an external commit invalidates:
    /// the hub proposes it again in the new epoch (IN-ROOM-7).
    reissue: Vec<Reissue>,
    /// The client an external commit brings in.
    joiner: Option<VerifiedMember>,
    /// For each client the commit adds: its KeyPackageRef and its provider's domain.
    added: Vec<(Vec<u8>, String)>,
}

impl CheckedCommit {
    /// The removals the hub had proposed and must propose again once this (external) commit
    /// is applied: RFC 9420 §12.4.3.2 lets an external commit carry no Remove or
    /// AppDataUpdate by reference, so it drops them (draft §5.4, IN-ROOM-7).
    pub fn removals_to_reissue(&self) -> &[Reissue] {
        &self.reissue
    }

    /// Where the Welcome for each added client goes: its KeyPackageRef and the domain its
    /// credential names (draft §5.4: the providers of the KeyPackageRefs in the Welcome).
    pub fn welcome_routes(&self) -> &[(Vec<u8>, String)] {
        &self.added
    }

    /// The client an external commit brings in (`None` for a member's commit).
    pub fn external_joiner(&self) -> Option<&VerifiedMember> {
        self.joiner.as_ref()
    }

    /// The providers the commit goes to: every member's, and a joiner's.
    pub fn notify_domains(&self) -> &BTreeSet<String> {
        &self.notify_domains
    }

    /// Whether applying it can change who receives the room beyond adding members: it removes
    /// someone (Remove or SelfRemove) or is an external commit.
    pub fn changes_recipients(&self) -> bool {
        self.external
            || self.staged.queued_proposals().any(|q| {
                matches!(
                    q.proposal(),
                    openmls::prelude::Proposal::Remove(_) | openmls::prelude::Proposal::SelfRemove
                )
            })
    }
}

/// Who sent a handshake message, as the room's current epoch tells before any check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeSender {
    /// A member client of the current epoch.
    Member(VerifiedMember),
    /// A client joining by external commit (who, the commit's own leaf says once checked).
    Joiner,
    /// An external sender (only the hub is one, HUB-041).
    External,
    /// A leaf the room does not hold, or a sender kind the hub refuses anyway.
    Unknown,
}

/// A removal the hub proposed, to be proposed again after an external commit dropped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reissue {
    /// A participant (user URI) whose departure or removal from the list was pending, with
    /// its clients ([`HubRoom::issue_user_removal`]).
    User(String),
    /// One client (device URI) ([`HubRoom::issue_removals`]).
    Device(String),
}

/// What the hub accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// A commit moved the room to `epoch`.
    Commit {
        /// The new epoch.
        epoch: u64,
        /// Providers whose clients must receive the commit: every domain that had a member
        /// before it, including clients it removes (draft §5.4).
        notify_domains: BTreeSet<String>,
        /// Member clients the commit removed (or replaced by another device).
        removed: Vec<VerifiedMember>,
    },
    /// A standalone proposal was accepted and queued for the next commit.
    Proposal {
        /// Providers with members in the current epoch.
        notify_domains: BTreeSet<String>,
    },
}

impl HubRoom {
    /// Starts hosting a room from the creator's GroupInfo (an MLSMessage) and ratchet tree.
    ///
    /// HUB-040: the group ID is the room URI, the group has exactly one member, vouched for,
    /// whose user is `creator_user` and the only participant.
    ///
    /// HUB-041: the hub (`hub_sender`, a TLS-encoded `ExternalSender`) is one of the group's
    /// external senders (draft §4.4 item 5).
    pub fn create(
        anchor: &TrustAnchor,
        room_uri: &str,
        creator_user: &str,
        group_info: &[u8],
        ratchet_tree: &[u8],
        hub_sender: &[u8],
        now: u64,
    ) -> Result<Self, RoomError> {
        let group_info = crate::decode::group_info(group_info)?;
        let tree = crate::decode::ratchet_tree(ratchet_tree)?;
        let provider = MlsProvider::for_hub([])?;
        let (group, _) = PublicGroup::from_external(
            provider.crypto(),
            provider.storage(),
            tree,
            group_info,
            ProposalStore::new(),
        )
        .map_err(|e| RoomError::invalid(format!("group state does not verify: {e}")))?;
        if group.group_id().as_slice() != room_uri.as_bytes() {
            return Err(RoomError::invalid("the group ID is not the room URI"));
        }
        let hub_listed = group
            .group_context()
            .extensions()
            .external_senders()
            .is_some_and(|senders| {
                senders
                    .iter()
                    .any(|s| s.tls_serialize_detached().is_ok_and(|b| b == hub_sender))
            });
        if !hub_listed {
            return Err(RoomError::not_allowed(
                "the hub must be an external sender of the room's group",
            ));
        }
        // The creator's credential must be valid now, not merely have been once.
        for (_, leaf) in group.treesync().full_leaves() {
            verify_member(
                anchor,
                leaf.credential(),
                leaf.signature_key().as_slice(),
                now,
            )?;
        }
        let room = Self::assemble(anchor, room_uri, provider, group)?;
        // FRK-003: a franking agent, if the room names one, is this hub (IN-FRANK-1).
        if let Some(agent) = room.franking_agent()
            && agent != hub_sender
        {
            return Err(RoomError::not_allowed(
                "the room's franking_agent must be the hub's external-sender entry",
            ));
        }
        let participants = room.components.participants();
        let creator_is_only_member = room.roster.members.len() == 1
            && room
                .roster
                .members
                .values()
                .all(|m| m.user_uri == creator_user);
        let creator_is_only_participant =
            participants.len() == 1 && participants[0].user == creator_user;
        if !creator_is_only_member || !creator_is_only_participant {
            return Err(RoomError::not_allowed(
                "a new room must hold exactly its creator as member and participant",
            ));
        }
        let role = RoleIndex(participants[0].role);
        if role == RoleIndex::NON_PARTICIPANT || role == RoleIndex::BANNED {
            return Err(RoomError::not_allowed("the creator must hold a real role"));
        }
        check_policy_consistency(&room.components.base, room.components.policy.roles())?;
        Ok(room)
    }

    /// Starts hosting a room as [`HubRoom::create`] does, if its policy is within `envelope`
    /// (HUB-042); the room keeps the envelope for later changes (HUB-043).
    #[allow(clippy::too_many_arguments)]
    pub fn create_within(
        anchor: &TrustAnchor,
        envelope: &PolicyEnvelope,
        room_uri: &str,
        creator_user: &str,
        group_info: &[u8],
        ratchet_tree: &[u8],
        hub_sender: &[u8],
        now: u64,
    ) -> Result<Self, RoomError> {
        let mut room = Self::create(
            anchor,
            room_uri,
            creator_user,
            group_info,
            ratchet_tree,
            hub_sender,
            now,
        )?;
        envelope.check_creation(&room.components)?;
        room.envelope = envelope.clone();
        Ok(room)
    }

    /// Sets the policy envelope later changes are checked against (HUB-043), for a room
    /// loaded from storage.
    pub fn set_envelope(&mut self, envelope: PolicyEnvelope) {
        self.envelope = envelope;
    }

    /// Restores a room saved with [`HubRoom::snapshot`]. Members are identified whatever the
    /// time (IN-ID-10), so `_now` is not consulted.
    pub fn load(
        anchor: &TrustAnchor,
        room_uri: &str,
        snapshot: &[u8],
        _now: u64,
    ) -> Result<Self, RoomError> {
        let provider = MlsProvider::for_hub(crate::provider::split_snapshot(snapshot)?)?;
        let group_id = GroupId::from_slice(room_uri.as_bytes());
        let group = PublicGroup::load(provider.storage(), &group_id)
            .map_err(|_| RoomError::CorruptState("cannot read the public group"))?
            .ok_or(RoomError::CorruptState("snapshot holds no public group"))?;
        Self::assemble(anchor, room_uri, provider, group)
    }

    /// Decodes what the checks need from a loaded group.
    fn assemble(
        anchor: &TrustAnchor,
        room_uri: &str,
        provider: MlsProvider,
        group: PublicGroup,
    ) -> Result<Self, RoomError> {
        let roster = Roster::build(anchor, &group)?;
        let components = components_of(&group)?;
        let mut room = Self {
            room_uri: room_uri.to_owned(),
            provider,
            group,
            roster,
            components,
            departing: BTreeSet::new(),
            envelope: PolicyEnvelope::default(),
            receiving: BTreeSet::new(),
            pending: Vec::new(),
        };
        room.receiving = room.compute_receiving();
        room.departing = room.compute_departing()?;
        Ok(room)
    }

    /// The room's `franking_agent` component (its TLS encoding), if the room has one.
    pub fn franking_agent(&self) -> Option<&[u8]> {
        self.components
            .raw
            .get(&crate::components::FRANKING_AGENT)
            .map(|a| a.as_slice())
    }

    /// The persisted form of this room's state.
    pub fn snapshot(&self) -> Result<Vec<u8>, RoomError> {
        // The tree is written here rather than after every commit (`MlsProvider::for_hub`).
        self.provider
            .storage()
            .write_tree_now(self.group.group_id(), self.group.treesync())
            .map_err(RoomError::storage)?;
        self.provider.snapshot()
    }

    /// The proposals accepted in this epoch, oldest first. A room loaded from a snapshot
    /// taken while proposals were pending lists only those accepted since.
    pub fn pending_proposals(&self) -> &[AcceptedProposal] {
        &self.pending
    }

    /// The room URI.
    pub fn room_uri(&self) -> &str {
        &self.room_uri
    }

    /// The current MLS epoch.
    pub fn epoch(&self) -> u64 {
        self.group.group_context().epoch().as_u64()
    }

    /// The participant list.
    pub fn participants(&self) -> Result<Vec<Participant>, RoomError> {
        Ok(self.components.participants())
    }

    /// The number of member clients.
    pub fn member_count(&self) -> usize {
        self.roster.members.len()
    }

    /// The device URIs of the members, by user URI.
    pub fn members(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for m in self.roster.members.values() {
            out.entry(m.user_uri.clone())
                .or_default()
                .push(m.device_uri.clone());
        }
        out
    }

    /// The provider domains with at least one member client.
    pub fn member_domains(&self) -> BTreeSet<String> {
        self.roster.domains.keys().cloned().collect()
    }

    /// The provider domains an application message goes to: those with a member client whose
    /// user's role holds canReceiveMessage (HUB-032, room-policy-03 §8.2). The hub cannot
    /// withhold a message from one client of a provider that has others who may receive it:
    /// the fan-out goes to providers (IN-ROOMSTATE-8).
    pub fn receiving_domains(&self) -> &BTreeSet<String> {
        &self.receiving
    }

    fn compute_receiving(&self) -> BTreeSet<String> {
        let mut domains = BTreeSet::new();
        let mut users: BTreeMap<&str, bool> = BTreeMap::new();
        for member in self.roster.members.values() {
            if domains.contains(&member.domain) {
                continue;
            }
            let may = *users.entry(member.user_uri.as_str()).or_insert_with(|| {
                self.components.policy.has_capability(
                    self.components.role_of(&member.user_uri),
                    Capability::CAN_RECEIVE_MESSAGE,
                )
            });
            if may {
                domains.insert(member.domain.clone());
            }
        }
        domains
    }

    /// HUB-081: Remove proposals the hub itself issues, as the room's external sender, for the
    /// member clients whose device URIs are in `devices` (a device its provider removed, the
    /// clients of a deleted account). Returns them as MLSMessages to be accepted like any
    /// handshake ([`HubRoom::check_handshake`]) and fanned out; the next commit must include
    /// them (HUB-013). Devices not in the group, or already being removed, are skipped.
    /// `hub_sender` is the hub's TLS-encoded `ExternalSender` entry, `hub_seed` and
    /// `hub_public_key` its Ed25519 key.
    pub fn issue_removals(
        &self,
        hub_seed: &[u8],
        hub_public_key: &[u8],
        hub_sender: &[u8],
        devices: &[String],
    ) -> Result<Vec<Vec<u8>>, RoomError> {
        let key = self.hub_key(hub_seed, hub_public_key, hub_sender)?;
        let queued = self
            .group
            .queued_proposals(self.provider.storage())
            .map_err(|_| RoomError::CorruptState("cannot read queued proposals"))?;
        let pending: BTreeSet<u32> = queued
            .iter()
            .filter_map(|(_, q)| match q.proposal() {
                openmls::prelude::Proposal::Remove(r) => Some(r.removed().u32()),
                openmls::prelude::Proposal::SelfRemove => match q.sender() {
                    Sender::Member(leaf) => Some(leaf.u32()),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for (leaf, member) in &self.roster.members {
            if !devices.contains(&member.device_uri) || pending.contains(leaf) {
                continue;
            }
            let message = openmls::prelude::ExternalProposal::new_remove::<MlsProvider>(
                LeafNodeIndex::new(*leaf),
                self.group.group_id().clone(),
                self.group.group_context().epoch(),
                &key.signer,
                key.index,
            )
            .map_err(RoomError::mls)?;
            out.push(
                message
                    .tls_serialize_detached()
                    .map_err(|_| RoomError::Internal("proposal does not encode"))?,
            );
        }
        Ok(out)
    }

    /// HUB-081: the proposals the hub itself issues to take `user` out of the room (an account
    /// its provider deleted): a participant-list update removing the user, then a Remove of
    /// each of its clients, to be accepted and fanned out as [`HubRoom::issue_removals`]'s are.
    /// The list update is left out if the user is not listed, already departing, or another
    /// participant-list change is pending in this epoch (one per epoch, HUB-054): the user
    /// then stays listed, without clients, until a later request or a member removes it.
    pub fn issue_user_removal(
        &self,
        hub_seed: &[u8],
        hub_public_key: &[u8],
        hub_sender: &[u8],
        user: &str,
    ) -> Result<Vec<Vec<u8>>, RoomError> {
        let key = self.hub_key(hub_seed, hub_public_key, hub_sender)?;
        let list_change_pending = self
            .group
            .queued_proposals(self.provider.storage())
            .map_err(|_| RoomError::CorruptState("cannot read queued proposals"))?
            .iter()
            .any(|(_, q)| matches!(q.proposal(), openmls::prelude::Proposal::AppDataUpdate(_)));
        let mut out = Vec::new();
        if let Some(index) = crate::components::index_of(&self.components.participants, user)
            && !list_change_pending
            && !self.departing.contains(user)
        {
            let update = mimi_protocol::ParticipantListUpdate {
                changed_role_participants: Vec::new(),
                removed_indices: vec![index],
                added_participants: Vec::new(),
            };
            let proposal = openmls::prelude::AppDataUpdateProposal::update(
                crate::components::PARTICIPANT_LIST as openmls::component::ComponentId,
                mimi_protocol::Wire::encode(&update),
            );
            let message = openmls::prelude::ExternalProposal::new_app_data_update(
                proposal,
                self.group.group_id().clone(),
                self.group.group_context().epoch(),
                &key.signer,
                key.index,
            )
            .map_err(RoomError::mls)?;
            out.push(
                message
                    .tls_serialize_detached()
                    .map_err(|_| RoomError::Internal("proposal does not encode"))?,
            );
        }
        let devices: Vec<String> = self
            .roster
            .members
            .values()
            .filter(|m| m.user_uri == user)
            .map(|m| m.device_uri.clone())
            .collect();
        out.extend(self.issue_removals(hub_seed, hub_public_key, hub_sender, &devices)?);
        Ok(out)
    }

    /// The hub's signer and its index in the room's `external_senders`.
    fn hub_key(
        &self,
        hub_seed: &[u8],
        hub_public_key: &[u8],
        hub_sender: &[u8],
    ) -> Result<HubKey, RoomError> {
        let index = self
            .group
            .group_context()
            .extensions()
            .external_senders()
            .and_then(|senders| {
                senders
                    .iter()
                    .position(|s| s.tls_serialize_detached().is_ok_and(|b| b == hub_sender))
            })
            .ok_or(RoomError::Internal(
                "this hub is not the room's external sender",
            ))?;
        Ok(HubKey {
            signer: openmls_basic_credential::SignatureKeyPair::from_raw(
                openmls_traits::types::SignatureScheme::ED25519,
                hub_seed.to_vec(),
                hub_public_key.to_vec(),
            ),
            index: openmls::extensions::SenderExtensionIndex::new(
                u32::try_from(index).map_err(|_| RoomError::Internal("sender index"))?,
            ),
        })
    }

    /// What the room's policy lets `user` do now (asset checks at the hub, AST-010/011).
    pub fn rules(&self, user: &str) -> RoomRules {
        RoomRules::of(&self.components, user)
    }

    /// The ratchet tree, TLS-encoded, for joiners.
    pub fn ratchet_tree(&self) -> Result<Vec<u8>, RoomError> {
        self.group
            .export_ratchet_tree()
            .tls_serialize_detached()
            .map_err(|_| RoomError::Internal("ratchet tree does not encode"))
    }

    /// Who sent `message`, from its framing alone (nothing is verified or changed): lets a hub
    /// check that a provider forwards only its own clients' handshakes before processing one
    /// (FED-015). Malformed bytes are refused as [`check_handshake`](Self::check_handshake)
    /// would refuse them.
    pub fn handshake_sender(&self, message: &[u8]) -> Result<HandshakeSender, RoomError> {
        let message = MlsMessageIn::tls_deserialize_exact(message)
            .map_err(|e| RoomError::malformed("MLSMessage", e))?;
        let protocol = message
            .try_into_protocol_message()
            .map_err(|_| RoomError::invalid("not a proposal or commit"))?;
        let ProtocolMessage::PublicMessage(public) = &protocol else {
            return Err(RoomError::not_allowed(
                "handshake messages must be PublicMessages",
            ));
        };
        Ok(match public.sender() {
            Sender::Member(leaf) => match self.roster.members.get(&leaf.u32()) {
                Some(member) => HandshakeSender::Member(member.clone()),
                None => HandshakeSender::Unknown,
            },
            Sender::NewMemberCommit => HandshakeSender::Joiner,
            Sender::External(_) => HandshakeSender::External,
            _ => HandshakeSender::Unknown,
        })
    }

    /// Validates and applies one handshake message (a PublicMessage proposal or commit).
    /// On any refusal the room is unchanged.
    pub fn process_handshake(
        &mut self,
        anchor: &TrustAnchor,
        message: &[u8],
        now: u64,
    ) -> Result<Accepted, RoomError> {
        match self.check_handshake(anchor, message, now)? {
            Checked::Applied(accepted) => Ok(accepted),
            Checked::Commit(commit) => self.apply_checked(anchor, commit),
        }
    }

    /// Validates one handshake message; a proposal is applied at once, a commit that passes
    /// every check is returned for [`HubRoom::apply_checked`], so the caller can start saving
    /// it while OpenMLS merges it. Nothing else may touch the room in between. On any refusal
    /// the room is unchanged.
    pub fn check_handshake(
        &mut self,
        anchor: &TrustAnchor,
        message: &[u8],
        now: u64,
    ) -> Result<Checked, RoomError> {
        let checked = self.check_handshake_inner(anchor, message, now)?;
        if let Checked::Applied(Accepted::Proposal { .. }) = &checked {
            self.pending.push(AcceptedProposal {
                message: message.to_vec(),
                accepted_at: now,
            });
        }
        Ok(checked)
    }

    fn check_handshake_inner(
        &mut self,
        anchor: &TrustAnchor,
        message: &[u8],
        now: u64,
    ) -> Result<Checked, RoomError> {
        let message = MlsMessageIn::tls_deserialize_exact(message)
            .map_err(|e| RoomError::malformed("MLSMessage", e))?;
        let protocol = message
            .try_into_protocol_message()
            .map_err(|_| RoomError::invalid("not a proposal or commit"))?;
        // HUB-010: handshakes are PublicMessages so the hub can check them.
        let ProtocolMessage::PublicMessage(_) = &protocol else {
            return Err(RoomError::not_allowed(
                "handshake messages must be PublicMessages",
            ));
        };
        // HUB-011: the message is for this room and the current epoch.
        if protocol.group_id().as_slice() != self.room_uri.as_bytes() {
            return Err(RoomError::invalid("message is for another group"));
        }
        let current = self.epoch();
        let received = protocol.epoch().as_u64();
        if received != current {
            return Err(RoomError::Refused(Refusal::WrongEpoch {
                current,
                received,
            }));
        }
        // HUB-012: framing, signature, membership tag and MLS proposal rules (OpenMLS ValSem).
        let processed = self
            .group
            .process_message(self.provider.crypto(), protocol)
            .map_err(RoomError::invalid)?;
        let components = self.components.clone();
        let sender = match processed.sender() {
            Sender::Member(leaf) => *leaf,
            Sender::NewMemberCommit => {
                let link = crate::join_links::link_in_aad(processed.aad());
                let (staged, applied) = match processed.into_content() {
                    ProcessedMessageContent::StagedCommitMessage(staged) => {
                        (*staged, Applied::unchanged(&components))
                    }
                    ProcessedMessageContent::UnresolvedAppDataCommit(unresolved) => {
                        let mut updater = self.group.app_data_dictionary_updater();
                        let applied = apply_app_data_updates(
                            &components,
                            &self.room_uri,
                            unresolved.app_data_update_proposals(),
                            &mut updater,
                        )?;
                        let updates = updater.changes();
                        let staged = self
                            .group
                            .stage_app_data_commit(self.provider.crypto(), *unresolved, updates)
                            .map_err(RoomError::invalid)?;
                        (staged, applied)
                    }
                    _ => return Err(RoomError::invalid("unexpected external commit content")),
                };
                return self.accept_external_commit(anchor, staged, &applied, link, now);
            }
            Sender::External(_) => {
                // HUB-081: an external sender's proposal; OpenMLS checked its signature against
                // `external_senders`, where only this hub is listed (HUB-041). Only Removes.
                let ProcessedMessageContent::ProposalMessage(proposal) = processed.into_content()
                else {
                    return Err(RoomError::not_allowed(
                        "external senders may only propose removals",
                    ));
                };
                let queued = self
                    .group
                    .queued_proposals(self.provider.storage())
                    .map_err(|_| RoomError::CorruptState("cannot read queued proposals"))?;
                check_external_proposal(&proposal, &components, queued.iter().map(|(_, q)| q))?;
                self.group
                    .add_proposal(self.provider.storage(), *proposal)
                    .map_err(|_| RoomError::Internal("cannot queue proposal"))?;
                self.departing = self.compute_departing()?;
                return Ok(Checked::Applied(Accepted::Proposal {
                    notify_domains: self.member_domains(),
                }));
            }
            _ => {
                return Err(RoomError::not_allowed(
                    "external proposals are not accepted from clients",
                ));
            }
        };
        match processed.into_content() {
            ProcessedMessageContent::ProposalMessage(proposal) => self
                .accept_proposal(*proposal, sender, &components)
                .map(Checked::Applied),
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                let after = Applied::unchanged(&components);
                self.accept_commit(anchor, *staged, sender, &components, after, now)
            }
            ProcessedMessageContent::UnresolvedAppDataCommit(unresolved) => {
                let mut updater = self.group.app_data_dictionary_updater();
                let after = apply_app_data_updates(
                    &components,
                    &self.room_uri,
                    unresolved.app_data_update_proposals(),
                    &mut updater,
                )?;
                let updates = updater.changes();
                let staged = self
                    .group
                    .stage_app_data_commit(self.provider.crypto(), *unresolved, updates)
                    .map_err(RoomError::invalid)?;
                self.accept_commit(anchor, staged, sender, &components, after, now)
            }
            _ => Err(RoomError::invalid("unexpected message content")),
        }
    }

    /// Checks that `user` may post an application message of `epoch` (draft §5.3).
    pub fn check_application(&self, epoch: u64, user: &str) -> Result<(), RoomError> {
        let components = &self.components;
        let role = components.role_of(user);
        // HUB-030: the sender is an active participant, not leaving, allowed to send.
        let active = self.roster.users.contains_key(user);
        if role == RoleIndex::NON_PARTICIPANT || !active {
            return Err(RoomError::not_allowed(format!(
                "{user} is not an active participant"
            )));
        }
        if self.departing.contains(user) {
            return Err(RoomError::not_allowed(format!(
                "{user} is leaving the room"
            )));
        }
        if !components
            .policy
            .has_capability(role, Capability::CAN_SEND_MESSAGE)
        {
            return Err(RoomError::not_allowed(format!(
                "{user} may not send messages"
            )));
        }
        // HUB-031: the message is for the current epoch.
        let current = self.epoch();
        if epoch < current {
            return Err(RoomError::Refused(Refusal::WrongEpoch {
                current,
                received: epoch,
            }));
        }
        if epoch > current {
            return Err(RoomError::not_allowed(format!(
                "epoch {epoch} is in the future"
            )));
        }
        Ok(())
    }

    /// HUB-070/HUB-077: may `user` join by external commit: a participant adding a client of
    /// its own, or an unlisted user joining an open room (draft §5.5).
    pub fn check_external_join(
        &self,
        user: &str,
        link: Option<&[u8]>,
        now: u64,
    ) -> Result<(), RoomError> {
        may_join(&self.components, user, link, now)
    }

    /// HUB-071..HUB-073 (see `validation::check_external_commit`), and HUB-074: what an
    /// external commit does to the proposals pending in its epoch (IN-ROOM-7). A pending
    /// SelfRemove must be included by reference (the one kind the MLS extensions let an
    /// external commit carry); every other pending proposal (Removes, a departure's or a
    /// deleted account's participant-list removal) is dropped by the commit, and the hub
    /// proposes the same removals again after it, as its own.
    fn accept_external_commit(
        &mut self,
        anchor: &TrustAnchor,
        staged: StagedCommit,
        applied: &Applied,
        link: Option<Vec<u8>>,
        now: u64,
    ) -> Result<Checked, RoomError> {
        let queued = self
            .group
            .queued_proposals(self.provider.storage())
            .map_err(|_| RoomError::CorruptState("cannot read queued proposals"))?;
        let covered: BTreeSet<Vec<u8>> = staged
            .queued_proposals()
            .map(|q| q.proposal_reference_ref().as_slice().to_vec())
            .collect();
        let mut reissue = Vec::new();
        for (reference, proposal) in &queued {
            match (proposal.sender(), proposal.proposal()) {
                (Sender::Member(_), openmls::prelude::Proposal::SelfRemove) => {
                    if !covered.contains(reference.as_slice()) {
                        return Err(RoomError::invalid(format!(
                            "the external commit omits pending SelfRemove {}; include it by \
                             reference",
                            hex_short(reference.as_slice())
                        )));
                    }
                }
                (_, openmls::prelude::Proposal::Remove(remove)) => {
                    if let Some(target) = self.roster.members.get(&remove.removed().u32()) {
                        reissue.push(Reissue::Device(target.device_uri.clone()));
                    }
                }
                // A departure (the member's own) or a deleted account (the hub's): the users
                // leave the list, with their clients.
                (_, openmls::prelude::Proposal::AppDataUpdate(_)) => {
                    let users = departing_users(
                        std::iter::once(proposal),
                        &self.roster.members,
                        &self.components,
                    );
                    reissue.extend(users.into_iter().map(Reissue::User));
                }
                (_, other) => {
                    return Err(RoomError::not_allowed(format!(
                        "a pending {:?} proposal cannot survive an external commit; join after \
                         the next commit",
                        other.proposal_type()
                    )));
                }
            }
        }
        let joiner = check_external_commit(
            anchor,
            &self.roster.members,
            &self.components,
            applied,
            &staged,
            link.as_deref(),
            now,
        )?;
        // HUB-079: the hub alone holds a join link to its expiry, at the time it accepts.
        if let Some(link) = &link
            && self.components.role_of(&joiner.user_uri) == RoleIndex::NON_PARTICIPANT
            && matches!(
                self_join_role(&self.components, &joiner.user_uri, Some(link)),
                Some((_, SelfJoin::Link(_)))
            )
        {
            check_link_fresh(link, now)?;
        }
        if applied.list_changed {
            self.envelope
                .check_change(applied, self.roster.members.len() + 1)?;
        }
        let mut notify_domains = self.member_domains();
        notify_domains.insert(joiner.domain.clone());
        Ok(Checked::Commit(CheckedCommit {
            staged,
            notify_domains,
            external: true,
            reissue,
            joiner: Some(joiner),
            added: Vec::new(),
        }))
    }

    /// Applies a commit [`HubRoom::check_handshake`] accepted.
    pub fn apply_checked(
        &mut self,
        anchor: &TrustAnchor,
        commit: CheckedCommit,
    ) -> Result<Accepted, RoomError> {
        self.merge(anchor, commit.staged, commit.notify_domains)
    }

    /// Applies an accepted commit and brings the decoded state in step. A failure here means
    /// the in-memory room no longer matches its last saved state: callers drop it and reload.
    fn merge(
        &mut self,
        anchor: &TrustAnchor,
        staged: StagedCommit,
        notify_domains: BTreeSet<String>,
    ) -> Result<Accepted, RoomError> {
        self.group
            .merge_commit(self.provider.storage(), staged)
            .map_err(RoomError::mls)?;
        let removed = self.roster.refresh(anchor, &self.group)?;
        self.components = components_of(&self.group)?;
        self.departing.clear();
        self.pending.clear();
        self.receiving = self.compute_receiving();
        Ok(Accepted::Commit {
            epoch: self.epoch(),
            notify_domains,
            removed,
        })
    }

    fn compute_departing(&self) -> Result<BTreeSet<String>, RoomError> {
        let queued = self
            .group
            .queued_proposals(self.provider.storage())
            .map_err(|_| RoomError::CorruptState("cannot read queued proposals"))?;
        Ok(departing_users(
            queued.iter().map(|(_, q)| q),
            &self.roster.members,
            &self.components,
        ))
    }

    fn accept_proposal(
        &mut self,
        proposal: QueuedProposal,
        sender: LeafNodeIndex,
        components: &RoomComponents,
    ) -> Result<Accepted, RoomError> {
        let queued = self
            .group
            .queued_proposals(self.provider.storage())
            .map_err(|_| RoomError::CorruptState("cannot read queued proposals"))?;
        check_standalone_proposal(
            &proposal,
            sender,
            &self.roster.members,
            components,
            queued.iter().map(|(_, q)| q),
        )?;
        self.group
            .add_proposal(self.provider.storage(), proposal)
            .map_err(|_| RoomError::Internal("cannot queue proposal"))?;
        self.departing = self.compute_departing()?;
        Ok(Accepted::Proposal {
            notify_domains: self.member_domains(),
        })
    }

    fn accept_commit(
        &mut self,
        anchor: &TrustAnchor,
        staged: StagedCommit,
        committer: LeafNodeIndex,
        components: &RoomComponents,
        after: Applied,
        now: u64,
    ) -> Result<Checked, RoomError> {
        // HUB-013: a commit covers every proposal the hub accepted in this epoch (draft §5.2).
        let covered: BTreeSet<Vec<u8>> = staged
            .queued_proposals()
            .map(|q| q.proposal_reference_ref().as_slice().to_vec())
            .collect();
        let queued = self
            .group
            .queued_proposals(self.provider.storage())
            .map_err(|_| RoomError::CorruptState("cannot read queued proposals"))?;
        if let Some((missing, _)) = queued.iter().find(|(r, _)| !covered.contains(r.as_slice())) {
            return Err(RoomError::invalid(format!(
                "commit omits pending proposal {}",
                hex_short(missing.as_slice())
            )));
        }
        let departing = departing_users(
            queued.iter().map(|(_, q)| q),
            &self.roster.members,
            components,
        );
        let facts = commit_facts(anchor, &self.roster.members, committer, &staged, now)?;
        check_commit(components, &after, &facts, &departing, self.epoch() == 0)?;
        self.envelope
            .check_change(&after, facts.members_after.len())?;
        // `facts.added` follows the commit's Add proposals in order.
        let mut added = Vec::with_capacity(facts.added.len());
        let adds = staged
            .queued_proposals()
            .filter_map(|q| match q.proposal() {
                openmls::prelude::Proposal::Add(add) => Some(add.key_package()),
                _ => None,
            });
        for (key_package, member) in adds.zip(&facts.added) {
            let reference = key_package
                .hash_ref(self.provider.crypto())
                .map_err(|_| RoomError::Internal("cannot hash a KeyPackage"))?;
            added.push((reference.as_slice().to_vec(), member.domain.clone()));
        }
        Ok(Checked::Commit(CheckedCommit {
            notify_domains: self.member_domains(),
            staged,
            external: false,
            reissue: Vec::new(),
            joiner: None,
            added,
        }))
    }
}

fn components_of(group: &PublicGroup) -> Result<RoomComponents, RoomError> {
    RoomComponents::from_dictionary(
        group
            .group_context()
            .extensions()
            .app_data_dictionary()
            .map(|e| e.dictionary()),
    )
}

fn hex_short(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
