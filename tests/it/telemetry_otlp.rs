//! Traces over the wire: the real binary exports to a real OTLP/HTTP receiver (protobuf,
//! decoded with the OpenTelemetry proto types), and no secret ever reaches logs or spans.

use std::time::Duration;

use crate::support::mcp_http::{ACCEPT_BOTH, post_raw, request};
use crate::support::obo_world::{
    SA_SUBJECT, entra_and_graph, workload_identity_credential, write_sa_token,
};
use crate::support::otlp::{Received, grpc_receiver, receiver};
use crate::support::redirector::Redirector;
use crate::support::tokens::{CLIENT_ID, TestIssuer};
use crate::support::{ServerProcess, binary, entra_env};
use mcp_obo::jose::SigningKey;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;

/// How the binary exports: OTLP/HTTP (protobuf) or OTLP/gRPC.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Protocol {
    Http,
    Grpc,
}

pub(crate) fn spans(received: &Received) -> Vec<Span> {
    received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .flat_map(|r| r.resource_spans.iter())
        .flat_map(|rs| rs.scope_spans.iter())
        .flat_map(|ss| ss.spans.iter().cloned())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The whole on-behalf-of flow against the binary, traced at `trace` log level.
pub(crate) struct Run {
    stderr: String,
    pub(crate) received: Received,
    secrets: Vec<String>,
}

pub(crate) async fn run_flow(trace_id: &str, protocol: Protocol) -> Run {
    let (otlp, received) = match protocol {
        Protocol::Http => receiver().await,
        Protocol::Grpc => grpc_receiver().await,
    };
    let sa_key = SigningKey::generate_rsa("sa-key").expect("rsa");
    let (issuer, graph) = entra_and_graph(
        workload_identity_credential(&sa_key, SA_SUBJECT),
        &[CLIENT_ID],
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sa_file = dir.path().join("token");
    write_sa_token(&sa_key, &sa_file, "otlp");
    let sa_path = sa_file.display().to_string();
    let env = entra_env(&issuer);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend([
        ("MCP_OBO__GRAPH__BASE_URL", graph.url.as_str()),
        ("AZURE_FEDERATED_TOKEN_FILE", sa_path.as_str()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            match protocol {
                Protocol::Http => "http/protobuf",
                Protocol::Grpc => "grpc",
            },
        ),
        ("OTEL_SERVICE_NAME", "mcp-obo-test"),
        ("RUST_LOG", "trace"),
        ("MCP_OBO__LOG__FORMAT", "json"),
    ]);
    let server = ServerProcess::start(binary(), &env).await;
    server.wait_ready().await;
    let user = issuer.entra_token(json!({}));
    let auth = format!("Bearer {user}");
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    for id in 0..2 {
        let reply = post_raw(
            &server.mcp_url(),
            serde_json::to_vec(&request(id, "tools/call", json!({"name": "HelloTool"})))
                .expect("json"),
            &[
                ("content-type", "application/json"),
                ("accept", ACCEPT_BOTH),
                ("mcp-protocol-version", "2025-06-18"),
                ("authorization", &auth),
                ("traceparent", &traceparent),
            ],
        )
        .await;
        assert_eq!(
            reply.json.expect("json")["result"]["isError"],
            false,
            "{}",
            server.stderr()
        );
    }
    // A bad token too, so failure paths are logged as well.
    let _ = post_raw(
        &server.mcp_url(),
        b"{}".to_vec(),
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer not.a.token"),
        ],
    )
    .await;
    // SIGTERM: the process flushes its spans on the way out.
    let server = server.terminate().await;
    let mut secrets = vec![user, std::fs::read_to_string(&sa_file).expect("sa token")];
    secrets.extend(issuer.issued_tokens());
    assert!(secrets.len() >= 3, "the flow exchanged at least once");
    Run {
        stderr: server.stderr(),
        received,
        secrets,
    }
}

#[tokio::test]
async fn spans_reach_a_real_otlp_receiver_with_the_callers_trace_id_and_parentage() {
    let trace_id = "5b8efff798038103d269b633813fc60c";
    assert_flow_spans(&run_flow(trace_id, Protocol::Http).await, trace_id).await;
}

/// What the Container Apps agent injects: `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` and a base
/// endpoint on 4317. The release images are built with default features, as this test is.
#[tokio::test]
async fn spans_reach_a_real_otlp_grpc_receiver_with_the_callers_trace_id() {
    let trace_id = "7a8efff798038103d269b633813fc60e";
    assert_flow_spans(&run_flow(trace_id, Protocol::Grpc).await, trace_id).await;
}

async fn assert_flow_spans(run: &Run, trace_id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while spans(&run.received).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all: Vec<Span> = spans(&run.received)
        .into_iter()
        .filter(|s| hex(&s.trace_id) == trace_id)
        .collect();
    let by_name = |name: &str| -> Vec<&Span> { all.iter().filter(|s| s.name == name).collect() };
    let mcp = by_name("tools/call HelloTool");
    assert_eq!(
        mcp.len(),
        2,
        "one MCP span per call: {:?}",
        all.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    for span in &mcp {
        let parent = all
            .iter()
            .find(|s| s.span_id == span.parent_span_id)
            .expect("MCP span's parent exported");
        assert!(
            parent.name.contains("/mcp"),
            "parent is the HTTP server span, got {}",
            parent.name
        );
        assert_eq!(
            hex(&parent.parent_span_id),
            "00f067aa0ba902b7",
            "the HTTP span continues the caller's span"
        );
    }
    let graph = by_name("GET");
    assert_eq!(graph.len(), 2);
    assert!(
        graph
            .iter()
            .all(|g| mcp.iter().any(|m| m.span_id == g.parent_span_id))
    );
    assert_eq!(by_name("obo.exchange").len(), 2);
    assert_eq!(
        by_name("POST").len(),
        1,
        "one token request: the second call is a cache hit"
    );
    let resource = run
        .received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)[0]
        .resource_spans[0]
        .resource
        .clone()
        .expect("resource");
    assert!(
        format!("{resource:?}").contains("mcp-obo-test"),
        "service.name from OTEL_SERVICE_NAME"
    );
}

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
    let auth = format!("Bearer {token}");
    let trace_id = "7d8efff798038103d269b633813fc60e";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let list = serde_json::to_vec(&request(1, "tools/list", json!({}))).expect("json");
    let headers = [
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
        ("mcp-protocol-version", "2025-06-18"),
        ("traceparent", traceparent.as_str()),
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
        .header("traceparent", &traceparent)
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);

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

/// A collector endpoint answering with a redirect gets no second request elsewhere: the
/// export client follows none, so `OTEL_EXPORTER_OTLP_HEADERS` (API keys) never travel on.
#[tokio::test]
async fn an_otlp_endpoint_answering_a_redirect_is_not_followed_and_its_target_gets_nothing() {
    let (target, received) = receiver().await;
    let redirector = Redirector::start(307, &format!("{target}/v1/traces")).await;
    let server = ServerProcess::start(
        binary(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", redirector.url.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=collector-secret"),
        ],
    )
    .await;
    // ServerProcess::start's /healthz polls made HTTP server spans; SIGTERM flushes them.
    let server = server.terminate().await;
    assert!(
        redirector.requests() >= 1,
        "the spans were exported to the endpoint: {}",
        server.stderr()
    );
    assert!(
        spans(&received).is_empty(),
        "the redirect's target received an export"
    );
    assert!(!server.stderr().contains("collector-secret"));
}
