//! The reference proxy against the fake Graph, through a relay that counts the upstream
//! connections: one GET per POST, the caller's token on each, over kept-alive connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mcp_obo_testkit::fake_graph::FakeGraph;

use super::{Nginx, installed};
use crate::calls::{ACCEPT, HELLO_BODY, PROTOCOL};

const POSTS: usize = 30;
const WORKERS: usize = 2;

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

#[test]
fn each_post_becomes_one_upstream_get_with_its_token_over_kept_alive_connections() {
    if !installed() {
        if std::env::var_os("MCP_OBO_TEST_NO_NGINX").is_some() {
            eprintln!("skipped: nginx is not installed and MCP_OBO_TEST_NO_NGINX is set");
            return;
        }
        panic!(
            "nginx is not installed: run scripts/setup-test-tools.sh (it installs Debian's \
             nginx-light), or set MCP_OBO_TEST_NO_NGINX=1 to skip this test"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tokens: Vec<String> = (0..3).map(|n| format!("downstream-token-{n}")).collect();
    let (graph, relay, upstream_connections) = rt.block_on(async {
        let graph = FakeGraph::start().await;
        for (n, token) in tokens.iter().enumerate() {
            let upn = format!("user{n}@example.org");
            graph.add_user(token, &format!("User {n}"), Some(&upn), &upn);
        }
        let (relay, connections) = counting_relay(&graph.url).await;
        (graph, relay, connections)
    });
    let nginx = Nginx::start(&relay, WORKERS, 64).expect("nginx starts");
    assert_eq!(nginx.workers(), WORKERS);
    assert_eq!(
        nginx.pids().len(),
        WORKERS + 1,
        "the master and its workers"
    );

    let sent: Vec<String> = tokens.iter().cycle().take(POSTS).cloned().collect();
    rt.block_on(async {
        let client = reqwest::Client::new();
        for token in &sent {
            let response = client
                .post(nginx.url("/mcp"))
                .header("content-type", "application/json")
                .header("accept", ACCEPT)
                .header("mcp-protocol-version", PROTOCOL)
                .header("authorization", format!("Bearer {token}"))
                .body(HELLO_BODY)
                .send()
                .await
                .expect("nginx answers");
            let status = response.status();
            let body = response.text().await.expect("a body");
            assert_eq!(status, 200, "{body}");
            assert!(body.contains(r#""displayName""#), "{body}");
        }
    });

    assert_eq!(
        graph.requests("/v1.0/me"),
        POSTS,
        "one upstream GET /v1.0/me per POST"
    );
    assert_eq!(
        graph.seen_tokens(),
        sent,
        "each GET carries its POST's token"
    );
    let connections = upstream_connections.load(Ordering::SeqCst);
    assert!(
        (1..=WORKERS).contains(&connections),
        "{POSTS} GETs over {connections} upstream connections: at most one per worker when kept alive"
    );
}
