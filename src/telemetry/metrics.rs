//! Prometheus metrics, named `mcp_obo_<area>_<what>_<unit>`, and the `/metrics` handler.
//!
//! Other modules call the recording functions below; none of them takes a token, header
//! or user id, so no secret or personal value can become a label.

use std::sync::LazyLock;
use std::time::Duration;

use actix_web::HttpResponse;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets from 100 µs to 10 s: cache hits to slow token endpoints.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

struct Metrics {
    registry: Registry,
    mcp_requests: IntCounterVec,
    mcp_duration: HistogramVec,
    mcp_fast_path: IntCounter,
    mcp_limited: IntCounterVec,
    auth_failures: IntCounterVec,
    obo_exchanges: IntCounterVec,
    obo_exchange_duration: Histogram,
    obo_cache: IntCounterVec,
    obo_cache_entries: IntGauge,
    assertion_fetches: IntCounterVec,
    graph_requests: IntCounterVec,
    graph_duration: HistogramVec,
    jwks_refreshes: IntCounterVec,
    shared_cache_lookups: IntCounterVec,
    shared_cache_errors: IntCounterVec,
    shared_cache_locks: IntCounterVec,
    shared_cache_up: IntGauge,
    graph_claims_challenges: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|_| unreachable_metric(name));
    let _ = registry.register(Box::new(metric.clone()));
    metric
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(BUCKETS.to_vec());
    let metric = HistogramVec::new(opts, labels).unwrap_or_else(|_| unreachable_metric(name));
    let _ = registry.register(Box::new(metric.clone()));
    metric
}

/// Metric definitions are constants; an invalid one is a programming error caught by the
/// `metrics_render_as_prometheus_text` test.
fn unreachable_metric(name: &str) -> ! {
    panic!("invalid metric definition {name}")
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let build = IntGaugeVec::new(
        Opts::new("mcp_obo_build_info", "Build information (value 1)"),
        &["version"],
    )
    .unwrap_or_else(|_| unreachable_metric("mcp_obo_build_info"));
    build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    let _ = registry.register(Box::new(build));
    let obo_exchange_duration = Histogram::with_opts(
        HistogramOpts::new(
            "mcp_obo_obo_exchange_duration_seconds",
            "On-behalf-of exchange duration",
        )
        .buckets(BUCKETS.to_vec()),
    )
    .unwrap_or_else(|_| unreachable_metric("mcp_obo_obo_exchange_duration_seconds"));
    let _ = registry.register(Box::new(obo_exchange_duration.clone()));
    let obo_cache_entries = IntGauge::new(
        "mcp_obo_obo_cache_entries",
        "Downstream tokens in the on-behalf-of cache",
    )
    .unwrap_or_else(|_| unreachable_metric("mcp_obo_obo_cache_entries"));
    let _ = registry.register(Box::new(obo_cache_entries.clone()));
    let mcp_fast_path = IntCounter::new(
        "mcp_obo_mcp_fast_path_requests_total",
        "MCP requests answered by the stateless fast path rather than rmcp's transport",
    )
    .unwrap_or_else(|_| unreachable_metric("mcp_obo_mcp_fast_path_requests_total"));
    let _ = registry.register(Box::new(mcp_fast_path.clone()));
    let shared_cache_up = IntGauge::new(
        "mcp_obo_obo_shared_cache_up",
        "1 while the shared token cache answers, 0 while it is bypassed (stays 0 when it is off)",
    )
    .unwrap_or_else(|_| unreachable_metric("mcp_obo_obo_shared_cache_up"));
    let _ = registry.register(Box::new(shared_cache_up.clone()));
    Metrics {
        shared_cache_up,
        shared_cache_lookups: counter(
            &registry,
            "mcp_obo_obo_shared_cache_lookups_total",
            "Shared (second-level) token cache lookups after an in-process miss: hit, miss, failure_cached, rejected (an entry that fails to decrypt or parse) or bypassed (the shared cache is unavailable)",
            &["result"],
        ),
        shared_cache_errors: counter(
            &registry,
            "mcp_obo_obo_shared_cache_errors_total",
            "Shared token cache operations that failed, by operation (connect, auth, get, set, lock, delete) and reason (timeout, error)",
            &["op", "reason"],
        ),
        shared_cache_locks: counter(
            &registry,
            "mcp_obo_obo_shared_cache_locks_total",
            "Cross-replica exchange coalescing: acquired (this replica exchanges), waited (another replica's entry arrived) or timed_out (exchanged alone after waiting)",
            &["outcome"],
        ),
        graph_claims_challenges: counter(
            &registry,
            "mcp_obo_graph_claims_challenges_total",
            "Continuous access evaluation challenges (401 insufficient_claims) from Microsoft Graph: reexchanged, interaction_required or failed",
            &["outcome"],
        ),
        mcp_fast_path,
        mcp_requests: counter(
            &registry,
            "mcp_obo_mcp_requests_total",
            "MCP requests by method, tool and outcome",
            &["method", "tool", "outcome"],
        ),
        mcp_duration: histogram(
            &registry,
            "mcp_server_operation_duration_seconds",
            "MCP server operation duration (OpenTelemetry mcp.server.operation.duration)",
            &["method", "tool", "outcome"],
        ),
        mcp_limited: counter(
            &registry,
            "mcp_obo_mcp_limited_requests_total",
            "MCP requests refused by a limit: body_timeout (408), in_flight or rate (429)",
            &["limit"],
        ),
        auth_failures: counter(
            &registry,
            "mcp_obo_auth_failures_total",
            "Refused MCP requests by reason",
            &["reason"],
        ),
        obo_exchanges: counter(
            &registry,
            "mcp_obo_obo_exchanges_total",
            "On-behalf-of exchanges by outcome",
            &["outcome"],
        ),
        obo_exchange_duration,
        obo_cache: counter(
            &registry,
            "mcp_obo_obo_cache_lookups_total",
            "On-behalf-of cache lookups: hit, miss, join (single-flight) or failure_cached (a recent failure of the caller's state)",
            &["result"],
        ),
        obo_cache_entries,
        assertion_fetches: counter(
            &registry,
            "mcp_obo_obo_assertion_fetches_total",
            "Client assertion fetches by source and outcome",
            &["source", "outcome"],
        ),
        graph_requests: counter(
            &registry,
            "mcp_obo_graph_requests_total",
            "Microsoft Graph requests by HTTP status",
            &["status"],
        ),
        graph_duration: histogram(
            &registry,
            "mcp_obo_graph_request_duration_seconds",
            "Microsoft Graph request duration",
            &["status"],
        ),
        jwks_refreshes: counter(
            &registry,
            "mcp_obo_jwks_refreshes_total",
            "Signing key refreshes by outcome",
            &["outcome"],
        ),
        registry,
    }
});

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
