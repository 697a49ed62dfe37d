//! The MCP route scope: every layer a request routed to an MCP path passes, in order. This is
//! the one place that order is written; the docs point here.
//!
//! The MCP boundary is the route scope: whatever the router sends to an MCP path, in any
//! spelling it decodes to, has passed every layer wrapped here. Request order:
//!
//! 1. [`BodyDeadline`]: the body must arrive within `server.body_timeout` (408); it wraps
//!    the payload, so every body reader below reads under the deadline;
//! 2. [`Origins`]: Host and Origin allow-lists (DNS-rebinding defence), before anything is
//!    revealed;
//! 3. [`Authorizer`]: establishes the `Caller` (or answers the challenge);
//! 4. [`InFlight`]: the Caller's user holds one of `server.max_in_flight_per_user` slots
//!    until answered (429), taken before any body is read;
//! 5. [`SessionOwners`]: (session mode) a session id only works for its owner;
//! 6. [`JsonRpcErrors`]: the transport's plain-text errors as JSON-RPC bodies;
//! 7. [`ToolAccess`]: reads and parses a POST's body once: `tools/call` of a tool needing
//!    more scopes → 403 step-up, then `tools/call`s past `server.rate_limit` → 429; hands the
//!    fast path its parsed request;
//! 8. [`Direct`]: the stateless fast path; then rmcp's Streamable HTTP service.
//!
//! No route outside these scopes reads a request body. Each layer carries its own state (a
//! per-worker `Rc`, cloned per request without an atomic), so none looks anything up in the
//! app data.

use std::rc::Rc;
use std::sync::Arc;

use actix_web::dev::HttpServiceFactory;
use actix_web::middleware::from_fn;
use rmcp_actix_web::transport::{CancellationToken, LocalSessionManager, StreamableHttpService};

use crate::auth::Authorizer;
use crate::mcp::{
    BodyDeadline, Direct, InFlight, JsonRpcErrors, McpServer, Origins, Registry, RmcpSessions,
    SessionOwners, ToolAccess, ToolCallRate,
};
use crate::settings::ServerSettings as Settings;

/// The state of each layer, built once and cloned into every worker.
#[derive(Clone)]
pub(super) struct McpLayers {
    body_deadline: BodyDeadline,
    origins: Origins,
    authorizer: Authorizer,
    in_flight: InFlight,
    session_owners: Option<SessionOwners>,
    tool_access: ToolAccess,
    direct: Direct,
}

impl McpLayers {
    /// The layers for `server`'s settings; the rate limiter's pruning stops with `cancel`.
    pub(super) fn new(
        server: &Settings,
        registry: &Arc<Registry>,
        authorizer: Authorizer,
        sessions: RmcpSessions,
        cancel: &CancellationToken,
    ) -> Self {
        let rate = server.rate_limit.map(|r| Arc::new(ToolCallRate::new(r)));
        if let Some(rate) = &rate {
            rate.spawn_pruning(cancel.clone());
        }
        // Stateless (the default): the fast path answers the hot methods itself.
        let fast_path = !server.sessions && server.fast_path;
        let tool_access =
            ToolAccess::new(registry.clone(), authorizer.clone(), server.max_body_bytes)
                .with_rate_limit(rate)
                .with_fast_path(fast_path);
        Self {
            body_deadline: BodyDeadline::new(server.body_timeout),
            origins: Origins::new(
                &server.public_url,
                &server.allowed_hosts,
                &server.allowed_origins,
                server.listen.ip().is_loopback(),
            ),
            authorizer,
            in_flight: InFlight::new(server.max_in_flight_per_user),
            session_owners: server.sessions.then(|| SessionOwners::new(sessions)),
            tool_access,
            direct: Direct::new(registry.clone()),
        }
    }
}

/// `from_fn` with the layer's own state: one `Rc` per worker, cloned into each request.
macro_rules! layer {
    ($state:expr, $middleware:path) => {{
        let state = Rc::new($state.clone());
        from_fn(move |req, next| $middleware(Rc::clone(&state), req, next))
    }};
}

/// The MCP service at `path`, inside the layers in the order above (actix runs the last
/// `wrap` first, so they are wrapped innermost first).
pub(super) fn mcp_scope(
    path: &'static str,
    service: StreamableHttpService<McpServer, LocalSessionManager>,
    layers: &McpLayers,
) -> impl HttpServiceFactory + use<> {
    service
        .scope_with_path(path)
        .wrap(layer!(layers.direct, Direct::answer))
        .wrap(layer!(layers.tool_access, ToolAccess::check))
        .wrap(from_fn(JsonRpcErrors::map))
        .wrap(layer!(layers.session_owners, SessionOwners::bind_to_caller))
        .wrap(layer!(layers.in_flight, InFlight::admit))
        .wrap(layer!(layers.authorizer, Authorizer::authorize))
        .wrap(layer!(layers.origins, Origins::check))
        .wrap(layer!(layers.body_deadline, BodyDeadline::enforce))
}
