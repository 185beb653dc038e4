//! Request budgets, in memory: a token bucket per enrolled host, and for
//! signing in, buckets per source address, per user name from one source,
//! and one for the whole server. Each server replica keeps its own.
//!
//! A key design decision made here is that every table is bounded whatever
//! a client sends. A bucket that has filled up again says no more than an
//! absent one, so it is dropped; a table that still reaches its cap drops
//! the fullest buckets first. And nothing is inserted for a request that is
//! refused: a flood of distinct keys adds entries only as fast as the
//! budgets above it let requests through.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One bucket: tokens left when last counted, and when that was.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Timestamp,
}

/// Token buckets by key: `burst` tokens each, refilled at `per_minute`,
/// at most `max_entries` of them.
#[derive(Debug)]
struct Buckets<K> {
    burst: f64,
    per_second: f64,
    max_entries: usize,
    table: HashMap<K, Bucket>,
    /// When full buckets were last dropped.
    swept: Option<Timestamp>,
}

/// Full buckets are dropped at least this often (seconds), besides when a
/// table reaches its cap.
const SWEEP_SECONDS: i64 = 60;

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(burst: u32, per_minute: u32, max_entries: usize) -> Self {
        Buckets {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            max_entries: max_entries.max(1),
            table: HashMap::new(),
            swept: None,
        }
    }

    /// The tokens of `bucket` at `now`.
    fn level(&self, bucket: &Bucket, now: Timestamp) -> f64 {
        let elapsed = now.duration_since(bucket.at).as_secs_f64().max(0.0);
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }

    /// Seconds until `key` has a token, 0 when it has one now.
    fn wait(&self, key: &K, now: Timestamp) -> u64 {
        let Some(bucket) = self.table.get(key) else {
            return 0;
        };
        let missing = 1.0 - self.level(bucket, now);
        if missing <= 0.0 {
            0
        } else {
            // At least a second: a client told 0 would try again at once.
            ((missing / self.per_second).ceil() as u64).max(1)
        }
    }

    /// Takes a token from `key` (which [`Buckets::wait`] said has one).
    fn take(&mut self, key: &K, now: Timestamp) {
        self.sweep(now, false);
        if !self.table.contains_key(key) && self.table.len() >= self.max_entries {
            self.sweep(now, true);
        }
        let level = match self.table.get(key) {
            Some(bucket) => self.level(bucket, now),
            None => self.burst,
        };
        self.table.insert(
            key.clone(),
            Bucket {
                tokens: level - 1.0,
                at: now,
            },
        );
    }

    /// Gives back a token taken from `key`.
    fn give_back(&mut self, key: &K, now: Timestamp) {
        let level = match self.table.get(key) {
            Some(bucket) => self.level(bucket, now),
            None => return,
        };
        let tokens = (level + 1.0).min(self.burst);
        if tokens >= self.burst {
            self.table.remove(key);
        } else {
            self.table.insert(key.clone(), Bucket { tokens, at: now });
        }
    }

    /// Drops the buckets that are full again, at most once a minute unless
    /// `now_full` (the table reached its cap): then, if that frees no
    /// room, the fullest buckets go until a tenth of the cap is free.
    fn sweep(&mut self, now: Timestamp, now_full: bool) {
        let due = self
            .swept
            .is_none_or(|at| now.duration_since(at).as_secs() >= SWEEP_SECONDS);
        if !due && !now_full {
            return;
        }
        self.swept = Some(now);
        let burst = self.burst;
        let per_second = self.per_second;
        self.table.retain(|_, b| {
            let elapsed = now.duration_since(b.at).as_secs_f64().max(0.0);
            b.tokens + elapsed * per_second < burst
        });
        if self.table.len() < self.max_entries {
            return;
        }
        let mut levels: Vec<(f64, K)> = self
            .table
            .iter()
            .map(|(k, b)| (self.level(b, now), k.clone()))
            .collect();
        levels.sort_by(|a, b| b.0.total_cmp(&a.0));
        let drop = self.table.len() + 1 - self.max_entries + self.max_entries / 10;
        for (_, key) in levels.into_iter().take(drop) {
            self.table.remove(&key);
        }
    }

    fn len(&self) -> usize {
        self.table.len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// At most this many hosts' buckets are kept. A host's bucket is full
/// again a minute after its last request, and then dropped.
const MAX_HOSTS: usize = 100_000;

/// Token buckets, one per host.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Mutex<Buckets<String>>,
}

