//! The asset store: encrypted attachments uploaded by local clients (draft-ietf-mimi-protocol-06
//! §5.9). The provider only ever holds ciphertext; keys travel inside the MLS-encrypted message.

use crate::db::params;
use crate::{StoreError, StoreGuard, Tx};

/// Why an upload was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetRefusal {
    /// The user's assets would exceed its quota; how many bytes it holds now.
    OverQuota {
        /// Bytes of the user's assets stored now.
        held: u64,
    },
}

impl Tx<'_> {
    /// Stores an asset uploaded by `device_uri` of `user_name` under `id`, unless the user's
    /// stored assets would then exceed `quota` bytes.
    pub fn add_asset(
        &self,
        id: &str,
        device_uri: &str,
        user_name: &str,
        bytes: &[u8],
        quota: u64,
        now: u64,
    ) -> Result<Result<(), AssetRefusal>, StoreError> {
        // PostgreSQL's SUM is NUMERIC unless cast.
        let held: i64 = self.conn().query_one(
            "SELECT COALESCE(CAST(SUM(length(bytes)) AS BIGINT), 0) FROM assets
             WHERE user_name = ?1",
            params![user_name],
            |r| r.get(0),
        )?;
        let held = held as u64;
        if held + bytes.len() as u64 > quota {
            return Ok(Err(AssetRefusal::OverQuota { held }));
        }
        self.conn().execute(
            "INSERT INTO assets (id, device_uri, user_name, bytes, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, device_uri, user_name, bytes, now as i64],
        )?;
        Ok(Ok(()))
    }

    /// Deletes assets stored before `before` (seconds since the UNIX epoch); returns how many.
    pub fn expire_assets(&self, before: u64) -> Result<u64, StoreError> {
        Ok(self.conn().execute(
            "DELETE FROM assets WHERE created_at < ?1",
            params![before as i64],
        )? as u64)
    }
}

impl StoreGuard<'_> {
    /// An asset's bytes.
    pub fn asset(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_opt("SELECT bytes FROM assets WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine_test;

    engine_test! {
        fn a_users_assets_stay_within_its_quota_and_old_ones_expire(store) {
            let add = |id: &str, user: &str, len: usize, now: u64| {
                let mut guard = store.lock().unwrap();
                let tx = guard.begin().unwrap();
                let added = tx
                    .add_asset(
                        id,
                        &format!("mimi://a/d/{user}/p"),
                        user,
                        &vec![0; len],
                        10,
                        now,
                    )
                    .unwrap();
                tx.commit().unwrap();
                added
            };
            assert_eq!(add("1", "al", 6, 100), Ok(()));
            assert_eq!(
                add("2", "al", 5, 200),
                Err(AssetRefusal::OverQuota { held: 6 })
            );
            assert_eq!(add("3", "al", 4, 200), Ok(()), "exactly the quota");
            assert_eq!(add("4", "bo", 10, 200), Ok(()), "per user");
            assert!(
                store.read().unwrap().asset("2").unwrap().is_none(),
                "refused: not stored"
            );
            let expired = {
                let mut guard = store.lock().unwrap();
                let tx = guard.begin().unwrap();
                let n = tx.expire_assets(150).unwrap();
                tx.commit().unwrap();
                n
            };
            assert_eq!(expired, 1);
            assert!(store.read().unwrap().asset("1").unwrap().is_none());
            // The space is Al's again.
            assert_eq!(add("5", "al", 6, 300), Ok(()));
        }
    }
}
