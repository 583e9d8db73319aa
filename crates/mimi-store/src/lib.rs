//! Durable storage for `mimid`: one SQLite file in WAL mode, or a PostgreSQL database several
//! nodes share (see `db.rs` for how one body of SQL serves both), holding accounts, KeyPackages,
//! consent, profile fields and their searchability, hosted rooms and the ratchet trees they
//! publish, the per-peer outbound `/notify` queue, the mailbox that feeds client inboxes and the
//! follower's duplicate filter.
//!
//! Every state change that `mimid` acknowledges happens inside one [`Tx`] that is committed
//! (and synced, `synchronous=FULL`) before the acknowledgement is sent, so a `kill -9` at any
//! moment loses nothing that was acknowledged. [`StoreGuard::run_batch`] commits many
//! independent units of work with one sync (group commit), each in its own savepoint unless
//! every one of them can run again.
//!
//! Layout: one write connection ([`Store::lock`]) and a few read-only connections
//! ([`Store::read`]); WAL lets the readers run while the writer commits.

mod abuse_reports;
mod accepted;
mod accounts;
mod assets;
mod cluster;
mod consent;
mod db;
mod discovery;
mod error;
mod inbox;
#[doc(hidden)]
pub mod inspect;
mod key_packages;
mod knocks;
mod notify;
mod outbox;
mod profiles;
mod rooms;
mod schema;
mod scratch;
mod trees;

use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use db::Db;
pub use db::Dialect;

// Public API.
pub use abuse_reports::{AbuseReportRow, NewAbuseReport};
pub use accounts::Client;
pub use assets::AssetRefusal;
pub use cluster::{ClusterNode, Lease};
pub use consent::{ConsentDecision, ConsentMode, ConsentRecord, ConsentState};
pub use discovery::{CodeCheck, MAX_CODE_ATTEMPTS, Redemption};
pub use error::StoreError;
pub use inbox::InboxItem;
pub use key_packages::{ClaimOutcome, ClaimedKeyPackage};
pub use notify::{Change, Listening};
pub use outbox::{OutboxItem, PeerQueue, QueueChange};
pub use profiles::{FoundProfile, ProfileEntry, ProfileKey, ProfileMatch};
pub use rooms::{RoomInput, StoredRoom};
pub use schema::{SCHEMA_VERSION, schema_version_of, schema_version_of_postgres};
pub use scratch::{ScratchDatabase, TEST_POSTGRES_ENV};
pub use trees::StoredTree;

/// Read-only connections kept open. Reads are short (one inbox page, one token lookup), so a
/// few connections keep them from queueing behind each other on a 2-core machine.
const READERS: usize = 4;

/// Called after a commit that added inbox entries (device- or room-wide).
type InboxListener = Box<dyn Fn() + Send + Sync>;

/// Called after a commit that queued fan-out, with what it did to the queue.
type OutboxListener = Box<dyn Fn(QueueChange) + Send + Sync>;

/// What is told of commits on the write connection.
#[derive(Default)]
struct Listeners {
    inbox: OnceLock<InboxListener>,
    outbox: OnceLock<OutboxListener>,
}

/// Where a store lives: an SQLite file (one node) or a PostgreSQL database (one or many).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file, created if missing.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL connection string (`postgres://user@host:port/db`).
    Postgres(String),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => write!(f, "{}", redact_password(url)),
        }
    }
}

/// `url` without the password it may carry, for messages and logs.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{name}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// The store: one write connection, used one transaction at a time, and a few readers.
pub struct Store {
    conn: Mutex<Db>,
    readers: Vec<Mutex<Db>>,
    next_reader: AtomicUsize,
    listeners: Listeners,
    location: Location,
    /// Whether commits announce new inbox entries and fan-out with NOTIFY (other nodes listen).
    announce: AtomicBool,
    /// The memory index of the messages accepted lately (`accepted.rs`).
    recent: Mutex<accepted::Recent>,
}

