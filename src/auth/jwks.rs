//! The issuer's signing keys: fetched from OIDC discovery, cached by `kid`.
//!
//! - An unknown `kid` triggers a refresh (keys rotate), at most once per
//!   `auth.jwks_min_refresh_interval`, and one fetch at a time (single flight).
//! - A periodic refresh keeps the set current; a failed fetch keeps the last good keys.
//! - Start-up does not wait: until the first fetch succeeds, readiness says not ready and
//!   tokens are answered 503 (not 401, which would send users back to sign in).
//! - The discovery document is checked before its keys are trusted: `jwks_uri` must be https
//!   (plain http only on loopback), and with an expected issuer (`oidc` mode) its `issuer`
//!   must be that issuer exactly (OIDC Discovery §4.3). A failed check is a failed refresh.
//! - A key that declares its own `issuer` (Entra's multi-tenant key sets do, as a
//!   `{tenantid}` template) is kept with it, and verifies only that issuer's tokens
//!   ([`VerifyingKey::allows_issuer`]); a key whose `issuer` is not a string is not used.
//!
//! Here the cache, [`JwksCache`]; beside it:
//! - `key.rs`: [`VerifyingKey`], which keys of a set are usable and the issuer each is bound to;
//! - `discovery.rs`: the discovery document and its checks ([`keys_url_is_secure`]).

mod discovery;
mod key;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use url::Url;

use discovery::Discovery;
pub use discovery::keys_url_is_secure;
pub use key::VerifyingKey;
use key::{DeclaredIssuer, declared_issuers, usable_keys};

/// Why a key could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// The issuer's key set (after any allowed refresh) has no such `kid`.
    Unknown,
    /// No keys have ever been fetched: the issuer is unreachable.
    Unavailable,
}

/// Cached JWKS of one issuer.
pub struct JwksCache {
    discovery_url: Url,
    http: reqwest::Client,
    min_refresh_interval: Duration,
    keys: RwLock<Arc<HashMap<String, VerifyingKey>>>,
    jwks_uri: Mutex<Option<Url>>,
    last_attempt: Mutex<Option<Instant>>,
    /// Single flight: one refresh at a time; others wait and then reuse its result.
    refreshing: tokio::sync::Mutex<()>,
    loaded: AtomicBool,
    /// Bumped whenever a new key set is installed.
    generation: AtomicU64,
    /// The spellings of the issuer the discovery document must declare; `None` checks none
    /// (Entra's multi-tenant documents declare a `{tenantid}` template).
    expected_issuer: Option<Vec<String>>,
    /// The issuer the discovery document declared, once checked against `expected_issuer`.
    issuer: RwLock<Option<Arc<str>>>,
}

impl JwksCache {
    pub fn new(discovery_url: Url, http: reqwest::Client, min_refresh_interval: Duration) -> Self {
        Self {
            discovery_url,
            http,
            min_refresh_interval,
            keys: RwLock::new(Arc::new(HashMap::new())),
            jwks_uri: Mutex::new(None),
            last_attempt: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            loaded: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            expected_issuer: None,
            issuer: RwLock::new(None),
        }
    }

    /// Requires the discovery document's `issuer` to be exactly `issuer` (OIDC mode).
    ///
    /// A URL that is a bare origin reads the same with or without its trailing slash once
    /// parsed (`https://idp` becomes `https://idp/`), so for one both spellings are accepted
    /// here, and the one the document declares is then the only one tokens may carry.
    #[must_use]
    pub fn with_issuer(mut self, issuer: &Url) -> Self {
        let exact = issuer.as_str().to_owned();
        let mut spellings = vec![exact.clone()];
        if issuer.path() == "/" && issuer.query().is_none() && issuer.fragment().is_none() {
            spellings.push(exact.trim_end_matches('/').to_owned());
        }
        self.expected_issuer = Some(spellings);
        self
    }

