//! `mcp-obo doctor` (issue 16), the real binary against a fake Entra + Microsoft Graph that
//! serves Graph's real shapes for the app registration, with one broken variant per check:
//! each must print exactly its failing line and its fix (and nothing else failing), and the
//! all-correct registration with a running server must exit 0. The broken variants cover
//! the configuration (step 1: a settings change), the endpoints (step 2: [`Endpoint`], or
//! Graph at a closed port), the credential (step 3: a missing token file, a failing managed
//! identity endpoint) and the app registration (step 4: [`Broken`]). Then doctor against
//! `mcp-obo dev` (every check passes) and against a server with the wrong public_url.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::support::fake_imds::{FakeImds, IDENTITY_HEADER, MI_CLIENT_ID, MI_PRINCIPAL_ID};
use crate::support::{ServerProcess, binary, free_port};

const TENANT: &str = "11111111-1111-4111-8111-111111111111";
const APP: &str = "22222222-2222-4222-8222-222222222222";
const APP_SP: &str = "44444444-4444-4444-8444-444444444444";
const GRAPH_SP: &str = "55555555-5555-4555-8555-555555555555";
const SCOPE_ID: &str = "66666666-6666-4666-8666-666666666666";
const VS_CODE: &str = "aebc6443-996d-45c2-90f0-388ff96faa56";
const GRAPH_APP: &str = "00000003-0000-0000-c000-000000000000";
const USER_READ: &str = "e1fe6dd8-ba31-4d61-89e7-88639da4683d";
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
    WrongSubject,
    NoServicePrincipal,
    NoAdminConsent,
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
        let mut uris = vec![json!(format!("api://{APP}")), json!(self.mcp_url)];
        if self.broken == Broken::TrailingSlash {
            uris[0] = json!(format!("api://{APP}/"));
        }
        let mut app = json!({
            "id": "77777777-7777-4777-8777-777777777777",
            "appId": APP,
            "displayName": "mcp-obo",
            "signInAudience": "AzureADMyOrg",
            "identifierUris": uris,
            "api": {
                "acceptMappedClaims": null,
                "knownClientApplications": [],
                "requestedAccessTokenVersion": 2,
                "oauth2PermissionScopes": [{
                    "adminConsentDescription": "Access the MCP server",
                    "adminConsentDisplayName": "Access the MCP server",
                    "id": SCOPE_ID, "isEnabled": true, "type": "User",
                    "userConsentDescription": null, "userConsentDisplayName": null,
                    "value": "user_impersonation"
                }],
                "preAuthorizedApplications": [{"appId": VS_CODE, "delegatedPermissionIds": [SCOPE_ID]}]
            },
            "requiredResourceAccess": [{
                "resourceAppId": GRAPH_APP,
                "resourceAccess": [{"id": USER_READ, "type": "Scope"}]
            }]
        });
        match self.broken {
            Broken::V1Tokens => app["api"]["requestedAccessTokenVersion"] = Value::Null,
            Broken::NoScope => app["api"]["oauth2PermissionScopes"] = json!([]),
            Broken::DisabledScope => {
                app["api"]["oauth2PermissionScopes"][0]["isEnabled"] = json!(false);
            }
            Broken::NotPreAuthorized => app["api"]["preAuthorizedApplications"] = json!([]),
            Broken::NoUserRead => app["requiredResourceAccess"] = json!([]),
            _ => {}
        }
        app
    }

    fn graph(&self, path: &str, query: &str) -> Response {
        let not_found = |what: &str| {
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": {
                    "code": "Request_ResourceNotFound",
                    "message": format!("Resource '{what}' does not exist or one of its queried reference-property objects are not present."),
                    "innerError": {"date": "2025-01-01T00:00:00", "request-id": "r", "client-request-id": "c"}
                }})),
            )
                .into_response()
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
            return ok(json!({
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications('x')/federatedIdentityCredentials",
                "value": [{"id": "f1", "name": "aks-mcp-obo", "issuer": WI_ISSUER, "subject": subject,
                           "description": null, "audiences": [EXCHANGE]},
                          {"id": "f2", "name": "container-app-mi", "issuer": mi_issuer(),
                           "subject": MI_PRINCIPAL_ID, "description": null, "audiences": [EXCHANGE]}]
            }));
        }
        if path == format!("/v1.0/servicePrincipals(appId='{APP}')") {
            if self.broken == Broken::NoServicePrincipal {
                return not_found(APP);
            }
            return ok(
                json!({"id": APP_SP, "appId": APP, "displayName": "mcp-obo", "servicePrincipalType": "Application"}),
            );
        }
        if path == format!("/v1.0/servicePrincipals(appId='{GRAPH_APP}')") {
            return ok(
                json!({"id": GRAPH_SP, "appId": GRAPH_APP, "displayName": "Microsoft Graph"}),
            );
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
            let consent = if self.broken == Broken::NoAdminConsent {
                "Principal"
            } else {
                "AllPrincipals"
            };
            return ok(json!({"value": [{
                "id": "g1", "clientId": APP_SP, "consentType": consent,
                "principalId": if consent == "Principal" { json!("88888888-8888-4888-8888-888888888888") } else { Value::Null },
                "resourceId": GRAPH_SP, "scope": "User.Read openid"
            }]}));
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
        return axum::Json(json!({
            "issuer": issuer,
            "jwks_uri": format!("{}/{TENANT}/discovery/v2.0/keys", at(Endpoint::KeysUnreachable)),
            "token_endpoint": format!("{}/{TENANT}/oauth2/v2.0/token", at(Endpoint::TokenUnreachable)),
            "authorization_endpoint": format!("{base}/{TENANT}/oauth2/v2.0/authorize"),
        }))
        .into_response();
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
            axum::Json(json!({"error": "invalid_client", "error_description": "AADSTS7000216: client_assertion, client_secret or request is required."})),
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
            axum::Json(json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token is empty."}})),
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

#[tokio::test]
async fn the_correct_registration_passes_every_check_but_the_missing_deployment_url() {
    let (failures, text) = failures_with(Broken::Nothing).await;
    assert!(failures.is_empty(), "{text}");
    assert!(lines_with(&text, "WARN ").is_empty(), "{text}");
    for id in [
        "config.valid",
        "config.auth_mode",
        "config.public_url",
        "config.scopes",
        "config.client_assertion",
        "endpoints.discovery",
        "endpoints.jwks",
        "endpoints.token",
        "endpoints.graph",
        "credential.assertion",
        "app.application",
        "app.identifier_uris",
        "app.token_version",
        "app.scope",
        "app.pre_authorized",
        "app.graph_permissions",
        "app.federated_credential",
        "app.service_principal",
        "app.admin_consent",
    ] {
        assert!(
            text.contains(&format!("PASS {id}: ")),
            "{id} did not pass:\n{text}"
        );
    }
    assert!(
        text.contains(&format!("PASS credential.assertion: workload identity assertion: iss {WI_ISSUER}, sub {WI_SUBJECT}, aud {EXCHANGE} (")),
        "{text}"
    );
    assert!(
        text.ends_with("19 passed, 0 warnings, 0 failed\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_application_names_the_client_id_to_fix() {
    assert_only_failure(
        Broken::NoApplication,
        &format!("FAIL app.application: no application with appId {APP} in tenant {TENANT} (Request_ResourceNotFound)"),
        "set entra.client_id (AZURE_CLIENT_ID) to the server's app registration's client id (`az ad app list --display-name <name> --query [].appId`), or create it with `azd provision` (infra/modules/entra-app.bicep)",
    )
    .await;
}

#[tokio::test]
async fn v1_tokens_fail_with_the_manifest_setting() {
    assert_only_failure(
        Broken::V1Tokens,
        "FAIL app.token_version: api.requestedAccessTokenVersion is null: Entra issues v1 tokens (issuer https://sts.windows.net/…, aud api://…), which clients that check the v2 issuer refuse",
        &format!("az ad app update --id {APP} --set api.requestedAccessTokenVersion=2   (Bicep: infra/modules/entra-app.bicep sets it; portal: App registrations → Manifest → \"requestedAccessTokenVersion\": 2)"),
    )
    .await;
}

#[tokio::test]
async fn an_identifier_uri_with_a_trailing_slash_fails_with_the_exact_uris_to_set() {
    assert_only_failure(
        Broken::TrailingSlash,
        &format!("FAIL app.identifier_uris: identifier URI api://{APP}/ ends with a slash: clients requesting api://{APP} get AADSTS9010010 / AADSTS500011"),
        &format!("az ad app update --id {APP} --identifier-uris api://{APP} {PUBLIC}/mcp"),
    )
    .await;
}

#[tokio::test]
async fn a_missing_scope_fails_with_the_portal_step() {
    assert_only_failure(
        Broken::NoScope,
        "FAIL app.scope: the app exposes no delegated scope user_impersonation: sign-in fails with AADSTS65005 / AADSTS70011",
        &format!("portal: App registrations → {APP} → Expose an API → Add a scope → user_impersonation, who can consent: Admins and users (Bicep: oauth2PermissionScopes in infra/modules/entra-app.bicep)"),
    )
    .await;
}

#[tokio::test]
async fn a_disabled_scope_fails_with_the_portal_step() {
    assert_only_failure(
        Broken::DisabledScope,
        "FAIL app.scope: the delegated scope user_impersonation exists but is disabled: sign-in fails with AADSTS65005",
        &format!("portal: App registrations → {APP} → Expose an API → user_impersonation → State: Enabled (Bicep: isEnabled: true in infra/modules/entra-app.bicep)"),
    )
    .await;
}

#[tokio::test]
async fn an_allowed_client_that_is_not_pre_authorized_fails() {
    assert_only_failure(
        Broken::NotPreAuthorized,
        &format!("FAIL app.pre_authorized: allowed client {VS_CODE} is not pre-authorized for user_impersonation: its users get a consent prompt, or AADSTS65001 where user consent is off"),
        &format!("portal: App registrations → {APP} → Expose an API → Add a client application → {VS_CODE}, scopes user_impersonation (Bicep parameter preAuthorizedClientIds in infra/main.parameters.json)"),
    )
    .await;
}

#[tokio::test]
async fn a_registration_without_graph_user_read_fails_with_the_permission_command() {
    assert_only_failure(
        Broken::NoUserRead,
        "FAIL app.graph_permissions: requiredResourceAccess lacks Microsoft Graph User.Read (delegated): the exchange fails with AADSTS65001",
        &format!("az ad app permission add --id {APP} --api {GRAPH_APP} --api-permissions {USER_READ}=Scope"),
    )
    .await;
}

#[tokio::test]
async fn a_federated_credential_for_another_subject_fails_with_the_credential_to_create() {
    assert_only_failure(
        Broken::WrongSubject,
        &format!("FAIL app.federated_credential: no federated credential trusts iss {WI_ISSUER}, sub {WI_SUBJECT}, aud {EXCHANGE}: the exchange fails with AADSTS700211 / AADSTS70021"),
        &format!("az ad app federated-credential create --id {APP} --parameters '{{\"name\":\"mcp-obo\",\"issuer\":\"{WI_ISSUER}\",\"subject\":\"{WI_SUBJECT}\",\"audiences\":[\"{EXCHANGE}\"]}}'"),
    )
    .await;
}

#[tokio::test]
async fn a_missing_service_principal_fails_with_az_ad_sp_create() {
    assert_only_failure(
        Broken::NoServicePrincipal,
        &format!("FAIL app.service_principal: the application {APP} has no service principal in this tenant: no one can sign in to it (AADSTS650052 / AADSTS7000229)"),
        &format!("az ad sp create --id {APP}"),
    )
    .await;
}

#[tokio::test]
async fn without_admin_consent_doctor_warns_with_the_consent_url_and_still_exits_0() {
    let (failures, text) = failures_with(Broken::NoAdminConsent).await;
    assert!(failures.is_empty(), "{text}");
    assert_eq!(
        lines_with(&text, "WARN "),
        vec![format!(
            "WARN app.admin_consent: no admin consent for Microsoft Graph User.Read: each user must consent once (until then tools answer AADSTS65001), at {PUBLIC}/.auth/login/aad\n    fix: az ad app permission admin-consent --id {APP}   (or an administrator opens {{authority}}/{TENANT}/adminconsent?client_id={APP}; Bicep parameter grantAdminConsent=true)"
        ).replace("{authority}", &base_of(&text))],
        "{text}"
    );
}

/// The fake's base URL as the report names it (the discovery line).
fn base_of(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("PASS endpoints.discovery: "))
        .and_then(|l| l.split(&format!("/{TENANT}/")).next())
        .expect("discovery line")
        .to_owned()
}

#[tokio::test]
async fn without_a_graph_token_the_registration_is_one_warning_not_a_failure() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let output = world.doctor(PUBLIC, &[]).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let warnings = lines_with(&text, "WARN ");
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0]
            .starts_with("WARN app.read: the app registration was not read: no Graph token ("),
        "{text}"
    );
    assert!(warnings[0].ends_with("\n    fix: sign in with `az login` or `azd auth login`, or pass --graph-token-file with a Graph token (e.g. `az account get-access-token --resource-type ms-graph --query accessToken -o tsv > token`)"), "{text}");
    assert!(!text.contains("PASS app.application"), "{text}");
}

