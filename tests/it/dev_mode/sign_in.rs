//! The headless sign-in against the dev provider: discovery from the MCP server's 401,
//! registration (dynamic, or a client ID metadata document), the sign-in page, PKCE, codes.

use serde_json::json;

use super::{DevProcess, assert_greets_ada, banner_issuer, call_hello};
use crate::support::dev_login::{self, AuthorizationRequest, Authorize, Pkce};

#[tokio::test]
async fn rust_headless_sign_in_then_hello_tool_greets_the_dev_user() {
    let dev = DevProcess::start().await;
    let issuer = banner_issuer(&dev.banner().await);
    let mcp_url = dev.mcp_url();
    let discovery = discover_the_dev_provider(&dev, &issuer).await;

    // Register, authorize as Ada, redeem.
    let client_id = dev_login::register(&discovery, dev_login::REDIRECT_URI).await;
    let request = AuthorizationRequest::new(&discovery, &client_id);
    let Authorize::Page(page) = dev_login::open_authorize(&request.url(&discovery)).await else {
        panic!("expected the sign-in page\n{}", dev.logs());
    };
    let labels: Vec<&str> = page.users.iter().map(|u| u.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "Ada Lovelace <ada@contoso.dev>",
            "Alan Turing <alan@contoso.dev>"
        ]
    );
    let callback = dev_login::choose_user(&page, "ada@contoso.dev").await;
    assert_returns_to_the_client(&callback);
    assert_eq!(callback.get("iss"), Some(issuer.as_str()), "RFC 9207 iss");
    assert_eq!(callback.get("state"), Some(request.state.as_str()));
    let tokens = dev_login::redeem(
        &discovery,
        &request,
        callback.code(),
        &request.pkce.verifier,
    )
    .await;
    let claims = dev_login::jwt_claims(tokens.access_token());
    assert_eq!(claims["aud"], mcp_url.as_str(), "RFC 8707: {claims}");
    assert_eq!(claims["iss"], issuer.as_str(), "{claims}");
    assert_eq!(claims["preferred_username"], "ada@contoso.dev", "{claims}");
    assert_eq!(claims["azp"], client_id.as_str(), "{claims}");

    // The bearer token calls HelloTool, which reaches the Graph emulator on behalf of Ada.
    let result = call_hello(&dev, tokens.access_token()).await;
    assert_greets_ada(&result, &dev.logs());
}

/// 401 → resource_metadata → PRM → authorization server → RFC 8414 metadata, each naming
/// `dev`'s MCP server or its identity provider (`issuer`).
async fn discover_the_dev_provider(dev: &DevProcess, issuer: &str) -> dev_login::Discovery {
    let mcp_url = dev.mcp_url();
    let discovery = dev_login::discover(&mcp_url).await;
    assert_eq!(
        discovery.resource_metadata_url,
        dev.url("/.well-known/oauth-protected-resource/mcp"),
        "{}",
        discovery.www_authenticate
    );
    assert_eq!(
        discovery.resource(),
        mcp_url,
        "{}",
        discovery.protected_resource
    );
    assert_eq!(discovery.authorization_server(), issuer);
    assert_eq!(
        discovery.metadata_url,
        format!(
            "http://127.0.0.1:{}/.well-known/oauth-authorization-server{}",
            dev.idp_port,
            url::Url::parse(issuer).expect("issuer URL").path()
        )
    );
    let metadata = &discovery.metadata;
    assert_eq!(metadata["issuer"], issuer, "{metadata}");
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
    ] {
        let url = metadata[endpoint].as_str().unwrap_or_default();
        assert!(
            url.starts_with(&format!("http://127.0.0.1:{}/", dev.idp_port)),
            "{endpoint}: {metadata}"
        );
    }
    discovery
}

