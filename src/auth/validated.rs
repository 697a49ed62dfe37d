//! The validated-token cache: a token validated once is not checked again until it expires
//! or the issuer stops publishing the key that verified it, so a client's repeated calls skip
//! the signature check. Only successes are kept.
//!
//! Keyed by a 64-bit hash of the token under a random seed, not its SHA-256:
//! the key is computed on every request, and SHA-256 of a 1 KB token cost about 3% of a warm
//! HelloTool. A key is only where to look: a hit counts only when the presented token equals
//! the cached caller's own (compared in constant time), so a colliding token is validated in
//! full and never served another's caller.

use std::hash::BuildHasher as _;
use std::sync::Arc;

use super::middleware::TokenPolicy;
use super::{Caller, Error, Reason};

/// Recently validated tokens kept, so a client's repeated calls skip the signature check.
pub(super) const VALIDATED_CACHE_ENTRIES: u64 = 4096;

/// An entry of [`TokenPolicy::validated`].
pub(super) struct ValidatedToken {
    caller: Arc<Caller>,
    /// The token's `exp` plus the leeway: the entry's expiry.
    until: std::time::SystemTime,
    /// The key that verified the token: once the issuer stops publishing it, the entry is
    /// no longer served.
    kid: Box<str>,
    /// The key set generation in which `kid` was last seen published.
    generation: std::sync::atomic::AtomicU64,
}

/// Each validated token lives in the cache until its `exp` plus the leeway.
struct UntilExpired;

impl UntilExpired {
    fn remaining(entry: &ValidatedToken) -> Option<std::time::Duration> {
        Some(
            entry
                .until
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default(),
        )
    }
}

impl moka::Expiry<u64, Arc<ValidatedToken>> for UntilExpired {
    fn expire_after_create(
        &self,
        _: &u64,
        entry: &Arc<ValidatedToken>,
        _: std::time::Instant,
    ) -> Option<std::time::Duration> {
        Self::remaining(entry)
    }

    fn expire_after_update(
        &self,
        _: &u64,
        entry: &Arc<ValidatedToken>,
        _: std::time::Instant,
        _: Option<std::time::Duration>,
    ) -> Option<std::time::Duration> {
        Self::remaining(entry)
    }
}

/// [`TokenPolicy::validated`]: validated tokens by their seeded hash.
pub(super) struct ValidatedCache {
    entries: moka::sync::Cache<u64, Arc<ValidatedToken>>,
    /// Seeded at random for each cache, so which tokens collide cannot be worked out from
    /// outside.
    seed: foldhash::quality::RandomState,
}

impl ValidatedCache {
    /// A cache of at most `capacity` entries.
    pub(super) fn new(capacity: u64) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExpired)
                .build(),
            seed: foldhash::quality::RandomState::default(),
        }
    }

    fn key(&self, token: &str) -> u64 {
        self.seed.hash_one(token)
    }

    fn insert(&self, key: u64, entry: Arc<ValidatedToken>) {
        self.entries.insert(key, entry);
    }

    fn invalidate(&self, key: u64) {
        self.entries.invalidate(&key);
    }

    /// The entry of `token` itself, if cached: one under its key for another token is not.
    fn get(&self, key: u64, token: &str) -> Option<Arc<ValidatedToken>> {
        self.entries.get(&key).filter(|entry| {
            entry
                .caller
                .assertion
                .as_ref()
                .is_some_and(|assertion| assertion.is(token))
        })
    }
}

