//! The MCP Streamable HTTP wire: versions, stateless behaviour, guards and bad input.

use crate::support::mcp_http::{self, ACCEPT_BOTH, initialize, post, post_2026, post_raw, request};
use crate::support::{StaticTokens, TestApp, spawn_app};
use serde_json::json;

fn app() -> TestApp {
    spawn_app(&[], StaticTokens::new("unused"))
}

/// After a bad request the server must still answer a good one.
async fn assert_still_serving(app: &TestApp) {
    let reply = post(&app.mcp_url(), &initialize("2025-06-18"), None).await;
    assert_eq!(reply.status, 200, "server stopped serving: {}", reply.text);
}

#[rstest::rstest]
#[case("2025-06-18")]
#[case("2025-11-25")]
#[tokio::test]
async fn initialize_negotiates_each_supported_version(#[case] version: &str) {
    let app = app();
    let reply = post(&app.mcp_url(), &initialize(version), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json.expect("JSON body");
    assert_eq!(body["result"]["protocolVersion"], version);
    assert_eq!(body["result"]["serverInfo"]["name"], "mcp-obo");
    assert!(body["result"]["capabilities"]["tools"].is_object());
}

#[tokio::test]
async fn stateless_server_mints_no_session_and_refuses_get_and_delete() {
    let app = app();
    let reply = post(&app.mcp_url(), &initialize("2025-11-25"), None).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.header("mcp-session-id").is_none(),
        "stateless must not mint a session"
    );
    let client = reqwest::Client::new();
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = client
            .request(method.clone(), app.mcp_url())
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 405, "{method} must be 405");
    }
}

