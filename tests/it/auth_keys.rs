//! The issuer's signing keys as the resource server uses them: EC keys, rotation (an unknown
//! `kid`, rate-limited; a withdrawn key), an issuer outage at start-up and later, discovery
//! documents that must not be trusted (a redirect, another issuer), and keys that declare
//! the issuer they sign for (another tenant's, the `{tenantid}` template).

use crate::auth_requests::{
    assert_challenge, assert_challenge_for, entra_app, ready_app, with_token,
};
use crate::support::mcp_http::{ACCEPT_BOTH, initialize, post_raw};
use crate::support::tokens::{OTHER_TENANT, TENANT, TestIssuer, VSCODE, now};
use crate::support::{StaticTokens, entra_env, oidc_env, spawn_app_owned, wait_ready};
use serde_json::{Value, json};

#[tokio::test]
async fn es256_tokens_are_accepted_when_the_issuer_publishes_an_ec_key() {
    let issuer = TestIssuer::start().await;
    let ec = mcp_obo::jose::SigningKey::generate_ec("ec-1").expect("ec key");
    issuer.publish(&ec);
    let app = entra_app(&issuer, &[]).await;
    let token = ec
        .sign("JWT", json!({}), &issuer.entra_claims(json!({})))
        .expect("sign");
    assert_eq!(with_token(&app, &token).await.status, 200);
}

#[tokio::test]
async fn rotated_keys_are_fetched_when_an_unknown_kid_arrives() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(
        &issuer,
        &[("MCP_OBO__AUTH__JWKS_MIN_REFRESH_INTERVAL", "0s")],
    )
    .await;
    assert_eq!(
        with_token(&app, &issuer.entra_token(json!({})))
            .await
            .status,
        200
    );
    let before = issuer.jwks_fetches();
    issuer.rotate("key-2");
    let reply = with_token(&app, &issuer.entra_token(json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(issuer.jwks_fetches(), before + 1);
}

#[tokio::test]
async fn unknown_kid_refreshes_are_rate_limited() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(
        &issuer,
        &[("MCP_OBO__AUTH__JWKS_MIN_REFRESH_INTERVAL", "1h")],
    )
    .await;
    let stranger = mcp_obo::jose::SigningKey::generate_rsa("stranger").expect("rsa");
    let claims = issuer.entra_claims(json!({}));
    let before = issuer.jwks_fetches();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let token = stranger.sign("JWT", json!({}), &claims).expect("sign");
        let url = app.mcp_url();
        tasks.push(tokio::spawn(async move {
            let auth = format!("Bearer {token}");
            let body = serde_json::to_vec(&initialize("2025-06-18")).expect("json");
            post_raw(
                &url,
                body,
                &[
                    ("content-type", "application/json"),
                    ("accept", ACCEPT_BOTH),
                    ("authorization", &auth),
                ],
            )
            .await
            .status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("join"), 401);
    }
    assert!(
        issuer.jwks_fetches() <= before,
        "an unknown kid within the minimum interval must not refetch"
    );
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_issuer_is_down() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(
        &issuer,
        &[("MCP_OBO__AUTH__JWKS_MIN_REFRESH_INTERVAL", "0s")],
    )
    .await;
    issuer.set_down(true);
    // An unknown kid forces a refresh attempt, which fails...
    let stranger = mcp_obo::jose::SigningKey::generate_rsa("stranger").expect("rsa");
    let forged = stranger
        .sign("JWT", json!({}), &issuer.entra_claims(json!({})))
        .expect("sign");
    assert_eq!(with_token(&app, &forged).await.status, 401);
    // ...and the last good keys still validate real tokens.
    assert_eq!(
        with_token(&app, &issuer.entra_token(json!({})))
            .await
            .status,
        200
    );
    let ready = reqwest::get(app.url("/readyz")).await.expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
}

#[tokio::test]
async fn a_cached_token_stops_working_once_its_key_is_withdrawn() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(
        &issuer,
        &[
            ("MCP_OBO__AUTH__JWKS_REFRESH_INTERVAL", "1s"),
            ("MCP_OBO__AUTH__JWKS_MIN_REFRESH_INTERVAL", "1h"),
        ],
    )
    .await;
    let token = issuer.entra_token(json!({}));
    assert_eq!(with_token(&app, &token).await.status, 200);
    assert_eq!(with_token(&app, &token).await.status, 200, "cached");
    issuer.rotate("key-2");
    // An unknown kid cannot fetch keys (the minimum refresh interval is an hour): a token
    // signed with key-2 is accepted once the periodic refresh has installed the new set,
    // which no longer holds key-1.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while with_token(&app, &issuer.entra_token(json!({})))
        .await
        .status
        != 200
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the periodic refresh never brought the new key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let reply = with_token(&app, &token).await;
    assert_challenge_for(&reply, 401, Some("invalid_token"), "withdrawn key");
}

