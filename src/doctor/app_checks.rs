//! Step 4's checks, each a pure function of what Graph answered and what the server
//! expects, so each misconfiguration has one line and one fix.

use super::Check;
use super::credential::{Found as Credential, Identity};
use super::expect::Expected;
use super::graph_shapes::{Application, FederatedIdentityCredential, PermissionGrant};
use crate::tools::{GRAPH_APP_ID, GraphPermission, catalog, graph_permissions};

/// The identifier URIs must include the one scopes are advertised under, spelled exactly
/// (no trailing slash); whether the MCP URL is one of them decides whether clients that
/// send it as RFC 8707 `resource` can sign in.
pub fn identifier_uris(app: &Application, e: &Expected) -> Check {
    let id = "app.identifier_uris";
    let listed = app.identifier_uris.join(" ");
    let uris_with = |extra: &str| {
        let mut all: Vec<String> = app
            .identifier_uris
            .iter()
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect();
        if !all.iter().any(|u| u == extra) {
            all.push(extra.to_owned());
        }
        all.join(" ")
    };
    if let Some(slashed) = app.identifier_uris.iter().find(|u| u.ends_with('/')) {
        return Check::fail(
            id,
            format!(
                "identifier URI {slashed} ends with a slash: clients requesting {} get AADSTS9010010 / AADSTS500011",
                slashed.trim_end_matches('/')
            ),
            format!(
                "az ad app update --id {} --identifier-uris {}",
                e.client_id,
                uris_with(&e.scope_prefix)
            ),
        );
    }
    if !app.identifier_uris.contains(&e.scope_prefix) {
        return Check::fail(
            id,
            format!(
                "the identifier URIs ({}) do not include {}, which the server advertises its scopes under: sign-in fails with AADSTS500011",
                if listed.is_empty() { "none" } else { &listed },
                e.scope_prefix
            ),
            format!(
                "az ad app update --id {} --identifier-uris {}   (or set auth.identifier_uris / MCP_OBO__AUTH__IDENTIFIER_URIS to one the app lists)",
                e.client_id,
                uris_with(&e.scope_prefix)
            ),
        );
    }
    if app.identifier_uris.contains(&e.mcp_url) {
        Check::pass(
            id,
            format!("{listed} (includes {} and the MCP URL)", e.scope_prefix),
        )
    } else {
        Check::warn(
            id,
            format!(
                "{listed} include {} but not the MCP URL {}: clients that send it as RFC 8707 resource get AADSTS9010010",
                e.scope_prefix, e.mcp_url
            ),
            format!(
                "az ad app update --id {} --identifier-uris {}   (Entra accepts an https identifier URI only on a verified domain of the tenant; clients that send no resource are unaffected)",
                e.client_id,
                uris_with(&e.mcp_url)
            ),
        )
    }
}

pub fn token_version(app: &Application, e: &Expected) -> Check {
    let id = "app.token_version";
    match app.api.requested_access_token_version {
        Some(2) => Check::pass(id, "api.requestedAccessTokenVersion = 2 (v2 tokens)"),
        other => Check::fail(
            id,
            format!(
                "api.requestedAccessTokenVersion is {}: Entra issues v1 tokens (issuer https://sts.windows.net/…, aud api://…), which clients that check the v2 issuer refuse",
                other.map_or_else(|| "null".to_owned(), |v| v.to_string())
            ),
            format!(
                "az ad app update --id {} --set api.requestedAccessTokenVersion=2   (Bicep: infra/modules/entra-app.bicep sets it; portal: App registrations → Manifest → \"requestedAccessTokenVersion\": 2)",
                e.client_id
            ),
        ),
    }
}

