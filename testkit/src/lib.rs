//! Test support for mcp-obo, shared by the integration tests (`tests/`), the benches and the
//! load tool (`loadtest/`): the app in-process or as a process, the fakes (Entra token
//! endpoint and keys, Graph, IMDS, OTLP receivers, the dev sign-in), raw MCP requests, a real
//! redis-server and a fleet of replicas sharing it.
//!
//! A crate of its own so nothing includes these files by `#[path]`. It links the `mcp_obo`
//! library, so only code built against that same library may use it: integration tests,
//! benches and the load tool, never the library's own `#[cfg(test)]` unit tests.
//!
//! Where the `mcp-obo` binary is only cargo knows, and only when building one of mcp-obo's
//! own test targets (`env!("CARGO_BIN_EXE_mcp-obo")`), so [`ServerProcess`] takes the path.

pub mod dev_login;
pub mod fake_graph;
pub mod fake_imds;
pub mod fleet;
pub mod mcp_http;
pub mod obo_world;
pub mod otlp;
pub mod redirector;
pub mod redis_server;
pub mod tokens;

/// Graph's and Entra's JSON bodies, as the dev emulator serves them: every fake here builds
/// its answers from these.
pub use mcp_obo::devidp::shapes;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use mcp_obo::auth::Caller;
use mcp_obo::obo::{AccessToken, DownstreamTokens, Error as OboError};
use mcp_obo::server::{Application, Dependencies};

