//! Registration (RFC 7591), the authorization request (code + PKCE S256, RFC 8707
//! resource), the sign-in page it opens and the redirect its form answers with.

use std::collections::HashMap;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use url::Url;

use super::sign_in_form::parse_sign_in_form;
use super::{Discovery, REDIRECT_URI, http};

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
