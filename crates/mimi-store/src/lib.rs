//! Durable storage for `mimid`: one SQLite file in WAL mode holding accounts, KeyPackages,
//! hosted rooms, the per-peer outbound `/notify` queue, per-client inboxes and the follower's
//! duplicate filter.
//!
//! Every state change that `mimid` acknowledges happens inside one [`Tx`] that is committed
//! (and synced, `synchronous=FULL`) before the acknowledgement is sent, so a `kill -9` at any
//! moment loses nothing that was acknowledged.

mod accounts;
mod assets;
mod error;
mod inbox;
mod key_packages;
mod outbox;
mod rooms;
mod schema;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

// Public API.
pub use accounts::Client;
pub use error::StoreError;
pub use inbox::InboxItem;
pub use key_packages::ClaimedKeyPackage;
pub use outbox::OutboxItem;
pub use rooms::StoredRoom;

/// The store: one SQLite connection, used one transaction at a time.
pub struct Store {
    conn: Mutex<Connection>,
}

/// An open transaction; dropped without [`Tx::commit`] it rolls back.
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        schema::prepare(&conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Locks the connection; callers hold the guard for one unit of work.
    pub fn lock(&self) -> Result<StoreGuard<'_>, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(StoreGuard { conn })
    }
}

/// Exclusive use of the connection.
pub struct StoreGuard<'a> {
    conn: MutexGuard<'a, Connection>,
}

impl StoreGuard<'_> {
    /// Starts a transaction that takes the write lock immediately.
    pub fn begin(&mut self) -> Result<Tx<'_>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        Ok(Tx { tx })
    }
}

impl Tx<'_> {
    /// Commits: after this returns, the changes survive a crash.
    pub fn commit(self) -> Result<(), StoreError> {
        self.tx.commit()?;
        Ok(())
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.tx
    }
}