    /// The issuer the discovery document declared, when [`Self::with_issuer`] required one
    /// and the document matched it.
    pub fn issuer(&self) -> Option<Arc<str>> {
        self.issuer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Changes whenever a new key set is installed; compare before [`Self::publishes`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether the current key set has `kid` (no refresh).
    pub fn publishes(&self, kid: &str) -> bool {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(kid)
    }

    /// Whether a key set has been fetched at least once.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    fn cached(&self, kid: &str) -> Option<VerifyingKey> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.get(kid).cloned()
    }

    /// The key for `kid`, refreshing once (rate-limited) when it is not known.
    pub async fn key(&self, kid: &str) -> Result<VerifyingKey, KeyError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let _guard = self.refreshing.lock().await;
        // Another request may have refreshed while we waited.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let recently = {
            let last = self
                .last_attempt
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            last.is_some_and(|t| t.elapsed() < self.min_refresh_interval)
        };
        if !recently {
            tracing::debug!(kid, "unknown signing key id; refreshing the issuer's keys");
            let _ = self.fetch().await;
        }
        match self.cached(kid) {
            Some(key) => Ok(key),
            None if self.is_loaded() => Err(KeyError::Unknown),
            None => Err(KeyError::Unavailable),
        }
    }

    /// Refreshes now (the periodic task), single flight, keeping old keys on failure.
    ///
    /// # Errors
    /// A description of why the issuer could not be read (no secrets in it).
    pub async fn refresh(&self) -> Result<usize, String> {
        let _guard = self.refreshing.lock().await;
        self.fetch().await
    }

    async fn fetch(&self) -> Result<usize, String> {
        *self
            .last_attempt
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        let result = self.fetch_inner().await;
        match &result {
            Ok(count) => {
                tracing::debug!(keys = count, issuer = %self.discovery_url, "signing keys refreshed")
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh the issuer's signing keys; keeping the last good keys")
            }
        }
        result
    }

    async fn fetch_inner(&self) -> Result<usize, String> {
        let cached_uri = self
            .jwks_uri
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let jwks_uri = match cached_uri {
            Some(uri) => uri,
            None => {
                let discovery: Discovery = self.get_json(&self.discovery_url).await?;
                let issuer = self.check_discovery(&discovery)?;
                *self
                    .issuer
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = issuer;
                *self
                    .jwks_uri
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(discovery.jwks_uri.clone());
                discovery.jwks_uri
            }
        };
        let body: serde_json::Value = self.get_json(&jwks_uri).await?;
        let set = JwkSet::deserialize(&body)
            .map_err(|_| format!("{jwks_uri} did not answer with a JWK set"))?;
        self.install_declaring(&set, &declared_issuers(&body))
            .ok_or_else(|| format!("{jwks_uri} lists no usable signing keys"))
    }

    /// The checked issuer (when one is expected), or why the document is not trusted.
    fn check_discovery(&self, discovery: &Discovery) -> Result<Option<Arc<str>>, String> {
        discovery.check(&self.discovery_url, self.expected_issuer.as_deref())
    }

    /// Replaces the cached keys with the usable signing keys of `set`; `None` (keeping the
    /// old keys) when it has none. Also how embedders and benchmarks preload keys.
    /// (A [`JwkSet`] keeps no key's `issuer`: keys installed so are bound to none.)
    pub fn install(&self, set: &JwkSet) -> Option<usize> {
        self.install_declaring(set, &[])
    }

    /// As [`Self::install`], with `issuers[i]` what the set said of key `i`'s `issuer`.
    fn install_declaring(&self, set: &JwkSet, issuers: &[DeclaredIssuer]) -> Option<usize> {
        let keys = usable_keys(set, issuers);
        if keys.is_empty() {
            return None;
        }
        let count = keys.len();
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.loaded.store(true, Ordering::Release);
        Some(count)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &Url) -> Result<T, String> {
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {}", crate::outbound::failure(&e)))?;
        if !response.status().is_success() {
            return Err(format!(
                "{url} {}",
                crate::outbound::answered(response.status())
            ));
        }
        response
            .json::<T>()
            .await
            .map_err(|_| format!("{url} did not answer with the expected JSON"))
    }
}
