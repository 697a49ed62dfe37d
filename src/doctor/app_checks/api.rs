//! The API the app registration exposes: identifier URIs spelled as the server advertises
//! them, v2 tokens, the delegated scopes, and the client apps pre-authorized for them.

use crate::doctor::Check;
use crate::doctor::expect::Expected;
use crate::doctor::graph_shapes::Application;

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
