//! What reaches the logs and the exported spans: failed requests are logged by default and
//! every request with `log.requests = all`, and no token ever appears, not at `trace` level
//! and not from a query string. The export itself is in `telemetry_otlp`.

use crate::support::mcp_http::{ACCEPT_BOTH, post_raw, request};
use crate::support::otlp::{Received, receiver};
use crate::support::tokens::TestIssuer;
use crate::support::{ServerProcess, binary, entra_env};
use crate::telemetry_otlp::{Protocol, hex, run_flow, spans};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;

#[tokio::test]
async fn no_token_appears_in_logs_or_spans_even_at_trace_level() {
    let run = run_flow("6c8efff798038103d269b633813fc60d", Protocol::Http).await;
    let exported = format!(
        "{:?}",
        *run.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    );
    assert!(run.stderr.len() > 1000, "trace-level logs were captured");
    assert!(!exported.is_empty());
    for secret in &run.secrets {
        let signature = secret.rsplit('.').next().unwrap_or(secret);
        for (what, text) in [("logs", &run.stderr), ("spans", &exported)] {
            assert!(
                !text.contains(secret.as_str()),
                "a token appeared in the {what}"
            );
            assert!(
                !text.contains(signature),
                "a token signature appeared in the {what}"
            );
        }
    }
    assert!(
        !run.stderr.contains("Bearer "),
        "an Authorization header value appeared in the logs"
    );
}

#[tokio::test]
async fn failed_requests_are_logged_by_default_and_every_request_with_log_requests_all() {
    let list = serde_json::to_vec(&request(1, "tools/list", json!({}))).expect("json");
    let ok_headers = [
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
        ("mcp-protocol-version", "2025-06-18"),
    ];
    let bad_headers = [("content-type", "text/plain"), ("accept", ACCEPT_BOTH)];
    for (mode, logs_success) in [
        (None, false),
        (Some("all"), true),
        (Some("failures"), false),
    ] {
        let env: Vec<(&str, &str)> = mode
            .map(|m| ("MCP_OBO__LOG__REQUESTS", m))
            .into_iter()
            .collect();
        let server = ServerProcess::start(binary(), &env).await;
        let ok = post_raw(&server.mcp_url(), list.clone(), &ok_headers).await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        let bad = post_raw(&server.mcp_url(), list.clone(), &bad_headers).await;
        assert_eq!(bad.status, 415, "{}", bad.text);
        // The line is written before the response is sent.
        let log = server.stderr();
        let lines = |status: &str| {
            log.lines()
                .filter(|l| {
                    l.contains(" request ")
                        && l.contains("url.path=/mcp")
                        && l.contains(&format!("http.response.status_code={status}"))
                })
                .count()
        };
        assert_eq!(
            lines("415"),
            1,
            "log.requests={mode:?}: the 415 is logged:\n{log}"
        );
        assert_eq!(
            lines("200"),
            usize::from(logs_success),
            "log.requests={mode:?}: successful request lines:\n{log}"
        );
    }
}

/// Every attribute value of every exported span (its events and links too) and of every
/// resource, as text.
fn exported_attribute_values(received: &Received) -> Vec<(String, String)> {
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    fn values(out: &mut Vec<(String, String)>, attributes: &[KeyValue]) {
        out.extend(
            attributes
                .iter()
                .map(|kv| (kv.key.clone(), format!("{:?}", kv.value))),
        );
    }
    let mut out = Vec::new();
    let requests = received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for resource_spans in requests.iter().flat_map(|r| r.resource_spans.iter()) {
        if let Some(resource) = &resource_spans.resource {
            values(&mut out, &resource.attributes);
        }
        for span in resource_spans
            .scope_spans
            .iter()
            .flat_map(|ss| ss.spans.iter())
        {
            out.push(("(span name)".into(), span.name.clone()));
            values(&mut out, &span.attributes);
            for event in &span.events {
                values(&mut out, &event.attributes);
            }
            for link in &span.links {
                values(&mut out, &link.attributes);
            }
            if let Some(status) = &span.status {
                out.push(("(status)".into(), status.message.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn a_token_in_the_query_string_reaches_no_span_attribute() {
    let (otlp, received) = receiver().await;
    let issuer = TestIssuer::start().await;
    let env = entra_env(&issuer);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
        ("OTEL_SERVICE_NAME", "mcp-obo-test"),
    ]);
    let server = ServerProcess::start(binary(), &env).await;
    server.wait_ready().await;
    // A valid token: the query must not reach a trace whatever the token's fate.
    let token = issuer.entra_token(json!({}));
    let trace_id = "7d8efff798038103d269b633813fc60e";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    send_the_token_in_queries(&server, &token, &traceparent).await;

    server.terminate().await;

    let http_spans: Vec<Span> = spans(&received)
        .into_iter()
        .filter(|s| hex(&s.trace_id) == trace_id && hex(&s.parent_span_id) == "00f067aa0ba902b7")
        .collect();
    assert_eq!(
        http_spans.len(),
        3,
        "one HTTP server span per request: {:?}",
        http_spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let signature = token.rsplit('.').next().unwrap_or(&token);
    let values = exported_attribute_values(&received);
    assert!(
        values.iter().any(|(k, _)| k == "url.path"),
        "the HTTP spans' attributes were inspected"
    );
    for (key, value) in &values {
        assert!(
            !value.contains(&token) && !value.contains(signature),
            "the token appeared in the exported attribute {key}"
        );
    }
}

/// Three requests in the trace of `traceparent` with `token` in the query: as
/// `access_token` to /mcp (refused, 400), as another parameter beside a valid Authorization
/// header (served), and to /healthz.
async fn send_the_token_in_queries(server: &ServerProcess, token: &str, traceparent: &str) {
    let auth = format!("Bearer {token}");
    let list = serde_json::to_vec(&request(1, "tools/list", json!({}))).expect("json");
    let headers = [
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
        ("mcp-protocol-version", "2025-06-18"),
        ("traceparent", traceparent),
    ];
    let in_query = post_raw(
        &format!("{}?access_token={token}", server.mcp_url()),
        list.clone(),
        &headers,
    )
    .await;
    assert_eq!(
        in_query.status, 400,
        "the query still reaches the authorization check: {}",
        in_query.text
    );
    let mut with_auth = headers.to_vec();
    with_auth.push(("authorization", auth.as_str()));
    let other_param = post_raw(
        &format!("{}?state=x&code={token}", server.mcp_url()),
        list.clone(),
        &with_auth,
    )
    .await;
    assert_eq!(other_param.status, 200, "{}", other_param.text);
    let health = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{}/healthz?code={token}",
            server.port
        ))
        .header("traceparent", traceparent)
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
}
