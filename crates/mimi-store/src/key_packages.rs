//! KeyPackages uploaded by local clients, claimed at most once (draft-ietf-mimi-protocol-06
//! §5.1), and the KeyPackageRef routes a hub keeps to deliver Welcomes.

use rusqlite::{OptionalExtension, params};

use crate::{StoreError, StoreGuard, Tx};

/// The outcome of claiming a KeyPackage of one client for one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedKeyPackage {
    /// The client.
    pub device_uri: String,
    /// Its TLS-encoded KeyPackage, or `None` if it had none left.
    pub key_package: Option<Vec<u8>>,
}

impl Tx<'_> {
    /// Stores a KeyPackage of a local client, with its KeyPackageRef and the end of its
    /// lifetime (seconds since the UNIX epoch).
    pub fn add_key_package(
        &self,
        device_uri: &str,
        user_name: &str,
        key_package: &[u8],
        kp_ref: &[u8],
        not_after: u64,
    ) -> Result<(), StoreError> {
        let inserted = self.conn().prepare_cached("INSERT OR IGNORE INTO key_packages (device_uri, user_name, key_package, kp_ref, not_after)
             VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(
            params![device_uri, user_name, key_package, kp_ref, not_after.min(i64::MAX as u64) as i64],
        )?;
        if inserted == 0 {
            return Err(StoreError::Exists("key package".into()));
        }
        Ok(())
    }

    /// Claims one unclaimed, unexpired KeyPackage per client of `user_name` for `room_uri`.
    /// Clients without one are returned with `None`. A claimed KeyPackage is never handed out
    /// again (draft §5.1).
    pub fn claim_key_packages(
        &self,
        user_name: &str,
        room_uri: &str,
        now: u64,
    ) -> Result<Vec<ClaimedKeyPackage>, StoreError> {
        let devices: Vec<String> = {
            let mut stmt = self.conn().prepare_cached(
                "SELECT device_uri FROM clients WHERE user_name = ?1 ORDER BY device_uri",
            )?;
            let rows = stmt.query_map(params![user_name], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::new();
        for device in devices {
            let row: Option<(i64, Vec<u8>)> = self
                .conn()
                .query_row(
                    "SELECT id, key_package FROM key_packages
                     WHERE device_uri = ?1 AND claimed_for_room IS NULL AND not_after > ?2
                     ORDER BY id LIMIT 1",
                    params![device, now as i64],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match row {
                Some((id, kp)) => {
                    self.conn()
                        .prepare_cached(
                            "UPDATE key_packages SET claimed_for_room = ?1 WHERE id = ?2",
                        )?
                        .execute(params![room_uri, id])?;
                    out.push(ClaimedKeyPackage {
                        device_uri: device,
                        key_package: Some(kp),
                    });
                }
                None => out.push(ClaimedKeyPackage {
                    device_uri: device,
                    key_package: None,
                }),
            }
        }
        Ok(out)
    }

    /// Records that the KeyPackage `kp_ref` came from provider `domain` (hub side).
    pub fn add_welcome_route(
        &self,
        kp_ref: &[u8],
        domain: &str,
        now: u64,
    ) -> Result<(), StoreError> {
        self.conn().prepare_cached("INSERT OR REPLACE INTO welcome_routes (kp_ref, domain, created_at) VALUES (?1, ?2, ?3)")?.execute(
            params![kp_ref, domain, now as i64],
        )?;
        Ok(())
    }

    /// The local client whose KeyPackage has reference `kp_ref`.
    pub fn device_of_key_package(&self, kp_ref: &[u8]) -> Result<Option<String>, StoreError> {
        device_of_key_package(self.conn(), kp_ref)
    }

    /// The provider that supplied KeyPackage `kp_ref`, read inside this transaction.
    pub fn welcome_route(&self, kp_ref: &[u8]) -> Result<Option<String>, StoreError> {
        welcome_route(self.conn(), kp_ref)
    }
}

impl StoreGuard<'_> {
    /// The provider that supplied KeyPackage `kp_ref`, if the hub relayed it.
    pub fn welcome_route(&self, kp_ref: &[u8]) -> Result<Option<String>, StoreError> {
        welcome_route(&self.conn, kp_ref)
    }

    /// The local client whose KeyPackage has reference `kp_ref`.
    pub fn device_of_key_package(&self, kp_ref: &[u8]) -> Result<Option<String>, StoreError> {
        device_of_key_package(&self.conn, kp_ref)
    }

    /// How many unclaimed KeyPackages a client has left.
    pub fn unclaimed_key_packages(&self, device_uri: &str) -> Result<u64, StoreError> {
        let n: i64 = self.conn.prepare_cached("SELECT COUNT(*) FROM key_packages WHERE device_uri = ?1 AND claimed_for_room IS NULL")?.query_row(
            params![device_uri],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}

fn welcome_route(conn: &rusqlite::Connection, kp_ref: &[u8]) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT domain FROM welcome_routes WHERE kp_ref = ?1",
            params![kp_ref],
            |r| r.get(0),
        )
        .optional()?)
}

fn device_of_key_package(
    conn: &rusqlite::Connection,
    kp_ref: &[u8],
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT device_uri FROM key_packages WHERE kp_ref = ?1",
            params![kp_ref],
            |r| r.get(0),
        )
        .optional()?)
}
