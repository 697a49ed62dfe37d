//! Entra's on-behalf-of grant (`jwt-bearer`): the dev app's federated client assertion, the
//! user's assertion, and the Graph `scp` the user's consents allow.

use std::collections::HashMap;

use actix_web::HttpResponse;
use serde_json::json;

use super::oauth_error;
use super::token::ACCESS_TOKEN_LIFETIME;
use crate::devidp::state::{DevState, DevUser};
use crate::devidp::{DEV_APP, DEV_MANAGED_IDENTITY, EXCHANGE_AUDIENCE, shapes};
use crate::jose::verify_with;
use crate::tools::graph_permissions;

/// Entra's on-behalf-of grant, with the federated client assertion of the development
/// managed identity.
pub(super) fn on_behalf_of(state: &DevState, form: &HashMap<String, String>) -> HttpResponse {
    if form.get("requested_token_use").map(String::as_str) != Some("on_behalf_of") {
        return oauth_error(
            "invalid_request",
            "requested_token_use must be on_behalf_of",
        );
    }
    if form.get("client_id").map(String::as_str) != Some(DEV_APP) {
        return oauth_error(
            "unauthorized_client",
            "AADSTS700016: only the dev app may use on-behalf-of",
        );
    }
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return oauth_error(
            "invalid_client",
            "AADSTS7000218: a client assertion is required",
        );
    }
    let assertion_ok = form
        .get("client_assertion")
        .and_then(|a| verify_with(&state.identity_key, a, &[EXCHANGE_AUDIENCE]))
        .is_some_and(|c| {
            c["iss"] == state.identity_issuer().as_str() && c["sub"] == DEV_MANAGED_IDENTITY
        });
    if !assertion_ok {
        return oauth_error(
            "invalid_client",
            "AADSTS700213: no matching federated identity record for the client assertion",
        );
    }
    let mut audiences: Vec<&str> = vec![DEV_APP];
    let api = format!("api://{DEV_APP}");
    audiences.push(&api);
    audiences.extend(state.mcp_resources.iter().map(String::as_str));
    let Some(user_claims) = form
        .get("assertion")
        .and_then(|a| verify_with(&state.signing, a, &audiences))
    else {
        return oauth_error(
            "invalid_grant",
            "AADSTS50013: the user assertion is not valid for this app",
        );
    };
    let Some(user) = user_claims["oid"].as_str().and_then(|oid| state.user(oid)) else {
        return oauth_error("invalid_grant", "AADSTS50013: unknown user");
    };
    let requested = form.get("scope").map(String::as_str).unwrap_or_default();
    let scp = match graph_scp(state, &user, requested) {
        Ok(scp) => scp,
        Err(refusal) => return *refusal,
    };
    let Some(access) = state.access_token(
        &user,
        DEV_APP,
        &state.graph_base,
        &scp,
        ACCESS_TOKEN_LIFETIME,
    ) else {
        return oauth_error("server_error", "signing failed");
    };
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(json!({
            "token_type": "Bearer",
            "scope": requested,
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "ext_expires_in": ACCESS_TOKEN_LIFETIME,
            "access_token": access,
        }))
}

/// The `scp` of the Graph token an on-behalf-of exchange for `requested` gets, as Entra
/// decides it: `<graph>/.default` is every registered tool's permission the user consented
/// to; `<graph>/Name …` (or bare `Name`) must each be a registered tool's permission
/// (AADSTS70011 otherwise) the user consented to (AADSTS65001 otherwise).
fn graph_scp(
    state: &DevState,
    user: &DevUser,
    requested: &str,
) -> Result<String, Box<HttpResponse>> {
    let registered = graph_permissions();
    let prefix = format!("{}/", state.graph_base);
    let names: Vec<&str> = requested
        .split_whitespace()
        .filter(|s| !matches!(*s, "openid" | "profile" | "offline_access"))
        .map(|s| s.strip_prefix(&prefix).unwrap_or(s))
        .collect();
    if names == [".default"] {
        let consented: Vec<&str> = registered
            .iter()
            .map(|p| p.value)
            .filter(|v| state.consented(user, v))
            .collect();
        return Ok(consented.join(" "));
    }
    let mut scp = Vec::new();
    for name in &names {
        let Some(permission) = registered
            .iter()
            .find(|p| p.value.eq_ignore_ascii_case(name))
        else {
            return Err(Box::new(oauth_error(
                "invalid_scope",
                &format!(
                    "AADSTS70011: the provided value for scope {name} is not valid: the dev Graph has {prefix}.default and the registered tools' permissions"
                ),
            )));
        };
        if !state.consented(user, permission.value) {
            return Err(Box::new(consent_required(permission.value)));
        }
        scp.push(permission.value);
    }
    if scp.is_empty() {
        return Err(Box::new(oauth_error(
            "invalid_scope",
            &format!("AADSTS70011: a scope is required, e.g. {prefix}.default"),
        )));
    }
    Ok(scp.join(" "))
}

/// Entra's refusal when the user has not consented to `permission` for the dev app.
fn consent_required(permission: &str) -> HttpResponse {
    let mut body = shapes::entra_error(
        "invalid_grant",
        65001,
        &format!(
            "The user or administrator has not consented to use the application with ID '{DEV_APP}' named 'mcp-obo (dev)'. Send an interactive authorization request for this user and resource. (missing: {permission})"
        ),
    );
    body["suberror"] = json!("consent_required");
    HttpResponse::BadRequest()
        .insert_header(("cache-control", "no-store"))
        .json(body)
}
