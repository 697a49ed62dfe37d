//! OAuth end to end with independent real software and the real binary: the MCP
//! TypeScript SDK client signs the user in (authorization code + PKCE, dynamic client
//! registration, RFC 8707 resource) at the npm `oidc-provider` authorization server, having
//! discovered it from the server's 401 challenge (RFC 9728); the server validates the JWT
//! access token, exchanges it (RFC 8693, at the same provider) for a Graph token, and the
//! fake Graph verifies that token's signature and audience. The MCP Inspector CLI then calls
//! HelloTool with a token from the same provider, and the provider's token exchange is shown
//! to refuse what it should. Node 22 and the packages come from `scripts/setup-test-tools.sh`
//! (run by `scripts/test.sh`, the suite's one command).
//!
//! Sign-in is headless: the provider's interaction page (tests/e2e/oidc-provider-server.mjs)
//! logs in the fixed user `kc-user-1` ("Kim Tester", kim@example.org) and consents by
//! redirecting, and the client's `redirectToAuthorization` follows redirects with a cookie
//! jar until the redirect URI (tests/e2e/ts-oauth-client.mjs).

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::fake_graph::FakeGraph;
use crate::support::{ServerProcess, binary};
use serde_json::Value;

const USER_SUB: &str = "kc-user-1";
const USER_NAME: &str = "Kim Tester";
const USER_EMAIL: &str = "kim@example.org";
/// Bound on any one Node peer run (the scripts have their own, shorter, watchdogs).
const NODE_TIMEOUT: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn e2e() -> PathBuf {
    repo().join("tests/e2e")
}

fn node() -> PathBuf {
    let node = repo().join(".tools/node22/bin/node");
    let modules = e2e().join("node_modules");
    assert!(
        node.exists()
            && modules.join("oidc-provider").exists()
            && modules.join("@modelcontextprotocol/sdk").exists()
            && modules.join("@modelcontextprotocol/inspector-cli").exists(),
        "Node 22 test peers are not installed: run scripts/setup-test-tools.sh first"
    );
    node
}

/// What one finished Node run printed.
struct NodeRun {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl NodeRun {
    /// The last stdout line as JSON (the scripts print exactly one).
    fn json(&self) -> Value {
        self.stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(Value::Null)
    }

