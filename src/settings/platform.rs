//! The hosting platform's own variables: mapped onto settings (the highest layer), and the
//! values derived from them before the sections are read (`server.public_url`,
//! `obo.client_assertion`).

use config::Value;

use super::server::{local_url, parse_listen};
use crate::auth::AuthMode;
use crate::config::{Env, Layers, Source, Table, var as get};

/// Variables only a hosting platform sets, and the platform each reveals.
const HOSTING_PLATFORM_VARS: &[(&str, &str)] = &[
    ("FUNCTIONS_CUSTOMHANDLER_PORT", "Azure Functions"),
    ("WEBSITE_HOSTNAME", "Azure App Service or Functions"),
    ("CONTAINER_APP_NAME", "Azure Container Apps"),
    ("KUBERNETES_SERVICE_HOST", "Kubernetes"),
];

/// Variables only a cloud development environment sets whose port forwarding can publish a
/// loopback port to the internet (documented as always set in every workspace).
const PORT_FORWARDER_VARS: &[(&str, &str)] = &[
    ("CODESPACES", "GitHub Codespaces"),
    ("GITPOD_WORKSPACE_ID", "Gitpod"),
];

/// The Azure platform's own variables, mapped onto settings (highest precedence).
pub(super) fn well_known(env: &Env) -> Vec<(&'static str, &'static str, String)> {
    let mut out = Vec::new();
    if let Some(port) = get(env, "FUNCTIONS_CUSTOMHANDLER_PORT") {
        // The Functions host proxies to the custom handler over loopback.
        out.push((
            "server.listen",
            "FUNCTIONS_CUSTOMHANDLER_PORT",
            format!("127.0.0.1:{port}"),
        ));
    }
    let simple = [
        ("entra.tenant_id", "AZURE_TENANT_ID"),
        ("entra.client_id", "AZURE_CLIENT_ID"),
        ("entra.authority_host", "AZURE_AUTHORITY_HOST"),
        (
            "obo.managed_identity_client_id",
            "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID",
        ),
        ("obo.token_exchange_audience", "TOKEN_EXCHANGE_AUDIENCE"),
        ("obo.federated_token_file", "AZURE_FEDERATED_TOKEN_FILE"),
    ];
    for (key, name) in simple {
        if let Some(value) = get(env, name) {
            out.push((key, name, value));
        }
    }
    if get(env, "AZURE_CLIENT_ID").is_none()
        && let Some(client) = get(env, "WEBSITE_AUTH_CLIENT_ID")
    {
        out.push(("entra.client_id", "WEBSITE_AUTH_CLIENT_ID", client));
    }
    out
}

/// `NAME is set: platform` for each hosting platform variable in `env`.
pub(super) fn hosting_platform(env: &Env) -> Vec<String> {
    present(HOSTING_PLATFORM_VARS, env)
}

/// `NAME is set: environment` for each port-forwarding development environment's variable
/// in `env`.
pub(super) fn port_forwarder(env: &Env) -> Vec<String> {
    present(PORT_FORWARDER_VARS, env)
}

fn present(vars: &[(&str, &str)], env: &Env) -> Vec<String> {
    vars.iter()
        .filter(|(name, _)| get(env, name).is_some())
        .map(|(name, platform)| format!("{name} is set: {platform}"))
        .collect()
}

/// Without a configured `server.public_url`: the platform's host name when it says one,
/// else the listen address (local use; a bad listen address, reported by the server
/// section, counts as its default here).
pub(super) fn derive_public_url(layers: &mut Layers, env: &Env) {
    let Some(server) = layers.tables.get_mut("server") else {
        return;
    };
    let configured = server
        .get("public_url")
        .and_then(|v| v.clone().into_string().ok())
        .is_some_and(|v| !v.trim().is_empty());
    if configured {
        return;
    }
    let platform = ["WEBSITE_HOSTNAME", "CONTAINER_APP_HOSTNAME"]
        .into_iter()
        .find_map(|name| get(env, name).map(|host| (name, host)));
    let (url, source) = match platform {
        Some((name, host)) => (format!("https://{host}"), Source::Env(name.to_owned())),
        None => {
            let listen = |table: Option<&Table>| {
                table
                    .and_then(|t| t.get("listen"))
                    .and_then(|v| v.clone().into_string().ok())
                    .and_then(|raw| parse_listen(raw.trim()).ok())
            };
            let Some(addr) = listen(Some(server)).or_else(|| listen(layers.defaults.get("server")))
            else {
                return;
            };
            (local_url(addr), Source::Derived("server.listen"))
        }
    };
    server.insert("public_url".into(), Value::from(url));
    layers.sources.insert("server.public_url".into(), source);
}

/// Without a configured `obo.client_assertion` and with inbound authorization on: the
/// platform's federation (workload identity's token file, else a managed identity).
pub(super) fn detect_client_assertion(layers: &mut Layers, mode: Option<AuthMode>, env: &Env) {
    if !mode.is_some_and(|m| m != AuthMode::None) {
        return;
    }
    let Some(obo) = layers.tables.get_mut("obo") else {
        return;
    };
    let text = |key: &str| {
        obo.get(key)
            .and_then(|v| v.clone().into_string().ok())
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    if !text("client_assertion").is_empty() {
        return;
    }
    let detected = if !text("federated_token_file").is_empty() {
        ("workload_identity", "AZURE_FEDERATED_TOKEN_FILE")
    } else if get(env, "IDENTITY_ENDPOINT").is_some() {
        ("managed_identity", "IDENTITY_ENDPOINT")
    } else {
        return;
    };
    obo.insert("client_assertion".into(), Value::from(detected.0));
    layers
        .sources
        .insert("obo.client_assertion".into(), Source::Derived(detected.1));
}