/// The server running in-process on its own actix system thread; stopped on drop.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The metrics listener (a port of its own on loopback, unless the test's settings
    /// serve `/metrics` on the main listener or not at all).
    pub metrics_addr: Option<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn mcp_url(&self) -> String {
        self.url("/mcp")
    }

    /// `/metrics` on the metrics listener.
    pub fn metrics_url(&self) -> String {
        let addr = self
            .metrics_addr
            .expect("the test app serves /metrics on its own listener");
        format!("http://{addr}/metrics")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the app on `127.0.0.1:0` with `env` as its whole environment (plus the bound
/// port as `server.listen`, and `/metrics` on another port 0 unless `env` says otherwise)
/// and `tokens` as its downstream token source.
pub fn spawn_app(env: &[(&str, &str)], tokens: Arc<dyn DownstreamTokens>) -> TestApp {
    spawn_with(env, move |_| Dependencies { tokens })
}

/// Starts the app with the production dependencies for its settings (the real on-behalf-of
/// exchange against whatever fakes `env` points at).
pub fn spawn_production_app(env: &[(String, String)]) -> TestApp {
    let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_with(&borrowed, |settings| {
        Dependencies::from_settings(settings).expect("production dependencies build")
    })
}

fn spawn_with(
    env: &[(&str, &str)],
    deps: impl FnOnce(&mcp_obo::settings::Settings) -> Dependencies + Send + 'static,
) -> TestApp {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a test port");
    let addr = listener.local_addr().expect("bound address");
    let mut vars: Vec<(String, String)> = vec![
        ("MCP_OBO__SERVER__LISTEN".into(), addr.to_string()),
        ("MCP_OBO__SERVER__WORKERS".into(), "1".into()),
        ("MCP_OBO__SERVER__SHUTDOWN_TIMEOUT".into(), "1s".into()),
        (
            "MCP_OBO__TELEMETRY__METRICS_LISTEN".into(),
            "127.0.0.1:0".into(),
        ),
    ];
    vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let loaded = mcp_obo::settings::load(None, &vars).expect("test configuration is valid");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let system = actix_web::rt::System::new();
        let result = system.block_on(async move {
            let deps = deps(&loaded.settings);
            let app = Application::build_on(&loaded.settings, deps, listener)?;
            let _ = ready_tx.send(Ok(app.metrics_addr()));
            app.run_until_stopped(async {
                let _ = stop_rx.await;
            })
            .await
            .map_err(mcp_obo::server::StartError::Server)
        });
        if let Err(e) = result {
            eprintln!("test app failed: {e}");
        }
    });
    let metrics_addr = ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("test app starts within 10s")
        .map_err(|e: mcp_obo::server::StartError| e)
        .expect("test app builds");
    TestApp {
        addr,
        metrics_addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// A downstream token source that hands out one fixed token, or fails like a missing
/// developer sign-in; counts what it is asked.
pub struct StaticTokens {
    token: Option<String>,
    pub issued: AtomicUsize,
    pub invalidated: AtomicUsize,
}

impl StaticTokens {
    pub fn new(token: &str) -> Arc<Self> {
        Arc::new(Self {
            token: Some(token.to_owned()),
            issued: AtomicUsize::new(0),
            invalidated: AtomicUsize::new(0),
        })
    }

    pub fn unavailable() -> Arc<Self> {
        Arc::new(Self {
            token: None,
            issued: AtomicUsize::new(0),
            invalidated: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl DownstreamTokens for StaticTokens {
    async fn token(&self, _caller: &Caller, _scopes: &[&str]) -> Result<AccessToken, OboError> {
        match &self.token {
            Some(t) => {
                self.issued.fetch_add(1, Ordering::SeqCst);
                Ok(AccessToken::new(
                    t.as_str(),
                    SystemTime::now() + Duration::from_secs(3600),
                ))
            }
            None => Err(OboError::DeveloperCredentialUnavailable {
                detail: "az not found on PATH".into(),
            }),
        }
    }

    async fn invalidate(&self, _caller: &Caller, _scopes: &[&str]) {
        self.invalidated.fetch_add(1, Ordering::SeqCst);
    }
}

/// A directory holding a fake Azure CLI (`az`) that answers `account get-access-token`
/// with `token`, checking the arguments the credential passes, and logs each call.
pub struct FakeAzCli {
    pub dir: tempfile::TempDir,
}

impl FakeAzCli {
    pub fn new(token: &str, expected_scope: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("calls.log");
        let script = format!(
            r#"#!/bin/sh
# Fake Azure CLI: only `az account get-access-token -o json --scope <scope>`.
echo "$@" >> '{log}'
if [ "$1 $2" != "account get-access-token" ]; then echo "ERROR: unexpected command: $*" >&2; exit 2; fi
scope=""
while [ $# -gt 0 ]; do
  case "$1" in --scope) scope="$2"; shift;; esac
  shift
done
if [ "$scope" != '{expected_scope}' ]; then echo "ERROR: unexpected scope $scope" >&2; exit 1; fi
exp=$(( $(date +%s) + 3600 ))
printf '{{"accessToken":"{token}","expiresOn":"2099-01-01 00:00:00.000000","expires_on":%s,"subscription":"s","tenant":"t","tokenType":"Bearer"}}\n' "$exp"
"#,
            log = log.display()
        );
        let path = dir.path().join("az");
        std::fs::write(&path, script).expect("write fake az");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("make fake az executable");
        }
        Self { dir }
    }

    /// How many times the fake CLI was run.
    pub fn calls(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("calls.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// A PATH with this directory first.
    pub fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}

/// A free loopback port (bound then released) for a child process to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

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

/// Polls `/readyz` until it answers 200 (the issuer's keys are loaded), at most 10 s.
pub async fn wait_ready(app: &TestApp) {
    poll_until_ok(&app.url("/readyz"), Duration::from_secs(10), || {
        "app never became ready".to_owned()
    })
    .await;
}

/// Polls `url` until it answers 2xx. Before each wait `not_yet` says what to report if the
/// time is up (it may panic itself, e.g. when the server process has exited).
async fn poll_until_ok(url: &str, within: Duration, mut not_yet: impl FnMut() -> String) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        let message = not_yet();
        assert!(tokio::time::Instant::now() < deadline, "{message}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Environment for `auth.mode = entra` against the test issuer.
pub fn entra_env(issuer: &tokens::TestIssuer) -> Vec<(String, String)> {
    vec![
        ("MCP_OBO__AUTH__MODE".into(), "entra".into()),
        ("MCP_OBO__ENTRA__TENANT_ID".into(), tokens::TENANT.into()),
        ("MCP_OBO__ENTRA__CLIENT_ID".into(), tokens::CLIENT_ID.into()),
        ("MCP_OBO__ENTRA__AUTHORITY_HOST".into(), issuer.base.clone()),
        (
            "MCP_OBO__SERVER__PUBLIC_URL".into(),
            "https://mcp.example.com".into(),
        ),
    ]
}

/// Environment for `auth.mode = oidc` against the test issuer's `/oidc` issuer, for the
/// resource `https://mcp.example.com/mcp` with the scope `mcp:tools`.
pub fn oidc_env(issuer: &tokens::TestIssuer) -> Vec<(String, String)> {
    vec![
        ("MCP_OBO__AUTH__MODE".into(), "oidc".into()),
        ("MCP_OBO__AUTH__ISSUER".into(), issuer.oidc_issuer()),
        (
            "MCP_OBO__AUTH__AUDIENCES".into(),
            "https://mcp.example.com/mcp".into(),
        ),
        ("MCP_OBO__AUTH__REQUIRED_SCOPES".into(), "mcp:tools".into()),
        (
            "MCP_OBO__SERVER__PUBLIC_URL".into(),
            "https://mcp.example.com".into(),
        ),
    ]
}

/// `spawn_app` with owned pairs.
pub fn spawn_app_owned(env: &[(String, String)], tokens: Arc<dyn DownstreamTokens>) -> TestApp {
    let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_app(&borrowed, tokens)
}
