//! Platform smoke tests: the real binary started with the environment each
//! deployment target gives it, taken from the project's own artifacts, plus what the platform
//! itself injects, against the local fakes of Entra, the managed identity endpoint, Graph and
//! the OpenTelemetry agent.
//!
//! * Container Apps (Functions host): the container `env` of `infra/modules/mcp-app.bicep`,
//!   evaluated by `scripts/lint_deploy.py app-env`, plus the Functions host's
//!   `FUNCTIONS_CUSTOMHANDLER_PORT`, Container Apps' `CONTAINER_APP_*`, the managed identity
//!   endpoint (`IDENTITY_ENDPOINT`/`IDENTITY_HEADER`) and the managed OpenTelemetry agent
//!   (OTLP/gRPC). Requests carry what Easy Auth (`AllowAnonymous`) lets through.
//! * AKS: the container environment of the rendered Helm chart (`charts/mcp-obo` with
//!   `tests/platform/aks-values.yaml`), evaluated by `scripts/lint_deploy.py chart-env`, plus
//!   what the workload identity webhook injects (from the rendered service account) and
//!   Kubernetes' `KUBERNETES_SERVICE_HOST`. Requests carry the Ingress host.
//!
//! The only other changes to the artifacts' values are marked TEST-ONLY below: endpoints
//! redirected to the fakes and listener ports that would collide between parallel tests (the
//! address part is kept). What these tests cannot prove without Azure: docs/deploy.md,
//! "Checking the artifacts offline".
//!
//! The artifact evaluation runs in `.tools/venv` (pycep-parser, helm-python-sdk), installed by
//! `scripts/setup-test-tools.sh`; without it the tests fail and say so.
//!
//! This file is the requests and checks every platform shares; beside it:
//! - `container_apps.rs`: Container Apps with the Functions host, from the Bicep
//! - `aks.rs`: AKS with the workload identity webhook, from the Helm chart
//! - `clouds.rs`: every cloud's endpoints in the Bicep

mod aks;
mod clouds;
mod container_apps;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::ServerProcess;
use crate::support::fake_graph::FakeGraph;
use crate::support::mcp_http::{ACCEPT_BOTH, request};
use crate::support::tokens::TestIssuer;
use serde_json::{Value, json};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's Python; fails the test with the setup instruction when it is missing.
fn venv_python(root: &Path) -> PathBuf {
    let venv = root.join(".tools/venv");
    let python = venv.join("bin/python");
    assert!(
        venv.join(".setup-test-tools.stamp").is_file() && python.is_file(),
        "the Python tools (pycep-parser, helm-python-sdk) are not installed in {}: run scripts/setup-test-tools.sh first",
        venv.display()
    );
    python
}

/// `scripts/lint_deploy.py <args>`, whose stdout is one JSON object.
fn lint_deploy_json(args: &[&str]) -> Value {
    let root = repo_root();
    let output = Command::new(venv_python(&root))
        .arg(root.join("scripts/lint_deploy.py"))
        .args(args)
        .current_dir(&root)
        .output()
        .expect("run scripts/lint_deploy.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scripts/lint_deploy.py {} failed ({}):\n{stdout}{stderr}",
        args.join(" "),
        output.status
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

/// A JSON object of strings as a map.
fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .iter()
        .map(|(k, v)| {
            let v = v
                .as_str()
                .unwrap_or_else(|| panic!("{k} is not a string: {v}"));
            (k.clone(), v.to_owned())
        })
        .collect()
}

/// `addr` (`host:port` from an artifact) with only the port replaced.
fn with_port(addr: &str, port: u16) -> String {
    let (host, _) = addr
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{addr:?} is not host:port"));
    format!("{host}:{port}")
}

/// An HTTP answer.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

/// A request to the server on `port` as the platform's front end forwards it: with the public
/// `host` as the Host header.
async fn send(
    method: reqwest::Method,
    port: u16,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Answer {
    let mut req = reqwest::Client::new()
        .request(method, format!("http://127.0.0.1:{port}{path}"))
        .header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .header("accept", ACCEPT_BOTH)
            .header("mcp-protocol-version", "2025-06-18")
            .body(serde_json::to_vec(body).expect("json"));
    }
    let response = req.send().await.expect("the server answers");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap_or_default(),
    }
}

