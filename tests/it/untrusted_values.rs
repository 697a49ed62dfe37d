//! What a caller chose (a JSON-RPC id, a tool name) and what failed inside the server, through
//! the real binary: bounded in exported spans, escaped in text logs, and kept out of tool
//! results, where only the log line (with the trace id) has the detail.

use crate::support::mcp_http::{ACCEPT_BOTH, Reply, post_raw, request};
use crate::support::obo_world::{SA_SUBJECT, entra_and_graph, workload_identity_credential};
use crate::support::otlp::receiver;
use crate::support::tokens::{CLIENT_ID, TestIssuer};
use crate::support::{ServerProcess, binary, entra_env, free_port};
use crate::telemetry_otlp::spans;
use mcp_obo::jose::SigningKey;
use mcp_obo::telemetry::{MAX_VALUE_BYTES, TRUNCATED};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use serde_json::{Value, json};

/// Starts the binary in `entra` mode against `issuer`, with `extra` settings.
async fn server(issuer: &TestIssuer, extra: &[(&str, &str)]) -> ServerProcess {
    let env = entra_env(issuer);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend_from_slice(extra);
    let server = ServerProcess::start(binary(), &env).await;
    server.wait_ready().await;
    server
}

/// POSTs `body` to the MCP endpoint with `token` and the `extra` headers.
async fn post_mcp(
    server: &ServerProcess,
    token: &str,
    body: &Value,
    extra: &[(&str, &str)],
) -> Reply {
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
        ("authorization", auth.as_str()),
    ];
    headers.extend_from_slice(extra);
    let body = serde_json::to_vec(body).expect("json");
    let reply = post_raw(&server.mcp_url(), body, &headers).await;
    assert_eq!(reply.status, 200, "{}\n{}", reply.text, server.stderr());
    reply
}

/// A `tools/call` with `id` and tool `name`; `fast` sends the sessions-era version header
/// the stateless fast path answers, else rmcp answers.
async fn call(server: &ServerProcess, token: &str, id: &str, name: &str, fast: bool) -> Reply {
    let body =
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name}});
    let version: &[(&str, &str)] = if fast {
        &[("mcp-protocol-version", "2025-06-18")]
    } else {
        &[]
    };
    post_mcp(server, token, &body, version).await
}

#[tokio::test]
async fn ten_requests_with_400_kb_ids_export_ids_cut_to_128_bytes_and_marked() {
    let (otlp, received) = receiver().await;
    let issuer = TestIssuer::start().await;
    // /metrics on a port known here (the default test listener is port 0).
    let metrics_port = free_port();
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let server = server(
        &issuer,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
            (
                "MCP_OBO__TELEMETRY__METRICS_LISTEN",
                metrics_listen.as_str(),
            ),
        ],
    )
    .await;
    let token = issuer.entra_token(json!({}));
    let name = "n".repeat(200_000);
    for n in 0..10 {
        let id = format!("{n}{}", "7".repeat(400_000));
        let reply = call(&server, &token, &id, &name, n % 2 == 0).await;
        let error = &reply.json.expect("json")["error"];
        assert!(error.is_object(), "an unknown tool is a JSON-RPC error");
    }
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    // The registered tools are shown at zero from start-up; only `unknown` counted calls.
    let calls: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("mcp_obo_mcp_requests_total{") && !l.ends_with(" 0"))
        .collect();
    assert!(!calls.is_empty(), "{metrics}");
    assert!(
        calls
            .iter()
            .all(|l| l.contains(r#"tool="unknown""#) && l.len() < 200),
        "{calls:?}"
    );
    assert!(
        metrics
            .lines()
            .filter(|l| l.starts_with("mcp_obo_mcp_requests_total{"))
            .all(|l| l.len() < 200),
        "{metrics}"
    );
    server.terminate().await;
    let ids: Vec<String> = spans(&received)
        .iter()
        .flat_map(|s| s.attributes.iter())
        .filter(|kv| kv.key == "jsonrpc.request.id")
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Any::StringValue(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 10, "one MCP span per request");
    for id in &ids {
        assert!(
            id.len() <= MAX_VALUE_BYTES && id.ends_with(TRUNCATED),
            "{id}"
        );
    }
    let exported: usize = received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|r| format!("{r:?}").len())
        .sum();
    assert!(exported < 200_000, "the export is {exported} bytes");
}

