//! What a valid token cannot buy: a body trickled past `server.body_timeout` (408), more than
//! `server.max_in_flight_per_user` requests at once, or `tools/call`s past `server.rate_limit`
//! (429 with `Retry-After`), each with a JSON-RPC error body and counted in `/metrics`; other
//! users are served meanwhile. Each case runs through every reader of the body: the rate
//! limit's peek, the fast path and rmcp.
//!
//! This file is the rate limit and what the cases share; beside it:
//! - `body.rs`: the body deadline, through each reader
//! - `in_flight.rs`: the per-user cap on requests at once

mod body;
mod in_flight;

use std::sync::Arc;
use std::time::Duration;

use mcp_obo::obo::DownstreamTokens;
use serde_json::{Value, json};

use crate::support::fake_graph::FakeGraph;
use crate::support::mcp_http::{Reply, post_as_with, request};
use crate::support::tokens::TestIssuer;
use crate::support::{StaticTokens, TestApp, entra_env, spawn_app_owned, wait_ready};

const GRAPH_TOKEN: &str = "graph-token-for-ada";
/// Bounds every wait on the server, so a missing answer fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(20);

/// `mcp_obo_mcp_limited_requests_total{limit}` as this process's server counts it.
fn limited(limit: &str) -> u64 {
    let prefix = format!("mcp_obo_mcp_limited_requests_total{{limit=\"{limit}\"}} ");
    mcp_obo::telemetry::metrics::render()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
        .unwrap_or(0)
}

/// A raw MCP POST head for `app` announcing `length` body bytes, with `extra` header lines.
fn head(app: &TestApp, length: usize, extra: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\n\
         Content-Length: {length}\r\n{extra}\r\n",
        app.addr
    )
}

/// An Entra-mode app with Graph knowing [`GRAPH_TOKEN`], and the tokens of two users.
struct Users {
    app: TestApp,
    /// The tokens of `user-a` and `user-b`.
    a: String,
    b: String,
    _issuer: TestIssuer,
    _graph: FakeGraph,
}

async fn entra_app(tokens: Arc<dyn DownstreamTokens>, extra: &[(&str, &str)]) -> Users {
    let issuer = TestIssuer::start().await;
    let graph = FakeGraph::with_ada(GRAPH_TOKEN).await;
    let mut env = entra_env(&issuer);
    env.push(("MCP_OBO__GRAPH__BASE_URL".into(), graph.url.clone()));
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let app = spawn_app_owned(&env, tokens);
    wait_ready(&app).await;
    Users {
        app,
        a: issuer.entra_token(json!({"oid": "user-a"})),
        b: issuer.entra_token(json!({"oid": "user-b"})),
        _issuer: issuer,
        _graph: graph,
    }
}

fn hello(id: u64) -> Value {
    request(id, "tools/call", json!({"name": "HelloTool"}))
}

/// Asserts a 429 with `Retry-After` of 1 to `max` seconds and a JSON-RPC error for `id`.
fn assert_too_many(reply: &Reply, id: &Value, max: u64) {
    assert_eq!(reply.status, 429, "{}", reply.text);
    let retry: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After in seconds: {:?}", reply.headers));
    assert!((1..=max).contains(&retry), "Retry-After {retry}");
    let body = reply.json.as_ref().expect("a JSON-RPC error body");
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(&body["id"], id, "{body}");
    assert_eq!(body["error"]["code"], -32000, "{body}");
}

#[rstest::rstest]
#[tokio::test]
async fn tool_calls_past_the_burst_get_429_with_retry_after_and_other_users_and_methods_are_not_limited(
    #[values("true", "false")] fast_path: &str,
) {
    let Users { app, a, b, .. } = entra_app(
        StaticTokens::new(GRAPH_TOKEN),
        &[
            ("MCP_OBO__SERVER__RATE_LIMIT", "1/h burst 3"),
            ("MCP_OBO__SERVER__FAST_PATH", fast_path),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let url = app.mcp_url();
    let list = request(1, "tools/list", json!({}));
    for _ in 0..5 {
        let reply = post_as_with(&client, &url, &a, &list).await;
        assert_eq!(
            reply.status, 200,
            "tools/list does not count: {}",
            reply.text
        );
    }
    for id in 1..=3 {
        let reply = post_as_with(&client, &url, &a, &hello(id)).await;
        assert_eq!(
            reply.status, 200,
            "call {id} is within the burst: {}",
            reply.text
        );
    }
    let before = limited("rate");
    let over = post_as_with(&client, &url, &a, &hello(4)).await;
    assert_too_many(&over, &json!(4), 3600);
    assert!(limited("rate") > before, "counted in /metrics");

    let other = post_as_with(&client, &url, &b, &hello(1)).await;
    assert_eq!(
        other.status, 200,
        "another user has a bucket of their own: {}",
        other.text
    );
    let listed = post_as_with(&client, &url, &a, &list).await;
    assert_eq!(
        listed.status, 200,
        "tools/list is still served: {}",
        listed.text
    );
}