impl TokenPolicy {
    /// Full validation, or the caller of an identical token validated before, not yet
    /// expired and whose key the issuer still publishes (the signature, issuer and audience
    /// of the same bytes cannot have changed).
    pub(super) async fn validate_cached(&self, token: &str) -> Result<Arc<Caller>, Error> {
        if token.len() > self.validator.max_token_bytes {
            return Err(Error::InvalidToken(Reason::TooLarge));
        }
        let key = self.validated.key(token);
        let jwks = &self.validator.jwks;
        // Read before validating: a key set installed meanwhile makes the entry re-checked.
        let generation = jwks.generation();
        if let Some(entry) = self.validated.get(key, token) {
            // moka expires the entry on its own (monotonic) clock; `exp` is wall-clock time,
            // so it is checked against the wall clock as well.
            let unexpired = entry.until > std::time::SystemTime::now();
            // Only after a key refresh is the (cheap) lookup of the kid needed.
            let seen = entry.generation.load(std::sync::atomic::Ordering::Relaxed);
            let published = seen == generation || jwks.publishes(&entry.kid);
            if unexpired && published {
                entry
                    .generation
                    .fetch_max(generation, std::sync::atomic::Ordering::Relaxed);
                return Ok(Arc::clone(&entry.caller));
            }
            self.validated.invalidate(key);
        }
        let validated = self.validator.validate_with_kid(token).await?;
        let caller = Arc::new(validated.caller);
        if let Some(assertion) = &caller.assertion {
            // Computed once here; the on-behalf-of cache keys on the same digest.
            let _ = assertion.digest();
            // Kept until the token expires; one whose `exp` plus the leeway is beyond what
            // the clock can say is not kept at all (the validator refuses such tokens).
            if let Some(until) = assertion.expires_at().checked_add(self.leeway) {
                self.validated.insert(
                    key,
                    Arc::new(ValidatedToken {
                        caller: Arc::clone(&caller),
                        until,
                        kid: validated.kid,
                        generation: std::sync::atomic::AtomicU64::new(generation),
                    }),
                );
            }
        }
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::obo::UserAssertion;

    /// An entry for the caller of `token`, kept until `until`.
    fn entry(token: &str, until: SystemTime) -> Arc<ValidatedToken> {
        Arc::new(ValidatedToken {
            caller: Arc::new(Caller {
                assertion: Some(UserAssertion::new(token, until)),
                ..Caller::local_developer()
            }),
            until,
            kid: "k".into(),
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn insert(cache: &ValidatedCache, token: &str, until: SystemTime) {
        cache.insert(cache.key(token), entry(token, until));
    }

    fn cached(cache: &ValidatedCache, token: &str) -> bool {
        cache.get(cache.key(token), token).is_some()
    }

    #[test]
    fn a_validated_token_past_its_expiry_is_never_served() {
        let cache = ValidatedCache::new(16);
        let now = SystemTime::now();
        insert(&cache, "t1", now - Duration::from_secs(1));
        insert(&cache, "t2", now + Duration::from_secs(3600));
        assert!(!cached(&cache, "t1"), "expired");
        assert!(cached(&cache, "t2"), "still valid");
        // Replacing an expired entry gives the new one its own lifetime.
        insert(&cache, "t1", now + Duration::from_secs(3600));
        assert!(cached(&cache, "t1"));
        insert(&cache, "t2", now - Duration::from_secs(1));
        assert!(!cached(&cache, "t2"), "replaced by an expired token");
    }

    #[test]
    fn an_entry_is_served_only_for_its_own_token_whatever_the_key() {
        let cache = ValidatedCache::new(16);
        let later = SystemTime::now() + Duration::from_secs(3600);
        // As if "forged" collided with "victim": the victim's entry under the forged key.
        let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.";
        cache.insert(cache.key(forged), entry("victim", later));
        assert!(cache.get(cache.key(forged), forged).is_none());
        // A token differing only in its last character, or only in length, is another token.
        insert(&cache, "victim", later);
        assert!(cached(&cache, "victim"));
        assert!(cache.get(cache.key("victim"), "victin").is_none());
        assert!(cache.get(cache.key("victim"), "victim ").is_none());
    }

    #[test]
    fn keys_are_seeded_per_cache() {
        let (a, b) = (ValidatedCache::new(1), ValidatedCache::new(1));
        let tokens = ["t1", "t2", "t3", "t4"];
        assert!(
            tokens.iter().any(|t| a.key(t) != b.key(t)),
            "two caches hashed every token alike"
        );
    }

    #[test]
    fn the_validated_token_cache_is_bounded() {
        let cache = ValidatedCache::new(3);
        let later = SystemTime::now() + Duration::from_secs(3600);
        for i in 0..10u8 {
            insert(&cache, &format!("t{i}"), later);
        }
        cache.entries.run_pending_tasks();
        assert_eq!(cache.entries.entry_count(), 3);
    }
}
