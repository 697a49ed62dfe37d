//! Requests to the app behind inbound authorization, and the checks on its answers, shared
//! by the modules that specify it: token validation (`auth_jwt`), trusted issuers
//! (`auth_issuers`), ID, client and user tokens (`auth_callers`), the issuer's keys
//! (`auth_keys`), Easy Auth (`auth_easyauth`) and tool access (`tool_access`). Every app here
//! has the public URL `https://mcp.example.com`, so every challenge names its metadata there.

use crate::support::mcp_http::{ACCEPT_BOTH, Reply, initialize, post_raw};
use crate::support::tokens::{TestIssuer, VSCODE};
use crate::support::{StaticTokens, TestApp, entra_env, spawn_app_owned, wait_ready};
use serde_json::Value;

/// The app in Entra mode against `issuer`, VS Code its allowed client app, plus `extra`
/// settings; ready.
pub(crate) async fn entra_app(issuer: &TestIssuer, extra: &[(&str, &str)]) -> TestApp {
    let mut env = entra_env(issuer);
    env.push(("MCP_OBO__AUTH__ALLOWED_CLIENT_APPS".into(), VSCODE.into()));
    ready_app(env, extra).await
}

/// The app for `env` plus `extra` settings, spawned and ready.
pub(crate) async fn ready_app(mut env: Vec<(String, String)>, extra: &[(&str, &str)]) -> TestApp {
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let app = spawn_app_owned(&env, StaticTokens::new("graph-token"));
    wait_ready(&app).await;
    app
}

/// A 2025-06-18 JSON-RPC request to `/mcp` with `authorization` (a full header value).
pub(crate) async fn rpc(app: &TestApp, authorization: &str, body: &Value) -> Reply {
    post_raw(
        &app.mcp_url(),
        serde_json::to_vec(body).expect("json"),
        &[
            ("content-type", "application/json"),
            ("accept", ACCEPT_BOTH),
            ("mcp-protocol-version", "2025-06-18"),
            ("authorization", authorization),
        ],
    )
    .await
}

/// An `initialize` POST to `path` with `headers`.
pub(crate) async fn send(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
    ];
    all.extend_from_slice(headers);
    let body = serde_json::to_vec(&initialize("2025-06-18")).expect("json");
    post_raw(&app.url(path), body, &all).await
}

/// [`send`] to `/mcp` with `token` as the bearer token.
pub(crate) async fn with_token(app: &TestApp, token: &str) -> Reply {
    let value = format!("Bearer {token}");
    send(app, "/mcp", &[("authorization", value.as_str())]).await
}

/// Asserts a 401/403 challenge with `resource_metadata`, and the given `error` code.
pub(crate) fn assert_challenge(reply: &Reply, status: u16, error: Option<&str>) {
    assert_challenge_for(reply, status, error, "");
}

/// [`assert_challenge`], `case` naming the failure.
pub(crate) fn assert_challenge_for(reply: &Reply, status: u16, error: Option<&str>, case: &str) {
    assert_eq!(reply.status, status, "{case}: {}", reply.text);
    let header = reply
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("{case}: no WWW-Authenticate: {}", reply.text));
    assert!(header.starts_with("Bearer"), "{header}");
    assert!(
        header.contains(
            "resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
        ),
        "{case}: {header}"
    );
    match error {
        Some(code) => assert!(
            header.contains(&format!("error=\"{code}\"")),
            "{case}: {header}"
        ),
        None => assert!(!header.contains("error="), "{case}: {header}"),
    }
}

#[derive(Debug, Clone, Copy)]
/// How a request must be answered.
pub(crate) enum Expect {
    Ok,
    Unauthorized,      // 401, no error code
    InvalidToken,      // 401 invalid_token
    InsufficientScope, // 403 insufficient_scope
    BadRequest,        // 400 invalid_request
}

/// Asserts that `reply` is what `expect` says, `case` naming the failure.
pub(crate) fn check(reply: &Reply, expect: Expect, case: &str) {
    match expect {
        Expect::Ok => assert_eq!(reply.status, 200, "{case}: {}", reply.text),
        Expect::Unauthorized => assert_challenge_for(reply, 401, None, case),
        Expect::InvalidToken => assert_challenge_for(reply, 401, Some("invalid_token"), case),
        Expect::InsufficientScope => {
            assert_challenge_for(reply, 403, Some("insufficient_scope"), case)
        }
        Expect::BadRequest => {
            assert_eq!(reply.status, 400, "{case}: {}", reply.text);
            let header = reply.header("www-authenticate").unwrap_or_default();
            assert!(
                header.contains("error=\"invalid_request\""),
                "{case}: {header}"
            );
        }
    }
}
