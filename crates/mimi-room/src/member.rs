//! A client's side of its rooms: OpenMLS `MlsGroup`s that create rooms, commit participant and
//! membership changes together, encrypt messages and process what the hub fans out. The same
//! MIMI checks as the hub run on everything received (see [`crate::validation`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use mimi_protocol::{ParticipantListUpdate, Wire};
use openmls::component::ComponentId;
use openmls::group::GroupId;
use openmls::prelude::{
    AppDataDictionaryExtension, AppDataUpdateOperation, AppDataUpdateProposal, BasicCredential,
    Capabilities, Ciphersuite, CredentialType, CredentialWithKey, Extension, ExtensionType,
    Extensions, ExternalSender, KeyPackage, KeyPackageIn, LeafNodeIndex,
    MIXED_PLAINTEXT_WIRE_FORMAT_POLICY, MlsGroup, MlsGroupCreateConfig, MlsMessageIn,
    MlsMessageOut, ProcessedMessageContent, Proposal, ProposalType, ProtocolMessage,
    ProtocolVersion, RequiredCapabilitiesExtension, Sender, StagedCommit, StagedWelcome,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::OpenMlsProvider as _;
use openmls_traits::types::SignatureScheme;
use tls_codec::{Deserialize as _, Serialize as _};

use crate::components::{
    Applied, JOIN_LINKS, PARTICIPANT_LIST, Participant, ROOM_METADATA, RoomComponents,
    apply_app_data_updates, index_of, initial_dictionary, pair,
};
use crate::credentials::{ClientIdentity, TrustAnchor, identify_member, x509_credential};
use crate::error::RoomError;
use crate::proposals::is_real_role;
use crate::proposals::{check_external_proposal, check_standalone_proposal, departing_users};
use crate::provider::{MlsProvider, split_snapshot};
use crate::rules::RoomRules;
use crate::storage::StateChange;
use crate::validation::{check_commit, check_external_commit, commit_facts, verified_members};
use mimi_policy::{Preset, RoleIndex};

/// The one cipher suite MIMI rooms use here (RFC 9420 §17.1, 0x0001).
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// [`CIPHERSUITE`] as MIMI structures carry it (`acceptable_ciphersuites`, GroupInfo answers).
pub const WIRE_CIPHERSUITE: mimi_protocol::CipherSuite =
    mimi_protocol::CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;

/// How many past epochs a client keeps keys for, so messages sent just before a commit still
/// decrypt after it.
use crate::decode::MAX_PAST_EPOCHS;

/// The hub's external-sender entry for a new room (RFC 9420 §12.1.8.1, draft §4.4 item 5).
#[derive(Debug, Clone)]
pub struct HubSender {
    /// The hub's raw Ed25519 signature public key.
    pub signature_key: Vec<u8>,
    /// The hub's provider URI, `mimi://domain`, used as its basic credential identity.
    pub provider_uri: String,
}

/// A new room, ready to be handed to the hub.
#[derive(Debug, Clone)]
pub struct CreatedRoom {
    /// GroupInfo as an MLSMessage, without the ratchet tree.
    pub group_info: Vec<u8>,
    /// The ratchet tree, TLS-encoded.
    pub ratchet_tree: Vec<u8>,
}

/// A commit waiting for the hub's verdict.
#[derive(Debug, Clone)]
pub struct PendingCommit {
    /// The commit as an MLSMessage (PublicMessage).
    pub commit: Vec<u8>,
    /// The Welcome for added clients, as an MLSMessage.
    pub welcome: Option<Vec<u8>>,
    /// The new epoch's GroupInfo as an MLSMessage, without the ratchet tree.
    pub group_info: Option<Vec<u8>>,
}

/// What a `/groupInfo` answer gives a client joining by external commit (draft §5.5).
#[derive(Debug, Clone, Copy)]
pub struct ExternalJoin<'a> {
    /// The room's GroupInfo, as an MLSMessage.
    pub group_info: &'a [u8],
    /// The TLS-encoded ratchet tree.
    pub ratchet_tree: &'a [u8],
    /// The hub's TLS-encoded `ExternalSender` entry, which the room must list.
    pub hub_sender: &'a [u8],
    /// The join link to name in the commit, if the joiner is not a participant.
    pub link: Option<&'a [u8]>,
    /// The proposals pending in the epoch, as MLSMessages.
    pub pending_proposals: &'a [Vec<u8>],
}

/// What processing one fanned-out message produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// An application message.
    Message {
        /// The sending device.
        sender_device: String,
        /// The sending user.
        sender_user: String,
        /// The decrypted application data (MIMI content).
        data: Vec<u8>,
        /// The epoch it was sent in.
        epoch: u64,
        /// The message's `authenticated_data` (a SafeAAD carrying `frank_aad`, or empty).
        authenticated_data: Vec<u8>,
    },
    /// A commit moved the room to a new epoch.
    Commit {
        /// The new epoch.
        epoch: u64,
        /// Whether this client was removed by it.
        removed_me: bool,
        /// The leaf index of the client that joined by this commit, if it was an external
        /// commit (IN-ROOMSTATE-7: the lowest other member shares keys with it).
        joiner: Option<u32>,
    },
    /// A proposal was stored for the next commit.
    Proposal,
    /// A handshake of an epoch this client has already left (for example its own commit).
    Stale,
}

/// What a client knows about one room.
#[derive(Debug, Clone)]
pub struct RoomView {
    /// The current epoch.
    pub epoch: u64,
    /// The participant list.
    pub participants: Vec<Participant>,
    /// Device URIs of the members, by user URI.
    pub members: BTreeMap<String, Vec<String>>,
    /// Whether proposals are waiting for a commit.
    pub has_pending_proposals: bool,
    /// The room's name, descriptions and so on, if set.
    pub metadata: Option<mimi_protocol::RoomMetadata>,
    /// The room's roles.
    pub roles: mimi_policy::RoleData,
    /// The room's base policy (the default one if the room has none).
    pub base_policy: mimi_policy::BaseRoomPolicy,
    /// Every component of the room as (component ID, bytes), in ID order.
    pub components: Vec<(u16, Vec<u8>)>,
}

/// All MLS state of one client, with each room's group kept loaded between operations.
///
/// OpenMLS writes every change through to storage, so the storage alone is the state; the
/// cached groups only save reloading it. Storage remembers what changed since the caller last
/// saved ([`MemberState::pending_changes`], [`MemberState::mark_saved`]) and can undo what
/// happened since a savepoint ([`MemberState::rollback`]), which also empties the cache.
pub struct MemberState {
    pub(crate) provider: MlsProvider,
    groups: Mutex<HashMap<String, MlsGroup>>,
    senders: Mutex<SenderCache>,
}

/// Application senders whose credential chain already verified, so each message costs one
/// lookup instead of an X.509 chain check. Sound because that check does not depend on time
/// (`identify_member` checks no validity period), only on the anchor, credential and key.
#[derive(Default)]
struct SenderCache {
    /// The anchor the entries verified against; another anchor empties the cache.
    anchor: Vec<u8>,
    /// By (TLS-encoded credential, signature key).
    members: HashMap<(Vec<u8>, Vec<u8>), crate::credentials::VerifiedMember>,
}

