//! The issuer itself: [`TestIssuer`], its state, what its token endpoint accepts
//! ([`TokenEndpointPolicy`], [`FederatedCredential`]), and its discovery and key documents.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mcp_obo::jose::SigningKey;
use serde_json::{Value, json};

use super::token_endpoint::{entra_token_endpoint, oidc_token_endpoint};
use super::{CLIENT_ID, TENANT, USER_OID, VSCODE, entra_error, lock, merge, now};

pub(super) struct IssuerState {
    pub(super) base: String,
    pub(super) published: Arc<Mutex<Vec<Value>>>,
    pub(super) down: AtomicBool,
    pub(super) jwks_fetches: AtomicUsize,
    /// Discovery documents served (Entra's and the OIDC issuer's).
    pub(super) discovery_fetches: AtomicUsize,
    pub(super) signer: Mutex<Arc<SigningKey>>,
    pub(super) obo: Mutex<TokenEndpointPolicy>,
    pub(super) script: Mutex<std::collections::VecDeque<(u16, Option<u64>, Value)>>,
    pub(super) exchanges: AtomicUsize,
    pub(super) client_assertions: Mutex<Vec<String>>,
    pub(super) issued: Mutex<Vec<String>>,
    /// The `claims` parameter of each Entra token request, in order (`None`: not sent).
    pub(super) claims: Mutex<Vec<Option<String>>>,
}

/// A federated identity credential: the assertion the app trusts (issuer, subject,
/// audience) and the key that signs it.
#[derive(Clone)]
pub struct FederatedCredential {
    pub issuer: String,
    pub subject: String,
    pub audience: String,
    pub jwk: Value,
}

/// What the token endpoint accepts, as an app registration would.
#[derive(Clone, Default)]
pub struct TokenEndpointPolicy {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub federated: Vec<FederatedCredential>,
    /// (`x5t#S256`, public JWK) of registered certificates.
    pub certificates: Vec<(String, Value)>,
    /// The downstream resource tokens may be requested for (`{resource}/.default`).
    pub resource: String,
    /// Audience the user's token must have (RFC 8693 mode: the MCP resource).
    pub user_audiences: Vec<String>,
    pub lifetime_secs: i64,
    /// (user `oid`, permission) pairs a user has not consented to: asking for one is
    /// AADSTS65001, as Entra answers.
    pub withheld: Vec<(String, String)>,
}

/// The delegated permissions the fake app registration has configured: what `.default`
/// stands for.
pub const APP_PERMISSIONS: &[&str] = &["Calendars.Read", "User.Read"];

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
            published: Arc::new(Mutex::new(vec![key.public_jwk()])),
            down: AtomicBool::new(false),
            jwks_fetches: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
            signer: Mutex::new(key.clone()),
            obo: Mutex::new(TokenEndpointPolicy {
                client_id: CLIENT_ID.into(),
                user_audiences: vec![CLIENT_ID.into(), format!("api://{CLIENT_ID}")],
                lifetime_secs: 3599,
                ..Default::default()
            }),
            script: Mutex::new(std::collections::VecDeque::new()),
            exchanges: AtomicUsize::new(0),
            client_assertions: Mutex::new(Vec::new()),
            issued: Mutex::new(Vec::new()),
            claims: Mutex::new(Vec::new()),
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
            .route(
                "/{tenant}/oauth2/v2.0/token",
                axum::routing::post(entra_token_endpoint),
            )
            .route("/oidc/token", axum::routing::post(oidc_token_endpoint))
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

    /// Publishes `key` with an `issuer` member, as Entra's multi-tenant key sets do (a
    /// literal issuer, or one with the `{tenantid}` template).
    pub fn publish_with_issuer(&self, key: &SigningKey, issuer: &str) {
        let mut jwk = key.public_jwk();
        jwk["issuer"] = json!(issuer);
        lock(&self.state.published).push(jwk);
    }

    /// Replaces the published keys with a new one, which signs from now on.
    pub fn rotate(&self, kid: &str) {
        let key = Arc::new(SigningKey::generate_rsa(kid).expect("rsa key"));
        *lock(&self.state.published) = vec![key.public_jwk()];
        *lock(&self.state.signer) = key.clone();
        *lock(&self.signer) = key;
    }

    /// The published keys, live (for a fake Graph verifying tokens this issuer signs).
    pub fn keys_handle(&self) -> Arc<Mutex<Vec<Value>>> {
        self.state.published.clone()
    }

    /// Changes what the token endpoint accepts.
    pub fn configure_token_endpoint(&self, change: impl FnOnce(&mut TokenEndpointPolicy)) {
        change(&mut lock(&self.state.obo));
    }

    /// The next exchange answers `status` with `body` (and `Retry-After`) instead.
    pub fn script_token_endpoint(&self, status: u16, retry_after: Option<u64>, body: Value) {
        lock(&self.state.script).push_back((status, retry_after, body));
    }

    /// The next exchange answers Entra's `interaction_required` (AADSTS50076) with `claims`,
    /// as when Conditional Access or a revoked session needs the user back.
    pub fn script_interaction_required(&self, claims: &str) {
        self.script_token_endpoint(
            400,
            None,
            entra_error("interaction_required", 50076, json!({"claims": claims})),
        );
    }

    /// Successful exchanges so far.
    pub fn exchanges(&self) -> usize {
        self.state.exchanges.load(Ordering::SeqCst)
    }

    /// Every downstream token the token endpoint issued.
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state.issued).clone()
    }

    /// The `claims` parameter of every Entra token request, in order (`None`: not sent).
    pub fn claims_requested(&self) -> Vec<Option<String>> {
        lock(&self.state.claims).clone()
    }

    /// Every client assertion presented, in order.
    pub fn client_assertions(&self) -> Vec<String> {
        lock(&self.state.client_assertions).clone()
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Discovery documents served so far (each refresh that does not already know the keys
    /// URL asks for one).
    pub fn discovery_fetches(&self) -> usize {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Signs `claims` with the current key.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_typed("JWT", claims)
    }

    /// Signs `claims` with the current key and the JWS `typ` given (e.g. `at+jwt`).
    pub fn sign_typed(&self, typ: &str, claims: &Value) -> String {
        let key = lock(&self.signer).clone();
        key.sign(typ, json!({}), claims).expect("sign")
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
    s.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    axum::Json(mcp_obo::devidp::shapes::openid_configuration(&format!(
        "{}/{tenant}",
        s.base
    )))
    .into_response()
}

async fn oidc_discovery(State(s): State<Arc<IssuerState>>) -> Response {
    if s.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    s.discovery_fetches.fetch_add(1, Ordering::SeqCst);
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
