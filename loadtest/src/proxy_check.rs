//! What the tests of both reference proxies check: the fake Graph behind a relay that counts
//! the upstream connections, HelloTool's POSTs sent through the proxy, and then one GET per
//! POST, each with its POST's token, over kept-alive connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mcp_obo_testkit::fake_graph::FakeGraph;

use crate::calls::{HELLO_BODY, mcp_post};

/// POSTs per test: far more than the proxies' workers, so a connection per request shows.
const POSTS: usize = 30;

/// A TCP relay to `target` counting the connections it accepts; `(its url, the count)`.
async fn counting_relay(target: &str) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the relay");
    let url = format!("http://{}", listener.local_addr().expect("relay address"));
    let target = target
        .strip_prefix("http://")
        .expect("the fake Graph is plain HTTP")
        .to_owned();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (url, accepted)
}

/// The fake Graph with three users, behind a counting relay, on its own runtime.
pub struct Upstream {
    pub rt: tokio::runtime::Runtime,
    graph: FakeGraph,
    /// Where the proxy under test sends its GETs: the relay.
    pub url: String,
    connections: Arc<AtomicUsize>,
    /// The tokens sent, in order: the three users' in turn.
    sent: Vec<String>,
}

impl Upstream {
    pub fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let tokens: Vec<String> = (0..3).map(|n| format!("downstream-token-{n}")).collect();
        let (graph, url, connections) = rt.block_on(async {
            let graph = FakeGraph::start().await;
            for (n, token) in tokens.iter().enumerate() {
                let upn = format!("user{n}@example.org");
                graph.add_user(token, &format!("User {n}"), Some(&upn), &upn);
            }
            let (url, connections) = counting_relay(&graph.url).await;
            (graph, url, connections)
        });
        let sent = tokens.iter().cycle().take(POSTS).cloned().collect();
        Self {
            rt,
            graph,
            url,
            connections,
            sent,
        }
    }

    /// HelloTool's POST to `url` (the proxy's `/mcp`) once per token, one after the other
    /// over one keep-alive client; each must come back 200 with Graph's profile.
    pub fn post_each(&self, url: &str) {
        self.rt.block_on(async {
            let client = reqwest::Client::new();
            for token in &self.sent {
                let response = mcp_post(&client, url, token)
                    .body(HELLO_BODY)
                    .send()
                    .await
                    .expect("the proxy answers");
                let status = response.status();
                let body = response.text().await.expect("a body");
                assert_eq!(status, 200, "{body}");
                assert!(body.contains(r#""displayName""#), "{body}");
            }
        });
    }

    /// One upstream `GET /v1.0/me` per POST, each with its POST's token, over at most
    /// `workers` upstream connections (one per worker when they are kept alive).
    pub fn assert_one_kept_alive_get_per_post(&self, workers: usize) {
        assert_eq!(
            self.graph.requests("/v1.0/me"),
            self.sent.len(),
            "one upstream GET /v1.0/me per POST"
        );
        assert_eq!(
            self.graph.seen_tokens(),
            self.sent,
            "each GET carries its POST's token"
        );
        let connections = self.connections.load(Ordering::SeqCst);
        assert!(
            (1..=workers).contains(&connections),
            "{} GETs over {connections} upstream connections: at most one per worker when kept alive",
            self.sent.len()
        );
    }
}
