//! The page a user's consent returns to (`GET /consent/complete`): it answers a fixed page
//! that cannot be framed, cached or referred, and nothing of its query (the authorization
//! code) is read, echoed or logged.

use crate::support::{ServerProcess, binary};

#[tokio::test]
async fn the_consent_page_never_echoes_or_logs_what_it_receives() {
    let server = ServerProcess::start(
        binary(),
        &[("RUST_LOG", "trace"), ("MCP_OBO__LOG__REQUESTS", "all")],
    )
    .await;
    let url = format!(
        "http://127.0.0.1:{}/consent/complete?code=SECRETCODE123&state=STATE456&session_state=S789",
        server.port
    );
    let reply = reqwest::get(&url).await.expect("the page answers");
    assert_eq!(reply.status().as_u16(), 200);
    let headers = reply.headers().clone();
    for (name, value) in [
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ] {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name}"
        );
    }
    let body = reply.text().await.expect("body");
    assert!(body.contains("call the tool again"), "{body}");
    let server = server.terminate().await;
    let logs = server.stderr();
    assert!(
        logs.contains("/consent/complete"),
        "the request was logged: {logs}"
    );
    for secret in ["SECRETCODE123", "STATE456", "S789"] {
        assert!(!body.contains(secret), "{secret} echoed");
        assert!(!logs.contains(secret), "{secret} logged");
    }
}
