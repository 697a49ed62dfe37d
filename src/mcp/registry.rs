//! The tool registry: every tool the server offers, by name, with the scopes each needs.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use rmcp::model::{CallToolResult, JsonObject};

use crate::auth::{Caller, scopes};

/// One MCP tool.
///
/// Tools never fail at the protocol level: every failure becomes a result with
/// `isError: true` and text that tells the user what to do.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// The tool's definition as listed by `tools/list` (name, description, schemas).
    fn definition(&self) -> &rmcp::model::Tool;

    /// Delegated scopes (as in `scp`) this tool needs beyond the server's required scopes.
    fn required_scopes(&self) -> Vec<String> {
        Vec::new()
    }

    /// The Graph permissions its calls use (space-separated), for the audit event.
    fn permissions(&self) -> &str {
        ""
    }

    /// Whether the tool acts for a user (so app-only callers cannot use it).
    fn needs_user(&self) -> bool {
        true
    }

    /// Run the tool for `caller`.
    async fn call(&self, caller: &Caller, arguments: Option<JsonObject>) -> CallToolResult;
}

struct Entry {
    tool: Arc<dyn Tool>,
    scopes: Vec<String>,
}

/// Tools by name, immutable once the server starts.
#[derive(Clone, Default)]
pub struct Registry {
    tools: Arc<BTreeMap<String, Arc<Entry>>>,
    implies: Arc<Vec<(String, String)>>,
}

impl Registry {
    /// Adds a tool; a later tool with the same name replaces the earlier one.
    pub fn with(self, tool: impl Tool) -> Self {
        self.with_all([Arc::new(tool) as Arc<dyn Tool>])
    }

    /// Adds every tool of `tools` (e.g. [`crate::tools::all`]).
    pub fn with_all(mut self, tools: impl IntoIterator<Item = Arc<dyn Tool>>) -> Self {
        let map = Arc::make_mut(&mut self.tools);
        for tool in tools {
            let name = tool.definition().name.to_string();
            let scopes = tool.required_scopes();
            map.insert(name, Arc::new(Entry { tool, scopes }));
        }
        self
    }

    /// The server instructions: what the tools do, from their own (constant) descriptions,
    /// never from anything a tool returned.
    pub fn instructions(&self) -> String {
        let mut text =
            String::from("Tools here act as the signed-in user against Microsoft Graph.");
        for (name, entry) in self.tools.iter() {
            text.push_str(&format!(
                " {name}: {}",
                entry.tool.definition().description.as_deref().unwrap_or("")
            ));
        }
        text
    }

    /// Adds configured `(tool, scope)` requirements and the scope hierarchy.
    pub fn with_policy(
        mut self,
        tool_scopes: &[(String, String)],
        implies: &[(String, String)],
    ) -> Self {
        let mut tools: BTreeMap<String, Arc<Entry>> = (*self.tools).clone();
        for (name, scope) in tool_scopes {
            if let Some(entry) = tools.get(name) {
                let mut scopes = entry.scopes.clone();
                if !scopes.contains(scope) {
                    scopes.push(scope.clone());
                }
                tools.insert(
                    name.clone(),
                    Arc::new(Entry {
                        tool: entry.tool.clone(),
                        scopes,
                    }),
                );
            }
        }
        self.tools = Arc::new(tools);
        self.implies = Arc::new(implies.to_vec());
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name).map(|e| &e.tool)
    }

    /// Every `(tool, extra scopes)` pair, for authorization.
    pub fn requirements(&self) -> Vec<(String, Vec<String>)> {
        self.tools
            .iter()
            .map(|(n, e)| (n.clone(), e.scopes.clone()))
            .collect()
    }

    /// Whether `caller` holds every scope tool `name` needs (unknown tools: true, so the
    /// protocol layer answers "unknown tool").
    pub fn permits(&self, caller: &Caller, name: &str) -> bool {
        match self.tools.get(name) {
            Some(entry) => {
                caller.is_local_developer()
                    || scopes::satisfies_all(&caller.scopes, &entry.scopes, &self.implies)
            }
            None => true,
        }
    }

    /// Whether some tool needs a scope `caller` lacks (so a call may need refusing).
    pub fn restricts(&self, caller: &Caller) -> bool {
        self.tools.keys().any(|name| !self.permits(caller, name))
    }

    /// The scopes tool `name` needs beyond the server's required scopes.
    pub fn scopes_of(&self, name: &str) -> Vec<String> {
        self.tools
            .get(name)
            .map(|e| e.scopes.clone())
            .unwrap_or_default()
    }

    /// The definitions of the tools `caller` may call, in name order.
    ///
    /// Tools the caller lacks scopes for are hidden from `tools/list`; calling one anyway
    /// gets 403 `insufficient_scope` naming the scopes (`tool_access.rs`), so a client can
    /// step up, and dispatch refuses it whatever reaches it.
    pub fn definitions_for(&self, caller: &Caller) -> Vec<rmcp::model::Tool> {
        self.tools
            .iter()
            .filter(|(name, _)| self.permits(caller, name))
            .map(|(_, e)| e.tool.definition().clone())
            .collect()
    }
}
