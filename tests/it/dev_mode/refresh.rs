//! Refresh tokens: each use rotates them, and only their client, for their resource, may
//! use them.

use super::{DevProcess, assert_greets_ada, call_hello};
use crate::support::dev_login;

#[tokio::test]
async fn refresh_tokens_rotate() {
    let dev = DevProcess::start().await;
    let signed_in = dev_login::sign_in(&dev.mcp_url(), "ada@contoso.dev").await;
    let discovery = &signed_in.discovery;
    let resource = Some(discovery.resource());
    let first = signed_in.refresh_token().to_owned();

    let refreshed = dev_login::refresh(discovery, &signed_in.client_id, &first, resource).await;
    assert_eq!(refreshed.status, 200, "refresh: {}", refreshed.body);
    let second = refreshed.refresh_token();
    assert_ne!(second, first, "the refresh token rotates");
    assert_ne!(refreshed.access_token(), signed_in.access_token());
    let claims = dev_login::jwt_claims(refreshed.access_token());
    assert_eq!(claims["aud"], dev.mcp_url().as_str(), "{claims}");
    assert_greets_ada(
        &call_hello(&dev, refreshed.access_token()).await,
        &dev.logs(),
    );

    // The old refresh token is spent.
    let reused = dev_login::refresh(discovery, &signed_in.client_id, &first, resource).await;
    assert_eq!(reused.status, 400, "{}", reused.body);
    assert_eq!(reused.error(), Some("invalid_grant"), "{}", reused.body);
}

#[tokio::test]
async fn refresh_tokens_stay_with_their_client_and_resource() {
    let dev = DevProcess::start().await;
    let signed_in = dev_login::sign_in(&dev.mcp_url(), "ada@contoso.dev").await;
    let discovery = &signed_in.discovery;
    let token = signed_in.refresh_token().to_owned();
    // Another client presenting the token is refused and does not spend it.
    let thief = dev_login::register(discovery, dev_login::REDIRECT_URI).await;
    let stolen = dev_login::refresh(discovery, &thief, &token, None).await;
    assert_eq!(stolen.error(), Some("invalid_grant"), "{}", stolen.body);
    // Another resource than the grant's is refused, also without spending it.
    let elsewhere = dev_login::refresh(
        discovery,
        &signed_in.client_id,
        &token,
        Some("http://127.0.0.1:1/other"),
    )
    .await;
    assert_eq!(
        elsewhere.error(),
        Some("invalid_target"),
        "{}",
        elsewhere.body
    );
    let owner = dev_login::refresh(
        discovery,
        &signed_in.client_id,
        &token,
        Some(discovery.resource()),
    )
    .await;
    assert_eq!(owner.status, 200, "{}", owner.body);
}
