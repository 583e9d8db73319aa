//! The profile: one SQLite file holding the account, the MLS state and the message history.
//! Each unit of work (a command, an inbox page) saves in one transaction. The MLS state is kept
//! as OpenMLS storage entries (`mls_kv`), so a unit of work writes only the entries it changed.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use mimi_room::{MemberState, StateChange};

use crate::app_state::AppKey;
use crate::error::ClientError;
use crate::history::{Attachment, Event, EventKind};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    server TEXT NOT NULL,
    ca_pem TEXT NOT NULL,
    domain TEXT NOT NULL,
    device_uri TEXT NOT NULL,
    user_uri TEXT NOT NULL,
    token TEXT NOT NULL,
    chain TEXT NOT NULL,
    signature_key BLOB NOT NULL,
    inbox_cursor INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rooms (room_uri TEXT PRIMARY KEY, active INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    room_uri TEXT NOT NULL,
    id TEXT NOT NULL,
    sender TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    kind TEXT NOT NULL,
    target TEXT,
    text TEXT,
    invalid TEXT,
    attachment TEXT,
    expires_at INTEGER,
    topic TEXT,
    PRIMARY KEY (room_uri, id)
);
CREATE TABLE IF NOT EXISTS sent (hash BLOB PRIMARY KEY, room_uri TEXT NOT NULL, event_id TEXT NOT NULL);
";

/// Format 2 keeps the MLS state as one row per OpenMLS storage entry.
const MLS_KV_TABLE: &str = "
CREATE TABLE IF NOT EXISTS mls_kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
";

/// Format 3 adds the keys of encrypted application values (IN-ROOMSTATE-7), by room and key ID.
const APP_KEYS_TABLE: &str = "
CREATE TABLE IF NOT EXISTS app_keys (
    room_uri TEXT NOT NULL,
    key_id BLOB NOT NULL,
    component_id INTEGER NOT NULL,
    key BLOB NOT NULL,
    PRIMARY KEY (room_uri, key_id)
) WITHOUT ROWID;
";

/// Format 4 adds the franks of received messages (draft §5.4.1.3; FRK-007): what an abuse
/// report about the message needs, by room and message ID.
const FRANKS_TABLE: &str = "
CREATE TABLE IF NOT EXISTS franks (
    room_uri TEXT NOT NULL,
    event_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    content BLOB NOT NULL,
    frank BLOB NOT NULL,
    accepted_timestamp INTEGER NOT NULL,
    PRIMARY KEY (room_uri, event_id)
) WITHOUT ROWID;
";

/// Format 5 adds the wallet of lookup tokens (IN-DISC-7): tokens signed by our provider's key
/// of `day`, each spent once.
const LOOKUP_TOKENS_TABLE: &str = "
CREATE TABLE IF NOT EXISTS lookup_tokens (
    issuer TEXT NOT NULL,
    day INTEGER NOT NULL,
    token BLOB NOT NULL,
    PRIMARY KEY (issuer, day, token)
) WITHOUT ROWID;
";

#[cfg(test)]
/// Format 1 kept the MLS state as one snapshot blob (`mimi_room::split_snapshot` reads it).
const MLS_STATE_TABLE_V1: &str = "
CREATE TABLE IF NOT EXISTS mls_state (id INTEGER PRIMARY KEY CHECK (id = 1), snapshot BLOB NOT NULL);
";

/// The profile format, kept in `PRAGMA user_version`. Version 0 (unset) is a profile written
/// before credentials followed RFC 9420 §5.3 (issue 14); 1 kept the MLS state as one snapshot
/// blob; 2 keeps it as one row per storage entry; 3 adds `app_keys`; 4 adds `franks`; 5, the
/// current format, adds `lookup_tokens`.
pub(crate) const PROFILE_VERSION: i64 = 5;

/// Refuses a profile this build cannot use, before changing anything: one from a newer build,
/// or one whose MLS state carries X.509 credentials with the doubled length of older builds
/// (the signatures cover those bytes, so they cannot be rewritten).
fn check_version(conn: &Connection, dir: &Path) -> Result<(), ClientError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > PROFILE_VERSION {
        return Err(ClientError::Profile(format!(
            "{} was written by a newer mimi (format {version}, this build knows {PROFILE_VERSION})",
            dir.display()
        )));
    }
    if version != 0 {
        return Ok(());
    }
    let has_tables: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mls_state')",
        [],
        |r| r.get(0),
    )?;
    let has_state = has_tables
        && conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM account) OR EXISTS (SELECT 1 FROM mls_state)",
            [],
            |r| r.get::<_, bool>(0),
        )?;
    if has_state {
        return Err(ClientError::Profile(format!(
            "{} was written before credentials followed RFC 9420 and cannot be converted: \
             move it aside and register again",
            dir.display()
        )));
    }
    Ok(())
}

