//! The per-user token cache: keyed by a hash of the caller's token plus the scopes (as MSAL
//! keys its on-behalf-of cache), valid until shortly before the earlier of the two expiries,
//! bounded so memory stays flat under many users, and single-flight: concurrent misses for
//! one key share one exchange.
//!
//! The cache is moka's (`moka::future::Cache`): its size bound (TinyLFU admission, LRU
//! eviction), per-entry expiry ([`Expiry`]) and the coalescing of concurrent initialisations
//! of one key (`or_try_insert_with`, which caches successes only) are the library's, not ours.
//!
//! # Security
//! The key is the SHA-256 of the caller's own validated token, so one user's token can
//! never be served to another: a different user necessarily presents a different token.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use moka::Expiry;
use moka::future::Cache;

use super::{AccessToken, Error};

/// Cache key: one SHA-256 over the digest of the user's token and the scopes requested.
/// 32 bytes kept inline, so a lookup allocates nothing and an entry carries no scope string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    pub fn new(digest: &[u8; 32], scopes: &[&str]) -> Self {
        let mut hash = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        hash.update(digest);
        // Each scope ends with a byte no scope can contain (scopes are space-free), so
        // `["a", "b"]` and `["ab"]` hash differently.
        for scope in scopes {
            hash.update(scope.as_bytes());
            hash.update(b" ");
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(hash.finish().as_ref());
        Self(key)
    }
}

/// How a lookup was served, for traces and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    /// This request performed the exchange.
    Miss,
    /// Another request's exchange for the same key was joined.
    Joined,
}

impl Lookup {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Joined => "join",
        }
    }
}

#[derive(Clone)]
struct Entry {
    token: AccessToken,
    /// The earlier of the two tokens' expiries, less the margin.
    usable_until: SystemTime,
}

/// Each entry lives until its `usable_until`; one already past it is never served.
struct UntilUsable;

impl UntilUsable {
    fn remaining(entry: &Entry) -> Option<Duration> {
        Some(
            entry
                .usable_until
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }
}

impl Expiry<CacheKey, Entry> for UntilUsable {
    fn expire_after_create(&self, _: &CacheKey, entry: &Entry, _: Instant) -> Option<Duration> {
        Self::remaining(entry)
    }

    /// A replaced entry (an expired one not yet evicted) lives as long as its new token.
    fn expire_after_update(
        &self,
        _: &CacheKey,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Self::remaining(entry)
    }
}

/// The cache; share it behind an `Arc`.
pub struct OboCache {
    entries: Cache<CacheKey, Entry>,
    margin: Duration,
}

impl OboCache {
    pub fn new(max_entries: usize, margin: Duration) -> Self {
        let capacity = u64::try_from(max_entries.max(1)).unwrap_or(u64::MAX);
        Self {
            entries: Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilUsable)
                .build(),
            margin,
        }
    }

    /// A cached token still good for the margin, if any.
    pub async fn get(&self, key: &CacheKey) -> Option<AccessToken> {
        self.entries.get(key).await.map(|entry| entry.token)
    }

