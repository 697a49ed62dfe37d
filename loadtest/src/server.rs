//! The server under test as a child process: `mcp-obo serve` with a clean environment, its
//! stderr drained through a pipe (as a container runtime does) and scanned for problems.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::procfs::proc_status_kb;

/// What the server wrote on stderr.
#[derive(Default)]
pub struct LogTap {
    /// Problems count only once armed (after start-up, whose warnings are expected).
    armed: AtomicBool,
    lines: AtomicU64,
    pub problems: AtomicU64,
    first_problem: Mutex<Option<String>>,
}

impl LogTap {
    pub fn first_problem(&self) -> Option<String> {
        self.first_problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

pub struct Server {
    child: Child,
    port: u16,
    pub log: Arc<LogTap>,
}

impl Server {
    pub fn spawn(binary: &Path, port: u16, env: &[(String, String)]) -> Result<Self> {
        let mut cmd = Command::new(binary);
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            // The per-user limits stay on the measured path but never bind: the load rotates
            // 1000 users at up to ~40k calls/s (above the default 10/s per user), and with
            // `auth.mode = none` all 256 connections are the one local developer (above 32).
            .env("MCP_OBO__SERVER__RATE_LIMIT", "10000/s burst 10000")
            .env("MCP_OBO__SERVER__MAX_IN_FLIGHT_PER_USER", "100000")
            // Settings in the harness's environment (e.g. MCP_OBO__SERVER__WORKERS) reach
            // every server; the harness's own settings take precedence.
            .envs(std::env::vars().filter(|(k, _)| k.starts_with("MCP_OBO__")))
            .env("MCP_OBO__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            // Servers side by side must not share the default metrics port.
            .env("MCP_OBO__TELEMETRY__METRICS_LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let log = Arc::new(LogTap::default());
        let Some(stderr) = child.stderr.take() else {
            bail!("{}: no stderr pipe", binary.display());
        };
        let tap = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                tap.lines.fetch_add(1, Ordering::Relaxed);
                let problem =
                    line.contains("WARN") || line.contains("ERROR") || line.contains("panicked");
                if problem && tap.armed.load(Ordering::Acquire) {
                    tap.problems.fetch_add(1, Ordering::Relaxed);
                    let mut first = tap
                        .first_problem
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if first.is_none() {
                        *first = Some(line);
                    }
                }
            }
        });
        Ok(Self { child, port, log })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn status_kb(&self, field: &str) -> u64 {
        proc_status_kb(self.pid(), field)
    }

    pub async fn wait_ready(&mut self) -> Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("mcp-obo exited early with {status}");
            }
            if client
                .get(self.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                // Let the drain thread read the start-up lines before arming it.
                tokio::time::sleep(Duration::from_millis(100)).await;
                self.log.armed.store(true, Ordering::Release);
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("mcp-obo never became ready (20 s)");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
