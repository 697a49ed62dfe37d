//! The Rust floor, the second reference proxy: the server's own HTTP stack with nothing of
//! mcp-obo on it. actix-web (the server's version) takes the same POST `/mcp` as HelloTool,
//! reads its body and makes the one upstream request HelloTool makes, a keep-alive HTTP/1.1
//! `GET /v1.0/me` with the request's `Authorization`, through hyper-util's pooled client (as
//! the server's Graph calls do), and answers Graph's status and body. No MCP, no auth, no JSON,
//! no tokens.
//!
//! nginx says what proxying costs at best; this says what it costs on actix-web and hyper.
//! HelloTool against the floor is what mcp-obo does (MCP, token validation, the OBO cache,
//! JSON), the floor against nginx what the framework costs: the part mcp-obo cannot remove.
//!
//! It runs as a child process (this tool re-executed in the hidden [`MODE`]), so its CPU is
//! measured apart from the fakes in this process; as many workers as the server, one client
//! per worker thread, as the server's Graph client has.

use std::ffi::OsString;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, HeaderValue};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::{Context as _, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use thread_local::ThreadLocal;

use crate::nginx::server_workers;
use crate::options::Options;

/// The first argument that makes this binary the floor proxy: `floor-proxy <port>
/// <upstream host:port> <workers>`.
pub const MODE: &str = "floor-proxy";

/// Only so that a stuck upstream cannot hang a connection (wrk gives up after 5 s); the
/// server's Graph calls have a timeout too, so both pay for one timer per request.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

type Pool = Client<HttpConnector, Empty<Bytes>>;

/// What the workers share: the upstream's URL and each worker thread's pooled client.
struct Upstream {
    uri: http::Uri,
    tcp: HttpConnector,
    /// One per thread: a hyper connection's task runs on the runtime that opened it, and each
    /// actix worker is its own runtime.
    clients: ThreadLocal<Pool>,
}

impl Upstream {
    fn new(upstream: &str) -> Result<Self> {
        let uri = format!("http://{upstream}/v1.0/me")
            .parse()
            .with_context(|| format!("upstream `{upstream}` is not a host:port"))?;
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        Ok(Self {
            uri,
            tcp,
            clients: ThreadLocal::new(),
        })
    }

    fn client(&self) -> &Pool {
        self.clients.get_or(|| {
            Client::builder(TokioExecutor::new())
                // Without a timer the pool never drops idle connections.
                .pool_timer(TokioTimer::new())
                .build(self.tcp.clone())
        })
    }

    /// `GET /v1.0/me` with `authorization`: the upstream's status and whole body.
    async fn me(&self, authorization: Option<&HeaderValue>) -> Result<(StatusCode, Bytes)> {
        let mut request = http::Request::get(self.uri.clone());
        if let Some(value) = authorization {
            request = request.header(http::header::AUTHORIZATION, value.as_bytes());
        }
        let request = request.body(Empty::new()).context("the upstream request")?;
        let exchange = async {
            let response = self
                .client()
                .request(request)
                .await
                .context("GET /v1.0/me")?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await;
            Ok::<_, anyhow::Error>((status, body.context("the upstream body")?.to_bytes()))
        };
        let (status, body) = tokio::time::timeout(UPSTREAM_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow!("no upstream answer within {UPSTREAM_TIMEOUT:?}"))??;
        let status = StatusCode::from_u16(status).context("the upstream status")?;
        Ok((status, body))
    }
}

/// The one route: the body read (and dropped), the upstream's answer passed on; 502 when
/// there is none.
async fn proxy(req: HttpRequest, _body: web::Bytes, upstream: web::Data<Upstream>) -> HttpResponse {
    match upstream.me(req.headers().get(AUTHORIZATION)).await {
        Ok((status, body)) => HttpResponse::build(status)
            .content_type("application/json")
            .body(body),
        Err(e) => HttpResponse::BadGateway()
            .content_type("text/plain")
            .body(format!("{e:#}")),
    }
}

/// The floor on `listener` in front of `upstream` (`host:port`) with `workers` workers; to be
/// awaited inside an actix system.
pub fn server(
    listener: TcpListener,
    upstream: &str,
    workers: usize,
) -> Result<actix_web::dev::Server> {
    let upstream = web::Data::new(Upstream::new(upstream)?);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(upstream.clone())
            .route("/mcp", web::post().to(proxy))
    })
    .workers(workers)
    // Killed by the load tool (stopped through its handle in tests): no signal handlers.
    .disable_signals()
    .listen(listener)
    .context("listen")?
    .run();
    Ok(server)
}

/// The child process: `<port> <upstream host:port> <workers>` after [`MODE`]; serves until
/// killed.
pub fn child_main(args: impl Iterator<Item = OsString>) -> Result<()> {
    let (port, upstream, workers) = child_args(args)?;
    let listener =
        TcpListener::bind(("127.0.0.1", port)).with_context(|| format!("bind 127.0.0.1:{port}"))?;
    actix_web::rt::System::new()
        .block_on(async { server(listener, &upstream, workers)?.await.context("serve") })
}

fn child_args(args: impl Iterator<Item = OsString>) -> Result<(u16, String, usize)> {
    let args: Vec<String> = args
        .map(|a| {
            a.into_string()
                .map_err(|a| anyhow!("{MODE}: `{a:?}` is not UTF-8"))
        })
        .collect::<Result<_>>()?;
    let [port, upstream, workers] = args.as_slice() else {
        bail!("{MODE}: expected <port> <upstream host:port> <workers>, got {args:?}");
    };
    let port = port
        .parse()
        .with_context(|| format!("{MODE}: port `{port}`"))?;
    let workers = workers
        .parse::<usize>()
        .ok()
        .filter(|&w| w > 0)
        .with_context(|| format!("{MODE}: workers `{workers}` is not a count above 0"))?;
    Ok((port, upstream.clone(), workers))
}

/// The floor for this run, when the run has reference proxies (the full run, or the A/B
/// mode with `MCP_OBO_BENCH_NGINX`); unlike nginx it needs nothing installed.
pub fn for_run(opts: &Options, graph_url: &str) -> Result<Option<Floor>> {
    if !opts.reference_runs() {
        return Ok(None);
    }
    Floor::start(graph_url, server_workers()).map(Some)
}

/// The running floor: this tool's binary, re-executed.
pub struct Floor {
    child: Child,
    port: u16,
    workers: usize,
}

impl Floor {
    /// Starts the floor in front of `graph_url` (`http://host:port`) with `workers` workers
    /// and waits until it accepts connections.
    pub fn start(graph_url: &str, workers: usize) -> Result<Self> {
        let Some(upstream) = graph_url.strip_prefix("http://") else {
            bail!("the Rust floor proxies plain HTTP only, not {graph_url}");
        };
        let exe = std::env::current_exe().context("this tool's own path, to re-execute it")?;
        let port = mcp_obo_testkit::free_port();
        let child = Command::new(&exe)
            .args([MODE, &port.to_string(), upstream, &workers.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("start the Rust floor ({} {MODE})", exe.display()))?;
        let mut floor = Self {
            child,
            port,
            workers,
        };
        floor.wait_ready()?;
        Ok(floor)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("the Rust floor exited with {status} (its error is on stderr above)");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("the Rust floor does not accept connections after 10 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// One process: its threads' CPU time is the floor's.
    pub fn pids(&self) -> Vec<u32> {
        vec![self.child.id()]
    }

    pub fn workers(&self) -> usize {
        self.workers
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests;
