//! Discovery: the RFC 8414 / OpenID configuration document, the JWKS and the home page.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::devidp::state::DevState;
use crate::devidp::{DEV_APP, shapes};

pub(super) async fn metadata(state: web::Data<DevState>) -> HttpResponse {
    let issuer = state.issuer();
    let tenant_base = issuer.trim_end_matches("/v2.0").to_owned();
    // Entra's document, and what this provider adds as an RFC 8414 authorization server.
    let mut document = shapes::openid_configuration(&tenant_base);
    let added = json!({
        "registration_endpoint": format!("{}/register", state.idp_base),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "scopes_supported": ["openid", "profile", "email", "offline_access", format!("api://{DEV_APP}/user_impersonation")],
        "claims_supported": ["sub", "oid", "tid", "name", "preferred_username", "email"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
    });
    if let (Some(document), serde_json::Value::Object(added)) = (document.as_object_mut(), added) {
        document.extend(added);
    }
    HttpResponse::Ok().json(document)
}

pub(super) async fn jwks(state: web::Data<DevState>) -> HttpResponse {
    HttpResponse::Ok().json(state.jwks())
}

pub(super) async fn home(state: web::Data<DevState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(format!(
            "mcp-obo development identity provider\nissuer: {}\n",
            state.issuer()
        ))
}
