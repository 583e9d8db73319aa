//! The OpenMLS store: a key/value map that remembers which keys changed since the caller last
//! saved, so a client persists only those, and that can undo everything since a savepoint, so a
//! failed operation leaves no trace without re-reading the whole state.
//!
//! Keys are `label ‖ serde_json(key) ‖ version (u16 BE)` and values are serde_json, the layout
//! of `openmls_memory_storage`, so snapshots written before this store existed still load.
//! Lists (proposal references, own leaf nodes) are one value: a JSON array of the items' JSON
//! bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use openmls_traits::storage::{CURRENT_VERSION, Key, StorageProvider, traits};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StorageError {
    /// A value did not encode or a stored value did not decode.
    #[error("stored MLS value does not (de)serialize: {0}")]
    Serde(#[from] serde_json::Error),
    /// A thread panicked while holding the store's lock.
    #[error("MLS storage lock poisoned")]
    Poisoned,
    /// A deferred ratchet tree was read or snapshotted before [`TrackedStorage::write_tree_now`].
    #[error("the stored ratchet tree is out of date")]
    StaleTree,
}

/// One key that changed since the last save: its new value, or `None` if it was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The storage key.
    pub key: Vec<u8>,
    /// The new value; `None` when the key was deleted.
    pub value: Option<Vec<u8>>,
}

/// The key/value map with its change journal.
#[derive(Default)]
pub(crate) struct TrackedStorage {
    inner: Mutex<Journal>,
}

#[derive(Default)]
struct Journal {
    values: HashMap<Vec<u8>, Vec<u8>>,
    /// Whether `dirty` and `undo` are kept; the hub snapshots its whole store and needs neither.
    tracking: bool,
    /// Keys written or deleted since the last [`TrackedStorage::mark_saved`].
    dirty: BTreeSet<Vec<u8>>,
    /// Each key's value at the last savepoint, for keys changed since then.
    undo: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Whether `write_tree` only marks the tree out of date (see [`TrackedStorage::defer_trees`]).
    defer_trees: bool,
    /// Tree keys whose stored value is older than the tree OpenMLS last asked to write.
    stale: BTreeSet<Vec<u8>>,
}

impl Journal {
    fn set(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.stale.remove(&key);
        let old = match value {
            Some(v) => self.values.insert(key.clone(), v),
            None => self.values.remove(&key),
        };
        if self.tracking {
            self.undo.entry(key.clone()).or_insert(old);
            self.dirty.insert(key);
        }
    }
}

impl TrackedStorage {
    /// A store holding `entries`, with change tracking on or off.
    pub(crate) fn from_entries(
        entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        tracking: bool,
    ) -> Self {
        Self {
            inner: Mutex::new(Journal {
                values: entries.into_iter().collect(),
                tracking,
                ..Journal::default()
            }),
        }
    }

    /// Makes `write_tree` skip its work and only note that the stored tree is out of date;
    /// reading that tree, or snapshotting, then fails until [`TrackedStorage::write_tree_now`]
    /// stores the current one. For the hub, which keeps its `PublicGroup` in memory and reads
    /// the store only when it snapshots: OpenMLS writes the whole tree as JSON after every
    /// commit, about half of what a bare `PublicGroup` spends on a commit at 100 members
    /// (BENCHMARKS.md, issue 9).
    pub(crate) fn defer_trees(&self) -> Result<(), StorageError> {
        self.lock()?.defer_trees = true;
        Ok(())
    }

    /// Stores `tree` as group `group_id`'s ratchet tree now, even when trees are deferred.
    pub(crate) fn write_tree_now<G: Serialize, T: Serialize>(
        &self,
        group_id: &G,
        tree: &T,
    ) -> Result<(), StorageError> {
        self.put(TREE, group_id, tree)
    }

