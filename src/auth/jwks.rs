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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use url::Url;

/// One verification key and the algorithm it is for.
#[derive(Clone)]
pub struct VerifyingKey {
    pub key: Arc<DecodingKey>,
    pub algorithm: Algorithm,
}

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

#[derive(Deserialize)]
struct Discovery {
    issuer: Option<String>,
    jwks_uri: Url,
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
        let set: JwkSet = self.get_json(&jwks_uri).await?;
        self.install(&set)
            .ok_or_else(|| format!("{jwks_uri} lists no usable signing keys"))
    }

    /// The checked issuer (when one is expected), or why the document is not trusted.
    fn check_discovery(&self, discovery: &Discovery) -> Result<Option<Arc<str>>, String> {
        let url = &self.discovery_url;
        let jwks_uri = &discovery.jwks_uri;
        if !keys_url_is_secure(jwks_uri) {
            return Err(format!(
                "the discovery document at {url} gives jwks_uri {jwks_uri}, which does not use https (plain http is accepted only for loopback hosts); the issuer's signing keys must come over TLS, so fix the identity provider's configuration"
            ));
        }
        let Some(expected) = &self.expected_issuer else {
            return Ok(None);
        };
        match discovery.issuer.as_deref() {
            Some(declared) if expected.iter().any(|e| e == declared) => {
                Ok(Some(Arc::from(declared)))
            }
            declared => {
                let configured = expected.first().map(String::as_str).unwrap_or_default();
                let declared = match declared {
                    Some(d) => format!("issuer {d:?}"),
                    None => "no issuer".to_owned(),
                };
                Err(format!(
                    "the discovery document at {url} declares {declared}, but auth.issuer is {configured:?}; they must be identical (OpenID Connect Discovery 4.3): set auth.issuer to exactly the issuer the provider declares"
                ))
            }
        }
    }

    /// Replaces the cached keys with the usable signing keys of `set`; `None` (keeping the
    /// old keys) when it has none. Also how embedders and benchmarks preload keys.
    pub fn install(&self, set: &JwkSet) -> Option<usize> {
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
                continue;
            }
            let Some(algorithm) = algorithm_for(jwk) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(
                    kid,
                    VerifyingKey {
                        key: Arc::new(key),
                        algorithm,
                    },
                );
            }
        }
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

/// The only algorithms ever accepted, by key type. `none` and HMAC never are.
fn algorithm_for(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    let declared = jwk.common.key_algorithm;
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => match declared {
            None | Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
            Some(KeyAlgorithm::RS384) => Some(Algorithm::RS384),
            Some(KeyAlgorithm::RS512) => Some(Algorithm::RS512),
            Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
            Some(KeyAlgorithm::PS384) => Some(Algorithm::PS384),
            Some(KeyAlgorithm::PS512) => Some(Algorithm::PS512),
            _ => None,
        },
        AlgorithmParameters::EllipticCurve(params) => match (declared, &params.curve) {
            (None | Some(KeyAlgorithm::ES256), jsonwebtoken::jwk::EllipticCurve::P256) => {
                Some(Algorithm::ES256)
            }
            (None | Some(KeyAlgorithm::ES384), jsonwebtoken::jwk::EllipticCurve::P384) => {
                Some(Algorithm::ES384)
            }
            _ => None,
        },
        _ => None,
    }
}

/// Whether signing keys may be fetched from `jwks_uri`: https, or plain http to a loopback
/// host only. Shared with `mcp-obo doctor`, so it cannot pass keys the server refuses.
pub fn keys_url_is_secure(jwks_uri: &Url) -> bool {
    match jwks_uri.scheme() {
        "https" => true,
        "http" => crate::config::is_loopback_url(jwks_uri),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves `discovery` at `/.well-known/openid-configuration` and an empty-ish key set at
    /// `/jwks`; returns the base URL.
    async fn issuer_serving(discovery: impl Fn(&str) -> serde_json::Value) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let doc = discovery(&base);
        let key = crate::jose::SigningKey::generate_rsa("k1").expect("rsa");
        let jwks = serde_json::json!({"keys": [key.public_jwk()]});
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let doc = doc.clone();
                    async move { axum::Json(doc) }
                }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || {
                    let jwks = jwks.clone();
                    async move { axum::Json(jwks) }
                }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        base
    }

    fn cache(base: &str) -> JwksCache {
        let url = Url::parse(&format!("{base}/.well-known/openid-configuration")).expect("url");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        JwksCache::new(url, http, Duration::ZERO)
    }

    #[tokio::test]
    async fn a_plain_http_jwks_uri_is_refused_unless_loopback() {
        let base = issuer_serving(
            |base| serde_json::json!({"issuer": base, "jwks_uri": "http://jwks.invalid/jwks"}),
        )
        .await;
        let jwks = cache(&base);
        let error = jwks.refresh().await.expect_err("http jwks_uri");
        assert!(
            error.contains("https") && error.contains("jwks_uri"),
            "{error}"
        );
        assert!(!jwks.is_loaded());
    }

    #[tokio::test]
    async fn a_loopback_http_jwks_uri_is_accepted() {
        let base = issuer_serving(
            |base| serde_json::json!({"issuer": base, "jwks_uri": format!("{base}/jwks")}),
        )
        .await;
        let jwks = cache(&base);
        assert_eq!(jwks.refresh().await, Ok(1));
        assert!(jwks.is_loaded());
    }

    fn cache_expecting(base: &str, configured: &str) -> JwksCache {
        cache(base).with_issuer(&Url::parse(configured).expect("issuer"))
    }

    #[tokio::test]
    async fn the_declared_issuer_must_be_the_configured_one_exactly() {
        let base = issuer_serving(|b| serde_json::json!({"issuer": format!("{b}/realm"), "jwks_uri": format!("{b}/jwks")})).await;
        let jwks = cache_expecting(&base, &format!("{base}/realm/"));
        let error = jwks.refresh().await.expect_err("issuer mismatch");
        assert!(error.contains("auth.issuer"), "{error}");
        assert!(!jwks.is_loaded());
        assert_eq!(jwks.issuer(), None);
        let jwks = cache_expecting(&base, &format!("{base}/realm"));
        assert_eq!(jwks.refresh().await, Ok(1));
        assert_eq!(
            jwks.issuer().as_deref(),
            Some(format!("{base}/realm").as_str())
        );
    }

    #[tokio::test]
    async fn a_document_without_issuer_is_refused_when_one_is_expected() {
        let base = issuer_serving(|b| serde_json::json!({"jwks_uri": format!("{b}/jwks")})).await;
        let jwks = cache_expecting(&base, &base);
        let error = jwks.refresh().await.expect_err("no issuer");
        assert!(error.contains("no issuer"), "{error}");
    }

    #[tokio::test]
    async fn a_bare_origin_issuer_is_the_spelling_the_provider_declares() {
        for declared in ["", "/"] {
            let base = issuer_serving(|b| {
                serde_json::json!({"issuer": format!("{b}{declared}"), "jwks_uri": format!("{b}/jwks")})
            })
            .await;
            // Parsed, the configured `http://127.0.0.1:port` reads `http://127.0.0.1:port/`.
            let jwks = cache_expecting(&base, &base);
            assert_eq!(jwks.refresh().await, Ok(1), "declared {declared:?}");
            assert_eq!(
                jwks.issuer().as_deref(),
                Some(format!("{base}{declared}").as_str())
            );
        }
    }
}
