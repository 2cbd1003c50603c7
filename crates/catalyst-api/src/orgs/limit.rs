//! Limits per client and holder.
//!
//! - Sign-in: credential checks per client address (failures spend the budget; an address that
//!   spent it is refused before any credential of it is checked, so nobody can try tokens faster
//!   than the refill), and console sign-ins per holder. Token buckets: a burst, then one more
//!   every `refill`. A refusal is 429 `too-many-attempts` with `Retry-After`.
//! - Streams: at most [`DEFAULT_STREAMS_PER_HOLDER`] SSE streams open at once per holder (429
//!   `too-many-streams`); a slot is given back when its stream ends.
//!
//! Refusals are counted in `/metrics`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys a limiter tracks; past it, keys whose bucket is full again are dropped.
const MAX_KEYS: usize = 16_384;

/// A token bucket per key.
#[derive(Debug)]
pub struct Limiter {
    burst: f64,
    refill: Duration,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    /// Requests refused.
    pub refused: AtomicU64,
}

impl Limiter {
    /// `burst` attempts at once, then one more every `refill`.
    pub fn new(burst: u32, refill: Duration) -> Limiter {
        Limiter {
            burst: f64::from(burst),
            refill,
            buckets: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        }
    }

    fn level(&self, (tokens, at): (f64, Instant), now: Instant) -> f64 {
        let earned = now.duration_since(at).as_secs_f64() / self.refill.as_secs_f64();
        (tokens + earned).min(self.burst)
    }

    /// `Err(wait)` when `key` has no attempt left (counted as refused), else `Ok`. Spends
    /// nothing.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(bucket) = buckets.get(key) else {
            return Ok(());
        };
        let level = self.level(*bucket, now);
        if level >= 1.0 {
            return Ok(());
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        Err(self.refill.mul_f64(1.0 - level))
    }

    /// Spends one attempt of `key`; `Err(wait)` when there was none left.
    pub fn spend(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let full = self.burst;
            let refill = self.refill;
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() / refill.as_secs_f64() < full
            });
        }
        let bucket = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        let level = self.level(*bucket, now);
        if level < 1.0 {
            *bucket = (level, now);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(self.refill.mul_f64(1.0 - level));
        }
        *bucket = (level - 1.0, now);
        Ok(())
    }
}

/// The sign-in limits of one server.
#[derive(Debug)]
pub struct SignInLimits {
    /// Failed credential checks per client address.
    pub failures: Limiter,
    /// Console sign-ins per holder (token record, or OIDC subject).
    pub sign_ins: Limiter,
}

impl Default for SignInLimits {
    /// 10 failures per address, then one per 6 s (10 a minute); 10 sign-ins per holder, then
    /// one per 6 s.
    fn default() -> Self {
        SignInLimits {
            failures: Limiter::new(10, Duration::from_secs(6)),
            sign_ins: Limiter::new(10, Duration::from_secs(6)),
        }
    }
}

/// Streams one holder may have open at once, unless configured otherwise.
pub const DEFAULT_STREAMS_PER_HOLDER: usize = 64;

/// Open SSE streams per holder.
#[derive(Debug)]
pub struct StreamCap {
    max: std::sync::atomic::AtomicUsize,
    open: Mutex<HashMap<String, usize>>,
    /// Streams refused.
    pub refused: AtomicU64,
}

/// One open stream's place; dropping it (the stream ended) gives it back.
#[derive(Debug)]
pub struct StreamSlot {
    cap: std::sync::Arc<StreamCap>,
    key: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.cap.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl StreamCap {
    /// At most `max` streams per holder.
    pub fn new(max: usize) -> StreamCap {
        StreamCap {
            max: std::sync::atomic::AtomicUsize::new(max),
            open: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        }
    }

    /// Changes the cap (streams already open stay open).
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// A slot for one more stream of `holder`, or `Err(max)` when it has that many open.
    pub fn open(self: &std::sync::Arc<Self>, holder: &str) -> Result<StreamSlot, usize> {
        let max = self.max.load(Ordering::Relaxed);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(holder.to_owned()).or_default();
        if *n >= max {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(max);
        }
        *n += 1;
        Ok(StreamSlot {
            cap: self.clone(),
            key: holder.to_owned(),
        })
    }

    /// Streams open now, all holders together.
    pub fn open_now(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }
}

/// The key of a client address (IPv6 by its /64, so one host cannot rotate through its
/// addresses).
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Whole seconds for `Retry-After` (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_burst_then_the_refill() {
        let l = Limiter::new(3, Duration::from_millis(200));
        for _ in 0..3 {
            assert!(l.check("a").is_ok());
            l.spend("a").unwrap();
        }
        let wait = l.check("a").unwrap_err();
        assert!(wait <= Duration::from_millis(200) && wait > Duration::ZERO);
        assert!(l.spend("a").is_err());
        assert!(l.check("b").is_ok(), "other keys are unaffected");
        std::thread::sleep(Duration::from_millis(220));
        assert!(l.spend("a").is_ok(), "one more after the refill");
        assert!(l.spend("a").is_err());
        assert_eq!(l.refused.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn keys_of_addresses() {
        assert_eq!(client_key("203.0.113.9".parse().unwrap()), "203.0.113.9");
        assert_eq!(
            client_key("::ffff:203.0.113.9".parse().unwrap()),
            "203.0.113.9"
        );
        assert_eq!(
            client_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            client_key("2001:db8:1:2:ffff::1".parse().unwrap())
        );
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(5_500)), 6);
    }

    #[test]
    fn streams_per_holder_are_capped_and_given_back() {
        let cap = std::sync::Arc::new(StreamCap::new(2));
        let a1 = cap.open("acme/ann").unwrap();
        let _a2 = cap.open("acme/ann").unwrap();
        assert_eq!(cap.open("acme/ann").unwrap_err(), 2);
        let _b = cap.open("acme/bob").expect("another holder is unaffected");
        drop(a1);
        let _a3 = cap.open("acme/ann").expect("a slot given back");
        assert_eq!(cap.open_now(), 3);
        assert_eq!(cap.refused.load(Ordering::Relaxed), 1);
    }

    proptest! {
        /// However attempts are spread, a key never gets more than the burst plus what the
        /// elapsed time refilled.
        #[test]
        fn never_more_than_burst_plus_refill(burst in 1u32..20, attempts in 1usize..200) {
            let l = Limiter::new(burst, Duration::from_secs(3600));
            let granted = (0..attempts).filter(|_| l.spend("k").is_ok()).count();
            prop_assert_eq!(granted, attempts.min(burst as usize));
        }
    }
}
