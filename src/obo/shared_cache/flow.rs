//! One in-process miss, inside the in-process single flight: read the shared entry; on a
//! miss take the user's lock and exchange (then write the entry for every replica), or wait
//! for the replica holding the lock to write it, at most `obo.timeout`, then exchange alone.
//!
//! Every Redis failure on the way ends in the caller's own exchange: the shared cache only
//! ever saves exchanges, it never costs a call.

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::SharedCache;
use super::seal::{Entry, Keys, remaining};
use crate::obo::UserAssertion;
use crate::obo::{AccessToken, Error};
use crate::telemetry::metrics;

/// The first pause of a replica waiting for another's entry; it doubles up to the longest.
const FIRST_POLL: Duration = Duration::from_millis(5);
const LONGEST_POLL: Duration = Duration::from_millis(50);

/// What a read of the shared entry found.
enum Read {
    Found(Entry),
    Missing,
    /// An entry that does not open under this caller's key: altered, or written by anyone
    /// but a replica holding the same token; it is replaced.
    Rejected,
    /// Redis did not answer; the cache is now bypassed.
    Failed,
}

impl SharedCache {
    /// The shared entry for `user` and `scopes`, or the result of `exchange`, run at most
    /// once across replicas while Redis answers (and written for the others).
    ///
    /// # Errors
    /// The exchange's error, or a remembered failure of the caller's own state.
    pub async fn get_or_exchange<F, Fut>(
        &self,
        user: &UserAssertion,
        scopes: &[&str],
        exchange: F,
    ) -> Result<AccessToken, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, Error>>,
    {
        let keys = if self.is_up() {
            Keys::new(&self.inner.prefix, user, scopes)
        } else {
            None
        };
        let Some(keys) = keys else {
            lookup("bypassed");
            return exchange().await;
        };
        match self.read(&keys).await {
            Read::Found(entry) => {
                lookup(match entry {
                    Entry::Token(_) => "hit",
                    Entry::Failure(_) => "failure_cached",
                });
                return entry.into_result();
            }
            Read::Missing => lookup("miss"),
            Read::Rejected => lookup("rejected"),
            Read::Failed => {
                lookup("bypassed");
                return exchange().await;
            }
        }
        self.coalesced(&keys, user.expires_at(), exchange).await
    }

    /// Writes `result` as the shared entry for `user` and `scopes` (a re-exchange that
    /// answered a claims challenge replaces the revoked token on every replica).
    pub async fn put(
        &self,
        user: &UserAssertion,
        scopes: &[&str],
        result: &Result<AccessToken, Error>,
    ) {
        if !self.is_up() {
            return;
        }
        if let Some(keys) = Keys::new(&self.inner.prefix, user, scopes) {
            self.write(&keys, result, user.expires_at()).await;
        }
    }

    /// Forgets the shared entry (the downstream API refused its token).
    pub async fn remove(&self, user: &UserAssertion, scopes: &[&str]) {
        if !self.is_up() {
            return;
        }
        if let Some(keys) = Keys::new(&self.inner.prefix, user, scopes)
            && let Err(error) = self.inner.store.delete(&keys.entry).await
        {
            self.failed(&error);
        }
    }

    /// The lock, then the exchange and the write; or the wait for the lock holder's entry.
    async fn coalesced<F, Fut>(
        &self,
        keys: &Keys,
        user_expires_at: SystemTime,
        exchange: F,
    ) -> Result<AccessToken, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, Error>>,
    {
        let owner = crate::jose::random_token(16);
        let wait = self.inner.lock_wait;
        let deadline = Instant::now() + wait;
        let mut pause = FIRST_POLL;
        loop {
            match self.inner.store.lock(&keys.lock, &owner, wait).await {
                Ok(true) => {
                    metrics::shared_cache_lock("acquired");
                    // The previous holder may have written the entry between this replica's
                    // read and its lock.
                    let result = match self.read(keys).await {
                        Read::Found(entry) => entry.into_result(),
                        _ => {
                            let result = exchange().await;
                            self.write(keys, &result, user_expires_at).await;
                            result
                        }
                    };
                    if let Err(error) = self.inner.store.unlock(&keys.lock, &owner).await {
                        self.failed(&error);
                    }
                    return result;
                }
                Ok(false) => {}
                Err(error) => {
                    self.failed(&error);
                    return exchange().await;
                }
            }
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            pause = (pause * 2).min(LONGEST_POLL);
            match self.read(keys).await {
                Read::Found(entry) => {
                    metrics::shared_cache_lock("waited");
                    return entry.into_result();
                }
                Read::Missing | Read::Rejected => {}
                Read::Failed => return exchange().await,
            }
            if Instant::now() >= deadline {
                metrics::shared_cache_lock("timed_out");
                let result = exchange().await;
                self.write(keys, &result, user_expires_at).await;
                return result;
            }
        }
    }

    async fn read(&self, keys: &Keys) -> Read {
        match self.inner.store.get(&keys.entry).await {
            Ok(None) => Read::Missing,
            Ok(Some(value)) => match keys.open(&value) {
                Some(Entry::Token(token)) if !token.valid_for(self.inner.margin) => Read::Missing,
                Some(entry) => Read::Found(entry),
                None => Read::Rejected,
            },
            Err(error) => {
                self.failed(&error);
                Read::Failed
            }
        }
    }

    /// Writes a token until `margin` before its own expiry (never past the user's token's),
    /// or a failure of the caller's state for the failure TTL; nothing else.
    async fn write(
        &self,
        keys: &Keys,
        result: &Result<AccessToken, Error>,
        user_expires_at: SystemTime,
    ) {
        let (entry, until) = match result {
            Ok(token) if token.bearer().is_some() => (
                Entry::Token(token.clone()),
                token
                    .expires_at()
                    .checked_sub(self.inner.margin)
                    .unwrap_or(SystemTime::UNIX_EPOCH)
                    .min(user_expires_at),
            ),
            Err(error) if error.is_callers_state() && !self.inner.failure_ttl.is_zero() => (
                Entry::Failure(error.clone()),
                SystemTime::now() + self.inner.failure_ttl,
            ),
            _ => return,
        };
        let (Some(ttl), Ok(value)) = (remaining(until), keys.seal(&entry)) else {
            return;
        };
        if let Err(error) = self.inner.store.set(&keys.entry, &value, ttl).await {
            self.failed(&error);
        }
    }
}

impl Entry {
    fn into_result(self) -> Result<AccessToken, Error> {
        match self {
            Self::Token(token) => Ok(token),
            Self::Failure(error) => Err(error),
        }
    }
}

/// One shared-cache lookup, in the metric and on the current (`obo.exchange`) span.
fn lookup(result: &'static str) {
    tracing::Span::current().record("obo.shared_cache", result);
    metrics::shared_cache_lookup(result);
}