#[tokio::test]
async fn json_reports_the_same_checks() {
    let world = World::start(Broken::V1Tokens, &mcp_url()).await;
    let token_file = world.graph_token_file();
    let output = world
        .doctor(
            PUBLIC,
            &[
                "--json",
                "--graph-token-file",
                token_file.to_str().expect("utf-8"),
            ],
        )
        .await;
    assert_eq!(output.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["counts"]["fail"], 1);
    let failed: Vec<&Value> = doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["id"], "app.token_version");
    assert!(
        failed[0]["fix"]
            .as_str()
            .is_some_and(|f| f.starts_with(&format!("az ad app update --id {APP} --set")))
    );
    assert!(doc["checks"][5]["latency_ms"].is_u64(), "{doc}");
}

/// A running `serve` configured against the fake, at `public_url` (maybe not its own).
async fn server(world: &World, port: u16, public_url: &str) -> ServerProcess {
    let env = world.server_env(public_url);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    ServerProcess::start_on(binary(), port, &env).await
}

#[tokio::test]
async fn against_a_correctly_configured_running_server_everything_passes() {
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let world = World::start(Broken::Nothing, &format!("{public}/mcp")).await;
    let server = server(&world, port, &public).await;
    let output = world.doctor_deployment(&public, &server).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(lines_with(&text, "WARN ").is_empty(), "{text}");
    let base = &world.base;
    for line in [
        format!(
            "PASS deployment.challenge: 401 with resource_metadata {public}/.well-known/oauth-protected-resource/mcp ("
        ),
        format!("PASS deployment.metadata: resource {public}/mcp ("),
        format!(
            "PASS deployment.authorization_server: {base}/{TENANT}/v2.0/.well-known/openid-configuration answers ("
        ),
        format!(
            "PASS deployment.scopes: advertises api://{APP}/user_impersonation, all defined by the app registration"
        ),
    ] {
        assert!(text.contains(&line), "missing {line:?}:\n{text}");
    }
}

