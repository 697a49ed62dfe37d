//! HelloTool end to end: MCP client → server → token source → (fake) Microsoft Graph, and
//! how Graph's failures and a missing developer sign-in reach the caller. How the Graph calls
//! travel (TLS verification, proxies) is in `graph_transport`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::support::fake_graph::{FakeGraph, Scripted};
use crate::support::mcp_http::{post, request};
use crate::support::{FakeAzCli, ServerProcess, StaticTokens, TestApp, binary, spawn_app};
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig, ProtocolVersion};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use serde_json::json;

/// The Graph token the fake Graph knows Ada by.
pub(crate) const TOKEN: &str = "graph-token-for-ada";

/// A fake Graph that knows Ada by [`TOKEN`].
pub(crate) async fn graph_with_ada() -> FakeGraph {
    FakeGraph::with_ada(TOKEN).await
}

fn app_for(graph: &FakeGraph, tokens: Arc<StaticTokens>, extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![("MCP_OBO__GRAPH__BASE_URL", graph.url.as_str())];
    env.extend_from_slice(extra);
    spawn_app(&env, tokens)
}

/// Calls HelloTool over raw 2025-06-18 JSON-RPC and returns the tool result.
async fn call_hello(app: &TestApp) -> serde_json::Value {
    let reply = post(
        &app.mcp_url(),
        &request(9, "tools/call", json!({"name": "HelloTool"})),
        Some("2025-06-18"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json.expect("json");
    assert!(
        body["error"].is_null(),
        "a tool failure must be a result, not a protocol error: {body}"
    );
    body["result"].clone()
}

/// The text of a tool result that must be an error.
pub(crate) fn error_text(result: &serde_json::Value) -> String {
    assert_eq!(result["isError"], true, "expected isError: {result}");
    result["content"][0]["text"]
        .as_str()
        .expect("text content")
        .to_owned()
}

#[tokio::test]
async fn rmcp_client_on_2026_07_28_lists_and_calls_hello_tool() {
    let graph = graph_with_ada().await;
    let tokens = StaticTokens::new(TOKEN);
    let app = app_for(&graph, tokens.clone(), &[]);

    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(app.mcp_url()),
    );
    let client = ClientConfig::default()
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("rmcp client starts with server/discover");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), 2, "HelloTool and UpcomingEvents");
    assert_eq!(tools[0].name, "HelloTool");
    let result: CallToolResult = client
        .call_tool(CallToolRequestParams::new("HelloTool"))
        .await
        .expect("tools/call");
    assert_eq!(result.is_error, Some(false));
    let structured = result.structured_content.expect("structured content");
    assert_eq!(
        structured["greeting"],
        "Hello, Ada Lovelace! Your email is ada@contoso.com."
    );
    assert_eq!(structured["email"], "ada@contoso.com");
    assert_eq!(structured["displayName"], "Ada Lovelace");
    let text = result.content[0]
        .as_text()
        .expect("text content")
        .text
        .clone();
    assert!(
        text.contains("Ada Lovelace") && text.contains("ada@contoso.com"),
        "{text}"
    );
    assert_eq!(graph.seen_tokens(), vec![TOKEN.to_owned()]);
    client.cancel().await.expect("client closes");
}

#[tokio::test]
async fn email_falls_back_to_the_user_principal_name() {
    let graph = FakeGraph::start().await;
    graph.add_user(TOKEN, "Grace Hopper", None, "grace@contoso.onmicrosoft.com");
    let app = app_for(&graph, StaticTokens::new(TOKEN), &[]);
    let result = call_hello(&app).await;
    assert_eq!(
        result["structuredContent"]["email"],
        "grace@contoso.onmicrosoft.com"
    );
}

#[tokio::test]
async fn a_401_from_graph_is_retried_once_with_a_fresh_token() {
    let graph = graph_with_ada().await;
    graph.script(Scripted::Status(401, None, "InvalidAuthenticationToken"));
    let tokens = StaticTokens::new(TOKEN);
    let app = app_for(&graph, tokens.clone(), &[]);
    let result = call_hello(&app).await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(tokens.invalidated.load(Ordering::SeqCst), 1);
    assert_eq!(tokens.issued.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_token_graph_keeps_rejecting_becomes_a_clear_tool_error() {
    let graph = FakeGraph::start().await; // knows no users: every token is rejected
    let tokens = StaticTokens::new(TOKEN);
    let app = app_for(&graph, tokens.clone(), &[]);
    let text = error_text(&call_hello(&app).await);
    assert!(
        text.contains("401") && text.contains("Sign in again"),
        "{text}"
    );
    assert_eq!(graph.seen_tokens().len(), 2, "exactly one retry");
}

#[rstest::rstest]
#[case::forbidden(vec![Scripted::Status(403, None, "Authorization_RequestDenied")], "User.Read")]
#[case::not_found(vec![Scripted::Status(404, None, "Request_ResourceNotFound")], "404")]
#[case::throttled(
    vec![Scripted::Status(429, Some(0), "TooManyRequests"); 3],
    "throttling"
)]
#[case::unavailable(vec![Scripted::Status(503, Some(0), "ServiceUnavailable"); 3], "unavailable")]
#[case::server_error(vec![Scripted::Status(500, None, "InternalServerError")], "HTTP 500")]
#[case::malformed(vec![Scripted::Malformed], "not the expected JSON")]
#[case::retry_after_too_long(vec![Scripted::Status(429, Some(120), "TooManyRequests")], "in 120 seconds")]
#[tokio::test]
async fn graph_failures_become_tool_errors_and_the_server_keeps_serving(
    #[case] steps: Vec<Scripted>,
    #[case] expected: &str,
) {
    let graph = graph_with_ada().await;
    for step in steps {
        graph.script(step);
    }
    let app = app_for(&graph, StaticTokens::new(TOKEN), &[]);
    let text = error_text(&call_hello(&app).await);
    assert!(text.contains(expected), "expected {expected:?} in {text:?}");
    // The script is used up: the next call succeeds.
    let ok = call_hello(&app).await;
    assert_eq!(ok["isError"], false, "{ok}");
}

