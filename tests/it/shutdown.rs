//! Graceful shutdown of the real process: in-flight requests finish, new ones are refused.

use std::sync::Arc;
use std::time::Duration;

use crate::support::fake_graph::{FakeGraph, Scripted};
use crate::support::mcp_http::{post, request};
use crate::support::{FakeAzCli, ServerProcess, binary};
use serde_json::json;
use tokio::sync::Notify;

#[cfg(unix)]
#[tokio::test]
async fn sigterm_lets_the_in_flight_call_finish_then_refuses_new_connections() {
    let graph = FakeGraph::start().await;
    graph.add_user(
        "dev-token",
        "Ada Lovelace",
        Some("ada@contoso.com"),
        "ada@contoso.com",
    );
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    graph.script(Scripted::Hold {
        entered: entered.clone(),
        release: release.clone(),
    });
    let az = FakeAzCli::new("dev-token", &format!("{}/User.Read", graph.url));
    let path = az.path_env();
    let mut server = ServerProcess::start(
        binary(),
        &[
            ("PATH", path.as_str()),
            ("MCP_OBO__GRAPH__BASE_URL", graph.url.as_str()),
            ("MCP_OBO__SERVER__SHUTDOWN_TIMEOUT", "30s"),
        ],
    )
    .await;

    let url = server.mcp_url();
    let in_flight = tokio::spawn(async move {
        post(
            &url,
            &request(1, "tools/call", json!({"name": "HelloTool"})),
            Some("2025-06-18"),
        )
        .await
    });
    // The tool call is now waiting on Graph.
    tokio::time::timeout(Duration::from_secs(10), entered.notified())
        .await
        .expect("the tool call reaches Graph");

    server.sigterm();

    // New connections are refused once the listener closes.
    let health = format!("http://127.0.0.1:{}/healthz", server.port);
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if client.get(&health).send().await.is_err() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "listener still accepting after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Let Graph answer: the in-flight call completes normally.
    release.notify_one();
    let reply = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("in-flight call finishes")
        .expect("task");
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json.expect("json");
    assert_eq!(body["result"]["isError"], false, "{body}");

    let status = tokio::task::spawn_blocking(move || server.child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "graceful exit, got {status}");
}