#[tokio::test]
async fn a_server_with_the_wrong_public_url_fails_the_metadata_check_with_the_url_to_set() {
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let world = World::start(Broken::Nothing, &format!("{public}/mcp")).await;
    // Deployed with another host's URL (as when a custom domain is added but the app still
    // says its default one).
    let server = server(&world, port, "https://mcp-old.contoso.example").await;
    let output = world.doctor_deployment(&public, &server).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(
        lines_with(&text, "FAIL "),
        vec![format!(
            "FAIL deployment.metadata: the challenge names https://mcp-old.contoso.example/.well-known/oauth-protected-resource/mcp, but the metadata of {public}/mcp is at {public}/.well-known/oauth-protected-resource/mcp: server.public_url is not the URL clients use\n    fix: set server.public_url (MCP_OBO__SERVER__PUBLIC_URL) to {public}"
        )],
        "{text}"
    );
}

#[tokio::test]
async fn against_mcp_obo_dev_every_check_passes() {
    let dev = crate::dev_mode::DevProcess::start().await;
    let state = dev.state_dir();
    let mut cmd = Command::new(binary());
    cmd.arg("--config")
        .arg(state.join("doctor.toml"))
        .arg("doctor")
        .arg("--graph-token-file")
        .arg(state.join("graph-token"))
        .args(["--url", &dev.mcp_url()])
        .env_clear()
        .env("PATH", "/nonexistent")
        .env("HOME", state);
    let output = run(cmd).await;
    let text = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        lines_with(&text, "WARN ").is_empty() && lines_with(&text, "FAIL ").is_empty(),
        "{text}"
    );
    assert!(
        text.ends_with("23 passed, 0 warnings, 0 failed\n"),
        "{text}"
    );
    assert!(
        dev.banner().await.contains("doctor --graph-token-file"),
        "the banner shows the doctor command"
    );
    let token = std::fs::read_to_string(state.join("graph-token")).expect("token");
    assert!(!text.contains(token.trim()));
}

