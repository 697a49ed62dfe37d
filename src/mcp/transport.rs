//! Mounts the MCP Streamable HTTP endpoint (rmcp through rmcp-actix-web) at every MCP path.

use std::sync::Arc;

use actix_web::HttpMessage;
use rmcp_actix_web::transport::{CancellationToken, LocalSessionManager, StreamableHttpService};

use super::{McpServer, Registry};
use crate::auth::Caller;

/// The OpenTelemetry context of the HTTP request, carried to the MCP handler.
#[derive(Clone)]
pub struct HttpTraceContext(pub opentelemetry::Context);

/// The `MCP-Protocol-Version` header of the HTTP request.
#[derive(Clone)]
pub struct ProtocolVersionHeader(pub String);

/// The MCP endpoint, and the same endpoint at the path the Functions sample's clients use.
/// These are mount points only: what is MCP is decided by the route scopes
/// `server/mcp_scope.rs` mounts here, never by comparing a request's path to these strings.
pub const MCP_PATHS: [&str; 2] = ["/mcp", "/runtime/webhooks/mcp"];

/// rmcp's live sessions (session mode), shared with [`super::SessionOwners`] so that a
/// forgotten binding also ends its session.
pub type RmcpSessions = Arc<LocalSessionManager>;

/// The configured Streamable HTTP service; clone it into each actix worker.
///
/// Stateless and JSON by default (what Functions custom handlers and affinity-free scale-out
/// need); `stateful` (`server.sessions`) turns sessions on for pre-2026 clients. Bodies over
/// `max_body_bytes` (`server.max_body_bytes`) are refused.
pub fn mount(
    stateful: bool,
    max_body_bytes: usize,
    registry: Arc<Registry>,
    sessions: RmcpSessions,
    cancel: CancellationToken,
) -> StreamableHttpService<McpServer, LocalSessionManager> {
    StreamableHttpService::builder()
        .service_factory(Arc::new(move || Ok(McpServer::new(registry.clone()))))
        .session_manager(sessions)
        .stateful_mode(stateful)
        .json_response(true)
        .max_request_body_bytes(max_body_bytes)
        // Host/Origin are checked by `guard.rs` in front of authorization; an empty list
        // turns rmcp's own (loopback-only) check off so the two cannot disagree.
        .allowed_hosts(Vec::new())
        .cancellation_token(cancel)
        // The HTTP layer's authorization put a `Caller` in the request; hand it to tools,
        // with the HTTP span's trace context (rmcp runs handlers on its own tasks) and the
        // protocol version header, for the MCP span.
        .on_request_fn(|req, ext| {
            if let Some(caller) = req.extensions().get::<Arc<Caller>>() {
                ext.insert(Arc::clone(caller));
            }
            ext.insert(HttpTraceContext(opentelemetry::Context::current()));
            if let Some(v) = req
                .headers()
                .get("mcp-protocol-version")
                .and_then(|v| v.to_str().ok())
            {
                ext.insert(ProtocolVersionHeader(v.to_owned()));
            }
        })
        .build()
}
