//! The shared (second-level) token cache with a real redis-server and real replicas: three
//! `mcp-obo serve` processes, each with its own in-process cache and metrics, one fake Entra
//! counting exchanges. One exchange per user across the fleet, concurrent first calls
//! coalesced across replicas, a Redis that dies costing no call, entries nobody else can use.
//!
//! This file is the sharing itself (across replicas, a cluster, over TLS) and the checks the
//! others share; beside it:
//! - `redis_faults.rs`: a Redis that dies, is down at start or stops answering
//! - `entries.rs`: tampered and foreign entries, and nothing secret in Redis

mod entries;
mod redis_faults;

use std::sync::Arc;

use crate::support::binary;
use crate::support::fake_graph::Scripted;
use crate::support::fleet::Fleet;
use crate::support::redis_server::{RedisCluster, RedisServer};
use serde_json::Value;

const HIT: &str = "mcp_obo_obo_shared_cache_lookups_total{result=\"hit\"}";
const REJECTED: &str = "mcp_obo_obo_shared_cache_lookups_total{result=\"rejected\"}";
const BYPASSED: &str = "mcp_obo_obo_shared_cache_lookups_total{result=\"bypassed\"}";
const UP: &str = "mcp_obo_obo_shared_cache_up";

fn assert_greeted(result: &Value, n: usize) {
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(
        result["structuredContent"]["displayName"],
        format!("User {n}")
    );
}

/// Waits until every replica reports the shared cache as answering (its probe got a PONG).
async fn wait_until_used_again(fleet: &Fleet) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    for replica in 0..fleet.replicas.len() {
        while fleet.metric(replica, UP).await < 1.0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "replica {replica} never used the shared cache again"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn a_hundred_users_round_robin_over_three_replicas_make_a_hundred_exchanges() {
    let redis = RedisServer::start().await;
    let fleet = Fleet::start(binary(), 3, &redis.url(), &[]).await;
    for n in 0..100 {
        let token = fleet.user(n);
        for k in 0..3 {
            assert_greeted(&fleet.hello((n + k) % 3, &token).await, n);
        }
    }
    assert_eq!(
        fleet.issuer.exchanges(),
        100,
        "one exchange per user, not per replica"
    );
    assert_eq!(fleet.metric_sum(HIT).await, 200.0);
}

#[tokio::test]
async fn two_hundred_simultaneous_first_calls_over_three_replicas_make_one_exchange() {
    let redis = RedisServer::start().await;
    let fleet = Arc::new(
        Fleet::start(
            binary(),
            3,
            &redis.url(),
            &[
                ("MCP_OBO__SERVER__MAX_IN_FLIGHT_PER_USER", "200"),
                ("MCP_OBO__SERVER__RATE_LIMIT", "off"),
            ],
        )
        .await,
    );
    let token = Arc::new(fleet.user(7));
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let (fleet, token) = (fleet.clone(), token.clone());
            tokio::spawn(async move { fleet.hello(i % 3, &token).await })
        })
        .collect();
    for call in calls {
        assert_greeted(&call.await.expect("join"), 7);
    }
    assert_eq!(fleet.issuer.exchanges(), 1);
}

#[tokio::test]
async fn a_replica_started_after_the_others_makes_no_exchange_for_a_cached_user() {
    let redis = RedisServer::start().await;
    let mut fleet = Fleet::start(binary(), 2, &redis.url(), &[]).await;
    let token = fleet.user(3);
    assert_greeted(&fleet.hello(0, &token).await, 3);
    let late = fleet.add_replica().await;
    assert_greeted(&fleet.hello(late, &token).await, 3);
    assert_eq!(fleet.issuer.exchanges(), 1);
    assert_eq!(fleet.metric(late, HIT).await, 1.0);
}

#[tokio::test]
async fn a_token_graph_refuses_is_dropped_from_redis_too() {
    let redis = RedisServer::start().await;
    let fleet = Fleet::start(binary(), 2, &redis.url(), &[]).await;
    let token = fleet.user(5);
    assert_greeted(&fleet.hello(0, &token).await, 5);
    fleet
        .graph
        .script(Scripted::Status(401, None, "InvalidAuthenticationToken"));
    // The retry after the 401 finds no shared entry (else it would reuse the refused token).
    assert_greeted(&fleet.hello(0, &token).await, 5);
    assert_eq!(fleet.issuer.exchanges(), 2);
    // The fresh token is the shared one.
    assert_greeted(&fleet.hello(1, &token).await, 5);
    assert_eq!(fleet.issuer.exchanges(), 2);
    assert_eq!(fleet.metric(1, HIT).await, 1.0);
}

