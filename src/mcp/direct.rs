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

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut, Data};
use actix_web::{HttpMessage, HttpResponse};
use futures_util::StreamExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ErrorData, JsonRpcError,
    JsonRpcResponse, JsonRpcVersion2_0, PaginatedRequestParams, RequestId, RequestMetaObject,
    ServerResult,
};
use serde::Deserialize;

use super::handler::Origin;
use super::{McpServer, Registry};
use crate::auth::Caller;
use crate::telemetry::metrics;

/// Protocol versions whose stateless requests need nothing from rmcp's transport: no
/// per-request negotiation (2026-07-28) and no SEP-2243 header checks.
const VERSIONS: [&str; 2] = ["2025-06-18", "2025-11-25"];

/// `_meta` keys of the per-request (2026-07-28) lifecycle, which rmcp validates.
const LIFECYCLE_META: &str = "io.modelcontextprotocol/";

/// The fast path's state, in the app data when the server is stateless.
pub struct Direct {
    server: McpServer,
    max_body: usize,
}

/// A request the fast path answers.
enum Call {
    List,
    Tool(Box<CallToolRequestParams>),
}

/// A JSON-RPC request as sent; anything more (or less) goes to rmcp.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Incoming<'a> {
    #[allow(dead_code)] // parsed to check it is "2.0"
    jsonrpc: JsonRpcVersion2_0,
    id: RequestId,
    method: String,
    /// Kept raw: parsed once, into rmcp's own params type.
    #[serde(default, borrow)]
    params: Option<&'a serde_json::value::RawValue>,
}

impl Direct {
    pub fn new(registry: Arc<Registry>, max_body: usize) -> Self {
        Self {
            server: McpServer::new(registry),
            max_body,
        }
    }

    /// Middleware on the MCP scope: answers what it can, passes the rest to rmcp.
    pub async fn answer(
        mut req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
        let direct = match req.app_data::<Data<Direct>>() {
            Some(d) => d.clone(),
            None => return Ok(next.call(req).await?.map_into_left_body()),
        };
        let Some(version) = eligible(&req, direct.max_body) else {
            return Ok(next.call(req).await?.map_into_left_body());
        };
        let body = match read_body(req.take_payload(), direct.max_body).await {
            Ok(body) => body,
            Err(replay) => {
                req.set_payload(replay);
                return Ok(next.call(req).await?.map_into_left_body());
            }
        };
        let Some((id, call)) = parse(&body) else {
            req.set_payload(Payload::from(body));
            return Ok(next.call(req).await?.map_into_left_body());
        };
        metrics::mcp_fast_path();
        let caller = req.extensions().get::<Arc<Caller>>().cloned();
        // As rmcp does, `_meta` travels beside the params (for the span), not in them.
        let (meta, call) = match call {
            Call::Tool(mut params) => (params.meta.take(), Call::Tool(params)),
            Call::List => (None, Call::List),
        };
        let origin = Origin {
            caller,
            id: &id,
            version: version.to_owned(),
            meta: meta.as_ref(),
            http: Some(opentelemetry::Context::current()),
        };
        let result = match call {
            Call::List => direct
                .server
                .list(&origin)
                .map(ServerResult::ListToolsResult),
            Call::Tool(params) => match direct.server.call(*params, &origin).await {
                // As rmcp: a task handle only for clients that declared tasks, which a
                // sessions-era stateless request cannot have.
                Ok(CallToolResponse::Task(_)) => {
                    Err(ErrorData::missing_required_client_capability(
                        ClientCapabilities::builder().enable_tasks().build(),
                    ))
                }
                other => other.map(ServerResult::from),
            },
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
        let response = match json {
            Ok(json) => HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .body(json),
            Err(e) => {
                tracing::error!(error = %e, "could not serialize an MCP response");
                HttpResponse::InternalServerError().finish()
            }
        };
        Ok(req.into_response(response).map_into_right_body())
    }
}

/// The protocol version when the headers are ones the fast path may answer: a POST with
/// JSON content, accepting JSON and SSE, a sessions-era version header, no session, and a
/// declared length within the limit. Anything else is rmcp's to answer.
fn eligible(req: &ServiceRequest, max_body: usize) -> Option<&'static str> {
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

/// actix's boxed payload stream (not re-exported by actix-web).
pub(super) type BoxedPayload = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>>>,
>;

/// The whole body, or — past the limit or on a read error — a payload that replays what
/// was read followed by the rest, for rmcp to answer.
pub(super) async fn read_body(mut payload: Payload, max_body: usize) -> Result<Bytes, Payload> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(chunk) if body.len() + chunk.len() <= max_body => body.extend_from_slice(&chunk),
            other => {
                let read = futures_util::stream::iter([Ok(body.freeze()), other]);
                let replay: BoxedPayload = Box::pin(read.chain(payload));
                return Err(Payload::from(replay));
            }
        }
    }
    Ok(body.freeze())
}

/// The request when it is a single `tools/list` or `tools/call` with no per-request
/// protocol negotiation in its `_meta`.
fn parse(body: &[u8]) -> Option<(RequestId, Call)> {
    let incoming: Incoming = serde_json::from_slice(body).ok()?;
    let meta_negotiates = |meta: Option<&RequestMetaObject>| {
        meta.is_some_and(|m| m.keys().any(|k| k.starts_with(LIFECYCLE_META)))
    };
    let call = match incoming.method.as_str() {
        "tools/list" => {
            let params: Option<PaginatedRequestParams> = match incoming.params {
                Some(p) => serde_json::from_str(p.get()).ok()?,
                None => None,
            };
            if meta_negotiates(params.as_ref().and_then(|p| p.meta.as_ref())) {
                return None;
            }
            Call::List
        }
        "tools/call" => {
            let params: CallToolRequestParams =
                serde_json::from_str(incoming.params?.get()).ok()?;
            if meta_negotiates(params.meta.as_ref()) {
                return None;
            }
            Call::Tool(Box::new(params))
        }
        _ => return None,
    };
    Some((incoming.id, call))
}
