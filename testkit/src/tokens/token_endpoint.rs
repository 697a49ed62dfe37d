//! The token endpoints: Entra's on-behalf-of grant (`/{tenant}/oauth2/v2.0/token`) and
//! RFC 8693 token exchange (`/oidc/token`), each checking the client's authentication as an
//! app registration would, and answering scripted errors first.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::issuer::{APP_PERMISSIONS, IssuerState, TokenEndpointPolicy};
use super::{entra_error, lock, now, verify};

fn oauth_error(status: u16, error: &str, code: u64) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(entra_error(error, code, json!({})))).into_response()
}

/// Checks the client authentication of a token request against `policy`.
/// `Err(AADSTS code)` as Entra reports it: 7000215 wrong secret, 700213 no matching
/// federated credential, 700027 certificate assertion not valid.
fn client_authenticated(
    form: &HashMap<String, String>,
    policy: &TokenEndpointPolicy,
    endpoint: &str,
) -> Result<(), u64> {
    if let Some(secret) = form.get("client_secret") {
        return if policy.client_secret.as_deref() == Some(secret.as_str()) {
            Ok(())
        } else {
            Err(7_000_215)
        };
    }
    if client_assertion_valid(form, policy, endpoint) {
        Ok(())
    } else if form
        .get("client_assertion")
        .and_then(|a| jsonwebtoken::decode_header(a).ok())
        .is_some_and(|h| h.x5t_s256.is_some())
    {
        Err(700_027)
    } else {
        Err(700_213)
    }
}

fn client_assertion_valid(
    form: &HashMap<String, String>,
    policy: &TokenEndpointPolicy,
    endpoint: &str,
) -> bool {
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return false;
    }
    let Some(assertion) = form.get("client_assertion") else {
        return false;
    };
    // Federated credentials: issuer, subject and audience must match one, signature too.
    for fic in &policy.federated {
        if let Some(claims) = verify(
            assertion,
            std::slice::from_ref(&fic.jwk),
            std::slice::from_ref(&fic.audience),
        ) && claims["iss"] == fic.issuer.as_str()
            && claims["sub"] == fic.subject.as_str()
        {
            return true;
        }
    }
    // Certificates: private_key_jwt with x5t#S256, aud = the token endpoint, iss = sub = client.
    if let Ok(header) = jsonwebtoken::decode_header(assertion)
        && let Some(thumb) = header.x5t_s256
        && let Some((_, jwk)) = policy.certificates.iter().find(|(t, _)| *t == thumb)
    {
        let mut jwk = jwk.clone();
        jwk["kid"] = json!(header.kid.unwrap_or_default());
        if let Some(claims) = verify(assertion, &[jwk], &[endpoint.to_owned()]) {
            return claims["iss"] == policy.client_id.as_str()
                && claims["sub"] == policy.client_id.as_str();
        }
    }
    false
}

fn issue_downstream(
    s: &IssuerState,
    policy: &TokenEndpointPolicy,
    user: &Value,
    scopes: &str,
    tid: &str,
) -> Response {
    let now = now();
    let oid = user["oid"]
        .as_str()
        .or(user["sub"].as_str())
        .unwrap_or_default();
    // `scp` holds what was asked for (`.default`: everything the app is configured for),
    // short names (`https://graph.microsoft.com/User.Read` → `User.Read`), as Entra writes it.
    let mut granted: Vec<&str> = scopes
        .split(' ')
        .flat_map(|scope| match scope.rsplit('/').next().unwrap_or(scope) {
            ".default" => APP_PERMISSIONS.to_vec(),
            short => vec![short],
        })
        .collect();
    granted.sort_unstable();
    granted.dedup();
    if granted
        .iter()
        .any(|p| policy.withheld.iter().any(|(o, w)| o == oid && w == p))
    {
        let body = entra_error(
            "invalid_grant",
            65001,
            json!({"suberror": "consent_required"}),
        );
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let claims = json!({
        "iss": format!("{}/{tid}/v2.0", s.base),
        "aud": policy.resource,
        "exp": now + policy.lifetime_secs,
        "nbf": now - 5,
        "iat": now,
        "tid": tid,
        "oid": oid,
        "name": user["name"],
        "preferred_username": user["preferred_username"],
        "scp": granted.join(" "),
        "appid": policy.client_id,
        // Entra's unique token id: two tokens issued in one second still differ.
        "uti": format!("uti-{}", s.exchanges.load(Ordering::SeqCst)),
    });
    let key = lock(&s.signer).clone();
    let token = key.sign("JWT", json!({}), &claims).expect("sign");
    lock(&s.issued).push(token.clone());
    s.exchanges.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({
        "token_type": "Bearer",
        "scope": scopes,
        "expires_in": policy.lifetime_secs,
        "ext_expires_in": policy.lifetime_secs,
        "access_token": token,
    }))
    .into_response()
}

