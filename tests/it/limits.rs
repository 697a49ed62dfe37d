//! What a valid token cannot buy: a body trickled past `server.body_timeout` (408), more than
//! `server.max_in_flight_per_user` requests at once, or `tools/call`s past `server.rate_limit`
//! (429 with `Retry-After`), each with a JSON-RPC error body and counted in `/metrics`; other
//! users are served meanwhile. Each case runs through every reader of the body: the rate
//! limit's peek, the fast path and rmcp.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use mcp_obo::auth::Caller;
use mcp_obo::obo::{AccessToken, DownstreamTokens, Error as OboError};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, watch};

use crate::support::fake_graph::FakeGraph;
use crate::support::mcp_http::{Reply, post_as_with, request};
use crate::support::tokens::TestIssuer;
use crate::support::{StaticTokens, TestApp, entra_env, spawn_app, spawn_app_owned, wait_ready};

const GRAPH_TOKEN: &str = "graph-token-for-ada";
/// Bounds every wait on the server, so a missing answer fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(20);

/// Which part of the server reads the body first.
#[derive(Debug, Clone, Copy)]
enum Reader {
    /// The rate limit's peek (`mcp/tool_access.rs`), on by default.
    Peek,
    /// The stateless fast path (`mcp/direct.rs`), with the rate limit off.
    FastPath,
    /// rmcp's transport, with the rate limit and the fast path off.
    Rmcp,
}

impl Reader {
    fn env(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Self::Peek => vec![],
            Self::FastPath => vec![("MCP_OBO__SERVER__RATE_LIMIT", "off")],
            Self::Rmcp => vec![
                ("MCP_OBO__SERVER__RATE_LIMIT", "off"),
                ("MCP_OBO__SERVER__FAST_PATH", "false"),
            ],
        }
    }
}

/// `mcp_obo_mcp_limited_requests_total{limit}` as this process's server counts it.
fn limited(limit: &str) -> u64 {
    let prefix = format!("mcp_obo_mcp_limited_requests_total{{limit=\"{limit}\"}} ");
    mcp_obo::telemetry::metrics::render()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
        .unwrap_or(0)
}

/// A raw MCP POST head for `app` announcing `length` body bytes, with `extra` header lines.
fn head(app: &TestApp, length: usize, extra: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\n\
         Content-Length: {length}\r\n{extra}\r\n",
        app.addr
    )
}

/// The status, the lower-cased head and the JSON body of a raw HTTP/1.1 answer.
fn parse_answer(raw: &[u8]) -> (u16, String, Value) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let head = head.to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (
        status,
        head,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

/// A chunked body's data.
fn dechunk(mut rest: &str) -> String {
    let mut data = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        data.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    data
}

#[rstest::rstest]
#[tokio::test]
async fn a_body_sent_too_slowly_gets_408_and_its_connection_is_closed(
    #[values(Reader::Peek, Reader::FastPath, Reader::Rmcp)] reader: Reader,
    #[values(false, true)] trickle: bool,
) {
    let mut env = reader.env();
    env.push(("MCP_OBO__SERVER__BODY_TIMEOUT", "200ms"));
    let app = spawn_app(&env, StaticTokens::new(GRAPH_TOKEN));
    let before = limited("body_timeout");
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"HelloTool"}}"#;
    let announced = body.len() + 1000;
    let stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(format!("{}{}", head(&app, announced, ""), &body[..20]).as_bytes())
        .await
        .expect("send the head and part of the body");
    // The client never completes the body; trickling, it keeps bytes coming (JSON whitespace,
    // one every 50 ms) as a slow-loris client does.
    let trickler = tokio::spawn(async move {
        for _ in 0..announced {
            if !trickle || write.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        write
    });
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, read.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes the connection instead of waiting for the body")
        .expect("read the answer");
    trickler.abort();
    let (status, head, body) = parse_answer(&answer);
    assert_eq!(status, 408, "{}", String::from_utf8_lossy(&answer));
    assert!(head.contains("connection: close"), "{head}");
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["error"]["code"], -32600, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("server.body_timeout")),
        "{body}"
    );
    assert!(limited("body_timeout") > before, "counted in /metrics");
}

