//! The HTTP layer of inbound authorization: establishes the [`Caller`] of each MCP request
//! or answers with the challenge, before the MCP layer sees the request. It is wrapped on
//! the MCP route scopes (`server/mod.rs`), so every request routed to MCP passes through it,
//! whatever spelling of the path the router decoded.
//!
//! Order of checks, each failing closed:
//! 1. token in the query string → 400 (MCP: only the `Authorization` header counts);
//! 2. bearer token from `Authorization` (Easy Auth: else `X-MS-TOKEN-AAD-ACCESS-TOKEN`),
//!    missing → 401 with `resource_metadata` and `scope`;
//! 3. Easy Auth only: `X-MS-CLIENT-PRINCIPAL` and/or `X-MS-CLIENT-PRINCIPAL-ID` required,
//!    and must match the token's user (`easyauth.rs`);
//! 4. full token validation (`jwt.rs`) → 401 `invalid_token`;
//! 5. the server's required scopes (or, for app-only callers, an accepted role) → 403.
//!
//! Per-tool scopes are MCP's to enforce (`mcp/tool_access.rs`, `mcp/handler.rs`); they ask
//! [`Authorizer::step_up`] for the 403 challenge.

use std::collections::HashSet;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use tracing::Instrument;

use super::jwks::JwksCache;
use super::jwt::{IssuerPolicy, TenantPolicy, TokenValidator};
use super::metadata::ResourceMetadata;
use super::{AuthMode, Entra, Settings, Tenancy};
use super::{Caller, Error, Reason, challenge, easyauth, scopes};
use crate::telemetry::bounded;

/// The configured authorization policy, shared by all workers.
pub struct Authorizer {
    policy: Policy,
}

enum Policy {
    /// `auth.mode = none`: every request is the local developer (loopback only).
    LocalDeveloper,
    Tokens(Box<TokenPolicy>),
}

/// Recently validated tokens kept, so a client's repeated calls skip the signature check.
const VALIDATED_CACHE_ENTRIES: u64 = 4096;

struct TokenPolicy {
    validator: TokenValidator,
    /// SHA-256 of a validated token → its caller, until the token expires (`exp` + leeway)
    /// or its key is withdrawn. Only successes are kept; a refused token is checked in full
    /// every time.
    validated: moka::sync::Cache<[u8; 32], Arc<ValidatedToken>>,
    leeway: std::time::Duration,
    easyauth: bool,
    metadata: Arc<ResourceMetadata>,
    required_scopes: Vec<String>,
    accepted_roles: Vec<String>,
    implies: Vec<(String, String)>,
}

/// An entry of [`TokenPolicy::validated`].
struct ValidatedToken {
    caller: Arc<Caller>,
    /// The token's `exp` plus the leeway: the entry's expiry.
    until: std::time::SystemTime,
    /// The key that verified the token: once the issuer stops publishing it, the entry is
    /// no longer served.
    kid: Box<str>,
    /// The key set generation in which `kid` was last seen published.
    generation: std::sync::atomic::AtomicU64,
}

/// Each validated token lives in the cache until its `exp` plus the leeway.
struct UntilExpired;

impl UntilExpired {
    fn remaining(entry: &ValidatedToken) -> Option<std::time::Duration> {
        Some(
            entry
                .until
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default(),
        )
    }
}

impl moka::Expiry<[u8; 32], Arc<ValidatedToken>> for UntilExpired {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        entry: &Arc<ValidatedToken>,
        _: std::time::Instant,
    ) -> Option<std::time::Duration> {
        Self::remaining(entry)
    }

    fn expire_after_update(
        &self,
        _: &[u8; 32],
        entry: &Arc<ValidatedToken>,
        _: std::time::Instant,
        _: Option<std::time::Duration>,
    ) -> Option<std::time::Duration> {
        Self::remaining(entry)
    }
}

