//! The validated-token cache: a token validated once is not checked again until it expires
//! or the issuer stops publishing the key that verified it, so a client's repeated calls skip
//! the signature check. Only successes are kept, keyed by the token's SHA-256.

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

impl moka::Expiry<[u8; 32], Arc<ValidatedToken>> for UntilExpired {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        entry: &Arc<ValidatedToken>,
        _: std::time::Instant,
    ) -> Option<std::time::Duration> {
        Self::remaining(entry)
    }

    fn expire_after_update(
        &self,
        _: &[u8; 32],
        entry: &Arc<ValidatedToken>,
        _: std::time::Instant,
        _: Option<std::time::Duration>,
    ) -> Option<std::time::Duration> {
        Self::remaining(entry)
    }
}

/// The cache of [`TokenPolicy::validated`], bounded to `capacity` entries.
pub(super) fn validated_cache(capacity: u64) -> moka::sync::Cache<[u8; 32], Arc<ValidatedToken>> {
    moka::sync::Cache::builder()
        .max_capacity(capacity)
        .expire_after(UntilExpired)
        .build()
}

impl TokenPolicy {
    /// Full validation, or the caller of an identical token validated before, not yet
    /// expired and whose key the issuer still publishes (the signature, issuer and audience
    /// of the same bytes cannot have changed).
    pub(super) async fn validate_cached(&self, token: &str) -> Result<Arc<Caller>, Error> {
        if token.len() > self.validator.max_token_bytes {
            return Err(Error::InvalidToken(Reason::TooLarge));
        }
        let digest = crate::jose::sha256(token.as_bytes());
        let jwks = &self.validator.jwks;
        // Read before validating: a key set installed meanwhile makes the entry re-checked.
        let generation = jwks.generation();
        if let Some(entry) = self.validated.get(&digest) {
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
            self.validated.invalidate(&digest);
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
                    digest,
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

    fn entry(until: SystemTime) -> Arc<ValidatedToken> {
        Arc::new(ValidatedToken {
            caller: Arc::new(Caller::local_developer()),
            until,
            kid: "k".into(),
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    #[test]
    fn a_validated_token_past_its_expiry_is_never_served() {
        let cache = validated_cache(16);
        let now = SystemTime::now();
        cache.insert([1; 32], entry(now - Duration::from_secs(1)));
        cache.insert([2; 32], entry(now + Duration::from_secs(3600)));
        assert!(cache.get(&[1; 32]).is_none(), "expired");
        assert!(cache.get(&[2; 32]).is_some(), "still valid");
        // Replacing an expired entry gives the new one its own lifetime.
        cache.insert([1; 32], entry(now + Duration::from_secs(3600)));
        assert!(cache.get(&[1; 32]).is_some());
        cache.insert([2; 32], entry(now - Duration::from_secs(1)));
        assert!(
            cache.get(&[2; 32]).is_none(),
            "replaced by an expired token"
        );
    }

    #[test]
    fn the_validated_token_cache_is_bounded() {
        let cache = validated_cache(3);
        let later = SystemTime::now() + Duration::from_secs(3600);
        for i in 0..10u8 {
            cache.insert([i; 32], entry(later));
        }
        cache.run_pending_tasks();
        assert_eq!(cache.entry_count(), 3);
    }
}