/// The account fields.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) server: String,
    pub(crate) ca_pem: String,
    pub(crate) domain: String,
    pub(crate) device_uri: String,
    pub(crate) user_uri: String,
    pub(crate) token: String,
    pub(crate) chain: Vec<Vec<u8>>,
    pub(crate) signature_key: Vec<u8>,
    pub(crate) inbox_cursor: i64,
}

/// A received message's frank with what a report about it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredFrank {
    /// The sender's user URI, from its MLS credential.
    pub(crate) sender: String,
    /// The message's application data (MIMI content) as received.
    pub(crate) content: Vec<u8>,
    /// The hub's `Frank`, TLS-encoded.
    pub(crate) frank: Vec<u8>,
    /// The hub's acceptance time, ms since the UNIX epoch.
    pub(crate) accepted_timestamp: u64,
}

pub(crate) struct Profile {
    conn: Connection,
}

impl Profile {
    pub(crate) fn open(dir: &Path) -> Result<Self, ClientError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ClientError::Profile(format!("cannot create {}: {e}", dir.display())))?;
        let conn = Connection::open(dir.join("profile.sqlite"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        check_version(&conn, dir)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let mut conn = conn;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        // One transaction: the profile is either still in its old format or wholly current.
        let tx = conn.transaction()?;
        tx.execute_batch(SCHEMA)?;
        tx.execute_batch(MLS_KV_TABLE)?;
        // Formats 1 and 2 lack only this table; creating it is the whole upgrade to 3.
        tx.execute_batch(APP_KEYS_TABLE)?;
        // Likewise for formats 4 and 5.
        tx.execute_batch(FRANKS_TABLE)?;
        tx.execute_batch(LOOKUP_TOKENS_TABLE)?;
        if version == 1 {
            upgrade_snapshot_to_rows(&tx, dir)?;
        }
        tx.pragma_update(None, "user_version", PROFILE_VERSION)?;
        tx.commit()?;
        Ok(Self { conn })
    }

    /// Whether any MLS state is saved (a registered account always has its signature key).
    pub(crate) fn has_mls_state(&self) -> Result<bool, ClientError> {
        Ok(self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM mls_kv)", [], |r| r.get(0))?)
    }

    /// The MLS state as saved: every OpenMLS storage entry.
    pub(crate) fn mls_state(&self) -> Result<mimi_room::MemberState, ClientError> {
        let mut stmt = self.conn.prepare("SELECT key, value FROM mls_kv")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let entries = rows.collect::<Result<Vec<(Vec<u8>, Vec<u8>)>, _>>()?;
        Ok(mimi_room::MemberState::from_entries(entries))
    }

    pub(crate) fn account(&self) -> Result<Option<Account>, ClientError> {
        let row = self
            .conn
            .query_row(
                "SELECT server, ca_pem, domain, device_uri, user_uri, token, chain, signature_key, inbox_cursor FROM account",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, Vec<u8>>(7)?,
                        r.get::<_, i64>(8)?,
                    ))
                },
            )
            .optional()?;
        let Some((
            server,
            ca_pem,
            domain,
            device_uri,
            user_uri,
            token,
            chain,
            signature_key,
            inbox_cursor,
        )) = row
        else {
            return Ok(None);
        };
        let chain: Vec<String> = serde_json::from_str(&chain)
            .map_err(|e| ClientError::Profile(format!("bad chain: {e}")))?;
        let chain = chain
            .iter()
            .map(hex::decode)
            .collect::<Result<_, _>>()
            .map_err(|e| ClientError::Profile(format!("bad chain: {e}")))?;
        Ok(Some(Account {
            server,
            ca_pem,
            domain,
            device_uri,
            user_uri,
            token,
            chain,
            signature_key,
            inbox_cursor,
        }))
    }

    pub(crate) fn transaction(&mut self) -> Result<rusqlite::Transaction<'_>, ClientError> {
        Ok(self.conn.transaction()?)
    }

    /// Takes one lookup token of `issuer` from the wallet, spent from then on. Tokens of days
    /// before `first_day` (no gateway redeems them any more) are thrown away. The removal
    /// survives the process but is not synced to disk (no fsync per lookup): after a power
    /// loss a token may come back, and the gateway refuses it as used, which the lookup
    /// answers by spending another (IN-DISC-7).
    pub(crate) fn take_lookup_token(
        &mut self,
        issuer: &str,
        first_day: u64,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let taken = self.take_lookup_token_unsynced(issuer, first_day);
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        taken
    }

    fn take_lookup_token_unsynced(
        &mut self,
        issuer: &str,
        first_day: u64,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let tx = self.conn.transaction()?;
        // The oldest redeemable token first (it expires first); a range of the primary key.
        let token: Option<(i64, Vec<u8>)> = tx
            .query_row(
                "SELECT day, token FROM lookup_tokens WHERE issuer = ?1 AND day >= ?2
                 ORDER BY day LIMIT 1",
                params![issuer, first_day as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((day, token)) = &token {
            tx.execute(
                "DELETE FROM lookup_tokens WHERE issuer = ?1 AND day = ?2 AND token = ?3",
                params![issuer, day, token],
            )?;
        }
        // Tokens no gateway redeems any more go.
        tx.execute(
            "DELETE FROM lookup_tokens WHERE issuer = ?1 AND day < ?2",
            params![issuer, first_day as i64],
        )?;
        tx.commit()?;
        Ok(token.map(|(_, token)| token))
    }

    /// Adds `tokens` of `issuer`, made under its key of `day`, to the wallet.
    pub(crate) fn store_lookup_tokens(
        &mut self,
        issuer: &str,
        day: u64,
        tokens: &[Vec<u8>],
    ) -> Result<(), ClientError> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO lookup_tokens (token, issuer, day) VALUES (?1, ?2, ?3)",
            )?;
            for token in tokens {
                insert.execute(params![token, issuer, day as i64])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// How many tokens of `issuer` of `first_day` or later the wallet holds.
    pub(crate) fn lookup_tokens_held(
        &self,
        issuer: &str,
        first_day: u64,
    ) -> Result<u64, ClientError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM lookup_tokens WHERE issuer = ?1 AND day >= ?2",
            params![issuer, first_day as i64],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// A room's events in display order: hub timestamp, then message ID.
    pub(crate) fn events(&self, room_uri: &str) -> Result<Vec<Event>, ClientError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, sender, timestamp, kind, target, text, invalid, attachment, expires_at,
                    topic
             FROM events
             WHERE room_uri = ?1 ORDER BY timestamp, id",
        )?;
        let rows = stmt.query_map(params![room_uri], |r| {
            Ok(Event {
                id: r.get(0)?,
                sender: r.get(1)?,
                timestamp: r.get::<_, i64>(2)? as u64,
                kind: EventKind::parse(&r.get::<_, String>(3)?),
                target: r.get(4)?,
                text: r.get(5)?,
                invalid: r.get(6)?,
                attachment: r
                    .get::<_, Option<String>>(7)?
                    .and_then(|a| Attachment::from_stored(&a)),
                expires_at: r.get::<_, Option<i64>>(8)?.map(|v| v as u64),
                topic: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn rooms(&self) -> Result<Vec<(String, bool)>, ClientError> {
        let mut stmt = self
            .conn
            .prepare("SELECT room_uri, active FROM rooms ORDER BY room_uri")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The key of an encrypted application value of `room_uri`, by its key ID.
    pub(crate) fn app_key(
        &self,
        room_uri: &str,
        key_id: &[u8],
    ) -> Result<Option<[u8; 16]>, ClientError> {
        let key: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT key FROM app_keys WHERE room_uri = ?1 AND key_id = ?2")?
            .query_row(params![room_uri, key_id], |r| r.get(0))
            .optional()?;
        key.map(|k| {
            <[u8; 16]>::try_from(k.as_slice())
                .map_err(|_| ClientError::Profile(format!("a key of {room_uri} is not 16 bytes")))
        })
        .transpose()
    }

    /// The event ID of a message we sent, by the hash of its ciphertext.
    /// The frank kept with a received message, if it had a valid one.
    pub(crate) fn frank(
        &self,
        room_uri: &str,
        event_id: &str,
    ) -> Result<Option<StoredFrank>, ClientError> {
        Ok(self
            .conn
            .query_row(
                "SELECT sender, content, frank, accepted_timestamp FROM franks
                 WHERE room_uri = ?1 AND event_id = ?2",
                params![room_uri, event_id],
                |r| {
                    Ok(StoredFrank {
                        sender: r.get(0)?,
                        content: r.get(1)?,
                        frank: r.get(2)?,
                        accepted_timestamp: r.get::<_, i64>(3)?.max(0) as u64,
                    })
                },
            )
            .optional()?)
    }

    pub(crate) fn sent_event(&self, hash: &[u8]) -> Result<Option<String>, ClientError> {
        // Asked once per inbox entry during sync: keep the statement prepared.
        Ok(self
            .conn
            .prepare_cached("SELECT event_id FROM sent WHERE hash = ?1")?
            .query_row(params![hash], |r| r.get(0))
            .optional()?)
    }
}

pub(crate) fn save_account(tx: &rusqlite::Transaction<'_>, a: &Account) -> Result<(), ClientError> {
    let chain: Vec<String> = a.chain.iter().map(hex::encode).collect();
    tx.execute(
        "INSERT OR REPLACE INTO account (id, server, ca_pem, domain, device_uri, user_uri, token, chain, signature_key, inbox_cursor)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            a.server,
            a.ca_pem,
            a.domain,
            a.device_uri,
            a.user_uri,
            a.token,
            serde_json::to_string(&chain).map_err(|e| ClientError::Profile(e.to_string()))?,
            a.signature_key,
            a.inbox_cursor
        ],
    )?;
    Ok(())
}

/// Writes the MLS storage entries that changed: new values replace old ones, deleted keys go.
pub(crate) fn save_mls_changes(
    tx: &rusqlite::Transaction<'_>,
    changes: &[StateChange],
) -> Result<(), ClientError> {
    let mut put =
        tx.prepare_cached("INSERT OR REPLACE INTO mls_kv (key, value) VALUES (?1, ?2)")?;
    let mut delete = tx.prepare_cached("DELETE FROM mls_kv WHERE key = ?1")?;
    for change in changes {
        match &change.value {
            Some(value) => put.execute(params![change.key, value])?,
            None => delete.execute(params![change.key])?,
        };
    }
    Ok(())
}

/// Saves in one transaction what `write` stores together with the MLS state's pending changes,
/// then marks those changes saved. If the transaction fails, the in-memory MLS state is
/// reloaded from the profile, so memory never runs ahead of disk.
pub(crate) fn store(
    profile: &mut Profile,
    state: &mut MemberState,
    write: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), ClientError>,
) -> Result<(), ClientError> {
    let saved = state
        .pending_changes()
        .map_err(ClientError::from)
        .and_then(|changes| {
            let tx = profile.transaction()?;
            save_mls_changes(&tx, &changes)?;
            write(&tx)?;
            tx.commit()?;
            Ok(())
        });
    match saved {
        Ok(()) => Ok(state.mark_saved()?),
        Err(e) => {
            if let Ok(reloaded) = profile.mls_state() {
                *state = reloaded;
            }
            Err(e)
        }
    }
}

/// Writes a format-1 profile (MLS state as one snapshot blob), as builds before format 2 did.
#[cfg(test)]
pub(crate) fn write_format_1(
    dir: &Path,
    account: &Account,
    snapshot: &[u8],
) -> Result<(), ClientError> {
    std::fs::create_dir_all(dir).map_err(|e| ClientError::Profile(e.to_string()))?;
    let mut conn = Connection::open(dir.join("profile.sqlite"))?;
    let tx = conn.transaction()?;
    tx.execute_batch(SCHEMA)?;
    tx.execute_batch(MLS_STATE_TABLE_V1)?;
    save_account(&tx, account)?;
    tx.execute(
        "INSERT INTO mls_state (id, snapshot) VALUES (1, ?1)",
        params![snapshot],
    )?;
    tx.pragma_update(None, "user_version", 1)?;
    tx.commit()?;
    Ok(())
}

/// The format a profile is in and whether it still has the format-1 snapshot table.
#[cfg(test)]
pub(crate) fn format_of(dir: &Path) -> Result<(i64, bool), ClientError> {
    let conn = Connection::open(dir.join("profile.sqlite"))?;
    let version = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let has_snapshot = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mls_state')",
        [],
        |r| r.get(0),
    )?;
    Ok((version, has_snapshot))
}

/// Converts a format-1 profile's snapshot blob into `mls_kv` rows and drops the old table.
fn upgrade_snapshot_to_rows(tx: &rusqlite::Transaction<'_>, dir: &Path) -> Result<(), ClientError> {
    let has_table: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mls_state')",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(());
    }
    let snapshot: Option<Vec<u8>> = tx
        .query_row("SELECT snapshot FROM mls_state", [], |r| r.get(0))
        .optional()?;
    if let Some(snapshot) = snapshot {
        let entries = mimi_room::split_snapshot(&snapshot).map_err(|e| {
            ClientError::Profile(format!(
                "cannot convert the MLS state of {}: {e}",
                dir.display()
            ))
        })?;
        let mut put = tx.prepare("INSERT OR REPLACE INTO mls_kv (key, value) VALUES (?1, ?2)")?;
        for (key, value) in &entries {
            put.execute(params![key, value])?;
        }
    }
    tx.execute_batch("DROP TABLE mls_state;")?;
    Ok(())
}

pub(crate) fn set_cursor(tx: &rusqlite::Transaction<'_>, cursor: i64) -> Result<(), ClientError> {
    tx.execute("UPDATE account SET inbox_cursor = ?1", params![cursor])?;
    Ok(())
}

pub(crate) fn set_room(
    tx: &rusqlite::Transaction<'_>,
    room_uri: &str,
    active: bool,
) -> Result<(), ClientError> {
    tx.execute(
        "INSERT OR REPLACE INTO rooms (room_uri, active) VALUES (?1, ?2)",
        params![room_uri, active as i64],
    )?;
    Ok(())
}

/// Keeps the verified frank of a received message (FRK-007).
pub(crate) fn save_frank(
    tx: &rusqlite::Transaction<'_>,
    room_uri: &str,
    event_id: &str,
    f: &StoredFrank,
) -> Result<(), ClientError> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO franks
             (room_uri, event_id, sender, content, frank, accepted_timestamp)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        room_uri,
        event_id,
        f.sender,
        f.content,
        f.frank,
        f.accepted_timestamp.min(i64::MAX as u64) as i64
    ])?;
    Ok(())
}

