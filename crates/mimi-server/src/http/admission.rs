//! Who may hold a connection: limits per source address (open connections and a token bucket
//! for new ones), the pool of handshakes in progress, the client pool and one pool per peer
//! provider, and the long polls. Each admission is a guard that gives its place back on drop.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Connections;
use crate::http::stats::Closed;

/// Size of the address table at which entries with nothing open and a full bucket are first
/// pruned; after a prune the next one waits until the table has doubled, so a table of busy
/// addresses is not scanned on every accept.
const ADDRESS_TABLE_SOFT_LIMIT: usize = 65_536;

/// The limits of every pool, shared by all connections of one server.
pub(crate) struct Admission {
    addresses: Mutex<AddressTable>,
    exempt: Vec<IpAddr>,
    max_per_address: u32,
    max_handshakes_per_address: u32,
    refill_per_sec: f64,
    burst: f64,
    handshakes: Arc<Semaphore>,
    clients: Arc<Semaphore>,
    /// One pool per peer domain that has connected; a domain needs a certificate under the
    /// trust anchor, so the map stays as small as the federation.
    peers: Mutex<HashMap<String, Arc<Semaphore>>>,
    max_per_peer: usize,
}

/// A source address as limited: an IPv4 address, or the /64 prefix of an IPv6 address (one
/// subscriber usually holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddressKey {
    /// An IPv4 address.
    V4(u32),
    /// The upper 64 bits of an IPv6 address.
    V6(u64),
}

#[derive(Debug, Default)]
struct AddressTable {
    entries: HashMap<AddressKey, AddressEntry>,
    /// The size at which the next prune runs.
    prune_at: usize,
}

#[derive(Debug)]
struct AddressEntry {
    open: u32,
    handshaking: u32,
    tokens: f64,
    refreshed: Instant,
}

/// One open connection counted against its source address (`None` for an exempt address).
pub(crate) struct AddressGuard(Option<(Arc<Admission>, AddressKey)>);

/// A place in the handshake pool, counted against the connection's address too.
pub(crate) struct HandshakePlace {
    _pool: OwnedSemaphorePermit,
    address: Option<(Arc<Admission>, AddressKey)>,
}

/// The place a connection holds in the client pool or its peer's pool after its handshake.
pub(crate) type Established = OwnedSemaphorePermit;

impl AddressKey {
    /// The key of `ip` (IPv4-mapped IPv6 addresses count as IPv4).
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.into()),
                None => Self::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

impl Admission {
    /// Limits from the config.
    pub(crate) fn new(config: &Connections) -> Arc<Self> {
        Arc::new(Self {
            addresses: Mutex::new(AddressTable {
                entries: HashMap::new(),
                prune_at: ADDRESS_TABLE_SOFT_LIMIT,
            }),
            exempt: config
                .exempt_addresses
                .iter()
                .map(IpAddr::to_canonical)
                .collect(),
            max_per_address: config.max_connections_per_address,
            max_handshakes_per_address: config.max_handshakes_per_address,
            refill_per_sec: f64::from(config.new_connections_per_address_per_sec),
            burst: f64::from(config.new_connection_burst_per_address),
            handshakes: Arc::new(Semaphore::new(config.max_handshakes)),
            clients: Arc::new(Semaphore::new(config.max_client_connections)),
            peers: Mutex::new(HashMap::new()),
            max_per_peer: config.max_connections_per_peer,
        })
    }

    /// Counts a new connection from `ip` at `now`, unless its address has too many open or
    /// opened too many too quickly.
    /// The key per-address limits count `ip` under, or `None` for an exempt address.
    pub(crate) fn limited_key(&self, ip: IpAddr) -> Option<AddressKey> {
        (!self.exempt.contains(&ip)).then(|| AddressKey::of(ip))
    }

