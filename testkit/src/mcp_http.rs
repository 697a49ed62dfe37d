//! Raw MCP-over-HTTP requests, for tests of the wire itself.

use serde_json::{Value, json};

pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// A reply: status, headers and the body parsed as JSON when it is JSON.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Option<Value>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// POSTs `body` (raw bytes) with the given extra headers.
pub async fn post_raw(url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
    post_with(&reqwest::Client::new(), url, body, headers).await
}

/// As [`post_raw`] on a given client (many concurrent requests share one client, so the
/// test measures the server, not client construction).
pub async fn post_with(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = client.post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = req.send().await.expect("request reaches the server");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).ok();
    Reply {
        status,
        headers,
        text,
        json,
    }
}

/// POSTs a 2025-06-18 JSON-RPC message to `url` with `token` as the bearer token.
pub async fn post_as(url: &str, token: &str, body: &Value) -> Reply {
    post_as_with(&reqwest::Client::new(), url, token, body).await
}

/// As [`post_as`] on a given client (for many concurrent calls).
pub async fn post_as_with(client: &reqwest::Client, url: &str, token: &str, body: &Value) -> Reply {
    let auth = format!("Bearer {token}");
    post_with(
        client,
        url,
        serde_json::to_vec(body).expect("json"),
        &[
            ("content-type", "application/json"),
            ("accept", ACCEPT_BOTH),
            ("mcp-protocol-version", "2025-06-18"),
            ("authorization", &auth),
        ],
    )
    .await
}

/// POSTs a JSON-RPC message with JSON content type, both Accept types, and a protocol
/// version header when `version` is given.
pub async fn post(url: &str, body: &Value, version: Option<&str>) -> Reply {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
    ];
    if let Some(v) = version {
        headers.push(("mcp-protocol-version", v));
    }
    post_raw(url, serde_json::to_vec(body).expect("json"), &headers).await
}

pub fn initialize(version: &str) -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "1"}
        }
    })
}

pub fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A 2026-07-28 request: version in `_meta` and in headers, plus `Mcp-Method`/`Mcp-Name`.
pub async fn post_2026(
    url: &str,
    id: u64,
    method: &str,
    name: Option<&str>,
    mut params: Value,
) -> Reply {
    if let Some(obj) = params.as_object_mut() {
        obj.insert(
            "_meta".into(),
            json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {}
            }),
        );
    }
    let body = request(id, method, params);
    let mut headers = vec![
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", method),
    ];
    if let Some(n) = name {
        headers.push(("mcp-name", n));
    }
    post_raw(url, serde_json::to_vec(&body).expect("json"), &headers).await
}

/// The text of a tool result that must be a tool error (`isError: true`).
pub fn tool_error(result: &Value) -> String {
    assert_eq!(result["isError"], true, "expected a tool error: {result}");
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
