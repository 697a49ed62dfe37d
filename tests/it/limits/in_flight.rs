//! More than `server.max_in_flight_per_user` requests at once: the one over the cap is
//! answered 429 at once while another user is served, and a request whose client went away
//! gives its slot back.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use mcp_obo::auth::Caller;
use mcp_obo::obo::{AccessToken, DownstreamTokens, Error as OboError};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, watch};

use super::{GRAPH_TOKEN, PATIENCE, Users, assert_too_many, entra_app, head, hello, limited};
use crate::support::mcp_http::post_as_with;

/// Hands out Graph tokens; those for `held` wait until [`Gate::release`], and are counted
/// when they arrive and when they leave (answered, or dropped with their request).
struct Gate {
    held: String,
    arrived: watch::Sender<usize>,
    left: watch::Sender<usize>,
    open: Semaphore,
}

/// Counts a held call out of the gate however it ends.
struct Leaving<'a>(&'a watch::Sender<usize>);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n += 1);
    }
}

/// Waits until `counter` reaches `n`.
async fn reaches(counter: &watch::Sender<usize>, n: usize, what: &str) {
    let mut seen = counter.subscribe();
    tokio::time::timeout(PATIENCE, seen.wait_for(|c| *c >= n))
        .await
        .unwrap_or_else(|_| panic!("{n} calls never {what}"))
        .expect("the gate is alive");
}

impl Gate {
    fn new(held: &str) -> Arc<Self> {
        Arc::new(Self {
            held: held.to_owned(),
            arrived: watch::Sender::new(0),
            left: watch::Sender::new(0),
            open: Semaphore::new(0),
        })
    }

    /// Waits until `n` of the held user's calls have reached the gate.
    async fn wait_for(&self, n: usize) {
        reaches(&self.arrived, n, "reached the token source").await;
    }

    fn release(&self) {
        self.open.add_permits(1024);
    }
}

#[async_trait]
impl DownstreamTokens for Gate {
    async fn token(&self, caller: &Caller, _scopes: &[&str]) -> Result<AccessToken, OboError> {
        if caller.subject == self.held {
            self.arrived.send_modify(|n| *n += 1);
            let _leaving = Leaving(&self.left);
            if let Ok(permit) = self.open.acquire().await {
                permit.forget();
            }
        }
        Ok(AccessToken::new(
            GRAPH_TOKEN,
            SystemTime::now() + Duration::from_secs(3600),
        ))
    }

    async fn invalidate(&self, _caller: &Caller, _scopes: &[&str]) {}
}

#[rstest::rstest]
#[tokio::test]
async fn the_33rd_concurrent_request_of_a_user_gets_429_while_another_user_is_served(
    #[values("true", "false")] fast_path: &str,
) {
    let gate = Gate::new("user-a");
    let Users { app, a, b, .. } =
        entra_app(gate.clone(), &[("MCP_OBO__SERVER__FAST_PATH", fast_path)]).await;
    let client = reqwest::Client::new();
    let before = limited("in_flight");
    let held: Vec<_> = (0..32)
        .map(|i| {
            let (client, url, a) = (client.clone(), app.mcp_url(), a.clone());
            tokio::spawn(async move { post_as_with(&client, &url, &a, &hello(i)).await })
        })
        .collect();
    gate.wait_for(32).await;

    let over = tokio::time::timeout(
        PATIENCE,
        post_as_with(&client, &app.mcp_url(), &a, &hello(33)),
    )
    .await
    .expect("the request over the cap is answered at once, not queued");
    assert_too_many(&over, &Value::Null, 60);
    assert!(limited("in_flight") > before, "counted in /metrics");
    let other = post_as_with(&client, &app.mcp_url(), &b, &hello(1)).await;
    assert_eq!(
        other.status, 200,
        "another user is unaffected: {}",
        other.text
    );

    gate.release();
    for call in held {
        let reply = tokio::time::timeout(PATIENCE, call)
            .await
            .expect("answered")
            .expect("task");
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let after = post_as_with(&client, &app.mcp_url(), &a, &hello(34)).await;
    assert_eq!(after.status, 200, "the slots came back: {}", after.text);
}

#[tokio::test]
async fn a_request_whose_client_resets_its_connection_gives_its_slot_back() {
    let gate = Gate::new("user-a");
    let Users { app, a, .. } = entra_app(
        gate.clone(),
        &[("MCP_OBO__SERVER__MAX_IN_FLIGHT_PER_USER", "1")],
    )
    .await;
    let body = serde_json::to_string(&hello(1)).expect("json");
    let auth = format!("Authorization: Bearer {a}\r\n");
    let mut abandoned = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    abandoned
        .write_all(format!("{}{body}", head(&app, body.len(), &auth)).as_bytes())
        .await
        .expect("send the request");
    gate.wait_for(1).await;
    let (client, url, second) = (reqwest::Client::new(), app.mcp_url(), hello(2));
    let refused = tokio::time::timeout(PATIENCE, post_as_with(&client, &url, &a, &second))
        .await
        .expect("the request over the cap is answered at once, not queued");
    assert_too_many(&refused, &Value::Null, 60);
    // The client goes away mid-request (a reset, as a killed client's kernel sends): the
    // server drops the request, whose call leaves the gate unanswered.
    abandoned.set_zero_linger().expect("SO_LINGER 0");
    drop(abandoned);
    reaches(&gate.left, 1, "were dropped by the server").await;
    let next = {
        let (url, a) = (app.mcp_url(), a.clone());
        tokio::spawn(
            async move { post_as_with(&reqwest::Client::new(), &url, &a, &hello(3)).await },
        )
    };
    // Admitted: it reached the token source, where the abandoned call was.
    gate.wait_for(2).await;
    gate.release();
    let reply = tokio::time::timeout(PATIENCE, next)
        .await
        .expect("answered")
        .expect("task");
    assert_eq!(reply.status, 200, "{}", reply.text);
}
