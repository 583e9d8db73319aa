//! User discovery (issue 12): identifiers our users claimed, the codes that prove them, and
//! the mapping records this provider answers lookups with.

use crate::db::params;
use crate::{StoreError, StoreGuard, Tx};

/// Wrong codes after which a claim must be made again.
pub const MAX_CODE_ATTEMPTS: i64 = 5;

/// What checking a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// Right code: the user now holds the identifier here; `superseded` are the users who
    /// held it before (a recycled number), whose records were dropped.
    Verified {
        /// Users whose earlier proof of the identifier no longer counts.
        superseded: Vec<String>,
    },
    /// Wrong code; the claim stays until it runs out of attempts.
    Wrong,
    /// No claim, an expired one, or one out of attempts: claim again.
    NoClaim,
}

impl Tx<'_> {
    /// Starts (or restarts) `user_name`'s claim of `identifier` with `code`, valid until
    /// `expires_at`; a proof already held stays until the new code is checked.
    pub fn start_claim(
        &self,
        user_name: &str,
        identifier: &str,
        code: &str,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO discovery_claims (user_name, identifier, code, expires_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_name, identifier) DO UPDATE
                 SET code = excluded.code, expires_at = excluded.expires_at, attempts = 0",
            params![user_name, identifier, code, expires_at as i64],
        )?;
        Ok(())
    }

    /// Checks `code` for `user_name`'s claim of `identifier` at `now`. A right code makes the
    /// user the identifier's holder here and drops every other user's proof of it, with the
    /// records this provider keeps for them (R10: a recycled number goes to its new holder, and
    /// only once verified).
    pub fn check_claim_code(
        &self,
        user_name: &str,
        identifier: &str,
        code: &str,
        now: u64,
        own_domain: &str,
    ) -> Result<CodeCheck, StoreError> {
        let claim: Option<(String, i64, i64)> = self.conn().query_opt(
            "SELECT code, expires_at, attempts FROM discovery_claims
             WHERE user_name = ?1 AND identifier = ?2",
            params![user_name, identifier],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let Some((expected, expires_at, attempts)) = claim else {
            return Ok(CodeCheck::NoClaim);
        };
        if expires_at <= now as i64 || attempts >= MAX_CODE_ATTEMPTS || expected.is_empty() {
            return Ok(CodeCheck::NoClaim);
        }
        if expected != code {
            self.conn().execute(
                "UPDATE discovery_claims SET attempts = attempts + 1
                 WHERE user_name = ?1 AND identifier = ?2",
                params![user_name, identifier],
            )?;
            return Ok(CodeCheck::Wrong);
        }
        let superseded: Vec<String> = self.conn().query(
            "SELECT user_name FROM discovery_claims
             WHERE identifier = ?1 AND user_name <> ?2 AND verified_at IS NOT NULL",
            params![identifier, user_name],
            |r| r.get(0),
        )?;
        self.conn().execute(
            "DELETE FROM discovery_claims WHERE identifier = ?1 AND user_name <> ?2
             AND verified_at IS NOT NULL",
            params![identifier, user_name],
        )?;
        if !superseded.is_empty() {
            // Our own record for the old holder goes; peers are told by the caller.
            self.remove_mapping(identifier, own_domain)?;
        }
        // The code is used up.
        self.conn().execute(
            "UPDATE discovery_claims SET verified_at = ?3, code = ''
             WHERE user_name = ?1 AND identifier = ?2",
            params![user_name, identifier, now as i64],
        )?;
        Ok(CodeCheck::Verified { superseded })
    }

    /// Forgets `user_name`'s claim or proof of `identifier`; returns whether there was one.
    pub fn drop_claim(&self, user_name: &str, identifier: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM discovery_claims WHERE user_name = ?1 AND identifier = ?2",
            params![user_name, identifier],
        )?;
        Ok(n > 0)
    }

    /// Keeps a mapping record for lookups, unless one with the same or a higher sequence number
    /// for the same identifier and provider is kept already; returns whether it was kept.
    pub fn put_mapping(
        &self,
        identifier: &str,
        provider: &str,
        sequence: u64,
        not_after: u64,
        record: &[u8],
        received_from: &str,
    ) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT INTO discovery_mappings
                 (identifier, provider, sequence, not_after, record, received_from)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (identifier, provider) DO UPDATE
                 SET sequence = excluded.sequence, not_after = excluded.not_after,
                     record = excluded.record, received_from = excluded.received_from
                 WHERE excluded.sequence > discovery_mappings.sequence",
            params![
                identifier,
                provider,
                sequence as i64,
                not_after as i64,
                record,
                received_from
            ],
        )?;
        Ok(n > 0)
    }

    /// Drops the record `provider` published for `identifier`; returns whether there was one.
    pub fn remove_mapping(&self, identifier: &str, provider: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM discovery_mappings WHERE identifier = ?1 AND provider = ?2",
            params![identifier, provider],
        )?;
        Ok(n > 0)
    }

    /// Drops records past their validity at `now`; returns how many.
    pub fn expire_mappings(&self, now: u64) -> Result<usize, StoreError> {
        self.conn().execute(
            "DELETE FROM discovery_mappings WHERE not_after <= ?1",
            params![now as i64],
        )
    }
}