/// The cache of [`TokenPolicy::validated`], bounded to `capacity` entries.
fn validated_cache(capacity: u64) -> moka::sync::Cache<[u8; 32], Arc<ValidatedToken>> {
    moka::sync::Cache::builder()
        .max_capacity(capacity)
        .expire_after(UntilExpired)
        .build()
}

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
                policy: Policy::LocalDeveloper,
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
            policy: Policy::Tokens(Box::new(TokenPolicy {
                validator,
                validated: validated_cache(VALIDATED_CACHE_ENTRIES),
                leeway: auth.leeway,
                easyauth: auth.mode == AuthMode::EasyAuth,
                metadata,
                required_scopes: auth.required_scopes.clone(),
                accepted_roles: auth.accepted_roles.clone(),
                implies: auth.scope_implies.clone(),
            })),
        }
    }

    /// The middleware, wrapped on the MCP route scopes: every request gets a `Caller` or a
    /// challenge.
    pub async fn authorize(
        mut req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
        let Some(authorizer) = req.app_data::<web::Data<Authorizer>>().cloned() else {
            // Fail closed: no policy configured means nobody gets in.
            let response = actix_web::HttpResponse::InternalServerError().finish();
            return Ok(req.into_response(response).map_into_right_body());
        };
        match &authorizer.policy {
            Policy::LocalDeveloper => {
                req.extensions_mut()
                    .insert(Arc::new(Caller::local_developer()));
            }
            Policy::Tokens(policy) => {
                match policy.authorize(&mut req).instrument(auth_span()).await {
                    Ok(caller) => {
                        tracing::debug!(tenant = ?caller.tenant_id.as_deref().map(bounded), client_app = ?caller.client_app.as_deref().map(bounded), "authorized");
                        req.extensions_mut().insert(caller);
                    }
                    Err(error) => {
                        tracing::debug!(reason = error.reason(), "request not authorized");
                        crate::telemetry::metrics::auth_failure(error.reason());
                        let scopes = policy.advertised(&policy.required_scopes);
                        let response =
                            challenge::respond(&error, &policy.metadata_url(&req), &scopes);
                        return Ok(req.into_response(response).map_into_right_body());
                    }
                }
            }
        }
        next.call(req)
            .await
            .map(ServiceResponse::map_into_left_body)
    }

    /// The 403 `insufficient_scope` challenge for a request whose caller lacks `extra`
    /// scopes (a tool's, beyond the server's required ones): MCP's step-up signal.
    pub fn step_up(&self, req: &ServiceRequest, extra: &[String]) -> HttpResponse {
        let error = |scopes| Error::InsufficientScope {
            scopes,
            description: "this tool needs a scope the token does not have",
        };
        match &self.policy {
            Policy::LocalDeveloper => challenge::respond(&error(extra.to_vec()), "", &[]),
            Policy::Tokens(policy) => {
                let mut all = policy.required_scopes.clone();
                all.extend(
                    extra
                        .iter()
                        .filter(|s| !all.contains(s))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
                let scopes = policy.advertised(&all);
                challenge::respond(&error(scopes), &policy.metadata_url(req), &[])
            }
        }
    }
}

/// The MCP path a request was routed to, as mounted (`/mcp`), whatever spelling the client
/// sent (`/%6Dcp/`): the part of the decoded path the route scope consumed.
fn mount_path(req: &ServiceRequest) -> &str {
    let path = req.match_info();
    let full = path.as_str();
    let rest = path.unprocessed();
    full.strip_suffix(rest).unwrap_or(full)
}

