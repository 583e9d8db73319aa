//! KeyPackages uploaded by local clients, claimed at most once (draft-ietf-mimi-protocol-06
//! §5.1), and the KeyPackageRef routes a hub keeps to deliver Welcomes.

use crate::db::{Db, params};
use crate::{StoreError, StoreGuard, Tx};

/// Most stored KeyPackages of one client looked at per claim: a client keeps a few dozen, and
/// the bound keeps a client that uploaded many incompatible ones from making claims slow.
const MAX_CANDIDATES: i64 = 256;

/// The outcome of claiming a KeyPackage of one client for one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedKeyPackage {
    /// The client.
    pub device_uri: String,
    /// What the claim found.
    pub outcome: ClaimOutcome,
}

/// What a claim found for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// A one-time KeyPackage, now claimed (TLS-encoded).
    Fresh(Vec<u8>),
    /// The client's last-resort KeyPackage, handed out again because no fresh one fits.
    LastResort(Vec<u8>),
    /// The client has no unexpired KeyPackage left.
    Exhausted,
    /// The client has KeyPackages, but none the caller accepts.
    NothingCompatible,
}

impl ClaimOutcome {
    /// The KeyPackage handed out, if any.
    pub fn key_package(&self) -> Option<&[u8]> {
        match self {
            Self::Fresh(kp) | Self::LastResort(kp) => Some(kp),
            Self::Exhausted | Self::NothingCompatible => None,
        }
    }
}

impl Tx<'_> {
    /// Stores a KeyPackage of a local client, with its KeyPackageRef and the end of its
    /// lifetime (seconds since the UNIX epoch). A `last_resort` one replaces the client's
    /// earlier last-resort package, which stays findable by its reference (a Welcome for it may
    /// still come) but is no longer handed out.
    pub fn add_key_package(
        &self,
        device_uri: &str,
        user_name: &str,
        key_package: &[u8],
        kp_ref: &[u8],
        not_after: u64,
        last_resort: bool,
    ) -> Result<(), StoreError> {
        if last_resort {
            self.conn().execute(
                "UPDATE key_packages SET claimed_for_room = ''
                 WHERE device_uri = ?1 AND last_resort = 1 AND claimed_for_room IS NULL",
                params![device_uri],
            )?;
        }
        let inserted = self.conn().execute(
            "INSERT INTO key_packages
                 (device_uri, user_name, key_package, kp_ref, not_after, last_resort)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            params![
                device_uri,
                user_name,
                key_package,
                kp_ref,
                not_after.min(i64::MAX as u64) as i64,
                last_resort
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::Exists("key package".into()));
        }
        Ok(())
    }

    /// Claims, for each client of `user_name`, the oldest unexpired KeyPackage `fits` accepts:
    /// a fresh one is marked claimed for `room_uri` and never handed out again (draft §5.1);
    /// the last-resort one is used only when no fresh one fits, and is not consumed.
    pub fn claim_key_packages(
        &self,
        user_name: &str,
        room_uri: &str,
        now: u64,
        fits: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Vec<ClaimedKeyPackage>, StoreError> {
        let devices: Vec<String> = self.conn().query(
            "SELECT device_uri FROM clients WHERE user_name = ?1 ORDER BY device_uri",
            params![user_name],
            |r| r.get(0),
        )?;
        let mut out = Vec::new();
        for device in devices {
            let candidates: Vec<(i64, Vec<u8>, bool)> = self.conn().query(
                "SELECT id, key_package, last_resort FROM key_packages
                 WHERE device_uri = ?1 AND claimed_for_room IS NULL AND not_after > ?2
                 ORDER BY last_resort, id LIMIT ?3",
                params![device, now as i64, MAX_CANDIDATES],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let outcome = match candidates.iter().find(|(_, kp, _)| fits(kp)) {
                Some((_, kp, true)) => ClaimOutcome::LastResort(kp.clone()),
                Some((id, kp, false)) => {
                    self.conn().execute(
                        "UPDATE key_packages SET claimed_for_room = ?1 WHERE id = ?2",
                        params![room_uri, id],
                    )?;
                    ClaimOutcome::Fresh(kp.clone())
                }
                None if candidates.is_empty() => ClaimOutcome::Exhausted,
                None => ClaimOutcome::NothingCompatible,
            };
            out.push(ClaimedKeyPackage {
                device_uri: device,
                outcome,
            });
        }
        Ok(out)
    }

    /// Records that the KeyPackage `kp_ref` came from provider `domain` (hub side).
    pub fn add_welcome_route(
        &self,
        kp_ref: &[u8],
        domain: &str,
        now: u64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO welcome_routes (kp_ref, domain, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (kp_ref) DO UPDATE SET domain = excluded.domain,
                 created_at = excluded.created_at",
            params![kp_ref, domain, now as i64],
        )?;
        Ok(())
    }

    /// The local client whose KeyPackage has reference `kp_ref`.
    pub fn device_of_key_package(&self, kp_ref: &[u8]) -> Result<Option<String>, StoreError> {
        device_of_key_package(self.conn(), kp_ref)
    }

    /// The provider that supplied KeyPackage `kp_ref`, read inside this transaction.
    pub fn welcome_route(&self, kp_ref: &[u8]) -> Result<Option<String>, StoreError> {
        welcome_route(self.conn(), kp_ref)
    }
}

impl StoreGuard<'_> {
    /// The provider that supplied KeyPackage `kp_ref`, if the hub relayed it.
    pub fn welcome_route(&self, kp_ref: &[u8]) -> Result<Option<String>, StoreError> {
        welcome_route(self.db(), kp_ref)
    }

    /// The local client whose KeyPackage has reference `kp_ref`.
    pub fn device_of_key_package(&self, kp_ref: &[u8]) -> Result<Option<String>, StoreError> {
        device_of_key_package(self.db(), kp_ref)
    }

    /// How many unclaimed one-time KeyPackages a client has left (its last-resort one aside).
    pub fn unclaimed_key_packages(&self, device_uri: &str) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_one(
            "SELECT COUNT(*) FROM key_packages
             WHERE device_uri = ?1 AND claimed_for_room IS NULL AND last_resort = 0",
            params![device_uri],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }
}