/// An open transaction; dropped without [`Tx::commit`] it rolls back.
pub struct Tx<'a> {
    db: &'a Db,
    /// Set once `COMMIT` ran (successfully or not), so dropping does not roll back.
    finished: Cell<bool>,
    /// Set when this transaction added something to an inbox, so its commit wakes waiters.
    inbox_changed: Cell<bool>,
    /// Set when it queued fan-out, so its commit wakes the senders of other nodes.
    outbox_changed: Cell<bool>,
    /// Set once this transaction forgot the FanoutMessage hashes past their window: once is
    /// enough, however many messages a `/notify` batch holds.
    sightings_pruned: Cell<bool>,
    listeners: Option<&'a Listeners>,
    /// See [`Store::announce_changes`].
    announce: bool,
    /// The memory index of accepted messages, and what this transaction adds to it.
    recent: &'a Mutex<accepted::Recent>,
    accepted: accepted::Pending,
    /// The fan-out entries this transaction queued, for the outbox listener (kept only if
    /// one is set).
    queued: std::cell::RefCell<Vec<OutboxItem>>,
}

/// Prepared statements kept per SQLite connection: more than the store has, so none is
/// re-parsed.
const STATEMENT_CACHE: usize = 128;

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and brings its schema up to
    /// date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = rusqlite::Connection::open(path)?;
        schema::prepare(&conn)?;
        // Every statement is prepared once per connection and reused (see `prepare_cached`).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = rusqlite::Connection::open(path)?;
            schema::prepare_reader(&reader)?;
            reader.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            readers.push(Mutex::new(Db::Sqlite(reader)));
        }
        Ok(Self::assemble(
            Db::Sqlite(conn),
            readers,
            Location::Sqlite(path.to_owned()),
        ))
    }

    /// Connects to the PostgreSQL database at `url` and brings its schema up to date. Blocks:
    /// call it off the async workers.
    pub fn open_postgres(url: &str) -> Result<Self, StoreError> {
        let conn = Db::connect_postgres(url)?;
        schema::prepare_postgres(&conn)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Db::connect_postgres(url)?;
            reader.batch("SET default_transaction_read_only = on")?;
            readers.push(Mutex::new(reader));
        }
        Ok(Self::assemble(
            conn,
            readers,
            Location::Postgres(url.to_owned()),
        ))
    }

    /// Opens the store at `location` (see [`Store::open`], [`Store::open_postgres`]).
    pub fn open_at(location: &Location) -> Result<Self, StoreError> {
        match location {
            Location::Sqlite(path) => Self::open(path),
            Location::Postgres(url) => Self::open_postgres(url),
        }
    }

    fn assemble(conn: Db, readers: Vec<Mutex<Db>>, location: Location) -> Self {
        Self {
            conn: Mutex::new(conn),
            readers,
            next_reader: AtomicUsize::new(0),
            listeners: Listeners::default(),
            location,
            announce: AtomicBool::new(false),
            recent: Mutex::new(accepted::Recent::default()),
        }
    }

    /// Where this store lives.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The SQL dialect of the engine behind this store.
    pub fn dialect(&self) -> Dialect {
        match self.location {
            Location::Sqlite(_) => Dialect::Sqlite,
            Location::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Locks the write connection; callers hold the guard for one unit of work. Read-only work
    /// should use [`Store::read`], which does not wait for writers.
    pub fn lock(&self) -> Result<StoreGuard<'_>, StoreError> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        self.reconnect_if_closed(&mut conn, false)?;
        Ok(StoreGuard {
            conn,
            listeners: Some(&self.listeners),
            announce: self.announce.load(Ordering::Relaxed),
            recent: &self.recent,
        })
    }

    /// A read-only connection (writes through it fail). Sees every committed transaction.
    pub fn read(&self) -> Result<StoreGuard<'_>, StoreError> {
        let mut found = None;
        for reader in &self.readers {
            if let Ok(conn) = reader.try_lock() {
                found = Some(conn);
                break;
            }
        }
        let mut conn = match found {
            Some(conn) => conn,
            // All busy: queue on one of them, spreading waiters round-robin.
            None => {
                let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
                self.readers[i].lock().map_err(|_| StoreError::Poisoned)?
            }
        };
        self.reconnect_if_closed(&mut conn, true)?;
        Ok(StoreGuard {
            conn,
            listeners: None,
            announce: false,
            recent: &self.recent,
        })
    }

    /// A PostgreSQL connection the server closed (a restart, a failover) is opened again, so
    /// one lost connection fails the work in flight on it and nothing after.
    fn reconnect_if_closed(&self, conn: &mut Db, read_only: bool) -> Result<(), StoreError> {
        if let (Location::Postgres(url), true) = (&self.location, conn.is_closed()) {
            let fresh = Db::connect_postgres(url)?;
            if read_only {
                fresh.batch("SET default_transaction_read_only = on")?;
            }
            *conn = fresh;
        }
        Ok(())
    }

    /// From now on, a commit that added inbox entries or queued fan-out announces it with a
    /// PostgreSQL NOTIFY, for the other nodes of a cluster ([`Listening`]); a single node has
    /// no one to tell, and its commits skip the extra statements. No effect on SQLite.
    pub fn announce_changes(&self) {
        self.announce
            .store(self.dialect() == Dialect::Postgres, Ordering::Relaxed);
    }

    /// Sets the function called after every commit that added inbox entries (once; later calls
    /// are ignored). It runs on the committing thread, so it must be quick.
    pub fn set_inbox_listener(&self, listener: impl Fn() + Send + Sync + 'static) {
        let _ = self.listeners.inbox.set(Box::new(listener));
    }

    /// Sets the function called after every commit that queued fan-out, with the entries it
    /// queued, in id order, or after such a commit failed in a way that leaves its outcome
    /// unknown (once; later calls are ignored). Commits are serialised, so calls come in
    /// commit order. It runs on the committing thread, so it must be quick.
    pub fn set_outbox_listener(&self, listener: impl Fn(QueueChange) + Send + Sync + 'static) {
        let _ = self.listeners.outbox.set(Box::new(listener));
    }
}

