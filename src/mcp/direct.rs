//! The stateless fast path: `tools/list` and `tools/call` answered in the request's own task.
//!
//! For each stateless POST rmcp bridges the body through a spawned task and a channel,
//! builds a one-shot transport, spawns a service task with its peer channels and waits on
//! them: more than half of a `tools/list`'s CPU and a fifth of a HelloTool's (BENCHMARKS.md).
//! A `tools/list` or `tools/call` from a sessions-era client (`MCP-Protocol-Version`
//! 2025-06-18 or 2025-11-25) needs none of it: no handshake, no server-to-client messages
//! (this server's tools send none), one JSON answer. Those are answered here by the same
//! [`McpServer`] methods rmcp calls, serialized with rmcp's own types.
//!
//! Anything else — other methods and versions, batches, notifications, `_meta` protocol
//! negotiation, sessions, a header or body rmcp would reject — goes on to rmcp with the body
//! exactly as it came, so rmcp stays the one authority on the protocol's errors. Tests
//! compare both paths' answers byte for byte.
//!
//! The headers are judged here ([`eligible`]), but the body is read and parsed once by the
//! step-up layer before this one (`tool_access.rs`, `body.rs`), which hands this layer the
//! parsed request and its tool's verdict ([`DirectRequest`]).

use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse};
use rmcp::model::{
    CallToolResponse, ClientCapabilities, ErrorData, JsonRpcError, JsonRpcResponse,
    JsonRpcVersion2_0, RequestId, ServerResult,
};

use super::body::Call;
use super::handler::Origin;
use super::{McpServer, Registry, Resolved};
use crate::auth::Caller;
use crate::telemetry::metrics;

/// Protocol versions whose stateless requests need nothing from rmcp's transport: no
/// per-request negotiation (2026-07-28) and no SEP-2243 header checks.
const VERSIONS: [&str; 2] = ["2025-06-18", "2025-11-25"];

/// The fast path's state: the MCP server it answers with.
#[derive(Clone)]
pub struct Direct {
    server: McpServer,
}

/// A request the fast path answers, as `tool_access.rs` parsed and judged it.
pub(super) struct DirectRequest {
    /// The `MCP-Protocol-Version` it was sent with.
    pub version: &'static str,
    pub id: RequestId,
    pub call: Call,
    /// The called tool, looked up and judged for `caller`; `None` for `tools/list`.
    pub tool: Option<Resolved>,
    pub caller: Arc<Caller>,
}

impl Direct {
    pub fn new(registry: Arc<Registry>) -> Self {
        Self {
            server: McpServer::new(registry),
        }
    }

    /// Middleware on the MCP scope: answers the request `tool_access.rs` parsed for it,
    /// passes everything else to rmcp.
    pub async fn answer(
        self: Rc<Self>,
        req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
        let Some(request) = req.extensions_mut().remove::<DirectRequest>() else {
            return Ok(next.call(req).await?.map_into_left_body());
        };
        metrics::mcp_fast_path();
        let response = self.respond(request).await;
        Ok(req.into_response(response).map_into_right_body())
    }

    /// The JSON-RPC answer, serialized with rmcp's own types.
    async fn respond(&self, request: DirectRequest) -> HttpResponse {
        let DirectRequest {
            version,
            id,
            call,
            tool,
            caller,
        } = request;
        // As rmcp does, `_meta` travels beside the params (for the span), not in them.
        let (meta, call) = match call {
            Call::Tool(mut params) => (params.meta.take(), Call::Tool(params)),
            Call::List => (None, Call::List),
        };
        let origin = Origin {
            caller: Some(caller),
            id: &id,
            version: version.to_owned(),
            meta: meta.as_ref(),
            http: Some(opentelemetry::Context::current()),
        };
        let result = match (call, tool) {
            (Call::Tool(params), Some(tool)) => {
                match self.server.call_resolved(*params, tool, &origin).await {
                    // As rmcp: a task handle only for clients that declared tasks, which a
                    // sessions-era stateless request cannot have.
                    Ok(CallToolResponse::Task(_)) => {
                        Err(ErrorData::missing_required_client_capability(
                            ClientCapabilities::builder().enable_tasks().build(),
                        ))
                    }
                    other => other.map(ServerResult::from),
                }
            }
            (Call::Tool(_), None) => Err(ErrorData::internal_error("tool not resolved", None)),
            (Call::List, _) => self.server.list(&origin).map(ServerResult::ListToolsResult),
        };
        // As rmcp does for peers before 2026-07-28: the legacy result shape.
        let result = result.map(|mut r| {
            r.strip_result_type_for_legacy_peer();
            r.strip_non_object_output_for_legacy_peer();
            r
        });
        let json = match result {
            Ok(result) => serde_json::to_vec(&JsonRpcResponse {
                jsonrpc: JsonRpcVersion2_0,
                id,
                result,
            }),
            Err(error) => serde_json::to_vec(&JsonRpcError::new(Some(id), error)),
        };
        match json {
            Ok(json) => HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .body(json),
            Err(e) => {
                tracing::error!(error = %e, "could not serialize an MCP response");
                HttpResponse::InternalServerError().finish()
            }
        }
    }
}

/// The protocol version when the headers are ones the fast path may answer: a POST with
/// JSON content, accepting JSON and SSE, a sessions-era version header, no session, and a
/// declared length within the limit. Anything else is rmcp's to answer.
pub(super) fn eligible(req: &ServiceRequest, max_body: usize) -> Option<&'static str> {
    if req.method() != Method::POST {
        return None;
    }
    let headers = req.headers();
    if headers.contains_key("mcp-session-id") {
        return None;
    }
    let mut versions = headers.get_all("mcp-protocol-version");
    let version = versions.next()?.to_str().ok()?;
    if versions.next().is_some() {
        return None;
    }
    let version = VERSIONS.into_iter().find(|v| *v == version)?;
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return None;
    }
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        for item in value.to_str().ok()?.split(',') {
            let essence = item.split(';').next().unwrap_or("").trim();
            json |= essence.eq_ignore_ascii_case("application/json");
            sse |= essence.eq_ignore_ascii_case("text/event-stream");
        }
    }
    if !(json && sse) {
        return None;
    }
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        let length: usize = length.to_str().ok()?.parse().ok()?;
        if length > max_body {
            return None;
        }
    }
    Some(version)
}