pub(crate) fn add_event(
    tx: &rusqlite::Transaction<'_>,
    room_uri: &str,
    e: &Event,
) -> Result<(), ClientError> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO events
             (room_uri, id, sender, timestamp, kind, target, text, invalid, attachment, expires_at,
              topic)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        room_uri,
        e.id,
        e.sender,
        e.timestamp as i64,
        e.kind.as_str(),
        e.target,
        e.text,
        e.invalid,
        e.attachment.as_ref().map(Attachment::to_stored),
        e.expires_at.map(|v| v.min(i64::MAX as u64) as i64),
        e.topic
    ])?;
    Ok(())
}

/// Records a message we are about to send: its ciphertext hash and its event, undated until
/// the hub's acceptance (or its echo) gives it a timestamp.
pub(crate) fn mark_sent(
    tx: &rusqlite::Transaction<'_>,
    hash: &[u8],
    room_uri: &str,
    event: &Event,
) -> Result<(), ClientError> {
    tx.execute(
        "INSERT OR IGNORE INTO sent (hash, room_uri, event_id) VALUES (?1, ?2, ?3)",
        params![hash, room_uri, event.id],
    )?;
    add_event(tx, room_uri, event)
}

/// Records the ciphertext hash of something we send that is not an event (a key share), so
/// its echo is recognised; `marker` is what [`Profile::sent_event`] returns for it.
pub(crate) fn mark_sent_only(
    tx: &rusqlite::Transaction<'_>,
    hash: &[u8],
    room_uri: &str,
    marker: &str,
) -> Result<(), ClientError> {
    tx.execute(
        "INSERT OR IGNORE INTO sent (hash, room_uri, event_id) VALUES (?1, ?2, ?3)",
        params![hash, room_uri, marker],
    )?;
    Ok(())
}

