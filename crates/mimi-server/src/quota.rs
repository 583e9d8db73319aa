//! Per-requester quotas kept in memory: one token bucket per key (a peer's domain, a local
//! user's name, a client's address) that holds one period's worth of requests (a minute's or
//! an hour's) and refills at the same rate. A restart refills every bucket, which errs towards
//! serving; the quotas bound brute force, not billing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Size of the table at which full buckets are dropped (a full bucket is the same as none).
/// Peer domains and local users rarely get near it; addresses may, and then only the buckets of
/// addresses that used their allowance within the period stay.
const PRUNE_AT: usize = 16_384;

/// Requests allowed per key per period, with a burst of one period's worth.
pub(crate) struct Quota {
    /// A full bucket: one period's requests.
    capacity: f64,
    refill_per_sec: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refreshed: Instant,
}

impl Quota {
    /// A quota of `per_minute` requests per key (at least one).
    pub(crate) fn per_minute(per_minute: u32) -> Self {
        Self::per_period(per_minute, 60.0)
    }

    /// A quota of `per_hour` requests per key (at least one).
    pub(crate) fn per_hour(per_hour: u32) -> Self {
        Self::per_period(per_hour, 3600.0)
    }

    fn per_period(count: u32, seconds: f64) -> Self {
        let capacity = f64::from(count.max(1));
        Self {
            capacity,
            refill_per_sec: capacity / seconds,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request of `key`'s allowance at `now`; when it is used up, how long until the
    /// next request is allowed (whole seconds, at least one, as `Retry-After` gives them).
    pub(crate) fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let (refill_per_sec, full) = (self.refill_per_sec, self.capacity);
        // Never held across an await: every caller is synchronous between lock and unlock.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|_, b| b.level(now, refill_per_sec, full) < full);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: full,
            refreshed: now,
        });
        bucket.tokens = bucket.level(now, refill_per_sec, full);
        bucket.refreshed = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / refill_per_sec;
        Err(Duration::from_secs(wait.ceil().max(1.0) as u64))
    }
}

impl Bucket {
    /// The tokens this bucket holds at `now`.
    fn level(&self, now: Instant, refill_per_sec: f64, full: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.refreshed).as_secs_f64();
        (self.tokens + elapsed * refill_per_sec).min(full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minutes_worth_passes_then_one_request_per_refill_interval() {
        let quota = Quota::per_minute(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(quota.take("b.example", start), Ok(()));
        }
        assert_eq!(quota.take("b.example", start), Err(Duration::from_secs(20)));
        // Another key has its own bucket.
        assert_eq!(quota.take("c.example", start), Ok(()));
        // One token back after 20 s, and only one.
        let later = start + Duration::from_secs(20);
        assert_eq!(quota.take("b.example", later), Ok(()));
        assert!(quota.take("b.example", later).is_err());
        // Never more than a minute's worth, however long the pause.
        let much_later = later + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(quota.take("b.example", much_later), Ok(()));
        }
        assert!(quota.take("b.example", much_later).is_err());
    }

    #[test]
    fn an_hourly_quota_allows_an_hours_worth_then_one_per_interval() {
        let quota = Quota::per_hour(10);
        let start = Instant::now();
        for _ in 0..10 {
            assert_eq!(quota.take("192.0.2.1", start), Ok(()));
        }
        assert_eq!(
            quota.take("192.0.2.1", start),
            Err(Duration::from_secs(360))
        );
        assert_eq!(
            quota.take("192.0.2.1", start + Duration::from_secs(360)),
            Ok(())
        );
    }

    #[test]
    fn the_wait_is_whole_seconds_and_at_least_one() {
        let quota = Quota::per_minute(600);
        let start = Instant::now();
        for _ in 0..600 {
            quota.take("x", start).unwrap();
        }
        assert_eq!(quota.take("x", start), Err(Duration::from_secs(1)));
    }
}
