//! Headless sign-in against `mcp-obo dev`'s development identity provider, the way an MCP
//! client does it, written independently of the provider's code (its own PKCE, its own form
//! parsing): 401 challenge → protected resource metadata (RFC 9728) → authorization server
//! metadata (RFC 8414) → dynamic client registration (RFC 7591) → authorize (code + PKCE S256,
//! RFC 8707 resource) → the sign-in page's form, submitted for one dev user → the 302 to the
//! redirect URI (`code`, `state`, RFC 9207 `iss`) → token endpoint.
//!
//! [`sign_in`] does it all; the steps are public for tests that probe one of them.
//!
//! - `discovery.rs`: [`Discovery`], [`discover`]: the 401 challenge to the server metadata.
//! - `authorize.rs`: [`register`], [`AuthorizationRequest`], [`open_authorize`],
//!   [`choose_user`]: registration, PKCE, the sign-in page and its redirect.
//! - `sign_in_form.rs`: reading the sign-in page's form out of its HTML.
//! - `token.rs`: [`TokenReply`], [`redeem`], [`refresh`]: the token endpoint's grants.
//!
//! This file: the shared HTTP client and redirect URI, and the whole flow, [`sign_in`].

mod authorize;
mod discovery;
mod sign_in_form;
mod token;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

pub use authorize::{
    AuthorizationRequest, Authorize, Callback, Pkce, SignInPage, UserChoice, choose_user,
    open_authorize, random_state, register, submit,
};
pub use discovery::{Discovery, challenge_params, discover, rfc8414_metadata_url};
pub use token::{TokenReply, redeem, refresh, token_request};

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
