//! Azure Container Apps with the Functions host: the container `env` of
//! `infra/modules/mcp-app.bicep`, plus what the Functions host, Container Apps, the managed
//! identity endpoint and the managed OpenTelemetry agent inject.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{
    assert_discovery, assert_metrics_only_on_their_listener, assert_one_exchange_with, call_hello,
    lint_deploy_json, string_map, with_port,
};
use crate::support::fake_graph::FakeGraph;
use crate::support::fake_imds::{FakeImds, IDENTITY_HEADER, MI_CLIENT_ID};
use crate::support::obo_world::{EXCHANGE_AUDIENCE, entra_and_graph};
use crate::support::otlp::{Received, grpc_receiver};
use crate::support::tokens::{
    CLIENT_ID, TENANT, TestIssuer, USER_OID, VSCODE, easy_auth_principal,
};
use crate::support::{ServerProcess, binary};

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
pub(super) fn aca_params() -> Value {
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
    let app_env = app_env_from_the_bicep();
    let imds = FakeImds::start(EXCHANGE_AUDIENCE).await;
    let (issuer, graph) = entra_and_graph(imds.federated_credential(), &[CLIENT_ID]).await;
    let (otlp, received) = grpc_receiver().await;

    let handler_port = crate::support::free_port();
    let metrics_port = crate::support::free_port();
    let env = with_the_platform(&app_env, handler_port, &imds, &otlp);
    let env = with_the_fakes(env, &app_env, &issuer, &graph, metrics_port);
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

    server.terminate().await;
    assert_spans_reached_the_agent(&received, &app_env);
}

/// The container app's environment, as `scripts/lint_deploy.py app-env` evaluates the Bicep
/// for [`aca_params`], with what the rest of the test relies on checked.
fn app_env_from_the_bicep() -> BTreeMap<String, String> {
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
    app_env
}

/// `app_env` plus what the platform injects, which the Bicep must not contradict.
fn with_the_platform(
    app_env: &BTreeMap<String, String>,
    handler_port: u16,
    imds: &FakeImds,
    otlp: &str,
) -> BTreeMap<String, String> {
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
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.to_owned()),
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
    env
}

/// The TEST-ONLY changes: the fakes' endpoints and a metrics port of the test's own.
fn with_the_fakes(
    mut env: BTreeMap<String, String>,
    app_env: &BTreeMap<String, String>,
    issuer: &TestIssuer,
    graph: &FakeGraph,
    metrics_port: u16,
) -> BTreeMap<String, String> {
    // TEST-ONLY: Entra and Graph are the local fakes (on Container Apps nothing sets
    // AZURE_AUTHORITY_HOST: the server's public-cloud default applies).
    env.insert("MCP_OBO__ENTRA__AUTHORITY_HOST".into(), issuer.base.clone());
    env.insert("MCP_OBO__GRAPH__BASE_URL".into(), graph.url.clone());
    // TEST-ONLY: the metrics listener's port (the Bicep's 9464 would collide between parallel
    // tests); its address stays the Bicep's.
    let metrics_listen = with_port(&app_env["MCP_OBO__TELEMETRY__METRICS_LISTEN"], metrics_port);
    env.insert("MCP_OBO__TELEMETRY__METRICS_LISTEN".into(), metrics_listen);
    env
}

/// Spans reached the agent over gRPC, with the Bicep's service name and environment and
/// what Container Apps' variables say about the replica.
fn assert_spans_reached_the_agent(received: &Received, app_env: &BTreeMap<String, String>) {
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
