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
    name: String,
    tool: Arc<dyn Tool>,
    scopes: Vec<String>,
}

/// Tools by name, immutable once the server starts.
#[derive(Clone, Default)]
pub struct Registry {
    /// Sorted by name, one entry per name; [`Resolved`] points into it.
    tools: Arc<Vec<Entry>>,
    implies: Arc<Vec<(String, String)>>,
    /// Every scope some tool needs, once: a caller holding all of them may call every tool.
    all_scopes: Arc<Vec<String>>,
}

/// A tool name looked up for one caller: which tool it names (if any) and whether the caller
/// holds the scopes it needs. Made only by [`Registry::resolve`], so a call is never
/// dispatched without the verdict; the fast path hands the one the HTTP layer made on to
/// dispatch, so a call is looked up and judged once.
#[derive(Clone, Copy, Debug)]
pub struct Resolved {
    /// Index into [`Registry::tools`]; `None`: no tool of that name.
    index: Option<usize>,
    permitted: bool,
}

impl Resolved {
    /// Whether the caller may call it (an unknown tool: yes, so the protocol layer answers
    /// "unknown tool").
    pub fn permitted(self) -> bool {
        self.permitted
    }
}

impl Registry {
    /// Adds a tool; a later tool with the same name replaces the earlier one.
    pub fn with(self, tool: impl Tool) -> Self {
        self.with_all([Arc::new(tool) as Arc<dyn Tool>])
    }

    /// Adds every tool of `tools` (e.g. [`crate::tools::all`]).
    pub fn with_all(self, tools: impl IntoIterator<Item = Arc<dyn Tool>>) -> Self {
        let mut map: BTreeMap<String, (Arc<dyn Tool>, Vec<String>)> = self.by_name();
        for tool in tools {
            let name = tool.definition().name.to_string();
            let scopes = tool.required_scopes();
            map.insert(name, (tool, scopes));
        }
        self.rebuilt(map)
    }

    /// Adds configured `(tool, scope)` requirements and the scope hierarchy.
    pub fn with_policy(
        mut self,
        tool_scopes: &[(String, String)],
        implies: &[(String, String)],
    ) -> Self {
        let mut map = self.by_name();
        for (name, scope) in tool_scopes {
            if let Some((_, scopes)) = map.get_mut(name)
                && !scopes.contains(scope)
            {
                scopes.push(scope.clone());
            }
        }
        self.implies = Arc::new(implies.to_vec());
        self.rebuilt(map)
    }

    fn by_name(&self) -> BTreeMap<String, (Arc<dyn Tool>, Vec<String>)> {
        self.tools
            .iter()
            .map(|e| (e.name.clone(), (e.tool.clone(), e.scopes.clone())))
            .collect()
    }

    fn rebuilt(mut self, map: BTreeMap<String, (Arc<dyn Tool>, Vec<String>)>) -> Self {
        let mut all_scopes: Vec<String> = map.values().flat_map(|(_, s)| s.clone()).collect();
        all_scopes.sort();
        all_scopes.dedup();
        self.all_scopes = Arc::new(all_scopes);
        self.tools = Arc::new(
            map.into_iter()
                .map(|(name, (tool, scopes))| Entry { name, tool, scopes })
                .collect(),
        );
        self
    }

    /// The server instructions: what the tools do, from their own (constant) descriptions,
    /// never from anything a tool returned.
    pub fn instructions(&self) -> String {
        let mut text =
            String::from("Tools here act as the signed-in user against Microsoft Graph.");
        for entry in self.tools.iter() {
            text.push_str(&format!(
                " {}: {}",
                entry.name,
                entry.tool.definition().description.as_deref().unwrap_or("")
            ));
        }
        text
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.tools
            .binary_search_by(|e| e.name.as_str().cmp(name))
            .ok()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.index_of(name).map(|i| &self.tools[i].tool)
    }

    /// Tool `name` for `caller`: one lookup and one scope check, whose verdict dispatch
    /// obeys.
    pub fn resolve(&self, caller: &Caller, name: &str) -> Resolved {
        let index = self.index_of(name);
        let permitted = index.is_none_or(|i| self.entry_permits(caller, &self.tools[i]));
        Resolved { index, permitted }
    }

    /// Tool `name`, judged not callable (there is no caller to judge).
    pub fn refused(&self, name: &str) -> Resolved {
        Resolved {
            index: self.index_of(name),
            permitted: false,
        }
    }

