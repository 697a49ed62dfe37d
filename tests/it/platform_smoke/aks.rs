//! AKS with the workload identity webhook: the container environment of the rendered Helm
//! chart (`charts/mcp-obo` with `tests/platform/aks-values.yaml`), plus what the webhook
//! injects from the rendered service account and Kubernetes' `KUBERNETES_SERVICE_HOST`.

use std::collections::BTreeMap;
use std::path::Path;

use mcp_obo::jose::SigningKey;
use serde_json::json;

use super::{
    assert_discovery, assert_metrics_only_on_their_listener, assert_one_exchange_with, call_hello,
    lint_deploy_json, string_map, with_port,
};
use crate::support::obo_world::{
    EXCHANGE_AUDIENCE, SA_ISSUER, entra_and_graph, workload_identity_credential,
};
use crate::support::tokens::{CLIENT_ID, now};
use crate::support::{ServerProcess, binary};

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

/// What the rendered chart gives the pod: its environment, the service account's
/// workload identity annotations and name, and the Ingress's host.
struct Chart {
    env: BTreeMap<String, String>,
    client_id: String,
    tenant_id: String,
    /// `system:serviceaccount:<namespace>:<name>`.
    subject: String,
    public_host: String,
}

/// `scripts/lint_deploy.py chart-env` for the test values, with what the rest of the test
/// relies on checked.
fn the_rendered_chart() -> Chart {
    let rendered = lint_deploy_json(&[
        "chart-env",
        "charts/mcp-obo",
        "tests/platform/aks-values.yaml",
    ]);
    let env = string_map(&rendered["env"]);
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
        env["MCP_OBO__SERVER__PUBLIC_URL"],
        format!("https://{public_host}")
    );
    assert_eq!(env["MCP_OBO__OBO__CLIENT_ASSERTION"], "workload_identity");
    Chart {
        env,
        client_id,
        tenant_id,
        subject,
        public_host,
    }
}

#[tokio::test]
async fn aks_chart_env_with_the_workload_identity_webhook_serves_discovery_and_hello_with_the_projected_token()
 {
    let chart = the_rendered_chart();
    let public_host = chart.public_host.clone();

    // The app registration's federated credential for the chart's service account.
    let sa_key = SigningKey::generate_rsa("aks-oidc-key").expect("rsa");
    let (issuer, graph) = entra_and_graph(
        workload_identity_credential(&sa_key, &chart.subject),
        &[CLIENT_ID],
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("azure-identity-token");
    write_projected_token(&sa_key, &token_file, &chart.subject);

    let http_port = crate::support::free_port();
    let metrics_port = crate::support::free_port();
    let mut env = with_the_webhook(&chart, &token_file.display().to_string(), &issuer.base);
    // TEST-ONLY: Graph is the local fake.
    env.insert("MCP_OBO__GRAPH__BASE_URL".into(), graph.url.clone());
    let env = with_ports_of_the_tests_own(env, &chart.env, http_port, metrics_port);

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

/// The chart's environment plus what the workload identity webhook and Kubernetes inject,
/// none of which the chart may set itself.
fn with_the_webhook(chart: &Chart, token_file: &str, authority: &str) -> BTreeMap<String, String> {
    let mut env = chart.env.clone();
    let platform = [
        // The workload identity webhook, from the service account and its own configuration.
        ("AZURE_CLIENT_ID", chart.client_id.clone()),
        ("AZURE_TENANT_ID", chart.tenant_id.clone()),
        ("AZURE_FEDERATED_TOKEN_FILE", token_file.to_owned()),
        // The webhook's authority (https://login.microsoftonline.com/ in the public cloud),
        // here the fake Entra's, with the trailing slash the webhook writes.
        ("AZURE_AUTHORITY_HOST", format!("{authority}/")),
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
    env
}

/// TEST-ONLY: the listeners' ports (the chart's 8080 and 9464 would collide between parallel
/// tests); their addresses stay the chart's.
fn with_ports_of_the_tests_own(
    mut env: BTreeMap<String, String>,
    chart_env: &BTreeMap<String, String>,
    http_port: u16,
    metrics_port: u16,
) -> BTreeMap<String, String> {
    let listen = with_port(&chart_env["MCP_OBO__SERVER__LISTEN"], http_port);
    env.insert("MCP_OBO__SERVER__LISTEN".into(), listen);
    let metrics_listen = with_port(
        &chart_env["MCP_OBO__TELEMETRY__METRICS_LISTEN"],
        metrics_port,
    );
    env.insert("MCP_OBO__TELEMETRY__METRICS_LISTEN".into(), metrics_listen);
    env
}