/// Bound on cached senders; past it the cache starts over (a room's members, many times over).
const MAX_CACHED_SENDERS: usize = 100_000;

impl Default for MemberState {
    fn default() -> Self {
        Self::new()
    }
}

impl MemberState {
    /// Empty state for a new client.
    pub fn new() -> Self {
        Self::from_entries(Vec::new())
    }

    /// Restores state saved with [`MemberState::snapshot`].
    pub fn from_snapshot(bytes: &[u8]) -> Result<Self, RoomError> {
        Ok(Self::from_entries(split_snapshot(bytes)?))
    }

    /// Restores state saved key by key: every (key, value) of [`MemberState::pending_changes`]
    /// that was saved and not deleted since.
    pub fn from_entries(entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Self {
        Self {
            provider: MlsProvider::from_entries(entries, true),
            groups: Mutex::new(HashMap::new()),
            senders: Mutex::new(SenderCache::default()),
        }
    }

    /// The whole state as one blob.
    pub fn snapshot(&self) -> Result<Vec<u8>, RoomError> {
        self.provider.snapshot()
    }

    /// The storage keys written or deleted since the last [`MemberState::mark_saved`], with
    /// their current values, for the caller to save.
    pub fn pending_changes(&self) -> Result<Vec<StateChange>, RoomError> {
        self.provider
            .storage()
            .pending_changes()
            .map_err(RoomError::storage)
    }

    /// Records that the caller saved every pending change. It is also a savepoint: a later
    /// [`MemberState::rollback`] returns here.
    pub fn mark_saved(&self) -> Result<(), RoomError> {
        self.provider
            .storage()
            .mark_saved()
            .map_err(RoomError::storage)
    }

    /// Makes the current state the one [`MemberState::rollback`] returns to, without saving.
    pub fn savepoint(&self) -> Result<(), RoomError> {
        self.provider
            .storage()
            .savepoint()
            .map_err(RoomError::storage)
    }

    /// Undoes every change since the last savepoint (or save): a failed or refused operation
    /// then leaves no trace. Changes made before the savepoint stay pending.
    pub fn rollback(&self) -> Result<(), RoomError> {
        self.groups()?.clear();
        self.provider
            .storage()
            .rollback()
            .map_err(RoomError::storage)
    }

    /// Generates and stores a new Ed25519 signature key; returns the raw public key.
    pub fn generate_signature_key(&self) -> Result<Vec<u8>, RoomError> {
        let keys = SignatureKeyPair::new(SignatureScheme::ED25519).map_err(RoomError::mls)?;
        keys.store(self.provider.storage())
            .map_err(RoomError::mls)?;
        Ok(keys.to_public_vec())
    }

    /// Creates `count` fresh KeyPackages (TLS-encoded `KeyPackage`s).
    pub fn key_packages(
        &self,
        me: &ClientIdentity,
        count: usize,
    ) -> Result<Vec<Vec<u8>>, RoomError> {
        let signer = self.signer(me)?;
        let credential = credential_with_key(me)?;
        (0..count)
            .map(|_| {
                let bundle = KeyPackage::builder()
                    .leaf_node_capabilities(capabilities())
                    .build(CIPHERSUITE, &self.provider, &signer, credential.clone())
                    .map_err(RoomError::mls)?;
                bundle
                    .key_package()
                    .tls_serialize_detached()
                    .map_err(|_| RoomError::Internal("key package does not encode"))
            })
            .collect()
    }

    /// One last-resort KeyPackage (mls-extensions `last_resort_key_package`): its provider hands
    /// it out when no other is left and never uses it up, and we keep its private keys after a
    /// Welcome consumes it. It carries the marker both as the mls-extensions component (an
    /// `app_data_dictionary` holding `last_resort_key_package`, what providers read) and as
    /// OpenMLS's own last-resort extension (what keeps our keys).
    pub fn last_resort_key_package(&self, me: &ClientIdentity) -> Result<Vec<u8>, RoomError> {
        let signer = self.signer(me)?;
        let mut marker = openmls::prelude::AppDataDictionary::new();
        marker.insert(
            mimi_protocol::ComponentId::LAST_RESORT_KEY_PACKAGE.0 as ComponentId,
            Vec::new(),
        );
        let extensions = Extensions::single(Extension::AppDataDictionary(
            AppDataDictionaryExtension::new(marker),
        ))
        .map_err(RoomError::mls)?;
        // A KeyPackage's extensions must be among its leaf's capabilities.
        let capabilities = Capabilities::new(
            None,
            Some(&[CIPHERSUITE]),
            Some(&[ExtensionType::AppDataDictionary, ExtensionType::LastResort]),
            Some(&[ProposalType::AppDataUpdate, ProposalType::SelfRemove]),
            Some(&[CredentialType::Basic, CredentialType::X509]),
        );
        let bundle = KeyPackage::builder()
            .leaf_node_capabilities(capabilities)
            .key_package_extensions(extensions)
            .mark_as_last_resort()
            .build(
                CIPHERSUITE,
                &self.provider,
                &signer,
                credential_with_key(me)?,
            )
            .map_err(RoomError::mls)?;
        bundle
            .key_package()
            .tls_serialize_detached()
            .map_err(|_| RoomError::Internal("key package does not encode"))
    }

    /// Creates a room of the `private` preset whose MLS group ID is the room URI, with
    /// `creator_user` as its owner.
    pub fn create_room(
        &self,
        me: &ClientIdentity,
        room_uri: &str,
        creator_user: &str,
        hub: &HubSender,
    ) -> Result<CreatedRoom, RoomError> {
        self.create_room_with(me, room_uri, creator_user, hub, Preset::Private)
    }

    /// Creates a room with the policy of `preset`, whose MLS group ID is the room URI; the
    /// creator holds the preset's creator role.
    pub fn create_room_with(
        &self,
        me: &ClientIdentity,
        room_uri: &str,
        creator_user: &str,
        hub: &HubSender,
        preset: Preset,
    ) -> Result<CreatedRoom, RoomError> {
        let policy = preset
            .components()
            .map_err(|_| RoomError::Internal("a preset's policy does not encode"))?;
        let mut dictionary = initial_dictionary(creator_user, preset.creator_role().0, &policy)?;
        // The hub franks the room's messages: its external-sender entry is the franking agent
        // (FRK-003, IN-FRANK-1).
        let agent = mimi_protocol::FrankingAgentData {
            franking_signature_key: mimi_protocol::SignaturePublicKey(hub.signature_key.clone()),
            credential: mimi_protocol::Credential::Basic {
                identity: hub.provider_uri.as_bytes().to_vec(),
            },
        };
        dictionary.insert(crate::components::FRANKING_AGENT, agent.encode());
        let signer = self.signer(me)?;
        let hub_credential = BasicCredential::new(hub.provider_uri.as_bytes().to_vec());
        let extensions = Extensions::from_vec(vec![
            Extension::RequiredCapabilities(RequiredCapabilitiesExtension::new(
                &[ExtensionType::AppDataDictionary],
                &[ProposalType::AppDataUpdate, ProposalType::SelfRemove],
                &[CredentialType::X509],
            )),
            Extension::ExternalSenders(vec![ExternalSender::new(
                hub.signature_key.clone().into(),
                hub_credential.into(),
            )]),
            Extension::AppDataDictionary(AppDataDictionaryExtension::new(dictionary)),
        ])
        .map_err(RoomError::mls)?;
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            .capabilities(capabilities())
            .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(false)
            .max_past_epochs(MAX_PAST_EPOCHS)
            .with_group_context_extensions(extensions)
            .build();
        let group = MlsGroup::new_with_group_id(
            &self.provider,
            &signer,
            &config,
            GroupId::from_slice(room_uri.as_bytes()),
            credential_with_key(me)?,
        )
        .map_err(RoomError::mls)?;
        let created = self.exported(&group, &signer)?;
        self.cache_group(room_uri, group)?;
        Ok(created)
    }

    /// Builds one commit adding each user as a participant together with its clients'
    /// KeyPackages (draft §5.2: the participant-list add is in the same commit as the Adds).
    pub fn add_users(
        &self,
        me: &ClientIdentity,
        room_uri: &str,
        users: &[(String, Vec<Vec<u8>>)],
    ) -> Result<PendingCommit, RoomError> {
        self.with_group(room_uri, |group| {
            let components = group_components(group)?;
            let role = added_user_role(&components, &user_of_device(&me.device_uri)?);
            let mut key_packages = Vec::new();
            let mut added_participants = Vec::new();
            for (user, packages) in users {
                // A listed user is an inactive participant being brought in (HUB-076): its
                // clients only; the hub refuses if it already has clients in the group.
                match components.role_of(user) {
                    RoleIndex::NON_PARTICIPANT => added_participants.push(pair(user, role.0)),
                    RoleIndex::BANNED => {
                        return Err(RoomError::Misuse(format!("{user} is banned")));
                    }
                    _ if packages.is_empty() => {
                        return Err(RoomError::Misuse(format!(
                            "{user} is already a participant"
                        )));
                    }
                    _ => {}
                }
                for bytes in packages {
                    key_packages.push(self.validated_key_package(bytes)?);
                }
            }
            let proposals = if added_participants.is_empty() {
                Vec::new()
            } else {
                vec![participant_update(&ParticipantListUpdate {
                    changed_role_participants: Vec::new(),
                    removed_indices: Vec::new(),
                    added_participants,
                })]
            };
            self.commit(me, group, proposals, key_packages, Vec::new())
        })
    }

    /// Builds one commit replacing the room's metadata (name, descriptions, avatar, subject,
    /// mood) with `metadata`; the room's policy decides which changes our role may make.
    pub fn set_room_metadata(
        &self,
        me: &ClientIdentity,
        room_uri: &str,
        metadata: &mimi_protocol::RoomMetadata,
    ) -> Result<PendingCommit, RoomError> {
        if metadata.room_uri.as_str() != room_uri {
            return Err(RoomError::Misuse(format!(
                "metadata names {}, not {room_uri}",
                metadata.room_uri.as_str()
            )));
        }
        self.with_group(room_uri, |group| {
            self.commit(
                me,
                group,
                vec![metadata_update(metadata)],
                Vec::new(),
                Vec::new(),
            )
        })
    }

    /// Builds one commit replacing component `id` with `value`, or removing it when `value` is
    /// `None` (a policy component or an application component in the private-use range; the
    /// participant list and join links change through their own operations). The room's
    /// policy decides whether our role may.
    pub fn set_component(
        &self,
        me: &ClientIdentity,
        room_uri: &str,
        id: u16,
        value: Option<Vec<u8>>,
    ) -> Result<PendingCommit, RoomError> {
        let proposal = match value {
            Some(value) => AppDataUpdateProposal::update(id as ComponentId, value),
            None => AppDataUpdateProposal::remove(id as ComponentId),
        };
        self.with_group(room_uri, |group| {
            self.commit(
                me,
                group,
                vec![Proposal::AppDataUpdate(Box::new(proposal))],
                Vec::new(),
                Vec::new(),
            )
        })
    }

    /// Builds one commit changing the room's join links: `removed` are indices into the current
    /// list, `added` new links (room-policy-03 `JoinLinksUpdate`).
    pub fn update_join_links(
        &self,
        me: &ClientIdentity,
        room_uri: &str,
        update: &mimi_policy::JoinLinksUpdate,
    ) -> Result<PendingCommit, RoomError> {
        let bytes = update
            .encode()
            .map_err(|e| RoomError::Misuse(format!("join links update: {e}")))?;
        self.set_component(me, room_uri, JOIN_LINKS, Some(bytes))
    }

    /// Builds one commit removing `user` from the participant list and all its clients from
    /// the group (draft §5.2: in the same commit).
    pub fn remove_user(
        &self,
        anchor: &TrustAnchor,
        me: &ClientIdentity,
        room_uri: &str,
        user: &str,
        now: u64,
    ) -> Result<PendingCommit, RoomError> {
        self.with_group(room_uri, |group| {
            let components = group_components(group)?;
            let index = index_of(&components.participants, user)
                .ok_or_else(|| RoomError::Misuse(format!("{user} is not a participant")))?;
            let leaves: Vec<LeafNodeIndex> = clients_of(anchor, group, user, now)?;
            let update = ParticipantListUpdate {
                changed_role_participants: Vec::new(),
                removed_indices: vec![index],
                added_participants: Vec::new(),
            };
            self.commit(
                me,
                group,
                vec![participant_update(&update)],
                Vec::new(),
                leaves,
            )
        })
    }

    /// Builds one commit moving participant `user` to role `role` (a role name of the room or
    /// its index). Banning (role 1) also removes all the user's clients in the same commit, as
    /// a banned user may have none (HUB-004). The room's policy decides whether our role may.
    pub fn set_role(
        &self,
        anchor: &TrustAnchor,
        me: &ClientIdentity,
        room_uri: &str,
        user: &str,
        role: &str,
        now: u64,
    ) -> Result<PendingCommit, RoomError> {
        self.with_group(room_uri, |group| {
            let components = group_components(group)?;
            let index = index_of(&components.participants, user)
                .ok_or_else(|| RoomError::Misuse(format!("{user} is not a participant")))?;
            let roles = components.policy.roles();
            let role_index = match role.parse::<u32>() {
                Ok(i) => i,
                Err(_) => roles
                    .roles
                    .iter()
                    .find(|r| r.role_name == role.as_bytes())
                    .map(|r| r.role_index.0)
                    .ok_or_else(|| RoomError::Misuse(format!("the room has no role {role:?}")))?,
            };
            if !roles.roles.iter().any(|r| r.role_index.0 == role_index) {
                return Err(RoomError::Misuse(format!(
                    "the room has no role {role_index}"
                )));
            }
            let leaves: Vec<LeafNodeIndex> = if role_index == mimi_policy::RoleIndex::BANNED.0 {
                clients_of(anchor, group, user, now)?
            } else {
                Vec::new()
            };
            let update = ParticipantListUpdate {
                changed_role_participants: vec![mimi_protocol::UserindexRolePair {
                    user_index: index,
                    role_index,
                }],
                removed_indices: Vec::new(),
                added_participants: Vec::new(),
            };
            self.commit(
                me,
                group,
                vec![participant_update(&update)],
                Vec::new(),
                leaves,
            )
        })
    }

    /// Builds one commit removing all clients of `user` while it stays a participant (a kick,
    /// room-policy `canKick`); the user may come back with a new device.
    pub fn kick(
        &self,
        anchor: &TrustAnchor,
        me: &ClientIdentity,
        room_uri: &str,
        user: &str,
        now: u64,
    ) -> Result<PendingCommit, RoomError> {
        self.with_group(room_uri, |group| {
            let leaves: Vec<LeafNodeIndex> = clients_of(anchor, group, user, now)?;
            if leaves.is_empty() {
                return Err(RoomError::Misuse(format!(
                    "{user} has no clients in {room_uri}"
                )));
            }
            self.commit(me, group, Vec::new(), Vec::new(), leaves)
        })
    }

    /// Builds the proposals for leaving: the participant-list removal of our own user, a
    /// Remove of each of our user's other clients and a SelfRemove of this one (draft §6.5
    /// step 1; HUB-004 wants every client of a departing user gone in the same commit).
    /// Someone else's next commit completes the departure.
    pub fn leave(
        &self,
        anchor: &TrustAnchor,
        me: &ClientIdentity,
        room_uri: &str,
        now: u64,
    ) -> Result<Vec<Vec<u8>>, RoomError> {
        self.with_group(room_uri, |group| {
            let signer = self.signer(me)?;
            let components = group_components(group)?;
            let my_user = user_of_device(&me.device_uri)?;
            let index = index_of(&components.participants, &my_user)
                .ok_or_else(|| RoomError::Misuse(format!("{my_user} is not a participant")))?;
            let own_leaf = group.own_leaf_index().u32();
            let other_devices: Vec<LeafNodeIndex> = verified_members(anchor, group.members(), now)?
                .into_iter()
                .filter(|(leaf, m)| *leaf != own_leaf && m.user_uri == my_user)
                .map(|(leaf, _)| LeafNodeIndex::new(leaf))
                .collect();
            let update = ParticipantListUpdate {
                changed_role_participants: Vec::new(),
                removed_indices: vec![index],
                added_participants: Vec::new(),
            };
            let mut proposals = Vec::new();
            let (list_proposal, _) = group
                .propose_app_data_update(
                    &self.provider,
                    &signer,
                    PARTICIPANT_LIST as ComponentId,
                    AppDataUpdateOperation::Update(update.encode().into()),
                )
                .map_err(RoomError::mls)?;
            proposals.push(encode_message(&list_proposal)?);
            for leaf in other_devices {
                let (remove, _) = group
                    .propose_remove_member(&self.provider, &signer, leaf)
                    .map_err(RoomError::mls)?;
                proposals.push(encode_message(&remove)?);
            }
            let self_remove = group
                .leave_group_via_self_remove(&self.provider, &signer)
                .map_err(RoomError::mls)?;
            proposals.push(encode_message(&self_remove)?);
            Ok(proposals)
        })
    }

    /// Commits the proposals waiting in the room, if any.
    pub fn commit_pending(
        &self,
        me: &ClientIdentity,
        room_uri: &str,
    ) -> Result<Option<PendingCommit>, RoomError> {
        self.with_group(room_uri, |group| {
            if group.pending_proposals().next().is_none() {
                return Ok(None);
            }
            self.commit(me, group, Vec::new(), Vec::new(), Vec::new())
                .map(Some)
        })
    }

    /// Builds a commit that only refreshes this client's own leaf and path secrets (post-
    /// compromise security; also the "update" commit of the hub benchmarks).
    pub fn self_update(
        &self,
        me: &ClientIdentity,
        room_uri: &str,
    ) -> Result<PendingCommit, RoomError> {
        self.with_group(room_uri, |group| {
            self.commit_with(me, group, Vec::new(), Vec::new(), Vec::new(), true)
        })
    }

    /// The room's current GroupInfo (an MLSMessage, without the tree) and its ratchet tree,
    /// as a hub or an external joiner needs them.
    pub fn export_group_info(
        &self,
        me: &ClientIdentity,
        room_uri: &str,
    ) -> Result<CreatedRoom, RoomError> {
        self.with_group(room_uri, |group| {
            let signer = self.signer(me)?;
            self.exported(group, &signer)
        })
    }

    /// The group's GroupInfo (MLSMessage, without the tree) and its TLS-encoded tree.
    fn exported(
        &self,
        group: &MlsGroup,
        signer: &SignatureKeyPair,
    ) -> Result<CreatedRoom, RoomError> {
        let group_info = group
            .export_group_info(self.provider.crypto(), signer, false)
            .map_err(RoomError::mls)?;
        Ok(CreatedRoom {
            group_info: encode_message(&group_info)?,
            ratchet_tree: group
                .export_ratchet_tree()
                .tls_serialize_detached()
                .map_err(|_| RoomError::Internal("ratchet tree does not encode"))?,
        })
    }

    /// Applies our commit after the hub accepted it.
    pub fn merge_pending_commit(&self, room_uri: &str) -> Result<u64, RoomError> {
        self.with_group(room_uri, |group| {
            group
                .merge_pending_commit(&self.provider)
                .map_err(RoomError::mls)?;
            Ok(group.epoch().as_u64())
        })
    }

    /// Drops our commit after the hub refused it.
    pub fn discard_pending_commit(&self, room_uri: &str) -> Result<(), RoomError> {
        self.with_group(room_uri, |group| {
            group
                .clear_pending_commit(self.provider.storage())
                .map_err(RoomError::mls)
        })
    }

    /// Encrypts application data (MIMI content) as a PrivateMessage; returns the MLSMessage
    /// and the epoch it belongs to.
    pub fn encrypt(
        &self,
        me: &ClientIdentity,
        room_uri: &str,
        data: &[u8],
    ) -> Result<(Vec<u8>, u64), RoomError> {
        self.with_group(room_uri, |group| {
            let signer = self.signer(me)?;
            let message = group
                .create_message(&self.provider, &signer, data)
                .map_err(RoomError::mls)?;
            Ok((encode_message(&message)?, group.epoch().as_u64()))
        })
    }

    /// [`MemberState::encrypt`] with `authenticated_data` (a SafeAAD such as
    /// [`crate::frank_aad`]) in the PrivateMessage.
    pub fn encrypt_with_aad(
        &self,
        me: &ClientIdentity,
        room_uri: &str,
        data: &[u8],
        authenticated_data: Vec<u8>,
    ) -> Result<(Vec<u8>, u64), RoomError> {
        self.with_group(room_uri, |group| {
            let signer = self.signer(me)?;
            group.set_aad(authenticated_data);
            let message = group.create_message(&self.provider, &signer, data);
            // OpenMLS clears the AAD only when a message is made; never leave it for the next.
            group.set_aad(Vec::new());
            let message = message.map_err(RoomError::mls)?;
            Ok((encode_message(&message)?, group.epoch().as_u64()))
        })
    }

    /// The room's `franking_agent` component (its TLS encoding), if it has one.
    pub fn franking_agent(&self, room_uri: &str) -> Result<Option<Vec<u8>>, RoomError> {
        self.with_group(room_uri, |group| {
            Ok(group
                .extensions()
                .app_data_dictionary()
                .and_then(|d| d.dictionary().get(&crate::components::FRANKING_AGENT))
                .map(<[u8]>::to_vec))
        })
    }

    /// [`MemberState::encrypt`] for several messages with one load of the group: the
    /// PrivateMessages in order and the epoch they belong to.
    pub fn encrypt_many(
        &self,
        me: &ClientIdentity,
        room_uri: &str,
        data: &[Vec<u8>],
    ) -> Result<(Vec<Vec<u8>>, u64), RoomError> {
        let with_aad: Vec<(&[u8], &[u8])> = data.iter().map(|d| (d.as_slice(), &[][..])).collect();
        self.encrypt_many_with_aad(me, room_uri, &with_aad)
    }

    /// [`MemberState::encrypt_many`] with each message's authenticated data (a franking tag's
    /// SafeAAD, for one).
    pub fn encrypt_many_with_aad(
        &self,
        me: &ClientIdentity,
        room_uri: &str,
        messages: &[(&[u8], &[u8])],
    ) -> Result<(Vec<Vec<u8>>, u64), RoomError> {
        self.with_group(room_uri, |group| {
            let signer = self.signer(me)?;
            let mut out = Vec::with_capacity(messages.len());
            for (data, aad) in messages {
                group.set_aad(aad.to_vec());
                let message = group.create_message(&self.provider, &signer, data);
                // OpenMLS clears the AAD only when a message is made; never leave it behind.
                group.set_aad(Vec::new());
                out.push(encode_message(&message.map_err(RoomError::mls)?)?);
            }
            Ok((out, group.epoch().as_u64()))
        })
    }

    /// Joins a room from a Welcome (MLSMessage) and the ratchet tree the hub supplied, after
    /// checking every member is vouched for and a participant. Returns the room URI.
    pub fn join(
        &self,
        anchor: &TrustAnchor,
        welcome: &[u8],
        ratchet_tree: &[u8],
        now: u64,
    ) -> Result<String, RoomError> {
        let welcome = crate::decode::welcome(welcome)?;
        let tree = crate::decode::ratchet_tree(ratchet_tree)?;
        let join_config = crate::decode::join_config();
        // A Welcome into a room we left or were removed from replaces the dead group; callers
        // never pass a Welcome for a room this client is active in.
        let staged = StagedWelcome::build_from_welcome(&self.provider, &join_config, welcome)
            .map_err(RoomError::mls)?
            .with_ratchet_tree(tree)
            .replace_old_group()
            .build()
            .map_err(RoomError::mls)?;
        let group = staged.into_group(&self.provider).map_err(RoomError::mls)?;
        let room_uri = String::from_utf8(group.group_id().as_slice().to_vec())
            .map_err(|_| RoomError::not_allowed("group ID is not a room URI"))?;
        // Storage now holds the new group; a cached old one of this room is stale.
        self.forget_group(&room_uri);
        // JOIN-001: every member is vouched for and belongs to a non-banned participant.
        let components = group_components(&group)?;
        let members = verified_members(anchor, group.members(), now)?;
        for member in members.values() {
            if !crate::proposals::is_real_role(components.role_of(&member.user_uri)) {
                return Err(RoomError::not_allowed(format!(
                    "the joined room holds {} whose user is not an active participant",
                    member.device_uri
                )));
            }
        }
        self.cache_group(&room_uri, group)?;
        Ok(room_uri)
    }

    /// Joins a room by external commit (draft §5.5, a new device of a participant), from the
    /// GroupInfo (MLSMessage) and ratchet tree the hub sent. `hub_sender` (a TLS-encoded
    /// `ExternalSender`) must be one of the room's external senders. Returns the room URI and
    /// the commit for the hub; until the hub accepts it, the caller must not persist this
    /// state.
    pub fn join_by_external_commit(
        &self,
        anchor: &TrustAnchor,
        me: &ClientIdentity,
        group_info: &[u8],
        ratchet_tree: &[u8],
        hub_sender: &[u8],
        now: u64,
    ) -> Result<(String, PendingCommit), RoomError> {
        self.join_external(
            anchor,
            me,
            &ExternalJoin {
                group_info,
                ratchet_tree,
                hub_sender,
                link: None,
                pending_proposals: &[],
            },
            now,
        )
    }

    /// Joins as [`MemberState::join_by_external_commit`] does, with what a `/groupInfo`
    /// answer gave: a join link named in the commit (IN-LIFECYCLE-4) when our user is not a
    /// participant (a single-use link is removed from the room's `join_links` in the same
    /// commit), and the epoch's pending proposals, whose SelfRemoves the commit includes by
    /// reference (draft §5.5; HUB-074).
    pub fn join_external(
        &self,
        anchor: &TrustAnchor,
        me: &ClientIdentity,
        join: &ExternalJoin<'_>,
        now: u64,
    ) -> Result<(String, PendingCommit), RoomError> {
        let ExternalJoin {
            group_info,
            ratchet_tree,
            hub_sender,
            link,
            pending_proposals,
        } = *join;
        let group_info = crate::decode::group_info(group_info)?;
        let tree = crate::decode::ratchet_tree(ratchet_tree)?;
        let signer = self.signer(me)?;
        let join_config = crate::decode::join_config();
        // An unlisted user joins an open room by adding itself to the participant list in the
        // same external commit (HUB-077); whether the room is open is checked again by the hub
        // and every member on the verified state.
        let before = RoomComponents::from_dictionary(
            group_info
                .group_context()
                .extensions()
                .app_data_dictionary()
                .map(|e| e.dictionary()),
        )?;
        let room_uri_claimed =
            String::from_utf8_lossy(group_info.group_context().group_id().as_slice()).into_owned();
        let user = user_of_device(&me.device_uri)?;
        // Not open: the plain commit goes to the hub, whose call it is (HUB-070).
        let self_join = (before.role_of(&user) == RoleIndex::NON_PARTICIPANT)
            .then(|| crate::validation::self_join_role(&before, &user, link))
            .flatten();
        // A single-use link leaves the room's list in the commit that uses it.
        let used_link = match &self_join {
            Some((_, crate::validation::SelfJoin::Link(used))) => Some(used.clone()),
            _ => None,
        };
        let remove_link = used_link
            .as_ref()
            .filter(|l| crate::join_links::JoinLinkTerms::of(l).is_some_and(|t| !t.multi))
            .and_then(|l| {
                let links = before
                    .raw
                    .get(&JOIN_LINKS)
                    .and_then(|b| mimi_policy::JoinLinksData::decode(b).ok())?;
                let index = links.links.iter().position(|x| &x.join_link == l)?;
                let update = mimi_policy::JoinLinksUpdate {
                    removed_indices: vec![u32::try_from(index).ok()?],
                    added_links: Vec::new(),
                };
                Some(AppDataUpdateProposal::update(
                    JOIN_LINKS as ComponentId,
                    update.encode().ok()?,
                ))
            });
        let self_add = self_join.map(|(role, _)| {
            AppDataUpdateProposal::update(
                PARTICIPANT_LIST as ComponentId,
                ParticipantListUpdate {
                    changed_role_participants: Vec::new(),
                    removed_indices: Vec::new(),
                    added_participants: vec![pair(&user, role.0)],
                }
                .encode(),
            )
        });
        let pending = pending_proposals
            .iter()
            .map(|bytes| crate::decode::public_message(bytes))
            .collect::<Result<Vec<_>, _>>()?;
        let mut external = MlsGroup::external_commit_builder()
            .with_ratchet_tree(tree)
            .with_config(join_config)
            .with_proposals(pending);
        if let Some(link) = &used_link {
            external = external.with_aad(crate::join_links::safe_aad_with_link(link));
        }
        let mut builder = external
            .build_group(&self.provider, group_info, credential_with_key(me)?)
            .map_err(RoomError::mls)?;
        for proposal in self_add.into_iter().chain(remove_link) {
            builder = builder.add_app_data_update_proposal(proposal);
        }
        let mut stage = builder
            .leaf_node_parameters(
                openmls::prelude::LeafNodeParameters::builder()
                    .with_capabilities(capabilities())
                    .build(),
            )
            .load_psks(self.provider.storage())
            .map_err(RoomError::mls)?
            .create_group_info(true);
        let mut updater = stage.app_data_dictionary_updater();
        apply_app_data_updates(
            &before,
            &room_uri_claimed,
            stage.app_data_update_proposals(),
            &mut updater,
        )?;
        let updates = updater.changes();
        stage.with_app_data_dictionary_updates(updates);
        let (group, bundle) = stage
            .build(
                self.provider.rand(),
                self.provider.crypto(),
                &signer,
                |_| true,
            )
            .map_err(RoomError::mls)?
            .finalize(&self.provider)
            .map_err(RoomError::mls)?;
        let room_uri = String::from_utf8(group.group_id().as_slice().to_vec())
            .map_err(|_| RoomError::not_allowed("group ID is not a room URI"))?;
        self.forget_group(&room_uri);
        // JOIN-002: the GroupInfo came from this room's hub.
        let hub_is_sender = group
            .extensions()
            .external_senders()
            .is_some_and(|senders| {
                senders
                    .iter()
                    .any(|s| s.tls_serialize_detached().is_ok_and(|b| b == hub_sender))
            });
        if !hub_is_sender {
            return Err(RoomError::not_allowed(
                "the GroupInfo does not name its sender as the room's hub",
            ));
        }
        // JOIN-001 for external joins too; whether we may join is the hub's call (HUB-070).
        let components = group_components(&group)?;
        for member in verified_members(anchor, group.members(), now)?.values() {
            if member.device_uri != me.device_uri
                && !crate::proposals::is_real_role(components.role_of(&member.user_uri))
            {
                return Err(RoomError::not_allowed(format!(
                    "the room holds {} whose user is not an active participant",
                    member.device_uri
                )));
            }
        }
        let (commit, _, group_info) = bundle.into_messages();
        let commit = encode_message(&commit)?;
        let group_info = group_info.as_ref().map(encode_message).transpose()?;
        self.cache_group(&room_uri, group)?;
        Ok((
            room_uri,
            PendingCommit {
                commit,
                welcome: None,
                group_info,
            },
        ))
    }

    /// Processes one message the hub fanned out for `room_uri`.
    pub fn process(
        &self,
        anchor: &TrustAnchor,
        room_uri: &str,
        message: &[u8],
        now: u64,
    ) -> Result<Incoming, RoomError> {
        let message = MlsMessageIn::tls_deserialize_exact(message)
            .map_err(|e| RoomError::malformed("MLSMessage", e))?;
        let protocol: ProtocolMessage = message
            .try_into_protocol_message()
            .map_err(|_| RoomError::malformed("MLSMessage", "not a group message"))?;
        self.with_group(room_uri, |group| {
            let current = group.epoch().as_u64();
            let is_handshake = protocol.is_handshake_message();
            if is_handshake && protocol.epoch().as_u64() < current {
                return Ok(Incoming::Stale);
            }
            let epoch = protocol.epoch().as_u64();
            let processed = group
                .process_message(&self.provider, protocol)
                .map_err(RoomError::mls)?;
            let sender = match processed.sender() {
                Sender::Member(leaf) => Some(*leaf),
                _ => None,
            };
            let credential = processed.credential().clone();
            let authenticated_data = processed.aad().to_vec();
            let components = group_components(group)?;
            if matches!(processed.sender(), Sender::NewMemberCommit) {
                let link = crate::join_links::link_in_aad(processed.aad());
                let (staged, applied) = match processed.into_content() {
                    ProcessedMessageContent::StagedCommitMessage(staged) => {
                        (staged, Applied::unchanged(&components))
                    }
                    ProcessedMessageContent::UnresolvedAppDataCommit(unresolved) => {
                        let mut updater = group.app_data_dictionary_updater();
                        let applied = apply_app_data_updates(
                            &components,
                            room_uri,
                            unresolved.app_data_update_proposals(),
                            &mut updater,
                        )?;
                        let updates = updater.changes();
                        let staged = group
                            .stage_app_data_commit(&self.provider, *unresolved, updates)
                            .map_err(RoomError::mls)?;
                        (Box::new(staged), applied)
                    }
                    _ => return Err(RoomError::invalid("unexpected external commit content")),
                };
                let members = verified_members(anchor, group.members(), now)?;
                check_external_commit(
                    anchor,
                    &members,
                    &components,
                    &applied,
                    &staged,
                    link.as_deref(),
                    now,
                )?;
                // check_external_commit refused a commit without a path, so the key is there.
                let joiner_key = staged
                    .update_path_leaf_node()
                    .map(|leaf| leaf.signature_key().as_slice().to_vec());
                group
                    .merge_staged_commit(&self.provider, *staged)
                    .map_err(RoomError::mls)?;
                let joiner = joiner_key.and_then(|key| {
                    group
                        .members()
                        .find(|m| m.signature_key == key)
                        .map(|m| m.index.u32())
                });
                return Ok(Incoming::Commit {
                    epoch: group.epoch().as_u64(),
                    removed_me: false,
                    joiner,
                });
            }
            match processed.into_content() {
                ProcessedMessageContent::ApplicationMessage(app) => {
                    let sender =
                        sender.ok_or_else(|| RoomError::invalid("application from non-member"))?;
                    let key = group
                        .member_at(sender)
                        .map(|m| m.signature_key)
                        .ok_or_else(|| RoomError::invalid("application from an empty leaf"))?;
                    let who = self.identify_sender(anchor, &credential, &key)?;
                    Ok(Incoming::Message {
                        sender_device: who.device_uri,
                        sender_user: who.user_uri,
                        data: app.into_bytes(),
                        epoch,
                        authenticated_data,
                    })
                }
                ProcessedMessageContent::ProposalMessage(proposal)
                    if matches!(proposal.sender(), Sender::External(_)) =>
                {
                    // HUB-081: the hub (the only external sender, whose signature OpenMLS
                    // checked) may only propose removals.
                    check_external_proposal(&proposal, &components, group.pending_proposals())?;
                    group
                        .store_pending_proposal(self.provider.storage(), *proposal)
                        .map_err(RoomError::mls)?;
                    Ok(Incoming::Proposal)
                }
                ProcessedMessageContent::ProposalMessage(proposal) => {
                    let sender =
                        sender.ok_or_else(|| RoomError::invalid("proposal from non-member"))?;
                    let members = verified_members(anchor, group.members(), now)?;
                    check_standalone_proposal(
                        &proposal,
                        sender,
                        &members,
                        &components,
                        group.pending_proposals(),
                    )?;
                    group
                        .store_pending_proposal(self.provider.storage(), *proposal)
                        .map_err(RoomError::mls)?;
                    Ok(Incoming::Proposal)
                }
                ProcessedMessageContent::StagedCommitMessage(staged) => {
                    let sender =
                        sender.ok_or_else(|| RoomError::invalid("commit from non-member"))?;
                    let after = Applied::unchanged(&components);
                    self.accept_commit(anchor, group, *staged, sender, &components, after, now)
                }
                ProcessedMessageContent::UnresolvedAppDataCommit(unresolved) => {
                    let sender =
                        sender.ok_or_else(|| RoomError::invalid("commit from non-member"))?;
                    let mut updater = group.app_data_dictionary_updater();
                    let after = apply_app_data_updates(
                        &components,
                        room_uri,
                        unresolved.app_data_update_proposals(),
                        &mut updater,
                    )?;
                    let updates = updater.changes();
                    let staged = group
                        .stage_app_data_commit(&self.provider, *unresolved, updates)
                        .map_err(RoomError::mls)?;
                    self.accept_commit(anchor, group, staged, sender, &components, after, now)
                }
                // Our own commit came back before we merged it (its acceptance was not seen).
                ProcessedMessageContent::OwnPendingCommit => {
                    group
                        .merge_pending_commit(&self.provider)
                        .map_err(RoomError::mls)?;
                    Ok(Incoming::Commit {
                        epoch: group.epoch().as_u64(),
                        removed_me: false,
                        joiner: None,
                    })
                }
                _ => Ok(Incoming::Stale),
            }
        })
    }

    /// What this client knows about a room.
    pub fn room_view(
        &self,
        anchor: &TrustAnchor,
        room_uri: &str,
        now: u64,
    ) -> Result<RoomView, RoomError> {
        self.with_group(room_uri, |group| {
            let components = group_components(group)?;
            let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for m in verified_members(anchor, group.members(), now)?.into_values() {
                members.entry(m.user_uri).or_default().push(m.device_uri);
            }
            Ok(RoomView {
                epoch: group.epoch().as_u64(),
                participants: components.participants(),
                members,
                has_pending_proposals: group.pending_proposals().next().is_some(),
                metadata: components.metadata.clone(),
                roles: components.policy.roles().clone(),
                base_policy: components.base.clone(),
                components: components.entries(),
            })
        })
    }

    /// What the room's policy lets `user` do, as this client sees the room now.
    pub fn room_rules(&self, room_uri: &str, user: &str) -> Result<RoomRules, RoomError> {
        self.with_group(room_uri, |group| {
            Ok(RoomRules::of(&group_components(group)?, user))
        })
    }

    /// Whether this client has proposed to leave the room and waits for someone's commit.
    pub fn is_leaving(&self, room_uri: &str) -> bool {
        self.with_group(room_uri, |group| {
            let own = group.own_leaf_index();
            Ok(group.pending_proposals().any(|q| {
                matches!(q.proposal(), Proposal::SelfRemove)
                    && matches!(q.sender(), Sender::Member(l) if *l == own)
            }))
        })
        .unwrap_or(false)
    }

    /// Whether a commit of ours waits for the hub's verdict in this room.
    pub fn has_pending_commit(&self, room_uri: &str) -> bool {
        self.with_group(room_uri, |g| Ok(g.pending_commit().is_some()))
            .unwrap_or(false)
    }

    /// Whether this client has the lowest leaf index among the room's members other than the
    /// client at leaf `except` (IN-ROOMSTATE-7: who shares keys after an external commit).
    pub fn is_first_member_besides(&self, room_uri: &str, except: u32) -> bool {
        self.with_group(room_uri, |group| {
            let own = group.own_leaf_index().u32();
            Ok(group.is_active()
                && own != except
                && group
                    .members()
                    .map(|m| m.index.u32())
                    .filter(|leaf| *leaf != except)
                    .min()
                    == Some(own))
        })
        .unwrap_or(false)
    }

    /// Whether this client is still a member of the room's group.
    pub fn is_active(&self, room_uri: &str) -> bool {
        self.with_group(room_uri, |g| Ok(g.is_active()))
            .unwrap_or(false)
    }

    #[allow(clippy::too_many_arguments)]
    fn accept_commit(
        &self,
        anchor: &TrustAnchor,
        group: &mut MlsGroup,
        staged: StagedCommit,
        committer: LeafNodeIndex,
        components: &RoomComponents,
        after: Applied,
        now: u64,
    ) -> Result<Incoming, RoomError> {
        let members = verified_members(anchor, group.members(), now)?;
        let departing = departing_users(group.pending_proposals(), &members, components);
        let facts = commit_facts(anchor, &members, committer, &staged, now)?;
        check_commit(
            components,
            &after,
            &facts,
            &departing,
            group.epoch().as_u64() == 0,
        )?;
        let removed_me = staged.self_removed();
        group
            .merge_staged_commit(&self.provider, staged)
            .map_err(RoomError::mls)?;
        Ok(Incoming::Commit {
            epoch: group.epoch().as_u64(),
            removed_me,
            joiner: None,
        })
    }

    fn commit(
        &self,
        me: &ClientIdentity,
        group: &mut MlsGroup,
        proposals: Vec<Proposal>,
        adds: Vec<KeyPackage>,
        removes: Vec<LeafNodeIndex>,
    ) -> Result<PendingCommit, RoomError> {
        self.commit_with(me, group, proposals, adds, removes, false)
    }

    fn commit_with(
        &self,
        me: &ClientIdentity,
        group: &mut MlsGroup,
        proposals: Vec<Proposal>,
        adds: Vec<KeyPackage>,
        removes: Vec<LeafNodeIndex>,
        force_path: bool,
    ) -> Result<PendingCommit, RoomError> {
        let signer = self.signer(me)?;
        let before = group_components(group)?;
        let room_uri = String::from_utf8_lossy(group.group_id().as_slice()).into_owned();
        let mut stage = group
            .commit_builder()
            .force_self_update(force_path)
            .propose_adds(adds)
            .propose_removals(removes)
            .add_proposals(proposals)
            .load_psks(self.provider.storage())
            .map_err(RoomError::mls)?
            .create_group_info(true);
        let mut updater = stage.app_data_dictionary_updater();
        apply_app_data_updates(
            &before,
            &room_uri,
            stage.app_data_update_proposals(),
            &mut updater,
        )?;
        let updates = updater.changes();
        stage.with_app_data_dictionary_updates(updates);
        let bundle = stage
            .build(
                self.provider.rand(),
                self.provider.crypto(),
                &signer,
                |_| true,
            )
            .map_err(RoomError::mls)?
            .stage_commit(&self.provider)
            .map_err(RoomError::mls)?;
        let (commit, welcome, group_info) = bundle.into_messages();
        Ok(PendingCommit {
            commit: encode_message(&commit)?,
            welcome: welcome.as_ref().map(encode_message).transpose()?,
            group_info: group_info.as_ref().map(encode_message).transpose()?,
        })
    }

    /// Runs `op` on the room's group, loaded from the cache or else from storage. The group goes
    /// back into the cache only if `op` succeeds: a failed operation may have left the
    /// in-memory group out of step with what OpenMLS wrote, so the next use reloads it.
    fn with_group<T>(
        &self,
        room_uri: &str,
        op: impl FnOnce(&mut MlsGroup) -> Result<T, RoomError>,
    ) -> Result<T, RoomError> {
        let cached = self.groups()?.remove(room_uri);
        let mut group = match cached {
            Some(group) => group,
            None => MlsGroup::load(
                self.provider.storage(),
                &GroupId::from_slice(room_uri.as_bytes()),
            )
            .map_err(|_| RoomError::CorruptState("cannot read group"))?
            .ok_or_else(|| RoomError::Misuse(format!("not a member of {room_uri}")))?,
        };
        let out = op(&mut group);
        if out.is_ok() {
            self.groups()?.insert(room_uri.to_owned(), group);
        }
        out
    }

    /// Who sent an application message: [`identify_member`], remembered per credential and key.
    fn identify_sender(
        &self,
        anchor: &TrustAnchor,
        credential: &openmls::prelude::Credential,
        key: &[u8],
    ) -> Result<crate::credentials::VerifiedMember, RoomError> {
        let cache_key = (
            credential
                .tls_serialize_detached()
                .map_err(|_| RoomError::Internal("credential does not encode"))?,
            key.to_vec(),
        );
        let mut cache = self
            .senders
            .lock()
            .map_err(|_| RoomError::Internal("sender cache lock poisoned"))?;
        if cache.anchor != anchor.der() {
            cache.anchor = anchor.der().to_vec();
            cache.members.clear();
        }
        if let Some(who) = cache.members.get(&cache_key) {
            return Ok(who.clone());
        }
        let who = identify_member(anchor, credential, key)?;
        if cache.members.len() >= MAX_CACHED_SENDERS {
            cache.members.clear();
        }
        cache.members.insert(cache_key, who.clone());
        Ok(who)
    }

    /// Caches a group that was just created or joined, replacing any older one of that room.
    fn cache_group(&self, room_uri: &str, group: MlsGroup) -> Result<(), RoomError> {
        self.groups()?.insert(room_uri.to_owned(), group);
        Ok(())
    }

    /// Drops a room's cached group, so its next use reads storage.
    fn forget_group(&self, room_uri: &str) {
        if let Ok(mut groups) = self.groups() {
            groups.remove(room_uri);
        }
    }

    fn groups(&self) -> Result<MutexGuard<'_, HashMap<String, MlsGroup>>, RoomError> {
        self.groups
            .lock()
            .map_err(|_| RoomError::Internal("group cache lock poisoned"))
    }

