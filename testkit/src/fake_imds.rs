//! A fake App Service / Container Apps managed identity endpoint (`IDENTITY_ENDPOINT`):
//! checks `X-IDENTITY-HEADER`, the API version, the resource and the client id, and answers
//! with a JWT signed by the managed identity's (fake) issuer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mcp_obo::jose::SigningKey;
use serde_json::json;

use super::tokens::{FederatedCredential, TENANT, now};

pub const IDENTITY_HEADER: &str = "fake-identity-header-secret";
pub const MI_CLIENT_ID: &str = "77777777-0000-4000-8000-000000000001";
pub const MI_PRINCIPAL_ID: &str = "88888888-0000-4000-8000-000000000002";

struct ImdsState {
    key: SigningKey,
    calls: AtomicUsize,
    /// Every token handed out, in order.
    issued: Mutex<Vec<String>>,
    audience: String,
    /// Other resources it issues tokens for (`https://redis.azure.com`).
    also_for: Mutex<Vec<String>>,
    /// `expires_on` to answer instead of the real expiry (a string, as the endpoint sends it).
    expires_on: Mutex<Option<String>>,
}

pub struct FakeImds {
    pub endpoint: String,
    state: Arc<ImdsState>,
}

impl FakeImds {
    /// Issues assertions for `audience` (e.g. `api://AzureADTokenExchange`).
    pub async fn start(audience: &str) -> Self {
        let state = Arc::new(ImdsState {
            key: SigningKey::generate_rsa("mi-key").expect("rsa"),
            calls: AtomicUsize::new(0),
            issued: Mutex::new(Vec::new()),
            audience: audience.to_owned(),
            also_for: Mutex::new(Vec::new()),
            expires_on: Mutex::new(None),
        });
        let app = axum::Router::new()
            .route("/msi/token", axum::routing::get(token))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind imds");
        let endpoint = format!("http://{}/msi/token", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { endpoint, state }
    }

    /// The federated credential an app registration would hold for this identity.
    pub fn federated_credential(&self) -> FederatedCredential {
        FederatedCredential {
            issuer: format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
            subject: MI_PRINCIPAL_ID.into(),
            audience: self.state.audience.clone(),
            jwk: self.state.key.public_jwk(),
        }
    }

    /// Issues tokens for `resource` too (their `aud`), as a managed identity does for any
    /// resource it has been granted.
    pub fn also_issue_for(&self, resource: &str) {
        self.state
            .also_for
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(resource.to_owned());
    }

    /// Answers `expires_on` (verbatim) from now on; `None` restores the real expiry.
    pub fn set_expires_on(&self, expires_on: Option<&str>) {
        *self
            .state
            .expires_on
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = expires_on.map(str::to_owned);
    }

    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Every token this endpoint issued, in order.
    pub fn issued(&self) -> Vec<String> {
        self.state
            .issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

async fn token(
    State(s): State<Arc<ImdsState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.calls.fetch_add(1, Ordering::SeqCst);
    if headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        != Some(IDENTITY_HEADER)
    {
        return (
            StatusCode::UNAUTHORIZED,
            "missing or wrong X-IDENTITY-HEADER",
        )
            .into_response();
    }
    if q.get("api-version").map(String::as_str) != Some("2019-08-01") {
        return (StatusCode::BAD_REQUEST, "api-version").into_response();
    }
    let resource = q.get("resource").cloned().unwrap_or_default();
    let known = resource == s.audience
        || s.also_for
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&resource);
    if !known {
        return (StatusCode::BAD_REQUEST, "unexpected resource").into_response();
    }
    if q.get("client_id").map(String::as_str) != Some(MI_CLIENT_ID) {
        return (StatusCode::BAD_REQUEST, "unknown user-assigned identity").into_response();
    }
    let exp = now() + 86_400;
    let claims = json!({
        "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "sub": MI_PRINCIPAL_ID,
        "aud": resource,
        "exp": exp,
        "iat": now(),
        "oid": MI_PRINCIPAL_ID,
    });
    let jwt = s.key.sign("JWT", json!({}), &claims).expect("sign");
    s.issued
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(jwt.clone());
    axum::Json(json!({
        "access_token": jwt,
        "expires_on": s
            .expires_on
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| exp.to_string()),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": MI_CLIENT_ID,
    }))
    .into_response()
}
