//! The database schema and connection settings.

use rusqlite::Connection;

use crate::error::StoreError;

/// Current schema version, kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = "
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);
CREATE TABLE clients (
    device_uri TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    token_hash BLOB NOT NULL UNIQUE,
    chain BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE key_packages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_uri TEXT NOT NULL REFERENCES clients(device_uri),
    user_name TEXT NOT NULL,
    key_package BLOB NOT NULL,
    kp_ref BLOB NOT NULL UNIQUE,
    not_after INTEGER NOT NULL,
    claimed_for_room TEXT
);
CREATE INDEX key_packages_unclaimed ON key_packages(user_name, device_uri)
    WHERE claimed_for_room IS NULL;
CREATE TABLE rooms (
    room_uri TEXT PRIMARY KEY,
    snapshot BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    group_info BLOB,
    updated_at INTEGER NOT NULL
);
CREATE TABLE welcome_routes (
    kp_ref BLOB PRIMARY KEY,
    domain TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    peer TEXT NOT NULL,
    room_uri TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX outbox_by_peer ON outbox(peer, id);
CREATE TABLE inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_uri TEXT NOT NULL,
    room_uri TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX inbox_by_device ON inbox(device_uri, id);
CREATE TABLE subscriptions (
    room_uri TEXT NOT NULL,
    device_uri TEXT NOT NULL,
    PRIMARY KEY (room_uri, device_uri)
);
CREATE TABLE assets (
    id TEXT PRIMARY KEY,
    device_uri TEXT NOT NULL,
    bytes BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE notify_seen (
    body_hash BLOB PRIMARY KEY,
    received_at INTEGER NOT NULL
);
CREATE INDEX notify_seen_by_age ON notify_seen(received_at);
";

/// Sets durability pragmas and creates or upgrades the schema.
pub(crate) fn prepare(conn: &Connection) -> Result<(), StoreError> {
    // WAL lets readers proceed during writes; FULL syncs the WAL on every commit, so an
    // acknowledged change survives power loss as well as a killed process.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version < 1 {
        conn.execute_batch(&format!(
            "BEGIN; {SCHEMA_V1} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))?;
    }
    Ok(())
}
