//! Session mode (`server.sessions = true`): a session belongs to the user who opened it,
//! for every method; a binding the server forgot is refused, never served; a user holds a
//! bounded number of sessions, and a forgotten binding ends its rmcp session.

use std::time::Duration;

use crate::support::mcp_http::{ACCEPT_BOTH, Reply, initialize, post_raw, request};
use crate::support::tokens::TestIssuer;
use crate::support::{StaticTokens, TestApp, entra_env, spawn_app_owned, wait_ready};
use serde_json::json;

/// Mirrors `mcp::sessions::MAX_SESSIONS_PER_USER`.
const PER_USER: usize = 16;

async fn app(issuer: &TestIssuer) -> TestApp {
    let mut env = entra_env(issuer);
    env.push(("MCP_OBO__SERVER__SESSIONS".into(), "true".into()));
    let app = spawn_app_owned(&env, StaticTokens::new("graph-token"));
    wait_ready(&app).await;
    app
}

fn bearer(issuer: &TestIssuer, oid: &str) -> String {
    format!(
        "Bearer {}",
        issuer.entra_token(json!({"oid": oid, "sub": oid}))
    )
}

async fn open(app: &TestApp, auth: &str) -> String {
    let reply = post_raw(
        &app.mcp_url(),
        serde_json::to_vec(&initialize("2025-06-18")).expect("json"),
        &[
            ("content-type", "application/json"),
            ("accept", ACCEPT_BOTH),
            ("authorization", auth),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply
        .header("mcp-session-id")
        .expect("a session id is minted")
        .to_owned()
}

async fn ping(app: &TestApp, auth: &str, session: &str) -> Reply {
    post_raw(
        &app.mcp_url(),
        serde_json::to_vec(&request(2, "ping", json!({}))).expect("json"),
        &[
            ("content-type", "application/json"),
            ("accept", ACCEPT_BOTH),
            ("mcp-protocol-version", "2025-06-18"),
            ("mcp-session-id", session),
            ("authorization", auth),
        ],
    )
    .await
}

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    auth: &str,
    session: &str,
) -> reqwest::Response {
    reqwest::Client::new()
        .request(method, app.mcp_url())
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("mcp-session-id", session)
        .header("authorization", auth)
        .send()
        .await
        .expect("request reaches the server")
}

#[tokio::test]
async fn in_session_mode_a_session_id_works_only_for_its_owner() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer).await;
    let (ada, eve) = (bearer(&issuer, "ada-oid"), bearer(&issuer, "eve-oid"));
    let sid = open(&app, &ada).await;
    for (who, auth, expected) in [("eve", eve.as_str(), 404), ("ada", ada.as_str(), 200)] {
        let reply = ping(&app, auth, &sid).await;
        assert_eq!(reply.status, expected, "{who}: {}", reply.text);
    }
}

#[tokio::test]
async fn get_and_delete_check_the_owner_too() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer).await;
    let (ada, eve) = (bearer(&issuer, "ada-oid"), bearer(&issuer, "eve-oid"));
    let sid = open(&app, &ada).await;
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let reply = call(&app, method.clone(), &eve, &sid).await;
        assert_eq!(reply.status().as_u16(), 404, "eve {method}");
    }
    // Eve's DELETE did not end Ada's session.
    assert_eq!(ping(&app, &ada, &sid).await.status, 200);
    let stream = call(&app, reqwest::Method::GET, &ada, &sid).await;
    assert_eq!(stream.status().as_u16(), 200, "ada GET");
    drop(stream);
    let deleted = call(&app, reqwest::Method::DELETE, &ada, &sid).await;
    assert!(deleted.status().is_success(), "{}", deleted.status());
    assert_eq!(ping(&app, &ada, &sid).await.status, 404);
}

#[tokio::test]
async fn an_unknown_or_unreadable_session_id_is_refused() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer).await;
    let ada = bearer(&issuer, "ada-oid");
    assert_eq!(ping(&app, &ada, "no-such-session").await.status, 404);
    let reply = reqwest::Client::new()
        .post(app.mcp_url())
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .header(
            "mcp-session-id",
            reqwest::header::HeaderValue::from_bytes(b"\xff\xfe").expect("opaque bytes"),
        )
        .header("authorization", &ada)
        .body(serde_json::to_vec(&request(2, "ping", json!({}))).expect("json"))
        .send()
        .await
        .expect("request");
    assert_eq!(reply.status().as_u16(), 404);
}

#[tokio::test]
async fn a_user_past_the_cap_loses_the_oldest_session_and_it_is_closed() {
    let issuer = TestIssuer::start().await;
    let app = app(&issuer).await;
    let (ada, alan) = (bearer(&issuer, "ada-oid"), bearer(&issuer, "alan-oid"));
    let alans = open(&app, &alan).await;
    let first = open(&app, &ada).await;
    // A standalone stream on the first session: it ends when rmcp closes the session.
    let mut stream = call(&app, reqwest::Method::GET, &ada, &first).await;
    assert_eq!(stream.status().as_u16(), 200);
    let mut later = Vec::new();
    for _ in 0..PER_USER {
        later.push(open(&app, &ada).await);
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the evicted session's stream is still open");
    assert_eq!(ping(&app, &ada, &first).await.status, 404, "evicted");
    for sid in &later {
        assert_eq!(ping(&app, &ada, sid).await.status, 200, "kept");
    }
    assert_eq!(
        ping(&app, &alan, &alans).await.status,
        200,
        "other users keep theirs"
    );
}
