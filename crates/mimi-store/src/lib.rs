//! Durable storage for `mimid`: one SQLite file in WAL mode holding accounts, KeyPackages,
//! consent, profile fields and their searchability, hosted rooms and the ratchet trees they
//! publish, the per-peer outbound `/notify` queue, the mailbox that feeds client inboxes and the
//! follower's duplicate filter.
//!
//! Every state change that `mimid` acknowledges happens inside one [`Tx`] that is committed
//! (and synced, `synchronous=FULL`) before the acknowledgement is sent, so a `kill -9` at any
//! moment loses nothing that was acknowledged. [`StoreGuard::run_batch`] commits many
//! independent units of work with one sync (group commit), each in its own savepoint.
//!
//! Layout: one write connection ([`Store::lock`]) and a few read-only connections
//! ([`Store::read`]); WAL lets the readers run while the writer commits.

mod abuse_reports;
mod accounts;
mod assets;
mod consent;
mod discovery;
mod error;
mod inbox;
mod key_packages;
mod knocks;
mod outbox;
mod profiles;
mod rooms;
mod schema;
mod trees;

use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use rusqlite::Connection;

// Public API.
pub use abuse_reports::{AbuseReportRow, NewAbuseReport};
pub use accounts::Client;
pub use assets::AssetRefusal;
pub use consent::{ConsentDecision, ConsentMode, ConsentRecord, ConsentState};
pub use discovery::{CodeCheck, MAX_CODE_ATTEMPTS, Redemption};
pub use error::StoreError;
pub use inbox::InboxItem;
pub use key_packages::{ClaimOutcome, ClaimedKeyPackage};
pub use outbox::{OutboxItem, PeerQueue};
pub use profiles::{FoundProfile, ProfileEntry, ProfileKey, ProfileMatch};
pub use rooms::StoredRoom;
pub use schema::{SCHEMA_VERSION, schema_version_of};
pub use trees::StoredTree;

/// Read-only connections kept open. Reads are short (one inbox page, one token lookup), so a
/// few connections keep them from queueing behind each other on a 2-core machine.
const READERS: usize = 4;

/// Called after a commit that added inbox entries (device- or room-wide).
type InboxListener = Box<dyn Fn() + Send + Sync>;

/// The store: one write connection, used one transaction at a time, and a few readers.
pub struct Store {
    conn: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    inbox_listener: OnceLock<InboxListener>,
}

/// An open transaction; dropped without [`Tx::commit`] it rolls back.
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
    /// Set when this transaction added something to an inbox, so its commit wakes waiters.
    inbox_changed: Cell<bool>,
    listener: Option<&'a InboxListener>,
}

/// Prepared statements kept per connection: more than the store has, so none is re-parsed.
const STATEMENT_CACHE: usize = 128;

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        schema::prepare(&conn)?;
        // Every statement is prepared once per connection and reused (see `prepare_cached`).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open(path)?;
            schema::prepare_reader(&reader)?;
            reader.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            readers.push(Mutex::new(reader));
        }
        Ok(Self {
            conn: Mutex::new(conn),
            readers,
            next_reader: AtomicUsize::new(0),
            inbox_listener: OnceLock::new(),
        })
    }

    /// Locks the write connection; callers hold the guard for one unit of work. Read-only work
    /// should use [`Store::read`], which does not wait for writers.
    pub fn lock(&self) -> Result<StoreGuard<'_>, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(StoreGuard {
            conn,
            listener: self.inbox_listener.get(),
        })
    }

    /// A read-only connection (writes through it fail). Sees every committed transaction.
    pub fn read(&self) -> Result<StoreGuard<'_>, StoreError> {
        for reader in &self.readers {
            if let Ok(conn) = reader.try_lock() {
                return Ok(StoreGuard {
                    conn,
                    listener: None,
                });
            }
        }
        // All busy: queue on one of them, spreading waiters round-robin.
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let conn = self.readers[i].lock().map_err(|_| StoreError::Poisoned)?;
        Ok(StoreGuard {
            conn,
            listener: None,
        })
    }

    /// Sets the function called after every commit that added inbox entries (once; later calls
    /// are ignored). It runs on the committing thread, so it must be quick.
    pub fn set_inbox_listener(&self, listener: impl Fn() + Send + Sync + 'static) {
        let _ = self.inbox_listener.set(Box::new(listener));
    }
}

/// Exclusive use of one connection.
pub struct StoreGuard<'a> {
    conn: MutexGuard<'a, Connection>,
    listener: Option<&'a InboxListener>,
}

impl StoreGuard<'_> {
    /// Starts a transaction that takes the write lock immediately.
    pub fn begin(&mut self) -> Result<Tx<'_>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        Ok(Tx {
            tx,
            inbox_changed: Cell::new(false),
            listener: self.listener,
        })
    }

    /// Group commit: runs every job in one transaction, each inside its own savepoint, and
    /// commits once. A job for which `run` returns false is rolled back to its savepoint alone;
    /// the others keep their changes. `Ok` means the commit is durable for every job that
    /// succeeded; `Err` means nothing of the batch was kept.
    pub fn run_batch<J>(
        &mut self,
        jobs: &mut [J],
        mut run: impl FnMut(&mut J, &Tx<'_>) -> bool,
    ) -> Result<(), StoreError> {
        let tx = self.begin()?;
        for job in jobs.iter_mut() {
            tx.conn().execute_batch("SAVEPOINT job")?;
            let changed_before = tx.inbox_changed.get();
            if run(job, &tx) {
                tx.conn().execute_batch("RELEASE job")?;
            } else {
                // If SQLite already aborted the whole transaction (disk full, I/O error), the
                // savepoint is gone and this fails: the batch is then lost as a whole.
                tx.conn().execute_batch("ROLLBACK TO job; RELEASE job")?;
                tx.inbox_changed.set(changed_before);
            }
        }
        tx.commit()
    }
}

impl Tx<'_> {
    /// Commits: after this returns, the changes survive a crash.
    pub fn commit(self) -> Result<(), StoreError> {
        let changed = self.inbox_changed.get();
        let listener = self.listener;
        self.tx.commit()?;
        if changed && let Some(listener) = listener {
            listener();
        }
        Ok(())
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.tx
    }

    pub(crate) fn mark_inbox_changed(&self) {
        self.inbox_changed.set(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_that_ends_the_transaction_loses_the_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.sqlite")).unwrap();
        let mut jobs = vec![0, 1, 2];
        let outcome = store.lock().unwrap().run_batch(&mut jobs, |i, tx| {
            tx.ensure_user(&format!("u{i}"), 0).unwrap();
            if *i == 1 {
                // What SQLite does on its own after some I/O errors: the transaction is gone.
                tx.conn().execute_batch("ROLLBACK").unwrap();
                return false;
            }
            true
        });
        assert!(outcome.is_err());
        let reader = store.read().unwrap();
        for name in ["u0", "u1", "u2"] {
            assert!(!reader.user_exists(name).unwrap(), "{name}");
        }
    }
}
