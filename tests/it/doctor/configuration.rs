//! Step 1: the configuration and its cross-checks.

use super::*;

const SET_PUBLIC_URL: &str = "set server.public_url (MCP_OBO__SERVER__PUBLIC_URL)";

#[tokio::test]
async fn a_configured_plain_http_public_url_on_a_public_host_is_the_one_configuration_failure() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let env = world.env_with(
        &[("MCP_OBO__SERVER__PUBLIC_URL", "http://mcp.contoso.example")],
        &[],
    );
    let (failures, text) = failures_in(&world, &env, true).await;
    let only = failure(
        "FAIL config.valid: server.public_url: \"http://mcp.contoso.example\" uses plain http; https is required except for loopback addresses (localhost, 127.0.0.1, [::1])",
        &format!(
            "{SET_PUBLIC_URL} in the configuration file or environment; `mcp-obo config` shows each value and where it came from"
        ),
    );
    assert_eq!(failures, only, "{text}");
    // The configuration `serve` refuses stops doctor there: no other line.
    assert_eq!(
        text,
        format!("{}\n0 passed, 0 warnings, 1 failed\n", only[0]),
        "{text}"
    );
}

#[tokio::test]
async fn a_public_url_derived_from_a_public_listen_address_fails_config_public_url() {
    // No public_url configured: it is derived from the listen address, plain http.
    let world = World::start(Broken::Nothing, "http://192.0.2.10:8080/mcp").await;
    let env = world.env_with(
        &[("MCP_OBO__SERVER__LISTEN", "192.0.2.10:8080")],
        &["MCP_OBO__SERVER__PUBLIC_URL"],
    );
    let (failures, text) = failures_in(&world, &env, true).await;
    assert_eq!(
        failures,
        failure(
            "FAIL config.public_url: server.public_url = http://192.0.2.10:8080 is plain http on a host that is not loopback: MCP clients refuse it and tokens would cross the network in the clear",
            &format!(
                "{SET_PUBLIC_URL} to the https URL clients use, e.g. https://<app>.azurecontainerapps.io"
            ),
        ),
        "{text}"
    );
    assert!(lines_with(&text, "WARN ").is_empty(), "{text}");
}

#[tokio::test]
async fn a_scope_advertised_under_an_audience_the_server_refuses_fails_config_scopes() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let env = world.env_with(
        &[(
            "MCP_OBO__AUTH__REQUIRED_SCOPES",
            "user_impersonation,api://other-app/Files.Read",
        )],
        &[],
    );
    // Without the operator's token: the registration (whose scope check would name the
    // same scope again) is one warning.
    let (failures, text) = failures_in(&world, &env, false).await;
    assert_eq!(
        failures,
        failure(
            "FAIL config.scopes: clients are told to request api://other-app/Files.Read, a scope of api://other-app, which is not an audience the server accepts: the tokens they get are refused",
            &format!(
                "write the scope as its bare name (Files.Read) in auth.required_scopes / auth.tool_scopes (MCP_OBO__AUTH__REQUIRED_SCOPES, MCP_OBO__AUTH__TOOL_SCOPES) so it is advertised under api://{APP}, or, if api://other-app is this app's identifier URI, list it in auth.identifier_uris (MCP_OBO__AUTH__IDENTIFIER_URIS)"
            ),
        ),
        "{text}"
    );
    let warnings = lines_with(&text, "WARN ");
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].starts_with("WARN app.read: "), "{text}");
}

#[tokio::test]
async fn an_identifier_uri_configured_with_a_trailing_slash_fails_config_scopes() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let slashed = format!("api://{APP}/");
    let env = world.env_with(&[("MCP_OBO__AUTH__IDENTIFIER_URIS", &slashed)], &[]);
    let (failures, text) = failures_in(&world, &env, false).await;
    assert_eq!(
        failures,
        failure(
            &format!(
                "FAIL config.scopes: auth.identifier_uris has \"{slashed}\" with a trailing slash: Entra compares identifier URIs exactly, so a client asking for the scope without it gets AADSTS9010010 / AADSTS500011"
            ),
            &format!(
                "set auth.identifier_uris (MCP_OBO__AUTH__IDENTIFIER_URIS) to \"api://{APP}\", the identifier URI exactly as the app registration lists it"
            ),
        ),
        "{text}"
    );
}

#[tokio::test]
async fn invalid_values_are_the_problems_mcp_obo_config_reports_one_failing_line_each() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let env = world.env_with(
        &[
            ("MCP_OBO__AUTH__LEEWAY", "20m"),
            ("MCP_OBO__GRAPH__TIMEOUT", "soonish"),
        ],
        &[],
    );
    // What `mcp-obo config` (and `serve`, exit 2) refuses...
    let config = run(world.command("config", &env)).await;
    assert_eq!(config.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&config.stderr).into_owned();
    let problems: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("  - "))
        .collect();
    assert!(
        stderr.starts_with("mcp-obo: invalid configuration:\n") && problems.len() == 2,
        "{stderr}"
    );
    assert!(
        problems.contains(&"auth.leeway: must be at most 10m"),
        "{stderr}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("graph.timeout: \"soonish\"")),
        "{stderr}"
    );
    // ...is what doctor fails on, one line each, with the variable that sets it.
    let (failures, text) = failures_in(&world, &env, true).await;
    let variable = |problem: &str| match problem.split_once(':').map(|(key, _)| key) {
        Some("auth.leeway") => "auth.leeway (MCP_OBO__AUTH__LEEWAY)",
        Some("graph.timeout") => "graph.timeout (MCP_OBO__GRAPH__TIMEOUT)",
        other => panic!("unexpected problem {other:?}"),
    };
    let expected: Vec<String> = problems
        .iter()
        .map(|p| {
            format!(
                "FAIL config.valid: {p}\n    fix: set {} in the configuration file or environment; `mcp-obo config` shows each value and where it came from",
                variable(p)
            )
        })
        .collect();
    assert_eq!(failures, expected, "{text}");
    assert!(text.ends_with("0 passed, 0 warnings, 2 failed\n"), "{text}");
}
