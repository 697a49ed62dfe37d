//! A complete on-behalf-of world for tests: the fake Entra (issuer + token endpoint), a
//! JWT-verifying fake Graph, a workload identity token file, and the app in production
//! configuration against them.

use std::path::PathBuf;

use mcp_obo::jose::SigningKey;
use serde_json::{Value, json};

use super::fake_graph::FakeGraph;
use super::mcp_http::{post_as, request};
use super::tokens::{CLIENT_ID, FederatedCredential, TestIssuer, USER_OID, now};
use super::{TestApp, entra_env, spawn_production_app, wait_ready};

pub const SA_ISSUER: &str = "https://oidc.aks.example/6f1c2a/";
pub const SA_SUBJECT: &str = "system:serviceaccount:mcp:mcp-obo";
pub const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

pub struct World {
    pub issuer: TestIssuer,
    pub graph: FakeGraph,
    pub sa_key: SigningKey,
    pub sa_file: PathBuf,
    _dir: tempfile::TempDir,
    pub app: TestApp,
}

impl World {
    /// Workload identity (AKS) by default; `extra` overrides settings.
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let Federation {
            issuer,
            graph,
            sa_key,
            sa_file,
            dir,
            mut env,
        } = Federation::start().await;
        env.push(("MCP_OBO__SERVER__WORKERS".into(), "2".into()));
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let app = spawn_production_app(&env);
        wait_ready(&app).await;
        Self {
            issuer,
            graph,
            sa_key,
            sa_file,
            _dir: dir,
            app,
        }
    }

    pub fn user(&self, n: usize) -> String {
        self.issuer.entra_token(json!({
            "oid": format!("{USER_OID}-{n}"),
            "name": format!("User {n}"),
            "preferred_username": format!("user{n}@contoso.com"),
        }))
    }
}

/// The fake Entra and Graph, the workload identity token file (as AKS projects it) the app
/// registration trusts, and the settings of a server using them (Entra mode, the exchange
/// with workload identity, Graph at the fake).
pub struct Federation {
    pub issuer: TestIssuer,
    pub graph: FakeGraph,
    pub sa_key: SigningKey,
    pub sa_file: PathBuf,
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Federation {
    pub async fn start() -> Self {
        let sa_key = SigningKey::generate_rsa("sa-key").expect("rsa");
        let (issuer, graph) = entra_and_graph(
            workload_identity_credential(&sa_key, SA_SUBJECT),
            &[CLIENT_ID, &format!("api://{CLIENT_ID}")],
        )
        .await;
        let dir = tempfile::tempdir().expect("temp dir");
        let sa_file = dir.path().join("azure-identity-token");
        write_sa_token(&sa_key, &sa_file, "first");
        let mut env = entra_env(&issuer);
        env.push(("MCP_OBO__GRAPH__BASE_URL".into(), graph.url.clone()));
        env.push((
            "MCP_OBO__OBO__CLIENT_ASSERTION".into(),
            "workload_identity".into(),
        ));
        env.push((
            "AZURE_FEDERATED_TOKEN_FILE".into(),
            sa_file.display().to_string(),
        ));
        Self {
            issuer,
            graph,
            sa_key,
            sa_file,
            dir,
            env,
        }
    }
}

/// The fake Entra and a fake Graph for an on-behalf-of exchange: Graph accepts only tokens
/// the issuer signed for one of `graph_audiences`, and the issuer's token endpoint exchanges
/// for Graph, authenticating the app by `credential` (its one federated credential).
pub async fn entra_and_graph(
    credential: FederatedCredential,
    graph_audiences: &[&str],
) -> (TestIssuer, FakeGraph) {
    let issuer = TestIssuer::start().await;
    let graph = FakeGraph::start().await;
    graph.verify_tokens(issuer.keys_handle(), &graph.url, graph_audiences);
    let resource = graph.url.clone();
    issuer.configure_token_endpoint(|p| {
        p.resource = resource;
        p.federated = vec![credential];
    });
    (issuer, graph)
}

/// The federated credential an app registration holds for a Kubernetes service account
/// (`subject`) whose projected tokens, signed by `sa_key`, the cluster's issuer issues.
pub fn workload_identity_credential(sa_key: &SigningKey, subject: &str) -> FederatedCredential {
    FederatedCredential {
        issuer: SA_ISSUER.into(),
        subject: subject.into(),
        audience: EXCHANGE_AUDIENCE.into(),
        jwk: sa_key.public_jwk(),
    }
}

/// A projected service-account token, as the kubelet writes it.
pub fn write_sa_token(key: &SigningKey, path: &std::path::Path, jti: &str) {
    let claims = json!({
        "iss": SA_ISSUER, "sub": SA_SUBJECT, "aud": [EXCHANGE_AUDIENCE],
        "exp": now() + 3600, "iat": now(), "jti": jti,
    });
    std::fs::write(path, key.sign("JWT", json!({}), &claims).expect("sign"))
        .expect("write token file");
}

pub async fn call_hello(app: &TestApp, token: &str) -> Value {
    call_hello_at(&app.mcp_url(), token).await
}

/// HelloTool at an MCP URL (a server process): the tool result, asserting HTTP 200.
pub async fn call_hello_at(mcp_url: &str, token: &str) -> Value {
    let body = request(1, "tools/call", json!({"name": "HelloTool"}));
    let reply = post_as(mcp_url, token, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json.expect("json")["result"].clone()
}
