//! Consent (draft-ietf-mimi-protocol-06 §5.7, §8): each local user's mode, what is known about
//! each (target, requester, room) scope, the KeyPackages a grant brought, and the log of
//! KeyPackages handed to each requester, which the claim limit reads.

use crate::db::{Db, params};
use crate::{StoreError, StoreGuard, Tx};

/// Who may fetch a local user's KeyPackages without an explicit grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsentMode {
    /// Anyone not explicitly denied (the default).
    #[default]
    Anyone,
    /// Only requesters the user granted consent to.
    Contacts,
}

impl ConsentMode {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anyone => "anyone",
            Self::Contacts => "contacts",
        }
    }

    /// The mode named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "anyone" => Some(Self::Anyone),
            "contacts" => Some(Self::Contacts),
            _ => None,
        }
    }
}

/// What is known about one consent scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentState {
    /// The requester asked; the target has not answered.
    Requested,
    /// The target consents.
    Granted,
    /// The target refused a request or denied preemptively.
    Denied,
    /// The target withdrew an earlier grant.
    Revoked,
}

impl ConsentState {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Granted => "granted",
            Self::Denied => "denied",
            Self::Revoked => "revoked",
        }
    }

    fn parse(name: &str) -> Result<Self, StoreError> {
        match name {
            "requested" => Ok(Self::Requested),
            "granted" => Ok(Self::Granted),
            "denied" => Ok(Self::Denied),
            "revoked" => Ok(Self::Revoked),
            other => Err(StoreError::NotFound(format!("consent state {other:?}"))),
        }
    }
}

/// One stored consent scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    /// The user whose consent it is (URI).
    pub target_uri: String,
    /// The user who would fetch the target's KeyPackages (URI).
    pub requester_uri: String,
    /// The one room it is for, or `None` for any room.
    pub room_uri: Option<String>,
    /// What is known.
    pub state: ConsentState,
    /// KeyPackages of the target that came with a grant and are not used yet.
    pub key_packages: u64,
    /// When it last changed, seconds since the UNIX epoch.
    pub updated_at: u64,
}

/// What the stored scopes say about a requester fetching a target's KeyPackages for a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentDecision {
    /// A grant covers the room and no denial does.
    Granted,
    /// A denial or revocation covers the room (it wins over a grant).
    Denied,
    /// Nothing but requests, or nothing at all.
    Unknown,
}

/// The room column: `''` stands for "any room", so the primary key covers both kinds.
fn room_key(room: Option<&str>) -> &str {
    room.unwrap_or("")
}

