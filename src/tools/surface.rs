//! The tool surface: a tool is a [`GraphTool`] (its name, description, Graph permissions,
//! argument and output types, and what it does); [`Typed`] turns it into an MCP tool. The
//! surface generates the input and output schemas, validates the arguments (a bad one is an
//! `isError` result naming the field and the rule, so the model can correct itself), turns
//! a failure into text the user can act on, and logs it for the operator with the trace id.
//! The MCP span, the metrics and the audit event are recorded around every tool by
//! `mcp/handler.rs`, from [`crate::mcp::Tool::permissions`].

use async_trait::async_trait;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, ToolAnnotations};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::GraphPermission;
use crate::auth::Caller;
use crate::graph::{BuildError, Error, GraphClient};

/// What a tool returns: the text shown to the user and the structured result.
pub struct Reply<T> {
    /// The result as text (`content`), for clients that show no `structuredContent`.
    pub text: String,
    /// The result as data (`structuredContent`), described by the output schema.
    pub output: T,
}

/// A tool that calls Microsoft Graph for the signed-in user. Everything else (schemas,
/// validation, errors, telemetry, audit) is the surface's.
#[async_trait]
pub trait GraphTool: Sized + Send + Sync + 'static {
    /// The MCP name, e.g. `UpcomingEvents`.
    const NAME: &'static str;
    /// The human title clients show.
    const TITLE: &'static str;
    /// What the tool does, for the model (a constant: nothing from Graph ever enters it).
    const DESCRIPTION: &'static str;
    /// The Graph delegated permissions its calls need; its token is requested for exactly these.
    const PERMISSIONS: &'static [GraphPermission];
    /// The arguments; `#[schemars(range(min = .., max = ..))]` on an integer is enforced.
    type Args: DeserializeOwned + JsonSchema + Send + 'static;
    /// The structured result.
    type Output: Serialize + JsonSchema + 'static;

    /// MCP annotations: by default read-only, idempotent, and closed-world.
    fn annotations() -> ToolAnnotations {
        ToolAnnotations::new()
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false)
    }

    /// Builds the tool, preparing its Graph endpoints ([`GraphClient::endpoint`]).
    ///
    /// # Errors
    /// When an endpoint's path is not a Graph path.
    fn build(graph: &GraphClient) -> Result<Self, BuildError>;

    /// What the tool does, as `caller`.
    async fn run(&self, caller: &Caller, args: Self::Args) -> Result<Reply<Self::Output>, Error>;
}

/// The names of `permissions` as they appear in `scp`, for [`GraphClient::endpoint`].
pub fn permission_values(permissions: &[GraphPermission]) -> Vec<&'static str> {
    permissions.iter().map(|p| p.value).collect()
}

/// An integer argument's declared range, read from the generated input schema.
struct Range {
    field: String,
    min: Option<i64>,
    max: Option<i64>,
}

impl Range {
    fn rule(&self) -> String {
        match (self.min, self.max) {
            (Some(min), Some(max)) => format!("must be an integer from {min} to {max}"),
            (Some(min), None) => format!("must be an integer of at least {min}"),
            (None, Some(max)) => format!("must be an integer of at most {max}"),
            (None, None) => "must be an integer".to_owned(),
        }
    }

    fn admits(&self, value: &Value) -> bool {
        value.as_i64().is_some_and(|v| {
            self.min.is_none_or(|min| v >= min) && self.max.is_none_or(|max| v <= max)
        })
    }

    /// `argument `days`: must be an integer from 1 to 31 (got 40)`.
    fn refusal(&self, got: &Value) -> String {
        let got = got.to_string();
        format!(
            "argument `{}`: {} (got {})",
            self.field,
            self.rule(),
            crate::telemetry::bounded(&got)
        )
    }
}

/// The integer properties of an input schema, with their ranges.
fn ranges(schema: &JsonObject) -> Vec<Range> {
    let Some(Value::Object(properties)) = schema.get("properties") else {
        return Vec::new();
    };
    let is_integer = |p: &JsonObject| match p.get("type") {
        Some(Value::String(t)) => t == "integer",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "integer"),
        _ => false,
    };
    properties
        .iter()
        .filter_map(|(field, p)| Some((field, p.as_object()?)))
        .filter(|(_, p)| is_integer(p))
        .map(|(field, p)| Range {
            field: field.clone(),
            min: p.get("minimum").and_then(Value::as_i64),
            max: p.get("maximum").and_then(Value::as_i64),
        })
        .collect()
}

/// A [`GraphTool`] as an MCP tool.
pub struct Typed<T: GraphTool> {
    tool: T,
    definition: rmcp::model::Tool,
    ranges: Vec<Range>,
    permissions: String,
}

impl<T: GraphTool> Typed<T> {
    /// Builds `T` and its definition (schemas generated from its types).
    ///
    /// # Errors
    /// As [`GraphTool::build`].
    pub fn new(graph: &GraphClient) -> Result<Self, BuildError> {
        let definition = rmcp::model::Tool::new(T::NAME, T::DESCRIPTION, JsonObject::new())
            .with_title(T::TITLE)
            .with_input_schema::<T::Args>()
            .with_output_schema::<T::Output>()
            .with_annotations(T::annotations());
        Ok(Self {
            tool: T::build(graph)?,
            ranges: ranges(&definition.input_schema),
            definition,
            permissions: permission_values(T::PERMISSIONS).join(" "),
        })
    }

    /// The arguments as `T::Args`, or the message naming the field and the rule.
    fn parse(&self, arguments: Option<JsonObject>) -> Result<T::Args, String> {
        let arguments = arguments.unwrap_or_default();
        for range in &self.ranges {
            if let Some(value) = arguments.get(&range.field)
                && !value.is_null()
                && !range.admits(value)
            {
                return Err(range.refusal(value));
            }
        }
        serde_path_to_error::deserialize(Value::Object(arguments)).map_err(|e| {
            let field = e.path().to_string();
            match field.as_str() {
                "." => format!("arguments: {}", e.inner()),
                _ => format!("argument `{field}`: {}", e.inner()),
            }
        })
    }
}

#[async_trait]
impl<T: GraphTool> crate::mcp::Tool for Typed<T> {
    fn definition(&self) -> &rmcp::model::Tool {
        &self.definition
    }

    fn permissions(&self) -> &str {
        &self.permissions
    }

    async fn call(&self, caller: &Caller, arguments: Option<JsonObject>) -> CallToolResult {
        let args = match self.parse(arguments) {
            Ok(args) => args,
            Err(message) => return CallToolResult::error(vec![ContentBlock::text(message)]),
        };
        match self.tool.run(caller, args).await {
            Ok(reply) => {
                let mut result = CallToolResult::success(vec![ContentBlock::text(reply.text)]);
                result.structured_content = serde_json::to_value(&reply.output).ok();
                result
            }
            Err(e) => {
                // The detail (a URL, a file path, a library's message) is for the operator,
                // with the trace id; the caller gets `user_message`, which has none of it.
                let (trace_id, span_id) = crate::telemetry::otel::current_ids().unzip();
                tracing::warn!(
                    tool = T::NAME,
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
