//! A real `redis-server` (Debian's package, installed by scripts/setup-test-tools.sh) on a
//! free loopback port: started, awaited until it says it accepts connections and answers
//! PING, killed and restarted on the same port, killed on drop. Nothing is persisted.
//!
//! Also a three-node Redis Cluster on loopback ([`RedisCluster`]).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redis::AsyncCommands;

/// What redis-server prints once it listens.
const READY: &str = "Ready to accept connections";

/// One redis-server process.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    extra: Vec<String>,
    /// The default user's password, when the server requires one (the test's own client
    /// uses it; the server under test gets its own credentials).
    password: Option<String>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// A plain redis-server on a free port.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// With extra arguments (`--cluster-enabled yes`, ...), run in a directory of its own.
    pub async fn start_with(extra: &[&str]) -> Self {
        Self::start_inner(extra, None).await
    }

    /// The default user requires `password` (`extra` may add ACL users).
    pub async fn start_protected(password: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--requirepass", password];
        args.extend_from_slice(extra);
        Self::start_inner(&args, Some(password.to_owned())).await
    }

    async fn start_inner(extra: &[&str], password: Option<String>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        // A port found free may be taken before redis binds it: try a few.
        for _ in 0..5 {
            let port = cluster_safe_port();
            if let Some(child) = spawn(port, &extra, dir.path()) {
                let server = Self {
                    child: Some(child),
                    port,
                    extra,
                    password,
                    dir,
                };
                server.ping().await;
                return server;
            }
        }
        panic!(
            "redis-server did not start on any of 5 free ports (is it installed? scripts/setup-test-tools.sh installs it)"
        );
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, as a crashed or restarted Redis: every entry is gone with it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: connections are still accepted (by the kernel) but nothing is answered,
    /// as with a Redis that hangs or a network that drops packets. [`Self::resume`] undoes it.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("redis-server is running");
        let sent = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
    }

    /// Starts it again on the same port (empty) and waits until it answers.
    pub async fn restart(&mut self) {
        self.kill();
        let child = spawn(self.port, &self.extra, self.dir.path())
            .expect("redis-server restarts on its port");
        self.child = Some(child);
        self.ping().await;
    }

    /// A client connection (for tests reading or altering what the server wrote).
    pub async fn client(&self) -> redis::aio::MultiplexedConnection {
        let url = match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => self.url(),
        };
        redis::Client::open(url)
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis")
    }

    async fn ping(&self) {
        let pong: String = redis::cmd("PING")
            .query_async(&mut self.client().await)
            .await
            .expect("PING");
        assert_eq!(pong, "PONG");
    }

    /// Every key and its value (strings only: all the shared cache writes).
    pub async fn dump(&self) -> Vec<(String, Vec<u8>)> {
        let mut con = self.client().await;
        let keys: Vec<String> = {
            let mut iter: redis::AsyncIter<String> = con.scan().await.expect("SCAN");
            let mut keys = Vec::new();
            while let Some(key) = iter.next_item().await {
                keys.push(key.expect("a key"));
            }
            keys
        };
        let mut out = Vec::new();
        for key in keys {
            let value: Option<Vec<u8>> = con.get(&key).await.expect("GET");
            out.push((key, value.unwrap_or_default()));
        }
        out
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts redis-server on `port` and waits for its ready line; `None` if it exited first
/// (the port was taken).
fn spawn(port: u16, extra: &[String], dir: &std::path::Path) -> Option<Child> {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--logfile", ""])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server runs (scripts/setup-test-tools.sh installs Debian's redis-server)");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains(READY));
    if !ready {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    // Keep reading its log, so a full pipe never blocks it.
    std::thread::spawn(move || lines.for_each(drop));
    Some(child)
}

/// A free port whose cluster bus port (+10000) is a valid port too.
fn cluster_safe_port() -> u16 {
    loop {
        let port = crate::free_port();
        if port < 55_000 {
            return port;
        }
    }
}

/// Three redis-server nodes joined into one cluster (no replicas), every slot assigned.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub async fn start() -> Self {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "5000",
                ])
                .await,
            );
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(created.success(), "redis-cli --cluster create failed");
        let cluster = Self { nodes };
        cluster.wait_ok().await;
        cluster
    }

    /// The URL of one node; a cluster client discovers the others.
    pub fn url(&self) -> String {
        self.nodes[0].url()
    }

    /// Waits until every node reports the cluster's state as ok (the nodes agree on the
    /// slots), at most 20 s.
    async fn wait_ok(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        for node in &self.nodes {
            let mut con = node.client().await;
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut con)
                    .await
                    .expect("CLUSTER INFO");
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the cluster never became ok: {info}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Every key and value across the nodes.
    pub async fn dump(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for node in &self.nodes {
            out.extend(node.dump().await);
        }
        out
    }
}