    pub(crate) fn signer_for(&self, me: &ClientIdentity) -> Result<SignatureKeyPair, RoomError> {
        self.signer(me)
    }

    pub(crate) fn signer(&self, me: &ClientIdentity) -> Result<SignatureKeyPair, RoomError> {
        self.signer_for_key(&me.signature_public_key)
    }

    /// The key pair of `public_key`, also before any credential names it (registration).
    pub(crate) fn signer_for_key(&self, public_key: &[u8]) -> Result<SignatureKeyPair, RoomError> {
        SignatureKeyPair::read(
            self.provider.storage(),
            public_key,
            SignatureScheme::ED25519,
        )
        .ok_or(RoomError::CorruptState(
            "signature key missing from client state",
        ))
    }

    fn validated_key_package(&self, bytes: &[u8]) -> Result<KeyPackage, RoomError> {
        let package = KeyPackageIn::tls_deserialize_exact(bytes)
            .map_err(|e| RoomError::malformed("KeyPackage", e))?;
        package
            .validate(self.provider.crypto(), ProtocolVersion::Mls10)
            .map_err(|e| RoomError::invalid(format!("key package: {e:?}")))
    }
}

/// The leaf capabilities every MIMI client advertises.
pub(crate) fn capabilities() -> Capabilities {
    Capabilities::new(
        None,
        Some(&[CIPHERSUITE]),
        Some(&[ExtensionType::AppDataDictionary]),
        Some(&[ProposalType::AppDataUpdate, ProposalType::SelfRemove]),
        Some(&[CredentialType::Basic, CredentialType::X509]),
    )
}

