//! mimi-store tests through the public API: group commit and the mailbox behind client inboxes.

mod group_commit;
mod mailbox;

use mimi_store::Store;

/// A fresh store in a temporary directory (kept alive by the returned guard).
fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(&dir.path().join("test.sqlite")).expect("store opens");
    (dir, store)
}