// Step 1: the configuration.

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

// Step 2: the endpoints.

/// Runs doctor against the fake with `endpoint` broken, expecting exactly `line` and `fix`.
async fn assert_only_endpoint_failure(
    endpoint: Endpoint,
    line: impl Fn(&World) -> String,
    fix: &str,
) -> String {
    let world = World::start_with(Broken::Nothing, endpoint, &mcp_url()).await;
    let (failures, text) = failures_in(&world, &world.server_env(PUBLIC), true).await;
    assert_eq!(failures, failure(&line(&world), fix), "{text}");
    assert!(lines_with(&text, "WARN ").is_empty(), "{text}");
    text
}

const FIX_TENANT_AND_AUTHORITY: &str = "check entra.tenant_id (AZURE_TENANT_ID: `az account show --query tenantId -o tsv`) and entra.authority_host (AZURE_AUTHORITY_HOST; https://login.microsoftonline.us for US Government, https://login.chinacloudapi.cn for China)";

#[tokio::test]
async fn a_discovery_document_declaring_another_issuer_fails_endpoints_discovery() {
    let text = assert_only_endpoint_failure(
        Endpoint::OtherIssuer,
        |w| {
            let base = &w.base;
            format!(
                "FAIL endpoints.discovery: {base}/{TENANT}/v2.0/.well-known/openid-configuration declares issuer https://login.microsoftonline.com/{TENANT}/v2.0, but tokens must carry {base}/{TENANT}/v2.0 (N ms)"
            )
        },
        FIX_TENANT_AND_AUTHORITY,
    )
    .await;
    // The keys and token endpoint of a document that is not the issuer's are not probed.
    assert!(
        !text.contains("endpoints.jwks") && !text.contains("endpoints.token"),
        "{text}"
    );
}