pub(crate) fn credential_with_key(me: &ClientIdentity) -> Result<CredentialWithKey, RoomError> {
    Ok(CredentialWithKey {
        credential: x509_credential(&me.chain)?,
        signature_key: me.signature_public_key.clone().into(),
    })
}

/// The leaves of `user`'s clients in the group.
fn clients_of(
    anchor: &TrustAnchor,
    group: &MlsGroup,
    user: &str,
    now: u64,
) -> Result<Vec<LeafNodeIndex>, RoomError> {
    Ok(verified_members(anchor, group.members(), now)?
        .into_iter()
        .filter(|(_, m)| m.user_uri == user)
        .map(|(leaf, _)| LeafNodeIndex::new(leaf))
        .collect())
}

/// The role users added by `actor` get: the lowest real role the actor's role may move users
/// into from role 0, else the actor's own role (the creation commit of a `dm`, whose
/// participants are equals; IN-ROOMSTATE-5).
fn added_user_role(components: &RoomComponents, actor: &str) -> RoleIndex {
    let mine = components.role_of(actor);
    components
        .policy
        .role(mine)
        .and_then(|role| {
            role.authorized_role_changes
                .iter()
                .filter(|c| c.from_role_index == RoleIndex::NON_PARTICIPANT)
                .flat_map(|c| c.target_role_indexes.iter().copied())
                .filter(|r| is_real_role(*r))
                .min()
        })
        .unwrap_or(mine)
}