/// Exclusive use of one connection.
pub struct StoreGuard<'a> {
    conn: MutexGuard<'a, Db>,
    listeners: Option<&'a Listeners>,
    /// See [`Store::announce_changes`].
    announce: bool,
    recent: &'a Mutex<accepted::Recent>,
}

impl StoreGuard<'_> {
    /// Starts a transaction that takes the database's write lock immediately.
    pub fn begin(&mut self) -> Result<Tx<'_>, StoreError> {
        self.conn.batch(match self.conn.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            // Writers take one lock for the whole database, as SQLite's writer does, so ids
            // are handed out in commit order on every node (mailbox cursors and the fan-out
            // queue's body collection rely on it) and read-then-write steps cannot interleave.
            Dialect::Postgres => schema::POSTGRES_BEGIN_WRITE,
        })?;
        Ok(Tx {
            db: &self.conn,
            finished: Cell::new(false),
            inbox_changed: Cell::new(false),
            outbox_changed: Cell::new(false),
            sightings_pruned: Cell::new(false),
            listeners: self.listeners,
            announce: self.announce,
            recent: self.recent,
            accepted: accepted::Pending::default(),
            queued: Default::default(),
        })
    }

    /// Group commit: runs every job in one transaction, each inside its own savepoint, and
    /// commits once. A job for which `run` returns false is rolled back to its savepoint alone;
    /// the others keep their changes. `Ok` means the commit is durable for every job that
    /// succeeded; `Err` means nothing of the batch was kept.
    ///
    /// When every job can run again (`repeatable`: it changes nothing outside the transaction
    /// that a second run would not redo), the batch first runs without savepoints: a savepoint
    /// copies every page a job touches, which costs more than the job at high rates. Should
    /// one fail, that attempt is rolled back whole and the batch runs again with savepoints.
    pub fn run_batch<J>(
        &mut self,
        jobs: &mut [J],
        repeatable: impl Fn(&J) -> bool,
        mut run: impl FnMut(&mut J, &Tx<'_>) -> bool,
    ) -> Result<(), StoreError> {
        if jobs.iter().all(&repeatable) {
            let tx = self.begin()?;
            if jobs.iter_mut().all(|job| run(job, &tx)) {
                return tx.commit();
            }
            // Dropped: rolled back, with whatever the jobs added to memory indexes.
        }
        let tx = self.begin()?;
        for job in jobs.iter_mut() {
            tx.conn().batch("SAVEPOINT job")?;
            let changed_before = (tx.inbox_changed.get(), tx.outbox_changed.get());
            let accepted_before = tx.accepted.mark();
            let queued_before = tx.queued.borrow().len();
            let pruned_before = tx.sightings_pruned.get();
            if run(job, &tx) {
                tx.conn().batch("RELEASE SAVEPOINT job")?;
            } else {
                // If the engine already aborted the whole transaction (disk full, I/O error),
                // the savepoint is gone and this fails: the batch is then lost as a whole.
                tx.conn()
                    .batch("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job")?;
                tx.inbox_changed.set(changed_before.0);
                tx.outbox_changed.set(changed_before.1);
                tx.accepted.roll_back_to(accepted_before);
                tx.queued.borrow_mut().truncate(queued_before);
                tx.sightings_pruned.set(pruned_before);
            }
        }
        tx.commit()
    }

    /// The connection, for the read queries in the modules.
    pub(crate) fn db(&self) -> &Db {
        &self.conn
    }
}