/// What redeeming a token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redemption {
    /// First use: the lookup is paid for.
    Redeemed,
    /// The nonce was redeemed before.
    Replayed,
    /// The issuer's tokens for the day are used up here.
    OverIssuerLimit,
}

impl Tx<'_> {
    /// Counts up to `n` tokens issued to `user_name` on `day`, as many as keep the day's total
    /// within `limit`; returns how many it counted (0 when the allowance is used up).
    pub fn take_token_allowance(
        &self,
        user_name: &str,
        day: u64,
        n: u32,
        limit: u32,
    ) -> Result<u32, StoreError> {
        let used: i64 = self.conn().query_one(
            "SELECT COALESCE((SELECT count FROM token_issuance
                 WHERE user_name = ?1 AND day = ?2), 0)",
            params![user_name, day as i64],
            |r| r.get(0),
        )?;
        let left = (i64::from(limit) - used).max(0);
        let granted = i64::from(n).min(left);
        if granted == 0 {
            return Ok(0);
        }
        // The table's name says which `count` is the kept one (PostgreSQL would not guess).
        self.conn().execute(
            "INSERT INTO token_issuance (user_name, day, count) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_name, day)
                 DO UPDATE SET count = token_issuance.count + excluded.count",
            params![user_name, day as i64, granted],
        )?;
        Ok(granted as u32)
    }

    /// Redeems the token with `nonce` from `issuer` on `day`, within `issuer_limit` per day.
    /// Nonces are kept two days, as long as a token is redeemable (one issuer key per day,
    /// its tokens good that day and the next; IN-DISC-7), so no token is redeemed twice.
    pub fn redeem_token(
        &self,
        nonce: &[u8],
        issuer: &str,
        day: u64,
        issuer_limit: u64,
    ) -> Result<Redemption, StoreError> {
        self.conn().execute(
            "DELETE FROM redeemed_tokens WHERE day <= ?1",
            params![day as i64 - 2],
        )?;
        let seen = self
            .conn()
            .query_opt(
                "SELECT 1 FROM redeemed_tokens WHERE nonce = ?1",
                params![nonce],
                |_| Ok(()),
            )?
            .is_some();
        if seen {
            return Ok(Redemption::Replayed);
        }
        let used: i64 = self.conn().query_one(
            "SELECT COALESCE((SELECT count FROM token_redemptions
                 WHERE issuer = ?1 AND day = ?2), 0)",
            params![issuer, day as i64],
            |r| r.get(0),
        )?;
        if used as u64 >= issuer_limit {
            return Ok(Redemption::OverIssuerLimit);
        }
        self.conn().execute(
            "INSERT INTO redeemed_tokens (nonce, issuer, day) VALUES (?1, ?2, ?3)",
            params![nonce, issuer, day as i64],
        )?;
        self.conn().execute(
            "INSERT INTO token_redemptions (issuer, day, count) VALUES (?1, ?2, 1)
             ON CONFLICT (issuer, day) DO UPDATE SET count = token_redemptions.count + 1",
            params![issuer, day as i64],
        )?;
        Ok(Redemption::Redeemed)
    }

    /// Keeps `der` as the token issuer key of `day` unless one is kept already; returns the
    /// key kept, so nodes of a cluster that made keys at once all use the first stored. Keys
    /// of days before `day - 1` go: no token of theirs is redeemable any more.
    pub fn keep_issuer_key(&self, day: u64, der: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.conn().execute(
            "DELETE FROM token_issuer_keys WHERE day < ?1",
            params![day.saturating_sub(1) as i64],
        )?;
        self.conn().execute(
            "INSERT INTO token_issuer_keys (day, der) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![day as i64, der],
        )?;
        self.conn().query_one(
            "SELECT der FROM token_issuer_keys WHERE day = ?1",
            params![day as i64],
            |r| r.get(0),
        )
    }
}

