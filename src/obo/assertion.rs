//! Client credentials for the token exchange, with no stored secret where the platform
//! offers federation:
//!
//! - managed identity (Container Apps / App Service): a token for
//!   `{token_exchange_audience}/.default` from `IDENTITY_ENDPOINT`, via azure_identity, cached
//!   until shortly before it expires;
//! - workload identity (AKS): the projected service-account token file, re-read whenever it
//!   changes (it rotates);
//! - client secret, or a certificate (`private_key_jwt` with `x5t#S256`), for tenants that
//!   cannot use federation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use azure_core::credentials::TokenCredential;
use tokio::sync::Mutex;

use super::Error;
use super::error::first_line;
use super::{AssertionKind, Settings as OboSettings};
use crate::config::Secret;
use crate::jose::{SigningKey, b64url, sha256};

/// Re-fetch a managed identity assertion this long before it expires.
const ASSERTION_MARGIN: Duration = Duration::from_secs(300);

/// How the exchange request authenticates this server.
pub enum ClientAuth {
    /// `client_assertion_type=...jwt-bearer` + `client_assertion`.
    Assertion(String),
    /// `client_secret`.
    Secret(Secret),
}

/// Where the client credential comes from.
pub enum AssertionSource {
    ManagedIdentity {
        credential: Arc<dyn TokenCredential>,
        scope: String,
        cached: Mutex<Option<(Arc<str>, SystemTime)>>,
    },
    /// Read before every exchange (exchanges are rare: the cache answers the rest), so a
    /// rotated token is always the one sent.
    WorkloadIdentity {
        path: PathBuf,
    },
    ClientSecret(Secret),
    Certificate {
        key: SigningKey,
        thumbprint_s256: String,
        client_id: String,
    },
}

impl AssertionSource {
    /// The configured source.
    ///
    /// # Errors
    /// When a managed identity credential or certificate cannot be set up.
    pub fn from_settings(
        obo: &OboSettings,
        kind: AssertionKind,
        client_id: &str,
    ) -> Result<Self, Error> {
        match kind {
            AssertionKind::ManagedIdentity => {
                let options = azure_identity::ManagedIdentityCredentialOptions {
                    user_assigned_id: obo
                        .managed_identity_client_id
                        .clone()
                        .map(azure_identity::UserAssignedId::ClientId),
                    ..Default::default()
                };
                let credential = azure_identity::ManagedIdentityCredential::new(Some(options))
                    .map_err(|e| Error::AssertionUnavailable {
                        source_name: "managed identity",
                        detail: e.to_string(),
                    })?;
                Ok(Self::ManagedIdentity {
                    credential,
                    scope: format!(
                        "{}/.default",
                        obo.token_exchange_audience.trim_end_matches('/')
                    ),
                    cached: Mutex::new(None),
                })
            }
            AssertionKind::WorkloadIdentity => Ok(Self::WorkloadIdentity {
                path: obo.federated_token_file.clone().unwrap_or_default(),
            }),
            AssertionKind::ClientSecret => Ok(Self::ClientSecret(
                obo.client_secret.clone().unwrap_or_else(|| Secret::new("")),
            )),
            AssertionKind::Certificate => {
                let path = obo.certificate_file.clone().unwrap_or_default();
                let (key, thumbprint_s256) = load_certificate(&path)?;
                Ok(Self::Certificate {
                    key,
                    thumbprint_s256,
                    client_id: client_id.to_owned(),
                })
            }
        }
    }

    /// The name used in logs, traces and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ManagedIdentity { .. } => "managed identity",
            Self::WorkloadIdentity { .. } => "workload identity",
            Self::ClientSecret(_) => "client secret",
            Self::Certificate { .. } => "certificate",
        }
    }

    /// The credential for one exchange with `token_endpoint`.
    ///
    /// # Errors
    /// [`Error::AssertionUnavailable`] / [`Error::Unreachable`] naming the source.
    pub async fn client_auth(&self, token_endpoint: &str) -> Result<ClientAuth, Error> {
        use tracing::Instrument;
        let span = tracing::info_span!(
            target: "mcp_obo::obo",
            "obo.client_assertion",
            otel.kind = "internal",
            obo.assertion.source = self.name(),
            obo.assertion.outcome = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
        );
        let result = self
            .client_auth_inner(token_endpoint)
            .instrument(span.clone())
            .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => {
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_description", e.to_string());
                "error"
            }
        };
        span.record("obo.assertion.outcome", outcome);
        crate::telemetry::metrics::assertion_fetch(self.name(), outcome);
        result
    }

    async fn client_auth_inner(&self, token_endpoint: &str) -> Result<ClientAuth, Error> {
        match self {
            Self::ManagedIdentity {
                credential,
                scope,
                cached,
            } => managed_identity_assertion(credential.as_ref(), scope, cached).await,
            Self::WorkloadIdentity { path } => workload_identity_assertion(path).await,
            Self::ClientSecret(secret) => Ok(ClientAuth::Secret(secret.clone())),
            Self::Certificate {
                key,
                thumbprint_s256,
                client_id,
            } => certificate_assertion(key, thumbprint_s256, client_id, token_endpoint),
        }
    }
}

