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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::fake_graph::FakeGraph;
use crate::support::fake_imds::{FakeImds, IDENTITY_HEADER, MI_CLIENT_ID};
use crate::support::mcp_http::{ACCEPT_BOTH, request};
use crate::support::obo_world::{
    EXCHANGE_AUDIENCE, SA_ISSUER, entra_and_graph, workload_identity_credential,
};
use crate::support::otlp::grpc_receiver;
use crate::support::tokens::{
    CLIENT_ID, TENANT, TestIssuer, USER_OID, VSCODE, easy_auth_principal, now,
};
use crate::support::{ServerProcess, binary};
use mcp_obo::jose::SigningKey;
use serde_json::{Value, json};

/// Every cloud's endpoints in the Bicep.
#[path = "platform_smoke_clouds.rs"]
mod clouds;

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

// --- Azure Container Apps, Functions host --------------------------------------------------

/// The app's public host name: `<app name>.<environment default domain>` (main.bicep).
const ACA_APP: &str = "mcp-smoke7x";
const ACA_FQDN: &str = "mcp-smoke7x.happyhill-1a2b3c4d.westeurope.azurecontainerapps.io";
/// The revision-specific host Container Apps puts in CONTAINER_APP_HOSTNAME; the public URL
/// must not be derived from it.
const ACA_REVISION: &str = "mcp-smoke7x--0000003";
const ACA_REVISION_FQDN: &str =
    "mcp-smoke7x--0000003.happyhill-1a2b3c4d.westeurope.azurecontainerapps.io";

/// The parameter values main.bicep passes to modules/mcp-app.bicep, with the ids of the fakes
/// (the Entra app, the managed identity, VS Code as the pre-authorized client).
fn aca_params() -> Value {
    json!({
        "name": ACA_APP,
        "location": "westeurope",
        "tags": {"azd-env-name": "smoke", "azd-service-name": "mcp"},
        "environmentId": "/subscriptions/0/resourceGroups/rg-smoke/providers/Microsoft.App/managedEnvironments/cae-smoke7x",
        "fqdn": ACA_FQDN,
        "imageName": "crsmoke7x.azurecr.io/mcp-obo/mcp-smoke:azd-deploy-1",
        "identityId": "/subscriptions/0/resourceGroups/rg-smoke/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-mcp-smoke7x",
        "identityClientId": MI_CLIENT_ID,
        "registryLoginServer": "crsmoke7x.azurecr.io",
        "storageAccountName": "stsmoke7x",
        "applicationInsightsConnectionString": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
        "entraClientId": CLIENT_ID,
        "entraIdentifierUri": format!("api://{CLIENT_ID}"),
        "preAuthorizedClientIds": [VSCODE],
        "tokenExchangeAudience": EXCHANGE_AUDIENCE,
        // What main.bicep derives from environment() in the public cloud.
        "storageSuffix": "core.windows.net",
        "graphBaseUrl": "https://graph.microsoft.com",
        "authorityHost": "https://login.microsoftonline.com/",
        "environmentName": "smoke",
        "tenantId": TENANT,
    })
}

