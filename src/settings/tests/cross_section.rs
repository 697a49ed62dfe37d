//! The checks across sections: `auth.mode = none` only where nothing public reaches the
//! server, and `oidc` with the Entra grant only with an explicit token endpoint.

use super::*;

#[test]
fn auth_none_refuses_a_public_listen_address() {
    let Err(Error::Invalid(problems)) =
        load(None, &env(&[("MCP_OBO__SERVER__LISTEN", "0.0.0.0:7071")]))
    else {
        panic!("auth none on 0.0.0.0 must be refused");
    };
    assert!(problems.iter().any(|p| p.key == "auth.mode"));
}

const OIDC: &[(&str, &str)] = &[
    ("MCP_OBO__AUTH__MODE", "oidc"),
    ("MCP_OBO__AUTH__ISSUER", "https://idp.example/realms/x"),
    ("MCP_OBO__AUTH__AUDIENCES", "https://mcp.example.com/mcp"),
    ("MCP_OBO__OBO__CLIENT_ASSERTION", "client_secret"),
    ("MCP_OBO__OBO__CLIENT_SECRET", "s3cret"),
];

#[test]
fn oidc_with_the_entra_grant_needs_an_explicit_token_endpoint() {
    let found = problems(OIDC);
    let problem = found
        .iter()
        .find(|p| p.key == "obo.token_endpoint")
        .unwrap_or_else(|| panic!("obo.token_endpoint missing from {found:?}"));
    assert!(
        problem.message.contains("MCP_OBO__OBO__TOKEN_ENDPOINT"),
        "{problem}"
    );
    // The platform's federation, detected, counts as a configured exchange too.
    let mut detected: Vec<(&str, &str)> = OIDC[..3].to_vec();
    detected.push(("IDENTITY_ENDPOINT", "http://127.0.0.1:42356/msi/token"));
    assert!(
        problems(&detected)
            .iter()
            .any(|p| p.key == "obo.token_endpoint")
    );
}

#[test]
fn oidc_with_the_entra_grant_is_valid_with_a_token_endpoint_or_without_an_exchange() {
    let mut with_endpoint = OIDC.to_vec();
    with_endpoint.push((
        "MCP_OBO__OBO__TOKEN_ENDPOINT",
        "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token",
    ));
    load(None, &env(&with_endpoint)).expect("an explicit token endpoint is enough");
    load(None, &env(&OIDC[..3])).expect("no exchange configured: nothing to call");
}

#[test]
fn auth_none_refuses_to_start_on_a_hosting_platform_even_on_loopback() {
    for (name, value) in [
        ("FUNCTIONS_CUSTOMHANDLER_PORT", "8123"),
        ("WEBSITE_HOSTNAME", "mcp.azurewebsites.net"),
        ("CONTAINER_APP_NAME", "mcp"),
        ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
    ] {
        let found = problems(&[("MCP_OBO__SERVER__LISTEN", "127.0.0.1:7071"), (name, value)]);
        let problem = found
            .iter()
            .find(|p| p.key == "auth.mode")
            .unwrap_or_else(|| panic!("{name}: auth.mode missing from {found:?}"));
        for word in [name, "MCP_OBO__AUTH__MODE", "entra", "easyauth", "oidc"] {
            assert!(problem.message.contains(word), "{word} missing: {problem}");
        }
    }
}

#[test]
fn auth_none_refuses_every_non_loopback_name_or_peer_at_once() {
    let found = problems(&[
        ("MCP_OBO__SERVER__PUBLIC_URL", "https://abc.ngrok.app"),
        (
            "MCP_OBO__SERVER__ALLOWED_HOSTS",
            "localhost:7071,abc.trycloudflare.com",
        ),
        (
            "MCP_OBO__SERVER__ALLOWED_ORIGINS",
            "http://127.0.0.1:5173,https://abc.ngrok.app",
        ),
        ("MCP_OBO__SERVER__TRUSTED_PROXIES", "127.0.0.1,10.0.0.4"),
    ]);
    for (key, named) in [
        ("server.public_url", "https://abc.ngrok.app"),
        ("server.allowed_hosts", "abc.trycloudflare.com"),
        ("server.allowed_origins", "https://abc.ngrok.app"),
        ("server.trusted_proxies", "10.0.0.4"),
    ] {
        let problem = found
            .iter()
            .find(|p| p.key == key)
            .unwrap_or_else(|| panic!("{key} missing from {found:?}"));
        for word in [named, "auth.mode", "MCP_OBO__AUTH__MODE"] {
            assert!(problem.message.contains(word), "{word} missing: {problem}");
        }
        // The loopback entries are not named.
        for fine in ["localhost:7071", "127.0.0.1"] {
            let quoted = format!("{fine:?}");
            assert!(
                !problem.message.contains(&quoted),
                "{fine} named: {problem}"
            );
        }
    }
}

#[test]
fn auth_none_accepts_loopback_names_and_peers() {
    load(
        None,
        &env(&[
            ("MCP_OBO__SERVER__PUBLIC_URL", "http://localhost:7071"),
            (
                "MCP_OBO__SERVER__ALLOWED_HOSTS",
                "localhost,127.0.0.2:7071,[::1]:7071",
            ),
            (
                "MCP_OBO__SERVER__ALLOWED_ORIGINS",
                "http://localhost:5173,http://[::1]:6274",
            ),
            ("MCP_OBO__SERVER__TRUSTED_PROXIES", "127.0.0.1,::1"),
        ]),
    )
    .expect("loopback everywhere is local use");
}

#[test]
fn auth_none_refuses_to_start_where_port_forwarding_can_publish_loopback() {
    for (name, value, environment) in [
        ("CODESPACES", "true", "GitHub Codespaces"),
        (
            "GITPOD_WORKSPACE_ID",
            "0f7a3b2c-1111-4222-8333-444455556666",
            "Gitpod",
        ),
    ] {
        let found = problems(&[(name, value)]);
        let problem = found
            .iter()
            .find(|p| p.key == "auth.mode")
            .unwrap_or_else(|| panic!("{name}: auth.mode missing from {found:?}"));
        for word in [name, environment, "port forwarding", "MCP_OBO__AUTH__MODE"] {
            assert!(problem.message.contains(word), "{word} missing: {problem}");
        }
    }
    load(None, &entra_env(&[("CODESPACES", "true")])).expect("authorized modes run in a codespace");
}
