//! A Microsoft Graph emulator: `GET /v1.0/me` for the dev user named by a token the dev
//! identity provider issued for Graph. Any other token — including the MCP server's own
//! inbound token, which must never be passed through — gets Graph's 401.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::state::DevState;
use crate::jose::verify_with;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1.0/me", web::get().to(me));
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