    fn raw(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// Runs `node args...` in `cwd` to completion, killed if it outlives `NODE_TIMEOUT`.
async fn run_node(args: Vec<String>, cwd: PathBuf) -> NodeRun {
    let node = node();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(node)
            .args(&args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start node");
        let mut stdout = child.stdout.take().expect("stdout pipe");
        let mut stderr = child.stderr.take().expect("stderr pipe");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            let _ = tx.send(s);
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        // stdout closes when the process exits; the deadline bounds a hung peer.
        let stdout = match rx.recv_timeout(NODE_TIMEOUT) {
            Ok(s) => s,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err_reader.join().unwrap_or_default();
                panic!("node {args:?} did not finish within {NODE_TIMEOUT:?}:\n{stderr}");
            }
        };
        let status = child.wait().expect("wait for node");
        let stderr = err_reader.join().unwrap_or_default();
        NodeRun {
            ok: status.success(),
            stdout,
            stderr,
        }
    })
    .await
    .expect("join")
}

/// `tests/e2e/oidc-provider-server.mjs` as a child process, killed on drop.
struct OidcProvider {
    child: Child,
    /// The ready line: issuer, jwks_uri, token_endpoint, ...
    info: Value,
    stderr_path: PathBuf,
    _logs: tempfile::TempDir,
}

impl OidcProvider {
    /// Starts the provider on a free port for the MCP resource `resource` and the Graph
    /// resource `graph`; returns once it printed its ready line (at most 20 s).
    fn start(resource: &str, graph: &str) -> Self {
        let logs = tempfile::tempdir().expect("temp dir");
        let stderr_path = logs.path().join("oidc-provider.stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr log file");
        let mut child = Command::new(node())
            .arg(e2e().join("oidc-provider-server.mjs"))
            .args(["--port", "0", "--resource", resource, "--graph", graph])
            .current_dir(e2e())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start oidc-provider");
        let stdout = child.stdout.take().expect("stdout pipe");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(Result::ok));
            // Keep draining until the process exits.
            for _ in lines {}
        });
        let line = rx.recv_timeout(Duration::from_secs(20));
        let mut provider = Self {
            child,
            info: Value::Null,
            stderr_path,
            _logs: logs,
        };
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) => panic!("oidc-provider exited early: {}", provider.stderr()),
            Err(_) => panic!("oidc-provider not ready within 20 s: {}", provider.stderr()),
        };
        provider.info = serde_json::from_str(&line).expect("oidc-provider ready line is JSON");
        assert!(
            provider.info.get("error").is_none(),
            "oidc-provider failed: {line}\n{}",
            provider.stderr()
        );
        provider
    }

    fn get(&self, key: &str) -> String {
        self.info[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {}", self.info))
            .to_owned()
    }

    fn issuer(&self) -> String {
        self.get("issuer")
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The provider's published signing keys (its discovery document's jwks_uri).
    async fn jwks(&self) -> Arc<Mutex<Vec<Value>>> {
        let discovery: Value = reqwest::get(self.get("discovery"))
            .await
            .expect("discovery")
            .json()
            .await
            .expect("discovery JSON");
        let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
        let set: Value = reqwest::get(jwks_uri)
            .await
            .expect("jwks")
            .json()
            .await
            .expect("jwks JSON");
        let keys = set["keys"].as_array().expect("keys").clone();
        assert!(!keys.is_empty(), "the provider publishes no keys");
        Arc::new(Mutex::new(keys))
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fake Graph, oidc-provider and the real server wired together (dropped in this order).
struct World {
    server: ServerProcess,
    provider: OidcProvider,
    graph: FakeGraph,
    keys: Arc<Mutex<Vec<Value>>>,
    public_url: String,
    resource: String,
}

impl World {
    async fn start() -> Self {
        let _ = node();
        let graph = FakeGraph::start().await;
        // The provider must know the MCP resource URL before the server runs: fix its port.
        let port = crate::support::free_port();
        let public_url = format!("http://127.0.0.1:{port}");
        let resource = format!("{public_url}/mcp");
        let provider = OidcProvider::start(&resource, &graph.url);
        let keys = provider.jwks().await;
        // Graph accepts only tokens the provider signed for Graph; the user's own token
        // (audience = the MCP resource) arriving there is recorded as passthrough.
        graph.verify_tokens(keys.clone(), &graph.url, &[&resource]);
        let issuer = provider.issuer();
        let token_endpoint = provider.get("token_endpoint");
        let env = [
            ("MCP_OBO__AUTH__MODE", "oidc"),
            ("MCP_OBO__AUTH__ISSUER", issuer.as_str()),
            ("MCP_OBO__AUTH__AUDIENCES", resource.as_str()),
            ("MCP_OBO__AUTH__REQUIRED_SCOPES", "mcp:tools"),
            ("MCP_OBO__SERVER__PUBLIC_URL", public_url.as_str()),
            ("MCP_OBO__GRAPH__BASE_URL", graph.url.as_str()),
            // The OIDC provider here knows one resource scope, `{graph}/.default`.
            ("MCP_OBO__GRAPH__SCOPES", "default"),
            ("MCP_OBO__OBO__GRANT", "token_exchange"),
            ("MCP_OBO__OBO__CLIENT_ASSERTION", "client_secret"),
            ("MCP_OBO__OBO__CLIENT_ID", "mcp-server"),
            ("MCP_OBO__OBO__CLIENT_SECRET", "mcp-server-secret"),
            ("MCP_OBO__OBO__TOKEN_ENDPOINT", token_endpoint.as_str()),
        ];
        let server = ServerProcess::start_on(binary(), port, &env).await;
        server.wait_ready().await;
        assert_eq!(server.mcp_url(), resource);
        Self {
            server,
            provider,
            graph,
            keys,
            public_url,
            resource,
        }
    }

    /// `ts-oauth-client.mjs --url MCP --print-token [extra...]`.
    async fn oauth_client(&self, extra: &[&str]) -> (NodeRun, Value) {
        let mut args = vec![
            e2e()
                .join("ts-oauth-client.mjs")
                .to_string_lossy()
                .into_owned(),
            "--url".into(),
            self.server.mcp_url(),
            "--print-token".into(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let run = run_node(args, e2e()).await;
        let json = run.json();
        assert!(
            run.ok && json.get("error").is_none(),
            "TypeScript OAuth client failed: {}\n{}",
            run.raw(),
            self.logs()
        );
        (run, json)
    }

    fn logs(&self) -> String {
        format!(
            "server stderr:\n{}\noidc-provider stderr:\n{}",
            self.server.stderr(),
            self.provider.stderr()
        )
    }
}

/// Index of the first step at or after `from` matching `pred`, or a panic naming `what`.
fn find_step(steps: &[Value], from: usize, what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    steps
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, s)| pred(s))
        .map(|(i, _)| i)
        .unwrap_or_else(|| {
            panic!(
                "no {what} step after #{from} in:\n{}",
                serde_json::to_string_pretty(steps).unwrap_or_default()
            )
        })
}

#[tokio::test]
async fn typescript_sdk_signs_in_at_oidc_provider_from_the_401_and_hello_tool_calls_graph_on_behalf_of_the_user()
 {
    let w = World::start().await;
    let started = std::time::Instant::now();
    let (_run, out) = w.oauth_client(&[]).await;
    let elapsed = started.elapsed();
    let issuer = w.provider.issuer();

    // The tool works, for the user who signed in, with data Graph gave for the exchanged token.
    assert_eq!(out["tools"][0]["name"], "HelloTool", "{out}");
    let call = &out["call"];
    assert_eq!(call["isError"], false, "{call}\n{}", w.logs());
    assert_eq!(call["structuredContent"]["email"], USER_EMAIL, "{call}");
    assert_eq!(
        call["structuredContent"]["displayName"], USER_NAME,
        "{call}"
    );
    let text = call["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains(USER_NAME), "{text}");

    // Discovered, not configured: the AS is the one the server's metadata names.
    assert_eq!(out["authorizationServer"], issuer);
    assert_eq!(out["issuer"], issuer);
    assert_eq!(out["resource"], w.resource);

    // The user's token: a JWT for the MCP resource, from the registered client.
    let user_token = out["accessToken"].as_str().expect("accessToken").to_owned();
    let claims = &out["accessTokenClaims"];
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["aud"], w.resource);
    assert_eq!(claims["sub"], USER_SUB);
    assert_eq!(claims["client_id"], out["clientId"]);
    assert!(
        claims["scope"]
            .as_str()
            .is_some_and(|s| s.split(' ').any(|s| s == "mcp:tools")),
        "{claims}"
    );

    // The order of events the MCP authorization spec prescribes.
    let steps = out["steps"].as_array().expect("steps").clone();
    let prm_url = format!("{}/.well-known/oauth-protected-resource/mcp", w.public_url);
    assert_eq!(steps[0]["step"], "mcp", "{}", out["steps"]);
    assert_eq!(steps[0]["status"], 401, "{}", steps[0]);
    assert_eq!(
        steps[0]["resourceMetadata"],
        prm_url.as_str(),
        "{}",
        steps[0]
    );
    assert_eq!(steps[0]["scope"], "mcp:tools", "{}", steps[0]);
    let prm = find_step(&steps, 1, "protected resource metadata", |s| {
        s["step"] == "protected-resource-metadata"
    });
    assert_eq!(
        steps[prm]["url"], steps[0]["resourceMetadata"],
        "discovery must start from the challenge's resource_metadata"
    );
    assert_eq!(steps[prm]["status"], 200);
    assert_eq!(steps[prm]["authorizationServers"][0], issuer);
    let asm = find_step(&steps, prm, "authorization server metadata", |s| {
        s["step"] == "authorization-server-metadata" && s["status"] == 200
    });
    assert!(
        steps[asm]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with(&format!("{issuer}/.well-known/"))),
        "{}",
        steps[asm]
    );
    assert_eq!(steps[asm]["issuer"], issuer);
    let reg = find_step(&steps, asm, "registration", |s| s["step"] == "registration");
    assert_eq!(steps[reg]["status"], 201, "{}", steps[reg]);
    assert_eq!(steps[reg]["tokenEndpointAuthMethod"], "none");
    let authorize = find_step(&steps, reg, "authorize", |s| s["step"] == "authorize");
    let callback = find_step(&steps, authorize, "callback", |s| s["step"] == "callback");
    assert_eq!(steps[callback]["hasCode"], true);
    assert_eq!(steps[callback]["stateMatches"], true);
    assert_eq!(
        steps[callback]["iss"], issuer,
        "RFC 9207 iss in the redirect"
    );
    let token = find_step(&steps, callback, "token", |s| s["step"] == "token");
    assert_eq!(steps[token]["status"], 200, "{}", steps[token]);
    assert_eq!(steps[token]["grantType"], "authorization_code");
    assert_eq!(steps[token]["pkce"], true);
    assert_eq!(steps[token]["resource"], w.resource, "RFC 8707 resource");
    let called = find_step(&steps, token, "tools/call", |s| {
        s["step"] == "mcp" && s["rpcMethod"] == "tools/call"
    });
    assert_eq!(steps[called]["status"], 200);

    // Graph saw only the exchanged token: signed by the provider, for Graph, same user,
    // issued to the MCP server acting for the user.
    assert!(
        !w.graph.passthrough_seen(),
        "the user's token reached Graph"
    );
    let seen = w.graph.seen_tokens();
    assert!(!seen.is_empty(), "Graph was never called");
    assert!(
        !seen.contains(&user_token),
        "the user's token reached Graph"
    );
    let keys = w.keys.lock().expect("keys").clone();
    let graph_claims =
        crate::support::tokens::verify(&seen[0], &keys, std::slice::from_ref(&w.graph.url))
            .expect("Graph's token verifies with the provider's keys and audience");
    assert_eq!(graph_claims["sub"], USER_SUB);
    assert_eq!(graph_claims["iss"], issuer);
    assert_eq!(graph_claims["client_id"], "mcp-server");
    assert_eq!(graph_claims["act"]["sub"], "mcp-server");
    assert_eq!(graph_claims["preferred_username"], USER_EMAIL);
    assert!(
        w.provider.stderr().contains("token exchange for kc-user-1"),
        "{}",
        w.logs()
    );
    eprintln!("sign-in + tools/list + HelloTool took {elapsed:?}");
}

#[tokio::test]
async fn mcp_inspector_cli_calls_hello_tool_with_a_token_from_oidc_provider() {
    let w = World::start().await;
    // A token for the MCP resource, obtained headlessly (no tool call).
    let (_run, out) = w.oauth_client(&["--tool", ""]).await;
    let token = out["accessToken"].as_str().expect("accessToken").to_owned();
    assert!(w.graph.seen_tokens().is_empty());

    // The Inspector CLI reads its own package.json relative to the working directory, so it
    // runs from its build directory.
    let build = e2e().join("node_modules/@modelcontextprotocol/inspector-cli/build");
    let inspector = |header: Option<String>| {
        let mut args = vec![
            build.join("index.js").to_string_lossy().into_owned(),
            w.server.mcp_url(),
            "--transport".into(),
            "http".into(),
            "--method".into(),
            "tools/call".into(),
            "--tool-name".into(),
            "HelloTool".into(),
        ];
        if let Some(h) = header {
            args.extend(["--header".into(), h]);
        }
        run_node(args, build.clone())
    };

    let run = inspector(Some(format!("Authorization: Bearer {token}"))).await;
    assert!(run.ok, "inspector-cli failed: {}\n{}", run.raw(), w.logs());
    let result: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("inspector output is not JSON ({e}): {}", run.raw()));
    assert_eq!(result["isError"], false, "{result}\n{}", w.logs());
    assert_eq!(result["structuredContent"]["email"], USER_EMAIL, "{result}");
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains(USER_NAME), "{text}");
    assert!(!w.graph.passthrough_seen());
    assert!(!w.graph.seen_tokens().contains(&token));

    // Without the token the same call is refused with the challenge.
    let run = inspector(None).await;
    assert!(
        !run.ok,
        "inspector-cli succeeded without a token: {}",
        run.raw()
    );
    assert!(
        run.raw().contains("authorization required"),
        "expected the 401 body: {}",
        run.raw()
    );
}