#[tokio::test]
async fn an_id_with_a_newline_and_an_escape_forges_no_log_line() {
    let issuer = TestIssuer::start().await;
    let forged = "2026-12-01T00:00:00.000000Z  INFO mcp_obo: forged line";
    let id = format!("1\n{forged}\u{1b}[2K\r");
    for format in ["text", "json"] {
        let server = server(&issuer, &[("MCP_OBO__LOG__FORMAT", format)]).await;
        let token = issuer.entra_token(json!({}));
        for fast in [true, false] {
            let _ = call(&server, &token, &id, "Nope\n\u{1b}[31mred", fast).await;
        }
        let log = server.terminate().await.stderr();
        assert!(!log.contains(['\u{1b}', '\r']), "{format}: {log:?}");
        assert!(
            log.lines().all(|l| !l.starts_with(forged)),
            "{format}: a forged line:\n{log}"
        );
        let answered = log
            .lines()
            .filter(|l| l.contains("MCP request answered with an error"))
            .collect::<Vec<_>>();
        assert_eq!(answered.len(), 2, "{format}: one line per error:\n{log}");
        if format == "json" {
            for line in log.lines() {
                assert!(serde_json::from_str::<Value>(line).is_ok(), "{line}");
            }
        } else {
            assert!(
                answered
                    .iter()
                    .all(|l| l.contains(r"jsonrpc.request.id=1\n2026-12-01")),
                "{answered:?}"
            );
        }
    }
}

/// A HelloTool call that fails inside the server: the tool result's text, the server's log
/// and the trace id the call ran under.
async fn failing_hello(extra: &[(&str, &str)], sa_file: &str) -> (String, String, String) {
    let (otlp, _received) = receiver().await;
    let sa_key = SigningKey::generate_rsa("sa-key").expect("rsa");
    let (issuer, graph) = entra_and_graph(
        workload_identity_credential(&sa_key, SA_SUBJECT),
        &[CLIENT_ID],
    )
    .await;
    let mut env = vec![
        ("MCP_OBO__GRAPH__BASE_URL", graph.url.as_str()),
        ("AZURE_FEDERATED_TOKEN_FILE", sa_file),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
    ];
    env.extend_from_slice(extra);
    let server = server(&issuer, &env).await;
    let trace_id = "3c8efff798038103d269b633813fc60f";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let body = request(1, "tools/call", json!({"name": "HelloTool"}));
    let extra = [
        ("mcp-protocol-version", "2025-06-18"),
        ("traceparent", traceparent.as_str()),
    ];
    let reply = post_mcp(&server, &issuer.entra_token(json!({})), &body, &extra).await;
    let result = reply.json.expect("json")["result"].clone();
    assert_eq!(result["isError"], true, "{result}");
    let text = result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (text, server.stderr(), trace_id.to_owned())
}

/// The `tool call failed` log line.
fn failure_line(log: &str) -> String {
    log.lines()
        .find(|l| l.contains("tool call failed"))
        .unwrap_or_else(|| panic!("no tool failure line in:\n{log}"))
        .to_owned()
}

#[tokio::test]
async fn a_missing_token_file_is_named_in_the_log_with_the_trace_id_not_in_the_tool_result() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sa_file = dir.path().join("never-written-token");
    let sa_file = sa_file.to_str().expect("utf-8 path");
    let (text, log, trace_id) = failing_hello(&[], sa_file).await;
    assert!(
        text.contains("workload identity token file") && text.contains("operator"),
        "{text}"
    );
    assert!(
        !text.contains(sa_file) && !text.contains("os error"),
        "{text}"
    );
    let line = failure_line(&log);
    assert!(line.contains(sa_file), "{line}");
    assert!(line.contains(&format!("trace_id=\"{trace_id}\"")), "{line}");
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_named_in_the_log_without_its_password_not_in_the_tool_result()
 {
    let dir = tempfile::tempdir().expect("temp dir");
    let sa_file = dir.path().join("token");
    let sa_key = SigningKey::generate_rsa("unused").expect("rsa");
    crate::support::obo_world::write_sa_token(&sa_key, &sa_file, "unreachable");
    let endpoint = format!("http://svc:pw-7f3@127.0.0.1:{}/internal/token", free_port());
    let (text, log, trace_id) = failing_hello(
        &[
            ("MCP_OBO__OBO__TOKEN_ENDPOINT", endpoint.as_str()),
            ("MCP_OBO__OBO__MAX_RETRIES", "0"),
        ],
        sa_file.to_str().expect("utf-8 path"),
    )
    .await;
    assert!(text.contains("cannot reach the token endpoint"), "{text}");
    assert!(
        !text.contains("127.0.0.1") && !text.contains("/internal/token"),
        "{text}"
    );
    let line = failure_line(&log);
    assert!(line.contains(&endpoint.replace("pw-7f3", "***")), "{line}");
    assert!(
        !log.contains("pw-7f3"),
        "a URL's password was logged:\n{log}"
    );
    assert!(line.contains(&format!("trace_id=\"{trace_id}\"")), "{line}");
}
