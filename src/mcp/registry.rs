//! The tool registry: every tool the server offers, by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use rmcp::model::{CallToolResult, JsonObject};

use crate::auth::Caller;

/// One MCP tool.
///
/// Tools never fail at the protocol level: every failure becomes a result with
/// `isError: true` and text that tells the user what to do.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// The tool's definition as listed by `tools/list` (name, description, schemas).
    fn definition(&self) -> &rmcp::model::Tool;

    /// Run the tool for `caller`.
    async fn call(&self, caller: &Caller, arguments: Option<JsonObject>) -> CallToolResult;
}

/// Tools by name, immutable once the server starts.
#[derive(Clone, Default)]
pub struct Registry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
}

impl Registry {
    /// Adds a tool; a later tool with the same name replaces the earlier one.
    pub fn with(mut self, tool: impl Tool) -> Self {
        let name = tool.definition().name.to_string();
        self.tools.insert(name, Arc::new(tool));
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    /// Every tool definition, in name order.
    pub fn definitions(&self) -> Vec<rmcp::model::Tool> {
        self.tools
            .values()
            .map(|t| t.definition().clone())
            .collect()
    }
}
