//! `mcp-obo doctor`: the real binary against a fake Entra + Microsoft Graph that
//! serves Graph's real shapes for the app registration, with one broken variant per check:
//! each must print exactly its failing line and its fix (and nothing else failing), and the
//! all-correct registration with a running server must exit 0. The broken variants cover
//! the configuration (step 1: a settings change), the endpoints (step 2: [`Endpoint`], or
//! Graph at a closed port), the credential (step 3: a missing token file, a failing managed
//! identity endpoint) and the app registration (step 4: [`Broken`]). Then doctor against
//! `mcp-obo dev` (every check passes) and against a server with the wrong public_url.
//!
//! This file is the fake and the helpers the steps share (one fake for every step); the tests
//! are in a file per step. The fake's bodies come from `shapes` (the test kit's re-export of
//! the dev emulator's Graph and Entra shapes); it is a fake of its own because its point is
//! the broken variants, one at a time, of a registration with Microsoft's real Graph ids,
//! and Entra's endpoints on the same listener, which neither the dev emulator nor the test
//! kit's fake Graph serves.

mod configuration;
mod credential;
mod deployment;
mod endpoints;
mod registration;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::support::fake_imds::{FakeImds, IDENTITY_HEADER, MI_CLIENT_ID, MI_PRINCIPAL_ID};
use crate::support::{ServerProcess, binary, free_port, shapes};

const TENANT: &str = "11111111-1111-4111-8111-111111111111";
const APP: &str = "22222222-2222-4222-8222-222222222222";
const APP_SP: &str = "44444444-4444-4444-8444-444444444444";
const GRAPH_SP: &str = "55555555-5555-4555-8555-555555555555";
const SCOPE_ID: &str = "66666666-6666-4666-8666-666666666666";
const VS_CODE: &str = "aebc6443-996d-45c2-90f0-388ff96faa56";
const GRAPH_APP: &str = "00000003-0000-0000-c000-000000000000";
const USER_READ: &str = "e1fe6dd8-ba31-4d61-89e7-88639da4683d";
const CALENDARS_READ: &str = "465a38f9-76ea-45b9-9f34-9e8b0d4b0b42";
const WI_ISSUER: &str = "https://oidc.prod-aks.azure.com/33333333-3333-4333-8333-333333333333/";
const WI_SUBJECT: &str = "system:serviceaccount:mcp:mcp-obo";
const EXCHANGE: &str = "api://AzureADTokenExchange";
/// The operator's Graph token; the fake Graph refuses any other, and no output may hold it.
const OPERATOR_TOKEN: &str = "operator-graph-token-7c1f0e";

/// The managed identity's issuer (the fake identity endpoint's tokens).
fn mi_issuer() -> String {
    format!(
        "https://login.microsoftonline.com/{}/v2.0",
        crate::support::tokens::TENANT
    )
}

/// One broken Entra endpoint at a time (step 2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Endpoint {
    Fine,
    /// The discovery document declares Entra's real issuer, not the configured authority's.
    OtherIssuer,
    /// The keys URL answers 200 with an HTML page.
    KeysNotJson,
    /// The discovery document names a keys URL nothing listens on.
    KeysUnreachable,
    /// The discovery document names a plain-http keys URL on a host that is not loopback.
    KeysOverPlainHttp,
    /// The discovery document names a token endpoint nothing listens on.
    TokenUnreachable,
    /// The token endpoint answers 503.
    TokenFailing,
}

/// One misconfiguration of the app registration at a time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Broken {
    Nothing,
    NoApplication,
    V1Tokens,
    TrailingSlash,
    NoScope,
    DisabledScope,
    NotPreAuthorized,
    NoUserRead,
    /// `requiredResourceAccess` lists User.Read but not Calendars.Read (UpcomingEvents').
    NoCalendarsRead,
    WrongSubject,
    NoServicePrincipal,
    NoAdminConsent,
    /// Admin consent for User.Read only, none for Calendars.Read.
    NoCalendarsConsent,
}