impl RateLimiter {
    /// Allows `per_minute` requests a minute per host, in bursts of as many.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            buckets: Mutex::new(Buckets::new(per_minute, per_minute, MAX_HOSTS)),
        }
    }

    /// Whether `host` may make a request at `now`; counts it if so.
    /// Otherwise the seconds until it may.
    pub fn allow(&self, host: &str, now: Timestamp) -> Result<(), u64> {
        let mut buckets = lock(&self.buckets);
        let host = host.to_owned();
        match buckets.wait(&host, now) {
            0 => {
                buckets.take(&host, now);
                Ok(())
            }
            wait => Err(wait),
        }
    }

    /// How many hosts have a bucket now.
    pub fn tracked(&self) -> usize {
        lock(&self.buckets).len()
    }
}

/// Where a request came from, as far as limits go: the peer's address,
/// with an IPv6 address narrowed to its /64 (one machine commonly holds a
/// whole /64) and an IPv4-mapped one to its IPv4 address. `None` when the
/// server was not told (tests that call the application directly); such
/// requests share one budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Source(pub(crate) Option<IpAddr>);

impl Source {
    pub(crate) fn of(address: IpAddr) -> Source {
        let network = match address {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
        };
        Source(Some(network))
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(IpAddr::V6(v6)) => write!(f, "{v6}/64"),
            Some(IpAddr::V4(v4)) => write!(f, "{v4}"),
            None => f.write_str("an unknown address"),
        }
    }
}

/// Failed sign-ins one user name may have from one source in a burst,
/// and how many more a minute after that.
const NAME_BURST: u32 = 5;
const NAME_PER_MINUTE: u32 = 1;

/// At most this many sources, and (name, source) pairs, are tracked.
const MAX_SOURCES: usize = 50_000;

/// Why a sign-in attempt was refused before any password was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The source made too many attempts.
    Source { source: Source, wait: u64 },
    /// The source failed too often for this user name.
    Name {
        name: String,
        source: Source,
        wait: u64,
    },
    /// The server as a whole checks no more passwords just now.
    Server { wait: u64 },
}

impl Refusal {
    /// Seconds until trying again may succeed.
    pub(crate) fn wait(&self) -> u64 {
        match self {
            Refusal::Source { wait, .. }
            | Refusal::Name { wait, .. }
            | Refusal::Server { wait } => *wait,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Source { source, wait } => write!(
                f,
                "too many sign-in attempts from {source}: try again in {wait} seconds"
            ),
            Refusal::Name { name, source, wait } => write!(
                f,
                "too many failed sign-ins as {name} from {source}: try again in {wait} seconds"
            ),
            Refusal::Server { wait } => write!(
                f,
                "the server is refusing sign-ins for a moment (too many attempts): \
                 try again in {wait} seconds"
            ),
        }
    }
}

/// The budgets of signing in.
///
/// The rule: an attempt is counted against its source address (at most
/// `per_source` a minute, in bursts of as many), against its user name
/// *from that source* (five failures, then one a minute), and against the
/// whole server (`global` a minute, which bounds the CPU that password
/// hashing may take). A success gives back what it took from its source
/// and its name. Refused attempts take nothing and are never hashed.
///
/// No budget belongs to a user name alone: anyone can send any name, so a
/// limit on a name would let anyone lock its owner out. Wrong passwords
/// for `admin` slow down the source that sends them, while the real admin
/// signing in from elsewhere is let in. What an attacker with many
/// addresses can do is spend the server's budget; that budget does not
/// apply to a source someone signed in from in the last 30 days (at most
/// [`MAX_KNOWN_SOURCES`] are remembered), so the people who use the
/// console still get in, each still within their source's own budget. Only
/// a sign-in from a new address waits then (API tokens keep working).
///
/// At most as many passwords as the machine has cores are checked at
/// once: each check holds some 19 MiB for its duration.
#[derive(Debug)]
pub struct SignInLimiter {
    sources: Mutex<Buckets<Source>>,
    names: Mutex<Buckets<(String, Source)>>,
    server: Mutex<Buckets<()>>,
    /// Sources someone signed in from, and when last.
    known: Mutex<HashMap<Source, Timestamp>>,
    hashing: Arc<Semaphore>,
}

