//! `mcp-obo dev` end to end, with the real binary and independent real clients:
//! a headless sign-in written here (testkit/src/dev_login.rs), the official MCP Python SDK
//! (tests/e2e/py_client.py), the MCP TypeScript SDK (tests/e2e/ts-dev-client.mjs) and the MCP
//! Inspector CLI. The Python venv, Node 22 and the npm packages come from
//! `scripts/setup-test-tools.sh`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::dev_login::{self, AuthorizationRequest, Authorize, Pkce};
use crate::support::mcp_http::{post_as, request};
use serde_json::{Value, json};

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

/// `mcp-obo dev` as a child process on four free loopback ports, with its own state folder;
/// killed on drop. Its stdout (the banner) and stderr (logs) go to files.
pub(crate) struct DevProcess {
    child: Child,
    port: u16,
    idp_port: u16,
    graph_port: u16,
    metrics_port: u16,
    logs: tempfile::TempDir,
    state: tempfile::TempDir,
}

impl DevProcess {
    /// Starts it and waits until `/readyz` answers 200 (the dev provider's keys are loaded).
    /// A port taken between choosing and binding it gets one more try with new ports.
    pub(crate) async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// [`DevProcess::start`] with more arguments of `mcp-obo dev` (e.g. `--user`).
    pub(crate) async fn start_with(args: &[&str]) -> Self {
        for attempt in 1..=3 {
            match Self::try_start(args).await {
                Ok(dev) => return dev,
                Err(stderr) if attempt < 3 && stderr.contains("cannot listen on") => continue,
                Err(stderr) => panic!("mcp-obo dev did not start: {stderr}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    async fn try_start(args: &[&str]) -> Result<Self, String> {
        let (port, idp_port, graph_port, metrics_port) = (
            crate::support::free_port(),
            crate::support::free_port(),
            crate::support::free_port(),
            crate::support::free_port(),
        );
        let logs = tempfile::tempdir().expect("temp dir");
        let state = tempfile::tempdir().expect("temp dir");
        let stdout = std::fs::File::create(logs.path().join("stdout.log")).expect("stdout file");
        let stderr = std::fs::File::create(logs.path().join("stderr.log")).expect("stderr file");
        let child = Command::new(crate::support::binary())
            .arg("dev")
            .args(["--port", &port.to_string()])
            .args(["--idp-port", &idp_port.to_string()])
            .args(["--graph-port", &graph_port.to_string()])
            .args(["--metrics-port", &metrics_port.to_string()])
            .arg("--state-dir")
            .arg(state.path())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("MCP_OBO__SERVER__WORKERS", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start mcp-obo dev");
        let mut dev = Self {
            child,
            port,
            idp_port,
            graph_port,
            metrics_port,
            logs,
            state,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let url = dev.url("/readyz");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = dev.child.try_wait() {
                return Err(format!("exited with {status}: {}", dev.stderr()));
            }
            if http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(dev);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("not ready within 30 s: {}", dev.stderr()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The state folder (keys, the federated token, doctor.toml and the operator's Graph
    /// token).
    pub(crate) fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// The `/metrics` URL on its own loopback listener.
    pub(crate) fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A URL of the development identity provider.
    pub(crate) fn idp_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.idp_port)
    }

    /// A URL of the Graph emulator.
    pub(crate) fn graph_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.graph_port)
    }

    pub(crate) fn mcp_url(&self) -> String {
        self.url("/mcp")
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("stdout.log")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("stderr.log")).unwrap_or_default()
    }

    /// The banner, once it is complete (it ends with the VS Code entry's closing brace).
    pub(crate) async fn banner(&self) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.stdout();
            if out.contains("VS Code") && out.trim_end().ends_with('}') {
                return out;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no complete banner within 10 s; stdout: {out}\nstderr: {}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Server logs, for failure messages.
    pub(crate) fn logs(&self) -> String {
        format!("mcp-obo dev stderr:\n{}", self.stderr())
    }
}

impl Drop for DevProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// `initialize` then `tools/call HelloTool` with `token`; returns the tool result.
async fn call_hello(dev: &DevProcess, token: &str) -> Value {
    let init = post_as(
        &dev.mcp_url(),
        token,
        &crate::support::mcp_http::initialize("2025-06-18"),
    )
    .await;
    assert_eq!(
        init.status,
        200,
        "initialize: {}\n{}",
        init.text,
        dev.logs()
    );
    let call = post_as(
        &dev.mcp_url(),
        token,
        &request(
            2,
            "tools/call",
            json!({"name": "HelloTool", "arguments": {}}),
        ),
    )
    .await;
    assert_eq!(
        call.status,
        200,
        "tools/call: {}\n{}",
        call.text,
        dev.logs()
    );
    let body = call.json.expect("JSON-RPC response");
    assert!(body["error"].is_null(), "{body}");
    body["result"].clone()
}

/// The tool result greets Ada with her dev email.
fn assert_greets_ada(result: &Value, context: &str) {
    assert_eq!(result["isError"], false, "{result}\n{context}");
    let structured = &result["structuredContent"];
    assert_eq!(
        structured["displayName"], "Ada Lovelace",
        "{result}\n{context}"
    );
    assert_eq!(
        structured["email"], "ada@contoso.dev",
        "{result}\n{context}"
    );
    let greeting = structured["greeting"].as_str().unwrap_or_default();
    assert!(
        greeting.contains("Ada Lovelace") && greeting.contains("ada@contoso.dev"),
        "{result}\n{context}"
    );
}

/// The banner's `Identity provider:` line.
fn banner_issuer(banner: &str) -> String {
    banner
        .lines()
        .find_map(|l| l.strip_prefix("Identity provider:"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| panic!("no identity provider line in the banner:\n{banner}"))
}

#[tokio::test]
async fn the_banner_prints_the_mcp_url_vscode_entry_and_users() {
    let dev = DevProcess::start().await;
    let banner = dev.banner().await;
    let mcp_url = dev.mcp_url();
    let line = |label: &str| {
        banner
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| panic!("no {label:?} line in the banner:\n{banner}"))
    };
    assert_eq!(line("MCP server:"), mcp_url, "{banner}");
    let issuer = line("Identity provider:");
    assert!(
        issuer.starts_with(&format!("http://127.0.0.1:{}/", dev.idp_port))
            && issuer.ends_with("/v2.0"),
        "{banner}"
    );
    assert_eq!(
        line("Graph emulator:"),
        format!("http://127.0.0.1:{}", dev.graph_port),
        "{banner}"
    );
    // Metrics on their own loopback listener, not on the MCP server's port.
    let metrics = line("Metrics:");
    assert_eq!(
        metrics,
        format!("http://127.0.0.1:{}/metrics", dev.metrics_port),
        "{banner}"
    );
    let scraped = reqwest::get(&metrics).await.expect("metrics listener");
    assert_eq!(scraped.status(), 200);
    let public = reqwest::get(dev.url("/metrics")).await.expect("MCP port");
    assert_eq!(public.status(), 404, "/metrics on the MCP server's port");
    for user in [
        "Ada Lovelace <ada@contoso.dev>",
        "Alan Turing <alan@contoso.dev>",
    ] {
        assert!(
            banner
                .lines()
                .any(|l| l.trim().trim_start_matches("- ") == user),
            "{user} not listed:\n{banner}"
        );
    }
    // The VS Code entry is valid JSON for .vscode/mcp.json: one http server at the MCP URL.
    let after = &banner[banner.find("VS Code").expect("VS Code section")..];
    let entry: Value = serde_json::from_str(&after[after.find('{').expect("JSON entry")..])
        .unwrap_or_else(|e| panic!("the VS Code entry is not JSON ({e}):\n{banner}"));
    let servers = entry["servers"].as_object().expect("servers object");
    assert_eq!(servers.len(), 1, "{entry}");
    let server = servers.values().next().expect("one server");
    assert_eq!(server["type"], "http", "{entry}");
    assert_eq!(server["url"], mcp_url, "{entry}");
    // The advertised URL answers as a protected MCP endpoint.
    let challenge = dev_login::discover(&mcp_url).await;
    assert_eq!(challenge.issuer(), issuer);
}

#[tokio::test]
async fn rust_headless_sign_in_then_hello_tool_greets_the_dev_user() {
    let dev = DevProcess::start().await;
    let issuer = banner_issuer(&dev.banner().await);
    let mcp_url = dev.mcp_url();

    // 401 → resource_metadata → PRM → authorization server → RFC 8414 metadata.
    let discovery = dev_login::discover(&mcp_url).await;
    assert_eq!(
        discovery.resource_metadata_url,
        dev.url("/.well-known/oauth-protected-resource/mcp"),
        "{}",
        discovery.www_authenticate
    );
    assert_eq!(
        discovery.resource(),
        mcp_url,
        "{}",
        discovery.protected_resource
    );
    assert_eq!(discovery.authorization_server(), issuer);
    assert_eq!(
        discovery.metadata_url,
        format!(
            "http://127.0.0.1:{}/.well-known/oauth-authorization-server{}",
            dev.idp_port,
            url::Url::parse(&issuer).expect("issuer URL").path()
        )
    );
    let metadata = &discovery.metadata;
    assert_eq!(metadata["issuer"], issuer.as_str(), "{metadata}");
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
    ] {
        let url = metadata[endpoint].as_str().unwrap_or_default();
        assert!(
            url.starts_with(&format!("http://127.0.0.1:{}/", dev.idp_port)),
            "{endpoint}: {metadata}"
        );
    }

    // Register, authorize as Ada, redeem.
    let client_id = dev_login::register(&discovery, dev_login::REDIRECT_URI).await;
    let request = AuthorizationRequest::new(&discovery, &client_id);
    let Authorize::Page(page) = dev_login::open_authorize(&request.url(&discovery)).await else {
        panic!("expected the sign-in page\n{}", dev.logs());
    };
    let labels: Vec<&str> = page.users.iter().map(|u| u.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "Ada Lovelace <ada@contoso.dev>",
            "Alan Turing <alan@contoso.dev>"
        ]
    );
    let callback = dev_login::choose_user(&page, "ada@contoso.dev").await;
    assert!(
        callback
            .location
            .as_str()
            .starts_with(dev_login::REDIRECT_URI),
        "{}",
        callback.location
    );
    assert_eq!(callback.get("iss"), Some(issuer.as_str()), "RFC 9207 iss");
    assert_eq!(callback.get("state"), Some(request.state.as_str()));
    let tokens = dev_login::redeem(
        &discovery,
        &request,
        callback.code(),
        &request.pkce.verifier,
    )
    .await;
    let claims = dev_login::jwt_claims(tokens.access_token());
    assert_eq!(claims["aud"], mcp_url.as_str(), "RFC 8707: {claims}");
    assert_eq!(claims["iss"], issuer.as_str(), "{claims}");
    assert_eq!(claims["preferred_username"], "ada@contoso.dev", "{claims}");
    assert_eq!(claims["azp"], client_id.as_str(), "{claims}");

    // The bearer token calls HelloTool, which reaches the Graph emulator on behalf of Ada.
    let result = call_hello(&dev, tokens.access_token()).await;
    assert_greets_ada(&result, &dev.logs());
}

#[tokio::test]
async fn refresh_tokens_rotate() {
    let dev = DevProcess::start().await;
    let signed_in = dev_login::sign_in(&dev.mcp_url(), "ada@contoso.dev").await;
    let discovery = &signed_in.discovery;
    let resource = Some(discovery.resource());
    let first = signed_in.refresh_token().to_owned();

    let refreshed = dev_login::refresh(discovery, &signed_in.client_id, &first, resource).await;
    assert_eq!(refreshed.status, 200, "refresh: {}", refreshed.body);
    let second = refreshed.refresh_token();
    assert_ne!(second, first, "the refresh token rotates");
    assert_ne!(refreshed.access_token(), signed_in.access_token());
    let claims = dev_login::jwt_claims(refreshed.access_token());
    assert_eq!(claims["aud"], dev.mcp_url().as_str(), "{claims}");
    assert_greets_ada(
        &call_hello(&dev, refreshed.access_token()).await,
        &dev.logs(),
    );

    // The old refresh token is spent.
    let reused = dev_login::refresh(discovery, &signed_in.client_id, &first, resource).await;
    assert_eq!(reused.status, 400, "{}", reused.body);
    assert_eq!(reused.error(), Some("invalid_grant"), "{}", reused.body);
}

#[tokio::test]
async fn pkce_and_codes_are_enforced() {
    let dev = DevProcess::start().await;
    let discovery = dev_login::discover(&dev.mcp_url()).await;
    let client_id = dev_login::register(&discovery, dev_login::REDIRECT_URI).await;
    let code_for = |request: AuthorizationRequest| {
        let discovery = discovery.clone();
        async move {
            let Authorize::Page(page) = dev_login::open_authorize(&request.url(&discovery)).await
            else {
                panic!("expected the sign-in page");
            };
            dev_login::choose_user(&page, "ada@contoso.dev")
                .await
                .code()
                .to_owned()
        }
    };

    // A verifier that does not hash to the challenge.
    let request = AuthorizationRequest::new(&discovery, &client_id);
    let code = code_for(request.clone()).await;
    let wrong = Pkce::new().verifier;
    let reply = dev_login::redeem(&discovery, &request, &code, &wrong).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.error(), Some("invalid_grant"), "{}", reply.body);

    // A code works once.
    let request = AuthorizationRequest::new(&discovery, &client_id);
    let code = code_for(request.clone()).await;
    let once = dev_login::redeem(&discovery, &request, &code, &request.pkce.verifier).await;
    assert_eq!(once.status, 200, "{}", once.body);
    let twice = dev_login::redeem(&discovery, &request, &code, &request.pkce.verifier).await;
    assert_eq!(twice.status, 400, "{}", twice.body);
    assert_eq!(twice.error(), Some("invalid_grant"), "{}", twice.body);

    // PKCE plain, and no PKCE at all, are refused with an error redirect to the client.
    let mut plain = AuthorizationRequest::new(&discovery, &client_id);
    plain.pkce.challenge = plain.pkce.verifier.clone();
    plain.code_challenge_method = "plain".to_owned();
    let plain_url = plain.url(&discovery);
    let without = AuthorizationRequest::new(&discovery, &client_id);
    let mut without_url = without.url(&discovery);
    let kept: Vec<(String, String)> = without_url
        .query_pairs()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    without_url.query_pairs_mut().clear().extend_pairs(kept);
    for (request, url) in [(plain, plain_url), (without, without_url)] {
        let Authorize::Redirect(callback) = dev_login::open_authorize(&url).await else {
            panic!("expected an error redirect for {url}");
        };
        assert!(
            callback
                .location
                .as_str()
                .starts_with(dev_login::REDIRECT_URI),
            "{}",
            callback.location
        );
        assert_eq!(
            callback.get("error"),
            Some("invalid_request"),
            "{}",
            callback.location
        );
        assert_eq!(callback.get("code"), None, "{}", callback.location);
        assert_eq!(callback.get("state"), Some(request.state.as_str()));
        assert_eq!(callback.get("iss"), Some(discovery.issuer()));
    }
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

#[tokio::test]
async fn a_client_id_metadata_document_stands_in_for_registration() {
    // The client's id is the URL of its own metadata document, served here on loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let client_id = format!(
        "http://{}/oauth/client-metadata.json",
        listener.local_addr().expect("addr")
    );
    let document = json!({
        "client_id": client_id,
        "client_name": "Metadata Document Client",
        "redirect_uris": [dev_login::REDIRECT_URI],
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "none",
    });
    let app = axum::Router::new().route(
        "/oauth/client-metadata.json",
        axum::routing::get(move || {
            let document = document.clone();
            async move { axum::Json(document) }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dev = DevProcess::start().await;
    let discovery = dev_login::discover(&dev.mcp_url()).await;
    assert_eq!(
        discovery.metadata["client_id_metadata_document_supported"],
        true
    );
    let request = AuthorizationRequest::new(&discovery, &client_id);
    let Authorize::Page(page) = dev_login::open_authorize(&request.url(&discovery)).await else {
        panic!("expected the sign-in page\n{}", dev.logs());
    };
    let callback = dev_login::choose_user(&page, "ada@contoso.dev").await;
    let tokens = dev_login::redeem(
        &discovery,
        &request,
        callback.code(),
        &request.pkce.verifier,
    )
    .await;
    assert_eq!(
        dev_login::jwt_claims(tokens.access_token())["azp"],
        client_id.as_str()
    );
    assert_greets_ada(&call_hello(&dev, tokens.access_token()).await, &dev.logs());

    // A redirect URI the document does not list is refused on the page, not redirected to.
    let mut stray = AuthorizationRequest::new(&discovery, &client_id);
    stray.redirect_uri = "http://evil.example/callback".into();
    assert!(matches!(
        dev_login::open_authorize(&stray.url(&discovery)).await,
        Authorize::Other { status: 400, .. }
    ));
}

#[tokio::test]
async fn refresh_tokens_stay_with_their_client_and_resource() {
    let dev = DevProcess::start().await;
    let signed_in = dev_login::sign_in(&dev.mcp_url(), "ada@contoso.dev").await;
    let discovery = &signed_in.discovery;
    let token = signed_in.refresh_token().to_owned();
    // Another client presenting the token is refused and does not spend it.
    let thief = dev_login::register(discovery, dev_login::REDIRECT_URI).await;
    let stolen = dev_login::refresh(discovery, &thief, &token, None).await;
    assert_eq!(stolen.error(), Some("invalid_grant"), "{}", stolen.body);
    // Another resource than the grant's is refused, also without spending it.
    let elsewhere = dev_login::refresh(
        discovery,
        &signed_in.client_id,
        &token,
        Some("http://127.0.0.1:1/other"),
    )
    .await;
    assert_eq!(
        elsewhere.error(),
        Some("invalid_target"),
        "{}",
        elsewhere.body
    );
    let owner = dev_login::refresh(
        discovery,
        &signed_in.client_id,
        &token,
        Some(discovery.resource()),
    )
    .await;
    assert_eq!(owner.status, 200, "{}", owner.body);
}

#[tokio::test]
async fn registration_accepts_only_safe_redirect_uris() {
    let dev = DevProcess::start().await;
    let discovery = dev_login::discover(&dev.mcp_url()).await;
    let client = dev_login::http();
    for (uri, ok) in [
        ("https://app.example.com/callback", true),
        ("http://127.0.0.1:33418/", true),
        ("com.example.mcp:/oauth/callback", true),
        ("http://app.example.com/callback", false),
        ("file:///etc/passwd", false),
        ("javascript:alert(1)", false),
        ("vbscript:msgbox", false),
    ] {
        let reply = client
            .post(discovery.registration_endpoint())
            .json(&json!({"redirect_uris": [uri], "token_endpoint_auth_method": "none"}))
            .send()
            .await
            .expect("register");
        assert_eq!(reply.status().is_success(), ok, "{uri}: {}", reply.status());
    }
}
