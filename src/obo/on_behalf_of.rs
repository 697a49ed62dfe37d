//! [`OboTokens`]: the production [`DownstreamTokens`]: a cache hit, or one single-flight
//! exchange of the caller's token for a downstream token.

use std::sync::Arc;

use async_trait::async_trait;

use super::cache::{CacheKey, OboCache};
use super::exchange::Exchanger;
use super::{AccessToken, DownstreamTokens, Error};
use crate::auth::Caller;

/// On-behalf-of tokens for callers with a validated user token.
pub struct OboTokens {
    exchanger: Arc<Exchanger>,
    cache: Arc<OboCache>,
}

impl OboTokens {
    pub fn new(exchanger: Exchanger, cache: OboCache) -> Self {
        Self {
            exchanger: Arc::new(exchanger),
            cache: Arc::new(cache),
        }
    }

    /// The cache, for metrics.
    pub fn cache(&self) -> &Arc<OboCache> {
        &self.cache
    }
}

#[async_trait]
impl DownstreamTokens for OboTokens {
    async fn token(&self, caller: &Caller, scopes: &[&str]) -> Result<AccessToken, Error> {
        if caller.app_only {
            return Err(Error::AppOnly {
                code: "app-only token".into(),
            });
        }
        let assertion = caller.assertion.clone().ok_or(Error::NoUserToken)?;
        let key = CacheKey::new(assertion.digest(), scopes);
        let exchanger = self.exchanger.clone();
        let caller = caller.clone();
        let owned: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let user_expires_at = assertion.expires_at();
        let (result, lookup) = self
            .cache
            .get_or_exchange(key, user_expires_at, move || async move {
                let scopes: Vec<&str> = owned.iter().map(String::as_str).collect();
                exchanger
                    .exchange(&caller, assertion.expose(), &scopes)
                    .await
                    .map(|(token, _)| token)
            })
            .await;
        tracing::debug!(
            cache = lookup.as_str(),
            ok = result.is_ok(),
            "on-behalf-of token"
        );
        result
    }

    async fn invalidate(&self, caller: &Caller, scopes: &[&str]) {
        if let Some(assertion) = &caller.assertion {
            self.cache
                .remove(&CacheKey::new(assertion.digest(), scopes));
        }
    }
}
