//! The actix-web application: routes, the middleware order, start-up and graceful shutdown.
//!
//! [`Application::build`] binds the listener and wires every component; tests call it with
//! their own [`Dependencies`] and a port-0 listener. [`Application::run_until_stopped`] takes
//! the shutdown signal as a future, so shutdown is testable.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use rmcp_actix_web::transport::CancellationToken;

use crate::auth::Authorizer;
use crate::config::{AuthMode, Settings};
use crate::graph::GraphClient;
use crate::mcp::{self, HostOriginGuard, JsonRpcErrors, MCP_PATHS, Origins, Registry};
use crate::obo::{DeveloperTokens, DownstreamTokens};
use crate::telemetry::RequestLog;
use crate::tools::HelloTool;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot listen on {addr}: {source}; is another process using the port? Set server.listen (MCP_OBO__SERVER__LISTEN) to a free address"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot initialise the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("cannot start the HTTP server: {0}")]
    Server(std::io::Error),
}

/// The parts that reach outside the process, replaceable in tests.
pub struct Dependencies {
    /// Where tools get downstream (Graph) tokens.
    pub tokens: Arc<dyn DownstreamTokens>,
}

impl Dependencies {
    /// The production choice for the configured auth mode.
    pub fn from_settings(settings: &Settings) -> Self {
        let tokens: Arc<dyn DownstreamTokens> = match settings.auth.mode {
            AuthMode::None => Arc::new(DeveloperTokens::new(settings.entra.tenant_id.as_deref())),
        };
        Self { tokens }
    }
}

/// Readiness: ready once every dependency is initialised, not ready while shutting down.
#[derive(Debug, Default)]
pub struct Readiness {
    ready: AtomicBool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}

/// A bound, not yet running server.
pub struct Application {
    server: Server,
    addr: SocketAddr,
    readiness: Arc<Readiness>,
    cancel: CancellationToken,
}

impl Application {
    /// Binds `server.listen` and builds the app.
    ///
    /// # Errors
    /// [`StartError`] when the address is taken or a client cannot be built.
    pub fn build(settings: &Settings, deps: Dependencies) -> Result<Self, StartError> {
        let addr = settings.server.listen;
        let listener =
            TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
        Self::build_on(settings, deps, listener)
    }

    /// Builds the app on an already bound listener (tests bind `127.0.0.1:0`).
    ///
    /// # Errors
    /// [`StartError`] when a client cannot be built or the listener is unusable.
    pub fn build_on(
        settings: &Settings,
        deps: Dependencies,
        listener: TcpListener,
    ) -> Result<Self, StartError> {
        let addr = listener.local_addr().map_err(StartError::Server)?;
        let graph = GraphClient::new(&settings.graph, deps.tokens)?;
        let registry = Arc::new(Registry::default().with(HelloTool::new(graph)));
        let cancel = CancellationToken::new();
        let mcp_service = mcp::mount(&settings.server, registry, cancel.clone());
        let origins = web::Data::new(Origins::from_settings(&settings.server));
        let authorizer = web::Data::new(Authorizer::new(settings.auth.mode));
        let readiness = Arc::new(Readiness::default());
        let ready_data = web::Data::from(readiness.clone());

        let mut server = HttpServer::new(move || {
            let mut app = App::new()
                .app_data(origins.clone())
                .app_data(authorizer.clone())
                .app_data(ready_data.clone())
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz));
            for path in MCP_PATHS {
                app = app.service(mcp_service.clone().scope_with_path(path));
            }
            // actix runs the last `wrap` first. Request order:
            //   1. RequestLog: one line per request, whatever happens below;
            //   2. HostOriginGuard: DNS-rebinding defence, before anything is revealed;
            //   3. Authorizer: establishes the Caller (or answers the challenge);
            //   4. JsonRpcErrors: the transport's plain-text errors as JSON-RPC bodies;
            //   then the route (MCP transport, health, metadata).
            app.wrap(from_fn(JsonRpcErrors::map))
                .wrap(from_fn(Authorizer::authorize))
                .wrap(from_fn(HostOriginGuard::check))
                .wrap(from_fn(RequestLog::log))
        })
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout.as_secs().max(1));
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.listen(listener).map_err(StartError::Server)?.run();
        readiness.set(true);
        Ok(Self {
            server,
            addr,
            readiness,
            cancel,
        })
    }

    /// The address actually bound (tests ask for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle to stop the server from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until `shutdown` completes, then stops gracefully: readiness turns false,
    /// the listener closes, in-flight requests get up to `server.shutdown_timeout`.
    ///
    /// # Errors
    /// When the HTTP server fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), std::io::Error> {
        let handle = self.server.handle();
        let server = self.server;
        let readiness = self.readiness;
        let stopper = async move {
            shutdown.await;
            readiness.set(false);
            tracing::info!("shutting down: finishing in-flight requests");
            handle.stop(true).await;
        };
        let (result, ()) = futures_util::join!(server, stopper);
        self.cancel.cancel();
        result
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    if readiness.is_ready() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "not ready"}))
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
