//! The database schema and connection settings.

use rusqlite::Connection;

use crate::db::{Db, params};
use crate::error::StoreError;

/// Current schema version, kept in `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 20;

/// The last schema version whose builds wrote X.509 credentials with a doubled length (issue
/// 14). Its tables are the current ones; only the bytes inside MLS objects differ.
const LAST_PRE_RFC_CREDENTIALS: i64 = 5;

/// Tables that hold MLS objects carrying credentials (KeyPackages, hosted rooms, queued
/// commits and Welcomes), or the clients whose state carries them; `inbox` before v2.
const TABLES_WITH_CREDENTIALS: [&str; 7] = [
    "clients",
    "key_packages",
    "rooms",
    "room_journal",
    "outbox",
    "mailbox",
    "inbox",
];

/// The first schema. New databases are created at v1 and migrated, so every database takes the
/// same path to the current version.
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

/// v1 -> v2: one mailbox instead of per-device inbox rows. A message for a room's subscribers is
/// stored once (`device_uri` NULL) and each subscription records the mailbox position where it
/// began and, once ended, where it stopped. Welcomes stay device-targeted. Old inbox rows move
/// over with their ids, and the id sequence continues above the highest id the old inbox ever
/// handed out, so clients' cursors stay valid.
const MIGRATE_V2: &str = "
CREATE TABLE mailbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room_uri TEXT NOT NULL,
    device_uri TEXT,
    body BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX mailbox_by_device ON mailbox(device_uri, id) WHERE device_uri IS NOT NULL;
CREATE INDEX mailbox_by_room ON mailbox(room_uri, id) WHERE device_uri IS NULL;
INSERT INTO mailbox (id, room_uri, device_uri, body, created_at)
    SELECT id, room_uri, device_uri, body, created_at FROM inbox;
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'mailbox', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'mailbox');
UPDATE sqlite_sequence
    SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'inbox'), 0))
    WHERE name = 'mailbox';
DROP TABLE inbox;
ALTER TABLE subscriptions RENAME TO subscriptions_v1;
CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY,
    room_uri TEXT NOT NULL,
    device_uri TEXT NOT NULL,
    from_id INTEGER NOT NULL,
    until_id INTEGER
);
CREATE UNIQUE INDEX subscriptions_active ON subscriptions(room_uri, device_uri)
    WHERE until_id IS NULL;
CREATE INDEX subscriptions_by_room ON subscriptions(room_uri);
CREATE INDEX subscriptions_by_device ON subscriptions(device_uri);
INSERT INTO subscriptions (room_uri, device_uri, from_id)
    SELECT room_uri, device_uri, (SELECT seq FROM sqlite_sequence WHERE name = 'mailbox')
    FROM subscriptions_v1;
DROP TABLE subscriptions_v1;
CREATE TABLE inbox_cursors (
    device_uri TEXT PRIMARY KEY,
    acked_up_to INTEGER NOT NULL
);
";

/// v3: the journal of handshakes accepted since a hosted room's last snapshot, so a commit
/// costs one small row instead of rewriting the whole room.
const MIGRATE_V3: &str = "
CREATE TABLE room_journal (
    room_uri TEXT NOT NULL,
    seq INTEGER NOT NULL,
    message BLOB NOT NULL,
    accepted_at INTEGER NOT NULL,
    PRIMARY KEY (room_uri, seq)
);
";

/// v4: ratchet trees a hub publishes by URL instead of inside Welcomes (IN-SERVER-11), one row
/// per room and epoch. `readers` lists the provider domains the Welcome went to, one per line.
const MIGRATE_V4: &str = "
CREATE TABLE room_trees (
    room_uri TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    tree BLOB NOT NULL,
    readers TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_uri, epoch)
);
CREATE INDEX room_trees_by_age ON room_trees(created_at);
";

/// v5: a message for several devices (a Welcome adding many clients) keeps its body once in
/// `mailbox_shared`; each device's mailbox row points at it with an empty `body` of its own.
const MIGRATE_V5: &str = "
CREATE TABLE mailbox_shared (
    id INTEGER PRIMARY KEY,
    body BLOB NOT NULL
);
ALTER TABLE mailbox ADD COLUMN shared_id INTEGER REFERENCES mailbox_shared(id);
CREATE INDEX mailbox_by_shared ON mailbox(shared_id) WHERE shared_id IS NOT NULL;
";

/// v7: a `/notify` body is stored once for all the peers it goes to (`outbox_bodies`); each
/// peer's queue row points at it. Existing rows keep their ids and give their body the same id.
const MIGRATE_V7: &str = "
CREATE TABLE outbox_bodies (
    id INTEGER PRIMARY KEY,
    body BLOB NOT NULL
);
INSERT INTO outbox_bodies (id, body) SELECT id, body FROM outbox;
CREATE TABLE outbox_v7 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    peer TEXT NOT NULL,
    room_uri TEXT NOT NULL,
    body_id INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
INSERT INTO outbox_v7 (id, peer, room_uri, body_id, attempts, next_attempt_at, created_at)
    SELECT id, peer, room_uri, id, attempts, next_attempt_at, created_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v7 RENAME TO outbox;
CREATE INDEX outbox_by_peer ON outbox(peer, id);
";