    pub(crate) fn admit_address(
        self: &Arc<Self>,
        ip: IpAddr,
        now: Instant,
    ) -> Result<AddressGuard, Closed> {
        if self.exempt.contains(&ip) {
            return Ok(AddressGuard(None));
        }
        let key = AddressKey::of(ip);
        let mut table = lock(&self.addresses);
        if table.entries.len() >= table.prune_at && !table.entries.contains_key(&key) {
            let (burst, rate) = (self.burst, self.refill_per_sec);
            table
                .entries
                .retain(|_, e| e.open > 0 || refilled(e, now, rate, burst) < burst);
            table.prune_at = (table.entries.len() * 2).max(ADDRESS_TABLE_SOFT_LIMIT);
        }
        let entry = table.entries.entry(key).or_insert(AddressEntry {
            open: 0,
            handshaking: 0,
            tokens: self.burst,
            refreshed: now,
        });
        entry.tokens = refilled(entry, now, self.refill_per_sec, self.burst);
        // Callers' clocks are read before they take the lock; never move backwards.
        entry.refreshed = entry.refreshed.max(now);
        if entry.open >= self.max_per_address {
            return Err(Closed::AddressConnections);
        }
        if entry.tokens < 1.0 {
            return Err(Closed::AddressRate);
        }
        entry.tokens -= 1.0;
        entry.open += 1;
        Ok(AddressGuard(Some((self.clone(), key))))
    }

    /// A place in the handshake pool for a connection admitted as `address`, if one is free
    /// and the address has fewer than `max_handshakes_per_address` handshakes in progress: a
    /// few addresses cannot fill the pool with handshakes they never finish.
    pub(crate) fn admit_handshake(&self, address: &AddressGuard) -> Result<HandshakePlace, Closed> {
        let pool = self
            .handshakes
            .clone()
            .try_acquire_owned()
            .map_err(|_| Closed::HandshakePool)?;
        if let Some((admission, key)) = &address.0 {
            let mut table = lock(&admission.addresses);
            if let Some(entry) = table.entries.get_mut(key) {
                if entry.handshaking >= self.max_handshakes_per_address {
                    return Err(Closed::AddressHandshakes);
                }
                entry.handshaking += 1;
            }
        }
        Ok(HandshakePlace {
            _pool: pool,
            address: address.0.clone(),
        })
    }

    /// A place in the pool of a connection whose handshake named `peer` (a provider domain) or
    /// no one (a client), waiting at most `wait` for one to free up: a burst of connections
    /// slows down instead of failing, and a full pool still sheds what it cannot take in time.
    pub(crate) async fn admit_established(
        &self,
        peer: Option<&str>,
        wait: Duration,
    ) -> Result<Established, Closed> {
        let (pool, full) = match peer {
            None => (self.clients.clone(), Closed::ClientPool),
            Some(domain) => {
                let mut peers = lock(&self.peers);
                let pool = peers
                    .entry(domain.to_owned())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.max_per_peer)));
                (pool.clone(), Closed::PeerPool)
            }
        };
        match pool.clone().try_acquire_owned() {
            Ok(place) => Ok(place),
            Err(_) => match tokio::time::timeout(wait, pool.acquire_owned()).await {
                Ok(Ok(place)) => Ok(place),
                _ => Err(full),
            },
        }
    }

    #[cfg(test)]
    fn open_from(&self, ip: IpAddr) -> u32 {
        lock(&self.addresses)
            .entries
            .get(&AddressKey::of(ip))
            .map_or(0, |e| e.open)
    }
}

impl Drop for AddressGuard {
    fn drop(&mut self) {
        if let Some((admission, key)) = &self.0 {
            let mut table = lock(&admission.addresses);
            if let Some(entry) = table.entries.get_mut(key) {
                entry.open = entry.open.saturating_sub(1);
            }
        }
    }
}

impl Drop for HandshakePlace {
    fn drop(&mut self) {
        if let Some((admission, key)) = &self.address {
            let mut table = lock(&admission.addresses);
            if let Some(entry) = table.entries.get_mut(key) {
                entry.handshaking = entry.handshaking.saturating_sub(1);
            }
        }
    }
}

