//! Ratchet trees a hub publishes at a URL (`RatchetTreeOption::httpsUri`, IN-SERVER-11) instead
//! of copying them into every Welcome it fans out: stored once per room and epoch, kept for a
//! while and then collected.

use crate::db::params;
use crate::{StoreError, StoreGuard, Tx};

/// A published ratchet tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTree {
    /// The TLS-encoded tree, length prefix included (IN-PROTO-9).
    pub tree: Vec<u8>,
    /// The provider domains the Welcome for this epoch was routed to.
    pub readers: Vec<String>,
    /// When it was stored, seconds since the UNIX epoch.
    pub created_at: u64,
}

impl Tx<'_> {
    /// Stores the tree of `room_uri` at `epoch` (replacing one stored for the same epoch).
    pub fn put_room_tree(
        &self,
        room_uri: &str,
        epoch: u64,
        tree: &[u8],
        readers: &[String],
        now: u64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO room_trees (room_uri, epoch, tree, readers, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (room_uri, epoch) DO UPDATE SET tree = excluded.tree,
                 readers = excluded.readers, created_at = excluded.created_at",
            params![room_uri, epoch as i64, tree, readers.join("\n"), now as i64],
        )?;
        Ok(())
    }

    /// Drops the trees of `room_uri` beyond its `keep` newest epochs, and every room's trees
    /// stored before `created_before`. Returns how many were dropped.
    pub fn prune_room_trees(
        &self,
        room_uri: &str,
        keep: usize,
        created_before: u64,
    ) -> Result<usize, StoreError> {
        let beyond = self.conn().execute(
            "DELETE FROM room_trees WHERE room_uri = ?1 AND epoch NOT IN
             (SELECT epoch FROM room_trees WHERE room_uri = ?1 ORDER BY epoch DESC LIMIT ?2)",
            params![room_uri, keep as i64],
        )?;
        let old = self.conn().execute(
            "DELETE FROM room_trees WHERE created_at < ?1",
            params![created_before as i64],
        )?;
        Ok(beyond + old)
    }
}

impl StoreGuard<'_> {
    /// The tree of `room_uri` at `epoch`, if it is still stored.
    pub fn room_tree(&self, room_uri: &str, epoch: u64) -> Result<Option<StoredTree>, StoreError> {
        self.conn.query_opt(
            "SELECT tree, readers, created_at FROM room_trees
             WHERE room_uri = ?1 AND epoch = ?2",
            params![room_uri, epoch as i64],
            |r| {
                let readers: String = r.get(1)?;
                Ok(StoredTree {
                    tree: r.get(0)?,
                    readers: readers
                        .lines()
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    created_at: r.get::<i64>(2)? as u64,
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::engine_test;

    const ROOM: &str = "mimi://a.example/r/big";

    engine_test! {
        fn trees_are_stored_per_epoch_and_pruned_by_count_and_age(store) {
            let readers = vec!["b.example".to_owned(), "c.example".to_owned()];
            {
                let mut g = store.lock().unwrap();
                let tx = g.begin().unwrap();
                for epoch in 1..=5 {
                    tx.put_room_tree(ROOM, epoch, &[epoch as u8; 3], &readers, 100 + epoch)
                        .unwrap();
                }
                tx.put_room_tree("mimi://a.example/r/old", 1, b"t", &[], 10)
                    .unwrap();
                // Keep the three newest epochs of ROOM, and nothing stored before 50.
                assert_eq!(tx.prune_room_trees(ROOM, 3, 50).unwrap(), 3);
                tx.commit().unwrap();
            }
            let g = store.read().unwrap();
            let got = g.room_tree(ROOM, 5).unwrap().unwrap();
            assert_eq!(got.tree, vec![5; 3]);
            assert_eq!(got.readers, readers);
            assert_eq!(got.created_at, 105);
            assert!(g.room_tree(ROOM, 3).unwrap().is_some());
            assert!(
                g.room_tree(ROOM, 2).unwrap().is_none(),
                "beyond the newest three"
            );
            assert!(g.room_tree(ROOM, 9).unwrap().is_none(), "never stored");
            assert!(
                g.room_tree("mimi://a.example/r/old", 1).unwrap().is_none(),
                "older than the retention"
            );
        }
    }

    engine_test! {
        fn storing_an_epoch_again_replaces_it_and_empty_readers_round_trip(store) {
            let mut g = store.lock().unwrap();
            let tx = g.begin().unwrap();
            tx.put_room_tree(ROOM, 7, b"first", &["b.example".into()], 1)
                .unwrap();
            tx.put_room_tree(ROOM, 7, b"second", &[], 2).unwrap();
            tx.commit().unwrap();
            let got = g.room_tree(ROOM, 7).unwrap().unwrap();
            assert_eq!(
                (got.tree.as_slice(), got.readers.len()),
                (&b"second"[..], 0)
            );
        }
    }
}