    /// The tool `resolved` names. `resolved` must come from this registry (the registry is
    /// immutable, so its index stays valid).
    pub fn tool(&self, resolved: Resolved) -> Option<&Arc<dyn Tool>> {
        resolved
            .index
            .and_then(|i| self.tools.get(i))
            .map(|e| &e.tool)
    }

    /// The scopes the tool `resolved` names needs beyond the server's required scopes.
    pub fn scopes(&self, resolved: Resolved) -> &[String] {
        resolved
            .index
            .and_then(|i| self.tools.get(i))
            .map_or(&[], |e| e.scopes.as_slice())
    }

    fn entry_permits(&self, caller: &Caller, entry: &Entry) -> bool {
        caller.is_local_developer()
            || scopes::satisfies_all(&caller.scopes, &entry.scopes, &self.implies)
    }

    /// Every `(tool, extra scopes)` pair, for authorization.
    pub fn requirements(&self) -> Vec<(String, Vec<String>)> {
        self.tools
            .iter()
            .map(|e| (e.name.clone(), e.scopes.clone()))
            .collect()
    }

    /// Whether some tool needs a scope `caller` lacks (so a call may need refusing): one
    /// check of every scope any tool needs, not one per tool.
    pub fn restricts(&self, caller: &Caller) -> bool {
        !caller.is_local_developer()
            && !scopes::satisfies_all(&caller.scopes, &self.all_scopes, &self.implies)
    }

    /// The definitions of the tools `caller` may call, in name order.
    ///
    /// Tools the caller lacks scopes for are hidden from `tools/list`; calling one anyway
    /// gets 403 `insufficient_scope` naming the scopes (`tool_access.rs`), so a client can
    /// step up, and dispatch refuses it whatever reaches it.
    pub fn definitions_for(&self, caller: &Caller) -> Vec<rmcp::model::Tool> {
        self.tools
            .iter()
            .filter(|e| self.entry_permits(caller, e))
            .map(|e| e.tool.definition().clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{ContentBlock, JsonObject};

    struct Needs(rmcp::model::Tool, Vec<String>);

    #[async_trait]
    impl Tool for Needs {
        fn definition(&self) -> &rmcp::model::Tool {
            &self.0
        }

        fn required_scopes(&self) -> Vec<String> {
            self.1.clone()
        }

        async fn call(&self, _: &Caller, _: Option<JsonObject>) -> CallToolResult {
            CallToolResult::success(vec![ContentBlock::text("ran")])
        }
    }

    fn tool(name: &'static str, scopes: &[&str]) -> Needs {
        let definition = rmcp::model::Tool::new(name, "test", JsonObject::new());
        Needs(definition, scopes.iter().map(|s| (*s).to_owned()).collect())
    }

    fn user(scopes: &[&str]) -> Caller {
        Caller {
            subject: "ada".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            ..Caller::local_developer()
        }
    }

    fn registry() -> Registry {
        Registry::default()
            .with(tool("Mail", &["Mail.Read"]))
            .with(tool("Files", &["Files.Read"]))
            .with(tool("Hello", &[]))
            .with_policy(&[("Hello".into(), "User.Read".into())], &[])
    }

    #[test]
    fn a_caller_is_restricted_exactly_when_some_tool_is_not_permitted() {
        let registry = registry();
        let names = ["Mail", "Files", "Hello"];
        for scopes in [
            &[][..],
            &["Mail.Read"],
            &["Mail.ReadWrite", "Files.Read", "User.Read"],
            &["Mail.Read", "Files.Read"],
        ] {
            let caller = user(scopes);
            let any_refused = names
                .iter()
                .any(|n| !registry.resolve(&caller, n).permitted());
            assert_eq!(registry.restricts(&caller), any_refused, "{scopes:?}");
        }
        assert!(!registry.restricts(&Caller::local_developer()));
    }

    #[test]
    fn resolve_names_the_tool_its_scopes_and_the_verdict() {
        let registry = registry();
        let caller = user(&["Mail.Read"]);
        let mail = registry.resolve(&caller, "Mail");
        assert!(mail.permitted());
        assert!(registry.tool(mail).is_some());
        let files = registry.resolve(&caller, "Files");
        assert!(!files.permitted());
        assert_eq!(registry.scopes(files), ["Files.Read"]);
        let hello = registry.resolve(&caller, "Hello");
        assert_eq!(registry.scopes(hello), ["User.Read"], "configured scope");
        let unknown = registry.resolve(&caller, "Nope");
        assert!(unknown.permitted(), "dispatch answers unknown tool");
        assert!(registry.tool(unknown).is_none());
        assert!(!registry.refused("Mail").permitted());
    }
}