impl StoreGuard<'_> {
    /// The token issuer key kept for `day`, if any (see [`Tx::keep_issuer_key`]).
    pub fn issuer_key(&self, day: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn.query_opt(
            "SELECT der FROM token_issuer_keys WHERE day = ?1",
            params![day as i64],
            |r| r.get(0),
        )
    }

    /// Whether `user_name` proved it holds `identifier` here.
    pub fn holds_identifier(&self, user_name: &str, identifier: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_opt(
                "SELECT 1 FROM discovery_claims
                 WHERE user_name = ?1 AND identifier = ?2 AND verified_at IS NOT NULL",
                params![user_name, identifier],
                |_| Ok(()),
            )?
            .is_some())
    }

    /// The identifiers `user_name` claimed or proved: (identifier, proved).
    pub fn claims_of(&self, user_name: &str) -> Result<Vec<(String, bool)>, StoreError> {
        self.conn.query(
            "SELECT identifier, verified_at IS NOT NULL FROM discovery_claims
             WHERE user_name = ?1 ORDER BY identifier",
            params![user_name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// The records kept for `identifier` that are still valid at `now`, by provider.
    pub fn mappings_for(&self, identifier: &str, now: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.conn.query(
            "SELECT record FROM discovery_mappings
             WHERE identifier = ?1 AND not_after > ?2 ORDER BY provider",
            params![identifier, now as i64],
            |r| r.get(0),
        )
    }

    /// How many records are kept.
    pub fn mapping_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_one("SELECT COUNT(*) FROM discovery_mappings", params![], |r| {
                r.get::<i64>(0)
            })? as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, engine_test};

    const PHONE: &str = "tel:+15551234567";

    engine_test! {
        fn the_first_issuer_key_kept_for_a_day_wins_and_old_days_go(store) {
            assert_eq!(store.read().unwrap().issuer_key(10).unwrap(), None);
            assert_eq!(with_tx(store, |tx| tx.keep_issuer_key(10, b"first").unwrap()), b"first");
            // Another node made its own at the same time: it gets the first.
            assert_eq!(with_tx(store, |tx| tx.keep_issuer_key(10, b"second").unwrap()), b"first");
            assert_eq!(with_tx(store, |tx| tx.keep_issuer_key(11, b"next").unwrap()), b"next");
            assert_eq!(store.read().unwrap().issuer_key(10).unwrap().as_deref(), Some(&b"first"[..]));
            with_tx(store, |tx| tx.keep_issuer_key(12, b"third").unwrap());
            assert_eq!(store.read().unwrap().issuer_key(10).unwrap(), None, "before yesterday");
            assert!(store.read().unwrap().issuer_key(11).unwrap().is_some());
        }
    }

    fn with_tx<T>(store: &Store, f: impl FnOnce(&Tx<'_>) -> T) -> T {
        let mut guard = store.lock().unwrap();
        let tx = guard.begin().unwrap();
        let out = f(&tx);
        tx.commit().unwrap();
        out
    }

    engine_test! {
        fn a_claim_is_proved_by_its_code_once_within_its_time_and_attempts(store) {
            with_tx(store, |tx| {
                tx.start_claim("bob", PHONE, "123456", 100).unwrap()
            });
            let check = |code: &str, now| {
                with_tx(store, |tx| {
                    tx.check_claim_code("bob", PHONE, code, now, "b.example")
                        .unwrap()
                })
            };
            assert_eq!(check("000000", 50), CodeCheck::Wrong);
            assert!(
                !store
                    .read()
                    .unwrap()
                    .holds_identifier("bob", PHONE)
                    .unwrap()
            );
            assert_eq!(check("123456", 100), CodeCheck::NoClaim, "expired");
            assert_eq!(
                check("123456", 60),
                CodeCheck::Verified {
                    superseded: Vec::new()
                }
            );
            assert!(
                store
                    .read()
                    .unwrap()
                    .holds_identifier("bob", PHONE)
                    .unwrap()
            );
            assert_eq!(
                check("123456", 61),
                CodeCheck::NoClaim,
                "the code is used up"
            );
            // Too many wrong codes end a claim.
            with_tx(store, |tx| {
                tx.start_claim("cy", PHONE, "654321", 100).unwrap()
            });
            for _ in 0..MAX_CODE_ATTEMPTS {
                let wrong = with_tx(store, |tx| {
                    tx.check_claim_code("cy", PHONE, "1", 50, "b.example")
                        .unwrap()
                });
                assert_eq!(wrong, CodeCheck::Wrong);
            }
            let late = with_tx(store, |tx| {
                tx.check_claim_code("cy", PHONE, "654321", 50, "b.example")
                    .unwrap()
            });
            assert_eq!(late, CodeCheck::NoClaim);
            assert!(
                store
                    .read()
                    .unwrap()
                    .holds_identifier("bob", PHONE)
                    .unwrap()
            );
        }
    }

    engine_test! {
        fn a_recycled_number_goes_to_its_new_holder_only_once_verified(store) {
            with_tx(store, |tx| {
                tx.start_claim("bob", PHONE, "1", 100).unwrap();
                tx.check_claim_code("bob", PHONE, "1", 10, "b.example")
                    .unwrap();
                assert!(
                    tx.put_mapping(PHONE, "b.example", 1, 100, b"bob's", "b.example")
                        .unwrap()
                );
                tx.start_claim("dan", PHONE, "2", 100).unwrap();
            });
            // Claimed but not proved: Bob still holds it.
            assert!(
                store
                    .read()
                    .unwrap()
                    .holds_identifier("bob", PHONE)
                    .unwrap()
            );
            assert_eq!(
                store.read().unwrap().mappings_for(PHONE, 20).unwrap().len(),
                1
            );
            let done = with_tx(store, |tx| {
                tx.check_claim_code("dan", PHONE, "2", 20, "b.example")
                    .unwrap()
            });
            assert_eq!(
                done,
                CodeCheck::Verified {
                    superseded: vec!["bob".into()]
                }
            );
            assert!(
                !store
                    .read()
                    .unwrap()
                    .holds_identifier("bob", PHONE)
                    .unwrap()
            );
            assert!(
                store
                    .read()
                    .unwrap()
                    .mappings_for(PHONE, 20)
                    .unwrap()
                    .is_empty()
            );
        }
    }

    engine_test! {
        fn token_allowances_and_redemptions_are_counted_per_day(store) {
            let take = |n, day| {
                with_tx(store, |tx| {
                    tx.take_token_allowance("al", day, n, 3).unwrap()
                })
            };
            assert_eq!(take(2, 1), 2);
            assert_eq!(take(2, 1), 1, "only what is left of the day's 3");
            assert_eq!(take(1, 1), 0);
            assert_eq!(take(5, 2), 3, "a new day");
            let redeem = |nonce: &[u8], day| {
                with_tx(store, |tx| {
                    tx.redeem_token(nonce, "a.example", day, 2).unwrap()
                })
            };
            assert_eq!(redeem(b"n1", 1), Redemption::Redeemed);
            assert_eq!(redeem(b"n1", 1), Redemption::Replayed);
            assert_eq!(redeem(b"n2", 1), Redemption::Redeemed);
            assert_eq!(redeem(b"n3", 1), Redemption::OverIssuerLimit);
            assert_eq!(
                redeem(b"n1", 2),
                Redemption::Replayed,
                "kept into the next day"
            );
            assert_eq!(redeem(b"n3", 2), Redemption::Redeemed);
            assert_eq!(redeem(b"n4", 3), Redemption::Redeemed);
            assert_eq!(
                redeem(b"n3", 3),
                Redemption::Replayed,
                "a nonce is kept as long as its token is redeemable"
            );
            // Day 1's nonces are gone on day 3 (their tokens' key is no longer accepted).
            let kept: i64 = with_tx(store, |tx| {
                tx.conn()
                    .query_one("SELECT COUNT(*) FROM redeemed_tokens", params![], |r| r.get(0))
                    .unwrap()
            });
            assert_eq!(kept, 2);
        }
    }

    engine_test! {
        fn records_are_replaced_only_by_newer_ones_and_expire(store) {
            with_tx(store, |tx| {
                assert!(
                    tx.put_mapping(PHONE, "b.example", 2, 100, b"two", "b.example")
                        .unwrap()
                );
                assert!(
                    !tx.put_mapping(PHONE, "b.example", 1, 100, b"one", "b.example")
                        .unwrap()
                );
                assert!(
                    !tx.put_mapping(PHONE, "b.example", 2, 100, b"again", "b.example")
                        .unwrap()
                );
                assert!(
                    tx.put_mapping(PHONE, "c.example", 1, 50, b"c", "c.example")
                        .unwrap()
                );
            });
            let read = |now| store.read().unwrap().mappings_for(PHONE, now).unwrap();
            assert_eq!(read(10), vec![b"two".to_vec(), b"c".to_vec()]);
            assert_eq!(read(60), vec![b"two".to_vec()], "c's has expired");
            assert_eq!(with_tx(store, |tx| tx.expire_mappings(60).unwrap()), 1);
            assert!(with_tx(store, |tx| tx
                .remove_mapping(PHONE, "b.example")
                .unwrap()));
            assert!(read(10).is_empty());
            assert_eq!(store.read().unwrap().mapping_count().unwrap(), 0);
        }
    }
}