    /// Every entry, sorted by key; fails while a deferred tree is out of date.
    pub(crate) fn sorted_entries(&self) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, StorageError> {
        let journal = self.lock()?;
        if !journal.stale.is_empty() {
            return Err(StorageError::StaleTree);
        }
        Ok(journal
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    /// The keys changed since the last save, with their current values, sorted by key.
    pub(crate) fn pending_changes(&self) -> Result<Vec<StateChange>, StorageError> {
        let journal = self.lock()?;
        Ok(journal
            .dirty
            .iter()
            .map(|key| StateChange {
                key: key.clone(),
                value: journal.values.get(key).cloned(),
            })
            .collect())
    }

    /// Records that the caller persisted every pending change; also sets a savepoint.
    pub(crate) fn mark_saved(&self) -> Result<(), StorageError> {
        let mut journal = self.lock()?;
        journal.dirty.clear();
        journal.undo.clear();
        Ok(())
    }

    /// Makes the current state the one [`TrackedStorage::rollback`] returns to.
    pub(crate) fn savepoint(&self) -> Result<(), StorageError> {
        self.lock()?.undo.clear();
        Ok(())
    }

    /// Undoes every change since the last savepoint. Restored keys stay in the pending set:
    /// writing their old value again on the next save is harmless.
    pub(crate) fn rollback(&self) -> Result<(), StorageError> {
        let mut journal = self.lock()?;
        let undo = std::mem::take(&mut journal.undo);
        for (key, old) in undo {
            match old {
                Some(v) => journal.values.insert(key, v),
                None => journal.values.remove(&key),
            };
        }
        Ok(())
    }

    fn lock(&self) -> Result<MutexGuard<'_, Journal>, StorageError> {
        self.inner.lock().map_err(|_| StorageError::Poisoned)
    }

    fn put<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &self,
        label: &[u8],
        key: &K,
        value: &V,
    ) -> Result<(), StorageError> {
        let key = storage_key(label, &serde_json::to_vec(key)?);
        let value = serde_json::to_vec(value)?;
        self.lock()?.set(key, Some(value));
        Ok(())
    }

    fn get<K: Serialize + ?Sized, V: DeserializeOwned>(
        &self,
        label: &[u8],
        key: &K,
    ) -> Result<Option<V>, StorageError> {
        let key = storage_key(label, &serde_json::to_vec(key)?);
        let journal = self.lock()?;
        match journal.values.get(&key) {
            Some(bytes) => Ok(Some(serde_json::from_slice(bytes)?)),
            None => Ok(None),
        }
    }

    fn remove<K: Serialize + ?Sized>(&self, label: &[u8], key: &K) -> Result<(), StorageError> {
        let key = storage_key(label, &serde_json::to_vec(key)?);
        let mut journal = self.lock()?;
        // Deleting an absent key is a no-op and need not reach the caller's store.
        if journal.values.contains_key(&key) {
            journal.set(key, None);
        }
        Ok(())
    }

    /// Changes the list under `(label, key)`: its items are the JSON bytes of each element.
    fn edit_list<K: Serialize + ?Sized>(
        &self,
        label: &[u8],
        key: &K,
        edit: impl FnOnce(&mut Vec<Vec<u8>>),
    ) -> Result<(), StorageError> {
        let key = storage_key(label, &serde_json::to_vec(key)?);
        let mut journal = self.lock()?;
        let mut items: Vec<Vec<u8>> = match journal.values.get(&key) {
            Some(bytes) => serde_json::from_slice(bytes)?,
            None => Vec::new(),
        };
        edit(&mut items);
        let value = serde_json::to_vec(&items)?;
        journal.set(key, Some(value));
        Ok(())
    }

    fn list<K: Serialize + ?Sized, V: DeserializeOwned>(
        &self,
        label: &[u8],
        key: &K,
    ) -> Result<Vec<V>, StorageError> {
        let key = storage_key(label, &serde_json::to_vec(key)?);
        let journal = self.lock()?;
        let Some(bytes) = journal.values.get(&key) else {
            return Ok(Vec::new());
        };
        let items: Vec<Vec<u8>> = serde_json::from_slice(bytes)?;
        items
            .iter()
            .map(|item| serde_json::from_slice(item).map_err(StorageError::from))
            .collect()
    }
}

/// `label ‖ key ‖ version`, as the memory store built its keys.
fn storage_key(label: &[u8], key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(label.len() + key.len() + 2);
    out.extend_from_slice(label);
    out.extend_from_slice(key);
    out.extend_from_slice(&CURRENT_VERSION.to_be_bytes());
    out
}

