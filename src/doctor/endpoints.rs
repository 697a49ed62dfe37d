//! Step 2: the endpoints the server depends on answer, and say what they should: the
//! issuer's discovery document (its `issuer` the one tokens must carry), its keys, the
//! token endpoint, and Microsoft Graph, each with its latency.

use serde::Deserialize;

use super::expect::Expected;
use super::probe::Probe;
use super::{Check, Status, Step};
use crate::auth::AuthMode;
use crate::config::trim_slash;
use crate::settings::Settings;

#[derive(Deserialize)]
struct Discovery {
    issuer: Option<String>,
    jwks_uri: Option<String>,
    token_endpoint: Option<String>,
}

#[derive(Deserialize)]
struct KeySet {
    keys: Vec<serde_json::Value>,
}

/// What later steps need from this one.
#[derive(Default)]
pub struct Found {
    /// Where the exchange posts (the certificate assertion's audience).
    pub token_endpoint: Option<String>,
    /// Whether Microsoft Graph answered (step 4 reads the app registration there).
    pub graph_answers: bool,
}

/// Discovery, then the keys and token endpoint it names, then Graph. Without a discovery
/// URL (no identity provider to ask) only Graph is checked.
pub async fn check(probe: &Probe, s: &Settings, expected: &Expected) -> Step<Found> {
    let mut checks = Vec::new();
    let mut found = Found::default();
    if let Some(discovery_url) = crate::auth::discovery_url(&s.auth, &s.entra) {
        let (line, discovery) = discovery(probe, &discovery_url, s, expected).await;
        checks.push(line);
        if let Some(doc) = &discovery {
            checks.push(keys(probe, doc.jwks_uri.as_deref()).await);
        }
        let token_endpoint = s
            .obo
            .token_endpoint
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| discovery.and_then(|d| d.token_endpoint));
        if let Some(endpoint) = &token_endpoint {
            checks.push(token(probe, endpoint).await);
        }
        found.token_endpoint = token_endpoint;
    }
    let graph = graph(probe, expected).await;
    found.graph_answers = graph.status == Status::Pass;
    checks.push(graph);
    Step { checks, found }
}

/// The discovery document's line, and the document when it declares the issuer tokens
/// must carry.
async fn discovery(
    probe: &Probe,
    discovery_url: &str,
    s: &Settings,
    expected: &Expected,
) -> (Check, Option<Discovery>) {
    let issuer = match s.auth.mode {
        AuthMode::Oidc => s.auth.issuer.as_ref().map(trim_slash).unwrap_or_default(),
        _ => expected.entra_issuer(),
    };
    let fix_issuer = match s.auth.mode {
        AuthMode::Oidc => "set auth.issuer (MCP_OBO__AUTH__ISSUER) to exactly the issuer your provider declares".to_owned(),
        _ => "check entra.tenant_id (AZURE_TENANT_ID: `az account show --query tenantId -o tsv`) and entra.authority_host (AZURE_AUTHORITY_HOST; https://login.microsoftonline.us for US Government, https://login.chinacloudapi.cn for China)".to_owned(),
    };
    let id = "endpoints.discovery";
    let answer = match probe.get(discovery_url, None).await {
        Ok(answer) => answer,
        Err(e) => {
            let fix = format!(
                "check the network (proxy variables HTTPS_PROXY/NO_PROXY) and {fix_issuer}"
            );
            return (
                Check::fail(id, format!("cannot reach {discovery_url}: {e}"), fix),
                None,
            );
        }
    };
    let (check, doc) = match (answer.status, answer.json::<Discovery>()) {
        (200, Some(doc)) if doc.issuer.as_deref() == Some(issuer.as_str()) => (
            Check::pass(id, format!("{discovery_url} declares issuer {issuer}")),
            Some(doc),
        ),
        (200, Some(doc)) => (
            Check::fail(
                id,
                format!(
                    "{discovery_url} declares issuer {}, but tokens must carry {issuer}",
                    doc.issuer.as_deref().unwrap_or("(none)")
                ),
                fix_issuer,
            ),
            None,
        ),
        (status, _) => (
            Check::fail(
                id,
                format!("{discovery_url} answered HTTP {status} without a discovery document"),
                fix_issuer,
            ),
            None,
        ),
    };
    (check.took(answer.took), doc)
}

