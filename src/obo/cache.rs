//! The per-user token cache: keyed by a hash of the caller's token plus the scopes (as MSAL
//! keys its on-behalf-of cache), bounded so memory stays flat under many users, and
//! single-flight: concurrent misses for one key share one exchange.
//!
//! A downstream token is served until `margin` before its *own* expiry: its life does not
//! depend on the user's token once issued. The user's token's expiry only bounds how long
//! the entry can be looked up (it is keyed by that token, which is refused once expired), so
//! the entry is dropped then to free memory. A user token in its last minutes therefore
//! costs one exchange, not one per call.
//!
//! Failed exchanges that are the user's or tenant's state ([`Error::is_callers_state`]:
//! consent missing, `invalid_grant`, a claims challenge, an app-only caller) are remembered
//! per key for `obo.failure_cache_ttl`, so a client retrying in a loop costs one exchange
//! per window rather than driving Entra to throttle the app every user shares. Transient
//! failures are never remembered.
//!
//! Both caches are moka's (`moka::future::Cache`): the size bound (TinyLFU admission, LRU
//! eviction), per-entry expiry ([`Expiry`]) or time-to-live, and the coalescing of
//! concurrent initialisations of one key (`or_try_insert_with`, which caches successes only)
//! are the library's, not ours.
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
    /// A failure of the caller's own state, remembered from a recent exchange.
    FailureCached,
}

impl Lookup {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Joined => "join",
            Self::FailureCached => "failure_cached",
        }
    }
}

#[derive(Clone)]
struct Entry {
    token: AccessToken,
    /// The downstream token's expiry less the margin, or the user token's expiry if that is
    /// earlier (the entry cannot be looked up after it).
    usable_until: SystemTime,
}

impl Entry {
    /// `token`, served until `margin` before its own expiry however long it lives (a
    /// continuous-access-evaluation token lives about a day), or until `user_expires_at`.
    fn new(token: AccessToken, margin: Duration, user_expires_at: SystemTime) -> Self {
        let usable_until = token
            .expires_at()
            .checked_sub(margin)
            .unwrap_or(SystemTime::UNIX_EPOCH)
            .min(user_expires_at);
        Self {
            token,
            usable_until,
        }
    }
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
    /// Recent failures of the caller's own state; `None`: not remembered.
    failures: Option<Cache<CacheKey, Error>>,
    margin: Duration,
}

impl OboCache {
    /// At most `max_entries` tokens, each served until `margin` before its expiry; no
    /// failure is remembered until [`Self::remembering_failures_for`].
    pub fn new(max_entries: usize, margin: Duration) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(capacity(max_entries))
                .expire_after(UntilUsable)
                .build(),
            failures: None,
            margin,
        }
    }

    /// Remembers failures of the caller's own state for `ttl` (`obo.failure_cache_ttl`;
    /// zero: never), at most as many as there are token entries.
    #[must_use]
    pub fn remembering_failures_for(mut self, ttl: Duration) -> Self {
        self.failures = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(self.entries.policy().max_capacity().unwrap_or(1))
                .time_to_live(ttl)
                .build()
        });
        self
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

    /// A remembered failure for `key`, if any.
    pub async fn failure(&self, key: &CacheKey) -> Option<Error> {
        match &self.failures {
            Some(failures) => failures.get(key).await,
            None => None,
        }
    }

    /// The cached token, or the result of `exchange` — run once however many requests ask
    /// for `key` at the same time (they all get its result, success or failure). A success
    /// is kept until `margin` before its own expiry, or until `user_expires_at` if that is
    /// earlier; a failure of the caller's state is remembered for the failure TTL.
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
        if let Some(error) = self.failure(&key).await {
            return (Err(error), Lookup::FailureCached);
        }
        // Set if moka runs this request's exchange rather than joining another's, and if
        // that found a failure remembered since the check above.
        let (exchanged, remembered) = (AtomicBool::new(false), AtomicBool::new(false));
        let margin = self.margin;
        let init = async {
            exchanged.store(true, Ordering::Relaxed);
            if let Some(error) = self.failure(&key).await {
                remembered.store(true, Ordering::Relaxed);
                return Err(error);
            }
            let token = match exchange().await {
                Ok(token) => token,
                Err(error) => {
                    if let Some(failures) = &self.failures
                        && error.is_callers_state()
                    {
                        failures.insert(key, error.clone()).await;
                    }
                    return Err(error);
                }
            };
            Ok::<_, Error>(Entry::new(token, margin, user_expires_at))
        };
        let result = self.entries.entry(key).or_try_insert_with(init).await;
        let lookup = match (
            exchanged.load(Ordering::Relaxed),
            remembered.load(Ordering::Relaxed),
        ) {
            (_, true) => Lookup::FailureCached,
            (true, false) => Lookup::Miss,
            (false, false) => Lookup::Joined,
        };
        match result {
            Ok(entry) => (Ok(entry.into_value().token), lookup),
            Err(error) => (Err(Arc::unwrap_or_clone(error)), lookup),
        }
    }
}

impl OboCache {
    /// Puts the result of an exchange made outside [`Self::get_or_exchange`] (one answering
    /// a claims challenge) in place of whatever `key` held: a token is kept as that keeps
    /// one, a failure of the caller's state is remembered, any other failure leaves `key`
    /// empty.
    pub async fn replace(
        &self,
        key: CacheKey,
        result: &Result<AccessToken, Error>,
        user_expires_at: SystemTime,
    ) {
        match result {
            Ok(token) => {
                let entry = Entry::new(token.clone(), self.margin, user_expires_at);
                self.entries.insert(key, entry).await;
            }
            Err(error) => {
                self.entries.invalidate(&key).await;
                if let Some(failures) = &self.failures
                    && error.is_callers_state()
                {
                    failures.insert(key, error.clone()).await;
                }
            }
        }
    }
}

fn capacity(max_entries: usize) -> u64 {
    u64::try_from(max_entries.max(1)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod long_lived_tests;
#[cfg(test)]
mod tests;
