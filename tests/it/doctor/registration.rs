//! Step 4: the app registration read from Graph, one broken variant per check; the report
//! as JSON.

use super::*;

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
async fn a_graph_base_url_that_is_not_microsoft_graph_fails_app_read_and_gets_no_token() {
    let world = World::start(Broken::Nothing, &mcp_url()).await;
    let foreign = "https://graph.example.invalid";
    // Through a proxy that refuses connections, so the name is never even looked up (the
    // fake Entra, on loopback, is reached directly).
    let proxy = world.closed.clone();
    let env = world.env_with(
        &[
            ("MCP_OBO__GRAPH__BASE_URL", foreign),
            ("HTTPS_PROXY", &proxy),
            ("NO_PROXY", "127.0.0.1,localhost"),
        ],
        &[],
    );
    let (failures, text) = failures_in(&world, &env, true).await;
    assert_eq!(
        failures,
        vec![
            format!(
                "FAIL endpoints.graph: cannot reach {foreign}: connection failed\n    fix: allow outbound https to Microsoft Graph (proxy variables HTTPS_PROXY/NO_PROXY, firewall), or fix graph.base_url (MCP_OBO__GRAPH__BASE_URL)"
            ),
            format!(
                "FAIL app.read: the app registration was not read: graph.base_url {foreign} is not a Microsoft Graph cloud (https://graph.microsoft.com, https://graph.microsoft.us, https://dod-graph.microsoft.us, https://microsoftgraph.chinacloudapi.cn) or a loopback host, so doctor does not send your Graph token to it\n    fix: set graph.base_url (MCP_OBO__GRAPH__BASE_URL) to your cloud's Microsoft Graph: https://graph.microsoft.com (global), https://graph.microsoft.us (US Government L4), https://dod-graph.microsoft.us (US Government L5) or https://microsoftgraph.chinacloudapi.cn (China); a test double must listen on loopback"
            ),
        ],
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
async fn a_registration_without_graph_user_read_fails_naming_hellotool_with_the_permission_command()
{
    assert_only_failure(
        Broken::NoUserRead,
        "FAIL app.graph_permissions: requiredResourceAccess lacks Microsoft Graph User.Read (delegated), needed by HelloTool: HelloTool answers AADSTS65001 until it is added",
        &format!("az ad app permission add --id {APP} --api {GRAPH_APP} --api-permissions {USER_READ}=Scope   {PERMISSIONS_FILE}"),
    )
    .await;
}

/// The Bicep's source of the permissions, named in every permission fix.
const PERMISSIONS_FILE: &str =
    "(Bicep: infra/graph-permissions.json, written by mcp-obo tools --permissions-json)";

#[tokio::test]
async fn a_registration_without_calendars_read_fails_naming_upcomingevents_and_the_fix() {
    assert_only_failure(
        Broken::NoCalendarsRead,
        "FAIL app.graph_permissions: requiredResourceAccess lacks Microsoft Graph Calendars.Read (delegated), needed by UpcomingEvents: UpcomingEvents answers AADSTS65001 until it is added",
        &format!("az ad app permission add --id {APP} --api {GRAPH_APP} --api-permissions {CALENDARS_READ}=Scope   {PERMISSIONS_FILE}"),
    )
    .await;
}

#[tokio::test]
async fn admin_consent_without_calendars_read_warns_naming_upcomingevents() {
    let (failures, text) = failures_with(Broken::NoCalendarsConsent).await;
    assert!(failures.is_empty(), "{text}");
    let warnings = lines_with(&text, "WARN ");
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0].starts_with(&format!(
            "WARN app.admin_consent: no admin consent for Calendars.Read (UpcomingEvents): each user must consent once (until then UpcomingEvents answers AADSTS65001), at the consent link each tool's answer gives\n    fix: az ad app permission admin-consent --id {APP}"
        )),
        "{text}"
    );
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
            "WARN app.admin_consent: no admin consent for User.Read (HelloTool) Calendars.Read (UpcomingEvents): each user must consent once (until then HelloTool and UpcomingEvents answer AADSTS65001), at the consent link each tool's answer gives\n    fix: az ad app permission admin-consent --id {APP}   (or an administrator opens {{authority}}/{TENANT}/adminconsent?client_id={APP}; Bicep parameter grantAdminConsent=true)"
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
    let (output, doc) = world.doctor_json(&world.server_env(PUBLIC)).await;
    assert_eq!(output.status.code(), Some(1));
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
