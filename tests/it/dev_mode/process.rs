//! [`DevProcess`]: `mcp-obo dev` as a child process, ready when its `/readyz` answers.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `mcp-obo dev` as a child process on four free loopback ports, with its own state folder;
/// killed on drop. Its stdout (the banner) and stderr (logs) go to files.
pub(crate) struct DevProcess {
    child: Child,
    pub(super) port: u16,
    pub(super) idp_port: u16,
    pub(super) graph_port: u16,
    pub(super) metrics_port: u16,
    logs: tempfile::TempDir,
    state: tempfile::TempDir,
}

impl DevProcess {
    /// Starts it and waits until `/readyz` answers 200 (the dev provider's keys are loaded).
    /// A port taken between choosing and binding it gets one more try with new ports.
    pub(crate) async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// [`DevProcess::start`] with more arguments of `mcp-obo dev` (e.g. `--user`).
    pub(crate) async fn start_with(args: &[&str]) -> Self {
        for attempt in 1..=3 {
            match Self::try_start(args).await {
                Ok(dev) => return dev,
                Err(stderr) if attempt < 3 && stderr.contains("cannot listen on") => continue,
                Err(stderr) => panic!("mcp-obo dev did not start: {stderr}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    async fn try_start(args: &[&str]) -> Result<Self, String> {
        let (port, idp_port, graph_port, metrics_port) = (
            crate::support::free_port(),
            crate::support::free_port(),
            crate::support::free_port(),
            crate::support::free_port(),
        );
        let logs = tempfile::tempdir().expect("temp dir");
        let state = tempfile::tempdir().expect("temp dir");
        let stdout = std::fs::File::create(logs.path().join("stdout.log")).expect("stdout file");
        let stderr = std::fs::File::create(logs.path().join("stderr.log")).expect("stderr file");
        let child = Command::new(crate::support::binary())
            .arg("dev")
            .args(["--port", &port.to_string()])
            .args(["--idp-port", &idp_port.to_string()])
            .args(["--graph-port", &graph_port.to_string()])
            .args(["--metrics-port", &metrics_port.to_string()])
            .arg("--state-dir")
            .arg(state.path())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("MCP_OBO__SERVER__WORKERS", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start mcp-obo dev");
        let mut dev = Self {
            child,
            port,
            idp_port,
            graph_port,
            metrics_port,
            logs,
            state,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let url = dev.url("/readyz");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = dev.child.try_wait() {
                return Err(format!("exited with {status}: {}", dev.stderr()));
            }
            if http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(dev);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("not ready within 30 s: {}", dev.stderr()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The state folder (keys, the federated token, doctor.toml and the operator's Graph
    /// token).
    pub(crate) fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// The `/metrics` URL on its own loopback listener.
    pub(crate) fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A URL of the development identity provider.
    pub(crate) fn idp_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.idp_port)
    }

    /// A URL of the Graph emulator.
    pub(crate) fn graph_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.graph_port)
    }

    pub(crate) fn mcp_url(&self) -> String {
        self.url("/mcp")
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("stdout.log")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("stderr.log")).unwrap_or_default()
    }

    /// The banner, once it is complete (it ends with the VS Code entry's closing brace).
    pub(crate) async fn banner(&self) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.stdout();
            if out.contains("VS Code") && out.trim_end().ends_with('}') {
                return out;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no complete banner within 10 s; stdout: {out}\nstderr: {}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Server logs, for failure messages.
    pub(crate) fn logs(&self) -> String {
        format!("mcp-obo dev stderr:\n{}", self.stderr())
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
