//! Step 4: the app registration as Microsoft Graph has it, read with the operator's own
//! sign-in (`--graph-token-file`, else the Azure CLI / Azure Developer CLI credential that
//! local mode uses). Without a token this step is one warning, not a failure. The token is
//! sent only to a Microsoft Graph cloud or loopback ([`crate::graph::clouds`]): for any other
//! `graph.base_url` this step is one failure, and no token is obtained or sent.

use std::path::Path;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use serde::de::DeserializeOwned;

use super::credential::Found as Credential;
use super::expect::Expected;
use super::graph_shapes::{
    Application, Collection, ErrorBody, FederatedIdentityCredential, PermissionGrant,
    ServicePrincipal,
};
use super::probe::Probe;
use super::{Check, Step, app_checks};
use crate::config::{Secret, is_guid};
use crate::obo::first_line;
use crate::tools::GRAPH_APP_ID;

/// The operator's Graph token, or why there is none.
pub async fn operator_token(file: Option<&Path>, e: &Expected) -> Result<(Secret, String), String> {
    if let Some(path) = file {
        let content = tokio::fs::read_to_string(path)
            .await
            .map_err(|err| format!("cannot read --graph-token-file {}: {err}", path.display()))?;
        let token = content.trim();
        if token.is_empty() {
            return Err(format!("--graph-token-file {} is empty", path.display()));
        }
        return Ok((
            Secret::new(token),
            format!("--graph-token-file {}", path.display()),
        ));
    }
    let built = if is_guid(&e.tenant) {
        azure_identity::AzureCliCredential::new(Some(azure_identity::AzureCliCredentialOptions {
            tenant_id: Some(e.tenant.clone()),
            ..Default::default()
        }))
        .map(|c| c as Arc<dyn TokenCredential>)
    } else {
        azure_identity::DeveloperToolsCredential::new(None).map(|c| c as Arc<dyn TokenCredential>)
    };
    let credential = built.map_err(|err| first_line(&err.to_string()))?;
    let scope = format!("{}/.default", e.graph_base);
    let token = credential
        .get_token(&[scope.as_str()], None)
        .await
        .map_err(|err| first_line(&err.to_string()))?;
    Ok((
        Secret::new(token.token.secret()),
        "your Azure CLI / Azure Developer CLI sign-in".into(),
    ))
}

enum Read<T> {
    Found(T),
    NotFound,
    Failed(String),
}

async fn read<T: DeserializeOwned>(probe: &Probe, url: &str, token: &Secret) -> Read<T> {
    let answer = match probe.get(url, Some(token)).await {
        Ok(answer) => answer,
        Err(e) => return Read::Failed(format!("cannot reach {url}: {e}")),
    };
    match answer.status {
        200 => answer.json().map_or_else(
            || Read::Failed(format!("{url} did not answer with the expected JSON")),
            Read::Found,
        ),
        404 => Read::NotFound,
        status => {
            let code = answer
                .json::<ErrorBody>()
                .map(|b| b.error.code)
                .unwrap_or_default();
            Read::Failed(format!("Graph answered HTTP {status} {code} for {url}"))
        }
    }
}

fn refused(detail: String, e: &Expected) -> Check {
    Check::fail(
        "app.read",
        detail,
        format!(
            "sign in as an owner of the app or with Application.Read.All (az login --tenant {}), or pass --graph-token-file with a Graph token that can read it",
            e.tenant
        ),
    )
}

/// The failing line when `graph_base` is not an origin the operator's Graph token may go
/// to (a Microsoft Graph cloud, or loopback); `None` when it is.
pub fn foreign_graph(graph_base: &str) -> Option<Check> {
    use crate::graph::clouds::{GRAPH_CLOUDS, may_receive_graph_token};
    if url::Url::parse(graph_base).is_ok_and(|url| may_receive_graph_token(&url)) {
        return None;
    }
    Some(Check::fail(
        "app.read",
        format!(
            "the app registration was not read: graph.base_url {graph_base} is not a Microsoft Graph cloud ({}) or a loopback host, so doctor does not send your Graph token to it",
            GRAPH_CLOUDS.join(", ")
        ),
        "set graph.base_url (MCP_OBO__GRAPH__BASE_URL) to your cloud's Microsoft Graph: https://graph.microsoft.com (global), https://graph.microsoft.us (US Government L4), https://dod-graph.microsoft.us (US Government L5) or https://microsoftgraph.chinacloudapi.cn (China); a test double must listen on loopback",
    ))
}

/// Reads the registration and checks it, in this order; a read that fails ends the step
/// there (its line says why), since later lines would only repeat it.
pub async fn check(
    probe: &Probe,
    token_file: Option<&Path>,
    credential: &Credential,
    e: &Expected,
) -> Step<Option<Application>> {
    let ended = |check| Step {
        checks: vec![check],
        found: None,
    };
    // Before the token is even obtained: neither it nor a CLI sign-in for that resource.
    if let Some(refused) = foreign_graph(&e.graph_base) {
        return ended(refused);
    }
    let (token, from) = match operator_token(token_file, e).await {
        Ok(token) => token,
        Err(why) => return ended(no_token(&why)),
    };
    if !is_guid(&e.client_id) {
        return ended(not_a_client_id(e));
    }
    let graph = Graph {
        probe,
        token: &token,
        base: format!("{}/v1.0", e.graph_base),
    };
    let app = match graph.application(e).await {
        Ok(app) => app,
        Err(failed) => return ended(failed),
    };
    let mut checks = vec![Check::pass(
        "app.application",
        format!(
            "application {} read from {} with {from}",
            e.client_id, e.graph_base
        ),
    )];
    checks.push(app_checks::identifier_uris(&app, e));
    checks.push(app_checks::token_version(&app, e));
    let (scope_check, scope_ids) = app_checks::scopes(&app, e);
    checks.push(scope_check);
    checks.push(app_checks::pre_authorized(&app, e, &scope_ids));
    checks.push(app_checks::required_access(&app, e));
    checks.push(graph.federated(credential, e).await);
    checks.extend(graph.service_principal_and_consent(e).await);
    Step {
        checks,
        found: Some(app),
    }
}

