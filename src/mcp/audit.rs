//! The audit event: one per `tools/call` of a registered tool, on its own log target
//! ([`TARGET`]) so operators can route it apart from the diagnostic log (docs/observability.md,
//! "Audit events"): one JSON line each, whatever `log.format` is.
//!
//! # Security
//! It records who (user `oid`, `tid`, client application, the acting agent where the token
//! names one), what (tool, Graph permissions), the outcome and duration, and the trace id.
//! Never a token, an argument or anything Graph returned. Claims are bounded when the token
//! is read (`auth/jwt.rs`).

use std::time::Duration;

use serde::Serialize;

use crate::auth::Caller;

/// The log target of audit events.
pub const TARGET: &str = crate::telemetry::AUDIT_TARGET;

/// One audit line, in the field names of the JSON log format.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(serialize_with = "rfc3339")]
    timestamp: std::time::SystemTime,
    level: &'static str,
    target: &'static str,
    audit: bool,
    trace_id: &'a str,
    #[serde(rename = "user.oid")]
    user_oid: &'a str,
    #[serde(rename = "user.tid")]
    user_tid: &'a str,
    #[serde(rename = "client.app")]
    client_app: &'a str,
    #[serde(rename = "agent.app")]
    agent_app: &'a str,
    #[serde(rename = "agent.facet")]
    agent_facet: &'a str,
    #[serde(rename = "gen_ai.tool.name")]
    tool: &'a str,
    #[serde(rename = "graph.permissions")]
    permissions: &'a str,
    outcome: &'a str,
    duration_ms: f64,
    message: &'static str,
}

/// Writes the audit event of one tool call (`outcome`: `ok`, `tool_error` or `error`): one
/// JSON line on stderr whatever `log.format` is (it is for machines), batched
/// (`telemetry/writer.rs`). Formatted here rather than by the log layer, which cost several
/// microseconds of a warm call for eleven fields; `mcp_obo::audit=off` in the log level
/// still turns it off.
pub(crate) fn record(
    caller: Option<&Caller>,
    tool: &str,
    permissions: &str,
    outcome: &str,
    elapsed: Duration,
) {
    if !tracing::event_enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    let (trace_id, _) = crate::telemetry::otel::current_ids().unzip();
    let field = |f: fn(&Caller) -> Option<&String>| caller.and_then(f).map_or("", String::as_str);
    crate::telemetry::write_audit(&Line {
        timestamp: std::time::SystemTime::now(),
        level: "INFO",
        target: TARGET,
        audit: true,
        trace_id: trace_id.as_deref().unwrap_or(""),
        user_oid: caller.map_or("", |c| c.subject.as_str()),
        user_tid: field(|c| c.tenant_id.as_ref()),
        client_app: field(|c| c.client_app.as_ref()),
        agent_app: field(|c| c.agent_app.as_ref()),
        agent_facet: field(|c| c.agent_facet.as_ref()),
        tool,
        permissions,
        outcome,
        duration_ms: elapsed.as_secs_f64() * 1000.0,
        message: "tool call",
    });
}

/// The time as the JSON log format writes it, straight into the line (no string first).
fn rfc3339<S: serde::Serializer>(at: &std::time::SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_micros(*at))
}
