//! RFC 9728 protected resource metadata and the 401 challenge that points at it.

use crate::support::mcp_http::{ACCEPT_BOTH, initialize, post_raw};
use crate::support::tokens::{CLIENT_ID, TENANT, TestIssuer};
use crate::support::{StaticTokens, entra_env, oidc_env, spawn_app, spawn_app_owned, wait_ready};
use serde_json::Value;

/// [`get_with_headers`] without the response headers.
async fn get_json(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let (status, _, body) = get_with_headers(url, headers).await;
    (status, body)
}

#[tokio::test]
async fn metadata_is_served_without_auth_at_root_and_each_mcp_path() {
    let issuer = TestIssuer::start().await;
    let app = spawn_app_owned(&entra_env(&issuer), StaticTokens::new("t"));
    wait_ready(&app).await;
    let scope = format!("api://{CLIENT_ID}/user_impersonation");
    for (path, resource) in [
        (
            "/.well-known/oauth-protected-resource",
            "https://mcp.example.com",
        ),
        (
            "/.well-known/oauth-protected-resource/mcp",
            "https://mcp.example.com/mcp",
        ),
        (
            "/.well-known/oauth-protected-resource/runtime/webhooks/mcp",
            "https://mcp.example.com/runtime/webhooks/mcp",
        ),
    ] {
        let (status, doc) = get_json(&app.url(path), &[]).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(doc["resource"], resource, "{path}");
        assert_eq!(
            doc["authorization_servers"],
            serde_json::json!([format!("{}/{TENANT}/v2.0", issuer.base)])
        );
        assert_eq!(doc["scopes_supported"], serde_json::json!([scope]));
        assert_eq!(
            doc["bearer_methods_supported"],
            serde_json::json!(["header"])
        );
        assert_eq!(doc["resource_name"], "mcp-obo");
        assert!(!doc.to_string().contains("offline_access"));
    }
}

#[tokio::test]
async fn the_401_challenge_names_the_metadata_of_the_path_called_and_the_scope() {
    let issuer = TestIssuer::start().await;
    let app = spawn_app_owned(&entra_env(&issuer), StaticTokens::new("t"));
    wait_ready(&app).await;
    for (path, metadata) in [
        (
            "/mcp",
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
        ),
        (
            "/runtime/webhooks/mcp",
            "https://mcp.example.com/.well-known/oauth-protected-resource/runtime/webhooks/mcp",
        ),
    ] {
        let body = serde_json::to_vec(&initialize("2025-06-18")).expect("json");
        let reply = post_raw(
            &app.url(path),
            body,
            &[
                ("content-type", "application/json"),
                ("accept", ACCEPT_BOTH),
            ],
        )
        .await;
        assert_eq!(reply.status, 401);
        assert_eq!(
            reply.header("www-authenticate"),
            Some(format!("Bearer resource_metadata=\"{metadata}\", scope=\"api://{CLIENT_ID}/user_impersonation\"").as_str())
        );
    }
}

#[tokio::test]
async fn forwarded_headers_count_only_from_trusted_proxies_and_only_without_public_url() {
    let issuer = TestIssuer::start().await;
    let forwarded = [
        ("x-forwarded-host", "mcp.contoso.com"),
        ("x-forwarded-proto", "https"),
    ];
    let base_env = |trusted: &str| {
        let mut env: Vec<(String, String)> = entra_env(&issuer)
            .into_iter()
            .filter(|(k, _)| k != "MCP_OBO__SERVER__PUBLIC_URL")
            .collect();
        env.push(("MCP_OBO__SERVER__TRUSTED_PROXIES".into(), trusted.into()));
        env
    };
    let trusted = spawn_app_owned(&base_env("127.0.0.1"), StaticTokens::new("t"));
    let (_, doc) = get_json(
        &trusted.url("/.well-known/oauth-protected-resource/mcp"),
        &forwarded,
    )
    .await;
    assert_eq!(doc["resource"], "https://mcp.contoso.com/mcp");

    let untrusted = spawn_app_owned(&base_env("10.0.0.9"), StaticTokens::new("t"));
    let (_, doc) = get_json(
        &untrusted.url("/.well-known/oauth-protected-resource/mcp"),
        &forwarded,
    )
    .await;
    assert_eq!(
        doc["resource"],
        format!("http://127.0.0.1:{}/mcp", untrusted.addr.port())
    );

    let mut explicit_env = base_env("127.0.0.1");
    explicit_env.push((
        "MCP_OBO__SERVER__PUBLIC_URL".into(),
        "https://MCP.Example.com/".into(),
    ));
    let explicit = spawn_app_owned(&explicit_env, StaticTokens::new("t"));
    let (_, doc) = get_json(
        &explicit.url("/.well-known/oauth-protected-resource/mcp"),
        &forwarded,
    )
    .await;
    assert_eq!(
        doc["resource"], "https://mcp.example.com/mcp",
        "configured public_url wins, canonicalised"
    );
}

