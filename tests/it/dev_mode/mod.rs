//! `mcp-obo dev` end to end, with the real binary and independent real clients:
//! a headless sign-in written here (testkit/src/dev_login/), the official MCP Python SDK
//! (tests/e2e/py_client.py), the MCP TypeScript SDK (tests/e2e/ts-dev-client.mjs) and the MCP
//! Inspector CLI. The Python venv, Node 22 and the npm packages come from
//! `scripts/setup-test-tools.sh`.
//!
//! - `process.rs`: [`DevProcess`], `mcp-obo dev` as a child process (the other dev suites use it).
//! - `banner.rs`: what the banner prints, and that it is true.
//! - `sign_in.rs`: discovery, registration, the sign-in, PKCE and client metadata documents.
//! - `refresh.rs`: refresh token rotation and binding.
//! - `sdk_clients.rs`: the Python SDK, the TypeScript SDK and the Inspector CLI.
//!
//! This file: the MCP call and the answer checks the suites share.

mod banner;
mod process;
mod refresh;
mod sdk_clients;
mod sign_in;

use serde_json::{Value, json};

use crate::support::mcp_http::{post_as, request};
pub(crate) use process::DevProcess;

/// `initialize` then `tools/call HelloTool` with `token`; returns the tool result.
async fn call_hello(dev: &DevProcess, token: &str) -> Value {
    let init = post_as(
        &dev.mcp_url(),
        token,
        &crate::support::mcp_http::initialize("2025-06-18"),
    )
    .await;
    assert_eq!(
        init.status,
        200,
        "initialize: {}\n{}",
        init.text,
        dev.logs()
    );
    let call = post_as(
        &dev.mcp_url(),
        token,
        &request(
            2,
            "tools/call",
            json!({"name": "HelloTool", "arguments": {}}),
        ),
    )
    .await;
    assert_eq!(
        call.status,
        200,
        "tools/call: {}\n{}",
        call.text,
        dev.logs()
    );
    let body = call.json.expect("JSON-RPC response");
    assert!(body["error"].is_null(), "{body}");
    body["result"].clone()
}

/// The tool result greets Ada with her dev email.
fn assert_greets_ada(result: &Value, context: &str) {
    assert_eq!(result["isError"], false, "{result}\n{context}");
    let structured = &result["structuredContent"];
    assert_eq!(
        structured["displayName"], "Ada Lovelace",
        "{result}\n{context}"
    );
    assert_eq!(
        structured["email"], "ada@contoso.dev",
        "{result}\n{context}"
    );
    let greeting = structured["greeting"].as_str().unwrap_or_default();
    assert!(
        greeting.contains("Ada Lovelace") && greeting.contains("ada@contoso.dev"),
        "{result}\n{context}"
    );
}

/// The banner's `Identity provider:` line.
fn banner_issuer(banner: &str) -> String {
    banner
        .lines()
        .find_map(|l| l.strip_prefix("Identity provider:"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| panic!("no identity provider line in the banner:\n{banner}"))
}
