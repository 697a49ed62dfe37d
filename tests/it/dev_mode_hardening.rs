//! `mcp-obo dev`'s identity provider as a real authorization server on loopback:
//! it answers only to a loopback `Host`, its sign-in form needs the anti-forgery token of its
//! own request, its pages cannot be framed, and a client metadata document is fetched
//! without following redirects and without telling the browser what was found.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use crate::dev_mode::DevProcess;
use crate::support::dev_login::{self, AuthorizationRequest, Authorize, SignInPage};

/// The anti-forgery field of the sign-in form.
const ANTI_FORGERY: &str = "anti_forgery_token";

/// The sign-in page of a fresh authorization request of a registered client.
async fn sign_in_page(dev: &DevProcess) -> SignInPage {
    let discovery = dev_login::discover(&dev.mcp_url()).await;
    let client_id = dev_login::register(&discovery, dev_login::REDIRECT_URI).await;
    let request = AuthorizationRequest::new(&discovery, &client_id);
    match dev_login::open_authorize(&request.url(&discovery)).await {
        Authorize::Page(page) => page,
        other => panic!("expected the sign-in page, got {other:?}\n{}", dev.logs()),
    }
}

/// `page`'s form for its first user, with the anti-forgery field replaced by `token`
/// (left out for `None`).
fn form_with(page: &SignInPage, token: Option<&str>) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = page
        .hidden
        .iter()
        .filter(|(k, _)| k != ANTI_FORGERY)
        .cloned()
        .collect();
    if let Some(token) = token {
        form.push((ANTI_FORGERY.to_owned(), token.to_owned()));
    }
    form.push(("user".to_owned(), page.users[0].id.clone()));
    form
}

fn token_of(page: &SignInPage) -> String {
    page.hidden
        .iter()
        .find(|(k, _)| k == ANTI_FORGERY)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {ANTI_FORGERY} in the sign-in form: {:?}", page.hidden))
}

#[tokio::test]
async fn a_request_naming_a_host_that_is_not_loopback_gets_403() {
    let dev = DevProcess::start().await;
    let http = dev_login::http();
    let discovery = dev.idp_url("/.well-known/oauth-authorization-server");
    let graph = dev.graph_url("/v1.0/me");
    for url in [&discovery, &graph] {
        // A rebinding page's requests carry its own name as Host.
        for host in ["evil.example", "evil.example:80", "127.0.0.1.evil.example"] {
            let reply = http
                .get(url)
                .header("host", host)
                .send()
                .await
                .expect("answer");
            assert_eq!(reply.status(), 403, "{url} with Host {host}");
        }
    }
    for host in ["localhost", "127.0.0.1", "[::1]"] {
        let reply = http
            .get(&discovery)
            .header("host", format!("{host}:1234"))
            .send()
            .await
            .expect("answer");
        assert_eq!(reply.status(), 200, "Host {host}");
    }
}

#[tokio::test]
async fn a_sign_in_post_without_its_own_anti_forgery_token_is_refused() {
    let dev = DevProcess::start().await;
    let page = sign_in_page(&dev).await;
    let other = sign_in_page(&dev).await;
    let (_, missing) = dev_login::submit(&page, &form_with(&page, None)).await;
    assert_eq!(missing.status(), 400, "without the token");
    assert!(missing.headers().get("location").is_none());
    // Another request's token (a page the attacker opened itself) does not do either.
    let (_, foreign) = dev_login::submit(&page, &form_with(&page, Some(&token_of(&other)))).await;
    assert_eq!(foreign.status(), 403, "with another request's token");
    assert!(foreign.headers().get("location").is_none());
    let (_, made_up) = dev_login::submit(&page, &form_with(&page, Some("guessed"))).await;
    assert_eq!(made_up.status(), 403, "with a made-up token");
    // The page's own token signs in, once.
    let own = form_with(&page, Some(&token_of(&page)));
    let (_, signed_in) = dev_login::submit(&page, &own).await;
    assert_eq!(
        signed_in.status(),
        302,
        "with its own token\n{}",
        dev.logs()
    );
    let (_, replayed) = dev_login::submit(&page, &own).await;
    assert_eq!(replayed.status(), 403, "the token answers one POST");
}

