//! The floor the hub is measured against: OpenMLS's `PublicGroup` processing a commit with
//! nothing of ours around it: no MIMI validation, no identities, no persistence beyond the
//! OpenMLS storage writes that `merge_commit` itself does. Only for benchmarks.

use openmls::prelude::{
    MlsMessageBodyIn, MlsMessageIn, ProcessedMessageContent, ProposalStore, PublicGroup,
    RatchetTreeIn,
};
use openmls_traits::OpenMlsProvider as _;
use tls_codec::Deserialize as _;

use crate::components::{RoomComponents, apply_app_data_updates};
use crate::error::RoomError;
use crate::provider::MlsProvider;

/// A bare OpenMLS `PublicGroup` with OpenMLS's in-memory storage.
pub struct BarePublicGroup {
    provider: MlsProvider,
    group: PublicGroup,
}

impl BarePublicGroup {
    /// Builds the group from a GroupInfo (MLSMessage) and its ratchet tree, as a hub would.
    pub fn new(group_info: &[u8], ratchet_tree: &[u8]) -> Result<Self, RoomError> {
        let message = MlsMessageIn::tls_deserialize_exact(group_info)
            .map_err(|e| RoomError::malformed("GroupInfo message", e))?;
        let MlsMessageBodyIn::GroupInfo(group_info) = message.extract() else {
            return Err(RoomError::malformed("GroupInfo message", "not a GroupInfo"));
        };
        let tree = RatchetTreeIn::tls_deserialize_exact(ratchet_tree)
            .map_err(|e| RoomError::malformed("ratchet tree", e))?;
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
                )?
                .participants;
                let mut updater = self.group.app_data_dictionary_updater();
                apply_app_data_updates(
                    &before,
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