/// The scope ids of every required scope, when all exist and are enabled.
pub fn scopes(app: &Application, e: &Expected) -> (Check, Vec<String>) {
    let id = "app.scope";
    let mut ids = Vec::new();
    for scope in &e.scopes {
        // A scope written with its resource (`api://…/Name`) is this app's `Name` when the
        // resource is one of its identifier URIs; under another resource it is not this
        // app's to expose (`config.scopes` reports that), so it is not looked for here.
        let value = match scope.rsplit_once('/') {
            Some((resource, name)) if scope.contains("://") => {
                let own = e
                    .identifier_uris
                    .iter()
                    .any(|u| u.trim_end_matches('/') == resource)
                    || resource == crate::auth::default_identifier_uri(&e.client_id);
                if !own {
                    continue;
                }
                name
            }
            _ => scope.as_str(),
        };
        match app
            .api
            .oauth2_permission_scopes
            .iter()
            .find(|s| s.value == value)
        {
            Some(scope) if scope.is_enabled => ids.push(scope.id.clone()),
            Some(_) => {
                return (
                    Check::fail(
                        id,
                        format!(
                            "the delegated scope {value} exists but is disabled: sign-in fails with AADSTS65005"
                        ),
                        format!(
                            "portal: App registrations → {} → Expose an API → {value} → State: Enabled (Bicep: isEnabled: true in infra/modules/entra-app.bicep)",
                            e.client_id
                        ),
                    ),
                    ids,
                );
            }
            None => {
                return (
                    Check::fail(
                        id,
                        format!(
                            "the app exposes no delegated scope {value}: sign-in fails with AADSTS65005 / AADSTS70011"
                        ),
                        format!(
                            "portal: App registrations → {} → Expose an API → Add a scope → {value}, who can consent: Admins and users (Bicep: oauth2PermissionScopes in infra/modules/entra-app.bicep)",
                            e.client_id
                        ),
                    ),
                    ids,
                );
            }
        }
    }
    (
        Check::pass(
            id,
            format!(
                "delegated scopes exposed and enabled: {}",
                e.scopes.join(" ")
            ),
        ),
        ids,
    )
}

/// Every allowed client app is pre-authorized for every required scope (no consent prompt).
pub fn pre_authorized(app: &Application, e: &Expected, scope_ids: &[String]) -> Check {
    let id = "app.pre_authorized";
    let pre = &app.api.pre_authorized_applications;
    if e.allowed_client_apps.is_empty() {
        let listed: Vec<&str> = pre.iter().map(|p| p.app_id.as_str()).collect();
        return Check::pass(
            id,
            format!(
                "auth.allowed_client_apps is empty (any client may call); pre-authorized: {}",
                if listed.is_empty() {
                    "none".to_owned()
                } else {
                    listed.join(" ")
                }
            ),
        );
    }
    for client in &e.allowed_client_apps {
        let covered = pre.iter().any(|p| {
            p.app_id.eq_ignore_ascii_case(client)
                && scope_ids
                    .iter()
                    .all(|s| p.delegated_permission_ids.contains(s))
        });
        if !covered {
            return Check::fail(
                id,
                format!(
                    "allowed client {client} is not pre-authorized for {}: its users get a consent prompt, or AADSTS65001 where user consent is off",
                    e.scopes.join(" ")
                ),
                format!(
                    "portal: App registrations → {} → Expose an API → Add a client application → {client}, scopes {} (Bicep parameter preAuthorizedClientIds in infra/main.parameters.json)",
                    e.client_id,
                    e.scopes.join(" ")
                ),
            );
        }
    }
    Check::pass(
        id,
        format!(
            "pre-authorized for {}: {}",
            e.scopes.join(" "),
            e.allowed_client_apps.join(" ")
        ),
    )
}

/// The tools whose calls need `permission`, by name, for messages saying why it matters.
fn needed_by(permission: &GraphPermission) -> Vec<&'static str> {
    catalog()
        .filter(|t| t.permissions.contains(permission))
        .map(|t| t.name)
        .collect()
}

