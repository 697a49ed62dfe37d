//! Prometheus metrics, named `mcp_obo_<area>_<what>_<unit>`, and the `/metrics` handler.
//!
//! Other modules call the recording functions below; none of them takes a token, header
//! or user id, so no secret or personal value can become a label.//!
//! `registry.rs`: the definitions (names, help, labels) and the one registry.

mod registry;

use std::time::Duration;

use actix_web::HttpResponse;
use prometheus::{Encoder, TextEncoder};

use registry::METRICS;

pub fn mcp_request(method: &str, tool: &str, outcome: &str, elapsed: Duration) {
    let m = &*METRICS;
    m.mcp_requests
        .with_label_values(&[method, tool, outcome])
        .inc();
    m.mcp_duration
        .with_label_values(&[method, tool, outcome])
        .observe(elapsed.as_secs_f64());
}

/// One request answered by the stateless fast path (`mcp/direct.rs`).
pub fn mcp_fast_path() {
    METRICS.mcp_fast_path.inc();
}

/// One MCP request refused by `limit`: `body_timeout`, `in_flight` or `rate`.
pub fn limited_request(limit: &'static str) {
    METRICS.mcp_limited.with_label_values(&[limit]).inc();
}

pub fn auth_failure(reason: &str) {
    METRICS.auth_failures.with_label_values(&[reason]).inc();
}

pub fn obo_exchange(outcome: &str, elapsed: Duration) {
    METRICS.obo_exchanges.with_label_values(&[outcome]).inc();
    METRICS.obo_exchange_duration.observe(elapsed.as_secs_f64());
}

pub fn obo_cache_lookup(result: &str, entries: usize) {
    METRICS.obo_cache.with_label_values(&[result]).inc();
    METRICS
        .obo_cache_entries
        .set(i64::try_from(entries).unwrap_or(i64::MAX));
}

pub fn assertion_fetch(source: &str, outcome: &str) {
    METRICS
        .assertion_fetches
        .with_label_values(&[source, outcome])
        .inc();
}

pub fn graph_request(status: &str, elapsed: Duration) {
    METRICS.graph_requests.with_label_values(&[status]).inc();
    METRICS
        .graph_duration
        .with_label_values(&[status])
        .observe(elapsed.as_secs_f64());
}

pub fn jwks_refresh(outcome: &str) {
    METRICS.jwks_refreshes.with_label_values(&[outcome]).inc();
}

/// One shared-cache lookup after an in-process miss: `hit`, `miss`, `failure_cached`,
/// `rejected` (undecryptable or malformed entry) or `bypassed` (shared cache unavailable).
pub fn shared_cache_lookup(result: &'static str) {
    METRICS
        .shared_cache_lookups
        .with_label_values(&[result])
        .inc();
}

/// One failed shared-cache operation: `op` is `connect`, `auth`, `get`, `set`, `lock` or
/// `delete`; `reason` is `timeout` or `error`.
pub fn shared_cache_error(op: &'static str, reason: &'static str) {
    METRICS
        .shared_cache_errors
        .with_label_values(&[op, reason])
        .inc();
}

/// One cross-replica coalescing decision: `acquired`, `waited` or `timed_out`.
pub fn shared_cache_lock(outcome: &'static str) {
    METRICS
        .shared_cache_locks
        .with_label_values(&[outcome])
        .inc();
}

/// Whether the shared cache currently answers.
pub fn shared_cache_available(up: bool) {
    METRICS.shared_cache_up.set(i64::from(up));
}

/// One continuous-access-evaluation challenge from Graph: `reexchanged`,
/// `interaction_required` or `failed`.
pub fn graph_claims_challenge(outcome: &'static str) {
    METRICS
        .graph_claims_challenges
        .with_label_values(&[outcome])
        .inc();
}

/// The fixed label values of the counters above, shown at zero from start-up so that
/// dashboards and alerts see a series before the first event (a rate over a missing series
/// is no data, not 0).
const MCP_OUTCOMES: &[&str] = &["ok", "tool_error", "error"];
const LIMITS: &[&str] = &["body_timeout", "in_flight", "rate"];
const CACHE_RESULTS: &[&str] = &["hit", "miss", "join", "failure_cached"];
const SHARED_CACHE_RESULTS: &[&str] = &["hit", "miss", "failure_cached", "rejected", "bypassed"];
const SHARED_CACHE_OPS: &[&str] = &["connect", "auth", "get", "set", "lock", "delete"];
const SHARED_CACHE_REASONS: &[&str] = &["timeout", "error"];
const SHARED_CACHE_LOCKS: &[&str] = &["acquired", "waited", "timed_out"];
const CLAIMS_OUTCOMES: &[&str] = &["reexchanged", "interaction_required", "failed"];

