//! The reference proxy HelloTool is measured against: nginx taking the same POST `/mcp` as
//! HelloTool (load.lua's `proxy` mode sends HelloTool's headers and body) and making the one
//! upstream request HelloTool makes, a keep-alive HTTP/1.1 `GET /v1.0/me` to the fake Graph
//! with the request's bearer token, and nothing else: no JSON, no token work. What is left
//! between the two rows is what mcp-obo does beyond proxying.
//!
//! As many worker processes as the server has workers, on the same (unpinned) CPUs; config,
//! pid file, error log and temp paths in a temporary prefix directory.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::options::Options;
use crate::procfs::children;

/// What is printed when nginx is not on PATH.
pub const MISSING: &str = "nginx not found: the nginx reference run is skipped (install it with `apt-get install nginx-light`; scripts/bench.sh does)";

/// Whether `nginx` is on PATH.
pub fn installed() -> bool {
    version().is_some()
}

/// `nginx/1.22.1` (from `nginx -v`, which prints on stderr), or `None` when nginx is not on
/// PATH.
pub fn version() -> Option<String> {
    let out = Command::new("nginx").arg("-v").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    Some(text.trim().rsplit(' ').next()?.to_owned())
}

/// mcp-obo's HTTP workers under this tool: `MCP_OBO__SERVER__WORKERS` when set above 0 (it
/// reaches every server the tool starts), else one per core, actix's default.
pub fn server_workers() -> usize {
    std::env::var("MCP_OBO__SERVER__WORKERS")
        .ok()
        .and_then(|w| w.trim().parse::<usize>().ok())
        .filter(|&w| w > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// The reference proxy for this run, if it has reference proxies (the full run, or the A/B
/// mode with `MCP_OBO_BENCH_NGINX`) and nginx is installed; otherwise `None`, with [`MISSING`]
/// printed when that is why.
pub fn for_run(opts: &Options, graph_url: &str) -> Result<Option<Nginx>> {
    if !opts.reference_runs() {
        return Ok(None);
    }
    if !installed() {
        eprintln!("{MISSING}");
        return Ok(None);
    }
    let most = opts.connections.iter().copied().max().unwrap_or(64);
    Nginx::start(graph_url, server_workers(), most).map(Some)
}

/// nginx.conf for a proxy on `port` to `upstream` (`host:port`) for up to `connections`
/// clients, everything it writes under `prefix`. Each worker keeps as many idle upstream
/// connections as there can be clients, as mcp-obo's Graph pool keeps every idle connection
/// (hyper's default), and has room for a client and an upstream connection per client.
fn config(prefix: &Path, port: u16, upstream: &str, workers: usize, connections: u32) -> String {
    let p = prefix.display();
    let idle = connections.max(64);
    let worker_connections = (2 * idle + 64).max(1024);
    format!(
        r#"daemon off;
master_process on;
worker_processes {workers};
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{
    worker_connections {worker_connections};
}}
http {{
    access_log off;
    # wrk's connections stay open for the whole run, as they do against mcp-obo (the default
    # closes a client connection after 1000 requests).
    keepalive_requests 1000000;
    client_body_temp_path {p}/client_body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    upstream graph {{
        server {upstream};
        keepalive {idle};
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location = /mcp {{
            proxy_pass http://graph/v1.0/me;
            proxy_method GET;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Connection "";
            proxy_http_version 1.1;
        }}
    }}
}}
"#
    )
}

/// A running nginx: the master (a child of this process) and its workers.
pub struct Nginx {
    child: Child,
    port: u16,
    prefix: tempfile::TempDir,
    workers: Vec<u32>,
}

impl Nginx {
    /// Starts nginx in front of `graph_url` (`http://host:port`) for up to `connections`
    /// clients and waits until it accepts connections and all `workers` have started.
    pub fn start(graph_url: &str, workers: usize, connections: u32) -> Result<Self> {
        let Some(upstream) = graph_url.strip_prefix("http://") else {
            bail!("the nginx reference proxies plain HTTP only, not {graph_url}");
        };
        let prefix = tempfile::tempdir().context("nginx prefix dir")?;
        // As root, nginx runs its workers as `nobody`: they must reach their temp paths.
        std::fs::set_permissions(prefix.path(), std::fs::Permissions::from_mode(0o755))
            .context("nginx prefix dir permissions")?;
        let port = mcp_obo_testkit::free_port();
        let conf = prefix.path().join("nginx.conf");
        std::fs::write(
            &conf,
            config(prefix.path(), port, upstream, workers, connections),
        )
        .context("write nginx.conf")?;
        let child = Command::new("nginx")
            .args(prefix_args(prefix.path()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start nginx")?;
        let mut nginx = Self {
            child,
            port,
            prefix,
            workers: Vec::new(),
        };
        nginx.wait_ready(workers)?;
        Ok(nginx)
    }

    fn wait_ready(&mut self, workers: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("nginx exited with {status}: {}", self.error_log());
            }
            let accepts = TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            self.workers = children(self.child.id());
            if accepts && self.workers.len() >= workers {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "nginx not ready after 10 s ({} of {workers} workers): {}",
                    self.workers.len(),
                    self.error_log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.path().join("error.log"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The master and its workers: their CPU time is the proxy's.
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(self.child.id())
            .chain(self.workers.iter().copied())
            .collect()
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }
}

/// `-p`, `-c` and `-e`: the prefix, its nginx.conf, and its error log from the first message
/// on (before the config is read, nginx would log to its built-in path).
fn prefix_args(prefix: &Path) -> Vec<String> {
    let p = prefix.display();
    vec![
        "-p".into(),
        format!("{p}/"),
        "-c".into(),
        format!("{p}/nginx.conf"),
        "-e".into(),
        format!("{p}/error.log"),
    ]
}

impl Drop for Nginx {
    /// A fast shutdown through the master, so that no worker outlives it; SIGKILL if that
    /// does not end it within 5 s.
    fn drop(&mut self) {
        let _ = Command::new("nginx")
            .args(prefix_args(self.prefix.path()))
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        for pid in &self.workers {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests;