/// Sources remembered for having signed in; the least recent go first.
pub(crate) const MAX_KNOWN_SOURCES: usize = 10_000;

/// How long a source that signed in is remembered.
const KNOWN_FOR: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 30);

/// An attempt let through: its tokens are taken until it succeeds.
#[derive(Debug)]
pub(crate) struct Attempt {
    name: String,
    source: Source,
}

impl SignInLimiter {
    /// Budgets of `per_source` attempts a minute from one source and
    /// `global` a minute for the server.
    pub fn new(per_source: u32, global: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        SignInLimiter {
            sources: Mutex::new(Buckets::new(per_source, per_source, MAX_SOURCES)),
            names: Mutex::new(Buckets::new(NAME_BURST, NAME_PER_MINUTE, MAX_SOURCES)),
            server: Mutex::new(Buckets::new(global, global, 1)),
            known: Mutex::new(HashMap::new()),
            hashing: Arc::new(Semaphore::new(cores)),
        }
    }

    /// Lets an attempt as `name` from `source` through, taking its tokens,
    /// or says why not (taking nothing).
    pub(crate) fn admit(
        &self,
        name: &str,
        source: Source,
        now: Timestamp,
    ) -> Result<Attempt, Refusal> {
        let pair = (name.to_owned(), source);
        let mut sources = lock(&self.sources);
        let mut names = lock(&self.names);
        let mut server = lock(&self.server);
        match sources.wait(&source, now) {
            0 => {}
            wait => return Err(Refusal::Source { source, wait }),
        }
        match names.wait(&pair, now) {
            0 => {}
            wait => {
                return Err(Refusal::Name {
                    name: pair.0,
                    source,
                    wait,
                })
            }
        }
        let known = source.0.is_some()
            && lock(&self.known)
                .get(&source)
                .is_some_and(|last| now.duration_since(*last) < KNOWN_FOR);
        if !known {
            match server.wait(&(), now) {
                0 => {}
                wait => return Err(Refusal::Server { wait }),
            }
            server.take(&(), now);
        }
        sources.take(&source, now);
        names.take(&pair, now);
        Ok(Attempt {
            name: pair.0,
            source,
        })
    }

    /// An attempt succeeded: its source and name get their tokens back.
    pub(crate) fn succeeded(&self, attempt: Attempt, now: Timestamp) {
        lock(&self.sources).give_back(&attempt.source, now);
        if attempt.source.0.is_some() {
            let mut known = lock(&self.known);
            if known.len() >= MAX_KNOWN_SOURCES && !known.contains_key(&attempt.source) {
                known.retain(|_, last| now.duration_since(*last) < KNOWN_FOR);
                if known.len() >= MAX_KNOWN_SOURCES {
                    if let Some(oldest) = known.iter().min_by_key(|(_, t)| **t).map(|(s, _)| *s) {
                        known.remove(&oldest);
                    }
                }
            }
            known.insert(attempt.source, now);
        }
        lock(&self.names).give_back(&(attempt.name, attempt.source), now);
    }

    /// Waits for a turn to check a password.
    pub(crate) async fn hashing_turn(&self) -> OwnedSemaphorePermit {
        Arc::clone(&self.hashing)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// How many sources and (name, source) pairs are tracked now.
    pub fn tracked(&self) -> usize {
        lock(&self.sources).len() + lock(&self.names).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_000_000 + second).unwrap()
    }

