//! The CLI and configuration layering, through the real binary.

use std::process::Command;

use crate::support::binary;

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run mcp-obo")
}

/// `run` for a command expected to exit by itself: killed after 15 s (a `serve` that starts
/// would otherwise run forever), so the test fails instead of hanging.
fn run_expecting_exit(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run mcp-obo");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while child.try_wait().expect("poll mcp-obo").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("mcp-obo output")
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_prints_each_value_with_its_source() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("mcp-obo.toml");
    std::fs::write(
        &file,
        "[graph]\ntimeout = \"7s\"\n[log]\nformat = \"json\"\n",
    )
    .expect("write config");
    let out = run(
        &["--config", file.to_str().expect("utf-8 path"), "config"],
        &[
            ("MCP_OBO__LOG__FORMAT", "text"),
            ("AZURE_TENANT_ID", "11111111-2222-3333-4444-555555555555"),
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "8123"),
            // Under the Functions host inbound authorization is required (auth.mode = none
            // is refused there).
            ("MCP_OBO__AUTH__MODE", "entra"),
            ("AZURE_CLIENT_ID", "66666666-7777-8888-9999-000000000000"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("{key} missing from:\n{text}"))
            .to_owned()
    };
    assert!(
        line("timeout").contains("\"7s\"")
            && line("timeout").contains(&format!("file {}", file.display()))
    );
    assert!(
        line("format").contains("\"text\"") && line("format").contains("env MCP_OBO__LOG__FORMAT")
    );
    assert!(line("tenant_id").contains("env AZURE_TENANT_ID"));
    assert!(
        line("listen").contains("127.0.0.1:8123")
            && line("listen").contains("env FUNCTIONS_CUSTOMHANDLER_PORT")
    );
    assert!(line("base_url").contains("# default"));
}