/// The provider's token exchange is a real check, not a rubber stamp: what the server gets
/// from it above is only what a correct RFC 8693 request earns.
#[tokio::test]
async fn oidc_provider_token_exchange_refuses_wrong_clients_and_subject_tokens() {
    let w = World::start().await;
    let (_run, out) = w.oauth_client(&["--tool", ""]).await;
    let user_token = out["accessToken"].as_str().expect("accessToken").to_owned();
    let public_client = out["clientId"].as_str().expect("clientId").to_owned();
    let endpoint = w.provider.get("token_endpoint");
    let graph_scope = format!("{}/.default", w.graph.url);
    let exchange = |client_id: &str, secret: Option<&str>, subject: &str, scope: &str| {
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
            ),
            ("client_id", client_id.to_owned()),
            ("subject_token", subject.to_owned()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token".to_owned(),
            ),
            ("scope", scope.to_owned()),
        ];
        if let Some(s) = secret {
            form.push(("client_secret", s.to_owned()));
        }
        let endpoint = endpoint.clone();
        async move {
            let res = reqwest::Client::new()
                .post(endpoint)
                .form(&form)
                .send()
                .await
                .expect("token endpoint");
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // The MCP server's own request succeeds and yields a Graph token for the user.
    let (status, ok) = exchange(
        "mcp-server",
        Some("mcp-server-secret"),
        &user_token,
        &graph_scope,
    )
    .await;
    assert_eq!(status, 200, "{ok}");
    let graph_token = ok["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let keys = w.keys.lock().expect("keys").clone();
    let claims =
        crate::support::tokens::verify(&graph_token, &keys, std::slice::from_ref(&w.graph.url))
            .expect("a Graph token");
    assert_eq!(claims["sub"], USER_SUB);

    let cases = [
        (
            "wrong secret",
            exchange("mcp-server", Some("wrong"), &user_token, &graph_scope).await,
            "invalid_client",
        ),
        (
            "the user's own (public) client",
            exchange(&public_client, None, &user_token, &graph_scope).await,
            "invalid_request",
        ),
        (
            "a Graph token as subject",
            exchange(
                "mcp-server",
                Some("mcp-server-secret"),
                &graph_token,
                &graph_scope,
            )
            .await,
            "invalid_grant",
        ),
        (
            "a tampered subject token",
            exchange(
                "mcp-server",
                Some("mcp-server-secret"),
                &format!("{user_token}x"),
                &graph_scope,
            )
            .await,
            "invalid_grant",
        ),
        (
            "an unknown target",
            exchange(
                "mcp-server",
                Some("mcp-server-secret"),
                &user_token,
                "https://graph.microsoft.com/.default",
            )
            .await,
            "invalid_target",
        ),
    ];
    for (what, (status, body), error) in cases {
        assert!(
            (400..500).contains(&status) && body["error"] == error,
            "{what}: HTTP {status} {body}, expected {error}"
        );
    }
}