/// v8: consent (protocol-06 §5.7). `consent_modes` holds a local user's mode (absent =
/// `anyone`); `consent` one row per (target, requester, room) scope, `room_uri` '' for any room;
/// `consent_key_packages` the target's KeyPackages a grant brought; `key_package_claims` the log
/// the per-requester claim limit reads. KeyPackages gain `last_resort` (mls-extensions
/// `last_resort_key_package`): such a package is handed out again and again, never claimed.
const MIGRATE_V8: &str = "
CREATE TABLE consent_modes (
    user_name TEXT PRIMARY KEY,
    mode TEXT NOT NULL CHECK (mode IN ('anyone', 'contacts'))
);
CREATE TABLE consent (
    target_uri TEXT NOT NULL,
    requester_uri TEXT NOT NULL,
    room_uri TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('requested', 'granted', 'denied', 'revoked')),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (target_uri, requester_uri, room_uri)
);
CREATE INDEX consent_by_requester ON consent(requester_uri);
CREATE TABLE consent_key_packages (
    id INTEGER PRIMARY KEY,
    target_uri TEXT NOT NULL,
    requester_uri TEXT NOT NULL,
    room_uri TEXT NOT NULL,
    key_package BLOB NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX consent_key_packages_by_scope
    ON consent_key_packages(target_uri, requester_uri, room_uri);
CREATE TABLE key_package_claims (
    requester_uri TEXT NOT NULL,
    target_uri TEXT NOT NULL,
    count INTEGER NOT NULL,
    claimed_at INTEGER NOT NULL
);
CREATE INDEX key_package_claims_by_pair
    ON key_package_claims(requester_uri, target_uri, claimed_at);
CREATE INDEX key_package_claims_by_age ON key_package_claims(claimed_at);
ALTER TABLE key_packages ADD COLUMN last_resort INTEGER NOT NULL DEFAULT 0;
";

/// v9: knocks on hosted rooms (IN-LIFECYCLE-5).
const MIGRATE_V9: &str = "
CREATE TABLE knocks (
    room_uri TEXT NOT NULL,
    user_uri TEXT NOT NULL,
    knocked_at INTEGER NOT NULL,
    PRIMARY KEY (room_uri, user_uri)
);
";

/// v10: abuse reports the hub accepted (draft-ietf-mimi-protocol-06 §5.9; RPT-005), for the hub's
/// operator. `report` is the whole `AbuseReport` as received; the other columns repeat what
/// `mimid reports list` filters and prints. Self-contained, so the step can take any number.
const MIGRATE_V10: &str = "
CREATE TABLE abuse_reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room_uri TEXT NOT NULL,
    reporting_user TEXT NOT NULL,
    alleged_abuser TEXT NOT NULL,
    reason_code INTEGER NOT NULL,
    note TEXT NOT NULL,
    received_from TEXT NOT NULL,
    report BLOB NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX abuse_reports_by_room ON abuse_reports(room_uri, id);
";

/// v11: user discovery (issue 12): identifiers our users claimed and proved, and the mapping
/// records this provider keeps for lookups (its own users' and those peers published to it).
const MIGRATE_V11: &str = "
CREATE TABLE discovery_claims (
    user_name TEXT NOT NULL,
    identifier TEXT NOT NULL,
    code TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    verified_at INTEGER,
    PRIMARY KEY (user_name, identifier)
);
CREATE INDEX discovery_claims_by_identifier ON discovery_claims(identifier);
CREATE TABLE discovery_mappings (
    identifier TEXT NOT NULL,
    provider TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    record BLOB NOT NULL,
    received_from TEXT NOT NULL,
    PRIMARY KEY (identifier, provider)
);
";

/// v12: profile fields and their searchable flags (identifierQuery, protocol-06 §5.8). One row
/// per (user, field) ever set or flagged; `folded` is the value in lowercase for substring
/// searches; a nick row's value is always the user name. A user without rows has an empty
/// profile and is found by nothing. Self-contained, so the step can take any number.
const MIGRATE_V12: &str = "
CREATE TABLE profile_fields (
    user_name TEXT NOT NULL REFERENCES users(name),
    field TEXT NOT NULL CHECK (field IN ('handle', 'email', 'phone', 'name', 'nick')),
    value TEXT,
    folded TEXT,
    searchable INTEGER NOT NULL DEFAULT 0 CHECK (searchable IN (0, 1)),
    PRIMARY KEY (user_name, field),
    CHECK (field <> 'nick' OR value IS user_name)
);
CREATE INDEX profile_fields_searchable ON profile_fields(field, value) WHERE searchable = 1;
";

/// v13: Privacy Pass tokens for discovery lookups (IN-DISC-7): how many tokens each local user
/// was issued per day, the nonces redeemed here, and redemptions per issuer per day.
const MIGRATE_V13: &str = "
CREATE TABLE token_issuance (
    user_name TEXT NOT NULL,
    day INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (user_name, day)
);
CREATE TABLE redeemed_tokens (
    nonce BLOB PRIMARY KEY,
    issuer TEXT NOT NULL,
    day INTEGER NOT NULL
);
CREATE INDEX redeemed_tokens_by_day ON redeemed_tokens(day);
CREATE TABLE token_redemptions (
    issuer TEXT NOT NULL,
    day INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (issuer, day)
);
";

/// v14: assets know their uploader's user (per-user quota) and are found by age (retention);
/// assets of clients already removed are kept, under no user.
const MIGRATE_V14: &str = "
ALTER TABLE assets ADD COLUMN user_name TEXT;
UPDATE assets SET user_name = (SELECT user_name FROM clients WHERE clients.device_uri = assets.device_uri);
CREATE INDEX assets_by_user ON assets(user_name);
CREATE INDEX assets_by_age ON assets(created_at);
";

/// v15: each fan-out entry records when it was queued to the millisecond, for the delivery
/// latency metric (entries queued before have 0, and are not measured).
const MIGRATE_V15: &str = "
ALTER TABLE outbox ADD COLUMN queued_at_ms INTEGER NOT NULL DEFAULT 0;
";

/// v16: the application messages a hub accepted lately, by hash, with the answer it gave: a
/// submission repeated after a lost answer gets the same answer and is not fanned out twice
/// (FED-016). Rows are appended in time order (the rowid), so the oldest go first without an
/// index on time; an MLS message's bytes name its group, so the hash alone identifies it.
const MIGRATE_V16: &str = "
CREATE TABLE accepted_messages (
    id INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    answer BLOB NOT NULL,
    accepted_at INTEGER NOT NULL
);
";

/// The whole schema at v16 for PostgreSQL, where no database predates it: a new database is
/// created at v16 and takes the later steps as SQLite does. Every integer is BIGINT (see
/// `db.rs`), ids come from identity columns, and the tables, keys and indexes are SQLite's.
const POSTGRES_V16: &str = "
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
CREATE TABLE clients (
    device_uri TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    token_hash BYTEA NOT NULL UNIQUE,
    chain BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE key_packages (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    device_uri TEXT NOT NULL REFERENCES clients(device_uri),
    user_name TEXT NOT NULL,
    key_package BYTEA NOT NULL,
    kp_ref BYTEA NOT NULL UNIQUE,
    not_after BIGINT NOT NULL,
    claimed_for_room TEXT,
    last_resort BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX key_packages_unclaimed ON key_packages(user_name, device_uri)
    WHERE claimed_for_room IS NULL;
CREATE TABLE rooms (
    room_uri TEXT PRIMARY KEY,
    snapshot BYTEA NOT NULL,
    epoch BIGINT NOT NULL,
    group_info BYTEA,
    updated_at BIGINT NOT NULL
);
CREATE TABLE welcome_routes (
    kp_ref BYTEA PRIMARY KEY,
    domain TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE outbox_bodies (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    body BYTEA NOT NULL
);
CREATE TABLE outbox (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    peer TEXT NOT NULL,
    room_uri TEXT NOT NULL,
    body_id BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    queued_at_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX outbox_by_peer ON outbox(peer, id);
CREATE TABLE assets (
    id TEXT PRIMARY KEY,
    device_uri TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    user_name TEXT
);
CREATE INDEX assets_by_user ON assets(user_name);
CREATE INDEX assets_by_age ON assets(created_at);
CREATE TABLE notify_seen (
    body_hash BYTEA PRIMARY KEY,
    received_at BIGINT NOT NULL
);
CREATE INDEX notify_seen_by_age ON notify_seen(received_at);
CREATE TABLE mailbox_shared (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    body BYTEA NOT NULL
);
CREATE TABLE mailbox (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    room_uri TEXT NOT NULL,
    device_uri TEXT,
    body BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    shared_id BIGINT REFERENCES mailbox_shared(id)
);
CREATE INDEX mailbox_by_device ON mailbox(device_uri, id) WHERE device_uri IS NOT NULL;
CREATE INDEX mailbox_by_room ON mailbox(room_uri, id) WHERE device_uri IS NULL;
CREATE INDEX mailbox_by_shared ON mailbox(shared_id) WHERE shared_id IS NOT NULL;
CREATE TABLE subscriptions (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    room_uri TEXT NOT NULL,
    device_uri TEXT NOT NULL,
    from_id BIGINT NOT NULL,
    until_id BIGINT
);
CREATE UNIQUE INDEX subscriptions_active ON subscriptions(room_uri, device_uri)
    WHERE until_id IS NULL;
CREATE INDEX subscriptions_by_room ON subscriptions(room_uri);
CREATE INDEX subscriptions_by_device ON subscriptions(device_uri);
CREATE TABLE inbox_cursors (
    device_uri TEXT PRIMARY KEY,
    acked_up_to BIGINT NOT NULL
);
CREATE TABLE room_journal (
    room_uri TEXT NOT NULL,
    seq BIGINT NOT NULL,
    message BYTEA NOT NULL,
    accepted_at BIGINT NOT NULL,
    PRIMARY KEY (room_uri, seq)
);
CREATE TABLE room_trees (
    room_uri TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    tree BYTEA NOT NULL,
    readers TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room_uri, epoch)
);
CREATE INDEX room_trees_by_age ON room_trees(created_at);
CREATE TABLE consent_modes (
    user_name TEXT PRIMARY KEY,
    mode TEXT NOT NULL CHECK (mode IN ('anyone', 'contacts'))
);
CREATE TABLE consent (
    target_uri TEXT NOT NULL,
    requester_uri TEXT NOT NULL,
    room_uri TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('requested', 'granted', 'denied', 'revoked')),
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (target_uri, requester_uri, room_uri)
);
CREATE INDEX consent_by_requester ON consent(requester_uri);
CREATE TABLE consent_key_packages (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    target_uri TEXT NOT NULL,
    requester_uri TEXT NOT NULL,
    room_uri TEXT NOT NULL,
    key_package BYTEA NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX consent_key_packages_by_scope
    ON consent_key_packages(target_uri, requester_uri, room_uri);
CREATE TABLE key_package_claims (
    requester_uri TEXT NOT NULL,
    target_uri TEXT NOT NULL,
    count BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL
);
CREATE INDEX key_package_claims_by_pair
    ON key_package_claims(requester_uri, target_uri, claimed_at);
CREATE INDEX key_package_claims_by_age ON key_package_claims(claimed_at);
CREATE TABLE knocks (
    room_uri TEXT NOT NULL,
    user_uri TEXT NOT NULL,
    knocked_at BIGINT NOT NULL,
    PRIMARY KEY (room_uri, user_uri)
);
CREATE TABLE abuse_reports (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    room_uri TEXT NOT NULL,
    reporting_user TEXT NOT NULL,
    alleged_abuser TEXT NOT NULL,
    reason_code BIGINT NOT NULL,
    note TEXT NOT NULL,
    received_from TEXT NOT NULL,
    report BYTEA NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX abuse_reports_by_room ON abuse_reports(room_uri, id);
CREATE TABLE discovery_claims (
    user_name TEXT NOT NULL,
    identifier TEXT NOT NULL,
    code TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    verified_at BIGINT,
    PRIMARY KEY (user_name, identifier)
);
CREATE INDEX discovery_claims_by_identifier ON discovery_claims(identifier);
CREATE TABLE discovery_mappings (
    identifier TEXT NOT NULL,
    provider TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    record BYTEA NOT NULL,
    received_from TEXT NOT NULL,
    PRIMARY KEY (identifier, provider)
);
CREATE TABLE profile_fields (
    user_name TEXT NOT NULL REFERENCES users(name),
    field TEXT NOT NULL CHECK (field IN ('handle', 'email', 'phone', 'name', 'nick')),
    value TEXT,
    folded TEXT,
    searchable BIGINT NOT NULL DEFAULT 0 CHECK (searchable IN (0, 1)),
    PRIMARY KEY (user_name, field),
    CHECK (field <> 'nick' OR value IS NOT DISTINCT FROM user_name)
);
CREATE INDEX profile_fields_searchable ON profile_fields(field, value) WHERE searchable = 1;
CREATE TABLE token_issuance (
    user_name TEXT NOT NULL,
    day BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (user_name, day)
);
CREATE TABLE redeemed_tokens (
    nonce BYTEA PRIMARY KEY,
    issuer TEXT NOT NULL,
    day BIGINT NOT NULL
);
CREATE INDEX redeemed_tokens_by_day ON redeemed_tokens(day);
CREATE TABLE token_redemptions (
    issuer TEXT NOT NULL,
    day BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (issuer, day)
);
CREATE TABLE accepted_messages (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    hash BYTEA NOT NULL UNIQUE,
    answer BYTEA NOT NULL,
    accepted_at BIGINT NOT NULL
);
";

/// How a PostgreSQL write transaction (and every migration) starts: it takes an advisory lock
/// held until it ends, so there is one writer at a time across all nodes, as with SQLite (see
/// `StoreGuard::begin`). The key is arbitrary but fixed: the bytes of "mimidwr1".
pub(crate) const POSTGRES_BEGIN_WRITE: &str =
    "BEGIN; SELECT pg_advisory_xact_lock(7883952922113307185)";

/// The schema version of the PostgreSQL database at `url` (0: none yet), read without
/// changing it.
pub fn schema_version_of_postgres(url: &str) -> Result<i64, StoreError> {
    let db = Db::connect_postgres(url)?;
    postgres_version(&db)
}

fn postgres_version(db: &Db) -> Result<i64, StoreError> {
    let exists = db.query_one(
        "SELECT COUNT(*) FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_name = 'mimi_schema'",
        params![],
        |r| r.get::<i64>(0),
    )?;
    if exists == 0 {
        return Ok(0);
    }
    Ok(db
        .query_opt("SELECT version FROM mimi_schema", params![], |r| r.get(0))?
        .unwrap_or(0))
}

/// Creates or upgrades the schema of a PostgreSQL database, in one transaction under the
/// write lock, so nodes starting together migrate once.
pub(crate) fn prepare_postgres(db: &Db) -> Result<(), StoreError> {
    db.batch(POSTGRES_BEGIN_WRITE)?;
    let outcome = (|| {
        let version = postgres_version(db)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version == 0 {
            db.batch(POSTGRES_V16)?;
            db.batch("CREATE TABLE mimi_schema (version BIGINT NOT NULL)")?;
            db.execute("INSERT INTO mimi_schema (version) VALUES (16)", params![])?;
        }
        // The steps after v16, in the SQL both engines share.
        let steps = [
            (17, MIGRATE_V17),
            (18, MIGRATE_V18),
            (19, MIGRATE_V19_POSTGRES),
            (20, MIGRATE_V20),
        ];
        for (step, sql) in steps {
            if version < step {
                db.batch(sql)?;
                db.execute("UPDATE mimi_schema SET version = ?1", params![step])?;
            }
        }
        Ok(())
    })();
    match outcome {
        Ok(()) => db.batch("COMMIT"),
        Err(e) => {
            let _ = db.batch("ROLLBACK");
            Err(e)
        }
    }
}

/// v17: the nodes of a cluster and the leases that give one node a room or a peer's queue
/// (`cluster.rs`). The same SQL on both engines; a single node never writes them.
const MIGRATE_V17: &str = "
CREATE TABLE cluster_nodes (
    node TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    seen_at_ms BIGINT NOT NULL
);
CREATE TABLE leases (
    resource TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    generation BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX leases_by_node ON leases(node);
";

/// v18: the Privacy Pass issuer key of each day in the database, for the nodes of a cluster
/// to share (a single node keeps it in a file of its `dir`, IN-DISC-7).
const MIGRATE_V18: &str = "
CREATE TABLE token_issuer_keys (
    day BIGINT PRIMARY KEY,
    der BYTEA NOT NULL
);
";

/// v20: handshake bundles a hosted room received, durable while the hub validates them, until
/// what follows from them is saved (`rooms.rs`, `RoomInput`), with the times a restarted hub
/// tried to finish each. The same SQL on both engines.
const MIGRATE_V20: &str = "
CREATE TABLE room_inputs (
    room_uri TEXT NOT NULL,
    seq BIGINT NOT NULL,
    bundle BYTEA NOT NULL,
    forwarded_by TEXT,
    now_secs BIGINT NOT NULL,
    ts_ms BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_uri, seq)
);
";

/// v19, on SQLite: (1) `accepted_messages` loses its unique index on the hash, which the hub
/// now keeps in memory (`accepted.rs`): a random insert per message cost a page of the log;
/// handshakes move to `accepted_handshakes`, which keeps the index (the rows so far are
/// copied there too, whichever they were). (2) The follower's duplicate filter is keyed by
/// the hub's timestamp first, so its inserts land at the end of the index; rows from before
/// carry `sent_at` -1 and are still looked up (`first_sighting`). AUTOINCREMENT: the memory
/// index takes ids for commit order, and SQLite would otherwise hand out a deleted last id
/// again.
const MIGRATE_V19_SQLITE: &str = "
CREATE TABLE accepted_handshakes (
    id INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    answer BLOB NOT NULL,
    accepted_at INTEGER NOT NULL
);
INSERT INTO accepted_handshakes (hash, answer, accepted_at)
    SELECT hash, answer, accepted_at FROM accepted_messages ORDER BY id;
CREATE TABLE accepted_messages_v19 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hash BLOB NOT NULL,
    answer BLOB NOT NULL,
    accepted_at INTEGER NOT NULL
);
INSERT INTO accepted_messages_v19 SELECT id, hash, answer, accepted_at FROM accepted_messages;
DROP TABLE accepted_messages;
ALTER TABLE accepted_messages_v19 RENAME TO accepted_messages;
CREATE TABLE notify_seen_v19 (
    sent_at INTEGER NOT NULL,
    body_hash BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (sent_at, body_hash)
);
INSERT INTO notify_seen_v19 SELECT -1, body_hash, received_at FROM notify_seen;
DROP TABLE notify_seen;
ALTER TABLE notify_seen_v19 RENAME TO notify_seen;
CREATE INDEX notify_seen_by_received ON notify_seen(received_at);
";

/// v19 on PostgreSQL: the same changes as [`MIGRATE_V19_SQLITE`], in its dialect.
const MIGRATE_V19_POSTGRES: &str = "
CREATE TABLE accepted_handshakes (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    hash BYTEA NOT NULL UNIQUE,
    answer BYTEA NOT NULL,
    accepted_at BIGINT NOT NULL
);
INSERT INTO accepted_handshakes (hash, answer, accepted_at)
    SELECT hash, answer, accepted_at FROM accepted_messages ORDER BY id;
ALTER TABLE accepted_messages DROP CONSTRAINT accepted_messages_hash_key;
CREATE TABLE notify_seen_v19 (
    sent_at BIGINT NOT NULL,
    body_hash BYTEA NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (sent_at, body_hash)
);
INSERT INTO notify_seen_v19 SELECT -1, body_hash, received_at FROM notify_seen;
DROP TABLE notify_seen;
ALTER TABLE notify_seen_v19 RENAME TO notify_seen;
CREATE INDEX notify_seen_by_received ON notify_seen(received_at);
";

/// The schema version of the database file at `path` (0: none yet), read without changing it.
pub fn schema_version_of(path: &std::path::Path) -> Result<i64, StoreError> {
    if !path.exists() {
        return Ok(0);
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Sets durability pragmas and creates or upgrades the schema.
pub(crate) fn prepare(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    // An older build would misread a newer schema (a Welcome kept in `mailbox_shared` reads as
    // empty before v5), so it refuses to open it, before changing anything, rather than serve
    // wrong data.
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    refuse_pre_rfc_credentials(conn, version)?;
    // WAL lets readers proceed during writes; FULL syncs the WAL on every commit, so an
    // acknowledged change survives power loss as well as a killed process.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(conn, version)
}

/// Leaf and KeyPackage signatures cover the credential bytes, so data written with the doubled
/// length cannot be rewritten; it is refused before anything changes. A database that holds
/// none (created, never used) moves on to the current version.
fn refuse_pre_rfc_credentials(conn: &Connection, version: i64) -> Result<(), StoreError> {
    if !(1..=LAST_PRE_RFC_CREDENTIALS).contains(&version) {
        return Ok(());
    }
    for table in TABLES_WITH_CREDENTIALS {
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [table],
            |r| r.get(0),
        )?;
        if !exists {
            continue;
        }
        let rows: bool =
            conn.query_row(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), [], |r| {
                r.get(0)
            })?;
        if rows {
            return Err(StoreError::PreRfcCredentials { found: version });
        }
    }
    Ok(())
}

/// Brings a database at `version` to [`SCHEMA_VERSION`], one transaction per step.
fn migrate(conn: &Connection, version: i64) -> Result<(), StoreError> {
    migrate_up_to(conn, version, SCHEMA_VERSION)
}

/// Runs the steps after `version` up to and including `target`.
fn migrate_up_to(conn: &Connection, version: i64, target: i64) -> Result<(), StoreError> {
    let steps: [(i64, &str); 20] = [
        (1, SCHEMA_V1),
        (2, MIGRATE_V2),
        (3, MIGRATE_V3),
        (4, MIGRATE_V4),
        (5, MIGRATE_V5),
        // v6: credentials in RFC 9420 form; no table changes (see the refusal above).
        (6, ""),
        (7, MIGRATE_V7),
        (8, MIGRATE_V8),
        (9, MIGRATE_V9),
        (10, MIGRATE_V10),
        (11, MIGRATE_V11),
        (12, MIGRATE_V12),
        (13, MIGRATE_V13),
        (14, MIGRATE_V14),
        (15, MIGRATE_V15),
        (16, MIGRATE_V16),
        (17, MIGRATE_V17),
        (18, MIGRATE_V18),
        (19, MIGRATE_V19_SQLITE),
        (20, MIGRATE_V20),
    ];
    for (step, sql) in steps {
        if version < step && step <= target {
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; {sql} PRAGMA user_version = {step}; COMMIT;"
            ))?;
        }
    }
    Ok(())
}

/// Settings for a read-only connection to a database [`prepare`] has set up.
pub(crate) fn prepare_reader(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "query_only", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// The highest mailbox id handed out so far: everything at or below it is already in the
/// mailbox (or was, and has been collected). Subscriptions start and end at such positions.
/// (On PostgreSQL, writers hold the write lock, so no lower id is still uncommitted.)
pub(crate) fn mailbox_position(db: &Db) -> Result<i64, StoreError> {
    let sql = match db.dialect() {
        crate::Dialect::Sqlite => "SELECT seq FROM sqlite_sequence WHERE name = 'mailbox'",
        crate::Dialect::Postgres => {
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM mailbox_id_seq"
        }
    };
    Ok(db.query_opt(sql, params![], |r| r.get(0))?.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn a_postgres_schema_newer_than_the_build_is_refused_and_left_alone() {
        let scratch = crate::ScratchDatabase::from_env().unwrap();
        assert_eq!(schema_version_of_postgres(scratch.url()).unwrap(), 0);
        let store = Store::open_postgres(scratch.url()).unwrap();
        assert_eq!(
            schema_version_of_postgres(scratch.url()).unwrap(),
            SCHEMA_VERSION
        );
        {
            let mut guard = store.lock().unwrap();
            let tx = guard.begin().unwrap();
            tx.ensure_user("kept", 0).unwrap();
            tx.conn()
                .execute(
                    "UPDATE mimi_schema SET version = ?1",
                    params![SCHEMA_VERSION + 1],
                )
                .unwrap();
            tx.commit().unwrap();
        }
        drop(store);
        match Store::open_postgres(scratch.url()) {
            Err(StoreError::NewerSchema { found, supported }) => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a newer schema was opened"),
        }
        assert_eq!(
            schema_version_of_postgres(scratch.url()).unwrap(),
            SCHEMA_VERSION + 1
        );
        // Opening again at the current version (as after an upgrade) finds the data intact.
        let db = Db::connect_postgres(scratch.url()).unwrap();
        db.execute(
            "UPDATE mimi_schema SET version = ?1",
            params![SCHEMA_VERSION],
        )
        .unwrap();
        let store = Store::open_postgres(scratch.url()).unwrap();
        assert!(store.read().unwrap().user_exists("kept").unwrap());
    }

    #[test]
    fn nodes_opening_one_new_postgres_database_together_create_its_schema_once() {
        let scratch = crate::ScratchDatabase::from_env().unwrap();
        let url = scratch.url().to_owned();
        let opened: Vec<_> = (0..3)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || Store::open_postgres(&url).map(|_| ()))
            })
            .collect();
        for node in opened {
            node.join().unwrap().unwrap();
        }
        assert_eq!(schema_version_of_postgres(&url).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn the_postgres_write_lock_key_spells_its_name() {
        let key = i64::from_be_bytes(*b"mimidwr1");
        assert!(POSTGRES_BEGIN_WRITE.ends_with(&format!("pg_advisory_xact_lock({key})")));
    }

    #[test]
    fn v1_inbox_rows_and_subscriptions_survive_the_migration_with_their_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "BEGIN; {SCHEMA_V1} PRAGMA user_version = 1; COMMIT;"
            ))
            .unwrap();
            conn.execute_batch(
                "INSERT INTO inbox (device_uri, room_uri, body, created_at) VALUES
                     ('d1', 'r', x'01', 0), ('d1', 'r', x'02', 0), ('d2', 'r', x'03', 0),
                     ('d1', 'r', x'04', 0);
                 DELETE FROM inbox WHERE id IN (3, 4);
                 INSERT INTO subscriptions (room_uri, device_uri) VALUES ('r', 'd1');",
            )
            .unwrap();
            // Such rows are refused since v6 (pre-RFC credentials inside); the migration steps
            // themselves still carry every database from v1, so run them on these rows.
            migrate(&conn, 1).unwrap();
        }
        let store = Store::open(&path).unwrap();
        let items = store.read().unwrap().inbox("d1", 0, 10).unwrap();
        let got: Vec<(i64, Vec<u8>)> = items.into_iter().map(|i| (i.id, i.body)).collect();
        assert_eq!(got, vec![(1, vec![1]), (2, vec![2])]);
        // The subscription carried over, and new ids continue above every id ever handed out.
        let mut guard = store.lock().unwrap();
        let tx = guard.begin().unwrap();
        assert!(tx.append_room_log("r", &[5], 0).unwrap());
        tx.commit().unwrap();
        drop(guard);
        let items = store.read().unwrap().inbox("d1", 2, 10).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].id, 5);
        let version: i64 = store
            .read()
            .unwrap()
            .db()
            .query_one("PRAGMA user_version", params![], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_database_from_a_newer_version_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("newer.sqlite");
        let newer = SCHEMA_VERSION + 1;
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", newer)
            .unwrap();
        match Store::open(&path) {
            Err(StoreError::NewerSchema { found, supported }) => {
                assert_eq!((found, supported), (newer, SCHEMA_VERSION));
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a newer schema was opened"),
        }
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        let tables: i64 = conn
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!((version, tables), (newer, 0));
    }

    /// A v5 database (the last written with the doubled credential length) at `path`, with
    /// `rows` run on it.
    fn v5_database(path: &std::path::Path, rows: &str) {
        let conn = Connection::open(path).unwrap();
        migrate_up_to(&conn, 0, 5).unwrap();
        conn.execute_batch(rows).unwrap();
    }

    /// Issue 14: stored MLS state with the doubled X.509 length is refused, not misread.
    #[test]
    fn a_v5_database_with_clients_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v5.sqlite");
        v5_database(
            &path,
            "INSERT INTO users (name, created_at) VALUES ('alice', 0);
             INSERT INTO clients (device_uri, user_name, token_hash, chain, created_at)
                 VALUES ('mimi://a.example/d/alice/phone', 'alice', x'01', x'02', 0);",
        );
        match Store::open(&path) {
            Err(StoreError::PreRfcCredentials { found: 5 }) => {}
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a v5 database with clients was opened"),
        }
        let version: i64 = Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 5);
    }

    #[test]
    fn an_unused_v5_database_moves_to_the_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v5-empty.sqlite");
        v5_database(
            &path,
            "INSERT INTO users (name, created_at) VALUES ('alice', 0);",
        );
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .read()
            .unwrap()
            .db()
            .query_one("PRAGMA user_version", params![], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn key_packages_and_accounts_survive_the_v8_migration_and_consent_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v7.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            migrate_up_to(&conn, 0, 7).unwrap();
            conn.execute_batch(
                "INSERT INTO users (name, created_at) VALUES ('bob', 0);
                 INSERT INTO clients (device_uri, user_name, token_hash, chain, created_at)
                     VALUES ('mimi://b.example/d/bob/b1', 'bob', x'01', x'02', 0);
                 INSERT INTO key_packages (device_uri, user_name, key_package, kp_ref, not_after)
                     VALUES ('mimi://b.example/d/bob/b1', 'bob', x'aa', x'01', 1000),
                            ('mimi://b.example/d/bob/b1', 'bob', x'bb', x'02', 1000);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let reader = store.read().unwrap();
        let version: i64 = reader
            .db()
            .query_one("PRAGMA user_version", params![], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert!(reader.user_exists("bob").unwrap());
        assert_eq!(
            reader
                .unclaimed_key_packages("mimi://b.example/d/bob/b1")
                .unwrap(),
            2
        );
        assert_eq!(
            reader.consent_mode("bob").unwrap(),
            crate::ConsentMode::Anyone
        );
        assert!(
            reader
                .consents_of("mimi://b.example/u/bob")
                .unwrap()
                .is_empty()
        );
        drop(reader);
        // Old KeyPackages are ordinary ones: claimed once each, then the stock is empty.
        let mut guard = store.lock().unwrap();
        let tx = guard.begin().unwrap();
        let fits = |_: &[u8]| true;
        for expected in [Some(vec![0xaa]), Some(vec![0xbb]), None] {
            let claimed = tx.claim_key_packages("bob", "r", 10, &fits).unwrap();
            assert_eq!(claimed[0].outcome.key_package(), expected.as_deref());
        }
        tx.commit().unwrap();
    }

    #[test]
    fn queued_notify_bodies_survive_the_v7_migration_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v6.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            migrate_up_to(&conn, 0, 6).unwrap();
            conn.execute_batch(
                "INSERT INTO outbox (peer, room_uri, body, created_at) VALUES ('b', 'r', x'01', 0);
                 INSERT INTO outbox (peer, room_uri, body, attempts, next_attempt_at, created_at)
                     VALUES ('c', 'r', x'02', 3, 99, 0);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        {
            let mut guard = store.lock().unwrap();
            let tx = guard.begin().unwrap();
            tx.enqueue_notify(&["b"], "r", b"new", 1_000).unwrap();
            tx.commit().unwrap();
        }
        let reader = store.read().unwrap();
        let (b, _) = reader.outbox_head("b", 0, 10).unwrap();
        let (c, not_before) = reader.outbox_head("c", 0, 10).unwrap();
        assert_eq!(
            b.iter().map(|i| (i.id, i.body.clone())).collect::<Vec<_>>(),
            [(1, vec![1]), (3, b"new".to_vec())]
        );
        assert_eq!((c[0].id, c[0].attempts, not_before), (2, 3, 99));
        assert_eq!(
            (b[0].queued_at_ms, b[1].queued_at_ms),
            (0, 1_000),
            "unknown before v15"
        );
        assert_eq!(c[0].body, [2]);
        assert_eq!(reader.outbox_bodies().unwrap(), 3);
    }

    #[test]
    fn accounts_survive_the_v12_migration_with_empty_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v11.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            migrate_up_to(&conn, 0, 11).unwrap();
            conn.execute_batch(
                "INSERT INTO users (name, created_at) VALUES ('alice', 0);
                 INSERT INTO consent_modes (user_name, mode) VALUES ('alice', 'contacts');",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        {
            let reader = store.read().unwrap();
            let version: i64 = reader
                .db()
                .query_one("PRAGMA user_version", params![], |r| r.get(0))
                .unwrap();
            assert_eq!(version, SCHEMA_VERSION);
            assert!(reader.user_exists("alice").unwrap());
            assert_eq!(
                reader.consent_mode("alice").unwrap(),
                crate::ConsentMode::Contacts
            );
            let profile = reader.profile("alice").unwrap();
            assert!(profile.iter().all(|e| e.value.is_none() && !e.searchable));
        }
        // The new table takes rows for existing users, and only for them.
        let mut guard = store.lock().unwrap();
        let tx = guard.begin().unwrap();
        tx.set_profile_value("alice", crate::ProfileKey::Email, Some("al@a.example"))
            .unwrap();
        assert!(
            tx.set_profile_value("nobody", crate::ProfileKey::Email, Some("x@y"))
                .is_err()
        );
        tx.commit().unwrap();
    }

    /// Rows a v18 database holds in the two tables v19 rebuilds.
    const V18_ROWS: &str = "
        INSERT INTO accepted_messages (hash, answer, accepted_at) VALUES ('old-hash', 'old', 1000);
        INSERT INTO notify_seen (body_hash, received_at) VALUES ('seen-hash', 100);";

    /// What v19 must keep of [`V18_ROWS`]: the accepted hash (as a message and as a
    /// handshake) and the follower's sighting.
    fn v18_rows_are_still_recognized(store: &Store) {
        assert_eq!(
            store
                .read()
                .unwrap()
                .accepted_handshake(b"old-hash")
                .unwrap(),
            Some(b"old".to_vec())
        );
        let mut guard = store.lock().unwrap();
        let tx = guard.begin().unwrap();
        assert_eq!(
            tx.accept_message_once(b"old-hash", b"new", 2_000, 0)
                .unwrap(),
            Some(b"old".to_vec())
        );
        assert!(!tx.first_sighting(12_345, b"seen-hash", 200).unwrap());
        assert!(tx.first_sighting(12_345, b"other-hash", 200).unwrap());
        tx.commit().unwrap();
    }

    #[test]
    fn accepted_messages_and_sightings_survive_the_v19_migration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v18.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            migrate_up_to(&conn, 0, 18).unwrap();
            // SQLite stores these text literals as text; the store reads blobs.
            conn.execute_batch(
                &V18_ROWS
                    .replace("'old-hash'", "CAST('old-hash' AS BLOB)")
                    .replace("'old'", "CAST('old' AS BLOB)")
                    .replace("'seen-hash'", "CAST('seen-hash' AS BLOB)"),
            )
            .unwrap();
        }
        v18_rows_are_still_recognized(&Store::open(&path).unwrap());
    }

    #[test]
    fn accepted_messages_and_sightings_survive_the_v19_migration_on_postgres() {
        let scratch = crate::ScratchDatabase::from_env().unwrap();
        let db = Db::connect_postgres(scratch.url()).unwrap();
        db.batch(POSTGRES_V16).unwrap();
        db.batch(MIGRATE_V17).unwrap();
        db.batch(MIGRATE_V18).unwrap();
        db.batch("CREATE TABLE mimi_schema (version BIGINT NOT NULL)")
            .unwrap();
        db.batch("INSERT INTO mimi_schema (version) VALUES (18)")
            .unwrap();
        db.batch(
            &V18_ROWS
                .replace("'old-hash'", "'old-hash'::bytea")
                .replace("'old'", "'old'::bytea")
                .replace("'seen-hash'", "'seen-hash'::bytea"),
        )
        .unwrap();
        drop(db);
        v18_rows_are_still_recognized(&Store::open_postgres(scratch.url()).unwrap());
    }
}