impl Tx<'_> {
    /// Sets the consent mode of local user `user_name`.
    pub fn set_consent_mode(&self, user_name: &str, mode: ConsentMode) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO consent_modes (user_name, mode) VALUES (?1, ?2)
             ON CONFLICT (user_name) DO UPDATE SET mode = excluded.mode",
            params![user_name, mode.as_str()],
        )?;
        Ok(())
    }

    /// The consent mode of local user `user_name`, read inside this transaction.
    pub fn consent_mode(&self, user_name: &str) -> Result<ConsentMode, StoreError> {
        consent_mode(self.conn(), user_name)
    }

    /// Records `state` for the scope, replacing what was known. A grant's KeyPackages are
    /// given separately ([`Tx::add_granted_key_packages`]); any other state drops those kept.
    pub fn set_consent(
        &self,
        target_uri: &str,
        requester_uri: &str,
        room: Option<&str>,
        state: ConsentState,
        now: u64,
    ) -> Result<(), StoreError> {
        let room = room_key(room);
        self.conn().execute(
            "INSERT INTO consent (target_uri, requester_uri, room_uri, state, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (target_uri, requester_uri, room_uri)
             DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            params![target_uri, requester_uri, room, state.as_str(), now as i64],
        )?;
        if state != ConsentState::Granted {
            self.conn().execute(
                "DELETE FROM consent_key_packages
                 WHERE target_uri = ?1 AND requester_uri = ?2 AND room_uri = ?3",
                params![target_uri, requester_uri, room],
            )?;
        }
        Ok(())
    }

    /// Records a request unless the scope already has an answer (a repeated request neither
    /// undoes a grant nor lifts a denial). Returns whether anything changed.
    pub fn record_consent_request(
        &self,
        target_uri: &str,
        requester_uri: &str,
        room: Option<&str>,
        now: u64,
    ) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT INTO consent (target_uri, requester_uri, room_uri, state, updated_at)
             VALUES (?1, ?2, ?3, 'requested', ?4) ON CONFLICT DO NOTHING",
            params![target_uri, requester_uri, room_key(room), now as i64],
        )?;
        Ok(n > 0)
    }

    /// Withdraws a pending request with exactly this scope; answered scopes and scopes without
    /// a request are left alone (draft §5.7: an unmatched cancel changes nothing). Returns
    /// whether a request was withdrawn.
    pub fn cancel_consent_request(
        &self,
        target_uri: &str,
        requester_uri: &str,
        room: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM consent WHERE target_uri = ?1 AND requester_uri = ?2
                 AND room_uri = ?3 AND state = 'requested'",
            params![target_uri, requester_uri, room_key(room)],
        )?;
        Ok(n > 0)
    }

    /// Keeps KeyPackages of the target that came with a grant for the scope.
    pub fn add_granted_key_packages(
        &self,
        target_uri: &str,
        requester_uri: &str,
        room: Option<&str>,
        key_packages: &[Vec<u8>],
        now: u64,
    ) -> Result<(), StoreError> {
        for kp in key_packages {
            self.conn().execute(
                "INSERT INTO consent_key_packages (target_uri, requester_uri, room_uri,
                     key_package, received_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![target_uri, requester_uri, room_key(room), kp, now as i64],
            )?;
        }
        Ok(())
    }

    /// Takes (removes and returns, oldest first) the KeyPackages of `target_uri` that a grant
    /// to `requester_uri` carried for `room_uri` or for any room, keeping those `fits` refuses.
    pub fn take_granted_key_packages(
        &self,
        target_uri: &str,
        requester_uri: &str,
        room_uri: &str,
        fits: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = self.conn().query(
            "SELECT id, key_package FROM consent_key_packages
             WHERE target_uri = ?1 AND requester_uri = ?2 AND room_uri IN ('', ?3)
             ORDER BY id",
            params![target_uri, requester_uri, room_uri],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut taken = Vec::new();
        for (id, kp) in rows {
            if fits(&kp) {
                self.conn().execute(
                    "DELETE FROM consent_key_packages WHERE id = ?1",
                    params![id],
                )?;
                taken.push(kp);
            }
        }
        Ok(taken)
    }

    /// What the stored scopes say about `requester_uri` fetching `target_uri`'s KeyPackages for
    /// `room_uri`, read inside this transaction.
    pub fn consent_decision(
        &self,
        target_uri: &str,
        requester_uri: &str,
        room_uri: &str,
    ) -> Result<ConsentDecision, StoreError> {
        let states = self.conn().query(
            "SELECT state FROM consent WHERE target_uri = ?1 AND requester_uri = ?2
                 AND room_uri IN ('', ?3)",
            params![target_uri, requester_uri, room_uri],
            |r| r.get::<String>(0),
        )?;
        let mut decision = ConsentDecision::Unknown;
        for state in states {
            match ConsentState::parse(&state)? {
                ConsentState::Denied | ConsentState::Revoked => return Ok(ConsentDecision::Denied),
                ConsentState::Granted => decision = ConsentDecision::Granted,
                ConsentState::Requested => {}
            }
        }
        Ok(decision)
    }

    /// KeyPackages of `target_uri` handed to `requester_uri` at or after `since`.
    pub fn key_packages_handed_out_since(
        &self,
        requester_uri: &str,
        target_uri: &str,
        since: u64,
    ) -> Result<u64, StoreError> {
        // PostgreSQL sums BIGINTs as NUMERIC.
        let n: i64 = self.conn().query_one(
            "SELECT COALESCE(CAST(SUM(count) AS BIGINT), 0) FROM key_package_claims
             WHERE requester_uri = ?1 AND target_uri = ?2 AND claimed_at >= ?3",
            params![requester_uri, target_uri, since as i64],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Logs that `count` KeyPackages of `target_uri` went to `requester_uri` at `now`, and
    /// forgets entries older than `forget_before`, which no limit reads any more.
    pub fn log_key_packages_handed_out(
        &self,
        requester_uri: &str,
        target_uri: &str,
        count: u64,
        now: u64,
        forget_before: u64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM key_package_claims WHERE claimed_at < ?1",
            params![forget_before as i64],
        )?;
        if count > 0 {
            self.conn().execute(
                "INSERT INTO key_package_claims (requester_uri, target_uri, count, claimed_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![requester_uri, target_uri, count as i64, now as i64],
            )?;
        }
        Ok(())
    }
}

impl StoreGuard<'_> {
    /// The consent mode of local user `user_name`.
    pub fn consent_mode(&self, user_name: &str) -> Result<ConsentMode, StoreError> {
        consent_mode(&self.conn, user_name)
    }

    /// Every stored scope in which `user_uri` is the target or the requester, newest first.
    pub fn consents_of(&self, user_uri: &str) -> Result<Vec<ConsentRecord>, StoreError> {
        let rows = self.conn.query(
            "SELECT c.target_uri, c.requester_uri, c.room_uri, c.state, c.updated_at,
                 (SELECT COUNT(*) FROM consent_key_packages k WHERE k.target_uri = c.target_uri
                     AND k.requester_uri = c.requester_uri AND k.room_uri = c.room_uri)
             FROM consent c WHERE c.target_uri = ?1 OR c.requester_uri = ?1
             ORDER BY c.updated_at DESC, c.target_uri, c.requester_uri, c.room_uri",
            params![user_uri],
            |r| {
                Ok((
                    r.get::<String>(0)?,
                    r.get::<String>(1)?,
                    r.get::<String>(2)?,
                    r.get::<String>(3)?,
                    r.get::<i64>(4)?,
                    r.get::<i64>(5)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for (target_uri, requester_uri, room, state, updated_at, kps) in rows {
            out.push(ConsentRecord {
                target_uri,
                requester_uri,
                room_uri: (!room.is_empty()).then_some(room),
                state: ConsentState::parse(&state)?,
                key_packages: kps as u64,
                updated_at: updated_at as u64,
            });
        }
        Ok(out)
    }
}

fn consent_mode(db: &Db, user_name: &str) -> Result<ConsentMode, StoreError> {
    let mode: Option<String> = db.query_opt(
        "SELECT mode FROM consent_modes WHERE user_name = ?1",
        params![user_name],
        |r| r.get(0),
    )?;
    match mode {
        None => Ok(ConsentMode::Anyone),
        Some(m) => ConsentMode::parse(&m)
            .ok_or_else(|| StoreError::NotFound(format!("consent mode {m:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, engine_test};

    const BOB: &str = "mimi://b.example/u/bob";
    const AL: &str = "mimi://a.example/u/al";
    const ROOM: &str = "mimi://a.example/r/x";

    fn with_tx<T>(store: &Store, f: impl FnOnce(&Tx<'_>) -> T) -> T {
        let mut guard = store.lock().unwrap();
        let tx = guard.begin().unwrap();
        let out = f(&tx);
        tx.commit().unwrap();
        out
    }

    engine_test! {
        fn granted_key_packages_are_taken_once_for_their_room_or_any(store) {
            with_tx(store, |tx| {
                tx.add_granted_key_packages(BOB, AL, Some(ROOM), &[b"for-x".to_vec()], 1)
                    .unwrap();
                tx.add_granted_key_packages(BOB, AL, None, &[b"any".to_vec(), b"odd".to_vec()], 2)
                    .unwrap();
                let cy = "mimi://c.example/u/cy";
                tx.add_granted_key_packages(BOB, cy, None, &[b"cy".to_vec()], 3)
                    .unwrap();
            });
            let fits = |kp: &[u8]| kp != b"odd";
            let other_room = with_tx(store, |tx| {
                tx.take_granted_key_packages(BOB, AL, "mimi://a.example/r/y", &fits)
                    .unwrap()
            });
            assert_eq!(other_room, vec![b"any".to_vec()]);
            let this_room = with_tx(store, |tx| {
                tx.take_granted_key_packages(BOB, AL, ROOM, &fits).unwrap()
            });
            assert_eq!(this_room, vec![b"for-x".to_vec()], "taken once");
            let again = with_tx(store, |tx| {
                tx.take_granted_key_packages(BOB, AL, ROOM, &|_| true)
                    .unwrap()
            });
            assert_eq!(again, vec![b"odd".to_vec()], "what did not fit stayed");
        }
    }

    engine_test! {
        fn the_mode_is_anyone_until_set(store) {
            assert_eq!(
                store.read().unwrap().consent_mode("bob").unwrap(),
                ConsentMode::Anyone
            );
            with_tx(store, |tx| {
                tx.set_consent_mode("bob", ConsentMode::Contacts).unwrap()
            });
            assert_eq!(
                store.read().unwrap().consent_mode("bob").unwrap(),
                ConsentMode::Contacts
            );
            with_tx(store, |tx| {
                tx.set_consent_mode("bob", ConsentMode::Anyone).unwrap()
            });
            assert_eq!(
                store.read().unwrap().consent_mode("bob").unwrap(),
                ConsentMode::Anyone
            );
        }
    }

    engine_test! {
        fn a_denial_wins_over_a_grant_and_a_room_grant_covers_only_its_room(store) {
            with_tx(store, |tx| {
                assert_eq!(
                    tx.consent_decision(BOB, AL, ROOM).unwrap(),
                    ConsentDecision::Unknown
                );
                tx.set_consent(BOB, AL, Some(ROOM), ConsentState::Granted, 1)
                    .unwrap();
                assert_eq!(
                    tx.consent_decision(BOB, AL, ROOM).unwrap(),
                    ConsentDecision::Granted
                );
                assert_eq!(
                    tx.consent_decision(BOB, AL, "mimi://a.example/r/y")
                        .unwrap(),
                    ConsentDecision::Unknown
                );
                tx.set_consent(BOB, AL, None, ConsentState::Revoked, 2)
                    .unwrap();
                assert_eq!(
                    tx.consent_decision(BOB, AL, ROOM).unwrap(),
                    ConsentDecision::Denied
                );
            });
        }
    }

    engine_test! {
        fn a_request_neither_undoes_an_answer_and_a_cancel_removes_only_a_pending_request(store) {
            with_tx(store, |tx| {
                assert!(tx.record_consent_request(BOB, AL, None, 1).unwrap());
                assert!(!tx.record_consent_request(BOB, AL, None, 2).unwrap());
                assert!(tx.cancel_consent_request(BOB, AL, None).unwrap());
                assert!(!tx.cancel_consent_request(BOB, AL, None).unwrap());
                tx.set_consent(BOB, AL, None, ConsentState::Granted, 3)
                    .unwrap();
                assert!(!tx.record_consent_request(BOB, AL, None, 4).unwrap());
                assert!(!tx.cancel_consent_request(BOB, AL, None).unwrap());
                assert_eq!(
                    tx.consent_decision(BOB, AL, ROOM).unwrap(),
                    ConsentDecision::Granted
                );
            });
        }
    }

    engine_test! {
        fn granted_key_packages_are_listed_and_dropped_with_the_grant(store) {
            with_tx(store, |tx| {
                tx.set_consent(BOB, AL, None, ConsentState::Granted, 1)
                    .unwrap();
                tx.add_granted_key_packages(BOB, AL, None, &[vec![1], vec![2]], 1)
                    .unwrap();
            });
            let list = store.read().unwrap().consents_of(AL).unwrap();
            assert_eq!(list.len(), 1);
            assert_eq!(
                (list[0].state, list[0].key_packages),
                (ConsentState::Granted, 2)
            );
            assert_eq!(list[0].room_uri, None);
            with_tx(store, |tx| {
                tx.set_consent(BOB, AL, None, ConsentState::Revoked, 2)
                    .unwrap()
            });
            let list = store.read().unwrap().consents_of(BOB).unwrap();
            assert_eq!(
                (list[0].state, list[0].key_packages),
                (ConsentState::Revoked, 0)
            );
        }
    }

    engine_test! {
        fn handed_out_key_packages_count_within_the_window_and_old_entries_are_forgotten(store) {
            with_tx(store, |tx| {
                tx.log_key_packages_handed_out(AL, BOB, 2, 100, 0).unwrap();
                tx.log_key_packages_handed_out(AL, BOB, 3, 200, 0).unwrap();
                tx.log_key_packages_handed_out("mimi://c.example/u/cy", BOB, 7, 200, 0)
                    .unwrap();
                assert_eq!(tx.key_packages_handed_out_since(AL, BOB, 0).unwrap(), 5);
                assert_eq!(tx.key_packages_handed_out_since(AL, BOB, 150).unwrap(), 3);
                // Nothing handed out, but the old entry goes.
                tx.log_key_packages_handed_out(AL, BOB, 0, 300, 150)
                    .unwrap();
                assert_eq!(tx.key_packages_handed_out_since(AL, BOB, 0).unwrap(), 3);
            });
        }
    }
}
