//! `StoreGuard::run_batch`: one commit for many jobs, each isolated in its own savepoint (or,
//! for jobs that can run again, without savepoints unless one fails).

use crate::open;

/// Runs 20 jobs, the eighth failing, and returns how often each ran.
fn batch_with_one_failure(repeatable: bool) -> Vec<usize> {
    let (_dir, store) = open();
    let mut jobs: Vec<(String, bool, usize)> =
        (0..20).map(|i| (format!("u{i}"), i != 7, 0)).collect();
    store
        .lock()
        .unwrap()
        .run_batch(
            &mut jobs,
            |_| repeatable,
            |(name, ok, runs), tx| {
                *runs += 1;
                tx.ensure_user(name, 0).unwrap();
                *ok
            },
        )
        .unwrap();
    let reader = store.read().unwrap();
    for i in 0..20 {
        assert_eq!(
            reader.user_exists(&format!("u{i}")).unwrap(),
            i != 7,
            "u{i}"
        );
    }
    jobs.iter().map(|(_, _, runs)| *runs).collect()
}

#[test]
fn failing_job_is_rolled_back_alone_and_the_others_commit() {
    assert_eq!(batch_with_one_failure(false), vec![1; 20]);
}

#[test]
fn repeatable_jobs_run_again_with_savepoints_when_one_fails() {
    // The first attempt stops at the failure and is rolled back whole; the second runs all.
    let runs = batch_with_one_failure(true);
    assert_eq!(&runs[..8], &[2; 8]);
    assert_eq!(&runs[8..], &[1; 12]);
}

#[test]
fn repeatable_jobs_that_succeed_run_once() {
    let (_dir, store) = open();
    let mut jobs: Vec<(String, usize)> = (0..5).map(|i| (format!("u{i}"), 0)).collect();
    store
        .lock()
        .unwrap()
        .run_batch(
            &mut jobs,
            |_| true,
            |(name, runs), tx| {
                *runs += 1;
                tx.ensure_user(name, 0).is_ok()
            },
        )
        .unwrap();
    assert!(jobs.iter().all(|(_, runs)| *runs == 1));
    let reader = store.read().unwrap();
    assert!(reader.user_exists("u4").unwrap());
}

#[test]
fn one_job_that_cannot_run_again_makes_the_whole_batch_use_savepoints() {
    let (_dir, store) = open();
    let mut jobs: Vec<(bool, bool, usize)> = vec![(true, true, 0), (false, false, 0)];
    store
        .lock()
        .unwrap()
        .run_batch(
            &mut jobs,
            |(repeatable, _, _)| *repeatable,
            |(_, ok, runs), tx| {
                *runs += 1;
                tx.ensure_user(if *ok { "kept" } else { "dropped" }, 0)
                    .unwrap();
                *ok
            },
        )
        .unwrap();
    assert_eq!((jobs[0].2, jobs[1].2), (1, 1));
    let reader = store.read().unwrap();
    assert!(reader.user_exists("kept").unwrap());
    assert!(!reader.user_exists("dropped").unwrap());
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
    // A job rolled back to its savepoint does not count, nor one whose first attempt
    // without savepoints was rolled back whole.
    let mut jobs = vec![()];
    for repeatable in [false, true] {
        guard
            .run_batch(
                &mut jobs,
                |_| repeatable,
                |_, tx| {
                    tx.deliver("mimi://a.example/d/u/1", "mimi://a.example/r/x", b"w", 0)
                        .unwrap();
                    false
                },
            )
            .unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
