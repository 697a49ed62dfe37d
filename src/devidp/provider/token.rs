//! The token endpoint: the authorization code (PKCE) and refresh token (rotated) grants;
//! `obo.rs` has the on-behalf-of grant it also dispatches to.

use std::collections::HashMap;
use std::time::Instant;

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::obo::on_behalf_of;
use super::{Form, oauth_error};
use crate::devidp::state::{DevState, RefreshGrant};
use crate::jose::{b64url, random_token, sha256};

/// Scopes that are about the sign-in, not the API.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
pub(super) const ACCESS_TOKEN_LIFETIME: u64 = 3600;

/// Delegated scopes as they appear in `scp`: API scopes without their `api://app/` prefix.
fn scp_of(scope: &str) -> String {
    let scp: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| !OIDC_SCOPES.contains(s))
        .map(|s| s.rsplit('/').next().unwrap_or(s))
        .filter(|s| !s.is_empty() && *s != ".default")
        .collect();
    if scp.is_empty() {
        "user_impersonation".to_owned()
    } else {
        scp.join(" ")
    }
}

pub(super) async fn token(state: web::Data<DevState>, form: Form) -> HttpResponse {
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => authorization_code(&state, &form),
        Some("refresh_token") => refresh_token(&state, &form),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => on_behalf_of(&state, &form),
        _ => oauth_error(
            "unsupported_grant_type",
            "supported: authorization_code, refresh_token, jwt-bearer (on-behalf-of)",
        ),
    }
}

fn issue(state: &DevState, grant: &RefreshGrant) -> HttpResponse {
    let scp = scp_of(&grant.scope);
    let Some(access) = state.access_token(
        &grant.user,
        &grant.client_id,
        &grant.audience,
        &scp,
        ACCESS_TOKEN_LIFETIME,
    ) else {
        return oauth_error("server_error", "signing failed");
    };
    let refresh = random_token(32);
    state.refresh.insert(refresh.clone(), grant.clone());
    let mut body = json!({
        "token_type": "Bearer",
        "access_token": access,
        "expires_in": ACCESS_TOKEN_LIFETIME,
        "scope": grant.scope,
        "refresh_token": refresh,
    });
    if grant.scope.split_whitespace().any(|s| s == "openid")
        && let Some(id) = state.id_token(&grant.user, &grant.client_id)
    {
        body["id_token"] = json!(id);
    }
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(body)
}

fn authorization_code(state: &DevState, form: &HashMap<String, String>) -> HttpResponse {
    let Some(code) = form.get("code") else {
        return oauth_error("invalid_request", "code is missing");
    };
    // Single use: removed whatever happens next.
    let Some(grant) = state.codes.remove(code) else {
        return oauth_error("invalid_grant", "unknown or already used code");
    };
    if grant.expires < Instant::now() {
        return oauth_error("invalid_grant", "the code expired");
    }
    if form.get("client_id") != Some(&grant.client_id) {
        return oauth_error("invalid_grant", "the code was issued to another client");
    }
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return oauth_error(
            "invalid_grant",
            "redirect_uri does not match the authorization request",
        );
    }
    let Some(verifier) = form.get("code_verifier") else {
        return oauth_error("invalid_grant", "PKCE code_verifier is missing");
    };
    if b64url(&sha256(verifier.as_bytes())) != grant.code_challenge {
        return oauth_error("invalid_grant", "PKCE verification failed");
    }
    if let Some(resource) = form.get("resource").filter(|r| !r.is_empty())
        && resource.trim_end_matches('/') != grant.audience.trim_end_matches('/')
    {
        return oauth_error(
            "invalid_target",
            "resource differs from the authorization request",
        );
    }
    issue(
        state,
        &RefreshGrant {
            client_id: grant.client_id,
            user: grant.user,
            scope: grant.scope,
            audience: grant.audience,
        },
    )
}

fn refresh_token(state: &DevState, form: &HashMap<String, String>) -> HttpResponse {
    let Some(token) = form.get("refresh_token") else {
        return oauth_error("invalid_request", "refresh_token is missing");
    };
    let Some(grant) = state.refresh.get(token) else {
        return oauth_error("invalid_grant", "unknown refresh token");
    };
    // Another client presenting it changes nothing: the owner keeps its token.
    if form.get("client_id") != Some(&grant.client_id) {
        return oauth_error(
            "invalid_grant",
            "the refresh token was issued to another client",
        );
    }
    if let Some(resource) = form.get("resource").filter(|r| !r.is_empty())
        && resource.trim_end_matches('/') != grant.audience.trim_end_matches('/')
    {
        return oauth_error("invalid_target", "resource differs from the original grant");
    }
    // Rotation: the presented refresh token stops working; of two racing uses of it, only
    // the one that removed it gets new tokens.
    match state.refresh.remove(token) {
        Some(grant) => issue(state, &grant),
        None => oauth_error("invalid_grant", "unknown refresh token"),
    }
}
