//! Headless sign-in against `mcp-obo dev`'s development identity provider, the way an MCP
//! client does it, written independently of the provider's code (its own PKCE, its own form
//! parsing): 401 challenge → protected resource metadata (RFC 9728) → authorization server
//! metadata (RFC 8414) → dynamic client registration (RFC 7591) → authorize (code + PKCE S256,
//! RFC 8707 resource) → the sign-in page's form, submitted for one dev user → the 302 to the
//! redirect URI (`code`, `state`, RFC 9207 `iss`) → token endpoint.
//!
//! [`sign_in`] does it all; the steps are public for tests that probe one of them.

use std::collections::HashMap;
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use url::Url;

/// A loopback redirect URI nobody listens on: the tests read the code from the `Location`
/// header and never request it.
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/mcp-obo-tests/oauth/callback";

/// An HTTP client that does not follow redirects (they carry the authorization response)
/// and gives up after 10 s.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

/// The parameters of a `WWW-Authenticate: Bearer k="v", k2=v2` challenge.
pub fn challenge_params(header: &str) -> HashMap<String, String> {
    let rest = header.trim();
    let rest = rest
        .strip_prefix("Bearer")
        .or_else(|| rest.strip_prefix("bearer"))
        .unwrap_or(rest);
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if name.is_empty() || chars.next() != Some('=') {
            return params;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value =
                std::iter::from_fn(|| chars.next_if(|c| *c != ',' && !c.is_whitespace())).collect();
        }
        params.insert(name.trim().to_owned(), value);
    }
}

/// RFC 8414 §3.1: the metadata URL of an issuer with a path is
/// `{origin}/.well-known/oauth-authorization-server{path}`.
pub fn rfc8414_metadata_url(issuer: &str) -> String {
    let url = Url::parse(issuer).expect("issuer is a URL");
    let path = url.path().trim_end_matches('/');
    format!(
        "{}/.well-known/oauth-authorization-server{path}",
        url.origin().ascii_serialization()
    )
}

/// What an unauthenticated MCP request leads to.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The 401's `WWW-Authenticate` header.
    pub www_authenticate: String,
    /// Its `resource_metadata` parameter.
    pub resource_metadata_url: String,
    /// Its `scope` parameter, when present.
    pub challenge_scope: Option<String>,
    /// The protected resource metadata document.
    pub protected_resource: Value,
    /// The RFC 8414 metadata URL derived from `authorization_servers[0]`.
    pub metadata_url: String,
    /// The authorization server metadata.
    pub metadata: Value,
}