/// The MCP discovery every platform must serve for `public_host`: a token-less POST /mcp gets
/// 401 whose challenge names the protected resource metadata at the public URL, and that
/// document names the MCP endpoint at the public URL as the resource.
async fn assert_discovery(server: &ServerProcess, public_host: &str) {
    let health = send(
        reqwest::Method::GET,
        server.port,
        "/healthz",
        public_host,
        &[],
        None,
    )
    .await;
    assert_eq!(health.status, 200, "/healthz: {}", server.stderr());

    let list = request(1, "tools/list", json!({}));
    let anonymous = send(
        reqwest::Method::POST,
        server.port,
        "/mcp",
        public_host,
        &[],
        Some(&list),
    )
    .await;
    assert_eq!(
        anonymous.status,
        401,
        "{}\n{}",
        anonymous.text,
        server.stderr()
    );
    let challenge = anonymous
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("401 without WWW-Authenticate: {:?}", anonymous.headers));
    let metadata_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no resource_metadata in {challenge:?}"));
    assert_eq!(
        metadata_url,
        format!("https://{public_host}/.well-known/oauth-protected-resource/mcp"),
        "{challenge}"
    );

    let path = metadata_url
        .strip_prefix(&format!("https://{public_host}"))
        .expect("the metadata URL is on the public host");
    let metadata = send(
        reqwest::Method::GET,
        server.port,
        path,
        public_host,
        &[],
        None,
    )
    .await;
    assert_eq!(metadata.status, 200, "{}", metadata.text);
    assert_eq!(
        metadata.json()["resource"],
        format!("https://{public_host}/mcp"),
        "{}",
        metadata.text
    );
}

/// HelloTool as the user of `token`, with the platform's extra `headers`.
async fn call_hello(
    server: &ServerProcess,
    public_host: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> Value {
    let auth = format!("Bearer {token}");
    let mut all = vec![("authorization", auth.as_str())];
    all.extend_from_slice(headers);
    let call = request(2, "tools/call", json!({"name": "HelloTool"}));
    let reply = send(
        reqwest::Method::POST,
        server.port,
        "/mcp",
        public_host,
        &all,
        Some(&call),
    )
    .await;
    assert_eq!(reply.status, 200, "{}\n{}", reply.text, server.stderr());
    let result = reply.json()["result"].clone();
    assert_eq!(result["isError"], false, "{result}\n{}", server.stderr());
    result
}

/// The server exchanged once, authenticating with exactly `assertions` (`what` names them) as
/// the client assertion, and never passed the caller's own token on to Graph.
fn assert_one_exchange_with(
    issuer: &TestIssuer,
    graph: &FakeGraph,
    assertions: &[String],
    what: &str,
) {
    // (Compared, never printed: they are tokens.)
    let received = issuer.client_assertions();
    assert!(
        received == assertions,
        "the token endpoint did not receive exactly {what} as the client assertion ({} assertion(s))",
        received.len()
    );
    assert_eq!(issuer.exchanges(), 1);
    assert!(
        !graph.passthrough_seen(),
        "the caller's token reached Graph"
    );
}

/// `/metrics`: not on the public (MCP) port, served on the metrics listener.
async fn assert_metrics_only_on_their_listener(server: &ServerProcess, metrics_port: u16) {
    let public = reqwest::get(format!("http://127.0.0.1:{}/metrics", server.port))
        .await
        .expect("public port answers");
    let public_status = public.status().as_u16();
    let public_body = public.text().await.unwrap_or_default();
    assert_eq!(
        public_status, 404,
        "/metrics on the public port: {public_body}"
    );
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .expect("metrics listener answers");
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().await.unwrap_or_default();
    assert!(
        text.contains("# TYPE"),
        "the metrics listener serves Prometheus text: {text}"
    );
}

#[test]
fn with_port_replaces_only_the_port() {
    assert_eq!(with_port("0.0.0.0:9464", 1234), "0.0.0.0:1234");
    assert_eq!(with_port("[::]:8080", 1234), "[::]:1234");
}
