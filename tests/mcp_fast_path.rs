//! The stateless fast path (`src/mcp/direct.rs`) answers exactly as rmcp does, and hands
//! everything it does not own to rmcp untouched.
//!
//! Two servers share one fake Graph: the default one and one with `server.fast_path = false`
//! (every request through rmcp). Each request goes to both; status, content type and body
//! must be identical, and the fast-path counter shows which path answered. The counter is
//! process-wide, so this file holds a single test.

use std::sync::Arc;

use mcp_obo_testkit::fake_graph::FakeGraph;
use mcp_obo_testkit::mcp_http::{ACCEPT_BOTH, Reply, post_raw};
use mcp_obo_testkit::{StaticTokens, TestApp, spawn_app};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "graph-token-for-ada";
const MAX_BODY: &str = "2048";

struct Case {
    what: &'static str,
    body: Vec<u8>,
    headers: Vec<(&'static str, &'static str)>,
    fast: bool,
}

fn case(
    what: &'static str,
    body: serde_json::Value,
    version: Option<&'static str>,
    fast: bool,
) -> Case {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
    ];
    if let Some(v) = version {
        headers.push(("mcp-protocol-version", v));
    }
    Case {
        what,
        body: serde_json::to_vec(&body).expect("json"),
        headers,
        fast,
    }
}

/// Every request sent to both servers, and whether the fast path should answer it. One table
/// on purpose: it is the fast path's contract, what it owns first and what it passes on after.
fn cases() -> Vec<Case> {
    let hello = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "HelloTool", "arguments": {}}});
    let v1 = Some("2025-06-18");
    let v2 = Some("2025-11-25");
    let mut all = vec![
        case(
            "tools/list",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}),
            v1,
            true,
        ),
        case(
            "tools/list, no params, 2025-11-25",
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
            v2,
            true,
        ),
        case(
            "tools/list with a cursor",
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"cursor": "x"}}),
            v1,
            true,
        ),
        case("tools/call HelloTool", hello.clone(), v1, true),
        case("tools/call HelloTool, 2025-11-25", hello.clone(), v2, true),
        case(
            "tools/call with a string id, progress token and traceparent",
            json!({"jsonrpc": "2.0", "id": "req-α", "method": "tools/call", "params": {
                "name": "HelloTool",
                "_meta": {"progressToken": 5, "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
            }}),
            v1,
            true,
        ),
        case(
            "tools/call of an unknown tool",
            json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "Nope"}}),
            v1,
            true,
        ),
        // Everything below is rmcp's to answer.
        case(
            "tools/call with non-object arguments",
            json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "HelloTool", "arguments": "x"}}),
            v1,
            false,
        ),
        case(
            "tools/call without params",
            json!({"jsonrpc": "2.0", "id": 10, "method": "tools/call"}),
            v1,
            false,
        ),
        case(
            "initialize",
            json!({"jsonrpc": "2.0", "id": 11, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}
            }}),
            v1,
            false,
        ),
        case(
            "ping",
            json!({"jsonrpc": "2.0", "id": 12, "method": "ping"}),
            v1,
            false,
        ),
        case(
            "a batch",
            json!([{"jsonrpc": "2.0", "id": 13, "method": "tools/list"}]),
            v1,
            false,
        ),
        case(
            "a notification",
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            v1,
            false,
        ),
        case(
            "per-request version in _meta",
            json!({"jsonrpc": "2.0", "id": 14, "method": "tools/list", "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2025-06-18"}}}),
            v1,
            false,
        ),
        case(
            "tools/list on 2026-07-28",
            json!({"jsonrpc": "2.0", "id": 15, "method": "tools/list"}),
            Some("2026-07-28"),
            false,
        ),
        case(
            "tools/list with no version header",
            json!({"jsonrpc": "2.0", "id": 16, "method": "tools/list"}),
            None,
            false,
        ),
        case(
            "jsonrpc 1.0",
            json!({"jsonrpc": "1.0", "id": 17, "method": "tools/list"}),
            v1,
            false,
        ),
        case(
            "an unknown member",
            json!({"jsonrpc": "2.0", "id": 18, "method": "tools/list", "extra": 1}),
            v1,
            false,
        ),
        case(
            "an unknown method",
            json!({"jsonrpc": "2.0", "id": 19, "method": "tools/nope"}),
            v1,
            false,
        ),
    ];
    let mut malformed = case("malformed JSON", json!(null), v1, false);
    malformed.body = b"{\"jsonrpc\": \"2.0\", \"id\": ".to_vec();
    all.push(malformed);
    let mut only_json = case("Accept without text/event-stream", hello.clone(), v1, false);
    only_json.headers[1] = ("accept", "application/json");
    all.push(only_json);
    let mut text = case("Content-Type text/plain", hello.clone(), v1, false);
    text.headers[0] = ("content-type", "text/plain");
    all.push(text);
    let mut charset = case("Content-Type with a charset", hello, v1, true);
    charset.headers[0] = ("content-type", "application/json; charset=utf-8");
    all.push(charset);
    let mut big = case(
        "a body over the limit",
        json!({"jsonrpc": "2.0", "id": 20, "method": "tools/list", "params": {"cursor": "x".repeat(4096)}}),
        v1,
        false,
    );
    big.headers
        .push(("x-case", "declared length over the limit"));
    all.push(big);
    all
}

