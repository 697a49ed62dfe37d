//! Microsoft Entra authentication to Redis, as Azure Managed Redis does it: the server's
//! managed identity gets a token for `https://redis.azure.com/.default` and logs in as its
//! object id with that token. Here a real redis-server whose ACL knows only that user, and
//! only once the test gives it the very token the (fake) identity endpoint issued.

use std::time::Duration;

use crate::support::fake_graph::FakeGraph;
use crate::support::fake_imds::{FakeImds, IDENTITY_HEADER, MI_CLIENT_ID, MI_PRINCIPAL_ID};
use crate::support::fleet::sample;
use crate::support::obo_world::{EXCHANGE_AUDIENCE, call_hello_at, entra_and_graph};
use crate::support::redis_server::RedisServer;
use crate::support::tokens::{CLIENT_ID, TestIssuer};
use crate::support::{ServerProcess, binary, entra_env, free_port};

const ADMIN: &str = "test-admin-password";

async fn metrics(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// Polls `check` every 50 ms until it holds, at most 20 s.
async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn entra_auth_logs_in_as_the_identitys_object_id_with_its_redis_token() {
    let imds = FakeImds::start(EXCHANGE_AUDIENCE).await;
    imds.also_issue_for("https://redis.azure.com");
    let (issuer, graph) = entra_and_graph(imds.federated_credential(), &[CLIENT_ID]).await;
    // The identity's ACL user exists, with no password yet: no login can succeed.
    let redis =
        RedisServer::start_protected(ADMIN, &["--user", MI_PRINCIPAL_ID, "on", "~*", "+@all"])
            .await;
    let metrics_port = free_port();
    let server = start_with_entra_redis(&imds, &issuer, &graph, &redis, metrics_port).await;

    // The server asked its identity for a Redis token, and Redis refused the login.
    let redis_token = || {
        imds.issued()
            .into_iter()
            .find(|t| crate::support::tokens::claims_of(t)["aud"] == "https://redis.azure.com")
    };
    wait_for("a token for Redis", || async { redis_token().is_some() }).await;
    let refused = "mcp_obo_obo_shared_cache_errors_total{op=\"auth\",reason=\"error\"}";
    wait_for("the login refused", || async {
        sample(&metrics(metrics_port).await, refused) >= 1.0
    })
    .await;

    // Redis now accepts exactly that token for the identity's object id.
    let token = redis_token().expect("issued");
    let mut admin = redis.client().await;
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(MI_PRINCIPAL_ID)
        .arg("resetpass")
        .arg(format!(">{token}"))
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER");
    let up = "mcp_obo_obo_shared_cache_up";
    wait_for("the shared cache used", || async {
        sample(&metrics(metrics_port).await, up) == 1.0
    })
    .await;

    let result = call_hello_at(
        &server.mcp_url(),
        &issuer.entra_token(serde_json::json!({"oid": "entra-redis-user"})),
    )
    .await;
    assert_eq!(result["isError"], false, "{result}\n{}", server.stderr());
    assert_shared_as_the_identity(&redis, &mut admin, metrics_port).await;
    assert!(
        !server.stderr().contains(&token),
        "the Redis token reached the log"
    );
}

/// `mcp-obo serve` with the managed identity of `imds`, the shared cache at `redis` with
/// `auth = entra`, and its metrics on `metrics_port`.
async fn start_with_entra_redis(
    imds: &FakeImds,
    issuer: &TestIssuer,
    graph: &FakeGraph,
    redis: &RedisServer,
    metrics_port: u16,
) -> ServerProcess {
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let mut env = entra_env(issuer);
    env.extend(
        [
            ("MCP_OBO__GRAPH__BASE_URL", graph.url.as_str()),
            ("IDENTITY_ENDPOINT", imds.endpoint.as_str()),
            ("IDENTITY_HEADER", IDENTITY_HEADER),
            ("OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID", MI_CLIENT_ID),
            ("MCP_OBO__OBO__SHARED_CACHE__URL", &redis.url()),
            ("MCP_OBO__OBO__SHARED_CACHE__AUTH", "entra"),
            ("MCP_OBO__OBO__SHARED_CACHE__TIMEOUT", "1s"),
            ("MCP_OBO__TELEMETRY__METRICS_LISTEN", &metrics_listen),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = ServerProcess::start(binary(), &env).await;
    server.wait_ready().await;
    server
}

/// The call went through the shared cache (one miss, one lock), its entry was written, and
/// the connection is logged in as the identity's object id.
async fn assert_shared_as_the_identity(
    redis: &RedisServer,
    admin: &mut redis::aio::MultiplexedConnection,
    metrics_port: u16,
) {
    let text = metrics(metrics_port).await;
    assert_eq!(
        sample(
            &text,
            "mcp_obo_obo_shared_cache_lookups_total{result=\"miss\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "mcp_obo_obo_shared_cache_locks_total{outcome=\"acquired\"}"
        ),
        1.0
    );
    assert_eq!(
        redis.dump().await.len(),
        1,
        "the entry, written as the identity"
    );
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(admin)
        .await
        .expect("CLIENT LIST");
    assert!(
        clients.contains(&format!("user={MI_PRINCIPAL_ID}")),
        "{clients}"
    );
}
