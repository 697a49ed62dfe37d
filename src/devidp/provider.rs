//! The development identity provider's endpoints (Entra-shaped paths under
//! `{idp}/{tenant}/...`), standards-conformant enough for real MCP clients.
//!
//! One file over 500 lines on purpose: every endpoint here shares the request and state
//! types and the error shape, and reads best next to the others as one protocol surface.

use std::collections::HashMap;
use std::time::Instant;

use actix_web::{HttpResponse, web};
use serde_json::json;
use url::Url;

use super::state::{
    CODE_LIFETIME, Client, CodeGrant, DevState, DevUser, PendingAuthorization, RefreshGrant,
};
use super::{DEV_APP, DEV_MANAGED_IDENTITY, EXCHANGE_AUDIENCE, consent, shapes};
use crate::jose::{b64url, random_token, sha256, verify_with};
use crate::tools::graph_permissions;

type Form = web::Form<HashMap<String, String>>;
type Query = web::Query<HashMap<String, String>>;

/// Scopes that are about the sign-in, not the API.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
const ACCESS_TOKEN_LIFETIME: u64 = 3600;
/// The sign-in form's anti-forgery field: a random token the page was issued with, bound
/// to its authorization request (kept server-side), so no other page can post a sign-in.
pub(super) const ANTI_FORGERY_FIELD: &str = "anti_forgery_token";
/// All the browser learns when a client metadata document cannot be used: not what was, or
/// was not, found at the URL, which may be an internal one (the detail is logged at debug).
const METADATA_UNUSABLE: &str =
    "the client metadata document could not be fetched or is not a valid client metadata document";

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

