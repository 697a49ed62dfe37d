//! The actix-web application: routes, start-up and graceful shutdown.
//!
//! [`Application::build`] binds the listener and wires every component; tests call it with
//! their own [`Dependencies`] and a port-0 listener. [`Application::run_until_stopped`] takes
//! the shutdown signal as a future, so shutdown is testable.
//!
//! This is the composition root: with `crate::settings`, which loads it, it alone holds the
//! whole [`Settings`] and hands each module its own section (plus what that module needs
//! from another, passed explicitly); `mcp/` gets plain values, not a section.
//!
//! - `mcp_scope.rs`: the MCP route scope, and the one statement of its layers' order;
//! - `health.rs`: `/healthz` and `/readyz` ([`Readiness`]);
//! - `keys.rs`: the issuer's keys, fetched at start-up and refreshed;
//! - `metrics_listener.rs`: `/metrics` on its own listener;
//! - `signals.rs`: [`shutdown_signal`] (SIGTERM, Ctrl-C);
//! - `consent.rs`: the page a user's consent returns to.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use opentelemetry_instrumentation_actix_web::RequestTracing;
use rmcp_actix_web::transport::{CancellationToken, LocalSessionManager, StreamableHttpService};

use crate::auth::{AuthMode, Authorizer, JwksCache, ResourceMetadata};
use crate::graph::GraphClient;
use crate::mcp::{self, MCP_PATHS, McpServer, Registry};
use crate::obo::{DeveloperTokens, DownstreamTokens};
use crate::settings::Settings;
use crate::telemetry::RequestLog;
use mcp_scope::{McpLayers, mcp_scope};

mod consent;
mod health;
mod keys;
mod mcp_scope;
mod metrics_listener;
mod signals;

pub use health::Readiness;
pub use signals::shutdown_signal;

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
    #[error(
        "cannot listen on {addr} for /metrics: {source}; is another process using the port? Set telemetry.metrics_listen (MCP_OBO__TELEMETRY__METRICS_LISTEN) to a free address, or telemetry.metrics = false"
    )]
    MetricsBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot initialise the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error(transparent)]
    Tls(#[from] crate::outbound::TlsError),
    #[error(transparent)]
    GraphClient(#[from] crate::graph::BuildError),
    #[error("cannot start the HTTP server: {0}")]
    Server(std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// The parts that reach outside the process, replaceable in tests.
pub struct Dependencies {
    /// Where tools get downstream (Graph) tokens.
    pub tokens: Arc<dyn DownstreamTokens>,
}

impl Dependencies {
    /// The production choice for the configured auth mode: developer credentials without
    /// inbound authorization, the on-behalf-of exchange with it.
    ///
    /// # Errors
    /// When the on-behalf-of client assertion cannot be set up.
    pub fn from_settings(settings: &Settings) -> Result<Self, StartError> {
        let tokens: Arc<dyn DownstreamTokens> = match settings.auth.mode {
            AuthMode::None => Arc::new(DeveloperTokens::new(settings.entra.developer_tenant())),
            AuthMode::Entra | AuthMode::Oidc | AuthMode::EasyAuth => crate::obo::from_settings(
                &settings.obo,
                &settings.entra.exchange_app(),
                &settings.server.public_url,
            )
            .map_err(|e| StartError::Config(e.to_string()))?,
        };
        Ok(Self { tokens })
    }
}

/// A bound, not yet running server.
pub struct Application {
    server: Server,
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
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
        let cancel = CancellationToken::new();
        let graph = GraphClient::new(&settings.graph, deps.tokens)?;
        let registry = Arc::new(registry(settings, &graph)?);
        let jwks = keys::issuer_keys(&settings.auth, &settings.entra)?;
        if let Some(jwks) = &jwks {
            let interval = settings.auth.jwks_refresh_interval;
            keys::spawn_key_refresh(jwks.clone(), interval, cancel.clone());
        }
        let (authorizer, metadata) = authorizer(settings, &registry, jwks.clone());
        let sessions = mcp::RmcpSessions::default();
        let layers = McpLayers::new(
            &settings.server,
            &registry,
            authorizer,
            sessions.clone(),
            &cancel,
        );
        let readiness = Arc::new(Readiness::new(jwks.clone()));
        let routes = Routes {
            mcp: mcp::mount(
                settings.server.sessions,
                settings.server.max_body_bytes,
                registry,
                sessions,
                cancel.clone(),
            ),
            layers,
            readiness: web::Data::from(readiness.clone()),
            metadata: web::Data::from(metadata),
            serve_metadata: jwks.is_some(),
            request_log: web::Data::new(RequestLog::new(settings.log.requests)),
            consent_page: web::Data::new(consent::Page::new(settings.obo.failure_cache_ttl)),
            metrics_here: settings.telemetry.metrics && settings.telemetry.metrics_listen.is_none(),
            tracing_on: settings.telemetry.otlp_traces_endpoint.is_some(),
        };
        let metrics_addr = match (
            settings.telemetry.metrics,
            settings.telemetry.metrics_listen,
        ) {
            (true, Some(addr)) => Some(metrics_listener::spawn_metrics_listener(addr)?),
            _ => None,
        };
        let server = http_server(settings, routes, listener)?;
        readiness.set_serving(true);
        Ok(Self {
            server,
            addr,
            metrics_addr,
            readiness,
            cancel,
        })
    }

    /// The address actually bound (tests ask for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address `/metrics` is served on when it has its own listener (tests ask for
    /// port 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
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
            readiness.set_serving(false);
            tracing::info!("shutting down: finishing in-flight requests");
            handle.stop(true).await;
        };
        let (result, ()) = futures_util::join!(server, stopper);
        self.cancel.cancel();
        result
    }
}