impl Discovery {
    pub fn resource(&self) -> &str {
        self.protected_resource["resource"]
            .as_str()
            .expect("PRM resource")
    }
    pub fn authorization_server(&self) -> &str {
        self.protected_resource["authorization_servers"][0]
            .as_str()
            .expect("PRM authorization_servers[0]")
    }
    pub fn issuer(&self) -> &str {
        self.metadata["issuer"].as_str().expect("metadata issuer")
    }
    pub fn authorization_endpoint(&self) -> &str {
        self.metadata["authorization_endpoint"]
            .as_str()
            .expect("authorization_endpoint")
    }
    pub fn token_endpoint(&self) -> &str {
        self.metadata["token_endpoint"]
            .as_str()
            .expect("token_endpoint")
    }
    pub fn registration_endpoint(&self) -> &str {
        self.metadata["registration_endpoint"]
            .as_str()
            .expect("registration_endpoint")
    }
    /// The scope to request: the challenge's, else the PRM's `scopes_supported`.
    pub fn scope(&self) -> String {
        self.challenge_scope.clone().unwrap_or_else(|| {
            self.protected_resource["scopes_supported"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default()
        })
    }
}

/// POSTs an MCP `initialize` without a token and follows the 401 challenge to the
/// authorization server's metadata, checking each hop.
pub async fn discover(mcp_url: &str) -> Discovery {
    let http = http();
    let reply = http
        .post(mcp_url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "dev-login", "version": "1"}}})
            .to_string(),
        )
        .send()
        .await
        .expect("the MCP server answers");
    assert_eq!(reply.status(), 401, "an unauthenticated MCP request");
    let www_authenticate = reply
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .expect("a 401 carries WWW-Authenticate")
        .to_owned();
    assert!(
        www_authenticate.to_ascii_lowercase().starts_with("bearer"),
        "{www_authenticate}"
    );
    let params = challenge_params(&www_authenticate);
    let resource_metadata_url = params
        .get("resource_metadata")
        .unwrap_or_else(|| panic!("no resource_metadata in {www_authenticate}"))
        .clone();
    let protected_resource = get_json(&http, &resource_metadata_url).await;
    let issuer = protected_resource["authorization_servers"][0]
        .as_str()
        .unwrap_or_else(|| panic!("PRM without authorization_servers: {protected_resource}"))
        .to_owned();
    let metadata_url = rfc8414_metadata_url(&issuer);
    let metadata = get_json(&http, &metadata_url).await;
    Discovery {
        www_authenticate,
        resource_metadata_url,
        challenge_scope: params.get("scope").cloned(),
        protected_resource,
        metadata_url,
        metadata,
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let reply = http.get(url).send().await.expect("GET answers");
    assert_eq!(reply.status(), 200, "GET {url}");
    reply.json().await.unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// A PKCE verifier and its S256 challenge (RFC 7636).
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
        Self::from_verifier(&URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn from_verifier(verifier: &str) -> Self {
        Self {
            verifier: verifier.to_owned(),
            challenge: URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes())),
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// A random `state`.
pub fn random_state() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Registers a public client (RFC 7591) with one redirect URI; returns its client id.
pub async fn register(discovery: &Discovery, redirect_uri: &str) -> String {
    let reply = http()
        .post(discovery.registration_endpoint())
        .json(&json!({
            "client_name": "mcp-obo tests (dev_login)",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }))
        .send()
        .await
        .expect("registration answers");
    let status = reply.status();
    let body: Value = reply.json().await.expect("registration JSON");
    assert_eq!(status, 201, "registration: {body}");
    assert_eq!(body["token_endpoint_auth_method"], "none", "{body}");
    body["client_id"].as_str().expect("client_id").to_owned()
}

/// An authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub resource: Option<String>,
    pub state: String,
    pub pkce: Pkce,
    /// `S256` unless a test wants another.
    pub code_challenge_method: String,
}

impl AuthorizationRequest {
    /// A request for `discovery`'s resource and scope with fresh PKCE and state.
    pub fn new(discovery: &Discovery, client_id: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            redirect_uri: REDIRECT_URI.to_owned(),
            scope: discovery.scope(),
            resource: Some(discovery.resource().to_owned()),
            state: random_state(),
            pkce: Pkce::new(),
            code_challenge_method: "S256".to_owned(),
        }
    }

    pub fn url(&self, discovery: &Discovery) -> Url {
        let mut url = Url::parse(discovery.authorization_endpoint()).expect("authorize URL");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("scope", &self.scope)
                .append_pair("state", &self.state)
                .append_pair("code_challenge", &self.pkce.challenge)
                .append_pair("code_challenge_method", &self.code_challenge_method);
            if let Some(r) = &self.resource {
                q.append_pair("resource", r);
            }
        }
        url
    }
}

/// A redirect to the client's redirect URI: the authorization response.
#[derive(Debug, Clone)]
pub struct Callback {
    pub location: Url,
    pub params: HashMap<String, String>,
}