struct Fake {
    broken: Broken,
    endpoint: Endpoint,
    base: String,
    /// A loopback base URL where connections are refused.
    closed: String,
    /// The MCP URL listed as an identifier URI.
    mcp_url: String,
    jwks: Value,
}

impl Fake {
    fn application(&self) -> Value {
        let mut uris = vec![format!("api://{APP}"), self.mcp_url.clone()];
        if self.broken == Broken::TrailingSlash {
            uris[0] = format!("api://{APP}/");
        }
        let mut app = shapes::application(&shapes::Application {
            object_id: "77777777-7777-4777-8777-777777777777",
            app_id: APP,
            display_name: "mcp-obo",
            identifier_uris: uris,
            scope_id: SCOPE_ID,
            pre_authorized: &[VS_CODE],
            graph_permission_ids: match self.broken {
                Broken::NoUserRead => vec![CALENDARS_READ],
                Broken::NoCalendarsRead => vec![USER_READ],
                _ => vec![USER_READ, CALENDARS_READ],
            },
        });
        match self.broken {
            Broken::V1Tokens => app["api"]["requestedAccessTokenVersion"] = Value::Null,
            Broken::NoScope => app["api"]["oauth2PermissionScopes"] = json!([]),
            Broken::DisabledScope => {
                app["api"]["oauth2PermissionScopes"][0]["isEnabled"] = json!(false);
            }
            Broken::NotPreAuthorized => app["api"]["preAuthorizedApplications"] = json!([]),
            _ => {}
        }
        app
    }

    fn graph(&self, path: &str, query: &str) -> Response {
        let not_found = |what: &str| {
            (StatusCode::NOT_FOUND, axum::Json(shapes::not_found(what))).into_response()
        };
        let app_path = format!("/v1.0/applications(appId='{APP}')");
        let ok = |v: Value| axum::Json(v).into_response();
        if path == app_path {
            if self.broken == Broken::NoApplication {
                return not_found(APP);
            }
            return ok(self.application());
        }
        if path == format!("{app_path}/federatedIdentityCredentials") {
            let subject = if self.broken == Broken::WrongSubject {
                "system:serviceaccount:default:default"
            } else {
                WI_SUBJECT
            };
            let issuer = mi_issuer();
            return ok(shapes::federated_credentials(&[
                shapes::FederatedCredential {
                    id: "f1",
                    name: "aks-mcp-obo",
                    issuer: WI_ISSUER,
                    subject,
                    audience: EXCHANGE,
                },
                shapes::FederatedCredential {
                    id: "f2",
                    name: "container-app-mi",
                    issuer: &issuer,
                    subject: MI_PRINCIPAL_ID,
                    audience: EXCHANGE,
                },
            ]));
        }
        if path == format!("/v1.0/servicePrincipals(appId='{APP}')") {
            if self.broken == Broken::NoServicePrincipal {
                return not_found(APP);
            }
            return ok(shapes::service_principal(APP_SP, APP, "mcp-obo"));
        }
        if path == format!("/v1.0/servicePrincipals(appId='{GRAPH_APP}')") {
            return ok(shapes::service_principal(
                GRAPH_SP,
                GRAPH_APP,
                "Microsoft Graph",
            ));
        }
        if path == "/v1.0/oauth2PermissionGrants" {
            let filter: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let expected = vec![("$filter".to_owned(), format!("clientId eq '{APP_SP}'"))];
            if filter != expected {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("unexpected filter {filter:?}"),
                )
                    .into_response();
            }
            // Without admin consent, only one user consented.
            let principal = (self.broken == Broken::NoAdminConsent)
                .then_some("88888888-8888-4888-8888-888888888888");
            let scope = if self.broken == Broken::NoCalendarsConsent {
                "User.Read openid"
            } else {
                "User.Read Calendars.Read openid"
            };
            let grant = shapes::permission_grant(&shapes::PermissionGrant {
                id: "g1",
                client_id: APP_SP,
                resource_id: GRAPH_SP,
                principal,
                scope,
            });
            return ok(shapes::page(None, vec![grant], None));
        }
        not_found(path)
    }
}