impl Tx<'_> {
    /// Commits: after this returns, the changes survive a crash.
    pub fn commit(self) -> Result<(), StoreError> {
        if self.db.transaction_failed() {
            // PostgreSQL would answer COMMIT with a rollback and no error.
            return Err(StoreError::Aborted);
        }
        // Other nodes on the same PostgreSQL database learn of new inbox entries and fan-out
        // at the commit (a NOTIFY is delivered only if its transaction commits).
        if self.announce {
            match (self.inbox_changed.get(), self.outbox_changed.get()) {
                (false, false) => {}
                (true, false) => self.db.batch(notify::NOTIFY_INBOX)?,
                (false, true) => self.db.batch(notify::NOTIFY_OUTBOX)?,
                (true, true) => {
                    self.db.batch(notify::NOTIFY_INBOX)?;
                    self.db.batch(notify::NOTIFY_OUTBOX)?;
                }
            }
        }
        // A failed COMMIT leaves `finished` unset, so dropping `self` rolls back. Whether the
        // changes landed is then unknown (a connection lost during COMMIT, an I/O error after
        // the WAL write): whoever keeps track of the queue in memory must read it again.
        let outbox_listener = self.listeners.and_then(|l| l.outbox.get());
        if let Err(e) = self.db.batch("COMMIT") {
            if let (true, Some(listener)) = (self.outbox_changed.get(), outbox_listener) {
                listener(QueueChange::Unknown);
            }
            return Err(e);
        }
        self.finished.set(true);
        // Only now do the accepted messages join the index: a rollback must leave no trace.
        if self.accepted.mark() > 0 {
            // The commit is durable: a poisoned lock must not turn it into an error.
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            self.accepted.commit_into(&mut recent);
        }
        let listeners = self.listeners;
        if self.inbox_changed.get()
            && let Some(listener) = listeners.and_then(|l| l.inbox.get())
        {
            listener();
        }
        if let (true, Some(listener)) = (self.outbox_changed.get(), outbox_listener) {
            listener(QueueChange::Queued(self.queued.take()));
        }
        Ok(())
    }

    pub(crate) fn conn(&self) -> &Db {
        self.db
    }

    pub(crate) fn mark_inbox_changed(&self) {
        self.inbox_changed.set(true);
    }

    pub(crate) fn mark_outbox_changed(&self) {
        self.outbox_changed.set(true);
    }

    /// Keeps a queued fan-out entry for the outbox listener, if there is one.
    pub(crate) fn note_queued(&self, item: impl FnOnce() -> OutboxItem) {
        if self.listeners.is_some_and(|l| l.outbox.get().is_some()) {
            self.queued.borrow_mut().push(item());
        }
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.finished.get() {
            // Nothing to report to: the caller already has the error that made it give up.
            let _ = self.db.batch("ROLLBACK");
        }
    }
}

