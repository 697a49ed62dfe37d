//! Sovereign clouds end to end in the Bicep: `infra/main.bicep` evaluated with
//! what `environment()` returns in the public, US Government and China clouds, and the
//! container app's environment and the Entra application's federated credential evaluated with
//! the module parameters main.bicep derives, each endpoint checked against that cloud's
//! published values in `tests/schemas/clouds.json` (sources named there). The chart's side
//! (`config.cloud`) is checked by `scripts/lint-deploy.sh helm` (deploy_artifacts).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::container_apps::aca_params;
use super::{lint_deploy_json, repo_root, string_map};

/// The three clouds of tests/schemas/clouds.json, by name.
fn published_clouds() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(repo_root().join("tests/schemas/clouds.json"))
        .expect("tests/schemas/clouds.json");
    let all: BTreeMap<String, Value> = serde_json::from_str(&text).expect("clouds.json is JSON");
    all.into_iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .collect()
}

/// `scripts/lint_deploy.py eval FILE <params> PATH...` as a map; fails on any path that does
/// not evaluate.
fn eval(file: &str, params: &Value, paths: &[&str]) -> BTreeMap<String, Value> {
    let dir = tempfile::tempdir().expect("temp dir");
    let params_file = dir.path().join("params.json");
    std::fs::write(&params_file, params.to_string()).expect("write params");
    let params_path = params_file.display().to_string();
    let mut args = vec!["eval", file, params_path.as_str()];
    args.extend_from_slice(paths);
    let out = lint_deploy_json(&args);
    let map: BTreeMap<String, Value> =
        serde_json::from_value(out.clone()).unwrap_or_else(|e| panic!("{e}: {out}"));
    for (path, value) in &map {
        assert!(value.get("unevaluated").is_none(), "{file} {path}: {value}");
    }
    map
}

fn s(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {value}"))
        .to_owned()
}

/// The tenant the evaluations run for.
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

#[test]
fn the_bicep_gives_every_cloud_its_published_authority_graph_exchange_audience_and_storage_endpoints()
 {
    let clouds = published_clouds();
    assert_eq!(
        clouds.keys().collect::<Vec<_>>(),
        ["AzureChinaCloud", "AzureCloud", "AzureUSGovernment"]
    );
    for (name, cloud) in &clouds {
        let main = main_bicep_for(name, cloud);
        let params = mcp_app_params_for(cloud, &main);
        assert_the_app_env_uses_the_clouds_endpoints(name, cloud, &params);
        assert_sign_in_and_federated_credential_use_the_clouds_authority(
            name, cloud, &params, &main,
        );
    }
}

/// `infra/main.bicep` evaluated with the cloud's `environment()`: the module parameters it
/// derives, the cloud it names and the federated credential's audience checked.
fn main_bicep_for(name: &str, cloud: &Value) -> BTreeMap<String, Value> {
    let environment = cloud["environment"].clone();
    let main = eval(
        "infra/main.bicep",
        &json!({"environmentName": "smoke", "location": "somewhere", "tenantId": TENANT, "environment": environment}),
        &[
            "modules.mcpApp.config.params.graphBaseUrl",
            "modules.mcpApp.config.params.authorityHost",
            "modules.mcpApp.config.params.storageSuffix",
            "modules.mcpApp.config.params.tokenExchangeAudience",
            "modules.entraApp.config.params.tokenExchangeAudience",
            "outputs.MCP_AZURE_CLOUD.value",
        ],
    );
    assert_eq!(main["outputs.MCP_AZURE_CLOUD.value"], json!(name));
    assert_eq!(
        main["modules.entraApp.config.params.tokenExchangeAudience"],
        cloud["tokenExchangeAudience"],
        "{name}: the federated credential's audience"
    );
    main
}

/// The container app module's parameters with what main.bicep passes in this cloud.
fn mcp_app_params_for(cloud: &Value, main: &BTreeMap<String, Value>) -> Value {
    let param = |p: &str| main[&format!("modules.mcpApp.config.params.{p}")].clone();
    let mut params = aca_params();
    for p in [
        "graphBaseUrl",
        "authorityHost",
        "storageSuffix",
        "tokenExchangeAudience",
    ] {
        params[p] = param(p);
    }
    params["environment"] = cloud["environment"].clone();
    params
}