/// `User.Read (HelloTool) Calendars.Read (UpcomingEvents)`: each permission with its tools.
fn with_tools(permissions: &[GraphPermission]) -> String {
    permissions
        .iter()
        .map(|p| format!("{} ({})", p.value, needed_by(p).join(", ")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `HelloTool answers` / `HelloTool and UpcomingEvents answer`: the tools `missing` breaks.
fn tools_answer(missing: &[GraphPermission]) -> String {
    let mut tools: Vec<&str> = Vec::new();
    for tool in missing.iter().flat_map(needed_by) {
        if !tools.contains(&tool) {
            tools.push(tool);
        }
    }
    match tools.split_last() {
        Some((last, [])) => format!("{last} answers"),
        Some((last, rest)) => format!("{} and {last} answer", rest.join(", ")),
        None => "the tools answer".to_owned(),
    }
}

/// The app requests every Graph delegated permission of every registered tool.
pub fn required_access(app: &Application, e: &Expected) -> Check {
    let id = "app.graph_permissions";
    let graph = app
        .required_resource_access
        .iter()
        .find(|r| r.resource_app_id == GRAPH_APP_ID);
    let missing: Vec<_> = graph_permissions()
        .into_iter()
        .filter(|p| {
            !graph.is_some_and(|g| {
                g.resource_access
                    .iter()
                    .any(|a| a.id == p.id && a.kind == "Scope")
            })
        })
        .collect();
    if missing.is_empty() {
        return Check::pass(
            id,
            format!(
                "requests Microsoft Graph {}",
                with_tools(&graph_permissions())
            ),
        );
    }
    let lacks: Vec<String> = missing
        .iter()
        .map(|p| {
            format!(
                "{} (delegated), needed by {}",
                p.value,
                needed_by(p).join(", ")
            )
        })
        .collect();
    let ids: Vec<String> = missing.iter().map(|p| format!("{}=Scope", p.id)).collect();
    Check::fail(
        id,
        format!(
            "requiredResourceAccess lacks Microsoft Graph {}: {} AADSTS65001 until {} added",
            lacks.join("; "),
            tools_answer(&missing),
            if missing.len() == 1 {
                "it is"
            } else {
                "they are"
            }
        ),
        format!(
            "az ad app permission add --id {} --api {GRAPH_APP_ID} --api-permissions {}   (Bicep: infra/graph-permissions.json, written by mcp-obo tools --permissions-json)",
            e.client_id,
            ids.join(" ")
        ),
    )
}

/// A federated credential trusts the identity whose assertion step 3 obtained.
pub fn federated(
    fics: &[FederatedIdentityCredential],
    credential: &Credential,
    e: &Expected,
) -> Check {
    let id = "app.federated_credential";
    let identity: &Identity = match credential {
        Credential::Federated(identity) => identity,
        Credential::NotFederated(kind) => {
            return Check::pass(
                id,
                format!("not used: the server authenticates with a {kind}"),
            );
        }
        Credential::Nothing => {
            let listed: Vec<String> = fics
                .iter()
                .map(|f| format!("{} (sub {})", f.name, f.subject))
                .collect();
            return Check::warn(
                id,
                format!(
                    "no assertion on this machine to compare with; federated credentials: {}",
                    if listed.is_empty() {
                        "none".to_owned()
                    } else {
                        listed.join(", ")
                    }
                ),
                "run doctor where the server runs (its managed or workload identity) to check the match",
            );
        }
    };
    let matches = |f: &&FederatedIdentityCredential| {
        f.issuer == identity.iss
            && f.subject == identity.sub
            && f.audiences.iter().any(|a| identity.aud.contains(a))
    };
    if let Some(fic) = fics.iter().find(matches) {
        return Check::pass(
            id,
            format!(
                "{} trusts iss {}, sub {}",
                fic.name, fic.issuer, fic.subject
            ),
        );
    }
    let audience = identity.aud.first().map_or(
        e.cloud_exchange_audience
            .unwrap_or("api://AzureADTokenExchange"),
        String::as_str,
    );
    let near = fics
        .iter()
        .find(|f| f.issuer == identity.iss && f.subject == identity.sub)
        .map(|f| format!(" ({} has audiences {})", f.name, f.audiences.join(" ")))
        .unwrap_or_default();
    Check::fail(
        id,
        format!(
            "no federated credential trusts iss {}, sub {}, aud {}{near}: the exchange fails with AADSTS700211 / AADSTS70021",
            identity.iss, identity.sub, audience
        ),
        format!(
            "az ad app federated-credential create --id {} --parameters '{{\"name\":\"mcp-obo\",\"issuer\":\"{}\",\"subject\":\"{}\",\"audiences\":[\"{}\"]}}'",
            e.client_id, identity.iss, identity.sub, audience
        ),
    )
}

pub fn service_principal_missing(e: &Expected) -> Check {
    Check::fail(
        "app.service_principal",
        format!(
            "the application {} has no service principal in this tenant: no one can sign in to it (AADSTS650052 / AADSTS7000229)",
            e.client_id
        ),
        format!("az ad sp create --id {}", e.client_id),
    )
}

/// Tenant-wide consent to every registered tool's Graph permissions, or each user consents
/// once.
pub fn admin_consent(grants: &[PermissionGrant], graph_sp_id: &str, e: &Expected) -> Check {
    let id = "app.admin_consent";
    let granted: Vec<&str> = grants
        .iter()
        .filter(|g| g.consent_type == "AllPrincipals" && g.resource_id == graph_sp_id)
        .flat_map(|g| g.scope.split_whitespace())
        .collect();
    let missing: Vec<GraphPermission> = graph_permissions()
        .into_iter()
        .filter(|p| !granted.iter().any(|g| g.eq_ignore_ascii_case(p.value)))
        .collect();
    if missing.is_empty() {
        return Check::pass(
            id,
            format!(
                "admin consent for Microsoft Graph {}",
                with_tools(&graph_permissions())
            ),
        );
    }
    Check::warn(
        id,
        format!(
            "no admin consent for {}: each user must consent once (until then {} AADSTS65001), at {}",
            with_tools(&missing),
            tools_answer(&missing),
            e.consent_url
        ),
        format!(
            "az ad app permission admin-consent --id {}   (or an administrator opens {}; Bicep parameter grantAdminConsent=true)",
            e.client_id,
            e.admin_consent_url()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    fn expected() -> Expected {
        Expected {
            client_id: "app".into(),
            scope_prefix: "api://app".into(),
            scopes: vec!["user_impersonation".into()],
            mcp_url: "https://mcp.example/mcp".into(),
            ..Expected::default()
        }
    }

    fn app(uris: &[&str]) -> Application {
        Application {
            identifier_uris: uris.iter().map(|s| (*s).to_owned()).collect(),
            ..Application::default()
        }
    }

    #[test]
    fn identifier_uris_pass_warn_and_fail() {
        let e = expected();
        assert_eq!(
            identifier_uris(&app(&["api://app", "https://mcp.example/mcp"]), &e).status,
            Status::Pass
        );
        assert_eq!(
            identifier_uris(&app(&["api://app"]), &e).status,
            Status::Warn
        );
        let slashed = identifier_uris(&app(&["api://app/"]), &e);
        assert_eq!(slashed.status, Status::Fail);
        assert_eq!(
            slashed.fix.as_deref(),
            Some("az ad app update --id app --identifier-uris api://app")
        );
        assert_eq!(identifier_uris(&app(&[]), &e).status, Status::Fail);
    }

    #[test]
    fn a_v1_registration_fails_with_the_setting_to_change() {
        let check = token_version(&app(&[]), &expected());
        assert!(
            check
                .summary
                .starts_with("api.requestedAccessTokenVersion is null")
        );
        assert!(check.fix.as_deref().is_some_and(|f| {
            f.starts_with("az ad app update --id app --set api.requestedAccessTokenVersion=2")
        }));
    }

    #[test]
    fn without_admin_consent_each_user_consents_at_the_consent_url() {
        let mut e = expected();
        e.consent_url = "https://mcp.example/.auth/login/aad".into();
        let grant = PermissionGrant {
            consent_type: "Principal".into(),
            resource_id: "graph".into(),
            scope: "User.Read Calendars.Read".into(),
            ..PermissionGrant::default()
        };
        let check = admin_consent(std::slice::from_ref(&grant), "graph", &e);
        assert_eq!(check.status, Status::Warn);
        assert!(
            check
                .summary
                .ends_with("at https://mcp.example/.auth/login/aad")
        );
        let all = PermissionGrant {
            consent_type: "AllPrincipals".into(),
            ..grant
        };
        assert_eq!(admin_consent(&[all], "graph", &e).status, Status::Pass);
    }

    #[test]
    fn a_scope_written_with_its_resource_is_looked_up_by_name_only_under_this_app() {
        let mut e = expected();
        let mut app = app(&["api://app"]);
        app.api.oauth2_permission_scopes = vec![super::super::graph_shapes::PermissionScope {
            id: "s1".into(),
            value: "Files.Read".into(),
            is_enabled: true,
        }];
        e.identifier_uris = vec!["api://app".into()];
        e.scopes = vec!["api://app/Files.Read".into()];
        let (check, ids) = scopes(&app, &e);
        assert_eq!(check.status, Status::Pass, "{check:?}");
        assert_eq!(ids, vec!["s1".to_owned()]);
        // Under another resource: not this registration's scope, so no wrong "add a scope" fix.
        e.scopes = vec!["api://other-app/Files.Write".into()];
        let (check, ids) = scopes(&app, &e);
        assert_eq!(check.status, Status::Pass, "{check:?}");
        assert!(ids.is_empty());
    }
}