fn welcome_route(db: &Db, kp_ref: &[u8]) -> Result<Option<String>, StoreError> {
    db.query_opt(
        "SELECT domain FROM welcome_routes WHERE kp_ref = ?1",
        params![kp_ref],
        |r| r.get(0),
    )
}

fn device_of_key_package(db: &Db, kp_ref: &[u8]) -> Result<Option<String>, StoreError> {
    db.query_opt(
        "SELECT device_uri FROM key_packages WHERE kp_ref = ?1",
        params![kp_ref],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine_test;

    const B1: &str = "mimi://b.example/d/bob/b1";

    /// Bob and his device B1.
    fn add_bob(tx: &Tx<'_>) {
        tx.ensure_user("bob", 0).unwrap();
        tx.add_client(
            &crate::Client {
                device_uri: B1.into(),
                user_name: "bob".into(),
                chain: b"[]".to_vec(),
            },
            &[1],
            0,
        )
        .unwrap();
    }

    engine_test! {
        fn the_last_resort_package_is_handed_out_again_only_once_the_fresh_ones_are_gone(store) {
            let mut guard = store.lock().unwrap();
            let tx = guard.begin().unwrap();
            add_bob(&tx);
            let all = |_: &[u8]| true;
            assert_eq!(
                tx.claim_key_packages("bob", "r", 10, &all).unwrap()[0].outcome,
                ClaimOutcome::Exhausted
            );
            tx.add_key_package(B1, "bob", b"last1", b"r1", 100, true)
                .unwrap();
            tx.add_key_package(B1, "bob", b"last2", b"r2", 100, true)
                .unwrap();
            tx.add_key_package(B1, "bob", b"fresh", b"r3", 100, false)
                .unwrap();
            let claim = |fits: &dyn Fn(&[u8]) -> bool| {
                tx.claim_key_packages("bob", "r", 10, fits).unwrap()[0]
                    .outcome
                    .clone()
            };
            assert_eq!(claim(&all), ClaimOutcome::Fresh(b"fresh".to_vec()));
            // Only the newer last-resort package is handed out, as often as asked.
            for _ in 0..3 {
                assert_eq!(claim(&all), ClaimOutcome::LastResort(b"last2".to_vec()));
            }
            // The superseded one still routes its Welcome.
            assert_eq!(
                tx.device_of_key_package(b"r1").unwrap().as_deref(),
                Some(B1)
            );
            assert_eq!(claim(&|_| false), ClaimOutcome::NothingCompatible);
            // Expired: nothing left at all.
            assert_eq!(
                tx.claim_key_packages("bob", "r", 100, &all).unwrap()[0].outcome,
                ClaimOutcome::Exhausted
            );
        }
    }

    engine_test! {
        fn a_claim_takes_the_oldest_package_that_fits_and_leaves_the_others(store) {
            let mut guard = store.lock().unwrap();
            let tx = guard.begin().unwrap();
            add_bob(&tx);
            tx.add_key_package(B1, "bob", b"suite-a", b"r1", 100, false)
                .unwrap();
            tx.add_key_package(B1, "bob", b"suite-b", b"r2", 100, false)
                .unwrap();
            let only_b = |kp: &[u8]| kp == b"suite-b";
            assert_eq!(
                tx.claim_key_packages("bob", "r", 10, &only_b).unwrap()[0].outcome,
                ClaimOutcome::Fresh(b"suite-b".to_vec())
            );
            assert_eq!(
                tx.claim_key_packages("bob", "r", 10, &only_b).unwrap()[0].outcome,
                ClaimOutcome::NothingCompatible
            );
            assert_eq!(
                tx.claim_key_packages("bob", "r", 10, &|_| true).unwrap()[0].outcome,
                ClaimOutcome::Fresh(b"suite-a".to_vec())
            );
        }
    }
}