fn metadata_update(metadata: &mimi_protocol::RoomMetadata) -> Proposal {
    Proposal::AppDataUpdate(Box::new(AppDataUpdateProposal::update(
        ROOM_METADATA as ComponentId,
        metadata.encode(),
    )))
}

fn participant_update(update: &ParticipantListUpdate) -> Proposal {
    Proposal::AppDataUpdate(Box::new(AppDataUpdateProposal::update(
        PARTICIPANT_LIST as ComponentId,
        update.encode(),
    )))
}

fn group_components(group: &MlsGroup) -> Result<RoomComponents, RoomError> {
    RoomComponents::from_dictionary(
        group
            .extensions()
            .app_data_dictionary()
            .map(|e| e.dictionary()),
    )
}

fn encode_message(message: &MlsMessageOut) -> Result<Vec<u8>, RoomError> {
    message
        .tls_serialize_detached()
        .map_err(|_| RoomError::Internal("MLS message does not encode"))
}

/// The user URI of a device URI `mimi://d/d/user/device`.
fn user_of_device(device_uri: &str) -> Result<String, RoomError> {
    let uri: mimi_protocol::MimiUri = device_uri
        .parse()
        .map_err(|e| RoomError::Misuse(format!("bad device URI {device_uri}: {e}")))?;
    uri.user_of_device()
        .map(|u| u.to_string())
        .ok_or_else(|| RoomError::Misuse(format!("{device_uri} is not a device URI")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_cipher_suite_is_the_one_rooms_use() {
        assert_eq!(WIRE_CIPHERSUITE.0, u16::from(CIPHERSUITE));
    }
}
