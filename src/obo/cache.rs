//! The per-user token cache: keyed by a hash of the caller's token plus the scopes (as MSAL
//! keys its on-behalf-of cache), valid until shortly before the earlier of the two expiries,
//! bounded (LRU) so memory stays flat under many users, and single-flight: concurrent misses
//! for one key share one exchange.
//!
//! # Security
//! The key is the SHA-256 of the caller's own validated token, so one user's token can
//! never be served to another: a different user necessarily presents a different token.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use lru::LruCache;

use super::{AccessToken, Error};
use crate::jose::DigestKeyed;

/// Cache key: digest of the user's token and the scopes requested.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// First, so that [`DigestKeyed`] hashes the key by it.
    digest: [u8; 32],
    scopes: Arc<str>,
}

impl CacheKey {
    pub fn new(digest: &[u8; 32], scopes: &[&str]) -> Self {
        Self {
            digest: *digest,
            scopes: Arc::from(scopes.join(" ")),
        }
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
    usable_until: SystemTime,
}

type InFlight = Shared<BoxFuture<'static, Result<AccessToken, Error>>>;

/// The cache; share it behind an `Arc`.
pub struct OboCache {
    entries: Mutex<LruCache<CacheKey, Entry, DigestKeyed>>,
    in_flight: Mutex<HashMap<CacheKey, InFlight, DigestKeyed>>,
    margin: Duration,
}

impl OboCache {
    pub fn new(max_entries: usize, margin: Duration) -> Self {
        let cap = NonZeroUsize::new(max_entries.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            entries: Mutex::new(LruCache::with_hasher(cap, DigestKeyed::default())),
            in_flight: Mutex::new(HashMap::default()),
            margin,
        }
    }

    /// A cached token still good for the margin, if any.
    pub fn get(&self, key: &CacheKey) -> Option<AccessToken> {
        let mut entries = lock(&self.entries);
        match entries.get(key) {
            Some(entry) if SystemTime::now() < entry.usable_until => Some(entry.token.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    /// How many tokens are cached.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets `key` (the downstream API refused the token).
    pub fn remove(&self, key: &CacheKey) {
        lock(&self.entries).pop(key);
    }

    /// The cached token, or the result of `exchange` — run once however many requests ask
    /// for `key` at the same time. `user_expires_at` bounds how long the result is reused.
    pub async fn get_or_exchange<F, Fut>(
        self: &Arc<Self>,
        key: CacheKey,
        user_expires_at: SystemTime,
        exchange: F,
    ) -> (Result<AccessToken, Error>, Lookup)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, Error>> + Send + 'static,
    {
        if let Some(token) = self.get(&key) {
            return (Ok(token), Lookup::Hit);
        }
        let (shared, lookup) = {
            let mut in_flight = lock(&self.in_flight);
            if let Some(existing) = in_flight.get(&key) {
                (existing.clone(), Lookup::Joined)
            } else {
                // Re-check under the in-flight lock: an exchange may have just finished.
                if let Some(token) = self.get(&key) {
                    return (Ok(token), Lookup::Hit);
                }
                let cache = Arc::clone(self);
                let key_for_task = key.clone();
                let fut = exchange();
                let shared = async move {
                    let result = fut.await;
                    if let Ok(token) = &result {
                        let usable_until = token
                            .expires_at()
                            .min(user_expires_at)
                            .checked_sub(cache.margin);
                        if let Some(usable_until) = usable_until.filter(|u| *u > SystemTime::now())
                        {
                            lock(&cache.entries).put(
                                key_for_task.clone(),
                                Entry {
                                    token: token.clone(),
                                    usable_until,
                                },
                            );
                        }
                    }
                    lock(&cache.in_flight).remove(&key_for_task);
                    result
                }
                .boxed()
                .shared();
                in_flight.insert(key.clone(), shared.clone());
                (shared, Lookup::Miss)
            }
        };
        (shared.await, lookup)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(secs: u64) -> AccessToken {
        AccessToken::new("t", SystemTime::now() + Duration::from_secs(secs))
    }

    #[tokio::test]
    async fn entries_expire_at_the_earlier_expiry_minus_the_margin() {
        let cache = Arc::new(OboCache::new(10, Duration::from_secs(60)));
        let key = CacheKey::new(&[1; 32], &["s"]);
        // The user's token expires in 30 s: less than the margin, so nothing is kept.
        let soon = SystemTime::now() + Duration::from_secs(30);
        let (r, l) = cache
            .get_or_exchange(key.clone(), soon, || async { Ok(token(3600)) })
            .await;
        assert!(r.is_ok());
        assert_eq!(l, Lookup::Miss);
        assert!(cache.get(&key).is_none());
        let later = SystemTime::now() + Duration::from_secs(3600);
        let _ = cache
            .get_or_exchange(key.clone(), later, || async { Ok(token(3600)) })
            .await;
        assert!(cache.get(&key).is_some());
    }

    #[test]
    fn keys_differ_by_token_and_by_scopes() {
        let key = CacheKey::new(&[1; 32], &["a", "b"]);
        assert_eq!(key, CacheKey::new(&[1; 32], &["a", "b"]));
        assert_ne!(key, CacheKey::new(&[2; 32], &["a", "b"]));
        assert_ne!(key, CacheKey::new(&[1; 32], &["a"]));
        assert_ne!(key, CacheKey::new(&[1; 32], &["b", "a"]));
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let cache = Arc::new(OboCache::new(3, Duration::from_secs(1)));
        let later = SystemTime::now() + Duration::from_secs(3600);
        for i in 0..10u8 {
            let key = CacheKey::new(&[i; 32], &["s"]);
            let _ = cache
                .get_or_exchange(key, later, || async { Ok(token(3600)) })
                .await;
        }
        assert_eq!(cache.len(), 3);
    }

    #[tokio::test]
    async fn failures_are_not_cached() {
        let cache = Arc::new(OboCache::new(3, Duration::from_secs(1)));
        let key = CacheKey::new(&[9; 32], &["s"]);
        let later = SystemTime::now() + Duration::from_secs(3600);
        let (r, _) = cache
            .get_or_exchange(key.clone(), later, || async { Err(Error::NotConfigured) })
            .await;
        assert!(r.is_err());
        assert!(cache.get(&key).is_none());
        assert!(cache.is_empty());
    }
}
