//! The development identity provider's endpoints (Entra-shaped paths under
//! `{idp}/{tenant}/...`), standards-conformant enough for real MCP clients.
//!
//! - `discovery.rs`: the RFC 8414 / OpenID configuration, the JWKS and the home page.
//! - `authorize.rs`: the authorization request's checks and how a failure is reported.
//! - `signin.rs`: the sign-in page and its decision, bound by an anti-forgery token.
//! - `clients.rs`: dynamic client registration and client ID metadata documents.
//! - `token.rs`: the token endpoint's authorization code and refresh token grants.
//! - `obo.rs`: the on-behalf-of grant and the Graph `scp` it issues.
//! - `html.rs`: HTML escaping and the error page.
//!
//! This file: the routes, the admin-consent entry points (`consent.rs` beside this folder
//! draws the pages) and the OAuth error body the token endpoint's grants share.

mod authorize;
mod clients;
mod discovery;
mod html;
mod obo;
mod signin;
mod token;

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::consent;
use super::state::DevState;
use clients::register;
use discovery::{home, jwks, metadata};
pub(super) use html::{escape, refusal_page};
pub(super) use signin::{ANTI_FORGERY_FIELD, pending_form};
use signin::{authorize_decision, authorize_page};
use token::token;

type Form = web::Form<HashMap<String, String>>;
type Query = web::Query<HashMap<String, String>>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/oauth-authorization-server",
        web::get().to(metadata),
    )
    .route(
        "/.well-known/oauth-authorization-server/{tenant}/v2.0",
        web::get().to(metadata),
    )
    .route(
        "/.well-known/openid-configuration/{tenant}/v2.0",
        web::get().to(metadata),
    )
    .route(
        "/{tenant}/v2.0/.well-known/openid-configuration",
        web::get().to(metadata),
    )
    .route(
        "/{tenant}/v2.0/.well-known/oauth-authorization-server",
        web::get().to(metadata),
    )
    .route("/{tenant}/discovery/v2.0/keys", web::get().to(jwks))
    .route(
        "/{tenant}/oauth2/v2.0/authorize",
        web::get().to(authorize_page),
    )
    .route(
        "/{tenant}/oauth2/v2.0/authorize",
        web::post().to(authorize_decision),
    )
    .route("/{tenant}/oauth2/v2.0/token", web::post().to(token))
    .route(
        "/{tenant}/v2.0/adminconsent",
        web::get().to(admin_consent_page),
    )
    .route(
        "/{tenant}/v2.0/adminconsent",
        web::post().to(admin_consent_decision),
    )
    .route("/register", web::post().to(register))
    .route("/", web::get().to(home));
}

/// A parameter, treating an empty value as absent.
fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    q.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// An RFC 6749 §5.2 error answer (401 for `invalid_client`, 400 otherwise).
fn oauth_error(error: &str, description: &str) -> HttpResponse {
    let status = if error == "invalid_client" { 401 } else { 400 };
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
    )
    .insert_header(("cache-control", "no-store"))
    .json(json!({"error": error, "error_description": description}))
}

async fn admin_consent_page(state: web::Data<DevState>, q: Query) -> HttpResponse {
    if !consent::is_consent_request(&q, true) {
        return refusal_page("client_id must be the dev app's");
    }
    consent::page(&state, &q, true)
}

async fn admin_consent_decision(state: web::Data<DevState>, form: Form) -> HttpResponse {
    if !consent::is_consent_request(&form, true) {
        return refusal_page("client_id must be the dev app's");
    }
    consent::decide(&state, &form, true)
}
