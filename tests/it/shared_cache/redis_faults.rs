//! A Redis that dies, is down at start or stops answering costs no call: each replica goes
//! on without it (bypassed, counted) and uses it again once it answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{BYPASSED, HIT, UP, assert_greeted, wait_until_used_again};
use crate::support::binary;
use crate::support::fleet::Fleet;
use crate::support::redis_server::RedisServer;

#[tokio::test]
async fn redis_killed_in_the_middle_of_a_run_fails_no_call_and_is_used_again_after_restart() {
    let mut redis = RedisServer::start().await;
    let fleet = Arc::new(Fleet::start(binary(), 3, &redis.url(), &[]).await);
    let done = Arc::new(AtomicUsize::new(0));
    let (halfway_tx, halfway) = tokio::sync::oneshot::channel();
    let run = {
        let (fleet, done) = (fleet.clone(), done.clone());
        tokio::spawn(async move {
            let mut halfway_tx = Some(halfway_tx);
            for n in 0..60 {
                let token = fleet.user(n);
                for k in 0..3 {
                    assert_greeted(&fleet.hello((n + k) % 3, &token).await, n);
                    done.fetch_add(1, Ordering::SeqCst);
                }
                if n == 20
                    && let Some(tx) = halfway_tx.take()
                {
                    let _ = tx.send(());
                }
            }
        })
    };
    halfway.await.expect("the run reaches its middle");
    redis.kill();
    run.await.expect("every call of the run succeeded");
    assert_eq!(done.load(Ordering::SeqCst), 180);
    assert!(
        fleet.metric_sum(BYPASSED).await > 0.0,
        "calls went on without Redis"
    );

    redis.restart().await;
    wait_until_used_again(&fleet).await;
    let (exchanges, hits) = (fleet.issuer.exchanges(), fleet.metric_sum(HIT).await);
    let token = fleet.user(1000);
    for k in 0..3 {
        assert_greeted(&fleet.hello(k, &token).await, 1000);
    }
    assert_eq!(
        fleet.issuer.exchanges(),
        exchanges + 1,
        "one exchange for three replicas again"
    );
    assert_eq!(fleet.metric_sum(HIT).await, hits + 2.0);
}

#[tokio::test]
async fn a_replica_starts_and_serves_while_redis_is_down() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    redis.kill();
    let fleet = Fleet::start(binary(), 1, &url, &[]).await;
    let token = fleet.user(1);
    assert_greeted(&fleet.hello(0, &token).await, 1);
    assert_eq!(fleet.metric(0, UP).await, 0.0);
    assert_eq!(fleet.metric(0, BYPASSED).await, 1.0);
    redis.restart().await;
    wait_until_used_again(&fleet).await;
    assert_greeted(&fleet.hello(0, &fleet.user(2)).await, 2);
    assert_eq!(
        fleet
            .metric(0, "mcp_obo_obo_shared_cache_lookups_total{result=\"miss\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_redis_that_stops_answering_is_bypassed_at_its_deadline_and_used_again_after() {
    let redis = RedisServer::start().await;
    let fleet = Fleet::start(
        binary(),
        1,
        &redis.url(),
        &[("MCP_OBO__OBO__SHARED_CACHE__TIMEOUT", "200ms")],
    )
    .await;
    assert_greeted(&fleet.hello(0, &fleet.user(1)).await, 1);
    redis.pause();
    for n in 2..5 {
        assert_greeted(&fleet.hello(0, &fleet.user(n)).await, n);
    }
    let timeouts = "mcp_obo_obo_shared_cache_errors_total{op=\"get\",reason=\"timeout\"}";
    assert_eq!(
        fleet.metric(0, timeouts).await,
        1.0,
        "one timeout, then bypassed"
    );
    // The call that met the timeout went on without the cache too.
    assert_eq!(fleet.metric(0, BYPASSED).await, 3.0);
    assert_eq!(fleet.metric(0, UP).await, 0.0);
    redis.resume();
    wait_until_used_again(&fleet).await;
    assert_greeted(&fleet.hello(0, &fleet.user(9)).await, 9);
    assert_eq!(fleet.issuer.exchanges(), 5);
    assert_eq!(
        fleet.metric(0, BYPASSED).await,
        3.0,
        "used again, not bypassed"
    );
}
