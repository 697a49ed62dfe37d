//! rmcp's `ServerHandler` for this server: server info, `tools/list`, `tools/call`.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::Registry;
use crate::auth::Caller;

/// The protocol revisions this server speaks: what clients in the field use (2025-06-18,
/// 2025-11-25) and the current one (2026-07-28), plus the older ones rmcp still knows.
pub const PROTOCOL_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2024_11_05,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2026_07_28,
];

const INSTRUCTIONS: &str = "Tools here act as the signed-in user against Microsoft Graph. \
HelloTool greets the user with their name and email from their Microsoft 365 profile.";

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

/// The caller the HTTP layer established for this request.
///
/// # Security
/// Fails closed: a request that reached the MCP layer without a `Caller` (a wiring bug)
/// is refused rather than run anonymously.
fn caller(context: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
    rmcp_actix_web::transport::on_request_extensions(&context.extensions)
        .and_then(|ext| ext.get::<Caller>())
        .cloned()
        .ok_or_else(|| ErrorData::internal_error("request has no authenticated caller", None))
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("mcp-obo", env!("CARGO_PKG_VERSION")).with_title("mcp-obo"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(PROTOCOL_VERSIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = caller(&context)?;
        Ok(ListToolsResult::with_all_items(
            self.registry.definitions_for(&caller),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        self.registry.get(name).map(|t| t.definition().clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = caller(&context)?;
        let Some(tool) = self.registry.get(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!("Unknown tool: {}", request.name),
                None,
            ));
        };
        if tool.needs_user() && caller.app_only {
            return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "{} acts on behalf of a signed-in user, but this request was made by an application with no user (an app-only token). Call it from a client where a user signs in.",
                request.name
            ))])
            .into());
        }
        Ok(tool.call(&caller, request.arguments).await.into())
    }
}
