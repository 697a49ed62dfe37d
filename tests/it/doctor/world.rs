//! [`World`]: one test's fake, its files (the workload identity token, the operator's Graph
//! token) and the `mcp-obo` commands run against it.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::{Value, json};

use super::PUBLIC;
use super::fake::{
    APP, Broken, EXCHANGE, Endpoint, Fake, OPERATOR_TOKEN, TENANT, VS_CODE, WI_ISSUER, WI_SUBJECT,
    serve,
};
use crate::support::{ServerProcess, binary};

/// A fake, a workload identity token file naming WI_ISSUER/WI_SUBJECT, the operator's
/// token file, and a configuration file for the server at `public_url`.
pub(super) struct World {
    pub(super) base: String,
    /// A loopback base URL where connections are refused (`_closed` holds its port).
    pub(super) closed: String,
    _closed: tokio::net::TcpSocket,
    pub(super) dir: tempfile::TempDir,
    pub(super) assertion: String,
}

impl World {
    pub(super) async fn start(broken: Broken, mcp_url: &str) -> Self {
        Self::start_with(broken, Endpoint::Fine, mcp_url).await
    }

    pub(super) async fn start_with(broken: Broken, endpoint: Endpoint, mcp_url: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        // Bound but never listening: connecting is refused, and no one else can take the port.
        let closed_socket = tokio::net::TcpSocket::new_v4().expect("socket");
        closed_socket
            .bind("127.0.0.1:0".parse().expect("address"))
            .expect("bind");
        let closed = format!("http://{}", closed_socket.local_addr().expect("addr"));
        let key = mcp_obo::jose::SigningKey::generate_rsa("k1").expect("key");
        let fake = Arc::new(Fake {
            broken,
            endpoint,
            base: base.clone(),
            closed: closed.clone(),
            mcp_url: mcp_url.to_owned(),
            jwks: json!({"keys": [key.public_jwk()]}),
        });
        let app = axum::Router::new().fallback(serve).with_state(fake);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let assertion = key
            .sign(
                "JWT",
                json!({}),
                &json!({"iss": WI_ISSUER, "sub": WI_SUBJECT, "aud": EXCHANGE, "exp": 4_000_000_000u64}),
            )
            .expect("sign");
        std::fs::write(dir.path().join("federated-token"), &assertion).expect("token file");
        std::fs::write(dir.path().join("graph-token"), OPERATOR_TOKEN).expect("graph token");
        Self {
            base,
            closed,
            _closed: closed_socket,
            dir,
            assertion,
        }
    }

    /// The server's settings as environment variables (for `serve`).
    pub(super) fn server_env(&self, public_url: &str) -> Vec<(String, String)> {
        [
            ("MCP_OBO__SERVER__PUBLIC_URL", public_url.to_owned()),
            ("MCP_OBO__AUTH__MODE", "entra".into()),
            ("MCP_OBO__AUTH__ALLOWED_CLIENT_APPS", VS_CODE.into()),
            ("MCP_OBO__ENTRA__TENANT_ID", TENANT.into()),
            ("MCP_OBO__ENTRA__CLIENT_ID", APP.into()),
            ("MCP_OBO__ENTRA__AUTHORITY_HOST", self.base.clone()),
            ("MCP_OBO__GRAPH__BASE_URL", self.base.clone()),
            ("MCP_OBO__OBO__CLIENT_ASSERTION", "workload_identity".into()),
            (
                "MCP_OBO__OBO__FEDERATED_TOKEN_FILE",
                self.dir
                    .path()
                    .join("federated-token")
                    .display()
                    .to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    pub(super) fn graph_token_file(&self) -> PathBuf {
        self.dir.path().join("graph-token")
    }

    /// The server's settings at `PUBLIC` with `set` added or replacing, `unset` removed.
    pub(super) fn env_with(&self, set: &[(&str, &str)], unset: &[&str]) -> Vec<(String, String)> {
        let mut env = self.server_env(PUBLIC);
        env.retain(|(k, _)| !unset.contains(&k.as_str()) && !set.iter().any(|(s, _)| s == k));
        env.extend(set.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        env
    }

    /// Runs `mcp-obo doctor` with the server's settings (as its environment) and `args`.
    pub(super) async fn doctor(&self, public_url: &str, args: &[&str]) -> Output {
        self.doctor_env(&self.server_env(public_url), args).await
    }

    /// Doctor with the operator's Graph token and `--url` of `server`'s MCP endpoint.
    pub(super) async fn doctor_deployment(
        &self,
        public_url: &str,
        server: &ServerProcess,
    ) -> Output {
        let token_file = self.graph_token_file();
        let token_file = token_file.to_str().expect("utf-8 path");
        let url = server.mcp_url();
        self.doctor(
            public_url,
            &["--graph-token-file", token_file, "--url", &url],
        )
        .await
    }

    /// `mcp-obo doctor --json` with exactly `env` and the operator's Graph token: the output
    /// and the report parsed from it.
    pub(super) async fn doctor_json(&self, env: &[(String, String)]) -> (Output, Value) {
        let token_file = self.graph_token_file();
        let output = self
            .doctor_env(
                env,
                &[
                    "--json",
                    "--graph-token-file",
                    token_file.to_str().expect("utf-8"),
                ],
            )
            .await;
        let report = serde_json::from_slice(&output.stdout).expect("JSON report");
        (output, report)
    }

    /// Runs `mcp-obo doctor` with exactly `env` (plus PATH and HOME) and `args`.
    pub(super) async fn doctor_env(&self, env: &[(String, String)], args: &[&str]) -> Output {
        let mut cmd = self.command("doctor", env);
        cmd.args(args);
        run(cmd).await
    }

    pub(super) fn command(&self, subcommand: &str, env: &[(String, String)]) -> Command {
        let mut cmd = Command::new(binary());
        cmd.arg(subcommand)
            .env_clear()
            .env("PATH", "/nonexistent")
            .env("HOME", self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }
}

pub(super) async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run mcp-obo doctor"))
        .await
        .expect("join")
}