/// RFC 6750 `b64token` characters (what a bearer token may contain).
const fn is_b64token(b: u8) -> bool {
    b.is_ascii_alphanumeric() | matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

/// The inbound authorization span; the outcome is recorded by [`TokenPolicy::authorize`].
/// Never the token: only outcome, reason, client app and tenant.
fn auth_span() -> tracing::Span {
    tracing::info_span!(
        target: "mcp_obo::auth",
        "mcp.auth",
        otel.kind = "internal",
        auth.outcome = tracing::field::Empty,
        auth.failure_reason = tracing::field::Empty,
        auth.client_app = tracing::field::Empty,
        auth.tenant = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    )
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

impl TokenPolicy {
    fn advertised(&self, scopes: &[String]) -> Vec<String> {
        scopes.iter().map(|s| self.metadata.advertise(s)).collect()
    }

    /// The challenge's `resource_metadata`: the metadata of the MCP path as mounted.
    fn metadata_url(&self, req: &ServiceRequest) -> String {
        let base = self.metadata.base_for(req.request());
        self.metadata.metadata_url(&base, mount_path(req))
    }

    async fn authorize(&self, req: &mut ServiceRequest) -> Result<Arc<Caller>, Error> {
        let result = self.check(req).await;
        let span = tracing::Span::current();
        match &result {
            Ok(caller) => {
                span.record("auth.outcome", "authorized");
                // Claims: validated, but a claim can be any length.
                span.record(
                    "auth.client_app",
                    bounded(caller.client_app.as_deref().unwrap_or("")).as_ref(),
                );
                span.record(
                    "auth.tenant",
                    bounded(caller.tenant_id.as_deref().unwrap_or("")).as_ref(),
                );
            }
            Err(e) => {
                span.record("auth.outcome", "refused");
                span.record("auth.failure_reason", e.reason());
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_description", e.reason());
            }
        }
        result
    }

    async fn check(&self, req: &mut ServiceRequest) -> Result<Arc<Caller>, Error> {
        if req.query_string().split('&').any(|pair| {
            pair.split('=')
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("access_token"))
        }) {
            return Err(Error::InvalidRequest(
                "tokens in the query string are not accepted; use the Authorization header",
            ));
        }
        let token = self.bearer_token(req)?;
        let principal = if self.easyauth {
            match easyauth::principal_from(req.headers()) {
                Ok(principal) => Some(principal),
                Err(easyauth::PrincipalError::Missing) => return Err(Error::MissingToken),
                Err(easyauth::PrincipalError::Invalid) => {
                    return Err(Error::InvalidToken(Reason::EasyAuthMismatch));
                }
            }
        } else {
            None
        };
        let caller = self.validate_cached(token).await?;
        if let Some(principal) = principal
            && !principal.matches(&caller.subject, caller.tenant_id.as_deref())
        {
            return Err(Error::InvalidToken(Reason::EasyAuthMismatch));
        }
        if caller.app_only {
            if !caller.roles.iter().any(|r| self.accepted_roles.contains(r)) {
                return Err(Error::InsufficientScope {
                    scopes: self.advertised(&self.required_scopes),
                    description: "this server acts for signed-in users; app-only tokens are not accepted",
                });
            }
        } else if !scopes::satisfies_all(&caller.scopes, &self.required_scopes, &self.implies) {
            return Err(Error::InsufficientScope {
                scopes: self.advertised(&self.required_scopes),
                description: "the token lacks a scope this server requires",
            });
        }
        Ok(caller)
    }

    /// Full validation, or the caller of an identical token validated before, not yet
    /// expired and whose key the issuer still publishes (the signature, issuer and audience
    /// of the same bytes cannot have changed).
    async fn validate_cached(&self, token: &str) -> Result<Arc<Caller>, Error> {
        if token.len() > self.validator.max_token_bytes {
            return Err(Error::InvalidToken(Reason::TooLarge));
        }
        let digest = crate::jose::sha256(token.as_bytes());
        let jwks = &self.validator.jwks;
        // Read before validating: a key set installed meanwhile makes the entry re-checked.
        let generation = jwks.generation();
        if let Some(entry) = self.validated.get(&digest) {
            // moka expires the entry on its own (monotonic) clock; `exp` is wall-clock time,
            // so it is checked against the wall clock as well.
            let unexpired = entry.until > std::time::SystemTime::now();
            // Only after a key refresh is the (cheap) lookup of the kid needed.
            let seen = entry.generation.load(std::sync::atomic::Ordering::Relaxed);
            let published = seen == generation || jwks.publishes(&entry.kid);
            if unexpired && published {
                entry
                    .generation
                    .fetch_max(generation, std::sync::atomic::Ordering::Relaxed);
                return Ok(Arc::clone(&entry.caller));
            }
            self.validated.invalidate(&digest);
        }
        let validated = self.validator.validate_with_kid(token).await?;
        let caller = Arc::new(validated.caller);
        if let Some(assertion) = &caller.assertion {
            // Computed once here; the on-behalf-of cache keys on the same digest.
            let _ = assertion.digest();
            // Kept until the token expires; one whose `exp` plus the leeway is beyond what
            // the clock can say is not kept at all (the validator refuses such tokens).
            if let Some(until) = assertion.expires_at().checked_add(self.leeway) {
                self.validated.insert(
                    digest,
                    Arc::new(ValidatedToken {
                        caller: Arc::clone(&caller),
                        until,
                        kid: validated.kid,
                        generation: std::sync::atomic::AtomicU64::new(generation),
                    }),
                );
            }
        }
        Ok(caller)
    }

    /// The bearer token from the `Authorization` header (or Easy Auth's token header).
    fn bearer_token<'r>(&self, req: &'r ServiceRequest) -> Result<&'r str, Error> {
        let mut values = req.headers().get_all(header::AUTHORIZATION);
        let first = values.next();
        if values.next().is_some() {
            return Err(Error::InvalidRequest("more than one Authorization header"));
        }
        if let Some(value) = first {
            let bytes = value.as_bytes();
            let (scheme, rest) = match bytes.iter().position(|b| *b == b' ') {
                Some(i) => (&bytes[..i], &bytes[i + 1..]),
                None => (bytes, &[][..]),
            };
            if !scheme.eq_ignore_ascii_case(b"bearer") {
                return Err(if value.to_str().is_ok() {
                    Error::MissingToken
                } else {
                    Error::InvalidRequest("malformed Authorization header")
                });
            }
            let token = rest.trim_ascii();
            // One pass over the 1-2 KB token, without early exit so it vectorises; b64token
            // bytes are ASCII, so the token is then valid UTF-8.
            let b64token = token.iter().fold(true, |ok, b| ok & is_b64token(*b));
            return match std::str::from_utf8(token) {
                Ok(token) if b64token && !token.is_empty() => Ok(token),
                _ => Err(Error::InvalidRequest("malformed Authorization header")),
            };
        }
        if self.easyauth
            && let Some(token) = req
                .headers()
                .get(easyauth::TOKEN_HEADER)
                .and_then(|v| v.to_str().ok())
            && !token.trim().is_empty()
        {
            return Ok(token.trim());
        }
        Err(Error::MissingToken)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn entry(until: SystemTime) -> Arc<ValidatedToken> {
        Arc::new(ValidatedToken {
            caller: Arc::new(Caller::local_developer()),
            until,
            kid: "k".into(),
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    #[test]
    fn a_validated_token_past_its_expiry_is_never_served() {
        let cache = validated_cache(16);
        let now = SystemTime::now();
        cache.insert([1; 32], entry(now - Duration::from_secs(1)));
        cache.insert([2; 32], entry(now + Duration::from_secs(3600)));
        assert!(cache.get(&[1; 32]).is_none(), "expired");
        assert!(cache.get(&[2; 32]).is_some(), "still valid");
        // Replacing an expired entry gives the new one its own lifetime.
        cache.insert([1; 32], entry(now + Duration::from_secs(3600)));
        assert!(cache.get(&[1; 32]).is_some());
        cache.insert([2; 32], entry(now - Duration::from_secs(1)));
        assert!(
            cache.get(&[2; 32]).is_none(),
            "replaced by an expired token"
        );
    }

    #[test]
    fn the_validated_token_cache_is_bounded() {
        let cache = validated_cache(3);
        let later = SystemTime::now() + Duration::from_secs(3600);
        for i in 0..10u8 {
            cache.insert([i; 32], entry(later));
        }
        cache.run_pending_tasks();
        assert_eq!(cache.entry_count(), 3);
    }
}
