//! The asset store: encrypted attachments uploaded by local clients (draft-ietf-mimi-protocol-06
//! §5.9). The provider only ever holds ciphertext; keys travel inside the MLS-encrypted message.

use rusqlite::{OptionalExtension, params};

use crate::{StoreError, StoreGuard, Tx};

impl Tx<'_> {
    /// Stores an uploaded asset under `id`.
    pub fn add_asset(
        &self,
        id: &str,
        device_uri: &str,
        bytes: &[u8],
        now: u64,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO assets (id, device_uri, bytes, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, device_uri, bytes, now as i64])?;
        Ok(())
    }
}

impl StoreGuard<'_> {
    /// An asset's bytes.
    pub fn asset(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT bytes FROM assets WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()?)
    }
}
