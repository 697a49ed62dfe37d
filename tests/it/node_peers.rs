//! Independent real peers from npm against the real binary: the MCP TypeScript SDK client
//! and the official MCP conformance suite. Node 22 and the packages come from
//! `scripts/setup-test-tools.sh` (run by `scripts/test.sh`, the suite's one command).

use std::path::PathBuf;
use std::process::Command;

use crate::support::fake_graph::FakeGraph;
use crate::support::{FakeAzCli, ServerProcess, binary};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn node() -> PathBuf {
    let node = repo().join(".tools/node22/bin/node");
    assert!(
        node.exists() && repo().join("tests/e2e/node_modules").exists(),
        "Node 22 test peers are not installed: run scripts/setup-test-tools.sh first"
    );
    node
}

/// The server in local mode with a fake Azure CLI and a fake Graph that knows Ada.
async fn local_server() -> (ServerProcess, FakeGraph, FakeAzCli) {
    let graph = FakeGraph::start().await;
    graph.add_user(
        "dev-token",
        "Ada Lovelace",
        Some("ada@contoso.com"),
        "ada@contoso.onmicrosoft.com",
    );
    let az = FakeAzCli::new("dev-token", &format!("{}/User.Read", graph.url));
    let path = az.path_env();
    let server = ServerProcess::start(
        binary(),
        &[
            ("PATH", path.as_str()),
            ("MCP_OBO__GRAPH__BASE_URL", graph.url.as_str()),
        ],
    )
    .await;
    (server, graph, az)
}

async fn run_ts_client(url: String, version: &'static str) -> (bool, serde_json::Value, String) {
    let node = node();
    let script = repo().join("tests/e2e/ts-client.mjs");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(node)
            .arg(script)
            .args([
                "--url",
                &url,
                "--protocol-version",
                version,
                "--tool",
                "HelloTool",
            ])
            .output()
    })
    .await
    .expect("join")
    .expect("run the TypeScript SDK client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null);
    (out.status.success(), json, format!("{stdout}\n{stderr}"))
}

#[rstest::rstest]
#[case("2025-06-18")]
#[case("2025-11-25")]
#[tokio::test]
async fn typescript_sdk_client_lists_and_calls_hello_tool(#[case] version: &'static str) {
    let (server, graph, _az) = local_server().await;
    let (ok, out, raw) = run_ts_client(server.mcp_url(), version).await;
    assert!(
        ok,
        "TypeScript client failed: {raw}\nserver: {}",
        server.stderr()
    );
    assert_eq!(out["negotiatedProtocolVersion"], version);
    assert_eq!(out["tools"][0]["name"], "HelloTool");
    assert_eq!(out["call"]["isError"], false, "{out}");
    assert_eq!(out["call"]["structuredContent"]["email"], "ada@contoso.com");
    let text = out["call"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("Ada Lovelace"), "{text}");
    assert_eq!(graph.seen_tokens(), vec!["dev-token".to_owned()]);
}

#[tokio::test]
async fn official_conformance_suite_server_scenarios_pass() {
    let _ = node();
    let (server, _graph, _az) = local_server().await;
    let script = repo().join("tests/e2e/run-conformance.sh");
    let url = server.mcp_url();
    let out =
        tokio::task::spawn_blocking(move || Command::new("bash").arg(script).arg(url).output())
            .await
            .expect("join")
            .expect("run the conformance suite");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "conformance scenarios failed:\n{stdout}\n{stderr}\nserver: {}",
        server.stderr()
    );
    for scenario in [
        "server-initialize",
        "ping",
        "tools-list",
        "dns-rebinding-protection",
    ] {
        assert!(
            stdout.contains(&format!("conformance[{scenario}] checks:")),
            "{scenario} did not run:\n{stdout}"
        );
    }
}
