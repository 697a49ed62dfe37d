//! Test support for mcp-obo, shared by the integration tests (`tests/`), the benches and the
//! load tool (`loadtest/`): the app in-process or as a process, the fakes (Entra token
//! endpoint and keys, Graph, IMDS, OTLP receivers, the dev sign-in), raw MCP requests, a real
//! redis-server and a fleet of replicas sharing it.
//!
//! A crate of its own so nothing includes these files by `#[path]`. It links the `mcp_obo`
//! library, so only code built against that same library may use it: integration tests,
//! benches and the load tool, never the library's own `#[cfg(test)]` unit tests.
//!
//! Where the `mcp-obo` binary is only cargo knows, and only when building one of mcp-obo's
//! own test targets (`env!("CARGO_BIN_EXE_mcp-obo")`), so [`ServerProcess`] takes the path.
//!
//! Beside the fakes' modules, re-exported here:
//! - `test_app.rs`: [`TestApp`], the server in-process, [`spawn_app`] and its variants
//! - `server_process.rs`: [`ServerProcess`], the binary as a child process
//! - `static_tokens.rs`: [`StaticTokens`], a fixed downstream token source
//! - `fake_az.rs`: [`FakeAzCli`], a fake Azure CLI

pub mod dev_login;
pub mod fake_graph;
pub mod fake_imds;
pub mod fleet;
pub mod mcp_http;
pub mod obo_world;
pub mod otlp;
pub mod redirector;
pub mod redis_server;
pub mod tokens;

mod fake_az;
mod server_process;
mod static_tokens;
mod test_app;

pub use fake_az::FakeAzCli;
pub use server_process::ServerProcess;
pub use static_tokens::StaticTokens;
pub use test_app::{TestApp, spawn_app, spawn_app_owned, spawn_production_app, wait_ready};

/// Graph's and Entra's JSON bodies, as the dev emulator serves them: every fake here builds
/// its answers from these.
pub use mcp_obo::devidp::shapes;

use std::time::Duration;

/// A free loopback port (bound then released) for a child process to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `url` until it answers 2xx. Before each wait `not_yet` says what to report if the
/// time is up (it may panic itself, e.g. when the server process has exited).
async fn poll_until_ok(url: &str, within: Duration, mut not_yet: impl FnMut() -> String) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        let message = not_yet();
        assert!(tokio::time::Instant::now() < deadline, "{message}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Environment for `auth.mode = entra` against the test issuer.
pub fn entra_env(issuer: &tokens::TestIssuer) -> Vec<(String, String)> {
    vec![
        ("MCP_OBO__AUTH__MODE".into(), "entra".into()),
        ("MCP_OBO__ENTRA__TENANT_ID".into(), tokens::TENANT.into()),
        ("MCP_OBO__ENTRA__CLIENT_ID".into(), tokens::CLIENT_ID.into()),
        ("MCP_OBO__ENTRA__AUTHORITY_HOST".into(), issuer.base.clone()),
        (
            "MCP_OBO__SERVER__PUBLIC_URL".into(),
            "https://mcp.example.com".into(),
        ),
    ]
}

/// Environment for `auth.mode = oidc` against the test issuer's `/oidc` issuer, for the
/// resource `https://mcp.example.com/mcp` with the scope `mcp:tools`.
pub fn oidc_env(issuer: &tokens::TestIssuer) -> Vec<(String, String)> {
    vec![
        ("MCP_OBO__AUTH__MODE".into(), "oidc".into()),
        ("MCP_OBO__AUTH__ISSUER".into(), issuer.oidc_issuer()),
        (
            "MCP_OBO__AUTH__AUDIENCES".into(),
            "https://mcp.example.com/mcp".into(),
        ),
        ("MCP_OBO__AUTH__REQUIRED_SCOPES".into(), "mcp:tools".into()),
        (
            "MCP_OBO__SERVER__PUBLIC_URL".into(),
            "https://mcp.example.com".into(),
        ),
    ]
}