async fn fast_path_count(app: &TestApp) -> u64 {
    let text = reqwest::get(app.metrics_url())
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix("mcp_obo_mcp_fast_path_requests_total "))
        .map_or(0, |v| v.trim().parse().expect("counter value"))
}

/// POSTs `chunks` with `Transfer-Encoding: chunked` (no declared length) and returns the
/// status code and body.
async fn post_chunked(app: &TestApp, chunks: &[&[u8]]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: {ACCEPT_BOTH}\r\nMCP-Protocol-Version: 2025-06-18\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    for chunk in chunks {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .expect("chunk size");
        stream.write_all(chunk).await.expect("chunk");
        stream.write_all(b"\r\n").await.expect("chunk end");
        stream.flush().await.expect("flush");
    }
    stream.write_all(b"0\r\n\r\n").await.expect("last chunk");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("response");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn same(what: &str, fast: &Reply, rmcp: &Reply) {
    assert_eq!(
        fast.status, rmcp.status,
        "{what}: status; fast path said {}",
        fast.text
    );
    assert_eq!(
        fast.header("content-type"),
        rmcp.header("content-type"),
        "{what}: content type"
    );
    assert_eq!(fast.text, rmcp.text, "{what}: body");
}

#[tokio::test]
async fn the_fast_path_answers_as_rmcp_does_and_passes_everything_else_on() {
    let graph = FakeGraph::with_ada(TOKEN).await;
    let tokens = || -> Arc<StaticTokens> { StaticTokens::new(TOKEN) };
    let base = [
        ("MCP_OBO__GRAPH__BASE_URL", graph.url.as_str()),
        ("MCP_OBO__SERVER__MAX_BODY_BYTES", MAX_BODY),
    ];
    let fast = spawn_app(&base, tokens());
    let mut off = base.to_vec();
    off.push(("MCP_OBO__SERVER__FAST_PATH", "false"));
    let rmcp = spawn_app(&off, tokens());
    mcp_obo_testkit::wait_ready(&fast).await;
    mcp_obo_testkit::wait_ready(&rmcp).await;

    for c in cases() {
        let before = fast_path_count(&fast).await;
        let a = post_raw(&fast.mcp_url(), c.body.clone(), &c.headers).await;
        let answered_fast = fast_path_count(&fast).await - before;
        let b = post_raw(&rmcp.mcp_url(), c.body.clone(), &c.headers).await;
        same(c.what, &a, &b);
        assert_eq!(
            answered_fast,
            u64::from(c.fast),
            "{}: answered by the fast path: {answered_fast}",
            c.what
        );
        if c.what == "tools/call HelloTool" {
            let body = a.json.expect("json");
            assert!(
                body["result"]["content"][0]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("Ada Lovelace")),
                "HelloTool reached Graph: {body}"
            );
        }
    }
    assert_eq!(fast_path_count(&rmcp).await, fast_path_count(&fast).await);

    // A chunked body the fast path reads in full.
    let list = br#"{"jsonrpc":"2.0","id":21,"method":"tools/list"}"#;
    let before = fast_path_count(&fast).await;
    let (status, body) = post_chunked(&fast, &[&list[..20], &list[20..]]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("HelloTool"), "{body}");
    assert_eq!(fast_path_count(&fast).await - before, 1);

    // A chunked body that passes the limit part-way: what was read is replayed to rmcp,
    // which refuses it exactly as it does without the fast path.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":22,"method":"tools/list","params":{{"cursor":"{}"}}}}"#,
        "x".repeat(3000)
    );
    let chunks = [&big.as_bytes()[..1500], &big.as_bytes()[1500..]];
    let (fast_status, fast_body) = post_chunked(&fast, &chunks).await;
    let (rmcp_status, rmcp_body) = post_chunked(&rmcp, &chunks).await;
    assert_eq!(fast_status, 413, "{fast_body}");
    assert_eq!((fast_status, fast_body), (rmcp_status, rmcp_body));

    // A chunked body rmcp owns (initialize) is replayed whole and answered.
    let init = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 23, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}
    }}))
    .expect("json");
    let (status, body) = post_chunked(&fast, &[&init[..30], &init[30..]]).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"protocolVersion\":\"2025-06-18\""),
        "{body}"
    );
}