#[tokio::test]
async fn keys_that_are_not_json_fail_endpoints_jwks() {
    assert_only_endpoint_failure(
        Endpoint::KeysNotJson,
        |w| {
            format!(
                "FAIL endpoints.jwks: {}/{TENANT}/discovery/v2.0/keys answered HTTP 200 without signing keys (N ms)",
                w.base
            )
        },
        "fix the identity provider's jwks_uri; until it serves keys no token can be validated (/readyz stays 503)",
    )
    .await;
}

#[tokio::test]
async fn unreachable_keys_fail_endpoints_jwks() {
    assert_only_endpoint_failure(
        Endpoint::KeysUnreachable,
        |w| {
            format!(
                "FAIL endpoints.jwks: cannot reach {}/{TENANT}/discovery/v2.0/keys: connection failed",
                w.closed
            )
        },
        "allow outbound https to the identity provider (proxy variables HTTPS_PROXY/NO_PROXY, firewall)",
    )
    .await;
}

#[tokio::test]
async fn a_token_endpoint_nothing_answers_on_fails_endpoints_token() {
    assert_only_endpoint_failure(
        Endpoint::TokenUnreachable,
        |w| {
            format!(
                "FAIL endpoints.token: cannot reach {}/{TENANT}/oauth2/v2.0/token: connection failed",
                w.closed
            )
        },
        "allow outbound https to the token endpoint (proxy variables HTTPS_PROXY/NO_PROXY, firewall)",
    )
    .await;
}

