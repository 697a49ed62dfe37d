//! A Microsoft Graph emulator: `GET /v1.0/me` for the dev user named by a token the dev
//! identity provider issued for Graph. Any other token — including the MCP server's own
//! inbound token, which must never be passed through — gets Graph's 401.
//!
//! It also serves the dev app registration as Graph would (the application, its federated
//! credential, the service principals and the admin consent grant), in Graph's shapes, so
//! `mcp-obo doctor` against `mcp-obo dev` reads a registration that matches the server.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::state::DevState;
use crate::jose::verify_with;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1.0/me", web::get().to(me))
        .route(
            "/v1.0/applications(appId='{app_id}')",
            web::get().to(application),
        )
        .route(
            "/v1.0/applications(appId='{app_id}')/federatedIdentityCredentials",
            web::get().to(federated_credentials),
        )
        .route(
            "/v1.0/servicePrincipals(appId='{app_id}')",
            web::get().to(service_principal),
        )
        .route("/v1.0/oauth2PermissionGrants", web::get().to(grants));
}

/// Whether `req` carries a valid dev token for Graph (else Graph's 401 is the answer).
fn authorized(req: &HttpRequest, state: &DevState) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| verify_with(&state.signing, t, &[state.graph_base.as_str()]))
        .is_some()
}

fn not_found(what: &str) -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "error": {"code": "Request_ResourceNotFound", "message": format!("Resource '{what}' does not exist or one of its queried reference-property objects are not present.")}
    }))
}

/// The registration's `what` for `app_id`, as Graph answers it (401 without a dev Graph
/// token, 404 for another app).
fn lookup<T: serde::Serialize>(
    req: &HttpRequest,
    state: &DevState,
    app_id: &str,
    what: impl FnOnce(&super::registration::Registration, &str) -> Option<T>,
) -> HttpResponse {
    if !authorized(req, state) {
        return unauthorized();
    }
    match what(&state.registration(), app_id) {
        Some(found) => HttpResponse::Ok().json(found),
        None => not_found(app_id),
    }
}

async fn application(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<DevState>,
) -> HttpResponse {
    lookup(&req, &state, &path, |r, id| r.application(id))
}

async fn federated_credentials(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<DevState>,
) -> HttpResponse {
    lookup(&req, &state, &path, |r, id| r.federated_credentials(id))
}

async fn service_principal(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<DevState>,
) -> HttpResponse {
    lookup(&req, &state, &path, |r, id| r.service_principal(id))
}

#[derive(serde::Deserialize)]
struct GrantQuery {
    #[serde(rename = "$filter")]
    filter: Option<String>,
}

async fn grants(
    req: HttpRequest,
    query: web::Query<GrantQuery>,
    state: web::Data<DevState>,
) -> HttpResponse {
    if !authorized(&req, &state) {
        return unauthorized();
    }
    HttpResponse::Ok().json(state.registration().grants(query.filter.as_deref()))
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized().json(json!({
        "error": {"code": "InvalidAuthenticationToken", "message": "Access token validation failure. Invalid audience."}
    }))
}

async fn me(req: HttpRequest, state: web::Data<DevState>) -> HttpResponse {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(claims) =
        token.and_then(|t| verify_with(&state.signing, t, &[state.graph_base.as_str()]))
    else {
        return unauthorized();
    };
    let Some(user) = claims["oid"].as_str().and_then(|oid| state.user(oid)) else {
        return HttpResponse::NotFound().json(
            json!({"error": {"code": "Request_ResourceNotFound", "message": "unknown user"}}),
        );
    };
    HttpResponse::Ok().json(json!({
        "@odata.context": format!("{}/v1.0/$metadata#users/$entity", state.graph_base),
        "id": user.id,
        "displayName": user.name,
        "mail": user.email,
        "userPrincipalName": user.email,
    }))
}
