//! Traces over the wire: the real binary exports to a real OTLP/HTTP or OTLP/gRPC receiver
//! (protobuf, decoded with the OpenTelemetry proto types) with the caller's trace id and
//! parentage, and follows no redirect. What the logs and spans hold is in `telemetry_logs`.

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

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The whole on-behalf-of flow against the binary, traced at `trace` log level.
pub(crate) struct Run {
    pub(crate) stderr: String,
    pub(crate) received: Received,
    pub(crate) secrets: Vec<String>,
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
    let traced = Traced {
        issuer: &issuer,
        graph_url: &graph.url,
        sa_path: &sa_path,
        otlp: &otlp,
        protocol,
    };
    let server = traced.start().await;
    let user = issuer.entra_token(json!({}));
    call_twice_then_with_a_bad_token(&server, &user, trace_id).await;
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

/// What the traced server is started with: the fakes, the workload identity token file and
/// the OTLP endpoint and protocol.
struct Traced<'a> {
    issuer: &'a TestIssuer,
    graph_url: &'a str,
    sa_path: &'a str,
    otlp: &'a str,
    protocol: Protocol,
}

impl Traced<'_> {
    /// The binary exporting to the receiver, logging JSON at `trace` level; ready.
    async fn start(&self) -> ServerProcess {
        let env = entra_env(self.issuer);
        let mut env: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.extend([
            ("MCP_OBO__GRAPH__BASE_URL", self.graph_url),
            ("AZURE_FEDERATED_TOKEN_FILE", self.sa_path),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", self.otlp),
            (
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                match self.protocol {
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
        server
    }
}

/// HelloTool twice as `user` in the caller's trace `trace_id` (a miss, then a cache hit),
/// then a bad token, so failure paths are logged as well.
async fn call_twice_then_with_a_bad_token(server: &ServerProcess, user: &str, trace_id: &str) {
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
    let _ = post_raw(
        &server.mcp_url(),
        b"{}".to_vec(),
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer not.a.token"),
        ],
    )
    .await;
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
