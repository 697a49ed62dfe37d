//! Outbound tokens: how a tool gets a token for a downstream API (Microsoft Graph) that
//! acts for its caller.
//!
//! - `token.rs`: [`AccessToken`], a downstream token whose `Debug` is redacted.
//! - `error.rs`: [`Error`], each variant with text that tells the user what to do.
//! - `developer.rs`: [`DeveloperTokens`], the local mode (`auth.mode = none`): the developer's
//!   own Azure CLI / Azure Developer CLI sign-in, through azure_identity.
//! - `on_behalf_of.rs`: [`OboTokens`], with inbound authorization: cache or exchange.
//! - `cache.rs`: [`OboCache`], per-user, a bounded moka cache with per-entry expiry and
//!   single-flight exchanges.
//! - `exchange.rs`: [`Exchanger`], the token endpoint request (Entra OBO, RFC 8693).
//! - `claims.rs`: [`Claims`], a downstream API's claims challenge, and the `claims`
//!   parameter declaring the client capabilities (continuous access evaluation).
//! - `settings.rs`: [`Settings`], the `[obo]` section.
//! - `shared_cache/`: [`SharedCache`], the optional second level on Redis shared by every
//!   replica, and its `[obo.shared_cache]` section.
//! - `assertion.rs`: [`AssertionSource`], the client credential (managed identity,
//!   workload identity, secret, certificate).
//! - `user_assertion.rs`: [`UserAssertion`], the caller's own token, sealed: only this
//!   module can read it.
//!
//! Tools ask [`DownstreamTokens`] and never see how the token was obtained, so the
//! on-behalf-of exchange (client assertion + the caller's token → token endpoint) plugs in
//! behind the same trait.

mod assertion;
pub mod cache;
mod caller;
mod claims;
mod developer;
mod error;
mod exchange;
mod on_behalf_of;
mod settings;
pub mod shared_cache;
mod token;
mod user_assertion;

use async_trait::async_trait;

pub use assertion::{AssertionSource, ClientAuth};
pub use cache::OboCache;
pub use caller::Caller;
pub use claims::Claims;
pub(crate) use claims::MAX_CLAIMS_BYTES;
pub use developer::DeveloperTokens;
pub use error::Error;
pub(crate) use error::first_line;
pub use exchange::{Exchanger, TokenEndpoint};
pub use on_behalf_of::OboTokens;
pub use settings::{AssertionKind, OboGrant, Settings};
pub use shared_cache::{Settings as SharedCacheSettings, SharedCache};
pub use token::AccessToken;
pub use user_assertion::UserAssertion;

/// The token source when inbound authorization is on but no exchange is configured.
pub struct Unconfigured;

#[async_trait]
impl DownstreamTokens for Unconfigured {
    async fn token(&self, _caller: &Caller, _scopes: &[&str]) -> Result<AccessToken, Error> {
        Err(Error::NotConfigured)
    }

    async fn invalidate(&self, _caller: &Caller, _scopes: &[&str]) {}
}

/// Builds the on-behalf-of token source from the `[obo]` section, or [`Unconfigured`] when
/// no client assertion is configured. `entra` gives the default client id and the Entra
/// token endpoint (the caller's tenant's under a multi-tenant endpoint); `public_url` the
/// default consent URL.
///
/// # Errors
/// When the assertion source cannot be set up (managed identity, certificate).
pub fn from_settings(
    obo: &Settings,
    entra: &EntraApp,
    public_url: &url::Url,
) -> Result<std::sync::Arc<dyn DownstreamTokens>, Error> {
    use crate::config::trim_slash;
    let Some(kind) = obo.client_assertion else {
        return Ok(std::sync::Arc::new(Unconfigured));
    };
    let client_id = obo
        .client_id
        .clone()
        .unwrap_or_else(|| entra.client_id.clone());
    let assertion = AssertionSource::from_settings(obo, kind, &client_id)?;
    let endpoint = match &obo.token_endpoint {
        Some(url) => TokenEndpoint::Fixed(url.to_string()),
        None => TokenEndpoint::Entra {
            authority: entra.authority.clone(),
            per_caller_tenant: entra.multi_tenant,
            tenant: entra.tenant.clone(),
        },
    };
    let unbuildable = |detail: String| Error::Unreachable {
        dependency: "token endpoint",
        detail,
    };
    let http = crate::outbound::builder()
        .map_err(|e| unbuildable(e.to_string()))?
        .connect_timeout(std::time::Duration::from_secs(5).min(obo.timeout))
        .timeout(obo.timeout)
        .build()
        .map_err(|e| unbuildable(e.to_string()))?;
    let exchanger = Exchanger {
        http,
        grant: obo.grant,
        client_id,
        endpoint,
        assertion,
        max_retries: obo.max_retries,
        consent_url: obo.consent_url.as_ref().map(url::Url::to_string),
        public_url: trim_slash(public_url),
        audience: obo.audience.clone(),
        client_capabilities: obo.client_capabilities.clone(),
    };
    let shared = SharedCache::from_settings(obo, &exchanger.client_id, &entra.tenant)?;
    Ok(std::sync::Arc::new(
        OboTokens::new(
            exchanger,
            OboCache::new(obo.cache_max_entries, obo.expiry_margin)
                .remembering_failures_for(obo.failure_cache_ttl),
        )
        .sharing(shared),
    ))
}

/// The Entra application the exchange acts as where `[obo]` leaves it unset: what `obo/`
/// needs of the resolved `[entra]` section ([`crate::auth::Entra::exchange_app`]), as plain
/// values.
#[derive(Debug, Clone)]
pub struct EntraApp {
    /// The application (client) id.
    pub client_id: String,
    /// The authority host, without its trailing slash.
    pub authority: String,
    /// The tenancy's path segment: a tenant id, `organizations` or `common`.
    pub tenant: String,
    /// Whether the app is multi-tenant: the exchange then goes to the caller's own tenant.
    pub multi_tenant: bool,
}

/// The seam between tools and token acquisition.
#[async_trait]
pub trait DownstreamTokens: Send + Sync + 'static {
    /// A token for `scopes` (e.g. `https://graph.microsoft.com/.default`) acting for `caller`.
    ///
    /// # Errors
    /// An [`Error`] whose [`Error::user_message`] says what the user can do about it.
    async fn token(&self, caller: &Caller, scopes: &[&str]) -> Result<AccessToken, Error>;

    /// Forget a cached token the downstream API refused (401), so the next call gets a
    /// fresh one.
    async fn invalidate(&self, caller: &Caller, scopes: &[&str]);

    /// A fresh token for `scopes` acting for `caller`, requested with the `claims` a
    /// downstream API's claims challenge (continuous access evaluation) asked for: never
    /// served from the cache, and it replaces the cached entry. Sources that cannot pass
    /// claims on (the developer's own sign-in) answer as [`Self::token`] after
    /// [`Self::invalidate`].
    ///
    /// # Errors
    /// As [`Self::token`]; [`Error::ClaimsChallenge`] when the user must sign in again.
    async fn token_with_claims(
        &self,
        caller: &Caller,
        scopes: &[&str],
        _claims: &Claims,
    ) -> Result<AccessToken, Error> {
        self.invalidate(caller, scopes).await;
        self.token(caller, scopes).await
    }
}