#[tokio::test]
async fn start_up_survives_an_issuer_outage_and_readiness_reports_it() {
    let issuer = TestIssuer::start().await;
    issuer.set_down(true);
    let mut env = entra_env(&issuer);
    env.push(("MCP_OBO__AUTH__ALLOWED_CLIENT_APPS".into(), VSCODE.into()));
    let app = spawn_app_owned(&env, StaticTokens::new("graph-token"));
    let ready = reqwest::get(app.url("/readyz")).await.expect("readyz");
    assert_eq!(ready.status().as_u16(), 503);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["checks"]["issuer_keys"], "failing");
    let reply = with_token(&app, &issuer.entra_token(json!({}))).await;
    assert_eq!(
        reply.status, 503,
        "no keys yet: retry later, not sign in again: {}",
        reply.text
    );
    issuer.set_down(false);
    wait_ready(&app).await;
    assert_eq!(
        with_token(&app, &issuer.entra_token(json!({})))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_discovery_document_behind_a_redirect_is_not_followed_and_no_keys_load() {
    use crate::support::redirector::Redirector;
    let issuer = TestIssuer::start().await;
    // The authority redirects to the real (fake Entra) discovery document, whose keys a
    // client that followed it would load.
    let redirector = Redirector::start(
        302,
        &format!(
            "{}/{TENANT}/v2.0/.well-known/openid-configuration",
            issuer.base
        ),
    )
    .await;
    let mut env = entra_env(&issuer);
    env.retain(|(k, _)| k != "MCP_OBO__ENTRA__AUTHORITY_HOST");
    env.push((
        "MCP_OBO__ENTRA__AUTHORITY_HOST".into(),
        redirector.url.clone(),
    ));
    env.push(("MCP_OBO__AUTH__ALLOWED_CLIENT_APPS".into(), VSCODE.into()));
    let app = spawn_app_owned(&env, StaticTokens::new("graph-token"));
    // Until the refresh has failed once and retried (its second request), or keys loaded.
    let ready = || async {
        let reply = reqwest::get(app.url("/readyz")).await.expect("readyz");
        reply.status().as_u16()
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while redirector.requests() < 2 && ready().await != 200 {
        assert!(tokio::time::Instant::now() < deadline, "no second attempt");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(ready().await, 503, "keys were loaded through the redirect");
    assert_eq!(issuer.jwks_fetches(), 0);
}

#[tokio::test]
async fn oidc_discovery_naming_another_issuer_keeps_the_server_not_ready() {
    let issuer = TestIssuer::start().await;
    let mut env = oidc_env(&issuer);
    // Configured with a trailing slash; the discovery document says `{base}/oidc`.
    for (k, v) in &mut env {
        if k == "MCP_OBO__AUTH__ISSUER" {
            *v = format!("{}/oidc/", issuer.base);
        }
    }
    let app = spawn_app_owned(&env, StaticTokens::new("graph-token"));
    let token = issuer.sign(&json!({
        "iss": format!("{}/oidc/", issuer.base), "aud": "https://mcp.example.com/mcp",
        "sub": "user-1", "exp": now() + 600, "iat": now(), "scope": "openid mcp:tools",
    }));
    // The first refresh is over once its retry asks for the discovery document again (or,
    // were the document trusted, once the keys it names are fetched).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while issuer.discovery_fetches() < 2 && issuer.jwks_fetches() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no second attempt");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let ready = reqwest::get(app.url("/readyz")).await.expect("readyz");
    assert_eq!(
        ready.status().as_u16(),
        503,
        "a discovery document naming another issuer must not be trusted"
    );
    assert!(issuer.jwks_fetches() == 0, "the JWKS must not be fetched");
    let reply = with_token(&app, &token).await;
    assert_eq!(reply.status, 503, "{}", reply.text);
}

#[tokio::test]
async fn a_key_declaring_another_tenants_issuer_verifies_none_of_this_tenants_tokens() {
    let issuer = TestIssuer::start().await;
    let tenant_b_key = mcp_obo::jose::SigningKey::generate_rsa("tenant-b").expect("rsa");
    issuer.publish_with_issuer(&tenant_b_key, &issuer.entra_issuer(OTHER_TENANT));
    let app = entra_app(
        &issuer,
        &[
            ("MCP_OBO__ENTRA__TENANT_ID", "organizations"),
            (
                "MCP_OBO__AUTH__ALLOWED_TENANTS",
                &format!("{TENANT},{OTHER_TENANT}"),
            ),
        ],
    )
    .await;
    let sign = |claims: &Value| tenant_b_key.sign("JWT", json!({}), claims).expect("sign");
    let tenant_b =
        issuer.entra_claims(json!({"tid": OTHER_TENANT, "iss": issuer.entra_issuer(OTHER_TENANT)}));
    assert_eq!(with_token(&app, &sign(&tenant_b)).await.status, 200);
    let tenant_a = issuer.entra_claims(json!({}));
    let reply = with_token(&app, &sign(&tenant_a)).await;
    assert_challenge(&reply, 401, Some("invalid_token"));
    // The key set's other key declares no issuer and signs for either tenant.
    assert_eq!(with_token(&app, &issuer.sign(&tenant_a)).await.status, 200);
}

#[tokio::test]
async fn a_key_with_the_tenant_template_verifies_only_tokens_whose_issuer_names_their_tid() {
    let issuer = TestIssuer::start().await;
    let common = mcp_obo::jose::SigningKey::generate_rsa("common").expect("rsa");
    issuer.publish_with_issuer(&common, &format!("{}/{{tenantid}}/v2.0", issuer.base));
    let sign = |claims: &Value| common.sign("JWT", json!({}), claims).expect("sign");
    // Entra mode: the tenant's v2 token, and its v1 token (the same keys sign both).
    let entra = entra_app(&issuer, &[]).await;
    assert_eq!(
        with_token(&entra, &sign(&issuer.entra_claims(json!({}))))
            .await
            .status,
        200
    );
    let v1 = issuer.entra_claims(json!({
        "iss": format!("{}/{TENANT}/", issuer.base), "ver": "1.0", "azp": null, "appid": VSCODE,
    }));
    assert_eq!(with_token(&entra, &sign(&v1)).await.status, 200);
    // OIDC mode on the tenant's issuer checks no `tid` of its own: the key's template does.
    let mut env = oidc_env(&issuer);
    for (k, v) in &mut env {
        if k == "MCP_OBO__AUTH__ISSUER" {
            *v = issuer.entra_issuer(TENANT);
        }
    }
    let oidc = ready_app(env, &[]).await;
    let claims = |tid: Value| {
        json!({
            "iss": issuer.entra_issuer(TENANT), "aud": "https://mcp.example.com/mcp",
            "sub": "user-1", "exp": now() + 600, "iat": now(), "scope": "mcp:tools", "tid": tid,
        })
    };
    assert_eq!(
        with_token(&oidc, &sign(&claims(json!(TENANT))))
            .await
            .status,
        200
    );
    for tid in [json!(OTHER_TENANT), Value::Null] {
        let reply = with_token(&oidc, &sign(&claims(tid.clone()))).await;
        assert_challenge_for(&reply, 401, Some("invalid_token"), &tid.to_string());
    }
}