#[test]
fn a_bad_value_exits_2_naming_the_key_the_value_and_what_is_allowed() {
    let out = run(
        &["config"],
        &[
            ("MCP_OBO__GRAPH__TIMEOUT", "soonish"),
            ("MCP_OBO__LOG__FORMAT", "xml"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("graph.timeout")
            && err.contains("\"soonish\"")
            && err.contains("duration such as"),
        "{err}"
    );
    assert!(
        err.contains("log.format") && err.contains("\"xml\"") && err.contains("text or json"),
        "{err}"
    );
}

#[test]
fn serve_refuses_bad_config_with_exit_2_before_listening() {
    let out = run(&["serve"], &[("MCP_OBO__SERVER__LISTEN", "0.0.0.0:7071")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("loopback"), "{}", stderr(&out));
}

#[test]
fn serve_refuses_auth_none_on_a_hosting_platform_with_exit_2() {
    for (name, value) in [
        ("FUNCTIONS_CUSTOMHANDLER_PORT", "8123"),
        ("WEBSITE_HOSTNAME", "mcp.azurewebsites.net"),
        ("CONTAINER_APP_NAME", "mcp"),
        ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
    ] {
        let out = run_expecting_exit(
            &["serve"],
            &[("MCP_OBO__SERVER__LISTEN", "127.0.0.1:0"), (name, value)],
        );
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        for word in ["auth.mode", name, "MCP_OBO__AUTH__MODE", "entra"] {
            assert!(err.contains(word), "{name}: {word} missing from: {err}");
        }
    }
}

/// `serve` in the default `auth.mode = none` on a loopback port with `env` added, which
/// must exit 2; its stderr.
fn auth_none_refusal(env: &[(&str, &str)]) -> String {
    let mut all = vec![("MCP_OBO__SERVER__LISTEN", "127.0.0.1:0")];
    all.extend_from_slice(env);
    let out = run_expecting_exit(&["serve"], &all);
    assert_eq!(out.status.code(), Some(2), "{env:?}: {}", stderr(&out));
    stderr(&out)
}

#[test]
fn serve_refuses_auth_none_behind_a_tunnel_name_with_exit_2_naming_each_key() {
    let err = auth_none_refusal(&[
        ("MCP_OBO__SERVER__PUBLIC_URL", "https://abc.ngrok.app"),
        ("MCP_OBO__SERVER__ALLOWED_HOSTS", "abc.trycloudflare.com"),
        ("MCP_OBO__SERVER__ALLOWED_ORIGINS", "https://abc.ngrok.app"),
        ("MCP_OBO__SERVER__TRUSTED_PROXIES", "10.0.0.4"),
    ]);
    for word in [
        "server.public_url",
        "server.allowed_hosts",
        "server.allowed_origins",
        "server.trusted_proxies",
        "abc.trycloudflare.com",
        "10.0.0.4",
        "MCP_OBO__AUTH__MODE",
    ] {
        assert!(err.contains(word), "{word} missing from: {err}");
    }
}

#[test]
fn serve_refuses_auth_none_in_a_codespace_with_exit_2() {
    for (name, value) in [
        ("CODESPACES", "true"),
        (
            "GITPOD_WORKSPACE_ID",
            "0f7a3b2c-1111-4222-8333-444455556666",
        ),
    ] {
        let err = auth_none_refusal(&[(name, value)]);
        for word in ["auth.mode", name, "port forwarding", "MCP_OBO__AUTH__MODE"] {
            assert!(err.contains(word), "{name}: {word} missing from: {err}");
        }
    }
}

#[test]
fn serve_refuses_oidc_with_the_entra_grant_and_no_token_endpoint_with_exit_2() {
    let out = run_expecting_exit(
        &["serve"],
        &[
            ("MCP_OBO__SERVER__LISTEN", "127.0.0.1:0"),
            ("MCP_OBO__AUTH__MODE", "oidc"),
            ("MCP_OBO__AUTH__ISSUER", "https://idp.example/realms/x"),
            ("MCP_OBO__AUTH__AUDIENCES", "https://mcp.example.com/mcp"),
            ("MCP_OBO__OBO__CLIENT_ASSERTION", "client_secret"),
            ("MCP_OBO__OBO__CLIENT_SECRET", "s3cret"),
            // Every problem at once: this one is listed too.
            ("MCP_OBO__GRAPH__TIMEOUT", "soonish"),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("obo.token_endpoint") && err.contains("MCP_OBO__OBO__TOKEN_ENDPOINT"),
        "{err}"
    );
    assert!(err.contains("graph.timeout"), "{err}");
    assert!(!err.contains("s3cret"), "the secret appeared: {err}");
}

#[test]
fn an_unknown_key_is_an_error() {
    let out = run(&["config"], &[("MCP_OBO__SERVER__LISTEM", "127.0.0.1:1")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("server.listem: unknown key"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_config_file_is_reported() {
    let out = run(&["--config", "/nonexistent/mcp-obo.toml", "config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/mcp-obo.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_example_config_file_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/mcp-obo.example.toml");
    let out = run(&["--config", example, "config"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn version_and_help_work() {
    let out = run(&["--version"], &[]);
    assert!(out.status.success());
    assert!(stdout(&out).contains(env!("CARGO_PKG_VERSION")));
    let out = run(&["--help"], &[]);
    assert!(out.status.success());
    for word in ["serve", "config", "--config"] {
        assert!(stdout(&out).contains(word), "{word} missing from help");
    }
}

/// Telemetry never stops the server: `OTEL_*` values it cannot honour (the platform sets them
/// as often as the operator does) are one warning each, export is off or falls back, and
/// `/mcp` answers.
#[tokio::test]
async fn telemetry_settings_that_cannot_be_honoured_are_warnings_and_the_server_serves() {
    let server = crate::support::ServerProcess::start(
        binary(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
        ],
    )
    .await;
    server.wait_ready().await;
    let reply = reqwest::Client::new()
        .post(server.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .expect("the server answers");
    assert!(reply.status().is_success(), "{}", server.stderr());
    let log = server.stderr();
    for (variable, count) in [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", 1),
        ("OTEL_TRACES_SAMPLER", 1),
    ] {
        assert_eq!(
            log.lines()
                .filter(|l| l.contains("WARN") && l.contains(variable))
                .count(),
            count,
            "{variable}: {log}"
        );
    }
    assert!(log.contains("trace export is off"), "{log}");
}

#[test]
fn config_and_its_errors_print_a_password_in_a_url_as_stars() {
    let out = run(
        &["config"],
        &[(
            "MCP_OBO__GRAPH__BASE_URL",
            "https://svc:s3cret-pw@graph.contoso.example",
        )],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains("s3cret-pw"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with(
            r#"base_url = "https://svc:***@graph.contoso.example"  # env MCP_OBO__GRAPH__BASE_URL"#
        )),
        "{text}"
    );
    // Refused (plain http to a host that is not loopback): the message quotes the value.
    let out = run(
        &["config"],
        &[(
            "MCP_OBO__GRAPH__BASE_URL",
            "http://svc:s3cret-pw@graph.contoso.example",
        )],
    );
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(
        text.contains("http://svc:***@graph.contoso.example") && !text.contains("s3cret-pw"),
        "{text}"
    );
}
