//! The actix-web application: routes, the middleware order, start-up and graceful shutdown.
//!
//! [`Application::build`] binds the listener and wires every component; tests call it with
//! their own [`Dependencies`] and a port-0 listener. [`Application::run_until_stopped`] takes
//! the shutdown signal as a future, so shutdown is testable.
//!
//! This is the composition root: with `crate::settings`, which loads it, it alone holds the
//! whole [`Settings`] and hands each module its own section (plus what that module needs
//! from another, passed explicitly); `mcp/` gets plain values, not a section.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_instrumentation_actix_web::RequestTracing;
use rmcp_actix_web::transport::CancellationToken;

use crate::auth::AuthMode;
use crate::auth::{Authorizer, JwksCache, ResourceMetadata};
use crate::graph::GraphClient;
use crate::mcp::{
    self, BodyDeadline, HostOriginGuard, InFlight, JsonRpcErrors, MCP_PATHS, Origins, Registry,
    SessionOwners, ToolAccess, ToolCallRate,
};
use crate::obo::{DeveloperTokens, DownstreamTokens};
use crate::settings::Settings;
use crate::telemetry::RequestLog;

mod consent;

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
                &settings.entra,
                &settings.server.public_url,
            )
            .map_err(|e| StartError::Config(e.to_string()))?,
        };
        Ok(Self { tokens })
    }
}

/// Readiness: ready once every dependency is initialised (the issuer's keys fetched), not
/// ready while shutting down.
#[derive(Default)]
pub struct Readiness {
    serving: AtomicBool,
    jwks: Option<Arc<JwksCache>>,
}

impl Readiness {
    /// Each check by name, and whether it passes.
    pub fn checks(&self) -> Vec<(&'static str, bool)> {
        let mut checks = vec![("serving", self.serving.load(Ordering::Acquire))];
        if let Some(jwks) = &self.jwks {
            checks.push(("issuer_keys", jwks.is_loaded()));
        }
        checks
    }

    pub fn is_ready(&self) -> bool {
        self.checks().iter().all(|(_, ok)| *ok)
    }

    fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Release);
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
        let graph = GraphClient::new(&settings.graph, deps.tokens)?;
        let registry = Registry::default()
            .with_all(crate::tools::all(&graph)?)
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
        let tool_scopes: Vec<String> = registry
            .requirements()
            .into_iter()
            .flat_map(|(_, s)| s)
            .collect();
        let cancel = CancellationToken::new();
        let jwks = issuer_keys(&settings.auth, &settings.entra)?;
        if let Some(jwks) = &jwks {
            spawn_key_refresh(
                jwks.clone(),
                settings.auth.jwks_refresh_interval,
                cancel.clone(),
            );
        }
        let metadata = Arc::new(ResourceMetadata::from_settings(
            &settings.auth,
            &settings.entra,
            &settings.server.public_url,
            settings.server.forwarding_proxies(),
            &tool_scopes,
        ));
        let authorizer = web::Data::new(Authorizer::new(
            &settings.auth,
            &settings.entra,
            metadata.clone(),
            jwks.clone(),
        ));
        let serve_metadata = jwks.is_some();
        let metadata = web::Data::from(metadata);
        let registry = Arc::new(registry);
        // Stateless (the default): the fast path answers the hot methods itself.
        let direct = (!settings.server.sessions && settings.server.fast_path).then(|| {
            web::Data::new(mcp::Direct::new(
                registry.clone(),
                settings.server.max_body_bytes,
            ))
        });
        let rate = settings
            .server
            .rate_limit
            .map(|r| Arc::new(ToolCallRate::new(r)));
        if let Some(rate) = &rate {
            rate.spawn_pruning(cancel.clone());
        }
        let tool_access = web::Data::new(
            ToolAccess::new(registry.clone(), settings.server.max_body_bytes).with_rate_limit(rate),
        );
        let body_deadline = web::Data::new(BodyDeadline::new(settings.server.body_timeout));
        let in_flight = web::Data::new(InFlight::new(settings.server.max_in_flight_per_user));
        let sessions = mcp::RmcpSessions::default();
        let mcp_service = mcp::mount(
            settings.server.sessions,
            settings.server.max_body_bytes,
            registry,
            sessions.clone(),
            cancel.clone(),
        );
        let origins = web::Data::new(Origins::new(
            &settings.server.public_url,
            &settings.server.allowed_hosts,
            &settings.server.allowed_origins,
            settings.server.listen.ip().is_loopback(),
        ));
        let readiness = Arc::new(Readiness {
            serving: AtomicBool::new(false),
            jwks,
        });
        let ready_data = web::Data::from(readiness.clone());
        let request_log = web::Data::new(RequestLog::new(settings.log.requests));
        let consent_page = web::Data::new(consent::Page::new(settings.obo.failure_cache_ttl));
        let session_owners = settings
            .server
            .sessions
            .then(|| web::Data::new(SessionOwners::new(sessions)));
        let metrics_here =
            settings.telemetry.metrics && settings.telemetry.metrics_listen.is_none();
        let tracing_on = settings.telemetry.otlp_traces_endpoint.is_some();
        let metrics_addr = match (
            settings.telemetry.metrics,
            settings.telemetry.metrics_listen,
        ) {
            (true, Some(addr)) => Some(spawn_metrics_listener(addr)?),
            _ => None,
        };

        let mut server = HttpServer::new(move || {
            let mut app = App::new()
                .app_data(origins.clone())
                .app_data(authorizer.clone())
                .app_data(tool_access.clone())
                .app_data(body_deadline.clone())
                .app_data(in_flight.clone())
                .app_data(ready_data.clone())
                .app_data(request_log.clone())
                .app_data(metadata.clone())
                .app_data(consent_page.clone())
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .route("/consent/complete", web::get().to(consent::complete));
            if metrics_here {
                app = app.route(
                    "/metrics",
                    web::get().to(crate::telemetry::metrics::handler),
                );
            }
            if let Some(owners) = &session_owners {
                app = app.app_data(owners.clone());
            }
            if serve_metadata {
                app = app.configure(|cfg| ResourceMetadata::routes(cfg, &MCP_PATHS));
            }
            if let Some(direct) = &direct {
                app = app.app_data(direct.clone());
            }
            // The MCP boundary is the route scope: whatever the router sends to an MCP
            // path, in any spelling it decodes to, has passed every layer wrapped here.
            // actix runs the last `wrap` first. Request order inside the scope:
            //   1. BodyDeadline: the body must arrive within server.body_timeout (408); it
            //      wraps the payload, so every body reader below reads under the deadline;
            //   2. HostOriginGuard: DNS-rebinding defence, before anything is revealed;
            //   3. Authorizer: establishes the Caller (or answers the challenge);
            //   4. InFlight: the Caller's user holds one of server.max_in_flight_per_user
            //      slots until answered (429), taken before any body is read;
            //   5. SessionOwners: (session mode) a session id only works for its owner;
            //   6. JsonRpcErrors: the transport's plain-text errors as JSON-RPC bodies;
            //   7. ToolAccess: reads a POST's body once: `tools/call` of a tool needing more
            //      scopes → 403 step-up, then `tools/call`s past server.rate_limit → 429;
            //   8. Direct: the stateless fast path; then rmcp's Streamable HTTP service.
            // No route outside these scopes reads a request body.
            for path in MCP_PATHS {
                app = app.service(
                    mcp_service
                        .clone()
                        .scope_with_path(path)
                        .wrap(from_fn(mcp::Direct::answer))
                        .wrap(from_fn(ToolAccess::check))
                        .wrap(from_fn(JsonRpcErrors::map))
                        .wrap(from_fn(SessionOwners::bind_to_caller))
                        .wrap(from_fn(InFlight::admit))
                        .wrap(from_fn(Authorizer::authorize))
                        .wrap(from_fn(HostOriginGuard::check))
                        .wrap(from_fn(BodyDeadline::enforce)),
                );
            }
            // Around every route: the HTTP server span (when exporting traces), parented
            // to an incoming `traceparent`, then a log line per request (or failed one).
            // RequestTracing records url.query, so it never sees the query
            // (telemetry/query.rs hides it before the span and restores it after).
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
        })
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout.as_secs().max(1));
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.listen(listener).map_err(StartError::Server)?.run();
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

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    let checks: serde_json::Map<String, serde_json::Value> = readiness
        .checks()
        .into_iter()
        .map(|(name, ok)| {
            (
                name.to_owned(),
                serde_json::Value::from(if ok { "ok" } else { "failing" }),
            )
        })
        .collect();
    if readiness.is_ready() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready", "checks": checks}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "not ready", "checks": checks}))
    }
}