/// Entra (discovery, keys, token endpoint) and Graph on one loopback listener.
async fn serve(State(fake): State<Arc<Fake>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let tenant = format!("/{TENANT}");
    if path == format!("{tenant}/v2.0/.well-known/openid-configuration") {
        let base = &fake.base;
        let at = |endpoint: Endpoint| {
            if fake.endpoint == endpoint {
                &fake.closed
            } else {
                base
            }
        };
        let issuer = if fake.endpoint == Endpoint::OtherIssuer {
            format!("https://login.microsoftonline.com/{TENANT}/v2.0")
        } else {
            format!("{base}/{TENANT}/v2.0")
        };
        let keys = if fake.endpoint == Endpoint::KeysOverPlainHttp {
            format!("http://keys.contoso.test/{TENANT}/discovery/v2.0/keys")
        } else {
            format!(
                "{}/{TENANT}/discovery/v2.0/keys",
                at(Endpoint::KeysUnreachable)
            )
        };
        let mut document = shapes::openid_configuration(&format!("{base}/{TENANT}"));
        document["issuer"] = json!(issuer);
        document["jwks_uri"] = json!(keys);
        document["token_endpoint"] = json!(format!(
            "{}/{TENANT}/oauth2/v2.0/token",
            at(Endpoint::TokenUnreachable)
        ));
        return axum::Json(document).into_response();
    }
    if path == format!("{tenant}/discovery/v2.0/keys") {
        if fake.endpoint == Endpoint::KeysNotJson {
            return (
                [("content-type", "text/html")],
                "<html><body>Sign in to your network</body></html>",
            )
                .into_response();
        }
        return axum::Json(fake.jwks.clone()).into_response();
    }
    if path == format!("{tenant}/oauth2/v2.0/token") {
        if fake.endpoint == Endpoint::TokenFailing {
            return (StatusCode::SERVICE_UNAVAILABLE, "upstream unavailable").into_response();
        }
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(shapes::entra_error(
                "invalid_client",
                7000216,
                "client_assertion, client_secret or request is required.",
            )),
        )
            .into_response();
    }
    let bearer = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(OPERATOR_TOKEN) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(shapes::invalid_token()),
        )
            .into_response();
    }
    fake.graph(&path, &query)
}

/// A fake, a workload identity token file naming WI_ISSUER/WI_SUBJECT, the operator's
/// token file, and a configuration file for the server at `public_url`.
struct World {
    base: String,
    /// A loopback base URL where connections are refused (`_closed` holds its port).
    closed: String,
    _closed: tokio::net::TcpSocket,
    dir: tempfile::TempDir,
    assertion: String,
}

impl World {
    async fn start(broken: Broken, mcp_url: &str) -> Self {
        Self::start_with(broken, Endpoint::Fine, mcp_url).await
    }