#[tokio::test]
async fn a_token_endpoint_answering_503_fails_endpoints_token() {
    assert_only_endpoint_failure(
        Endpoint::TokenFailing,
        |w| {
            format!(
                "FAIL endpoints.token: {}/{TENANT}/oauth2/v2.0/token answered HTTP 503 (N ms)",
                w.base
            )
        },
        "check obo.token_endpoint (MCP_OBO__OBO__TOKEN_ENDPOINT) or the identity provider's health",
    )
    .await;
}

#[tokio::test]
async fn an_unreachable_graph_fails_endpoints_graph_and_the_registration_is_not_read() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let env = world.env_with(&[("MCP_OBO__GRAPH__BASE_URL", &world.closed)], &[]);
    let (failures, text) = failures_in(&world, &env, true).await;
    assert_eq!(
        failures,
        failure(
            &format!(
                "FAIL endpoints.graph: cannot reach {}: connection failed",
                world.closed
            ),
            "allow outbound https to Microsoft Graph (proxy variables HTTPS_PROXY/NO_PROXY, firewall), or fix graph.base_url (MCP_OBO__GRAPH__BASE_URL)",
        ),
        "{text}"
    );
    assert!(lines_with(&text, "WARN ").is_empty(), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.get(5..).is_some_and(|check| check.starts_with("app."))),
        "{text}"
    );
}

#[tokio::test]
async fn passing_endpoint_and_credential_lines_show_their_latency() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let (failures, text) = failures_in(&world, &world.server_env(PUBLIC), true).await;
    assert!(failures.is_empty(), "{text}");
    let masked = mask_latency(&text);
    let base = &world.base;
    for line in [
        format!(
            "PASS endpoints.discovery: {base}/{TENANT}/v2.0/.well-known/openid-configuration declares issuer {base}/{TENANT}/v2.0 (N ms)"
        ),
        format!(
            "PASS endpoints.jwks: {base}/{TENANT}/discovery/v2.0/keys lists 1 signing keys (N ms)"
        ),
        format!(
            "PASS endpoints.token: {base}/{TENANT}/oauth2/v2.0/token answers (HTTP 400 without credentials) (N ms)"
        ),
        format!("PASS endpoints.graph: {base} answers (HTTP 401 without a token) (N ms)"),
        format!(
            "PASS credential.assertion: workload identity assertion: iss {WI_ISSUER}, sub {WI_SUBJECT}, aud {EXCHANGE} (N ms)"
        ),
    ] {
        assert!(
            masked.lines().any(|l| l == line),
            "missing {line:?}:\n{text}"
        );
    }
}

// Step 3: the credential.

#[tokio::test]
async fn a_missing_workload_identity_token_file_fails_the_credential_with_the_pod_fix() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let missing = world.dir.path().join("no-such-token");
    let missing = missing.to_str().expect("utf-8");
    let env = world.env_with(&[("MCP_OBO__OBO__FEDERATED_TOKEN_FILE", missing)], &[]);
    let (failures, text) = failures_in(&world, &env, true).await;
    assert_eq!(
        failures,
        failure(
            &format!(
                "FAIL credential.assertion: cannot obtain the client assertion from workload identity token file: {missing}: No such file or directory (os error 2) (N ms)"
            ),
            "label the pod azure.workload.identity/use: \"true\" and annotate its service account with azure.workload.identity/client-id (the chart's serviceAccount settings), so AZURE_FEDERATED_TOKEN_FILE is projected",
        ),
        "{text}"
    );
    // Without an assertion the federated credentials are listed, not judged.
    assert_eq!(
        lines_with(&text, "WARN "),
        vec![format!(
            "WARN app.federated_credential: no assertion on this machine to compare with; federated credentials: aks-mcp-obo (sub {WI_SUBJECT}), container-app-mi (sub {MI_PRINCIPAL_ID})\n    fix: run doctor where the server runs (its managed or workload identity) to check the match"
        )],
        "{text}"
    );
}

