//! The token endpoint: the authorization code grant (with its PKCE verifier) and the
//! refresh token grant, and what it answered.

use serde_json::Value;

use super::{AuthorizationRequest, Discovery, http};

/// A token endpoint answer: HTTP status and JSON body.
#[derive(Debug, Clone)]
pub struct TokenReply {
    pub status: u16,
    pub body: Value,
}

impl TokenReply {
    pub fn access_token(&self) -> &str {
        assert_eq!(self.status, 200, "token request failed: {}", self.body);
        self.body["access_token"].as_str().expect("access_token")
    }
    pub fn refresh_token(&self) -> &str {
        assert_eq!(self.status, 200, "token request failed: {}", self.body);
        self.body["refresh_token"].as_str().expect("refresh_token")
    }
    pub fn error(&self) -> Option<&str> {
        self.body["error"].as_str()
    }
}

/// POSTs a form to the token endpoint.
pub async fn token_request(discovery: &Discovery, form: &[(&str, &str)]) -> TokenReply {
    let reply = http()
        .post(discovery.token_endpoint())
        .form(form)
        .send()
        .await
        .expect("the token endpoint answers");
    let status = reply.status().as_u16();
    let body = reply.json().await.unwrap_or(Value::Null);
    TokenReply { status, body }
}

/// The authorization code grant for `request`, with `verifier` (normally `request.pkce.verifier`).
pub async fn redeem(
    discovery: &Discovery,
    request: &AuthorizationRequest,
    code: &str,
    verifier: &str,
) -> TokenReply {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", request.client_id.as_str()),
        ("redirect_uri", request.redirect_uri.as_str()),
        ("code_verifier", verifier),
    ];
    if let Some(r) = &request.resource {
        form.push(("resource", r.as_str()));
    }
    token_request(discovery, &form).await
}

/// The refresh token grant.
pub async fn refresh(
    discovery: &Discovery,
    client_id: &str,
    refresh_token: &str,
    resource: Option<&str>,
) -> TokenReply {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", client_id),
    ];
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    token_request(discovery, &form).await
}
