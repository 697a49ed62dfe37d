//! The fakes, in this process: the test issuer (OIDC discovery, JWKS, an RFC 8693 token
//! endpoint at `/oidc/token`) and the fake Graph on its own thread, both from
//! `mcp-obo-testkit`, and the user tokens the issuer mints.

use anyhow::{Context as _, Result, anyhow};
use mcp_obo_testkit::fake_graph::FakeGraph;
use mcp_obo_testkit::tokens::{TestIssuer, now};
use serde_json::json;

pub const PUBLIC_URL: &str = "https://mcp.example.com";
pub const AUDIENCE: &str = "https://mcp.example.com/mcp";
pub const OBO_CLIENT: &str = "mcp-server";
pub const OBO_SECRET: &str = "bench-secret";
pub const SCOPE: &str = "mcp:tools";

/// The fake Graph on one thread with a current-thread runtime, as a lean Graph stand-in:
/// on a shared multi-thread runtime its work-stealing wake-ups cost the 2 shared cores
/// more than its requests do.
fn graph_on_its_own_thread() -> Result<FakeGraph> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("fake-graph".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(anyhow!("fake Graph runtime: {e}")));
                    return;
                }
            };
            rt.block_on(async move {
                let _ = tx.send(Ok(FakeGraph::start_minimal().await));
                std::future::pending::<()>().await;
            });
        })
        .context("fake Graph thread")?;
    rx.recv()
        .context("the fake Graph thread ended before starting")?
}

pub struct Fakes {
    pub issuer: TestIssuer,
    pub graph: FakeGraph,
}

impl Fakes {
    pub async fn start() -> Result<Self> {
        let issuer = TestIssuer::start().await;
        let graph = graph_on_its_own_thread()?;
        // Graph accepts only downstream tokens the issuer signed for it (per request: the
        // OBO token differs per exchange, so there is no fixed token→profile map).
        graph.verify_tokens(issuer.keys_handle(), &graph.url, &[AUDIENCE]);
        graph.stop_recording();
        let resource = graph.url.clone();
        issuer.configure_token_endpoint(|p| {
            p.resource = resource;
            p.client_id = OBO_CLIENT.into();
            p.client_secret = Some(OBO_SECRET.into());
            p.user_audiences = vec![AUDIENCE.into()];
        });
        Ok(Self { issuer, graph })
    }

    /// `auth.mode = oidc` + RFC 8693 token exchange with a client secret, as
    /// `tests/it/obo_exchange.rs::rfc8693_token_exchange_works_for_non_entra_issuers`.
    pub fn auth_env(&self) -> Vec<(String, String)> {
        [
            ("MCP_OBO__AUTH__MODE", "oidc".to_owned()),
            ("MCP_OBO__AUTH__ISSUER", self.issuer.oidc_issuer()),
            ("MCP_OBO__AUTH__AUDIENCES", AUDIENCE.to_owned()),
            ("MCP_OBO__AUTH__REQUIRED_SCOPES", SCOPE.to_owned()),
            ("MCP_OBO__SERVER__PUBLIC_URL", PUBLIC_URL.to_owned()),
            ("MCP_OBO__GRAPH__BASE_URL", self.graph.url.clone()),
            ("MCP_OBO__OBO__GRANT", "token_exchange".to_owned()),
            ("MCP_OBO__OBO__CLIENT_ASSERTION", "client_secret".to_owned()),
            ("MCP_OBO__OBO__CLIENT_ID", OBO_CLIENT.to_owned()),
            ("MCP_OBO__OBO__CLIENT_SECRET", OBO_SECRET.to_owned()),
            (
                "MCP_OBO__OBO__TOKEN_ENDPOINT",
                format!("{}/token", self.issuer.oidc_issuer()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Valid user tokens (RS256, 2 h) for `count` distinct users named `{prefix}-{n}`.
    pub fn mint(&self, prefix: &str, count: usize) -> Vec<String> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let chunk = count.div_ceil(threads).max(1);
        let indices: Vec<usize> = (0..count).collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = indices
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|n| {
                                self.issuer.sign(&json!({
                                    "iss": self.issuer.oidc_issuer(),
                                    "aud": AUDIENCE,
                                    "sub": format!("{prefix}-{n}"),
                                    "name": format!("Bench User {prefix}-{n}"),
                                    "preferred_username": format!("{prefix}-{n}@example.org"),
                                    "exp": now() + 7200,
                                    "iat": now(),
                                    "scope": format!("openid {SCOPE}"),
                                }))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                // A minting thread can only fail by panicking (signing is infallible here);
                // pass that panic on rather than measure with missing users.
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }
}

/// `count` calendar events in Graph's shape, for UpcomingEvents runs.
pub fn calendar(count: usize) -> Vec<serde_json::Value> {
    mcp_obo_testkit::fake_graph::calendar("Meeting", count, Some("https://teams.example/join"))
}
