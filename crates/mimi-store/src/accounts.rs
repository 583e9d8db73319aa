//! Local users and their clients (the provider-internal side of the client API).

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::{StoreError, StoreGuard, Tx};

/// A registered client of a local user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// `mimi://domain/d/user/device`.
    pub device_uri: String,
    /// The local user name.
    pub user_name: String,
    /// The client's credential chain as issued (DER certificates, TLS-encoded by the caller).
    pub chain: Vec<u8>,
}

impl Tx<'_> {
    /// Whether a local user exists, as this transaction sees it.
    pub fn user_exists(&self, name: &str) -> Result<bool, StoreError> {
        user_exists(self.conn(), name)
    }

    /// Adds a user if it does not exist yet.
    pub fn ensure_user(&self, name: &str, now: u64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("INSERT OR IGNORE INTO users (name, created_at) VALUES (?1, ?2)")?
            .execute(params![name, now as i64])?;
        Ok(())
    }

    /// A stored user name other than `name` that equals it up to ASCII case. Earlier builds
    /// accepted names in any case; such a name still blocks every case variant (IN-SERVER-13).
    pub fn user_case_variant(&self, name: &str) -> Result<Option<String>, StoreError> {
        // SQLite's NOCASE folds ASCII only, which is all a user name may hold. It cannot use the
        // primary key index, so this scans the table: registrations are rare, and a scan of a
        // million short names takes milliseconds.
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT name FROM users WHERE name = ?1 COLLATE NOCASE AND name <> ?1 LIMIT 1",
            )?
            .query_row(params![name], |r| r.get(0))
            .optional()?)
    }

    /// Like [`Tx::user_case_variant`], for a client's device URI.
    pub fn client_case_variant(&self, device_uri: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT device_uri FROM clients
                 WHERE device_uri = ?1 COLLATE NOCASE AND device_uri <> ?1 LIMIT 1",
            )?
            .query_row(params![device_uri], |r| r.get(0))
            .optional()?)
    }

    /// Registers a client; the bearer token is stored only as its SHA-256 hash.
    pub fn add_client(&self, client: &Client, token: &[u8], now: u64) -> Result<(), StoreError> {
        let inserted = self.conn().prepare_cached("INSERT OR IGNORE INTO clients (device_uri, user_name, token_hash, chain, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(
            params![
                client.device_uri,
                client.user_name,
                token_hash(token),
                client.chain,
                now as i64
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::Exists(client.device_uri.clone()));
        }
        Ok(())
    }
}

impl StoreGuard<'_> {
    /// The client holding `token`, if any.
    pub fn client_by_token(&self, token: &[u8]) -> Result<Option<Client>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT device_uri, user_name, chain FROM clients WHERE token_hash = ?1",
                params![token_hash(token)],
                |r| {
                    Ok(Client {
                        device_uri: r.get(0)?,
                        user_name: r.get(1)?,
                        chain: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Whether a local user exists.
    pub fn user_exists(&self, name: &str) -> Result<bool, StoreError> {
        user_exists(&self.conn, name)
    }

    /// Every local user with when it registered (seconds since the UNIX epoch) and its
    /// devices, by name.
    pub fn users(&self) -> Result<Vec<(String, u64, Vec<String>)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT u.name, u.created_at, c.device_uri FROM users u
             LEFT JOIN clients c ON c.user_name = u.name ORDER BY u.name, c.device_uri",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        let mut users: Vec<(String, u64, Vec<String>)> = Vec::new();
        for row in rows {
            let (name, created_at, device) = row?;
            match users.last_mut() {
                Some(last) if last.0 == name => last.2.extend(device),
                _ => users.push((name, created_at, device.into_iter().collect())),
            }
        }
        Ok(users)
    }

    /// The device URIs of a user's clients.
    pub fn devices_of(&self, user_name: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT device_uri FROM clients WHERE user_name = ?1 ORDER BY device_uri",
        )?;
        let rows = stmt.query_map(params![user_name], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn user_exists(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row("SELECT 1 FROM users WHERE name = ?1", params![name], |_| {
            Ok(())
        })
        .optional()?
        .is_some())
}

fn token_hash(token: &[u8]) -> Vec<u8> {
    Sha256::digest(token).to_vec()
}

#[cfg(test)]
mod tests {
    use crate::{Client, Store};

    #[test]
    fn case_variants_of_stored_names_are_found_and_exact_names_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.sqlite")).unwrap();
        let mut g = store.lock().unwrap();
        let tx = g.begin().unwrap();
        tx.ensure_user("ALICE", 0).unwrap();
        let client = Client {
            device_uri: "mimi://a.example/d/ALICE/Phone".to_owned(),
            user_name: "ALICE".to_owned(),
            chain: Vec::new(),
        };
        tx.add_client(&client, b"token", 0).unwrap();
        assert_eq!(
            tx.user_case_variant("alice").unwrap().as_deref(),
            Some("ALICE")
        );
        assert_eq!(tx.user_case_variant("ALICE").unwrap(), None);
        assert_eq!(tx.user_case_variant("bob").unwrap(), None);
        assert_eq!(
            tx.client_case_variant("mimi://a.example/d/alice/phone")
                .unwrap()
                .as_deref(),
            Some("mimi://a.example/d/ALICE/Phone")
        );
        assert_eq!(
            tx.client_case_variant("mimi://a.example/d/ALICE/Phone")
                .unwrap(),
            None
        );
    }
}
