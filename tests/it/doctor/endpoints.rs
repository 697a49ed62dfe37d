//! Step 2: discovery, keys, the token endpoint and Graph.

use super::*;

/// Runs doctor against the fake with `endpoint` broken, expecting exactly `line` and `fix`.
async fn assert_only_endpoint_failure(
    endpoint: Endpoint,
    line: impl Fn(&World) -> String,
    fix: &str,
) -> String {
    let world = World::start_with(Broken::Nothing, endpoint, &mcp_url()).await;
    let (failures, text) = failures_in(&world, &world.server_env(PUBLIC), true).await;
    assert_eq!(failures, failure(&line(&world), fix), "{text}");
    assert!(lines_with(&text, "WARN ").is_empty(), "{text}");
    text
}

const FIX_TENANT_AND_AUTHORITY: &str = "check entra.tenant_id (AZURE_TENANT_ID: `az account show --query tenantId -o tsv`) and entra.authority_host (AZURE_AUTHORITY_HOST; https://login.microsoftonline.us for US Government, https://login.chinacloudapi.cn for China)";

#[tokio::test]
async fn a_discovery_document_declaring_another_issuer_fails_endpoints_discovery() {
    let text = assert_only_endpoint_failure(
        Endpoint::OtherIssuer,
        |w| {
            let base = &w.base;
            format!(
                "FAIL endpoints.discovery: {base}/{TENANT}/v2.0/.well-known/openid-configuration declares issuer https://login.microsoftonline.com/{TENANT}/v2.0, but tokens must carry {base}/{TENANT}/v2.0 (N ms)"
            )
        },
        FIX_TENANT_AND_AUTHORITY,
    )
    .await;
    // The keys and token endpoint of a document that is not the issuer's are not probed.
    assert!(
        !text.contains("endpoints.jwks") && !text.contains("endpoints.token"),
        "{text}"
    );
}

#[tokio::test]
async fn keys_that_are_not_json_fail_endpoints_jwks() {
    assert_only_endpoint_failure(
        Endpoint::KeysNotJson,
        |w| {
            format!(
                "FAIL endpoints.jwks: {}/{TENANT}/discovery/v2.0/keys answered HTTP 200 without signing keys (N ms)",
                w.base
            )
        },
        "fix the identity provider's jwks_uri; until it serves keys no token can be validated (/readyz stays 503)",
    )
    .await;
}

#[tokio::test]
async fn unreachable_keys_fail_endpoints_jwks() {
    assert_only_endpoint_failure(
        Endpoint::KeysUnreachable,
        |w| {
            format!(
                "FAIL endpoints.jwks: cannot reach {}/{TENANT}/discovery/v2.0/keys: connection failed",
                w.closed
            )
        },
        "allow outbound https to the identity provider (proxy variables HTTPS_PROXY/NO_PROXY, firewall)",
    )
    .await;
}

#[tokio::test]
async fn plain_http_keys_off_loopback_fail_endpoints_jwks_as_the_server_refuses_them() {
    assert_only_endpoint_failure(
        Endpoint::KeysOverPlainHttp,
        |_| {
            format!(
                "FAIL endpoints.jwks: http://keys.contoso.test/{TENANT}/discovery/v2.0/keys does not use https (plain http is accepted only for loopback hosts), so the server refuses these keys"
            )
        },
        "fix the identity provider's jwks_uri: signing keys must come over TLS; until then no token can be validated (/readyz stays 503)",
    )
    .await;
}

#[tokio::test]
async fn a_token_endpoint_nothing_answers_on_fails_endpoints_token() {
    assert_only_endpoint_failure(
        Endpoint::TokenUnreachable,
        |w| {
            format!(
                "FAIL endpoints.token: cannot reach {}/{TENANT}/oauth2/v2.0/token: connection failed",
                w.closed
            )
        },
        "allow outbound https to the token endpoint (proxy variables HTTPS_PROXY/NO_PROXY, firewall)",
    )
    .await;
}

#[tokio::test]
async fn a_token_endpoint_answering_503_fails_endpoints_token() {
    assert_only_endpoint_failure(
        Endpoint::TokenFailing,
        |w| {
            format!(
                "FAIL endpoints.token: {}/{TENANT}/oauth2/v2.0/token answered HTTP 503 (N ms)",
                w.base
            )
        },
        "check obo.token_endpoint (MCP_OBO__OBO__TOKEN_ENDPOINT) or the identity provider's health",
    )
    .await;
}

#[tokio::test]
async fn an_unreachable_graph_fails_endpoints_graph_and_the_registration_is_not_read() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let env = world.env_with(&[("MCP_OBO__GRAPH__BASE_URL", &world.closed)], &[]);
    let (failures, text) = failures_in(&world, &env, true).await;
    assert_eq!(
        failures,
        failure(
            &format!(
                "FAIL endpoints.graph: cannot reach {}: connection failed",
                world.closed
            ),
            "allow outbound https to Microsoft Graph (proxy variables HTTPS_PROXY/NO_PROXY, firewall), or fix graph.base_url (MCP_OBO__GRAPH__BASE_URL)",
        ),
        "{text}"
    );
    assert!(lines_with(&text, "WARN ").is_empty(), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.get(5..).is_some_and(|check| check.starts_with("app."))),
        "{text}"
    );
}

#[tokio::test]
async fn passing_endpoint_and_credential_lines_show_their_latency() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let (failures, text) = failures_in(&world, &world.server_env(PUBLIC), true).await;
    assert!(failures.is_empty(), "{text}");
    let masked = mask_latency(&text);
    let base = &world.base;
    for line in [
        format!(
            "PASS endpoints.discovery: {base}/{TENANT}/v2.0/.well-known/openid-configuration declares issuer {base}/{TENANT}/v2.0 (N ms)"
        ),
        format!(
            "PASS endpoints.jwks: {base}/{TENANT}/discovery/v2.0/keys lists 1 signing keys (N ms)"
        ),
        format!(
            "PASS endpoints.token: {base}/{TENANT}/oauth2/v2.0/token answers (HTTP 400 without credentials) (N ms)"
        ),
        format!("PASS endpoints.graph: {base} answers (HTTP 401 without a token) (N ms)"),
        format!(
            "PASS credential.assertion: workload identity assertion: iss {WI_ISSUER}, sub {WI_SUBJECT}, aud {EXCHANGE} (N ms)"
        ),
    ] {
        assert!(
            masked.lines().any(|l| l == line),
            "missing {line:?}:\n{text}"
        );
    }
}
