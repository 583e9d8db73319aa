//! Several `mimid` nodes of one domain on one PostgreSQL database: which nodes there are and
//! where they listen (`cluster_nodes`), and leases (`leases`), each giving one node a resource
//! until it expires: a hosted room (its owner) or a peer's fan-out queue (its sender).
//!
//! Every change here runs in a write transaction, and PostgreSQL writers hold the store's one
//! write lock, so taking, renewing and checking leases never race. Each takeover gives the lease
//! a new `generation`: a node's work carries the generation it held, and the writes of a room
//! check it inside their own transaction ([`Tx::holds_lease`]), so a node that lost a lease (a
//! pause, a partition) cannot write over its successor's state. Times are the nodes' clocks, in
//! ms since the UNIX epoch: nodes must keep them in step (NTP), within a small part of a lease.

use crate::db::params;
use crate::{StoreError, StoreGuard, Tx};

/// A lease as [`Tx::take_lease`] found or left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The node holding it.
    pub node: String,
    /// Bumped at every takeover (a fencing token).
    pub generation: i64,
    /// When it lapses unless renewed, ms.
    pub expires_at_ms: i64,
}

/// A node of the cluster, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// Its name (`cluster.node`).
    pub node: String,
    /// Where the other nodes reach it (`host:port` of its listener).
    pub address: String,
    /// When it last renewed its leases, ms.
    pub seen_at_ms: i64,
}