#[tokio::test]
async fn container_apps_functions_host_env_from_the_bicep_serves_discovery_and_hello_with_the_managed_identity()
 {
    let params_dir = tempfile::tempdir().expect("temp dir");
    let params_file = params_dir.path().join("mcp-app.parameters.json");
    std::fs::write(&params_file, aca_params().to_string()).expect("write parameters");
    let params_path = params_file.display().to_string();
    let app_env = string_map(&lint_deploy_json(&[
        "app-env",
        "infra/modules/mcp-app.bicep",
        &params_path,
    ]));
    // What the rest of this test relies on, as the Bicep sets it.
    assert_eq!(app_env["MCP_OBO__AUTH__MODE"], "easyauth");
    assert_eq!(
        app_env["MCP_OBO__SERVER__PUBLIC_URL"],
        format!("https://{ACA_FQDN}")
    );
    assert_eq!(
        app_env["MCP_OBO__OBO__CLIENT_ASSERTION"],
        "managed_identity"
    );

    let imds = FakeImds::start(EXCHANGE_AUDIENCE).await;
    let (issuer, graph) = entra_and_graph(imds.federated_credential(), &[CLIENT_ID]).await;
    let (otlp, received) = grpc_receiver().await;

    let handler_port = crate::support::free_port();
    let metrics_port = crate::support::free_port();
    let mut env = app_env.clone();
    let platform = [
        // The Functions host: the custom handler's port, proxied to over loopback.
        ("FUNCTIONS_CUSTOMHANDLER_PORT", handler_port.to_string()),
        ("FUNCTIONS_WORKER_RUNTIME", "custom".to_owned()),
        // Container Apps.
        ("CONTAINER_APP_NAME", ACA_APP.to_owned()),
        ("CONTAINER_APP_REVISION", ACA_REVISION.to_owned()),
        ("CONTAINER_APP_HOSTNAME", ACA_REVISION_FQDN.to_owned()),
        (
            "CONTAINER_APP_REPLICA_NAME",
            format!("{ACA_REVISION}-6d8f9b7c4-x2k9q"),
        ),
        ("CONTAINER_APP_PORT", "80".to_owned()),
        // The user-assigned managed identity's endpoint.
        ("IDENTITY_ENDPOINT", imds.endpoint.clone()),
        ("IDENTITY_HEADER", IDENTITY_HEADER.to_owned()),
        // The managed OpenTelemetry agent (gRPC only).
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.clone()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
    ];
    for (name, value) in platform {
        if let Some(from_bicep) = env.get(name) {
            assert_eq!(
                from_bicep, &value,
                "{name}: the Bicep and the platform disagree"
            );
        }
        env.insert(name.to_owned(), value);
    }
    // TEST-ONLY: Entra and Graph are the local fakes (on Container Apps nothing sets
    // AZURE_AUTHORITY_HOST: the server's public-cloud default applies).
    env.insert("MCP_OBO__ENTRA__AUTHORITY_HOST".into(), issuer.base.clone());
    env.insert("MCP_OBO__GRAPH__BASE_URL".into(), graph.url.clone());
    // TEST-ONLY: the metrics listener's port (the Bicep's 9464 would collide between parallel
    // tests); its address stays the Bicep's.
    let metrics_listen = with_port(&app_env["MCP_OBO__TELEMETRY__METRICS_LISTEN"], metrics_port);
    env.insert("MCP_OBO__TELEMETRY__METRICS_LISTEN".into(), metrics_listen);

    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = ServerProcess::start_exact(binary(), handler_port, &pairs).await;
    server.wait_ready().await;

    assert_discovery(&server, ACA_FQDN).await;

    // Easy Auth validated the token and adds the principal; the token stays in Authorization.
    let user = issuer.entra_token(json!({}));
    let principal = easy_auth_principal(USER_OID, TENANT);
    let result = call_hello(
        &server,
        ACA_FQDN,
        &user,
        &[("x-ms-client-principal", principal.as_str())],
    )
    .await;
    assert_eq!(result["structuredContent"]["displayName"], "Ada Lovelace");
    assert_eq!(result["structuredContent"]["email"], "ada@contoso.com");

    // The exchange was authenticated with exactly the managed identity's token.
    let from_imds = imds.issued();
    assert_eq!(from_imds.len(), 1, "one managed identity token was fetched");
    assert_one_exchange_with(&issuer, &graph, &from_imds, "the managed identity token");

    assert_metrics_only_on_their_listener(&server, metrics_port).await;

    // Spans reached the agent over gRPC, with the Bicep's service name and environment and
    // what Container Apps' variables say about the replica.
    server.terminate().await;
    let requests = received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let spans: Vec<String> = requests
        .iter()
        .flat_map(|r| r.resource_spans.iter())
        .flat_map(|rs| rs.scope_spans.iter())
        .flat_map(|ss| ss.spans.iter().map(|s| s.name.clone()))
        .collect();
    assert!(
        spans.iter().any(|s| s == "tools/call HelloTool"),
        "the MCP span was exported over gRPC: {spans:?}"
    );
    let resource = requests
        .iter()
        .flat_map(|r| r.resource_spans.iter())
        .find_map(|rs| rs.resource.clone())
        .expect("a resource");
    let attributes: BTreeMap<String, String> = resource
        .attributes
        .iter()
        .filter_map(|kv| {
            use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
            match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Any::StringValue(s)) => Some((kv.key.clone(), s.clone())),
                _ => None,
            }
        })
        .collect();
    for (key, want) in [
        ("service.name", app_env["OTEL_SERVICE_NAME"].as_str()),
        ("deployment.environment", "smoke"),
        ("cloud.platform", "azure_container_apps"),
        ("service.namespace", ACA_APP),
    ] {
        assert_eq!(
            attributes.get(key).map(String::as_str),
            Some(want),
            "resource attribute {key}: {attributes:?}"
        );
    }
}

// --- AKS, Helm chart with workload identity ------------------------------------------------

/// A projected service account token as the kubelet writes it for the workload identity
/// webhook: the cluster's OIDC issuer, the pod's service account, the exchange audience.
fn write_projected_token(key: &SigningKey, path: &Path, subject: &str) {
    let claims = json!({
        "iss": SA_ISSUER, "sub": subject, "aud": [EXCHANGE_AUDIENCE],
        "exp": now() + 3600, "iat": now(), "nbf": now(),
        "kubernetes.io": {"namespace": "mcp-obo", "serviceaccount": {"name": "mcp-obo"}},
    });
    std::fs::write(path, key.sign("JWT", json!({}), &claims).expect("sign"))
        .expect("write token file");
}

