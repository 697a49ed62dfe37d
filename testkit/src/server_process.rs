//! The `mcp-obo` binary as a child process: [`ServerProcess`].

use std::path::Path;
use std::time::Duration;

use crate::{free_port, poll_until_ok};

/// A running `mcp-obo serve` child process, killed on drop.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub port: u16,
    pub stderr_path: std::path::PathBuf,
    _logs: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `binary` (`mcp-obo`) with `env` (on top of a clean environment with PATH) and
    /// waits until `/healthz` answers.
    pub async fn start(binary: impl AsRef<Path>, env: &[(&str, &str)]) -> Self {
        Self::start_on(binary, free_port(), env).await
    }

    /// `start` on a port chosen beforehand (e.g. one an authorization server was told the
    /// MCP resource URL of).
    pub async fn start_on(binary: impl AsRef<Path>, port: u16, env: &[(&str, &str)]) -> Self {
        let listen = format!("127.0.0.1:{port}");
        let mut with_defaults = vec![
            ("MCP_OBO__SERVER__LISTEN", listen.as_str()),
            ("MCP_OBO__SERVER__WORKERS", "1"),
            // Parallel servers must not share the default metrics port.
            ("MCP_OBO__TELEMETRY__METRICS_LISTEN", "127.0.0.1:0"),
        ];
        with_defaults.extend_from_slice(env);
        Self::start_exact(binary, port, &with_defaults).await
    }

    /// Starts the binary with exactly `env` (plus PATH and HOME): nothing chooses its listen
    /// address for it, so `env` must make it listen on `port` (e.g. through
    /// `FUNCTIONS_CUSTOMHANDLER_PORT`), where it is then awaited healthy.
    pub async fn start_exact(binary: impl AsRef<Path>, port: u16, env: &[(&str, &str)]) -> Self {
        let logs = tempfile::tempdir().expect("temp dir");
        let stderr_path = logs.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log file");
        let mut cmd = std::process::Command::new(binary.as_ref());
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .stdout(std::process::Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start mcp-obo");
        let mut server = Self {
            child,
            port,
            stderr_path,
            _logs: logs,
        };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&mut self) {
        let url = format!("http://127.0.0.1:{}/healthz", self.port);
        poll_until_ok(&url, Duration::from_secs(20), || {
            match self.child.try_wait() {
                Ok(Some(status)) => panic!("mcp-obo exited early with {status}: {}", self.stderr()),
                _ => format!("mcp-obo did not become healthy: {}", self.stderr()),
            }
        })
        .await;
    }

    pub fn mcp_url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// Polls `/readyz` until 200 (issuer keys loaded), at most 20 s.
    pub async fn wait_ready(&self) {
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        poll_until_ok(&url, Duration::from_secs(20), || {
            format!("never ready: {}", self.stderr())
        })
        .await;
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends SIGTERM, as a platform stops a replica.
    pub fn sigterm(&self) {
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
    }

    /// SIGTERM, then waits for the process to exit, which must be a clean exit (it flushes
    /// its telemetry on the way out). Gives the stopped process back, for its stderr.
    pub async fn terminate(mut self) -> Self {
        self.sigterm();
        let (status, server) = tokio::task::spawn_blocking(move || {
            let status = self.child.wait();
            (status, self)
        })
        .await
        .expect("join");
        let status = status.expect("wait");
        assert!(
            status.success(),
            "exit after SIGTERM: {status}: {}",
            server.stderr()
        );
        server
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
