//! The Node side of the OAuth peers: the installed Node 22 and packages, one script run to
//! completion ([`run_node`], [`NodeRun`]) and the npm `oidc-provider` as a child process
//! ([`OidcProvider`]).

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// Bound on any one Node peer run (the scripts have their own, shorter, watchdogs).
const NODE_TIMEOUT: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(super) fn e2e() -> PathBuf {
    repo().join("tests/e2e")
}

pub(super) fn node() -> PathBuf {
    let node = repo().join(".tools/node22/bin/node");
    let modules = e2e().join("node_modules");
    assert!(
        node.exists()
            && modules.join("oidc-provider").exists()
            && modules.join("@modelcontextprotocol/sdk").exists()
            && modules.join("@modelcontextprotocol/inspector-cli").exists(),
        "Node 22 test peers are not installed: run scripts/setup-test-tools.sh first"
    );
    node
}

/// What one finished Node run printed.
pub(super) struct NodeRun {
    pub(super) ok: bool,
    pub(super) stdout: String,
    stderr: String,
}

impl NodeRun {
    /// The last stdout line as JSON (the scripts print exactly one).
    pub(super) fn json(&self) -> Value {
        self.stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(Value::Null)
    }

    pub(super) fn raw(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// Runs `node args...` in `cwd` to completion, killed if it outlives `NODE_TIMEOUT`.
pub(super) async fn run_node(args: Vec<String>, cwd: PathBuf) -> NodeRun {
    let node = node();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(node)
            .args(&args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start node");
        let mut stdout = child.stdout.take().expect("stdout pipe");
        let mut stderr = child.stderr.take().expect("stderr pipe");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            let _ = tx.send(s);
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        // stdout closes when the process exits; the deadline bounds a hung peer.
        let stdout = match rx.recv_timeout(NODE_TIMEOUT) {
            Ok(s) => s,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err_reader.join().unwrap_or_default();
                panic!("node {args:?} did not finish within {NODE_TIMEOUT:?}:\n{stderr}");
            }
        };
        let status = child.wait().expect("wait for node");
        let stderr = err_reader.join().unwrap_or_default();
        NodeRun {
            ok: status.success(),
            stdout,
            stderr,
        }
    })
    .await
    .expect("join")
}

/// `tests/e2e/oidc-provider-server.mjs` as a child process, killed on drop.
pub(super) struct OidcProvider {
    child: Child,
    /// The ready line: issuer, jwks_uri, token_endpoint, ...
    info: Value,
    stderr_path: PathBuf,
    _logs: tempfile::TempDir,
}

impl OidcProvider {
    /// Starts the provider on a free port for the MCP resource `resource` and the Graph
    /// resource `graph`; returns once it printed its ready line (at most 20 s).
    pub(super) fn start(resource: &str, graph: &str) -> Self {
        let logs = tempfile::tempdir().expect("temp dir");
        let stderr_path = logs.path().join("oidc-provider.stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log file");
        let mut child = Command::new(node())
            .arg(e2e().join("oidc-provider-server.mjs"))
            .args(["--port", "0", "--resource", resource, "--graph", graph])
            .current_dir(e2e())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start oidc-provider");
        let stdout = child.stdout.take().expect("stdout pipe");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(Result::ok));
            // Keep draining until the process exits.
            for _ in lines {}
        });
        let line = rx.recv_timeout(Duration::from_secs(20));
        let mut provider = Self {
            child,
            info: Value::Null,
            stderr_path,
            _logs: logs,
        };
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) => panic!("oidc-provider exited early: {}", provider.stderr()),
            Err(_) => panic!("oidc-provider not ready within 20 s: {}", provider.stderr()),
        };
        provider.info = serde_json::from_str(&line).expect("oidc-provider ready line is JSON");
        assert!(
            provider.info.get("error").is_none(),
            "oidc-provider failed: {line}\n{}",
            provider.stderr()
        );
        provider
    }

    pub(super) fn get(&self, key: &str) -> String {
        self.info[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {}", self.info))
            .to_owned()
    }

    pub(super) fn issuer(&self) -> String {
        self.get("issuer")
    }

    pub(super) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The provider's published signing keys (its discovery document's jwks_uri).
    pub(super) async fn jwks(&self) -> Arc<Mutex<Vec<Value>>> {
        let discovery: Value = reqwest::get(self.get("discovery"))
            .await
            .expect("discovery")
            .json()
            .await
            .expect("discovery JSON");
        let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
        let set: Value = reqwest::get(jwks_uri)
            .await
            .expect("jwks")
            .json()
            .await
            .expect("jwks JSON");
        let keys = set["keys"].as_array().expect("keys").clone();
        assert!(!keys.is_empty(), "the provider publishes no keys");
        Arc::new(Mutex::new(keys))
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