fn no_token(why: &str) -> Check {
    Check::warn(
        "app.read",
        format!("the app registration was not read: no Graph token ({why})"),
        "sign in with `az login` or `azd auth login`, or pass --graph-token-file with a Graph token (e.g. `az account get-access-token --resource-type ms-graph --query accessToken -o tsv > token`)",
    )
}

fn not_a_client_id(e: &Expected) -> Check {
    Check::fail(
        "app.read",
        format!(
            "entra.client_id {:?} is not an application (client) id",
            e.client_id
        ),
        "set entra.client_id (AZURE_CLIENT_ID) to the app registration's Application (client) ID, a GUID",
    )
}

/// Graph's v1.0 API, read with the operator's token.
struct Graph<'a> {
    probe: &'a Probe,
    token: &'a Secret,
    /// `{graph.base_url}/v1.0`.
    base: String,
}

impl Graph<'_> {
    fn application_url(&self, e: &Expected) -> String {
        format!("{}/applications(appId='{}')", self.base, e.client_id)
    }

    /// The application object, or the line saying why it could not be had.
    async fn application(&self, e: &Expected) -> Result<Application, Check> {
        match read(self.probe, &self.application_url(e), self.token).await {
            Read::Found(app) => Ok(app),
            Read::NotFound => Err(Check::fail(
                "app.application",
                format!(
                    "no application with appId {} in tenant {} (Request_ResourceNotFound)",
                    e.client_id, e.tenant
                ),
                "set entra.client_id (AZURE_CLIENT_ID) to the server's app registration's client id (`az ad app list --display-name <name> --query [].appId`), or create it with `azd provision` (infra/modules/entra-app.bicep)",
            )),
            Read::Failed(why) => Err(refused(why, e)),
        }
    }

    async fn federated(&self, credential: &Credential, e: &Expected) -> Check {
        let url = format!("{}/federatedIdentityCredentials", self.application_url(e));
        match read::<Collection<FederatedIdentityCredential>>(self.probe, &url, self.token).await {
            Read::Found(fics) => app_checks::federated(&fics.value, credential, e),
            Read::NotFound => app_checks::federated(&[], credential, e),
            Read::Failed(why) => refused(why, e),
        }
    }

    /// The app's service principal, then (when it has one) the tenant's consent to its
    /// Graph permissions, which is granted to that service principal.
    async fn service_principal_and_consent(&self, e: &Expected) -> Vec<Check> {
        let sp_url = format!("{}/servicePrincipals(appId='{}')", self.base, e.client_id);
        let sp = match read::<ServicePrincipal>(self.probe, &sp_url, self.token).await {
            Read::Found(sp) => sp,
            Read::NotFound => return vec![app_checks::service_principal_missing(e)],
            Read::Failed(why) => return vec![refused(why, e)],
        };
        let found = Check::pass(
            "app.service_principal",
            format!("service principal {}", sp.id),
        );
        vec![found, self.admin_consent(&sp, e).await]
    }

    async fn admin_consent(&self, sp: &ServicePrincipal, e: &Expected) -> Check {
        let graph_sp_url = format!("{}/servicePrincipals(appId='{GRAPH_APP_ID}')", self.base);
        let graph_sp = match read::<ServicePrincipal>(self.probe, &graph_sp_url, self.token).await {
            Read::Found(graph_sp) => graph_sp,
            Read::NotFound | Read::Failed(_) => ServicePrincipal::default(),
        };
        let grants_url = match url::Url::parse_with_params(
            &format!("{}/oauth2PermissionGrants", self.base),
            &[("$filter", format!("clientId eq '{}'", sp.id))],
        ) {
            Ok(url) => url.to_string(),
            Err(err) => return refused(format!("cannot build the grants URL: {err}"), e),
        };
        match read::<Collection<PermissionGrant>>(self.probe, &grants_url, self.token).await {
            Read::Found(grants) => app_checks::admin_consent(&grants.value, &graph_sp.id, e),
            Read::NotFound => app_checks::admin_consent(&[], &graph_sp.id, e),
            Read::Failed(why) => refused(why, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[tokio::test]
    async fn a_graph_that_is_not_microsofts_gets_no_operator_token() {
        let e = Expected {
            client_id: "22222222-2222-4222-8222-222222222222".into(),
            tenant: "11111111-1111-4111-8111-111111111111".into(),
            graph_base: "https://graph.example.invalid".into(),
            ..Expected::default()
        };
        let probe = Probe::new(std::time::Duration::from_secs(1)).expect("probe");
        // Reading this file would fail (a WARN line): the step must end before it.
        let dir = tempfile::tempdir().expect("temp dir");
        let never_read = dir.path().join("no-such-token");
        let step = check(&probe, Some(&never_read), &Credential::Nothing, &e).await;
        let [only] = step.checks.as_slice() else {
            panic!("one line: {:?}", step.checks);
        };
        assert_eq!((only.id, only.status), ("app.read", Status::Fail));
        assert!(
            only.line().contains(
                "graph.base_url https://graph.example.invalid is not a Microsoft Graph cloud"
            ),
            "{}",
            only.line()
        );
        assert!(step.found.is_none());
    }
}
