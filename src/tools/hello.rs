//! `HelloTool`: calls Microsoft Graph `GET /v1.0/me` as the caller and greets them by name,
//! with their email (`mail`, else `userPrincipalName`).

use std::sync::Arc;

use async_trait::async_trait;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, ToolAnnotations};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::graph::{GraphClient, Me};
use crate::mcp::Tool;

/// The tool's name as users type it (`#HelloTool` in VS Code).
pub const NAME: &str = "HelloTool";

/// HelloTool's structured result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Greeting {
    /// The greeting shown to the user.
    pub greeting: String,
    /// The user's display name from Microsoft Graph.
    pub display_name: Option<String>,
    /// The user's email: `mail`, else `userPrincipalName`.
    pub email: Option<String>,
    /// The user's sign-in name.
    pub user_principal_name: Option<String>,
}

impl Greeting {
    fn from_profile(me: Me) -> Self {
        let email = me.mail.clone().or_else(|| me.user_principal_name.clone());
        let who = me
            .display_name
            .clone()
            .or_else(|| me.user_principal_name.clone())
            .unwrap_or_else(|| "there".to_owned());
        let greeting = match &email {
            Some(email) => format!("Hello, {who}! Your email is {email}."),
            None => format!("Hello, {who}! Your profile has no email address."),
        };
        Self {
            greeting,
            display_name: me.display_name,
            email,
            user_principal_name: me.user_principal_name,
        }
    }
}

/// Greets the signed-in user.
pub struct HelloTool {
    graph: GraphClient,
    definition: rmcp::model::Tool,
}

impl HelloTool {
    pub fn new(graph: GraphClient) -> Self {
        let input_schema: JsonObject = serde_json::from_value(serde_json::json!({
            "type": "object",
            "properties": {},
            "additionalProperties": false,
        }))
        .unwrap_or_default();
        let definition = rmcp::model::Tool::new(
            NAME,
            "Greets the signed-in user by name and shows their email address, read from their Microsoft 365 profile (Microsoft Graph /me) on their behalf.",
            Arc::new(input_schema),
        )
        .with_title("Hello")
        .with_output_schema::<Greeting>()
        .with_annotations(
            ToolAnnotations::new()
                .read_only(true)
                .destructive(false)
                .idempotent(true)
                .open_world(false),
        );
        Self { graph, definition }
    }
}

#[async_trait]
impl Tool for HelloTool {
    fn definition(&self) -> &rmcp::model::Tool {
        &self.definition
    }

    async fn call(&self, caller: &Caller, _arguments: Option<JsonObject>) -> CallToolResult {
        match self.graph.me(caller).await {
            Ok(me) => {
                let greeting = Greeting::from_profile(me);
                let text = greeting.greeting.clone();
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = serde_json::to_value(&greeting).ok();
                result
            }
            Err(e) => {
                // The detail (a URL, a file path, a library's message) is for the operator,
                // with the trace id; the caller gets `user_message`, which has none of it.
                let (trace_id, span_id) = crate::telemetry::otel::current_ids().unzip();
                tracing::warn!(
                    tool = NAME,
                    error = %e,
                    trace_id = trace_id.as_deref().unwrap_or(""),
                    span_id = span_id.as_deref().unwrap_or(""),
                    "tool call failed"
                );
                CallToolResult::error(vec![ContentBlock::text(e.user_message())])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(mail: Option<&str>, upn: Option<&str>) -> Me {
        Me {
            id: Some("1".into()),
            display_name: Some("Ada Lovelace".into()),
            mail: mail.map(Into::into),
            user_principal_name: upn.map(Into::into),
        }
    }

    #[test]
    fn greeting_prefers_mail_then_upn() {
        let g = Greeting::from_profile(me(
            Some("ada@contoso.com"),
            Some("ada@contoso.onmicrosoft.com"),
        ));
        assert_eq!(g.email.as_deref(), Some("ada@contoso.com"));
        assert_eq!(
            g.greeting,
            "Hello, Ada Lovelace! Your email is ada@contoso.com."
        );
        let g = Greeting::from_profile(me(None, Some("ada@contoso.onmicrosoft.com")));
        assert_eq!(g.email.as_deref(), Some("ada@contoso.onmicrosoft.com"));
    }
}
