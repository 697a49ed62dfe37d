//! The metric definitions: every metric's name, help and labels, registered once in one
//! registry.

use std::sync::LazyLock;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// Latency buckets from 100 µs to 10 s: cache hits to slow token endpoints.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

pub(super) struct Metrics {
    pub registry: Registry,
    pub mcp_requests: IntCounterVec,
    pub mcp_duration: HistogramVec,
    pub mcp_fast_path: IntCounter,
    pub mcp_limited: IntCounterVec,
    pub auth_failures: IntCounterVec,
    pub obo_exchanges: IntCounterVec,
    pub obo_exchange_duration: Histogram,
    pub obo_cache: IntCounterVec,
    pub obo_cache_entries: IntGauge,
    pub assertion_fetches: IntCounterVec,
    pub graph_requests: IntCounterVec,
    pub graph_duration: HistogramVec,
    pub jwks_refreshes: IntCounterVec,
    pub shared_cache_lookups: IntCounterVec,
    pub shared_cache_errors: IntCounterVec,
    pub shared_cache_locks: IntCounterVec,
    pub shared_cache_up: IntGauge,
    pub graph_claims_challenges: IntCounterVec,
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

/// Every metric, registered on first use. One table of definitions, longer than a function
/// should be only because each entry is a name, its help text and its labels.
pub(super) static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
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