/// The tools with their configured scopes; their names label the metrics from the start.
fn registry(settings: &Settings, graph: &GraphClient) -> Result<Registry, StartError> {
    let registry = Registry::default()
        .with_all(crate::tools::all(graph)?)
        .with_policy(&settings.auth.tool_scopes, &settings.auth.scope_implies);
    let tool_names: Vec<String> = registry
        .requirements()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    crate::telemetry::metrics::init_known_labels(
        &tool_names.iter().map(String::as_str).collect::<Vec<_>>(),
        &crate::auth::Error::reasons(),
    );
    Ok(registry)
}

/// The authorizer of the MCP routes and the protected resource metadata it points clients
/// to, which lists the tools' scopes.
fn authorizer(
    settings: &Settings,
    registry: &Registry,
    jwks: Option<Arc<JwksCache>>,
) -> (Authorizer, Arc<ResourceMetadata>) {
    let tool_scopes: Vec<String> = registry
        .requirements()
        .into_iter()
        .flat_map(|(_, s)| s)
        .collect();
    let metadata = Arc::new(ResourceMetadata::from_settings(
        &settings.auth,
        &settings.entra,
        &settings.server.public_url,
        settings.server.forwarding_proxies(),
        &tool_scopes,
    ));
    let authorizer = Authorizer::new(&settings.auth, &settings.entra, metadata.clone(), jwks);
    (authorizer, metadata)
}

/// The HTTP server on `listener`, running each worker's [`app`]; signals are ours to handle
/// ([`Application::run_until_stopped`]).
fn http_server(
    settings: &Settings,
    routes: Routes,
    listener: TcpListener,
) -> Result<Server, StartError> {
    let mut server = HttpServer::new(move || app(routes.clone()))
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout.as_secs().max(1));
    if settings.server.workers > 0 {
        server = server.workers(settings.server.workers);
    }
    Ok(server.listen(listener).map_err(StartError::Server)?.run())
}

/// Everything the routes need, cloned into each worker.
#[derive(Clone)]
struct Routes {
    mcp: StreamableHttpService<McpServer, LocalSessionManager>,
    layers: McpLayers,
    readiness: web::Data<Readiness>,
    metadata: web::Data<ResourceMetadata>,
    /// The token modes publish their protected resource metadata (RFC 9728).
    serve_metadata: bool,
    request_log: web::Data<RequestLog>,
    consent_page: web::Data<consent::Page>,
    /// `/metrics` on the main listener (no `telemetry.metrics_listen` of its own).
    metrics_here: bool,
    tracing_on: bool,
}

/// One worker's app: the route table, the MCP scopes (`mcp_scope.rs`), and around every
/// route the HTTP server span (when exporting traces), parented to an incoming
/// `traceparent`, then a log line per request (or failed one). RequestTracing records
/// `url.query`, so it never sees the query (telemetry/query.rs hides it before the span and
/// restores it after).
fn app(
    routes: Routes,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let mut app = App::new()
        .app_data(routes.readiness.clone())
        .app_data(routes.request_log.clone())
        .app_data(routes.metadata.clone())
        .app_data(routes.consent_page.clone())
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/consent/complete", web::get().to(consent::complete));
    if routes.metrics_here {
        app = app.route(
            "/metrics",
            web::get().to(crate::telemetry::metrics::handler),
        );
    }
    if routes.serve_metadata {
        app = app.configure(|cfg| ResourceMetadata::routes(cfg, &MCP_PATHS));
    }
    for path in MCP_PATHS {
        app = app.service(mcp_scope(path, routes.mcp.clone(), &routes.layers));
    }
    let tracing_on = routes.tracing_on;
    app.wrap(from_fn(RequestLog::log))
        .wrap(Condition::new(
            tracing_on,
            from_fn(crate::telemetry::QueryRedaction::restore),
        ))
        .wrap(Condition::new(tracing_on, RequestTracing::new()))
        .wrap(Condition::new(
            tracing_on,
            from_fn(crate::telemetry::QueryRedaction::hide),
        ))
}
