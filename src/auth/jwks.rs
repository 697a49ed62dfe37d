//! The issuer's signing keys: fetched from OIDC discovery, cached by `kid`.
//!
//! - An unknown `kid` triggers a refresh (keys rotate), at most once per
//!   `auth.jwks_min_refresh_interval`, and one fetch at a time (single flight).
//! - A periodic refresh keeps the set current; a failed fetch keeps the last good keys.
//! - Start-up does not wait: until the first fetch succeeds, readiness says not ready and
//!   tokens are answered 503 (not 401, which would send users back to sign in).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
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
}

#[derive(Deserialize)]
struct Discovery {
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
        }
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
        self.loaded.store(true, Ordering::Release);
        Some(count)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &Url) -> Result<T, String> {
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {}", without_url(&e)))?;
        if !response.status().is_success() {
            return Err(format!(
                "{url} answered HTTP {}",
                response.status().as_u16()
            ));
        }
        response
            .json::<T>()
            .await
            .map_err(|_| format!("{url} did not answer with the expected JSON"))
    }
}

fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
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
        let base = issuer_serving(|base| {
            serde_json::json!({"issuer": base, "jwks_uri": "http://jwks.invalid/jwks"})
        })
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
        let base = issuer_serving(|base| {
            serde_json::json!({"issuer": base, "jwks_uri": format!("{base}/jwks")})
        })
        .await;
        let jwks = cache(&base);
        assert_eq!(jwks.refresh().await, Ok(1));
        assert!(jwks.is_loaded());
    }
}
