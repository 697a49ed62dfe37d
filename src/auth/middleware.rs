//! The HTTP layer of inbound authorization: establishes the [`Caller`] of each MCP request
//! or answers with the challenge, before the MCP layer sees the request. It is wrapped on
//! the MCP route scopes (`server/mcp_scope.rs`), so every request routed to MCP passes through it,
//! whatever spelling of the path the router decoded.
//!
//! Order of checks, each failing closed:
//! 1. token in the query string → 400 (MCP: only the `Authorization` header counts);
//! 2. bearer token from `Authorization` (Easy Auth: else `X-MS-TOKEN-AAD-ACCESS-TOKEN`;
//!    `bearer.rs`),
//!    missing → 401 with `resource_metadata` and `scope`;
//! 3. Easy Auth only: `X-MS-CLIENT-PRINCIPAL` and/or `X-MS-CLIENT-PRINCIPAL-ID` required,
//!    and must match the token's user (`easyauth.rs`);
//! 4. full token validation (`jwt.rs`), or a token validated before (`validated.rs`) → 401
//!    `invalid_token`;
//! 5. the server's required scopes (or, for app-only callers, an accepted role) → 403.
//!
//! Per-tool scopes are MCP's to enforce (`mcp/tool_access.rs`, `mcp/handler.rs`); they ask
//! [`Authorizer::step_up`] for the 403 challenge.

use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse};
use tracing::Instrument;

use super::jwt::TokenValidator;
use super::metadata::ResourceMetadata;
use super::validated::ValidatedCache;
use super::{Caller, Error, challenge, easyauth, scopes};
use crate::telemetry::bounded;

/// The configured authorization policy, shared by all workers.
#[derive(Clone)]
pub struct Authorizer {
    pub(super) policy: Arc<Policy>,
}

pub(super) enum Policy {
    /// `auth.mode = none`: every request is the local developer (loopback only).
    LocalDeveloper,
    Tokens(Box<TokenPolicy>),
}

pub(super) struct TokenPolicy {
    pub(super) validator: TokenValidator,
    /// A validated token → its caller, until the token expires (`exp` + leeway) or its key
    /// is withdrawn. Only successes are kept; a refused token is checked in full every time.
    pub(super) validated: ValidatedCache,
    pub(super) leeway: std::time::Duration,
    pub(super) easyauth: bool,
    pub(super) metadata: Arc<ResourceMetadata>,
    pub(super) required_scopes: Vec<String>,
    pub(super) accepted_roles: Vec<String>,
    pub(super) implies: Vec<(String, String)>,
}

impl Authorizer {
    /// The middleware, wrapped on the MCP route scopes: every request gets a `Caller` (in
    /// its extensions, for the layers after this one) or a challenge.
    pub async fn authorize(
        self: Rc<Self>,
        mut req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
        let caller = match &*self.policy {
            Policy::LocalDeveloper => Arc::new(Caller::local_developer()),
            Policy::Tokens(policy) => {
                match policy.authorize(&mut req).instrument(auth_span()).await {
                    Ok(caller) => {
                        tracing::debug!(tenant = ?caller.tenant_id.as_deref().map(bounded), client_app = ?caller.client_app.as_deref().map(bounded), "authorized");
                        caller
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
        };
        req.extensions_mut().insert(caller);
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
        match &*self.policy {
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
            Some(easyauth::required_principal(req.headers())?)
        } else {
            None
        };
        let caller = self.validate_cached(token).await?;
        if let Some(principal) = &principal {
            easyauth::check_caller(principal, &caller)?;
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
}
