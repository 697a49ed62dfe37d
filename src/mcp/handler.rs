//! rmcp's `ServerHandler` for this server: server info, `tools/list`, `tools/call`.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ProtocolVersion, RequestId,
    RequestMetaObject, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::Registry;
use super::registry::Resolved;
use super::transport::{HttpTraceContext, ProtocolVersionHeader};
use crate::auth::Caller;
use crate::telemetry::{bounded, metrics, otel};

/// The protocol revisions this server speaks: what clients in the field use (2025-06-18,
/// 2025-11-25) and the current one (2026-07-28), plus the older ones rmcp still knows.
pub const PROTOCOL_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2024_11_05,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2026_07_28,
];

/// One MCP server instance; rmcp makes one per session (or per request when stateless),
/// so it only holds shared, immutable state.
#[derive(Clone)]
pub struct McpServer {
    registry: Arc<Registry>,
}

impl McpServer {
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

/// Where a request came from, as the MCP span and the tools need it: the same whether rmcp
/// delivered the request or the stateless fast path (`direct.rs`) did.
pub(crate) struct Origin<'a> {
    /// The caller the HTTP layer established; `None` only through a wiring bug.
    pub caller: Option<Arc<Caller>>,
    pub id: &'a RequestId,
    /// `MCP-Protocol-Version` header, else the request's own `_meta` version.
    pub version: String,
    /// The request's `_meta` (for `traceparent`).
    pub meta: Option<&'a RequestMetaObject>,
    /// The HTTP server span's context, the parent when `_meta` has no `traceparent`.
    pub http: Option<opentelemetry::Context>,
}

impl<'a> Origin<'a> {
    fn from_context(context: &'a RequestContext<RoleServer>) -> Self {
        let ext = rmcp_actix_web::transport::on_request_extensions(&context.extensions);
        let version = ext
            .and_then(|e| e.get::<ProtocolVersionHeader>())
            .map(|v| v.0.clone())
            .or_else(|| {
                context
                    .meta
                    .get("io.modelcontextprotocol/protocolVersion")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        Self {
            caller: ext.and_then(|e| e.get::<Arc<Caller>>()).cloned(),
            id: &context.id,
            version,
            meta: Some(&context.meta),
            http: ext
                .and_then(|e| e.get::<HttpTraceContext>())
                .map(|c| c.0.clone()),
        }
    }

    /// The caller the HTTP layer established for this request.
    ///
    /// # Security
    /// Fails closed: a request that reached the MCP layer without a `Caller` (a wiring bug)
    /// is refused rather than run anonymously.
    fn caller(&self) -> Result<Arc<Caller>, ErrorData> {
        self.caller
            .clone()
            .ok_or_else(|| ErrorData::internal_error("request has no authenticated caller", None))
    }
}

/// The request id as recorded: at most 128 bytes (`telemetry::bounded`), as a client may
/// send an id of any size.
fn id_text(id: &RequestId) -> Cow<'_, str> {
    match id {
        RequestId::String(s) => bounded(s),
        RequestId::Number(n) => Cow::Owned(n.to_string()),
    }
}

/// The MCP server span (OpenTelemetry MCP semantic conventions): `{method} {target}`,
/// parented to `params._meta.traceparent` when the client sent one, else the HTTP span.
/// `tool` is a registered name or `unknown`; the id and version are bounded.
fn mcp_span(origin: &Origin<'_>, method: &'static str, tool: Option<&str>) -> tracing::Span {
    let name = match tool {
        Some(t) => format!("{method} {t}"),
        None => method.to_owned(),
    };
    let span = tracing::info_span!(
        target: "mcp_obo::mcp",
        "mcp",
        otel.name = %name,
        otel.kind = "server",
        mcp.method.name = method,
        mcp.protocol.version = %bounded(&origin.version),
        gen_ai.tool.name = tool.unwrap_or(""),
        gen_ai.operation.name = if tool.is_some() { "execute_tool" } else { "" },
        jsonrpc.request.id = %id_text(origin.id),
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let parent = origin
        .meta
        .and_then(|m| otel::context_from(m.get_traceparent(), m.get_tracestate()))
        .or_else(|| origin.http.clone());
    if let Some(parent) = parent {
        let _ = span.set_parent(parent);
    }
    span
}

/// Records a failed MCP operation on its span (the description bounded: an error message
/// may quote the request, e.g. an unknown tool's name).
fn record_error(span: &tracing::Span, kind: &str, description: &str) {
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_description", bounded(description).as_ref());
    span.record("error.type", kind);
}

/// The line a JSON-RPC error answer gets (rmcp's own, which echoes the id and message
/// unbounded, is filtered out: `telemetry::CAPPED`).
fn log_error(origin: &Origin<'_>, method: &str, tool: &str, error: &ErrorData) {
    let (trace_id, span_id) = otel::current_ids().unzip();
    tracing::info!(
        mcp.method.name = method,
        gen_ai.tool.name = tool,
        jsonrpc.request.id = %id_text(origin.id),
        error.code = error.code.0,
        error.message = %bounded(&error.message),
        trace_id = trace_id.as_deref().unwrap_or(""),
        span_id = span_id.as_deref().unwrap_or(""),
        "MCP request answered with an error"
    );
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("mcp-obo", env!("CARGO_PKG_VERSION")).with_title("mcp-obo"),
            )
            .with_instructions(self.registry.instructions())
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(PROTOCOL_VERSIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.list(&Origin::from_context(&context))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.registry.get(name).map(|t| t.definition().clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.call(request, &Origin::from_context(&context)).await
    }
}

impl McpServer {
    /// `tools/list`: the tools this caller may call.
    pub(crate) fn list(&self, origin: &Origin<'_>) -> Result<ListToolsResult, ErrorData> {
        let caller = origin.caller()?;
        Ok(ListToolsResult::with_all_items(
            self.registry.definitions_for(&caller),
        ))
    }

    /// `tools/call` as rmcp delivers it: looked up and judged here, from rmcp's own parse.
    pub(crate) async fn call(
        &self,
        request: CallToolRequestParams,
        origin: &Origin<'_>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = match origin.caller.as_deref() {
            Some(caller) => self.registry.resolve(caller, &request.name),
            // No caller (a wiring bug): dispatch refuses the call.
            None => self.registry.refused(&request.name),
        };
        self.call_resolved(request, tool, origin).await
    }

    /// `tools/call` of `tool`, as [`Registry::resolve`] judged it for the origin's caller,
    /// inside its MCP span, counted in the metrics and audited.
    pub(crate) async fn call_resolved(
        &self,
        request: CallToolRequestParams,
        tool: Resolved,
        origin: &Origin<'_>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = std::time::Instant::now();
        let CallToolRequestParams {
            name, arguments, ..
        } = request;
        let found = self.registry.tool(tool);
        // Unknown names are not echoed into span names or metric labels (unbounded input).
        let label: &str = if found.is_some() { &name } else { "unknown" };
        let span = mcp_span(origin, "tools/call", Some(label));
        let result = self
            .dispatch(&name, arguments, tool, origin)
            .instrument(span.clone())
            .await;
        let outcome = match &result {
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
                record_error(&span, "tool_error", "the tool returned an error result");
                "tool_error"
            }
            Ok(_) => "ok",
            Err(e) => {
                record_error(&span, "jsonrpc_error", &e.message);
                span.in_scope(|| log_error(origin, "tools/call", label, e));
                "error"
            }
        };
        let elapsed = started.elapsed();
        metrics::mcp_request("tools/call", label, outcome, elapsed);
        if let Some(found) = found {
            span.in_scope(|| {
                super::audit::record(
                    origin.caller.as_deref(),
                    label,
                    found.permissions(),
                    outcome,
                    elapsed,
                )
            });
        }
        result
    }