async fn keys(probe: &Probe, jwks_uri: Option<&str>) -> Check {
    let Some(uri) = jwks_uri else {
        return Check::fail(
            "endpoints.jwks",
            "the discovery document has no jwks_uri",
            "fix the identity provider: its discovery document must name its signing keys",
        );
    };
    match url::Url::parse(uri) {
        Ok(parsed) if crate::auth::keys_url_is_secure(&parsed) => {}
        _ => {
            return Check::fail(
                "endpoints.jwks",
                format!(
                    "{uri} does not use https (plain http is accepted only for loopback hosts), so the server refuses these keys"
                ),
                "fix the identity provider's jwks_uri: signing keys must come over TLS; until then no token can be validated (/readyz stays 503)",
            );
        }
    }
    match probe.get(uri, None).await {
        Ok(answer) => match answer.json::<KeySet>() {
            Some(set) if answer.status == 200 && !set.keys.is_empty() => Check::pass(
                "endpoints.jwks",
                format!("{uri} lists {} signing keys", set.keys.len()),
            )
            .took(answer.took),
            _ => Check::fail(
                "endpoints.jwks",
                format!("{uri} answered HTTP {} without signing keys", answer.status),
                "fix the identity provider's jwks_uri; until it serves keys no token can be validated (/readyz stays 503)",
            )
            .took(answer.took),
        },
        Err(e) => Check::fail(
            "endpoints.jwks",
            format!("cannot reach {uri}: {e}"),
            "allow outbound https to the identity provider (proxy variables HTTPS_PROXY/NO_PROXY, firewall)",
        ),
    }
}

/// Any HTTP answer shows the endpoint is there; without credentials it is an OAuth error.
async fn token(probe: &Probe, endpoint: &str) -> Check {
    let request = probe
        .client()
        .post(endpoint)
        .form(&[("grant_type", "client_credentials")]);
    match probe.send(request).await {
        Ok(answer) if answer.status < 500 => Check::pass(
            "endpoints.token",
            format!("{endpoint} answers (HTTP {} without credentials)", answer.status),
        )
        .took(answer.took),
        Ok(answer) => Check::fail(
            "endpoints.token",
            format!("{endpoint} answered HTTP {}", answer.status),
            "check obo.token_endpoint (MCP_OBO__OBO__TOKEN_ENDPOINT) or the identity provider's health",
        )
        .took(answer.took),
        Err(e) => Check::fail(
            "endpoints.token",
            format!("cannot reach {endpoint}: {e}"),
            "allow outbound https to the token endpoint (proxy variables HTTPS_PROXY/NO_PROXY, firewall)",
        ),
    }
}

/// Graph answers a request without a token with 401: reachable.
async fn graph(probe: &Probe, expected: &Expected) -> Check {
    let url = format!("{}/v1.0/me", expected.graph_base);
    match probe.get(&url, None).await {
        Ok(answer) if answer.status < 500 => Check::pass(
            "endpoints.graph",
            format!("{} answers (HTTP {} without a token)", expected.graph_base, answer.status),
        )
        .took(answer.took),
        Ok(answer) => Check::fail(
            "endpoints.graph",
            format!("{url} answered HTTP {}", answer.status),
            "check graph.base_url (MCP_OBO__GRAPH__BASE_URL): https://graph.microsoft.com, https://graph.microsoft.us or https://microsoftgraph.chinacloudapi.cn",
        )
        .took(answer.took),
        Err(e) => Check::fail(
            "endpoints.graph",
            format!("cannot reach {}: {e}", expected.graph_base),
            "allow outbound https to Microsoft Graph (proxy variables HTTPS_PROXY/NO_PROXY, firewall), or fix graph.base_url (MCP_OBO__GRAPH__BASE_URL)",
        ),
    }
}
