//! Which issuers a resource server trusts: a multi-tenant Entra app only the allowed
//! tenants, `oidc` mode the configured issuer (compared exactly), with its audience and scope.
//! The bad-token matrix is in `auth_jwt`.

use crate::auth_requests::{assert_challenge, assert_challenge_for, entra_app, with_token};
use crate::support::tokens::{OTHER_TENANT, TENANT, TestIssuer, now};
use crate::support::{StaticTokens, oidc_env, spawn_app_owned, wait_ready};
use serde_json::json;

#[tokio::test]
async fn multi_tenant_apps_accept_only_allowed_tenants() {
    let issuer = TestIssuer::start().await;
    let app = entra_app(
        &issuer,
        &[
            ("MCP_OBO__ENTRA__TENANT_ID", "organizations"),
            ("MCP_OBO__AUTH__ALLOWED_TENANTS", TENANT),
        ],
    )
    .await;
    assert_eq!(
        with_token(&app, &issuer.entra_token(json!({})))
            .await
            .status,
        200
    );
    let other =
        issuer.entra_token(json!({"tid": OTHER_TENANT, "iss": issuer.entra_issuer(OTHER_TENANT)}));
    assert_challenge(&with_token(&app, &other).await, 401, Some("invalid_token"));
}

#[tokio::test]
async fn oidc_mode_validates_against_any_issuer() {
    let issuer = TestIssuer::start().await;
    let env = oidc_env(&issuer);
    let app = spawn_app_owned(&env, StaticTokens::new("graph-token"));
    wait_ready(&app).await;
    let claims = json!({
        "iss": issuer.oidc_issuer(), "aud": "https://mcp.example.com/mcp", "sub": "user-1",
        "exp": now() + 600, "iat": now(), "scope": "openid mcp:tools", "client_id": "some-client"
    });
    assert_eq!(with_token(&app, &issuer.sign(&claims)).await.status, 200);
    let mut wrong = claims.clone();
    wrong["aud"] = json!("https://other.example/mcp");
    assert_challenge(
        &with_token(&app, &issuer.sign(&wrong)).await,
        401,
        Some("invalid_token"),
    );
    let mut no_scope = claims.clone();
    no_scope["scope"] = json!("openid");
    let reply = with_token(&app, &issuer.sign(&no_scope)).await;
    assert_challenge(&reply, 403, Some("insufficient_scope"));
    assert!(
        reply
            .header("www-authenticate")
            .unwrap_or_default()
            .contains("scope=\"mcp:tools\"")
    );
}

#[tokio::test]
async fn oidc_mode_compares_the_issuer_exactly() {
    let issuer = TestIssuer::start().await;
    let env = oidc_env(&issuer);
    let app = spawn_app_owned(&env, StaticTokens::new("graph-token"));
    wait_ready(&app).await;
    let claims = |iss: String| {
        json!({
            "iss": iss, "aud": "https://mcp.example.com/mcp", "sub": "user-1",
            "exp": now() + 600, "iat": now(), "scope": "openid mcp:tools",
        })
    };
    let exact = issuer.sign(&claims(issuer.oidc_issuer()));
    assert_eq!(with_token(&app, &exact).await.status, 200);
    for iss in [
        format!("{}/", issuer.oidc_issuer()),
        format!("{}//", issuer.oidc_issuer()),
        issuer.oidc_issuer().to_uppercase(),
        issuer.base.clone(),
    ] {
        let reply = with_token(&app, &issuer.sign(&claims(iss.clone()))).await;
        assert_challenge_for(&reply, 401, Some("invalid_token"), &iss);
    }
}