impl Callback {
    fn parse(location: Url) -> Self {
        let params = location.query_pairs().into_owned().collect();
        Self { location, params }
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
    pub fn code(&self) -> &str {
        self.get("code")
            .unwrap_or_else(|| panic!("no code in {}", self.location))
    }
}

/// A user button of the sign-in form.
#[derive(Debug, Clone)]
pub struct UserChoice {
    pub id: String,
    /// The button's text, e.g. `Ada Lovelace <ada@contoso.dev>`.
    pub label: String,
}

/// The sign-in page: `<form method="post" id="signin">` with the request as hidden inputs
/// and one `<button name="user">` per dev user.
#[derive(Debug, Clone)]
pub struct SignInPage {
    /// Where the page was fetched (the form has no action: it posts there).
    pub url: Url,
    pub method: String,
    pub action: Option<String>,
    pub hidden: Vec<(String, String)>,
    pub users: Vec<UserChoice>,
}

/// What the authorization endpoint answered to the GET.
#[derive(Debug)]
pub enum Authorize {
    Page(SignInPage),
    Redirect(Callback),
    Other { status: u16, body: String },
}

/// GETs an authorization URL.
pub async fn open_authorize(url: &Url) -> Authorize {
    let reply = http()
        .get(url.clone())
        .send()
        .await
        .expect("authorize answers");
    let status = reply.status().as_u16();
    if let Some(location) = location(&reply, url) {
        return Authorize::Redirect(Callback::parse(location));
    }
    let body = reply.text().await.unwrap_or_default();
    match (status, parse_sign_in_form(&body)) {
        (200, Some((method, action, hidden, users))) => Authorize::Page(SignInPage {
            url: url.clone(),
            method,
            action,
            hidden,
            users,
        }),
        _ => Authorize::Other { status, body },
    }
}

fn location(reply: &reqwest::Response, base: &Url) -> Option<Url> {
    if !reply.status().is_redirection() {
        return None;
    }
    let raw = reply.headers().get("location")?.to_str().ok()?;
    base.join(raw).ok()
}

/// Submits the sign-in form as the user whose button label contains `who` (e.g. an email);
/// returns the redirect, or panics with what the provider answered instead.
pub async fn choose_user(page: &SignInPage, who: &str) -> Callback {
    assert_eq!(page.method, "post", "the sign-in form posts");
    let user = page
        .users
        .iter()
        .find(|u| u.label.contains(who))
        .unwrap_or_else(|| panic!("no user {who} on the sign-in page: {:?}", page.users));
    let mut form = page.hidden.clone();
    form.push(("user".to_owned(), user.id.clone()));
    let (target, reply) = submit(page, &form).await;
    match location(&reply, &target) {
        Some(loc) => Callback::parse(loc),
        None => panic!(
            "the sign-in POST answered {} without a redirect: {}",
            reply.status(),
            reply.text().await.unwrap_or_default()
        ),
    }
}

/// POSTs `form` where the sign-in page's form posts (its hidden inputs, among them the
/// anti-forgery token, are the caller's to include); the target and the raw answer.
pub async fn submit(page: &SignInPage, form: &[(String, String)]) -> (Url, reqwest::Response) {
    let target = match &page.action {
        Some(a) => page.url.join(a).expect("form action"),
        None => page.url.clone(),
    };
    let reply = http()
        .post(target.clone())
        .form(form)
        .send()
        .await
        .expect("the sign-in POST answers");
    (target, reply)
}

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

/// A completed sign-in.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub discovery: Discovery,
    pub client_id: String,
    pub request: AuthorizationRequest,
    pub callback: Callback,
    pub tokens: TokenReply,
}

impl SignIn {
    pub fn access_token(&self) -> &str {
        self.tokens.access_token()
    }
    pub fn refresh_token(&self) -> &str {
        self.tokens.refresh_token()
    }
}

