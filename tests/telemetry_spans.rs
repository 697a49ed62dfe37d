//! Traces and metrics in-process: an in-memory span exporter sees the span tree of a tool
//! call (cache miss, then hit), a failing exchange's error, and `/metrics` moves.
//!
//! One test function: the tracing subscriber and tracer provider are process-global. Its
//! five steps are functions of their own, in the order they run.

use std::collections::HashMap;

use mcp_obo_testkit::mcp_http::{ACCEPT_BOTH, post_raw, request};
use mcp_obo_testkit::obo_world::World;
use mcp_obo_testkit::tokens::entra_error;
use opentelemetry::trace::{SpanId, Status};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::{Value, json};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

fn in_trace(exporter: &InMemorySpanExporter, trace: &str) -> Vec<SpanData> {
    exporter
        .get_finished_spans()
        .expect("spans")
        .into_iter()
        .filter(|s| s.span_context.trace_id().to_string() == trace)
        .collect()
}

fn find<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        panic!(
            "no span {name} among {:?}",
            spans.iter().map(|s| s.name.to_string()).collect::<Vec<_>>()
        )
    })
}

fn parent_name(spans: &[SpanData], child: &SpanData) -> String {
    spans
        .iter()
        .find(|s| s.span_context.span_id() == child.parent_span_id)
        .map(|s| s.name.to_string())
        .unwrap_or_else(|| {
            if child.parent_span_id == SpanId::INVALID {
                "<root>".into()
            } else {
                "<remote>".into()
            }
        })
}

async fn hello(app_url: &str, token: &str, extra: &[(&str, &str)], body: Value) -> Value {
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
        ("mcp-protocol-version", "2025-06-18"),
        ("authorization", auth.as_str()),
    ];
    headers.extend_from_slice(extra);
    let reply = post_raw(app_url, serde_json::to_vec(&body).expect("json"), &headers).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json.expect("json")["result"].clone()
}

/// HelloTool as `token` (request `id`) in the trace `trace_id`, sent as the HTTP
/// `traceparent`: the tool result.
async fn hello_in_trace(app_url: &str, token: &str, id: u64, trace_id: &str) -> Value {
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let call = request(id, "tools/call", json!({"name": "HelloTool"}));
    hello(
        app_url,
        token,
        &[("traceparent", traceparent.as_str())],
        call,
    )
    .await
}

fn scrape(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn metrics(url: &str) -> HashMap<String, f64> {
    let text = reqwest::get(url)
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    scrape(&text)
}

#[tokio::test]
async fn a_tool_call_produces_one_trace_with_every_hop_and_metrics_move() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let log = mcp_obo::telemetry::LogSettings {
        format: mcp_obo::telemetry::LogFormat::Text,
        level: "info".into(),
        requests: mcp_obo::telemetry::RequestLogging::All,
    };
    let _telemetry = mcp_obo::telemetry::init_with_provider(&log, provider);
    // Any endpoint turns the HTTP server span on; the in-memory provider does the export.
    let w = World::start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")]).await;
    let token = w.user(1);
    let before = metrics(&w.app.metrics_url()).await;

    a_cache_miss_is_traced_hop_by_hop(&w, &exporter, &token).await;
    a_cache_hit_continues_the_trace_in_meta(&w, &exporter, &token).await;
    a_failing_exchange_records_its_error(&w, &exporter).await;
    let after = metrics(&w.app.metrics_url()).await;
    metrics_moved_with_the_calls(&before, &after);
    a_cae_challenge_is_traced_and_counted(&w, &exporter, &token, &after).await;
}

/// How much the sample `name` grew from `before` to `after`.
fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, name: &str) -> f64 {
    after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
}

