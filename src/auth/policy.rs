//! The authorization policy built from settings: which issuer, tenants, audiences and client
//! apps the token modes accept, and which scopes or roles every caller needs.

use std::collections::HashSet;
use std::sync::Arc;

use super::jwks::JwksCache;
use super::jwt::{IssuerPolicy, TenantPolicy, TokenValidator};
use super::metadata::ResourceMetadata;
use super::middleware::{Authorizer, Policy, TokenPolicy};
use super::validated::{VALIDATED_CACHE_ENTRIES, ValidatedCache};
use super::{AuthMode, Entra, Settings, Tenancy};

impl Authorizer {
    /// Builds the policy for `auth.mode`; `entra` names the tenant and application the
    /// Entra modes accept tokens for.
    pub fn new(
        auth: &Settings,
        entra: &Entra,
        metadata: Arc<ResourceMetadata>,
        jwks: Option<Arc<JwksCache>>,
    ) -> Self {
        let Some(jwks) = jwks.filter(|_| auth.mode != AuthMode::None) else {
            return Self {
                policy: Arc::new(Policy::LocalDeveloper),
            };
        };
        let (issuer, audiences) = match auth.mode {
            AuthMode::Oidc => (
                IssuerPolicy::Exact(
                    auth.issuer
                        .as_ref()
                        .map(|u| u.as_str().to_owned())
                        .unwrap_or_default(),
                ),
                accepted_audiences(auth, entra),
            ),
            _ => {
                let authority = entra.authority();
                let tenants = match &entra.tenancy {
                    Tenancy::Multi { allowed, .. } => {
                        TenantPolicy::AllowList(allowed.iter().cloned().collect())
                    }
                    Tenancy::Single(tenant) => TenantPolicy::One(tenant.clone()),
                };
                (
                    IssuerPolicy::Entra {
                        v1_host: entra_v1_issuer_host(&authority),
                        authority,
                        tenants,
                    },
                    accepted_audiences(auth, entra),
                )
            }
        };
        let validator = TokenValidator {
            jwks,
            issuer,
            audiences,
            allowed_client_apps: auth
                .allowed_client_apps
                .iter()
                .map(|c| c.to_ascii_lowercase())
                .collect::<HashSet<_>>(),
            leeway_secs: auth.leeway.as_secs(),
            max_token_bytes: auth.max_token_bytes,
        };
        Self {
            policy: Arc::new(Policy::Tokens(Box::new(TokenPolicy {
                validator,
                validated: ValidatedCache::new(VALIDATED_CACHE_ENTRIES),
                leeway: auth.leeway,
                easyauth: auth.mode == AuthMode::EasyAuth,
                metadata,
                required_scopes: auth.required_scopes.clone(),
                accepted_roles: auth.accepted_roles.clone(),
                implies: auth.scope_implies.clone(),
            }))),
        }
    }
}

/// Every `aud` the token policy accepts: `auth.audiences` under `oidc`; under the Entra
/// modes also the client id and the identifier URIs ([`Entra::identifier_uris`]).
/// `mcp-obo doctor` checks the app registration against the same list.
pub fn accepted_audiences(auth: &Settings, entra: &Entra) -> Vec<String> {
    if auth.mode == AuthMode::Oidc {
        return auth.audiences.clone();
    }
    let mut audiences = vec![entra.client_id.clone()];
    audiences.extend(entra.identifier_uris.iter().cloned());
    audiences.extend(auth.audiences.iter().cloned());
    audiences
}

/// Entra v1 tokens name `sts.windows.net` (public cloud) as issuer host.
fn entra_v1_issuer_host(authority: &str) -> String {
    match authority {
        "https://login.microsoftonline.com" | "https://login.microsoftonline.us" => {
            "https://sts.windows.net".into()
        }
        "https://login.chinacloudapi.cn" | "https://login.partner.microsoftonline.cn" => {
            "https://sts.chinacloudapi.cn".into()
        }
        other => other.to_owned(),
    }
}
