//! The key cache against a local issuer: the discovery document's checks, and each key's
//! declared issuer.

use super::*;

/// Serves `discovery` at `/.well-known/openid-configuration` and an empty-ish key set at
/// `/jwks`; returns the base URL.
async fn issuer_serving(discovery: impl Fn(&str) -> serde_json::Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let doc = discovery(&base);
    let key = crate::jose::SigningKey::generate_rsa("k1").expect("rsa");
    let jwks = serde_json::json!({"keys": [key.public_jwk()]});
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc) }
            }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

fn cache(base: &str) -> JwksCache {
    let url = Url::parse(&format!("{base}/.well-known/openid-configuration")).expect("url");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    JwksCache::new(url, http, Duration::ZERO)
}

#[tokio::test]
async fn a_plain_http_jwks_uri_is_refused_unless_loopback() {
    let base = issuer_serving(
        |base| serde_json::json!({"issuer": base, "jwks_uri": "http://jwks.invalid/jwks"}),
    )
    .await;
    let jwks = cache(&base);
    let error = jwks.refresh().await.expect_err("http jwks_uri");
    assert!(
        error.contains("https") && error.contains("jwks_uri"),
        "{error}"
    );
    assert!(!jwks.is_loaded());
}

#[tokio::test]
async fn a_loopback_http_jwks_uri_is_accepted() {
    let base = issuer_serving(
        |base| serde_json::json!({"issuer": base, "jwks_uri": format!("{base}/jwks")}),
    )
    .await;
    let jwks = cache(&base);
    assert_eq!(jwks.refresh().await, Ok(1));
    assert!(jwks.is_loaded());
}

#[test]
fn each_key_keeps_the_issuer_it_declares_and_one_not_a_string_is_not_used() {
    let key = |kid: &str| {
        crate::jose::SigningKey::generate_rsa(kid)
            .expect("rsa")
            .public_jwk()
    };
    let mut bound = key("bound");
    bound["issuer"] = serde_json::json!("https://login.example/{tenantid}/v2.0");
    let mut odd = key("odd");
    odd["issuer"] = serde_json::json!(42);
    let body = serde_json::json!({"keys": [key("free"), bound, odd]});
    let set = JwkSet::deserialize(&body).expect("jwk set");
    let jwks = cache("http://127.0.0.1:9");
    assert_eq!(
        jwks.install_declaring(&set, &declared_issuers(&body)),
        Some(2)
    );
    assert!(jwks.cached("odd").is_none());
    let bound = jwks.cached("bound").expect("bound key");
    assert!(bound.allows_issuer("https://login.example/t1/v2.0", Some("t1")));
    assert!(!bound.allows_issuer("https://login.example/t2/v2.0", Some("t1")));
    assert!(!bound.allows_issuer("https://login.example/t1/v2.0", None));
    assert!(!bound.allows_issuer("https://login.example/{tenantid}/v2.0", None));
    let free = jwks.cached("free").expect("free key");
    assert!(free.allows_issuer("https://anyone.example", None));
}

fn cache_expecting(base: &str, configured: &str) -> JwksCache {
    cache(base).with_issuer(&Url::parse(configured).expect("issuer"))
}

#[tokio::test]
async fn the_declared_issuer_must_be_the_configured_one_exactly() {
    let base = issuer_serving(
        |b| serde_json::json!({"issuer": format!("{b}/realm"), "jwks_uri": format!("{b}/jwks")}),
    )
    .await;
    let jwks = cache_expecting(&base, &format!("{base}/realm/"));
    let error = jwks.refresh().await.expect_err("issuer mismatch");
    assert!(error.contains("auth.issuer"), "{error}");
    assert!(!jwks.is_loaded());
    assert_eq!(jwks.issuer(), None);
    let jwks = cache_expecting(&base, &format!("{base}/realm"));
    assert_eq!(jwks.refresh().await, Ok(1));
    assert_eq!(
        jwks.issuer().as_deref(),
        Some(format!("{base}/realm").as_str())
    );
}

#[tokio::test]
async fn a_document_without_issuer_is_refused_when_one_is_expected() {
    let base = issuer_serving(|b| serde_json::json!({"jwks_uri": format!("{b}/jwks")})).await;
    let jwks = cache_expecting(&base, &base);
    let error = jwks.refresh().await.expect_err("no issuer");
    assert!(error.contains("no issuer"), "{error}");
}

#[tokio::test]
async fn a_bare_origin_issuer_is_the_spelling_the_provider_declares() {
    for declared in ["", "/"] {
        let base = issuer_serving(|b| {
            serde_json::json!({"issuer": format!("{b}{declared}"), "jwks_uri": format!("{b}/jwks")})
        })
        .await;
        // Parsed, the configured `http://127.0.0.1:port` reads `http://127.0.0.1:port/`.
        let jwks = cache_expecting(&base, &base);
        assert_eq!(jwks.refresh().await, Ok(1), "declared {declared:?}");
        assert_eq!(
            jwks.issuer().as_deref(),
            Some(format!("{base}{declared}").as_str())
        );
    }
}
