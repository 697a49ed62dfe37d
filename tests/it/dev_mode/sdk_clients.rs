//! Independent clients against `mcp-obo dev`: the official MCP Python SDK, the MCP
//! TypeScript SDK and the MCP Inspector CLI, each a child process with a time limit.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::{DevProcess, assert_greets_ada, banner_issuer};
use crate::support::dev_login;

const SETUP: &str = "run scripts/setup-test-tools.sh";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A tool the setup script installs, or a failure that says how to get it.
fn tool(relative: &str) -> PathBuf {
    let path = repo().join(relative);
    assert!(path.exists(), "{relative} is missing: {SETUP}");
    path
}

/// A child process killed on drop (a failed assertion must not leave it running).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a bounded child run printed.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The last stdout line as JSON (the peers print one JSON line).
    fn last_json_line(&self) -> Value {
        self.stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(Value::Null)
    }

    fn describe(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` to completion with stdout/stderr in files, killing it after `limit`.
async fn run_bounded(mut cmd: Command, limit: Duration) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"));
    let program = format!("{cmd:?}");
    let mut child = Killed(cmd.spawn().unwrap_or_else(|e| panic!("{program}: {e}")));
    let deadline = tokio::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("child status") {
            break Some(status);
        }
        if tokio::time::Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(child);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let run = Run {
        success: status.is_some_and(|s| s.success()),
        stdout: read(&out_path),
        stderr: read(&err_path),
    };
    assert!(
        status.is_some(),
        "{program} did not finish within {limit:?}; {}",
        run.describe()
    );
    run
}

#[tokio::test]
async fn python_sdk_client_signs_in_and_calls_hello_tool() {
    let python = tool(".tools/venv/bin/python");
    let dev = DevProcess::start().await;
    let mut cmd = Command::new(python);
    cmd.arg(repo().join("tests/e2e/py_client.py"))
        .arg(dev.mcp_url())
        .args(["--timeout", "30"]);
    let run = run_bounded(cmd, Duration::from_secs(60)).await;
    let out = run.last_json_line();
    assert!(
        run.success,
        "the Python SDK client failed ({out})\n{}\n{}",
        run.describe(),
        dev.logs()
    );
    assert!(
        out["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|n| n == "HelloTool")),
        "{out}"
    );
    assert_eq!(
        out["signIn"]["user"], "Ada Lovelace <ada@contoso.dev>",
        "{out}"
    );
    assert_eq!(
        out["signIn"]["iss"],
        banner_issuer(&dev.banner().await).as_str(),
        "{out}"
    );
    assert_greets_ada(&out["call"], &run.describe());
}

#[tokio::test]
async fn inspector_cli_calls_hello_tool_with_a_dev_token() {
    let node = tool(".tools/node22/bin/node");
    let build = tool("tests/e2e/node_modules/@modelcontextprotocol/inspector-cli/build");
    let dev = DevProcess::start().await;
    let signed_in = dev_login::sign_in(&dev.mcp_url(), "ada@contoso.dev").await;
    // inspector-cli 1.0.3 looks for its package.json at "../package.json" relative to the
    // working directory (build/index.js, callMethod), so it runs from its build folder.
    let mut cmd = Command::new(node);
    cmd.current_dir(&build)
        .arg("index.js")
        .arg(dev.mcp_url())
        .args(["--transport", "http"])
        .args(["--method", "tools/call"])
        .args(["--tool-name", "HelloTool"])
        .arg("--header")
        .arg(format!(
            "Authorization: Bearer {}",
            signed_in.access_token()
        ));
    let run = run_bounded(cmd, Duration::from_secs(60)).await;
    assert!(
        run.success,
        "inspector-cli failed\n{}\n{}",
        run.describe(),
        dev.logs()
    );
    let result: Value = serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "inspector-cli printed no JSON result ({e})\n{}",
            run.describe()
        )
    });
    assert_greets_ada(&result, &run.describe());
}

#[tokio::test]
async fn typescript_sdk_client_signs_in_against_dev() {
    let node = tool(".tools/node22/bin/node");
    tool("tests/e2e/node_modules/@modelcontextprotocol/sdk");
    let dev = DevProcess::start().await;
    let mut cmd = Command::new(node);
    cmd.arg(repo().join("tests/e2e/ts-dev-client.mjs"))
        .args(["--url", &dev.mcp_url()])
        .args(["--user", "ada@contoso.dev"])
        .args(["--timeout-ms", "15000"]);
    let run = run_bounded(cmd, Duration::from_secs(60)).await;
    let out = run.last_json_line();
    assert!(
        run.success,
        "the TypeScript SDK client failed ({out})\n{}\n{}",
        run.describe(),
        dev.logs()
    );
    assert_eq!(
        out["tools"],
        json!(["HelloTool", "UpcomingEvents"]),
        "{out}"
    );
    assert_eq!(out["user"], "Ada Lovelace <ada@contoso.dev>", "{out}");
    assert_eq!(out["resource"], dev.mcp_url().as_str(), "{out}");
    assert_eq!(
        out["accessTokenClaims"]["aud"],
        dev.mcp_url().as_str(),
        "{out}"
    );
    assert_greets_ada(&out["call"], &run.describe());
}