/// The long polls waiting at once (`connections.max_long_polls`, and
/// `connections.max_long_polls_per_device` per device): a waiting poll holds a connection that
/// does nothing, so it has its own bound, separate from the pools above, and one account cannot
/// take every place.
pub(crate) struct LongPolls {
    pool: Arc<Semaphore>,
    per_device: Arc<Mutex<HashMap<String, usize>>>,
    max_per_device: usize,
}

/// One waiting long poll; its places are given back on drop.
pub(crate) struct LongPollPlace {
    _pool: OwnedSemaphorePermit,
    per_device: Arc<Mutex<HashMap<String, usize>>>,
    device: String,
}

impl LongPolls {
    /// Room for `max` waiting polls, at most `max_per_device` of them for one device.
    pub(crate) fn new(max: usize, max_per_device: usize) -> Self {
        Self {
            pool: Arc::new(Semaphore::new(max)),
            per_device: Arc::new(Mutex::new(HashMap::new())),
            max_per_device,
        }
    }

    /// A place to wait in for `device`, if one is free.
    pub(crate) fn try_wait(&self, device: &str) -> Option<LongPollPlace> {
        let pool = self.pool.clone().try_acquire_owned().ok()?;
        let mut waiting = lock(&self.per_device);
        let count = waiting.entry(device.to_owned()).or_insert(0);
        if *count >= self.max_per_device {
            return None;
        }
        *count += 1;
        Some(LongPollPlace {
            _pool: pool,
            per_device: self.per_device.clone(),
            device: device.to_owned(),
        })
    }
}

impl Drop for LongPollPlace {
    fn drop(&mut self) {
        let mut waiting = lock(&self.per_device);
        if let Some(count) = waiting.get_mut(&self.device) {
            *count -= 1;
            if *count == 0 {
                waiting.remove(&self.device);
            }
        }
    }
}

fn refilled(entry: &AddressEntry, now: Instant, rate: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(entry.refreshed).as_secs_f64();
    (entry.tokens + elapsed * rate).min(burst)
}

