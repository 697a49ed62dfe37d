//! The authorization request: its checks (client, redirect URI, PKCE, RFC 8707 resource),
//! and how a failure is reported (on the page, or redirected to the client with RFC 9207 `iss`).

use std::collections::HashMap;

use actix_web::HttpResponse;
use url::Url;

use super::clients::find_client;
use super::html::refusal;
use super::param;
use crate::devidp::DEV_APP;
use crate::devidp::state::{Client, DevState, PendingAuthorization};

/// An authorization request that passed every check.
pub(super) struct Request {
    pub(super) client: Client,
    pub(super) redirect_uri: String,
    pub(super) state: Option<String>,
    pub(super) code_challenge: String,
    pub(super) scope: String,
    pub(super) audience: String,
}

/// Where an error is reported: on the page (no trustworthy redirect) or to the client.
pub(super) enum Failure {
    Page(String),
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

pub(super) async fn validate(
    state: &DevState,
    q: &HashMap<String, String>,
) -> Result<Request, Failure> {
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

impl Request {
    /// What the sign-in page's anti-forgery token is bound to.
    pub(super) fn pending(&self) -> PendingAuthorization {
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

pub(super) fn redirect_with(redirect_uri: &str, params: &[(&str, String)]) -> HttpResponse {
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

pub(super) fn failure(state: &DevState, failure: Failure) -> HttpResponse {
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