/// The managed identity's token for `scope`, the cached one while it has more than
/// [`ASSERTION_MARGIN`] left.
async fn managed_identity_assertion(
    credential: &dyn TokenCredential,
    scope: &str,
    cached: &Mutex<Option<(Arc<str>, SystemTime)>>,
) -> Result<ClientAuth, Error> {
    let mut cached = cached.lock().await;
    if let Some((token, expires)) = cached.as_ref()
        && SystemTime::now()
            .checked_add(ASSERTION_MARGIN)
            .is_some_and(|deadline| deadline < *expires)
    {
        return Ok(ClientAuth::Assertion(token.to_string()));
    }
    let token =
        credential
            .get_token(&[scope], None)
            .await
            .map_err(|e| Error::AssertionUnavailable {
                source_name: "managed identity",
                detail: first_line(&e.to_string()),
            })?;
    let expires_on = token.expires_on.unix_timestamp();
    // Before 1970 reads as already expired: used once, never cached.
    let expires = crate::jose::expiry_at_unix(u64::try_from(expires_on).unwrap_or(0))
        .ok_or_else(|| Error::AssertionUnavailable {
            source_name: "managed identity",
            detail: format!(
                "the identity endpoint says its token expires at unix time {expires_on}, more than ten years from now; refusing it (check the platform's identity endpoint and clock)"
            ),
        })?;
    let value: Arc<str> = Arc::from(token.token.secret());
    *cached = Some((value.clone(), expires));
    Ok(ClientAuth::Assertion(value.to_string()))
}

/// The projected service-account token in `path`, as it is now.
async fn workload_identity_assertion(path: &std::path::Path) -> Result<ClientAuth, Error> {
    let unavailable = |detail: String| Error::AssertionUnavailable {
        source_name: "workload identity token file",
        detail,
    };
    let content = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| unavailable(format!("{}: {e}", path.display())))?;
    let content = content.trim();
    if content.is_empty() {
        return Err(unavailable(format!("{} is empty", path.display())));
    }
    Ok(ClientAuth::Assertion(content.to_owned()))
}

/// A fresh `private_key_jwt` for `token_endpoint`, signed with the certificate's key.
fn certificate_assertion(
    key: &SigningKey,
    thumbprint_s256: &str,
    client_id: &str,
    token_endpoint: &str,
) -> Result<ClientAuth, Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // 128 random bits: unique per assertion, so the token endpoint can detect a
    // replayed one (RFC 7523 §3).
    let mut jti = [0u8; 16];
    aws_lc_rs::rand::fill(&mut jti).map_err(|_| Error::AssertionUnavailable {
        source_name: "certificate",
        detail: "the system's random number generator failed".into(),
    })?;
    let jti = b64url(&jti);
    let claims = serde_json::json!({
        "aud": token_endpoint,
        "iss": client_id,
        "sub": client_id,
        "jti": jti,
        "nbf": now,
        "iat": now,
        "exp": now.saturating_add(600),
    });
    let jwt = key
        .sign(
            "JWT",
            serde_json::json!({"x5t#S256": thumbprint_s256}),
            &claims,
        )
        .map_err(|e| Error::AssertionUnavailable {
            source_name: "certificate",
            detail: e.to_string(),
        })?;
    Ok(ClientAuth::Assertion(jwt))
}

/// Reads a PEM with a `CERTIFICATE` and a PKCS#8 `PRIVATE KEY` block.
fn load_certificate(path: &std::path::Path) -> Result<(SigningKey, String), Error> {
    let unavailable = |detail: String| Error::AssertionUnavailable {
        source_name: "certificate",
        detail,
    };
    let pem = std::fs::read_to_string(path)
        .map_err(|e| unavailable(format!("{}: {e}", path.display())))?;
    let cert = pem_block(&pem, "CERTIFICATE")
        .ok_or_else(|| unavailable(format!("{} has no CERTIFICATE block", path.display())))?;
    let key_der = pem_block(&pem, "PRIVATE KEY").ok_or_else(|| {
        unavailable(format!(
            "{} has no PKCS#8 PRIVATE KEY block",
            path.display()
        ))
    })?;
    let thumbprint = b64url(&sha256(&cert));
    let key = SigningKey::rsa_from_pkcs8(thumbprint.clone(), &key_der).map_err(|_| {
        unavailable(format!(
            "{}: the private key is not a PKCS#8 RSA key",
            path.display()
        ))
    })?;
    Ok((key, thumbprint))
}

fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let body: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}
