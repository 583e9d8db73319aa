//! Telling every node of a cluster what changed: a PostgreSQL write transaction that added
//! inbox entries or queued fan-out sends a NOTIFY with its commit, and each node listens on a
//! connection of its own ([`Listening`]) to wake its inbox long polls and fan-out senders. On
//! SQLite there is one node, which its own commits wake (`Store::set_inbox_listener`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator as _;

use crate::StoreError;

/// The channel of new inbox entries.
const INBOX_CHANNEL: &str = "mimi_inbox";
/// The channel of new fan-out entries.
const OUTBOX_CHANNEL: &str = "mimi_outbox";
pub(crate) const NOTIFY_INBOX: &str = "NOTIFY mimi_inbox";
pub(crate) const NOTIFY_OUTBOX: &str = "NOTIFY mimi_outbox";

/// How often the listening thread looks up from waiting, to notice it should stop.
const POLL: Duration = Duration::from_millis(500);
/// The pause before connecting again after the server closed the listening connection.
const RECONNECT: Duration = Duration::from_secs(1);

/// What another node (or this one) committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Inbox entries were added.
    Inbox,
    /// Fan-out was queued.
    Outbox,
    /// The listening connection was lost and is back: anything may have changed meanwhile.
    Reconnected,
}

/// A thread listening for the cluster's changes; stops when dropped.
pub struct Listening {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listening {
    /// Listens on the PostgreSQL database at `url`, calling `on_change` on the listening
    /// thread for each change (it must be quick). Connects before returning, so a change
    /// committed after this returns is seen.
    pub fn start(
        url: &str,
        on_change: impl Fn(Change) + Send + 'static,
    ) -> Result<Self, StoreError> {
        let first = connect(url)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (url, stopping) = (url.to_owned(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("mimid-listen".into())
            .spawn(move || listen(first, &url, &stopping, &on_change))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the listening thread: {e}")))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn connect(url: &str) -> Result<postgres::Client, StoreError> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    client.batch_execute(&format!("LISTEN {INBOX_CHANNEL}; LISTEN {OUTBOX_CHANNEL}"))?;
    Ok(client)
}

fn listen(mut client: postgres::Client, url: &str, stop: &AtomicBool, on_change: &dyn Fn(Change)) {
    while !stop.load(Ordering::Relaxed) {
        let mut lost = false;
        {
            let mut notifications = client.notifications();
            let mut waiting = notifications.timeout_iter(POLL);
            loop {
                match waiting.next() {
                    Ok(Some(n)) => on_change(match n.channel() {
                        INBOX_CHANNEL => Change::Inbox,
                        _ => Change::Outbox,
                    }),
                    Ok(None) => break,
                    Err(_) => {
                        lost = true;
                        break;
                    }
                }
            }
        }
        if lost || client.is_closed() {
            // Connect again until the server is back; what was committed meanwhile is
            // announced as one `Reconnected`.
            loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(RECONNECT);
                if let Ok(fresh) = connect(url) {
                    client = fresh;
                    on_change(Change::Reconnected);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestStore;

    #[test]
    fn a_commit_on_one_connection_wakes_a_listener_on_another() {
        let store = TestStore::postgres();
        store.announce_changes();
        let crate::Location::Postgres(url) = store.location().clone() else {
            unreachable!()
        };
        let (seen, changes) = std::sync::mpsc::channel();
        let _listening = Listening::start(&url, move |change| {
            let _ = seen.send(change);
        })
        .unwrap();
        {
            let mut guard = store.lock().unwrap();
            let tx = guard.begin().unwrap();
            tx.enqueue_notify(&["b.example"], "mimi://a.example/r/x", b"body", 1)
                .unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(
            changes.recv_timeout(Duration::from_secs(10)).unwrap(),
            Change::Outbox
        );
        // A transaction rolled back announces nothing.
        {
            let mut guard = store.lock().unwrap();
            let tx = guard.begin().unwrap();
            tx.enqueue_notify(&["b.example"], "mimi://a.example/r/x", b"body", 1)
                .unwrap();
            drop(tx);
        }
        assert!(changes.recv_timeout(Duration::from_secs(1)).is_err());
    }

    #[test]
    fn a_store_that_does_not_announce_sends_nothing() {
        let store = TestStore::postgres();
        let crate::Location::Postgres(url) = store.location().clone() else {
            unreachable!()
        };
        let (seen, changes) = std::sync::mpsc::channel();
        let _listening = Listening::start(&url, move |change| {
            let _ = seen.send(change);
        })
        .unwrap();
        let mut guard = store.lock().unwrap();
        let tx = guard.begin().unwrap();
        tx.enqueue_notify(&["b.example"], "mimi://a.example/r/x", b"body", 1)
            .unwrap();
        tx.commit().unwrap();
        assert!(changes.recv_timeout(Duration::from_secs(1)).is_err());
    }
}