#[rstest::rstest]
#[tokio::test]
async fn a_body_that_arrives_in_parts_within_the_deadline_is_served(
    #[values(Reader::Peek, Reader::FastPath, Reader::Rmcp)] reader: Reader,
) {
    let graph = FakeGraph::with_ada(GRAPH_TOKEN).await;
    let mut env = reader.env();
    env.extend([
        ("MCP_OBO__SERVER__BODY_TIMEOUT", "5s"),
        ("MCP_OBO__GRAPH__BASE_URL", graph.url.as_str()),
    ]);
    let app = spawn_app(&env, StaticTokens::new(GRAPH_TOKEN));
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"HelloTool"}}"#;
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    // The head alone, asking to continue: actix answers `100 Continue` once it has dispatched
    // the request, whose readers are then waiting for a body that has not been sent.
    let head = head(
        &app,
        body.len(),
        "Connection: close\r\nExpect: 100-continue\r\n",
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send the head");
    let mut interim = [0u8; 25];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut interim))
        .await
        .expect("the server answers the head")
        .expect("read the interim answer");
    assert_eq!(
        &interim,
        b"HTTP/1.1 100 Continue\r\n\r\n",
        "{}",
        String::from_utf8_lossy(&interim)
    );
    let (first, rest) = body.split_at(20);
    for part in [first, rest] {
        stream
            .write_all(part.as_bytes())
            .await
            .expect("send a part of the body");
    }
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the server answers")
        .expect("read the answer");
    let (status, _, body) = parse_answer(&answer);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(body["id"], 7, "{body}");
    assert_eq!(body["result"]["isError"], false, "{body}");
}

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

/// An Entra-mode app with Graph knowing [`GRAPH_TOKEN`], and the tokens of two users.
struct Users {
    app: TestApp,
    /// The tokens of `user-a` and `user-b`.
    a: String,
    b: String,
    _issuer: TestIssuer,
    _graph: FakeGraph,
}

async fn entra_app(tokens: Arc<dyn DownstreamTokens>, extra: &[(&str, &str)]) -> Users {
    let issuer = TestIssuer::start().await;
    let graph = FakeGraph::with_ada(GRAPH_TOKEN).await;
    let mut env = entra_env(&issuer);
    env.push(("MCP_OBO__GRAPH__BASE_URL".into(), graph.url.clone()));
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let app = spawn_app_owned(&env, tokens);
    wait_ready(&app).await;
    Users {
        app,
        a: issuer.entra_token(json!({"oid": "user-a"})),
        b: issuer.entra_token(json!({"oid": "user-b"})),
        _issuer: issuer,
        _graph: graph,
    }
}

fn hello(id: u64) -> Value {
    request(id, "tools/call", json!({"name": "HelloTool"}))
}

/// Asserts a 429 with `Retry-After` of 1 to `max` seconds and a JSON-RPC error for `id`.
fn assert_too_many(reply: &Reply, id: &Value, max: u64) {
    assert_eq!(reply.status, 429, "{}", reply.text);
    let retry: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After in seconds: {:?}", reply.headers));
    assert!((1..=max).contains(&retry), "Retry-After {retry}");
    let body = reply.json.as_ref().expect("a JSON-RPC error body");
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(&body["id"], id, "{body}");
    assert_eq!(body["error"]["code"], -32000, "{body}");
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

#[rstest::rstest]
#[tokio::test]
async fn tool_calls_past_the_burst_get_429_with_retry_after_and_other_users_and_methods_are_not_limited(
    #[values("true", "false")] fast_path: &str,
) {
    let Users { app, a, b, .. } = entra_app(
        StaticTokens::new(GRAPH_TOKEN),
        &[
            ("MCP_OBO__SERVER__RATE_LIMIT", "1/h burst 3"),
            ("MCP_OBO__SERVER__FAST_PATH", fast_path),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let url = app.mcp_url();
    let list = request(1, "tools/list", json!({}));
    for _ in 0..5 {
        let reply = post_as_with(&client, &url, &a, &list).await;
        assert_eq!(
            reply.status, 200,
            "tools/list does not count: {}",
            reply.text
        );
    }
    for id in 1..=3 {
        let reply = post_as_with(&client, &url, &a, &hello(id)).await;
        assert_eq!(
            reply.status, 200,
            "call {id} is within the burst: {}",
            reply.text
        );
    }
    let before = limited("rate");
    let over = post_as_with(&client, &url, &a, &hello(4)).await;
    assert_too_many(&over, &json!(4), 3600);
    assert!(limited("rate") > before, "counted in /metrics");

    let other = post_as_with(&client, &url, &b, &hello(1)).await;
    assert_eq!(
        other.status, 200,
        "another user has a bucket of their own: {}",
        other.text
    );
    let listed = post_as_with(&client, &url, &a, &list).await;
    assert_eq!(
        listed.status, 200,
        "tools/list is still served: {}",
        listed.text
    );
}