/// The container app's environment: the cloud's authority, Graph, exchange audience and
/// storage endpoints.
fn assert_the_app_env_uses_the_clouds_endpoints(name: &str, cloud: &Value, params: &Value) {
    let environment = &cloud["environment"];
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("mcp-app.parameters.json");
    std::fs::write(&file, params.to_string()).expect("write params");
    let env = string_map(&lint_deploy_json(&[
        "app-env",
        "infra/modules/mcp-app.bicep",
        &file.display().to_string(),
    ]));
    let authority = s(cloud, "authorityHost");
    assert_eq!(
        env["MCP_OBO__ENTRA__AUTHORITY_HOST"],
        format!("{authority}/"),
        "{name}"
    );
    assert_eq!(env["MCP_OBO__GRAPH__BASE_URL"], s(cloud, "graph"), "{name}");
    assert_eq!(
        env["TOKEN_EXCHANGE_AUDIENCE"],
        s(cloud, "tokenExchangeAudience"),
        "{name}"
    );
    let account = params["storageAccountName"].as_str().expect("storage name");
    let suffix = s(&environment["suffixes"], "storage");
    for service in ["blob", "queue", "table"] {
        let key = format!("AzureWebJobsStorage__{service}ServiceUri");
        assert_eq!(
            env[&key],
            format!("https://{account}.{service}.{suffix}"),
            "{name}: {key}"
        );
    }
    assert!(
        !env.contains_key("AzureWebJobsStorage__accountName"),
        "{name}: accountName means core.windows.net whatever the cloud"
    );
}

/// The built-in authentication's issuer and sign-in scope, and the federated credential.
fn assert_sign_in_and_federated_credential_use_the_clouds_authority(
    name: &str,
    cloud: &Value,
    params: &Value,
    main: &BTreeMap<String, Value>,
) {
    let environment = &cloud["environment"];
    let authority = s(cloud, "authorityHost");
    let auth = "resources.auth.config.properties.identityProviders.azureActiveDirectory";
    let app = eval(
        "infra/modules/mcp-app.bicep",
        params,
        &[
            &format!("{auth}.registration.openIdIssuer"),
            &format!("{auth}.login.loginParameters"),
        ],
    );
    assert_eq!(
        app[&format!("{auth}.registration.openIdIssuer")],
        json!(format!("{authority}/{TENANT}/v2.0")),
        "{name}"
    );
    assert_eq!(
        app[&format!("{auth}.login.loginParameters")],
        json!([format!(
            "scope=openid profile email {}/User.Read",
            s(cloud, "graph")
        )]),
        "{name}"
    );
    let entra = eval(
        "infra/modules/entra-app.bicep",
        &json!({
            "uniqueName": "mcp-obo-x", "displayName": "x", "preAuthorizedClientIds": [],
            "redirectUri": "https://x/.auth/login/aad/callback", "federatedIdentityPrincipalId": "p",
            "tokenExchangeAudience": main["modules.entraApp.config.params.tokenExchangeAudience"],
            "tenantId": TENANT, "environment": environment,
        }),
        &[
            "resources.federatedCredential.config.issuer",
            "resources.federatedCredential.config.audiences",
        ],
    );
    assert_eq!(
        entra["resources.federatedCredential.config.issuer"],
        json!(format!("{authority}/{TENANT}/v2.0")),
        "{name}"
    );
    assert_eq!(
        entra["resources.federatedCredential.config.audiences"],
        json!([cloud["tokenExchangeAudience"]]),
        "{name}"
    );
}

#[test]
fn an_explicit_token_exchange_audience_overrides_the_clouds() {
    let cloud = &published_clouds()["AzureCloud"];
    let main = eval(
        "infra/main.bicep",
        &json!({"environmentName": "smoke", "location": "somewhere", "tenantId": "t",
                "environment": cloud["environment"], "tokenExchangeAudience": "api://custom"}),
        &[
            "modules.mcpApp.config.params.tokenExchangeAudience",
            "modules.entraApp.config.params.tokenExchangeAudience",
        ],
    );
    assert!(main.values().all(|v| v == "api://custom"), "{main:?}");
}
