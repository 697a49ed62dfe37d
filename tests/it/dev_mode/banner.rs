//! The banner: the MCP URL, the provider and emulator URLs, `/metrics` on its own
//! listener, the dev users and a VS Code entry, each checked against what answers there.

use serde_json::Value;

use super::DevProcess;
use crate::support::dev_login;

#[tokio::test]
async fn the_banner_prints_the_mcp_url_vscode_entry_and_users() {
    let dev = DevProcess::start().await;
    let banner = dev.banner().await;
    let mcp_url = dev.mcp_url();
    let line = |label: &str| {
        banner
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| panic!("no {label:?} line in the banner:\n{banner}"))
    };
    assert_eq!(line("MCP server:"), mcp_url, "{banner}");
    let issuer = line("Identity provider:");
    assert!(
        issuer.starts_with(&format!("http://127.0.0.1:{}/", dev.idp_port))
            && issuer.ends_with("/v2.0"),
        "{banner}"
    );
    assert_eq!(
        line("Graph emulator:"),
        format!("http://127.0.0.1:{}", dev.graph_port),
        "{banner}"
    );
    // Metrics on their own loopback listener, not on the MCP server's port.
    let metrics = line("Metrics:");
    assert_eq!(
        metrics,
        format!("http://127.0.0.1:{}/metrics", dev.metrics_port),
        "{banner}"
    );
    let scraped = reqwest::get(&metrics).await.expect("metrics listener");
    assert_eq!(scraped.status(), 200);
    let public = reqwest::get(dev.url("/metrics")).await.expect("MCP port");
    assert_eq!(public.status(), 404, "/metrics on the MCP server's port");
    for user in [
        "Ada Lovelace <ada@contoso.dev>",
        "Alan Turing <alan@contoso.dev>",
    ] {
        assert!(
            banner
                .lines()
                .any(|l| l.trim().trim_start_matches("- ") == user),
            "{user} not listed:\n{banner}"
        );
    }
    // The VS Code entry is valid JSON for .vscode/mcp.json: one http server at the MCP URL.
    let after = &banner[banner.find("VS Code").expect("VS Code section")..];
    let entry: Value = serde_json::from_str(&after[after.find('{').expect("JSON entry")..])
        .unwrap_or_else(|e| panic!("the VS Code entry is not JSON ({e}):\n{banner}"));
    let servers = entry["servers"].as_object().expect("servers object");
    assert_eq!(servers.len(), 1, "{entry}");
    let server = servers.values().next().expect("one server");
    assert_eq!(server["type"], "http", "{entry}");
    assert_eq!(server["url"], mcp_url, "{entry}");
    // The advertised URL answers as a protected MCP endpoint.
    let challenge = dev_login::discover(&mcp_url).await;
    assert_eq!(challenge.issuer(), issuer);
}