    fn source(last: u8) -> Source {
        Source::of(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn budget_refills_with_time() {
        let limiter = RateLimiter::new(3);
        let t0 = at(0);
        assert!((0..3).all(|_| limiter.allow("h", t0).is_ok()));
        assert_eq!(limiter.allow("h", t0), Err(20), "a token every 20 seconds");
        assert!(limiter.allow("other", t0).is_ok(), "each host has its own");
        let later = at(20);
        assert!(
            limiter.allow("h", later).is_ok(),
            "a third of a minute refills one request"
        );
        assert!(limiter.allow("h", later).is_err());
    }

    #[test]
    fn idle_hosts_are_forgotten_and_the_table_has_a_cap() {
        let limiter = RateLimiter::new(60);
        for i in 0..1000 {
            limiter.allow(&format!("host-{i}"), at(0)).unwrap();
        }
        assert_eq!(limiter.tracked(), 1000);
        // A minute on, every bucket is full again: the next request sweeps.
        limiter.allow("host-0", at(61)).unwrap();
        assert_eq!(limiter.tracked(), 1);

        let mut capped = Buckets::<u32>::new(5, 5, 100);
        for key in 0..10_000 {
            capped.take(&key, at(0));
            assert!(capped.len() <= 100);
        }
        // The fullest go first: a key that spent its burst stays.
        let mut capped = Buckets::<u32>::new(5, 5, 10);
        for _ in 0..5 {
            capped.take(&7, at(0));
        }
        for key in 100..200 {
            capped.take(&key, at(0));
        }
        assert!(capped.wait(&7, at(0)) > 0, "the drained bucket was kept");
    }

    #[test]
    fn a_flood_from_one_source_slows_that_source_and_not_the_account() {
        let limiter = SignInLimiter::new(10, 1000);
        let attacker = source(66);
        for _ in 0..NAME_BURST {
            limiter.admit("admin", attacker, at(0)).unwrap();
        }
        let refused = limiter.admit("admin", attacker, at(0)).unwrap_err();
        assert!(
            matches!(refused, Refusal::Name { wait: 60, .. }),
            "{refused}"
        );
        // Other names from the attacker: until its source's budget is spent.
        for i in 0..5 {
            limiter.admit(&format!("u{i}"), attacker, at(0)).unwrap();
        }
        let refused = limiter.admit("anyone", attacker, at(0)).unwrap_err();
        assert_eq!(refused.wait(), 6, "a token every 6 seconds");
        assert!(matches!(refused, Refusal::Source { .. }), "{refused}");
        assert!(refused.to_string().contains("from 192.0.2.66"), "{refused}");
        // The admin, from elsewhere, is let in, and a success gives back
        // what it took.
        let attempt = limiter.admit("admin", source(1), at(0)).unwrap();
        limiter.succeeded(attempt, at(0));
        for _ in 0..9 {
            let attempt = limiter.admit("admin", source(1), at(1)).unwrap();
            limiter.succeeded(attempt, at(1));
        }
        assert!(limiter.admit("admin", source(1), at(1)).is_ok());
    }

    #[test]
    fn refused_attempts_add_no_entries() {
        let limiter = SignInLimiter::new(10, 20);
        for i in 0..10_000 {
            let _ = limiter.admit(&format!("name-{i}"), source((i % 200) as u8), at(0));
        }
        // Twenty attempts got through the server's budget: twenty names,
        // at most twenty sources.
        assert!(limiter.tracked() <= 40, "{}", limiter.tracked());
        let refused = limiter.admit("x", source(250), at(0)).unwrap_err();
        assert!(matches!(refused, Refusal::Server { wait: 3 }), "{refused}");
    }

    #[test]
    fn a_source_that_signed_in_before_is_not_held_by_the_servers_budget() {
        let limiter = SignInLimiter::new(10, 20);
        // The admin signs in from their usual address.
        let attempt = limiter.admit("admin", source(1), at(0)).unwrap();
        limiter.succeeded(attempt, at(0));
        // Many addresses spend the server's budget.
        for i in 0..200u32 {
            let _ = limiter.admit("admin", source(10 + (i % 200) as u8), at(1));
        }
        let refused = limiter.admit("admin", source(250), at(1)).unwrap_err();
        assert!(matches!(refused, Refusal::Server { .. }), "{refused}");
        // The admin's address still gets in, within its own budget.
        let attempt = limiter.admit("admin", source(1), at(2)).unwrap();
        limiter.succeeded(attempt, at(2));
        // Not for ever: a month later the address is new again.
        for i in 0..200u32 {
            let _ = limiter.admit("x", source(10 + (i % 200) as u8), at(3600 * 24 * 31));
        }
        assert!(limiter
            .admit("admin", source(1), at(3600 * 24 * 31))
            .is_err());
    }

    #[test]
    fn ipv6_sources_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Source::of(a), Source::of(b));
        assert_ne!(Source::of(a), Source::of(c));
        assert_eq!(Source::of(a).to_string(), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(Source::of(mapped), source(1));
    }
}
