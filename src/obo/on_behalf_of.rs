//! [`OboTokens`]: the production [`DownstreamTokens`]: a cache hit, or one single-flight
//! exchange of the caller's token for a downstream token. With a [`SharedCache`], an
//! in-process miss asks it first, inside the single flight (a hit in process never does).

use std::sync::Arc;

use async_trait::async_trait;
use tracing::Instrument;

use super::cache::{CacheKey, Lookup, OboCache};
use super::exchange::Exchanger;
use super::{AccessToken, Claims, DownstreamTokens, Error, SharedCache};
use crate::obo::Caller;

/// On-behalf-of tokens for callers with a validated user token.
pub struct OboTokens {
    exchanger: Arc<Exchanger>,
    cache: Arc<OboCache>,
    /// The second level shared by every replica, if configured.
    shared: Option<SharedCache>,
}

impl OboTokens {
    pub fn new(exchanger: Exchanger, cache: OboCache) -> Self {
        Self {
            exchanger: Arc::new(exchanger),
            cache: Arc::new(cache),
            shared: None,
        }
    }

    /// Puts `shared` (if any) behind the in-process cache.
    #[must_use]
    pub fn sharing(mut self, shared: Option<SharedCache>) -> Self {
        self.shared = shared;
        self
    }

    /// The cache, for metrics.
    pub fn cache(&self) -> &Arc<OboCache> {
        &self.cache
    }
}

#[async_trait]
impl DownstreamTokens for OboTokens {
    async fn token(&self, caller: &Caller, scopes: &[&str]) -> Result<AccessToken, Error> {
        let span = self.exchange_span(caller, scopes);
        let result = self
            .token_inner(caller, scopes)
            .instrument(span.clone())
            .await;
        record_outcome(&span, &result);
        result
    }

    async fn invalidate(&self, caller: &Caller, scopes: &[&str]) {
        if let Some(assertion) = &caller.assertion {
            self.cache
                .remove(&CacheKey::new(assertion.digest(), scopes))
                .await;
            if let Some(shared) = &self.shared {
                shared.remove(assertion, scopes).await;
            }
        }
    }

    async fn token_with_claims(
        &self,
        caller: &Caller,
        scopes: &[&str],
        claims: &Claims,
    ) -> Result<AccessToken, Error> {
        let span = self.exchange_span(caller, scopes);
        span.record("obo.cache", "bypass");
        span.record("obo.claims", tracing::field::display(claims.names()));
        let result = self
            .exchange_with_claims(caller, scopes, claims)
            .instrument(span.clone())
            .await;
        record_outcome(&span, &result);
        result
    }
}

impl OboTokens {
    /// The `obo.exchange` span of one token request (cache, outcome and error recorded
    /// later).
    fn exchange_span(&self, caller: &Caller, scopes: &[&str]) -> tracing::Span {
        tracing::info_span!(
            target: "mcp_obo::obo",
            "obo.exchange",
            otel.kind = "internal",
            obo.grant = self.exchanger.grant_name(),
            obo.scopes = %scopes.join(" "),
            obo.tenant = %crate::telemetry::bounded(caller.tenant_id.as_deref().unwrap_or("")),
            obo.cache = tracing::field::Empty,
            obo.shared_cache = tracing::field::Empty,
            obo.claims = tracing::field::Empty,
            obo.outcome = tracing::field::Empty,
            obo.error_code = tracing::field::Empty,
            obo.retries = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
        )
    }

    /// [`DownstreamTokens::token_with_claims`]: the cached entry dropped first (a token the
    /// API refused is not served meanwhile), then the exchange's result in its place.
    async fn exchange_with_claims(
        &self,
        caller: &Caller,
        scopes: &[&str],
        claims: &Claims,
    ) -> Result<AccessToken, Error> {
        let user = user_of(caller)?;
        self.invalidate(caller, scopes).await;
        let result = self
            .exchanger
            .exchange_with_claims(caller, user.expose(), scopes, Some(claims))
            .await
            .map(|(token, _)| token);
        let key = CacheKey::new(user.digest(), scopes);
        self.cache.replace(key, &result, user.expires_at()).await;
        if let Some(shared) = &self.shared {
            shared.put(user, scopes, &result).await;
        }
        result
    }
}

impl OboTokens {
    async fn token_inner(&self, caller: &Caller, scopes: &[&str]) -> Result<AccessToken, Error> {
        let user = user_of(caller)?;
        let key = CacheKey::new(user.digest(), scopes);
        // The common case, before anything is cloned for an exchange.
        if let Some(token) = self.cache.get(&key).await {
            tracing::Span::current().record("obo.cache", Lookup::Hit.as_str());
            crate::telemetry::metrics::obo_cache_lookup(Lookup::Hit.as_str(), self.cache_entries());
            return Ok(token);
        }
        let assertion = user.clone();
        let exchanger = self.exchanger.clone();
        let caller = caller.clone();
        let owned: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let user_expires_at = assertion.expires_at();
        let span = tracing::Span::current();
        let shared = self.shared.clone();
        let (result, lookup) = self
            .cache
            .get_or_exchange(key, user_expires_at, move || {
                async move {
                    let scopes: Vec<&str> = owned.iter().map(String::as_str).collect();
                    let exchange = || async {
                        exchanger
                            .exchange(&caller, assertion.expose(), &scopes)
                            .await
                            .map(|(token, _)| token)
                    };
                    match &shared {
                        Some(shared) => shared.get_or_exchange(&assertion, &scopes, exchange).await,
                        None => exchange().await,
                    }
                }
                .instrument(span)
            })
            .await;
        tracing::Span::current().record("obo.cache", lookup.as_str());
        crate::telemetry::metrics::obo_cache_lookup(lookup.as_str(), self.cache_entries());
        result
    }

    /// The cache's (approximate) entry count, for the gauge.
    fn cache_entries(&self) -> usize {
        usize::try_from(self.cache.entry_count()).unwrap_or(usize::MAX)
    }
}

/// The user token to exchange: an app-only caller or one without a token has none.
fn user_of(caller: &Caller) -> Result<&super::UserAssertion, Error> {
    if caller.app_only {
        return Err(Error::AppOnly {
            code: "app-only token".into(),
        });
    }
    caller.assertion.as_ref().ok_or(Error::NoUserToken)
}

/// The outcome of an `obo.exchange` span: ok, or the error's code and (bounded) text.
fn record_outcome(span: &tracing::Span, result: &Result<AccessToken, Error>) {
    match result {
        Ok(_) => {
            span.record("obo.outcome", "ok");
        }
        Err(e) => {
            span.record("obo.outcome", "error");
            span.record("obo.error_code", e.code());
            span.record("otel.status_code", "ERROR");
            span.record(
                "otel.status_description",
                crate::telemetry::bounded(&e.to_string()).as_ref(),
            );
        }
    }
}
