//! The server in-process: [`TestApp`] on its own actix system thread, started by
//! [`spawn_app`] and its variants, and [`wait_ready`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mcp_obo::obo::DownstreamTokens;
use mcp_obo::server::{Application, Dependencies};

use crate::poll_until_ok;

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

/// `spawn_app` with owned pairs.
pub fn spawn_app_owned(env: &[(String, String)], tokens: Arc<dyn DownstreamTokens>) -> TestApp {
    let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_app(&borrowed, tokens)
}

/// Polls `/readyz` until it answers 200 (the issuer's keys are loaded), at most 10 s.
pub async fn wait_ready(app: &TestApp) {
    poll_until_ok(&app.url("/readyz"), Duration::from_secs(10), || {
        "app never became ready".to_owned()
    })
    .await;
}