    /// How many tokens are cached: moka's count, which lags insertions and evictions until
    /// its pending maintenance runs ([`Self::run_pending_tasks`]).
    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }

    /// Runs moka's pending maintenance now (evictions, expirations, the entry count), as
    /// it otherwise does in passing on later lookups.
    pub async fn run_pending_tasks(&self) {
        self.entries.run_pending_tasks().await;
    }

    /// Forgets `key` (the downstream API refused the token).
    pub async fn remove(&self, key: &CacheKey) {
        self.entries.invalidate(key).await;
    }

    /// The cached token, or the result of `exchange` — run once however many requests ask
    /// for `key` at the same time (they all get its result, success or failure). Only a
    /// success is kept, until the earlier of its expiry and `user_expires_at`, less the
    /// margin.
    pub async fn get_or_exchange<F, Fut>(
        &self,
        key: CacheKey,
        user_expires_at: SystemTime,
        exchange: F,
    ) -> (Result<AccessToken, Error>, Lookup)
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<AccessToken, Error>> + Send,
    {
        if let Some(token) = self.get(&key).await {
            return (Ok(token), Lookup::Hit);
        }
        // Set if moka runs this request's exchange rather than joining another's.
        let exchanged = AtomicBool::new(false);
        let margin = self.margin;
        let init = async {
            exchanged.store(true, Ordering::Relaxed);
            let token = exchange().await?;
            let usable_until = token
                .expires_at()
                .min(user_expires_at)
                .checked_sub(margin)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            Ok::<_, Error>(Entry {
                token,
                usable_until,
            })
        };
        let result = self.entries.entry(key).or_try_insert_with(init).await;
        let lookup = if exchanged.load(Ordering::Relaxed) {
            Lookup::Miss
        } else {
            Lookup::Joined
        };
        match result {
            Ok(entry) => (Ok(entry.into_value().token), lookup),
            Err(error) => (Err(Arc::unwrap_or_clone(error)), lookup),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use futures_util::future::{join, join_all};
    use tokio::sync::Notify;

    use super::*;

    fn token(secs: u64) -> AccessToken {
        AccessToken::new("t", SystemTime::now() + Duration::from_secs(secs))
    }

    fn in_secs(secs: u64) -> SystemTime {
        SystemTime::now() + Duration::from_secs(secs)
    }

    #[tokio::test]
    async fn entries_expire_at_the_earlier_expiry_minus_the_margin() {
        let cache = OboCache::new(10, Duration::from_secs(60));
        let key = CacheKey::new(&[1; 32], &["s"]);
        // The user's token expires in 30 s: less than the margin, so nothing is kept.
        let (r, l) = cache
            .get_or_exchange(key, in_secs(30), || async { Ok(token(3600)) })
            .await;
        assert!(r.is_ok());
        assert_eq!(l, Lookup::Miss);
        assert!(cache.get(&key).await.is_none());
        // Now the downstream token is the one that expires within the margin.
        let (r, _) = cache
            .get_or_exchange(key, in_secs(3600), || async { Ok(token(30)) })
            .await;
        assert!(r.is_ok());
        assert!(cache.get(&key).await.is_none());
        // Both good for longer than the margin: kept.
        let _ = cache
            .get_or_exchange(key, in_secs(3600), || async { Ok(token(3600)) })
            .await;
        assert!(cache.get(&key).await.is_some());
        let (_, l) = cache
            .get_or_exchange(key, in_secs(3600), || async { Err(Error::NotConfigured) })
            .await;
        assert_eq!(l, Lookup::Hit);
    }

    #[tokio::test]
    async fn a_token_already_expired_is_never_served() {
        let cache = OboCache::new(10, Duration::ZERO);
        let key = CacheKey::new(&[2; 32], &["s"]);
        let expired = AccessToken::new("t", SystemTime::now() - Duration::from_secs(1));
        let (r, _) = cache
            .get_or_exchange(key, in_secs(3600), move || async move { Ok(expired) })
            .await;
        assert!(r.is_ok(), "the exchange's own result is still returned");
        assert!(cache.get(&key).await.is_none());
        let (_, l) = cache
            .get_or_exchange(key, in_secs(3600), || async { Ok(token(3600)) })
            .await;
        assert_eq!(l, Lookup::Miss, "a fresh exchange, not the expired token");
    }

    #[test]
    fn keys_differ_by_token_and_by_scopes() {
        let key = CacheKey::new(&[1; 32], &["a", "b"]);
        assert_eq!(key, CacheKey::new(&[1; 32], &["a", "b"]));
        assert_ne!(key, CacheKey::new(&[2; 32], &["a", "b"]));
        assert_ne!(key, CacheKey::new(&[1; 32], &["a"]));
        assert_ne!(key, CacheKey::new(&[1; 32], &["b", "a"]));
        assert_ne!(key, CacheKey::new(&[1; 32], &["ab"]));
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let cache = OboCache::new(3, Duration::from_secs(1));
        for i in 0..10u8 {
            let key = CacheKey::new(&[i; 32], &["s"]);
            let _ = cache
                .get_or_exchange(key, in_secs(3600), || async { Ok(token(3600)) })
                .await;
        }
        // moka evicts in its maintenance: run it before counting.
        cache.run_pending_tasks().await;
        assert_eq!(cache.entry_count(), 3);
    }

    #[tokio::test]
    async fn removed_tokens_are_exchanged_again() {
        let cache = OboCache::new(3, Duration::from_secs(1));
        let key = CacheKey::new(&[3; 32], &["s"]);
        let _ = cache
            .get_or_exchange(key, in_secs(3600), || async { Ok(token(3600)) })
            .await;
        cache.remove(&key).await;
        assert!(cache.get(&key).await.is_none());
        let (_, l) = cache
            .get_or_exchange(key, in_secs(3600), || async { Ok(token(3600)) })
            .await;
        assert_eq!(l, Lookup::Miss);
    }

    /// 200 lookups of one key, all started before the exchange (held at a gate until the
    /// last of them has asked) may finish: `respond` is the exchange's answer.
    async fn two_hundred_at_once(
        cache: &OboCache,
        key: &CacheKey,
        respond: fn() -> Result<AccessToken, Error>,
    ) -> (usize, Vec<(Result<AccessToken, Error>, Lookup)>) {
        const CALLS: usize = 200;
        let (asked, all_asked) = (AtomicUsize::new(0), Notify::new());
        let (exchanges, gate) = (AtomicUsize::new(0), Notify::new());
        let calls = join_all((0..CALLS).map(|_| async {
            if asked.fetch_add(1, Ordering::SeqCst) + 1 == CALLS {
                all_asked.notify_one();
            }
            // Polled at once: the first starts the exchange, the others wait for it.
            cache
                .get_or_exchange(*key, in_secs(3600), || async {
                    exchanges.fetch_add(1, Ordering::SeqCst);
                    gate.notified().await;
                    respond()
                })
                .await
        }));
        let open = async {
            all_asked.notified().await;
            gate.notify_one();
        };
        let (results, ()) = join(calls, open).await;
        (exchanges.load(Ordering::SeqCst), results)
    }

    #[tokio::test]
    async fn simultaneous_lookups_share_one_exchange() {
        let cache = OboCache::new(10, Duration::from_secs(1));
        let key = CacheKey::new(&[4; 32], &["s"]);
        let (exchanges, results) = two_hundred_at_once(&cache, &key, || Ok(token(3600))).await;
        assert_eq!(exchanges, 1);
        assert!(results.iter().all(|(r, _)| r.is_ok()));
        let count = |lookup| results.iter().filter(|(_, l)| *l == lookup).count();
        assert_eq!((count(Lookup::Miss), count(Lookup::Joined)), (1, 199));
    }

    #[tokio::test]
    async fn failures_are_shared_with_those_waiting_but_not_cached() {
        let cache = OboCache::new(3, Duration::from_secs(1));
        let key = CacheKey::new(&[9; 32], &["s"]);
        let (exchanges, results) =
            two_hundred_at_once(&cache, &key, || Err(Error::NotConfigured)).await;
        assert_eq!(exchanges, 1);
        assert!(
            results
                .iter()
                .all(|(r, _)| r.as_ref().err() == Some(&Error::NotConfigured))
        );
        assert!(cache.get(&key).await.is_none());
        cache.run_pending_tasks().await;
        assert_eq!(cache.entry_count(), 0);
        let (r, l) = cache
            .get_or_exchange(key, in_secs(3600), || async { Ok(token(3600)) })
            .await;
        assert!(r.is_ok());
        assert_eq!(l, Lookup::Miss, "the next lookup exchanges again");
    }
}