/// Stores keys of encrypted application values of `room_uri`. A key ID already held keeps
/// its first key (APP-003): a later share cannot swap the key of a value we can already read.
pub(crate) fn save_app_keys(
    tx: &rusqlite::Transaction<'_>,
    room_uri: &str,
    keys: &[AppKey],
) -> Result<(), ClientError> {
    let mut put = tx.prepare_cached(
        "INSERT OR IGNORE INTO app_keys (room_uri, key_id, component_id, key)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for key in keys {
        put.execute(params![
            room_uri,
            key.key_id.as_slice(),
            key.component_id,
            key.key.as_slice()
        ])?;
    }
    Ok(())
}

/// Forgets the key `key_id` of `room_uri` (its value was never committed).
pub(crate) fn drop_app_key(
    tx: &rusqlite::Transaction<'_>,
    room_uri: &str,
    key_id: &[u8],
) -> Result<(), ClientError> {
    tx.execute(
        "DELETE FROM app_keys WHERE room_uri = ?1 AND key_id = ?2",
        params![room_uri, key_id],
    )?;
    Ok(())
}

/// Dates our own event once the hub accepted it; only an undated event changes.
pub(crate) fn date_event(
    tx: &rusqlite::Transaction<'_>,
    room_uri: &str,
    id: &str,
    timestamp: u64,
) -> Result<(), ClientError> {
    tx.execute(
        "UPDATE events SET timestamp = ?3 WHERE room_uri = ?1 AND id = ?2 AND timestamp = 0",
        params![room_uri, id, timestamp as i64],
    )?;
    Ok(())
}

