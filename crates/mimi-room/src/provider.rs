//! The OpenMLS provider for one room (hub) or one client: crypto plus an in-memory store that
//! can be snapshotted to bytes or saved key by key (see [`crate::storage`]), so that persistence
//! stays with the caller and this crate does no I/O of its own.

use std::collections::BTreeMap;

use openmls_rust_crypto::RustCrypto;
use openmls_traits::OpenMlsProvider;

use crate::error::RoomError;
use crate::storage::TrackedStorage;

/// Upper bound on one snapshot entry; a decoded length above it means corrupt state.
const MAX_SNAPSHOT_ENTRY: u64 = 256 * 1024 * 1024;

/// Crypto plus storage, as OpenMLS wants them.
#[derive(Default)]
pub(crate) struct MlsProvider {
    crypto: RustCrypto,
    storage: TrackedStorage,
}

impl MlsProvider {
    /// A provider over `entries` (storage key, value); `tracking` keeps the change journal a
    /// client saves from, which a hub that snapshots its whole store does not need.
    pub(crate) fn from_entries(
        entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        tracking: bool,
    ) -> Self {
        Self {
            crypto: RustCrypto::default(),
            storage: TrackedStorage::from_entries(entries, tracking),
        }
    }

    /// A hub's provider over `entries`: no change journal, and ratchet trees written only when
    /// the hub snapshots (see [`TrackedStorage::defer_trees`]).
    pub(crate) fn for_hub(
        entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<Self, RoomError> {
        let provider = Self::from_entries(entries, false);
        provider.storage.defer_trees().map_err(RoomError::storage)?;
        Ok(provider)
    }

    /// Serializes the whole store, keys sorted so equal states give equal bytes.
    pub(crate) fn snapshot(&self) -> Result<Vec<u8>, RoomError> {
        let sorted = self.storage.sorted_entries().map_err(RoomError::storage)?;
        let mut out = Vec::new();
        out.extend_from_slice(&(sorted.len() as u64).to_be_bytes());
        for (k, v) in sorted {
            out.extend_from_slice(&(k.len() as u64).to_be_bytes());
            out.extend_from_slice(&(v.len() as u64).to_be_bytes());
            out.extend_from_slice(&k);
            out.extend_from_slice(&v);
        }
        Ok(out)
    }
}

/// The (key, value) entries of [`MlsProvider::snapshot`] bytes: the snapshot is a big-endian
/// u64 count, then per entry the key length and value length (u64 each), the key and the value.
pub fn split_snapshot(bytes: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, RoomError> {
    let mut rest = bytes;
    let count = take_u64(&mut rest)?;
    // Each entry takes at least 16 bytes, so a count above that bound is corrupt; checking it
    // first keeps a forged count from reserving memory.
    if count > (rest.len() / 16) as u64 {
        return Err(RoomError::CorruptState("snapshot entry count out of range"));
    }
    let mut entries = BTreeMap::new();
    for _ in 0..count {
        let key_len = take_u64(&mut rest)?;
        let value_len = take_u64(&mut rest)?;
        let key = take_bytes(&mut rest, key_len)?;
        let value = take_bytes(&mut rest, value_len)?;
        entries.insert(key, value);
    }
    if !rest.is_empty() {
        return Err(RoomError::CorruptState("trailing bytes in snapshot"));
    }
    Ok(entries)
}

impl OpenMlsProvider for MlsProvider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = TrackedStorage;

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

fn take_u64(rest: &mut &[u8]) -> Result<u64, RoomError> {
    let Some((head, tail)) = rest.split_first_chunk::<8>() else {
        return Err(RoomError::CorruptState("truncated snapshot"));
    };
    *rest = tail;
    Ok(u64::from_be_bytes(*head))
}

fn take_bytes(rest: &mut &[u8], len: u64) -> Result<Vec<u8>, RoomError> {
    if len > MAX_SNAPSHOT_ENTRY || len > rest.len() as u64 {
        return Err(RoomError::CorruptState(
            "snapshot entry length out of range",
        ));
    }
    let (head, tail) = rest.split_at(len as usize);
    *rest = tail;
    Ok(head.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_and_rejects_truncation() {
        let provider = MlsProvider::from_entries([(b"k".to_vec(), b"value".to_vec())], false);
        let bytes = provider.snapshot().unwrap();
        let restored = MlsProvider::from_entries(split_snapshot(&bytes).unwrap(), false);
        assert_eq!(restored.snapshot().unwrap(), bytes);
        for cut in 0..bytes.len() {
            assert!(split_snapshot(&bytes[..cut]).is_err());
        }
    }
}