#[tokio::test]
async fn the_functions_webhook_path_serves_the_same_endpoint() {
    let app = app();
    let reply = post(
        &app.url("/runtime/webhooks/mcp"),
        &initialize("2025-06-18"),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let listed = post(
        &app.url("/runtime/webhooks/mcp"),
        &request(2, "tools/list", json!({})),
        Some("2025-06-18"),
    )
    .await;
    assert_eq!(
        listed.json.expect("json")["result"]["tools"][0]["name"],
        "HelloTool"
    );
}

#[tokio::test]
async fn tools_list_describes_hello_tool_with_an_output_schema() {
    let app = app();
    let reply = post(
        &app.mcp_url(),
        &request(2, "tools/list", json!({})),
        Some("2025-06-18"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json.expect("json");
    let tools = body["result"]["tools"].as_array().expect("tools array");
    assert_eq!(tools.len(), 2, "HelloTool and UpcomingEvents");
    let hello = &tools[0];
    assert_eq!(hello["name"], "HelloTool");
    assert!(hello["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(hello["inputSchema"]["type"], "object");
    let out = &hello["outputSchema"];
    assert_eq!(out["type"], "object");
    assert!(out["properties"]["greeting"].is_object(), "{out}");
    assert!(out["properties"]["email"].is_object(), "{out}");
    let events = &tools[1];
    assert_eq!(events["name"], "UpcomingEvents");
    assert_eq!(events["annotations"]["readOnlyHint"], true, "{events}");
    assert_eq!(
        events["inputSchema"]["properties"]["days"]["maximum"], 31,
        "{events}"
    );
    assert!(
        events["outputSchema"]["properties"]["events"].is_object(),
        "{events}"
    );
}

#[tokio::test]
async fn server_discover_answers_for_2026_07_28() {
    let app = app();
    let reply = post_2026(&app.mcp_url(), 1, "server/discover", None, json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json.expect("json");
    let versions = body["result"]["supportedVersions"]
        .as_array()
        .expect("versions");
    for v in ["2025-06-18", "2025-11-25", "2026-07-28"] {
        assert!(
            versions.iter().any(|x| x == v),
            "{v} missing from {versions:?}"
        );
    }
    assert!(body["result"]["capabilities"]["tools"].is_object());
}

#[tokio::test]
async fn header_and_body_disagreeing_gets_400_with_header_mismatch() {
    let app = app();
    // Mcp-Method says tools/list, the body says tools/call.
    let body = json!({
        "jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "HelloTool", "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}
    });
    let reply = post_raw(
        &app.mcp_url(),
        serde_json::to_vec(&body).expect("json"),
        &[
            ("content-type", "application/json"),
            ("accept", ACCEPT_BOTH),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/list"),
        ],
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.json.expect("json")["error"]["code"], -32020);
    // Mcp-Name naming another tool than the body.
    let reply = post_2026(
        &app.mcp_url(),
        6,
        "tools/call",
        Some("OtherTool"),
        json!({"name": "HelloTool"}),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.json.expect("json")["error"]["code"], -32020);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn unknown_method_in_2026_gets_404_method_not_found() {
    let app = app();
    let reply = post_2026(&app.mcp_url(), 7, "nope/never", None, json!({})).await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    assert_eq!(reply.json.expect("json")["error"]["code"], -32601);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn unknown_method_in_2025_gets_method_not_found() {
    let app = app();
    let reply = post(
        &app.mcp_url(),
        &request(3, "nope/never", json!({})),
        Some("2025-06-18"),
    )
    .await;
    let body = reply.json.expect("json");
    assert_eq!(body["error"]["code"], -32601, "{body}");
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn unknown_tool_gets_invalid_params() {
    let app = app();
    let reply = post(
        &app.mcp_url(),
        &request(4, "tools/call", json!({"name": "NoSuchTool"})),
        Some("2025-06-18"),
    )
    .await;
    let body = reply.json.expect("json");
    assert_eq!(body["error"]["code"], -32602, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("NoSuchTool"))
    );
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn malformed_json_gets_a_parse_error() {
    let app = app();
    let reply = post_raw(
        &app.mcp_url(),
        b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ".to_vec(),
        &[
            ("content-type", "application/json"),
            ("accept", ACCEPT_BOTH),
        ],
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.json.expect("json")["error"]["code"], -32700);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn wrong_content_type_gets_415() {
    let app = app();
    let body = serde_json::to_vec(&initialize("2025-06-18")).expect("json");
    let reply = post_raw(
        &app.mcp_url(),
        body,
        &[("content-type", "text/plain"), ("accept", ACCEPT_BOTH)],
    )
    .await;
    assert_eq!(reply.status, 415, "{}", reply.text);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn wrong_accept_header_gets_406() {
    let app = app();
    let body = serde_json::to_vec(&initialize("2025-06-18")).expect("json");
    let reply = post_raw(
        &app.mcp_url(),
        body,
        &[
            ("content-type", "application/json"),
            ("accept", "text/html"),
        ],
    )
    .await;
    assert_eq!(reply.status, 406, "{}", reply.text);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn oversized_body_gets_413() {
    let app = spawn_app(
        &[("MCP_OBO__SERVER__MAX_BODY_BYTES", "4096")],
        StaticTokens::new("unused"),
    );
    let padding = "x".repeat(8192);
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"_meta": {"pad": padding}}});
    let reply = post(&app.mcp_url(), &body, Some("2025-06-18")).await;
    assert_eq!(reply.status, 413, "{}", reply.text);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn disallowed_origin_gets_403_and_allowed_origins_pass() {
    // auth.mode = none accepts only loopback origins (config refuses others), so the extra
    // origin is a loopback address the server does not allow by itself.
    let app = spawn_app(
        &[("MCP_OBO__SERVER__ALLOWED_ORIGINS", "http://127.0.0.2:5173")],
        StaticTokens::new("unused"),
    );
    let body = serde_json::to_vec(&initialize("2025-06-18")).expect("json");
    for (origin, expected) in [
        ("https://evil.example", 403),
        ("null", 403),
        ("http://127.0.0.3:5173", 403),
        ("http://127.0.0.2:5173", 200),
        ("http://localhost:6274", 200),
    ] {
        let reply = post_raw(
            &app.mcp_url(),
            body.clone(),
            &[
                ("content-type", "application/json"),
                ("accept", ACCEPT_BOTH),
                ("origin", origin),
            ],
        )
        .await;
        assert_eq!(reply.status, expected, "Origin {origin}: {}", reply.text);
    }
}

#[tokio::test]
async fn disallowed_host_gets_403() {
    let app = app();
    let body = serde_json::to_vec(&initialize("2025-06-18")).expect("json");
    let reply = post_raw(
        &app.mcp_url(),
        body,
        &[
            ("content-type", "application/json"),
            ("accept", ACCEPT_BOTH),
            ("host", "evil.example"),
        ],
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.text);
    assert_still_serving(&app).await;
}

#[tokio::test]
async fn notifications_are_accepted_with_202() {
    let app = app();
    let reply = post(
        &app.mcp_url(),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        Some("2025-06-18"),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert!(reply.text.is_empty());
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = app();
    let health = reqwest::get(app.url("/healthz")).await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    let ready = reqwest::get(app.url("/readyz")).await.expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn metrics_are_not_on_the_public_listener_but_on_their_own_loopback_one() {
    let app = app();
    assert_still_serving(&app).await; // something to count
    let public = reqwest::get(app.url("/metrics"))
        .await
        .expect("public port");
    assert_eq!(
        public.status().as_u16(),
        404,
        "/metrics on the public listener"
    );
    let metrics_addr = app.metrics_addr.expect("a metrics listener by default");
    assert!(metrics_addr.ip().is_loopback(), "{metrics_addr}");
    assert_ne!(metrics_addr.port(), app.addr.port());
    let scraped = reqwest::get(app.metrics_url()).await.expect("metrics port");
    assert_eq!(scraped.status().as_u16(), 200);
    let text = scraped.text().await.expect("metrics text");
    assert!(text.contains("mcp_obo_"), "{text}");
}

#[tokio::test]
async fn blank_metrics_listen_serves_metrics_on_the_main_listener() {
    let app = spawn_app(
        &[("MCP_OBO__TELEMETRY__METRICS_LISTEN", "")],
        StaticTokens::new("unused"),
    );
    assert_eq!(app.metrics_addr, None);
    let public = reqwest::get(app.url("/metrics")).await.expect("main port");
    assert_eq!(public.status().as_u16(), 200);
}

#[tokio::test]
async fn session_mode_mints_session_ids_when_enabled() {
    let app = spawn_app(
        &[("MCP_OBO__SERVER__SESSIONS", "true")],
        StaticTokens::new("unused"),
    );
    let reply = post(&app.mcp_url(), &initialize("2025-06-18"), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply
            .header("mcp-session-id")
            .is_some_and(|s| !s.is_empty())
    );
    let _ = mcp_http::Reply::header; // keep the helper referenced
}