async fn metadata(state: web::Data<DevState>) -> HttpResponse {
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

async fn jwks(state: web::Data<DevState>) -> HttpResponse {
    HttpResponse::Ok().json(state.jwks())
}

async fn home(state: web::Data<DevState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(format!(
            "mcp-obo development identity provider\nissuer: {}\n",
            state.issuer()
        ))
}

/// An authorization request that passed every check.
struct Request {
    client: Client,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    scope: String,
    audience: String,
}

/// Where an error is reported: on the page (no trustworthy redirect) or to the client.
enum Failure {
    Page(String),
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    q.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

async fn validate(state: &DevState, q: &HashMap<String, String>) -> Result<Request, Failure> {
    let client_id =
        param(q, "client_id").ok_or_else(|| Failure::Page("client_id is missing".into()))?;
    let client = find_client(state, client_id).await.map_err(Failure::Page)?;
    let redirect_uri =
        param(q, "redirect_uri").ok_or_else(|| Failure::Page("redirect_uri is missing".into()))?;
    if !redirect_allowed(&client, redirect_uri) {
        return Err(Failure::Page(format!(
            "redirect_uri {redirect_uri} is not registered for client {client_id}"
        )));
    }
    let fail = |error: &'static str, description: &str| Failure::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        state: q.get("state").cloned(),
        error,
        description: description.to_owned(),
    };
    if param(q, "response_type") != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    let code_challenge = param(q, "code_challenge")
        .ok_or_else(|| fail("invalid_request", "PKCE is required: send code_challenge"))?;
    if param(q, "code_challenge_method") != Some("S256") {
        return Err(fail(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    let scope = param(q, "scope").unwrap_or("").to_owned();
    let audience =
        audience_for(state, param(q, "resource"), &scope).map_err(|(e, d)| fail(e, &d))?;
    Ok(Request {
        client,
        redirect_uri: redirect_uri.to_owned(),
        state: q.get("state").cloned(),
        code_challenge: code_challenge.to_owned(),
        scope,
        audience,
    })
}

/// RFC 8707: the token's audience is the requested resource (one of the MCP server's
/// URLs); without one, Entra-style `api://{app}/...` scopes name the app.
fn audience_for(
    state: &DevState,
    resource: Option<&str>,
    scope: &str,
) -> Result<String, (&'static str, String)> {
    if let Some(resource) = resource {
        let wanted = resource.trim_end_matches('/');
        return state
            .mcp_resources
            .iter()
            .find(|r| r.trim_end_matches('/').eq_ignore_ascii_case(wanted))
            .cloned()
            .ok_or(("invalid_target", format!("unknown resource {resource}")));
    }
    if scope
        .split_whitespace()
        .any(|s| s.starts_with(&format!("api://{DEV_APP}/")) || s == DEV_APP)
    {
        return Ok(DEV_APP.to_owned());
    }
    Err((
        "invalid_scope",
        format!("request a resource (RFC 8707) or the scope api://{DEV_APP}/user_impersonation"),
    ))
}

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

async fn find_client(state: &DevState, client_id: &str) -> Result<Client, String> {
    if let Some(client) = state.client(client_id) {
        return Ok(client);
    }
    // Client ID metadata document: the client id is the URL of its own metadata.
    let url = Url::parse(client_id).map_err(|_| format!("unknown client_id {client_id}: register it first (dynamic client registration at /register)"))?;
    let allowed = url.scheme() == "https" || crate::config::is_loopback_url(&url);
    if !allowed {
        return Err(format!(
            "client metadata document {client_id} must be https"
        ));
    }
    let client = fetch_client_metadata(state, url, client_id)
        .await
        .map_err(|detail| {
            tracing::debug!(client_id, detail, "client metadata document refused");
            format!("{METADATA_UNUSABLE}: {client_id}")
        })?;
    state.clients.insert(client_id.to_owned(), client.clone());
    Ok(client)
}

/// The client a metadata document at `url` describes; the error (for the debug log only)
/// says what was wrong. Redirects are not followed: a 3xx is an answer like any other.
async fn fetch_client_metadata(
    state: &DevState,
    url: Url,
    client_id: &str,
) -> Result<Client, String> {
    let response = state
        .http
        .get(url)
        .send()
        .await
        .map_err(|e| crate::outbound::failure(&e).to_owned())?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    let doc: serde_json::Value = serde_json::from_slice(&capped_body(response).await?)
        .map_err(|_| "not a JSON document".to_owned())?;
    if doc["client_id"] != client_id {
        return Err("it names another client_id".into());
    }
    let redirect_uris: Vec<String> = doc["redirect_uris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err("it lists no redirect_uris".into());
    }
    Ok(Client {
        client_id: client_id.to_owned(),
        redirect_uris,
        name: doc["client_name"].as_str().map(str::to_owned),
    })
}

/// A client metadata document is a few hundred bytes; a larger answer is refused rather
/// than buffered, announced or streamed.
const MAX_CLIENT_METADATA: usize = 64 * 1024;

/// The body of `response`, at most [`MAX_CLIENT_METADATA`] bytes.
async fn capped_body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let too_large = || "it is larger than a client metadata document can be".to_owned();
    if response
        .content_length()
        .is_some_and(|n| n > MAX_CLIENT_METADATA as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| crate::outbound::failure(&e).to_owned())?
    {
        if body.len() + chunk.len() > MAX_CLIENT_METADATA {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Exact match, except that loopback redirects may use any port (RFC 8252 §7.3).
fn redirect_allowed(client: &Client, redirect_uri: &str) -> bool {
    let Ok(wanted) = Url::parse(redirect_uri) else {
        return false;
    };
    client.redirect_uris.iter().any(|registered| {
        if registered == redirect_uri {
            return true;
        }
        let Ok(reg) = Url::parse(registered) else {
            return false;
        };
        crate::config::is_loopback_url(&reg)
            && reg.scheme() == wanted.scheme()
            && reg.host_str() == wanted.host_str()
            && reg.path().trim_end_matches('/') == wanted.path().trim_end_matches('/')
    })
}

/// The request as a form's hidden inputs, with a fresh anti-forgery token bound to
/// `pending` (the one the POST must present).
pub(super) fn pending_form(
    state: &DevState,
    q: &HashMap<String, String>,
    pending: PendingAuthorization,
) -> String {
    let anti_forgery = random_token(32);
    state.pending.insert(anti_forgery.clone(), pending);
    q.iter()
        .filter(|(k, _)| k.as_str() != ANTI_FORGERY_FIELD)
        .chain([(&ANTI_FORGERY_FIELD.to_owned(), &anti_forgery)])
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect()
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

async fn authorize_page(state: web::Data<DevState>, q: Query) -> HttpResponse {
    if consent::is_consent_request(&q, false) {
        return consent::page(&state, &q, false);
    }
    let request = match validate(&state, &q).await {
        Ok(r) => r,
        Err(f) => return failure(&state, f),
    };
    let hidden = pending_form(&state, &q, request.pending());
    let buttons: String = state
        .users
        .iter()
        .map(|u| {
            format!(
                "<button type=\"submit\" name=\"user\" value=\"{}\">{} &lt;{}&gt;</button>",
                escape(&u.id),
                escape(&u.name),
                escape(&u.email)
            )
        })
        .collect();
    let client = escape(
        request
            .client
            .name
            .as_deref()
            .unwrap_or(&request.client.client_id),
    );
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mcp-obo dev sign-in</title>\
<style>body{{font-family:system-ui;max-width:32rem;margin:3rem auto}}button{{display:block;width:100%;margin:.5rem 0;padding:.7rem;font-size:1rem}}</style></head>\
<body><h1>Sign in (development)</h1><p><b>{client}</b> asks to act as you on <code>{aud}</code> with <code>{scope}</code>.</p>\
<form method=\"post\" id=\"signin\">{hidden}{buttons}</form>\
<form method=\"post\">{hidden}<button type=\"submit\" name=\"deny\" value=\"1\">Cancel</button></form>\
<p><small>This is the mcp-obo development identity provider. Never use it for real accounts.</small></p></body></html>",
        aud = escape(&request.audience),
        scope = escape(&request.scope),
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page)
}

async fn authorize_decision(state: web::Data<DevState>, form: Form) -> HttpResponse {
    if consent::is_consent_request(&form, false) {
        return consent::decide(&state, &form, false);
    }
    let request = match validate(&state, &form).await {
        Ok(r) => r,
        Err(f) => return failure(&state, f),
    };
    if let Some(refused) = anti_forgery_refusal(&state, &form, &request) {
        return refused;
    }
    if form.contains_key("deny") {
        return failure(
            &state,
            Failure::Redirect {
                redirect_uri: request.redirect_uri,
                state: request.state,
                error: "access_denied",
                description: "the user cancelled the sign-in".into(),
            },
        );
    }
    let Some(user) = form.get("user").and_then(|id| state.user(id)) else {
        return failure(
            &state,
            Failure::Page("choose one of the listed users".into()),
        );
    };
    let code = random_token(32);
    state.codes.insert(
        code.clone(),
        CodeGrant {
            client_id: request.client.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge,
            user,
            scope: request.scope,
            audience: request.audience,
            expires: Instant::now() + CODE_LIFETIME,
        },
    );
    let mut params = vec![("code", code), ("iss", state.issuer())];
    if let Some(s) = request.state {
        params.push(("state", s));
    }
    redirect_with(&request.redirect_uri, &params)
}

impl Request {
    /// What the sign-in page's anti-forgery token is bound to.
    fn pending(&self) -> PendingAuthorization {
        PendingAuthorization {
            client_id: self.client.client_id.clone(),
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            code_challenge: self.code_challenge.clone(),
            scope: self.scope.clone(),
            audience: self.audience.clone(),
        }
    }
}

/// The form must carry the token its page was issued with, for this same request; each
/// token answers one POST. The refusal otherwise: missing → 400, unknown, used or another
/// request's → 403.
fn anti_forgery_refusal(
    state: &DevState,
    form: &HashMap<String, String>,
    request: &Request,
) -> Option<HttpResponse> {
    let Some(token) = param(form, ANTI_FORGERY_FIELD) else {
        return Some(refusal(
            actix_web::http::StatusCode::BAD_REQUEST,
            "the sign-in form is missing its anti-forgery token; start the sign-in again from your client",
        ));
    };
    match state.pending.remove(token) {
        Some(pending) if pending == request.pending() => None,
        _ => Some(refusal(
            actix_web::http::StatusCode::FORBIDDEN,
            "this sign-in form was not issued for this request, or has expired; start the sign-in again from your client",
        )),
    }
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

pub(super) fn refusal_page(message: &str) -> HttpResponse {
    refusal(actix_web::http::StatusCode::BAD_REQUEST, message)
}

fn refusal(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><h1>Sign-in error</h1><p>{}</p>",
            escape(message)
        ))
}

fn redirect_with(redirect_uri: &str, params: &[(&str, String)]) -> HttpResponse {
    let mut url = match Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return HttpResponse::BadRequest().body("invalid redirect_uri"),
    };
    url.query_pairs_mut()
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
    HttpResponse::Found()
        .insert_header(("location", url.to_string()))
        .finish()
}

fn failure(state: &DevState, failure: Failure) -> HttpResponse {
    match failure {
        Failure::Page(message) => refusal(actix_web::http::StatusCode::BAD_REQUEST, &message),
        Failure::Redirect {
            redirect_uri,
            state: st,
            error,
            description,
        } => {
            let mut params = vec![
                ("error", error.to_owned()),
                ("error_description", description),
                ("iss", state.issuer()),
            ];
            if let Some(s) = st {
                params.push(("state", s));
            }
            redirect_with(&redirect_uri, &params)
        }
    }
}

fn oauth_error(error: &str, description: &str) -> HttpResponse {
    let status = if error == "invalid_client" { 401 } else { 400 };
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
    )
    .insert_header(("cache-control", "no-store"))
    .json(json!({"error": error, "error_description": description}))
}

async fn token(state: web::Data<DevState>, form: Form) -> HttpResponse {
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

/// Entra's on-behalf-of grant, with the federated client assertion of the development
/// managed identity.
fn on_behalf_of(state: &DevState, form: &HashMap<String, String>) -> HttpResponse {
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

/// RFC 7591 dynamic client registration, public clients only.
async fn register(state: web::Data<DevState>, body: web::Json<serde_json::Value>) -> HttpResponse {
    let redirect_uris: Vec<String> = body["redirect_uris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if redirect_uris.is_empty() {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_redirect_uri", "error_description": "redirect_uris is required"}));
    }
    for uri in &redirect_uris {
        // RFC 8252: https, loopback http, or a private-use (reverse-DNS) app scheme.
        let ok = Url::parse(uri).is_ok_and(|u| {
            u.scheme() == "https"
                || (u.scheme() == "http" && crate::config::is_loopback_url(&u))
                || (u.scheme().contains('.') && u.fragment().is_none())
        });
        if !ok {
            return HttpResponse::BadRequest().json(json!({"error": "invalid_redirect_uri", "error_description": format!("{uri} must be https, loopback http, or a reverse-DNS app scheme such as com.example.app:/callback")}));
        }
    }
    let method = body["token_endpoint_auth_method"]
        .as_str()
        .unwrap_or("none");
    if method != "none" {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_client_metadata", "error_description": "only public clients (token_endpoint_auth_method none) can register here"}));
    }
    let client_id = format!("dev-client-{}", random_token(9));
    let name = body["client_name"].as_str().map(str::to_owned);
    state.clients.insert(
        client_id.clone(),
        Client {
            client_id: client_id.clone(),
            redirect_uris: redirect_uris.clone(),
            name: name.clone(),
        },
    );
    HttpResponse::Created().json(json!({
        "client_id": client_id,
        "client_id_issued_at": super::state::now_secs(),
        "client_name": name,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }))
}