/// Forgets our own event the hub refused.
pub(crate) fn drop_event(
    tx: &rusqlite::Transaction<'_>,
    room_uri: &str,
    id: &str,
) -> Result<(), ClientError> {
    tx.execute(
        "DELETE FROM events WHERE room_uri = ?1 AND id = ?2",
        params![room_uri, id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14: a profile from before the credential fix is refused and left as it was.
    #[test]
    fn a_profile_from_before_the_credential_fix_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("profile.sqlite")).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute_batch(MLS_STATE_TABLE_V1).unwrap();
            conn.execute("INSERT INTO mls_state (id, snapshot) VALUES (1, x'00')", [])
                .unwrap();
        }
        let err = Profile::open(dir.path())
            .err()
            .expect("an old profile was opened");
        assert!(
            err.to_string().contains("register again"),
            "unhelpful error: {err}"
        );
        let conn = Connection::open(dir.path().join("profile.sqlite")).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 0);
    }

    #[test]
    fn a_new_profile_is_stamped_and_opens_again() {
        let dir = tempfile::tempdir().unwrap();
        drop(Profile::open(dir.path()).unwrap());
        let profile = Profile::open(dir.path()).unwrap();
        let version: i64 = profile
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, PROFILE_VERSION);
    }

    #[test]
    fn each_lookup_token_is_taken_once_and_stale_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut profile = Profile::open(dir.path()).unwrap();
        let (a, b, c) = (vec![1u8; 354], vec![2u8; 354], vec![3u8; 354]);
        profile
            .store_lookup_tokens("a.example", 9, std::slice::from_ref(&a))
            .unwrap();
        profile
            .store_lookup_tokens("a.example", 10, &[b.clone(), c.clone()])
            .unwrap();
        assert_eq!(profile.lookup_tokens_held("a.example", 9).unwrap(), 3);
        assert_eq!(profile.lookup_tokens_held("b.example", 9).unwrap(), 0);
        // Day 9's token is no longer redeemable once day 10 is the first accepted.
        let first = profile.take_lookup_token("a.example", 10).unwrap().unwrap();
        let second = profile.take_lookup_token("a.example", 10).unwrap().unwrap();
        assert_ne!(first, second);
        assert!([&b, &c].contains(&&first) && [&b, &c].contains(&&second));
        assert_eq!(profile.take_lookup_token("a.example", 10).unwrap(), None);
        // Taken means gone, also for the next process; the stale one was dropped.
        drop(profile);
        let profile = Profile::open(dir.path()).unwrap();
        assert_eq!(profile.lookup_tokens_held("a.example", 0).unwrap(), 0);
    }

    #[test]
    fn a_format_2_profile_gains_the_key_table() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("profile.sqlite")).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute_batch(MLS_KV_TABLE).unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
        }
        let profile = Profile::open(dir.path()).unwrap();
        let version: i64 = profile
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, PROFILE_VERSION);
        assert_eq!(profile.frank("mimi://a.example/r/x", "00").unwrap(), None);
        assert_eq!(
            profile.app_key("mimi://a.example/r/x", &[0; 16]).unwrap(),
            None
        );
    }

    #[test]
    fn a_profile_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Connection::open(dir.path().join("profile.sqlite"))
            .unwrap()
            .pragma_update(None, "user_version", PROFILE_VERSION + 1)
            .unwrap();
        assert!(Profile::open(dir.path()).is_err());
    }
}