#[tokio::test]
async fn throttling_that_clears_within_the_retry_budget_succeeds() {
    let graph = graph_with_ada().await;
    graph.script(Scripted::Status(429, Some(0), "TooManyRequests"));
    graph.script(Scripted::Status(503, Some(0), "ServiceUnavailable"));
    let app = app_for(&graph, StaticTokens::new(TOKEN), &[]);
    let result = call_hello(&app).await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(graph.seen_tokens().len(), 3);
}

#[tokio::test]
async fn a_graph_that_does_not_answer_times_out_with_a_clear_error() {
    let graph = graph_with_ada().await;
    graph.script(Scripted::Hang);
    let app = app_for(
        &graph,
        StaticTokens::new(TOKEN),
        &[("MCP_OBO__GRAPH__TIMEOUT", "300ms")],
    );
    let text = error_text(&call_hello(&app).await);
    assert!(text.contains("did not answer within 300ms"), "{text}");
}

#[tokio::test]
async fn an_unreachable_graph_names_the_dependency() {
    let port = crate::support::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let app = spawn_app(
        &[("MCP_OBO__GRAPH__BASE_URL", base.as_str())],
        StaticTokens::new(TOKEN),
    );
    let text = error_text(&call_hello(&app).await);
    assert!(
        text.contains("cannot reach Microsoft Graph") && text.contains("graph.base_url"),
        "{text}"
    );
    assert!(
        !text.contains(&base),
        "the configured URL is for the log, not the caller: {text}"
    );
}

#[tokio::test]
async fn missing_developer_credentials_say_to_run_az_login() {
    let graph = graph_with_ada().await;
    let app = app_for(&graph, StaticTokens::unavailable(), &[]);
    let text = error_text(&call_hello(&app).await);
    assert!(text.contains("az login"), "{text}");
    assert!(
        graph.seen_tokens().is_empty(),
        "graph must not be called without a token"
    );
}

#[tokio::test]
async fn local_mode_uses_the_azure_cli_sign_in_and_caches_its_token() {
    let graph = graph_with_ada().await;
    let scope = format!("{}/User.Read", graph.url);
    let az = FakeAzCli::new(TOKEN, &scope);
    let path = az.path_env();
    let server = ServerProcess::start(
        binary(),
        &[
            ("PATH", path.as_str()),
            ("MCP_OBO__GRAPH__BASE_URL", graph.url.as_str()),
        ],
    )
    .await;
    for _ in 0..2 {
        let reply = post(
            &server.mcp_url(),
            &request(1, "tools/call", json!({"name": "HelloTool"})),
            Some("2025-06-18"),
        )
        .await;
        let result = &reply.json.expect("json")["result"];
        assert_eq!(result["isError"], false, "{result} / {}", server.stderr());
        assert_eq!(result["structuredContent"]["email"], "ada@contoso.com");
    }
    assert_eq!(
        az.calls(),
        1,
        "the CLI token is cached until shortly before it expires"
    );
    assert_eq!(
        graph.seen_tokens(),
        vec![TOKEN.to_owned(), TOKEN.to_owned()]
    );
}

#[tokio::test]
async fn local_mode_without_the_azure_cli_answers_with_what_to_do() {
    let graph = graph_with_ada().await;
    let empty = tempfile::tempdir().expect("temp dir");
    let path = empty.path().display().to_string();
    let server = ServerProcess::start(
        binary(),
        &[
            ("PATH", path.as_str()),
            ("MCP_OBO__GRAPH__BASE_URL", graph.url.as_str()),
        ],
    )
    .await;
    let reply = post(
        &server.mcp_url(),
        &request(1, "tools/call", json!({"name": "HelloTool"})),
        Some("2025-06-18"),
    )
    .await;
    let text = error_text(&reply.json.expect("json")["result"]);
    assert!(text.contains("az login"), "{text}");
    let health = reqwest::get(format!("http://127.0.0.1:{}/healthz", server.port))
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
}