    async fn dispatch(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        resolved: Resolved,
        origin: &Origin<'_>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = origin.caller()?;
        let Some(tool) = self.registry.tool(resolved) else {
            return Err(ErrorData::invalid_params(
                format!("Unknown tool: {name}"),
                None,
            ));
        };
        // The boundary for per-tool scopes: whatever the HTTP layer answered, a tool the
        // caller may not use is not run.
        if !resolved.permitted() {
            return Err(ErrorData::invalid_request(
                format!(
                    "Forbidden: {name} needs the scope(s) {}, which this token does not have. Sign in again and consent to them.",
                    self.registry.scopes(resolved).join(" ")
                ),
                None,
            ));
        }
        if tool.needs_user() && caller.app_only {
            return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "{name} acts on behalf of a signed-in user, but this request was made by an application with no user (an app-only token). Call it from a client where a user signs in."
            ))])
            .into());
        }
        Ok(tool.call(&caller, arguments).await.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::Tool;
    use async_trait::async_trait;
    use rmcp::model::JsonObject;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A tool that needs `Mail.Read` and counts its runs.
    struct MailTool {
        definition: rmcp::model::Tool,
        runs: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl Tool for MailTool {
        fn definition(&self) -> &rmcp::model::Tool {
            &self.definition
        }

        fn required_scopes(&self) -> Vec<String> {
            vec!["Mail.Read".into()]
        }

        async fn call(&self, _caller: &Caller, _arguments: Option<JsonObject>) -> CallToolResult {
            self.runs.fetch_add(1, Ordering::SeqCst);
            CallToolResult::success(vec![ContentBlock::text("mail")])
        }
    }

    fn user(scopes: &[&str]) -> Arc<Caller> {
        Arc::new(Caller {
            subject: "ada".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            ..Caller::local_developer()
        })
    }

    async fn call_as(caller: Arc<Caller>) -> (Result<CallToolResponse, ErrorData>, usize) {
        let runs = Arc::new(AtomicUsize::new(0));
        let tool = MailTool {
            definition: rmcp::model::Tool::new("MailTool", "reads mail", JsonObject::new()),
            runs: runs.clone(),
        };
        let server = McpServer::new(Arc::new(Registry::default().with(tool)));
        let id = RequestId::Number(1);
        let origin = Origin {
            caller: Some(caller),
            id: &id,
            version: "2025-06-18".into(),
            meta: None,
            http: None,
        };
        let request = CallToolRequestParams::new("MailTool");
        let result = server.call(request, &origin).await;
        (result, runs.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn dispatch_refuses_a_tool_whose_scopes_the_caller_lacks() {
        let (result, runs) = call_as(user(&["user_impersonation"])).await;
        let error = result.expect_err("refused");
        assert!(error.message.contains("Mail.Read"), "{}", error.message);
        assert_eq!(runs, 0, "the tool did not run");
        let (result, runs) = call_as(user(&["user_impersonation", "Mail.Read"])).await;
        assert!(result.is_ok());
        assert_eq!(runs, 1);
    }
}