#[tokio::test]
async fn pkce_and_codes_are_enforced() {
    let dev = DevProcess::start().await;
    let discovery = dev_login::discover(&dev.mcp_url()).await;
    let client_id = dev_login::register(&discovery, dev_login::REDIRECT_URI).await;
    let code_for = |request: AuthorizationRequest| {
        let discovery = discovery.clone();
        async move {
            let Authorize::Page(page) = dev_login::open_authorize(&request.url(&discovery)).await
            else {
                panic!("expected the sign-in page");
            };
            dev_login::choose_user(&page, "ada@contoso.dev")
                .await
                .code()
                .to_owned()
        }
    };

    // A verifier that does not hash to the challenge.
    let request = AuthorizationRequest::new(&discovery, &client_id);
    let code = code_for(request.clone()).await;
    let wrong = Pkce::new().verifier;
    let reply = dev_login::redeem(&discovery, &request, &code, &wrong).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.error(), Some("invalid_grant"), "{}", reply.body);

    // A code works once.
    let request = AuthorizationRequest::new(&discovery, &client_id);
    let code = code_for(request.clone()).await;
    let once = dev_login::redeem(&discovery, &request, &code, &request.pkce.verifier).await;
    assert_eq!(once.status, 200, "{}", once.body);
    let twice = dev_login::redeem(&discovery, &request, &code, &request.pkce.verifier).await;
    assert_eq!(twice.status, 400, "{}", twice.body);
    assert_eq!(twice.error(), Some("invalid_grant"), "{}", twice.body);

    // PKCE plain, and no PKCE at all, are refused with an error redirect to the client.
    let mut plain = AuthorizationRequest::new(&discovery, &client_id);
    plain.pkce.challenge = plain.pkce.verifier.clone();
    plain.code_challenge_method = "plain".to_owned();
    let plain_url = plain.url(&discovery);
    let without = AuthorizationRequest::new(&discovery, &client_id);
    let mut without_url = without.url(&discovery);
    let kept: Vec<(String, String)> = without_url
        .query_pairs()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    without_url.query_pairs_mut().clear().extend_pairs(kept);
    for (request, url) in [(plain, plain_url), (without, without_url)] {
        let Authorize::Redirect(callback) = dev_login::open_authorize(&url).await else {
            panic!("expected an error redirect for {url}");
        };
        assert_returns_to_the_client(&callback);
        assert_eq!(
            callback.get("error"),
            Some("invalid_request"),
            "{}",
            callback.location
        );
        assert_eq!(callback.get("code"), None, "{}", callback.location);
        assert_eq!(callback.get("state"), Some(request.state.as_str()));
        assert_eq!(callback.get("iss"), Some(discovery.issuer()));
    }
}

#[tokio::test]
async fn a_client_id_metadata_document_stands_in_for_registration() {
    // The client's id is the URL of its own metadata document, served here on loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let client_id = format!(
        "http://{}/oauth/client-metadata.json",
        listener.local_addr().expect("addr")
    );
    let document = json!({
        "client_id": client_id,
        "client_name": "Metadata Document Client",
        "redirect_uris": [dev_login::REDIRECT_URI],
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "none",
    });
    let app = axum::Router::new().route(
        "/oauth/client-metadata.json",
        axum::routing::get(move || {
            let document = document.clone();
            async move { axum::Json(document) }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dev = DevProcess::start().await;
    let discovery = dev_login::discover(&dev.mcp_url()).await;
    assert_eq!(
        discovery.metadata["client_id_metadata_document_supported"],
        true
    );
    let request = AuthorizationRequest::new(&discovery, &client_id);
    let Authorize::Page(page) = dev_login::open_authorize(&request.url(&discovery)).await else {
        panic!("expected the sign-in page\n{}", dev.logs());
    };
    let callback = dev_login::choose_user(&page, "ada@contoso.dev").await;
    let tokens = dev_login::redeem(
        &discovery,
        &request,
        callback.code(),
        &request.pkce.verifier,
    )
    .await;
    assert_eq!(
        dev_login::jwt_claims(tokens.access_token())["azp"],
        client_id.as_str()
    );
    assert_greets_ada(&call_hello(&dev, tokens.access_token()).await, &dev.logs());

    // A redirect URI the document does not list is refused on the page, not redirected to.
    let mut stray = AuthorizationRequest::new(&discovery, &client_id);
    stray.redirect_uri = "http://evil.example/callback".into();
    assert!(matches!(
        dev_login::open_authorize(&stray.url(&discovery)).await,
        Authorize::Other { status: 400, .. }
    ));
}

#[tokio::test]
async fn registration_accepts_only_safe_redirect_uris() {
    let dev = DevProcess::start().await;
    let discovery = dev_login::discover(&dev.mcp_url()).await;
    let client = dev_login::http();
    for (uri, ok) in [
        ("https://app.example.com/callback", true),
        ("http://127.0.0.1:33418/", true),
        ("com.example.mcp:/oauth/callback", true),
        ("http://app.example.com/callback", false),
        ("file:///etc/passwd", false),
        ("javascript:alert(1)", false),
        ("vbscript:msgbox", false),
    ] {
        let reply = client
            .post(discovery.registration_endpoint())
            .json(&json!({"redirect_uris": [uri], "token_endpoint_auth_method": "none"}))
            .send()
            .await
            .expect("register");
        assert_eq!(reply.status().is_success(), ok, "{uri}: {}", reply.status());
    }
}

/// The provider's redirect goes back to the client's registered redirect URI.
fn assert_returns_to_the_client(callback: &dev_login::Callback) {
    assert!(
        callback
            .location
            .as_str()
            .starts_with(dev_login::REDIRECT_URI),
        "{}",
        callback.location
    );
}
