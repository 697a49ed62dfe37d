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

/// The `X-MS-CLIENT-PRINCIPAL` header Easy Auth adds for a validated Entra token (base64
/// JSON): the user's object id and tenant id claims, and a display name.
pub fn easy_auth_principal(oid: &str, tid: &str) -> String {
    use base64::Engine;
    let principal = json!({
        "auth_typ": "aad",
        "claims": [
            {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid},
            {"typ": "http://schemas.microsoft.com/identity/claims/tenantid", "val": tid},
            {"typ": "name", "val": "Ada Lovelace"}
        ],
        "name_typ": "name", "role_typ": "roles"
    });
    base64::engine::general_purpose::STANDARD.encode(principal.to_string())
}

struct IssuerState {
    base: String,
    published: Arc<Mutex<Vec<Value>>>,
    down: AtomicBool,
    jwks_fetches: AtomicUsize,
    /// Discovery documents served (Entra's and the OIDC issuer's).
    discovery_fetches: AtomicUsize,
    signer: Mutex<Arc<SigningKey>>,
    obo: Mutex<TokenEndpointPolicy>,
    script: Mutex<std::collections::VecDeque<(u16, Option<u64>, Value)>>,
    exchanges: AtomicUsize,
    client_assertions: Mutex<Vec<String>>,
    issued: Mutex<Vec<String>>,
    /// The `claims` parameter of each Entra token request, in order (`None`: not sent).
    claims: Mutex<Vec<Option<String>>>,
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

/// Entra's error body for `AADSTS{code}`, with `extra` members merged in.
pub fn entra_error(error: &str, code: u64, extra: Value) -> Value {
    let mut body = mcp_obo::devidp::shapes::entra_error(error, code, "fake entra says no.");
    merge(&mut body, extra);
    body
}

fn oauth_error(status: u16, error: &str, code: u64) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(entra_error(error, code, json!({})))).into_response()
}

/// Verifies `token` against any of `jwks` (RS256/ES256), checking `aud` when given.
pub fn verify(token: &str, jwks: &[Value], audiences: &[String]) -> Option<Value> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let kid = header.kid?;
    let jwk_value = jwks.iter().find(|k| k["kid"] == kid.as_str())?;
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk_value.clone()).ok()?;
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    if audiences.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(audiences);
    }
    validation.set_required_spec_claims(&["exp"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .ok()
        .map(|d| d.claims)
}

/// Checks the client authentication of a token request against `policy`.
/// `Err(AADSTS code)` as Entra reports it: 7000215 wrong secret, 700213 no matching
/// federated credential, 700027 certificate assertion not valid.
fn client_authenticated(
    form: &std::collections::HashMap<String, String>,
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
    form: &std::collections::HashMap<String, String>,
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

async fn entra_token_endpoint(
    State(s): State<Arc<IssuerState>>,
    Path(tenant): Path<String>,
    axum::Form(form): axum::Form<std::collections::HashMap<String, String>>,
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

async fn oidc_token_endpoint(
    State(s): State<Arc<IssuerState>>,
    axum::Form(form): axum::Form<std::collections::HashMap<String, String>>,
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

/// A JWT's claims, read without verifying it (to look at a token a fake issued).
pub fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    jwt.split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}