/// The key of a leaf's epoch key pairs: the three JSON encodings one after another (not a JSON
/// tuple), as the memory store wrote them.
fn epoch_key_pairs_key<G: Key<CURRENT_VERSION>, E: Key<CURRENT_VERSION>>(
    group_id: &G,
    epoch: &E,
    leaf_index: u32,
) -> Result<RawKey, StorageError> {
    let mut key = serde_json::to_vec(group_id)?;
    key.extend_from_slice(&serde_json::to_vec(epoch)?);
    key.extend_from_slice(&serde_json::to_vec(&leaf_index)?);
    Ok(RawKey(key))
}

/// A key that is already encoded: stored as is rather than as JSON.
struct RawKey(Vec<u8>);

impl TrackedStorage {
    fn put_raw<V: Serialize + ?Sized>(
        &self,
        label: &[u8],
        key: &RawKey,
        value: &V,
    ) -> Result<(), StorageError> {
        let value = serde_json::to_vec(value)?;
        self.lock()?.set(storage_key(label, &key.0), Some(value));
        Ok(())
    }
}

const KEY_PACKAGE: &[u8] = b"KeyPackage";
const PSK: &[u8] = b"Psk";
const ENCRYPTION_KEY_PAIR: &[u8] = b"EncryptionKeyPair";
const SIGNATURE_KEY_PAIR: &[u8] = b"SignatureKeyPair";
const EPOCH_KEY_PAIRS: &[u8] = b"EpochKeyPairs";
const TREE: &[u8] = b"Tree";
const GROUP_CONTEXT: &[u8] = b"GroupContext";
const APPLICATION_EXPORT_TREE: &[u8] = b"ApplicationExportTree";
const INTERIM_TRANSCRIPT_HASH: &[u8] = b"InterimTranscriptHash";
const CONFIRMATION_TAG: &[u8] = b"ConfirmationTag";
const JOIN_CONFIG: &[u8] = b"MlsGroupJoinConfig";
const OWN_LEAF_NODES: &[u8] = b"OwnLeafNodes";
const GROUP_STATE: &[u8] = b"GroupState";
const QUEUED_PROPOSAL: &[u8] = b"QueuedProposal";
const PROPOSAL_QUEUE_REFS: &[u8] = b"ProposalQueueRefs";
const OWN_LEAF_NODE_INDEX: &[u8] = b"OwnLeafNodeIndex";
const EPOCH_SECRETS: &[u8] = b"EpochSecrets";
const RESUMPTION_PSK_STORE: &[u8] = b"ResumptionPsk";
const MESSAGE_SECRETS: &[u8] = b"MessageSecrets";

/// Per-group values that are written, read and deleted whole: (label, setter, getter, deleter).
macro_rules! group_values {
    ($(($label:expr, $write:ident, $read:ident, $delete:ident, $bound:ident)),* $(,)?) => {
        $(
            fn $write<G: traits::GroupId<CURRENT_VERSION>, V: traits::$bound<CURRENT_VERSION>>(
                &self,
                group_id: &G,
                value: &V,
            ) -> Result<(), Self::Error> {
                self.put($label, group_id, value)
            }

            fn $read<G: traits::GroupId<CURRENT_VERSION>, V: traits::$bound<CURRENT_VERSION>>(
                &self,
                group_id: &G,
            ) -> Result<Option<V>, Self::Error> {
                self.get($label, group_id)
            }

            fn $delete<G: traits::GroupId<CURRENT_VERSION>>(
                &self,
                group_id: &G,
            ) -> Result<(), Self::Error> {
                self.remove($label, group_id)
            }
        )*
    };
}

impl StorageProvider<CURRENT_VERSION> for TrackedStorage {
    type Error = StorageError;

    fn write_tree<G: traits::GroupId<CURRENT_VERSION>, V: traits::TreeSync<CURRENT_VERSION>>(
        &self,
        group_id: &G,
        value: &V,
    ) -> Result<(), Self::Error> {
        let key = storage_key(TREE, &serde_json::to_vec(group_id)?);
        let mut journal = self.lock()?;
        if journal.defer_trees {
            journal.stale.insert(key);
        } else {
            journal.set(key, Some(serde_json::to_vec(value)?));
        }
        Ok(())
    }

