//! Microsoft Entra authentication to Redis (Azure Managed Redis): a token for
//! `https://redis.azure.com/.default` from the server's own managed or workload identity,
//! through the project's azure_identity, presented as `AUTH <object id> <token>`.
//!
//! redis-rs's credentials-provider hook does the rest: each new connection takes the current
//! credentials, and every live connection re-authenticates whenever new ones are published.
//! A task here renews the token before it expires and publishes it.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use azure_core::credentials::TokenCredential;
use futures_util::Stream;
use redis::RedisResult;
use redis::auth::{BasicAuth, StreamingCredentialsProvider};
use tokio::sync::watch;

use crate::obo::first_line;

/// The scope of Azure Managed Redis (and Azure Cache for Redis) data-plane tokens.
pub(super) const REDIS_SCOPE: &str = "https://redis.azure.com/.default";
/// Renew this long before the token expires.
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// Never renew more often than this, whatever the token says.
const MIN_RENEWAL: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The identity the token comes from.
pub(super) enum Identity {
    /// Container Apps / App Service: the user-assigned identity's client id, or the
    /// system-assigned one.
    Managed { client_id: Option<String> },
    /// AKS: the app the service account federates to.
    Workload {
        client_id: String,
        tenant_id: String,
        token_file: std::path::PathBuf,
    },
}

/// The current credentials, for redis-rs; cloned into every connection it opens.
#[derive(Clone)]
pub(super) struct EntraCredentials {
    current: watch::Receiver<Option<BasicAuth>>,
}

impl EntraCredentials {
    /// Starts the renewal task (on the current tokio runtime) and returns its credentials.
    /// `username` overrides the token's `oid` as the ACL user.
    ///
    /// # Errors
    /// When the credential cannot be set up (the message is azure_identity's first line).
    pub fn start(identity: Identity, username: Option<String>) -> Result<Self, String> {
        let credential = credential(identity)?;
        let (publish, current) = watch::channel(None);
        tokio::spawn(renew(credential, username, publish));
        Ok(Self { current })
    }
}

impl StreamingCredentialsProvider for EntraCredentials {
    fn subscribe(&self) -> Pin<Box<dyn Stream<Item = RedisResult<BasicAuth>> + Send + 'static>> {
        let mut current = self.current.clone();
        // The first item is whatever is current (a connection waits for the first token).
        current.mark_changed();
        Box::pin(futures_util::stream::unfold(
            current,
            |mut current| async move {
                loop {
                    current.changed().await.ok()?;
                    let published = current.borrow_and_update().clone();
                    if let Some(auth) = published {
                        return Some((Ok(auth), current));
                    }
                }
            },
        ))
    }
}

fn credential(identity: Identity) -> Result<Arc<dyn TokenCredential>, String> {
    match identity {
        Identity::Managed { client_id } => {
            let options = azure_identity::ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.map(azure_identity::UserAssignedId::ClientId),
                ..Default::default()
            };
            azure_identity::ManagedIdentityCredential::new(Some(options))
                .map(|c| c as Arc<dyn TokenCredential>)
                .map_err(|e| first_line(&e.to_string()))
        }
        Identity::Workload {
            client_id,
            tenant_id,
            token_file,
        } => {
            let options = azure_identity::WorkloadIdentityCredentialOptions {
                client_id: Some(client_id),
                tenant_id: Some(tenant_id),
                token_file_path: Some(token_file),
                ..Default::default()
            };
            azure_identity::WorkloadIdentityCredential::new(Some(options))
                .map(|c| c as Arc<dyn TokenCredential>)
                .map_err(|e| first_line(&e.to_string()))
        }
    }
}

/// Obtains a token, publishes it, and sleeps until shortly before it expires; on failure
/// retries with a growing pause. Ends when nobody holds the credentials any more.
async fn renew(
    credential: Arc<dyn TokenCredential>,
    username: Option<String>,
    publish: watch::Sender<Option<BasicAuth>>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let pause = match credential.get_token(&[REDIS_SCOPE], None).await {
            Ok(token) => {
                let secret = token.token.secret();
                match username.clone().or_else(|| object_id(secret)) {
                    Some(user) => {
                        publish.send_replace(Some(BasicAuth::new(user, secret.to_owned())));
                        backoff = Duration::from_secs(1);
                        renewal_pause(SystemTime::from(token.expires_on))
                    }
                    None => {
                        crate::telemetry::metrics::shared_cache_error("auth", "error");
                        tracing::warn!(
                            target: "mcp_obo::obo",
                            "the token obtained for Redis has no oid claim to use as the ACL user: set obo.shared_cache.username"
                        );
                        MAX_BACKOFF
                    }
                }
            }
            Err(e) => {
                crate::telemetry::metrics::shared_cache_error("auth", "error");
                tracing::warn!(
                    target: "mcp_obo::obo",
                    error = %first_line(&e.to_string()),
                    "cannot obtain a Microsoft Entra token for Redis; the shared token cache is bypassed until one is obtained"
                );
                let pause = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                pause
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = publish.closed() => return,
        }
    }
}

/// How long until the token should be renewed.
fn renewal_pause(expires_at: SystemTime) -> Duration {
    expires_at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
        .saturating_sub(RENEW_BEFORE)
        .max(MIN_RENEWAL)
}

/// The `oid` claim of a JWT, read without verification: the token is our own, just issued
/// to us, and only names the ACL user Redis then checks it against.
fn object_id(jwt: &str) -> Option<String> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("oid")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acl_user_is_the_tokens_object_id() {
        use base64::Engine;
        let encode = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let jwt = format!(
            "{}.{}.sig",
            encode(r#"{"alg":"RS256"}"#),
            encode(
                r#"{"oid":"6a1f0c3e-0000-4000-8000-000000000001","aud":"https://redis.azure.com"}"#
            )
        );
        assert_eq!(
            object_id(&jwt).as_deref(),
            Some("6a1f0c3e-0000-4000-8000-000000000001")
        );
        assert_eq!(object_id("not-a-jwt"), None);
    }

    #[test]
    fn tokens_are_renewed_five_minutes_before_they_expire_but_not_in_a_loop() {
        let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
        let pause = renewal_pause(in_an_hour);
        assert!(pause <= Duration::from_secs(3300) && pause > Duration::from_secs(3290));
        assert_eq!(renewal_pause(SystemTime::now()), MIN_RENEWAL);
    }
}