#[tokio::test]
async fn oidc_metadata_names_the_issuer_and_unprefixed_scopes() {
    let issuer = TestIssuer::start().await;
    let env = oidc_env(&issuer);
    let app = spawn_app_owned(&env, StaticTokens::new("t"));
    let (_, doc) = get_json(&app.url("/.well-known/oauth-protected-resource/mcp"), &[]).await;
    assert_eq!(
        doc["authorization_servers"],
        serde_json::json!([issuer.oidc_issuer()])
    );
    assert_eq!(doc["scopes_supported"], serde_json::json!(["mcp:tools"]));
}

#[tokio::test]
async fn without_authorization_there_is_no_metadata() {
    let app = spawn_app(&[], StaticTokens::new("t"));
    let (status, _) = get_json(&app.url("/.well-known/oauth-protected-resource/mcp"), &[]).await;
    assert_eq!(status, 404);
}

/// GETs `url` with `headers` (a name may repeat: each is its own header line).
async fn get_with_headers(
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let client = reqwest::Client::new();
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = req.send().await.expect("request");
    let status = response.status().as_u16();
    let response_headers = response.headers().clone();
    (
        status,
        response_headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// `entra_env` without `public_url`, believing forwarded headers from `trusted`.
fn behind_proxies(issuer: &TestIssuer, trusted: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = entra_env(issuer)
        .into_iter()
        .filter(|(k, _)| k != "MCP_OBO__SERVER__PUBLIC_URL")
        .collect();
    env.push(("MCP_OBO__SERVER__TRUSTED_PROXIES".into(), trusted.into()));
    env
}

#[tokio::test]
async fn forwarded_headers_count_by_the_value_the_trusted_proxy_appended() {
    let issuer = TestIssuer::start().await;
    let app = spawn_app_owned(
        &behind_proxies(&issuer, "127.0.0.1"),
        StaticTokens::new("t"),
    );
    let url = app.url("/.well-known/oauth-protected-resource/mcp");
    for (what, headers, resource) in [
        (
            "comma-separated: the client's value first, the proxy's last",
            vec![
                ("x-forwarded-host", "evil.example, mcp.contoso.com"),
                ("x-forwarded-proto", "http, https"),
            ],
            "https://mcp.contoso.com/mcp",
        ),
        (
            "repeated header lines: the proxy's line last",
            vec![
                ("x-forwarded-host", "evil.example"),
                ("x-forwarded-host", "mcp.contoso.com"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-proto", "http"),
            ],
            "http://mcp.contoso.com/mcp",
        ),
        (
            "both, across lines",
            vec![
                ("x-forwarded-host", "evil.example, evil2.example"),
                ("x-forwarded-host", "evil3.example,mcp.contoso.com"),
            ],
            "https://mcp.contoso.com/mcp",
        ),
    ] {
        let (status, _, doc) = get_with_headers(&url, &headers).await;
        assert_eq!(status, 200, "{what}");
        assert_eq!(doc["resource"], resource, "{what}");
    }
}

#[tokio::test]
async fn metadata_that_can_vary_by_forwarded_headers_is_not_publicly_cacheable() {
    let issuer = TestIssuer::start().await;
    let forwarded = [
        ("x-forwarded-host", "mcp.contoso.com"),
        ("x-forwarded-proto", "https"),
    ];
    let proxied = spawn_app_owned(
        &behind_proxies(&issuer, "127.0.0.1"),
        StaticTokens::new("t"),
    );
    let fixed = spawn_app_owned(&entra_env(&issuer), StaticTokens::new("t"));
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let (status, headers, _) = get_with_headers(&proxied.url(path), &forwarded).await;
        assert_eq!(status, 200, "{path}");
        let header = |name: &str| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(", ")
        };
        assert_eq!(header("cache-control"), "private, max-age=3600", "{path}");
        let vary = header("vary").to_ascii_lowercase();
        for name in ["x-forwarded-host", "x-forwarded-proto"] {
            assert!(
                vary.contains(name),
                "{path}: {name} missing from Vary {vary:?}"
            );
        }

        // A configured public_url never varies: public caches may keep it.
        let (status, headers, _) = get_with_headers(&fixed.url(path), &forwarded).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            headers.get("cache-control").and_then(|v| v.to_str().ok()),
            Some("public, max-age=3600"),
            "{path}"
        );
    }
}
