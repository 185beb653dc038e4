//! A per-host request budget: a token bucket per host, in memory. Each server
//! replica keeps its own, which bounds what one host can cost each replica.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;

/// Token buckets, one per host.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Timestamp)>>,
}

impl RateLimiter {
    /// Allows `per_minute` requests a minute per host, in bursts of as many.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `host` may make a request at `now`; counts it if so.
    pub fn allow(&self, host: &str, now: Timestamp) -> bool {
        let capacity = f64::from(self.per_minute);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = buckets.entry(host.to_owned()).or_insert((capacity, now));
        let elapsed = now.duration_since(*last).as_secs_f64().max(0.0);
        *tokens = (*tokens + elapsed * capacity / 60.0).min(capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refills_with_time() {
        let limiter = RateLimiter::new(3);
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        assert!((0..3).all(|_| limiter.allow("h", t0)));
        assert!(!limiter.allow("h", t0));
        assert!(limiter.allow("other", t0), "each host has its own budget");
        let later = Timestamp::from_second(1_000_020).unwrap();
        assert!(
            limiter.allow("h", later),
            "a third of a minute refills one request"
        );
        assert!(!limiter.allow("h", later));
    }
}