/// The tables hold plain counters; a panic elsewhere cannot leave them inconsistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(per_address: u32, rate: u32, burst: u32) -> Arc<Admission> {
        Admission::new(&Connections {
            max_connections_per_address: per_address,
            new_connections_per_address_per_sec: rate,
            new_connection_burst_per_address: burst,
            max_handshakes: 2,
            max_client_connections: 1,
            max_connections_per_peer: 1,
            ..Connections::default()
        })
    }

    #[test]
    fn an_address_may_hold_its_share_and_no_more_and_others_are_unaffected() {
        let admission = limits(3, 1000, 1000);
        let (flooder, other) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let now = Instant::now();
        let held: Vec<_> = (0..3)
            .map(|_| admission.admit_address(flooder, now).unwrap())
            .collect();
        assert_eq!(
            admission.admit_address(flooder, now).err(),
            Some(Closed::AddressConnections)
        );
        assert!(admission.admit_address(other, now).is_ok());
        drop(held);
        assert_eq!(admission.open_from(flooder), 0);
        assert!(admission.admit_address(flooder, now).is_ok());
    }

    #[test]
    fn new_connections_are_limited_by_a_token_bucket_per_address() {
        let admission = limits(1000, 2, 4);
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..4 {
            drop(admission.admit_address(ip, now).unwrap());
        }
        assert_eq!(
            admission.admit_address(ip, now).err(),
            Some(Closed::AddressRate)
        );
        // The same /64 shares the bucket; half a second later one token is back.
        let neighbour: IpAddr = "2001:db8::ffff".parse().unwrap();
        assert_eq!(
            admission.admit_address(neighbour, now).err(),
            Some(Closed::AddressRate)
        );
        let later = now + Duration::from_millis(500);
        assert!(admission.admit_address(neighbour, later).is_ok());
        assert_eq!(
            admission.admit_address(ip, later).err(),
            Some(Closed::AddressRate)
        );
    }

    #[test]
    fn one_address_holds_at_most_its_share_of_handshakes() {
        let admission = Admission::new(&Connections {
            max_handshakes_per_address: 2,
            ..Connections::default()
        });
        let now = Instant::now();
        let flooder: IpAddr = "192.0.2.1".parse().unwrap();
        let conns: Vec<_> = (0..3)
            .map(|_| admission.admit_address(flooder, now).unwrap())
            .collect();
        let first = admission.admit_handshake(&conns[0]).unwrap();
        let _second = admission.admit_handshake(&conns[1]).unwrap();
        assert_eq!(
            admission.admit_handshake(&conns[2]).err(),
            Some(Closed::AddressHandshakes)
        );
        // Another address still gets a place, and a finished handshake frees one.
        let other = admission
            .admit_address("192.0.2.2".parse().unwrap(), now)
            .unwrap();
        assert!(admission.admit_handshake(&other).is_ok());
        drop(first);
        assert!(admission.admit_handshake(&conns[2]).is_ok());
    }

    #[test]
    fn an_exempt_address_is_not_limited() {
        let admission = Admission::new(&Connections {
            max_connections_per_address: 1,
            exempt_addresses: vec!["127.0.0.1".parse().unwrap()],
            ..Connections::default()
        });
        let now = Instant::now();
        let held: Vec<_> = (0..10)
            .map(|_| admission.admit_address("127.0.0.1".parse().unwrap(), now))
            .collect();
        assert!(held.iter().all(Result::is_ok));
        let _one = admission
            .admit_address("127.0.0.2".parse().unwrap(), now)
            .unwrap();
        assert!(
            admission
                .admit_address("127.0.0.2".parse().unwrap(), now)
                .is_err()
        );
    }

    #[test]
    fn one_device_holds_at_most_its_share_of_long_polls() {
        let polls = LongPolls::new(3, 2);
        let a1 = polls.try_wait("a").unwrap();
        let _a2 = polls.try_wait("a").unwrap();
        assert!(polls.try_wait("a").is_none());
        let _b = polls.try_wait("b").unwrap();
        // The pool of three is full now.
        assert!(polls.try_wait("c").is_none());
        drop(a1);
        assert!(polls.try_wait("c").is_some());
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4_and_v6_prefixes_do_not_collide_with_v4() {
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(AddressKey::of(v4), AddressKey::of(mapped));
        let v6: IpAddr = "::a01:203".parse().unwrap();
        assert_ne!(AddressKey::of(v4), AddressKey::of(v6));
    }

    #[tokio::test]
    async fn pools_are_separate_for_handshakes_clients_and_each_peer() {
        let admission = limits(10, 10, 10);
        let now = Instant::now();
        let a = admission
            .admit_address("192.0.2.1".parse().unwrap(), now)
            .unwrap();
        let b = admission
            .admit_address("192.0.2.2".parse().unwrap(), now)
            .unwrap();
        let h1 = admission.admit_handshake(&a).unwrap();
        let _h2 = admission.admit_handshake(&b).unwrap();
        assert_eq!(
            admission.admit_handshake(&a).err(),
            Some(Closed::HandshakePool)
        );
        drop(h1);
        assert!(admission.admit_handshake(&a).is_ok());

        let wait = Duration::from_millis(50);
        let _client = admission.admit_established(None, wait).await.unwrap();
        assert_eq!(
            admission.admit_established(None, wait).await.err(),
            Some(Closed::ClientPool)
        );
        let b = admission
            .admit_established(Some("b.example"), wait)
            .await
            .unwrap();
        assert_eq!(
            admission
                .admit_established(Some("b.example"), wait)
                .await
                .err(),
            Some(Closed::PeerPool)
        );
        // A full client pool and a full pool of b.example leave c.example its share.
        assert!(
            admission
                .admit_established(Some("c.example"), wait)
                .await
                .is_ok()
        );
        // A connection that waits gets the place a closing one frees.
        let waiting = {
            let admission = admission.clone();
            tokio::spawn(async move {
                admission
                    .admit_established(Some("b.example"), Duration::from_secs(10))
                    .await
                    .is_ok()
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(b);
        assert!(waiting.await.unwrap());
    }
}
