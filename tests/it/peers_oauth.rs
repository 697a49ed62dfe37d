//! OAuth end to end with independent real software and the real binary: the MCP
//! TypeScript SDK client signs the user in (authorization code + PKCE, dynamic client
//! registration, RFC 8707 resource) at the npm `oidc-provider` authorization server, having
//! discovered it from the server's 401 challenge (RFC 9728); the server validates the JWT
//! access token, exchanges it (RFC 8693, at the same provider) for a Graph token, and the
//! fake Graph verifies that token's signature and audience. The MCP Inspector CLI then calls
//! HelloTool with a token from the same provider, and the provider's token exchange is shown
//! to refuse what it should. Node 22 and the packages come from `scripts/setup-test-tools.sh`
//! (run by `scripts/test.sh`, the suite's one command).
//!
//! Sign-in is headless: the provider's interaction page (tests/e2e/oidc-provider-server.mjs)
//! logs in the fixed user `kc-user-1` ("Kim Tester", kim@example.org) and consents by
//! redirecting, and the client's `redirectToAuthorization` follows redirects with a cookie
//! jar until the redirect URI (tests/e2e/ts-oauth-client.mjs).
//!
//! This file is the [`World`] the tests share; beside it:
//! - `node.rs`: [`node::run_node`], [`node::OidcProvider`], the Node peers as processes
//! - `sign_in.rs`: the TypeScript SDK's sign-in and the Inspector CLI's call
//! - `token_exchange.rs`: what the provider's token exchange refuses

mod node;
mod sign_in;
mod token_exchange;

use std::sync::{Arc, Mutex};

use crate::support::fake_graph::FakeGraph;
use crate::support::{ServerProcess, binary};
use node::{NodeRun, OidcProvider, e2e, node, run_node};
use serde_json::Value;

const USER_SUB: &str = "kc-user-1";
const USER_NAME: &str = "Kim Tester";
const USER_EMAIL: &str = "kim@example.org";

/// Fake Graph, oidc-provider and the real server wired together (dropped in this order).
struct World {
    server: ServerProcess,
    provider: OidcProvider,
    graph: FakeGraph,
    keys: Arc<Mutex<Vec<Value>>>,
    public_url: String,
    resource: String,
}

impl World {
    async fn start() -> Self {
        let _ = node();
        let graph = FakeGraph::start().await;
        // The provider must know the MCP resource URL before the server runs: fix its port.
        let port = crate::support::free_port();
        let public_url = format!("http://127.0.0.1:{port}");
        let resource = format!("{public_url}/mcp");
        let provider = OidcProvider::start(&resource, &graph.url);
        let keys = provider.jwks().await;
        // Graph accepts only tokens the provider signed for Graph; the user's own token
        // (audience = the MCP resource) arriving there is recorded as passthrough.
        graph.verify_tokens(keys.clone(), &graph.url, &[&resource]);
        let issuer = provider.issuer();
        let token_endpoint = provider.get("token_endpoint");
        let env = [
            ("MCP_OBO__AUTH__MODE", "oidc"),
            ("MCP_OBO__AUTH__ISSUER", issuer.as_str()),
            ("MCP_OBO__AUTH__AUDIENCES", resource.as_str()),
            ("MCP_OBO__AUTH__REQUIRED_SCOPES", "mcp:tools"),
            ("MCP_OBO__SERVER__PUBLIC_URL", public_url.as_str()),
            ("MCP_OBO__GRAPH__BASE_URL", graph.url.as_str()),
            // The OIDC provider here knows one resource scope, `{graph}/.default`.
            ("MCP_OBO__GRAPH__SCOPES", "default"),
            ("MCP_OBO__OBO__GRANT", "token_exchange"),
            ("MCP_OBO__OBO__CLIENT_ASSERTION", "client_secret"),
            ("MCP_OBO__OBO__CLIENT_ID", "mcp-server"),
            ("MCP_OBO__OBO__CLIENT_SECRET", "mcp-server-secret"),
            ("MCP_OBO__OBO__TOKEN_ENDPOINT", token_endpoint.as_str()),
        ];
        let server = ServerProcess::start_on(binary(), port, &env).await;
        server.wait_ready().await;
        assert_eq!(server.mcp_url(), resource);
        Self {
            server,
            provider,
            graph,
            keys,
            public_url,
            resource,
        }
    }

    /// `ts-oauth-client.mjs --url MCP --print-token [extra...]`.
    async fn oauth_client(&self, extra: &[&str]) -> (NodeRun, Value) {
        let mut args = vec![
            e2e()
                .join("ts-oauth-client.mjs")
                .to_string_lossy()
                .into_owned(),
            "--url".into(),
            self.server.mcp_url(),
            "--print-token".into(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let run = run_node(args, e2e()).await;
        let json = run.json();
        assert!(
            run.ok && json.get("error").is_none(),
            "TypeScript OAuth client failed: {}\n{}",
            run.raw(),
            self.logs()
        );
        (run, json)
    }

    fn logs(&self) -> String {
        format!(
            "server stderr:\n{}\noidc-provider stderr:\n{}",
            self.server.stderr(),
            self.provider.stderr()
        )
    }
}

/// Index of the first step at or after `from` matching `pred`, or a panic naming `what`.
fn find_step(steps: &[Value], from: usize, what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    steps
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, s)| pred(s))
        .map(|(i, _)| i)
        .unwrap_or_else(|| {
            panic!(
                "no {what} step after #{from} in:\n{}",
                serde_json::to_string_pretty(steps).unwrap_or_default()
            )
        })
}
