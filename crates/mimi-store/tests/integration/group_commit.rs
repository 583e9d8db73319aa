//! `StoreGuard::run_batch`: one commit for many jobs, each isolated in its own savepoint.

use crate::open;

#[test]
fn failing_job_is_rolled_back_alone_and_the_others_commit() {
    let (_dir, store) = open();
    let mut jobs: Vec<(String, bool)> = (0..20).map(|i| (format!("u{i}"), i != 7)).collect();
    store
        .lock()
        .unwrap()
        .run_batch(&mut jobs, |(name, ok), tx| {
            tx.ensure_user(name, 0).unwrap();
            *ok
        })
        .unwrap();
    let reader = store.read().unwrap();
    for i in 0..20 {
        assert_eq!(
            reader.user_exists(&format!("u{i}")).unwrap(),
            i != 7,
            "u{i}"
        );
    }
}

#[test]
fn reads_do_not_see_a_batch_until_it_commits_and_cannot_write() {
    let (_dir, store) = open();
    let mut guard = store.lock().unwrap();
    let tx = guard.begin().unwrap();
    tx.ensure_user("pending", 0).unwrap();
    assert!(!store.read().unwrap().user_exists("pending").unwrap());
    tx.commit().unwrap();
    drop(guard);
    assert!(store.read().unwrap().user_exists("pending").unwrap());
    // Read connections refuse writes.
    let mut reader = store.read().unwrap();
    assert!(
        reader
            .begin()
            .and_then(|tx| tx.ensure_user("x", 0))
            .is_err()
    );
    assert!(!store.read().unwrap().user_exists("x").unwrap());
}

#[test]
fn commit_of_inbox_entries_calls_the_listener() {
    let (_dir, store) = open();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    store.set_inbox_listener(move || {
        c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    let mut guard = store.lock().unwrap();
    let tx = guard.begin().unwrap();
    tx.ensure_user("u", 0).unwrap();
    tx.commit().unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    let tx = guard.begin().unwrap();
    tx.deliver("mimi://a.example/d/u/1", "mimi://a.example/r/x", b"w", 0)
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A job rolled back to its savepoint does not count.
    let mut jobs = vec![()];
    guard
        .run_batch(&mut jobs, |_, tx| {
            tx.deliver("mimi://a.example/d/u/1", "mimi://a.example/r/x", b"w", 0)
                .unwrap();
            false
        })
        .unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}
