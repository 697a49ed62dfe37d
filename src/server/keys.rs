//! The issuer's signing keys: the cache the token modes validate with, fetched at start-up
//! (retrying with backoff until the issuer answers) and refreshed every
//! `auth.jwks_refresh_interval`.

use std::sync::Arc;

use rmcp_actix_web::transport::CancellationToken;

use super::StartError;
use crate::auth::{AuthMode, JwksCache};

/// The issuer's key cache for token modes; `None` with `auth.mode = none`.
pub(super) fn issuer_keys(
    auth: &crate::auth::Settings,
    entra: &crate::auth::Entra,
) -> Result<Option<Arc<JwksCache>>, StartError> {
    let Some(discovery) = crate::auth::discovery_url(auth, entra) else {
        return Ok(None);
    };
    let url = url::Url::parse(&discovery)
        .map_err(|e| StartError::Config(format!("discovery URL {discovery}: {e}")))?;
    let http = crate::outbound::builder()?
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let jwks = JwksCache::new(url, http, auth.jwks_min_refresh_interval);
    // OIDC: the discovery document must name the configured issuer. Entra's multi-tenant
    // documents name a `{tenantid}` template; its issuers are checked per token instead.
    let jwks = match (auth.mode, &auth.issuer) {
        (AuthMode::Oidc, Some(issuer)) => jwks.with_issuer(issuer),
        _ => jwks,
    };
    Ok(Some(Arc::new(jwks)))
}

/// Fetches the issuer's keys now (retrying with backoff until it works) and then every
/// `interval`, until `cancel`.
pub(super) fn spawn_key_refresh(
    jwks: Arc<JwksCache>,
    interval: std::time::Duration,
    cancel: CancellationToken,
) {
    actix_web::rt::spawn(async move {
        let mut backoff = std::time::Duration::from_millis(250);
        loop {
            let wait = match jwks.refresh().await {
                Ok(_) => {
                    backoff = std::time::Duration::from_millis(250);
                    interval
                }
                Err(_) => {
                    let wait = if jwks.is_loaded() {
                        interval.min(backoff * 8)
                    } else {
                        backoff
                    };
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(60));
                    wait
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    });
}
