//! Several `mcp-obo serve` processes (replicas) sharing one Redis as their second-level token
//! cache, against one fake Entra (which counts exchanges) and one fake Graph: a cluster in
//! miniature. Each replica is its own process, so its in-process cache and its metrics are
//! its own, as on Container Apps or AKS.

use std::path::PathBuf;

use mcp_obo::jose::SigningKey;
use serde_json::{Value, json};

use super::fake_graph::FakeGraph;
use super::mcp_http::{post_as_with, request};
use super::obo_world::Federation;
use super::tokens::{TestIssuer, USER_OID};
use super::{ServerProcess, free_port};

/// One replica and the port of its own `/metrics` listener.
pub struct Replica {
    pub process: ServerProcess,
    pub metrics_port: u16,
}

pub struct Fleet {
    pub issuer: TestIssuer,
    pub graph: FakeGraph,
    pub replicas: Vec<Replica>,
    binary: PathBuf,
    env: Vec<(String, String)>,
    client: reqwest::Client,
    _sa_key: SigningKey,
    _dir: tempfile::TempDir,
}

impl Fleet {
    /// `count` replicas of `binary` using the Redis at `redis_url` (`extra` adds settings).
    pub async fn start(
        binary: &str,
        count: usize,
        redis_url: &str,
        extra: &[(&str, &str)],
    ) -> Self {
        let Federation {
            issuer,
            graph,
            sa_key,
            dir,
            mut env,
            ..
        } = Federation::start().await;
        env.extend(
            [
                ("MCP_OBO__OBO__SHARED_CACHE__URL", redis_url),
                // The tests count exchanges, and on two cores shared by the whole suite the
                // 50ms default can be missed by scheduling alone (a miss is a bypass and
                // one more exchange); `extra` may set it back.
                ("MCP_OBO__OBO__SHARED_CACHE__TIMEOUT", "1s"),
            ]
            .iter()
            .chain(extra)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let mut fleet = Self {
            issuer,
            graph,
            replicas: Vec::new(),
            binary: PathBuf::from(binary),
            env,
            client: reqwest::Client::new(),
            _sa_key: sa_key,
            _dir: dir,
        };
        for _ in 0..count {
            fleet.add_replica().await;
        }
        fleet
    }

    /// Starts one more replica, ready (the issuer's keys loaded); returns its index.
    pub async fn add_replica(&mut self) -> usize {
        let metrics_port = free_port();
        let metrics = format!("127.0.0.1:{metrics_port}");
        let mut env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.push(("MCP_OBO__TELEMETRY__METRICS_LISTEN", &metrics));
        let process = ServerProcess::start(&self.binary, &env).await;
        process.wait_ready().await;
        self.replicas.push(Replica {
            process,
            metrics_port,
        });
        self.replicas.len() - 1
    }

    /// A user token for user `n` (its own oid, name and email).
    pub fn user(&self, n: usize) -> String {
        self.issuer.entra_token(json!({
            "oid": format!("{USER_OID}-{n}"),
            "name": format!("User {n}"),
            "preferred_username": format!("user{n}@contoso.com"),
        }))
    }

    /// HelloTool on `replica` as `token`: the tool result (asserting HTTP 200).
    pub async fn hello(&self, replica: usize, token: &str) -> Value {
        let body = request(1, "tools/call", json!({"name": "HelloTool"}));
        let url = self.replicas[replica].process.mcp_url();
        let reply = post_as_with(&self.client, &url, token, &body).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json.expect("json")["result"].clone()
    }

    /// A sample's value on `replica`'s `/metrics` (`name{labels}` as exposed); 0 if absent.
    pub async fn metric(&self, replica: usize, series: &str) -> f64 {
        let url = format!(
            "http://127.0.0.1:{}/metrics",
            self.replicas[replica].metrics_port
        );
        let text = self
            .client
            .get(&url)
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text");
        sample(&text, series)
    }

    /// The sum of one series over every replica.
    pub async fn metric_sum(&self, series: &str) -> f64 {
        let mut sum = 0.0;
        for replica in 0..self.replicas.len() {
            sum += self.metric(replica, series).await;
        }
        sum
    }
}

/// The value of `series` in a Prometheus text exposition; 0 when it is not there.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|line| line.strip_prefix(series))
        .filter_map(|rest| rest.strip_prefix(' '))
        .find_map(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}