impl Tx<'_> {
    /// Records that `node` is alive and listens at `address`.
    pub fn heartbeat(&self, node: &str, address: &str, now_ms: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO cluster_nodes (node, address, seen_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (node) DO UPDATE SET address = excluded.address,
                                             seen_at_ms = excluded.seen_at_ms",
            params![node, address, now_ms],
        )?;
        Ok(())
    }

    /// Gives `resource` to `node` until `now_ms + ttl_ms` if it is free, lapsed, or already
    /// `node`'s (then only extended); returns who holds it afterwards.
    pub fn take_lease(
        &self,
        resource: &str,
        node: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Lease, StoreError> {
        self.conn().execute(
            "INSERT INTO leases (resource, node, generation, expires_at_ms)
             VALUES (?1, ?2, 1, ?4)
             ON CONFLICT (resource) DO UPDATE SET
                 generation = CASE WHEN leases.node = excluded.node
                                        AND leases.expires_at_ms >= ?3
                                   THEN leases.generation ELSE leases.generation + 1 END,
                 node = excluded.node,
                 expires_at_ms = excluded.expires_at_ms
             WHERE leases.node = excluded.node OR leases.expires_at_ms < ?3",
            params![resource, node, now_ms, now_ms + ttl_ms],
        )?;
        self.conn().query_one(
            "SELECT node, generation, expires_at_ms FROM leases WHERE resource = ?1",
            params![resource],
            |r| {
                Ok(Lease {
                    node: r.get(0)?,
                    generation: r.get(1)?,
                    expires_at_ms: r.get(2)?,
                })
            },
        )
    }

    /// Extends every unexpired lease of `node` to `now_ms + ttl_ms`; returns the resources it
    /// still holds, with their generations.
    pub fn renew_leases(
        &self,
        node: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.conn().execute(
            "UPDATE leases SET expires_at_ms = ?3 WHERE node = ?1 AND expires_at_ms >= ?2",
            params![node, now_ms, now_ms + ttl_ms],
        )?;
        self.conn().query(
            "SELECT resource, generation FROM leases WHERE node = ?1 AND expires_at_ms >= ?2
             ORDER BY resource",
            params![node, now_ms],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Whether `node` holds `resource` at `generation`, unexpired: checked inside the
    /// transaction that writes on the lease's behalf (fencing).
    pub fn holds_lease(
        &self,
        resource: &str,
        node: &str,
        generation: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_opt(
                "SELECT 1 FROM leases WHERE resource = ?1 AND node = ?2 AND generation = ?3
                 AND expires_at_ms >= ?4",
                params![resource, node, generation, now_ms],
                |_| Ok(()),
            )?
            .is_some())
    }

    /// Gives up every lease of `node` (a clean shutdown), so others need not wait for expiry.
    pub fn release_leases(&self, node: &str) -> Result<u64, StoreError> {
        // Lapsed now rather than deleted: the next holder's generation still moves on.
        Ok(self.conn().execute(
            "UPDATE leases SET expires_at_ms = 0 WHERE node = ?1",
            params![node],
        )? as u64)
    }
}

impl StoreGuard<'_> {
    /// The node holding `resource`, if its lease has not lapsed at `now_ms`.
    pub fn lease_holder(&self, resource: &str, now_ms: i64) -> Result<Option<Lease>, StoreError> {
        self.conn.query_opt(
            "SELECT node, generation, expires_at_ms FROM leases
             WHERE resource = ?1 AND expires_at_ms >= ?2",
            params![resource, now_ms],
            |r| {
                Ok(Lease {
                    node: r.get(0)?,
                    generation: r.get(1)?,
                    expires_at_ms: r.get(2)?,
                })
            },
        )
    }

    /// Every node that reported itself, by name.
    pub fn cluster_nodes(&self) -> Result<Vec<ClusterNode>, StoreError> {
        self.conn.query(
            "SELECT node, address, seen_at_ms FROM cluster_nodes ORDER BY node",
            params![],
            |r| {
                Ok(ClusterNode {
                    node: r.get(0)?,
                    address: r.get(1)?,
                    seen_at_ms: r.get(2)?,
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine_test;

    fn take(store: &crate::Store, resource: &str, node: &str, now: i64) -> Lease {
        let mut guard = store.lock().unwrap();
        let tx = guard.begin().unwrap();
        let lease = tx.take_lease(resource, node, now, 1_000).unwrap();
        tx.commit().unwrap();
        lease
    }

    engine_test! {
        fn a_lease_is_one_nodes_until_it_lapses_and_each_takeover_fences_the_last_holder(store) {
            let first = take(store, "room:r", "n1", 10_000);
            assert_eq!((first.node.as_str(), first.generation), ("n1", 1));
            // Held: another node cannot take it; its holder extends it at the same generation.
            assert_eq!(take(store, "room:r", "n2", 10_500).node, "n1");
            let extended = take(store, "room:r", "n1", 10_600);
            assert_eq!((extended.generation, extended.expires_at_ms), (1, 11_600));
            // Lapsed: the next taker gets it at a new generation, and n1's writes are fenced.
            let second = take(store, "room:r", "n2", 11_601);
            assert_eq!((second.node.as_str(), second.generation), ("n2", 2));
            let mut guard = store.lock().unwrap();
            let tx = guard.begin().unwrap();
            assert!(!tx.holds_lease("room:r", "n1", 1, 11_700).unwrap());
            assert!(tx.holds_lease("room:r", "n2", 2, 11_700).unwrap());
            // n1 renewing finds nothing left to renew.
            assert!(tx.renew_leases("n1", 11_700, 1_000).unwrap().is_empty());
            assert_eq!(
                tx.renew_leases("n2", 11_700, 1_000).unwrap(),
                [("room:r".to_owned(), 2)]
            );
            tx.commit().unwrap();
            drop(guard);
            let holder = store.read().unwrap().lease_holder("room:r", 12_000).unwrap();
            assert_eq!(holder.map(|l| l.node), Some("n2".to_owned()));
        }
    }

    engine_test! {
        fn a_released_lease_goes_to_the_next_taker_at_once(store) {
            take(store, "peer:b.example", "n1", 1_000);
            let mut guard = store.lock().unwrap();
            let tx = guard.begin().unwrap();
            tx.heartbeat("n1", "127.0.0.1:1", 1_000).unwrap();
            tx.heartbeat("n1", "127.0.0.1:2", 1_100).unwrap();
            assert_eq!(tx.release_leases("n1").unwrap(), 1);
            tx.commit().unwrap();
            drop(guard);
            let next = take(store, "peer:b.example", "n2", 1_200);
            assert_eq!((next.node.as_str(), next.generation), ("n2", 2));
            let nodes = store.read().unwrap().cluster_nodes().unwrap();
            assert_eq!(nodes.len(), 1);
            assert_eq!((nodes[0].address.as_str(), nodes[0].seen_at_ms), ("127.0.0.1:2", 1_100));
        }
    }
}