#[tokio::test]
async fn dev_provider_pages_cannot_be_framed() {
    let dev = DevProcess::start().await;
    let discovery = dev_login::discover(&dev.mcp_url()).await;
    let client_id = dev_login::register(&discovery, dev_login::REDIRECT_URI).await;
    let url = AuthorizationRequest::new(&discovery, &client_id).url(&discovery);
    for url in [url.to_string(), dev.idp_url("/")] {
        let reply = dev_login::http().get(&url).send().await.expect("page");
        assert_eq!(reply.status(), 200, "{url}");
        let header = |name: &str| {
            reply
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{url}");
        assert_eq!(
            header("content-security-policy").as_deref(),
            Some("frame-ancestors 'none'"),
            "{url}"
        );
    }
}

#[tokio::test]
async fn a_client_metadata_url_answering_a_redirect_is_refused_and_its_target_gets_nothing() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let redirecting = format!("{base}/redirecting.json");
    let not_metadata = format!("{base}/status.json");
    let target_hits = Arc::new(AtomicUsize::new(0));
    // What the redirect names answers as the redirecting client's own document, so only
    // following the redirect could make it a client.
    let document = json!({
        "client_id": redirecting,
        "redirect_uris": [dev_login::REDIRECT_URI],
        "token_endpoint_auth_method": "none",
    });
    let hits = target_hits.clone();
    let app = axum::Router::new()
        .route(
            "/redirecting.json",
            axum::routing::get(|| async {
                axum::response::Redirect::temporary("/elsewhere/target.json")
            }),
        )
        .route(
            "/elsewhere/target.json",
            axum::routing::get(move || {
                hits.fetch_add(1, Ordering::SeqCst);
                let document = document.clone();
                async move { axum::Json(document) }
            }),
        )
        .route(
            "/status.json",
            axum::routing::get(|| async { axum::Json(json!({"client_id": "internal-db-7"})) }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dev = DevProcess::start().await;
    let discovery = dev_login::discover(&dev.mcp_url()).await;
    for client_id in [&redirecting, &not_metadata] {
        let url = AuthorizationRequest::new(&discovery, client_id).url(&discovery);
        let Authorize::Other { status, body } = dev_login::open_authorize(&url).await else {
            panic!("{client_id}: expected a refusal\n{}", dev.logs());
        };
        assert_eq!(status, 400, "{client_id}: {body}");
        assert!(
            body.contains("could not be fetched or is not a valid client metadata document"),
            "{client_id}: {body}"
        );
        // Nothing about what answered at the URL reaches the browser.
        for detail in [
            "307",
            "elsewhere",
            "internal-db-7",
            "another client_id",
            "redirect_uris",
        ] {
            assert!(!body.contains(detail), "{client_id}: {detail} in {body}");
        }
    }
    assert_eq!(
        target_hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}

#[tokio::test]
async fn a_client_metadata_document_larger_than_64_kib_is_refused_unread() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (small, huge) = (format!("{base}/small.json"), format!("{base}/huge.json"));
    let document = |client_id: &str, padding: usize| {
        json!({
            "client_id": client_id,
            "redirect_uris": [dev_login::REDIRECT_URI],
            "token_endpoint_auth_method": "none",
            "padding": "x".repeat(padding),
        })
    };
    let (small_doc, huge_doc) = (document(&small, 10), document(&huge, 70 * 1024));
    let app = axum::Router::new()
        .route(
            "/small.json",
            axum::routing::get(move || async move { axum::Json(small_doc) }),
        )
        .route(
            "/huge.json",
            axum::routing::get(move || async move { axum::Json(huge_doc) }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dev = DevProcess::start().await;
    let discovery = dev_login::discover(&dev.mcp_url()).await;
    // The same document, small: a client (the sign-in page); past the cap: refused.
    let url = AuthorizationRequest::new(&discovery, &small).url(&discovery);
    assert!(
        matches!(dev_login::open_authorize(&url).await, Authorize::Page(_)),
        "{}",
        dev.logs()
    );
    let url = AuthorizationRequest::new(&discovery, &huge).url(&discovery);
    let Authorize::Other { status, body } = dev_login::open_authorize(&url).await else {
        panic!("expected a refusal\n{}", dev.logs());
    };
    assert_eq!(status, 400, "{body}");
}