/// Runs a test once on SQLite and once on PostgreSQL: `engine_test! { fn name(store) { .. } }`
/// defines `name::sqlite` and `name::postgres`, each with `store: &mut testing::TestStore` (a
/// fresh, empty store that derefs to [`Store`]).
#[cfg(test)]
macro_rules! engine_test {
    ($(#[$meta:meta])* fn $name:ident($store:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[allow(unused_mut, unused_variables)]
            fn body($store: &mut $crate::testing::TestStore) $body

            #[test]
            fn sqlite() {
                body(&mut $crate::testing::TestStore::sqlite())
            }

            #[test]
            fn postgres() {
                body(&mut $crate::testing::TestStore::postgres())
            }
        }
    };
}
#[cfg(test)]
pub(crate) use engine_test;

/// Fresh stores on either engine for the tests (see [`engine_test`]).
#[cfg(test)]
pub(crate) mod testing {
    use super::{Location, ScratchDatabase, Store};

    /// A store with what keeps it alive: its directory or its scratch database.
    pub(crate) struct TestStore {
        store: Option<Store>,
        location: Location,
        _dir: tempfile::TempDir,
        _scratch: Option<ScratchDatabase>,
    }

    impl TestStore {
        /// An empty SQLite store in a temporary directory.
        pub(crate) fn sqlite() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let location = Location::Sqlite(dir.path().join("t.sqlite"));
            Self::open(location, dir, None)
        }

        /// An empty PostgreSQL store in a scratch database.
        pub(crate) fn postgres() -> Self {
            let scratch = ScratchDatabase::from_env().unwrap();
            let location = Location::Postgres(scratch.url().to_owned());
            Self::open(location, tempfile::tempdir().unwrap(), Some(scratch))
        }

        fn open(
            location: Location,
            dir: tempfile::TempDir,
            scratch: Option<ScratchDatabase>,
        ) -> Self {
            Self {
                store: Some(Store::open_at(&location).unwrap()),
                location,
                _dir: dir,
                _scratch: scratch,
            }
        }

        /// Closes the store and opens it again, as a restart does.
        pub(crate) fn reopen(&mut self) {
            self.store = None;
            self.store = Some(Store::open_at(&self.location).unwrap());
        }
    }

    impl std::ops::Deref for TestStore {
        type Target = Store;
        fn deref(&self) -> &Store {
            self.store.as_ref().unwrap()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    engine_test! {
        fn a_job_that_ends_the_transaction_loses_the_whole_batch(store) {
            let mut jobs = vec![0, 1, 2];
            let outcome = store.lock().unwrap().run_batch(&mut jobs, |_| false, |i, tx| {
                tx.ensure_user(&format!("u{i}"), 0).unwrap();
                if *i == 1 {
                    // What the engine does on its own after some I/O errors: the transaction
                    // is gone.
                    tx.conn().batch("ROLLBACK").unwrap();
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

    engine_test! {
        fn a_failed_statement_fails_the_commit_and_keeps_nothing(store) {
            let mut guard = store.lock().unwrap();
            let tx = guard.begin().unwrap();
            tx.ensure_user("kept-only-if-committed", 0).unwrap();
            assert!(tx.conn().execute("INSERT INTO no_such_table VALUES (1)", db::params![]).is_err());
            // SQLite keeps the transaction usable; PostgreSQL has discarded it, and says so.
            match store.dialect() {
                Dialect::Sqlite => tx.commit().unwrap(),
                Dialect::Postgres => assert!(matches!(tx.commit(), Err(StoreError::Aborted))),
            }
            drop(guard);
            let exists = store.read().unwrap().user_exists("kept-only-if-committed").unwrap();
            assert_eq!(exists, store.dialect() == Dialect::Sqlite);
        }
    }

    engine_test! {
        fn a_reopened_store_keeps_what_was_committed(store) {
            let mut guard = store.lock().unwrap();
            let tx = guard.begin().unwrap();
            tx.ensure_user("durable", 0).unwrap();
            tx.commit().unwrap();
            drop(guard);
            store.reopen();
            assert!(store.read().unwrap().user_exists("durable").unwrap());
        }
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        let at = Location::Postgres("postgres://mimi:secret@db:5432/mimi".into());
        assert_eq!(at.to_string(), "postgres://mimi:***@db:5432/mimi");
        let at = Location::Postgres("postgres://mimi@db/mimi".into());
        assert_eq!(at.to_string(), "postgres://mimi@db/mimi");
    }
}