/// The whole flow for the dev user whose sign-in button contains `who` (e.g.
/// `ada@contoso.dev`), checking `state` and `iss` on the way.
pub async fn sign_in(mcp_url: &str, who: &str) -> SignIn {
    let discovery = discover(mcp_url).await;
    let client_id = register(&discovery, REDIRECT_URI).await;
    let request = AuthorizationRequest::new(&discovery, &client_id);
    let page = match open_authorize(&request.url(&discovery)).await {
        Authorize::Page(page) => page,
        other => panic!("expected the sign-in page, got {other:?}"),
    };
    let callback = choose_user(&page, who).await;
    assert!(
        callback
            .location
            .as_str()
            .starts_with(&request.redirect_uri),
        "redirected to {} instead of the redirect URI",
        callback.location
    );
    assert_eq!(callback.get("error"), None, "{}", callback.location);
    assert_eq!(callback.get("state"), Some(request.state.as_str()));
    assert_eq!(
        callback.get("iss"),
        Some(discovery.issuer()),
        "RFC 9207 iss"
    );
    let tokens = redeem(
        &discovery,
        &request,
        callback.code(),
        &request.pkce.verifier,
    )
    .await;
    assert_eq!(tokens.status, 200, "code redemption: {}", tokens.body);
    SignIn {
        discovery,
        client_id,
        request,
        callback,
        tokens,
    }
}

/// The claims of a JWT (no verification: for assertions on what was issued).
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload"))
        .expect("JSON claims")
}

/// Minimal HTML reading for the sign-in page: the `<form id="signin">` element's method,
/// action, hidden inputs and user buttons.
#[allow(clippy::type_complexity)]
fn parse_sign_in_form(
    html: &str,
) -> Option<(
    String,
    Option<String>,
    Vec<(String, String)>,
    Vec<UserChoice>,
)> {
    let mut rest = html;
    let form = loop {
        let start = rest.find("<form")?;
        let tag_end = start + rest[start..].find('>')?;
        let attrs = attributes(&rest[start + 5..tag_end]);
        let body_end = tag_end + rest[tag_end..].find("</form>")?;
        if attrs.get("id").map(String::as_str) == Some("signin") {
            break (attrs, &rest[tag_end + 1..body_end]);
        }
        rest = &rest[body_end..];
    };
    let (form_attrs, body) = form;
    let mut hidden = Vec::new();
    let mut users = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let Some(tag_end) = after.find('>') else {
            break;
        };
        let tag = &after[..tag_end];
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let attrs = attributes(&tag[name.len()..]);
        rest = &after[tag_end + 1..];
        match name.to_ascii_lowercase().as_str() {
            "input"
                if attrs
                    .get("type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("hidden")) =>
            {
                if let Some(n) = attrs.get("name") {
                    hidden.push((n.clone(), attrs.get("value").cloned().unwrap_or_default()));
                }
            }
            "button" if attrs.get("name").map(String::as_str) == Some("user") => {
                let label_end = rest.find("</button>").unwrap_or(rest.len());
                users.push(UserChoice {
                    id: attrs.get("value").cloned().unwrap_or_default(),
                    label: unescape(rest[..label_end].trim()),
                });
            }
            _ => {}
        }
    }
    let method = form_attrs
        .get("method")
        .map(|m| m.to_ascii_lowercase())
        .unwrap_or_else(|| "get".to_owned());
    Some((method, form_attrs.get("action").cloned(), hidden, users))
}

/// `a="x" b='y' c=z d` → {a: x, b: y, c: z, d: ""}, values unescaped.
fn attributes(tag: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = tag.trim_end_matches('/').chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let name: String =
            std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace() && *c != '=')).collect();
        if name.is_empty() {
            return out;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'=').is_some() {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            match chars.peek().copied() {
                Some(q @ ('"' | '\'')) => {
                    chars.next();
                    value = std::iter::from_fn(|| chars.next_if(|c| *c != q)).collect();
                    chars.next();
                }
                _ => {
                    value = std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())).collect();
                }
            }
        }
        out.insert(name.to_ascii_lowercase(), unescape(&value));
    }
}

/// The character references the provider's escaping produces, and numeric ones.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