#[tokio::test]
async fn aks_chart_env_with_the_workload_identity_webhook_serves_discovery_and_hello_with_the_projected_token()
 {
    let rendered = lint_deploy_json(&[
        "chart-env",
        "charts/mcp-obo",
        "tests/platform/aks-values.yaml",
    ]);
    let chart_env = string_map(&rendered["env"]);
    // The webhook only mutates pods that opt in, from their service account's annotations.
    assert_eq!(
        rendered["podLabels"]["azure.workload.identity/use"], "true",
        "{rendered}"
    );
    let sa = &rendered["serviceAccount"];
    let annotation = |name: &str| -> String {
        sa["annotations"][name]
            .as_str()
            .unwrap_or_else(|| panic!("service account lacks {name}: {sa}"))
            .to_owned()
    };
    let client_id = annotation("azure.workload.identity/client-id");
    let tenant_id = annotation("azure.workload.identity/tenant-id");
    assert_eq!(client_id, CLIENT_ID, "the values name the fake Entra app");
    let subject = format!(
        "system:serviceaccount:{}:{}",
        sa["namespace"].as_str().expect("namespace"),
        sa["name"].as_str().expect("name")
    );
    // The public host: the Ingress's, which the chart derives from config.publicUrl.
    let hosts = rendered["ingressHosts"].as_array().expect("ingressHosts");
    assert_eq!(hosts.len(), 1, "{rendered}");
    let public_host = hosts[0].as_str().expect("host").to_owned();
    assert_eq!(
        chart_env["MCP_OBO__SERVER__PUBLIC_URL"],
        format!("https://{public_host}")
    );
    assert_eq!(
        chart_env["MCP_OBO__OBO__CLIENT_ASSERTION"],
        "workload_identity"
    );

    // The app registration's federated credential for the chart's service account.
    let sa_key = SigningKey::generate_rsa("aks-oidc-key").expect("rsa");
    let (issuer, graph) = entra_and_graph(
        workload_identity_credential(&sa_key, &subject),
        &[CLIENT_ID],
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("azure-identity-token");
    write_projected_token(&sa_key, &token_file, &subject);

    let http_port = crate::support::free_port();
    let metrics_port = crate::support::free_port();
    let mut env = chart_env.clone();
    let platform = [
        // The workload identity webhook, from the service account and its own configuration.
        ("AZURE_CLIENT_ID", client_id),
        ("AZURE_TENANT_ID", tenant_id),
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        // The webhook's authority (https://login.microsoftonline.com/ in the public cloud),
        // here the fake Entra's, with the trailing slash the webhook writes.
        ("AZURE_AUTHORITY_HOST", format!("{}/", issuer.base)),
        // Kubernetes.
        ("KUBERNETES_SERVICE_HOST", "10.0.0.1".to_owned()),
        ("KUBERNETES_SERVICE_PORT", "443".to_owned()),
    ];
    for (name, value) in platform {
        assert!(
            !env.contains_key(name),
            "{name}: the chart sets what the webhook injects"
        );
        env.insert(name.to_owned(), value);
    }
    // TEST-ONLY: Graph is the local fake.
    env.insert("MCP_OBO__GRAPH__BASE_URL".into(), graph.url.clone());
    // TEST-ONLY: the listeners' ports (the chart's 8080 and 9464 would collide between
    // parallel tests); their addresses stay the chart's.
    let listen = with_port(&chart_env["MCP_OBO__SERVER__LISTEN"], http_port);
    env.insert("MCP_OBO__SERVER__LISTEN".into(), listen);
    let metrics_listen = with_port(
        &chart_env["MCP_OBO__TELEMETRY__METRICS_LISTEN"],
        metrics_port,
    );
    env.insert("MCP_OBO__TELEMETRY__METRICS_LISTEN".into(), metrics_listen);

    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = ServerProcess::start_exact(binary(), http_port, &pairs).await;
    server.wait_ready().await;

    assert_discovery(&server, &public_host).await;

    let user = issuer.entra_token(json!({}));
    let result = call_hello(&server, &public_host, &user, &[]).await;
    assert_eq!(result["structuredContent"]["displayName"], "Ada Lovelace");
    let projected = std::fs::read_to_string(&token_file).expect("token file");
    assert_one_exchange_with(&issuer, &graph, &[projected], "the projected token");

    assert_metrics_only_on_their_listener(&server, metrics_port).await;
    server.terminate().await;
}

#[test]
fn with_port_replaces_only_the_port() {
    assert_eq!(with_port("0.0.0.0:9464", 1234), "0.0.0.0:1234");
    assert_eq!(with_port("[::]:8080", 1234), "[::]:1234");
}