/// Creates every series whose labels are a known set, at zero: `tools/call` for each of
/// `tools` (and `unknown`) by outcome, the auth failure `reasons`, the limits, the cache
/// results, the shared cache's and the claims challenges' outcomes, a successful exchange
/// and Graph's 200. Open-ended labels (exchange error codes, other Graph statuses) appear
/// when first seen. Idempotent: it never changes a count.
pub fn init_known_labels(tools: &[&str], auth_reasons: &[&str]) {
    let m = &*METRICS;
    for tool in tools.iter().copied().chain(["unknown"]) {
        for outcome in MCP_OUTCOMES {
            let labels = ["tools/call", tool, outcome];
            m.mcp_requests.with_label_values(&labels);
            m.mcp_duration.with_label_values(&labels);
        }
    }
    for reason in auth_reasons {
        m.auth_failures.with_label_values(&[reason]);
    }
    for limit in LIMITS {
        m.mcp_limited.with_label_values(&[limit]);
    }
    m.obo_exchanges.with_label_values(&["ok"]);
    m.graph_requests.with_label_values(&["200"]);
    m.graph_duration.with_label_values(&["200"]);
    for result in CACHE_RESULTS {
        m.obo_cache.with_label_values(&[result]);
    }
    for result in SHARED_CACHE_RESULTS {
        m.shared_cache_lookups.with_label_values(&[result]);
    }
    for op in SHARED_CACHE_OPS {
        for reason in SHARED_CACHE_REASONS {
            m.shared_cache_errors.with_label_values(&[op, reason]);
        }
    }
    for outcome in SHARED_CACHE_LOCKS {
        m.shared_cache_locks.with_label_values(&[outcome]);
    }
    for outcome in CLAIMS_OUTCOMES {
        m.graph_claims_challenges.with_label_values(&[outcome]);
    }
}

/// Everything in Prometheus text exposition format.
pub fn render() -> String {
    let families = METRICS.registry.gather();
    let mut buf = Vec::new();
    if TextEncoder::new().encode(&families, &mut buf).is_err() {
        return String::new();
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// `GET /metrics`.
pub async fn handler() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_as_prometheus_text() {
        mcp_request("tools/call", "HelloTool", "ok", Duration::from_millis(3));
        let text = render();
        assert!(text.contains("mcp_obo_build_info{version="));
        assert!(text.contains(
            "mcp_obo_mcp_requests_total{method=\"tools/call\",outcome=\"ok\",tool=\"HelloTool\"}"
        ));
        assert!(text.contains("mcp_server_operation_duration_seconds_bucket"));
    }

    #[test]
    fn known_label_values_are_shown_at_zero_and_counts_are_kept() {
        shared_cache_lock("waited");
        let before = render();
        init_known_labels(&["ZeroTool"], &["zero_reason"]);
        init_known_labels(&["ZeroTool"], &["zero_reason"]);
        let text = render();
        for series in [
            "mcp_obo_mcp_requests_total{method=\"tools/call\",outcome=\"tool_error\",tool=\"ZeroTool\"} 0",
            "mcp_obo_mcp_requests_total{method=\"tools/call\",outcome=\"error\",tool=\"unknown\"}",
            "mcp_server_operation_duration_seconds_count{method=\"tools/call\",outcome=\"ok\",tool=\"ZeroTool\"} 0",
            "mcp_obo_auth_failures_total{reason=\"zero_reason\"} 0",
            "mcp_obo_mcp_limited_requests_total{limit=\"in_flight\"}",
            "mcp_obo_obo_cache_lookups_total{result=\"join\"}",
            "mcp_obo_obo_shared_cache_lookups_total{result=\"bypassed\"}",
            "mcp_obo_obo_shared_cache_errors_total{op=\"lock\",reason=\"timeout\"}",
            "mcp_obo_graph_claims_challenges_total{outcome=\"interaction_required\"}",
            "mcp_obo_obo_exchanges_total{outcome=\"ok\"}",
        ] {
            assert!(text.contains(series), "{series} missing:\n{text}");
        }
        // Other tests may count too: init only ever leaves a count where it was or above.
        let waited = |t: &str| -> u64 {
            t.lines()
                .find_map(|l| {
                    l.strip_prefix("mcp_obo_obo_shared_cache_locks_total{outcome=\"waited\"} ")
                })
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        assert!(waited(&before) >= 1);
        assert!(waited(&text) >= waited(&before), "a count was reset");
    }
}