/// The server's settings on Container Apps: its managed identity at `imds`, detected from
/// `IDENTITY_ENDPOINT`, presenting `identity_header`.
fn managed_identity_env(
    world: &World,
    imds: &FakeImds,
    identity_header: &str,
) -> Vec<(String, String)> {
    world.env_with(
        &[
            ("IDENTITY_ENDPOINT", &imds.endpoint),
            ("IDENTITY_HEADER", identity_header),
            ("OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID", MI_CLIENT_ID),
        ],
        &[
            "MCP_OBO__OBO__CLIENT_ASSERTION",
            "MCP_OBO__OBO__FEDERATED_TOKEN_FILE",
        ],
    )
}

const FIX_MANAGED_IDENTITY: &str = "run doctor where the managed identity exists (e.g. `az containerapp exec -n <app> -g <group> --command \"mcp-obo doctor\"`); set obo.managed_identity_client_id (OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID) to the user-assigned identity's client id";

#[tokio::test]
async fn a_failing_managed_identity_endpoint_fails_the_credential_with_its_fix() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let imds = FakeImds::start(EXCHANGE).await;
    let env = managed_identity_env(&world, &imds, "not-the-identity-header");
    let (failures, text) = failures_in(&world, &env, true).await;
    assert!(
        text.contains(
            "PASS config.client_assertion: obo.client_assertion = managed_identity (derived from IDENTITY_ENDPOINT)\n"
        ),
        "{text}"
    );
    let [only] = failures.as_slice() else {
        panic!("one failure expected:\n{text}");
    };
    let (line, fix) = only.split_once("\n    fix: ").expect("a fix");
    assert!(
        line.starts_with(
            "FAIL credential.assertion: cannot obtain the client assertion from managed identity: "
        ) && line.ends_with(" (N ms)"),
        "{text}"
    );
    assert_eq!(fix, FIX_MANAGED_IDENTITY, "{text}");
    assert!(imds.calls() >= 1, "the identity endpoint was not asked");
    assert!(imds.issued().is_empty());
}

#[tokio::test]
async fn a_managed_identity_assertion_is_shown_by_its_claims_and_never_printed() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let imds = FakeImds::start(EXCHANGE).await;
    let env = managed_identity_env(&world, &imds, IDENTITY_HEADER);
    let (failures, text, output) = report_in(&world, &env, true).await;
    assert!(failures.is_empty(), "{text}");
    assert!(lines_with(&text, "WARN ").is_empty(), "{text}");
    let masked = mask_latency(&text);
    let iss = mi_issuer();
    for line in [
        format!(
            "PASS credential.assertion: managed identity assertion: iss {iss}, sub {MI_PRINCIPAL_ID}, aud {EXCHANGE} (N ms)"
        ),
        format!(
            "PASS app.federated_credential: container-app-mi trusts iss {iss}, sub {MI_PRINCIPAL_ID}"
        ),
    ] {
        assert!(
            masked.lines().any(|l| l == line),
            "missing {line:?}:\n{text}"
        );
    }
    // The same in JSON; neither output holds the assertion the endpoint issued.
    let token_file = world.graph_token_file();
    let json = world
        .doctor_env(
            &env,
            &[
                "--json",
                "--graph-token-file",
                token_file.to_str().expect("utf-8"),
            ],
        )
        .await;
    assert_eq!(json.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&json.stdout).expect("JSON report");
    let credential = doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == "credential.assertion")
        .expect("the credential line");
    assert_eq!(
        credential["summary"],
        format!("managed identity assertion: iss {iss}, sub {MI_PRINCIPAL_ID}, aud {EXCHANGE}")
    );
    let issued = imds.issued();
    assert_eq!(issued.len(), 2, "one assertion per run");
    let issued: Vec<&str> = issued.iter().map(String::as_str).collect();
    assert_no_credential(&output, &issued);
    assert_no_credential(&json, &issued);
}
