//! The floor we are measured against: OpenMLS doing the same MLS work with nothing of ours
//! around it (no MIMI validation, no identities, no persistence beyond OpenMLS's own storage
//! writes). `BarePublicGroup` is the hub's floor; `bare_join` and `bare_external_join` are a
//! client's. Only for benchmarks.

use openmls::prelude::{
    MlsGroup, MlsMessageIn, ProcessedMessageContent, ProposalStore, PublicGroup, StagedWelcome,
};
use openmls_traits::OpenMlsProvider as _;
use tls_codec::Deserialize as _;

use crate::components::{RoomComponents, apply_app_data_updates};
use crate::credentials::ClientIdentity;
use crate::error::RoomError;
use crate::member::{MemberState, capabilities, credential_with_key};
use crate::provider::MlsProvider;

/// A bare OpenMLS `PublicGroup` with OpenMLS's in-memory storage.
pub struct BarePublicGroup {
    provider: MlsProvider,
    group: PublicGroup,
}

impl BarePublicGroup {
    /// Builds the group from a GroupInfo (MLSMessage) and its ratchet tree, as a hub would.
    pub fn new(group_info: &[u8], ratchet_tree: &[u8]) -> Result<Self, RoomError> {
        let group_info = crate::decode::group_info(group_info)?;
        let tree = crate::decode::ratchet_tree(ratchet_tree)?;
        let provider = MlsProvider::default();
        let (group, _) = PublicGroup::from_external(
            provider.crypto(),
            provider.storage(),
            tree,
            group_info,
            ProposalStore::new(),
        )
        .map_err(|e| RoomError::invalid(format!("group state does not verify: {e:?}")))?;
        Ok(Self { provider, group })
    }

    /// Processes one proposal (a PublicMessage, e.g. the hub's own Remove) and keeps it for the
    /// next commit, as the hub does.
    pub fn process_proposal(&mut self, proposal: &[u8]) -> Result<(), RoomError> {
        let message = MlsMessageIn::tls_deserialize_exact(proposal)
            .map_err(|e| RoomError::malformed("MLSMessage", e))?;
        let protocol = message
            .try_into_protocol_message()
            .map_err(|_| RoomError::invalid("not a proposal"))?;
        let processed = self
            .group
            .process_message(self.provider.crypto(), protocol)
            .map_err(|e| RoomError::invalid(format!("{e:?}")))?;
        let ProcessedMessageContent::ProposalMessage(queued) = processed.into_content() else {
            return Err(RoomError::invalid("not a proposal"));
        };
        self.group
            .add_proposal(self.provider.storage(), *queued)
            .map_err(|_| RoomError::Internal("cannot queue proposal"))
    }

    /// Processes and merges one commit (a PublicMessage); returns the new epoch.
    ///
    /// A commit carrying AppDataUpdate proposals cannot be finished by OpenMLS alone: the
    /// application must compute the new component data. That step is the participant-list
    /// update the hub also runs, and is counted here as part of the floor.
    pub fn process_commit(&mut self, commit: &[u8]) -> Result<u64, RoomError> {
        let message = MlsMessageIn::tls_deserialize_exact(commit)
            .map_err(|e| RoomError::malformed("MLSMessage", e))?;
        let protocol = message
            .try_into_protocol_message()
            .map_err(|_| RoomError::invalid("not a commit"))?;
        let processed = self
            .group
            .process_message(self.provider.crypto(), protocol)
            .map_err(|e| RoomError::invalid(format!("{e:?}")))?;
        let staged = match processed.into_content() {
            ProcessedMessageContent::StagedCommitMessage(staged) => *staged,
            ProcessedMessageContent::UnresolvedAppDataCommit(unresolved) => {
                let before = RoomComponents::from_dictionary(
                    self.group
                        .group_context()
                        .extensions()
                        .app_data_dictionary()
                        .map(|e| e.dictionary()),
                )?;
                let room_uri =
                    String::from_utf8_lossy(self.group.group_id().as_slice()).into_owned();
                let mut updater = self.group.app_data_dictionary_updater();
                apply_app_data_updates(
                    &before,
                    &room_uri,
                    unresolved.app_data_update_proposals(),
                    &mut updater,
                )?;
                let updates = updater.changes();
                self.group
                    .stage_app_data_commit(self.provider.crypto(), *unresolved, updates)
                    .map_err(|e| RoomError::invalid(format!("{e:?}")))?
            }
            _ => return Err(RoomError::invalid("not a commit")),
        };
        self.group
            .merge_commit(self.provider.storage(), staged)
            .map_err(RoomError::mls)?;
        Ok(self.group.group_context().epoch().as_u64())
    }
}

/// OpenMLS alone joining from a Welcome (MLSMessage) and the tree, into `state`: what
/// [`MemberState::join`] does minus the MIMI checks of every member.
pub fn bare_join(
    state: &MemberState,
    welcome: &[u8],
    ratchet_tree: &[u8],
) -> Result<(), RoomError> {
    let welcome = crate::decode::welcome(welcome)?;
    let tree = crate::decode::ratchet_tree(ratchet_tree)?;
    StagedWelcome::build_from_welcome(&state.provider, &crate::decode::join_config(), welcome)
        .map_err(RoomError::mls)?
        .with_ratchet_tree(tree)
        .replace_old_group()
        .build()
        .map_err(RoomError::mls)?
        .into_group(&state.provider)
        .map_err(RoomError::mls)?;
    Ok(())
}

/// OpenMLS alone building an external commit from a GroupInfo (MLSMessage) and the tree:
/// what [`MemberState::join_by_external_commit`] does minus the MIMI checks.
pub fn bare_external_join(
    state: &MemberState,
    me: &ClientIdentity,
    group_info: &[u8],
    ratchet_tree: &[u8],
) -> Result<(), RoomError> {
    let group_info = crate::decode::group_info(group_info)?;
    let tree = crate::decode::ratchet_tree(ratchet_tree)?;
    let signer = state.signer(me)?;
    MlsGroup::external_commit_builder()
        .with_ratchet_tree(tree)
        .with_config(crate::decode::join_config())
        .build_group(&state.provider, group_info, credential_with_key(me)?)
        .map_err(RoomError::mls)?
        .leaf_node_parameters(
            openmls::prelude::LeafNodeParameters::builder()
                .with_capabilities(capabilities())
                .build(),
        )
        .load_psks(state.provider.storage())
        .map_err(RoomError::mls)?
        .create_group_info(true)
        .build(
            state.provider.rand(),
            state.provider.crypto(),
            &signer,
            |_| true,
        )
        .map_err(RoomError::mls)?
        .finalize(&state.provider)
        .map_err(RoomError::mls)?;
    Ok(())
}