fn scripted(s: &IssuerState) -> Option<Response> {
    let (status, retry_after, body) = lock(&s.script).pop_front()?;
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        axum::Json(body),
    )
        .into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", secs.to_string().parse().expect("header"));
    }
    Some(response)
}

pub(super) async fn entra_token_endpoint(
    State(s): State<Arc<IssuerState>>,
    Path(tenant): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    if let Some(a) = form.get("client_assertion") {
        lock(&s.client_assertions).push(a.clone());
    }
    lock(&s.claims).push(form.get("claims").cloned());
    if let Some(response) = scripted(&s) {
        return response;
    }
    // Entra refuses `claims` that are not a JSON object (AADSTS90100, invalid parameter).
    if form
        .get("claims")
        .is_some_and(|c| !serde_json::from_str::<Value>(c).is_ok_and(|v| v.is_object()))
    {
        return oauth_error(400, "invalid_request", 90100);
    }
    let policy = lock(&s.obo).clone();
    let endpoint = format!("{}/{tenant}/oauth2/v2.0/token", s.base);
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return oauth_error(400, "unsupported_grant_type", 70003);
    }
    if form.get("requested_token_use").map(String::as_str) != Some("on_behalf_of") {
        return oauth_error(400, "invalid_request", 900144);
    }
    if form.get("client_id") != Some(&policy.client_id) {
        return oauth_error(400, "unauthorized_client", 700016);
    }
    if let Err(code) = client_authenticated(&form, &policy, &endpoint) {
        return oauth_error(401, "invalid_client", code);
    }
    let keys = lock(&s.published).clone();
    let Some(user) = form
        .get("assertion")
        .and_then(|a| verify(a, &keys, &policy.user_audiences))
    else {
        return oauth_error(400, "invalid_grant", 50013);
    };
    if user["tid"] != tenant.as_str() {
        return oauth_error(400, "invalid_grant", 50013);
    }
    let scopes = form.get("scope").cloned().unwrap_or_default();
    // `.default` or the tool's own permissions, each qualified with Graph's origin.
    let prefix = format!("{}/", policy.resource);
    if scopes.split(' ').any(|sc| !sc.starts_with(&prefix)) || scopes.is_empty() {
        return oauth_error(400, "invalid_scope", 70011);
    }
    issue_downstream(&s, &policy, &user, &scopes, &tenant)
}

pub(super) async fn oidc_token_endpoint(
    State(s): State<Arc<IssuerState>>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    if let Some(response) = scripted(&s) {
        return response;
    }
    let policy = lock(&s.obo).clone();
    let endpoint = format!("{}/oidc/token", s.base);
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:token-exchange")
    {
        return oauth_error(400, "unsupported_grant_type", 0);
    }
    if form.get("subject_token_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:token-type:access_token")
    {
        return oauth_error(400, "invalid_request", 0);
    }
    if form.get("client_id") != Some(&policy.client_id)
        || client_authenticated(&form, &policy, &endpoint).is_err()
    {
        return oauth_error(401, "invalid_client", 0);
    }
    let keys = lock(&s.published).clone();
    let Some(user) = form
        .get("subject_token")
        .and_then(|t| verify(t, &keys, &policy.user_audiences))
    else {
        return oauth_error(400, "invalid_grant", 0);
    };
    let scopes = form.get("scope").cloned().unwrap_or_default();
    issue_downstream(&s, &policy, &user, &scopes, "oidc")
}