/// 1. Cache miss, trace context from the HTTP traceparent header: every hop's span, each
///    under its parent, with its attributes.
async fn a_cache_miss_is_traced_hop_by_hop(
    w: &World,
    exporter: &InMemorySpanExporter,
    token: &str,
) {
    let result = hello_in_trace(&w.app.mcp_url(), token, 7, TRACE_ID).await;
    assert_eq!(result["isError"], false, "{result}");
    let spans = in_trace(exporter, TRACE_ID);
    let mcp = find(&spans, "tools/call HelloTool");
    let http = spans
        .iter()
        .find(|s| {
            attr(s, "http.request.method").as_deref() == Some("POST") && s.name.contains("/mcp")
        })
        .unwrap_or_else(|| {
            panic!(
                "no HTTP server span: {:?}",
                spans.iter().map(|s| s.name.to_string()).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        parent_name(&spans, http),
        "<remote>",
        "the HTTP span continues the caller's trace"
    );
    assert_eq!(parent_name(&spans, mcp), http.name.to_string());
    assert_eq!(attr(mcp, "mcp.method.name").as_deref(), Some("tools/call"));
    assert_eq!(attr(mcp, "gen_ai.tool.name").as_deref(), Some("HelloTool"));
    assert_eq!(attr(mcp, "jsonrpc.request.id").as_deref(), Some("7"));
    assert_eq!(
        attr(mcp, "mcp.protocol.version").as_deref(),
        Some("2025-06-18")
    );
    let auth = find(&spans, "mcp.auth");
    assert_eq!(parent_name(&spans, auth), http.name.to_string());
    assert_eq!(attr(auth, "auth.outcome").as_deref(), Some("authorized"));
    let exchange = find(&spans, "obo.exchange");
    assert_eq!(parent_name(&spans, exchange), "tools/call HelloTool");
    assert_eq!(attr(exchange, "obo.cache").as_deref(), Some("miss"));
    assert_eq!(attr(exchange, "obo.grant").as_deref(), Some("entra_obo"));
    assert_eq!(attr(exchange, "obo.outcome").as_deref(), Some("ok"));
    let assertion = find(&spans, "obo.client_assertion");
    assert_eq!(parent_name(&spans, assertion), "obo.exchange");
    assert_eq!(
        attr(assertion, "obo.assertion.source").as_deref(),
        Some("workload identity")
    );
    let token_call = find(&spans, "POST");
    assert_eq!(parent_name(&spans, token_call), "obo.exchange");
    assert_eq!(
        attr(token_call, "http.response.status_code").as_deref(),
        Some("200")
    );
    let graph = find(&spans, "GET");
    assert_eq!(parent_name(&spans, graph), "tools/call HelloTool");
    assert_eq!(
        attr(graph, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert!(attr(graph, "url.full").is_some_and(|u| u.ends_with("/v1.0/me")));
}

/// 2. Cache hit, trace context from params._meta.traceparent (2026-07-28 style): no token
///    request.
async fn a_cache_hit_continues_the_trace_in_meta(
    w: &World,
    exporter: &InMemorySpanExporter,
    token: &str,
) {
    let meta_trace = "0af7651916cd43dd8448eb211c80319c";
    let call = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {
        "name": "HelloTool", "_meta": {"traceparent": format!("00-{meta_trace}-b7ad6b7169203331-01")}
    }});
    assert_eq!(
        hello(&w.app.mcp_url(), token, &[], call).await["isError"],
        false
    );
    let spans = in_trace(exporter, meta_trace);
    assert_eq!(
        attr(find(&spans, "obo.exchange"), "obo.cache").as_deref(),
        Some("hit")
    );
    assert!(
        spans.iter().all(|s| s.name != "POST"),
        "a cache hit makes no token request"
    );
    assert_eq!(w.issuer.exchanges(), 1);
}

/// 3. A failing exchange records the error on its span.
async fn a_failing_exchange_records_its_error(w: &World, exporter: &InMemorySpanExporter) {
    w.issuer
        .script_token_endpoint(400, None, entra_error("invalid_grant", 65001, json!({})));
    let failing_trace = "11111111111111111111111111111111";
    let result = hello_in_trace(&w.app.mcp_url(), &w.user(2), 9, failing_trace).await;
    assert_eq!(result["isError"], true);
    let spans = in_trace(exporter, failing_trace);
    let exchange = find(&spans, "obo.exchange");
    assert!(
        matches!(exchange.status, Status::Error { .. }),
        "{:?}",
        exchange.status
    );
    assert_eq!(
        attr(exchange, "obo.error_code").as_deref(),
        Some("AADSTS65001")
    );
    assert!(matches!(
        find(&spans, "tools/call HelloTool").status,
        Status::Error { .. }
    ));
}

/// 4. Metrics moved with the calls.
fn metrics_moved_with_the_calls(before: &HashMap<String, f64>, after: &HashMap<String, f64>) {
    let delta = |name: &str| delta(before, after, name);
    assert_eq!(
        delta(r#"mcp_obo_mcp_requests_total{method="tools/call",outcome="ok",tool="HelloTool"}"#),
        2.0
    );
    assert_eq!(
        delta(
            r#"mcp_obo_mcp_requests_total{method="tools/call",outcome="tool_error",tool="HelloTool"}"#
        ),
        1.0
    );
    assert_eq!(
        delta(r#"mcp_obo_obo_cache_lookups_total{result="hit"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"mcp_obo_obo_cache_lookups_total{result="miss"}"#),
        2.0
    );
    assert_eq!(delta(r#"mcp_obo_obo_exchanges_total{outcome="ok"}"#), 1.0);
    assert_eq!(
        delta(r#"mcp_obo_obo_exchanges_total{outcome="AADSTS65001"}"#),
        1.0
    );
    assert_eq!(delta(r#"mcp_obo_graph_requests_total{status="200"}"#), 2.0);
    assert!(after.keys().any(|k| k.starts_with("mcp_obo_build_info{")));
    assert!(after.contains_key("mcp_obo_obo_cache_entries"));
}

/// 5. A continuous-access-evaluation challenge from Graph for user 1's cached token: the
///    Graph span says so, the re-exchange bypasses the cache, the challenge is counted.
async fn a_cae_challenge_is_traced_and_counted(
    w: &World,
    exporter: &InMemorySpanExporter,
    token: &str,
    before: &HashMap<String, f64>,
) {
    let revoked = w.issuer.issued_tokens()[0].clone();
    let nbf = json!({"access_token": {"nbf": {"essential": true, "value": "1604106651"}}});
    w.graph.revoke(&revoked, &nbf);
    let cae_trace = "22222222222222222222222222222222";
    let result = hello_in_trace(&w.app.mcp_url(), token, 10, cae_trace).await;
    assert_eq!(result["isError"], false, "{result}");
    let spans = in_trace(exporter, cae_trace);
    let refused = spans
        .iter()
        .find(|s| s.name == "GET" && attr(s, "http.response.status_code").as_deref() == Some("401"))
        .expect("the refused Graph call's span");
    assert_eq!(
        attr(refused, "graph.cae_challenge").as_deref(),
        Some("true")
    );
    let bypass = spans
        .iter()
        .find(|s| s.name == "obo.exchange" && attr(s, "obo.cache").as_deref() == Some("bypass"))
        .expect("the re-exchange's span");
    assert_eq!(attr(bypass, "obo.outcome").as_deref(), Some("ok"));
    assert_eq!(
        attr(bypass, "obo.claims").as_deref(),
        Some("access_token.nbf")
    );
    assert!(
        spans
            .iter()
            .all(|s| attr(s, "obo.claims").is_none_or(|c| !c.contains("1604106651"))),
        "no claim value in a span"
    );
    let after = metrics(&w.app.metrics_url()).await;
    let delta = |name: &str| delta(before, &after, name);
    assert_eq!(
        delta(r#"mcp_obo_graph_claims_challenges_total{outcome="reexchanged"}"#),
        1.0
    );
    assert_eq!(delta(r#"mcp_obo_graph_requests_total{status="401"}"#), 1.0);
}
