//! The audit event: one per `tools/call` of a registered tool, on its own log target
//! ([`TARGET`]) so operators can route it apart from the diagnostic log (docs/observability.md,
//! "Audit events"). With `log.format = "json"` each is one JSON line.
//!
//! # Security
//! It records who (user `oid`, `tid`, client application, the acting agent where the token
//! names one), what (tool, Graph permissions), the outcome and duration, and the trace id.
//! Never a token, an argument or anything Graph returned. Claims are bounded when the token
//! is read (`auth/jwt.rs`).

use std::time::Duration;

use crate::auth::Caller;

/// The log target of audit events.
pub const TARGET: &str = crate::telemetry::AUDIT_TARGET;

/// Writes the audit event of one tool call (`outcome`: `ok`, `tool_error` or `error`).
pub(crate) fn record(
    caller: Option<&Caller>,
    tool: &str,
    permissions: &str,
    outcome: &str,
    elapsed: Duration,
) {
    let (trace_id, _) = crate::telemetry::otel::current_ids().unzip();
    let field = |f: fn(&Caller) -> Option<&String>| caller.and_then(f).map_or("", String::as_str);
    tracing::info!(
        target: TARGET,
        audit = true,
        trace_id = trace_id.as_deref().unwrap_or(""),
        user.oid = caller.map_or("", |c| c.subject.as_str()),
        user.tid = field(|c| c.tenant_id.as_ref()),
        client.app = field(|c| c.client_app.as_ref()),
        agent.app = field(|c| c.agent_app.as_ref()),
        agent.facet = field(|c| c.agent_facet.as_ref()),
        gen_ai.tool.name = tool,
        graph.permissions = permissions,
        outcome,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "tool call"
    );
}
