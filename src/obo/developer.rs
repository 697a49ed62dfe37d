//! Local mode tokens: the developer's own sign-in from the Azure CLI or the Azure Developer
//! CLI (azure_identity's `DeveloperToolsCredential`), as the original sample does locally.
//!
//! Used only with `auth.mode = none`, which the configuration allows only on loopback.
//! The CLI is a process spawn per token, so tokens are cached here until shortly before
//! they expire.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use tokio::sync::Mutex;

use super::{AccessToken, DownstreamTokens, Error};
use crate::obo::Caller;

/// Refresh a cached token this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(120);

/// Tokens from the developer's local sign-in.
pub struct DeveloperTokens {
    credential: Option<Arc<dyn TokenCredential>>,
    /// Why the credential could not be built, when it could not.
    unavailable: Option<String>,
    /// One entry per scope set; the lock also keeps concurrent first calls to one CLI spawn.
    cache: Mutex<HashMap<String, AccessToken>>,
}

impl DeveloperTokens {
    /// Developer tools credential for `tenant_id` (the CLI's default tenant when `None`).
    pub fn new(tenant_id: Option<&str>) -> Self {
        let built = match tenant_id {
            Some(tenant) => azure_identity::AzureCliCredential::new(Some(
                azure_identity::AzureCliCredentialOptions {
                    tenant_id: Some(tenant.to_owned()),
                    ..Default::default()
                },
            ))
            .map(|c| c as Arc<dyn TokenCredential>),
            None => azure_identity::DeveloperToolsCredential::new(None)
                .map(|c| c as Arc<dyn TokenCredential>),
        };
        match built {
            Ok(credential) => Self::from_credential(credential),
            Err(e) => Self {
                credential: None,
                unavailable: Some(e.to_string()),
                cache: Mutex::default(),
            },
        }
    }

    /// Tokens from any azure_core credential (tests pass their own).
    pub fn from_credential(credential: Arc<dyn TokenCredential>) -> Self {
        Self {
            credential: Some(credential),
            unavailable: None,
            cache: Mutex::default(),
        }
    }
}

#[async_trait]
impl DownstreamTokens for DeveloperTokens {
    async fn token(&self, _caller: &Caller, scopes: &[&str]) -> Result<AccessToken, Error> {
        let Some(credential) = &self.credential else {
            return Err(Error::DeveloperCredentialUnavailable {
                detail: self.unavailable.clone().unwrap_or_default(),
            });
        };
        let key = scopes.join(" ");
        let mut cache = self.cache.lock().await;
        if let Some(token) = cache.get(&key).filter(|t| t.valid_for(EXPIRY_MARGIN)) {
            return Ok(token.clone());
        }
        let fresh = credential.get_token(scopes, None).await.map_err(|e| {
            Error::DeveloperCredentialUnavailable {
                detail: first_line(&e.to_string()),
            }
        })?;
        let expires_on = fresh.expires_on.unix_timestamp();
        // Before 1970 reads as already expired: used once, never cached.
        let expires_at = crate::jose::expiry_at_unix(u64::try_from(expires_on).unwrap_or(0))
            .ok_or_else(|| Error::DeveloperCredentialUnavailable {
                detail: format!(
                    "the developer tool's token expires at unix time {expires_on}, more than ten years from now; refusing it (check the system clock)"
                ),
            })?;
        let token = AccessToken::new(fresh.token.secret(), expires_at);
        cache.insert(key, token.clone());
        Ok(token)
    }

    async fn invalidate(&self, _caller: &Caller, scopes: &[&str]) {
        self.cache.lock().await.remove(&scopes.join(" "));
    }
}

/// CLI errors can run to pages; the first lines say what went wrong.
fn first_line(message: &str) -> String {
    let trimmed: String = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    trimmed.chars().take(400).collect()
}