#[tokio::test]
async fn cluster_mode_shares_entries_across_replicas_on_a_three_node_redis_cluster() {
    let cluster = RedisCluster::start().await;
    let fleet = Fleet::start(
        binary(),
        3,
        &cluster.url(),
        &[("MCP_OBO__OBO__SHARED_CACHE__CLUSTER", "true")],
    )
    .await;
    for n in 0..12 {
        let token = fleet.user(n);
        for k in 0..3 {
            assert_greeted(&fleet.hello((n + k) % 3, &token).await, n);
        }
    }
    assert_eq!(fleet.issuer.exchanges(), 12);
    assert_eq!(fleet.metric_sum(HIT).await, 24.0);
    let entries = cluster.dump().await;
    assert_eq!(
        entries.iter().filter(|(k, _)| k.ends_with(":t")).count(),
        12
    );
    // Spread over the nodes by slot: the client followed the cluster's map (all twelve on
    // one node by chance: about 1 in 180,000).
    let mut nodes_with_entries = 0;
    for node in &cluster.nodes {
        if node.dump().await.iter().any(|(k, _)| k.ends_with(":t")) {
            nodes_with_entries += 1;
        }
    }
    assert!(nodes_with_entries >= 2, "every entry on one node");
}

#[tokio::test]
async fn a_user_revoked_by_continuous_access_evaluation_gets_no_data_on_any_replica() {
    use serde_json::json;

    let redis = RedisServer::start().await;
    let fleet = Fleet::start(binary(), 3, &redis.url(), &[]).await;
    let token = fleet.user(9);
    for replica in 0..3 {
        assert_greeted(&fleet.hello(replica, &token).await, 9);
    }
    assert_eq!(
        fleet.issuer.exchanges(),
        1,
        "every replica holds the one token"
    );
    let cached = fleet.issuer.issued_tokens()[0].clone();

    // The user is disabled: Graph refuses the token with a claims challenge, and Entra asks
    // for interaction for any new one.
    let nbf = json!({"access_token": {"nbf": {"essential": true, "value": "1604106651"}}});
    fleet.graph.revoke(&cached, &nbf);
    let entra_claims = r#"{"access_token":{"capolids":{"essential":true,"values":["c1"]}}}"#;
    for _ in 0..3 {
        fleet.issuer.script_interaction_required(entra_claims);
    }
    for replica in 0..3 {
        let result = fleet.hello(replica, &token).await;
        assert_eq!(result["isError"], true, "replica {replica}: {result}");
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        assert!(text.contains(entra_claims), "replica {replica}: {text}");
        assert!(!result.to_string().contains("User 9"), "{result}");
    }
    // Each replica's exchange after the challenge passed the challenge's claims on.
    let requested = fleet.issuer.claims_requested();
    assert!(requested.len() > 1, "{requested:?}");
    for claims in &requested[1..] {
        let sent: Value = serde_json::from_str(claims.as_deref().unwrap_or("null")).expect("JSON");
        assert_eq!(
            sent["access_token"]["nbf"], nbf["access_token"]["nbf"],
            "{claims:?}"
        );
    }
    // And the revoked token is never sent again, from any replica.
    let seen = fleet.graph.seen_tokens().len();
    for replica in 0..3 {
        assert_eq!(fleet.hello(replica, &token).await["isError"], true);
    }
    assert_eq!(fleet.graph.seen_tokens().len(), seen);
}

/// A CA and a certificate for `localhost` it signed, as PEM files in `dir`: (CA, cert, key).
fn tls_files(dir: &std::path::Path) -> (String, String, String) {
    let ca = crate::graph_transport::TestCa::new();
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("write PEM");
        path.display().to_string()
    };
    (
        write("ca.pem", &ca.ca_pem),
        write("redis.pem", &ca.leaf.pem()),
        write("redis.key", &ca.leaf_key.serialize_pem()),
    )
}

#[tokio::test]
async fn a_tls_only_redis_is_shared_over_rediss_and_its_certificate_is_verified() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ca, cert, key) = tls_files(dir.path());
    let tls_port = crate::support::free_port().to_string();
    let redis = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-auth-clients",
        "no",
    ])
    .await;
    let url = format!("rediss://localhost:{tls_port}");
    // The replicas trust the test CA as the platform's trust store would.
    let fleet = Fleet::start(binary(), 2, &url, &[("SSL_CERT_FILE", ca.as_str())]).await;
    let token = fleet.user(11);
    assert_greeted(&fleet.hello(0, &token).await, 11);
    assert_greeted(&fleet.hello(1, &token).await, 11);
    assert_eq!(fleet.issuer.exchanges(), 1, "shared over TLS");
    assert_eq!(fleet.metric(1, HIT).await, 1.0);
    assert_eq!(fleet.metric(1, UP).await, 1.0);
    assert_eq!(redis.dump().await.len(), 1);

    // Without the CA the certificate is refused: bypassed, never a failed call.
    let untrusting = Fleet::start(binary(), 1, &url, &[]).await;
    let token = untrusting.user(12);
    assert_greeted(&untrusting.hello(0, &token).await, 12);
    assert_eq!(untrusting.metric(0, UP).await, 0.0);
    assert!(untrusting.metric(0, BYPASSED).await >= 1.0);
    assert_eq!(
        redis.dump().await.len(),
        1,
        "nothing written without TLS trust"
    );
}