    async fn start_with(broken: Broken, endpoint: Endpoint, mcp_url: &str) -> Self {
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
    fn server_env(&self, public_url: &str) -> Vec<(String, String)> {
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

    fn graph_token_file(&self) -> PathBuf {
        self.dir.path().join("graph-token")
    }

    /// The server's settings at `PUBLIC` with `set` added or replacing, `unset` removed.
    fn env_with(&self, set: &[(&str, &str)], unset: &[&str]) -> Vec<(String, String)> {
        let mut env = self.server_env(PUBLIC);
        env.retain(|(k, _)| !unset.contains(&k.as_str()) && !set.iter().any(|(s, _)| s == k));
        env.extend(set.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        env
    }

    /// Runs `mcp-obo doctor` with the server's settings (as its environment) and `args`.
    async fn doctor(&self, public_url: &str, args: &[&str]) -> Output {
        self.doctor_env(&self.server_env(public_url), args).await
    }

    /// Doctor with the operator's Graph token and `--url` of `server`'s MCP endpoint.
    async fn doctor_deployment(&self, public_url: &str, server: &ServerProcess) -> Output {
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
    async fn doctor_json(&self, env: &[(String, String)]) -> (Output, Value) {
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
    async fn doctor_env(&self, env: &[(String, String)], args: &[&str]) -> Output {
        let mut cmd = self.command("doctor", env);
        cmd.args(args);
        run(cmd).await
    }

    fn command(&self, subcommand: &str, env: &[(String, String)]) -> Command {
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

async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run mcp-obo doctor"))
        .await
        .expect("join")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Each non-passing line with the fix lines under it, as one string.
fn lines_with(output: &str, label: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in output.lines() {
        if line.starts_with("PASS ")
            || line.starts_with("WARN ")
            || line.starts_with("FAIL ")
            || !line.starts_with(' ')
        {
            found.extend(current.take());
            if line.starts_with(label) {
                current = Some(line.to_owned());
            }
        } else if let Some(c) = &mut current {
            c.push('\n');
            c.push_str(line);
        }
    }
    found.extend(current);
    found
}

const PUBLIC: &str = "http://127.0.0.1:9";

fn mcp_url() -> String {
    format!("{PUBLIC}/mcp")
}

/// Runs doctor against the fake with `broken`, and returns its failing lines (with fixes)
/// after checking the exit code and that no credential was printed.
async fn failures_with(broken: Broken) -> (Vec<String>, String) {
    let world = World::start(broken, &mcp_url()).await;
    failures_in(&world, &world.server_env(PUBLIC), true).await
}

/// Runs doctor against `world` with `env` (reading the registration with the operator's
/// token when `graph_token`), and returns its failing lines (with fixes, latency as
/// `(N ms)`) and its report, after checking the exit code and that no credential was
/// printed.
async fn failures_in(
    world: &World,
    env: &[(String, String)],
    graph_token: bool,
) -> (Vec<String>, String) {
    let (failures, text, _) = report_in(world, env, graph_token).await;
    (failures, text)
}

/// [`failures_in`], with the whole output.
async fn report_in(
    world: &World,
    env: &[(String, String)],
    graph_token: bool,
) -> (Vec<String>, String, Output) {
    let token_file = world.graph_token_file();
    let args: &[&str] = if graph_token {
        &["--graph-token-file", token_file.to_str().expect("utf-8")]
    } else {
        &[]
    };
    let output = world.doctor_env(env, args).await;
    let text = stdout(&output);
    assert_no_credential(&output, &[OPERATOR_TOKEN, &world.assertion]);
    let failures = lines_with(&mask_latency(&text), "FAIL ");
    assert_eq!(
        output.status.code(),
        Some(if failures.is_empty() { 0 } else { 1 }),
        "{text}"
    );
    (failures, text, output)
}

/// No `secrets` on stdout or stderr.
fn assert_no_credential(output: &Output, secrets: &[&str]) {
    let everything = format!(
        "{}{}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
    for secret in secrets {
        assert!(
            !everything.contains(secret),
            "a credential was printed:\n{everything}"
        );
    }
}

/// Each line's trailing latency, `(123 ms)`, as `(N ms)`.
fn mask_latency(text: &str) -> String {
    text.lines()
        .map(|line| {
            let masked = line.strip_suffix(" ms)").and_then(|rest| {
                let (head, ms) = rest.rsplit_once(" (")?;
                (!ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| format!("{head} (N ms)"))
            });
            masked.unwrap_or_else(|| line.to_owned()) + "\n"
        })
        .collect()
}

/// The one failing line `line` with `fix` under it.
fn failure(line: &str, fix: &str) -> Vec<String> {
    vec![format!("{line}\n    fix: {fix}")]
}

async fn assert_only_failure(broken: Broken, line: &str, fix: &str) {
    let (failures, text) = failures_with(broken).await;
    assert_eq!(failures, vec![format!("{line}\n    fix: {fix}")], "{text}");
}
