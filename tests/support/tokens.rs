//! A test token issuer: keys generated in the test, OIDC discovery and JWKS served locally
//! both in the Entra shape (`/{tenant}/v2.0/...`) and a plain OIDC shape (`/oidc/...`), with
//! key rotation and outages on demand.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mcp_obo::jose::{SigningKey, b64url};
use serde_json::{Value, json};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const OTHER_TENANT: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT_ID: &str = "00000000-aaaa-bbbb-cccc-111111111111";
pub const VSCODE: &str = "aebc6443-996d-45c2-90f0-388ff96faa56";
pub const USER_OID: &str = "9f3c1d2e-0000-4000-8000-00000000ada1";

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

struct IssuerState {
    base: String,
    published: Mutex<Vec<Value>>,
    down: AtomicBool,
    jwks_fetches: AtomicUsize,
}

/// The running issuer. `signer` is the key tokens are signed with.
pub struct TestIssuer {
    pub base: String,
    state: Arc<IssuerState>,
    pub signer: Mutex<Arc<SigningKey>>,
}

impl TestIssuer {
    pub async fn start() -> Self {
        let key = Arc::new(SigningKey::generate_rsa("key-1").expect("rsa key"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind issuer");
        let base = format!("http://{}", listener.local_addr().expect("issuer address"));
        let state = Arc::new(IssuerState {
            base: base.clone(),
            published: Mutex::new(vec![key.public_jwk()]),
            down: AtomicBool::new(false),
            jwks_fetches: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(entra_discovery),
            )
            .route("/{tenant}/discovery/v2.0/keys", get(jwks))
            .route(
                "/oidc/.well-known/openid-configuration",
                get(oidc_discovery),
            )
            .route("/oidc/jwks", get(jwks_plain))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base,
            state,
            signer: Mutex::new(key),
        }
    }

    pub fn entra_issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.base)
    }

    pub fn oidc_issuer(&self) -> String {
        format!("{}/oidc", self.base)
    }

    /// Publishes `key` too (e.g. an EC key).
    pub fn publish(&self, key: &SigningKey) {
        lock(&self.state.published).push(key.public_jwk());
    }

    /// Replaces the published keys with a new one, which signs from now on.
    pub fn rotate(&self, kid: &str) {
        let key = Arc::new(SigningKey::generate_rsa(kid).expect("rsa key"));
        *lock(&self.state.published) = vec![key.public_jwk()];
        *lock(&self.signer) = key;
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Signs `claims` with the current key.
    pub fn sign(&self, claims: &Value) -> String {
        let key = lock(&self.signer).clone();
        key.sign("JWT", json!({}), claims).expect("sign")
    }

    /// A valid Entra v2 user token for this server, with `overrides` merged in
    /// (a `null` override removes the claim).
    pub fn entra_claims(&self, overrides: Value) -> Value {
        let now = now();
        let mut claims = json!({
            "iss": self.entra_issuer(TENANT),
            "aud": CLIENT_ID,
            "exp": now + 3600,
            "nbf": now - 10,
            "iat": now - 10,
            "tid": TENANT,
            "oid": USER_OID,
            "sub": "pairwise-sub-ada",
            "scp": "user_impersonation",
            "azp": VSCODE,
            "name": "Ada Lovelace",
            "preferred_username": "ada@contoso.com",
            "ver": "2.0",
        });
        merge(&mut claims, overrides);
        claims
    }

    pub fn entra_token(&self, overrides: Value) -> String {
        self.sign(&self.entra_claims(overrides))
    }
}

/// Merges `overrides` into `claims`; `null` removes a claim.
pub fn merge(claims: &mut Value, overrides: Value) {
    if let (Some(c), Some(o)) = (claims.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
}

/// A compact JWT with an arbitrary header and signature bytes (for forged tokens).
pub fn raw_jwt(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes()),
        b64url(signature)
    )
}

/// HS256 over `header.claims` with `secret` (the classic public-key-as-HMAC-secret forgery).
pub fn hs256_jwt(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64url(tag.as_ref()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "issuer down").into_response()
}

async fn entra_discovery(
    State(s): State<Arc<IssuerState>>,
    Path(tenant): Path<String>,
) -> Response {
    if s.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    axum::Json(json!({
        "issuer": format!("{}/{tenant}/v2.0", s.base),
        "jwks_uri": format!("{}/{tenant}/discovery/v2.0/keys", s.base),
        "authorization_endpoint": format!("{}/{tenant}/oauth2/v2.0/authorize", s.base),
        "token_endpoint": format!("{}/{tenant}/oauth2/v2.0/token", s.base),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .into_response()
}

async fn oidc_discovery(State(s): State<Arc<IssuerState>>) -> Response {
    if s.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    axum::Json(json!({
        "issuer": format!("{}/oidc", s.base),
        "jwks_uri": format!("{}/oidc/jwks", s.base),
    }))
    .into_response()
}

async fn jwks(State(s): State<Arc<IssuerState>>, Path(_tenant): Path<String>) -> Response {
    jwks_plain(State(s)).await
}

async fn jwks_plain(State(s): State<Arc<IssuerState>>) -> Response {
    if s.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"keys": *lock(&s.published)})).into_response()
}
