//! Hosted rooms kept decoded in memory between requests, so a message or commit does not pay
//! for reading and re-verifying the whole group each time. The store stays the truth: an entry
//! is loaded from it on a miss and dropped whenever its in-memory state might differ from what
//! was saved (a failed save, a refusal after the group changed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::RwLock;

use mimi_room::HubRoom;

/// A cached room: readers (message checks, GroupInfo) share it, a handshake takes it alone.
/// An async lock, so a message check can hold it across the wait for its save.
pub(crate) type SharedRoom = Arc<RwLock<HubRoom>>;

/// Decoded rooms by URI, at most `capacity` of them; the least recently used idle one goes.
pub(crate) struct RoomCache<R = HubRoom> {
    capacity: usize,
    inner: Mutex<Inner<R>>,
}

struct Inner<R> {
    tick: u64,
    rooms: HashMap<String, (Arc<RwLock<R>>, u64)>,
}

impl<R> RoomCache<R> {
    /// An empty cache holding up to `capacity` rooms (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                tick: 0,
                rooms: HashMap::new(),
            }),
        }
    }

    /// The cached room, or the one `load` builds (then cached).
    pub(crate) fn get_or_load<E>(
        &self,
        room_uri: &str,
        load: impl FnOnce() -> Result<R, E>,
    ) -> Result<Arc<RwLock<R>>, E> {
        if let Some(room) = self.touch(room_uri) {
            return Ok(room);
        }
        // Loading can take a while for a large room; others keep using the cache meanwhile.
        // Two requests missing at once both load; the first to finish wins.
        let loaded = Arc::new(RwLock::new(load()?));
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let room = inner
            .rooms
            .entry(room_uri.to_owned())
            .or_insert((loaded, tick))
            .0
            .clone();
        if inner.rooms.len() > self.capacity {
            evict_idle(&mut inner, room_uri);
        }
        Ok(room)
    }

    /// The cached room, if it is cached.
    pub(crate) fn get(&self, room_uri: &str) -> Option<Arc<RwLock<R>>> {
        self.touch(room_uri)
    }

    /// Puts a room that was just created and saved.
    pub(crate) fn insert(&self, room_uri: &str, room: R) {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        inner
            .rooms
            .insert(room_uri.to_owned(), (Arc::new(RwLock::new(room)), tick));
        if inner.rooms.len() > self.capacity {
            evict_idle(&mut inner, room_uri);
        }
    }

    /// Forgets a room whose decoded state may no longer match the store.
    pub(crate) fn invalidate(&self, room_uri: &str) {
        self.lock().rooms.remove(room_uri);
    }

    /// How many rooms are cached.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().rooms.len()
    }

    fn touch(&self, room_uri: &str) -> Option<Arc<RwLock<R>>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let entry = inner.rooms.get_mut(room_uri)?;
        entry.1 = tick;
        Some(entry.0.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<R>> {
        // The map holds no invariant a panic could break half-way; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Drops the least recently used room nobody is using, other than `keep`.
fn evict_idle<R>(inner: &mut Inner<R>, keep: &str) {
    let victim = inner
        .rooms
        .iter()
        .filter(|(uri, (room, _))| uri.as_str() != keep && Arc::strong_count(room) == 1)
        .min_by_key(|(_, (_, tick))| *tick)
        .map(|(uri, _)| uri.clone());
    if let Some(uri) = victim {
        inner.rooms.remove(&uri);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(value: &str) -> impl FnOnce() -> Result<String, ()> + '_ {
        move || Ok(value.to_owned())
    }

    #[test]
    fn loads_once_then_serves_from_memory() {
        let cache = RoomCache::new(4);
        let first = cache.get_or_load("r1", load("one")).unwrap();
        let again = cache
            .get_or_load("r1", || -> Result<String, ()> { panic!("loaded twice") })
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
    }

    #[test]
    fn evicts_the_least_recently_used_idle_room() {
        let cache = RoomCache::new(2);
        drop(cache.get_or_load("r1", load("one")).unwrap());
        drop(cache.get_or_load("r2", load("two")).unwrap());
        drop(cache.get_or_load("r1", load("one")).unwrap());
        drop(cache.get_or_load("r3", load("three")).unwrap());
        assert_eq!(cache.len(), 2);
        let reloaded = cache.get_or_load("r2", load("fresh")).unwrap();
        assert_eq!(*reloaded.blocking_read(), "fresh", "r2 was the one evicted");
    }

    #[test]
    fn never_evicts_a_room_in_use() {
        let cache = RoomCache::new(1);
        let held = cache.get_or_load("r1", load("one")).unwrap();
        drop(cache.get_or_load("r2", load("two")).unwrap());
        let again = cache
            .get_or_load("r1", || -> Result<String, ()> { panic!("r1 was evicted") })
            .unwrap();
        assert!(Arc::ptr_eq(&held, &again));
    }

    #[test]
    fn a_failed_load_caches_nothing_and_invalidate_forgets() {
        let cache: RoomCache<String> = RoomCache::new(2);
        assert!(cache.get_or_load("r1", || Err(())).is_err());
        assert_eq!(cache.len(), 0);
        drop(cache.get_or_load("r1", load("one")).unwrap());
        cache.invalidate("r1");
        assert_eq!(cache.len(), 0);
    }
}