    fn tree<G: traits::GroupId<CURRENT_VERSION>, V: traits::TreeSync<CURRENT_VERSION>>(
        &self,
        group_id: &G,
    ) -> Result<Option<V>, Self::Error> {
        let key = storage_key(TREE, &serde_json::to_vec(group_id)?);
        let journal = self.lock()?;
        if journal.stale.contains(&key) {
            return Err(StorageError::StaleTree);
        }
        match journal.values.get(&key) {
            Some(bytes) => Ok(Some(serde_json::from_slice(bytes)?)),
            None => Ok(None),
        }
    }

    fn delete_tree<G: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &G,
    ) -> Result<(), Self::Error> {
        let key = storage_key(TREE, &serde_json::to_vec(group_id)?);
        let mut journal = self.lock()?;
        // A tree only marked stale has no value to delete, but is no longer out of date.
        journal.stale.remove(&key);
        if journal.values.contains_key(&key) {
            journal.set(key, None);
        }
        Ok(())
    }

    group_values!(
        (
            INTERIM_TRANSCRIPT_HASH,
            write_interim_transcript_hash,
            interim_transcript_hash,
            delete_interim_transcript_hash,
            InterimTranscriptHash
        ),
        (
            GROUP_CONTEXT,
            write_context,
            group_context,
            delete_context,
            GroupContext
        ),
        (
            CONFIRMATION_TAG,
            write_confirmation_tag,
            confirmation_tag,
            delete_confirmation_tag,
            ConfirmationTag
        ),
        (
            MESSAGE_SECRETS,
            write_message_secrets,
            message_secrets,
            delete_message_secrets,
            MessageSecrets
        ),
        (
            RESUMPTION_PSK_STORE,
            write_resumption_psk_store,
            resumption_psk_store,
            delete_all_resumption_psk_secrets,
            ResumptionPskStore
        ),
        (
            OWN_LEAF_NODE_INDEX,
            write_own_leaf_index,
            own_leaf_index,
            delete_own_leaf_index,
            LeafNodeIndex
        ),
        (
            EPOCH_SECRETS,
            write_group_epoch_secrets,
            group_epoch_secrets,
            delete_group_epoch_secrets,
            GroupEpochSecrets
        ),
        (
            JOIN_CONFIG,
            write_mls_join_config,
            mls_group_join_config,
            delete_group_config,
            MlsGroupJoinConfig
        ),
    );

    fn write_group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_state: &GroupState,
    ) -> Result<(), Self::Error> {
        self.put(GROUP_STATE, group_id, group_state)
    }

    fn group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupState>, Self::Error> {
        self.get(GROUP_STATE, group_id)
    }

    fn delete_group_state<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.remove(GROUP_STATE, group_id)
    }

    fn write_application_export_tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ApplicationExportTree: traits::ApplicationExportTree<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        tree: &ApplicationExportTree,
    ) -> Result<(), Self::Error> {
        self.put(APPLICATION_EXPORT_TREE, group_id, tree)
    }

    fn application_export_tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ApplicationExportTree: traits::ApplicationExportTree<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<ApplicationExportTree>, Self::Error> {
        self.get(APPLICATION_EXPORT_TREE, group_id)
    }

    fn delete_application_export_tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ApplicationExportTree: traits::ApplicationExportTree<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.remove(APPLICATION_EXPORT_TREE, group_id)
    }

    fn append_own_leaf_node<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        leaf_node: &LeafNode,
    ) -> Result<(), Self::Error> {
        let item = serde_json::to_vec(leaf_node)?;
        self.edit_list(OWN_LEAF_NODES, group_id, |items| items.push(item))
    }

    fn own_leaf_nodes<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<LeafNode>, Self::Error> {
        self.list(OWN_LEAF_NODES, group_id)
    }

    fn delete_own_leaf_nodes<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.remove(OWN_LEAF_NODES, group_id)
    }

    fn queue_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
        proposal: &QueuedProposal,
    ) -> Result<(), Self::Error> {
        self.put(QUEUED_PROPOSAL, &(group_id, proposal_ref), proposal)?;
        let item = serde_json::to_vec(proposal_ref)?;
        self.edit_list(PROPOSAL_QUEUE_REFS, group_id, |items| items.push(item))
    }

    fn queued_proposal_refs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<ProposalRef>, Self::Error> {
        self.list(PROPOSAL_QUEUE_REFS, group_id)
    }

    fn queued_proposals<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<(ProposalRef, QueuedProposal)>, Self::Error> {
        let refs: Vec<ProposalRef> = self.list(PROPOSAL_QUEUE_REFS, group_id)?;
        let mut out = Vec::with_capacity(refs.len());
        for proposal_ref in refs {
            // A reference whose proposal is gone is skipped rather than failing the whole queue.
            if let Some(proposal) = self.get(QUEUED_PROPOSAL, &(group_id, &proposal_ref))? {
                out.push((proposal_ref, proposal));
            }
        }
        Ok(out)
    }

    fn remove_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
    ) -> Result<(), Self::Error> {
        let item = serde_json::to_vec(proposal_ref)?;
        self.edit_list(PROPOSAL_QUEUE_REFS, group_id, |items| {
            if let Some(at) = items.iter().position(|i| *i == item) {
                items.remove(at);
            }
        })?;
        self.remove(QUEUED_PROPOSAL, &(group_id, proposal_ref))
    }

    fn clear_proposal_queue<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        let refs: Vec<ProposalRef> = self.list(PROPOSAL_QUEUE_REFS, group_id)?;
        for proposal_ref in &refs {
            self.remove(QUEUED_PROPOSAL, &(group_id, proposal_ref))?;
        }
        self.remove(PROPOSAL_QUEUE_REFS, group_id)
    }

    fn write_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
        signature_key_pair: &SignatureKeyPair,
    ) -> Result<(), Self::Error> {
        self.put(SIGNATURE_KEY_PAIR, public_key, signature_key_pair)
    }

    fn signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<Option<SignatureKeyPair>, Self::Error> {
        self.get(SIGNATURE_KEY_PAIR, public_key)
    }

    fn delete_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<(), Self::Error> {
        self.remove(SIGNATURE_KEY_PAIR, public_key)
    }

    fn write_encryption_key_pair<
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
        key_pair: &HpkeKeyPair,
    ) -> Result<(), Self::Error> {
        self.put(ENCRYPTION_KEY_PAIR, public_key, key_pair)
    }

    fn encryption_key_pair<
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<Option<HpkeKeyPair>, Self::Error> {
        self.get(ENCRYPTION_KEY_PAIR, public_key)
    }

    fn delete_encryption_key_pair<EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>>(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<(), Self::Error> {
        self.remove(ENCRYPTION_KEY_PAIR, public_key)
    }

    fn write_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
        key_pairs: &[HpkeKeyPair],
    ) -> Result<(), Self::Error> {
        let key = epoch_key_pairs_key(group_id, epoch, leaf_index)?;
        self.put_raw(EPOCH_KEY_PAIRS, &key, key_pairs)
    }

    fn encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<Vec<HpkeKeyPair>, Self::Error> {
        let key = epoch_key_pairs_key(group_id, epoch, leaf_index)?;
        let journal = self.lock()?;
        match journal.values.get(&storage_key(EPOCH_KEY_PAIRS, &key.0)) {
            Some(bytes) => Ok(serde_json::from_slice(bytes)?),
            None => Ok(Vec::new()),
        }
    }

    fn delete_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<(), Self::Error> {
        let key = epoch_key_pairs_key(group_id, epoch, leaf_index)?;
        let full = storage_key(EPOCH_KEY_PAIRS, &key.0);
        let mut journal = self.lock()?;
        if journal.values.contains_key(&full) {
            journal.set(full, None);
        }
        Ok(())
    }

    fn write_key_package<
        HashReference: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &HashReference,
        key_package: &KeyPackage,
    ) -> Result<(), Self::Error> {
        self.put(KEY_PACKAGE, hash_ref, key_package)
    }

    fn key_package<
        KeyPackageRef: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<Option<KeyPackage>, Self::Error> {
        self.get(KEY_PACKAGE, hash_ref)
    }

    fn delete_key_package<KeyPackageRef: traits::HashReference<CURRENT_VERSION>>(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<(), Self::Error> {
        self.remove(KEY_PACKAGE, hash_ref)
    }

    fn write_psk<
        PskId: traits::PskId<CURRENT_VERSION>,
        PskBundle: traits::PskBundle<CURRENT_VERSION>,
    >(
        &self,
        psk_id: &PskId,
        psk: &PskBundle,
    ) -> Result<(), Self::Error> {
        self.put(PSK, psk_id, psk)
    }

    fn psk<PskBundle: traits::PskBundle<CURRENT_VERSION>, PskId: traits::PskId<CURRENT_VERSION>>(
        &self,
        psk_id: &PskId,
    ) -> Result<Option<PskBundle>, Self::Error> {
        self.get(PSK, psk_id)
    }

    fn delete_psk<PskKey: traits::PskId<CURRENT_VERSION>>(
        &self,
        psk_id: &PskKey,
    ) -> Result<(), Self::Error> {
        self.remove(PSK, psk_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in tree and group ID for the storage trait's tree methods.
    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Tree(Vec<u8>);
    impl openmls_traits::storage::Entity<CURRENT_VERSION> for Tree {}
    impl traits::TreeSync<CURRENT_VERSION> for Tree {}
    #[derive(Serialize)]
    struct Group(&'static str);
    impl Key<CURRENT_VERSION> for Group {}
    impl traits::GroupId<CURRENT_VERSION> for Group {}

    #[test]
    fn a_deferred_tree_is_unreadable_until_written_now() {
        let s = TrackedStorage::from_entries(Vec::new(), false);
        s.defer_trees().unwrap();
        let g = Group("room");
        s.write_tree_now(&g, &Tree(vec![1])).unwrap();
        s.write_tree(&g, &Tree(vec![2])).unwrap();
        // Neither the older value nor a snapshot may stand in for the tree OpenMLS wrote.
        assert!(matches!(
            s.tree::<_, Tree>(&g),
            Err(StorageError::StaleTree)
        ));
        assert!(matches!(s.sorted_entries(), Err(StorageError::StaleTree)));
        s.write_tree_now(&g, &Tree(vec![3])).unwrap();
        assert_eq!(s.tree::<_, Tree>(&g).unwrap(), Some(Tree(vec![3])));
        assert_eq!(s.sorted_entries().unwrap().len(), 1);
        s.write_tree(&g, &Tree(vec![4])).unwrap();
        s.delete_tree(&g).unwrap();
        assert_eq!(s.tree::<_, Tree>(&g).unwrap(), None);
        assert!(s.sorted_entries().unwrap().is_empty());
    }

    #[test]
    fn without_deferral_a_tree_is_stored_when_written() {
        let s = TrackedStorage::from_entries(Vec::new(), false);
        let g = Group("room");
        s.write_tree(&g, &Tree(vec![5])).unwrap();
        assert_eq!(s.tree::<_, Tree>(&g).unwrap(), Some(Tree(vec![5])));
        assert_eq!(s.sorted_entries().unwrap().len(), 1);
    }

    fn tracked() -> TrackedStorage {
        TrackedStorage::from_entries(Vec::new(), true)
    }

    #[test]
    fn pending_changes_list_each_written_or_deleted_key_once() {
        let s = tracked();
        s.put(TREE, "g", "one").unwrap();
        s.put(TREE, "g", "two").unwrap();
        s.put(PSK, "p", "x").unwrap();
        s.mark_saved().unwrap();
        s.put(TREE, "g", "three").unwrap();
        s.remove(PSK, "p").unwrap();
        s.remove(PSK, "never there").unwrap();
        let changes = s.pending_changes().unwrap();
        assert_eq!(changes.len(), 2);
        let tree = changes.iter().find(|c| c.key.starts_with(TREE)).unwrap();
        assert_eq!(tree.value.as_deref(), Some(&b"\"three\""[..]));
        let psk = changes.iter().find(|c| c.key.starts_with(PSK)).unwrap();
        assert_eq!(psk.value, None);
        s.mark_saved().unwrap();
        assert!(s.pending_changes().unwrap().is_empty());
    }

    #[test]
    fn rollback_restores_the_savepoint_and_nothing_earlier() {
        let s = tracked();
        s.put(TREE, "g", "saved").unwrap();
        s.mark_saved().unwrap();
        s.put(TREE, "g", "kept").unwrap();
        s.savepoint().unwrap();
        s.put(TREE, "g", "undone").unwrap();
        s.put(PSK, "new", "undone").unwrap();
        s.rollback().unwrap();
        assert_eq!(
            s.get::<_, String>(TREE, "g").unwrap().as_deref(),
            Some("kept")
        );
        assert_eq!(s.get::<_, String>(PSK, "new").unwrap(), None);
    }

    #[test]
    fn lists_append_and_remove_items() {
        let s = tracked();
        s.edit_list(OWN_LEAF_NODES, "g", |l| l.push(b"1".to_vec()))
            .unwrap();
        s.edit_list(OWN_LEAF_NODES, "g", |l| l.push(b"2".to_vec()))
            .unwrap();
        assert_eq!(s.list::<_, u32>(OWN_LEAF_NODES, "g").unwrap(), vec![1, 2]);
    }

    /// A provider over the memory store that wrote snapshots before this store existed.
    struct MemoryProvider {
        crypto: openmls_rust_crypto::RustCrypto,
        storage: openmls_memory_storage::MemoryStorage,
    }

    impl openmls_traits::OpenMlsProvider for MemoryProvider {
        type CryptoProvider = openmls_rust_crypto::RustCrypto;
        type RandProvider = openmls_rust_crypto::RustCrypto;
        type StorageProvider = openmls_memory_storage::MemoryStorage;

        fn storage(&self) -> &Self::StorageProvider {
            &self.storage
        }

        fn crypto(&self) -> &Self::CryptoProvider {
            &self.crypto
        }

        fn rand(&self) -> &Self::RandProvider {
            &self.crypto
        }
    }

    #[test]
    fn a_group_written_by_the_memory_store_loads_and_keeps_working() {
        use openmls::prelude::{
            BasicCredential, CredentialWithKey, GroupId, MlsGroup, MlsGroupCreateConfig,
        };
        use openmls_basic_credential::SignatureKeyPair;
        use openmls_traits::types::SignatureScheme;

        let old = MemoryProvider {
            crypto: Default::default(),
            storage: Default::default(),
        };
        let keys = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
        keys.store(&old.storage).unwrap();
        let credential = CredentialWithKey {
            credential: BasicCredential::new(b"alice".to_vec()).into(),
            signature_key: keys.public().into(),
        };
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(crate::member::CIPHERSUITE)
            .build();
        let id = GroupId::from_slice(b"room");
        let mut group =
            MlsGroup::new_with_group_id(&old, &keys, &config, id.clone(), credential).unwrap();
        group.create_message(&old, &keys, b"before").unwrap();
        let entries: Vec<(Vec<u8>, Vec<u8>)> = old
            .storage
            .values
            .read()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();

        let new = crate::provider::MlsProvider::from_entries(entries.clone(), true);
        let store = openmls_traits::OpenMlsProvider::storage(&new);
        let mut loaded = MlsGroup::load(store, &id)
            .unwrap()
            .expect("group not found");
        assert_eq!(loaded.epoch(), group.epoch());
        let signer =
            SignatureKeyPair::read(store, keys.public(), SignatureScheme::ED25519).unwrap();
        loaded.create_message(&new, &signer, b"after").unwrap();
        // Only what changed is pending, and every key it wrote already existed.
        let changes = store.pending_changes().unwrap();
        assert!(!changes.is_empty());
        let old_keys: BTreeSet<&Vec<u8>> = entries.iter().map(|(k, _)| k).collect();
        assert!(changes.iter().all(|c| old_keys.contains(&c.key)));
    }

    #[test]
    fn keys_follow_the_memory_store_layout() {
        let s = tracked();
        s.put(TREE, &[1u8, 2], "t").unwrap();
        let entries = s.sorted_entries().unwrap();
        let key = entries.keys().next().unwrap();
        assert_eq!(key.as_slice(), b"Tree[1,2]\x00\x01");
    }
}
