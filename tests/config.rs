//! The CLI and configuration layering, through the real binary.

mod support;

use std::process::Command;

use support::binary;

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

#[test]
fn otlp_over_grpc_without_the_feature_is_refused_with_what_to_do() {
    let out = run(
        &["serve"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("MCP_OBO__SERVER__LISTEN", "127.0.0.1:0"),
        ],
    );
    if cfg!(feature = "otlp-grpc") {
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("otlp-grpc feature"),
        "{}",
        stderr(&out)
    );
}