/// Serves `/metrics` alone on `addr` (spawned on the current actix system); the address
/// actually bound.
fn spawn_metrics_listener(addr: SocketAddr) -> Result<SocketAddr, StartError> {
    let bind_error = |source| StartError::MetricsBind { addr, source };
    let listener = TcpListener::bind(addr).map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let server = HttpServer::new(|| {
        App::new().route(
            "/metrics",
            web::get().to(crate::telemetry::metrics::handler),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(bind_error)?
    .run();
    actix_web::rt::spawn(server);
    Ok(bound)
}

/// The issuer's key cache for token modes; `None` with `auth.mode = none`.
fn issuer_keys(
    auth: &crate::auth::Settings,
    entra: &crate::auth::Entra,
) -> Result<Option<Arc<JwksCache>>, StartError> {
    let Some(discovery) = crate::auth::discovery_url(auth, entra) else {
        return Ok(None);
    };
    let url = url::Url::parse(&discovery)
        .map_err(|e| StartError::Config(format!("discovery URL {discovery}: {e}")))?;
    let http = crate::outbound::builder()?
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let jwks = JwksCache::new(url, http, auth.jwks_min_refresh_interval);
    // OIDC: the discovery document must name the configured issuer. Entra's multi-tenant
    // documents name a `{tenantid}` template; its issuers are checked per token instead.
    let jwks = match (auth.mode, &auth.issuer) {
        (AuthMode::Oidc, Some(issuer)) => jwks.with_issuer(issuer),
        _ => jwks,
    };
    Ok(Some(Arc::new(jwks)))
}

/// Fetches the issuer's keys now (retrying with backoff until it works) and then every
/// `interval`, until `cancel`.
fn spawn_key_refresh(
    jwks: Arc<JwksCache>,
    interval: std::time::Duration,
    cancel: CancellationToken,
) {
    actix_web::rt::spawn(async move {
        let mut backoff = std::time::Duration::from_millis(250);
        loop {
            let wait = match jwks.refresh().await {
                Ok(_) => {
                    backoff = std::time::Duration::from_millis(250);
                    interval
                }
                Err(_) => {
                    let wait = if jwks.is_loaded() {
                        interval.min(backoff * 8)
                    } else {
                        backoff
                    };
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(60));
                    wait
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    });
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
