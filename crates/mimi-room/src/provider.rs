//! The OpenMLS provider for one room (hub) or one client: crypto plus an in-memory store that
//! can be snapshotted to bytes, so that persistence stays with the caller and this crate does
//! no I/O of its own.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use openmls_memory_storage::MemoryStorage;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::OpenMlsProvider;

use crate::error::RoomError;

/// Upper bound on one snapshot entry; a decoded length above it means corrupt state.
const MAX_SNAPSHOT_ENTRY: u64 = 256 * 1024 * 1024;

/// Crypto plus storage, as OpenMLS wants them.
#[derive(Default)]
pub(crate) struct MlsProvider {
    crypto: RustCrypto,
    storage: MemoryStorage,
}

impl MlsProvider {
    /// Restores a provider from [`MlsProvider::snapshot`] bytes.
    pub(crate) fn from_snapshot(bytes: &[u8]) -> Result<Self, RoomError> {
        let mut values = HashMap::new();
        let mut rest = bytes;
        let count = take_u64(&mut rest)?;
        for _ in 0..count {
            let key_len = take_u64(&mut rest)?;
            let value_len = take_u64(&mut rest)?;
            let key = take_bytes(&mut rest, key_len)?;
            let value = take_bytes(&mut rest, value_len)?;
            values.insert(key, value);
        }
        if !rest.is_empty() {
            return Err(RoomError::CorruptState("trailing bytes in snapshot"));
        }
        Ok(Self {
            crypto: RustCrypto::default(),
            storage: MemoryStorage {
                values: RwLock::new(values),
            },
        })
    }

    /// Serializes the whole store, keys sorted so equal states give equal bytes.
    pub(crate) fn snapshot(&self) -> Result<Vec<u8>, RoomError> {
        let values = self
            .storage
            .values
            .read()
            .map_err(|_| RoomError::Internal("storage lock poisoned"))?;
        let sorted: BTreeMap<&Vec<u8>, &Vec<u8>> = values.iter().collect();
        let mut out = Vec::new();
        out.extend_from_slice(&(sorted.len() as u64).to_be_bytes());
        for (k, v) in sorted {
            out.extend_from_slice(&(k.len() as u64).to_be_bytes());
            out.extend_from_slice(&(v.len() as u64).to_be_bytes());
            out.extend_from_slice(k);
            out.extend_from_slice(v);
        }
        Ok(out)
    }
}

impl OpenMlsProvider for MlsProvider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = MemoryStorage;

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
        let provider = MlsProvider::default();
        provider
            .storage
            .values
            .write()
            .unwrap()
            .insert(b"k".to_vec(), b"value".to_vec());
        let bytes = provider.snapshot().unwrap();
        let restored = MlsProvider::from_snapshot(&bytes).unwrap();
        assert_eq!(restored.snapshot().unwrap(), bytes);
        for cut in 0..bytes.len() {
            assert!(MlsProvider::from_snapshot(&bytes[..cut]).is_err());
        }
    }
}
