//! Knocks on hosted rooms (IN-LIFECYCLE-5): who asked to be let in, and when. A knock lasts
//! until its user is denied or becomes a participant.

use crate::db::params;
use crate::{StoreError, StoreGuard, Tx};

impl Tx<'_> {
    /// Records that `user_uri` knocked on `room_uri` at `now` (a repeated knock keeps the
    /// first time).
    pub fn add_knock(&self, room_uri: &str, user_uri: &str, now: u64) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO knocks (room_uri, user_uri, knocked_at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            params![room_uri, user_uri, now as i64],
        )?;
        Ok(())
    }

    /// Forgets `user_uri`'s knock on `room_uri`; returns whether there was one.
    pub fn delete_knock(&self, room_uri: &str, user_uri: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM knocks WHERE room_uri = ?1 AND user_uri = ?2",
            params![room_uri, user_uri],
        )?;
        Ok(n > 0)
    }
}

impl StoreGuard<'_> {
    /// The knocks on `room_uri`, oldest first, at most `limit`.
    pub fn knocks(&self, room_uri: &str, limit: usize) -> Result<Vec<(String, u64)>, StoreError> {
        self.conn.query(
            "SELECT user_uri, knocked_at FROM knocks WHERE room_uri = ?1
             ORDER BY knocked_at, user_uri LIMIT ?2",
            params![room_uri, limit as i64],
            |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)? as u64)),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::engine_test;

    engine_test! {
        fn knocks_are_kept_once_listed_oldest_first_and_deleted(store) {
            let room = "mimi://a.example/r/x";
            {
                let mut guard = store.lock().unwrap();
                let tx = guard.begin().unwrap();
                tx.add_knock(room, "mimi://b.example/u/bob", 20).unwrap();
                tx.add_knock(room, "mimi://c.example/u/cathy", 10).unwrap();
                tx.add_knock(room, "mimi://b.example/u/bob", 30).unwrap();
                tx.commit().unwrap();
            }
            let listed = store.read().unwrap().knocks(room, 10).unwrap();
            assert_eq!(
                listed,
                vec![
                    ("mimi://c.example/u/cathy".to_owned(), 10),
                    ("mimi://b.example/u/bob".to_owned(), 20)
                ]
            );
            {
                let mut guard = store.lock().unwrap();
                let tx = guard.begin().unwrap();
                assert!(tx.delete_knock(room, "mimi://b.example/u/bob").unwrap());
                assert!(!tx.delete_knock(room, "mimi://b.example/u/bob").unwrap());
                tx.commit().unwrap();
            }
            assert_eq!(store.read().unwrap().knocks(room, 10).unwrap().len(), 1);
        }
    }
}
