//! Local users and their clients (the provider-internal side of the client API).

use sha2::{Digest, Sha256};

use crate::db::{Db, params};
use crate::{Dialect, StoreError, StoreGuard, Tx};

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
        self.conn().execute(
            "INSERT INTO users (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![name, now as i64],
        )?;
        Ok(())
    }

    /// A stored user name other than `name` that equals it up to ASCII case. Earlier builds
    /// accepted names in any case; such a name still blocks every case variant (IN-SERVER-13).
    pub fn user_case_variant(&self, name: &str) -> Result<Option<String>, StoreError> {
        // SQLite's NOCASE folds ASCII only, which is all a user name may hold. It cannot use the
        // primary key index, so this scans the table: registrations are rare, and a scan of a
        // million short names takes milliseconds.
        let sql = match self.conn().dialect() {
            Dialect::Sqlite => {
                "SELECT name FROM users WHERE name = ?1 COLLATE NOCASE AND name <> ?1 LIMIT 1"
            }
            // PostgreSQL has no NOCASE; lower() under the "C" collation folds ASCII only too.
            Dialect::Postgres => {
                "SELECT name FROM users
                 WHERE lower(name COLLATE \"C\") = lower(?1 COLLATE \"C\") AND name <> ?1 LIMIT 1"
            }
        };
        self.conn().query_opt(sql, params![name], |r| r.get(0))
    }

    /// Like [`Tx::user_case_variant`], for a client's device URI.
    pub fn client_case_variant(&self, device_uri: &str) -> Result<Option<String>, StoreError> {
        let sql = match self.conn().dialect() {
            Dialect::Sqlite => {
                "SELECT device_uri FROM clients
                 WHERE device_uri = ?1 COLLATE NOCASE AND device_uri <> ?1 LIMIT 1"
            }
            Dialect::Postgres => {
                "SELECT device_uri FROM clients
                 WHERE lower(device_uri COLLATE \"C\") = lower(?1 COLLATE \"C\")
                   AND device_uri <> ?1 LIMIT 1"
            }
        };
        self.conn()
            .query_opt(sql, params![device_uri], |r| r.get(0))
    }

    /// Registers a client; the bearer token is stored only as its SHA-256 hash.
    pub fn add_client(&self, client: &Client, token: &[u8], now: u64) -> Result<(), StoreError> {
        let inserted = self.conn().execute(
            "INSERT INTO clients (device_uri, user_name, token_hash, chain, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
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
        self.conn.query_opt(
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
    }

    /// Whether a local user exists.
    pub fn user_exists(&self, name: &str) -> Result<bool, StoreError> {
        user_exists(self.db(), name)
    }

    /// Every local user with when it registered (seconds since the UNIX epoch) and its
    /// devices, by name.
    pub fn users(&self) -> Result<Vec<(String, u64, Vec<String>)>, StoreError> {
        let rows = self.conn.query(
            "SELECT u.name, u.created_at, c.device_uri FROM users u
             LEFT JOIN clients c ON c.user_name = u.name ORDER BY u.name, c.device_uri",
            params![],
            |r| {
                Ok((
                    r.get::<String>(0)?,
                    r.get::<i64>(1)? as u64,
                    r.get::<Option<String>>(2)?,
                ))
            },
        )?;
        let mut users: Vec<(String, u64, Vec<String>)> = Vec::new();
        for (name, created_at, device) in rows {
            match users.last_mut() {
                Some(last) if last.0 == name => last.2.extend(device),
                _ => users.push((name, created_at, device.into_iter().collect())),
            }
        }
        Ok(users)
    }

    /// The device URIs of a user's clients.
    pub fn devices_of(&self, user_name: &str) -> Result<Vec<String>, StoreError> {
        self.conn.query(
            "SELECT device_uri FROM clients WHERE user_name = ?1 ORDER BY device_uri",
            params![user_name],
            |r| r.get(0),
        )
    }
}

fn user_exists(db: &Db, name: &str) -> Result<bool, StoreError> {
    Ok(db
        .query_opt("SELECT 1 FROM users WHERE name = ?1", params![name], |_| {
            Ok(())
        })?
        .is_some())
}

fn token_hash(token: &[u8]) -> Vec<u8> {
    Sha256::digest(token).to_vec()
}

#[cfg(test)]
mod tests {
    use crate::{Client, engine_test};

    engine_test! {
        fn case_variants_of_stored_names_are_found_and_exact_names_are_not(store) {
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
}
